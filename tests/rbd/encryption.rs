//! librbd's RBD encryption on both backends. LUKS2 images rbdimg creates
//! hold data, and so do their clones. Clones of an encrypted RBD image,
//! as librbd 16 has them: the clone
//! shares its parent's LUKS header and key, its missing objects read the
//! parent's ciphertext (decrypted where the parent's objects store bytes,
//! zeros elsewhere), a write copies that ciphertext up before the new
//! sectors go in encrypted, and flatten keeps the plaintext. Clones made
//! by rbdimg in both clone formats; on Ceph, QEMU's rbd driver (librbd)
//! reads every image the same.

use std::path::Path;

use super::layering::clone;
use super::{Backend, both_backends, raw_source, rbdimg_fails, rbdimg_ok, unique};
use crate::util::{Oracle, qemu_img, require};

both_backends!(
    encrypted_clones_read_write_and_flatten,
    luks2_images_and_their_clones_hold_data
);

const SECRET: &str = "secret,id=s0,data=clone-crypt-pass";
const MIB: u64 = 1 << 20;
/// The LUKS1 payload: three 4 MiB objects after the one the header takes.
const PAYLOAD: u64 = 12 * MIB;
/// The LUKS2 payload (after a 16 MiB header).
const PAYLOAD2: u64 = 20 * MIB;

/// `--image-opts` of `image` with its encryption (`luks` for LUKS1,
/// `luks2`) loaded.
fn crypt_opts(b: &Backend, image: &str, format: &str) -> String {
    format!(
        "{},encrypt.format={format},encrypt.key-secret=s0",
        b.image_opts(image)
    )
}

/// The plaintext of `image`, as rbdimg reads it; on Ceph, QEMU's rbd
/// driver reads the same (`dd`: QEMU's `convert` trusts librbd 16's
/// block status, which is one object off on encrypted images).
fn plaintext(b: &Backend, d: &Path, image: &str, format: &str) -> Vec<u8> {
    let opts = crypt_opts(b, image, format);
    let ours = d.join("ours.raw");
    let _ = std::fs::remove_file(&ours);
    rbdimg_ok(&[
        "convert",
        "--object",
        SECRET,
        "-O",
        "raw",
        "--image-opts",
        &opts,
        ours.to_str().unwrap(),
    ]);
    let ours = std::fs::read(ours).unwrap();
    if matches!(b, Backend::Ceph(_)) && require(Oracle::RbdDriver) {
        let _ = std::fs::remove_file(d.join("theirs.raw"));
        let input = format!("if={opts}");
        let args = [
            "dd",
            "--object",
            SECRET,
            "--image-opts",
            "-O",
            "raw",
            "bs=1M",
            &input,
            "of=theirs.raw",
        ];
        let out = qemu_img(d, &args);
        assert_eq!(out.code, 0, "qemu-img {args:?}: {out:#?}");
        let theirs = std::fs::read(d.join("theirs.raw")).unwrap();
        assert!(ours == theirs, "{image} reads differently in QEMU");
    }
    ours
}

/// A new image of `size` with encryption `format` (`luks`: LUKS1, or
/// `luks2`), made by rbdimg.
fn encrypted_image(b: &Backend, prefix: &str, format: &str, size: &str) -> String {
    let image = unique(prefix);
    let o = format!("encrypt.format={format},encrypt.key-secret=s0");
    rbdimg_ok(&[
        "create",
        "--object",
        SECRET,
        "-f",
        "raw",
        "-o",
        &o,
        &b.name(&image),
        size,
    ]);
    image
}

