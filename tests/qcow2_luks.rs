//! qcow2 with `encrypt.format=luks`, made and written by qemu-img/qemu-io,
//! read by rbdimg: `info`, `convert`, `compare`, `map`, `check`,
//! `snapshot -l` and `convert -l` give qemu-img's bytes; missing and wrong
//! secrets give its messages; writing is refused by name.

use std::fs;
use std::path::Path;

use crate::util::{Oracle, Twin, qemu_img, require, sh};

const OBJECT: &str = "secret,id=s0,data=qcow2-luks-pass";

fn opts(file: &str) -> String {
    format!("driver=qcow2,encrypt.key-secret=s0,file.filename={file}")
}

/// An encrypted qcow2 per cipher, with data written unaligned, a zeroed
/// range, a snapshot, and data written after it.
fn make(dir: &Path) {
    let ciphers = [
        "",
        "encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv,encrypt.hash-alg=sha1",
        "encrypt.cipher-alg=aes-192,encrypt.ivgen-alg=plain",
        // The other algorithms and modes QEMU's LUKS takes, across hashes.
        "encrypt.cipher-alg=twofish-256,encrypt.hash-alg=sm3",
        "encrypt.cipher-alg=serpent-128,encrypt.cipher-mode=ctr,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=md5",
        "encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=cbc,encrypt.hash-alg=md5",
        "encrypt.cipher-alg=aes-256,encrypt.cipher-mode=ecb,encrypt.hash-alg=ripemd160",
    ];
    for (i, extra) in ciphers.iter().enumerate() {
        let file = format!("e{i}.qcow2");
        let o = format!(
            "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10,cluster_size=4096,{extra}"
        );
        let o = o.trim_end_matches(',');
        sh(
            dir,
            &format!("qemu-img create -q --object '{OBJECT}' -f qcow2 -o '{o}' {file} 3M"),
        );
        let io = |cmds: &str| {
            sh(
                dir,
                &format!(
                    "qemu-io --object '{OBJECT}' --image-opts '{}' {cmds} >/dev/null",
                    opts(&file)
                ),
            )
        };
        io("-c 'write -P 0x5a 1000 70000' -c 'write -z 8192 4096' -c 'write -P 0x21 2M 512'");
        sh(
            dir,
            &format!(
                "qemu-img snapshot --object '{OBJECT}' -c snap1 --image-opts '{}'",
                opts(&file)
            ),
        );
        io("-c 'write -P 0x77 100000 5000'");
    }
}

