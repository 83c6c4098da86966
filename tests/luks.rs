//! QEMU's `luks` format against qemu-img/qemu-io and cryptsetup: create
//! options and their errors, every cipher both programs implement in both
//! directions, `info`, `resize`, wrong and missing secrets, and the
//! passphrase never showing in any output or file.

use std::fs;
use std::path::Path;

use crate::util::{Oracle, Twin, make_raw, qemu_img, rbdimg, rbdimg_ok, require, sh};

const PASSPHRASE: &str = "Tr0ub4dor&3-luks-test";
/// The secret every command defines.
const OBJECT: &str = "secret,id=s0,data=Tr0ub4dor&3-luks-test";

/// `--image-opts` for the luks image `file` with the secret `s0`.
fn opts(file: &str) -> String {
    format!("driver=luks,key-secret=s0,file.filename={file}")
}

/// The data the images carry: patterns, a hole, an unaligned tail.
fn source(dir: &Path) {
    source_of(dir, 3 << 20);
}

/// `source` of `len` bytes (at least 1 MiB).
fn source_of(dir: &Path, len: u64) {
    make_raw(
        &dir.join("src.raw"),
        len,
        &[
            (0, 0x11, 4096),
            (700_000, 0x22, 1000),
            (len - 512, 0x33, 512),
        ],
    );
}

/// The cipher options qemu-img 10.0.2 (built with nettle) takes for LUKS,
/// as `-o` suffixes: each of `algs` in each mode it accepts (CAST5 has no
/// XTS; 192-bit keys outside XTS make qemu-img abort, rbdimg refuses them:
/// `create_and_convert_match_qemu_img`), the IV generators and the hashes
/// taken in turn, so each family meets each of them.
fn qemu_ciphers(algs: &[&str]) -> Vec<String> {
    const HASHES: [&str; 8] = [
        "sha256",
        "md5",
        "sha1",
        "sm3",
        "sha224",
        "ripemd160",
        "sha384",
        "sha512",
    ];
    let pairs = algs
        .iter()
        .flat_map(|&alg| ["xts", "cbc", "ecb", "ctr"].map(|mode| (alg, mode)))
        .filter(|&(alg, mode)| match mode {
            "xts" => !alg.starts_with("cast5"),
            _ => !alg.ends_with("192"),
        });
    pairs
        .enumerate()
        .map(|(i, (alg, mode))| {
            // ESSIV's key is a digest: 16 or 32 bytes fit every family but
            // CAST5, which takes 16 only.
            let essiv = match (alg.starts_with("cast5"), i % 3) {
                (true, _) | (false, 0) => "md5",
                (false, 1) => "sha256",
                _ => "sm3",
            };
            let ivgen = match i % 3 {
                // A hash named for no use: in the header, ignored.
                0 => "plain64,ivgen-hash-alg=sha1".to_string(),
                1 => "plain".to_string(),
                _ => format!("essiv,ivgen-hash-alg={essiv}"),
            };
            format!(
                "cipher-alg={alg},cipher-mode={mode},ivgen-alg={ivgen},hash-alg={}",
                HASHES[i % HASHES.len()]
            )
        })
        .collect()
}

fn create_opts(extra: &str) -> String {
    match extra {
        "" => "key-secret=s0,iter-time=10".to_string(),
        _ => format!("key-secret=s0,iter-time=10,{extra}"),
    }
}

#[test]
fn every_aes_cipher_reads_back_in_both_directions() {
    let mut ciphers = qemu_ciphers(&["aes-128", "aes-192", "aes-256"]);
    ciphers.push(String::new());
    both_directions(&ciphers, 3 << 20);
}

#[test]
fn every_twofish_cipher_reads_back_in_both_directions() {
    let ciphers = qemu_ciphers(&["twofish-128", "twofish-192", "twofish-256"]);
    both_directions(&ciphers, 1 << 20);
}

#[test]
fn every_serpent_and_cast5_cipher_reads_back_in_both_directions() {
    both_directions(
        &qemu_ciphers(&["serpent-128", "serpent-192", "serpent-256", "cast5-128"]),
        1 << 20,
    );
}

