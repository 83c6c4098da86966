//! qcow2 against the real qemu-img/qemu-io: images qemu-img makes read
//! back identically, images rbdimg makes are byte-identical or pass
//! `qemu-img check` and `qemu-img compare`, and `info`/`check`/`snapshot`
//! print what qemu-img prints.

use std::path::Path;

use crate::rng::Rng;
use crate::util::{Oracle, Twin, make_raw, qemu_img, rbdimg, rbdimg_ok, require, sh};

/// qemu-io patterns that exercise data, zeros, partial clusters and
/// discards.
const PATTERNS: &str = "-c 'write -P 0x11 0 70k' -c 'write -P 0x22 1M 5000' \
                        -c 'write -z 2M 128k' -c 'write -P 0x33 3M 1M' -c 'discard 3M 64k' \
                        -c 'write -P 0x44 4000k 1k'";

/// The image variants the issue lists, made by qemu-img and filled by qemu-io.
const VARIANTS: &[(&str, &str)] = &[
    ("v2", "compat=0.10"),
    ("v3", ""),
    ("c512", "cluster_size=512"),
    ("c2m", "cluster_size=2M"),
    ("rc1", "refcount_bits=1,cluster_size=4k"),
    ("rc2", "refcount_bits=2,cluster_size=4k"),
    ("rc4", "refcount_bits=4"),
    ("rc8", "refcount_bits=8"),
    ("rc32", "refcount_bits=32"),
    ("rc64", "refcount_bits=64,cluster_size=512"),
    ("el2", "extended_l2=on"),
    ("el2big", "extended_l2=on,cluster_size=128k"),
    ("zstd", "compression_type=zstd"),
    ("lazy", "lazy_refcounts=on"),
    ("meta", "preallocation=metadata"),
    ("df", "data_file=df.data"),
    ("dfraw", "data_file=dfraw.data,data_file_raw=on"),
];

fn make_variants(dir: &Path) {
    for (name, opts) in VARIANTS {
        let o = if opts.is_empty() {
            String::new()
        } else {
            format!("-o {opts}")
        };
        sh(
            dir,
            &format!(
                "qemu-img create -q -f qcow2 {o} {name}.qcow2 5M && qemu-io -f qcow2 {PATTERNS} {name}.qcow2 >/dev/null"
            ),
        );
    }
    // Compressed clusters, zlib and zstd.
    sh(
        dir,
        "qemu-img convert -c -O qcow2 v3.qcow2 zlibc.qcow2 && \
         qemu-img convert -c -O qcow2 -o compression_type=zstd v3.qcow2 zstdc.qcow2",
    );
    // A backing chain with relative names: qcow2 over qcow2 over raw.
    sh(
        dir,
        "mkdir -p sub && qemu-img create -q -f raw base.raw 5M && \
         qemu-io -f raw -c 'write -P 0x55 0 5M' base.raw >/dev/null && \
         qemu-img create -q -f qcow2 -b ../base.raw -F raw sub/mid.qcow2 && \
         qemu-io -f qcow2 -c 'write -P 0x66 1M 1M' sub/mid.qcow2 >/dev/null && \
         qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 sub/top.qcow2 6M && \
         qemu-io -f qcow2 -c 'write -P 0x77 1536k 64k' -c 'write -z 0 64k' sub/top.qcow2 >/dev/null",
    );
}

fn image_names() -> Vec<String> {
    let mut names: Vec<String> = VARIANTS.iter().map(|(n, _)| format!("{n}.qcow2")).collect();
    names.extend(
        [
            "zlibc.qcow2",
            "zstdc.qcow2",
            "sub/top.qcow2",
            "sub/mid.qcow2",
        ]
        .map(String::from),
    );
    names
}

#[test]
fn images_made_by_qemu_read_back_identically() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(make_variants);
    for name in image_names() {
        let out = format!("{}.raw", name.replace('/', "_"));
        twin.assert_same(&["convert", "-O", "raw", &name, &out]);
        twin.assert_same_file(&out);
    }
}

#[test]
fn info_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(make_variants);
    for name in image_names() {
        twin.assert_same_on_theirs(&["info", &name]);
        twin.assert_same_on_theirs(&["info", "--output=json", &name]);
        twin.assert_same_on_theirs(&["info", "-f", "qcow2", "--backing-chain", &name]);
        twin.assert_same_on_theirs(&["info", "--backing-chain", "--output=json", &name]);
    }
    twin.assert_same(&["info", "-f", "qcow2", "base.raw"]);
}

