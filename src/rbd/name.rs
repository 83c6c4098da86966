//! RBD image names, parsed exactly as QEMU's rbd driver parses them.
//!
//! Legacy form: `rbd:pool[/namespace]/image[@snap][:key=value[:key=value...]]`.
//! A backslash makes the next character literal (so `\:`, `\@`, `\/`,
//! `\\`); tokens are split left to right on unescaped delimiters, then
//! unescaped. `conf` and `id` are ours, and so is rbdimg's `store` (the
//! embedded store's directory); every other pair goes to the cluster
//! configuration in order. Structured form: the keys of QEMU's
//! `BlockdevOptionsRbd` (`pool`, `namespace`, `image`, `snapshot`, `user`,
//! `conf`, `server.N.host/port`, `auth-client-required.N`), from `json:{...}`
//! or `--image-opts driver=rbd,...`.

use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::rados::config::ClientConfig;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RbdSpec {
    pub pool: String,
    /// Absent when given in structured form without one; "" from the legacy form.
    pub namespace: Option<String>,
    pub image: String,
    /// `None` or an empty name: the image head.
    pub snapshot: Option<String>,
    /// `id=` / `user`: the client id (client.<user>).
    pub user: Option<String>,
    pub conf: Option<String>,
    /// Cluster configuration overrides, in the order given.
    pub settings: Vec<(String, String)>,
    /// `store=`: the embedded store's directory (not a Ceph setting).
    pub store: Option<String>,
    /// `encrypt.format` and `encrypt.key-secret`: the librbd encryption to
    /// load (luks, luks2, luks-any) and the secret holding its passphrase.
    pub encryption: Option<Box<(String, String)>>,
}

impl RbdSpec {
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("")
    }

    /// The snapshot to open, if any (an empty `@` means the head).
    pub fn snapshot(&self) -> Option<&str> {
        self.snapshot.as_deref().filter(|s| !s.is_empty())
    }

    /// What the RADOS client is configured from.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            user: self.user.clone(),
            conf: self.conf.clone(),
            settings: self.settings.clone(),
            store: self.store.clone(),
        }
    }

    /// The legacy `rbd:pool[/namespace]/image[@snap]` name, escaped so that
    /// [`parse_legacy`] reads it back; `with_options` adds the connection
    /// options (`id`, `conf`, `store`, settings) that reach its cluster.
    pub fn legacy_name(&self, with_options: bool) -> String {
        let escape = |text: &str, specials: &[char]| -> String {
            let mut out = String::with_capacity(text.len());
            for c in text.chars() {
                if c == '\\' || specials.contains(&c) {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        };
        let part = |text: &str| escape(text, &['/', ':', '@']);
        let mut name = format!("rbd:{}/", part(&self.pool));
        if !self.namespace().is_empty() {
            name.push_str(&part(self.namespace()));
            name.push('/');
        }
        name.push_str(&part(&self.image));
        if let Some(snap) = self.snapshot() {
            name.push('@');
            name.push_str(&part(snap));
        }
        if with_options {
            let value = |text: &str| escape(text, &[':', '@']);
            let mut options: Vec<(&str, &str)> = Vec::new();
            if let Some(user) = &self.user {
                options.push(("id", user));
            }
            if let Some(conf) = &self.conf {
                options.push(("conf", conf));
            }
            if let Some(store) = &self.store {
                options.push(("store", store));
            }
            options.extend(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            for (key, v) in options {
                name.push_str(&format!(":{}={}", escape(key, &[':', '@', '=']), value(v)));
            }
        }
        name
    }

    /// The `json:{...}` name QEMU shows for an rbd node: its strong options.
    pub fn json_filename(&self) -> String {
        let mut m = Map::new();
        m.insert("driver".into(), json!("rbd"));
        m.insert("pool".into(), json!(self.pool));
        if let Some(ns) = &self.namespace {
            m.insert("namespace".into(), json!(ns));
        }
        m.insert("image".into(), json!(self.image));
        if let Some(conf) = &self.conf {
            m.insert("conf".into(), json!(conf));
        }
        if let Some(store) = &self.store {
            m.insert("store".into(), json!(store));
        }
        if let Some(snap) = &self.snapshot {
            m.insert("snapshot".into(), json!(snap));
        }
        if let Some(user) = &self.user {
            m.insert("user".into(), json!(user));
        }
        format!(
            "json:{}",
            crate::qjson::to_compact_string(&Value::Object(m))
        )
    }
}

/// True for names this driver owns.
pub fn is_rbd_name(name: &str) -> bool {
    name.starts_with("rbd:")
}

/// Position of the first unescaped `delim` in `s`.
fn find_unescaped(s: &str, delim: char) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == delim {
            return Some(i);
        }
        if c == '\\' && chars.clone().next().is_some() {
            chars.next();
        }
    }
    None
}

