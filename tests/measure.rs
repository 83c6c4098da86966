//! `measure` against qemu-img: sizes alone and images as sources (raw
//! holes, qcow2 layouts and chains, bitmaps, snapshots), every qcow2
//! option that changes the numbers, JSON and human output, and every
//! error in qemu-img's order.

use crate::util::{Oracle, Twin, make_raw, require, sh};

fn images(dir: &std::path::Path) {
    make_raw(
        &dir.join("r.raw"),
        4 << 20,
        &[(0, 1, 4096), (3 << 20, 2, 700)],
    );
    sh(
        dir,
        "set -e
        qemu-img create -q -f qcow2 q.qcow2 16M
        qemu-io -c 'write -P 1 0 100k' -c 'write -z 1M 128k' -c 'write -P 2 2M 64k' \
                -c 'write -P 3 8M 1M' q.qcow2 >/dev/null
        qemu-img snapshot -c sn1 q.qcow2
        qemu-io -c 'write -P 4 12M 1M' q.qcow2 >/dev/null
        qemu-img convert -c -O qcow2 q.qcow2 c.qcow2
        qemu-img create -q -f raw base.raw 4M
        qemu-io -f raw -c 'write -P 9 0 2M' base.raw >/dev/null
        qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 8M
        qemu-io -c 'write -P 5 1M 64k' -c 'write -z 512k 64k' -c 'write -P 6 7M 4k' top.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k x.qcow2 4M
        qemu-io -c 'write -P 1 0 4k' -c 'write -P 2 200k 4k' x.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o preallocation=metadata pm.qcow2 4M
        qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M
        qemu-img create -q -f qcow2 bm.qcow2 64M
        qemu-img bitmap --add bm.qcow2 b1
        qemu-img bitmap --add -g 512 bm.qcow2 a-longer-bitmap-name",
    );
}

#[test]
fn measure_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(images);
    let sources = [
        "r.raw",
        "q.qcow2",
        "c.qcow2",
        "top.qcow2",
        "x.qcow2",
        "pm.qcow2",
        "v2.qcow2",
        "bm.qcow2",
    ];
    for source in sources {
        for target in ["raw", "qcow2"] {
            for output in ["human", "json"] {
                let output = format!("--output={output}");
                twin.assert_same_on_theirs(&["measure", "-O", target, &output, source]);
            }
        }
    }
    let qcow2_options = [
        "cluster_size=512",
        "cluster_size=4k",
        "cluster_size=2M",
        "extended_l2=on",
        "extended_l2=on,cluster_size=32k",
        "refcount_bits=1",
        "refcount_bits=64",
        "preallocation=metadata",
        "preallocation=falloc",
        "preallocation=full",
        "compat=0.10",
        "compat=1.1",
        "backing_file=base.raw",
        "data_file=d.raw",
        "lazy_refcounts=on",
    ];
    for o in qcow2_options {
        twin.assert_same_on_theirs(&["measure", "-O", "qcow2", "-o", o, "top.qcow2"]);
        twin.assert_same_on_theirs(&["measure", "-O", "qcow2", "-o", o, "--size", "3G"]);
    }
    for args in [
        &["measure", "--size", "1G"][..],
        &["measure", "--size", "1000"],
        &["measure", "--size", "1000", "-O", "qcow2", "--output=json"],
        &["measure", "-s", "1000"],
        &["measure", "--size", "0", "-O", "qcow2"],
        &[
            "measure",
            "--size",
            "5T",
            "-O",
            "qcow2",
            "-o",
            "refcount_bits=64",
        ],
        &["measure", "--size", "9223372036854775807"],
        &["measure", "-O", "qcow2", "-o", "size=1G", "--size", "2G"],
        &[
            "measure",
            "-O",
            "raw",
            "-o",
            "preallocation=full",
            "--size",
            "1G",
        ],
        &["measure", "-O", "qcow2", "-l", "sn1", "q.qcow2"],
        &[
            "measure",
            "-O",
            "qcow2",
            "-l",
            "snapshot.name=sn1",
            "q.qcow2",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "--snapshot=snapshot.id=1",
            "q.qcow2",
        ],
        &["measure", "-O", "qcow2", "-f", "raw", "q.qcow2"],
        &[
            "measure",
            "-O",
            "qcow2",
            "-U",
            "--image-opts",
            "driver=qcow2,file.filename=top.qcow2",
        ],
        &[
            "measure",
            "--target=qcow2",
            "--output=json",
            "--force",
            "bm.qcow2",
        ],
        // Errors, in qemu-img's order.
        &["measure"],
        &["measure", "-O", "qcow2", "-o", "size=1G"],
        &["measure", "--size", "1G", "q.qcow2"],
        &["measure", "-f", "raw"],
        &["measure", "-l", "sn1"],
        &["measure", "--image-opts"],
        &["measure", "a", "b"],
        &["measure", "--size", "-1"],
        &["measure", "--size", "1x"],
        &["measure", "--size", "1G", "--output=foo"],
        &["measure", "-l", "snapshot.foo=1", "q.qcow2"],
        &["measure", "-l", "nosuch", "q.qcow2"],
        &["measure", "-l", "sn1", "r.raw"],
        &["measure", "nonexistent"],
        &["measure", "-f", "qcow2", "r.raw"],
        &["measure", "--image-opts", "-f", "raw", "r.raw"],
        &["measure", "-O", "foo", "--size", "1G"],
        &["measure", "-O", "foo", "nonexistent"],
        &["measure", "-O", "vmdk", "--size", "1G"],
        &["measure", "-O", "file", "--size", "1G"],
        &["measure", "-O", "rbd", "--size", "1G"],
        &["measure", "-O", "luks", "--size", "1G"],
        &["measure", "-O", "null-co", "--size", "1G"],
        &[
            "measure",
            "-O",
            "raw",
            "-o",
            "cluster_size=64k",
            "--size",
            "1G",
        ],
        &["measure", "-O", "qcow2", "-o", "foo=bar", "--size", "1G"],
        &["measure", "-O", "qcow2", "-o", "help", "--size", "1G"],
        &["measure", "-O", "qcow2", "-o", ",", "--size", "1G"],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=abc",
            "--size",
            "1G",
        ],
        &["measure", "-O", "qcow2", "-o", "size=abc", "--size", "1G"],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "extended_l2=foo",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=3k",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "extended_l2=on,cluster_size=8k",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "cluster_size=512",
            "--size",
            "100T",
        ],
        &["measure", "-O", "qcow2", "-o", "compat=v3", "--size", "1G"],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "compat=0.10,refcount_bits=8",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "refcount_bits=3",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "refcount_bits=abc",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "preallocation=foo",
            "--size",
            "1G",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "-o",
            "encrypt.format=luks",
            "--size",
            "1G",
        ],
    ] {
        twin.assert_same_on_theirs(args);
    }
}
