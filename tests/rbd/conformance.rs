//! What rbdimg does with RBD images, checked the same way on a real Ceph
//! cluster and on the embedded store (Ceph runs also check with the rbd CLI).

use std::time::{Duration, Instant};

use super::{
    Backend, both_backends, raw_source, rbdimg, rbdimg_fails, rbdimg_ok, source, spawn_big_convert,
    unique,
};

fn json_info(b: &Backend, image: &str) -> serde_json::Value {
    let out = rbdimg_ok(&["info", "-f", "raw", "--output=json", &b.name(image)]);
    serde_json::from_str(&out.stdout).unwrap()
}

both_backends!(
    create_makes_ordinary_images,
    data_written_reads_back,
    snapshots_create_apply_delete,
    namespaces_hold_ordinary_images,
    shrink_then_grow_reads_zeros,
    errors_leave_images_unchanged,
    a_live_owner_means_in_use_and_a_dead_one_is_broken,
);

fn create_makes_ordinary_images(b: &Backend) {
    let image = unique("create");
    rbdimg_ok(&["create", "-f", "raw", &b.name(&image), "1G"]);
    let info = json_info(b, &image);
    assert_eq!(info["virtual-size"], 1u64 << 30);
    assert_eq!(info["cluster-size"], 4u64 << 20);
    assert_eq!(info["actual-size"], 0);
    b.object_map_check(&image);
    if let Backend::Ceph(c) = b {
        let info = c.tool_ok("rbd", &["info", &image]).stdout;
        assert!(info.contains("size 1 GiB in 256 objects"), "{info}");
        assert!(
            info.contains(
                "features: layering, exclusive-lock, object-map, fast-diff, deep-flatten"
            ),
            "{info}"
        );
    }
    // Object size and features from -o; QEMU rounds the size to sectors.
    let small = unique("create-opts");
    let out = rbdimg_ok(&[
        "create",
        "-o",
        "cluster_size=1M,features=layering",
        &b.name(&small),
        "100000",
    ]);
    assert!(out.stdout.starts_with(&format!(
        "Formatting '{}', fmt=raw size=100000 cluster_size=1048576 features=layering",
        b.name(&small)
    )));
    let info = json_info(b, &small);
    assert_eq!(info["virtual-size"], 100352);
    assert_eq!(info["cluster-size"], 1u64 << 20);
    // No object map to check: rbdimg's check of the rbd node says so by
    // finding nothing; raw over rbd has no check, as in qemu-img.
    let check = rbdimg_ok(&["check", "-f", "rbd", &b.name(&small)]);
    assert!(
        check
            .stdout
            .starts_with("No errors were found on the image.")
    );
    for format in [&["-f", "raw"][..], &[]] {
        let mut args = vec!["check"];
        args.extend_from_slice(format);
        let name = b.name(&small);
        args.push(&name);
        let out = rbdimg(&args);
        assert_eq!(out.code, 63, "{args:?}: {out:#?}");
        assert_eq!(
            out.stderr,
            "rbdimg: This image format does not support checks\n"
        );
    }
    // Where the image lives is part of `info`.
    let store = &info["children"][0]["info"]["format-specific"]["data"]["store"];
    let store = store.as_str().unwrap();
    match b {
        Backend::Ceph(_) => assert!(store.starts_with("ceph:"), "{store}"),
        Backend::Embedded(dir) => {
            assert_eq!(store, format!("embedded:{}", dir.path().display()))
        }
    }
}

fn data_written_reads_back(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let expected = std::fs::read(&src).unwrap();
    let image = unique("convert");
    rbdimg_ok(&[
        "convert",
        "-p",
        "-f",
        "raw",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &b.name(&image),
    ]);
    assert!(
        b.export(&image) == expected,
        "export differs from the source"
    );
    b.object_map_check(&image);
    // Zero ranges created no objects: 4 of the 12 objects hold data.
    assert_eq!(json_info(b, &image)["actual-size"], 16u64 << 20);
    if let Backend::Ceph(c) = b {
        let du = c.tool_ok("rbd", &["du", &image]).stdout;
        assert!(du.contains("16 MiB"), "{du}");
    }
    // And back out through rbdimg, also from a json: name.
    let back = dir.path().join("back.raw");
    for name in [b.name(&image), b.json(&image)] {
        rbdimg_ok(&["convert", "-O", "raw", &name, back.to_str().unwrap()]);
        assert!(std::fs::read(&back).unwrap() == expected);
    }
}