#[test]
fn create_is_byte_identical() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("b.raw"), 1 << 20, &[]));
    let cases: &[&str] = &[
        "",
        "compat=0.10",
        "cluster_size=512",
        "cluster_size=2M",
        "refcount_bits=1",
        "refcount_bits=64,cluster_size=512,preallocation=metadata",
        "extended_l2=on",
        "compression_type=zstd",
        "lazy_refcounts=on",
        "preallocation=metadata",
        "preallocation=falloc",
        "preallocation=full,cluster_size=4k,refcount_bits=2",
        "data_file=d1.data",
        "data_file=d2.data,data_file_raw=on",
        "backing_file=b.raw,backing_fmt=raw",
        "cluster_size=1000",
        "compat=2",
        "refcount_bits=3",
        "compression_type=foo",
        "extended_l2=on,compat=0.10",
        "compression_type=zstd,compat=0.10",
        "lazy_refcounts=on,compat=0.10",
        "preallocation=bogus",
        "bogus=1",
        "help",
    ];
    for (i, opts) in cases.iter().enumerate() {
        let name = format!("img{i}.qcow2");
        let mut args = vec!["create", "-f", "qcow2"];
        if !opts.is_empty() {
            args.extend(["-o", opts]);
        }
        args.extend([name.as_str(), "3M"]);
        twin.assert_same(&args);
        twin.assert_same_file(&name);
    }
    twin.assert_same_file("d1.data");
    twin.assert_same_file("d2.data");
    for args in [
        &[
            "create", "-f", "qcow2", "-b", "b.raw", "-F", "raw", "ov.qcow2",
        ][..],
        &["create", "-f", "qcow2", "-b", "b.raw", "nofmt.qcow2"],
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            "gone.qcow2",
            "-F",
            "qcow2",
            "gone.qcow2x",
        ],
        &[
            "create",
            "-f",
            "qcow2",
            "-u",
            "-b",
            "gone.qcow2",
            "-F",
            "qcow2",
            "u.qcow2",
            "1M",
        ],
        &["create", "-f", "qcow2", "-F", "qcow2", "f.qcow2", "1M"],
        &["create", "-f", "qcow2", "x.qcow2", "7E"],
        &["create", "-f", "qcow2", "-o", "size=1M", "osize.qcow2"],
    ] {
        twin.assert_same(args);
    }
    for f in ["ov.qcow2", "u.qcow2", "osize.qcow2"] {
        twin.assert_same_file(f);
        twin.assert_same(&["info", f]);
    }
}

/// `qemu-img check` must find nothing wrong and `qemu-img compare` must
/// find the image equal to `reference`.
fn assert_clean(dir: &Path, image: &str, reference: &str) {
    let check = qemu_img(dir, &["check", image]);
    assert_eq!(check.code, 0, "check {image}: {check:#?}");
    assert!(check.stderr.is_empty(), "check {image}: {}", check.stderr);
    let cmp = qemu_img(dir, &["compare", reference, image]);
    assert_eq!(cmp.code, 0, "compare {reference} {image}: {cmp:#?}");
}

#[test]
fn converted_images_pass_qemu_check() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_raw(
        &d.join("src.raw"),
        (6 << 20) + 512,
        &[
            (0, 1, 70000),
            (1 << 20, 2, 5000),
            (3 << 20, 0xee, 1 << 20),
            (6 << 20, 3, 512),
        ],
    );
    let opts = [
        "",
        "compat=0.10",
        "cluster_size=512",
        "cluster_size=512,refcount_bits=1",
        "cluster_size=512,refcount_bits=64",
        "cluster_size=2M",
        "extended_l2=on",
        "compression_type=zstd",
        "lazy_refcounts=on",
        "preallocation=metadata",
    ];
    for (i, o) in opts.iter().enumerate() {
        for compress in [false, true] {
            // qemu-img refuses -c with preallocation (tests/convert.rs
            // checks rbdimg refuses it the same way).
            if compress && o.starts_with("preallocation=") {
                continue;
            }
            let out = format!("out{i}{}.qcow2", if compress { "c" } else { "" });
            let mut args = vec!["convert", "-O", "qcow2"];
            if compress {
                args.push("-c");
            }
            if !o.is_empty() {
                args.extend(["-o", o]);
            }
            args.extend(["src.raw", out.as_str()]);
            rbdimg_ok(d, &args);
            assert_clean(d, &out, "src.raw");
            // And back: our reader agrees with our writer.
            let back = format!("{out}.raw");
            rbdimg_ok(d, &["convert", "-O", "raw", &out, &back]);
            assert_eq!(
                std::fs::read(d.join(&back)).unwrap(),
                std::fs::read(d.join("src.raw")).unwrap()
            );
        }
    }
}

