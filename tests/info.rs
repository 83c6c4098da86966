//! `info` on raw images, human and JSON, against qemu-img.

use crate::util::{Oracle, Twin, make_raw, require};

fn twin_with_images() -> Twin {
    Twin::new(|dir| {
        make_raw(&dir.join("empty.raw"), 0, &[]);
        make_raw(&dir.join("odd.raw"), 1000, &[(0, 1, 1000)]);
        make_raw(
            &dir.join("sparse.raw"),
            3 << 29,
            &[(1 << 20, 0xab, 65536), (1 << 29, 1, 4096)],
        );
        make_raw(&dir.join("one-and-a-half.raw"), 1536 << 10, &[]);
        make_raw(&dir.join("name with 'quote'.raw"), 4096, &[]);
    })
}

#[test]
fn human_and_json_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = twin_with_images();
    for image in [
        "empty.raw",
        "odd.raw",
        "sparse.raw",
        "one-and-a-half.raw",
        "name with 'quote'.raw",
    ] {
        // Probed (with qemu's warning on stderr) and explicit.
        twin.assert_same(&["info", image]);
        twin.assert_same(&["info", "-f", "raw", image]);
        twin.assert_same(&["info", "--output=json", "-f", "raw", image]);
        twin.assert_same(&["info", "--output", "json", image]);
        twin.assert_same(&["info", "-U", "--backing-chain", "-f", "raw", image]);
        twin.assert_same(&[
            "info",
            "--backing-chain",
            "--output=json",
            "-f",
            "raw",
            image,
        ]);
    }
}

#[test]
fn image_opts_and_json_names_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = twin_with_images();
    twin.assert_same(&[
        "info",
        "--image-opts",
        "driver=raw,file.filename=sparse.raw",
    ]);
    twin.assert_same(&[
        "info",
        "--output=json",
        "--image-opts",
        "driver=file,filename=odd.raw",
    ]);
    twin.assert_same(&[
        "info",
        r#"json:{"driver":"raw","file":{"driver":"file","filename":"odd.raw"}}"#,
    ]);
}

#[test]
fn errors_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = twin_with_images();
    for args in [
        &["info", "missing.raw"][..],
        &["info", "-f", "foo", "odd.raw"],
        &["info", "--output=xml", "odd.raw"],
        &["info"],
        &["info", "a", "b"],
        &["info", "-z", "odd.raw"],
        &["info", "--bogus", "odd.raw"],
        &["info", "-f"],
        &["info", "."],
    ] {
        let out = twin.assert_same(args);
        assert_eq!(out.code, 1, "{args:?}");
    }
}
