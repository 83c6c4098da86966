//! `--object TYPE,id=ID,...`: QEMU's user-creatable objects as qemu-img
//! reads them (`user_creatable_process_cmdline`): a keyval string with the
//! type as its implied first key, checked against QEMU's object types and
//! each type's properties, in QEMU's order and words. rbdimg creates
//! `secret` objects (the only kind its images use); the other types
//! qemu-img creates are refused by name.

use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::secret::{self, SecretSpec};

/// Every value of QEMU's `ObjectType` enum (qapi/qom.json, 10.0).
const OBJECT_TYPES: &[&str] = &[
    "authz-list",
    "authz-listfile",
    "authz-pam",
    "authz-simple",
    "can-bus",
    "can-host-socketcan",
    "colo-compare",
    "cryptodev-backend",
    "cryptodev-backend-builtin",
    "cryptodev-backend-lkcf",
    "cryptodev-vhost-user",
    "dbus-vmstate",
    "filter-buffer",
    "filter-dump",
    "filter-mirror",
    "filter-redirector",
    "filter-replay",
    "filter-rewriter",
    "input-barrier",
    "input-linux",
    "iommufd",
    "iothread",
    "main-loop",
    "memory-backend-epc",
    "memory-backend-file",
    "memory-backend-memfd",
    "memory-backend-ram",
    "memory-backend-shm",
    "pef-guest",
    "pr-manager-helper",
    "qtest",
    "rng-builtin",
    "rng-egd",
    "rng-random",
    "secret",
    "secret_keyring",
    "sev-guest",
    "sev-snp-guest",
    "s390-pv-guest",
    "thread-context",
    "throttle-group",
    "tls-creds-anon",
    "tls-creds-psk",
    "tls-creds-x509",
    "tls-cipher-suites",
    "x-remote-object",
    "x-vfio-user-server",
];

/// The types qemu-img 10.0.2 can create (its `--object help` list).
const QEMU_IMG_TYPES: &[&str] = &[
    "authz-list",
    "authz-list-file",
    "authz-simple",
    "main-loop",
    "pr-manager-helper",
    "secret",
    "secret_keyring",
    "thread-context",
    "throttle-group",
    "tls-creds-anon",
    "tls-creds-psk",
    "tls-creds-x509",
];

/// What processing an `--object` asks of the command.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Print this on stdout and exit 0 (`help`, `TYPE,help`).
    Help(String),
}

/// Creates the object one `--object` argument defines.
pub fn process(text: &str) -> Result<Outcome> {
    let (pairs, help) = keyval_parse(text, "qom-type")?;
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let qom_type = get("qom-type");
    if help {
        return Ok(Outcome::Help(match qom_type {
            None | Some("help") => {
                let mut out = String::from("List of user creatable objects:\n");
                for t in QEMU_IMG_TYPES {
                    out.push_str(&format!("  {t}\n"));
                }
                out
            }
            Some("secret") => "secret options:\n  data=<string>\n  file=<string>\n  \
                               format=<QCryptoSecretFormat>\n  iv=<string>\n  keyid=<string>\n"
                .to_string(),
            Some(other) => {
                return Err(Error::new(
                    ErrorKind::UnsupportedFeature,
                    format!("object type '{other}' is not supported by rbdimg"),
                ));
            }
        }));
    }
    let Some(qom_type) = qom_type else {
        return Err(Error::invalid("Parameter 'qom-type' is missing"));
    };
    if !OBJECT_TYPES.contains(&qom_type) {
        return Err(Error::invalid(format!(
            "Parameter 'qom-type' does not accept value '{qom_type}'"
        )));
    }
    let Some(id) = get("id") else {
        return Err(Error::invalid("Parameter 'id' is missing"));
    };
    if qom_type != "secret" {
        let known = QEMU_IMG_TYPES.contains(&qom_type) || qom_type == "authz-listfile";
        return Err(if known {
            Error::new(
                ErrorKind::UnsupportedFeature,
                format!("object type '{qom_type}' is not supported by rbdimg"),
            )
        } else {
            Error::invalid(format!("invalid object type: {qom_type}"))
        });
    }
    let base64 = match get("format") {
        None | Some("raw") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(Error::invalid(format!(
                "Parameter 'format' does not accept value '{other}'"
            )));
        }
    };
    const MEMBERS: &[&str] = &["qom-type", "id", "data", "file", "format", "keyid", "iv"];
    if let Some((key, _)) = pairs.iter().find(|(k, _)| !MEMBERS.contains(&k.as_str())) {
        let top = key.split('.').next().unwrap_or(key);
        return Err(Error::invalid(format!("Parameter '{top}' is unexpected")));
    }
    if !is_identifier(id) {
        return Err(Error::invalid(
            "Parameter 'id' expects an identifier\n\
             Identifiers consist of letters, digits, '-', '.', '_', starting with a letter.",
        ));
    }
    secret::define(SecretSpec {
        id: id.to_string(),
        data: get("data").map(|d| Zeroizing::new(d.to_string())),
        file: get("file").map(str::to_string),
        base64,
        keyid: get("keyid").map(str::to_string),
        iv: get("iv").map(str::to_string),
    })?;
    Ok(Outcome::Created)
}

