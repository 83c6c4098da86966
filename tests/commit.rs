//! `commit` against qemu-img: into the direct base or a named one (with
//! images between), emptying the top unless `-d`, every option and error,
//! and the images both leave behind byte for byte.

use std::path::Path;

use crate::util::{Oracle, Twin, prepare, require};

/// A three-level chain in a subdirectory (base larger than nothing, a mid
/// image larger than the base, zero clusters in both upper images), a
/// qcow2 over a raw base, a v2 image, and a standalone one.
const SETUP: &str = "mkdir sub && \
    qemu-img create -q -f raw sub/base.raw 2M && \
    qemu-io -f raw -c 'write -P 0x11 0 2M' sub/base.raw >/dev/null && \
    qemu-img create -q -f qcow2 sub/base.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 0x21 0 1M' sub/base.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 sub/mid.qcow2 6M && \
    qemu-io -f qcow2 -c 'write -P 0x31 512k 512k' -c 'write -z 3M 128k' sub/mid.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 sub/top.qcow2 && \
    qemu-io -f qcow2 -c 'write -P 0x44 128k 64k' -c 'write -z 700k 64k' -c 'write -P 0x45 5M 64k' sub/top.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -b base.raw -F raw sub/onraw.qcow2 3M && \
    qemu-io -f qcow2 -c 'write -P 0x44 128k 64k' -c 'write -z 0 64k' -c 'write -P 0x45 2560k 4k' sub/onraw.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o compat=0.10 -b base.qcow2 -F qcow2 sub/v2.qcow2 && \
    qemu-io -f qcow2 -c 'write -P 0x46 3M 64k' -c 'write -z 0 64k' sub/v2.qcow2 >/dev/null && \
    qemu-img snapshot -c snap sub/v2.qcow2";

const IMAGES: &[&str] = &[
    "sub/base.raw",
    "sub/base.qcow2",
    "sub/mid.qcow2",
    "sub/top.qcow2",
    "sub/onraw.qcow2",
    "sub/v2.qcow2",
];

/// The committed-into qcow2 bases are compared as content, map and check:
/// qemu-img's mirror job runs its writes concurrently, so where new
/// clusters land varies between runs of qemu-img itself. Everything else,
/// the emptied top included, must be byte-identical.
fn case(setup: &Path, args: &[&str]) {
    let twin = Twin::copy_of(setup);
    twin.assert_same(args);
    let top = args.last().unwrap_or(&"");
    for name in IMAGES {
        let exact = name.ends_with(".raw") || name.ends_with(top);
        twin.assert_same_image(name, exact);
    }
}

#[test]
fn commit_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        // Into the direct backing file; the top is emptied.
        &["commit", "sub/top.qcow2"],
        &["commit", "sub/mid.qcow2"],
        &["commit", "sub/onraw.qcow2"],
        // A v2 image with a snapshot is emptied cluster by cluster.
        &["commit", "sub/v2.qcow2"],
        // -d keeps the top; -b names a base further down (and implies -d).
        &["commit", "-d", "sub/top.qcow2"],
        &["commit", "-b", "base.qcow2", "sub/top.qcow2"],
        &["commit", "-b", "mid.qcow2", "sub/top.qcow2"],
        // Long names, -q, -t, -r (a rate limit slows, it changes nothing).
        &[
            "commit",
            "--format",
            "qcow2",
            "--cache",
            "writethrough",
            "--drop",
            "--quiet",
            "sub/mid.qcow2",
        ],
        &[
            "commit",
            "--base",
            "base.qcow2",
            "--rate",
            "64M",
            "sub/top.qcow2",
        ],
        &["commit", "-t", "unsafe", "sub/top.qcow2"],
        &[
            "commit",
            "--image-opts",
            "driver=qcow2,file.filename=sub/top.qcow2",
        ],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args);
    }
}

#[test]
fn commit_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["commit"],
        &["commit", "a", "b"],
        &["commit", "missing.qcow2"],
        &["commit", "sub/base.qcow2"],
        &["commit", "-f", "raw", "sub/base.raw"],
        &["commit", "-t", "bogus", "sub/top.qcow2"],
        &["commit", "-r", "-1", "sub/top.qcow2"],
        &["commit", "-r", "1Q", "sub/top.qcow2"],
        // -b is resolved against each image's directory, as QEMU does.
        &["commit", "-b", "sub/base.qcow2", "sub/top.qcow2"],
        &["commit", "-b", "top.qcow2", "sub/top.qcow2"],
        &["commit", "-b", "nope", "sub/top.qcow2"],
        &["commit", "--rate-limit", "1", "sub/top.qcow2"],
        &["commit", "--d=x", "sub/top.qcow2"],
        &["commit", "-f", "qcow2", "--image-opts", "sub/top.qcow2"],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args);
    }
}

/// `-p`: qemu-img prints progress lines on stdout; the outcome and the
/// images are the same.
#[test]
fn commit_with_progress_leaves_the_same_images() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::copy_of(prepare(SETUP).path());
    let (ours, theirs) = twin.run(&["commit", "-p", "sub/top.qcow2"]);
    assert_eq!((ours.code, &ours.stderr), (theirs.code, &theirs.stderr));
    for name in IMAGES {
        let exact = name.ends_with(".raw") || name.ends_with("top.qcow2");
        twin.assert_same_image(name, exact);
    }
}
