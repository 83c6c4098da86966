//! Every pair of raw, qcow2 and RBD as source and target: the result is
//! identical by rbdimg's compare, qemu-img's compare and `rbd export`;
//! RBD targets pass `rbd object-map check`, qcow2 targets `qemu-img check`.

use std::path::Path;

use super::{CephCluster, raw_source, rbdimg_ok, shared, unique};
use crate::util::{have_qemu_img, qemu_img};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Raw,
    Qcow2,
    Rbd,
}

/// A place an image can be, with its name and `-f` format.
fn location(c: &CephCluster, dir: &Path, kind: Kind, label: &str) -> (String, &'static str) {
    match kind {
        Kind::Raw => (
            dir.join(format!("{label}.raw"))
                .to_string_lossy()
                .into_owned(),
            "raw",
        ),
        Kind::Qcow2 => (
            dir.join(format!("{label}.qcow2"))
                .to_string_lossy()
                .into_owned(),
            "qcow2",
        ),
        Kind::Rbd => (c.name(&unique(label)), "raw"),
    }
}

fn assert_identical(a: (&str, &str), b: (&str, &str)) {
    let out = rbdimg_ok(&["compare", "-f", a.1, "-F", b.1, a.0, b.0]);
    assert_eq!(out.stdout, "Images are identical.\n", "{a:?} vs {b:?}");
    if have_qemu_img() {
        let q = qemu_img(Path::new("/"), &["compare", "-f", a.1, "-F", b.1, a.0, b.0]);
        assert_eq!(
            (q.code, q.stdout.as_str()),
            (0, "Images are identical.\n"),
            "qemu-img compare {a:?} {b:?}: {q:#?}"
        );
    }
}

fn rbd_image(name: &str) -> &str {
    name.strip_prefix("rbd:")
        .and_then(|n| n.split(":conf=").next())
        .unwrap()
}

#[test]
fn every_pair_of_formats_converts_identically() {
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let raw = raw_source(
        d,
        "data.raw",
        40 << 20,
        &[
            (0, 1, 70_000),
            (9 << 20, 2, 5 << 20),
            ((40 << 20) - 4096, 3, 4096),
        ],
    );
    let expected = std::fs::read(&raw).unwrap();
    let raw_name = raw.to_string_lossy().into_owned();
    let kinds = [Kind::Raw, Kind::Qcow2, Kind::Rbd];
    for from in kinds {
        let source = location(c, d, from, &format!("src-{from:?}"));
        rbdimg_ok(&["convert", "-f", "raw", "-O", source.1, &raw_name, &source.0]);
        for to in kinds {
            for extra in [&[][..], &["-m", "16", "-W"]] {
                let target = location(c, d, to, &format!("dst-{from:?}-{to:?}-{}", extra.len()));
                let mut args = vec!["convert", "-f", source.1, "-O", target.1];
                args.extend_from_slice(extra);
                args.extend([source.0.as_str(), target.0.as_str()]);
                rbdimg_ok(&args);
                assert_identical((&raw_name, "raw"), (&target.0, target.1));
                assert_identical((&source.0, source.1), (&target.0, target.1));
                match to {
                    Kind::Rbd => {
                        let image = rbd_image(&target.0);
                        assert!(c.export(image) == expected, "rbd export of {from:?} -> rbd");
                        c.assert_object_map_clean(image);
                    }
                    Kind::Qcow2 if have_qemu_img() => {
                        let q = qemu_img(d, &["check", &target.0]);
                        assert_eq!(q.code, 0, "qemu-img check: {q:#?}");
                    }
                    _ => {}
                }
            }
        }
    }
    // Compressed qcow2 out of RBD.
    let source = location(c, d, Kind::Rbd, "src-c");
    rbdimg_ok(&["convert", "-f", "raw", "-O", "raw", &raw_name, &source.0]);
    let target = d.join("c.qcow2").to_string_lossy().into_owned();
    rbdimg_ok(&["convert", "-c", "-O", "qcow2", &source.0, &target]);
    assert_identical((&raw_name, "raw"), (&target, "qcow2"));
}
