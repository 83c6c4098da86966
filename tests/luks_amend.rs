//! `amend` of LUKS key slots, for the raw `luks` format (`state`,
//! `keyslot`, `new-secret`, `old-secret`, `iter-time`) and for qcow2 with
//! `encrypt.format=luks` (the same under `encrypt.`): every refusal and
//! every success next to qemu-img's on copies of the same images (key
//! material is random, so sides are compared by behaviour and slot states,
//! not bytes); what one side amends, the other opens with the new secret
//! and not with the erased one; raw LUKS inside RBD images on both
//! backends.

use std::path::Path;

use crate::rbd::{Backend, both_backends, rbdimg, rbdimg_ok, unique};
use crate::util::{Oracle, Twin, prepare, qemu_img, require};

/// Passphrases nobody else uses, so a test can look for them in output.
const SECRETS: [&str; 4] = [
    "secret,id=s0,data=Zebra-s0-passphrase",
    "secret,id=s1,data=Zebra-s1-passphrase",
    "secret,id=s2,data=Zebra-s2-passphrase",
    // A byte that is not UTF-8 (0xff), which a passphrase must be.
    "secret,id=bad,data=/w==,format=base64",
];

fn objects() -> Vec<&'static str> {
    SECRETS.iter().flat_map(|s| ["--object", s]).collect()
}

const LUKS: &str = "driver=luks,file.filename=a.luks,key-secret=";
const QCOW2: &str = "driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=";

/// Images qemu-img makes: a raw LUKS volume and a v2 encrypted qcow2, both
/// unlocked by s0, with data to read back.
const IMAGES: &str = "\
    set -e
    O='--object secret,id=s0,data=Zebra-s0-passphrase'
    qemu-img create -q $O -f luks -o key-secret=s0,iter-time=10 a.luks 1M
    qemu-img create -q $O -f qcow2 -o encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10,compat=0.10 a.qcow2 1M
    qemu-img create -q -f qcow2 p.qcow2 1M
    qemu-io $O --image-opts driver=luks,file.filename=a.luks,key-secret=s0 -c 'write -P 0x5a 4096 8192' >/dev/null
    qemu-io $O --image-opts driver=qcow2,file.filename=a.qcow2,encrypt.key-secret=s0 -c 'write -P 0xa5 0 65536' >/dev/null
";

