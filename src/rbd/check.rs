//! `check` for RBD images, rbdimg's extension (qemu-img has no check for
//! rbd): the object map against which objects actually exist, as `rbd
//! object-map check` compares them, found by one listing of the pool (not
//! one request per object of the virtual size). A map entry NONEXISTENT or
//! PENDING for an object that exists is a corruption (librbd readers would
//! skip its data); a stale EXISTS for a missing object is harmless and
//! tolerated. A map flagged invalid, or one that cannot be read or is too
//! small, is reported as one corruption.

use crate::block::diagnostics::Diagnostic;
use crate::block::driver::{CheckReport, Repair};
use crate::ceph::features;
use crate::ceph::object_map::{
    FLAG_OBJECT_MAP_INVALID, OBJECT_EXISTS, OBJECT_EXISTS_CLEAN, OBJECT_NONEXISTENT, OBJECT_PENDING,
};
use crate::error::{Error, ErrorKind, Result};
use crate::rbd::image::RbdImage;

impl RbdImage {
    /// Compares the object map with the objects that exist (`rbd
    /// object-map check`); `repair` rewrites wrong entries.
    pub fn check_object_map(&self, repair: Repair) -> Result<CheckReport> {
        if repair != Repair::None {
            return Err(Error::invalid(
                "rbdimg cannot repair rbd images; rebuild the object map with rbd object-map rebuild",
            ));
        }
        let state = self.state.read().expect("no poisoning");
        let header = &state.header;
        let size = self.current_size(&state);
        let objects = header.object_count(size);
        let snap = self.read_snap();
        let flags = self.snapshot.as_ref().map_or(header.flags, |s| s.flags);
        let mut report = CheckReport {
            total_clusters: Some(objects),
            ..Default::default()
        };
        let map = self.map.lock().expect("no poisoning").clone();
        // One listing finds the objects; only those the map does not say
        // exist are asked about (a listed object may be a snapshot's clone
        // whose head is gone).
        let listed = match self.listing(&state) {
            Ok(listed) => listed,
            Err(e) => {
                report.check_errors += 1;
                report.messages.push(Diagnostic::Line(format!(
                    "ERROR cannot list the objects of pool {}: {e}",
                    self.data.name()
                )));
                return Ok(report);
            }
        };
        let mut allocated = 0;
        for object in listed.range(..objects).copied() {
            let oid = header.data_oid(object);
            let in_map = map.as_ref().map(|m| m.get(object));
            let exists = match in_map {
                Some(OBJECT_EXISTS | OBJECT_EXISTS_CLEAN) => true,
                _ => match self.data.stat(&oid, snap) {
                    Ok(_) => true,
                    Err(e) if e.kind() == ErrorKind::NotFound => false,
                    Err(e) => {
                        report.check_errors += 1;
                        report
                            .messages
                            .push(Diagnostic::Line(format!("ERROR cannot stat {oid}: {e}")));
                        continue;
                    }
                },
            };
            allocated += exists as u64;
            if exists && matches!(in_map, Some(OBJECT_NONEXISTENT | OBJECT_PENDING)) {
                report.corruptions += 1;
                report.messages.push(Diagnostic::Line(format!(
                    "ERROR object map says object {object} ({oid}) does not exist, but it does"
                )));
            }
        }
        report.allocated_clusters = Some(allocated);
        if header.has(features::OBJECT_MAP) && flags & FLAG_OBJECT_MAP_INVALID != 0 {
            report.corruptions += 1;
            report.messages.push(Diagnostic::Line(
                "ERROR the object map is flagged invalid (rbd object-map rebuild repairs it)"
                    .into(),
            ));
        } else if let Some(why) = self.map_problem.lock().expect("no poisoning").as_ref() {
            report.corruptions += 1;
            report.messages.push(Diagnostic::Line(format!(
                "ERROR the object map cannot be used: {why} (rbd object-map rebuild repairs it)"
            )));
        }
        Ok(report)
    }
}
