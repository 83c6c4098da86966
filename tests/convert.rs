//! `convert` between raw images against qemu-img: identical bytes, the same
//! sparseness, the same messages.

use crate::util::{Twin, have_qemu_img, make_raw, qemu_img, rbdimg, rbdimg_ok};

fn sources(dir: &std::path::Path) {
    // Data, a zero-filled but allocated run, and holes.
    make_raw(
        &dir.join("a.raw"),
        8 << 20,
        &[
            (0, 1, 5000),
            (1 << 20, 0, 1 << 20),
            (3 << 20, 0xee, 70000),
            (7 << 20, 2, 1),
        ],
    );
    make_raw(
        &dir.join("b.raw"),
        3 << 20 | 512,
        &[(12345, 3, 100), ((3 << 20) + 1, 4, 511)],
    );
    make_raw(&dir.join("junk.raw"), 16 << 20, &[(0, 0xff, 16 << 20)]);
}

#[test]
fn data_and_sparseness_match_qemu_img() {
    if !have_qemu_img() {
        return;
    }
    let twin = Twin::new(sources);
    let cases: &[(&[&str], &str)] = &[
        (
            &["convert", "-f", "raw", "-O", "raw", "a.raw", "out1.raw"],
            "out1.raw",
        ),
        (&["convert", "a.raw", "out2.raw"], "out2.raw"),
        (
            &["convert", "-S", "0", "-f", "raw", "a.raw", "out3.raw"],
            "out3.raw",
        ),
        (
            &["convert", "-S", "64k", "-f", "raw", "a.raw", "out4.raw"],
            "out4.raw",
        ),
        (
            &["convert", "-f", "raw", "a.raw", "b.raw", "a.raw", "cat.raw"],
            "cat.raw",
        ),
        (
            &[
                "convert", "-p", "-q", "-m", "16", "-W", "-f", "raw", "b.raw", "out5.raw",
            ],
            "out5.raw",
        ),
        (
            &[
                "convert", "-t", "unsafe", "-T", "none", "-f", "raw", "b.raw", "out6.raw",
            ],
            "out6.raw",
        ),
        (
            &[
                "convert", "-n", "-f", "raw", "-O", "raw", "a.raw", "junk.raw",
            ],
            "junk.raw",
        ),
    ];
    for (args, output) in cases {
        twin.assert_same(args);
        twin.assert_same_file(output);
        // Sparseness: the same data/hole map (disk size also counts the
        // filesystem's own metadata, which depends on physical layout).
        let map = ["map", "--output=json", "-f", "raw", output];
        assert_eq!(
            qemu_img(&twin.ours(), &map),
            qemu_img(&twin.theirs(), &map),
            "allocation of {output}"
        );
    }
}

#[test]
fn target_is_zero_skips_zero_ranges() {
    let dir = tempfile::tempdir().unwrap();
    sources(dir.path());
    make_raw(
        &dir.path().join("target.raw"),
        8 << 20,
        &[(3 << 20, 0x55, 4096)],
    );
    rbdimg_ok(
        dir.path(),
        &[
            "convert",
            "-n",
            "--target-is-zero",
            "-f",
            "raw",
            "-O",
            "raw",
            "a.raw",
            "target.raw",
        ],
    );
    let out = std::fs::read(dir.path().join("target.raw")).unwrap();
    let src = std::fs::read(dir.path().join("a.raw")).unwrap();
    // Data ranges were copied; the target's own bytes in source holes survive
    // because the caller promised they were zeros.
    assert_eq!(&out[..5000], &src[..5000]);
    assert_eq!(
        &out[3 << 20..(3 << 20) + 4096],
        &src[3 << 20..(3 << 20) + 4096]
    );
    assert_eq!(out[6 << 20], 0);
}

#[test]
fn errors_match_qemu_img() {
    if !have_qemu_img() {
        return;
    }
    let twin = Twin::new(sources);
    for args in [
        &["convert", "a.raw"][..],
        &["convert"],
        &["convert", "-m", "0", "a.raw", "x.raw"],
        &["convert", "-m", "17", "a.raw", "x.raw"],
        &["convert", "-m", "x", "a.raw", "x.raw"],
        &["convert", "-S", "foo", "a.raw", "x.raw"],
        &["convert", "-S", "1000", "a.raw", "x.raw"],
        &["convert", "-S", "32M", "a.raw", "x.raw"],
        &["convert", "-O", "foo", "a.raw", "x.raw"],
        &["convert", "-O", "raw", "-c", "a.raw", "x.raw"],
        &["convert", "-O", "raw", "-B", "b.raw", "a.raw", "x.raw"],
        &["convert", "--target-is-zero", "a.raw", "x.raw"],
        &["convert", "-n", "a.raw", "missing.raw"],
        &["convert", "-l", "snap", "-f", "raw", "a.raw", "x.raw"],
        &["convert", "-l", "snap", "a.raw", "b.raw", "x.raw"],
        &["convert", "-t", "bogus", "a.raw", "x.raw"],
        &["convert", "missing.raw", "x.raw"],
        &["convert", "-f", "raw", "a.raw", "/nonexistent/x.raw"],
        &["convert", "-O", "raw", "-o", "foo=1", "a.raw", "x.raw"],
    ] {
        let out = twin.assert_same(args);
        assert_eq!(out.code, 1, "{args:?}");
    }
}

#[test]
fn a_failed_convert_exits_nonzero() {
    let dir = tempfile::tempdir().unwrap();
    sources(dir.path());
    make_raw(&dir.path().join("small.raw"), 1 << 20, &[]);
    let out = rbdimg(
        dir.path(),
        &[
            "convert",
            "-n",
            "-f",
            "raw",
            "-O",
            "raw",
            "a.raw",
            "small.raw",
        ],
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("smaller than the source"),
        "{}",
        out.stderr
    );
}