/// Splits at the first unescaped `delim`: (token, rest after the delimiter).
fn next_token(s: &str, delim: char) -> (&str, Option<&str>) {
    match find_unescaped(s, delim) {
        Some(i) => (&s[..i], Some(&s[i + delim.len_utf8()..])),
        None => (s, None),
    }
}

/// Drops each backslash that has a character after it.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\'
            && let Some(&next) = chars.peek()
        {
            out.push(next);
            chars.next();
            continue;
        }
        out.push(c);
    }
    out
}

/// Parses the legacy `rbd:` filename.
pub fn parse_legacy(name: &str) -> Result<RbdSpec> {
    let body = name
        .strip_prefix("rbd:")
        .ok_or_else(|| Error::invalid("File name must start with 'rbd:'"))?;
    let (pool, rest) = next_token(body, '/');
    let rest = rest.ok_or_else(|| Error::invalid("Pool name is required"))?;
    let mut spec = RbdSpec {
        pool: unescape(pool),
        ..Default::default()
    };
    // QEMU looks for '@' in the whole remainder, key/value pairs included.
    let (image_part, options) = if find_unescaped(rest, '@').is_some() {
        let (image, after) = next_token(rest, '@');
        let (snap, options) = next_token(after.unwrap_or(""), ':');
        spec.snapshot = Some(unescape(snap));
        (image, options)
    } else {
        next_token(rest, ':')
    };
    let image = match next_token(image_part, '/') {
        (ns, Some(image)) => {
            spec.namespace = Some(unescape(ns));
            image
        }
        (image, None) => {
            spec.namespace = Some(String::new());
            image
        }
    };
    spec.image = unescape(image);
    let mut options = options;
    while let Some(list) = options {
        let (key, value_part) = next_token(list, '=');
        let Some(value_part) = value_part else {
            return Err(Error::invalid(format!("conf option {key} has no value")));
        };
        let key = unescape(key);
        let (value, rest) = next_token(value_part, ':');
        let value = unescape(value);
        match key.as_str() {
            "conf" => spec.conf = Some(value),
            "id" => spec.user = Some(value),
            "store" => spec.store = Some(value),
            _ => spec.settings.push((key, value)),
        }
        options = rest;
    }
    Ok(spec)
}

