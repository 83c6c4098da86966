//! qemu-img's command-line habits against qemu-img: `file:` prefixes (a
//! name with a colon is a protocol, `file:` strips it), and sizes that are
//! negative or do not fit in 64 bits, on the command line and in `-o`.

use crate::util::{Oracle, Twin, make_raw, require};

#[test]
fn file_prefixes_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("r.raw"), 1 << 20, &[(0, 1, 4096)]);
        make_raw(&dir.join("a:b.raw"), 1 << 20, &[(4096, 2, 4096)]);
    });
    for args in [
        &["info", "file:r.raw"][..],
        &["info", "file:a:b.raw"],
        &["info", "--output=json", "file:a:b.raw"],
        &["info", "a:b.raw"],
        &["info", "./a:b.raw"],
        &["info", "foo:bar"],
        &["info", "-f", "raw", "file:nonexistent:x"],
        &["map", "--output=json", "file:a:b.raw"],
        &["create", "-f", "qcow2", "file:a:c.qcow2", "1M"],
        &["info", "a:c.qcow2"],
        &["info", "./a:c.qcow2"],
        &["convert", "-O", "raw", "file:r.raw", "file:a:d.raw"],
        &["compare", "./a:d.raw", "r.raw"],
        &["dd", "if=file:a:b.raw", "of=file:a:e.raw", "bs=4k"],
        &["compare", "file:a:e.raw", "file:a:b.raw"],
        &[
            "create",
            "-f",
            "qcow2",
            "-b",
            "file:a:b.raw",
            "-F",
            "raw",
            "bk.qcow2",
        ],
        &["info", "--backing-chain", "bk.qcow2"],
        &["measure", "-O", "qcow2", "file:a:b.raw"],
    ] {
        twin.assert_same(args);
    }
    for name in ["a:c.qcow2", "a:d.raw", "a:e.raw", "bk.qcow2"] {
        twin.assert_same_file(name);
    }
}

#[test]
fn size_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("r.raw"), 1 << 20, &[]));
    let values = [
        "-1",
        "-0",
        " -1",
        "-5k",
        "-9223372036854775808",
        "-18446744073709551616",
        "18446744073709551615",
        "18446744073709551616",
        "16E",
        "1.5k",
        "-1.5k",
        "x",
    ];
    for v in values {
        for args in [
            vec!["create", "-f", "raw", "x.raw", "--", v],
            vec!["create", "-f", "raw", "-o", &format!("size={v}"), "x.raw"],
            vec![
                "create",
                "-f",
                "qcow2",
                "-o",
                &format!("size={v}"),
                "x.qcow2",
            ],
            vec![
                "create",
                "-f",
                "qcow2",
                "-o",
                &format!("cluster_size={v}"),
                "x.qcow2",
                "1M",
            ],
            vec![
                "create",
                "-f",
                "raw",
                "-o",
                &format!("extent_size_hint={v}"),
                "x.raw",
                "1M",
            ],
            vec!["resize", "-f", "raw", "r.raw", "--", v],
            vec!["resize", "-f", "raw", "r.raw", "--", &format!("-{v}")],
            vec!["resize", "-f", "raw", "r.raw", "--", &format!("+{v}")],
            vec!["measure", "--size", v],
            vec!["map", "-s", v, "r.raw"],
            vec!["convert", "-S", v, "r.raw", "out.raw"],
        ] {
            twin.assert_same(&args);
        }
    }
    twin.assert_same(&["resize", "-f", "raw", "r.raw", "9223372035781033985"]);
    twin.assert_same_file("r.raw");
}

#[test]
fn json_names_and_backing_paths_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("r.raw"), 1 << 20, &[(0, 1, 4096)]);
        crate::util::sh(
            dir,
            "set -e
            mkdir sub
            qemu-img create -q -f raw sub/base.raw 1M
            qemu-img create -q -f qcow2 -b base.raw -F raw sub/ov.qcow2
            qemu-img create -q -f qcow2 -b ../r.raw -F raw sub/ov2.qcow2
            qemu-img create -q -u -f qcow2 -b missing.raw -F raw sub/ov3.qcow2 1M",
        );
    });
    for args in [
        &[
            "info",
            "json:{'driver':'raw','file':{'driver':'file','filename':'r.raw'}}",
        ][..],
        &["info", "json:{'file.filename':'r.raw'}"],
        &[
            "info",
            "--output=json",
            "json:{'driver':'raw','size':4096,'file':{'filename':'r.raw'}}",
        ],
        &[
            "info",
            "json:{'driver':'qcow2','file':{'driver':'file','filename':'sub/ov.qcow2'}}",
        ],
        &["info", "sub/ov.qcow2"],
        &["info", "sub/ov2.qcow2"],
        &["info", "--output=json", "sub/ov.qcow2"],
        &["info", "sub/ov3.qcow2"],
        &["info", "--backing-chain", "sub/ov.qcow2"],
        &[
            "info",
            "--image-opts",
            "driver=qcow2,file.filename=sub/ov.qcow2",
        ],
        &[
            "map",
            "--output=json",
            "json:{'driver':'qcow2','file':{'filename':'sub/ov2.qcow2'}}",
        ],
        &[
            "measure",
            "-O",
            "qcow2",
            "json:{'driver':'qcow2','file':{'filename':'sub/ov.qcow2'}}",
        ],
    ] {
        twin.assert_same(args);
    }
}
