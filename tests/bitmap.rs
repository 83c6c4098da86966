//! Persistent qcow2 bitmaps against qemu-img and qemu-io: the `bitmap`
//! command (every operation, in command-line order, and its errors),
//! bitmaps kept up to date by rbdimg's writes, `info`/`check` on them,
//! and `convert --bitmaps [--skip-broken-bitmaps]`. Images are compared
//! byte for byte: the bitmap tables and directory are written as QEMU
//! writes them.

use std::path::Path;

use crate::util::{Oracle, Twin, prepare, require, sh};

/// `a.qcow2` has data and two bitmaps (one dirtied by qemu-io writes, one
/// disabled), `o.qcow2` a bitmap to merge from, `v2.qcow2` and `r.raw`
/// cannot keep bitmaps, `in.qcow2` has a bitmap left in use (inconsistent).
const SETUP: &str = "\
    qemu-img create -q -f qcow2 a.qcow2 4M && \
    qemu-img bitmap --add a.qcow2 e1 && \
    qemu-img bitmap --add -g 128k --disable a.qcow2 d1 && \
    qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 3M 4k' a.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 o.qcow2 4M && \
    qemu-img bitmap --add -g 512k o.qcow2 src && \
    qemu-io -f qcow2 -c 'write -P 3 1M 64k' o.qcow2 >/dev/null && \
    qemu-img create -q -f qcow2 -o compat=0.10 v2.qcow2 1M && \
    qemu-img create -q -f raw r.raw 1M && \
    qemu-img create -q -f qcow2 in.qcow2 1M && \
    qemu-img bitmap --add in.qcow2 good && \
    qemu-img bitmap --add in.qcow2 broken && \
    qemu-io -f qcow2 -c 'write -P 4 0 64k' in.qcow2 >/dev/null";

const IMAGES: &[&str] = &["a.qcow2", "o.qcow2", "v2.qcow2", "r.raw", "in.qcow2"];

/// Marks the bitmap directory's first entry ("broken", the newest: QEMU
/// lists them newest first) in use, as a program that died with the image
/// open leaves it.
fn break_bitmap(dir: &Path) {
    let path = dir.join("in.qcow2");
    let mut image = std::fs::read(&path).unwrap();
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let mut at = be32(&image, 100) as usize;
    let directory = loop {
        let (magic, len) = (be32(&image, at), be32(&image, at + 4) as usize);
        assert_ne!(magic, 0, "no bitmaps extension");
        if magic == 0x2385_2875 {
            break u64::from_be_bytes(image[at + 24..at + 32].try_into().unwrap()) as usize;
        }
        at += 8 + len.div_ceil(8) * 8;
    };
    // Entry: table offset (8), table size (4), flags (4); bit 0 = in use.
    image[directory + 15] |= 1;
    std::fs::write(&path, image).unwrap();
}

fn setup() -> tempfile::TempDir {
    let dir = prepare(SETUP);
    break_bitmap(dir.path());
    dir
}

/// QEMU names an image node it was not told a name for "#block" and a
/// counter with two random digits: those digits are not compared.
fn unnamed_nodes(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("#block") {
        out.push_str(&rest[..at + 6]);
        rest = rest[at + 6..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out + rest
}

fn case(setup: &Path, args: &[&str]) {
    let twin = Twin::copy_of(setup);
    let (ours, theirs) = twin.run(args);
    assert_eq!(
        (ours.code, &ours.stdout, unnamed_nodes(&ours.stderr)),
        (theirs.code, &theirs.stdout, unnamed_nodes(&theirs.stderr)),
        "{args:?}"
    );
    for name in IMAGES {
        twin.assert_same_file(name);
    }
    // What the images say now, bitmaps included.
    for name in IMAGES {
        twin.assert_same(&["info", "--output=json", "-U", name]);
    }
}

#[test]
fn bitmap_operations_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["bitmap", "--add", "a.qcow2", "b0"],
        &["bitmap", "--add", "-g", "128k", "a.qcow2", "b0"],
        &["bitmap", "--add", "--granularity", "2M", "a.qcow2", "b0"],
        &["bitmap", "--add", "--disable", "a.qcow2", "b0"],
        &["bitmap", "--remove", "a.qcow2", "e1"],
        &["bitmap", "--clear", "a.qcow2", "e1"],
        &["bitmap", "--disable", "a.qcow2", "e1"],
        &["bitmap", "--enable", "a.qcow2", "d1"],
        // Operations run in command-line order.
        &[
            "bitmap",
            "--add",
            "--merge",
            "e1",
            "--disable",
            "a.qcow2",
            "b0",
        ],
        &["bitmap", "--clear", "--merge", "e1", "a.qcow2", "d1"],
        &[
            "bitmap", "--merge", "src", "-b", "o.qcow2", "-F", "qcow2", "a.qcow2", "e1",
        ],
        &["bitmap", "--merge", "src", "-b", "o.qcow2", "a.qcow2", "d1"],
        &["bitmap", "--remove", "--add", "a.qcow2", "e1"],
        &["bitmap", "-f", "qcow2", "--remove", "in.qcow2", "broken"],
        &[
            "bitmap",
            "--image-opts",
            "--add",
            "driver=qcow2,file.filename=a.qcow2",
            "b0",
        ],
    ];
    let setup = setup();
    for args in cases {
        case(setup.path(), args);
    }
}

