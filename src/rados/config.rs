//! Choosing and connecting a RADOS backend for an `rbd:` name.
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

use std::sync::Arc;

use crate::image::error::Result;
use crate::rados::Cluster;
use crate::rados::librados::{Connect, LibradosCluster};
use crate::rbd::name::RbdSpec;

pub const DEFAULT_TIMEOUTS: &[(&str, &str)] = &[
    ("client_mount_timeout", "30"),
    ("rados_mon_op_timeout", "30"),
    ("rados_osd_op_timeout", "120"),
];

/// Connects to the cluster an `rbd:` name addresses.
pub fn connect(spec: &RbdSpec) -> Result<Arc<dyn Cluster>> {
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
