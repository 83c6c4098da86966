//! Clones (RBD layering) made, written, snapshotted, resized, rolled back
//! and flattened by rbdimg, with the same assertions on a real Ceph cluster
//! and on the embedded store, in both clone formats (v1: protected parent
//! snapshots and `rbd_children`; v2: children on the parent snapshot and
//! its trash). Writes go through rbdimg's own RBD code: `convert -n` into
//! a raw window of the image.

use std::path::Path;

use super::{Backend, both_backends, rbdimg, rbdimg_fails, rbdimg_ok, source, unique};

both_backends!(
    clones_read_write_and_flatten,
    clone_snapshots_resize_and_rollback,
    snapshot_removal_follows_the_clone_format,
    clones_across_namespaces_and_sizes,
    convert_onto_a_clone_of_a_snapshot,
    chains_of_clones,
    clone_errors_are_clear,
);

pub(crate) const MIB: u64 = 1 << 20;

/// `b.name(image)` with the clone format the cluster should pick.
fn named(b: &Backend, image: &str, format: u8) -> String {
    format!("{}:rbd_default_clone_format={format}", b.name(image))
}

/// A golden image holding `source`'s bytes, with snapshot `base`.
pub(crate) fn golden(b: &Backend, dir: &Path) -> (String, Vec<u8>) {
    let src = source(dir);
    let image = unique("golden");
    rbdimg_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &b.name(&image),
    ]);
    rbdimg_ok(&["snapshot", "-c", "base", &b.name(&image)]);
    (image, std::fs::read(src).unwrap())
}