/// Images of each cipher written by rbdimg read in qemu-img/qemu-io and
/// the reverse, unaligned writes too, and both describe them alike (the
/// software ciphers on a small image: debug builds run them slowly).
fn both_directions(ciphers: &[String], len: u64) {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    source_of(d, len);
    for (i, extra) in ciphers.iter().enumerate() {
        let o = create_opts(extra);
        let (ours, theirs) = (format!("ours{i}.luks"), format!("theirs{i}.luks"));
        // rbdimg encrypts, qemu-img decrypts.
        rbdimg_ok(
            d,
            &[
                "convert", "--object", OBJECT, "-O", "luks", "-o", &o, "src.raw", &ours,
            ],
        );
        let out = qemu_img(
            d,
            &[
                "compare",
                "--object",
                OBJECT,
                "--image-opts",
                "driver=file,filename=src.raw",
                &opts(&ours),
            ],
        );
        assert_eq!(out.code, 0, "{extra}: qemu-img reads ours: {out:?}");
        // qemu-img encrypts, rbdimg decrypts.
        let out = qemu_img(
            d,
            &[
                "convert", "--object", OBJECT, "-O", "luks", "-o", &o, "src.raw", &theirs,
            ],
        );
        assert_eq!(out.code, 0, "{extra}: {out:?}");
        let out = rbdimg(
            d,
            &[
                "compare",
                "--object",
                OBJECT,
                "--image-opts",
                "driver=file,filename=src.raw",
                &opts(&theirs),
            ],
        );
        assert_eq!(out.code, 0, "{extra}: rbdimg reads theirs: {out:?}");
        // Unaligned writes by each side into the other's image.
        sh(
            d,
            &format!(
                "qemu-io --object '{OBJECT}' --image-opts '{}' -c 'write -P 0x5a 1000 70000'",
                opts(&ours)
            ),
        );
        rbdimg_ok(
            d,
            &[
                "dd",
                "--object",
                OBJECT,
                "--image-opts",
                "-O",
                "raw",
                "bs=1000",
                "skip=1",
                "count=71",
                &format!("if={}", opts(&ours)),
                "of=out.raw",
            ],
        );
        assert_eq!(
            fs::read(d.join("out.raw")).unwrap()[..70_000],
            vec![0x5a; 70_000],
            "{extra}"
        );
        rbdimg_ok(
            d,
            &[
                "convert",
                "--object",
                OBJECT,
                "--image-opts",
                "--target-image-opts",
                "-n",
                "driver=file,filename=src.raw",
                &opts(&theirs),
            ],
        );
        sh(
            d,
            &format!(
                "qemu-img compare --object '{OBJECT}' --image-opts driver=file,filename=src.raw '{}'",
                opts(&theirs)
            ),
        );
        // Both programs describe both images alike.
        for image in [&ours, &theirs] {
            for output in ["--output=human", "--output=json"] {
                let a = rbdimg(d, &["info", output, image]);
                let b = qemu_img(d, &["info", output, image]);
                assert_eq!(a.stdout, b.stdout, "{extra}: info {output} {image}");
            }
        }
    }
}

