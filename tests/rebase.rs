//! `rebase` against qemu-img: every option, the error paths, and the
//! images both leave behind (byte for byte where qemu-img's layout is
//! deterministic; `-c` writes compressed clusters in a parallel order).

use std::path::Path;

use crate::util::{Oracle, Twin, prepare, require};

/// Relative backing names in a subdirectory: raw base, v2 and v3 qcow2
/// images over it, one with extended L2 entries, an image larger than its
/// backing file (zeros past the old end must be kept), a v3 chain.
const SETUP: &str = "mkdir sub && \
    qemu-img create -q -f raw sub/base.raw 2M && \
    qemu-io -f raw -c 'write -P 0x11 0 2M' sub/base.raw >/dev/null && \
    qemu-img create -q -f qcow2 -o compat=0.10 sub/mid.qcow2 6M && \
    qemu-io -f qcow2 -c 'write -P 0x11 0 512k' -c 'write -P 0x33 3M 64k' sub/mid.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o compat=0.10 -b base.raw -F raw sub/top.qcow2 6M && \
    qemu-io -f qcow2 -c 'write -P 0x44 128k 64k' sub/top.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o extended_l2=on -b base.raw -F raw sub/el2.qcow2 6M && \
    qemu-io -f qcow2 -c 'write -P 0x44 130k 4k' sub/el2.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 base3.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -z 2M 64k' base3.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -b base3.qcow2 -F qcow2 top3.qcow2 && \
    qemu-io -f qcow2 -c 'write -P 2 64k 64k' top3.qcow2 >/dev/null && \
    qemu-img create -q -f raw plain.raw 1M";

/// The files every case compares afterwards.
const IMAGES: &[&str] = &[
    "sub/base.raw",
    "sub/mid.qcow2",
    "sub/top.qcow2",
    "sub/el2.qcow2",
    "base3.qcow2",
    "top3.qcow2",
    "plain.raw",
];

fn case(setup: &Path, args: &[&str], exact: bool) {
    let twin = Twin::copy_of(setup);
    twin.assert_same(args);
    for name in IMAGES {
        let compressed = args.contains(&"-c") || args.contains(&"--compress");
        twin.assert_same_image(name, exact || !compressed);
    }
}

#[test]
fn safe_and_unsafe_rebases_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        // Safe mode: what differs is copied, v2 and extended L2 alike.
        &["rebase", "-b", "mid.qcow2", "-F", "qcow2", "sub/top.qcow2"],
        &["rebase", "-b", "", "sub/top.qcow2"],
        &["rebase", "-b", "mid.qcow2", "-F", "qcow2", "sub/el2.qcow2"],
        &["rebase", "-b", "", "sub/el2.qcow2"],
        &["rebase", "-b", "", "top3.qcow2"],
        &["rebase", "-b", "sub/base.raw", "-F", "raw", "top3.qcow2"],
        // A standalone image gets a backing file: zeros where it had none.
        &["rebase", "-b", "mid.qcow2", "-F", "qcow2", "base3.qcow2"],
        // Onto an image already in the chain: it is reused as opened.
        &["rebase", "-b", "base.raw", "-F", "raw", "sub/top.qcow2"],
        &["rebase", "-b", "base.raw", "-F", "qcow2", "sub/top.qcow2"],
        // Unsafe mode: only the header.
        &[
            "rebase",
            "-u",
            "-b",
            "mid.qcow2",
            "-F",
            "qcow2",
            "sub/top.qcow2",
        ],
        &[
            "rebase",
            "-u",
            "-b",
            "gone.qcow2",
            "-F",
            "qcow2",
            "sub/top.qcow2",
        ],
        &["rebase", "-u", "sub/top.qcow2"],
        &["rebase", "-u", "-b", "", "top3.qcow2"],
        // Long names, cache modes, -q, -U, --image-opts.
        &[
            "rebase",
            "--backing",
            "mid.qcow2",
            "--backing-format",
            "qcow2",
            "--cache",
            "none",
            "--backing-cache",
            "writethrough",
            "--force-share",
            "--quiet",
            "sub/top.qcow2",
        ],
        &[
            "rebase",
            "--backing-unsafe",
            "--format",
            "qcow2",
            "sub/el2.qcow2",
        ],
        &["rebase", "-t", "unsafe", "-b", "", "sub/top.qcow2"],
        &[
            "rebase",
            "--image-opts",
            "-b",
            "",
            "driver=qcow2,file.filename=top3.qcow2",
        ],
        // -c: the copies compressed.
        &[
            "rebase",
            "-c",
            "-b",
            "mid.qcow2",
            "-F",
            "qcow2",
            "sub/top.qcow2",
        ],
        &["rebase", "--compress", "-b", "", "top3.qcow2"],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args, false);
    }
}

