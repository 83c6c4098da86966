//! rbdimg killed with SIGKILL while it copies a clone's parent data up
//! (writes into the clone) and while it flattens one, on both backends
//! (seeded; fewer rounds on Ceph, where each kill costs the watch timeout
//! before the next writer takes over). After each kill the clone reads the
//! old or the new bytes everywhere, its parent is untouched, and `check` is
//! clean or the map flagged invalid; the re-run finishes the job.

use std::process::{Command, Stdio};
use std::time::Duration;

use super::layering::assert_bytes;
use super::{Backend, both_backends, raw_source, rbdimg, rbdimg_ok, unique};

both_backends!(killed_copy_ups_and_flattens_leave_old_or_new_bytes);

const SIZE: u64 = 64 << 20;

fn check_ok(b: &Backend, image: &str, context: &str) {
    let out = rbdimg(&["check", "-f", "rbd", &b.name(image)]);
    assert!(
        out.code == 0 || (out.code == 2 && out.stderr.contains("flagged invalid")),
        "{context}: check after a kill: {out:#?}"
    );
}

/// Runs rbdimg with `args`, killed after `ms` milliseconds (if still running).
fn killed(args: &[&str], ms: u64) {
    let mut child = Command::new(crate::util::RBDIMG)
        .args(args)
        .env_remove("RBDIMG_STORE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(ms));
    let _ = child.kill();
    let _ = child.wait();
}

fn killed_copy_ups_and_flattens_leave_old_or_new_bytes(b: &Backend) {
    let mut seed: u64 = 0xc10e_2026;
    let mut next = |below: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % below
    };
    let dir = tempfile::tempdir().unwrap();
    // A golden image of 1 MiB objects, full of data, so that every copy-up
    // has parent bytes to write.
    let golden_src: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8 | 1).collect();
    let golden_path = dir.path().join("golden.raw");
    std::fs::write(&golden_path, &golden_src).unwrap();
    let golden = unique("crash-golden");
    rbdimg_ok(&[
        "create",
        "-o",
        "cluster_size=1M",
        &b.name(&golden),
        &SIZE.to_string(),
    ]);
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "raw",
        golden_path.to_str().unwrap(),
        &b.name(&golden),
    ]);
    rbdimg_ok(&["snapshot", "-c", "base", &b.name(&golden)]);
    let rounds = match b {
        Backend::Ceph(_) => 1,
        Backend::Embedded(_) => 4,
    };
    let clone_of_golden = |name: &str| {
        rbdimg_ok(&[
            "create",
            "-f",
            "raw",
            "-b",
            &b.name(&format!("{golden}@base")),
            "-F",
            "raw",
            &format!("{}:rbd_default_clone_format=2", b.name(name)),
        ]);
    };
    for round in 0..rounds {
        let context = format!("round {round}");
        // Copy-up: the middle of each 1 MiB object written, zeros around it
        // (which hide the parent there), the rest of the object copied up.
        let clone = unique("crash-clone");
        clone_of_golden(&clone);
        let runs: Vec<(u64, u8, usize)> = (0..SIZE / (1 << 20))
            .map(|o| (o * (1 << 20) + (256 << 10), 0xa0 + round as u8, 512 << 10))
            .collect();
        let fill = raw_source(dir.path(), &format!("fill{round}.raw"), SIZE, &runs);
        let whole = format!(
            r#"json:{{"driver":"raw","file":{}}}"#,
            b.json(&clone).strip_prefix("json:").unwrap()
        );
        let args = ["convert", "-n", "-O", "raw", fill.to_str().unwrap(), &whole];
        killed(&args, 10 + next(300));
        let new = std::fs::read(&fill).unwrap();
        let now = b.export(&clone);
        assert!(
            now.iter()
                .zip(golden_src.iter().zip(&new))
                .all(|(n, (o, w))| n == o || n == w),
            "{context}: after a killed copy-up, bytes that are neither old nor new"
        );
        assert_bytes(b, &format!("{golden}@base"), &golden_src);
        check_ok(b, &clone, &context);
        rbdimg_ok(&args);
        assert_bytes(b, &clone, &new);
        check_ok(b, &clone, &context);

        // Flatten of a clone that holds nothing yet, killed: the same
        // bytes, still a clone or no longer one; the re-run completes.
        let fresh = unique("crash-flatten");
        clone_of_golden(&fresh);
        killed(&["rebase", "-b", "", &b.name(&fresh)], 10 + next(300));
        assert_bytes(b, &fresh, &golden_src);
        check_ok(b, &fresh, &context);
        rbdimg_ok(&["rebase", "-b", "", &b.name(&fresh)]);
        let info = rbdimg_ok(&["info", &b.name(&fresh)]).stdout;
        assert!(!info.contains("backing file"), "{context}: {info}");
        assert_bytes(b, &fresh, &golden_src);
        b.object_map_check(&fresh);
    }
}
