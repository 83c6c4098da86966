//! Corrupted qcow2 images: every one must be refused (or read) cleanly,
//! with an error message and exit code 1, bounded memory, and no panic.

use std::path::Path;
use std::process::Command;

use crate::util::{Oracle, RBDIMG, Twin, make_raw, qemu_img, require, sh};

/// Byte patches: (file offset, bytes).
type Patches<'a> = &'a [(u64, &'a [u8])];

/// Patches big-endian fields of a fresh 4 MiB qcow2 with data in it.
fn damaged(dir: &Path, name: &str, patches: &[(u64, &[u8])]) {
    let path = dir.join(name);
    sh(
        dir,
        &format!(
            "qemu-img create -q -f qcow2 -o cluster_size=4k {name} 4M && \
             qemu-io -c 'write -P 7 0 1M' {name} >/dev/null"
        ),
    );
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    for (at, bytes) in patches {
        f.write_all_at(bytes, *at).unwrap();
    }
}

/// Runs rbdimg with a 2 GiB address-space limit.
fn run_limited(dir: &Path, args: &str) -> (i32, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("ulimit -v 2097152; exec {RBDIMG} {args}"))
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn corrupted_images_fail_cleanly() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let huge = u64::MAX.to_be_bytes();
    let cases: &[(&str, Patches, &str)] = &[
        (
            "magic.qcow2",
            &[(0, b"XXXX")],
            "Image is not in qcow2 format",
        ),
        (
            "version.qcow2",
            &[(4, &[0, 0, 0, 9])],
            "Unsupported qcow2 version 9",
        ),
        (
            "cbits.qcow2",
            &[(20, &[0, 0, 0, 40])],
            "Unsupported cluster size: 2^40",
        ),
        (
            "l1off.qcow2",
            &[(40, &[0, 0, 0, 0, 0, 0, 0, 3])],
            "Active L1 table offset invalid",
        ),
        (
            "l1size.qcow2",
            &[(36, &[0xff, 0xff, 0xff, 0xff])],
            "Active L1 table too large",
        ),
        (
            "l1small.qcow2",
            &[(36, &[0, 0, 0, 0])],
            "L1 table is too small",
        ),
        ("size.qcow2", &[(24, &huge)], "Image is too big"),
        (
            "rtoff.qcow2",
            &[(48, &[0, 0, 0, 0, 0, 0, 0x10, 1])],
            "Reference count table offset invalid",
        ),
        (
            "rtsize.qcow2",
            &[(56, &[0xff, 0xff, 0xff, 0xff])],
            "Reference count table too large",
        ),
        (
            "rtnone.qcow2",
            &[(56, &[0, 0, 0, 0])],
            "Image does not contain a reference count table",
        ),
        (
            "snaps.qcow2",
            &[(60, &[0xff, 0xff, 0xff, 0xff])],
            "Snapshot table too large",
        ),
        (
            "incompat.qcow2",
            &[(72, &[0x80, 0, 0, 0, 0, 0, 0, 0])],
            "Unsupported qcow2 feature(s)",
        ),
        (
            "hdrlen.qcow2",
            &[(100, &[0xff, 0xff, 0xff, 0xf8])],
            "qcow2 header exceeds cluster size",
        ),
        (
            "order.qcow2",
            &[(96, &[0, 0, 0, 7])],
            "Reference count entry width too large",
        ),
        (
            "crypt.qcow2",
            &[(32, &[0, 0, 0, 2])],
            "Missing CRYPTO header for crypt method 2",
        ),
        (
            "backing.qcow2",
            &[(8, &[0, 0, 0, 0, 0, 0, 0x0f, 0xf0]), (16, &[0, 0, 0x10, 0])],
            "Backing file name too long",
        ),
    ];
    for (name, patches, message) in cases {
        damaged(d, name, patches);
        let (code, stderr) = run_limited(d, &format!("info -f qcow2 {name}"));
        assert_eq!(code, 1, "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: {stderr}");
    }
}

#[test]
fn broken_tables_are_reported_not_read_as_garbage() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // L1 table at cluster 3 (4 KiB clusters): point L1[0] at an unaligned
    // L2 table, and at an L2 table far beyond the end of the file.
    damaged(
        d,
        "l2unaligned.qcow2",
        &[(3 * 4096, &[0x80, 0, 0, 0, 0, 0, 0x12, 0x00])],
    );
    damaged(
        d,
        "l2far.qcow2",
        &[(3 * 4096, &[0x80, 0, 0, 0, 0x10, 0, 0, 0])],
    );
    // Refcount table entry 0 pointing past the end of the file.
    damaged(d, "rbfar.qcow2", &[(4096, &[0, 0, 0, 1, 0, 0, 0, 0])]);
    let (code, stderr) = run_limited(d, "convert -O raw l2unaligned.qcow2 a.raw");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("L2 table offset 0x1200 unaligned"),
        "{stderr}"
    );
    // An L2 table past the end reads as zeros, as in qemu-img.
    let (code, stderr) = run_limited(d, "convert -O raw l2far.qcow2 b.raw");
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run_limited(d, "check rbfar.qcow2");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("ERROR refcount block 0 is outside image"),
        "{stderr}"
    );
    // Writes to a damaged image mark it corrupt and fail.
    let (code, stderr) = run_limited(d, "resize l2unaligned.qcow2 8M");
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = run_limited(d, "convert -n -O qcow2 b.raw l2unaligned.qcow2");
    assert_eq!(code, 1, "{stderr}");
    let (code, stderr) = run_limited(d, "resize l2unaligned.qcow2 9M");
    assert_eq!(code, 1);
    assert!(
        stderr.contains("Image is corrupt; cannot be opened read/write"),
        "{stderr}"
    );
}

