//! `json:` and `--image-opts` names, and `-o` option lists: QEMU's JSON
//! reader, `qdict_flatten`, the node stack a name describes, and QemuOpts
//! splitting. The first byte picks the reader; the rest is the text.
//! Whatever JSON parses must print (QEMU's way) as JSON that reads back the
//! same.

use rbdimg::block::options::Options;
use rbdimg::open::qemu_json;
use rbdimg::open::spec::ImageSpec;
use rbdimg::qjson;

/// True when the text was JSON, or a valid `--image-opts` name.
pub fn run(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 3 {
        0 => {
            let Ok(value) = qemu_json::parse(&text) else {
                return false;
            };
            let printed = qjson::to_compact_string(&value);
            let again = qemu_json::parse(&printed)
                .unwrap_or_else(|e| panic!("{text:?} printed as {printed:?}, which fails: {e}"));
            assert_eq!(again, value, "{text:?} printed as {printed:?}");
            if let Some(map) = value.as_object() {
                let _ = qemu_json::flatten(map);
            }
            let _ = ImageSpec::parse(&format!("json:{text}"), false);
            true
        }
        1 => ImageSpec::parse(&text, true).is_ok(),
        // Nearly every text is a valid -o list: none is kept as a new base,
        // or they would crowd out the JSON ones.
        _ => {
            let _ = Options::parse(&text.split('\n').collect::<Vec<_>>());
            false
        }
    }
}
