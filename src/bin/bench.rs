//! The convert benchmark: rbdimg against `qemu-img convert` (default and
//! `-m 16 -W`) and `rbd import`, interleaved, on a real single-node Ceph
//! cluster (bluestore on a sparse file) started for the purpose.
//!
//!   cargo run --release --bin bench -- [--runs N] [--quick] [--out FILE]
//!
//! Sources: a 4 GiB image with about 1 GiB of half-compressible data in
//! scattered 4 MiB extents, as raw, qcow2 and compressed qcow2 (`--quick`:
//! 512 MiB with 128 MiB of data). Cases: each source into RBD, RBD into
//! qcow2, qcow2 into raw and raw into qcow2 locally. Every target is
//! deleted right after it is timed.
//! Reported: medians of wall time, client CPU (user+sys) and peak RSS, and
//! the ratios of each peer to rbdimg.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Sample {
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
}

struct Case {
    title: &'static str,
    /// (tool label, command line with {src} and {dst} placeholders)
    tools: Vec<(&'static str, String)>,
    src: String,
    /// Target name pattern; {n} is the run number.
    dst: String,
    /// Command that deletes a target (with {dst}).
    cleanup: String,
}

struct Config {
    runs: usize,
    quick: bool,
    out: PathBuf,
}

fn parse_args() -> Config {
    let mut config = Config {
        runs: 3,
        quick: false,
        out: PathBuf::from("target/bench/results.md"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => config.runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--quick" => config.quick = true,
            "--out" => config.out = PathBuf::from(args.next().expect("--out FILE")),
            other => {
                panic!("unknown argument {other}; usage: bench [--runs N] [--quick] [--out FILE]")
            }
        }
    }
    config
}

/// Runs a shell command line and measures it with wait4's rusage; the
/// error is the command's stderr when it fails.
fn measure(command: &str) -> Result<Sample, String> {
    let start = Instant::now();
    // Reaped by wait4 below, which also reports its resource usage.
    #[allow(clippy::zombie_processes)]
    let child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    assert_eq!(rc, pid, "wait4 failed");
    let exit = std::process::ExitStatus::from_raw(status);
    if !exit.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        return Err(format!("{exit}: {}", err.trim()));
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    Ok(Sample {
        wall,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        rss_kib: usage.ru_maxrss as u64,
    })
}

fn sh(command: &str) {
    let status = Command::new("sh").arg("-c").arg(command).status().unwrap();
    assert!(status.success(), "`{command}` failed");
}

/// A raw source of `size` bytes with `data` bytes in 4 MiB extents at
/// seeded pseudo-random places; each 64 KiB half random, half text, so
/// compression has something to do.
fn make_raw(path: &Path, size: u64, data: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let extent = 4u64 << 20;
    let slots = size / extent;
    let mut chosen: Vec<u64> = Vec::new();
    while (chosen.len() as u64) < data / extent {
        let slot = next() % slots;
        if !chosen.contains(&slot) {
            chosen.push(slot);
        }
    }
    let mut block = vec![0u8; extent as usize];
    for slot in chosen {
        for piece in block.chunks_mut(65536) {
            let (random, text) = piece.split_at_mut(32768);
            for b in random.iter_mut() {
                *b = next() as u8;
            }
            for (i, b) in text.iter_mut().enumerate() {
                *b = b"rbdimg benchmark "[i % 17];
            }
        }
        file.write_all_at(&block, slot * extent).unwrap();
    }
    file.sync_all().unwrap();
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn main() {
    let config = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rbdimg = root.join("target/release/rbdimg");
    assert!(rbdimg.exists(), "build first: cargo build --release");
    let work = PathBuf::from(format!("/var/tmp/rbdimg-bench-{}", std::process::id()));
    fs::create_dir_all(&work).unwrap();
    let dir = work.as_path();
    let cluster = dir.join("cluster");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    eprintln!("starting a bluestore cluster in {}", cluster.display());
    sh(&format!(
        "CEPH_TEST_PORT={port} bash {} start {} bluestore",
        root.join("tests/ceph/cluster.sh").display(),
        cluster.display()
    ));
    let stop = format!(
        "bash {} stop {}",
        root.join("tests/ceph/cluster.sh").display(),
        cluster.display()
    );
    let conf = cluster.join("ceph.conf").display().to_string();
    let result = std::panic::catch_unwind(|| run(&config, dir, &rbdimg, &conf));
    sh(&stop);
    let _ = fs::remove_dir_all(dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn run(config: &Config, dir: &Path, rbdimg: &Path, conf: &str) {
    let (size, data) = if config.quick {
        (512u64 << 20, 128u64 << 20)
    } else {
        (4u64 << 30, 1u64 << 30)
    };
    let raw = dir.join("src.raw");
    eprintln!(
        "making sources: {} MiB with {} MiB of data",
        size >> 20,
        data >> 20
    );
    make_raw(&raw, size, data);
    let qcow2 = dir.join("src.qcow2");
    let compressed = dir.join("src-c.qcow2");
    sh(&format!(
        "qemu-img convert -f raw -O qcow2 {} {}",
        raw.display(),
        qcow2.display()
    ));
    sh(&format!(
        "qemu-img convert -c -f raw -O qcow2 {} {}",
        raw.display(),
        compressed.display()
    ));
    let rbd_source = "rbd/bench-src";
    sh(&format!(
        "rbd --conf {conf} import {} {rbd_source} >/dev/null 2>&1",
        raw.display()
    ));

    let ours = rbdimg.display().to_string();
    let rbd_name = |image: &str| format!("rbd:{image}:conf={conf}");
    let into_rbd = |title: &'static str, src: &Path, fmt: &str, with_import: bool| {
        let mut tools = vec![
            (
                "rbdimg",
                format!("{ours} convert -f {fmt} -O raw {{src}} {{dst}}"),
            ),
            (
                "qemu-img",
                format!("qemu-img convert -f {fmt} -O raw {{src}} {{dst}}"),
            ),
            (
                "qemu-img -m 16 -W",
                format!("qemu-img convert -m 16 -W -f {fmt} -O raw {{src}} {{dst}}"),
            ),
        ];
        if with_import {
            tools.push((
                "rbd import",
                format!("rbd --conf {conf} import {{src}} {{dst_plain}}"),
            ));
        }
        Case {
            title,
            tools,
            src: src.display().to_string(),
            dst: rbd_name("rbd/bench-dst-{n}"),
            cleanup: format!("rbd --conf {conf} rm rbd/bench-dst-{{n}} >/dev/null 2>&1"),
        }
    };
    let local = |title: &'static str, src: String, fmt: &str, out_fmt: &str| Case {
        title,
        tools: vec![
            (
                "rbdimg",
                format!("{ours} convert -f {fmt} -O {out_fmt} {{src}} {{dst}}"),
            ),
            (
                "qemu-img",
                format!("qemu-img convert -f {fmt} -O {out_fmt} {{src}} {{dst}}"),
            ),
        ],
        src,
        dst: dir.join("dst-{n}").display().to_string(),
        cleanup: format!("rm -f {}", dir.join("dst-{n}").display()),
    };
    let cases = vec![
        into_rbd("raw -> rbd", &raw, "raw", true),
        into_rbd("qcow2 -> rbd", &qcow2, "qcow2", false),
        into_rbd("compressed qcow2 -> rbd", &compressed, "qcow2", false),
        local("rbd -> qcow2", rbd_name(rbd_source), "raw", "qcow2"),
        local(
            "qcow2 -> raw (local)",
            qcow2.display().to_string(),
            "qcow2",
            "raw",
        ),
        local(
            "raw -> qcow2 (local)",
            raw.display().to_string(),
            "raw",
            "qcow2",
        ),
    ];

    let mut report = String::new();
    writeln!(report, "# rbdimg convert benchmark\n").unwrap();
    writeln!(
        report,
        "{} source, {} MiB of data in 4 MiB extents; median of {} interleaved runs; single-node Ceph \
         16.2 (bluestore) on 127.0.0.1, {} cores. CPU is the converting process's user+sys.\n",
        if config.quick { "512 MiB" } else { "4 GiB" },
        data >> 20,
        config.runs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
    .unwrap();
    for case in &cases {
        eprintln!("== {}", case.title);
        let mut samples: Vec<Vec<Sample>> = case.tools.iter().map(|_| Vec::new()).collect();
        let mut failures: Vec<Option<String>> = case.tools.iter().map(|_| None).collect();
        let mut n = 0;
        for _ in 0..config.runs {
            for (i, (label, template)) in case.tools.iter().enumerate() {
                n += 1;
                let dst = case.dst.replace("{n}", &n.to_string());
                let dst_plain = format!("rbd/bench-dst-{n}");
                let command = template
                    .replace("{src}", &case.src)
                    .replace("{dst_plain}", &dst_plain)
                    .replace("{dst}", &dst);
                match measure(&command) {
                    Ok(sample) => {
                        eprintln!(
                            "  {label:<18} {}s cpu {}s rss {} MiB",
                            secs(sample.wall),
                            secs(sample.cpu),
                            sample.rss_kib / 1024
                        );
                        samples[i].push(sample);
                    }
                    Err(why) => {
                        eprintln!("  {label:<18} FAILED: {why}");
                        failures[i] = Some(why);
                    }
                }
                let _ = Command::new("sh")
                    .arg("-c")
                    .arg(case.cleanup.replace("{n}", &n.to_string()))
                    .status();
            }
        }
        writeln!(report, "## {}\n", case.title).unwrap();
        writeln!(report, "| tool | wall s | cpu s | peak RSS MiB | wall vs rbdimg | cpu vs rbdimg | RSS vs rbdimg |").unwrap();
        writeln!(report, "|---|---|---|---|---|---|---|").unwrap();
        if let Some((label, why)) = case
            .tools
            .iter()
            .zip(&failures)
            .find_map(|((l, _), f)| f.as_ref().map(|w| (l, w)))
        {
            writeln!(report, "| {label} | failed: {why} | | | | | |\n").unwrap();
            continue;
        }
        let medians: Vec<(Duration, Duration, u64)> = samples
            .iter()
            .map(|s| {
                (
                    median(s.iter().map(|x| x.wall).collect()),
                    median(s.iter().map(|x| x.cpu).collect()),
                    median(s.iter().map(|x| x.rss_kib).collect()),
                )
            })
            .collect();
        let (w0, c0, r0) = medians[0];
        for ((label, _), (w, c, r)) in case.tools.iter().zip(&medians) {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}x", a / b)
                } else {
                    "-".into()
                }
            };
            writeln!(
                report,
                "| {label} | {} | {} | {} | {} | {} | {} |",
                secs(*w),
                secs(*c),
                r / 1024,
                ratio(w.as_secs_f64(), w0.as_secs_f64()),
                ratio(c.as_secs_f64(), c0.as_secs_f64()),
                ratio(*r as f64, r0 as f64)
            )
            .unwrap();
        }
        writeln!(report).unwrap();
    }
    if let Some(parent) = config.out.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&config.out, &report).unwrap();
    print!("{report}");
    eprintln!("results written to {}", config.out.display());
}