#[test]
fn create_and_convert_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(source);
    let obj = ["--object", OBJECT];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        [&args[..1], &obj[..], &args[1..]].concat()
    };
    for args in [
        // What goes wrong before anything is written.
        &["create", "-f", "luks", "e.luks", "1M"][..],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=nope",
            "e.luks",
            "1M",
        ],
        &["create", "-f", "luks", "-o", "help"],
        &["convert", "-O", "luks", "src.raw", "e.luks"],
        &[
            "convert",
            "-O",
            "luks",
            "-o",
            "key-secret=s1",
            "src.raw",
            "e.luks",
        ],
    ] {
        twin.assert_same(args);
    }
    for args in [
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "e.luks",
        ][..],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,cipher-mode=foo",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,ivgen-alg=foo",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,hash-alg=foo",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,ivgen-alg=essiv,ivgen-hash-alg=sha1",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=abc",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,detached-header=on",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,detached-header=x",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,preallocation=bogus",
            "e.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "-b",
            "b",
            "e.luks",
            "1M",
        ],
        // What succeeds: the same line and the same file length.
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "c1.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "c2.luks",
            "1000",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "c3.luks",
            "0",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,preallocation=full",
            "c4.luks",
            "1M",
        ],
        &[
            "create",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,preallocation=metadata",
            "c5.luks",
            "1M",
        ],
        &[
            "create",
            "-q",
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv",
            "c6.luks",
            "1M",
        ],
        &[
            "convert",
            "-O",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10",
            "src.raw",
            "c7.luks",
        ],
        &["dd", "-O", "luks", "if=src.raw", "of=c8.luks"],
    ] {
        twin.assert_same(&with(args));
    }
    // Ciphers QEMU names and its LUKS driver refuses, in its order: the
    // values, the secret, then the cipher.
    for o in [
        "cipher-alg=des",
        "key-secret=s0,cipher-alg=3des",
        "key-secret=s0,cipher-alg=sm4",
        "key-secret=s0,cipher-alg=cast5-128",
        "key-secret=nope,cipher-alg=cast5-128",
        "key-secret=s0,cipher-alg=blowfish",
        "key-secret=s0,cipher-mode=ofb",
        "key-secret=s0,hash-alg=md4",
        "key-secret=s0,cipher-alg=aes-128,ivgen-alg=essiv,ivgen-hash-alg=sha1",
        "key-secret=s0,cipher-alg=serpent-256,ivgen-alg=essiv,ivgen-hash-alg=sha512",
        "key-secret=s0,cipher-alg=cast5-128,cipher-mode=cbc,ivgen-alg=essiv",
    ] {
        twin.assert_same(&with(&["create", "-f", "luks", "-o", o, "e.luks", "1M"]));
    }
    for i in 1..=8 {
        let name = format!("c{i}.luks");
        let len = |side: &Path| fs::metadata(side.join(&name)).map(|m| m.len()).ok();
        assert_eq!(len(&twin.ours()), len(&twin.theirs()), "{name}");
    }
    // The layout qemu-img reads from our header is its own layout.
    let ours = twin.ours().join("c6.luks");
    fs::copy(&ours, twin.theirs().join("ours6.luks")).unwrap();
    let info = qemu_img(&twin.theirs(), &["info", "--output=json", "ours6.luks"]);
    for field in [
        r#""cipher-alg": "aes-128""#,
        r#""cipher-mode": "cbc""#,
        r#""ivgen-alg": "essiv""#,
        r#""ivgen-hash-alg": "sha256""#,
        r#""payload-offset": 528384"#,
    ] {
        assert!(info.stdout.contains(field), "{field} in {}", info.stdout);
    }
}

#[test]
fn secrets_open_as_qemu_img_opens_them() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        source(dir);
        sh(
            dir,
            &format!(
                "qemu-img create -q --object '{OBJECT}' -f luks -o key-secret=s0,iter-time=10 a.luks 1M"
            ),
        );
        fs::write(dir.join("pass.txt"), PASSPHRASE).unwrap();
        fs::write(dir.join("wrong.txt"), "wrong").unwrap();
        fs::write(dir.join("latin1.txt"), b"caf\xe9").unwrap();
    });
    let right = opts("a.luks");
    let js = r#"json:{"driver":"luks","key-secret":"s0","file":{"filename":"a.luks"}}"#;
    for args in [
        // No secret: the header alone (info), or qemu-img's refusal.
        &["info", "a.luks"][..],
        &["info", "--output=json", "a.luks"],
        &["info", "-f", "luks", "a.luks"],
        &[
            "info",
            "--image-opts",
            "driver=luks,key-secret=nope,file.filename=a.luks",
        ],
        &["convert", "-O", "raw", "a.luks", "out.raw"],
        &["resize", "a.luks", "2M"],
        &["map", "a.luks"],
        &["check", "a.luks"],
        &["compare", "src.raw", "a.luks"],
        // A secret nobody defined, a wrong one, one from a file, one that
        // is not text.
        &["convert", "-O", "raw", "--image-opts", &right, "out.raw"],
        &[
            "convert",
            "--object",
            "secret,id=s0,file=wrong.txt",
            "-O",
            "raw",
            "--image-opts",
            &right,
            "out.raw",
        ],
        &[
            "convert",
            "--object",
            "secret,id=s0,file=latin1.txt",
            "-O",
            "raw",
            "--image-opts",
            &right,
            "out.raw",
        ],
        &[
            "info",
            "--object",
            "secret,id=s0,file=wrong.txt",
            "--image-opts",
            &right,
        ],
        &[
            "info",
            "--object",
            "secret,id=s0,file=pass.txt",
            "--image-opts",
            &right,
        ],
        &["info", "--object", "secret,id=s0,file=pass.txt", js],
        &[
            "map",
            "--object",
            "secret,id=s0,file=pass.txt",
            "--output=json",
            "--image-opts",
            &right,
        ],
        &[
            "check",
            "--object",
            "secret,id=s0,file=pass.txt",
            "--image-opts",
            &right,
        ],
        &[
            "snapshot",
            "-l",
            "--object",
            "secret,id=s0,file=pass.txt",
            "--image-opts",
            &right,
        ],
        &[
            "convert",
            "--object",
            "secret,id=s0,file=pass.txt",
            "-O",
            "raw",
            js,
            "out.raw",
        ],
    ] {
        twin.assert_same_on_theirs(args);
    }
}

