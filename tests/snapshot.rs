//! `snapshot` on raw images: qemu-img's messages for a format without them.

use crate::util::{Oracle, Twin, make_raw, require};

#[test]
fn raw_has_no_snapshots_like_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("a.raw"), 1 << 20, &[]));
    for args in [
        &["snapshot", "-l", "a.raw"][..],
        &["snapshot", "a.raw"],
        &["snapshot", "-f", "raw", "-c", "s1", "a.raw"],
        &["snapshot", "-f", "raw", "-a", "s1", "a.raw"],
        &["snapshot", "-f", "raw", "-d", "s1", "a.raw"],
        &["snapshot", "-l", "-c", "s1", "a.raw"],
        &["snapshot", "-l"],
        &["snapshot", "-l", "missing.raw"],
    ] {
        twin.assert_same(args);
    }
    twin.assert_same_file("a.raw");
}

#[test]
fn raw_has_no_check_like_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("a.raw"), 1 << 20, &[]));
    for args in [
        &["check", "-f", "raw", "a.raw"][..],
        &["check", "--output=json", "-f", "raw", "a.raw"],
        &["check", "-r", "bogus", "-f", "raw", "a.raw"],
        &["check", "missing.raw"],
    ] {
        twin.assert_same(args);
    }
}
