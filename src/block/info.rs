//! What `info` reports about one node of an image graph (QAPI's
//! `BlockGraphInfo`), and its two renderings: qemu-img's human dump and its
//! JSON object.

use serde_json::{Map, Value, json};

use crate::block::snapshot::{self, SnapshotInfo};
use crate::qjson;
use crate::size::size_to_str;

#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub filename: String,
    /// Format driver name ("raw", "qcow2") or protocol ("file", "rbd").
    pub format: String,
    /// Protocol nodes print "protocol type"/"file length" instead of
    /// "file format"/"virtual size".
    pub protocol: bool,
    pub virtual_size: u64,
    /// Bytes allocated on the storage; `None` prints "unavailable".
    pub actual_size: Option<u64>,
    pub dirty_flag: Option<bool>,
    pub cluster_size: Option<u64>,
    pub encrypted: Option<bool>,
    pub backing_filename: Option<String>,
    pub full_backing_filename: Option<String>,
    pub backing_filename_format: Option<String>,
    /// `Some` (possibly empty) for formats that have snapshots.
    pub snapshots: Option<Vec<SnapshotInfo>>,
    /// `format-specific`: its `type` and `data`.
    pub format_specific: Option<(String, Map<String, Value>)>,
    /// Child nodes by role name ("file", "data-file", ...).
    pub children: Vec<(String, NodeInfo)>,
}

/// The name QEMU gives a format node (`bdrv_refresh_filename`): its
/// storage's plain name when the node adds no options of its own, else a
/// `json:` name of the format's options around the storage's.
pub fn format_node_filename(format: &str, options: &Map<String, Value>, file: &NodeInfo) -> String {
    let inner = file.filename.strip_prefix("json:");
    if options.is_empty() && inner.is_none() {
        return file.filename.clone();
    }
    let child = match inner {
        Some(json) => json.to_string(),
        None => {
            qjson::to_compact_string(&json!({"driver": file.format, "filename": file.filename}))
        }
    };
    // QEMU's insertion order: the driver, the format's options, the file.
    let mut node = Map::new();
    node.insert("driver".into(), json!(format));
    node.extend(options.clone());
    node.insert("file".into(), Value::Null);
    let fields: Vec<String> = qjson::qdict_order(&node)
        .into_iter()
        .map(|(key, value)| {
            // The storage's own name is already in QEMU's order.
            let value = match key.as_str() {
                "file" => child.clone(),
                _ => qjson::to_compact_string(value),
            };
            format!("{}: {value}", qjson::to_compact_string(&json!(key)))
        })
        .collect();
    format!("json:{{{}}}", fields.join(", "))
}

