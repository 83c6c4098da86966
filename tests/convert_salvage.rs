//! `convert --salvage` against qemu-img, and `convert -B`'s comparison
//! with the target's backing file (a deliberate difference: units equal
//! to the backing file stay unallocated).

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::util::{Oracle, Twin, qemu_img, require, sh};

/// Reads a big-endian u64 at `at`.
fn be64(file: &std::fs::File, at: u64) -> u64 {
    let mut b = [0u8; 8];
    file.read_exact_at(&mut b, at).unwrap();
    u64::from_be_bytes(b)
}

/// A qcow2 (64 KiB clusters) with plain data at 0, a compressed cluster
/// at 64 KiB whose deflate stream is garbage (every read of it fails), and
/// an L2 table whose entry for 256 KiB is unaligned (its status lookup
/// fails), then data again at 320 KiB.
fn damaged(dir: &Path) {
    sh(
        dir,
        "qemu-img create -q -f qcow2 d.qcow2 1M && \
         qemu-io -f qcow2 -c 'write -P 1 0 64k' -c 'write -c -P 2 64k 64k' \
             -c 'write -P 3 256k 64k' -c 'write -P 4 320k 64k' d.qcow2 >/dev/null",
    );
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("d.qcow2"))
        .unwrap();
    let l1 = be64(&file, 40);
    let l2 = be64(&file, l1) & 0x00ff_ffff_ffff_fe00;
    // Compressed entry (cluster_bits 16): host offset in the low 54 bits.
    let compressed = be64(&file, l2 + 8) & ((1 << 54) - 1);
    file.write_all_at(&[0xff; 32], compressed).unwrap();
    // Standard entry for cluster 4: the offset off a cluster boundary.
    let entry = be64(&file, l2 + 4 * 8);
    file.write_all_at(&(entry + 512).to_be_bytes(), l2 + 4 * 8)
        .unwrap();
}

#[test]
fn salvage_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(damaged);
    let m1 = [
        "convert",
        "--salvage",
        "-m",
        "1",
        "-O",
        "raw",
        "d.qcow2",
        "s1.raw",
    ];
    let quiet = [
        "convert",
        "--salvage",
        "-q",
        "-O",
        "qcow2",
        "d.qcow2",
        "s.qcow2",
    ];
    // Without --salvage: the first failure ends the copy.
    twin.assert_same(&["convert", "-O", "raw", "d.qcow2", "plain.raw"]);
    twin.assert_same(&quiet);
    twin.assert_same(&m1);
    // With requests in parallel, qemu-img's warnings come in the order its
    // coroutines happen to run; rbdimg's in offset order: the same lines.
    let (ours, theirs) = twin.run(&["convert", "--salvage", "-O", "raw", "d.qcow2", "s.raw"]);
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!((ours.code, &ours.stdout), (theirs.code, &theirs.stdout));
    assert_eq!(sorted(&ours.stderr), sorted(&theirs.stderr));
    assert!(ours.stderr.lines().count() > 500, "{}", ours.stderr);
    twin.assert_same_file("s.raw");
    twin.assert_same_file("s1.raw");
    twin.assert_same_image("s.qcow2", true);
}

/// `-B`: what equals the backing file is left to it (the target maps it at
/// depth 1), what differs is written, zeros over backing data are zeroed,
/// and the target reads exactly as the source. Long stretches without
/// data (no buffer) take the same decisions as buffered ones.
#[test]
fn convert_b_leaves_what_equals_the_backing_file_unallocated() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(
        d,
        "qemu-img create -q -f qcow2 base.qcow2 64M && \
         qemu-io -f qcow2 -c 'write -P 1 0 4M' -c 'write -P 5 40M 8M' base.qcow2 >/dev/null && \
         qemu-img create -q -f raw src.raw 64M && \
         qemu-io -f raw -c 'write -P 1 0 1M' -c 'write -P 2 1M 64k' -c 'write -P 1 2M 2M' \
             -c 'write -P 3 20M 64k' src.raw >/dev/null",
    );
    let convert = |target| {
        [
            "convert",
            "-B",
            "base.qcow2",
            "-F",
            "qcow2",
            "-O",
            "qcow2",
            "src.raw",
            target,
        ]
    };
    let theirs = qemu_img(d, &convert("t.qcow2"));
    assert_eq!(theirs.code, 0, "{theirs:#?}");
    let ours = crate::util::rbdimg(d, &convert("ours.qcow2"));
    assert_eq!(ours.code, 0, "{ours:#?}");
    let cmp = qemu_img(
        d,
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "qcow2",
            "src.raw",
            "ours.qcow2",
        ],
    );
    assert_eq!(cmp.code, 0, "{cmp:#?}");
    let check = qemu_img(d, &["check", "ours.qcow2"]);
    assert_eq!(check.code, 0, "{check:#?}");
    let map = qemu_img(d, &["map", "--output=json", "ours.qcow2"]);
    let v: serde_json::Value = serde_json::from_str(&map.stdout).unwrap();
    let at = |offset: u64| {
        v.as_array()
            .unwrap()
            .iter()
            .find(|e| {
                let (s, l) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
                s <= offset && offset < s + l
            })
            .cloned()
            .unwrap()
    };
    let depth = |offset| at(offset)["depth"].as_u64().unwrap();
    let data = |offset| at(offset)["data"].as_bool().unwrap();
    // Equal to the backing file: left to it.
    assert_eq!((depth(0), depth(2 << 20)), (1, 1), "{v:#}");
    // Different: written.
    assert_eq!((depth(1 << 20), data(1 << 20)), (0, true), "{v:#}");
    assert_eq!((depth(20 << 20), data(20 << 20)), (0, true), "{v:#}");
    // Zeros over backing data: zeroed in the target.
    assert_eq!((depth(44 << 20), data(44 << 20)), (0, false), "{v:#}");
    // Zeros over zeros: nothing written.
    assert_eq!((depth(10 << 20), data(10 << 20)), (1, false), "{v:#}");
    // qemu-img's target reads the same (it writes the equal data again).
    let cmp = qemu_img(d, &["compare", "t.qcow2", "ours.qcow2"]);
    assert_eq!(cmp.code, 0, "{cmp:#?}");
}