#[test]
fn backing_loops_are_refused() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(
        d,
        "qemu-img create -q -f qcow2 -u -b l2.qcow2 -F qcow2 l1.qcow2 1M && \
         qemu-img create -q -f qcow2 -u -b l1.qcow2 -F qcow2 l2.qcow2 1M",
    );
    for args in [
        "convert -O raw l1.qcow2 x.raw",
        "info --backing-chain l1.qcow2",
    ] {
        let (code, stderr) = run_limited(d, args);
        assert_eq!(code, 1, "{args}: {stderr}");
        assert!(
            stderr.contains("creates an infinite loop"),
            "{args}: {stderr}"
        );
    }
}

/// The offset of the bitmap directory, from the bitmaps header extension.
fn bitmap_directory(image: &[u8]) -> u64 {
    let be32 = |at: usize| u32::from_be_bytes(image[at..at + 4].try_into().unwrap());
    let mut at = be32(100) as usize;
    loop {
        let (magic, len) = (be32(at), be32(at + 4) as usize);
        assert_ne!(magic, 0, "no bitmaps extension");
        if magic == 0x2385_2875 {
            return u64::from_be_bytes(image[at + 24..at + 32].try_into().unwrap());
        }
        at += 8 + len.div_ceil(8) * 8;
    }
}

/// Bug: `check` read a bitmap table of `table_size * 8` bytes with
/// table_size straight from the bitmap directory, and aborted allocating
/// 32 GiB for 0xffffffff. Directory entries must now satisfy QEMU's
/// constraints (at most 512 MiB of bitmap data, an 8 MiB table here); an
/// image whose directory breaks them does not open, as in qemu-img, whose
/// words and exit code every command repeats.
#[test]
fn oversized_bitmap_table_is_not_allocated() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    sh(
        d,
        "qemu-img create -q -f qcow2 -o cluster_size=512 bm.qcow2 1M && \
         qemu-io -c 'write -P 1 0 1k' bm.qcow2 >/dev/null && \
         qemu-img bitmap --add -g 64k bm.qcow2 b0",
    );
    let path = d.join("bm.qcow2");
    let directory = bitmap_directory(&std::fs::read(&path).unwrap());
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&u32::MAX.to_be_bytes(), directory + 8)
        .unwrap();
    for args in [
        "check bm.qcow2",
        "info bm.qcow2",
        "convert -O raw bm.qcow2 bm.raw",
    ] {
        let (code, stderr) = run_limited(d, args);
        let theirs = qemu_img(d, &args.split(' ').collect::<Vec<_>>());
        assert_eq!(
            (code, stderr.as_str()),
            (
                1,
                "rbdimg: Could not open 'bm.qcow2': Bitmap 'b0' doesn't satisfy the constraints\n"
            ),
            "{args}"
        );
        assert_eq!(theirs.code, 1, "{args}");
        assert_eq!(
            theirs.stderr,
            stderr.replacen("rbdimg", "qemu-img", 1),
            "{args}"
        );
    }
}

