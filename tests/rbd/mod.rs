//! RBD behaviour that must hold whatever stores the images: the same tests
//! and assertions run against a real Ceph cluster (tests/ceph) and against
//! rbdimg's embedded store. A [`Backend`] builds `rbd:` names and inspects
//! images: on Ceph with the rbd CLI (and rbdimg), on the embedded store
//! with rbdimg itself.

mod bench;
mod clone_crash;
mod conformance;
mod corrupt;
mod crash;
mod dd;
mod embedded;
mod encryption;
pub(crate) mod layering;
mod map;
mod measure;
mod names;
mod qcow2_in_rbd;
mod scale;
mod store;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::ceph::{CephCluster, shared};
use crate::util::{Outcome, RBDIMG};

pub enum Backend {
    Ceph(&'static CephCluster),
    Embedded(tempfile::TempDir),
}

impl Backend {
    pub fn ceph() -> Backend {
        Backend::Ceph(shared())
    }

    /// A fresh embedded store in a temporary directory.
    pub fn embedded() -> Backend {
        Backend::Embedded(
            tempfile::Builder::new()
                .prefix("rbdimg-store-")
                .tempdir()
                .unwrap(),
        )
    }

    /// The `rbd:` name of `pool/[ns/]image[@snap]` in this backend.
    pub fn name(&self, image: &str) -> String {
        match self {
            Backend::Ceph(c) => c.name(image),
            Backend::Embedded(dir) => {
                format!("rbd:{image}:store={}", dir.path().display())
            }
        }
    }

    /// The `json:` name of `pool/image` (default namespace).
    pub fn json(&self, image: &str) -> String {
        let (pool, name) = image.split_once('/').unwrap();
        let (key, value) = self.store_option();
        format!(r#"json:{{"driver":"rbd","pool":"{pool}","image":"{name}","{key}":"{value}"}}"#)
    }

    /// The `--image-opts` of `pool/image` (default namespace).
    pub fn image_opts(&self, image: &str) -> String {
        let (pool, name) = image.split_once('/').unwrap();
        let (key, value) = self.store_option();
        format!("driver=rbd,pool={pool},image={name},{key}={value}")
    }

    /// The rbd driver's option that finds this backend's images.
    fn store_option(&self) -> (&'static str, String) {
        match self {
            Backend::Ceph(c) => ("conf", c.conf()),
            Backend::Embedded(dir) => ("store", dir.path().display().to_string()),
        }
    }

    /// The image (or image@snap) read back whole.
    pub fn export(&self, image: &str) -> Vec<u8> {
        match self {
            Backend::Ceph(c) => c.export(image),
            Backend::Embedded(_) => {
                let file = tempfile::NamedTempFile::new().unwrap();
                rbdimg_ok(&[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "raw",
                    &self.name(image),
                    file.path().to_str().unwrap(),
                ]);
                std::fs::read(file.path()).unwrap()
            }
        }
    }

    /// The object map agrees with the objects: `rbdimg check` (and on
    /// Ceph `rbd object-map check` too) finds nothing wrong.
    pub fn object_map_check(&self, image: &str) {
        if let Backend::Ceph(c) = self {
            c.assert_object_map_clean(image);
        }
        let out = rbdimg(&["check", "-f", "rbd", &self.name(image)]);
        assert_eq!(out.code, 0, "rbdimg check of {image}: {out:#?}");
        assert!(
            out.stdout.starts_with("No errors were found on the image."),
            "{out:#?}"
        );
    }

    /// Makes `pool/ns` usable (the embedded store creates a namespace with
    /// its first image).
    pub fn create_namespace(&self, pool_ns: &str) {
        if let Backend::Ceph(c) = self {
            c.tool_ok("rbd", &["namespace", "create", pool_ns]);
        }
    }
}

/// Runs one test body against both backends, as two tests.
macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        crate::util::both_backends_of!(crate::rbd::Backend: $($test),*);
    };
}
pub(crate) use both_backends;

/// A pool/name unique to this test run (tests/ceph uses it too).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "rbd/{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

pub fn rbdimg(args: &[&str]) -> Outcome {
    Command::new(RBDIMG)
        .args(args)
        .env_remove("RBDIMG_STORE")
        .output()
        .expect("run rbdimg")
        .into()
}

pub fn rbdimg_ok(args: &[&str]) -> Outcome {
    let out = rbdimg(args);
    assert_eq!(out.code, 0, "rbdimg {args:?} failed: {out:#?}");
    out
}

/// Runs rbdimg and requires exit 1 with `message` in its error output.
pub fn rbdimg_fails(args: &[&str], message: &str) -> Outcome {
    let out = rbdimg(args);
    assert_eq!(out.code, 1, "rbdimg {args:?}: {out:#?}");
    assert!(
        out.stderr.contains(message),
        "rbdimg {args:?}: {}",
        out.stderr
    );
    out
}

/// A raw file with data runs at (offset, byte, len).
pub fn raw_source(dir: &Path, name: &str, size: u64, runs: &[(u64, u8, usize)]) -> PathBuf {
    let path = dir.join(name);
    crate::util::make_raw(&path, size, runs);
    path
}

/// A 48 MiB source with data in scattered objects (4 MiB objects).
pub fn source(dir: &std::path::Path) -> std::path::PathBuf {
    raw_source(
        dir,
        "src.raw",
        48 << 20,
        &[
            (0, 1, 5000),
            (4 << 20, 2, 4 << 20),
            (20 << 20, 3, 100_000),
            ((47 << 20) + 7, 4, (1 << 20) - 7),
        ],
    )
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts rbdimg converting 256 MiB of data into `name` (holding its lock a while).
pub fn spawn_big_convert(dir: &Path, name: &str) -> KillOnDrop {
    let src = raw_source(dir, "big.raw", 256 << 20, &[(0, 7, 256 << 20)]);
    KillOnDrop(
        Command::new(RBDIMG)
            .args(["convert", "-n", "-O", "raw", src.to_str().unwrap(), name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    )
}
