//! The committed fixtures are what fixtures/make-fixtures.sh makes, and
//! rbdimg reads them as qemu-img does.

use std::path::Path;
use std::process::Command;

use crate::util::{Twin, have_qemu_img};

const FIXTURES: &[&str] = &["pattern.raw"];

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"))
}

#[test]
fn fixtures_regenerate_identically() {
    if !have_qemu_img() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("bash")
        .arg(fixtures_dir().join("make-fixtures.sh"))
        .arg(dir.path())
        .status()
        .expect("run make-fixtures.sh");
    assert!(status.success());
    for name in FIXTURES {
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
    if !have_qemu_img() {
        return;
    }
    let twin = Twin::new(|dir| {
        for name in FIXTURES {
            std::fs::copy(fixtures_dir().join(name), dir.join(name)).unwrap();
        }
    });
    for name in FIXTURES {
        twin.assert_same(&["info", "-f", "raw", "--output=json", name]);
        twin.assert_same(&["convert", "-f", "raw", "-O", "raw", name, "copy.raw"]);
        twin.assert_same_file("copy.raw");
    }
}
