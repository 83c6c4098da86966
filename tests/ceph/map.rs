//! `map` of RBD images next to qemu-img's rbd driver on a real cluster,
//! byte for byte: images rbdimg wrote, snapshots, images without
//! fast-diff, and a qcow2 inside an RBD image. A clone (which QEMU built
//! against librbd < 1.17 reports as all data at depth 0) maps its parent's
//! data at depth 1: the parent's own map, one level down.

use super::{rbdimg, rbdimg_ok, shared, unique};
use crate::rbd::source;
use crate::util::{Oracle, qemu_img, require};

#[test]
fn map_of_rbd_images_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = source(d);
    let src = src.to_str().unwrap();
    let (image, plain, qcow2) = (unique("map"), unique("map-plain"), unique("map-q"));
    let clone = unique("map-clone");
    rbdimg_ok(&["convert", "-O", "raw", src, &c.name(&image)]);
    rbdimg_ok(&["snapshot", "-c", "s1", &c.name(&image)]);
    c.tool_ok("rbd", &["snap", "protect", &format!("{image}@s1")]);
    c.tool_ok("rbd", &["clone", &format!("{image}@s1"), &clone]);
    // Objects written after the snapshot: the head differs from s1.
    let late = d.join("late.raw");
    crate::util::make_raw(&late, 48 << 20, &[(30 << 20, 7, 4096)]);
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        late.to_str().unwrap(),
        &c.name(&image),
    ]);
    c.tool_ok(
        "rbd",
        &[
            "create",
            "--size",
            "48M",
            "--image-feature",
            "layering",
            &plain,
        ],
    );
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        late.to_str().unwrap(),
        &c.name(&plain),
    ]);
    rbdimg_ok(&["convert", "-O", "qcow2", src, &c.name(&qcow2)]);

    let names = [
        c.name(&image),
        c.name(&format!("{image}@s1")),
        c.name(&plain),
    ];
    for name in &names {
        for output in ["--output=human", "--output=json"] {
            for window in [&[][..], &["-s", "5M", "-l", "20M"]] {
                let mut args = vec!["map", "-f", "raw", output];
                args.extend_from_slice(window);
                args.push(name);
                let ours = rbdimg(&args);
                assert_eq!(ours, qemu_img(d, &args), "{args:?}");
                assert_eq!(ours.code, 0, "{ours:#?}");
            }
        }
    }
    for args in [
        vec!["map", "--output=json", &c.name(&qcow2)],
        vec!["map", &c.name(&qcow2)],
        vec!["map", "-f", "raw", "--output=json", &c.name(&qcow2)],
    ] {
        assert_eq!(rbdimg(&args), qemu_img(d, &args), "{args:?}");
    }
    // A clone `rbd clone` made: its parent's map (as qemu-img shows it)
    // at depth 1.
    let (parent, clone) = (c.name(&format!("{image}@s1")), c.name(&clone));
    let parent = qemu_img(d, &["map", "-f", "raw", "--output=json", &parent]);
    let ours = rbdimg(&["map", "-f", "raw", "--output=json", &clone]);
    assert_eq!(ours.code, 0, "{ours:#?}");
    assert_eq!(
        ours.stdout,
        parent.stdout.replace("\"depth\": 0", "\"depth\": 1")
    );
    assert!(ours.stdout.contains("\"depth\": 1"), "{}", ours.stdout);
    // The object written last shows as data, at its own offset.
    let out = rbdimg_ok(&["map", "-f", "raw", "--output=json", &c.name(&image)]);
    assert!(
        out.stdout.contains(r#"{ "start": 29360128, "length": 4194304, "depth": 0, "present": true, "zero": false, "data": true, "compressed": false, "offset": 29360128}"#),
        "{}",
        out.stdout
    );
}
