//! Both directions on a real cluster: what rbdimg writes is what `rbd`,
//! librbd and QEMU read, and the reverse; `info` and `snapshot -l` print
//! what qemu-img prints for the same image.

use super::{raw_source, rbdimg, rbdimg_ok, shared, unique};
use crate::util::{have_qemu_img, qemu_img};

/// A 48 MiB source with data in scattered objects (4 MiB objects).
fn source(dir: &std::path::Path) -> std::path::PathBuf {
    raw_source(
        dir,
        "src.raw",
        48 << 20,
        &[
            (0, 1, 5000),
            (4 << 20, 2, 4 << 20),
            (20 << 20, 3, 100_000),
            ((47 << 20) + 7, 4, (1 << 20) - 7),
        ],
    )
}

/// Our deliberate improvement: disk size from the object map. Everything
/// else must equal qemu-img's output.
fn without_disk_size(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("disk size:") && !l.contains("\"actual-size\""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn created_images_are_ordinary_rbd_images() {
    let c = shared();
    let image = unique("create");
    rbdimg_ok(&["create", "-f", "raw", &c.name(&image), "1G"]);
    let info = c.tool_ok("rbd", &["info", &image]).stdout;
    assert!(info.contains("size 1 GiB in 256 objects"), "{info}");
    assert!(info.contains("order 22 (4 MiB objects)"), "{info}");
    assert!(
        info.contains("features: layering, exclusive-lock, object-map, fast-diff, deep-flatten"),
        "{info}"
    );
    let name = image.rsplit('/').next().unwrap();
    assert!(
        c.tool_ok("rbd", &["ls", "rbd"])
            .stdout
            .lines()
            .any(|l| l == name)
    );
    c.assert_object_map_clean(&image);

    // Object size and features from -o.
    let small = unique("create-opts");
    let out = rbdimg_ok(&[
        "create",
        "-o",
        "cluster_size=1M,features=layering",
        &c.name(&small),
        "100000",
    ]);
    assert!(out.stdout.starts_with(&format!(
        "Formatting '{}', fmt=raw size=100000 cluster_size=1048576 features=layering",
        c.name(&small)
    )));
    let info = c.tool_ok("rbd", &["info", &small]).stdout;
    assert!(
        info.contains("order 20 (1 MiB objects)") && info.contains("features: layering\n"),
        "{info}"
    );
    // QEMU rounds the size up to whole sectors.
    assert!(info.contains("size 98 KiB in 1 objects"), "{info}");
}

#[test]
fn info_matches_qemu_img() {
    if !have_qemu_img() {
        return;
    }
    let c = shared();
    let image = unique("info");
    rbdimg_ok(&["create", &c.name(&image), "64M"]);
    let dir = tempfile::tempdir().unwrap();
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        source(dir.path()).to_str().unwrap(),
        &c.name(&image),
    ]);
    rbdimg_ok(&["snapshot", "-c", "first", &c.name(&image)]);
    for args in [
        vec!["info"],
        vec!["info", "--output=json"],
        vec!["info", "-f", "raw"],
        vec!["info", "-f", "rbd"],
        vec!["info", "-f", "rbd", "--output=json"],
        vec!["snapshot", "-l"],
    ] {
        let name = c.name(&image);
        let mut full = args.clone();
        full.push(&name);
        let ours = rbdimg_ok(&full);
        let theirs = qemu_img(dir.path(), &full);
        assert_eq!(theirs.code, 0, "qemu-img {full:?}: {theirs:#?}");
        assert_eq!(
            without_disk_size(&ours.stdout),
            without_disk_size(&theirs.stdout),
            "rbdimg {full:?}"
        );
    }
    // The improvement itself: the allocated size from the object map.
    let json = rbdimg_ok(&["info", "--output=json", &c.name(&image)]).stdout;
    assert!(json.contains("\"actual-size\": 16777216"), "{json}");
}

#[test]
fn data_written_by_rbdimg_equals_rbd_export() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let expected = std::fs::read(&src).unwrap();
    let image = unique("convert");
    rbdimg_ok(&[
        "convert",
        "-p",
        "-f",
        "raw",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &c.name(&image),
    ]);
    assert!(
        c.export(&image) == expected,
        "rbd export differs from the source"
    );
    c.assert_object_map_clean(&image);
    // Zero ranges created no objects: 4 of the 12 objects hold data.
    let du = c.tool_ok("rbd", &["du", &image]).stdout;
    assert!(du.contains("16 MiB"), "{du}");
    // And back out through rbdimg, also from `-f rbd` and json: names.
    let back = dir.path().join("back.raw");
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&image),
        back.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&back).unwrap() == expected);
    let json = format!(
        r#"json:{{"driver":"rbd","pool":"rbd","image":"{}","conf":"{}"}}"#,
        &image[4..],
        c.conf()
    );
    rbdimg_ok(&["convert", "-O", "raw", &json, back.to_str().unwrap()]);
    assert!(std::fs::read(&back).unwrap() == expected);
}