#[test]
fn resize_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    // One image, copied to both sides (a new one has its own UUID).
    let made = tempfile::tempdir().unwrap();
    source(made.path());
    sh(
        made.path(),
        &format!(
            "qemu-img convert --object '{OBJECT}' -O luks -o key-secret=s0,iter-time=10 src.raw a.luks"
        ),
    );
    let twin = Twin::new(|dir| {
        fs::copy(made.path().join("a.luks"), dir.join("a.luks")).unwrap();
    });
    let image = opts("a.luks");
    for size in [
        &["+1M"][..],
        &["--shrink", "2M"],
        &["1M"],
        &["--shrink", "1000"],
        &["7000001"],
        &["--preallocation=falloc", "8M"],
        &["--preallocation=full", "9M"],
        &["--preallocation=metadata", "10M"],
    ] {
        let args = [
            &["resize", "--object", OBJECT, "--image-opts", &image][..],
            size,
        ]
        .concat();
        twin.assert_same(&args);
        twin.assert_same(&["info", "--output=json", "a.luks"]);
        let read = [
            "convert",
            "--object",
            OBJECT,
            "-O",
            "raw",
            "--image-opts",
            &image,
            "out.raw",
        ];
        sh(&twin.ours(), &format!("qemu-img {}", quote(&read)));
        sh(&twin.theirs(), &format!("qemu-img {}", quote(&read)));
        twin.assert_same_file("out.raw");
    }
}

fn quote(args: &[&str]) -> String {
    args.iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_passphrase_shows_nowhere() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    source(d);
    let image = opts("a.luks");
    let o = "key-secret=s0,iter-time=10";
    let runs = [
        rbdimg(
            d,
            &[
                "create", "--object", OBJECT, "-f", "luks", "-o", o, "a.luks", "3M",
            ],
        ),
        rbdimg(
            d,
            &[
                "convert",
                "-p",
                "--object",
                OBJECT,
                "--target-image-opts",
                "-n",
                "src.raw",
                &image,
            ],
        ),
        rbdimg(d, &["info", "--object", OBJECT, "--image-opts", &image]),
        rbdimg(
            d,
            &[
                "info",
                "--object",
                OBJECT,
                "--output=json",
                "--image-opts",
                &image,
            ],
        ),
        rbdimg(
            d,
            &[
                "convert",
                "--object",
                "secret,id=s0,data=wrong",
                "-O",
                "raw",
                "--image-opts",
                &image,
                "x",
            ],
        ),
        rbdimg(
            d,
            &[
                "create",
                "--object",
                "secret,id=s0,data=Tr0ub4dor&3,bogus=1",
                "-f",
                "luks",
                "-o",
                o,
                "b.luks",
                "1M",
            ],
        ),
        rbdimg(
            d,
            &[
                "create",
                "--object",
                OBJECT,
                "-f",
                "luks",
                "-o",
                &format!("{o},cipher-alg=x"),
                "b.luks",
                "1M",
            ],
        ),
    ];
    for out in &runs {
        assert!(
            !out.stdout.contains("Tr0ub4dor") && !out.stderr.contains("Tr0ub4dor"),
            "{out:?}"
        );
    }
    let bytes = fs::read(d.join("a.luks")).unwrap();
    assert!(!bytes.windows(9).any(|w| w == b"Tr0ub4dor"));
}