#[test]
fn qemu_img_images_read_alike() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(make);
    for i in 0..7 {
        let file = format!("e{i}.qcow2");
        let image = opts(&file);
        let with_secret: [&[&str]; 9] = [
            &["info", "--object", OBJECT, "--image-opts", &image],
            &[
                "info",
                "--object",
                OBJECT,
                "--output=json",
                "--image-opts",
                &image,
            ],
            &[
                "map",
                "--object",
                OBJECT,
                "--output=json",
                "--image-opts",
                &image,
            ],
            &["check", "--object", OBJECT, "--image-opts", &image],
            &["snapshot", "--object", OBJECT, "-l", "--image-opts", &image],
            &[
                "convert",
                "--object",
                OBJECT,
                "-O",
                "raw",
                "--image-opts",
                &image,
                "out.raw",
            ],
            &[
                "convert",
                "--object",
                OBJECT,
                "-l",
                "snap1",
                "-O",
                "raw",
                "--image-opts",
                &image,
                "snap.raw",
            ],
            &[
                "compare",
                "--object",
                OBJECT,
                "--image-opts",
                &image,
                "driver=raw,file.filename=out.raw",
            ],
            &[
                "compare",
                "--object",
                OBJECT,
                "--image-opts",
                &image,
                "driver=raw,file.filename=snap.raw",
            ],
        ];
        for args in with_secret {
            twin.assert_same_on_theirs(args);
        }
        // Both read the same plaintext (qemu-img's file is the reference).
        let plain = |dir: &Path, name: &str| fs::read(dir.join(name)).unwrap();
        let ours = twin.ours();
        crate::util::rbdimg_ok(
            &ours,
            &[
                "convert",
                "--object",
                OBJECT,
                "-O",
                "raw",
                "--image-opts",
                &image,
                "mine.raw",
            ],
        );
        assert_eq!(
            qemu_img(
                &twin.theirs(),
                &[
                    "convert",
                    "--object",
                    OBJECT,
                    "-O",
                    "raw",
                    "--image-opts",
                    &image,
                    "ref.raw"
                ]
            )
            .code,
            0
        );
        let mine = plain(&ours, "mine.raw");
        assert_eq!(mine, plain(&twin.theirs(), "ref.raw"), "{file}");
        assert_eq!(mine[1000..8192], vec![0x5a; 7192][..]);
        assert_eq!(mine[8192..12288], vec![0; 4096][..]);
        // Without the secret, with a wrong one: qemu-img's messages.
        for args in [
            &["info", &file][..],
            &["info", "--output=json", &file],
            &["convert", "-O", "raw", &file, "x.raw"],
            &["check", &file],
            &["map", &file],
            &["convert", "-O", "raw", "--image-opts", &image, "x.raw"],
            &[
                "convert",
                "--object",
                "secret,id=s0,data=wrong",
                "-O",
                "raw",
                "--image-opts",
                &image,
                "x.raw",
            ],
            &[
                "compare",
                "--object",
                "secret,id=s0,data=wrong",
                "--image-opts",
                &image,
                &image,
            ],
        ] {
            twin.assert_same_on_theirs(args);
        }
    }
}

#[test]
fn create_options_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|_| {});
    let base = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10";
    let with = |o: &str| format!("{base},{o}");
    let lines = [
        "encryption=on".to_string(),
        "encrypt.format=foo".to_string(),
        "encrypt.key-secret=s0".to_string(),
        "encrypt.format=luks".to_string(),
        "encrypt.format=luks,encrypt.key-secret=nope".to_string(),
        with("encrypt.cipher-alg=foo"),
        with("encrypt.cipher-mode=foo"),
        with("encrypt.ivgen-alg=foo"),
        with("encrypt.hash-alg=foo"),
        with("encrypt.cipher-alg=sm4"),
        with("encrypt.cipher-alg=cast5-128"),
        with("encrypt.cipher-alg=twofish-128,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=sha1"),
        with("encrypt.cipher-alg=serpent-256,encrypt.cipher-mode=ctr,encrypt.hash-alg=md5"),
        with("encrypt.detached-header=on"),
        base.to_string(),
        with("cluster_size=4096"),
        with("encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=essiv"),
        with("preallocation=metadata"),
        with("compat=0.10"),
        with("lazy_refcounts=on"),
    ];
    for (i, o) in lines.iter().enumerate() {
        let name = format!("c{i}.qcow2");
        twin.assert_same(&[
            "create", "--object", OBJECT, "-f", "qcow2", "-o", o, &name, "5M",
        ]);
        let len = |side: &Path| fs::metadata(side.join(&name)).map(|m| m.len()).ok();
        assert_eq!(len(&twin.ours()), len(&twin.theirs()), "{o}");
        if len(&twin.ours()).is_some() {
            // Ours, described by both programs alike, and clean to qemu-img.
            fs::copy(
                twin.ours().join(&name),
                twin.theirs().join(format!("ours-{name}")),
            )
            .unwrap();
            let ours = format!("ours-{name}");
            twin.assert_same_on_theirs(&["info", &ours]);
            twin.assert_same_on_theirs(&["info", "--output=json", &ours]);
            let check = qemu_img(
                &twin.theirs(),
                &["check", "--object", OBJECT, "--image-opts", &opts(&ours)],
            );
            assert_eq!(check.code, 0, "{o}: {check:?}");
        }
    }
    for o in [
        base.to_string(),
        with("encrypt.cipher-alg=aes-128,cluster_size=4096"),
        with("preallocation=full"),
        "encrypt.format=luks,encrypt.key-secret=nope".to_string(),
        "encrypt.format=aes,encrypt.key-secret=s0".to_string(),
    ] {
        twin.assert_same(&[
            "measure", "--object", OBJECT, "-O", "qcow2", "-o", &o, "--size", "1G",
        ]);
    }
    twin.assert_same(&[
        "convert", "--object", OBJECT, "-c", "-O", "qcow2", "-o", base, "c0.qcow2", "x.qcow2",
    ]);
}

