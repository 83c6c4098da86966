//! The exclusive lock as librbd clients see it: a live owner makes rbdimg
//! say "in use" and change nothing; a dead owner's lock is broken as librbd
//! breaks it; rbdimg's own lock is visible and released.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CephCluster, raw_source, rbdimg, rbdimg_fails, rbdimg_ok, shared, unique};
use crate::rbd::{KillOnDrop, spawn_big_convert};

/// Waits until `image` has an exclusive-lock holder (or panics).
fn wait_for_lock(c: &CephCluster, image: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if c.tool("rbd", &["lock", "ls", image])
            .stdout
            .contains("auto ")
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nobody took the lock on {image}");
}

#[test]
fn a_live_librbd_owner_means_in_use_and_nothing_changes() {
    let c = shared();
    let image = unique("busy");
    let name = c.name(&image);
    rbdimg_ok(&["create", &name, "64M"]);
    // rbd bench is a librbd client that holds the lock while it runs.
    let bench = Command::new("rbd")
        .args([
            "--conf",
            &c.conf(),
            "bench",
            "--io-type",
            "write",
            "--io-size",
            "4096",
            "--io-threads",
            "1",
        ])
        .args(["--io-total", "100G", "--io-pattern", "rand", &image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _bench = KillOnDrop(bench);
    wait_for_lock(c, &image);
    let dir = tempfile::tempdir().unwrap();
    let src = raw_source(dir.path(), "s.raw", 64 << 20, &[(0, 5, 1 << 20)]);
    for args in [
        vec!["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name],
        vec!["resize", &name, "128M"],
        vec!["snapshot", "-c", "nope", &name],
    ] {
        let out = rbdimg_fails(&args, "is in use: held by live client client.");
        assert_eq!(
            out.stderr
                .trim_end()
                .lines()
                .filter(|l| l.starts_with("rbdimg:"))
                .count(),
            1,
            "{}",
            out.stderr
        );
    }
    let info = c.tool_ok("rbd", &["info", &image]).stdout;
    assert!(
        info.contains("size 64 MiB") && info.contains("snapshot_count: 0"),
        "{info}"
    );
    // Reading needs no lock.
    rbdimg_ok(&["info", &name]);
}

#[test]
fn an_external_lock_is_reported_not_broken() {
    let c = shared();
    let image = unique("ext");
    let name = c.name(&image);
    rbdimg_ok(&["create", &name, "8M"]);
    c.tool_ok("rbd", &["lock", "add", &image, "mine"]);
    let out = rbdimg(&["resize", &name, "16M"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("locked by an external mechanism"),
        "{}",
        out.stderr
    );
    assert!(
        c.tool_ok("rbd", &["lock", "ls", &image])
            .stdout
            .contains("mine")
    );
}

#[test]
fn librbd_is_refused_while_rbdimg_holds_the_lock() {
    let c = shared();
    let image = unique("held");
    let name = c.name(&image);
    rbdimg_ok(&["create", &name, "256M"]);
    let dir = tempfile::tempdir().unwrap();
    let _convert = spawn_big_convert(dir.path(), &name);
    wait_for_lock(c, &image);
    // While we hold it, a librbd writer is refused rather than taking over.
    // (Breaking the lock of a killed rbdimg is tested on both backends in tests/rbd.)
    let out = c.tool("rbd", &["resize", "--size", "512M", &image]);
    assert_ne!(out.code, 0, "librbd resized under our lock: {out:#?}");
}
