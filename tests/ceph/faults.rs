//! Daemons frozen mid-operation (SIGSTOP; a kill would lose a memstore
//! OSD's data) on a private cluster. Policy (README): an OSD that comes back
//! within rados_osd_op_timeout (120 s by default) is waited for and the
//! operation finishes; past it, rbdimg fails with "Connection timed out".
//! Either way the image stays readable with a clean (or invalidated) map.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{CephCluster, raw_source, rbdimg, rbdimg_ok};

fn freeze(pid: i32, how_long: Duration) -> std::thread::JoinHandle<()> {
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::spawn(move || {
        std::thread::sleep(how_long);
        unsafe { libc::kill(pid, libc::SIGCONT) };
    })
}

/// Starts rbdimg, freezes `pid` shortly after for `how_long`, and requires
/// the command to finish successfully once the daemon is back.
fn succeeds_through_freeze(args: &[&str], pid: i32, how_long: Duration) {
    let child = Command::new(crate::util::RBDIMG)
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(250));
    freeze(pid, how_long).join().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "rbdimg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn map_clean_or_invalid(c: &CephCluster, image: &str) {
    let info = c.tool_ok("rbd", &["info", image]).stdout;
    if !info.contains("object map invalid") {
        c.assert_object_map_clean(image);
    }
}

#[test]
fn frozen_daemons_are_survived_or_reported() {
    let c = CephCluster::start("memstore", 1);
    let dir = tempfile::tempdir().unwrap();
    let src = raw_source(dir.path(), "s.raw", 64 << 20, &[(0, 3, 64 << 20)]);
    let expected = std::fs::read(&src).unwrap();
    let osd = c.pid("osd.0");
    let mon = c.pid("mon");

    // 1. OSD frozen for a few seconds mid-convert: the convert finishes.
    let name = c.name("rbd/f1");
    succeeds_through_freeze(
        &["convert", "-O", "raw", src.to_str().unwrap(), &name],
        osd,
        Duration::from_secs(6),
    );
    assert!(c.export("rbd/f1") == expected);
    c.assert_object_map_clean("rbd/f1");

    // 2. OSD frozen past a short op timeout: a clear, bounded failure.
    let name2 = format!("{}:rados_osd_op_timeout=4", c.name("rbd/f2"));
    rbdimg_ok(&["create", &name2, "64M"]);
    let started = Instant::now();
    let thaw = freeze(osd, Duration::from_secs(15));
    let out = rbdimg(&["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name2]);
    let took = started.elapsed();
    thaw.join().unwrap();
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains("Connection timed out"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(14), "failed only after {took:?}");
    // Readable afterwards (waiting out the watch of the failed writer).
    c.tool_ok(
        "rbd",
        &[
            "export",
            "rbd/f2",
            dir.path().join("f2.raw").to_str().unwrap(),
        ],
    );
    map_clean_or_invalid(&c, "rbd/f2");

    // 3. Rollback with the OSD frozen briefly: finishes with exact bytes.
    rbdimg_ok(&["snapshot", "-c", "s", &name]);
    let other = raw_source(dir.path(), "o.raw", 64 << 20, &[(0, 8, 64 << 20)]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", other.to_str().unwrap(), &name]);
    succeeds_through_freeze(&["snapshot", "-a", "s", &name], osd, Duration::from_secs(5));
    assert!(c.export("rbd/f1") == expected);
    c.assert_object_map_clean("rbd/f1");

    // 4. Monitor frozen: a new connection fails within its mount timeout.
    let started = Instant::now();
    let thaw = freeze(mon, Duration::from_secs(10));
    let out = rbdimg(&[
        "info",
        &format!("{}:client_mount_timeout=4", c.name("rbd/f1")),
    ]);
    let took = started.elapsed();
    thaw.join().unwrap();
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr
            .contains("error connecting: Connection timed out"),
        "{}",
        out.stderr
    );
    assert!(took < Duration::from_secs(9), "took {took:?}");
    rbdimg_ok(&["info", &name]);
}