fn snapshots_create_apply_delete(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let original = std::fs::read(&src).unwrap();
    let image = unique("snap");
    let name = b.name(&image);
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "sp0", &name]);
    let listed = rbdimg_ok(&["snapshot", "-l", &name]).stdout;
    assert!(
        listed.contains("sp0 ") && listed.contains("48 MiB"),
        "{listed}"
    );
    b.object_map_check(&image);
    b.object_map_check(&format!("{image}@sp0"));

    // Overwrite everything, then roll back.
    let other = raw_source(dir.path(), "other.raw", 48 << 20, &[(0, 9, 48 << 20)]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", other.to_str().unwrap(), &name]);
    assert!(
        b.export(&format!("{image}@sp0")) == original,
        "the snapshot changed"
    );
    assert!(b.export(&image) == std::fs::read(&other).unwrap());
    b.object_map_check(&image);
    rbdimg_ok(&["snapshot", "-a", "sp0", &name]);
    assert!(
        b.export(&image) == original,
        "rollback did not restore the bytes"
    );
    b.object_map_check(&image);

    // A second snapshot (made by rbd on Ceph) is listed, read and applied.
    match b {
        Backend::Ceph(c) => {
            c.tool_ok("rbd", &["snap", "create", &format!("{image}@second")]);
        }
        Backend::Embedded(_) => {
            rbdimg_ok(&["snapshot", "-c", "second", &name]);
        }
    }
    let listed = rbdimg_ok(&["snapshot", "-l", &name]).stdout;
    assert!(
        listed.contains("second") && listed.contains("sp0"),
        "{listed}"
    );
    assert!(b.export(&format!("{image}@second")) == original);

    rbdimg_ok(&["snapshot", "-d", "sp0", &name]);
    rbdimg_ok(&["snapshot", "-d", "second", &name]);
    assert!(!rbdimg_ok(&["snapshot", "-l", &name]).stdout.contains("sp0"));
    assert!(b.export(&image) == original);
    b.object_map_check(&image);
    let missing = rbdimg(&["snapshot", "-f", "raw", "-d", "sp0", &name]);
    assert_eq!(
        (missing.code, missing.stderr.trim_end()),
        (
            1,
            "rbdimg: Could not delete snapshot 'sp0': snapshot not found"
        )
    );
}

fn namespaces_hold_ordinary_images(b: &Backend) {
    // A short name, and one at the OSD's 256-byte limit in characters the
    // embedded store escapes into more than one path component can hold.
    let short = unique("ns")[4..].to_string();
    let mut long = format!("{short}-");
    while long.len() + 2 <= 256 {
        long.push('é');
    }
    long.push_str(&"x".repeat(256 - long.len()));
    for ns in [short, long] {
        namespace_holds_ordinary_images(b, &ns);
    }
}

fn namespace_holds_ordinary_images(b: &Backend, ns: &str) {
    b.create_namespace(&format!("rbd/{ns}"));
    let image = format!("rbd/{ns}/img");
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &b.name(&image),
    ]);
    rbdimg_ok(&["snapshot", "-c", "s", &b.name(&image)]);
    assert!(b.export(&image) == std::fs::read(&src).unwrap());
    assert!(b.export(&format!("{image}@s")) == std::fs::read(&src).unwrap());
    b.object_map_check(&image);
    let info = rbdimg_ok(&["info", &b.name(&image)]).stdout;
    // QEMU's JSON writes non-ASCII characters as \uXXXX.
    let shown: String = ns
        .chars()
        .map(|c| match c.is_ascii() {
            true => c.to_string(),
            false => format!("\\u{:04X}", c as u32),
        })
        .collect();
    assert!(
        info.contains(&format!("\"namespace\": \"{shown}\"")),
        "{info}"
    );
    // The same image name in the default namespace is another image.
    let other = rbdimg(&["info", &b.name("rbd/img")]);
    assert_eq!(other.code, 1, "{other:#?}");
    if let Backend::Ceph(c) = b {
        let ls = c.tool_ok("rbd", &["ls", &format!("rbd/{ns}")]).stdout;
        assert!(ls.contains("img"), "{ls}");
    }
}

fn shrink_then_grow_reads_zeros(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let original = std::fs::read(&src).unwrap();
    let image = unique("resize");
    let name = b.name(&image);
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "before", &name]);
    let refused = rbdimg(&["resize", "-f", "raw", &name, "10M"]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .starts_with("rbdimg: Use the --shrink option"),
        "{}",
        refused.stderr
    );
    rbdimg_ok(&["resize", "-f", "raw", "--shrink", &name, "10486272"]);
    rbdimg_ok(&["resize", "-f", "raw", &name, "64M"]);
    let now = b.export(&image);
    assert_eq!(now.len(), 64 << 20);
    let keep = (10 << 20) + 512;
    assert!(now[..keep] == original[..keep]);
    assert!(
        now[keep..].iter().all(|&b| b == 0),
        "data past the shrink point came back"
    );
    b.object_map_check(&image);
    // The snapshot taken before still has everything.
    assert!(b.export(&format!("{image}@before")) == original);
}