#[test]
fn images_written_by_rbd_and_qemu_read_back_identically() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let expected = std::fs::read(&src).unwrap();
    let imported = unique("rbd-import");
    c.tool_ok("rbd", &["import", src.to_str().unwrap(), &imported]);
    let out = dir.path().join("out.raw");
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&imported),
        out.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == expected,
        "rbd import read back differently"
    );
    if have_qemu_img() {
        let by_qemu = unique("qemu-convert");
        let q = qemu_img(
            dir.path(),
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "raw",
                "src.raw",
                &c.name(&by_qemu),
            ],
        );
        assert_eq!(q.code, 0, "{q:#?}");
        rbdimg_ok(&[
            "convert",
            "-O",
            "raw",
            &c.name(&by_qemu),
            out.to_str().unwrap(),
        ]);
        assert!(
            std::fs::read(&out).unwrap() == expected,
            "qemu-img's image read back differently"
        );
    }
    // rbd -> rbd, also into a second pool, and from a snapshot name.
    c.tool_ok("rbd", &["snap", "create", &format!("{imported}@s1")]);
    let copy = format!("rbd2/{}", &unique("copy")[4..]);
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&format!("{imported}@s1")),
        &c.name(&copy),
    ]);
    assert!(c.export(&copy) == expected);
    c.assert_object_map_clean(&copy);
}

#[test]
fn snapshots_round_trip_with_rbd_and_qemu() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let original = std::fs::read(&src).unwrap();
    let image = unique("snap");
    let name = c.name(&image);
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "sp0", &name]);
    let ls = c.tool_ok("rbd", &["snap", "ls", &image]).stdout;
    assert!(ls.contains(" sp0 ") && ls.contains("48 MiB"), "{ls}");
    c.assert_object_map_clean(&image);
    c.assert_object_map_clean(&format!("{image}@sp0"));

    // Overwrite through librbd (rbd import --no-sparse of other data), then roll back.
    let other = raw_source(dir.path(), "other.raw", 48 << 20, &[(0, 9, 48 << 20)]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", other.to_str().unwrap(), &name]);
    assert!(
        c.export(&format!("{image}@sp0")) == original,
        "the snapshot changed"
    );
    c.assert_object_map_clean(&image);
    rbdimg_ok(&["snapshot", "-a", "sp0", &name]);
    assert!(
        c.export(&image) == original,
        "rollback did not restore the bytes"
    );
    c.assert_object_map_clean(&image);

    // A snapshot made by rbd is listed and applied by rbdimg, and the reverse for qemu-img.
    c.tool_ok("rbd", &["snap", "create", &format!("{image}@by-rbd")]);
    let listed = rbdimg_ok(&["snapshot", "-l", &name]).stdout;
    assert!(
        listed.contains("by-rbd") && listed.contains("sp0"),
        "{listed}"
    );
    if have_qemu_img() {
        assert_eq!(
            listed,
            qemu_img(dir.path(), &["snapshot", "-l", &name]).stdout
        );
    }
    let out = dir.path().join("snap.raw");
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&format!("{image}@by-rbd")),
        out.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&out).unwrap() == original);

    rbdimg_ok(&["snapshot", "-d", "sp0", &name]);
    rbdimg_ok(&["snapshot", "-d", "by-rbd", &name]);
    assert!(
        !c.tool_ok("rbd", &["snap", "ls", &image])
            .stdout
            .contains("sp0")
    );
    c.assert_object_map_clean(&image);
    let missing = rbdimg(&["snapshot", "-f", "raw", "-d", "sp0", &name]);
    assert_eq!(
        (missing.code, missing.stderr.trim_end()),
        (
            1,
            "rbdimg: Could not delete snapshot 'sp0': snapshot not found"
        )
    );
}

#[test]
fn namespaces_hold_ordinary_images() {
    let c = shared();
    let ns = unique("ns")[4..].to_string();
    c.tool_ok("rbd", &["namespace", "create", &format!("rbd/{ns}")]);
    let image = format!("rbd/{ns}/img");
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &c.name(&image),
    ]);
    rbdimg_ok(&["snapshot", "-c", "s", &c.name(&image)]);
    assert!(
        c.tool_ok("rbd", &["ls", &format!("rbd/{ns}")])
            .stdout
            .contains("img")
    );
    assert!(c.export(&image) == std::fs::read(&src).unwrap());
    assert!(
        c.tool_ok("rbd", &["snap", "ls", &image])
            .stdout
            .contains(" s ")
    );
    c.assert_object_map_clean(&image);
    let info = rbdimg_ok(&["info", &c.name(&image)]).stdout;
    assert!(info.contains(&format!("\"namespace\": \"{ns}\"")), "{info}");
}

#[test]
fn shrink_then_grow_reads_zeros() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let original = std::fs::read(&src).unwrap();
    let image = unique("resize");
    let name = c.name(&image);
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "before", &name]);
    let refused = rbdimg(&["resize", "-f", "raw", &name, "10M"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with("rbdimg: Use the --shrink option"),
        "{}",
        refused.stderr
    );
    rbdimg_ok(&["resize", "-f", "raw", "--shrink", &name, "10486272"]);
    rbdimg_ok(&["resize", "-f", "raw", &name, "64M"]);
    let now = c.export(&image);
    assert_eq!(now.len(), 64 << 20);
    let keep = (10 << 20) + 512;
    assert!(now[..keep] == original[..keep]);
    assert!(
        now[keep..].iter().all(|&b| b == 0),
        "data past the shrink point came back"
    );
    c.assert_object_map_clean(&image);
    // The snapshot taken before still has everything.
    assert!(c.export(&format!("{image}@before")) == original);
}
