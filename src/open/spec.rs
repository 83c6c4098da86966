//! What an image name means: the stack of nodes a path, an `rbd:` name, a
//! `json:{...}` object or an `--image-opts` string describes, read with
//! QEMU's rules (`bdrv_open_inherit`): options are flattened into dotted
//! keys, each node takes the keys under its prefix (`file.` for the child),
//! a node without `driver` is probed (top) or named by its `filename`
//! (child), and a string where a child's options belong names an existing
//! node, which a command line never has.
//!
//! ```text
//!   driver=raw, offset=1M, file.driver=raw, file.file.filename=A
//!   format raw (offset 1M)  --file-->  format raw  --file-->  file A
//!   = ImageSpec { format: raw, raw_options: [offset], inner: [raw],
//!                 location: File(A) }
//! ```

use serde_json::{Map, Value};

use crate::block::options::parse_items;
use crate::error::{Error, ErrorKind, Result};
use crate::open::format::{Format, Lookup};
use crate::open::qemu_json;
use crate::qjson::qdict_order;
use crate::rbd::name::{self, RbdSpec};

/// Where an image's bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(String),
    Rbd(RbdSpec),
}

/// Where an image lives and in which format, once the name is understood.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub location: Location,
    /// The format the name itself asks for (`driver=...`).
    pub format: Option<String>,
    /// QEMU's raw `offset` and `size` given to the top node, as given
    /// (strings from `--image-opts`, JSON values from `json:`): taken when
    /// the node opens as raw.
    pub raw_options: Vec<(String, Value)>,
    /// Format nodes between the top node and the storage, top first
    /// (`driver=raw,file.driver=raw,...`).
    pub inner: Vec<InnerNode>,
    /// The top node's options that no node has taken (raw's among them),
    /// in the order given: QEMU reports the first left over once the node
    /// is open, naming the format it opened.
    leftovers: Map<String, Value>,
    /// `"backing": null` (or `backing=` empty): open without the backing
    /// file.
    pub no_backing: bool,
    /// What QEMU warns about while reading the name (opening prints them).
    pub warnings: Vec<String>,
}

/// A format node below the top one: always named by its `driver`.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerNode {
    pub driver: String,
    /// Raw's `offset` and `size`, as for the top node.
    pub raw_options: Vec<(String, Value)>,
}

/// The options of QEMU's raw format.
const RAW_OPTIONS: &[&str] = &["offset", "size"];
/// The options of QEMU's luks format that rbdimg reads.
const LUKS_OPTIONS: &[&str] = &["key-secret"];
/// The encryption options of QEMU's qcow2 format.
const QCOW2_OPTIONS: &[&str] = &["encrypt.key-secret", "encrypt.format"];
/// Options any node takes that change nothing rbdimg does.
const IGNORED: &[&str] = &["read-only", "cache.direct", "cache.no-flush"];
/// The same for the file protocol.
const FILE_IGNORED: &[&str] = &["locking", "aio"];
/// Options QEMU's nodes take that rbdimg does not implement: refused by
/// name rather than ignored.
const NOT_IMPLEMENTED: &[&str] = &[
    "node-name",
    "discard",
    "detect-zeroes",
    "auto-read-only",
    "force-share",
    "cache.writeback",
];

/// One node of the stack.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    /// A format node: its driver (`None`: probed) over its `file` child.
    Format {
        driver: Option<String>,
        raw_options: Vec<(String, Value)>,
        file: Box<Node>,
        /// Its options no node has taken (raw's among them), as given.
        leftovers: Map<String, Value>,
    },
    File(String),
    Rbd(RbdSpec),
}

