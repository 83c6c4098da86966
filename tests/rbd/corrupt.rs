//! Corrupt RBD metadata is untrusted input: each header field, snapshot
//! record, parent link, id object, lock and object map is overwritten with
//! bad bytes (in the embedded store's SQLite tables; on Ceph with the rados
//! CLI, `rados setomapval` and friends), and every command must then fail
//! with one clean line — no panic, no hang, no nonsense geometry — and the
//! image must open again once the value is restored.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Backend, both_backends, raw_source, rbdimg_ok, unique};
use crate::util::{Outcome, RBDIMG};

/// Runs rbdimg, failing the test if it has not ended after a minute.
fn bounded(args: &[&str]) -> Outcome {
    let mut child = Command::new(RBDIMG)
        .args(args)
        .env_remove("RBDIMG_STORE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rbdimg");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("rbdimg {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap().into()
}

/// Metadata objects of one image, read and written behind rbdimg's back.
struct Raw<'a> {
    b: &'a Backend,
    pool: &'static str,
}

impl Raw<'_> {
    fn rados(&self, args: &[&str], input: Option<&[u8]>) -> Outcome {
        let Backend::Ceph(c) = self.b else {
            unreachable!()
        };
        let file = tempfile::NamedTempFile::new().unwrap();
        let mut all = vec!["-p", self.pool];
        all.extend_from_slice(args);
        if let Some(bytes) = input {
            std::fs::write(file.path(), bytes).unwrap();
            all.extend_from_slice(&["--input-file", file.path().to_str().unwrap()]);
        }
        c.tool("rados", &all)
    }

    fn db(&self) -> rusqlite::Connection {
        let Backend::Embedded(dir) = self.b else {
            unreachable!()
        };
        let db = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        db
    }

    fn pool_id(&self) -> i64 {
        match self.b {
            Backend::Ceph(c) => {
                let out = c.tool_ok("ceph", &["osd", "pool", "ls", "detail", "--format=json"]);
                let pools: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
                pools
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["pool_name"] == self.pool)
                    .unwrap()["pool_id"]
                    .as_i64()
                    .unwrap()
            }
            Backend::Embedded(_) => self
                .db()
                .query_row("SELECT id FROM pools WHERE name=?1", [self.pool], |r| {
                    r.get(0)
                })
                .unwrap(),
        }
    }

    fn omap_keys(&self, oid: &str) -> Vec<String> {
        match self.b {
            Backend::Ceph(_) => {
                let out = self.rados(&["listomapkeys", oid], None);
                assert_eq!(out.code, 0, "{out:#?}");
                out.stdout.lines().map(str::to_string).collect()
            }
            Backend::Embedded(_) => {
                let db = self.db();
                let mut keys = db
                    .prepare("SELECT key FROM omap WHERE pool=?1 AND ns='' AND oid=?2")
                    .unwrap();
                keys.query_map(rusqlite::params![self.pool_id(), oid], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect()
            }
        }
    }

    fn omap_get(&self, oid: &str, key: &str) -> Option<Vec<u8>> {
        match self.b {
            Backend::Ceph(_) => {
                let file = tempfile::NamedTempFile::new().unwrap();
                let out = self.rados(
                    &["getomapval", oid, key, file.path().to_str().unwrap()],
                    None,
                );
                (out.code == 0).then(|| std::fs::read(file.path()).unwrap())
            }
            Backend::Embedded(_) => rusqlite::OptionalExtension::optional(self.db().query_row(
                "SELECT value FROM omap WHERE pool=?1 AND ns='' AND oid=?2 AND key=?3",
                rusqlite::params![self.pool_id(), oid, key],
                |r| r.get(0),
            ))
            .unwrap(),
        }
    }

    /// Sets (or with `None` removes) an omap key.
    fn omap_set(&self, oid: &str, key: &str, value: Option<&[u8]>) {
        match (self.b, value) {
            (Backend::Ceph(_), Some(v)) => {
                let out = self.rados(&["setomapval", oid, key], Some(v));
                assert_eq!(out.code, 0, "{out:#?}");
            }
            (Backend::Ceph(_), None) => {
                let out = self.rados(&["rmomapkey", oid, key], None);
                assert_eq!(out.code, 0, "{out:#?}");
            }
            (Backend::Embedded(_), Some(v)) => {
                self.db()
                    .execute(
                        "INSERT OR REPLACE INTO omap(pool, ns, oid, key, value) VALUES (?1, '', ?2, ?3, ?4)",
                        rusqlite::params![self.pool_id(), oid, key, v],
                    )
                    .unwrap();
            }
            (Backend::Embedded(_), None) => {
                self.db()
                    .execute(
                        "DELETE FROM omap WHERE pool=?1 AND ns='' AND oid=?2 AND key=?3",
                        rusqlite::params![self.pool_id(), oid, key],
                    )
                    .unwrap();
            }
        }
    }

    fn object_get(&self, oid: &str) -> Vec<u8> {
        match self.b {
            Backend::Ceph(_) => {
                let file = tempfile::NamedTempFile::new().unwrap();
                let out = self.rados(&["get", oid, file.path().to_str().unwrap()], None);
                assert_eq!(out.code, 0, "{out:#?}");
                std::fs::read(file.path()).unwrap()
            }
            Backend::Embedded(_) => self
                .db()
                .query_row(
                    "SELECT data FROM objects WHERE pool=?1 AND ns='' AND oid=?2",
                    rusqlite::params![self.pool_id(), oid],
                    |r| r.get(0),
                )
                .unwrap(),
        }
    }

    fn object_put(&self, oid: &str, data: &[u8]) {
        match self.b {
            Backend::Ceph(_) => {
                let file = tempfile::NamedTempFile::new().unwrap();
                std::fs::write(file.path(), data).unwrap();
                let out = self.rados(&["put", oid, file.path().to_str().unwrap()], None);
                assert_eq!(out.code, 0, "{out:#?}");
            }
            Backend::Embedded(_) => {
                self.db()
                    .execute(
                        "UPDATE objects SET data=?3 WHERE pool=?1 AND ns='' AND oid=?2",
                        rusqlite::params![self.pool_id(), oid, data],
                    )
                    .unwrap();
            }
        }
    }

    /// Sets (or with `None` removes) an xattr.
    fn xattr_set(&self, oid: &str, name: &str, value: Option<&[u8]>) {
        let Some(value) = value else {
            match self.b {
                Backend::Ceph(_) => {
                    let out = self.rados(&["rmxattr", oid, name], None);
                    assert_eq!(out.code, 0, "{out:#?}");
                }
                Backend::Embedded(_) => {
                    self.db()
                        .execute(
                            "DELETE FROM xattrs WHERE pool=?1 AND ns='' AND oid=?2 AND name=?3",
                            rusqlite::params![self.pool_id(), oid, name],
                        )
                        .unwrap();
                }
            }
            return;
        };
        match self.b {
            Backend::Ceph(c) => {
                let mut child = Command::new("rados")
                    .args(["--conf", &c.conf(), "-p", self.pool, "setxattr", oid, name])
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                child.stdin.take().unwrap().write_all(value).unwrap();
                assert!(child.wait().unwrap().success());
            }
            Backend::Embedded(_) => {
                self.db()
                    .execute(
                        "INSERT OR REPLACE INTO xattrs(pool, ns, oid, name, value) VALUES (?1, '', ?2, ?3, ?4)",
                        rusqlite::params![self.pool_id(), oid, name, value],
                    )
                    .unwrap();
            }
        }
    }

    fn xattr_get(&self, oid: &str, name: &str) -> Option<Vec<u8>> {
        match self.b {
            Backend::Ceph(c) => {
                let out = Command::new("rados")
                    .args(["--conf", &c.conf(), "-p", self.pool, "getxattr", oid, name])
                    .output()
                    .unwrap();
                out.status.success().then_some(out.stdout)
            }
            Backend::Embedded(_) => rusqlite::OptionalExtension::optional(self.db().query_row(
                "SELECT value FROM xattrs WHERE pool=?1 AND ns='' AND oid=?2 AND name=?3",
                rusqlite::params![self.pool_id(), oid, name],
                |r| r.get(0),
            ))
            .unwrap(),
        }
    }
}

