//! `bench` on RBD images, both backends: reads and writes run against the
//! image (writes under its exclusive lock), land where the offsets say,
//! and leave the object map clean.

use super::{Backend, both_backends, rbdimg, rbdimg_ok, unique};

fn bench_reads_and_writes_images(b: &Backend) {
    let image = unique("bench");
    let name = b.name(&image);
    rbdimg_ok(&["create", "-f", "raw", &name, "16M"]);
    let args = [
        "bench", "-f", "raw", "-w", "-c", "64", "-d", "8", "-s", "64k",
    ];
    let out = rbdimg_ok(&[&args[..], &["--pattern", "7", "-o", "8M", &name]].concat());
    let lines: Vec<_> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "Sending 64 write requests, 65536 bytes each, 8 in parallel (starting at offset 8388608, step size 65536)"
    );
    assert!(lines[1].starts_with("Run completed in "), "{out:#?}");
    let data = b.export(&image);
    assert!(data[8 << 20..12 << 20].iter().all(|&x| x == 7));
    assert!(
        data[..8 << 20]
            .iter()
            .chain(&data[12 << 20..])
            .all(|&x| x == 0)
    );
    b.object_map_check(&image);
    rbdimg_ok(&["bench", "-f", "raw", "-c", "1000", "-d", "16", &name]);
    let past = rbdimg(&["bench", "-f", "raw", "-c", "1", "-o", "16M", &name]);
    assert_eq!(past.code, 1);
    assert!(
        past.stderr
            .ends_with("Failed request: Input/output error\n"),
        "{past:#?}"
    );
}

both_backends!(bench_reads_and_writes_images);