#[test]
fn bitmap_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["bitmap"],
        &["bitmap", "a.qcow2", "b0"],
        &["bitmap", "--add", "a.qcow2"],
        &["bitmap", "--add", "a.qcow2", "b0", "extra"],
        &["bitmap", "--add", "missing.qcow2", "b0"],
        &["bitmap", "--add", "a.qcow2", "e1"],
        &["bitmap", "--remove", "a.qcow2", "nope"],
        &["bitmap", "--clear", "a.qcow2", "nope"],
        &["bitmap", "--add", "-g", "1000", "a.qcow2", "b0"],
        &["bitmap", "--add", "-g", "x", "a.qcow2", "b0"],
        &["bitmap", "--add", "-g", "4G", "a.qcow2", "b0"],
        &["bitmap", "--remove", "-g", "64k", "a.qcow2", "e1"],
        &["bitmap", "--add", "-b", "o.qcow2", "a.qcow2", "b0"],
        &["bitmap", "--merge", "nope", "a.qcow2", "e1"],
        &[
            "bitmap",
            "--merge",
            "src",
            "-b",
            "missing.qcow2",
            "a.qcow2",
            "e1",
        ],
        &["bitmap", "--merge", "e1", "a.qcow2", "nope"],
        &["bitmap", "--add", "v2.qcow2", "b0"],
        &["bitmap", "--add", "r.raw", "b0"],
        &["bitmap", "--add", "-f", "raw", "a.qcow2", "b0"],
        &["bitmap", "--clear", "in.qcow2", "broken"],
        &["bitmap", "--merge", "broken", "in.qcow2", "good"],
        &["bitmap", "--add", "a.qcow2", &"n".repeat(1024)],
        &[
            "bitmap",
            "-f",
            "qcow2",
            "--image-opts",
            "--add",
            "a.qcow2",
            "b0",
        ],
        &["bitmap", "--a", "a.qcow2", "b0"],
        &["bitmap", "--add=x", "a.qcow2", "b0"],
    ];
    let setup = setup();
    for args in cases {
        case(setup.path(), args);
    }
}

/// Writes through rbdimg set the bits of enabled bitmaps, as qemu-io's do:
/// the same writes by both leave the same image.
#[test]
fn rbdimg_writes_keep_bitmaps_up_to_date() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let setup = setup();
    let twin = Twin::copy_of(setup.path());
    // qemu-img convert -n is the write path both tools share.
    for side in [twin.ours(), twin.theirs()] {
        sh(
            &side,
            "qemu-img create -q -f raw patch.raw 4M && \
             qemu-io -f raw -c 'write -P 9 2M 192k' patch.raw >/dev/null",
        );
    }
    twin.assert_same(&[
        "convert",
        "-n",
        "-f",
        "raw",
        "-O",
        "qcow2",
        "patch.raw",
        "a.qcow2",
    ]);
    twin.assert_same_file("a.qcow2");
    twin.assert_same(&["resize", "a.qcow2", "8M"]);
    twin.assert_same_file("a.qcow2");
    twin.assert_same(&["check", "a.qcow2"]);
    twin.assert_same(&["check", "--output=json", "in.qcow2"]);
    twin.assert_same(&["check", "-r", "all", "in.qcow2"]);
    twin.assert_same_file("in.qcow2");
    twin.assert_same(&["check", "-r", "leaks", "a.qcow2"]);
    twin.assert_same_file("a.qcow2");
    twin.assert_same(&["info", "a.qcow2"]);
}

#[test]
fn convert_copies_bitmaps_as_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    // One request in flight (-m 1), so that data clusters are allocated
    // in offset order on both sides, as qemu-img always does.
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "convert",
                "-m",
                "1",
                "--bitmaps",
                "-O",
                "qcow2",
                "a.qcow2",
                "c.qcow2",
            ],
            "c.qcow2",
        ),
        (
            &[
                "convert",
                "-m",
                "1",
                "--bitmaps",
                "--skip-broken-bitmaps",
                "-O",
                "qcow2",
                "in.qcow2",
                "c.qcow2",
            ],
            "c.qcow2",
        ),
        // Errors: an inconsistent bitmap, no bitmap support, several sources.
        (
            &["convert", "--bitmaps", "-O", "qcow2", "in.qcow2", "c.qcow2"],
            "",
        ),
        (
            &[
                "convert",
                "--skip-broken-bitmaps",
                "-O",
                "qcow2",
                "a.qcow2",
                "c.qcow2",
            ],
            "",
        ),
        (
            &["convert", "--bitmaps", "-O", "raw", "a.qcow2", "c.raw"],
            "",
        ),
        (
            &["convert", "--bitmaps", "-O", "qcow2", "r.raw", "c.qcow2"],
            "",
        ),
        (
            &[
                "convert",
                "--bitmaps",
                "-O",
                "qcow2",
                "a.qcow2",
                "o.qcow2",
                "c.qcow2",
            ],
            "",
        ),
    ];
    let setup = setup();
    for (args, made) in cases {
        let twin = Twin::copy_of(setup.path());
        twin.assert_same(args);
        if !made.is_empty() {
            twin.assert_same_file(made);
            twin.assert_same(&["info", "--output=json", made]);
        }
    }
}

/// `rebase` writes what differs into the image: its enabled bitmaps
/// record those writes as qemu-img's do (the images are byte-identical).
#[test]
fn rebase_writes_set_bitmap_bits() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let setup = prepare(
        "qemu-img create -q -f qcow2 base.qcow2 4M && \
         qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 3M 64k' base.qcow2 >/dev/null && \
         qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 && \
         qemu-img bitmap --add top.qcow2 t && \
         qemu-img bitmap --add -g 256k --disable top.qcow2 off && \
         qemu-io -f qcow2 -c 'write -P 3 512k 64k' top.qcow2 >/dev/null",
    );
    let twin = Twin::copy_of(setup.path());
    twin.assert_same(&["rebase", "-b", "", "top.qcow2"]);
    twin.assert_same_file("top.qcow2");
    twin.assert_same(&["info", "top.qcow2"]);
}