/// A Ceph string: u32 length, then the bytes.
fn string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as u32).to_le_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}

/// `cls_rbd_parent` v2: pool, namespace, image id, snapshot, head overlap.
fn parent(pool: i64, image_id: &str, snap: u64, overlap: u64) -> Vec<u8> {
    let mut body = pool.to_le_bytes().to_vec();
    body.extend(string(""));
    body.extend(string(image_id));
    body.extend(snap.to_le_bytes());
    body.push(1);
    body.extend(overlap.to_le_bytes());
    let mut v = vec![2, 2];
    v.extend((body.len() as u32).to_le_bytes());
    v.extend(body);
    v
}

/// A snapshot record (`cls_rbd_snap`, both stores): versioned header, id,
/// name, image size.
const SNAP_ID_AT: usize = 6;
const SNAP_NAME_AT: usize = 14;

/// Every command, on the corrupt image: one error line with `expected`
/// (`for_writers` from the commands that open it for writing).
fn every_command_fails(
    name: &str,
    dir: &Path,
    src: &Path,
    (expected, for_writers): (&str, &str),
    context: &str,
) {
    let out = dir.join("out.raw");
    let src = src.to_str().unwrap();
    let out = out.to_str().unwrap();
    for (args, expected) in [
        (vec!["info", name], expected),
        (vec!["info", "-f", "rbd", "--output=json", name], expected),
        (vec!["convert", "-O", "raw", name, out], expected),
        (vec!["convert", "-n", "-O", "raw", src, name], for_writers),
        (vec!["compare", name, src], expected),
        (vec!["check", "-f", "rbd", name], expected),
        (vec!["snapshot", "-l", name], expected),
        (vec!["snapshot", "-a", "s1", name], for_writers),
        (vec!["resize", "-f", "raw", name, "16M"], for_writers),
    ] {
        let got = bounded(&args);
        assert_ne!(got.code, 0, "{context}: {args:?} succeeded: {got:#?}");
        assert!(
            !got.stderr.contains("panicked") && !got.stderr.contains("internal error"),
            "{context}: {args:?}: {}",
            got.stderr
        );
        let lines: Vec<&str> = got.stderr.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].contains(expected),
            "{context}: {args:?}: expected one line with {expected:?}, got:\n{}",
            got.stderr
        );
    }
}

