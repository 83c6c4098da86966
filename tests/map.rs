//! `map` against qemu-img: every option, the human table and the JSON
//! list, over raw files (holes, a partial last sector), qcow2 images (zero,
//! compressed, preallocated and extended-L2 clusters, backing chains at
//! depth 1 and 2, an external data file) and the error paths.

use crate::util::{Oracle, Twin, make_raw, require, sh};

/// qemu-img/qemu-io build the images; both tools map the same files.
fn images(dir: &std::path::Path) {
    make_raw(
        &dir.join("r.raw"),
        4 << 20,
        &[(0, 1, 4096), (3 << 20, 2, 700)],
    );
    make_raw(&dir.join("odd.raw"), 1000, &[(0, 3, 3)]);
    std::fs::write(dir.join("empty.raw"), b"").unwrap();
    sh(
        dir,
        "set -e
        qemu-img create -q -f qcow2 q.qcow2 16M
        qemu-io -c 'write -P 1 0 100k' -c 'write -z 1M 128k' -c 'write -P 2 2M 64k' \
                -c 'write -z -u 3M 64k' -c 'write -P 3 8M 1M' q.qcow2 >/dev/null
        qemu-img convert -c -O qcow2 q.qcow2 c.qcow2
        qemu-img create -q -f raw base.raw 4M
        qemu-io -f raw -c 'write -P 9 0 2M' base.raw >/dev/null
        qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 8M
        qemu-io -c 'write -P 5 1M 64k' -c 'write -z 512k 64k' mid.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 12M
        qemu-io -c 'write -P 7 0 4k' -c 'write -z 1536k 4k' -c 'write -P 8 9M 4k' top.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k x.qcow2 4M
        qemu-io -c 'write -P 1 0 4k' -c 'write -P 2 8k 4k' -c 'write -z 40k 4k' \
                -c 'write -P 3 1M 128k' -c 'write -z 2M 128k' x.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -b x.qcow2 -F qcow2 xt.qcow2
        qemu-img create -q -f qcow2 -o data_file=d.raw df.qcow2 4M
        qemu-io -c 'write -P 1 0 64k' -c 'write -z 1M 64k' df.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o preallocation=metadata pm.qcow2 4M
        qemu-io -c 'write -P 1 64k 64k' pm.qcow2 >/dev/null
        qemu-img create -q -f qcow2 -o preallocation=full pf.qcow2 2M
        qemu-img create -q -f qcow2 v2.qcow2 -o compat=0.10 1M",
    );
}

#[test]
fn map_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(images);
    let files = [
        "r.raw",
        "odd.raw",
        "empty.raw",
        "q.qcow2",
        "c.qcow2",
        "mid.qcow2",
        "top.qcow2",
        "x.qcow2",
        "xt.qcow2",
        "df.qcow2",
        "pm.qcow2",
        "pf.qcow2",
        "v2.qcow2",
    ];
    for file in files {
        for output in [&[][..], &["--output=human"], &["--output", "json"]] {
            let mut args = vec!["map"];
            args.extend_from_slice(output);
            args.push(file);
            twin.assert_same_on_theirs(&args);
        }
    }
    let json = "--output=json";
    for args in [
        // Windows of the guest range.
        &["map", json, "-s", "1M", "top.qcow2"][..],
        &[
            "map",
            json,
            "--start-offset=12345",
            "--max-length=3",
            "top.qcow2",
        ],
        &["map", json, "-l", "1M", "top.qcow2"],
        &["map", "-s", "3M", "-l", "5M", "top.qcow2"],
        &["map", json, "-s", "100M", "top.qcow2"],
        &["map", json, "-l", "0", "r.raw"],
        &["map", json, "--start=1000", "--max=100", "r.raw"],
        // Formats and names.
        &["map", json, "-f", "raw", "q.qcow2"],
        &["map", json, "-U", "-f", "qcow2", "top.qcow2"],
        &[
            "map",
            json,
            "--image-opts",
            "driver=qcow2,file.filename=top.qcow2",
        ],
        &[
            "map",
            json,
            r#"json:{"driver":"raw","offset":4096,"file":{"filename":"r.raw"}}"#,
        ],
        // Errors: values, names, formats, files.
        &["map", "-s", "foo", "r.raw"],
        &["map", "-s", "-5", "r.raw"],
        &["map", "-l", "1x", "r.raw"],
        &["map", "--output=xml", "r.raw"],
        &["map", "--output=xml"],
        &["map", "-s", "foo"],
        &["map"],
        &["map", "r.raw", "q.qcow2"],
        &["map", "--image-opts", "-f", "raw", "r.raw"],
        &["map", "-f", "qcow2", "r.raw"],
        &["map", "-f", "foo", "r.raw"],
        &["map", "nonexistent.qcow2"],
        &["map", "-q", "r.raw"],
        &["map", "--bogus", "r.raw"],
        &["map", "-s"],
    ] {
        twin.assert_same_on_theirs(args);
    }
}
