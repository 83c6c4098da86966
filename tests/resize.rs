//! `resize` of raw images against qemu-img, including its argv quirk (the
//! size is the last argument, so "-512" is a size, not an option).

use crate::util::{Oracle, Twin, make_raw, rbdimg_ok, require};

#[test]
fn resize_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(
            &dir.join("a.raw"),
            1 << 20,
            &[(0, 7, 4096), (1 << 19, 9, 4096)],
        )
    });
    for args in [
        &["resize", "-f", "raw", "a.raw", "+1M"][..],
        &["resize", "a.raw", "+512"],
        &["resize", "-f", "raw", "a.raw", "-512"],
        &["resize", "-f", "raw", "a.raw", "--", "-512"],
        &["resize", "-f", "raw", "--shrink", "a.raw", "-512"],
        &["resize", "-f", "raw", "--shrink", "a.raw", "600K"],
        &["resize", "-f", "raw", "a.raw", "4M"],
        &["resize", "-q", "-f", "raw", "a.raw", "+1M"],
        &[
            "resize",
            "-f",
            "raw",
            "--preallocation=falloc",
            "a.raw",
            "+1M",
        ],
        &[
            "resize",
            "-f",
            "raw",
            "--preallocation=full",
            "a.raw",
            "+64K",
        ],
        &[
            "resize",
            "-f",
            "raw",
            "--preallocation=bogus",
            "a.raw",
            "+1M",
        ],
        &[
            "resize",
            "-f",
            "raw",
            "--shrink",
            "--preallocation=full",
            "a.raw",
            "-64K",
        ],
        &["resize", "-f", "raw", "a.raw", "10E"],
        &["resize", "-f", "raw", "a.raw", "1Q"],
        &["resize", "-f", "raw", "--shrink", "a.raw", "0"],
        &["resize", "-f", "raw", "--shrink", "a.raw", "-100M"],
        &["resize", "a.raw"],
        &["resize", "missing.raw", "1M"],
    ] {
        twin.assert_same(args);
        twin.assert_same_file("a.raw");
    }
}

#[test]
fn shrink_then_grow_reads_zeros() {
    let dir = tempfile::tempdir().unwrap();
    make_raw(&dir.path().join("a.raw"), 1 << 20, &[(1 << 19, 9, 1 << 19)]);
    rbdimg_ok(
        dir.path(),
        &["resize", "-f", "raw", "--shrink", "a.raw", "512K"],
    );
    rbdimg_ok(dir.path(), &["resize", "-f", "raw", "a.raw", "1M"]);
    let data = std::fs::read(dir.path().join("a.raw")).unwrap();
    assert_eq!(data.len(), 1 << 20);
    assert!(data[1 << 19..].iter().all(|&b| b == 0));
}
