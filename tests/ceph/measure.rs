//! `measure` with RBD sources next to qemu-img's rbd driver on a real
//! cluster: images rbdimg wrote, a snapshot, a clone (measured as its
//! parent snapshot is), a qcow2 inside an RBD image.

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
    let snap = c.name(&format!("{image}@s1"));
    let cases = |name: &str| -> Vec<Vec<String>> {
        [
            &["measure"][..],
            &["measure", "-O", "qcow2"],
            &["measure", "-O", "qcow2", "--output=json", "-f", "raw"],
            &["measure", "-O", "qcow2", "-l", "s1"],
        ]
        .iter()
        .map(|args| {
            args.iter()
                .copied()
                .chain([name])
                .map(String::from)
                .collect()
        })
        .collect()
    };
    for name in [c.name(&image), snap.clone(), c.name(&clone), c.name(&qcow2)] {
        for (i, args) in cases(&name).iter().enumerate() {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut ours = rbdimg(&args);
            ours.stderr = ours.stderr.replace("rbdimg:", "qemu-img:");
            // A clone measures as what its chain holds (its parent is its
            // backing file, rbdimg's deliberate difference; QEMU's rbd
            // driver calls a whole clone data): untouched, as its parent
            // snapshot measures under qemu-img.
            let oracle = match (name == c.name(&clone), i) {
                (true, 0..=2) => qemu_img(
                    d,
                    &cases(&snap)[i]
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ),
                _ => qemu_img(d, &args),
            };
            assert_eq!(ours, oracle, "{args:?}");
        }
    }
}
