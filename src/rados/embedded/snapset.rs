//! RADOS SnapSet semantics for one object, as the OSD keeps them: the
//! newest snapshot context seen (`seq`) and the clones that preserve older
//! contents, each serving the snapshots listed in `snaps`.
//!
//! * A write (or remove, truncate, zero, rollback) under a context with
//!   `snapc.seq > seq` first clones the head, if it exists, into a clone
//!   named `snapc.seq` serving the context's snapshots newer than `seq`.
//! * A read at snapshot S uses the first clone whose id >= S if S is among
//!   its snaps; the head if S > seq; else the object did not exist at S.
//! * Removing a snapshot drops it from every clone; a clone serving no
//!   snapshot is deleted.

use crate::rados::{SNAP_HEAD, SnapContext};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneInfo {
    pub id: u64,
    /// Snapshots this clone serves, newest first.
    pub snaps: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapSet {
    pub seq: u64,
    /// Oldest first.
    pub clones: Vec<CloneInfo>,
}

/// Which version of an object a read at some snapshot sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Head,
    Clone(u64),
    Absent,
}

impl SnapSet {
    pub fn resolve(&self, snap: u64) -> Version {
        if snap == SNAP_HEAD || snap > self.seq {
            return Version::Head;
        }
        match self.clones.iter().find(|c| c.id >= snap) {
            Some(c) if c.snaps.contains(&snap) => Version::Clone(c.id),
            _ => Version::Absent,
        }
    }

    /// Brings the snapset up to a write's context; returns the clone the
    /// head must be copied to first, if any.
    pub fn make_writeable(&mut self, snapc: &SnapContext, head_exists: bool) -> Option<u64> {
        if snapc.seq <= self.seq {
            return None;
        }
        let snaps: Vec<u64> = snapc
            .snaps
            .iter()
            .copied()
            .filter(|&s| s > self.seq)
            .collect();
        self.seq = snapc.seq;
        if !head_exists || snaps.is_empty() {
            return None;
        }
        self.clones.push(CloneInfo {
            id: snapc.seq,
            snaps,
        });
        Some(snapc.seq)
    }

    /// Forgets a removed snapshot; returns the clones no longer needed.
    pub fn trim(&mut self, snap: u64) -> Vec<u64> {
        for c in &mut self.clones {
            c.snaps.retain(|&s| s != snap);
        }
        let gone = self
            .clones
            .iter()
            .filter(|c| c.snaps.is_empty())
            .map(|c| c.id)
            .collect();
        self.clones.retain(|c| !c.snaps.is_empty());
        gone
    }

    /// `id:snap,snap;id:snap` (the database form).
    pub fn clones_text(&self) -> String {
        self.clones
            .iter()
            .map(|c| {
                let snaps: Vec<String> = c.snaps.iter().map(u64::to_string).collect();
                format!("{}:{}", c.id, snaps.join(","))
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    pub fn parse(seq: u64, text: &str) -> Option<SnapSet> {
        let mut clones = Vec::new();
        for part in text.split(';').filter(|p| !p.is_empty()) {
            let (id, snaps) = part.split_once(':')?;
            clones.push(CloneInfo {
                id: id.parse().ok()?,
                snaps: snaps
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()
                    .ok()?,
            });
        }
        Some(SnapSet { seq, clones })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapc(seq: u64, snaps: &[u64]) -> SnapContext {
        SnapContext {
            seq,
            snaps: snaps.to_vec(),
        }
    }

    #[test]
    fn clones_on_the_first_write_after_a_snapshot() {
        let mut ss = SnapSet::default();
        // Written before any snapshot: nothing to preserve.
        assert_eq!(ss.make_writeable(&snapc(0, &[]), true), None);
        // Snapshot 4 taken: the next write clones once.
        assert_eq!(ss.make_writeable(&snapc(4, &[4]), true), Some(4));
        assert_eq!(ss.make_writeable(&snapc(4, &[4]), true), None);
        assert_eq!(ss.resolve(4), Version::Clone(4));
        assert_eq!(ss.resolve(3), Version::Absent);
        assert_eq!(ss.resolve(5), Version::Head);
        assert_eq!(ss.resolve(SNAP_HEAD), Version::Head);
        // Snapshots 6 and 7: one clone serves both.
        assert_eq!(ss.make_writeable(&snapc(7, &[7, 6, 4]), true), Some(7));
        assert_eq!(ss.clones[1].snaps, vec![7, 6]);
        assert_eq!(ss.resolve(6), Version::Clone(7));
        assert_eq!(ss.resolve(5), Version::Absent);
    }

    #[test]
    fn an_object_created_after_a_snapshot_did_not_exist_then() {
        let mut ss = SnapSet::default();
        assert_eq!(ss.make_writeable(&snapc(3, &[3]), false), None);
        assert_eq!(ss.seq, 3);
        assert_eq!(ss.resolve(3), Version::Absent);
        assert_eq!(ss.resolve(4), Version::Head);
        // Removed since snapshot 3 and recreated: still absent at 3.
        assert_eq!(ss.make_writeable(&snapc(5, &[5, 3]), false), None);
        assert_eq!(ss.resolve(5), Version::Absent);
    }

    #[test]
    fn trimming_frees_clones() {
        let mut ss = SnapSet::default();
        ss.make_writeable(&snapc(2, &[2, 1]), true);
        ss.make_writeable(&snapc(5, &[5, 2, 1]), true);
        assert_eq!(ss.trim(1), Vec::<u64>::new());
        assert_eq!(ss.resolve(1), Version::Absent);
        assert_eq!(ss.resolve(2), Version::Clone(2));
        assert_eq!(ss.trim(2), vec![2]);
        assert_eq!(ss.resolve(5), Version::Clone(5));
        assert_eq!(ss.trim(5), vec![5]);
        assert!(ss.clones.is_empty());
        let text = SnapSet {
            seq: 9,
            clones: vec![CloneInfo {
                id: 9,
                snaps: vec![9, 8],
            }],
        };
        assert_eq!(text.clones_text(), "9:9,8");
        assert_eq!(SnapSet::parse(9, &text.clones_text()), Some(text));
        assert_eq!(SnapSet::parse(0, ""), Some(SnapSet::default()));
        assert_eq!(SnapSet::parse(0, "x"), None);
    }
}