/// Builds a spec from structured options (flattened `key=value` pairs).
pub fn parse_structured(pairs: &[(String, String)]) -> Result<RbdSpec> {
    let mut spec = RbdSpec::default();
    let (mut pool, mut image) = (None, None);
    let mut servers: Vec<(Option<String>, Option<String>)> = Vec::new();
    let mut auth: Vec<(usize, String)> = Vec::new();
    let (mut encrypt_format, mut key_secret) = (None, None);
    for (key, value) in pairs {
        let indexed = |prefix: &str| -> Option<(usize, String)> {
            let rest = key.strip_prefix(prefix)?;
            let (index, field) = rest.split_once('.').unwrap_or((rest, ""));
            Some((index.parse().ok()?, field.to_string()))
        };
        match key.as_str() {
            "driver" => {}
            "pool" => pool = Some(value.clone()),
            "image" => image = Some(value.clone()),
            "namespace" => spec.namespace = Some(value.clone()),
            "snapshot" => spec.snapshot = Some(value.clone()),
            "user" => spec.user = Some(value.clone()),
            "conf" => spec.conf = Some(value.clone()),
            "store" => spec.store = Some(value.clone()),
            "encrypt.format" => encrypt_format = Some(value.clone()),
            "encrypt.key-secret" => key_secret = Some(value.clone()),
            _ => {
                if let Some((i, field)) = indexed("server.") {
                    if servers.len() <= i {
                        servers.resize(i + 1, (None, None));
                    }
                    match field.as_str() {
                        "host" => servers[i].0 = Some(value.clone()),
                        "port" => servers[i].1 = Some(value.clone()),
                        _ => {
                            return Err(Error::invalid(format!("Parameter '{key}' is unexpected")));
                        }
                    }
                } else if let Some((i, field)) =
                    indexed("auth-client-required.").filter(|(_, f)| f.is_empty())
                {
                    let _ = field;
                    if value != "cephx" && value != "none" {
                        return Err(Error::invalid(format!(
                            "Parameter 'null' does not accept value '{value}'"
                        )));
                    }
                    auth.push((i, value.clone()));
                } else {
                    return Err(Error::invalid(format!("Parameter '{key}' is unexpected")));
                }
            }
        }
    }
    spec.pool = pool.ok_or_else(|| Error::invalid("Parameter 'pool' is missing"))?;
    spec.image = image.ok_or_else(|| Error::invalid("Parameter 'image' is missing"))?;
    spec.encryption = match (encrypt_format, key_secret) {
        (None, None) => None,
        (Some(f), _) if !["luks", "luks2", "luks-any"].contains(&f.as_str()) => {
            return Err(Error::invalid(format!(
                "Parameter 'format' does not accept value '{f}'"
            )));
        }
        (None, Some(_)) => return Err(Error::invalid("Parameter 'encrypt.format' is missing")),
        (Some(_), None) => {
            return Err(Error::invalid("Parameter 'encrypt.key-secret' is missing"));
        }
        (Some(f), Some(s)) => Some(Box::new((f, s))),
    };
    if !servers.is_empty() {
        let mut hosts = Vec::new();
        for (i, (host, port)) in servers.into_iter().enumerate() {
            let host = host
                .ok_or_else(|| Error::invalid(format!("Parameter 'server.{i}.host' is missing")))?;
            let port = port
                .ok_or_else(|| Error::invalid(format!("Parameter 'server.{i}.port' is missing")))?;
            hosts.push(if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            });
        }
        spec.settings.push(("mon_host".into(), hosts.join(";")));
    }
    if !auth.is_empty() {
        auth.sort();
        let methods: Vec<_> = auth.into_iter().map(|(_, m)| m).collect();
        spec.settings
            .push(("auth_client_required".into(), methods.join(";")));
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> RbdSpec {
        parse_legacy(s).unwrap()
    }

    #[test]
    fn pool_and_image() {
        let s = parse("rbd:rbd/vm1");
        assert_eq!(
            (
                s.pool.as_str(),
                s.namespace(),
                s.image.as_str(),
                s.snapshot()
            ),
            ("rbd", "", "vm1", None)
        );
        assert_eq!(s.namespace.as_deref(), Some(""));
    }

    #[test]
    fn namespace_splits_at_the_first_slash() {
        let s = parse("rbd:rbd/ns1/sub/img");
        assert_eq!((s.namespace(), s.image.as_str()), ("ns1", "sub/img"));
    }

    #[test]
    fn snapshots_and_empty_snapshots() {
        assert_eq!(parse("rbd:p/i@s1").snapshot(), Some("s1"));
        let head = parse("rbd:p/i@");
        assert_eq!(
            (head.snapshot.as_deref(), head.snapshot()),
            (Some(""), None)
        );
        let s = parse("rbd:p/i@s1:id=admin");
        assert_eq!(
            (s.snapshot(), s.user.as_deref()),
            (Some("s1"), Some("admin"))
        );
    }

    #[test]
    fn escapes() {
        let s = parse(r"rbd:po\/ol/im\:a\@ge\\x@sn\:ap");
        assert_eq!(
            (s.pool.as_str(), s.image.as_str(), s.snapshot()),
            ("po/ol", r"im:a@ge\x", Some("sn:ap"))
        );
        // Any escaped character is literal; a trailing lone backslash stays.
        assert_eq!(parse(r"rbd:p/\q\").image, r"q\");
    }

    #[test]
    fn key_value_pairs() {
        let s = parse(r"rbd:p/i:conf=/etc/c.conf:id=bob:mon_host=127.0.0.1\:6789:a=b=c:key=x\:y");
        assert_eq!(s.conf.as_deref(), Some("/etc/c.conf"));
        assert_eq!(s.user.as_deref(), Some("bob"));
        assert_eq!(
            s.settings,
            vec![
                ("mon_host".into(), "127.0.0.1:6789".into()),
                ("a".into(), "b=c".into()),
                ("key".into(), "x:y".into())
            ]
        );
        assert!(parse("rbd:p/i:auth_supported=cephx;none").settings[0].0 == "auth_supported");
    }

    #[test]
    fn qemu_errors() {
        let err = |s: &str| parse_legacy(s).unwrap_err().to_string();
        assert_eq!(err("rbd:"), "Pool name is required");
        assert_eq!(err("rbd:rbd"), "Pool name is required");
        assert_eq!(err("rbd:rbd/img1:conf"), "conf option conf has no value");
        assert_eq!(err("rbd:rbd/img1::"), "conf option : has no value");
        assert_eq!(
            err("rbd:rbd/i:mon_host=127.0.0.1:6789"),
            "conf option 6789 has no value"
        );
        assert_eq!(err("file.img"), "File name must start with 'rbd:'");
    }

    #[test]
    fn at_sign_in_a_value_breaks_the_parse_like_qemu() {
        let s = parse("rbd:rbd/img1:conf=a@b");
        assert_eq!((s.image.as_str(), s.snapshot()), ("img1:conf=a", Some("b")));
        assert_eq!(
            parse(r"rbd:rbd/img1:conf=a\@b").conf.as_deref(),
            Some("a@b")
        );
    }

    #[test]
    fn structured_options() {
        let pairs = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let s = parse_structured(&pairs(&[
            ("driver", "rbd"),
            ("pool", "p"),
            ("image", "i"),
            ("snapshot", "s"),
            ("user", "u"),
            ("server.0.host", "::1"),
            ("server.0.port", "6789"),
            ("server.1.host", "10.0.0.1"),
            ("server.1.port", "3300"),
            ("auth-client-required.0", "cephx"),
        ]))
        .unwrap();
        assert_eq!(s.namespace, None);
        assert_eq!(
            s.settings[0],
            ("mon_host".into(), "[::1]:6789;10.0.0.1:3300".into())
        );
        assert_eq!(
            s.settings[1],
            ("auth_client_required".into(), "cephx".into())
        );
        let err = parse_structured(&pairs(&[("image", "i")])).unwrap_err();
        assert_eq!(err.to_string(), "Parameter 'pool' is missing");
        let err =
            parse_structured(&pairs(&[("pool", "p"), ("image", "i"), ("bogus", "1")])).unwrap_err();
        assert_eq!(err.to_string(), "Parameter 'bogus' is unexpected");
    }

    #[test]
    fn store_is_not_a_ceph_setting() {
        let s = parse(r"rbd:rbd/vm1:store=/tmp/s\:1:rbd_default_features=1");
        assert_eq!(s.store.as_deref(), Some("/tmp/s:1"));
        assert_eq!(
            s.settings,
            vec![("rbd_default_features".into(), "1".into())]
        );
        let pairs = [("pool", "p"), ("image", "i"), ("store", "/x")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>();
        assert_eq!(
            parse_structured(&pairs).unwrap().store.as_deref(),
            Some("/x")
        );
        assert!(s.json_filename().contains(r#""store": "/tmp/s:1""#));
    }

    #[test]
    fn legacy_names_read_back() {
        for name in [
            "rbd:rbd/golden@base",
            r"rbd:p\/o/ns/im\:g@s\@1:id=bob:conf=/etc/c.conf:store=/tmp/s\:1:mon_host=1.2.3.4\:6789",
            "rbd:p/i",
        ] {
            let spec = parse(name);
            assert_eq!(spec.legacy_name(true), name);
            assert_eq!(parse(&spec.legacy_name(true)), spec);
        }
        let spec = parse("rbd:p/ns/i@s:conf=/x");
        assert_eq!(spec.legacy_name(false), "rbd:p/ns/i@s");
    }

    #[test]
    fn json_filename_matches_qemu() {
        let s = parse("rbd:rbd/img1");
        assert_eq!(
            s.json_filename(),
            r#"json:{"pool": "rbd", "image": "img1", "driver": "rbd", "namespace": ""}"#
        );
    }
}