/// `rebase -b ''` of the LUKS1 clone `child` with its encryption loaded:
/// it stands alone, reads `plain` still, and its object map is right.
fn flatten_keeps(b: &Backend, d: &Path, child: &str, plain: &[u8]) {
    rbdimg_ok(&[
        "rebase",
        "--object",
        SECRET,
        "-b",
        "",
        "--image-opts",
        &crypt_opts(b, child, "luks"),
    ]);
    assert!(plaintext(b, d, child, "luks") == plain, "{child} flattened");
    let info = rbdimg_ok(&["info", "-f", "raw", &b.name(child)]);
    assert!(!info.stdout.contains("backing file"), "{}", info.stdout);
    b.object_map_check(child);
}

/// Writes the data runs of a sparse source into `image` (only them).
fn write(b: &Backend, d: &Path, image: &str, format: &str, runs: &[(u64, u8, usize)]) {
    let size = if format == "luks2" { PAYLOAD2 } else { PAYLOAD };
    let src = raw_source(d, "runs.raw", size, runs);
    rbdimg_ok(&[
        "convert",
        "--object",
        SECRET,
        "-n",
        "--target-is-zero",
        "--target-image-opts",
        src.to_str().unwrap(),
        &crypt_opts(b, image, format),
    ]);
}

fn encrypted_clones_read_write_and_flatten(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parent = encrypted_image(b, "crypt-parent", "luks", "12M");
    // The last object stays never written.
    write(
        b,
        d,
        &parent,
        "luks",
        &[(4096, 0x5a, 70000), (5 * MIB, 0x21, 8192)],
    );
    rbdimg_ok(&["snapshot", "-f", "raw", "-c", "base", &b.name(&parent)]);
    let before = plaintext(b, d, &parent, "luks");
    let raw_parent = b.export(&format!("{parent}@base"));
    for format in [1, 2] {
        let child = unique(&format!("crypt-clone-v{format}"));
        clone(b, &format!("{parent}@base"), &child, format, None);
        // (Each unlock takes PBKDF2's iter-time: reads are few.)
        // Copy-ups of a written object and of one the parent never
        // wrote, then the new sectors encrypted.
        let runs = [(8192, 0x77, 8192), (8 * MIB + 4096, 0x66, 4096)];
        write(b, d, &child, "luks", &runs);
        let after = plaintext(b, d, &child, "luks");
        let mut expected = before.clone();
        for &(at, byte, len) in &runs {
            expected[at as usize..at as usize + len].fill(byte);
        }
        // Never-written sectors inside an object that now exists decrypt
        // to noise, as in librbd (QEMU's reading is compared above).
        let noise = 8 * MIB as usize..8 * MIB as usize + 4096;
        assert!(after[noise.clone()].iter().any(|&x| x != 0));
        expected[noise.clone()].copy_from_slice(&after[noise]);
        assert!(after == expected, "v{format} clone after writes");
        assert!(b.export(&format!("{parent}@base")) == raw_parent);
        b.object_map_check(&child);
        // Flatten with the encryption loaded keeps the plaintext.
        flatten_keeps(b, d, &child, &after);
    }
    // A key of the clone's own over its parent's is Ceph 17's layered
    // encryption: refused before anything is made.
    let child = unique("crypt-clone-own-key");
    rbdimg_fails(
        &[
            "create",
            "--object",
            SECRET,
            "-f",
            "raw",
            "-o",
            "encrypt.format=luks,encrypt.key-secret=s0",
            "-b",
            &b.name(&format!("{parent}@base")),
            "-F",
            "raw",
            &b.name(&child),
        ],
        "Encrypting an RBD clone (a key of its own over its parent's) is not supported by rbdimg",
    );
    let info = super::rbdimg(&["info", &b.name(&child)]);
    assert_ne!(info.code, 0, "the refused clone exists: {info:#?}");
}