/// QEMU's `id_wellformed`.
fn is_identifier(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

/// QEMU's `keyval_parse`: `key=value` items split at single commas (`,,`
/// is a comma in a value), dotted keys of QAPI names, the first item's key
/// implied when it has no `=`, and `help` (or `?`) anywhere asking for
/// help. Returns the items in order, later ones overriding earlier.
fn keyval_parse(text: &str, implied: &str) -> Result<(Vec<(String, String)>, bool)> {
    let mut pairs = Vec::new();
    let mut help = false;
    let mut implied = Some(implied);
    let mut rest = text;
    while !rest.is_empty() {
        let len = rest.find(['=', ',']).unwrap_or(rest.len());
        let at_equals = rest[len..].starts_with('=');
        if len > 0 && !at_equals {
            let word = &rest[..len];
            let after = &rest[len..];
            let after = after.strip_prefix(',').unwrap_or(after);
            if word == "help" || word == "?" {
                help = true;
                rest = after;
                implied = None;
                continue;
            }
            if let Some(key) = implied.take() {
                pairs.push((key.to_string(), word.to_string()));
                rest = after;
                continue;
            }
        }
        implied = None;
        let key = &rest[..len];
        if !valid_key(key) {
            return Err(Error::invalid(format!("Invalid parameter '{key}'")));
        }
        if !at_equals {
            return Err(Error::invalid(format!(
                "Expected '=' after parameter '{key}'"
            )));
        }
        let mut value = String::new();
        let mut chars = rest[len + 1..].char_indices().peekable();
        let mut end = rest.len() - len - 1;
        while let Some((i, c)) = chars.next() {
            if c == ',' {
                if chars.peek().is_some_and(|&(_, n)| n == ',') {
                    chars.next();
                } else {
                    end = i + 1;
                    break;
                }
            }
            value.push(c);
        }
        rest = &rest[(len + 1 + end).min(rest.len())..];
        pairs.push((key.to_string(), value));
    }
    Ok((pairs, help))
}

/// A key of dot-separated fragments, each a QAPI name (a letter, then
/// letters, digits, `-` and `_`) or, after the first, a list index.
fn valid_key(key: &str) -> bool {
    key.split('.').enumerate().all(|(i, fragment)| {
        let mut chars = fragment.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphabetic() => {
                chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            }
            Some(c) if i > 0 && c.is_ascii_digit() => chars.all(|c| c.is_ascii_digit()),
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        process(text).unwrap_err().to_string()
    }

    #[test]
    fn reads_keyval_as_qemu() {
        let (pairs, help) = keyval_parse("secret,id=a,data=x,,y,", "qom-type").unwrap();
        assert!(!help);
        assert_eq!(
            pairs,
            [
                ("qom-type".to_string(), "secret".to_string()),
                ("id".into(), "a".into()),
                ("data".into(), "x,y".into())
            ]
        );
        assert_eq!(error("secret,,x,id=s0"), "Invalid parameter ''");
        assert_eq!(error("secret,id"), "Expected '=' after parameter 'id'");
        assert_eq!(error("secret,id=s,1=1"), "Invalid parameter '1'");
        assert_eq!(error(""), "Parameter 'qom-type' is missing");
        assert_eq!(error("id=x"), "Parameter 'qom-type' is missing");
    }

    #[test]
    fn checks_types_and_members_in_qemu_order() {
        assert_eq!(
            error("foo,id=x"),
            "Parameter 'qom-type' does not accept value 'foo'"
        );
        assert_eq!(error("secret,bogus=1"), "Parameter 'id' is missing");
        assert_eq!(
            error("secret,id=0,format=hex,bogus=1"),
            "Parameter 'format' does not accept value 'hex'"
        );
        assert_eq!(
            error("secret,id=0,bogus=1"),
            "Parameter 'bogus' is unexpected"
        );
        assert_eq!(
            error("secret,id=s,data=x,a.b=1"),
            "Parameter 'a' is unexpected"
        );
        assert!(error("secret,id=0,data=x").starts_with("Parameter 'id' expects an identifier\n"));
        assert_eq!(error("iothread,id=x"), "invalid object type: iothread");
        assert_eq!(
            error("secret,id=obj-s"),
            "Either 'file' or 'data' must be provided"
        );
        assert!(matches!(process("help").unwrap(), Outcome::Help(t) if t.contains("  secret\n")));
        assert!(
            matches!(process("secret,help").unwrap(), Outcome::Help(t) if t.starts_with("secret options:"))
        );
    }
}
