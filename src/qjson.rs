//! JSON and nested-dictionary text exactly as QEMU prints them.
//!
//! QEMU renders QAPI results through a `QDict`, a hash table with 512 buckets
//! keyed by `tdb_hash`, and prints a dictionary in bucket order (within a
//! bucket, the most recently inserted key first). Reproducing that hash is
//! what makes our key order equal qemu-img's for any set of keys, without a
//! hand-kept order per structure. Its pretty printer indents by four spaces,
//! prints empty containers over two lines and escapes every non-ASCII
//! character as `\uXXXX`.

use serde_json::{Map, Value};

const QDICT_BUCKETS: u32 = 512;

fn tdb_hash(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut value: u32 = 0x238F_13AFu32.wrapping_mul(bytes.len() as u32);
    for (i, &b) in bytes.iter().enumerate() {
        value = value.wrapping_add((b as u32) << ((i * 5) % 24));
    }
    1_103_515_243u32.wrapping_mul(value).wrapping_add(12345)
}

/// The keys of `map` in the order QEMU's QDict iterates them, given that the
/// map's own order is the order QEMU inserted them.
pub fn qdict_order(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(usize, &String, &Value)> = map
        .iter()
        .enumerate()
        .map(|(i, (k, v))| (i, k, v))
        .collect();
    entries.sort_by_key(|(i, k, _)| (tdb_hash(k) % QDICT_BUCKETS, std::cmp::Reverse(*i)));
    entries.into_iter().map(|(_, k, v)| (k, v)).collect()
}

/// `qobject_to_json_pretty`: the text `qemu-img ... --output=json` prints.
pub fn to_pretty_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value, 0);
    out
}

/// `qobject_to_json`: the one-line form QEMU uses inside `json:` node names,
/// with ", " and ": " separators.
pub fn to_compact_string(value: &Value) -> String {
    let mut out = String::new();
    write_compact(&mut out, value);
    out
}

fn write_compact(out: &mut String, value: &Value) {
    match value {
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_compact(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in qdict_order(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_compact(out, item);
            }
            out.push('}');
        }
        scalar => write_value(out, scalar, 0),
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("    ");
    }
}

fn write_value(out: &mut String, value: &Value, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, level + 1);
                write_value(out, item, level + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, level);
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{\n");
            let entries = qdict_order(map);
            let count = entries.len();
            for (i, (key, item)) in entries.into_iter().enumerate() {
                indent(out, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, item, level + 1);
                out.push_str(if i + 1 < count { ",\n" } else { "\n" });
            }
            indent(out, level);
            out.push('}');
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) >= 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `dump_qobject`: the "Format specific information:" block of human `info`,
/// where keys print with '-' as ' ' and nested values indent by four.
pub fn dump_human(out: &mut String, value: &Map<String, Value>, level: usize) {
    for (key, item) in qdict_order(value) {
        let name = key.replace('-', " ");
        dump_entry(out, &name, item, level);
    }
}

fn dump_entry(out: &mut String, name: &str, item: &Value, level: usize) {
    indent(out, level);
    match item {
        Value::Object(map) => {
            out.push_str(&format!("{name}:\n"));
            dump_human(out, map, level + 1);
        }
        Value::Array(items) => {
            out.push_str(&format!("{name}:\n"));
            for (i, element) in items.iter().enumerate() {
                dump_entry(out, &format!("[{i}]"), element, level + 1);
            }
        }
        scalar => out.push_str(&format!("{name}: {}\n", human_scalar(scalar))),
    }
}

fn human_scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        _ => unreachable!("containers are dumped by dump_entry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_matches_qemu_for_image_info() {
        // Inserted in QAPI declaration order; printed as qemu-img 10 prints them.
        let v = json!({"filename": "a", "format": "raw", "dirty-flag": false,
                       "actual-size": 4096, "virtual-size": 1, "children": []});
        let keys: Vec<_> = qdict_order(v.as_object().unwrap())
            .into_iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "children",
                "virtual-size",
                "filename",
                "format",
                "actual-size",
                "dirty-flag"
            ]
        );
    }

    #[test]
    fn key_order_matches_qemu_for_snapshots() {
        let v = json!({"id": "1", "name": "s1", "vm-state-size": 0, "date-sec": 1, "date-nsec": 2,
                       "vm-clock-sec": 0, "vm-clock-nsec": 0, "icount": 0});
        let keys: Vec<_> = qdict_order(v.as_object().unwrap())
            .into_iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "icount",
                "vm-clock-nsec",
                "name",
                "date-sec",
                "date-nsec",
                "vm-clock-sec",
                "id",
                "vm-state-size"
            ]
        );
    }

    #[test]
    fn pretty_prints_empty_containers_over_two_lines() {
        let v = json!({"children": [], "data": {}});
        let text = to_pretty_string(&v);
        assert!(text.contains("\"children\": [\n    ]"), "{text}");
        assert!(text.contains("\"data\": {\n    }"), "{text}");
    }

    #[test]
    fn escapes_non_ascii() {
        assert_eq!(to_pretty_string(&json!("é\"\n")), "\"\\u00E9\\\"\\n\"");
    }
}
