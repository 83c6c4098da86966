//! The RADOS layer itself, below the RBD code: one set of assertions over
//! the `Cluster`/`Pool` trait that both backends must pass (librados on a
//! real cluster, and the embedded store), and the embedded store's class
//! methods against what a real OSD answers.

mod cls_fixtures;
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rbdimg::block::diagnostics::Diagnostics;
use rbdimg::rados::embedded::EmbeddedCluster;
use rbdimg::rados::librados::{Connect, LibradosCluster};
use rbdimg::rados::{Cluster, Pool};

use crate::ceph::shared;

/// A connected backend, and the store directory that lives as long as it.
pub struct Backend {
    pub cluster: Arc<dyn Cluster>,
    store: Option<tempfile::TempDir>,
}

impl Backend {
    /// A client of the shared test cluster, through librados.
    pub fn ceph() -> Backend {
        let cluster = LibradosCluster::connect(&Connect {
            conf: Some(shared().conf()),
            ..Default::default()
        })
        .expect("connect to the test cluster");
        Backend {
            cluster: Arc::new(cluster),
            store: None,
        }
    }

    /// A fresh embedded store with an `rbd` pool, as the test cluster has.
    pub fn embedded() -> Backend {
        let dir = tempfile::Builder::new()
            .prefix("rbdimg-store-")
            .tempdir()
            .unwrap();
        let cluster = EmbeddedCluster::open(dir.path(), &[], &Diagnostics::default()).unwrap();
        cluster.ensure_pool("rbd", "").unwrap();
        Backend {
            cluster: Arc::new(cluster),
            store: Some(dir),
        }
    }

    /// A second client of the same cluster or store.
    pub fn another_client(&self) -> Arc<dyn Cluster> {
        match &self.store {
            None => Backend::ceph().cluster,
            Some(dir) => {
                Arc::new(EmbeddedCluster::open(dir.path(), &[], &Diagnostics::default()).unwrap())
            }
        }
    }

    /// The `rbd` pool in a RADOS namespace no other test uses.
    pub fn pool(&self) -> Arc<dyn Pool> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let ns = format!(
            "conformance-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        self.cluster.pool("rbd", &ns).unwrap()
    }
}

/// Runs one test body against both backends, as two tests.
macro_rules! both_backends {
    ($($test:ident),* $(,)?) => {
        crate::util::both_backends_of!(crate::rados::Backend: $($test),*);
    };
}
pub(crate) use both_backends;
