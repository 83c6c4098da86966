//! Clones across tools on a real cluster: rbd's clones written and
//! flattened by rbdimg, rbdimg's clones read, written and flattened by rbd,
//! librbd and qemu-img's rbd driver; the clone format the cluster's min
//! compat client asks for; a missing parent named in the error.

use super::{CephCluster, rbdimg, rbdimg_ok, shared, unique};
use crate::rbd::Backend;
use crate::rbd::layering::{MIB, assert_bytes, golden, pattern, write_at};
use crate::util::{Oracle, qemu_img, require};

/// rbd's clone of `parent@base` in clone `format`.
fn rbd_clone(c: &CephCluster, parent: &str, format: u8) -> String {
    let child = unique("rbd-clone");
    let setting = format!("--rbd-default-clone-format={format}");
    c.tool_ok(
        "rbd",
        &["clone", &setting, &format!("{parent}@base"), &child],
    );
    child
}

#[test]
fn clones_made_by_rbd_are_written_and_flattened_by_rbdimg() {
    let c = shared();
    let b = Backend::ceph();
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(&b, dir.path());
    c.tool_ok("rbd", &["snap", "protect", &format!("{parent}@base")]);
    for format in [1, 2] {
        let child = rbd_clone(c, &parent, format);
        let info = rbdimg_ok(&["info", &c.name(&child)]).stdout;
        assert!(
            info.contains(&format!("backing file: rbd:{parent}@base")),
            "{info}"
        );
        let mut expected = original.clone();
        write_at(&b, &child, 7, &pattern(4096, 1), &mut expected);
        write_at(&b, &child, 20 * MIB + 4096, &vec![0; 8192], &mut expected);
        write_at(
            &b,
            &child,
            40 * MIB,
            &pattern(4 * MIB as usize, 2),
            &mut expected,
        );
        assert_bytes(&b, &child, &expected);
        c.assert_object_map_clean(&child);
        rbdimg_ok(&["rebase", "-b", "", &c.name(&child)]);
        assert_bytes(&b, &child, &expected);
        c.assert_object_map_clean(&child);
        let info = c.tool_ok("rbd", &["info", &child]).stdout;
        assert!(!info.contains("parent:"), "{info}");
        assert!(!info.contains("clone-child"), "{info}");
        let children = c.tool_ok("rbd", &["children", &format!("{parent}@base")]);
        assert!(children.stdout.trim().is_empty(), "{children:#?}");
    }
}

#[test]
fn clones_made_by_rbdimg_are_ordinary_clones_to_rbd_and_qemu() {
    let c = shared();
    let b = Backend::ceph();
    let dir = tempfile::tempdir().unwrap();
    let (parent, original) = golden(&b, dir.path());
    for format in [1, 2] {
        let child = unique("our-clone");
        rbdimg_ok(&[
            "create",
            "-f",
            "raw",
            "-b",
            &c.name(&format!("{parent}@base")),
            "-F",
            "raw",
            &format!("{}:rbd_default_clone_format={format}", c.name(&child)),
        ]);
        let info = c.tool_ok("rbd", &["info", &child]).stdout;
        assert!(info.contains(&format!("parent: {parent}@base")), "{info}");
        assert!(info.contains("overlap: 48 MiB"), "{info}");
        assert_eq!(
            info.contains("op_features: clone-child"),
            format == 2,
            "{info}"
        );
        let snaps = c.tool_ok("rbd", &["snap", "ls", &parent]).stdout;
        assert!(snaps.contains("yes"), "v1 protects the snapshot: {snaps}");
        let children = c.tool_ok("rbd", &["children", &format!("{parent}@base")]);
        assert!(children.stdout.lines().any(|l| l == child), "{children:#?}");
        assert!(c.export(&child) == original);
        let mut expected = original.clone();
        write_at(&b, &child, 5 * MIB + 3, &pattern(4096, 3), &mut expected);
        if require(Oracle::RbdDriver) && require(Oracle::QemuIo) {
            // qemu-img's rbd driver reads the clone as rbdimg does ...
            let out = dir.path().join("q.raw");
            let q = qemu_img(
                dir.path(),
                &[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "raw",
                    &c.name(&child),
                    out.to_str().unwrap(),
                ],
            );
            assert_eq!(q.code, 0, "{q:#?}");
            assert!(std::fs::read(&out).unwrap() == expected);
            // ... and its writes (librbd's copy-up) read back through rbdimg.
            let io = std::process::Command::new("qemu-io")
                .args(["-f", "raw", "-c", "write -P 0x5a 12M 64k", &c.name(&child)])
                .output()
                .unwrap();
            assert!(io.status.success(), "{io:?}");
            expected[12 << 20..(12 << 20) + (64 << 10)].fill(0x5a);
            let back = dir.path().join("back.raw");
            rbdimg_ok(&[
                "convert",
                "-O",
                "raw",
                &c.name(&child),
                back.to_str().unwrap(),
            ]);
            assert!(std::fs::read(&back).unwrap() == expected);
        }
        c.assert_object_map_clean(&child);
        // rbd flattens it like one of its own.
        c.tool_ok("rbd", &["flatten", &child]);
        assert!(c.export(&child) == expected);
        let info = rbdimg_ok(&["info", &c.name(&child)]).stdout;
        assert!(!info.contains("backing file"), "{info}");
        let children = c.tool_ok("rbd", &["children", &format!("{parent}@base")]);
        assert!(
            !children.stdout.lines().any(|l| l == child),
            "{children:#?}"
        );
    }
    // The v2 parent snapshot goes to the trash under rbdimg's clone, and
    // librbd's flatten of that clone removes it.
    rbdimg_ok(&["snapshot", "-c", "v2", &c.name(&parent)]);
    let child = unique("our-clone-v2");
    rbdimg_ok(&[
        "create",
        "-f",
        "raw",
        "-b",
        &c.name(&format!("{parent}@v2")),
        "-F",
        "raw",
        &format!("{}:rbd_default_clone_format=2", c.name(&child)),
    ]);
    c.tool_ok("rbd", &["snap", "rm", &format!("{parent}@v2")]);
    let all = c.tool_ok("rbd", &["snap", "ls", "--all", &parent]).stdout;
    assert!(all.contains("trash (v2)"), "{all}");
    assert!(c.export(&child) == original);
    c.tool_ok("rbd", &["flatten", &child]);
    let all = c.tool_ok("rbd", &["snap", "ls", "--all", &parent]).stdout;
    assert!(!all.contains("trash"), "{all}");
}