/// Issue 9: garbage in L1 entries, and an L2 entry with the zero flag and
/// an unaligned offset, are corruption on every read path, as QEMU's
/// `qcow2_get_host_offset` says (compare exits 3 with "Sector allocation
/// test failed", convert fails on block status); check reports and
/// repairs exactly what qemu-img does (entries with reserved bits are
/// reported, never "repaired").
#[test]
fn broken_l1_and_l2_entries_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    // The 4 KiB-cluster image of `damaged`: L1 at 0x3000, L2 at 0x4000,
    // data from 0x5000; every patch is one big-endian table entry.
    let cases: &[(&str, u64, u64)] = &[
        ("l1garbage", 0x3008, 0xdead_beef_dead_beef),
        ("l1garbage0", 0x3000, 0xdead_beef_dead_beef),
        ("l1reserved", 0x3000, 0x8000_0000_0000_40fe),
        ("l1high", 0x3000, 0xff00_0000_0000_4000),
        ("l2zerounaligned", 0x4000, 0x0000_0000_0000_5201),
        ("l2unaligned", 0x4000, 0x8000_0000_0000_5200),
        ("l2zeroplain", 0x4000, 0x0000_0000_0000_0001),
        ("l2reserved", 0x4000, 0x8000_0000_0000_50fe),
        ("l2compressedgarbage", 0x4000, 0x4fff_ffff_ffff_ffff),
        ("l2far", 0x4000, 0x8000_0100_0000_0000),
    ];
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("ref.raw"), 4 << 20, &[(0, 7, 1 << 20)]);
        for (name, at, entry) in cases {
            damaged(
                dir,
                &format!("{name}.qcow2"),
                &[(*at, &entry.to_be_bytes())],
            );
        }
    });
    for (name, _, _) in cases {
        let image = format!("{name}.qcow2");
        for args in [
            &["compare", "ref.raw", image.as_str()][..],
            &["compare", image.as_str(), "ref.raw"],
            &["info", image.as_str()],
            &["info", "--output=json", image.as_str()],
            &["convert", "-O", "raw", image.as_str(), "out.raw"],
            &["check", image.as_str()],
            &["check", "--output=json", image.as_str()],
        ] {
            twin.assert_same(args);
        }
        twin.assert_same_file("out.raw");
        for repair in ["leaks", "all"] {
            let copy = format!("{name}-{repair}.qcow2");
            for dir in [twin.ours(), twin.theirs()] {
                std::fs::copy(dir.join(&image), dir.join(&copy)).unwrap();
            }
            twin.assert_same(&["check", "-r", repair, &copy]);
            twin.assert_same_file(&copy);
            twin.assert_same(&["check", &copy]);
        }
    }
}

/// Unknown incompatible feature bits are named from the image's own
/// feature name table, as qemu-img names them: table entries of the
/// incompatible kind for set bits (a 46-byte name without a terminator
/// is cut there), then the bits no entry names as one hex mask.
#[test]
fn unknown_features_are_named_from_the_feature_table() {
    if !require(Oracle::QemuImg) {
        return;
    }
    fn patch(dir: &Path) {
        sh(dir, "qemu-img create -q -f qcow2 f.qcow2 1M");
        let path = dir.join("f.qcow2");
        let mut bytes = std::fs::read(&path).unwrap();
        // Entries are 48 bytes: kind, bit, name[46] (NUL-padded).
        let mut rename = |old: &[u8], bit: u8, name: &[u8]| {
            let at = bytes
                .windows(old.len())
                .position(|w| w == old)
                .expect("qemu-img writes a feature name table")
                - 2;
            assert_eq!(bytes[at], 0, "an incompatible feature's entry");
            bytes[at + 1] = bit;
            let field = &mut bytes[at + 2..at + 48];
            field.fill(0);
            field[..name.len()].copy_from_slice(name);
        };
        rename(b"extended L2 entries", 20, b"future feature");
        rename(b"compression type", 33, &[b'n'; 46]);
        let mask: u64 = (1 << 20) | (1 << 33) | (1 << 40);
        bytes[72..80].copy_from_slice(&mask.to_be_bytes());
        std::fs::write(&path, bytes).unwrap();
    }
    let twin = Twin::new(patch);
    for args in [
        &["info", "f.qcow2"][..],
        &["info", "--output=json", "-f", "qcow2", "f.qcow2"],
        &["check", "f.qcow2"],
        &["convert", "-O", "raw", "f.qcow2", "out.raw"],
    ] {
        let out = twin.assert_same(args);
        assert_eq!(out.code, 1, "{args:?}: {out:#?}");
        // In table order; the name without a terminator cut at 46 bytes.
        let names = format!(
            "Unsupported qcow2 feature(s): {}, future feature, Unknown incompatible feature: 10000000000\n",
            "n".repeat(46)
        );
        assert!(out.stderr.ends_with(&names), "{args:?}: {}", out.stderr);
    }
}
