//! Both directions on a real cluster: what rbdimg writes is what `rbd`,
//! librbd and QEMU read, and the reverse; `info` and `snapshot -l` print
//! what qemu-img prints for the same image. (Behaviour that must hold on
//! every store runs on both backends in tests/rbd.)

use super::{rbdimg, rbdimg_ok, shared, unique};
use crate::rbd::source;
use crate::util::{Oracle, qemu_img, require};

/// Our deliberate additions: disk size from the object map, and the store
/// an image lives in. Everything else must equal qemu-img's output.
pub(super) fn without_our_additions(text: &str) -> String {
    if text.trim_start().starts_with('{') {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        strip(&mut v);
        return serde_json::to_string_pretty(&v).unwrap();
    }
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            !l.starts_with("disk size:")
                && !l.starts_with("store: ")
                && !l.starts_with("Format specific information:")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Drops `actual-size` everywhere and the rbd node's `store`, with the
/// format-specific block it may leave empty.
fn strip(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.shift_remove("actual-size");
            if let Some(data) = m
                .get_mut("format-specific")
                .and_then(|f| f.get_mut("data"))
                .and_then(|d| d.as_object_mut())
            {
                data.shift_remove("store");
                if data.is_empty() {
                    m.shift_remove("format-specific");
                }
            }
            m.values_mut().for_each(strip);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}

#[test]
fn info_matches_qemu_img() {
    if !require(Oracle::RbdDriver) {
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
            without_our_additions(&ours.stdout),
            without_our_additions(&theirs.stdout),
            "rbdimg {full:?}"
        );
    }
    // The improvement itself: the allocated size from the object map.
    let json = rbdimg_ok(&["info", "--output=json", &c.name(&image)]).stdout;
    assert!(json.contains("\"actual-size\": 16777216"), "{json}");
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
    if require(Oracle::RbdDriver) {
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
fn clones_read_through_their_parent() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let parent = unique("parent");
    c.tool_ok("rbd", &["import", src.to_str().unwrap(), &parent]);
    c.tool_ok("rbd", &["snap", "create", &format!("{parent}@base")]);
    c.tool_ok("rbd", &["snap", "protect", &format!("{parent}@base")]);
    let child = unique("child");
    c.tool_ok("rbd", &["clone", &format!("{parent}@base"), &child]);
    if require(Oracle::RbdDriver) && require(Oracle::QemuIo) {
        // Writes into the child through librbd (copy-up of one object).
        let q = qemu_img(dir.path(), &["info", &c.name(&child)]);
        assert_eq!(q.code, 0, "{q:#?}");
        let io = std::process::Command::new("qemu-io")
            .args([
                "-f",
                "raw",
                "-c",
                "write -P 0x5a 4100k 64k",
                &c.name(&child),
            ])
            .output()
            .unwrap();
        assert!(io.status.success(), "{io:?}");
    }
    let out = dir.path().join("child.raw");
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&child),
        out.to_str().unwrap(),
    ]);
    assert!(
        std::fs::read(&out).unwrap() == c.export(&child),
        "clone read differs from rbd export"
    );
    // rbdimg writes into rbd's clone (copy-up), as librbd would.
    let mut expected = c.export(&child);
    let patch = crate::util::make_raw;
    let small = dir.path().join("small.raw");
    patch(&small, 8 << 20, &[(100, 0x77, 5000)]);
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        small.to_str().unwrap(),
        &format!(
            r#"json:{{"driver":"raw","size":{},"file":{{"driver":"rbd","pool":"rbd","image":"{}","conf":"{}"}}}}"#,
            8 << 20,
            child.strip_prefix("rbd/").unwrap(),
            c.conf()
        ),
    ]);
    expected[..8 << 20].copy_from_slice(&std::fs::read(&small).unwrap());
    assert!(
        c.export(&child) == expected,
        "rbd export after rbdimg's write"
    );
    c.assert_object_map_clean(&child);
}

#[test]
fn unsupported_features_are_refused_clearly() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.raw");
    // Journaling: readable, not writable.
    let journaled = unique("journal");
    c.tool_ok(
        "rbd",
        &[
            "create",
            "--size",
            "8M",
            "--image-feature",
            "layering,exclusive-lock,journaling",
            &journaled,
        ],
    );
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &c.name(&journaled),
        out.to_str().unwrap(),
    ]);
    let refused = rbdimg(&["resize", "-f", "raw", &c.name(&journaled), "16M"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("journaling, which rbdimg can only read"),
        "{}",
        refused.stderr
    );
    // Fancy striping: refused outright (objects are not laid out linearly).
    let striped = unique("striped");
    c.tool_ok(
        "rbd",
        &[
            "create",
            "--size",
            "8M",
            "--stripe-unit",
            "64K",
            "--stripe-count",
            "4",
            &striped,
        ],
    );
    let refused = rbdimg(&["info", &c.name(&striped)]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("fancy striping"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stderr.lines().count(), 1, "{}", refused.stderr);
}
