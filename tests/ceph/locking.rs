//! The exclusive lock as librbd clients see it: a live owner makes rbdimg
//! say "in use" and change nothing; a dead owner's lock is broken as librbd
//! breaks it, after waiting as long as qemu-img waits for the dead client's
//! watch to expire; rbdimg's own lock is visible and released.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CephCluster, raw_source, rbdimg, rbdimg_fails, rbdimg_ok, shared, unique};
use crate::rbd::{KillOnDrop, spawn_big_convert};

/// A new 256 MiB `image` whose lock a running rbdimg convert holds (the
/// directory holds its source).
fn held_by_rbdimg(c: &CephCluster, image: &str) -> (tempfile::TempDir, KillOnDrop) {
    rbdimg_ok(&["create", &c.name(image), "256M"]);
    let dir = tempfile::tempdir().unwrap();
    let writer = spawn_big_convert(dir.path(), &c.name(image));
    wait_for_lock(c, image);
    (dir, writer)
}

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
    let owner = c.tool_ok("rbd", &["lock", "ls", &image]).stdout;
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
    // The live owner keeps its lock and is never fenced.
    assert_eq!(c.tool_ok("rbd", &["lock", "ls", &image]).stdout, owner);
    let address = owner
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap();
    let blocklist = c.tool_ok("ceph", &["osd", "blocklist", "ls"]);
    assert!(
        !(blocklist.stdout + &blocklist.stderr).contains(address),
        "live owner {address} was blocklisted"
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
    let _held = held_by_rbdimg(c, &image);
    // While we hold it, a librbd writer is refused rather than taking over.
    // (Breaking the lock of a killed rbdimg is tested on both backends in tests/rbd.)
    let out = c.tool("rbd", &["resize", "--size", "512M", &image]);
    assert_ne!(out.code, 0, "librbd resized under our lock: {out:#?}");
}

/// Kills a writer holding `image`'s lock with SIGKILL, then times `taker`
/// (a command that needs the lock) started at once: it must succeed once
/// the OSD has dropped the dead client's watch, and leave no lock behind.
fn take_over_from_killed_writer(
    c: &CephCluster,
    image: &str,
    taker: &[&str],
) -> (Duration, String) {
    let (_dir, mut writer) = held_by_rbdimg(c, image);
    writer.0.kill().unwrap();
    writer.0.wait().unwrap();
    // The dead client still owns the lock and its watch is still listed.
    let locks = c.tool_ok("rbd", &["lock", "ls", image]).stdout;
    let dead = locks
        .split_whitespace()
        .find(|w| w.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("no lock left by the killed writer: {locks}"))
        .to_string();
    let status = c.tool_ok("rbd", &["status", image]).stdout;
    assert!(status.contains(&format!("watcher={dead}")), "{status}");
    let started = Instant::now();
    let out: crate::util::Outcome = Command::new(taker[0])
        .args(&taker[1..])
        .output()
        .unwrap()
        .into();
    let took = started.elapsed();
    assert_eq!(out.code, 0, "{taker:?} after a killed writer: {out:#?}");
    // Taken over: the dead client is fenced, no lock or watch is left.
    let blocklist = c.tool_ok("ceph", &["osd", "blocklist", "ls"]);
    assert!(
        (blocklist.stdout + &blocklist.stderr).contains(&dead),
        "{dead} not blocklisted"
    );
    let locks = c.tool_ok("rbd", &["lock", "ls", image]).stdout;
    assert!(!locks.contains("auto "), "{locks}");
    let status = c.tool_ok("rbd", &["status", image]).stdout;
    assert!(status.contains("Watchers: none"), "{status}");
    c.assert_object_map_clean(image);
    (took, out.stderr)
}

#[test]
fn a_killed_writer_is_waited_out_as_qemu_img_waits() {
    let c = shared();
    let (ours, theirs) = (unique("killed"), unique("killed-qemu"));
    let (ours_name, theirs_name) = (c.name(&ours), c.name(&theirs));
    // Both wait for a watch to expire (about 30 s): side by side.
    let qemu = std::thread::spawn(move || {
        take_over_from_killed_writer(
            shared(),
            &theirs,
            &["qemu-img", "resize", "-f", "raw", &theirs_name, "300M"],
        )
    });
    let (took, stderr) = take_over_from_killed_writer(
        c,
        &ours,
        &[
            crate::util::RBDIMG,
            "resize",
            "-f",
            "raw",
            &ours_name,
            "300M",
        ],
    );
    let (qemu_took, _) = qemu.join().unwrap();
    // One line says what rbdimg waits for; then the resize went through.
    let waiting: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("which does not answer: waiting up to"))
        .collect();
    assert_eq!(waiting.len(), 1, "{stderr}");
    assert!(waiting[0].starts_with("rbdimg: image "), "{stderr}");
    let info = c.tool_ok("rbd", &["info", &ours]).stdout;
    assert!(info.contains("size 300 MiB"), "{info}");
    // The watch timeout is 30 s after the dead client's last ping (sent
    // every 5 s): both tools wait for that, within a few seconds.
    eprintln!("take-over after SIGKILL: rbdimg {took:?}, qemu-img {qemu_took:?}");
    for t in [took, qemu_took] {
        assert!(
            t > Duration::from_secs(15) && t < Duration::from_secs(45),
            "{t:?}"
        );
    }
    assert!(
        took < qemu_took + Duration::from_secs(10),
        "rbdimg waited {took:?}, qemu-img {qemu_took:?}"
    );
}

#[test]
fn a_silent_owner_whose_watch_stays_is_in_use() {
    let c = shared();
    let image = unique("silent");
    let name = c.name(&image);
    let (_dir, owner) = held_by_rbdimg(c, &image);
    // Frozen, it answers nothing, but its watch lives on for the OSD's 30 s;
    // told the watch timeout is 3 s, rbdimg gives up 3 s + one notify (5 s)
    // after its first try.
    unsafe { libc::kill(owner.0.id() as i32, libc::SIGSTOP) };
    let locks = c.tool_ok("rbd", &["lock", "ls", &image]).stdout;
    let started = Instant::now();
    let out = rbdimg_fails(
        &[
            "resize",
            "-f",
            "raw",
            &format!("{name}:osd_client_watch_timeout=3"),
            "300M",
        ],
        "which does not answer but keeps its watch",
    );
    let took = started.elapsed();
    assert!(
        out.stderr
            .contains("which does not answer: waiting up to 3 s for its watch to expire"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
    // Nothing was broken or fenced.
    assert_eq!(c.tool_ok("rbd", &["lock", "ls", &image]).stdout, locks);
    let info = c.tool_ok("rbd", &["info", &image]).stdout;
    assert!(info.contains("size 256 MiB"), "{info}");
}
