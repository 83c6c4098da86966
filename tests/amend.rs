//! `amend` against qemu-img: qcow2 upgrades and downgrades (and every
//! reason a downgrade is refused), refcount width changes, lazy
//! refcounts, size, data file options, `-o help`, the errors for formats
//! that cannot amend; the images byte for byte.

use std::path::Path;

use crate::util::{Oracle, Twin, prepare, require};

const SETUP: &str = "\
    qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 0x11 0 1M' v2.qcow2 >/dev/null && \
    qemu-img snapshot -c s1 v2.qcow2 && \
    qemu-io -f qcow2 -c 'write -P 0x12 512k 1M' v2.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 v3.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 0x11 0 1M' -c 'write -z 2M 128k' -c 'write -z 64k 64k' v3.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -b v3.qcow2 -F qcow2 top.qcow2 && \
    qemu-io -f qcow2 -c 'write -z 0 64k' -c 'write -P 3 1M 64k' top.qcow2 >/dev/null && \
    qemu-img snapshot -c s top.qcow2 && \
    qemu-io -f qcow2 -c 'write -z 3M 64k' top.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o refcount_bits=1,cluster_size=4k rc1.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 0x11 0 1M' rc1.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o refcount_bits=64,cluster_size=512 rc64.qcow2 1M && \
    qemu-io -f qcow2 -c 'write -P 0x11 0 300k' rc64.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o lazy_refcounts=on lazy.qcow2 4M && \
    qemu-io -f qcow2 -c 'write -P 5 0 64k' lazy.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o extended_l2=on el2.qcow2 1M && \
    qemu-img create -q -f qcow2 -o compression_type=zstd z.qcow2 1M && \
    qemu-img create -q -f qcow2 -o compression_type=zstd zc.qcow2 1M && \
    qemu-io -f qcow2 -c 'write -c 0 64k' zc.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o data_file=df.data df.qcow2 1M && \
    qemu-img create -q -f qcow2 -o data_file=dfr.data,data_file_raw=on dfr.qcow2 1M && \
    qemu-img create -q -f qcow2 bm.qcow2 1M && qemu-img bitmap --add bm.qcow2 b0 && \
    qemu-img create -q -f raw r.raw 1M";

const IMAGES: &[&str] = &[
    "v2.qcow2",
    "v3.qcow2",
    "top.qcow2",
    "rc1.qcow2",
    "rc64.qcow2",
    "lazy.qcow2",
    "el2.qcow2",
    "z.qcow2",
    "zc.qcow2",
    "df.qcow2",
    "dfr.qcow2",
    "bm.qcow2",
    "r.raw",
];

fn case(setup: &Path, args: &[&str]) {
    let twin = Twin::copy_of(setup);
    twin.assert_same(args);
    for name in IMAGES {
        twin.assert_same_file(name);
    }
}

#[test]
fn amend_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        // Versions: a v2 snapshot table is rewritten with v3's extra data;
        // a downgrade expands zero clusters (in snapshots too, with and
        // without a backing file) and drops what v2 cannot say.
        &["amend", "-o", "compat=v3", "v2.qcow2"],
        &["amend", "-o", "compat=1.1,lazy_refcounts=on", "v2.qcow2"],
        &["amend", "-o", "compat=0.10", "v3.qcow2"],
        &["amend", "-o", "compat=v2", "top.qcow2"],
        &["amend", "-o", "compat=0.10", "lazy.qcow2"],
        &["amend", "-o", "compat=0.10", "z.qcow2"],
        &["amend", "-o", "compat=0.10", "bm.qcow2"],
        &["amend", "-o", "compat=0.10", "v2.qcow2"],
        // Refcount widths, up and down, with the downgrade after them.
        &["amend", "-o", "refcount_bits=64", "v3.qcow2"],
        &["amend", "-o", "refcount_bits=1", "top.qcow2"],
        &["amend", "-o", "refcount_bits=16", "rc1.qcow2"],
        &["amend", "-o", "refcount_bits=2", "rc1.qcow2"],
        &["amend", "-o", "refcount_bits=8", "rc64.qcow2"],
        &["amend", "-o", "compat=0.10,refcount_bits=16", "rc1.qcow2"],
        &["amend", "-o", "compat=v3,refcount_bits=8", "v2.qcow2"],
        // Lazy refcounts, size (grow and shrink, exactly), data file options.
        &["amend", "-o", "lazy_refcounts=off", "lazy.qcow2"],
        &["amend", "-o", "lazy_refcounts=on", "v3.qcow2"],
        &["amend", "-o", "size=8M", "v3.qcow2"],
        &["amend", "-o", "size=1M", "v3.qcow2"],
        &["amend", "-o", "data_file=other.data", "df.qcow2"],
        &["amend", "-o", "data_file_raw=off", "dfr.qcow2"],
        // The backing file may be restated, not changed.
        &[
            "amend",
            "-o",
            "backing_file=v3.qcow2,backing_fmt=qcow2",
            "top.qcow2",
        ],
        // -o help, with and without -f; long names; -q, -t, --force, repeats.
        &["amend", "-o", "help", "v3.qcow2"],
        &["amend", "-f", "qcow2", "-o", "help"],
        &["amend", "-f", "qcow2", "-o", "?", "v3.qcow2"],
        &[
            "amend",
            "--options",
            "compat=v3",
            "--format",
            "qcow2",
            "v2.qcow2",
        ],
        &[
            "amend",
            "-q",
            "-t",
            "none",
            "--force",
            "-o",
            "lazy_refcounts=on",
            "v3.qcow2",
        ],
        &["amend", "-o", "compat=0.10", "-o", "compat=1.1", "v3.qcow2"],
        &[
            "amend",
            "--image-opts",
            "-o",
            "compat=v3",
            "driver=qcow2,file.filename=v2.qcow2",
        ],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args);
    }
}

