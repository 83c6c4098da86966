//! `-o key=value,...` options the way QEMU's QemuOpts reads them: commas
//! separate options, a doubled comma is a literal comma, several `-o` merge,
//! and each format declares which options it takes, with their types and
//! defaults (which also drive the "Formatting ..." line of `create`).

use crate::block::preallocation::Preallocation;
use crate::error::{Error, Result};
use crate::size::{SizeError, parse_size};
use crate::strtox::{NumError, strtou64};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptType {
    Str,
    Size,
    Number,
    Bool,
}

/// One option a format accepts (QEMU's `QemuOptDesc`).
#[derive(Debug, Clone, Copy)]
pub struct OptDesc {
    pub name: &'static str,
    pub ty: OptType,
    pub help: &'static str,
    /// Printed on the "Formatting" line even when not given.
    pub default: Option<&'static str>,
}

impl OptDesc {
    pub const fn new(name: &'static str, ty: OptType, help: &'static str) -> Self {
        OptDesc {
            name,
            ty,
            help,
            default: None,
        }
    }

    pub const fn with_default(mut self, default: &'static str) -> Self {
        self.default = Some(default);
        self
    }
}

/// The options given with `-o`, in the order given (a later value wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    values: Vec<(String, String)>,
    help: bool,
}

/// The hint QEMU adds under a bad size value.
pub const SIZE_HINT: &str = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n\
                             and exabytes, respectively.";

impl Options {
    /// Parses one or more `-o` arguments as qemu-img does: each must be a
    /// valid list on its own, then they are joined with commas.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Options> {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        if let Some(bad) = args.iter().find(|a| !is_valid_list(a)) {
            return Err(Error::invalid(format!("Invalid option list: {bad}")));
        }
        let joined = args.join(",");
        Ok(Options {
            values: parse_list(&joined),
            help: has_help(&joined),
        })
    }

    /// True when the user asked for the option list (`-o help` / `-o ?`).
    pub fn wants_help(&self) -> bool {
        self.help
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.retain(|(k, _)| k != key);
        self.values.push((key.to_string(), value.into()));
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Fails on the first key no descriptor declares, and on values that
    /// do not parse as their declared type.
    pub fn validate(&self, descs: &[OptDesc]) -> Result<()> {
        for (key, value) in &self.values {
            let desc = descs
                .iter()
                .find(|d| d.name == key)
                .ok_or_else(|| Error::invalid(format!("Invalid parameter '{key}'")))?;
            check_value(desc, value)?;
        }
        Ok(())
    }

    /// A size option, worded as QEMU's `parse_option_size` words what it
    /// cannot read and what does not fit in 64 bits (negative sizes too).
    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                parse_size(v).map_err(|e| match e {
                    SizeError::Overflow => {
                        Error::invalid(format!("Value '{v}' is out of range for parameter '{key}'"))
                    }
                    SizeError::Invalid => Error::invalid(format!(
                        "Parameter '{key}' expects a non-negative number below 2^64\n{SIZE_HINT}"
                    )),
                })
            })
            .transpose()
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.get(key).map(|v| parse_bool(key, v)).transpose()
    }

    pub fn number(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                // QemuOpts' parse_option_number.
                strtou64(v).map_err(|e| match e {
                    NumError::Range => {
                        Error::invalid(format!("Value '{v}' is too large for parameter '{key}'"))
                    }
                    NumError::Invalid => {
                        Error::invalid(format!("Parameter '{key}' expects a number"))
                    }
                })
            })
            .transpose()
    }

    /// The options not declared in `descs`: what a format passes on to the
    /// storage it creates (QEMU deletes a driver's own options from the
    /// list before the protocol's create sees it).
    pub fn without(&self, descs: &[OptDesc]) -> Options {
        Options {
            values: self
                .values
                .iter()
                .filter(|(k, _)| !descs.iter().any(|d| d.name == k))
                .cloned()
                .collect(),
            help: false,
        }
    }

    /// The `preallocation` option, worded as QEMU words a bad value.
    pub fn preallocation(&self) -> Result<Preallocation> {
        match self.get("preallocation") {
            None => Ok(Preallocation::Off),
            Some(v) => Preallocation::parse(v)
                .ok_or_else(|| Error::invalid(format!("invalid parameter value: {v}"))),
        }
    }

    /// The `key=value` list of the "Formatting" line, in descriptor order:
    /// given values (sizes and numbers normalised) and declared defaults.
    pub fn describe(&self, descs: &[OptDesc]) -> String {
        let mut parts = Vec::new();
        for desc in descs {
            let text = match (self.get(desc.name), desc.ty) {
                // QEMU prints sizes as signed 64-bit numbers.
                (Some(v), OptType::Size) => parse_size(v)
                    .map(|n| (n as i64).to_string())
                    .unwrap_or_else(|_| v.to_string()),
                (Some(v), OptType::Number) => v
                    .parse::<u64>()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| v.to_string()),
                (Some(v), OptType::Str) => v.replace(',', ",,"),
                (Some(v), OptType::Bool) => v.to_string(),
                (None, _) => match desc.default {
                    Some(d) => d.to_string(),
                    None => continue,
                },
            };
            parts.push(format!("{}={}", desc.name, text));
        }
        parts.join(" ")
    }
}