impl ImageSpec {
    /// Parses a filename, `rbd:` name, `json:{...}`, or (with `image_opts`)
    /// an option string (whose first item may omit `file=`, as QEMU's).
    pub fn parse(name: &str, image_opts: bool) -> Result<ImageSpec> {
        if image_opts {
            let mut options = Map::new();
            let mut warnings = Vec::new();
            for item in parse_items(name, Some("file")) {
                if item.short_form && item.key != "help" && item.key != "?" {
                    let no = if item.value == "off" { "no" } else { "" };
                    warnings.push(format!(
                        "short-form boolean option '{no}{}' deprecated\nPlease use {}={} instead",
                        item.key, item.key, item.value
                    ));
                }
                options.insert(item.key, Value::String(item.value));
            }
            let mut spec = Self::from_options(&options);
            if let Ok(spec) = &mut spec {
                warnings.append(&mut spec.warnings);
                spec.warnings = warnings;
            }
            return spec;
        }
        if let Some(json) = name.strip_prefix("json:") {
            let value = qemu_json::parse(json)
                .map_err(|e| Error::invalid(format!("Could not parse the JSON options: {e}")))?;
            let Value::Object(map) = value else {
                return Err(Error::invalid("Invalid JSON object given"));
            };
            return Self::from_options(&qemu_json::flatten(&map));
        }
        let location = if name::is_rbd_name(name) {
            Location::Rbd(name::parse_legacy(name)?)
        } else {
            Location::File(file_name(name)?)
        };
        Ok(Self::of(location, None))
    }

    /// A spec of one storage node and the format asked for.
    fn of(location: Location, format: Option<&str>) -> ImageSpec {
        ImageSpec {
            location,
            format: format.map(str::to_string),
            raw_options: Vec::new(),
            inner: Vec::new(),
            leftovers: Map::new(),
            no_backing: false,
            warnings: Vec::new(),
        }
    }

    /// Builds the spec from flattened options.
    fn from_options(options: &Map<String, Value>) -> Result<ImageSpec> {
        let (driver, raw_options, mut below, mut leftovers) = match node(options, true)? {
            Node::File(path) => return Ok(Self::of(Location::File(path), Some("file"))),
            Node::Rbd(rbd) => return Ok(Self::of(Location::Rbd(rbd), Some("rbd"))),
            Node::Format {
                driver,
                raw_options,
                file,
                leftovers,
            } => (driver, raw_options, *file, leftovers),
        };
        let mut inner = Vec::new();
        let location = loop {
            match below {
                Node::File(path) => break Location::File(path),
                Node::Rbd(rbd) => break Location::Rbd(rbd),
                Node::Format {
                    driver,
                    raw_options,
                    file,
                    ..
                } => {
                    inner.push(InnerNode {
                        driver: driver.expect("a child format node names its driver"),
                        raw_options,
                    });
                    below = *file;
                }
            }
        };
        // QEMU's generic block layer takes `backing` before any driver sees
        // it: null or empty means "no backing file".
        let mut warnings = Vec::new();
        let no_backing = match leftovers.get("backing") {
            Some(Value::Null) => true,
            Some(Value::String(s)) if s.is_empty() => {
                warnings.push(
                    "Use of \"backing\": \"\" is deprecated; use \"backing\": null instead"
                        .to_string(),
                );
                true
            }
            _ => false,
        };
        if no_backing {
            leftovers.remove("backing");
        }
        Ok(ImageSpec {
            location,
            format: driver,
            raw_options,
            inner,
            leftovers,
            no_backing,
            warnings,
        })
    }

    /// The option QEMU refuses once the top node is open as `format`: the
    /// first option left over, in QEMU's dictionary order (raw takes its
    /// `offset` and `size`; any other format leaves them over).
    pub fn leftover_option(&self, format: &str) -> Option<String> {
        let mut left = self.leftovers.clone();
        let taken: &[&str] = match format {
            "raw" => RAW_OPTIONS,
            "luks" => LUKS_OPTIONS,
            "qcow2" => QCOW2_OPTIONS,
            _ => &[],
        };
        left.retain(|k, _| !taken.contains(&k.as_str()));
        qdict_order(&left).first().map(|(k, _)| k.to_string())
    }

    /// Takes the `backing.` options (QEMU's `qdict_extract_subqdict` of
    /// "backing."): the backing node's own, prefix dropped. Only an open
    /// that opens the backing file takes them; otherwise they stay and are
    /// refused as left over, as in QEMU.
    pub fn take_backing(&mut self) -> Map<String, Value> {
        let keys: Vec<String> = self
            .leftovers
            .keys()
            .filter(|k| k.starts_with("backing."))
            .cloned()
            .collect();
        keys.into_iter()
            .map(|k| {
                let v = self.leftovers.remove(&k).expect("listed");
                (k["backing.".len()..].to_string(), v)
            })
            .collect()
    }

