//! `map` of RBD images from the object map, on both backends: whole
//! objects that exist are data at their own offset, the others zeros; a
//! snapshot maps as it was.

use super::{Backend, both_backends, raw_source, rbdimg_ok, unique};

fn line(start: u64, length: u64, data: bool) -> String {
    format!(
        r#"{{ "start": {start}, "length": {length}, "depth": 0, "present": true, "zero": {}, "data": {data}, "compressed": false, "offset": {start}}}"#,
        !data
    )
}

fn map_follows_the_object_map(b: &Backend) {
    const M: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let first = raw_source(
        dir.path(),
        "a.raw",
        20 * M,
        &[(0, 1, 5000), (12 * M, 2, 4096)],
    );
    // The same data plus an object past it (zero ranges of `convert -n`
    // remove whole objects, so the head keeps only what this source holds).
    let later = raw_source(
        dir.path(),
        "b.raw",
        20 * M,
        &[(0, 1, 5000), (12 * M, 2, 4096), (17 * M, 3, 10)],
    );
    let image = unique("map");
    let (name, snap) = (b.name(&image), b.name(&format!("{image}@s1")));
    rbdimg_ok(&["convert", "-O", "raw", first.to_str().unwrap(), &name]);
    rbdimg_ok(&["snapshot", "-c", "s1", &name]);
    rbdimg_ok(&["convert", "-n", "-O", "raw", later.to_str().unwrap(), &name]);

    let map = |args: &[&str]| {
        let mut all = vec!["map", "-f", "raw", "--output=json"];
        all.extend_from_slice(args);
        rbdimg_ok(&all).stdout
    };
    let before = [
        line(0, 4 * M, true),
        line(4 * M, 8 * M, false),
        line(12 * M, 4 * M, true),
        line(16 * M, 4 * M, false),
    ];
    assert_eq!(map(&[&snap]), format!("[{}]\n", before.join(",\n")));
    let after = [
        line(0, 4 * M, true),
        line(4 * M, 8 * M, false),
        line(12 * M, 8 * M, true),
    ];
    assert_eq!(map(&[&name]), format!("[{}]\n", after.join(",\n")));
    let window = [line(2 * M, 2 * M, true), line(4 * M, M, false)];
    assert_eq!(
        map(&["-s", "2M", "-l", "3M", &name]),
        format!("[{}]\n", window.join(",\n"))
    );
    let human = rbdimg_ok(&["map", "-f", "raw", &name]).stdout;
    let lines: Vec<_> = human.lines().collect();
    assert_eq!(lines.len(), 3, "{human}");
    assert!(lines[1].starts_with("0               0x400000        0               json:{"));
    assert!(lines[2].starts_with("0xc00000        0x800000        0xc00000        json:{"));
}

both_backends!(map_follows_the_object_map);

/// A clone maps its parent's data at depth 1 (rbdimg's deliberate
/// difference: QEMU's rbd driver calls a whole clone data at depth 0), and
/// what it holds itself (here one object written through copy-up) at 0.
fn map_of_a_clone_shows_the_parent_at_depth_1(b: &Backend) {
    const M: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let src = raw_source(
        dir.path(),
        "golden.raw",
        20 * M,
        &[(0, 1, 5000), (12 * M, 2, 4096)],
    );
    let (golden, clone) = (unique("map-golden"), unique("map-clone"));
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        src.to_str().unwrap(),
        &b.name(&golden),
    ]);
    rbdimg_ok(&["snapshot", "-c", "base", &b.name(&golden)]);
    let parent = b.name(&format!("{golden}@base"));
    rbdimg_ok(&[
        "create",
        "-q",
        "-f",
        "raw",
        "-b",
        &parent,
        "-F",
        "raw",
        &b.name(&clone),
    ]);
    let json = |name: &str| rbdimg_ok(&["map", "-f", "raw", "--output=json", name]).stdout;
    let at = |depth: u64, start: u64, length: u64, data: bool| {
        line(start, length, data).replace("\"depth\": 0", &format!("\"depth\": {depth}"))
    };
    // Untouched, the clone maps as its parent does, one level down.
    assert_eq!(
        json(&b.name(&clone)),
        json(&parent).replace("\"depth\": 0", "\"depth\": 1")
    );
    rbdimg_ok(&[
        "bench",
        "-w",
        "-c",
        "1",
        "-s",
        "4k",
        "-o",
        "4M",
        "-f",
        "raw",
        &b.name(&clone),
    ]);
    let expected = [
        at(1, 0, 4 * M, true),
        at(0, 4 * M, 4 * M, true),
        at(1, 8 * M, 4 * M, false),
        at(1, 12 * M, 4 * M, true),
        at(1, 16 * M, 4 * M, false),
    ];
    assert_eq!(
        json(&b.name(&clone)),
        format!("[{}]\n", expected.join(",\n"))
    );
    // The human map names the file each data range is in.
    let human = rbdimg_ok(&["map", "-f", "raw", &b.name(&clone)]).stdout;
    let lines: Vec<_> = human.lines().collect();
    assert_eq!(lines.len(), 4, "{human}");
    let in_parent = format!(r#""image": "{}""#, golden.rsplit('/').next().unwrap());
    for (line, start, parent) in [
        (lines[1], "0               0x400000        0  ", true),
        (lines[2], "0x400000        0x400000        0x400000", false),
        (lines[3], "0xc00000        0x400000        0xc00000", true),
    ] {
        assert!(line.starts_with(start), "{human}");
        assert_eq!(line.contains(&in_parent), parent, "{human}");
        assert_eq!(line.contains(r#""snapshot": "base""#), parent, "{human}");
    }
}

both_backends!(map_of_a_clone_shows_the_parent_at_depth_1);