#[test]
fn cryptsetup_reads_our_headers() {
    if !require(Oracle::Cryptsetup) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    rbdimg_ok(
        d,
        &[
            "create",
            "--object",
            OBJECT,
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,cipher-alg=aes-128,cipher-mode=cbc,ivgen-alg=essiv,hash-alg=sha1",
            "a.luks",
            "1M",
        ],
    );
    let dump = std::process::Command::new("cryptsetup")
        .args(["luksDump", "a.luks"])
        .current_dir(d)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.status.success(), "{dump:?}");
    for line in [
        "Version:       \t1",
        "Cipher name:   \taes",
        "Cipher mode:   \tcbc-essiv:sha256",
        "Hash spec:     \tsha1",
        "Payload offset:\t1032",
        "MK bits:       \t128",
        "Key Slot 0: ENABLED",
        "Key Slot 1: DISABLED",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }
    // cryptsetup unlocks the slot with the passphrase, and only with it.
    fs::write(d.join("pass"), PASSPHRASE).unwrap();
    fs::write(d.join("wrong"), "wrong").unwrap();
    let test = |key: &str| {
        std::process::Command::new("cryptsetup")
            .args(["open", "--test-passphrase", "--key-file", key, "a.luks"])
            .current_dir(d)
            .status()
            .unwrap()
            .success()
    };
    assert!(test("pass"));
    assert!(!test("wrong"));
    // And what cryptsetup formats, rbdimg opens.
    sh(
        d,
        "truncate -s 4M cs.luks && cryptsetup luksFormat -q --type luks1 --key-file pass \
         --pbkdf-force-iterations 1000 cs.luks",
    );
    let out = rbdimg_ok(
        d,
        &[
            "info",
            "--object",
            OBJECT,
            "--output=json",
            "--image-opts",
            &opts("cs.luks"),
        ],
    );
    assert!(
        out.stdout.contains(r#""virtual-size": 2097152"#),
        "{}",
        out.stdout
    );
    rbdimg_ok(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "--image-opts",
            "-O",
            "raw",
            &opts("cs.luks"),
            "cs.raw",
        ],
    );
    if require(Oracle::QemuImg) {
        let read = [
            "convert",
            "--object",
            OBJECT,
            "--image-opts",
            "-O",
            "raw",
            &opts("cs.luks"),
            "qemu.raw",
        ];
        assert_eq!(qemu_img(d, &read).code, 0);
        assert_eq!(
            fs::read(d.join("cs.raw")).unwrap(),
            fs::read(d.join("qemu.raw")).unwrap()
        );
    }
}