    /// The spec of a backing file the image names `name` (format `format`
    /// from its header), opened with the `backing.` options the top name
    /// gave (QEMU's `bdrv_open_backing_file`): a `driver` there wins over
    /// the header's format, a `file` there replaces the named file, every
    /// other option goes to the backing node.
    pub fn for_backing(
        name: &str,
        format: Option<&str>,
        options: &Map<String, Value>,
    ) -> Result<ImageSpec> {
        let mut options = options.clone();
        if let Some(f) = format {
            options.entry("driver").or_insert_with(|| f.into());
        }
        if options
            .keys()
            .any(|k| k == "file" || k.starts_with("file."))
        {
            return Self::from_options(&options);
        }
        let mut spec = Self::parse(name, false)?;
        if let Some(driver) = options.remove("driver") {
            spec.format = Some(match driver {
                Value::String(s) => s,
                other => other.to_string(),
            });
        }
        spec.leftovers.extend(options);
        Ok(spec)
    }

    /// A top-node option its format takes (`key-secret` of luks,
    /// `encrypt.key-secret` of qcow2), as text.
    pub fn option(&self, key: &str) -> Option<String> {
        match self.leftovers.get(key)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// QEMU's `path_has_protocol`: a colon before any slash.
fn has_protocol(path: &str) -> bool {
    path.find([':', '/'])
        .is_some_and(|i| path[i..].starts_with(':'))
}

/// Protocol prefixes QEMU knows besides `file:` and `rbd:`; rbdimg has none
/// of them.
const OTHER_PROTOCOLS: &[&str] = &[
    "fat",
    "ftp",
    "ftps",
    "gluster",
    "gluster+rdma",
    "gluster+tcp",
    "gluster+unix",
    "host_cdrom",
    "host_device",
    "http",
    "https",
    "iscsi",
    "iser",
    "nbd",
    "nbd+tcp",
    "nbd+unix",
    "nfs",
    "null-aio",
    "null-co",
    "nvme",
    "ssh",
    "blkdebug",
    "blkverify",
    "vvfat",
];

/// The local file a plain name (not `rbd:`, not `json:`) names, as QEMU's
/// `bdrv_find_protocol` and the file driver read it: `file:` is stripped
/// (a name that would then look like a protocol gets `./` before it), a
/// colon before any slash is some other protocol.
fn file_name(name: &str) -> Result<String> {
    if !has_protocol(name) {
        return Ok(name.to_string());
    }
    let (protocol, rest) = name.split_once(':').expect("has a colon");
    match protocol {
        "file" if has_protocol(rest) => Ok(format!("./{rest}")),
        "file" => Ok(rest.to_string()),
        _ if OTHER_PROTOCOLS.contains(&protocol) => Err(Error::new(
            ErrorKind::UnsupportedFeature,
            format!("protocol '{protocol}' is not supported by rbdimg"),
        )),
        _ => Err(Error::invalid(format!("Unknown protocol '{protocol}'"))),
    }
}

/// The entries of `options` under `prefix`, prefix removed, in order.
fn under(options: &Map<String, Value>, prefix: &str) -> Map<String, Value> {
    options
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_string(), v.clone())))
        .collect()
}

/// One node from its own options (a child's with the `file.` prefix gone).
fn node(options: &Map<String, Value>, top: bool) -> Result<Node> {
    let driver = options.get("driver").and_then(Value::as_str);
    match driver.map(|d| (d, Format::lookup(d))) {
        Some((d, Lookup::Unknown)) => Err(Error::invalid(format!("Unknown driver '{d}'"))),
        Some((d, Lookup::NotImplemented)) => Err(Format::for_output(d).expect_err("not built")),
        Some((_, Lookup::Found(Format::Rbd))) => rbd_node(options),
        Some((_, Lookup::Found(Format::File))) => file_node(options),
        Some((d, Lookup::Found(_))) => format_node(options, Some(d), top),
        None if top => format_node(options, None, true),
        None => match options.get("filename") {
            Some(Value::String(_)) => file_node(options),
            _ => Err(Error::invalid("Must specify either driver or file")),
        },
    }
}

