//! An encrypted backing file unlocked by the name of the image above it,
//! as qemu-img does: `backing.encrypt.key-secret=` under --image-opts,
//! `"backing": {...}` in `json:` (QEMU's `bdrv_open_backing_file`: a
//! `driver` or `file` there replaces the header's, every other option goes
//! to the backing node), next to qemu-img on the same images.

use crate::util::{Oracle, Twin, prepare, require};

const OBJECTS: [&str; 4] = [
    "--object",
    "secret,id=s0,data=backing-s0-pass",
    "--object",
    "secret,id=s1,data=backing-s1-pass",
];

/// An encrypted base with data, a plain overlay with data of its own, a
/// plain image without a backing file and a raw file.
const IMAGES: &str = "\
    set -e
    O='--object secret,id=s0,data=backing-s0-pass'
    qemu-img create -q $O -f qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10 base.qcow2 1M
    qemu-io $O --image-opts driver=qcow2,file.filename=base.qcow2,encrypt.key-secret=s0 -c 'write -P 0x11 0 64k' -c 'write -P 0x22 512k 4k' >/dev/null
    qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2 1M
    qemu-io $O --image-opts driver=qcow2,file.filename=top.qcow2,backing.encrypt.key-secret=s0 -c 'write -P 0x33 32k 64k' >/dev/null
    qemu-img create -q -f qcow2 plain.qcow2 1M
    qemu-img create -q -f raw r.raw 1M
";

const TOP: &str = "driver=qcow2,file.filename=top.qcow2";

