//! Bad input on rbd: names: qemu-img's messages, exit 1, nothing changed.

use std::time::{Duration, Instant};

use super::{rbdimg, rbdimg_fails, rbdimg_ok, shared, unique};
use crate::util::{Oracle, Twin, require};

#[test]
fn errors_match_qemu_img() {
    if !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let image = unique("misuse");
    rbdimg_ok(&["create", &c.name(&image), "8M"]);
    let twin = Twin::new(|_| {});
    let conf = c.conf();
    for name in [
        format!("rbd:nosuchpool/x:conf={conf}"),
        format!("rbd:rbd/nosuchimage:conf={conf}"),
        format!("rbd:rbd/nosuchns/x:conf={conf}"),
        format!("rbd:{image}@nosnap:conf={conf}"),
        "rbd:rbd/x:conf=/nonexistent.conf".to_string(),
        "rbd:rbd".to_string(),
        format!("rbd:rbd/x:conf={conf}:bogus_option=1"),
        format!("rbd:rbd/x:conf={conf}:mon_host"),
    ] {
        let out = twin.assert_same(&["info", &name]);
        assert_eq!(out.code, 1, "{name}");
    }
    let out = twin.assert_same(&["create", &c.name(&image), "8M"]);
    assert!(
        out.stderr.ends_with("error rbd create: File exists\n"),
        "{}",
        out.stderr
    );
    for size in ["-o cluster_size=1000", "-o cluster_size=2k"] {
        let mut args = vec!["create"];
        args.extend(size.split(' '));
        let fresh = c.name(&unique("objsize"));
        args.extend([fresh.as_str(), "8M"]);
        twin.assert_same(&args);
    }
    // check: raw over rbd has no check, exactly as in qemu-img. With -f rbd
    // rbdimg checks the object map where qemu-img has no check either (a
    // documented difference).
    let name = c.name(&image);
    for args in [
        &["check"][..],
        &["check", "-f", "raw"],
        &["check", "--output=json"],
    ] {
        let mut args = args.to_vec();
        args.push(&name);
        assert_eq!(twin.assert_same(&args).code, 63, "{args:?}");
    }
    let (ours, theirs) = twin.run(&["check", "-f", "rbd", &name]);
    assert_eq!(theirs.code, 63, "{theirs:#?}");
    assert_eq!(
        (ours.code, ours.stdout.as_str()),
        (0, "No errors were found on the image.\n")
    );
    // The failed create left the image as it was.
    assert!(
        c.tool_ok("rbd", &["info", &image])
            .stdout
            .contains("size 8 MiB")
    );
}

#[test]
fn a_wrong_key_is_refused_clearly() {
    let c = shared();
    let name = format!(
        "rbd:{}:conf={}:key=AQBQf2VnAAAAABAAtPzX+j0JuKbbWKrTAnCGbA==",
        unique("key"),
        c.conf()
    );
    let out = rbdimg(&["info", &name]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("error connecting: "), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn an_unreachable_monitor_fails_within_the_bound() {
    // Nothing listens on port 1: the default bound is 30 s; an explicit
    // client_mount_timeout overrides it.
    let started = Instant::now();
    let timed_out = "error connecting: Connection timed out";
    rbdimg_fails(
        &[
            "info",
            r"rbd:rbd/x:conf=/dev/null:mon_host=127.0.0.1\:1:client_mount_timeout=3",
        ],
        timed_out,
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    rbdimg_fails(
        &["info", r"rbd:rbd/x:conf=/dev/null:mon_host=127.0.0.1\:1"],
        timed_out,
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(25) && took < Duration::from_secs(45),
        "took {took:?}"
    );
}

#[test]
fn librados_missing_is_explained() {
    let out = std::process::Command::new(crate::util::RBDIMG)
        .args(["info", "rbd:rbd/x:conf=/dev/null"])
        .env("RBDIMG_LIBRADOS", "/nonexistent/librados.so.2")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("librados is not available")
            && stderr.contains("apt-get install librados2"),
        "{stderr}"
    );
}