fn format_node(options: &Map<String, Value>, driver: Option<&str>, top: bool) -> Result<Node> {
    let child = under(options, "file.");
    if let Some(Value::String(reference)) = options.get("file") {
        return Err(Error::invalid(if child.is_empty() {
            format!("Cannot find device='{reference}' nor node-name='{reference}'")
        } else {
            "Cannot reference an existing block device with additional options or a new filename"
                .to_string()
        }));
    }
    if child.is_empty() {
        return Err(Error::invalid(match driver {
            Some(_) => "A block device must be specified for \"file\"",
            None => "Must specify either driver or file",
        }));
    }
    let file = node(&child, false)?;
    // Raw's options, for a raw node or one whose format is yet to be probed.
    let takes_raw = driver.is_none_or(|d| d == "raw");
    let own: Map<String, Value> = options
        .iter()
        .filter(|(k, _)| !k.starts_with("file."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let leftovers = unknown_options(&own, &["driver", "file"])?;
    let raw_options: Vec<_> = leftovers
        .iter()
        .filter(|(k, _)| takes_raw && RAW_OPTIONS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // QEMU opens a node's child, then refuses the node's leftover options:
    // a child's now, the top node's once it is open.
    let first_unknown = qdict_order(&leftovers)
        .into_iter()
        .map(|(k, _)| k)
        .find(|k| !raw_options.iter().any(|(r, _)| r == *k));
    if let (Some(key), false) = (first_unknown, top) {
        return Err(Error::invalid(format!(
            "Block format '{}' does not support the option '{key}'",
            driver.unwrap_or_default()
        )));
    }
    Ok(Node::Format {
        driver: driver.map(str::to_string),
        raw_options,
        file: Box::new(file),
        leftovers,
    })
}

fn file_node(options: &Map<String, Value>) -> Result<Node> {
    let Some(Value::String(path)) = options.get("filename") else {
        return Err(Error::invalid(
            "The 'file' block driver requires a file name",
        ));
    };
    let known = [&["driver", "filename"][..], FILE_IGNORED].concat();
    if let Some((key, _)) = qdict_order(&unknown_options(options, &known)?).first() {
        return Err(Error::invalid(format!(
            "Block protocol 'file' doesn't support the option '{key}'"
        )));
    }
    Ok(Node::File(path.clone()))
}

fn rbd_node(options: &Map<String, Value>) -> Result<Node> {
    let mut pairs = Vec::new();
    for (key, value) in options {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Bool(b) => if *b { "on" } else { "off" }.to_string(),
            Value::Number(n) => n.to_string(),
            _ => {
                return Err(Error::invalid(format!("Invalid value for option '{key}'")));
            }
        };
        pairs.push((key.clone(), text));
    }
    Ok(Node::Rbd(name::parse_structured(&pairs)?))
}

/// The options no driver here takes (`known` are the node's own), in
/// the order given; QEMU options rbdimg does not implement are refused by
/// name (the first in QEMU's dictionary order).
fn unknown_options(options: &Map<String, Value>, known: &[&str]) -> Result<Map<String, Value>> {
    let unknown: Map<String, Value> = options
        .iter()
        .filter(|(k, _)| !known.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if let Some((key, _)) = qdict_order(&unknown)
        .into_iter()
        .find(|(k, _)| NOT_IMPLEMENTED.contains(&k.as_str()))
    {
        return Err(Error::new(
            ErrorKind::UnsupportedFeature,
            format!("option '{key}' is not supported by rbdimg"),
        ));
    }
    Ok(unknown)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn file(path: &str, format: Option<&str>) -> ImageSpec {
        ImageSpec::of(Location::File(path.into()), format)
    }

    fn message(name: &str, image_opts: bool) -> String {
        ImageSpec::parse(name, image_opts).unwrap_err().to_string()
    }

    #[test]
    fn parses_json_and_image_opts() {
        let s = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"file","filename":"/x"}}"#,
            false,
        )
        .unwrap();
        assert_eq!(s, file("/x", Some("raw")));
        assert_eq!(
            ImageSpec::parse("driver=raw,file.filename=/a,,b", true).unwrap(),
            file("/a,b", Some("raw"))
        );
        assert_eq!(
            ImageSpec::parse("driver=file,filename=/y", true).unwrap(),
            file("/y", Some("file"))
        );
        assert!(ImageSpec::parse("json:[1]", false).is_err());
        let unknown = ImageSpec::parse("driver=raw,bogus=1,file.filename=/a", true).unwrap();
        assert_eq!(unknown.leftover_option("raw").as_deref(), Some("bogus"));
    }

    #[test]
    fn nested_keys_and_references_follow_qemu() {
        // Issue 9: the nested "file" object wins over a dotted key.
        let s = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"file","filename":"A"},"file.filename":"B"}"#,
            false,
        )
        .unwrap();
        assert_eq!(s, file("A", Some("raw")));
        assert_eq!(
            message(r#"json:{"driver":"raw","driver":"raw"}"#, false),
            "Could not parse the JSON options: JSON parse error, duplicate key"
        );
        assert_eq!(
            message(r#"json:{"driver":"raw","file":"A"}"#, false),
            "Cannot find device='A' nor node-name='A'"
        );
        assert_eq!(
            message("a.raw", true),
            "Cannot find device='a.raw' nor node-name='a.raw'"
        );
        assert_eq!(
            message(r#"json:{"file":"A","file.filename":"B"}"#, false),
            "Cannot reference an existing block device with additional options or a new filename"
        );
        assert_eq!(
            message("driver=raw", true),
            "A block device must be specified for \"file\""
        );
        assert_eq!(
            message(r#"json:{"filename":"A"}"#, false),
            "Must specify either driver or file"
        );
        assert_eq!(
            message("driver=raw,file.filename=A,file.foo=1", true),
            "Block protocol 'file' doesn't support the option 'foo'"
        );
    }

    #[test]
    fn raw_stacks_over_other_formats() {
        let s = ImageSpec::parse(
            "driver=raw,file.driver=raw,file.file.driver=file,file.file.filename=A",
            true,
        )
        .unwrap();
        assert_eq!(s.format.as_deref(), Some("raw"));
        let raw = |options: &[(&str, Value)]| InnerNode {
            driver: "raw".into(),
            raw_options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        };
        assert_eq!(s.inner, [raw(&[])]);
        assert_eq!(s.location, Location::File("A".into()));
        // Each raw node takes its own window; other formats leave them over.
        let s = ImageSpec::parse(
            r#"json:{"driver":"raw","size":1024,"file":{"driver":"raw","offset":"1k","file":{"driver":"qcow2","file":{"filename":"q"}}}}"#,
            false,
        )
        .unwrap();
        assert_eq!(s.raw_options, [("size".to_string(), json!(1024))]);
        assert_eq!(
            s.inner,
            [
                raw(&[("offset", json!("1k"))]),
                InnerNode {
                    driver: "qcow2".into(),
                    raw_options: Vec::new(),
                }
            ]
        );
        assert_eq!(
            message(
                r#"json:{"driver":"raw","file":{"driver":"qcow2","offset":1,"file":{"filename":"q"}}}"#,
                false
            ),
            "Block format 'qcow2' does not support the option 'offset'"
        );
        let probed =
            ImageSpec::parse(r#"json:{"offset":512,"file":{"filename":"q"}}"#, false).unwrap();
        assert_eq!(probed.leftover_option("raw"), None);
        assert_eq!(probed.leftover_option("qcow2").as_deref(), Some("offset"));
        let qcow2 = ImageSpec::parse("driver=qcow2,size=1,file.filename=q", true).unwrap();
        assert_eq!(qcow2.leftover_option("qcow2").as_deref(), Some("size"));
    }

    #[test]
    fn recognises_rbd_names_in_every_form() {
        let legacy = ImageSpec::parse("rbd:p/i@s", false).unwrap();
        assert!(
            matches!(&legacy.location, Location::Rbd(r) if r.pool == "p" && r.snapshot() == Some("s"))
        );
        assert_eq!(legacy.format, None);
        let opts = ImageSpec::parse("driver=rbd,pool=p,image=i", true).unwrap();
        assert_eq!(opts.format.as_deref(), Some("rbd"));
        let json = ImageSpec::parse(
            r#"json:{"driver":"raw","file":{"driver":"rbd","pool":"p","image":"i"}}"#,
            false,
        )
        .unwrap();
        assert!(matches!(&json.location, Location::Rbd(r) if r.image == "i"));
        assert_eq!(json.format.as_deref(), Some("raw"));
        let servers = ImageSpec::parse(
            r#"json:{"driver":"rbd","pool":"p","image":"i","server":[{"host":"h","port":"1"}]}"#,
            false,
        )
        .unwrap();
        assert!(matches!(&servers.location, Location::Rbd(r) if r.settings[0].1 == "h:1"));
    }
}