fn check_value(desc: &OptDesc, value: &str) -> Result<()> {
    let probe = Options {
        values: vec![(desc.name.to_string(), value.to_string())],
        help: false,
    };
    match desc.ty {
        OptType::Str => Ok(()),
        OptType::Size => probe.size(desc.name).map(|_| ()),
        OptType::Number => probe.number(desc.name).map(|_| ()),
        OptType::Bool => probe.bool(desc.name).map(|_| ()),
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool> {
    match value {
        "on" | "yes" | "true" | "y" => Ok(true),
        "off" | "no" | "false" | "n" => Ok(false),
        _ => Err(Error::invalid(format!(
            "Parameter '{key}' expects 'on' or 'off'"
        ))),
    }
}

/// qemu-img's `is_valid_option_list`: not empty, no leading comma, and
/// no odd run of trailing commas (a lone trailing comma is not an escape).
fn is_valid_list(text: &str) -> bool {
    let trailing = text.len() - text.trim_end_matches(',').len();
    !text.is_empty() && !text.starts_with(',') && trailing.is_multiple_of(2)
}

/// QemuOpts' `get_opt_value`: text up to the next single comma, with
/// ",," read as a literal comma; returns the value and the rest (which
/// starts at that comma, or is empty).
fn opt_value(text: &str) -> (String, &str) {
    let mut value = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(',') {
        value.push_str(&rest[..i]);
        if rest[i + 1..].starts_with(',') {
            value.push(',');
            rest = &rest[i + 2..];
        } else {
            return (value, &rest[i..]);
        }
    }
    value.push_str(rest);
    (value, "")
}

/// One `key=value` item of a QemuOpts list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptItem {
    pub key: String,
    pub value: String,
    /// Given as a bare `key` or `nokey`, a form QEMU warns about in
    /// `--image-opts`.
    pub short_form: bool,
}

/// QemuOpts' `opts_do_parse`: `key=value` items, where only values
/// unescape ",,"; a bare `key` is `key=on` and a bare `nokey` is
/// `key=off`; `id` is dropped. With `implied`, a first item without `=` is
/// that key's value (`--image-opts disk.img` is `file=disk.img`).
pub fn parse_items(text: &str, implied: Option<&str>) -> Vec<OptItem> {
    let mut items = Vec::new();
    let mut rest = text;
    let mut implied = implied;
    while !rest.is_empty() {
        let name_len = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = &rest[..name_len];
        let item = |key: &str, value: String, short_form| OptItem {
            key: key.to_string(),
            value,
            short_form,
        };
        let (item, after) = if rest[name_len..].starts_with('=') {
            let (value, after) = opt_value(&rest[name_len + 1..]);
            (item(name, value, false), after)
        } else if let Some(key) = implied {
            let (value, after) = opt_value(rest);
            (item(key, value, false), after)
        } else {
            let after = &rest[name_len..];
            match name.strip_prefix("no") {
                Some(flag) => (item(flag, "off".into(), true), after),
                None => (item(name, "on".into(), true), after),
            }
        };
        if item.key != "id" {
            items.push(item);
        }
        implied = None;
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    items
}

/// The items of a `-o` list as key/value pairs.
pub fn parse_list(text: &str) -> Vec<(String, String)> {
    parse_items(text, None)
        .into_iter()
        .map(|i| (i.key, i.value))
        .collect()
}

/// QemuOpts' `has_help_option`: some comma-separated item is `help` or `?`.
fn has_help(text: &str) -> bool {
    let mut rest = text;
    while !rest.is_empty() {
        let (item, after) = opt_value(rest);
        if item == "help" || item == "?" {
            return true;
        }
        rest = after.strip_prefix(',').unwrap_or(after);
    }
    false
}

/// The text `-o help` prints. Without a filename qemu-img lists only the
/// format's own options (`format` is then named) and says so. Options are
/// listed by name, as QEMU sorts them.
pub fn help_text(format: Option<&str>, descs: &[OptDesc]) -> String {
    let mut out = match format {
        Some(f) => format!("Supported {f} options:\n"),
        None => "Supported options:\n".to_string(),
    };
    out.push_str(&option_lines(descs));
    if format.is_some() {
        out.push_str("\nThe protocol level may support further options.\nSpecify the target filename to include those options.\n");
    }
    out
}

/// One "  name=<type>  - help" line per option, sorted by name, as
/// QEMU's `qemu_opts_print_help` prints them.
pub fn option_lines(descs: &[OptDesc]) -> String {
    let mut out = String::new();
    let mut descs = descs.to_vec();
    descs.sort_by_key(|d| d.name);
    for desc in descs {
        let kind = match desc.ty {
            OptType::Str => "str",
            OptType::Size => "size",
            OptType::Number => "num",
            OptType::Bool => "bool (on/off)",
        };
        let left = format!("{}=<{}>", desc.name, kind);
        out.push_str(&format!("  {left:<22} - {}\n", desc.help));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DESCS: &[OptDesc] = &[
        OptDesc::new("size", OptType::Size, "Virtual disk size"),
        OptDesc::new("backing_file", OptType::Str, "File name of a base image"),
        OptDesc::new("lazy_refcounts", OptType::Bool, "Postpone refcount updates")
            .with_default("off"),
    ];

    #[test]
    fn merges_and_unescapes() {
        let o = Options::parse(&["size=1k,backing_file=a,,b", "size=2k"]).unwrap();
        assert_eq!(o.get("backing_file"), Some("a,b"));
        assert_eq!(o.size("size").unwrap(), Some(2048));
        assert_eq!(
            o.describe(DESCS),
            "size=2048 backing_file=a,,b lazy_refcounts=off"
        );
    }

    #[test]
    fn rejects_unknown_and_mistyped() {
        let o = Options::parse(&["foo=bar"]).unwrap();
        assert_eq!(
            o.validate(DESCS).unwrap_err().to_string(),
            "Invalid parameter 'foo'"
        );
        let o = Options::parse(&["lazy_refcounts=maybe"]).unwrap();
        assert_eq!(
            o.validate(DESCS).unwrap_err().to_string(),
            "Parameter 'lazy_refcounts' expects 'on' or 'off'"
        );
        let o = Options::parse(&["size=1Q"]).unwrap();
        assert!(
            o.validate(DESCS)
                .unwrap_err()
                .to_string()
                .starts_with("Parameter 'size' expects")
        );
    }

    #[test]
    fn help_is_recognised() {
        assert!(Options::parse(&["help"]).unwrap().wants_help());
        assert!(Options::parse(&["?"]).unwrap().wants_help());
        assert!(Options::parse(&["size=1", "help"]).unwrap().wants_help());
        assert!(!Options::parse(&["nohelp"]).unwrap().wants_help());
        assert!(!Options::parse(&["x=help"]).unwrap().wants_help());
    }

    #[test]
    fn malformed_lists_are_refused_as_qemu_img_refuses_them() {
        for bad in [",", "", ",size=1", "size=1,", "size=1,,,"] {
            assert_eq!(
                Options::parse(&["size=1", bad]).unwrap_err().to_string(),
                format!("Invalid option list: {bad}")
            );
        }
        assert!(Options::parse(&["size=1,,"]).is_ok());
    }

    #[test]
    fn items_split_as_qemu_opts_splits_them() {
        let pairs = |text: &str| parse_list(text);
        assert_eq!(
            pairs("a,,b=c"),
            [("a", "on"), ("", "on"), ("b", "c")].map(|(k, v)| (k.into(), v.into()))
        );
        assert_eq!(
            pairs("nolazy,id=x,k=v,,w,"),
            [("lazy", "off"), ("k", "v,w")].map(|(k, v)| (k.into(), v.into()))
        );
        assert_eq!(pairs("=x"), [("".into(), "x".into())]);
        let items = parse_items("a,,b.img,driver=raw,nolocking", Some("file"));
        let keys: Vec<_> = items
            .iter()
            .map(|i| (&*i.key, &*i.value, i.short_form))
            .collect();
        assert_eq!(
            keys,
            [
                ("file", "a,b.img", false),
                ("driver", "raw", false),
                ("locking", "off", true)
            ]
        );
    }
}
