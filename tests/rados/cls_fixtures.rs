//! The cls fixtures (fixtures/cls/<class>.<method>.txt) are what a real
//! OSD answers: every cls method the embedded store runs is called through
//! the librados backend on the shared cluster, its inputs, return codes and
//! replies recorded, and the result compared with the committed files (the
//! unit tests beside src/rados/embedded/cls/ replay those files against
//! the embedded store). `fixtures/cls/capture.sh` writes them anew.
//!
//! What differs from run to run — client ids, address nonces, the OSD's
//! clock — is recorded as `caller` and `clock` steps, and the comparison
//! maps the committed run's values onto this run's before comparing bytes.

mod layering;
mod lock;
mod rbd;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rbdimg::ceph::Call;
use rbdimg::ceph::cls_lock;
use rbdimg::rados::{Cluster, Pool, SnapContext, WriteOp};

use super::Backend;
use crate::ceph::{CephCluster, shared};

/// Where `capture.sh` asks for the files to be written.
const CAPTURE_ENV: &str = "RBDIMG_CLS_CAPTURE";

/// A scenario records the calls of one method's fixture.
type Scenario = fn(&mut Recorder);

/// Every fixture: `class.method` and the scenario that records it.
fn scenarios() -> Vec<(&'static str, Scenario)> {
    let mut all = rbd::SCENARIOS.to_vec();
    all.extend_from_slice(layering::SCENARIOS);
    all.extend_from_slice(lock::SCENARIOS);
    all
}

pub struct Client {
    cluster: Arc<dyn Cluster>,
    gid: u64,
    nonce: u32,
}

impl Client {
    /// A librados client of the shared cluster, and who the OSD sees.
    fn connect() -> Client {
        let cluster = Backend::ceph().cluster;
        let gid = cluster.instance_id();
        // The address the OSD sees: a lock records it.
        let pool = cluster.pool("rbd", "cls-fixtures-whoami").unwrap();
        let oid = format!("whoami.{gid}");
        let lock = cls_lock::lock("x", "", "", "");
        pool.operate(&oid, &[WriteOp::Exec(&lock)], &SnapContext::default())
            .unwrap();
        let info = cls_lock::decode_info(&pool.exec(&oid, &cls_lock::get_info("x")).unwrap());
        let address = info.unwrap().lockers[0].address.clone();
        let nonce = address.rsplit_once('/').unwrap().1.parse().unwrap();
        pool.operate(&oid, &[WriteOp::Remove], &SnapContext::default())
            .unwrap();
        Client {
            cluster,
            gid,
            nonce,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "-".into();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records one fixture: each scenario runs in a namespace of its own.
pub struct Recorder<'a> {
    ceph: &'a CephCluster,
    clients: &'a [Client],
    namespace: String,
    pools: Vec<Arc<dyn Pool>>,
    current: usize,
    lines: Vec<String>,
}

impl Recorder<'_> {
    /// Calls from here on are made by client `i` (0 or 1).
    pub fn caller(&mut self, i: usize) {
        self.current = i;
        let c = &self.clients[i];
        self.lines.push(format!("caller {} {}", c.gid, c.nonce));
    }

    /// Client `i`'s global id (a lock's entity number).
    pub fn gid(&self, i: usize) -> i64 {
        self.clients[i].gid as i64
    }

    /// Records a call (whatever the OSD answers); the reply on success.
    pub fn call(&mut self, oid: &str, call: &Call) -> Option<Vec<u8>> {
        let result = self.pools[self.current]
            .exec(oid, call)
            .map_err(|e| e.errno_value());
        let (rc, out) = match &result {
            Ok(out) => (0, format!(" {}", hex(out)).replace(" -", "")),
            Err(e) => (-e, String::new()),
        };
        self.lines.push(format!(
            "call {oid} {}.{} {} -> {rc}{out}",
            call.class,
            call.method,
            hex(&call.input)
        ));
        result.ok()
    }

    /// A call with an input of our own making (malformed ones included).
    pub fn raw(
        &mut self,
        oid: &str,
        class: &'static str,
        method: &'static str,
        input: Vec<u8>,
    ) -> Option<Vec<u8>> {
        self.call(
            oid,
            &Call {
                class,
                method,
                input,
            },
        )
    }

    /// A call that stamps the OSD's time into the object, followed by
    /// `probe`, whose reply `time` reads that time back: the fixture gets
    /// the time as a `clock` step before the call.
    pub fn timed(
        &mut self,
        oid: &str,
        call: &Call,
        probe: &Call,
        time: fn(&[u8]) -> (u32, u32),
    ) -> Option<Vec<u8>> {
        let at = self.lines.len();
        let result = self.call(oid, call);
        let reply = self.call(oid, probe).expect("the probe of a timed call");
        let (secs, nsecs) = time(&reply);
        self.lines.insert(at, format!("clock {secs} {nsecs}"));
        result
    }

    /// A plain RADOS op: `create` (exclusive), `remove` or `write_full:<hex>`.
    pub fn op(&mut self, oid: &str, op: WriteOp) {
        let what = match op {
            WriteOp::CreateExclusive => "create".to_string(),
            WriteOp::Remove => "remove".to_string(),
            WriteOp::WriteFull(data) => format!("write_full:{}", hex(data)),
            other => panic!("{other:?} is not recorded"),
        };
        let rc = match self.pools[self.current].operate(oid, &[op], &SnapContext::default()) {
            Ok(()) => 0,
            Err(e) => -e.errno_value(),
        };
        self.lines.push(format!("op {oid} {what} -> {rc}"));
    }

    /// Sets an omap value directly (`rados setomapval`): state no method
    /// the embedded store runs can make, such as a clone's parent.
    pub fn omap(&mut self, oid: &str, key: &str, value: &[u8]) {
        self.rados_set(&["setomapval", oid, key, "--input-file"], value);
        self.lines.push(format!("omap {oid} {key} {}", hex(value)));
    }

    /// Sets an xattr directly (`rados setxattr`).
    pub fn xattr(&mut self, oid: &str, name: &str, value: &[u8]) {
        self.rados_set(&["setxattr", oid, name, "--input-file"], value);
        self.lines
            .push(format!("xattr {oid} {name} {}", hex(value)));
    }

    fn rados_set(&self, args: &[&str], value: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), value).unwrap();
        let mut all = vec!["-p", "rbd", "-N", &self.namespace];
        all.extend_from_slice(args);
        all.push(file.path().to_str().unwrap());
        self.ceph.tool_ok("rados", &all);
    }
}