#[test]
fn rbdimg_writes_what_qemu_img_reads() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    make(d);
    // Random data, so that any 4 KiB of it found in a file is plaintext.
    let data: Vec<u8> = (0..3u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(d.join("src.raw"), &data).unwrap();
    // Any 512-byte sector of the data, at any sector of the file.
    let leaks = |file: &str| {
        let bytes = fs::read(d.join(file)).unwrap();
        let sectors: std::collections::HashSet<&[u8]> = bytes.chunks(512).collect();
        data.chunks(512).any(|s| sectors.contains(s))
    };
    let o = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10";
    for (i, extra) in [
        "",
        ",encrypt.cipher-alg=aes-128,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain64,encrypt.hash-alg=sha512",
        ",encrypt.cipher-alg=twofish-128,encrypt.cipher-mode=ecb,encrypt.hash-alg=sha224",
        ",encrypt.cipher-alg=cast5-128,encrypt.cipher-mode=ctr,encrypt.ivgen-alg=essiv,encrypt.ivgen-hash-alg=md5,encrypt.hash-alg=sm3",
        ",encrypt.cipher-alg=serpent-256,encrypt.cipher-mode=cbc,encrypt.ivgen-alg=plain",
    ]
        .iter()
        .enumerate()
    {
        let target = format!("new{i}.qcow2");
        let o = format!("{o}{extra}");
        crate::util::rbdimg_ok(d, &["convert", "--object", OBJECT, "-O", "qcow2", "-o", &o, "src.raw", &target]);
        sh(d, &format!("qemu-img compare --object '{OBJECT}' -f raw src.raw --image-opts '{}'", opts(&target)).replace("-f raw src.raw --image-opts", "--image-opts driver=raw,file.filename=src.raw"));
        sh(d, &format!("qemu-img check --object '{OBJECT}' --image-opts '{}'", opts(&target)));
        assert!(!leaks(&target), "plaintext in {target}");
    }
    // Into qemu-img's image: overwrite, snapshot, overwrite again, grow;
    // qemu-img reads each state back.
    let image = opts("e0.qcow2");
    crate::util::rbdimg_ok(
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
    crate::util::rbdimg_ok(
        d,
        &[
            "snapshot",
            "--object",
            OBJECT,
            "-c",
            "mine",
            "--image-opts",
            &image,
        ],
    );
    crate::util::rbdimg_ok(
        d,
        &["resize", "--object", OBJECT, "--image-opts", &image, "+1M"],
    );
    sh(
        d,
        &format!(
            "qemu-io --object '{OBJECT}' --image-opts '{image}' -c 'read -P 0 3M 1M' >/dev/null"
        ),
    );
    sh(
        d,
        &format!("qemu-img check --object '{OBJECT}' --image-opts '{image}'"),
    );
    sh(
        d,
        &format!(
            "qemu-img convert --object '{OBJECT}' -l mine -O raw --image-opts '{image}' mine.raw"
        ),
    );
    // A snapshot view has the image's current size (QEMU's, too).
    let mine = fs::read(d.join("mine.raw")).unwrap();
    assert_eq!(mine[..data.len()], data[..]);
    assert!(mine[data.len()..].iter().all(|&b| b == 0));
    assert!(!leaks("e0.qcow2"), "plaintext in e0.qcow2");
}
