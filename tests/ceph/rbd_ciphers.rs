//! LUKS headers naming another cipher than librbd's aes-xts-plain64,
//! loaded as RBD encryption: refused as librbd's LoadRequest refuses them
//! (before it tries the passphrase), next to QEMU's rbd driver.

use super::{rbdimg, shared, unique};
use crate::util::{Oracle, qemu_img, require, sh};

#[test]
fn librbd_loads_aes_xts_plain64_only() {
    if !require(Oracle::QemuImg) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (i, o) in [
        ",cipher-alg=twofish-256",
        ",cipher-mode=cbc",
        ",ivgen-alg=plain",
        "",
    ]
    .iter()
    .enumerate()
    {
        let file = format!("v{i}.luks");
        sh(
            d,
            &format!(
                "qemu-img create -q --object secret,id=s0,data=pass -f luks \
                 -o key-secret=s0,iter-time=10{o} {file} 8M"
            ),
        );
        let image = unique("cipher");
        c.tool_ok("rbd", &["import", d.join(&file).to_str().unwrap(), &image]);
        let (pool, name) = image.split_once('/').unwrap();
        let opts = format!(
            "driver=rbd,pool={pool},image={name},conf={},encrypt.format=luks,encrypt.key-secret=s0",
            c.conf()
        );
        for secret in ["secret,id=s0,data=pass", "secret,id=s0,data=wrong"] {
            let args = ["info", "--object", secret, "--image-opts", &opts];
            let (ours, theirs) = (rbdimg(&args), qemu_img(d, &args));
            assert_eq!(ours.code, theirs.code, "{o} {secret}: {ours:?} {theirs:?}");
            assert_eq!(
                ours.stderr.replacen("rbdimg:", "qemu-img:", 1),
                theirs.stderr,
                "{o} {secret}"
            );
        }
    }
}
