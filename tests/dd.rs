//! `dd` against qemu-img: the same output file, byte for byte (raw and
//! qcow2, fully allocated as qemu-img writes it), for every operand and
//! option, partial blocks, `count`/`skip` past the end, and the errors.

use crate::util::{Oracle, Twin, make_raw, require, sh};

fn images(dir: &std::path::Path) {
    make_raw(
        &dir.join("r.raw"),
        4 << 20,
        &[(0, 1, 4096), (3 << 20, 2, 700)],
    );
    make_raw(&dir.join("odd.raw"), 1000, &[(0, 3, 1000)]);
    make_raw(&dir.join("old.raw"), 8 << 20, &[(0, 7, 8 << 20)]);
    sh(
        dir,
        "set -e
        qemu-img create -q -f raw base.raw 4M
        qemu-io -f raw -c 'write -P 9 0 2M' base.raw >/dev/null
        qemu-img create -q -f qcow2 -b base.raw -F raw top.qcow2 8M
        qemu-io -c 'write -P 5 1M 64k' -c 'write -z 512k 64k' -c 'write -P 6 7M 4k' top.qcow2 >/dev/null",
    );
}

#[test]
fn dd_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let cases: &[&[&str]] = &[
        &["if=r.raw", "of=o"],
        &["if=r.raw", "of=o", "bs=1M", "count=2"],
        &["if=r.raw", "of=o", "bs=64k", "count=3", "skip=2"],
        &["if=r.raw", "of=o", "bs=1M", "skip=4"],
        &["if=r.raw", "of=o", "bs=1M", "skip=5"],
        &["if=r.raw", "of=o", "bs=4096", "skip=2251799813685248"],
        &["if=r.raw", "of=o", "count=0"],
        &["if=r.raw", "of=o", "bs=1M", "count=9223372036854775807"],
        &["if=odd.raw", "of=o", "bs=100"],
        &["if=odd.raw", "of=o", "bs=100", "skip=2"],
        &["if=top.qcow2", "of=o", "bs=1M", "count=1", "skip=1"],
        &["if=top.qcow2", "of=o", "bs=3000", "count=2000", "skip=7"],
        &["-O", "qcow2", "if=top.qcow2", "of=o", "bs=64k"],
        &["if=r.raw", "of=o", "-O", "qcow2", "bs=64k", "count=3"],
        &[
            "--output-format=qcow2",
            "-f",
            "qcow2",
            "if=top.qcow2",
            "of=o",
        ],
        &["-U", "if=r.raw", "of=o"],
        &["--image-opts", "if=driver=raw,file.filename=r.raw", "of=o"],
        &["if=r.raw", "of=o", "if=odd.raw"],
        &["if=r.raw", "bs=1k", "of=o", "bs=2k"],
        &["if=r.raw", "of=old.raw", "bs=1k", "count=3"],
        // Errors.
        &["if=r.raw"],
        &["of=o"],
        &[],
        &["if=r.raw", "of=o", "bs=0"],
        &["if=r.raw", "of=o", "bs=-1"],
        &["if=r.raw", "of=o", "bs=1x"],
        &["if=r.raw", "of=o", "bs=3G"],
        &["if=r.raw", "of=o", "count=-1"],
        &["if=r.raw", "of=o", "skip=foo"],
        &["if=r.raw", "of=o", "foo=1"],
        &["if=r.raw", "of=o", "junk"],
        &["if=nonexistent", "of=o"],
        &["if=r.raw", "of=o", "-O", "foo"],
        &["if=r.raw", "of=o", "-O", "null-co"],
        &["-f", "qcow2", "if=r.raw", "of=o"],
        &["--image-opts", "-f", "raw", "if=r.raw", "of=o"],
        &["if=r.raw", "of=nodir/o"],
        &["-q", "if=r.raw", "of=o"],
    ];
    for case in cases {
        let twin = Twin::new(images);
        let mut args = vec!["dd"];
        args.extend_from_slice(case);
        twin.assert_same(&args);
        let output = case
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix("of="))
            .unwrap_or("o");
        twin.assert_same_file(output);
        if std::path::Path::new(&twin.theirs().join(output)).exists() {
            // The same allocation too: qemu-img writes every block.
            twin.assert_same(&["map", "--output=json", "-f", "raw", output]);
        }
    }
}
