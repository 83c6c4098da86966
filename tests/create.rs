//! `create` for raw images against qemu-img: sizes, options and errors.

use crate::util::{Oracle, Twin, require};

#[test]
fn sizes_parse_like_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|_| {});
    let sizes = [
        "0",
        "1",
        "512",
        "1000",
        "1k",
        "1K",
        "1.5k",
        "1.1k",
        "1.k",
        ".5k",
        "1M",
        "1.5M",
        "2G",
        "1T",
        "0x10",
        "0X1f",
        "1b",
        "1B",
        "7E",
        "8E",
        "16E",
        "1.5",
        "1e3",
        "1Q",
        "k",
        "",
        "0x",
        "0x1k",
        "1kk",
        "00012",
        "1.999999999999999999999k",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "4.00000000000000000001M",
        " 1",
        "+1",
        "1 ",
    ];
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("img{i}");
        twin.assert_same(&["create", "-f", "raw", &name, size]);
        twin.assert_same(&["info", "--output=json", "-f", "raw", &name]);
    }
}

#[test]
fn options_and_messages_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|_| {});
    for args in [
        &[
            "create",
            "-f",
            "raw",
            "-o",
            "preallocation=full",
            "full.raw",
            "1M",
        ][..],
        &[
            "create",
            "-f",
            "raw",
            "-o",
            "preallocation=falloc",
            "falloc.raw",
            "1M",
        ],
        &[
            "create",
            "-f",
            "raw",
            "-o",
            "preallocation=off",
            "off.raw",
            "1M",
        ],
        &["create", "-f", "raw", "-o", "size=2M", "osize.raw"],
        &["create", "-o", "size=2M", "twice.raw", "3M"],
        &["create", "-q", "quiet.raw", "1M"],
        &["create", "-f", "raw", "-o", "help"],
        &["create", "-f", "raw", "-o", "?"],
        &["create", "-f", "raw", "-o", "help", "x.raw"],
        &[
            "create",
            "-f",
            "raw",
            "-o",
            "preallocation=bogus",
            "bogus.raw",
            "1M",
        ],
        &[
            "create",
            "-f",
            "raw",
            "-o",
            "preallocation=metadata",
            "meta.raw",
            "1M",
        ],
        &["create", "-f", "raw", "-o", "foo=bar", "foo.raw", "1M"],
        &["create", "-f", "foo", "foo.raw", "1M"],
        &["create", "-f", "raw", "-b", "full.raw", "backed.raw", "1M"],
        &["create", "nosize.raw"],
        &["create", "-u", "nosize.raw"],
        &["create"],
        &["create", "-f", "raw", "/nonexistent/dir/x.raw", "1M"],
        &["create", "-f", "raw", "x.raw", "-1"],
        &["create", "-f", "raw", "x.raw", "1M", "extra"],
    ] {
        twin.assert_same(args);
    }
    // Deliberate difference: qemu-img leaves an empty file behind when it
    // refuses preallocation=metadata for raw; a refused create leaves nothing.
    assert!(!twin.ours().join("meta.raw").exists());
    for file in [
        "full.raw",
        "falloc.raw",
        "off.raw",
        "osize.raw",
        "quiet.raw",
        "bogus.raw",
        "foo.raw",
    ] {
        twin.assert_same_file(file);
        if twin.ours().join(file).exists() {
            twin.assert_same(&["info", "-f", "raw", file]);
        }
    }
}

/// `-o` lists as qemu-img reads them: `is_valid_option_list` on each `-o`
/// (issue 9: `-o ','` was accepted), then QemuOpts' item rules — only
/// values unescape ",,", a bare `key` is `key=on`, `nokey` is `key=off`,
/// `id` is ignored — for create and convert alike.
#[test]
fn option_lists_parse_like_qemu_opts() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| std::fs::write(dir.join("a.raw"), [1u8; 4096]).unwrap());
    let lists = [
        ",",
        "",
        ",size=1M",
        "cluster_size=4k,",
        "cluster_size=4k,,",
        "cluster_size=4k,,,",
        "cluster_size=4k,,x",
        "a,,b=c",
        "nolazy_refcounts",
        "lazy_refcounts",
        "lazy_refcounts=on,nolazy_refcounts",
        "=x",
        "help,size=1",
        "x=help",
        "nohelp",
        "id=foo",
        "compat=1.1,,",
        "compat=1.1,id=x,,y",
    ];
    for (i, list) in lists.iter().enumerate() {
        let name = format!("o{i}.qcow2");
        twin.assert_same(&["create", "-f", "qcow2", "-o", list, &name, "1M"]);
        twin.assert_same(&["create", "-f", "qcow2", "-o", "size=1M", "-o", list, &name]);
        let out = format!("c{i}.qcow2");
        twin.assert_same(&["convert", "-O", "qcow2", "-o", list, "a.raw", &out]);
        twin.assert_same(&["info", "--output=json", &out]);
    }
}
