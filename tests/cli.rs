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

/// getopt semantics, for every option of every command that takes a value
/// (taken from the clap definitions, so a new option is covered): the next
/// word is its value even when it starts with '-', long names take `=` or
/// the next word, and a repeated option's last value wins.
#[test]
fn option_values_are_read_as_getopt_reads_them() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("a.raw"), 1 << 20, &[(0, 1, 4096)]));
    let positional = |command: &str| match command {
        "create" => vec!["c.raw", "1M"],
        "convert" => vec!["a.raw", "b.raw"],
        "resize" => vec!["a.raw", "1M"],
        "compare" => vec!["a.raw", "a.raw"],
        _ => vec!["a.raw"],
    };
    let cli = rbdimg::cli::command();
    let mut checked = 0;
    for sub in cli.get_subcommands() {
        let command = sub.get_name();
        for arg in sub.get_arguments() {
            if arg.is_positional() || !arg.get_action().takes_values() {
                continue;
            }
            let short = arg.get_short().map(|c| format!("-{c}"));
            // qemu-img 10.0.2 declares snapshot's --apply, --create and
            // --delete without an argument and then acts on a snapshot
            // named "(null)": a documented difference.
            let long = arg
                .get_long()
                .filter(|_| command != "snapshot" || arg.get_short() == Some('f'))
                .map(|l| format!("--{l}"));
            for value in ["-1", "--foo", "-x"] {
                let mut forms: Vec<Vec<String>> = Vec::new();
                for name in short.iter().chain(&long) {
                    forms.push(vec![name.clone(), value.into()]);
                }
                if let Some(long) = &long {
                    forms.push(vec![format!("{long}={value}")]);
                }
                for form in forms {
                    let mut args = vec![command.to_string()];
                    args.extend(form);
                    args.extend(positional(command).into_iter().map(String::from));
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    twin.assert_same(&args);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} option forms checked");
}

/// The cases issue 9 named, and getopt's long-name rules: abbreviations,
/// ambiguity, flags given a value, the long names qemu-img 10.0.2 has.
#[test]
fn getopt_quirks_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| make_raw(&dir.join("a.raw"), 1 << 20, &[(0, 1, 4096)]));
    for args in [
        &["convert", "-S", "-1", "a.raw", "b.raw"][..],
        &["convert", "-S-1", "a.raw", "b.raw"],
        &["convert", "-m", "-1", "a.raw", "b.raw"],
        &["convert", "--sparse", "a.raw", "b.raw"],
        &["convert", "--sparse-size", "-0", "a.raw", "b.raw"],
        &["convert", "--target-", "x", "a.raw", "b.raw"],
        &["convert", "--target-format", "raw", "a.raw", "b.raw"],
        &["convert", "--output-format", "raw", "a.raw", "b.raw"],
        &["convert", "--backing", "x", "a.raw", "b.raw"],
        &["convert", "--no-create", "a.raw", "b.raw"],
        &[
            "convert",
            "--source-image-opts",
            "driver=raw,file.filename=a.raw",
            "b.raw",
        ],
        &["convert", "-q", "-q", "a.raw", "b.raw"],
        &["info", "--f", "raw", "a.raw"],
        &["info", "--out=json", "a.raw"],
        &["info", "-b", "a.raw"],
        &["info", "--b", "a.raw"],
        &["info", "--image-opts=x", "a.raw"],
        &["info", "--ima=x", "a.raw"],
        // A repeated option: the last value wins.
        &["info", "-f", "qcow2", "-f", "raw", "a.raw"],
        &["info", "-f", "raw", "-f", "qcow2", "a.raw"],
        &["info", "--version"],
        &["create", "--form"],
        &["create", "--backing-f"],
        &["check", "-r", "-x", "a.raw"],
        &["snapshot", "-c", "-l", "a.raw"],
        &["resize", "-U", "a.raw", "2M"],
        &["compare", "--a", "raw", "--left", "raw", "a.raw", "a.raw"],
    ] {
        twin.assert_same(args);
    }
    twin.assert_same_file("a.raw");
    twin.assert_same_file("b.raw");
}
