//! `convert` between raw images against qemu-img: identical bytes, the same
//! sparseness, the same messages.

use crate::util::{Oracle, Twin, make_raw, qemu_img, rbdimg, rbdimg_ok, require, sh};

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
    if !require(Oracle::QemuImg) {
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
    if !require(Oracle::QemuImg) {
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

/// Peak RSS (KiB) of a command, sampled from /proc while it runs.
fn peak_rss_kib(args: &[&str]) -> u64 {
    let mut child = std::process::Command::new(crate::util::RBDIMG)
        .args(args)
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Ok(status) = std::fs::read_to_string(&status_file)
            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak = peak.max(
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            );
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "rbdimg {args:?} failed");
            return peak;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn memory_is_bounded_by_the_window_not_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_raw(&d.join("small.raw"), 64 << 20, &[(0, 1, 64 << 20)]);
    make_raw(&d.join("large.raw"), 768 << 20, &[(0, 1, 768 << 20)]);
    let run = |m: &str, src: &str| {
        let out = d.join("out.raw");
        let _ = std::fs::remove_file(&out);
        peak_rss_kib(&[
            "convert",
            "-m",
            m,
            "-f",
            "raw",
            "-O",
            "raw",
            d.join(src).to_str().unwrap(),
            out.to_str().unwrap(),
        ])
    };
    let small = run("4", "small.raw");
    let large = run("4", "large.raw");
    let wide = run("16", "large.raw");
    // N x 2 MiB chunks plus a small constant; 12 times more data changes nothing.
    assert!(large < 4 * 2048 + 16 * 1024, "peak {large} KiB with -m 4");
    assert!(
        large < small + 4 * 1024,
        "peak grew with the image: {small} -> {large} KiB"
    );
    assert!(wide < 16 * 2048 + 16 * 1024, "peak {wide} KiB with -m 16");
}

#[test]
fn parallel_and_out_of_order_writes_give_identical_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sources(d);
    let src = d.join("a.raw");
    let expected = std::fs::read(&src).unwrap();
    for args in [&["-m", "1"][..], &["-m", "3"], &["-m", "16", "-W"], &["-W"]] {
        let out = d.join("out.raw");
        let _ = std::fs::remove_file(&out);
        let mut full = vec!["convert", "-f", "raw", "-O", "raw"];
        full.extend_from_slice(args);
        full.extend([src.to_str().unwrap(), out.to_str().unwrap()]);
        rbdimg_ok(d, &full);
        assert!(std::fs::read(&out).unwrap() == expected, "{args:?}");
    }
}

/// When several things are wrong, the first complaint is qemu-img's; and
/// no option is silently dropped (`-o` with `-n`, `-c` with preallocation,
/// `-T` on check).
#[test]
fn argument_checks_come_in_qemu_img_order() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("A"), 1 << 20, &[(0, 1, 4096)]);
        make_raw(&dir.join("bb"), 1 << 20, &[]);
    });
    for args in [
        &["convert", "-c"][..],
        &["convert", "-B", "x"],
        &["convert", "-O", "foo"],
        &["convert", "-T", "x", "-l", "s", "A", "A", "b"],
        &["convert", "-T", "x", "-O", "foo", "A", "b"],
        &["convert", "-T", "x", "-o", "help", "A", "b"],
        &["convert", "-c", "-l", "s", "A", "A", "b"],
        &["convert", "-l", "s", "missing1", "missing2", "b"],
        &["convert", "-l", "s", "-O", "foo", "A", "b"],
        &["convert", "-t", "x", "missing", "b"],
        &["convert", "-t", "x", "-B", "x", "A", "b"],
        &["convert", "-t", "x", "-O", "qcow2", "-o", "foo=1", "A", "b"],
        &["convert", "-o", "size=1", "-n", "A", "bb"],
        &["convert", "-o", "size=1", "-n"],
        &["convert", "-n", "-o", "help"],
        &["convert", "-O", "foo", "-n", "A", "bb"],
        &["convert", "-c", "-n", "-O", "foo", "A", "bb"],
        &["convert", "-c", "-n", "A", "bb"],
        &["convert", "-O", "qcow2", "-B", "x", "A", "A", "b"],
        &["convert", "-O", "qcow2", "-c", "-B", "x", "A", "A", "b"],
        &[
            "convert",
            "-O",
            "qcow2",
            "-c",
            "-o",
            "preallocation=full",
            "A",
            "b",
        ],
        &[
            "convert",
            "-O",
            "qcow2",
            "-c",
            "-o",
            "preallocation=metadata",
            "A",
            "b",
        ],
        &["convert", "-n", "-O", "qcow2", "-B", "x", "A", "bb"],
        &["check", "-T", "x", "A"],
        &["check", "-T", "x"],
        &["compare", "-T", "x", "missing", "missing"],
    ] {
        twin.assert_same(args);
    }
    // qemu-img prints this error but exits 0; rbdimg fails (a documented
    // difference: an error never exits 0).
    let (ours, theirs) = twin.run(&["convert", "-n", "--target-is-zero", "-B", "x", "A", "bb"]);
    assert_eq!((ours.code, theirs.code), (1, 0));
    assert_eq!(ours.stderr, theirs.stderr);
    // -B with -n: the target's backing provides what the source takes from
    // its own backing, so those ranges are left alone.
    let twin = Twin::new(|dir| {
        sh(
            dir,
            "qemu-img create -q -f qcow2 base.qcow2 4M && \
             qemu-io -f qcow2 -c 'write -P 1 0 4M' base.qcow2 >/dev/null && \
             qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && \
             qemu-io -f qcow2 -c 'write -P 2 1M 1M' -c 'write -z 3M 64k' top.qcow2 >/dev/null && \
             qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 dst.qcow2 && \
             qemu-io -f qcow2 -c 'write -P 3 0 4M' dst.qcow2 >/dev/null",
        )
    });
    twin.assert_same(&[
        "convert",
        "-n",
        "-B",
        "base.qcow2",
        "-O",
        "qcow2",
        "top.qcow2",
        "dst.qcow2",
    ]);
    let map = |dir| qemu_img(dir, &["map", "--output=json", "dst.qcow2"]);
    assert_eq!(map(&twin.ours()), map(&twin.theirs()));
    twin.assert_same(&[
        "compare",
        "-f",
        "qcow2",
        "-F",
        "qcow2",
        "top.qcow2",
        "dst.qcow2",
    ]);
}

#[test]
fn qcow2_targets_are_laid_out_in_order_on_every_run() {
    if !require(Oracle::QemuImg) {
        return;
    }
    // Chunks whose writes would race for the next free cluster if a later
    // one could start before an earlier one finished.
    let twin = Twin::new(|dir| {
        make_raw(
            &dir.join("src.raw"),
            16 << 20,
            &[
                (0, 1, 70000),
                (3 << 20, 2, 4096),
                ((5 << 20) + 4096, 3, 200_000),
                (9 << 20, 4, 3 << 20),
                ((15 << 20) + 512, 5, 512),
            ],
        );
    });
    for run in 0..12 {
        let out = format!("out{run}.qcow2");
        twin.assert_same(&["convert", "-O", "qcow2", "src.raw", &out]);
        twin.assert_same_file(&out);
    }
}
