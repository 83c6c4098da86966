//! Faults on a replicated cluster (three bluestore OSDs, pools of size 2,
//! min_size 1): an OSD killed with SIGKILL, or restarted, while rbdimg
//! writes, rolls back or flattens. Every object has a second copy, so the
//! command must finish as if nothing happened — the client resends to the
//! new primary — with the exact bytes and a clean object map.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{CephCluster, raw_source, rbdimg_ok, replicated, unique};

/// A source of `mib` MiB whose every MiB holds its own byte (a misplaced
/// or stale object shows), with a hole every 16 MiB.
fn patterned_source(dir: &Path, mib: u64) -> std::path::PathBuf {
    let runs: Vec<(u64, u8, usize)> = (0..mib)
        .filter(|i| i % 16 != 15)
        .map(|i| (i << 20, (i % 251) as u8 + 1, 1 << 20))
        .collect();
    raw_source(dir, "src.raw", mib << 20, &runs)
}

fn spawn(args: &[&str]) -> Child {
    Command::new(crate::util::RBDIMG)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until `image`'s exclusive lock is taken: rbdimg is writing.
fn wait_until_writing(c: &CephCluster, image: &str, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !c
        .tool("rbd", &["lock", "ls", image])
        .stdout
        .contains("auto ")
    {
        still_running(child);
        assert!(Instant::now() < deadline, "rbdimg never took the lock");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The fault must come mid-operation, or the test proves nothing.
fn still_running(child: &mut Child) {
    assert!(
        child.try_wait().unwrap().is_none(),
        "rbdimg ended before the fault"
    );
}

fn finished(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} did not survive the OSD fault: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_convert_survives_an_osd_killed_mid_write() {
    let c = replicated();
    let dir = tempfile::tempdir().unwrap();
    let src = patterned_source(dir.path(), 320);
    let image = unique("osdkill");
    let mut convert = spawn(&[
        "convert",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &c.name(&image),
    ]);
    wait_until_writing(&c, &image, &mut convert);
    std::thread::sleep(Duration::from_millis(200));
    still_running(&mut convert);
    c.kill_osd(1);
    finished(convert, "convert");
    assert!(c.export(&image) == std::fs::read(&src).unwrap());
    c.assert_object_map_clean(&image);
    c.start_osd(1);
}

#[test]
fn an_osd_restart_during_rollback_leaves_exact_bytes() {
    let c = replicated();
    let dir = tempfile::tempdir().unwrap();
    let image = unique("osdroll");
    let name = c.name(&image);
    let before = patterned_source(dir.path(), 256);
    // Small objects: a rollback of many objects lasts a few seconds.
    rbdimg_ok(&["create", "-o", "cluster_size=256K", &name, "256M"]);
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        before.to_str().unwrap(),
        &name,
    ]);
    rbdimg_ok(&["snapshot", "-c", "before", &name]);
    let after = raw_source(dir.path(), "after.raw", 256 << 20, &[(0, 0xaa, 200 << 20)]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", after.to_str().unwrap(), &name]);

    let mut rollback = spawn(&["snapshot", "-a", "before", &name]);
    wait_until_writing(&c, &image, &mut rollback);
    std::thread::sleep(Duration::from_millis(300));
    still_running(&mut rollback);
    c.kill_osd(2);
    c.start_osd(2);
    finished(rollback, "snapshot -a");
    assert!(c.export(&image) == std::fs::read(&before).unwrap());
    assert!(c.export(&format!("{image}@before")) == std::fs::read(&before).unwrap());
    c.assert_object_map_clean(&image);
}

#[test]
fn an_osd_restart_during_flatten_leaves_exact_bytes() {
    let c = replicated();
    let dir = tempfile::tempdir().unwrap();
    let golden = unique("osdgolden");
    let name = c.name(&golden);
    let src = patterned_source(dir.path(), 256);
    // Small objects: a flatten of many copy-ups lasts a few seconds.
    rbdimg_ok(&["create", "-o", "cluster_size=256K", &name, "256M"]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "base", &name]);
    let clone = unique("osdflatten");
    rbdimg_ok(&[
        "create",
        "-f",
        "raw",
        "-b",
        &c.name(&format!("{golden}@base")),
        "-F",
        "raw",
        &format!("{}:rbd_default_clone_format=2", c.name(&clone)),
    ]);
    let mut flatten = spawn(&["rebase", "-b", "", &c.name(&clone)]);
    wait_until_writing(&c, &clone, &mut flatten);
    std::thread::sleep(Duration::from_millis(300));
    still_running(&mut flatten);
    c.kill_osd(0);
    c.start_osd(0);
    finished(flatten, "rebase -b ''");
    let info = c.tool_ok("rbd", &["info", &clone]).stdout;
    assert!(!info.contains("parent:"), "{info}");
    assert!(c.export(&clone) == std::fs::read(&src).unwrap());
    c.assert_object_map_clean(&clone);
}
