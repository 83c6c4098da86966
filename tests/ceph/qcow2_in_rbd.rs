//! qcow2 inside RBD images next to qemu-img's own rbd driver on a real
//! cluster: each tool reads, checks and snapshots what the other wrote, the
//! RBD images end up the same size, and `info`, `snapshot -l` and the
//! allocation map print the same.

use super::interop::without_our_additions;
use super::{rbdimg_ok, shared, unique};
use crate::rbd::source;
use crate::util::{Outcome, have_qemu_img, qemu_img};

fn qemu_ok(dir: &std::path::Path, args: &[&str]) -> Outcome {
    let out = qemu_img(dir, args);
    assert_eq!(out.code, 0, "qemu-img {args:?}: {out:#?}");
    out
}

/// The size of the RBD image itself, as `rbd info` reports it.
fn rbd_size(image: &str) -> u64 {
    let out = shared().tool_ok("rbd", &["info", "--format", "json", image]);
    let info: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    info["size"].as_u64().unwrap()
}

#[test]
fn qemu_img_and_rbdimg_share_qcow2_images_in_rbd() {
    assert!(
        have_qemu_img() || std::env::var_os("CI").is_none(),
        "qemu-img is missing under CI"
    );
    if !have_qemu_img() {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = source(d);
    let src = src.to_str().unwrap();
    let (ours, theirs) = (unique("q2-ours"), unique("q2-theirs"));
    let (our_name, their_name) = (c.name(&ours), c.name(&theirs));

    // create: the same line, the same RBD image (size 0, grown by the
    // qcow2's own writes), the same description by both tools.
    let (our_new, their_new) = (unique("q2-ours-new"), unique("q2-theirs-new"));
    let a = rbdimg_ok(&["create", "-f", "qcow2", &c.name(&our_new), "1G"]);
    let b = qemu_ok(d, &["create", "-f", "qcow2", &c.name(&their_new), "1G"]);
    assert_eq!(
        a.stdout.replace(&c.name(&our_new), "X"),
        b.stdout.replace(&c.name(&their_new), "X")
    );
    assert_eq!(rbd_size(&our_new), rbd_size(&their_new));
    for name in [c.name(&our_new), c.name(&their_new)] {
        for output in ["--output=human", "--output=json"] {
            let args = ["info", output, name.as_str()];
            assert_eq!(
                without_our_additions(&rbdimg_ok(&args).stdout),
                without_our_additions(&qemu_ok(d, &args).stdout),
                "{args:?}"
            );
        }
        qemu_ok(d, &["check", &name]);
    }

    // convert into RBD by each tool; each reads, checks and compares the other's.
    rbdimg_ok(&["convert", "-O", "qcow2", src, &our_name]);
    qemu_ok(d, &["convert", "-O", "qcow2", src, &their_name]);
    assert_eq!(rbd_size(&ours), rbd_size(&theirs));
    for name in [&our_name, &their_name] {
        let q = qemu_ok(d, &["check", name]);
        assert!(
            q.stdout.starts_with("No errors were found on the image."),
            "{q:#?}"
        );
        let r = rbdimg_ok(&["check", name]);
        assert_eq!(r.stdout, q.stdout);
        qemu_ok(d, &["compare", "-f", "raw", src, name]);
        rbdimg_ok(&["compare", "-f", "raw", src, name]);
        for args in [
            vec!["info"],
            vec!["info", "--output=json"],
            vec!["info", "-f", "raw"],
        ] {
            let mut full = args.clone();
            full.push(name);
            assert_eq!(
                without_our_additions(&rbdimg_ok(&full).stdout),
                without_our_additions(&qemu_ok(d, &full).stdout),
                "{full:?}"
            );
        }
        let back = d.join("back.raw");
        rbdimg_ok(&["convert", "-O", "raw", name, back.to_str().unwrap()]);
        assert!(std::fs::read(&back).unwrap() == std::fs::read(src).unwrap());
    }
    // Allocation: the same guest ranges are data and zeros (where the
    // clusters land in the file depends on which parallel write came first).
    let guest_map = |name: &str| {
        let out = qemu_ok(d, &["map", "--output=json", name]).stdout;
        let extents: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
        // Without host offsets, neighbours of one kind are one extent.
        let mut map: Vec<serde_json::Value> = Vec::new();
        for mut extent in extents {
            extent.as_object_mut().unwrap().shift_remove("offset");
            let kind = |e: &serde_json::Value| {
                (e["present"].clone(), e["zero"].clone(), e["data"].clone())
            };
            match map.last_mut() {
                Some(last) if kind(last) == kind(&extent) => {
                    let len = last["length"].as_u64().unwrap() + extent["length"].as_u64().unwrap();
                    last["length"] = len.into();
                }
                _ => map.push(extent),
            }
        }
        map
    };
    assert_eq!(guest_map(&our_name), guest_map(&their_name));

    // Internal snapshots made by one tool are the other's too.
    rbdimg_ok(&["snapshot", "-c", "snap-1", &their_name]);
    qemu_ok(d, &["snapshot", "-c", "snap-2", &our_name]);
    for name in [&our_name, &their_name] {
        let strip_dates = |t: &str| {
            t.lines()
                .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
                .collect::<Vec<_>>()
        };
        let q = qemu_ok(d, &["snapshot", "-l", name]).stdout;
        assert_eq!(
            strip_dates(&rbdimg_ok(&["snapshot", "-l", name]).stdout),
            strip_dates(&q)
        );
    }
    assert!(c.tool_ok("rbd", &["snap", "ls", &ours]).stdout.is_empty());
    rbdimg_ok(&["snapshot", "-d", "snap-2", &our_name]);
    qemu_ok(d, &["snapshot", "-d", "snap-1", &their_name]);

    // resize by one tool, checked by the other.
    rbdimg_ok(&["resize", &our_name, "+64M"]);
    qemu_ok(d, &["resize", &their_name, "+64M"]);
    for name in [&our_name, &their_name] {
        let q = qemu_ok(d, &["check", name]);
        assert!(
            q.stdout.starts_with("No errors were found on the image."),
            "{q:#?}"
        );
        let info = qemu_ok(d, &["info", name]).stdout;
        assert!(
            info.contains("virtual size: 112 MiB (117440512 bytes)"),
            "{info}"
        );
    }
    assert_eq!(rbd_size(&ours), rbd_size(&theirs));
    c.assert_object_map_clean(&ours);
}
