//! Command-line misuse: qemu-img's messages and exit codes, and no panics on
//! any argument vector.

use crate::util::{Oracle, RBDIMG, Twin, make_raw, require};

#[test]
fn usage_errors_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("a.raw"), 4096, &[]));
    for args in [
        &[][..],
        &["frob"],
        &["info", "-z", "a.raw"],
        &["create", "-Z", "x", "1M"],
        &["convert", "--frobnicate", "a.raw", "b.raw"],
        &["snapshot", "-c"],
        &["resize"],
        &["resize", "a.raw"],
        &["check"],
    ] {
        let out = twin.assert_same(args);
        assert_eq!(out.code, 1, "{args:?}");
    }
}

#[test]
fn help_and_version_succeed() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["--version"],
        &["-V"],
        &["info", "--help"],
        &["convert", "-h"],
        &["resize", "--help"],
    ] {
        let out = crate::util::rbdimg(dir.path(), args);
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
        assert!(out.stdout.contains("rbdimg"), "{args:?}: {}", out.stdout);
        assert!(out.stderr.is_empty());
    }
}

/// A small deterministic generator, so a failure reproduces.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() as usize % items.len()]
    }
}

#[test]
fn garbage_arguments_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    make_raw(&dir.path().join("a.raw"), 65536, &[(0, 1, 512)]);
    let words = [
        "create",
        "info",
        "convert",
        "resize",
        "snapshot",
        "check",
        "-f",
        "-O",
        "-o",
        "-b",
        "-F",
        "-l",
        "-a",
        "-c",
        "-d",
        "-S",
        "-m",
        "-n",
        "-p",
        "-q",
        "-W",
        "-U",
        "-r",
        "--output",
        "--output=json",
        "--shrink",
        "--image-opts",
        "--target-is-zero",
        "--preallocation=full",
        "raw",
        "qcow2",
        "json",
        "a.raw",
        "b.raw",
        "missing",
        "1G",
        "-1",
        "+1k",
        "0",
        "1Q",
        "",
        "=",
        ",",
        ",,",
        "help",
        "size=1k",
        "preallocation=x",
        "snapshot.id=1",
        "json:{",
        "json:{\"driver\":\"raw\"}",
        "rbd:",
        "\u{e9}\u{1f600}",
        "--",
        "-",
        "-Sx",
        "-m17",
        "8E",
        "all",
        "leaks",
    ];
    let mut rng = Lcg(0x5eed);
    for round in 0..300 {
        let len = rng.next() % 7;
        let args: Vec<&str> = (0..len).map(|_| rng.pick(&words)).collect();
        let out = std::process::Command::new(RBDIMG)
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0..=3) | Some(63)) && !stderr.contains("panicked"),
            "round {round}: rbdimg {args:?} exited {code:?}: {stderr}"
        );
        if code != Some(0) {
            assert!(
                !stderr.trim().is_empty(),
                "round {round}: rbdimg {args:?} failed silently"
            );
        }
    }
}