/// The active flags of the key slots qemu-img's `info` reports ("10010000").
fn slots(dir: &Path, file: &str) -> String {
    let out = qemu_img(dir, &["info", "--output=json", file]);
    assert_eq!(out.code, 0, "{out:#?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let data = &v["format-specific"]["data"];
    let luks = data.get("encrypt").unwrap_or(data);
    luks["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| if s["active"] == true { '1' } else { '0' })
        .collect()
}

/// Each case runs on both sides in order (later ones see what earlier
/// ones left): `-o` options, then the image and any flags.
const CASES: &[(&str, &str, &[&str])] = &[
    // QAPI's reading of the options.
    ("state=foo", "luks:s0", &[]),
    ("state=active", "luks:s0", &[]),
    ("keyslot=3", "luks:s0", &[]),
    ("keyslot=abc", "luks:s0", &[]),
    (
        "state=active,new-secret=s1,keyslot=18446744073709551616",
        "luks:s0",
        &[],
    ),
    (
        "state=active,new-secret=s1,keyslot=18446744073709551615",
        "luks:s0",
        &[],
    ),
    (
        "state=active,new-secret=s1,iter-time=18446744073709551615",
        "luks:s0",
        &[],
    ),
    ("key-secret=s0", "luks:s0", &[]),
    // Adding: refusals.
    ("state=active,new-secret=s1,old-secret=s0", "luks:s0", &[]),
    ("state=active,new-secret=s1,keyslot=8", "luks:s0", &[]),
    ("state=active,new-secret=s1,keyslot=-1", "luks:s0", &[]),
    (
        "state=active,new-secret=s1,keyslot=4294967296",
        "luks:s0",
        &[],
    ),
    ("state=active,new-secret=bad,keyslot=5", "luks:s0", &[]),
    ("state=active,new-secret=nosuch,keyslot=5", "luks:s0", &[]),
    (
        "state=active,new-secret=s1,iter-time=10",
        "a.luks",
        &["-f", "luks"],
    ),
    ("state=active,new-secret=s1,iter-time=10", "luks:s2", &[]),
    // Adding: the first free slot, a slot given in hex, by another secret.
    ("state=active,new-secret=s1,iter-time=10", "luks:s0", &[]),
    (
        "state=active,new-secret=s2,iter-time=10,keyslot=0x3",
        "json-luks:s0",
        &[],
    ),
    ("state=active,new-secret=s2,iter-time=0", "luks:s1", &["-p"]),
    (
        "state=active,new-secret=s2,keyslot=3,iter-time=10",
        "luks:s0",
        &[],
    ),
    // Erasing: refusals.
    ("state=inactive,new-secret=s2", "luks:s0", &[]),
    ("state=inactive,iter-time=10", "luks:s0", &[]),
    ("state=inactive", "luks:s0", &[]),
    ("state=inactive,keyslot=9", "luks:s0", &[]),
    ("state=inactive,keyslot=-1", "luks:s0", &[]),
    ("state=inactive,keyslot=2147483648", "luks:s0", &[]),
    ("state=inactive,keyslot=5", "luks:s0", &[]),
    ("state=inactive,keyslot=3,old-secret=s0", "luks:s0", &[]),
    ("state=inactive,keyslot=3,old-secret=nosuch", "luks:s0", &[]),
    ("state=inactive,old-secret=bad", "luks:s0", &[]),
    ("state=inactive,keyslot=5,old-secret=s1", "luks:s0", &[]),
    // Erasing: by slot (checked against old-secret), by passphrase.
    ("state=inactive,keyslot=1,old-secret=s1", "luks:s0", &[]),
    ("state=inactive,old-secret=s2", "luks:s0", &["-p"]),
    ("state=inactive,old-secret=s2", "luks:s0", &[]),
    // The last slot only with --force; then nothing opens the volume.
    ("state=inactive,old-secret=s0", "luks:s0", &[]),
    ("state=inactive,keyslot=0", "luks:s0", &[]),
    ("state=inactive,keyslot=0", "luks:s0", &["--force"]),
    (
        "state=active,new-secret=s1,iter-time=10",
        "luks:s0",
        &["-p"],
    ),
    // qcow2: encrypt.* next to the other options, in QEMU's order.
    ("encrypt.state=active,encrypt.new-secret=s1", "p.qcow2", &[]),
    ("encrypt.state=active,encrypt.new-secret=s1", "a.qcow2", &[]),
    ("encrypt.keyslot=abc", "qcow2:s0", &[]),
    ("encrypt.keyslot=1", "qcow2:s0", &[]),
    ("encrypt.state=foo", "qcow2:s0", &[]),
    ("encrypt.format=luks", "qcow2:s0", &[]),
    ("encrypt.key-secret=s0", "qcow2:s0", &[]),
    (
        "compat=1.1,encrypt.state=active,encrypt.new-secret=s1,encrypt.keyslot=9",
        "qcow2:s0",
        &[],
    ),
    (
        "lazy_refcounts=on,encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10",
        "qcow2:s0",
        &[],
    ),
    (
        "refcount_bits=8,encrypt.state=active,encrypt.new-secret=s2,encrypt.iter-time=10",
        "qcow2:s0",
        &[],
    ),
    (
        "compat=0.10,encrypt.state=inactive,encrypt.keyslot=2",
        "qcow2:s0",
        &[],
    ),
    (
        "encrypt.state=inactive,encrypt.keyslot=0",
        "json-qcow2:s0",
        &["-f", "qcow2"],
    ),
    (
        "encrypt.state=inactive,encrypt.old-secret=s1",
        "qcow2:s1",
        &[],
    ),
    (
        "encrypt.state=inactive,encrypt.old-secret=s1",
        "qcow2:s1",
        &["--force"],
    ),
    ("size=2M", "qcow2:s1", &[]),
];

/// The image argument a case names: `luks:ID` / `qcow2:ID` are
/// --image-opts unlocked by ID, `json-...:ID` the same as `json:`.
fn image_args(spec: &str) -> Vec<String> {
    let (kind, id) = spec.split_once(':').unwrap_or((spec, ""));
    match kind {
        "luks" => vec!["--image-opts".into(), format!("{LUKS}{id}")],
        "qcow2" => vec!["--image-opts".into(), format!("{QCOW2}{id}")],
        "json-luks" => vec![format!(
            r#"json:{{"driver":"luks","file.filename":"a.luks","key-secret":"{id}"}}"#
        )],
        "json-qcow2" => vec![format!(
            r#"json:{{"driver":"qcow2","file.filename":"a.qcow2","encrypt.key-secret":"{id}"}}"#
        )],
        _ => vec![spec.into()],
    }
}

#[test]
fn every_case_as_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let made = prepare(IMAGES);
    let twin = Twin::copy_of(made.path());
    for (options, image, flags) in CASES {
        let mut args: Vec<String> = vec!["amend".into()];
        args.extend(objects().iter().map(|s| s.to_string()));
        args.extend(flags.iter().map(|s| s.to_string()));
        args.extend(["-o".into(), options.to_string()]);
        args.extend(image_args(image));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = twin.assert_same(&args);
        assert!(
            !format!("{out:?}").contains("Zebra"),
            "a passphrase was printed: {out:?}"
        );
        for file in ["a.luks", "a.qcow2"] {
            assert_eq!(
                slots(&twin.ours(), file),
                slots(&twin.theirs(), file),
                "{file} after -o {options}"
            );
        }
    }
    assert_eq!(slots(&twin.ours(), "a.luks"), "00000000");
    assert_eq!(slots(&twin.ours(), "a.qcow2"), "00000000");
    // What rbdimg left is qemu-img's to check (refcounts, compat, lazy).
    let info = |dir: &Path| qemu_img(dir, &["info", "--output=json", "a.qcow2"]).stdout;
    let strip = |text: String| {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let data = &mut v["format-specific"]["data"];
        data.as_object_mut().unwrap().remove("encrypt");
        v["format-specific"]["data"].clone()
    };
    assert_eq!(strip(info(&twin.ours())), strip(info(&twin.theirs())));
}

/// An `iter-time` that does not fit QEMU's scaling fails in the slot write
/// with its hint after the message, unterminated (the count is this
/// machine's PBKDF2 rate, so the lines are compared by shape).
#[test]
fn an_iter_time_too_large_to_scale() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let made = prepare(IMAGES);
    let twin = Twin::copy_of(made.path());
    for (options, image) in [
        ("state=active,new-secret=s1,iter-time=-1", "luks:s0"),
        (
            "encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=-1",
            "qcow2:s0",
        ),
    ] {
        let mut args: Vec<String> = vec!["amend".into()];
        args.extend(objects().iter().map(|s| s.to_string()));
        args.extend(["-o".into(), options.to_string()]);
        args.extend(image_args(image));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ours, theirs) = twin.run(&args);
        for out in [&ours, &theirs] {
            assert_eq!(out.code, 1, "{out:#?}");
            let rest = out
                .stderr
                .strip_prefix("qemu-img: PBKDF iterations ")
                .map(|r| r.trim_start_matches(|c: char| c.is_ascii_digit()));
            assert_eq!(
                rest,
                Some(
                    " too large to scale: Numerical result out of range\nFailed to write to keyslot 1"
                ),
                "{out:#?}"
            );
        }
    }
    assert_eq!(slots(&twin.ours(), "a.luks"), "10000000");
}

