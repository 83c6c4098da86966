//! Converting between the encrypted kinds on a real cluster: an encrypted
//! qcow2 (made by qemu-img) into an encrypted RBD image, that image into a
//! new encrypted qcow2 and into a raw `luks` volume inside another RBD
//! image. QEMU reads every result as the plaintext source, and no target
//! holds a single plaintext sector.

use std::fs;
use std::path::Path;

use super::{rbdimg_ok, shared, unique};
use crate::util::{Oracle, qemu_img, require};

const OBJECT: &str = "secret,id=s0,data=convert-crypt-pass";
const SIZE: usize = 6 << 20;

/// Seeded, never-repeating sectors with a hole between them, so each data
/// sector is one a leak would show.
fn source(path: &Path) -> Vec<u8> {
    let mut data = vec![0u8; SIZE];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for range in [1000..(3 << 20), (4 << 20) + 512..(5 << 20) + 4000] {
        for b in &mut data[range] {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    fs::write(path, &data).unwrap();
    data
}

/// Panics when any whole non-zero 512-byte sector of `plain` appears in
/// `stored` at a sector boundary.
fn assert_no_plaintext(stored: &[u8], plain: &[u8], what: &str) {
    let sectors: std::collections::HashSet<&[u8]> = plain
        .chunks_exact(512)
        .filter(|s| s.iter().any(|&b| b != 0))
        .collect();
    assert!(
        !stored.chunks_exact(512).any(|s| sectors.contains(s)),
        "{what} holds plaintext"
    );
}

fn qemu_compare(d: &Path, src: &Path, image_opts: &str) {
    let src_opts = format!("driver=raw,file.filename={}", src.display());
    let out = qemu_img(
        d,
        &[
            "compare",
            "--object",
            OBJECT,
            "--image-opts",
            &src_opts,
            image_opts,
        ],
    );
    assert_eq!(out.code, 0, "{image_opts}: {out:#?}");
}

#[test]
fn encrypted_qcow2_rbd_and_luks_convert_into_each_other() {
    if !require(Oracle::QemuImg) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    let data = source(&src);
    let qcow2_o = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10";
    let out = qemu_img(
        d,
        &[
            "convert",
            "--object",
            OBJECT,
            "-f",
            "raw",
            "-O",
            "qcow2",
            "-o",
            qcow2_o,
            "src.raw",
            "enc.qcow2",
        ],
    );
    assert_eq!(out.code, 0, "{out:#?}");
    let qcow2_opts = |file: &str| {
        format!(
            "driver=qcow2,encrypt.key-secret=s0,file.filename={}",
            d.join(file).display()
        )
    };

    // Encrypted qcow2 -> an encrypted RBD image rbdimg created.
    let image = unique("conv-crypt");
    rbdimg_ok(&[
        "create",
        "-q",
        "--object",
        OBJECT,
        "-f",
        "raw",
        "-o",
        "encrypt.format=luks,encrypt.key-secret=s0",
        &c.name(&image),
        &SIZE.to_string(),
    ]);
    let (pool, name) = image.split_once('/').unwrap();
    let rbd_opts = format!(
        "driver=rbd,pool={pool},image={name},conf={},encrypt.format=luks,encrypt.key-secret=s0",
        c.conf()
    );
    rbdimg_ok(&[
        "convert",
        "--object",
        OBJECT,
        "-n",
        "--image-opts",
        &qcow2_opts("enc.qcow2"),
        "--target-image-opts",
        &rbd_opts,
    ]);
    qemu_compare(d, &src, &rbd_opts);
    assert_no_plaintext(&c.export(&image), &data, "the encrypted RBD image");
    c.assert_object_map_clean(&image);

    // The RBD image out again, into a new image of `format`.
    let out_of_rbd = |format: &str, options: &str, target: &str| {
        rbdimg_ok(&[
            "convert",
            "--object",
            OBJECT,
            "--image-opts",
            &rbd_opts,
            "-O",
            format,
            "-o",
            options,
            target,
        ])
    };

    // The RBD image -> a new encrypted qcow2.
    out_of_rbd("qcow2", qcow2_o, d.join("back.qcow2").to_str().unwrap());
    qemu_compare(d, &src, &qcow2_opts("back.qcow2"));
    assert_no_plaintext(
        &fs::read(d.join("back.qcow2")).unwrap(),
        &data,
        "the new qcow2",
    );

    // The RBD image -> a raw LUKS volume in a new RBD image.
    let volume = unique("conv-luks");
    out_of_rbd("luks", "key-secret=s0,iter-time=10", &c.name(&volume));
    let (pool, name) = volume.split_once('/').unwrap();
    qemu_compare(
        d,
        &src,
        &format!(
            "driver=luks,key-secret=s0,file.driver=rbd,file.pool={pool},file.image={name},file.conf={}",
            c.conf()
        ),
    );
    assert_no_plaintext(&c.export(&volume), &data, "the LUKS volume");
    c.assert_object_map_clean(&volume);
    for image in [&image, &volume] {
        c.tool_ok("rbd", &["rm", "--no-progress", image]);
    }
}
