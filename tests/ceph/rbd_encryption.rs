//! librbd's RBD encryption on a real cluster, next to `rbd encryption
//! format` and QEMU's rbd driver: images formatted by rbd open in rbdimg
//! with `encrypt.format=luks|luks2|luks-any` and read exactly as QEMU reads
//! them; what rbdimg writes (and creates with `-o encrypt.format=luks`)
//! QEMU reads; wrong secrets and formats fail with QEMU's words.

use std::fs;
use std::path::Path;

use super::interop::without_our_additions;
use super::{rbdimg, rbdimg_ok, shared, unique};
use crate::util::{Oracle, make_raw, qemu_img, require, sh};

const PASS: &str = "rbd-crypt-pass";
const OBJECT: &str = "secret,id=s0,data=rbd-crypt-pass";

/// `--image-opts` of `image` with encryption `format` loaded.
fn opts(image: &str, format: &str) -> String {
    let (pool, name) = image.split_once('/').unwrap();
    format!(
        "driver=rbd,pool={pool},image={name},conf={},encrypt.format={format},encrypt.key-secret=s0",
        shared().conf()
    )
}

fn qemu_ok(d: &Path, args: &[&str]) {
    let out = qemu_img(d, args);
    assert_eq!(out.code, 0, "qemu-img {args:?}: {out:#?}");
}

/// Both programs' plaintext of an encrypted image, which must be equal.
fn read_alike(d: &Path, image: &str, format: &str) -> Vec<u8> {
    let o = opts(image, format);
    let (ours, theirs) = (d.join("ours.raw"), d.join("theirs.raw"));
    let _ = (fs::remove_file(&ours), fs::remove_file(&theirs));
    rbdimg_ok(&[
        "convert",
        "--object",
        OBJECT,
        "-O",
        "raw",
        "--image-opts",
        &o,
        ours.to_str().unwrap(),
    ]);
    qemu_ok(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "-O",
            "raw",
            "--image-opts",
            &o,
            "theirs.raw",
        ],
    );
    let ours = fs::read(ours).unwrap();
    assert!(
        ours == fs::read(theirs).unwrap(),
        "{image} ({format}) reads differently"
    );
    ours
}

#[test]
fn rbd_formatted_images_read_and_write_as_in_qemu() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), PASS).unwrap();
    make_raw(
        &d.join("src.raw"),
        6 << 20,
        &[(512, 7, 100_000), ((5 << 20) + 3, 9, 70_000)],
    );
    for (version, format, header) in [("luks1", "luks", 4u64 << 20), ("luks2", "luks2", 16 << 20)] {
        let image = unique(&format!("crypt-{version}"));
        c.tool_ok("rbd", &["create", "--size", "32M", &image]);
        c.tool_ok(
            "rbd",
            &[
                "encryption",
                "format",
                &image,
                version,
                d.join("pass").to_str().unwrap(),
            ],
        );
        // QEMU writes unaligned data, each reads the same (the never
        // written sectors of a written object too).
        let o = opts(&image, format);
        sh(
            d,
            &format!(
                "qemu-io --object '{OBJECT}' --image-opts '{o}' -c 'write -P 0x5a 1000 70000' -c 'write -P 0x21 4M 4096' >/dev/null"
            ),
        );
        let plain = read_alike(d, &image, format);
        assert_eq!(plain.len() as u64, (32 << 20) - header);
        assert_eq!(plain[1000..71000], vec![0x5a; 70000][..]);
        rbdimg_ok(&[
            "info",
            "--object",
            OBJECT,
            "--image-opts",
            &opts(&image, "luks-any"),
        ]);
        info_alike(d, &o);
        // rbdimg writes; QEMU reads it back, and both read alike.
        let src = d.join("src.raw");
        rbdimg_ok(&[
            "convert",
            "--object",
            OBJECT,
            "-n",
            "--target-image-opts",
            src.to_str().unwrap(),
            &o,
        ]);
        let src_opts = format!("driver=raw,file.filename={}", src.display());
        qemu_ok(
            d,
            &["compare", "--object", OBJECT, "--image-opts", &src_opts, &o],
        );
        // The wrong format, the wrong passphrase: QEMU's messages.
        let other = if format == "luks" { "luks2" } else { "luks" };
        for (secret, format) in [(OBJECT, other), ("secret,id=s0,data=wrong", format)] {
            let args = [
                "info",
                "--object",
                secret,
                "--image-opts",
                &opts(&image, format),
            ];
            let (ours, theirs) = (rbdimg(&args), qemu_img(d, &args));
            assert_eq!(ours.code, theirs.code, "{args:?}");
            assert_eq!(
                ours.stderr.replace("rbdimg:", "qemu-img:"),
                theirs.stderr,
                "{args:?}"
            );
        }
    }
}