#[test]
fn rebase_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["rebase"],
        &["rebase", "sub/top.qcow2"],
        &["rebase", "-b", "x", "a", "b"],
        &["rebase", "-b", "", "missing.qcow2"],
        &["rebase", "-t", "bogus", "-b", "", "sub/top.qcow2"],
        &["rebase", "-T", "bogus", "-b", "", "sub/top.qcow2"],
        &["rebase", "-F", "bogus", "-b", "x", "sub/top.qcow2"],
        &["rebase", "-u", "-F", "bogus", "sub/top.qcow2"],
        // The new backing file must open, as the format says.
        &["rebase", "-b", "nope.qcow2", "-F", "qcow2", "sub/top.qcow2"],
        &["rebase", "-b", "base.raw", "-F", "qcow2", "sub/el2.qcow2"],
        // A backing file needs its format: the copy happens, the change not.
        &["rebase", "-b", "mid.qcow2", "sub/top.qcow2"],
        &["rebase", "-u", "-b", "x", "sub/top.qcow2"],
        // Raw images have no backing file to change.
        &["rebase", "-b", "", "plain.raw"],
        &["rebase", "-p", "-f", "raw", "-b", "", "plain.raw"],
        &["rebase", "-f", "raw", "-u", "plain.raw"],
        &["rebase", "-c", "-b", "", "plain.raw"],
        &[
            "rebase",
            "-f",
            "raw",
            "-b",
            "top3.qcow2",
            "-F",
            "qcow2",
            "plain.raw",
        ],
        // A name that does not fit the header.
        &[
            "rebase",
            "-u",
            "-b",
            &"x".repeat(1100),
            "-F",
            "raw",
            "top3.qcow2",
        ],
        // Loops: refused as qemu-img's image locking refuses them.
        &["rebase", "-b", "top3.qcow2", "-F", "qcow2", "base3.qcow2"],
        &["rebase", "-b", "el2.qcow2", "-F", "qcow2", "sub/el2.qcow2"],
        &[
            "rebase",
            "-f",
            "qcow2",
            "--image-opts",
            "-u",
            "-b",
            "",
            "top3.qcow2",
        ],
        // getopt.
        &["rebase", "--b", "x", "sub/top.qcow2"],
        &["rebase", "--c", "sub/top.qcow2"],
        &["rebase", "--f", "qcow2", "sub/top.qcow2"],
        &["rebase", "--backing-unsafe=x", "sub/top.qcow2"],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args, true);
    }
}

/// `-p`: qemu-img prints progress lines on stdout; the outcome and the
/// image are the same.
#[test]
fn rebase_with_progress_leaves_the_same_image() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::copy_of(prepare(SETUP).path());
    let args = [
        "rebase",
        "-p",
        "-b",
        "mid.qcow2",
        "-F",
        "qcow2",
        "sub/top.qcow2",
    ];
    let (ours, theirs) = twin.run(&args);
    assert_eq!((ours.code, &ours.stderr), (theirs.code, &theirs.stderr));
    twin.assert_same_file("sub/top.qcow2");
}