/// `rbd_default_clone_format=auto`: v1 while the cluster lets pre-mimic
/// clients in (a fresh Ceph 16 cluster does), v2 once it requires mimic.
#[test]
fn the_clone_format_follows_the_min_compat_client() {
    let c = CephCluster::start("memstore", 1);
    let dir = tempfile::tempdir().unwrap();
    let src = crate::rbd::source(dir.path());
    c.tool_ok("rbd", &["import", src.to_str().unwrap(), "rbd/golden"]);
    c.tool_ok("rbd", &["snap", "create", "rbd/golden@base"]);
    let clone = |child: &str| {
        rbdimg_ok(&[
            "create",
            "-f",
            "raw",
            "-b",
            &c.name("rbd/golden@base"),
            "-F",
            "raw",
            &c.name(child),
        ])
    };
    let out = clone("rbd/v1");
    assert!(
        out.stderr.contains("protected snapshot rbd/golden@base"),
        "{out:#?}"
    );
    let info = c.tool_ok("rbd", &["info", "rbd/v1"]).stdout;
    assert!(!info.contains("clone-child"), "{info}");
    c.tool_ok("ceph", &["osd", "set-require-min-compat-client", "mimic"]);
    c.tool_ok("rbd", &["snap", "create", "rbd/golden@second"]);
    let out = rbdimg_ok(&[
        "create",
        "-f",
        "raw",
        "-b",
        &c.name("rbd/golden@second"),
        "-F",
        "raw",
        &c.name("rbd/v2"),
    ]);
    assert!(!out.stderr.contains("protected"), "{out:#?}");
    let info = c.tool_ok("rbd", &["info", "rbd/v2"]).stdout;
    assert!(info.contains("op_features: clone-child"), "{info}");
    let snaps = c.tool_ok("rbd", &["snap", "ls", "rbd/golden"]).stdout;
    let second = snaps.lines().find(|l| l.contains("second")).unwrap();
    assert!(!second.contains("yes"), "{snaps}");
}

#[test]
fn a_missing_parent_is_named() {
    let c = shared();
    let b = Backend::ceph();
    let dir = tempfile::tempdir().unwrap();
    let (parent, _) = golden(&b, dir.path());
    let child = unique("orphan");
    rbdimg_ok(&[
        "create",
        "-f",
        "raw",
        "-b",
        &c.name(&format!("{parent}@base")),
        "-F",
        "raw",
        &format!("{}:rbd_default_clone_format=2", c.name(&child)),
    ]);
    let id = c
        .tool_ok(
            "rados",
            &["-p", "rbd", "get", &format!("rbd_id.{}", &parent[4..]), "-"],
        )
        .stdout;
    let id = id.get(4..).unwrap_or_default().to_string();
    c.tool_ok("rados", &["-p", "rbd", "rm", &format!("rbd_header.{id}")]);
    let out = rbdimg(&["info", &c.name(&child)]);
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(out.stderr.contains(&parent[4..]), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}