fn errors_leave_images_unchanged(b: &Backend) {
    let image = unique("misuse");
    let name = b.name(&image);
    rbdimg_ok(&["create", &name, "8M"]);
    let out = rbdimg(&["create", &name, "16M"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.ends_with("error rbd create: File exists\n"),
        "{}",
        out.stderr
    );
    for (size, message) in [
        ("cluster_size=1000", "obj size needs to be power of 2"),
        ("cluster_size=2k", "obj size too small"),
    ] {
        let fresh = b.name(&unique("objsize"));
        let out = rbdimg(&["create", "-o", size, &fresh, "8M"]);
        assert_eq!(out.code, 1, "{out:#?}");
        assert!(out.stderr.contains(message), "{}", out.stderr);
    }
    let missing = rbdimg(&["info", &b.name("rbd/nosuchimage")]);
    assert_eq!(missing.code, 1);
    assert!(
        missing
            .stderr
            .contains("error reading header from nosuchimage: No such file or directory"),
        "{}",
        missing.stderr
    );
    let nosnap = rbdimg(&["info", &b.name(&format!("{image}@nosnap"))]);
    assert_eq!(nosnap.code, 1);
    assert_eq!(json_info(b, &image)["virtual-size"], 8u64 << 20);
}

/// The note rbdimg prints while it waits for a silent owner's watch to expire.
const WAITING: &str = "which does not answer: waiting up to";

/// Runs a writer against an image whose owner (`pid`) is frozen, and
/// requires "in use: held by live client". The embedded store knows the
/// frozen process is alive. On Ceph a frozen client looks dead: its watch
/// stays silent and would expire after 30 s (librbd, and rbdimg, would then
/// break its lock), so the owner is thawed for moments (short enough that it
/// cannot finish its own work) once rbdimg says it is waiting: answering
/// then, it is live and keeps its lock.
/// Stops the owner (SIGSTOP) at a moment it holds no database transaction
/// of the embedded store: frozen inside one, it would hold up every other
/// process's metadata write (as a hung OSD would), which is not what the
/// test is about. On Ceph any moment will do.
fn freeze_between_transactions(b: &Backend, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let Backend::Embedded(store) = b else {
            return;
        };
        // The signal lands asynchronously: look only once it has stopped.
        while !stopped(pid) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let db = rusqlite::Connection::open(store.path().join("store.db")).unwrap();
        db.busy_timeout(Duration::ZERO).unwrap();
        if db.execute_batch("BEGIN IMMEDIATE; ROLLBACK;").is_ok() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the owner never left a transaction"
        );
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(3));
    }
}

/// Whether the process is in the stopped state ('T' in /proc/PID/stat).
fn stopped(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the command name, which is in parentheses.
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('T'))
}

fn in_use_while_owner_frozen(b: &Backend, pid: i32, args: &[&str]) {
    const LIVE: &str = "is in use: held by live client client.";
    if let Backend::Embedded(_) = b {
        rbdimg_fails(args, LIVE);
        return;
    }
    let mut child = std::process::Command::new(crate::util::RBDIMG)
        .args(args)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, waiting) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let line = line.unwrap();
            if line.contains(WAITING) {
                let _ = lines.send(());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    waiting
        .recv_timeout(Duration::from_secs(20))
        .expect("rbdimg did not say it waits for the silent owner");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        unsafe { libc::kill(pid, libc::SIGCONT) };
        std::thread::sleep(Duration::from_millis(50));
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never saw the owner answer"
        );
        std::thread::sleep(Duration::from_millis(950));
    };
    let stderr = reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(LIVE), "{args:?}: {stderr}");
}

fn a_live_owner_means_in_use_and_a_dead_one_is_broken(b: &Backend) {
    let image = unique("held");
    let name = b.name(&image);
    rbdimg_ok(&["create", &name, "256M"]);
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_big_convert(dir.path(), &name);
    let pid = child.0.id() as i32;
    // Once it has written, it holds the lock: freeze it there (alive).
    let deadline = Instant::now() + Duration::from_secs(60);
    while json_info(b, &image)["actual-size"] == 0 {
        assert!(Instant::now() < deadline, "the writer never wrote");
        std::thread::sleep(Duration::from_millis(20));
    }
    freeze_between_transactions(b, pid);
    for args in [
        vec!["resize", name.as_str(), "512M"],
        vec!["snapshot", "-c", "nope", name.as_str()],
    ] {
        in_use_while_owner_frozen(b, pid, &args);
    }
    assert_eq!(json_info(b, &image)["virtual-size"], 256u64 << 20);
    assert!(
        !rbdimg_ok(&["snapshot", "-l", &name])
            .stdout
            .contains("nope")
    );
    // Reading needs no lock.
    rbdimg_ok(&["info", &name]);
    // A killed owner leaves a dead lock, which the next writer breaks at
    // once (on Ceph once the OSD has dropped the dead client's watch,
    // which the writer waits for, saying so).
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "the owner finished before it could be killed"
    );
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = child.0.wait();
    let out = rbdimg(&["resize", "-f", "raw", &name, "300M"]);
    assert_eq!(out.code, 0, "{out:#?}");
    assert_eq!(
        out.stderr.contains(WAITING),
        matches!(b, Backend::Ceph(_)),
        "{}",
        out.stderr
    );
    assert_eq!(json_info(b, &image)["virtual-size"], 300u64 << 20);
    if let Backend::Ceph(c) = b {
        let locks = c.tool_ok("rbd", &["lock", "ls", &image]).stdout;
        assert!(!locks.contains("auto "), "lock not released: {locks}");
    }
    b.object_map_check(&image);
}