/// `cryptsetup luksDump` reads the header of each algorithm, mode and
/// hash cryptsetup knows (not md5: it refuses that hash); it unlocks those
/// this kernel's crypto API has (AES only here) with the passphrase.
#[test]
fn cryptsetup_reads_every_cipher_we_write() {
    if !require(Oracle::Cryptsetup) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("pass"), PASSPHRASE).unwrap();
    let cases = [
        (
            "twofish-256",
            "xts",
            "plain64",
            "sha512",
            "twofish",
            "xts-plain64",
            512,
        ),
        (
            "twofish-128",
            "cbc",
            "essiv",
            "sm3",
            "twofish",
            "cbc-essiv:sha256",
            128,
        ),
        (
            "serpent-192",
            "xts",
            "plain",
            "ripemd160",
            "serpent",
            "xts-plain",
            384,
        ),
        (
            "serpent-256",
            "ctr",
            "plain64,ivgen-hash-alg=sm3",
            "sha224",
            "serpent",
            "ctr-plain64:sm3",
            256,
        ),
        (
            "cast5-128",
            "cbc",
            "plain",
            "sha1",
            "cast5",
            "cbc-plain",
            128,
        ),
        (
            "cast5-128",
            "ecb",
            "plain64",
            "sha384",
            "cast5",
            "ecb-plain64",
            128,
        ),
        (
            "aes-128",
            "ctr",
            "plain64",
            "sm3",
            "aes",
            "ctr-plain64",
            128,
        ),
        (
            "aes-256",
            "cbc",
            "plain64",
            "ripemd160",
            "aes",
            "cbc-plain64",
            256,
        ),
    ];
    for (i, (alg, mode, ivgen, hash, name, header_mode, bits)) in cases.into_iter().enumerate() {
        let file = format!("c{i}.luks");
        let o = format!(
            "key-secret=s0,iter-time=10,cipher-alg={alg},cipher-mode={mode},ivgen-alg={ivgen},hash-alg={hash}"
        );
        rbdimg_ok(
            d,
            &[
                "create", "--object", OBJECT, "-f", "luks", "-o", &o, &file, "1M",
            ],
        );
        let dump = std::process::Command::new("cryptsetup")
            .args(["luksDump", &file])
            .current_dir(d)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&dump.stdout);
        assert!(dump.status.success(), "{o}: {dump:?}");
        for line in [
            format!("Cipher name:   \t{name}\n"),
            format!("Cipher mode:   \t{header_mode}\n"),
            format!("Hash spec:     \t{hash}\n"),
            format!("MK bits:       \t{bits}\n"),
            "Key Slot 0: ENABLED".to_string(),
        ] {
            assert!(text.contains(&line), "{line:?} in\n{text}");
        }
        if name == "aes" {
            let unlocked = std::process::Command::new("cryptsetup")
                .args(["open", "--test-passphrase", "--key-file", "pass", &file])
                .current_dir(d)
                .status()
                .unwrap();
            assert!(unlocked.success(), "{o}");
        }
    }
    // 192-bit keys outside XTS: qemu-img aborts on their 96000 bytes of key
    // material; rbdimg makes none, and opens cryptsetup's (padded to whole
    // sectors) with the passphrase only.
    let refused = rbdimg(
        d,
        &[
            "create",
            "--object",
            OBJECT,
            "-f",
            "luks",
            "-o",
            "key-secret=s0,cipher-alg=aes-192,cipher-mode=cbc",
            "x.luks",
            "1M",
        ],
    );
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.ends_with(
            "Cipher aes-192 in mode cbc is not supported by rbdimg: qemu-img cannot open it\n"
        ),
        "{refused:?}"
    );
    sh(
        d,
        "truncate -s 4M cs.luks && cryptsetup luksFormat -q --type luks1 --key-file pass \
         --cipher aes-cbc-essiv:sha256 --key-size 192 --pbkdf-force-iterations 1000 cs.luks",
    );
    for (object, code) in [(OBJECT, 0), ("secret,id=s0,data=wrong", 1)] {
        let out = rbdimg(
            d,
            &[
                "convert",
                "--object",
                object,
                "--image-opts",
                "-O",
                "raw",
                &opts("cs.luks"),
                "cs.raw",
            ],
        );
        assert_eq!(out.code, code, "{out:?}");
    }
}

#[test]
fn damaged_headers_fail_as_in_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let made = tempfile::tempdir().unwrap();
    sh(
        made.path(),
        &format!(
            "qemu-img create -q --object '{OBJECT}' -f luks -o key-secret=s0,iter-time=10 a.luks 1M"
        ),
    );
    let good = fs::read(made.path().join("a.luks")).unwrap();
    // (name, byte offset, bytes written there)
    let damage: &[(&str, usize, &[u8])] = &[
        ("version2", 6, b"\0\x02"),
        ("slot-state", 208, b"\x01\x02\x03\x04"),
        ("stripes", 208 + 44, &10u32.to_be_bytes()),
        ("key-size-0", 108, &0u32.to_be_bytes()),
        ("key-size-40", 108, &40u32.to_be_bytes()),
        ("key-size-1000", 108, &1000u32.to_be_bytes()),
        ("payload-8", 104, &8u32.to_be_bytes()),
        ("slots-overlap", 208 + 48 + 40, &9u32.to_be_bytes()),
        ("slot-in-header", 208 + 40, &0u32.to_be_bytes()),
        ("mode-foo", 40, b"foo-plain64\0"),
        ("mode-no-ivgen", 40, b"xts\0"),
        ("ivgen-foo", 40, b"xts-foo\0"),
        ("essiv-no-hash", 40, b"xts-essiv\0"),
        ("essiv-bad-hash", 40, b"xts-essiv:foo\0"),
        ("cipher-foo", 8, b"foo\0"),
        ("hash-foo", 72, b"whirlpool\0"),
        ("magic", 0, b"LUKZ"),
    ];
    let twin = Twin::new(|dir| {
        for (name, at, bytes) in damage {
            let mut image = good.clone();
            image[*at..at + bytes.len()].copy_from_slice(bytes);
            fs::write(dir.join(format!("{name}.luks")), image).unwrap();
        }
        fs::write(dir.join("short.luks"), &good[..1000]).unwrap();
    });
    let names = damage.iter().map(|d| d.0).chain(["short"]);
    for name in names {
        let file = format!("{name}.luks");
        twin.assert_same(&["info", &file]);
        twin.assert_same(&["info", "-f", "luks", &file]);
        twin.assert_same(&[
            "convert",
            "--object",
            OBJECT,
            "-O",
            "raw",
            "--image-opts",
            &opts(&file),
            "o.raw",
        ]);
    }
}

