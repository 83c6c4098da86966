//! The root-filesystem rows: a real Debian root filesystem (bookworm,
//! `debootstrap --variant=minbase`, made into a 2 GiB ext4 image by
//! `mke2fs -d`: data in many small files, zeros between and inside them)
//! converted into and out of RBD on the bench's cluster, against the
//! cluster's own write ceiling measured by `rados bench` in the same run.
//!
//! The image is built once and cached as `target/bench/rootfs-bookworm.raw`
//! (packages come from the Debian mirror this machine's apt uses; no image
//! is ever downloaded). Goals: qcow2 -> RBD within 1.15x of (data size /
//! `rados bench` bandwidth); never slower than `qemu-img convert -m 16 -W`
//! or `rbd import`; RBD -> qcow2/raw no slower than `rbd export`.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Case, Timed, from_rbd, into_rbd, sh, time_case};

/// The cached image, built when missing.
fn rootfs_image(root: &Path, work: &Path) -> PathBuf {
    let cached = root.join("target/bench/rootfs-bookworm.raw");
    if cached.exists() {
        return cached;
    }
    if Command::new("debootstrap")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("installing debootstrap");
        sh(
            "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=300 install debootstrap >/dev/null",
        );
    }
    let mirror = debian_mirror()
        .expect("no Debian bookworm mirror in /etc/apt/sources.list(.d); set RBDIMG_BENCH_MIRROR");
    let tree = work.join("rootfs-tree");
    eprintln!("building a Debian root filesystem from {mirror} (cached afterwards)");
    sh(&format!(
        "debootstrap --variant=minbase bookworm {} {mirror} >{}/debootstrap.log 2>&1 || \
         {{ tail -20 {}/debootstrap.log; exit 1; }}",
        tree.display(),
        work.display(),
        work.display()
    ));
    fs::create_dir_all(cached.parent().unwrap()).unwrap();
    let partial = cached.with_extension("partial");
    sh(&format!(
        "mke2fs -q -t ext4 -d {} -F {} 2G",
        tree.display(),
        partial.display()
    ));
    sh(&format!("rm -rf {}", tree.display()));
    fs::rename(&partial, &cached).unwrap();
    cached
}

/// `$RBDIMG_BENCH_MIRROR`, else the first apt source for Debian bookworm.
fn debian_mirror() -> Option<String> {
    if let Ok(mirror) = std::env::var("RBDIMG_BENCH_MIRROR") {
        return Some(mirror);
    }
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    let is_mirror = |uri: &str| uri.trim_end_matches('/').ends_with("/debian");
    for file in files {
        let name = file.to_string_lossy();
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        if name.ends_with(".sources") {
            // deb822: stanzas of "Key: value" lines.
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(|v| v.split_whitespace().map(String::from).collect::<Vec<_>>())
                        .unwrap_or_default()
                };
                if field("Suites:").iter().any(|s| s == "bookworm")
                    && let Some(uri) = field("URIs:").into_iter().find(|u| is_mirror(u))
                {
                    return Some(uri);
                }
            }
        } else if name.ends_with(".list") {
            for line in text.lines() {
                let words: Vec<&str> = line
                    .split_whitespace()
                    .filter(|w| !w.starts_with('['))
                    .collect();
                if let ["deb", uri, "bookworm", ..] = words.as_slice()
                    && is_mirror(uri)
                {
                    return Some(uri.to_string());
                }
            }
        }
    }
    None
}