/// Reads 1 MiB of `image` (--image-opts) with qemu-io's `read -P`, or the
/// error qemu-io prints.
fn qemu_io_reads(dir: &Path, secret: &str, image: &str, pattern: &str) -> Result<(), String> {
    let cmd =
        format!("qemu-io --object '{secret}' --image-opts '{image}' -c 'read -P {pattern}' 2>&1");
    let out = std::process::Command::new("bash")
        .args(["-c", &cmd])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() && !text.contains("Pattern verification failed") {
        true if text.contains("read ") => Ok(()),
        _ => Err(text),
    }
}

/// rbdimg amends, qemu-io opens with the new passphrase (same data) and
/// not with the erased one; qemu-img amends, rbdimg does likewise; and
/// cryptsetup sees the slots rbdimg left.
#[test]
fn each_side_opens_what_the_other_amended() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) || !require(Oracle::Cryptsetup) {
        return;
    }
    let made = prepare(IMAGES);
    let d = made.path();
    let ours = |args: &[&str]| {
        let mut all = vec!["amend"];
        all.extend(objects());
        all.extend(args);
        let out = crate::util::rbdimg(d, &all);
        assert_eq!(out.code, 0, "rbdimg amend {args:?}: {out:#?}");
    };
    let theirs = |args: &[&str]| {
        let mut all = vec!["amend"];
        all.extend(objects());
        all.extend(args);
        let out = qemu_img(d, &all);
        assert_eq!(out.code, 0, "qemu-img amend {args:?}: {out:#?}");
    };
    let [s0, s1, s2] = [SECRETS[0], SECRETS[1], SECRETS[2]];
    let luks = |id: &str| format!("{LUKS}{id}");
    let qcow2 = |id: &str| format!("{QCOW2}{id}");

    // rbdimg adds s1 to slot 5 and erases s0: qemu-io follows.
    ours(&[
        "-o",
        "state=active,new-secret=s1,keyslot=5,iter-time=10",
        "--image-opts",
        &luks("s0"),
    ]);
    ours(&[
        "-o",
        "state=inactive,old-secret=s0",
        "--image-opts",
        &luks("s1"),
    ]);
    qemu_io_reads(d, s1, &luks("s1"), "0x5a 4096 8192").unwrap();
    let refused = qemu_io_reads(d, s0, &luks("s0"), "0x5a 4096 8192").unwrap_err();
    assert!(
        refused.contains("Invalid password, cannot unlock any keyslot"),
        "{refused}"
    );
    ours(&[
        "-o",
        "encrypt.state=active,encrypt.new-secret=s1,encrypt.iter-time=10",
        "--image-opts",
        &qcow2("s0"),
    ]);
    ours(&[
        "-o",
        "encrypt.state=inactive,encrypt.keyslot=0",
        "--image-opts",
        &qcow2("s1"),
    ]);
    qemu_io_reads(d, s1, &qcow2("s1"), "0xa5 0 65536").unwrap();
    assert!(qemu_io_reads(d, s0, &qcow2("s0"), "0xa5 0 65536").is_err());
    assert_eq!(slots(d, "a.luks"), "00000100");
    assert_eq!(slots(d, "a.qcow2"), "01000000");
    let check = qemu_img(d, &["check", "--object", s1, "--image-opts", &qcow2("s1")]);
    assert_eq!(check.code, 0, "{check:#?}");

    // cryptsetup reads the header rbdimg wrote: one slot, number 5.
    let dump = std::process::Command::new("cryptsetup")
        .args(["luksDump", "a.luks"])
        .current_dir(d)
        .output()
        .unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    let enabled: Vec<&str> = dump.lines().filter(|l| l.contains(": ENABLED")).collect();
    assert_eq!(enabled, ["Key Slot 5: ENABLED"], "{dump}");

    // qemu-img adds s2 and erases s1; rbdimg follows.
    theirs(&[
        "-o",
        "state=active,new-secret=s2,iter-time=10",
        "--image-opts",
        &luks("s1"),
    ]);
    theirs(&[
        "-o",
        "state=inactive,keyslot=5",
        "--image-opts",
        &luks("s2"),
    ]);
    theirs(&[
        "-o",
        "encrypt.state=active,encrypt.new-secret=s2,encrypt.iter-time=10",
        "--image-opts",
        &qcow2("s1"),
    ]);
    theirs(&[
        "-o",
        "encrypt.state=inactive,encrypt.old-secret=s1",
        "--image-opts",
        &qcow2("s2"),
    ]);
    for (image, path) in [(luks("s2"), "a.luks"), (qcow2("s2"), "a.qcow2")] {
        let good = crate::util::rbdimg(
            d,
            &[
                "convert",
                "--object",
                s2,
                "-O",
                "raw",
                "--image-opts",
                &image,
                "out.raw",
            ],
        );
        assert_eq!(good.code, 0, "{good:#?}");
        let cmp = qemu_img(
            d,
            &[
                "compare",
                "--object",
                s2,
                "--image-opts",
                &image,
                "driver=raw,file.filename=out.raw",
            ],
        );
        assert_eq!(cmp.code, 0, "{path}: {cmp:#?}");
        let gone = image.replace("secret=s2", "secret=s1");
        let bad = crate::util::rbdimg(
            d,
            &[
                "convert",
                "--object",
                s1,
                "-O",
                "raw",
                "--image-opts",
                &gone,
                "out.raw",
            ],
        );
        assert_eq!(bad.code, 1, "{bad:#?}");
        assert!(
            bad.stderr
                .ends_with(": Invalid password, cannot unlock any keyslot\n"),
            "{path}: {bad:#?}"
        );
    }
}