impl NodeInfo {
    /// The QAPI object, fields inserted in declaration order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("filename".into(), json!(self.filename));
        m.insert("format".into(), json!(self.format));
        if let Some(dirty) = self.dirty_flag {
            m.insert("dirty-flag".into(), json!(dirty));
        }
        if let Some(actual) = self.actual_size {
            m.insert("actual-size".into(), json!(actual));
        }
        m.insert("virtual-size".into(), json!(self.virtual_size));
        if let Some(cluster) = self.cluster_size {
            m.insert("cluster-size".into(), json!(cluster));
        }
        if let Some(encrypted) = self.encrypted {
            m.insert("encrypted".into(), json!(encrypted));
        }
        if let Some(b) = &self.backing_filename {
            m.insert("backing-filename".into(), json!(b));
        }
        if let Some(b) = &self.full_backing_filename {
            m.insert("full-backing-filename".into(), json!(b));
        }
        if let Some(b) = &self.backing_filename_format {
            m.insert("backing-filename-format".into(), json!(b));
        }
        if let Some(list) = &self.snapshots
            && !list.is_empty()
        {
            m.insert(
                "snapshots".into(),
                Value::Array(list.iter().map(snapshot::to_json).collect()),
            );
        }
        if let Some((kind, data)) = &self.format_specific {
            m.insert(
                "format-specific".into(),
                json!({"type": kind, "data": data}),
            );
        }
        // BlockGraphInfo adds `children` after the BlockNodeInfo members; it
        // shares a hash bucket with backing-filename-format and so prints
        // before it.
        let children: Vec<Value> = self
            .children
            .iter()
            .map(|(name, info)| json!({"name": name, "info": info.to_json()}))
            .collect();
        m.insert("children".into(), Value::Array(children));
        Value::Object(m)
    }

    /// qemu-img's human dump of this node and, indented, its children.
    pub fn to_human(&self) -> String {
        let mut out = String::new();
        self.dump(&mut out, "", "");
        out
    }

    fn dump(&self, out: &mut String, prefix: &str, path: &str) {
        let disk = self
            .actual_size
            .map(size_to_str)
            .unwrap_or_else(|| "unavailable".to_string());
        let size = format!(
            "{} ({} bytes)",
            size_to_str(self.virtual_size),
            self.virtual_size
        );
        if self.protocol {
            push(out, prefix, &format!("filename: {}", self.filename));
            push(out, prefix, &format!("protocol type: {}", self.format));
            push(out, prefix, &format!("file length: {size}"));
        } else {
            push(out, prefix, &format!("image: {}", self.filename));
            push(out, prefix, &format!("file format: {}", self.format));
            push(out, prefix, &format!("virtual size: {size}"));
        }
        push(out, prefix, &format!("disk size: {disk}"));
        if self.encrypted == Some(true) {
            push(out, prefix, "encrypted: yes");
        }
        if let Some(cluster) = self.cluster_size {
            push(out, prefix, &format!("cluster_size: {cluster}"));
        }
        if self.dirty_flag == Some(true) {
            push(out, prefix, "cleanly shut down: no");
        }
        if let Some(backing) = &self.backing_filename {
            let mut line = format!("backing file: {backing}");
            if let Some(full) = &self.full_backing_filename
                && full != backing
            {
                line.push_str(&format!(" (actual path: {full})"));
            }
            push(out, prefix, &line);
            if let Some(fmt) = &self.backing_filename_format {
                push(out, prefix, &format!("backing file format: {fmt}"));
            }
        }
        if let Some(list) = &self.snapshots
            && !list.is_empty()
        {
            push(out, prefix, "Snapshot list:");
            push(out, prefix, &snapshot::table_header());
            for sn in list {
                push(out, prefix, &snapshot::table_row(sn));
            }
        }
        if let Some((_, data)) = &self.format_specific
            && !data.is_empty()
        {
            push(out, prefix, "Format specific information:");
            let mut block = String::new();
            qjson::dump_human(&mut block, data, 1);
            for line in block.lines() {
                push(out, prefix, line);
            }
        }
        for (name, child) in &self.children {
            let child_path = format!("{path}/{name}");
            push(out, prefix, &format!("Child node '{child_path}':"));
            child.dump(out, &format!("{prefix}    "), &child_path);
        }
    }
}

fn push(out: &mut String, prefix: &str, line: &str) {
    out.push_str(prefix);
    out.push_str(line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_node() -> NodeInfo {
        let file = NodeInfo {
            filename: "a.raw".into(),
            format: "file".into(),
            protocol: true,
            virtual_size: 1 << 30,
            actual_size: Some(4096),
            dirty_flag: Some(false),
            format_specific: Some(("file".into(), Map::new())),
            ..Default::default()
        };
        NodeInfo {
            filename: "a.raw".into(),
            format: "raw".into(),
            virtual_size: 1 << 30,
            actual_size: Some(4096),
            dirty_flag: Some(false),
            children: vec![("file".into(), file)],
            ..Default::default()
        }
    }

    #[test]
    fn human_dump_matches_qemu_for_raw() {
        let expected = "image: a.raw\nfile format: raw\nvirtual size: 1 GiB (1073741824 bytes)\n\
                        disk size: 4 KiB\nChild node '/file':\n    filename: a.raw\n    protocol type: file\n\
                        \x20   file length: 1 GiB (1073741824 bytes)\n    disk size: 4 KiB\n";
        assert_eq!(raw_node().to_human(), expected);
    }

    #[test]
    fn json_matches_qemu_for_raw() {
        let text = qjson::to_pretty_string(&raw_node().to_json());
        let expected = r#"{
    "children": [
        {
            "name": "file",
            "info": {
                "children": [
                ],
                "virtual-size": 1073741824,
                "filename": "a.raw",
                "format": "file",
                "actual-size": 4096,
                "format-specific": {
                    "type": "file",
                    "data": {
                    }
                },
                "dirty-flag": false
            }
        }
    ],
    "virtual-size": 1073741824,
    "filename": "a.raw",
    "format": "raw",
    "actual-size": 4096,
    "dirty-flag": false
}"#;
        assert_eq!(text, expected);
    }
}
