//! QEMU's raw `offset` and `size` options (`--image-opts driver=raw,...`
//! and `json:{"driver":"raw",...}`): the image is a window of its file.
//! Every command runs next to qemu-img on identical files.

use crate::util::{Twin, have_qemu_img, make_raw};

/// qemu-img is the oracle here: under CI its absence is a failure.
fn oracle() -> bool {
    assert!(
        have_qemu_img() || std::env::var_os("CI").is_none(),
        "qemu-img is missing under CI"
    );
    have_qemu_img()
}

fn twin() -> Twin {
    Twin::new(|dir| {
        make_raw(
            &dir.join("disk.raw"),
            4 << 20,
            &[(0, 1, 4096), (1 << 20, 2, 65536), (3 << 20, 3, 512)],
        )
    })
}

const WINDOWS: &[&str] = &[
    "driver=raw,offset=1M,size=2M,file.filename=disk.raw",
    "driver=raw,offset=1000,file.filename=disk.raw",
    "driver=raw,size=1048576,file.filename=disk.raw",
    "driver=raw,size=1000,file.filename=disk.raw",
    "driver=raw,offset=8M,file.filename=disk.raw",
    "driver=raw,offset=3M,size=2M,file.filename=disk.raw",
    "driver=raw,offset=x,file.filename=disk.raw",
];

#[test]
fn windows_open_and_show_as_qemu_img_shows_them() {
    if !oracle() {
        return;
    }
    let twin = twin();
    for window in WINDOWS {
        twin.assert_same_on_theirs(&["info", "--image-opts", window]);
        twin.assert_same_on_theirs(&["info", "--output=json", "--image-opts", window]);
    }
    for json in [
        r#"json:{"driver":"raw","offset":1048576,"size":1048576,"file":{"driver":"file","filename":"disk.raw"}}"#,
        r#"json:{"driver":"raw","offset":"1k","file":{"driver":"file","filename":"disk.raw"}}"#,
        r#"json:{"driver":"raw","offset":-1,"file":{"driver":"file","filename":"disk.raw"}}"#,
    ] {
        twin.assert_same_on_theirs(&["info", "--output=json", json]);
    }
}

#[test]
fn windows_convert_compare_and_resize_as_qemu_img_does() {
    if !oracle() {
        return;
    }
    let twin = twin();
    let window = WINDOWS[0];
    twin.assert_same(&[
        "convert",
        "--image-opts",
        window,
        "-O",
        "qcow2",
        "out.qcow2",
    ]);
    twin.assert_same(&[
        "compare",
        "--image-opts",
        "driver=qcow2,file.filename=out.qcow2",
        window,
    ]);
    twin.assert_same(&["convert", "--image-opts", window, "-O", "raw", "out.raw"]);
    twin.assert_same_file("out.raw");
    // A window without a size moves its end with the file.
    twin.assert_same(&["resize", "--image-opts", WINDOWS[1], "6M"]);
    twin.assert_same_file("disk.raw");
    twin.assert_same(&["resize", "--image-opts", WINDOWS[2], "2M"]);
}
