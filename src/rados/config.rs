//! Choosing and connecting a RADOS backend from a client configuration
//! (the connection part of an `rbd:` name).
//!
//! Configuration is applied as QEMU applies it: client id, then the conf
//! file (explicit `conf=`, else `$CEPH_CONF` or the default search), then
//! the name's key=value settings in order. On top, rbdimg bounds every wait
//! unless the conf file or the name says otherwise:
//!
//! | setting                | librados default | rbdimg default |
//! |------------------------|------------------|----------------|
//! | `client_mount_timeout` | 300 s            | 30 s           |
//! | `rados_mon_op_timeout` | forever          | 30 s           |
//! | `rados_osd_op_timeout` | forever          | 120 s          |
//!
//! So an unreachable monitor fails within 30 s, and an OSD that stops
//! answering mid-operation is waited for up to two minutes (it finishes if
//! the OSD comes back in time) and then fails with "Connection timed out".
//!
//! Which backend serves a name, first match wins (never a silent fallback:
//! an unreachable cluster is an error, not a reason to use local data):
//!
//! 1. `store=<dir>` in the name: the embedded store in `<dir>`;
//! 2. `conf=` or `mon_host=` in the name: that Ceph cluster;
//! 3. `$CEPH_CONF` set: Ceph;
//! 4. `$RBDIMG_STORE` set: the embedded store there (set but empty is an
//!    error);
//! 5. a default ceph.conf (`/etc/ceph/ceph.conf`, `~/.ceph/config`,
//!    `~/.ceph/ceph.conf`, `./ceph.conf`): Ceph;
//! 6. otherwise the embedded store at `$XDG_DATA_HOME/rbdimg`, else
//!    `~/.local/share/rbdimg`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::block::diagnostics::Diagnostics;
use crate::error::{Error, ErrorKind, Result};
use crate::rados::Cluster;
use crate::rados::embedded::{self, EmbeddedCluster};
use crate::rados::librados::{Connect, LibradosCluster};

pub const DEFAULT_TIMEOUTS: &[(&str, &str)] = &[
    ("client_mount_timeout", "30"),
    ("rados_mon_op_timeout", "30"),
    ("rados_osd_op_timeout", "120"),
];

/// Names the embedded store's directory.
pub const STORE_ENV: &str = "RBDIMG_STORE";

/// What a client is configured from, in the order QEMU applies it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientConfig {
    /// The client id (`client.<user>`).
    pub user: Option<String>,
    /// The ceph.conf to read instead of the default search.
    pub conf: Option<String>,
    /// Configuration overrides, in the order given.
    pub settings: Vec<(String, String)>,
    /// The embedded store's directory (not a Ceph setting).
    pub store: Option<String>,
}

/// Where an `rbd:` name's images live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Ceph,
    Embedded(PathBuf),
}

fn names_a_monitor(key: &str) -> bool {
    let k = key.replace([' ', '-'], "_");
    k == "mon_host" || k == "mon_addr"
}

fn env_set(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Chooses the backend for `spec` by the rules above.
pub fn select(spec: &ClientConfig) -> Result<Backend> {
    let ceph_in_name = spec.conf.is_some() || spec.settings.iter().any(|(k, _)| names_a_monitor(k));
    if let Some(store) = &spec.store {
        if ceph_in_name {
            return Err(Error::invalid(
                "store= names the embedded store and cannot be combined with conf= or mon_host=",
            ));
        }
        if store.is_empty() {
            return Err(Error::invalid(
                "store= needs the embedded store's directory",
            ));
        }
        return Ok(Backend::Embedded(PathBuf::from(store)));
    }
    if ceph_in_name || env_set("CEPH_CONF").is_some() {
        return Ok(Backend::Ceph);
    }
    if let Some(dir) = std::env::var_os(STORE_ENV) {
        // Set but empty is a mistake, not a reason to use the default.
        if dir.is_empty() {
            return Err(Error::invalid(format!(
                "{STORE_ENV} is set but empty: set it to the embedded store's directory, or unset it"
            )));
        }
        return Ok(Backend::Embedded(PathBuf::from(dir)));
    }
    let home = env_set("HOME").map(PathBuf::from);
    let mut defaults = vec![PathBuf::from("/etc/ceph/ceph.conf")];
    if let Some(h) = &home {
        defaults.push(h.join(".ceph/config"));
        defaults.push(h.join(".ceph/ceph.conf"));
    }
    defaults.push(PathBuf::from("ceph.conf"));
    if defaults.iter().any(|p| Path::new(p).is_file()) {
        return Ok(Backend::Ceph);
    }
    embedded::default_location().map(Backend::Embedded).ok_or_else(|| {
        Error::new(
            ErrorKind::NotFound,
            format!("no Ceph configuration and no place for the embedded store: set {STORE_ENV} or HOME"),
        )
    })
}

/// Connects to the cluster `spec` addresses; `diagnostics` hears what the
/// user should know about it (an embedded store open to other users).
pub fn connect(spec: &ClientConfig, diagnostics: &Diagnostics) -> Result<Arc<dyn Cluster>> {
    if let Backend::Embedded(dir) = select(spec)? {
        return Ok(Arc::new(EmbeddedCluster::open(
            &dir,
            &spec.settings,
            diagnostics,
        )?));
    }
    let c = Connect {
        user: spec.user.clone(),
        conf: spec.conf.clone(),
        settings: spec.settings.clone(),
        defaults: DEFAULT_TIMEOUTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    Ok(Arc::new(LibradosCluster::connect(&c)?))
}
