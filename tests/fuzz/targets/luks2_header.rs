//! LUKS2 headers, as librbd's RBD encryption finds them at the start of an
//! image: the input is the start of a volume (zero-filled past its end, as
//! a short object reads). Whatever parses must describe itself (`info`);
//! a volume whose key slots and digests are cheap to try is also unlocked
//! with a wrong passphrase, which must fail cleanly.

use rbdimg::formats::luks::luks2::{self, Header};
use serde_json::Value;

use crate::padded;

/// The binary header before the JSON metadata.
const BINARY_LEN: usize = 4096;

/// True when the header parsed.
pub fn run(data: &[u8]) -> bool {
    let read = |buf: &mut [u8], offset: u64| padded::read(data, buf, offset);
    let Ok(header) = Header::parse(&read) else {
        return false;
    };
    let _ = header.info();
    if cheap(data) {
        assert!(luks2::open(&read, b"not the passphrase").is_err());
    }
    true
}

/// Whether every KDF the metadata names is cheap to run: a real header's
/// slot takes seconds and up to 4 GiB (cryptsetup's argon2 limit), which
/// is the header's right but no fuzz case's.
fn cheap(data: &[u8]) -> bool {
    let json = data.get(BINARY_LEN..).unwrap_or_default();
    let end = json.iter().position(|&b| b == 0).unwrap_or(json.len());
    serde_json::from_slice::<Value>(&json[..end]).is_ok_and(|v| small_costs(&v))
}

fn small_costs(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().all(|(key, value)| {
            let limit = match key.as_str() {
                "iterations" => 2000,
                "memory" => 1024,
                "time" => 4,
                "cpus" => 4,
                _ => return small_costs(value),
            };
            value.as_u64().is_some_and(|n| n <= limit)
        }),
        Value::Array(items) => items.iter().all(small_costs),
        _ => true,
    }
}