#[test]
fn backing_options_unlock_as_in_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let made = prepare(IMAGES);
    let twin = Twin::copy_of(made.path());
    let unlocked = format!("{TOP},backing.encrypt.key-secret=s0");
    let names: Vec<(String, bool)> = vec![
        // Unlocked: every way of saying it.
        (unlocked.clone(), true),
        (format!("{TOP},backing.driver=qcow2,backing.file.filename=base.qcow2,backing.encrypt.key-secret=s0"), true),
        (r#"json:{"driver":"qcow2","file.filename":"top.qcow2","backing":{"encrypt.key-secret":"s0"}}"#.into(), false),
        (r#"json:{"driver":"qcow2","file.filename":"top.qcow2","backing":{"driver":"qcow2","file.filename":"base.qcow2","encrypt.key-secret":"s0"}}"#.into(), false),
        (r#"json:{"driver":"qcow2","file":{"driver":"file","filename":"top.qcow2"},"backing":{"encrypt.key-secret":"s0","file":{"driver":"file","filename":"base.qcow2"}}}"#.into(), false),
        // A backing driver of the name's choosing reads the base as raw.
        (format!("{TOP},backing.driver=raw"), true),
        // Refusals, in QEMU's words.
        ("top.qcow2".into(), false),
        (format!("{TOP},backing.encrypt.key-secret=s1"), true),
        (format!("{TOP},backing.encrypt.key-secret=nosuch"), true),
        (format!("{TOP},backing.encrypt.key-secret=s0,backing.foo=1"), true),
        (format!("{TOP},backing.file.filename=r.raw"), true),
        ("driver=qcow2,file.filename=plain.qcow2,backing.encrypt.key-secret=s0".into(), true),
        ("driver=raw,file.filename=r.raw,backing.encrypt.key-secret=s0".into(), true),
    ];
    for (i, (name, image_opts)) in names.iter().enumerate() {
        let out = format!("out{i}.raw");
        let mut name_args: Vec<&str> = Vec::new();
        if *image_opts {
            name_args.push("--image-opts");
        }
        name_args.push(name);
        let with = |cmd: &[&str], tail: &[&str]| {
            let mut args: Vec<&str> = cmd.to_vec();
            args.extend(OBJECTS);
            args.extend(&name_args);
            args.extend(tail);
            twin.assert_same(&args);
        };
        with(&["convert", "-O", "raw"], &[&out]);
        twin.assert_same_file(&out);
        with(&["map", "--output=json"], &[]);
        with(&["info"], &[]);
        with(&["check"], &[]);
    }
    // The overlay's data over the base's, as qemu-img reads them.
    let mut args = vec!["compare"];
    args.extend(OBJECTS);
    args.extend([
        "--image-opts",
        &unlocked,
        "driver=raw,file.filename=out0.raw",
    ]);
    assert_eq!(twin.assert_same(&args).code, 0);
    let data = std::fs::read(twin.ours().join("out0.raw")).unwrap();
    assert_eq!(&data[..32768], &[0x11; 32768][..]);
    assert_eq!(&data[32768..98304], &[0x33; 65536][..]);
    assert_eq!(&data[512 << 10..(512 << 10) + 4096], &[0x22; 4096][..]);
}

/// Three encrypted qcow2 images, each over the one before, each with data
/// of its own.
const CHAIN: &str = "\
    set -e
    O='--object secret,id=s0,data=backing-s0-pass'
    E=encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10
    K=encrypt.key-secret=s0
    qemu-img create -q $O -f qcow2 -o $E base.qcow2 4M
    qemu-io $O --image-opts driver=qcow2,file.filename=base.qcow2,$K -c 'write -P 1 0 1M' >/dev/null
    qemu-img create -q $O -f qcow2 -o $E,backing_file=base.qcow2,backing_fmt=qcow2 mid.qcow2
    qemu-io $O --image-opts driver=qcow2,file.filename=mid.qcow2,$K,backing.$K -c 'write -P 2 512k 1M' >/dev/null
    qemu-img create -q $O -f qcow2 -o $E,backing_file=mid.qcow2,backing_fmt=qcow2 top.qcow2
    qemu-io $O --image-opts driver=qcow2,file.filename=top.qcow2,$K,backing.$K,backing.backing.$K -c 'write -P 3 1M 1M' >/dev/null
";

const CHAIN_TOP: &str = "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0,\
    backing.encrypt.key-secret=s0,backing.backing.encrypt.key-secret=s0";

/// `commit` down an encrypted chain writes the base it reopens with the
/// `backing.` options of the top's name, and empties the top without its
/// LUKS header; `rebase -b ''` reads the whole chain: every image byte for
/// byte as qemu-img leaves it.
#[test]
fn commit_of_an_encrypted_chain_as_in_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let made = prepare(CHAIN);
    let twin = Twin::copy_of(made.path());
    let commit = |tail: &[&str]| {
        let mut args = vec!["commit", OBJECTS[0], OBJECTS[1]];
        args.extend(tail);
        twin.assert_same(&args)
    };
    // The top's options say nothing of the base's key.
    commit(&[
        "--image-opts",
        "driver=qcow2,file.filename=top.qcow2,encrypt.key-secret=s0",
    ]);
    assert_eq!(commit(&["--image-opts", CHAIN_TOP]).code, 0);
    assert_eq!(commit(&["-d", "--image-opts", CHAIN_TOP]).code, 0);
    for image in ["top.qcow2", "mid.qcow2", "base.qcow2"] {
        twin.assert_same_file(image);
    }

    // Rebasing onto nothing copies the encrypted chain's data into the top.
    let twin = Twin::copy_of(made.path());
    let rebase = [
        "rebase",
        OBJECTS[0],
        OBJECTS[1],
        "-b",
        "",
        "--image-opts",
        CHAIN_TOP,
    ];
    assert_eq!(twin.assert_same(&rebase).code, 0);
    twin.assert_same_file("top.qcow2");

    // Deliberate difference: -b finds an encrypted image by its name, where
    // qemu-img compares it with the json: filename its options give it.
    let twin = Twin::copy_of(made.path());
    let (ours, theirs) = twin.run(&[
        "commit",
        OBJECTS[0],
        OBJECTS[1],
        "-b",
        "base.qcow2",
        "--image-opts",
        CHAIN_TOP,
    ]);
    assert!(
        theirs.stderr.contains("Did not find 'base.qcow2'"),
        "{theirs:?}"
    );
    assert_eq!(ours.code, 0, "{ours:?}");
    let reads = |dir: &std::path::Path, name: &str| {
        crate::util::qemu_img(
            dir,
            &[
                "convert",
                OBJECTS[0],
                OBJECTS[1],
                "--image-opts",
                name,
                "-O",
                "raw",
                "out.raw",
            ],
        );
        std::fs::read(dir.join("out.raw")).unwrap()
    };
    let top = reads(&twin.theirs(), CHAIN_TOP);
    assert_eq!(
        reads(
            &twin.ours(),
            "driver=qcow2,file.filename=base.qcow2,encrypt.key-secret=s0"
        ),
        top,
        "the base holds what the top showed"
    );
}