/// A LUKS2 image rbdimg creates (argon2id key slot, 4096-byte sectors)
/// takes data and reads it back, and so does a clone of it.
fn luks2_images_and_their_clones_hold_data(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let parent = encrypted_image(b, "crypt2-parent", "luks2", "20M");
    let runs = [
        (0, 0x42, 4096),
        (5 * MIB + 8192, 0x43, 12288),
        (19 * MIB, 0x44, 1 << 20),
    ];
    write(b, d, &parent, "luks2", &runs);
    let plain = plaintext(b, d, &parent, "luks2");
    assert_eq!(plain.len() as u64, PAYLOAD2);
    for (at, byte, len) in runs {
        assert!(
            plain[at as usize..at as usize + len]
                .iter()
                .all(|&x| x == byte)
        );
    }
    rbdimg_ok(&["snapshot", "-f", "raw", "-c", "base", &b.name(&parent)]);
    let child = unique("crypt2-clone");
    clone(b, &format!("{parent}@base"), &child, 2, None);
    assert!(plaintext(b, d, &child, "luks2") == plain);
}

/// Clones `rbd clone` makes (v1 and v2) of an image `rbd encryption
/// format` made and QEMU wrote: rbdimg reads them as QEMU does, writes
/// into them what QEMU reads back, and flattens them.
#[test]
fn clones_made_by_rbd_read_and_write_as_in_qemu() {
    if !require(Oracle::QemuIo) || !require(Oracle::RbdDriver) {
        return;
    }
    let b = Backend::ceph();
    let Backend::Ceph(c) = &b else { unreachable!() };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pass = d.join("pass");
    std::fs::write(&pass, "clone-crypt-pass").unwrap();
    let parent = unique("crypt-rbd-parent");
    c.tool_ok("rbd", &["create", "--size", "16M", &parent]);
    let format = ["encryption", "format", &parent, "luks1"];
    c.tool_ok("rbd", &[&format[..], &[pass.to_str().unwrap()]].concat());
    let qemu_io = |image: &str, commands: &str| {
        crate::util::sh(
            d,
            &format!(
                "qemu-io --object '{SECRET}' --image-opts '{}' {commands} >/dev/null",
                crypt_opts(&b, image, "luks")
            ),
        )
    };
    qemu_io(
        &parent,
        "-c 'write -P 0x5a 1000 70000' -c 'write -P 0x21 4M 4096'",
    );
    let snap = format!("{parent}@base");
    c.tool_ok("rbd", &["snap", "create", &snap]);
    c.tool_ok("rbd", &["snap", "protect", &snap]);
    let raw_parent = c.export(&snap);
    for format in [1, 2] {
        let child = unique(&format!("crypt-rbd-clone-v{format}"));
        let setting = format!("--rbd-default-clone-format={format}");
        c.tool_ok("rbd", &["clone", &setting, &snap, &child]);
        if format == 1 {
            // What the clone reads through its parent is its data.
            let opts = crypt_opts(&b, &child, "luks");
            let args = [
                "map",
                "--object",
                SECRET,
                "--output=json",
                "--image-opts",
                &opts,
            ];
            let ours = rbdimg_ok(&args).stdout;
            assert_eq!(ours, qemu_img(d, &args).stdout);
            assert!(ours.contains(r#""data": true"#), "{ours}");
        }
        // rbdimg writes (copy-ups), QEMU checks and writes (its copy-up),
        // both read the same.
        write(
            &b,
            d,
            &child,
            "luks",
            &[(8192, 0x31, 4096), (8 * MIB, 0x32, 4096)],
        );
        qemu_io(
            &child,
            "-c 'read -P 0x31 8192 4096' -c 'read -P 0x32 8M 4096' -c 'read -P 0x5a 12288 58712' -c 'write -P 0x33 6M 512'",
        );
        let after = plaintext(&b, d, &child, "luks");
        assert_eq!(after[6 << 20..(6 << 20) + 512], [0x33; 512][..]);
        assert!(c.export(&snap) == raw_parent, "the parent changed");
        b.object_map_check(&child);
        flatten_keeps(&b, d, &child, &after);
        let info = c.tool_ok("rbd", &["info", &child]);
        assert!(!info.stdout.contains("parent:"), "{}", info.stdout);
    }
}