/// A raw LUKS volume inside an RBD image: rbdimg adds and erases key slots
/// through the rbd storage; the data reads back with the new passphrase
/// only (and on Ceph, QEMU's rbd driver agrees).
fn luks_in_rbd(b: &Backend) {
    let image = unique("amend-luks");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let name = b.name(&image);
    let [s0, s1] = [SECRETS[0], SECRETS[1]];
    rbdimg_ok(&[
        "create",
        "--object",
        s0,
        "-f",
        "luks",
        "-o",
        "key-secret=s0,iter-time=10",
        &name,
        "4M",
    ]);
    let node = b.json(&image);
    let node = node.strip_prefix("json:").unwrap();
    let luks = |id: &str| format!(r#"json:{{"driver":"luks","key-secret":"{id}","file":{node}}}"#);
    crate::util::make_raw(
        &d.join("data.raw"),
        4 << 20,
        &[(0, 0x3c, 100_000), (3 << 20, 0xc3, 4096)],
    );
    let data = d.join("data.raw");
    let data = data.to_str().unwrap();
    rbdimg_ok(&[
        "convert",
        "--object",
        s0,
        "-n",
        "-f",
        "raw",
        "-O",
        "luks",
        data,
        &luks("s0"),
    ]);
    let amend = |args: &[&str]| {
        let mut all = vec!["amend"];
        all.extend(objects());
        all.extend(args);
        rbdimg(&all)
    };
    let out = amend(&["-o", "state=active,new-secret=s1,iter-time=10", &luks("s0")]);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = amend(&["-o", "state=inactive,keyslot=1", &luks("s0")]);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = amend(&[
        "-o",
        "state=active,new-secret=s1,keyslot=2,iter-time=10",
        &luks("s0"),
    ]);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = amend(&["-o", "state=inactive,old-secret=s0", &luks("s1")]);
    assert_eq!(out.code, 0, "{out:#?}");
    let out = amend(&["-o", "state=inactive,keyslot=2", &luks("s1")]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "rbdimg: Attempt to erase the only active keyslot 2 which will erase all the data in the image irreversibly - refusing operation\n"
        ),
        "{out:#?}"
    );
    let cmp = rbdimg(&["compare", "--object", s1, "-f", "raw", data, &luks("s1")]);
    assert_eq!(cmp.code, 0, "{cmp:#?}");
    let old = rbdimg(&["compare", "--object", s0, "-f", "raw", data, &luks("s0")]);
    assert!(
        old.stderr
            .contains("Invalid password, cannot unlock any keyslot"),
        "{old:#?}"
    );
    if let Backend::Ceph(_) = b
        && require(Oracle::RbdDriver)
    {
        let cmp = qemu_img(
            d,
            &["compare", "--object", s1, "-f", "raw", data, &luks("s1")],
        );
        assert_eq!(cmp.code, 0, "{cmp:#?}");
        let old = qemu_img(
            d,
            &["compare", "--object", s0, "-f", "raw", data, &luks("s0")],
        );
        assert!(
            old.stderr
                .contains("Invalid password, cannot unlock any keyslot"),
            "{old:#?}"
        );
        // And what QEMU's rbd driver amends, rbdimg opens: s0 back, s1 gone.
        let mut args = vec!["amend"];
        args.extend(objects());
        let back = luks("s1");
        args.extend(["-o", "state=active,new-secret=s0,iter-time=10", &back]);
        let out = qemu_img(d, &args);
        assert_eq!(out.code, 0, "{out:#?}");
        let mut args = vec!["amend"];
        args.extend(objects());
        let now = luks("s0");
        args.extend(["-o", "state=inactive,old-secret=s1", &now]);
        let out = qemu_img(d, &args);
        assert_eq!(out.code, 0, "{out:#?}");
        let cmp = rbdimg(&["compare", "--object", s0, "-f", "raw", data, &luks("s0")]);
        assert_eq!(cmp.code, 0, "{cmp:#?}");
        let gone = rbdimg(&["compare", "--object", s1, "-f", "raw", data, &luks("s1")]);
        assert!(gone.stderr.contains("Invalid password"), "{gone:#?}");
    }
}

both_backends!(luks_in_rbd);
