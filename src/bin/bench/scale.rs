//! The sparse-scale rows: 1 MiB of data in huge, mostly empty images, where
//! what a tool costs shows whether it walks the data or the virtual size.
//!
//! * local files: an 8 TiB sparse raw file -> qcow2, its qcow2 -> raw,
//!   and the raw compared with its qcow2; rbdimg against qemu-img.
//! * RBD, on the embedded store (`local_rows`) and on the bench's cluster
//!   (`ceph_rows`): a 16 TiB image -> qcow2, compared with itself and with
//!   a copy, and checked; each also on a 1 GiB image holding the same
//!   data, whose peak RSS the 16 TiB one must stay within 10 MiB of;
//!   against qemu-img's rbd driver where qemu-img can do it (on Ceph).
//!
//! The goal each table is held to: every rbdimg run under 0.5 s and no
//! slower than qemu-img's; a line under the table says whether it holds.

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use super::{Cache, Case, Timed, XorShift, sh, time_case, tool};

const TIB: u64 = 1 << 40;
const DATA: u64 = 1 << 20;

/// A sparse raw file of `size` bytes holding 1 MiB of seeded random data
/// at its middle.
fn make_sparse(path: &Path, size: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    let mut rng = XorShift::new();
    let data: Vec<u8> = (0..DATA / 8)
        .flat_map(|_| rng.next().to_le_bytes())
        .collect();
    file.write_all_at(&data, size / 2).unwrap();
    file.sync_all().unwrap();
}

/// Times a case and says under its table whether the goal holds for the
/// tools labelled "rbdimg..." against those labelled "qemu-img...": every
/// rbdimg median under 0.5 s and no slower than qemu-img's; with a 16 TiB
/// and a 1 GiB rbdimg tool, peak RSS within 10 MiB of each other.
fn timed_with_goal(case: &Case, runs: usize) -> String {
    let Timed { mut table, medians } = time_case(case, runs);
    let of = |prefix: &str| -> Vec<(&str, Duration, u64)> {
        case.tools
            .iter()
            .zip(&medians)
            .filter(|(t, _)| t.label.starts_with(prefix))
            .filter_map(|(t, m)| m.map(|m| (t.label, m.wall, m.rss_kib)))
            .collect()
    };
    let (ours, theirs) = (of("rbdimg"), of("qemu-img"));
    let slowest = ours.iter().map(|o| o.1).max().unwrap_or(Duration::MAX);
    let mut holds = ours.len()
        == case
            .tools
            .iter()
            .filter(|t| t.label.starts_with("rbdimg"))
            .count()
        && slowest < Duration::from_millis(500)
        && theirs.iter().all(|t| ours.iter().all(|o| o.1 <= t.1));
    let mut note = format!(
        "goal (every rbdimg run < 0.5 s{}): slowest rbdimg median {:.3} s",
        if theirs.is_empty() {
            ""
        } else {
            " and no slower than qemu-img"
        },
        slowest.as_secs_f64()
    );
    let rss = |size: &str| ours.iter().find(|o| o.0.contains(size)).map(|o| o.2);
    if let (Some(big), Some(small)) = (rss("16 TiB"), rss("1 GiB")) {
        let delta = big as i64 - small as i64;
        holds &= delta <= 10 << 10;
        write!(
            note,
            "; peak RSS 16 TiB - 1 GiB = {:.1} MiB (goal <= 10)",
            delta as f64 / 1024.0
        )
        .unwrap();
    }
    writeln!(
        table,
        "{note}: **{}**\n",
        if holds { "met" } else { "NOT met" }
    )
    .unwrap();
    table
}

/// A case of commands that write nothing (compare, check).
fn reading(title: impl Into<String>, tools: Vec<super::Tool>) -> Case {
    Case {
        title: title.into(),
        tools,
        src: String::new(),
        dst: String::new(),
        cleanup: "true".into(),
        cache: Cache::Untouched,
    }
}

