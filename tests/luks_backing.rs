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
