//! `compare` against qemu-img: messages, offsets and exit codes.

use crate::util::{Oracle, Twin, make_raw, require};

#[test]
fn compare_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("a.raw"), 4 << 20, &[(1 << 20, 7, 65536)]);
        make_raw(&dir.join("a2.raw"), 4 << 20, &[(1 << 20, 7, 65536)]);
        make_raw(
            &dir.join("b.raw"),
            4 << 20,
            &[(1 << 20, 7, 65536), (2 << 20, 9, 512)],
        );
        make_raw(
            &dir.join("odd.raw"),
            4 << 20,
            &[(1 << 20, 7, 65536), ((3 << 20) + 700, 1, 1)],
        );
        make_raw(&dir.join("big.raw"), 8 << 20, &[(1 << 20, 7, 65536)]);
        make_raw(
            &dir.join("bigger.raw"),
            8 << 20,
            &[(1 << 20, 7, 65536), (6 << 20, 3, 4096)],
        );
        make_raw(
            &dir.join("zeros.raw"),
            4 << 20,
            &[(1 << 20, 7, 65536), (2 << 20, 0, 1 << 20)],
        );
    });
    for args in [
        &["compare", "a.raw", "a2.raw"][..],
        &["compare", "-f", "raw", "-F", "raw", "a.raw", "a2.raw"],
        &["compare", "a.raw", "b.raw"],
        &["compare", "-q", "a.raw", "b.raw"],
        &["compare", "a.raw", "odd.raw"],
        &["compare", "a.raw", "zeros.raw"],
        &["compare", "a.raw", "big.raw"],
        &["compare", "big.raw", "a.raw"],
        &["compare", "-s", "a.raw", "big.raw"],
        &["compare", "a.raw", "bigger.raw"],
        &["compare", "bigger.raw", "a.raw"],
        &["compare", "a.raw"],
        &["compare", "a.raw", "b.raw", "a2.raw"],
        &["compare", "a.raw", "nonexist.raw"],
        &["compare", "nonexist.raw", "a.raw"],
        &["compare", "-T", "bogus", "a.raw", "b.raw"],
        &["compare", "--bogus", "a.raw", "b.raw"],
    ] {
        twin.assert_same(args);
    }
}