#[test]
fn writes_over_backing_files_pass_qemu_check() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make_raw(&d.join("src.raw"), 4 << 20, &[(100, 9, 3 << 20)]);
    sh(
        d,
        "qemu-img create -q -f qcow2 -o cluster_size=4k base.qcow2 4M && \
         qemu-io -c 'write -P 0xaa 0 4M' base.qcow2 >/dev/null",
    );
    for (i, extra) in ["", ",extended_l2=on,cluster_size=64k"].iter().enumerate() {
        let top = format!("top{i}.qcow2");
        rbdimg_ok(
            d,
            &[
                "create",
                "-f",
                "qcow2",
                "-o",
                &format!("backing_file=base.qcow2,backing_fmt=qcow2{extra}"),
                &top,
            ],
        );
        // Unaligned writes through convert -n keep the backing data around them.
        rbdimg_ok(d, &["convert", "-n", "-O", "qcow2", "src.raw", &top]);
        assert_clean(d, &top, "src.raw");
    }
    // convert -B keeps what the backing file provides unallocated.
    rbdimg_ok(
        d,
        &[
            "convert",
            "-O",
            "qcow2",
            "-B",
            "base.qcow2",
            "-F",
            "qcow2",
            "src.raw",
            "b.qcow2",
        ],
    );
    assert_clean(d, "b.qcow2", "src.raw");
    let out = rbdimg(
        d,
        &[
            "convert",
            "-O",
            "qcow2",
            "-B",
            "base.qcow2",
            "src.raw",
            "c.qcow2",
        ],
    );
    assert_eq!(out.code, 1);
}

#[test]
fn resize_grows_and_shrinks_like_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(|dir| {
        sh(
            dir,
            "qemu-img create -q -f qcow2 r.qcow2 8M && qemu-io -c 'write -P 1 0 8M' r.qcow2 >/dev/null",
        )
    });
    for args in [
        &["resize", "r.qcow2", "+1M"][..],
        &["resize", "r.qcow2", "1G"],
        &["resize", "--shrink", "r.qcow2", "3M"],
        &["resize", "r.qcow2", "+100"],
        &["resize", "--preallocation=metadata", "r.qcow2", "5M"],
        &["resize", "--preallocation=falloc", "r.qcow2", "7M"],
        &["resize", "--preallocation=full", "r.qcow2", "9M"],
        &["resize", "--shrink", "r.qcow2", "1M"],
    ] {
        twin.assert_same(args);
        twin.assert_same_file("r.qcow2");
        twin.assert_same(&["check", "r.qcow2"]);
    }
}

/// `resize --shrink` frees the refcount blocks past the new end and
/// clears their reftable entries, as qemu-img's `qcow2_shrink_reftable`
/// does: small clusters and wide refcounts make many refcount blocks.
#[test]
fn shrink_frees_refcount_blocks_as_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(|dir| {
        sh(
            dir,
            "qemu-img create -q -f qcow2 -o cluster_size=512,refcount_bits=64 r.qcow2 4M && \
             qemu-io -c 'write -P 1 0 4M' r.qcow2 >/dev/null",
        )
    });
    let refblocks = |path: &std::path::Path| {
        let b = std::fs::read(path).unwrap();
        let be = |at: usize, n: usize| {
            b[at..at + n]
                .iter()
                .fold(0u64, |v, &x| (v << 8) | u64::from(x))
        };
        let (table, clusters) = (be(48, 8) as usize, be(56, 4) as usize);
        let entries: Vec<u64> = (0..clusters * 512 / 8)
            .map(|i| be(table + i * 8, 8))
            .filter(|&e| e != 0)
            .collect();
        // None may point at a block of nothing but zero refcounts.
        for &e in &entries {
            let block = &b[e as usize..e as usize + 512];
            assert!(block.iter().any(|&x| x != 0), "empty refblock at {e:#x}");
        }
        entries.len()
    };
    let before = refblocks(&twin.ours().join("r.qcow2"));
    for args in [
        &["resize", "--shrink", "r.qcow2", "1M"][..],
        &["resize", "--shrink", "r.qcow2", "100K"],
    ] {
        twin.assert_same(args);
        twin.assert_same_file("r.qcow2");
        twin.assert_same(&["check", "r.qcow2"]);
    }
    let after = refblocks(&twin.ours().join("r.qcow2"));
    assert!(after < before, "{after} refcount blocks left of {before}");
}