#[test]
fn created_encrypted_images_are_qemus() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (ours, theirs) = (unique("crypt-new-ours"), unique("crypt-new-theirs"));
    let o = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.cipher-alg=aes-128";
    let a = rbdimg_ok(&[
        "create",
        "--object",
        OBJECT,
        "-f",
        "raw",
        "-o",
        o,
        &c.name(&ours),
        "20M",
    ]);
    qemu_ok(
        d,
        &[
            "create",
            "--object",
            OBJECT,
            "-f",
            "raw",
            "-o",
            o,
            &c.name(&theirs),
            "20M",
        ],
    );
    assert!(a.stdout.contains("encrypt.format=luks"), "{}", a.stdout);
    // The same size (grown by the header) as QEMU makes it.
    let size = |image: &str| {
        let out = c.tool_ok("rbd", &["info", "--format", "json", image]);
        serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["size"].clone()
    };
    assert_eq!(size(&ours), size(&theirs));
    assert_eq!(size(&ours), serde_json::json!(24 << 20));
    // QEMU writes into ours; both read alike, and the raw image holds no
    // plaintext.
    sh(
        d,
        &format!(
            "qemu-io --object '{OBJECT}' --image-opts '{}' -c 'write -P 0x6b 3000 9000' >/dev/null",
            opts(&ours, "luks")
        ),
    );
    let plain = read_alike(d, &ours, "luks");
    assert_eq!(plain[3000..12000], vec![0x6b; 9000][..]);
    let raw = c.export(&ours);
    assert!(!raw.windows(512).any(|w| w == [0x6b; 512]));
    // What librbd does not make, or QEMU refuses, is refused alike.
    for o in [
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.cipher-alg=aes-192",
        "encrypt.format=luks,encrypt.key-secret=s0,encrypt.cipher-alg=foo",
        "encrypt.format=luks",
        "encrypt.key-secret=s0",
        "encrypt.format=luks,encrypt.key-secret=nope",
    ] {
        refused_alike(d, o, "20M");
    }
    // qemu-img cannot convert into a new encrypted RBD image; neither
    // does rbdimg, and it writes nothing there.
    let (a, b) = (unique("crypt-conv-a"), unique("crypt-conv-b"));
    make_raw(&d.join("src.raw"), 8 << 20, &[(0, 0x6b, 4096)]);
    let src = d.join("src.raw");
    let src = src.to_str().unwrap();
    let ours = rbdimg(&[
        "convert",
        "--object",
        OBJECT,
        "-O",
        "raw",
        "-o",
        o,
        src,
        &c.name(&a),
    ]);
    let theirs = qemu_img(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "-O",
            "raw",
            "-o",
            o,
            src,
            &c.name(&b),
        ],
    );
    assert_eq!(ours.code, theirs.code);
    assert_eq!(
        ours.stderr.replace("rbdimg:", "qemu-img:").replace(&a, "X"),
        theirs.stderr.replace(&b, "X")
    );
    assert_eq!(&c.export(&a)[..6], b"LUKS\xba\xbe");
}

