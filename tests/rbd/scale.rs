//! 16 TiB images holding a little data: every command must walk the data,
//! not the virtual size, and get it right. Each command runs under a
//! generous time limit (a hang or an object-by-object walk of 4 million
//! objects fails it); how fast they are is the benchmark's business.

use std::path::Path;
use std::process::Command;

use super::{Backend, both_backends, raw_source, unique};
use crate::util::{Oracle, Outcome, RBDIMG, require};

const TIB: u64 = 1 << 40;
/// Where the data sits: inside one object, not at its start.
const AT: u64 = 5 * TIB + 12345;

/// rbdimg, killed after 5 minutes; must exit 0.
fn limited(args: &[&str]) -> Outcome {
    let out: Outcome = Command::new("timeout")
        .arg("300")
        .arg(RBDIMG)
        .args(args)
        .env_remove("RBDIMG_STORE")
        .output()
        .expect("run rbdimg")
        .into();
    assert_ne!(out.code, 124, "rbdimg {args:?} ran out of time");
    assert_eq!(out.code, 0, "rbdimg {args:?}: {out:#?}");
    out
}

/// An 8 TiB sparse raw file (the largest ext4 file) with 1 MiB at `AT`.
fn sparse_source(dir: &Path, name: &str, byte: u8) -> String {
    raw_source(dir, name, 8 * TIB, &[(AT, byte, 1 << 20)])
        .display()
        .to_string()
}

fn identical(out: &Outcome) {
    assert!(out.stdout.ends_with("Images are identical.\n"), "{out:#?}");
}

fn sixteen_tib_images_walk_their_data(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path(), "src.raw", 7);
    let image = unique("huge");
    let huge = b.name(&image);
    limited(&["create", "-q", "-f", "raw", &huge, "16T"]);
    // -n without --target-is-zero: the holes are zeroed, which must skip
    // the objects that do not exist.
    limited(&["convert", "-n", "-f", "raw", "-O", "raw", &src, &huge]);
    let check = limited(&["check", "-f", "rbd", &huge]);
    assert!(
        check.stdout.contains("1/4194304 = 0.00% allocated"),
        "{check:#?}"
    );
    let info = limited(&["info", "--output=json", &huge]);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!(info["actual-size"], 4u64 << 20);
    // Out to a local qcow2, to another RBD image, and compared every way.
    let qcow2 = dir.path().join("huge.qcow2");
    let qcow2 = qcow2.to_str().unwrap();
    limited(&["convert", "-f", "raw", "-O", "qcow2", &huge, qcow2]);
    assert!(std::fs::metadata(qcow2).unwrap().len() < 8 << 20);
    let copy = b.name(&unique("huge-copy"));
    limited(&["convert", "-f", "raw", "-O", "raw", &huge, &copy]);
    for (one, two) in [(&huge, &huge), (&huge, &copy), (&copy, &qcow2.to_string())] {
        identical(&limited(&["compare", one, two]));
    }
    // The 8 TiB source against the 16 TiB image: the rest must read as zeros.
    let mismatch = limited(&["compare", "-f", "raw", "-F", "raw", &src, &huge]);
    assert!(mismatch.stdout.starts_with("Warning: Image size mismatch!"));
    identical(&mismatch);
    if require(Oracle::QemuImg) {
        let out: Outcome = Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "qcow2", &src, qcow2])
            .output()
            .unwrap()
            .into();
        assert_eq!(out.code, 0, "qemu-img compare: {out:#?}");
    }
    // A snapshot, other data, a rollback; then a shrink past the data.
    let other = sparse_source(dir.path(), "other.raw", 9);
    limited(&["snapshot", "-c", "s1", &huge]);
    limited(&["convert", "-n", "-f", "raw", "-O", "raw", &other, &huge]);
    identical(&limited(&[
        "compare", "-f", "raw", "-F", "raw", &other, &huge,
    ]));
    limited(&["snapshot", "-a", "s1", &huge]);
    identical(&limited(&[
        "compare", "-f", "raw", "-F", "raw", &src, &huge,
    ]));
    limited(&["snapshot", "-d", "s1", &huge]);
    limited(&["resize", "-f", "raw", "--shrink", &huge, "5T"]);
    limited(&["resize", "-f", "raw", &huge, "16T"]);
    let empty = raw_source(dir.path(), "empty.raw", 8 * TIB, &[]);
    let empty = empty.to_str().unwrap();
    identical(&limited(&[
        "compare", "-f", "raw", "-F", "raw", empty, &huge,
    ]));
    let check = limited(&["check", "-f", "rbd", &huge]);
    assert!(
        check.stdout.starts_with("No errors were found"),
        "{check:#?}"
    );
}

/// Without an object map the data is found by one listing, and each
/// command that needs it says so once.
fn without_an_object_map_one_listing_finds_the_data(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = sparse_source(dir.path(), "src.raw", 7);
    let image = unique("huge-nomap");
    let huge = b.name(&image);
    limited(&[
        "create",
        "-q",
        "-f",
        "raw",
        "-o",
        "features=layering+exclusive-lock",
        &huge,
        "16T",
    ]);
    let warning = format!(
        "warning: image {} has no usable object map: listing the pool's objects to find its data, which is slower\n",
        image.rsplit('/').next().unwrap()
    );
    let convert = limited(&["convert", "-n", "-f", "raw", "-O", "raw", &src, &huge]);
    assert_eq!(convert.stderr.matches(&warning).count(), 1, "{convert:#?}");
    let compare = limited(&["compare", "-f", "raw", "-F", "raw", &src, &huge]);
    identical(&compare);
    assert_eq!(compare.stderr.matches(&warning).count(), 1, "{compare:#?}");
    let check = limited(&["check", "-f", "rbd", &huge]);
    assert!(
        check.stdout.contains("1/4194304 = 0.00% allocated"),
        "{check:#?}"
    );
}

both_backends!(
    sixteen_tib_images_walk_their_data,
    without_an_object_map_one_listing_finds_the_data
);
