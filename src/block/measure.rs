//! What `measure` reports: the bytes a new image needs for given contents
//! (QAPI's `BlockMeasureInfo`). Each format does its own arithmetic.

use serde_json::{Map, Value, json};

/// A status query through a source image's backing chain: for the run at
/// `offset` (at most `len` bytes), whether it reads as zeros, whether it
/// holds allocated data, and its length.
pub type SourceStatus<'a> = dyn FnMut(u64, u64) -> crate::error::Result<(bool, bool, u64)> + 'a;

/// The image a new one would be converted from.
pub struct MeasureSource<'a> {
    /// Its length in whole sectors.
    pub size: u64,
    pub status: &'a mut SourceStatus<'a>,
    /// Its persistent bitmaps (name, granularity), when its format can
    /// keep them (qcow2 v3); `None` otherwise.
    pub bitmaps: Option<Vec<(String, u64)>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    pub required: u64,
    pub fully_allocated: u64,
    /// Space for the source's bitmaps, when both formats can keep them.
    pub bitmaps: Option<u64>,
}

impl Measure {
    /// qemu-img's human lines.
    pub fn to_human(&self) -> String {
        let mut text = format!(
            "required size: {}\nfully allocated size: {}\n",
            self.required, self.fully_allocated
        );
        if let Some(bitmaps) = self.bitmaps {
            text.push_str(&format!("bitmaps size: {bitmaps}\n"));
        }
        text
    }

    /// The QAPI object (printed in QEMU's key order by `qjson`).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert("required".into(), json!(self.required));
        map.insert("fully-allocated".into(), json!(self.fully_allocated));
        if let Some(bitmaps) = self.bitmaps {
            map.insert("bitmaps".into(), json!(bitmaps));
        }
        Value::Object(map)
    }
}
