//! `-p` off a terminal prints qemu-img's plain progress lines on stdout,
//! and without `-p` SIGUSR1 prints the current progress on stderr.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Oracle, Outcome, RBDIMG, Twin, make_raw, require};

/// The first and last progress lines and what follows them: the steps in
/// between follow each tool's request sizes.
fn shape(out: &Outcome) -> (String, String) {
    let mut parts: Vec<&str> = out.stdout.split('\r').collect();
    let tail = parts.pop().unwrap_or_default().to_string();
    let first = parts.first().copied().unwrap_or_default().to_string();
    let last = parts.last().copied().unwrap_or_default().to_string();
    (format!("{first}|{last}"), tail)
}

#[test]
fn progress_lines_match_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        let data: Vec<_> = (0..4).map(|i| (i << 21, i as u8 + 1, 2 << 20)).collect();
        make_raw(&dir.join("full.raw"), 8 << 20, &data);
        make_raw(&dir.join("copy.raw"), 8 << 20, &data);
        make_raw(&dir.join("sparse.raw"), 8 << 20, &[(1 << 20, 1, 4096)]);
        make_raw(&dir.join("empty.raw"), 0, &[]);
    });
    // Exactly the same bytes: 2 MiB steps over all-data images.
    for args in [
        &["convert", "-p", "-O", "raw", "full.raw", "out1.raw"][..],
        &["compare", "-p", "full.raw", "copy.raw"],
        &["compare", "-p", "full.raw", "sparse.raw"],
        &["compare", "-p", "-s", "full.raw", "empty.raw"],
        &["compare", "-p", "full.raw", "nonexistent"],
        &["compare", "-p", "-T", "foo", "full.raw", "copy.raw"],
        &["convert", "-p", "-O", "raw", "empty.raw", "out2.raw"],
        &["convert", "-p", "-O", "raw", "nonexistent", "out3.raw"],
        &["convert", "-p", "-q", "-O", "raw", "full.raw", "out4.raw"],
    ] {
        twin.assert_same(args);
    }
    // The same first and last lines where the steps differ.
    for args in [
        &["convert", "-p", "-O", "qcow2", "sparse.raw", "out6.qcow2"][..],
        &[
            "convert",
            "-p",
            "-c",
            "-O",
            "qcow2",
            "full.raw",
            "out7.qcow2",
        ],
    ] {
        let (ours, theirs) = twin.run(args);
        assert_eq!(
            shape(&ours),
            shape(&theirs),
            "{args:?}: {ours:?} / {theirs:?}"
        );
        assert_eq!(shape(&ours).0, "    (0.00/100%)|    (100.00/100%)");
    }
}

/// Whether `pid` catches SIGUSR1 yet (its handler is installed).
fn catches_sigusr1(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (libc::SIGUSR1 - 1)) != 0)
}

#[test]
fn sigusr1_prints_the_current_progress() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.raw");
    let data: Vec<_> = (0..64).map(|i| (i << 22, i as u8 + 1, 4 << 20)).collect();
    make_raw(&src, 256 << 20, &data);
    let mut child = Command::new(RBDIMG)
        .args(["convert", "-m", "1", "-t", "writeback", "-O", "raw"])
        .arg(&src)
        .arg(dir.path().join("out.raw"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !catches_sigusr1(pid) && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // Ask until it has answered once or finished.
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(pid as i32, libc::SIGUSR1) };
        std::thread::sleep(Duration::from_millis(2));
    }
    let out: Outcome = child.wait_with_output().unwrap().into();
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(out.stdout, "");
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(!lines.is_empty(), "no progress printed: {out:#?}");
    for line in lines {
        let value = line
            .strip_prefix("    (")
            .and_then(|l| l.strip_suffix("/100%)"))
            .unwrap_or_else(|| panic!("not a progress line: {line:?}"));
        let value: f32 = value.parse().unwrap();
        assert!((0.0..=100.0).contains(&value), "{line}");
    }
}