#[test]
fn snapshots_interoperate_with_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(|dir| {
        sh(
            dir,
            "qemu-img create -q -f qcow2 s.qcow2 4M && qemu-io -c 'write -P 1 0 1M' s.qcow2 >/dev/null && \
             qemu-img snapshot -c first s.qcow2 && qemu-io -c 'write -P 2 512k 1M' s.qcow2 >/dev/null && \
             qemu-img snapshot -c second s.qcow2 && qemu-io -c 'write -P 3 0 64k' s.qcow2 >/dev/null",
        )
    });
    // Listing and info on the same file (snapshot dates are qemu-img's).
    for args in [
        &["snapshot", "-l", "s.qcow2"][..],
        &["info", "s.qcow2"],
        &["info", "--output=json", "s.qcow2"],
        &["check", "s.qcow2"],
        &[
            "convert",
            "-l",
            "first",
            "-O",
            "raw",
            "s.qcow2",
            "first.raw",
        ],
        &[
            "convert",
            "-l",
            "snapshot.id=2",
            "-O",
            "raw",
            "s.qcow2",
            "second.raw",
        ],
        &["convert", "-l", "nosuch", "-O", "raw", "s.qcow2", "x.raw"],
    ] {
        twin.assert_same_on_theirs(args);
    }
    // Apply and delete on each side; the images must hold the same data.
    for args in [
        &["snapshot", "-a", "first", "s.qcow2"][..],
        &["snapshot", "-a", "nosuch", "s.qcow2"],
        &["snapshot", "-d", "1", "s.qcow2"],
        &["snapshot", "-d", "first", "s.qcow2"],
        &["snapshot", "-c", "third", "s.qcow2"],
    ] {
        twin.assert_same(args);
        twin.assert_same(&["check", "s.qcow2"]);
        let raw = ["convert", "-O", "raw", "s.qcow2", "now.raw"];
        assert_eq!(qemu_img(&twin.ours(), &raw).code, 0);
        assert_eq!(qemu_img(&twin.theirs(), &raw).code, 0);
        twin.assert_same_file("now.raw");
    }
    // qemu-img reads the snapshot rbdimg made, and applies it.
    let ours = twin.ours();
    rbdimg_ok(
        &ours,
        &["convert", "-n", "-O", "qcow2", "now.raw", "s.qcow2"],
    );
    sh(
        &ours,
        "qemu-io -c 'write -P 9 0 2M' s.qcow2 >/dev/null && qemu-img snapshot -a third s.qcow2",
    );
    let back = qemu_img(&ours, &["compare", "now.raw", "s.qcow2"]);
    assert_eq!(back.code, 0, "{back:#?}");
    assert_eq!(qemu_img(&ours, &["check", "s.qcow2"]).code, 0);
}

#[test]
fn check_agrees_with_qemu_img_on_damaged_images() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    // Leak: drop L1[0]; corruption: zero the refcount of a data cluster.
    const DAMAGE: &str = r#"python3 - "$@" <<'PY'
import struct
for mode, path in (('leak', 'leak.qcow2'), ('corrupt', 'corrupt.qcow2')):
    f = open(path, 'r+b'); h = f.read(104)
    cs = 1 << struct.unpack('>I', h[20:24])[0]
    l1 = struct.unpack('>Q', h[40:48])[0]; rt = struct.unpack('>Q', h[48:56])[0]
    f.seek(l1); l2 = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
    f.seek(l2); data = struct.unpack('>Q', f.read(8))[0] & 0x00fffffffffffe00
    if mode == 'leak':
        f.seek(l1); f.write(b'\0' * 8)
    else:
        f.seek(rt); rb = struct.unpack('>Q', f.read(8))[0]
        f.seek(rb + data // cs * 2); f.write(b'\0\0')
PY"#;
    let twin = Twin::new(|dir| {
        sh(
            dir,
            "for i in clean leak corrupt; do qemu-img create -q -f qcow2 $i.qcow2 64M && \
             qemu-io -c 'write -P 1 0 128k' $i.qcow2 >/dev/null; done",
        );
        sh(dir, DAMAGE);
        sh(
            dir,
            "for i in leak corrupt; do for c in l a; do cp $i.qcow2 $i-$c.qcow2; done; done",
        );
    });
    for args in [
        &["check", "clean.qcow2"][..],
        &["check", "--output=json", "clean.qcow2"],
        &["check", "leak.qcow2"],
        &["check", "--output=json", "leak.qcow2"],
        &["check", "-q", "leak.qcow2"],
        &["check", "corrupt.qcow2"],
        &["check", "--output=json", "corrupt.qcow2"],
        &["check", "-r", "leaks", "leak-l.qcow2"],
        &["check", "-r", "all", "leak-a.qcow2"],
        &["check", "-r", "leaks", "corrupt-l.qcow2"],
        &["check", "-r", "all", "corrupt-a.qcow2"],
    ] {
        twin.assert_same(args);
    }
    for f in [
        "leak-l.qcow2",
        "leak-a.qcow2",
        "corrupt-l.qcow2",
        "corrupt-a.qcow2",
    ] {
        twin.assert_same_file(f);
    }
}