/// The local-file rows and the embedded store's.
pub fn local_rows(runs: usize, dir: &Path, rbdimg: &Path) -> String {
    let ours = rbdimg.display().to_string();
    let raw = dir.join("sparse-8t.raw");
    eprintln!("making sources: 8 TiB sparse raw and qcow2 with 1 MiB of data");
    make_sparse(&raw, 8 * TIB);
    let qcow2 = dir.join("sparse-8t.qcow2");
    let (raw, qcow2) = (raw.display().to_string(), qcow2.display().to_string());
    sh(&format!("qemu-img convert -f raw -O qcow2 {raw} {qcow2}"));
    let dst = dir.join("scale-dst-{n}").display().to_string();
    let converting = |title: &str, fmt: &str, out_fmt: &str, src: &str| Case {
        title: title.into(),
        tools: vec![
            tool(
                "rbdimg",
                format!("{ours} convert -f {fmt} -O {out_fmt} {{src}} {{dst}}"),
            ),
            tool(
                "qemu-img",
                format!("qemu-img convert -f {fmt} -O {out_fmt} {{src}} {{dst}}"),
            ),
        ],
        src: src.to_string(),
        dst: dst.clone(),
        cleanup: format!("rm -f {dst}"),
        cache: Cache::Untouched,
    };
    let mut report = String::new();
    writeln!(
        report,
        "Sparse scale: 1 MiB of data in an 8 TiB sparse raw file and its qcow2, and in 16 TiB \
         RBD images (with the same data in 1 GiB images beside them, for memory); median of \
         {runs} interleaved runs.\n"
    )
    .unwrap();
    for case in [
        converting("8 TiB sparse raw -> qcow2", "raw", "qcow2", &raw),
        converting("8 TiB qcow2 -> raw", "qcow2", "raw", &qcow2),
        reading(
            "compare 8 TiB raw with its qcow2",
            vec![
                tool("rbdimg", format!("{ours} compare {raw} {qcow2}")),
                tool("qemu-img", format!("qemu-img compare {raw} {qcow2}")),
            ],
        ),
    ] {
        report += &timed_with_goal(&case, runs);
    }
    let store = dir.join("scale-store").display().to_string();
    let name = |image: &str| format!("rbd:rbd/{image}:store={store}");
    make_rbd_pair(&ours, &name, dir);
    report += &rbd_cases("embedded store", &ours, &name, false, dir, runs);
    sh(&format!("rm -rf {store}"));
    report
}

/// The same RBD rows on the bench's cluster, with qemu-img's rbd driver.
pub fn ceph_rows(runs: usize, dir: &Path, rbdimg: &Path, conf: &str) -> String {
    let ours = rbdimg.display().to_string();
    let name = |image: &str| format!("rbd:rbd/{image}:conf={conf}");
    make_rbd_pair(&ours, &name, dir);
    let report = rbd_cases("Ceph", &ours, &name, true, dir, runs);
    for image in ["scale-16t", "scale-16t-copy", "scale-1g", "scale-1g-copy"] {
        sh(&format!("rbd --conf {conf} rm rbd/{image} >/dev/null 2>&1"));
    }
    report
}

/// A 16 TiB and a 1 GiB image holding the same 1 MiB, each with a copy.
fn make_rbd_pair(ours: &str, name: &dyn Fn(&str) -> String, dir: &Path) {
    let data = dir.join("scale-data.raw");
    make_sparse(&data, 2 * DATA);
    let data = data.display();
    for (image, size) in [("scale-16t", "16T"), ("scale-1g", "1G")] {
        let image_name = name(image);
        sh(&format!("{ours} create -q -f raw {image_name} {size}"));
        sh(&format!(
            "{ours} convert -n --target-is-zero -f raw -O raw {data} {image_name}"
        ));
        sh(&format!(
            "{ours} convert -f raw -O raw {image_name} {}",
            name(&format!("{image}-copy"))
        ));
    }
}

/// The RBD rows on one backend; `qemu`: qemu-img's rbd driver reaches
/// it (a cluster; the embedded store is rbdimg's own).
fn rbd_cases(
    backend: &str,
    ours: &str,
    name: &dyn Fn(&str) -> String,
    qemu: bool,
    dir: &Path,
    runs: usize,
) -> String {
    let dst = dir.join("scale-dst-{n}").display().to_string();
    let both = |command: &dyn Fn(&str, &str) -> String, with_qemu: bool| {
        let mut tools = vec![
            tool("rbdimg, 16 TiB", command(ours, "scale-16t")),
            tool("rbdimg, 1 GiB", command(ours, "scale-1g")),
        ];
        if qemu && with_qemu {
            tools.push(tool("qemu-img, 16 TiB", command("qemu-img", "scale-16t")));
        }
        tools
    };
    let title = |what: &str| format!("{what} ({backend})");
    let converted = Case {
        title: title("16 TiB RBD image -> qcow2"),
        tools: both(
            &|tool, image| format!("{tool} convert -f raw -O qcow2 {} {{dst}}", name(image)),
            true,
        ),
        src: String::new(),
        dst: dst.clone(),
        cleanup: format!("rm -f {dst}"),
        cache: Cache::Untouched,
    };
    let itself = reading(
        title("compare a 16 TiB RBD image with itself"),
        both(
            &|tool, image| format!("{tool} compare -f raw -F raw {0} {0}", name(image)),
            true,
        ),
    );
    let copy = reading(
        title("compare a 16 TiB RBD image with its copy"),
        both(
            &|tool, image| {
                format!(
                    "{tool} compare -f raw -F raw {} {}",
                    name(image),
                    name(&format!("{image}-copy"))
                )
            },
            true,
        ),
    );
    // qemu-img has no check for rbd.
    let check = reading(
        title("check -f rbd of a 16 TiB RBD image"),
        both(
            &|tool, image| format!("{tool} check -f rbd {}", name(image)),
            false,
        ),
    );
    [converted, itself, copy, check]
        .iter()
        .map(|case| timed_with_goal(case, runs))
        .collect()
}
