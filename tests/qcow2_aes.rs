//! Legacy qcow2 AES (`encrypt.format=aes`, crypt_method 1) against
//! qemu-img/qemu-io: qemu-img 10 still opens, creates and writes such
//! images (only system emulators refuse them), so rbdimg does too, with
//! the same output, messages and bytes.

use std::fs;
use std::path::Path;

use crate::util::{Oracle, Twin, make_raw, qemu_img, rbdimg_ok, require, sh};

/// Longer than the 16 bytes legacy AES keys on: the rest is ignored.
const OBJECT: &str = "secret,id=s0,data=legacy-aes-passphrase";
/// Shorter: zero-padded.
const SHORT: &str = "secret,id=s0,data=abc";

fn opts(file: &str) -> String {
    format!("driver=qcow2,encrypt.key-secret=s0,file.filename={file}")
}

/// qemu-img's AES images: `a.qcow2` (long passphrase, default clusters)
/// and `b.qcow2` (short one, 4 KiB clusters, compat 0.10), with unaligned
/// data, a zeroed range, a snapshot and data written after it.
fn make(dir: &Path) {
    make_raw(
        &dir.join("src.raw"),
        3 << 20,
        &[(0, 0x11, 4096), (700_000, 0x22, 1000)],
    );
    for (file, object, extra) in [
        ("a.qcow2", OBJECT, ""),
        ("b.qcow2", SHORT, ",cluster_size=4096,compat=0.10"),
    ] {
        let o = format!("encrypt.format=aes,encrypt.key-secret=s0{extra}");
        sh(
            dir,
            &format!("qemu-img create -q --object '{object}' -f qcow2 -o '{o}' {file} 3M"),
        );
        let io = |cmds: &str| {
            sh(
                dir,
                &format!(
                    "qemu-io --object '{object}' --image-opts '{}' {cmds} >/dev/null",
                    opts(file)
                ),
            )
        };
        io("-c 'write -P 0x5a 1000 70000' -c 'write -z 8192 4096' -c 'write -P 0x21 2M 512'");
        sh(
            dir,
            &format!(
                "qemu-img snapshot --object '{object}' -c snap1 --image-opts '{}'",
                opts(file)
            ),
        );
        io("-c 'write -P 0x77 100000 5000'");
    }
}

#[test]
fn qemu_img_aes_images_read_alike() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(make);
    for (file, object) in [("a.qcow2", OBJECT), ("b.qcow2", SHORT)] {
        let image = opts(file);
        let with_secret: [&[&str]; 10] = [
            &["info", file],
            &["info", "--output=json", file],
            &["info", "--object", object, "--image-opts", &image],
            &[
                "map",
                "--object",
                object,
                "--output=json",
                "--image-opts",
                &image,
            ],
            &["map", "--object", object, "--image-opts", &image],
            &["check", "--object", object, "--image-opts", &image],
            &["snapshot", "--object", object, "-l", "--image-opts", &image],
            &[
                "compare",
                "--object",
                object,
                "--image-opts",
                &image,
                "driver=raw,file.filename=src.raw",
            ],
            &[
                "measure",
                "--object",
                object,
                "-O",
                "qcow2",
                "--image-opts",
                &image,
            ],
            // Without the secret: the header alone, or qemu-img's refusal.
            &["convert", "-O", "raw", file, "x.raw"],
        ];
        for args in with_secret {
            twin.assert_same_on_theirs(args);
        }
        for args in [
            &["check", file][..],
            &["map", file],
            &["compare", file, file],
        ] {
            twin.assert_same_on_theirs(args);
        }
        // The plaintext (qemu-img's is the reference), now and at snap1,
        // and the same garbage with a wrong passphrase (AES has no check).
        for (out, extra, secret) in [
            ("now.raw", None, object),
            ("snap.raw", Some("snap1"), object),
            ("wrong.raw", None, "secret,id=s0,data=wrong"),
        ] {
            let mut args = vec!["convert", "--object", secret, "-O", "raw"];
            if let Some(snap) = extra {
                args.extend(["-l", snap]);
            }
            args.extend(["--image-opts", &image, out]);
            rbdimg_ok(&twin.ours(), &args);
            assert_eq!(qemu_img(&twin.theirs(), &args).code, 0, "{args:?}");
            let read = |dir: &Path| fs::read(dir.join(out)).unwrap();
            let mine = read(&twin.ours());
            assert!(mine == read(&twin.theirs()), "{file} {out}");
            if out == "now.raw" {
                assert_eq!(mine[1000..8192], vec![0x5a; 7192][..]);
                assert_eq!(mine[8192..12288], vec![0; 4096][..]);
                assert_eq!(mine[100_000..105_000], vec![0x77; 5000][..]);
            }
        }
    }
}

