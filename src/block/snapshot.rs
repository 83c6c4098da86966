//! Internal snapshots as qemu-img reports them (QEMU's `QEMUSnapshotInfo`),
//! and their table and JSON forms.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::size::size_to_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    pub name: String,
    pub vm_state_size: u64,
    pub date_sec: i64,
    pub date_nsec: u32,
    pub vm_clock_nsec: u64,
    /// Instruction count at snapshot time; `None` where the format has none.
    pub icount: Option<u64>,
}

/// Snapshots kept by an image or by its storage (a capability of both
/// `BlockDriver` and `Storage`): none by default.
pub trait Snapshots {
    /// Snapshots for `snapshot -l`; `None` when there are none at all
    /// (qemu-img then lists nothing and succeeds).
    fn snapshots(&self) -> Result<Option<Vec<SnapshotInfo>>> {
        Ok(None)
    }

    fn snapshot_create(&self, _name: &str) -> Result<()> {
        Err(Error::not_supported())
    }

    /// Reverts to the snapshot with this id.
    fn snapshot_apply(&self, _id: &str) -> Result<()> {
        Err(Error::not_supported())
    }

    fn snapshot_delete(&self, _id: &str) -> Result<()> {
        Err(Error::not_supported())
    }
}

/// How `snapshot -a/-d` and `convert -l` name a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotSelector {
    /// A plain argument: matches an ID or a name, IDs first (QEMU's rule).
    IdOrName(String),
    Id(String),
    Name(String),
    IdAndName {
        id: String,
        name: String,
    },
}

impl SnapshotSelector {
    /// Parses `convert -l`'s argument: `snapshot.id=X,snapshot.name=Y` or a bare name.
    pub fn parse_convert_option(text: &str) -> Result<SnapshotSelector, String> {
        if !text.starts_with("snapshot.") {
            return Ok(SnapshotSelector::IdOrName(text.to_string()));
        }
        let (mut id, mut name) = (None, None);
        for part in text.split(',') {
            match part.split_once('=') {
                Some(("snapshot.id", v)) => id = Some(v.to_string()),
                Some(("snapshot.name", v)) => name = Some(v.to_string()),
                _ => {
                    return Err(format!(
                        "Invalid parameter '{}'",
                        part.split('=').next().unwrap_or(part)
                    ));
                }
            }
        }
        Ok(match (id, name) {
            (Some(id), Some(name)) => SnapshotSelector::IdAndName { id, name },
            (Some(id), None) => SnapshotSelector::Id(id),
            (None, Some(name)) => SnapshotSelector::Name(name),
            (None, None) => unreachable!("at least one part starts with snapshot."),
        })
    }

    /// Finds the snapshot this selector names.
    pub fn find<'a>(&self, snapshots: &'a [SnapshotInfo]) -> Option<&'a SnapshotInfo> {
        match self {
            SnapshotSelector::IdOrName(s) => snapshots
                .iter()
                .find(|sn| &sn.id == s)
                .or_else(|| snapshots.iter().find(|sn| &sn.name == s)),
            SnapshotSelector::Id(id) => snapshots.iter().find(|sn| &sn.id == id),
            SnapshotSelector::Name(name) => snapshots.iter().find(|sn| &sn.name == name),
            SnapshotSelector::IdAndName { id, name } => {
                snapshots.iter().find(|sn| &sn.id == id && &sn.name == name)
            }
        }
    }

    /// The text QEMU puts in "Snapshot '%s' ..." messages.
    pub fn describe(&self) -> &str {
        match self {
            SnapshotSelector::IdOrName(s) | SnapshotSelector::Id(s) | SnapshotSelector::Name(s) => {
                s
            }
            SnapshotSelector::IdAndName { name, .. } => name,
        }
    }
}

/// The table header line of `snapshot -l` and `info` (no newline).
pub fn table_header() -> String {
    format!(
        "{:<7} {:<16} {:>8} {:>19} {:>15} {:>10}",
        "ID", "TAG", "VM_SIZE", "DATE", "VM_CLOCK", "ICOUNT"
    )
}

/// One row of the snapshot table (no newline), dates in local time as QEMU prints them.
pub fn table_row(sn: &SnapshotInfo) -> String {
    let secs = sn.vm_clock_nsec / 1_000_000_000;
    let clock = format!(
        "{:04}:{:02}:{:02}.{:03}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        (sn.vm_clock_nsec / 1_000_000) % 1000
    );
    let icount = sn.icount.map(|i| i.to_string()).unwrap_or_default();
    format!(
        "{:<7} {:<16} {:>8} {:>19} {:>15} {:>10}",
        sn.id,
        sn.name,
        size_to_str(sn.vm_state_size),
        local_time(sn.date_sec),
        clock,
        icount
    )
}

/// `%Y-%m-%d %H:%M:%S` in the local time zone.
fn local_time(secs: i64) -> String {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: localtime_r only writes the tm we pass; an all-zero tm is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return "1970-01-01 00:00:00".to_string();
    }
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// QAPI `SnapshotInfo` as a JSON object (QAPI field order; printing reorders).
pub fn to_json(sn: &SnapshotInfo) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(sn.id));
    m.insert("name".into(), json!(sn.name));
    m.insert("vm-state-size".into(), json!(sn.vm_state_size));
    m.insert("date-sec".into(), json!(sn.date_sec));
    m.insert("date-nsec".into(), json!(sn.date_nsec));
    m.insert(
        "vm-clock-sec".into(),
        json!(sn.vm_clock_nsec / 1_000_000_000),
    );
    m.insert(
        "vm-clock-nsec".into(),
        json!(sn.vm_clock_nsec % 1_000_000_000),
    );
    if let Some(icount) = sn.icount {
        m.insert("icount".into(), json!(icount));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, name: &str) -> SnapshotInfo {
        SnapshotInfo {
            id: id.into(),
            name: name.into(),
            vm_state_size: 0,
            date_sec: 0,
            date_nsec: 0,
            vm_clock_nsec: 3_723_004_000_000,
            icount: Some(0),
        }
    }

    #[test]
    fn header_matches_qemu() {
        assert_eq!(
            table_header(),
            "ID      TAG               VM_SIZE                DATE        VM_CLOCK     ICOUNT"
        );
    }

    #[test]
    fn row_formats_clock_and_size() {
        let row = table_row(&snap("1", "s1"));
        assert!(
            row.starts_with("1       s1                    0 B "),
            "{row}"
        );
        assert!(row.ends_with("  0001:02:03.004          0"), "{row}");
    }

    #[test]
    fn selectors_find_ids_before_names() {
        let list = [snap("1", "2"), snap("2", "x")];
        assert_eq!(
            SnapshotSelector::IdOrName("2".into())
                .find(&list)
                .unwrap()
                .name,
            "x"
        );
        assert_eq!(
            SnapshotSelector::Name("2".into()).find(&list).unwrap().id,
            "1"
        );
        assert_eq!(
            SnapshotSelector::parse_convert_option("snapshot.id=1,snapshot.name=2").unwrap(),
            SnapshotSelector::IdAndName {
                id: "1".into(),
                name: "2".into()
            }
        );
        assert!(SnapshotSelector::parse_convert_option("snapshot.foo=1").is_err());
    }
}
