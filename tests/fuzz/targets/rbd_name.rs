//! `rbd:` names: QEMU's grammar (`\` escapes, `@snap`, `:key=value`
//! settings). The input is the text after `rbd:`. Whatever parses must name
//! itself as a `json:` name that reads back as JSON.

use rbdimg::open::qemu_json;
use rbdimg::open::spec::ImageSpec;
use rbdimg::rbd::name;

/// True when the name parsed.
pub fn run(data: &[u8]) -> bool {
    let text = format!("rbd:{}", String::from_utf8_lossy(data));
    let _ = ImageSpec::parse(&text, false);
    let Ok(spec) = name::parse_legacy(&text) else {
        return false;
    };
    let _ = spec.snapshot();
    let json = spec.json_filename();
    let body = json.strip_prefix("json:").expect("a json: name");
    assert!(
        qemu_json::parse(body).is_ok(),
        "{text:?} names itself {json:?}, which does not read back"
    );
    true
}