/// Bug: `snapshot -c` wrote names longer than 65535 bytes with their
/// length cut to 16 bits, corrupting the snapshot table. qemu-img keeps
/// at most 255 bytes of a name; so does rbdimg.
#[test]
fn long_snapshot_names_are_cut_like_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = "a".repeat(70000);
    for tool in ["theirs", "ours"] {
        let image = format!("{tool}.qcow2");
        sh(d, &format!("qemu-img create -q -f qcow2 {image} 1M"));
        let args = ["snapshot", "-c", long.as_str(), image.as_str()];
        if tool == "ours" {
            rbdimg_ok(d, &args);
        } else {
            assert_eq!(qemu_img(d, &args).code, 0);
        }
        let check = qemu_img(d, &["check", &image]);
        assert_eq!(check.code, 0, "{check:#?}");
        let list = qemu_img(d, &["snapshot", "-l", &image]);
        let name = list
            .stdout
            .lines()
            .nth(2)
            .unwrap()
            .split_whitespace()
            .nth(1);
        assert_eq!(name, Some(&long[..255]), "{tool}");
    }
}

const STRESS_SIZE: u64 = 8 << 20;
const STRESS_THREADS: u64 = 8;
/// The shared range: the image's tail, from an unaligned offset.
const SHARED_START: u64 = (7 << 20) + 3333;

/// One random request inside `[start, end)`: cluster-aligned or not,
/// often crossing cluster boundaries. Returns (offset, length).
fn pick_range(rng: &mut Rng, start: u64, end: u64, cluster: u64) -> (u64, u64) {
    let (offset, len) = if rng.below(3) == 0 {
        let first = start.div_ceil(cluster);
        let last = end / cluster;
        if last <= first {
            (start, 1)
        } else {
            let c = first + rng.below(last - first);
            (c * cluster, (1 + rng.below(3)) * cluster)
        }
    } else {
        (start + rng.below(end - start), 1 + rng.below(3 * cluster))
    };
    (offset, len.min(end - offset))
}

/// Random writes, zero writes (as data and as `write_zeroes`), discards and
/// verifying reads on `model` (the bytes of `[start, end)`), plus writes
/// to the shared range, until `ops` requests or the deadline.
#[allow(clippy::too_many_arguments)]
fn stress_thread(
    img: &dyn rbdimg::block::BlockDriver,
    seed: u64,
    start: u64,
    end: u64,
    model: &mut [u8],
    cluster: u64,
    ops: usize,
    deadline: std::time::Instant,
) {
    let mut rng = Rng(seed);
    for _ in 0..ops {
        if std::time::Instant::now() > deadline {
            break;
        }
        let shared = rng.below(5) == 0;
        let (lo, hi) = if shared {
            (SHARED_START, STRESS_SIZE)
        } else {
            (start, end)
        };
        let (offset, len) = pick_range(&mut rng, lo, hi, cluster);
        let at = (offset - start) as usize..(offset - start + len) as usize;
        match rng.below(10) {
            0..=3 => {
                let mut data = vec![0u8; len as usize];
                rng.fill(&mut data);
                img.write_at(&data, offset).unwrap();
                if !shared {
                    model[at].copy_from_slice(&data);
                }
            }
            4 => {
                img.write_at(&vec![0u8; len as usize], offset).unwrap();
                if !shared {
                    model[at].fill(0);
                }
            }
            5 | 6 => {
                img.write_zeroes(offset, len, rng.below(2) == 0).unwrap();
                if !shared {
                    model[at].fill(0);
                }
            }
            7 => {
                img.discard(offset, len).unwrap();
                if !shared {
                    model[at].fill(0);
                }
            }
            _ if !shared => {
                let mut back = vec![0u8; len as usize];
                img.read_at(&mut back, offset).unwrap();
                assert!(
                    back == model[at],
                    "thread {seed:#x}: bytes at {offset}+{len} differ"
                );
            }
            _ => {}
        }
    }
}