#[test]
fn amend_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["amend", "v3.qcow2"],
        &["amend", "-o", "compat=v3"],
        &["amend", "-o", "compat=v3", "a", "b"],
        &["amend", "-o", ",", "v3.qcow2"],
        &["amend", "-o", "compat=v3", "missing.qcow2"],
        &["amend", "-o", "compat=v3", "-t", "bogus", "v3.qcow2"],
        // Formats that cannot amend, by -f and by probing.
        &["amend", "-f", "raw", "-o", "help"],
        &["amend", "-f", "bogus", "-o", "help"],
        &["amend", "-o", "help", "r.raw"],
        &["amend", "-o", "compat=v3", "-f", "raw", "r.raw"],
        // Options amend does not take, or bad values.
        &["amend", "-o", "cluster_size=4k", "v3.qcow2"],
        &["amend", "-o", "foo", "v3.qcow2"],
        &["amend", "-o", "lazy_refcounts=x", "v3.qcow2"],
        &["amend", "-o", "refcount_bits=x", "v3.qcow2"],
        &["amend", "-o", "refcount_bits=3", "v3.qcow2"],
        &["amend", "-o", "refcount_bits=128", "v3.qcow2"],
        &["amend", "-o", "size=x", "v3.qcow2"],
        &["amend", "-o", "compat=0.9", "v3.qcow2"],
        &["amend", "-o", "encrypt.state=active", "v3.qcow2"],
        &["amend", "-o", "backing_file=v2.qcow2", "top.qcow2"],
        &["amend", "-o", "backing_fmt=raw", "v3.qcow2"],
        &["amend", "-o", "data_file=x", "v3.qcow2"],
        &["amend", "-o", "data_file_raw=on", "df.qcow2"],
        &["amend", "-o", "lazy_refcounts=on", "v2.qcow2"],
        &["amend", "-o", "refcount_bits=8", "v2.qcow2"],
        // Downgrades v2 cannot take.
        &["amend", "-o", "compat=0.10", "rc1.qcow2"],
        &["amend", "-o", "compat=0.10", "el2.qcow2"],
        &["amend", "-o", "compat=0.10", "zc.qcow2"],
        &["amend", "-o", "compat=0.10", "df.qcow2"],
        &["amend", "-o", "compat=0.10,size=8M", "top.qcow2"],
        // A refcount too large for the narrower width.
        &["amend", "-o", "refcount_bits=1", "v2.qcow2"],
        &[
            "amend",
            "-f",
            "qcow2",
            "--image-opts",
            "-o",
            "compat=v3",
            "v3.qcow2",
        ],
        // getopt.
        &["amend", "--f", "qcow2", "-o", "help"],
        &["amend", "--force=1", "-o", "help", "v3.qcow2"],
    ];
    let setup = prepare(SETUP);
    for args in cases {
        case(setup.path(), args);
    }
}

/// `-p`: qemu-img's progress lines on stdout; where an amendment has no
/// steps between 0% and 100% (lazy refcounts), the same bytes. Elsewhere
/// the outcome and the image are the same.
#[test]
fn amend_with_progress_leaves_the_same_image() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let setup = prepare(SETUP);
    let twin = Twin::copy_of(setup.path());
    let out = twin.assert_same(&["amend", "-p", "-o", "lazy_refcounts=on", "v3.qcow2"]);
    assert_eq!(out.stdout, "    (0.00/100%)\r    (100.00/100%)\r\n");
    twin.assert_same_file("v3.qcow2");
    for args in [
        &["amend", "-p", "-o", "compat=v3,refcount_bits=1", "v2.qcow2"][..],
        &["amend", "-p", "-o", "compat=0.10", "v3.qcow2"],
        &["amend", "-p", "-q", "-o", "compat=v3", "v2.qcow2"],
    ] {
        let twin = Twin::copy_of(setup.path());
        let (ours, theirs) = twin.run(args);
        assert_eq!((ours.code, &ours.stderr), (theirs.code, &theirs.stderr));
        assert_eq!(ours.stdout.is_empty(), theirs.stdout.is_empty(), "{args:?}");
        for name in IMAGES {
            twin.assert_same_file(name);
        }
    }
}