/// librbd's encryption (`encrypt.format` on an rbd node) in the embedded
/// store: made, written and read by rbdimg, no plaintext in the objects
/// (tests/ceph/rbd_encryption.rs checks it against librbd and QEMU).
#[test]
fn rbd_encryption_in_the_embedded_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = d.join("store");
    let store = store.to_str().unwrap();
    let data: Vec<u8> = (0..5_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    fs::write(d.join("src.raw"), &data).unwrap();
    let o = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.cipher-alg=aes-128";
    let name = format!("rbd:rbd/enc:store={store}");
    rbdimg_ok(
        d,
        &[
            "create", "-q", "--object", OBJECT, "-f", "raw", "-o", o, &name, "12M",
        ],
    );
    let image = format!(
        "driver=rbd,pool=rbd,image=enc,store={store},encrypt.format=luks,encrypt.key-secret=s0"
    );
    rbdimg_ok(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "-n",
            "--target-image-opts",
            "src.raw",
            &image,
        ],
    );
    let info = rbdimg_ok(
        d,
        &[
            "info",
            "--object",
            OBJECT,
            "--output=json",
            "--image-opts",
            &image,
        ],
    );
    assert!(
        info.stdout.contains(r#""virtual-size": 12582912"#),
        "{}",
        info.stdout
    );
    rbdimg_ok(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "-O",
            "raw",
            "--image-opts",
            &image,
            "plain.raw",
        ],
    );
    let plain = fs::read(d.join("plain.raw")).unwrap();
    assert_eq!(plain[..data.len()], data[..]);
    assert!(plain[data.len()..].iter().all(|&b| b == 0));
    // The RBD image itself: a LUKS header, then ciphertext only.
    rbdimg_ok(
        d,
        &["convert", "-f", "raw", "-O", "raw", &name, "cipher.raw"],
    );
    let cipher = fs::read(d.join("cipher.raw")).unwrap();
    assert_eq!(&cipher[..6], b"LUKS\xba\xbe");
    let sectors: std::collections::HashSet<&[u8]> = cipher.chunks(512).collect();
    assert!(!data.chunks(512).any(|s| sectors.contains(s)));
    let wrong = rbdimg(
        d,
        &[
            "info",
            "--object",
            "secret,id=s0,data=x",
            "--image-opts",
            &image,
        ],
    );
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .ends_with("encryption load fail: Operation not permitted\n"),
        "{wrong:?}"
    );
    // librbd loads aes-xts-plain64 only, whatever else the LUKS header names.
    let twofish = format!("rbd:rbd/twofish:store={store}");
    rbdimg_ok(
        d,
        &[
            "create",
            "-q",
            "--object",
            OBJECT,
            "-f",
            "luks",
            "-o",
            "key-secret=s0,iter-time=10,cipher-alg=twofish-256",
            &twofish,
            "8M",
        ],
    );
    let refused = rbdimg(
        d,
        &[
            "info",
            "--object",
            OBJECT,
            "--image-opts",
            &image.replace("image=enc", "image=twofish"),
        ],
    );
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .ends_with("encryption load fail: Operation not supported\n"),
        "{refused:?}"
    );
}