/// Eight threads write one open image at once (each its own unaligned byte
/// range, sharing clusters with its neighbours, and all of them a shared
/// range); afterwards the image must hold exactly what the model says, and
/// qemu-img must find it clean and equal to a raw copy of the model.
#[test]
fn concurrent_writers_keep_the_image_consistent() {
    use rbdimg::open::{OpenOptions, open_image};
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let variants: &[(&str, u64, &str)] = &[
        (
            "c4k",
            4096,
            "qemu-img create -q -f qcow2 -o cluster_size=4k img.qcow2 8M",
        ),
        ("c64k", 65536, "qemu-img create -q -f qcow2 img.qcow2 8M"),
        (
            "extl2",
            65536,
            "qemu-img create -q -f qcow2 -o extended_l2=on img.qcow2 8M",
        ),
        (
            "backing",
            4096,
            "qemu-img create -q -f qcow2 -o cluster_size=64k base.qcow2 8M && \
             qemu-io -c 'write -P 0xb1 0 3M' -c 'write -P 0xb2 5M 3M' base.qcow2 >/dev/null && \
             qemu-img create -q -f qcow2 -o cluster_size=4k -b base.qcow2 -F qcow2 img.qcow2",
        ),
        (
            "compressed",
            4096,
            "qemu-img create -q -f raw src.raw 8M && \
             qemu-io -f raw -c 'write -P 0xc1 0 2M' -c 'write -P 0xc2 4M 4M' src.raw >/dev/null && \
             qemu-img convert -c -O qcow2 -o cluster_size=4k src.raw img.qcow2",
        ),
    ];
    for (v, (name, cluster, setup)) in variants.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sh(d, setup);
        sh(d, "qemu-img convert -O raw img.qcow2 before.raw");
        let mut model = std::fs::read(d.join("before.raw")).unwrap();
        assert_eq!(model.len() as u64, STRESS_SIZE);
        let path = d.join("img.qcow2");
        let opts = OpenOptions {
            format: Some("qcow2".into()),
            writable: true,
            ..Default::default()
        };
        let img = open_image(path.to_str().unwrap(), &opts).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let bounds: Vec<u64> = (0..=STRESS_THREADS)
            .map(|i| i * SHARED_START / STRESS_THREADS)
            .collect();
        let (private, _) = model.split_at_mut(SHARED_START as usize);
        std::thread::scope(|s| {
            let mut rest = private;
            for t in 0..STRESS_THREADS as usize {
                let (start, end) = (bounds[t], bounds[t + 1]);
                let (mine, tail) = rest.split_at_mut((end - start) as usize);
                rest = tail;
                let img = img.as_ref();
                let seed = (v as u64) << 32 | t as u64;
                s.spawn(move || {
                    stress_thread(img, seed, start, end, mine, *cluster, 300, deadline)
                });
            }
        });
        // The shared range ends with one known write (unaligned start).
        let mut rng = Rng(0x5eed + v as u64);
        let shared = &mut model[SHARED_START as usize..];
        rng.fill(shared);
        img.write_at(shared, SHARED_START).unwrap();
        let mut back = vec![0u8; STRESS_SIZE as usize];
        img.read_at(&mut back, 0).unwrap();
        assert!(back == model, "{name}: image differs from the model");
        drop(img);
        std::fs::write(d.join("model.raw"), &model).unwrap();
        let check = qemu_img(d, &["check", "img.qcow2"]);
        assert_eq!(check.code, 0, "{name}: {check:#?}");
        assert!(
            check.stdout.contains("No errors were found on the image."),
            "{name}: {check:#?}"
        );
        let cmp = qemu_img(
            d,
            &[
                "compare",
                "-f",
                "raw",
                "-F",
                "qcow2",
                "model.raw",
                "img.qcow2",
            ],
        );
        assert_eq!(cmp.code, 0, "{name}: {cmp:#?}");
    }
}