fn corrupt_metadata_fails_cleanly(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let image = unique("corrupt");
    let name = b.name(&image);
    let src = raw_source(dir.path(), "src.raw", 8 << 20, &[(0, 1, 3 << 20)]);
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "s1", &name]);
    rbdimg_ok(&["snapshot", "-c", "s2", &name]);
    let raw = Raw { b, pool: "rbd" };
    let short = image.trim_start_matches("rbd/");
    let id_bytes = raw.object_get(&format!("rbd_id.{short}"));
    let id = String::from_utf8(id_bytes[4..].to_vec()).unwrap();
    let header = format!("rbd_header.{id}");
    // Each snapshot's omap key and record (found by its name).
    let snapshot = |name: &str| {
        raw.omap_keys(&header)
            .into_iter()
            .filter(|k| k.starts_with("snapshot_"))
            .map(|k| {
                let record = raw.omap_get(&header, &k).unwrap();
                (k, record)
            })
            .find(|(_, record)| record[SNAP_NAME_AT + 4..].starts_with(name.as_bytes()))
            .unwrap()
    };
    let (s1_key, s1) = &snapshot("s1");
    let (s2_key, s2) = &snapshot("s2");
    let snap_id =
        |record: &[u8]| u64::from_le_bytes(record[SNAP_ID_AT..SNAP_ID_AT + 8].try_into().unwrap());
    let mut wrong_id = s2.clone();
    wrong_id[SNAP_ID_AT..SNAP_ID_AT + 8].copy_from_slice(&(snap_id(s2) + 100).to_le_bytes());
    let mut same_name = s2.clone();
    same_name[SNAP_NAME_AT + 4..SNAP_NAME_AT + 6].copy_from_slice(b"s1");
    let mut huge = s1.clone();
    let size_at = SNAP_NAME_AT + 4 + 2;
    huge[size_at..size_at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let pool = raw.pool_id();
    let looped = parent(pool, &id, snap_id(s1), 8 << 20);
    let escaping = parent(pool, "..", snap_id(s1), 8 << 20);
    let id_key = format!("rbd_id.{short}");

    // (what, key or object, corrupt bytes, expected message)
    enum Target<'a> {
        Omap(&'a str),
        Object(&'a str),
    }
    let cases: Vec<(&str, Target, Vec<u8>, String)> = vec![
        (
            "order 0",
            Target::Omap("order"),
            vec![0],
            "order 0 is corrupt: order must be in the range [12, 25]".into(),
        ),
        (
            "order 64",
            Target::Omap("order"),
            vec![0x40],
            "order 64 is corrupt".into(),
        ),
        (
            "order cut",
            Target::Omap("order"),
            vec![],
            "Input/output error".into(),
        ),
        (
            "size",
            Target::Omap("size"),
            u64::MAX.to_le_bytes().to_vec(),
            "size 18446744073709551615 is corrupt".into(),
        ),
        (
            "size cut",
            Target::Omap("size"),
            vec![0, 0, 0x80],
            "Input/output error".into(),
        ),
        (
            "features",
            Target::Omap("features"),
            8u64.to_le_bytes().to_vec(),
            "feature set 0x8 is corrupt: cannot use object map without exclusive lock".into(),
        ),
        (
            "unknown features",
            Target::Omap("features"),
            (0x3du64 | 1 << 40).to_le_bytes().to_vec(),
            "unknown features 0x10000000000".into(),
        ),
        (
            "prefix",
            Target::Omap("object_prefix"),
            string("rbd_data/../x"),
            "object prefix 'rbd_data/../x' is corrupt".into(),
        ),
        (
            "empty prefix",
            Target::Omap("object_prefix"),
            string(""),
            "object prefix '' is corrupt: empty".into(),
        ),
        (
            "snap_seq",
            Target::Omap("snap_seq"),
            1u64.to_le_bytes().to_vec(),
            "image snap context is invalid".into(),
        ),
        (
            "snapshot id",
            Target::Omap(s2_key),
            wrong_id,
            format!(
                "snapshot {} is corrupt: its record has id {}",
                snap_id(s2),
                snap_id(s2) + 100
            ),
        ),
        (
            "snapshot name",
            Target::Omap(s2_key),
            same_name,
            "snapshot name 's1' is corrupt: two snapshots have it".into(),
        ),
        (
            "snapshot size",
            Target::Omap(s1_key),
            huge,
            "size of snapshot 's1' 18446744073709551615 is corrupt".into(),
        ),
        (
            "snapshot record",
            Target::Omap(s1_key),
            s1[..10].to_vec(),
            "Input/output error".into(),
        ),
        (
            "parent loop",
            Target::Omap("parent"),
            looped,
            "the image is its own parent".into(),
        ),
        (
            "parent id",
            Target::Omap("parent"),
            escaping,
            "parent image id '..' is corrupt".into(),
        ),
        (
            "image id",
            Target::Object(&id_key),
            string("a/b"),
            "image id 'a/b' is corrupt".into(),
        ),
    ];
    let context = |what: &str| {
        format!(
            "{} with a corrupt {what}",
            if matches!(b, Backend::Ceph(_)) {
                "ceph"
            } else {
                "embedded"
            }
        )
    };
    for (what, target, bad, expected) in &cases {
        let expected = (expected.as_str(), expected.as_str());
        match target {
            Target::Omap(key) => {
                let good = raw.omap_get(&header, key);
                raw.omap_set(&header, key, Some(bad));
                every_command_fails(&name, dir.path(), &src, expected, &context(what));
                raw.omap_set(&header, key, good.as_deref());
            }
            Target::Object(oid) => {
                let good = raw.object_get(oid);
                raw.object_put(oid, bad);
                every_command_fails(&name, dir.path(), &src, expected, &context(what));
                raw.object_put(oid, &good);
            }
        }
        // Restored, the image is whole again: the failures wrote nothing.
        assert!(
            b.export(&image)[..] == std::fs::read(&src).unwrap()[..],
            "{}",
            context(what)
        );
    }

    // A corrupt lock: readers are unaffected, writers fail cleanly.
    let good_lock = raw.xattr_get(&header, "lock.rbd_lock");
    raw.xattr_set(&header, "lock.rbd_lock", Some(&[1, 1, 0xff]));
    rbdimg_ok(&["info", &name]);
    for args in [
        vec!["resize", "-f", "raw", name.as_str(), "16M"],
        vec!["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name],
    ] {
        let got = bounded(&args);
        assert_eq!(got.code, 1, "{args:?}: {got:#?}");
        assert!(
            got.stderr.ends_with("Input/output error\n") && got.stderr.lines().count() == 1,
            "{got:#?}"
        );
    }
    raw.xattr_set(&header, "lock.rbd_lock", good_lock.as_deref());

    // A corrupt object map is not trusted: data still reads right (objects
    // are asked for), check reports it, a writer flags it invalid.
    let map = format!("rbd_object_map.{id}");
    raw.object_put(&map, &[0xde, 0xad, 0xbe, 0xef]);
    assert!(b.export(&image)[..] == std::fs::read(&src).unwrap()[..]);
    let check = bounded(&["check", "-f", "rbd", &name]);
    assert_eq!(check.code, 2, "{check:#?}");
    assert!(
        check.stderr.contains("ERROR the object map cannot be used"),
        "{check:#?}"
    );
    rbdimg_ok(&["resize", "-f", "raw", &name, "16M"]);
    let check = bounded(&["check", "-f", "rbd", &name]);
    assert_eq!(check.code, 2, "{check:#?}");
    assert!(check.stderr.contains("flagged invalid"), "{check:#?}");
}

both_backends!(corrupt_metadata_fails_cleanly);