/// `create -o encrypt.format=luks2` makes what QEMU's rbd driver makes
/// through librbd: the image grown by the 16 MiB header, a LUKS2 header
/// cryptsetup reads and unlocks, a payload QEMU writes and rbdimg reads.
#[test]
fn created_luks2_images_are_librbds() {
    if !require(Oracle::QemuImg)
        || !require(Oracle::QemuIo)
        || !require(Oracle::RbdDriver)
        || !require(Oracle::Cryptsetup)
    {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), PASS).unwrap();
    for (alg, key_bits) in [("aes-128", "256"), ("aes-256", "512")] {
        let (ours, theirs) = (unique("crypt2-ours"), unique("crypt2-theirs"));
        let o = format!("encrypt.format=luks2,encrypt.key-secret=s0,encrypt.cipher-alg={alg}");
        let create = |name: &str, size: &str| {
            [
                "create", "--object", OBJECT, "-f", "raw", "-o", &o, name, size,
            ]
            .map(String::from)
        };
        let args = create(&c.name(&ours), "20M");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let a = rbdimg_ok(&args);
        assert!(a.stdout.contains("encrypt.format=luks2"), "{}", a.stdout);
        let args = create(&c.name(&theirs), "20M");
        qemu_ok(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
        let size = |image: &str| {
            let out = c.tool_ok("rbd", &["info", "--format", "json", image]);
            serde_json::from_str::<serde_json::Value>(&out.stdout).unwrap()["size"].clone()
        };
        assert_eq!(size(&ours), size(&theirs));
        assert_eq!(size(&ours), serde_json::json!(36 << 20));
        // cryptsetup reads the header and unlocks it with the passphrase.
        fs::write(d.join("header.img"), &c.export(&ours)[..16 << 20]).unwrap();
        let dump = std::process::Command::new("cryptsetup")
            .args(["luksDump", "header.img"])
            .current_dir(d)
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
        for line in [
            "Version:       \t2",
            "offset: 16777216 [bytes]",
            "sector: 4096 [bytes]",
            "PBKDF:      argon2id",
            "Cipher:     aes-xts-plain64",
        ] {
            assert!(dump.contains(line), "{line}: {dump}");
        }
        assert!(
            dump.contains(&format!("Key:        {key_bits} bits")),
            "{dump}"
        );
        sh(
            d,
            "cryptsetup open --test-passphrase --key-file pass header.img",
        );
        // QEMU writes; both read alike; the image holds no plaintext.
        sh(
            d,
            &format!(
                "qemu-io --object '{OBJECT}' --image-opts '{}' -c 'write -P 0x6c 3000 9000' >/dev/null",
                opts(&ours, "luks2")
            ),
        );
        let plain = read_alike(d, &ours, "luks2");
        assert_eq!(plain.len() as u64, 20 << 20);
        assert_eq!(plain[3000..12000], vec![0x6c; 9000][..]);
        assert!(!c.export(&ours).windows(512).any(|w| w == [0x6c; 512]));
        info_alike(d, &opts(&ours, "luks2"));
    }
    // No room for the header: librbd's ENOSPC, in QEMU's words.
    refused_alike(d, "encrypt.format=luks2,encrypt.key-secret=s0", "16M");
}

/// `info --output=json` of the image `opts` names: the same in both.
fn info_alike(d: &Path, opts: &str) {
    let args = [
        "info",
        "--object",
        OBJECT,
        "--output=json",
        "--image-opts",
        opts,
    ];
    assert_eq!(
        without_our_additions(&rbdimg_ok(&args).stdout),
        without_our_additions(&qemu_img(d, &args).stdout),
        "{args:?}"
    );
}

/// `create -o OPTIONS SIZE` fails in rbdimg as in qemu-img: same exit
/// code, same message.
fn refused_alike(d: &Path, o: &str, size: &str) {
    let (a, b) = (unique("crypt-bad-a"), unique("crypt-bad-b"));
    let create = |name: &str| {
        [
            "create", "--object", OBJECT, "-f", "raw", "-o", o, name, size,
        ]
        .map(String::from)
    };
    let ours = rbdimg(&create(&shared().name(&a)).each_ref().map(String::as_str));
    let theirs = qemu_img(
        d,
        &create(&shared().name(&b)).each_ref().map(String::as_str),
    );
    assert_eq!(ours.code, theirs.code, "{o}");
    assert_eq!(
        ours.stderr.replace("rbdimg:", "qemu-img:").replace(&a, "X"),
        theirs.stderr.replace(&b, "X"),
        "{o}"
    );
}
