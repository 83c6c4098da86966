//! The committed fixtures are what fixtures/make-fixtures.sh makes, and
//! rbdimg reads them as qemu-img does.

use std::path::Path;
use std::process::Command;

use crate::util::{Oracle, Twin, require};

/// Every committed image and its format.
const FIXTURES: &[(&str, &str)] = &[
    ("pattern.raw", "raw"),
    ("qcow2-v2.qcow2", "qcow2"),
    ("qcow2-v3.qcow2", "qcow2"),
    ("qcow2-zlib.qcow2", "qcow2"),
    ("qcow2-zstd.qcow2", "qcow2"),
    ("qcow2-extl2.qcow2", "qcow2"),
    ("qcow2-base.qcow2", "qcow2"),
    ("qcow2-mid.qcow2", "qcow2"),
    ("qcow2-top.qcow2", "qcow2"),
];

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

#[test]
fn fixtures_regenerate_identically() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(fixtures_dir().join("make-fixtures.sh"))
        .arg(dir.path())
        .status()
        .expect("run make-fixtures.sh");
    assert!(status.success());
    for (name, _) in FIXTURES {
        let committed = std::fs::read(fixtures_dir().join(name)).unwrap();
        let fresh = std::fs::read(dir.path().join(name)).unwrap();
        assert!(
            committed == fresh,
            "fixtures/{name} differs from what make-fixtures.sh makes"
        );
    }
}

#[test]
fn fixtures_read_like_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    // In a subdirectory, so that relative backing names must be resolved
    // against the image's directory, not the working directory.
    let twin = Twin::new(|dir| {
        std::fs::create_dir(dir.join("fixtures")).unwrap();
        for (name, _) in FIXTURES {
            std::fs::copy(fixtures_dir().join(name), dir.join("fixtures").join(name)).unwrap();
        }
    });
    for (name, format) in FIXTURES {
        let path = format!("fixtures/{name}");
        let copy = format!("{name}.raw");
        twin.assert_same(&["info", "-f", format, "--output=json", &path]);
        twin.assert_same(&["convert", "-f", format, "-O", "raw", &path, &copy]);
        twin.assert_same_file(&copy);
        if *format == "qcow2" {
            twin.assert_same(&["info", "-f", format, &path]);
            twin.assert_same(&["info", "-f", format, "--backing-chain", &path]);
            twin.assert_same(&["check", "-f", format, &path]);
        }
    }
}