/// Clones `parent@snap` as `child` in clone `format`; the output.
pub(crate) fn clone(
    b: &Backend,
    parent: &str,
    child: &str,
    format: u8,
    size: Option<&str>,
) -> String {
    let mut args = vec![
        "create".to_string(),
        "-f".into(),
        "raw".into(),
        "-b".into(),
        b.name(parent),
        "-F".into(),
        "raw".into(),
        named(b, child, format),
    ];
    args.extend(size.map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = rbdimg_ok(&args);
    out.stdout + &out.stderr
}

/// Writes `data` at `offset` of `image` with rbdimg (`convert -n` into a
/// raw window of the image), and into the model `expected`.
pub(crate) fn write_at(b: &Backend, image: &str, offset: u64, data: &[u8], expected: &mut [u8]) {
    let dir = tempfile::tempdir().unwrap();
    let patch = dir.path().join("patch.raw");
    std::fs::write(&patch, data).unwrap();
    let rbd = b.json(image);
    let window = format!(
        r#"json:{{"driver":"raw","offset":{offset},"size":{},"file":{}}}"#,
        data.len(),
        rbd.strip_prefix("json:").unwrap()
    );
    rbdimg_ok(&[
        "convert",
        "-n",
        "-f",
        "raw",
        "-O",
        "raw",
        patch.to_str().unwrap(),
        &window,
    ]);
    expected[offset as usize..offset as usize + data.len()].copy_from_slice(data);
}

/// Bytes that are neither zero nor constant, so misplaced data shows.
pub(crate) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn info_json(b: &Backend, image: &str) -> serde_json::Value {
    let out = rbdimg_ok(&["info", "--output=json", &b.name(image)]);
    serde_json::from_str(&out.stdout).unwrap()
}

pub(crate) fn assert_bytes(b: &Backend, image: &str, expected: &[u8]) {
    let got = b.export(image);
    assert_eq!(got.len(), expected.len(), "{image}: size");
    if let Some(at) = got.iter().zip(expected).position(|(a, e)| a != e) {
        panic!("{image} differs from the expected bytes at offset {at}");
    }
}

fn clones_read_write_and_flatten(b: &Backend) {
    for format in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (parent, original) = golden(b, dir.path());
        let child = unique("clone");
        let said = clone(b, &format!("{parent}@base"), &child, format, None);
        // v1 needs a protected parent snapshot: rbdimg protects it, and says so.
        assert_eq!(said.contains("protected snapshot"), format == 1, "{said}");
        assert!(
            said.contains(&format!(
                "backing_file={}",
                b.name(&format!("{parent}@base"))
            )),
            "{said}"
        );
        // The parent shows as the backing file; nothing is copied.
        let info = info_json(b, &child);
        assert_eq!(info["virtual-size"], 48 * MIB);
        assert_eq!(
            info["backing-filename"],
            format!("rbd:{parent}@base").as_str()
        );
        assert_eq!(
            info["full-backing-filename"],
            b.name(&format!("{parent}@base")).as_str()
        );
        assert_eq!(info["backing-filename-format"], "raw");
        assert_eq!(info["actual-size"], 0);
        let human = rbdimg_ok(&["info", &b.name(&child)]).stdout;
        assert!(
            human.contains(&format!("backing file: rbd:{parent}@base (actual path: ")),
            "{human}"
        );
        // --backing-chain walks to the parent.
        let chain = rbdimg_ok(&["info", "--backing-chain", &b.name(&child)]).stdout;
        assert_eq!(
            chain.lines().filter(|l| *l == "file format: raw").count(),
            2,
            "{chain}"
        );
        assert_bytes(b, &child, &original);

        // Writes copy the parent's object up first, wherever they land.
        let mut expected = original.clone();
        write_at(b, &child, 4096, &pattern(8192, 1), &mut expected);
        write_at(b, &child, 6 * MIB - 100, &pattern(512, 2), &mut expected);
        write_at(
            b,
            &child,
            20 * MIB + 50_000,
            &pattern(4096, 3),
            &mut expected,
        );
        write_at(
            b,
            &child,
            44 * MIB,
            &pattern(4 * MIB as usize, 4),
            &mut expected,
        );
        // Zeros over parent data hide it, in part of an object or all of it.
        write_at(b, &child, 4 * MIB + 512, &vec![0; 1024], &mut expected);
        write_at(b, &child, 8 * MIB - 4096, &vec![0; 4096], &mut expected);
        write_at(
            b,
            &child,
            20 * MIB,
            &vec![0; 4 * MIB as usize],
            &mut expected,
        );
        assert_bytes(b, &child, &expected);
        assert_bytes(b, &format!("{parent}@base"), &original);
        b.object_map_check(&child);
        let same = rbdimg(&["compare", "-f", "raw", &b.name(&child), &b.name(&parent)]);
        assert_eq!(same.code, 1, "{same:#?}");
        if let Backend::Ceph(c) = b {
            let info = c.tool_ok("rbd", &["info", &child]).stdout;
            assert!(info.contains(&format!("parent: {parent}@base")), "{info}");
            assert!(info.contains("overlap: 48 MiB"), "{info}");
            let children = c.tool_ok("rbd", &["children", &format!("{parent}@base")]);
            assert_eq!(children.stdout.trim(), child, "{children:#?}");
            if format == 2 {
                assert!(info.contains("op_features: clone-child"), "{info}");
            }
        }

        // Flatten: the bytes stay, the parent goes; a second run is a no-op.
        // -p off a terminal: qemu-img's plain progress lines on stdout.
        let out = rbdimg_ok(&["rebase", "-p", "-b", "", &b.name(&child)]);
        assert!(out.stdout.starts_with("    (0.00/100%)\r"), "{out:#?}");
        assert!(out.stdout.ends_with("    (100.00/100%)\r\n"), "{out:#?}");
        let info = info_json(b, &child);
        assert!(info.get("backing-filename").is_none(), "{info}");
        assert_bytes(b, &child, &expected);
        b.object_map_check(&child);
        rbdimg_ok(&["rebase", "-b", "", &b.name(&child)]);
        assert_bytes(b, &child, &expected);
        if let Backend::Ceph(c) = b {
            let info = c.tool_ok("rbd", &["info", &child]).stdout;
            assert!(!info.contains("parent:"), "{info}");
            let children = c.tool_ok("rbd", &["children", &format!("{parent}@base")]);
            assert!(children.stdout.trim().is_empty(), "{children:#?}");
        }
    }
}

