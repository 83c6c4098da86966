//! Every pair of raw, qcow2, RBD on Ceph and RBD in the embedded store as
//! source and target: the result is identical by rbdimg's compare,
//! qemu-img's compare (where qemu-img can open both) and a full read-back;
//! RBD targets pass the object map checks, qcow2 targets `qemu-img check`.

use std::path::Path;

use super::{raw_source, rbdimg_ok, unique};
use crate::rbd::Backend;
use crate::util::{Oracle, qemu_img, require};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Raw,
    Qcow2,
    Ceph,
    Embedded,
}

/// Where an image is: its name, its `-f`/`-O` format, and for RBD kinds the
/// image (`pool/name`) and its backend.
struct Place<'a> {
    name: String,
    format: &'static str,
    rbd: Option<(String, &'a Backend)>,
}

fn place<'a>(backends: &'a [Backend; 2], dir: &Path, kind: Kind, label: &str) -> Place<'a> {
    let file = |ext: &str| {
        dir.join(format!("{label}.{ext}"))
            .to_string_lossy()
            .into_owned()
    };
    match kind {
        Kind::Raw => Place {
            name: file("raw"),
            format: "raw",
            rbd: None,
        },
        Kind::Qcow2 => Place {
            name: file("qcow2"),
            format: "qcow2",
            rbd: None,
        },
        Kind::Ceph | Kind::Embedded => {
            let backend = &backends[usize::from(kind == Kind::Embedded)];
            let image = unique(label);
            Place {
                name: backend.name(&image),
                format: "raw",
                rbd: Some((image, backend)),
            }
        }
    }
}

fn assert_identical(a: &Place, b: &Place) {
    let (x, y) = (&a.name, &b.name);
    let out = rbdimg_ok(&["compare", "-f", a.format, "-F", b.format, x, y]);
    assert_eq!(out.stdout, "Images are identical.\n", "{x} vs {y}");
    // qemu-img cannot open images in rbdimg's embedded store.
    let oracle = if x.starts_with("rbd:") || y.starts_with("rbd:") {
        Oracle::RbdDriver
    } else {
        Oracle::QemuImg
    };
    if !x.contains(":store=") && !y.contains(":store=") && require(oracle) {
        let q = qemu_img(
            Path::new("/"),
            &["compare", "-f", a.format, "-F", b.format, x, y],
        );
        assert_eq!(
            (q.code, q.stdout.as_str()),
            (0, "Images are identical.\n"),
            "qemu-img compare {x} {y}: {q:#?}"
        );
    }
}

#[test]
fn every_pair_of_formats_converts_identically() {
    let backends = [Backend::ceph(), Backend::embedded()];
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
    let original = Place {
        name: raw.to_string_lossy().into_owned(),
        format: "raw",
        rbd: None,
    };
    let kinds = [Kind::Raw, Kind::Qcow2, Kind::Ceph, Kind::Embedded];
    for from in kinds {
        let source = place(&backends, d, from, &format!("src-{from:?}"));
        rbdimg_ok(&[
            "convert",
            "-f",
            "raw",
            "-O",
            source.format,
            &original.name,
            &source.name,
        ]);
        for to in kinds {
            for extra in [&[][..], &["-m", "16", "-W"]] {
                let target = place(
                    &backends,
                    d,
                    to,
                    &format!("dst-{from:?}-{to:?}-{}", extra.len()),
                );
                let mut args = vec!["convert", "-f", source.format, "-O", target.format];
                args.extend_from_slice(extra);
                args.extend([source.name.as_str(), target.name.as_str()]);
                rbdimg_ok(&args);
                assert_identical(&original, &target);
                assert_identical(&source, &target);
                match (&target.rbd, to) {
                    (Some((image, backend)), _) => {
                        assert!(
                            backend.export(image) == expected,
                            "read-back of {from:?} -> {to:?}"
                        );
                        backend.object_map_check(image);
                    }
                    (None, Kind::Qcow2) if require(Oracle::QemuImg) => {
                        let q = qemu_img(d, &["check", &target.name]);
                        assert_eq!(q.code, 0, "qemu-img check: {q:#?}");
                    }
                    _ => {}
                }
            }
        }
    }
    // Compressed qcow2 out of RBD.
    let source = place(&backends, d, Kind::Ceph, "src-c");
    rbdimg_ok(&[
        "convert",
        "-f",
        "raw",
        "-O",
        "raw",
        &original.name,
        &source.name,
    ]);
    let target = Place {
        name: d.join("c.qcow2").to_string_lossy().into_owned(),
        format: "qcow2",
        rbd: None,
    };
    rbdimg_ok(&["convert", "-c", "-O", "qcow2", &source.name, &target.name]);
    assert_identical(&original, &target);
}
