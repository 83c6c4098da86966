//! `-o key=value,...` options the way QEMU's QemuOpts reads them: commas
//! separate options, a doubled comma is a literal comma, several `-o` merge,
//! and each format declares which options it takes, with their types and
//! defaults (which also drive the "Formatting ..." line of `create`).

use crate::block::driver::Preallocation;
use crate::error::{Error, Result};
use crate::size::parse_size;

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
}

/// The hint QEMU adds under a bad size value.
pub const SIZE_HINT: &str = "Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n\
                             and exabytes, respectively.";

impl Options {
    /// Parses one or more `-o` arguments.
    pub fn parse<S: AsRef<str>>(args: &[S]) -> Result<Options> {
        let mut values = Vec::new();
        for arg in args {
            for item in split_escaped(arg.as_ref()) {
                if item.is_empty() {
                    continue;
                }
                match item.split_once('=') {
                    Some((k, v)) => values.push((k.to_string(), v.to_string())),
                    // QemuOpts: a bare key is a boolean "on" ("help" is handled by callers).
                    None => values.push((item.clone(), "on".to_string())),
                }
            }
        }
        Ok(Options { values })
    }

    /// True when the user asked for the option list (`-o help` / `-o ?`).
    pub fn wants_help(&self) -> bool {
        self.values
            .iter()
            .any(|(k, v)| (k == "help" || k == "?") && v == "on")
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

    pub fn size(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| {
                parse_size(v).map_err(|_| {
                    Error::invalid(format!(
                        "Parameter '{key}' expects a non-negative number below 2^64\n{SIZE_HINT}"
                    ))
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
                v.parse::<u64>()
                    .map_err(|_| Error::invalid(format!("Parameter '{key}' expects a number")))
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
                (Some(v), OptType::Size) => parse_size(v)
                    .map(|n| n.to_string())
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

/// Splits on single commas; ",," stands for a literal comma.
pub fn split_escaped(text: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ',' {
            if chars.peek() == Some(&',') {
                chars.next();
                items.last_mut().expect("never empty").push(',');
            } else {
                items.push(String::new());
            }
        } else {
            items.last_mut().expect("never empty").push(c);
        }
    }
    items
}

/// The text `-o help` prints. Without a filename qemu-img lists only the
/// format's own options (`format` is then named) and says so. Options are
/// listed by name, as QEMU sorts them.
pub fn help_text(format: Option<&str>, descs: &[OptDesc]) -> String {
    let mut out = match format {
        Some(f) => format!("Supported {f} options:\n"),
        None => "Supported options:\n".to_string(),
    };
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
    if format.is_some() {
        out.push_str("\nThe protocol level may support further options.\nSpecify the target filename to include those options.\n");
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
    }
}