fn clone_snapshots_resize_and_rollback(b: &Backend) {
    for format in [1, 2] {
        let dir = tempfile::tempdir().unwrap();
        let (parent, original) = golden(b, dir.path());
        let child = unique("clone-snap");
        clone(b, &format!("{parent}@base"), &child, format, None);
        let name = b.name(&child);
        let mut expected = original.clone();
        write_at(b, &child, MIB, &pattern(4096, 5), &mut expected);
        rbdimg_ok(&["snapshot", "-c", "s1", &name]);
        let at_s1 = expected.clone();
        // After the snapshot, copy-ups keep the parent data in it too.
        write_at(b, &child, 5 * MIB, &pattern(4096, 6), &mut expected);
        write_at(b, &child, 21 * MIB, &pattern(512, 7), &mut expected);
        write_at(
            b,
            &child,
            44 * MIB,
            &vec![0; 4 * MIB as usize],
            &mut expected,
        );
        assert_bytes(b, &child, &expected);
        assert_bytes(b, &format!("{child}@s1"), &at_s1);
        b.object_map_check(&child);
        b.object_map_check(&format!("{child}@s1"));
        // Shrinking cuts the overlap; growing back reads zeros there.
        rbdimg_ok(&["resize", "--shrink", &name, &(30 * MIB - 4096).to_string()]);
        rbdimg_ok(&["resize", &name, &(48 * MIB).to_string()]);
        expected[(30 * MIB - 4096) as usize..].fill(0);
        assert_bytes(b, &child, &expected);
        assert_bytes(b, &format!("{child}@s1"), &at_s1);
        b.object_map_check(&child);
        if let Backend::Ceph(c) = b {
            let info = c.tool_ok("rbd", &["info", &child]).stdout;
            assert!(info.contains("overlap: 30 MiB"), "{info}");
        }
        // Rolling back restores the bytes of the snapshot exactly.
        rbdimg_ok(&["snapshot", "-a", "s1", &name]);
        assert_bytes(b, &child, &at_s1);
        b.object_map_check(&child);
        // Flattened with a snapshot (deep-flatten): both read on alone.
        rbdimg_ok(&["rebase", "-b", "", &name]);
        assert_bytes(b, &child, &at_s1);
        assert_bytes(b, &format!("{child}@s1"), &at_s1);
        b.object_map_check(&child);
        rbdimg_ok(&["snapshot", "-d", "s1", &name]);
        assert_bytes(b, &child, &at_s1);
    }
}

fn snapshot_removal_follows_the_clone_format(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(b, dir.path());
    let parent_name = b.name(&parent);
    // v2: the parent snapshot goes to the trash while a clone reads it,
    // and out of it with the clone's flatten.
    let v2 = unique("clone-v2");
    clone(b, &format!("{parent}@base"), &v2, 2, None);
    rbdimg_ok(&["snapshot", "-d", "base", &parent_name]);
    let listed = rbdimg_ok(&["snapshot", "-l", &parent_name]).stdout;
    assert!(!listed.contains("base"), "{listed}");
    assert_bytes(b, &v2, &original);
    let info = info_json(b, &v2);
    let backing = info["backing-filename"].as_str().unwrap();
    assert!(backing.starts_with(&format!("rbd:{parent}@")), "{backing}");
    if let Backend::Ceph(c) = b {
        let all = c.tool_ok("rbd", &["snap", "ls", "--all", &parent]).stdout;
        assert!(all.contains("trash (base)"), "{all}");
    }
    let mut expected = original.clone();
    write_at(b, &v2, 3 * MIB, &pattern(5120, 8), &mut expected);
    rbdimg_ok(&["rebase", "-b", "", &b.name(&v2)]);
    assert_bytes(b, &v2, &expected);
    if let Backend::Ceph(c) = b {
        let all = c.tool_ok("rbd", &["snap", "ls", "--all", &parent]).stdout;
        assert!(!all.contains("trash"), "{all}");
    }

    // v1: the snapshot is protected; removing it names its clones.
    rbdimg_ok(&["snapshot", "-c", "base2", &parent_name]);
    let v1 = unique("clone-v1");
    clone(b, &format!("{parent}@base2"), &v1, 1, None);
    let refused = rbdimg_fails(&["snapshot", "-d", "base2", &parent_name], "is protected");
    assert!(refused.stderr.contains(&v1), "{}", refused.stderr);
    assert_bytes(b, &v1, &original);
    rbdimg_ok(&["rebase", "-b", "", &b.name(&v1)]);
    let still = rbdimg_fails(&["snapshot", "-d", "base2", &parent_name], "is protected");
    assert!(!still.stderr.contains(&v1), "{}", still.stderr);
    assert_bytes(b, &v1, &original);
}

fn clones_across_namespaces_and_sizes(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(b, dir.path());
    let ns = unique("ns")[4..].to_string();
    b.create_namespace(&format!("rbd/{ns}"));
    let child = format!("rbd/{ns}/clone");
    // Clone v1 cannot cross namespaces; v2 can.
    let out = rbdimg(&[
        "create",
        "-f",
        "raw",
        "-b",
        &b.name(&format!("{parent}@base")),
        "-F",
        "raw",
        &named(b, &child, 1),
    ]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains("another namespace"), "{}", out.stderr);
    clone(b, &format!("{parent}@base"), &child, 2, None);
    assert_bytes(b, &child, &original);
    // A bigger clone reads zeros past its parent; a smaller one ends early.
    let big = unique("clone-big");
    clone(b, &format!("{parent}@base"), &big, 2, Some("64M"));
    let mut expected = original.clone();
    expected.resize(64 << 20, 0);
    write_at(b, &big, 50 * MIB, &pattern(4096, 9), &mut expected);
    assert_bytes(b, &big, &expected);
    let small = unique("clone-small");
    clone(b, &format!("{parent}@base"), &small, 2, Some("10M"));
    assert_bytes(b, &small, &original[..10 << 20]);
    rbdimg_ok(&["resize", &b.name(&small), "20M"]);
    let mut expected = original[..10 << 20].to_vec();
    expected.resize(20 << 20, 0);
    assert_bytes(b, &small, &expected);
    for image in [&child, &big, &small] {
        b.object_map_check(image);
    }
}

