//! Replays a conversation recorded from a real OSD (fixtures/cls/, made by
//! tests/rados/cls_fixtures.rs) against the embedded cls, and requires the
//! same return code and reply bytes for every call.
//!
//! A fixture is one line per step, on objects named in the line:
//!
//! ```text
//! # comment
//! caller <gid> <nonce>              who calls from here on (lock owners)
//! clock <secs> <nsecs>              the OSD's time for the next calls
//! omap <oid> <key> <hex>            state set with `rados setomapval`
//! xattr <oid> <name> <hex>          state set with `rados setxattr`
//! op <oid> create|remove|write_full:<hex> -> <rc>
//! call <oid> <class>.<method> <input hex|-> -> <rc> [<reply hex>]
//! ```
//!
//! Calls are made as `rados_exec` makes them (`cls::exec`): what a failed
//! step changed is dropped, as the OSD drops a failed request.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Caller, ObjectCtx, Staged, exec};
use crate::rados::WriteOp;

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    if text == "-" {
        return Ok(Vec::new());
    }
    if !text.len().is_multiple_of(2) {
        return Err(format!("odd hex {text}"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).map_err(|e| format!("{text}: {e}")))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `0` or a negative errno, as librados returns it.
fn rc<T>(result: &Result<T, i32>) -> i32 {
    match result {
        Ok(_) => 0,
        Err(e) => -e,
    }
}

/// Runs `f` on the object; a failure leaves it as it was.
fn step<T>(obj: &mut Staged, f: impl FnOnce(&mut Staged) -> Result<T, i32>) -> Result<T, i32> {
    let before = obj.clone();
    let result = f(obj);
    if result.is_err() {
        *obj = before;
    }
    result
}

/// Replays one fixture; the error names the first step that differs.
pub fn replay(text: &str) -> Result<(), String> {
    let mut objects: BTreeMap<String, Staged> = BTreeMap::new();
    let mut caller = Caller { gid: 0, nonce: 0 };
    let mut clock = None;
    for (n, line) in text.lines().enumerate() {
        let fail = |what: String| format!("line {}: {line}\n  {what}", n + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let expect_rc = |at: usize| -> Result<i32, String> {
            if words.get(at) != Some(&"->") {
                return Err(fail("no `->`".into()));
            }
            words
                .get(at + 1)
                .and_then(|w| w.parse().ok())
                .ok_or_else(|| fail("no return code".into()))
        };
        match words.as_slice() {
            [] => {}
            [w, ..] if w.starts_with('#') => {}
            ["caller", gid, nonce] => {
                caller = Caller {
                    gid: gid.parse().map_err(|_| fail("bad gid".into()))?,
                    nonce: nonce.parse().map_err(|_| fail("bad nonce".into()))?,
                };
            }
            ["clock", secs, nsecs] => {
                let parse = |w: &str| w.parse().map_err(|_| fail("bad clock".into()));
                clock = Some((parse(secs)?, parse(nsecs)?));
            }
            ["omap", oid, key, value] => {
                let obj = objects.entry(oid.to_string()).or_default();
                obj.omap_set(key, parse_hex(value).map_err(fail)?).unwrap();
            }
            ["xattr", oid, name, value] => {
                let obj = objects.entry(oid.to_string()).or_default();
                obj.xattr_set(name, parse_hex(value).map_err(fail)?)
                    .unwrap();
            }
            ["op", oid, what, ..] => {
                let want = expect_rc(3)?;
                let data;
                let op = match *what {
                    "create" => WriteOp::CreateExclusive,
                    "remove" => WriteOp::Remove,
                    other => match other.strip_prefix("write_full:") {
                        Some(h) => {
                            data = parse_hex(h).map_err(fail)?;
                            WriteOp::WriteFull(&data)
                        }
                        None => return Err(fail(format!("unknown op {other}"))),
                    },
                };
                let obj = objects.entry(oid.to_string()).or_default();
                let got = rc(&step(obj, |o| o.apply(&op)));
                if got != want {
                    return Err(fail(format!("the store returned {got}")));
                }
            }
            ["call", oid, method, input, ..] => {
                let want = expect_rc(4)?;
                let want_out = parse_hex(words.get(6).copied().unwrap_or("-")).map_err(fail)?;
                let (class, method) = method
                    .split_once('.')
                    .ok_or_else(|| fail("no class.method".into()))?;
                let input = parse_hex(input).map_err(fail)?;
                let obj = objects.entry(oid.to_string()).or_default();
                obj.caller = Some(caller);
                obj.clock = clock;
                let result = step(obj, |o| exec(o, class, method, &input));
                let got = rc(&result);
                let out = result.unwrap_or_default();
                if (got, &out) != (want, &want_out) {
                    return Err(fail(format!(
                        "the store returned {got} {}\n  the OSD returned  {want} {}",
                        hex(&out),
                        hex(&want_out)
                    )));
                }
            }
            _ => return Err(fail("not a fixture step".into())),
        }
    }
    Ok(())
}

/// Where `class.method`'s fixture lives.
pub fn fixture_path(class: &str, method: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/cls/{class}.{method}.txt"))
}

/// Replays `class.method`'s fixture; panics with the first difference.
pub fn replay_fixture(class: &str, method: &str) {
    let path = fixture_path(class, method);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (see fixtures/cls/capture.sh)", path.display()));
    let calls = format!(" {class}.{method} ");
    assert!(
        text.lines()
            .any(|l| l.starts_with("call ") && l.contains(&calls)),
        "{} never calls {class}.{method}",
        path.display()
    );
    if let Err(e) = replay(&text) {
        panic!("{}: {e}", path.display());
    }
}

/// One test per method, named after it, replaying its fixture.
macro_rules! osd_fixtures {
    ($class:literal: $($method:ident),* $(,)?) => {
        mod osd_fixtures {
            $(
                #[test]
                fn $method() {
                    crate::rados::embedded::cls::replay::replay_fixture(
                        $class,
                        stringify!($method),
                    );
                }
            )*
        }
    };
}
pub(crate) use osd_fixtures;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_reports_the_first_difference() {
        let ok = "# x\ncaller 5 6\nop o create -> 0\ncall o rbd.set_id 03000000612d62 -> -22\n\
                  call o rbd.set_id 03000000616263 -> 0\ncall o rbd.get_id - -> 0 03000000616263\n";
        replay(ok).unwrap();
        let wrong = ok.replace("-> 0 03000000616263", "-> 0 03000000616264");
        let e = replay(&wrong).unwrap_err();
        assert!(e.starts_with("line 6:"), "{e}");
        assert!(replay("call o rbd.get_id - -> -2\nbogus").is_err());
    }

    #[test]
    fn every_method_has_a_fixture_and_every_fixture_a_method() {
        for (class, m) in super::super::methods() {
            assert!(
                fixture_path(class, m.name).is_file(),
                "no fixture for {class}.{}",
                m.name
            );
        }
        let dir = fixture_path("x", "y").parent().unwrap().to_path_buf();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if let Some(stem) = name.strip_suffix(".txt") {
                let (class, method) = stem.split_once('.').unwrap();
                assert!(
                    super::super::method(class, method).is_ok(),
                    "fixtures/cls/{name} names no registered method"
                );
            }
        }
    }
}
