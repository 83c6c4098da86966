//! `measure` with RBD sources next to qemu-img's rbd driver on a real
//! cluster: images rbdimg wrote, a snapshot, a clone, a qcow2 inside an
//! RBD image.

use super::{rbdimg, rbdimg_ok, shared, unique};
use crate::rbd::source;
use crate::util::{Oracle, qemu_img, require};

#[test]
fn measure_of_rbd_sources_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = source(d);
    let src = src.to_str().unwrap();
    let (image, clone, qcow2) = (unique("ms"), unique("ms-clone"), unique("ms-q"));
    rbdimg_ok(&["convert", "-O", "raw", src, &c.name(&image)]);
    rbdimg_ok(&["snapshot", "-c", "s1", &c.name(&image)]);
    c.tool_ok("rbd", &["snap", "protect", &format!("{image}@s1")]);
    c.tool_ok("rbd", &["clone", &format!("{image}@s1"), &clone]);
    rbdimg_ok(&["convert", "-O", "qcow2", src, &c.name(&qcow2)]);
    for name in [
        c.name(&image),
        c.name(&format!("{image}@s1")),
        c.name(&clone),
        c.name(&qcow2),
    ] {
        for args in [
            vec!["measure", &name],
            vec!["measure", "-O", "qcow2", &name],
            vec![
                "measure",
                "-O",
                "qcow2",
                "--output=json",
                "-f",
                "raw",
                &name,
            ],
            vec!["measure", "-O", "qcow2", "-l", "s1", &name],
        ] {
            let mut ours = rbdimg(&args);
            ours.stderr = ours.stderr.replace("rbdimg:", "qemu-img:");
            assert_eq!(ours, qemu_img(d, &args), "{args:?}");
        }
    }
}