/// The cluster's write bandwidth in MiB/s: the median of three `rados
/// bench` runs of 4 MiB writes, 16 in flight (the pool is cleaned after).
fn rados_bench(conf: &str) -> f64 {
    let mut runs: Vec<f64> = (0..3)
        .map(|_| {
            let out = Command::new("rados")
                .args(["--conf", conf, "-p", "rbd", "bench", "5", "write"])
                .args(["-b", "4194304", "-t", "16", "--no-cleanup"])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            // rados bench's "MB" are MiB.
            text.lines()
                .find_map(|l| l.strip_prefix("Bandwidth (MB/sec):"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("rados bench said: {text}"))
        })
        .collect();
    sh(&format!(
        "rados --conf {conf} -p rbd cleanup >/dev/null 2>&1"
    ));
    runs.sort_by(f64::total_cmp);
    runs[1]
}

/// Bytes of data in an image, as `qemu-img map` reports it.
fn data_bytes(image: &Path) -> u64 {
    let out = Command::new("qemu-img")
        .args(["map", "--output=json"])
        .arg(image)
        .output()
        .unwrap();
    let map: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    map.as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"] == true)
        .map(|e| e["length"].as_u64().unwrap())
        .sum()
}

/// The median wall time of the tool labelled `label`.
fn wall(case: &Case, timed: &Timed, label: &str) -> Option<Duration> {
    case.tools
        .iter()
        .zip(&timed.medians)
        .find(|(t, _)| t.label == label)
        .and_then(|(_, m)| m.map(|m| m.wall))
}

pub fn rows(runs: usize, root: &Path, dir: &Path, rbdimg: &Path, conf: &str) -> String {
    let ours = rbdimg.display().to_string();
    let raw = rootfs_image(root, dir);
    let qcow2 = dir.join("rootfs.qcow2");
    sh(&format!(
        "qemu-img convert -f raw -O qcow2 {} {}",
        raw.display(),
        qcow2.display()
    ));
    let data = data_bytes(&qcow2);
    let image = "rbd/bench-rootfs";
    sh(&format!(
        "{ours} convert -f qcow2 -O raw {} rbd:{image}:conf={conf}",
        qcow2.display()
    ));
    eprintln!("measuring the cluster's write bandwidth (rados bench)");
    let bandwidth = rados_bench(conf);
    let ceiling = data as f64 / (bandwidth * 1048576.0);
    let mut report = String::new();
    writeln!(
        report,
        "Root filesystem: Debian bookworm minbase in a 2 GiB ext4 image ({} MiB of data); \
         the cluster writes {bandwidth:.0} MiB/s (`rados bench`, 4 MiB writes, 16 in flight, \
         median of 3), so the data takes at least {ceiling:.2} s to write; median of {runs} \
         interleaved runs.\n",
        data >> 20
    )
    .unwrap();
    let into = [
        into_rbd(
            &ours,
            conf,
            "root filesystem: qcow2 -> rbd",
            &qcow2,
            "qcow2",
            false,
        ),
        into_rbd(
            &ours,
            conf,
            "root filesystem: raw -> rbd",
            &raw,
            "raw",
            true,
        ),
    ];
    for case in &into {
        let timed = time_case(case, runs);
        report += &timed.table;
        let ours = wall(case, &timed, "rbdimg").unwrap_or(Duration::MAX);
        let times_ceiling = ours.as_secs_f64() / ceiling;
        let peers_ok = ["qemu-img -m 16 -W", "rbd import"]
            .iter()
            .filter_map(|peer| wall(case, &timed, peer))
            .all(|peer| ours <= peer);
        writeln!(
            report,
            "rbdimg takes {times_ceiling:.2}x the write ceiling (goal <= 1.15) and is {} \
             than `qemu-img -m 16 -W`{}: **{}**\n",
            if peers_ok { "no slower" } else { "slower" },
            if case.tools.len() > 3 {
                " and `rbd import`"
            } else {
                ""
            },
            if times_ceiling <= 1.15 && peers_ok {
                "met"
            } else {
                "NOT met"
            }
        )
        .unwrap();
    }
    for (title, out_fmt) in [
        ("root filesystem: rbd -> qcow2", "qcow2"),
        ("root filesystem: rbd -> raw", "raw"),
    ] {
        let case = from_rbd(&ours, conf, dir, title, image, out_fmt);
        let timed = time_case(&case, runs);
        report += &timed.table;
        let met = matches!(
            (wall(&case, &timed, "rbdimg"), wall(&case, &timed, "rbd export")),
            (Some(ours), Some(export)) if ours <= export
        );
        writeln!(
            report,
            "goal (no slower than `rbd export`): **{}**\n",
            if met { "met" } else { "NOT met" }
        )
        .unwrap();
    }
    sh(&format!("rbd --conf {conf} rm {image} >/dev/null 2>&1"));
    report
}