#[test]
fn rbdimg_creates_and_writes_what_qemu_img_reads() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(make);
    // `qemu-img CMD --object OBJECT ARGS...`
    let with_secret = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = vec![args[0].into(), "--object".into(), OBJECT.into()];
        v.extend(args[1..].iter().map(|a| a.to_string()));
        v
    };
    let run_ours = |args: &[&str]| {
        let v = with_secret(args);
        rbdimg_ok(
            &twin.ours(),
            &v.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    };
    let aes = "encrypt.format=aes,encrypt.key-secret=s0";
    let with = |o: &str| format!("{aes},{o}");
    // Creating: refusals and successes, line for line and byte for byte.
    for (i, o) in [
        "encrypt.format=aes".to_string(),
        "encryption=on".to_string(),
        "encrypt.format=aes,encrypt.key-secret=nope".to_string(),
        with("encrypt.cipher-alg=aes-128"),
        with("encrypt.iter-time=10"),
        aes.to_string(),
        "encryption=on,encrypt.key-secret=s0".to_string(),
        with("compat=0.10,cluster_size=4096"),
        with("preallocation=metadata"),
    ]
    .iter()
    .enumerate()
    {
        let name = format!("c{i}.qcow2");
        twin.assert_same(
            &with_secret(&["create", "-f", "qcow2", "-o", o, &name, "1M"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        if twin.ours().join(&name).exists() || twin.theirs().join(&name).exists() {
            twin.assert_same_image(&name, true);
        }
    }
    twin.assert_same(
        &with_secret(&["measure", "-O", "qcow2", "-o", aes, "src.raw"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    // Converting into a new AES image: qemu-img reads it back, it is
    // clean, and no sector of the data is in the file in plaintext.
    let ours = twin.ours();
    let data: Vec<u8> = (0..2u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(ours.join("rand.raw"), &data).unwrap();
    run_ours(&["convert", "-O", "qcow2", "-o", aes, "rand.raw", "new.qcow2"]);
    let image = opts("new.qcow2");
    sh(
        &ours,
        &format!(
            "qemu-img compare --object '{OBJECT}' --image-opts driver=raw,file.filename=rand.raw '{image}' \
             && qemu-img check --object '{OBJECT}' --image-opts '{image}'"
        ),
    );
    let bytes = fs::read(ours.join("new.qcow2")).unwrap();
    let sectors: std::collections::HashSet<&[u8]> = bytes.chunks(512).collect();
    assert!(
        !data.chunks(512).any(|s| sectors.contains(s)),
        "plaintext in new.qcow2"
    );
    // Writing into qemu-img's image: unaligned data, a snapshot, a resize;
    // qemu-io and qemu-img read each state.
    let image = opts("a.qcow2");
    make_raw(&ours.join("patch.raw"), 3 << 20, &[(3000, 0x66, 9000)]);
    run_ours(&["snapshot", "-c", "mine", "--image-opts", &image]);
    run_ours(&["convert", "-n", "--target-image-opts", "patch.raw", &image]);
    run_ours(&["resize", "--image-opts", &image, "+1M"]);
    let before = opts("../theirs/a.qcow2");
    sh(
        &ours,
        &format!(
            "qemu-io --object '{OBJECT}' --image-opts '{image}' -c 'read -P 0x66 3000 9000' \
             -c 'read -P 0 12000 1000' -c 'read -P 0 3M 1M' >/dev/null \
             && qemu-img check --object '{OBJECT}' --image-opts '{image}' \
             && qemu-img convert --object '{OBJECT}' -l mine -O raw --image-opts '{image}' mine.raw \
             && qemu-img compare --object '{OBJECT}' --image-opts driver=raw,file.filename=mine.raw '{before}'"
        ),
    );
}