/// The installed Ceph's version line, e.g. "ceph version 16.2.15".
fn ceph_version() -> String {
    let out = Command::new("ceph-osd").arg("--version").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(" (")
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Records every fixture on `ceph`, by file name.
fn capture(ceph: &CephCluster) -> BTreeMap<String, String> {
    let clients = [Client::connect(), Client::connect()];
    let version = ceph_version();
    let mut files = BTreeMap::new();
    for (name, scenario) in scenarios() {
        let namespace = format!("cls-fixtures-{}-{name}", std::process::id());
        let mut r = Recorder {
            ceph,
            clients: &clients,
            pools: clients
                .iter()
                .map(|c| c.cluster.pool("rbd", &namespace).unwrap())
                .collect(),
            namespace,
            current: 0,
            lines: vec![format!(
                "# {name}, as a {version} OSD answers it; recorded by \
                 tests/rados/cls_fixtures.rs (fixtures/cls/capture.sh)"
            )],
        };
        r.caller(0);
        scenario(&mut r);
        files.insert(format!("{name}.txt"), r.lines.join("\n") + "\n");
    }
    files
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/cls")
}

/// The `caller` and `clock` steps of a recording, in order.
fn run_values(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.starts_with("caller ") || l.starts_with("clock "))
        .collect()
}

/// The bytes a `caller` (gid u64, nonce u32) or `clock` (utime) step
/// stands for, each as replies and inputs carry it.
fn value_bytes(step: &str) -> Vec<Vec<u8>> {
    let w: Vec<u64> = step
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    if step.starts_with("caller") {
        vec![
            w[0].to_le_bytes().to_vec(),
            (w[1] as u32).to_le_bytes().to_vec(),
        ]
    } else {
        vec![[(w[0] as u32).to_le_bytes(), (w[1] as u32).to_le_bytes()].concat()]
    }
}

/// `bytes` with every `from` replaced by its `to`, all at once (one run's
/// value may be another's).
fn replace_all(bytes: &[u8], subs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match subs.iter().find(|(from, _)| bytes[i..].starts_with(from)) {
            Some((from, to)) => {
                out.extend_from_slice(to);
                i += from.len();
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

/// The committed recording with this run's client ids, nonces and times
/// in place of its own: its `caller`/`clock` steps become this run's, in
/// order, and the bytes they stood for are replaced in every hex word.
fn remap(committed: &str, fresh: &str) -> String {
    let (old, new) = (run_values(committed), run_values(fresh));
    let subs: Vec<(Vec<u8>, Vec<u8>)> = old
        .iter()
        .zip(&new)
        .filter(|(a, b)| a.split(' ').next() == b.split(' ').next())
        .flat_map(|(a, b)| value_bytes(a).into_iter().zip(value_bytes(b)))
        .filter(|(a, b)| a != b)
        .collect();
    let map_word = |word: &str| -> String {
        let bytes: Option<Vec<u8>> = (word.len().is_multiple_of(2) && word.len() >= 8)
            .then(|| {
                (0..word.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&word[i..i + 2], 16).ok())
                    .collect()
            })
            .flatten();
        match bytes {
            Some(b) => hex(&replace_all(&b, &subs)),
            None => word.to_string(),
        }
    };
    let mut steps = new.iter();
    let mut out = String::new();
    for line in committed.lines() {
        if line.starts_with("caller ") || line.starts_with("clock ") {
            out.push_str(steps.next().unwrap_or(&line));
        } else if line.starts_with('#') {
            out.push_str(line);
        } else {
            let words: Vec<String> = line.split(' ').map(map_word).collect();
            out.push_str(&words.join(" "));
        }
        out.push('\n');
    }
    out
}

#[test]
fn fixtures_are_what_the_osd_answers() {
    let ceph = shared();
    let fresh = capture(ceph);
    if let Some(dir) = std::env::var_os(CAPTURE_ENV) {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text) in &fresh {
            std::fs::write(dir.join(name), text).unwrap();
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, text) in &fresh {
        let path = fixtures_dir().join(name);
        let Ok(committed) = std::fs::read_to_string(&path) else {
            stale.push(format!("{name}: missing"));
            continue;
        };
        let remapped = remap(&committed, text);
        if remapped != *text {
            let first = remapped
                .lines()
                .zip(text.lines())
                .find(|(a, b)| a != b)
                .map(|(a, b)| format!("\n  committed: {a}\n  the OSD:   {b}"))
                .unwrap_or_else(|| "\n  (different length)".into());
            stale.push(format!("{name}:{first}"));
        }
    }
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".txt") && !fresh.contains_key(&name) {
            stale.push(format!("{name}: no scenario records it"));
        }
    }
    assert!(
        stale.is_empty(),
        "fixtures/cls is stale (fixtures/cls/capture.sh rewrites it):\n{}",
        stale.join("\n")
    );
}