fn convert_onto_a_clone_of_a_snapshot(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(b, dir.path());
    // A source that differs from the golden image here and there.
    let mut changed = original.clone();
    changed[100..200].fill(0xee);
    changed[(30 << 20)..(31 << 20)].fill(0x11);
    changed[(47 << 20)..].fill(0);
    let src = dir.path().join("changed.raw");
    std::fs::write(&src, &changed).unwrap();
    let target = unique("converted");
    rbdimg_ok(&[
        "convert",
        "-B",
        &b.name(&format!("{parent}@base")),
        "-F",
        "raw",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &b.name(&target),
    ]);
    let info = info_json(b, &target);
    assert_eq!(
        info["backing-filename"],
        format!("rbd:{parent}@base").as_str()
    );
    assert_bytes(b, &target, &changed);
    b.object_map_check(&target);
    let same = rbdimg(&["compare", &b.name(&target), src.to_str().unwrap()]);
    assert_eq!(same.code, 0, "{same:#?}");
}

fn chains_of_clones(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(b, dir.path());
    let middle = unique("middle");
    clone(b, &format!("{parent}@base"), &middle, 2, None);
    let mut expected = original.clone();
    write_at(b, &middle, 9 * MIB, &pattern(9216, 10), &mut expected);
    rbdimg_ok(&["snapshot", "-c", "mid", &b.name(&middle)]);
    let leaf = unique("leaf");
    clone(b, &format!("{middle}@mid"), &leaf, 2, None);
    assert_bytes(b, &leaf, &expected);
    let chain = rbdimg_ok(&["info", "--backing-chain", &b.name(&leaf)]).stdout;
    assert_eq!(
        chain.lines().filter(|l| *l == "file format: raw").count(),
        3,
        "{chain}"
    );
    write_at(b, &leaf, 20 * MIB + 10, &pattern(512, 11), &mut expected);
    rbdimg_ok(&["rebase", "-b", "", &b.name(&leaf)]);
    assert_bytes(b, &leaf, &expected);
    b.object_map_check(&leaf);
}

fn clone_errors_are_clear(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (parent, _) = golden(b, dir.path());
    let child = b.name(&unique("bad-clone"));
    let local = dir.path().join("x.raw");
    std::fs::write(&local, [0u8; 4096]).unwrap();
    let create = |backing: &str, format: &str| {
        rbdimg(&["create", "-f", "raw", "-b", backing, "-F", format, &child])
    };
    let cases = [
        (
            b.name(&parent),
            "raw",
            "a clone's parent must be a snapshot",
        ),
        (
            b.name(&format!("{parent}@nope")),
            "raw",
            "No such file or directory\nCould not open backing image.",
        ),
        (
            b.name(&format!("{parent}@base")),
            "qcow2",
            "Image is not in qcow2 format",
        ),
        (
            local.display().to_string(),
            "raw",
            "must be an RBD snapshot",
        ),
    ];
    for (backing, format, message) in cases {
        let out = create(&backing, format);
        assert_eq!(out.code, 1, "{backing}: {out:#?}");
        assert!(out.stderr.contains(message), "{backing}: {}", out.stderr);
    }
    // A parent without layering cannot be cloned.
    let flat = unique("no-layering");
    rbdimg_ok(&[
        "create",
        "-o",
        "features=exclusive-lock",
        &b.name(&flat),
        "4M",
    ]);
    rbdimg_ok(&["snapshot", "-c", "s", &b.name(&flat)]);
    let out = create(&b.name(&format!("{flat}@s")), "raw");
    assert!(out.stderr.contains("layering"), "{}", out.stderr);
    // Nothing half-made is left behind.
    let out = rbdimg(&["info", &child]);
    assert_eq!(out.code, 1, "{out:#?}");
    // A clone refuses to lose its parent's data unsafely.
    let ok = unique("clone-u");
    clone(b, &format!("{parent}@base"), &ok, 2, None);
    rbdimg_fails(
        &["rebase", "-u", "-b", "", &b.name(&ok)],
        "without copying its data",
    );
}
