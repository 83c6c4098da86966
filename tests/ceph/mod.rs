//! RBD against a real single-node Ceph cluster (Debian's ceph-mon and
//! ceph-osd on loopback, cephx on), started by tests/ceph/cluster.sh. One
//! shared single-OSD cluster serves most tests (each uses its own image
//! names); tests that freeze daemons start a private one; the tests that
//! kill OSDs share a replicated three-OSD cluster, one test at a time.

mod dd;
mod encrypted_convert;
mod faults;
mod interop;
mod layering;
mod locking;
mod map;
mod matrix;
mod measure;
mod misuse;
mod options;
mod qcow2_in_rbd;
mod rbd_ciphers;
mod rbd_encryption;
mod replicated;
mod vm;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::util::Outcome;

pub struct CephCluster {
    dir: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ceph/cluster.sh")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl CephCluster {
    /// Starts a fresh cluster of `osds` OSDs (installing Ceph first if it
    /// is missing); with more than one, pools keep two copies.
    pub fn start(objectstore: &str, osds: u32) -> CephCluster {
        let dir = tempfile::Builder::new()
            .prefix("rbdimg-ceph-")
            .tempdir()
            .unwrap()
            .keep();
        let out = Command::new("bash")
            .arg(script())
            .args(["start", dir.to_str().unwrap(), objectstore])
            .arg(osds.to_string())
            .env("CEPH_TEST_PORT", free_port().to_string())
            .output()
            .expect("run cluster.sh");
        assert!(
            out.status.success(),
            "could not start a Ceph cluster: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        CephCluster { dir }
    }

    /// Where cluster.sh keeps the cluster's state (conf, admin sockets).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn conf(&self) -> String {
        self.dir.join("ceph.conf").to_string_lossy().into_owned()
    }

    /// An `rbd:` name on this cluster, with its conf file named explicitly.
    pub fn name(&self, image: &str) -> String {
        format!("rbd:{image}:conf={}", self.conf())
    }

    /// Runs a Ceph CLI tool (rbd, rados, ceph) against this cluster.
    pub fn tool(&self, program: &str, args: &[&str]) -> Outcome {
        Command::new("timeout")
            .arg("120")
            .arg(program)
            .args(["--conf", &self.conf()])
            .args(args)
            .output()
            .expect("run ceph tool")
            .into()
    }

    pub fn tool_ok(&self, program: &str, args: &[&str]) -> Outcome {
        let out = self.tool(program, args);
        assert_eq!(out.code, 0, "{program} {args:?} failed: {out:#?}");
        out
    }

    /// `rbd object-map check` must report nothing wrong.
    pub fn assert_object_map_clean(&self, image: &str) {
        let out = self.tool("rbd", &["object-map", "check", image]);
        assert_eq!(out.code, 0, "object-map check of {image} failed: {out:#?}");
        assert!(
            !out.stderr.contains("object map") || out.stderr.contains("done"),
            "{out:#?}"
        );
        let info = self.tool_ok("rbd", &["info", image]);
        assert!(
            !info.stdout.contains("object map invalid"),
            "object map of {image} flagged invalid"
        );
    }

    /// `rbd export` of an image (or image@snap) into memory.
    pub fn export(&self, image: &str) -> Vec<u8> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::remove_file(file.path()).unwrap();
        self.tool_ok("rbd", &["export", image, file.path().to_str().unwrap()]);
        std::fs::read(file.path()).unwrap()
    }

    /// "NAME PID" lines of the running daemons ("mon", "osd.0", ...).
    fn daemons(&self) -> String {
        let out = Command::new("bash")
            .arg(script())
            .args(["pids", self.dir.to_str().unwrap()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pid(&self, daemon: &str) -> i32 {
        let text = self.daemons();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{daemon} ")))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {daemon} pid in {text}"))
    }

    /// Kills osd.`id` with SIGKILL and waits until it is gone.
    pub fn kill_osd(&self, id: u32) {
        let pid = self.pid(&format!("osd.{id}"));
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.daemons().contains(&format!("osd.{id} ")) {
            assert!(Instant::now() < deadline, "osd.{id} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a killed osd.`id` again and waits until every OSD is up.
    pub fn start_osd(&self, id: u32) {
        let out = Command::new("bash")
            .arg(script())
            .args(["start-osd", self.dir.to_str().unwrap(), &id.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "could not restart osd.{id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let _ = Command::new("bash")
            .arg(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .output();
    }
}

impl Drop for CephCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

static SHARED: OnceLock<CephCluster> = OnceLock::new();

extern "C" fn stop_shared_cluster() {
    if let Some(cluster) = SHARED.get() {
        cluster.stop();
    }
}

/// The cluster most tests share, started on first use and stopped when
/// the test binary exits.
pub fn shared() -> &'static CephCluster {
    SHARED.get_or_init(|| {
        let cluster = CephCluster::start("memstore", 1);
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(stop_shared_cluster) };
        cluster
    })
}

static REPLICATED: OnceLock<Mutex<CephCluster>> = OnceLock::new();

extern "C" fn stop_replicated_cluster() {
    if let Some(cluster) = REPLICATED.get() {
        cluster
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .stop();
    }
}

/// Three bluestore OSDs, pools of size 2 (min_size 1), started on first use
/// and stopped when the test binary exits. The guard makes the tests that
/// kill its OSDs take turns.
pub fn replicated() -> MutexGuard<'static, CephCluster> {
    REPLICATED
        .get_or_init(|| {
            let cluster = CephCluster::start("bluestore", 3);
            // SAFETY: registering a plain extern "C" function.
            unsafe { libc::atexit(stop_replicated_cluster) };
            Mutex::new(cluster)
        })
        .lock()
        // A failed test's panic leaves the cluster usable.
        .unwrap_or_else(PoisonError::into_inner)
}

pub use crate::rbd::{raw_source, rbdimg, rbdimg_fails, rbdimg_ok, unique};
