//! The benchmark, in groups of rows (`--rows`, default all):
//!
//! * `convert`: rbdimg against `qemu-img convert` (default and `-m 16 -W`),
//!   `rbd import` and `rbd export`, interleaved, on a real single-node Ceph
//!   cluster (bluestore on a sparse file) started for the purpose. Sources:
//!   a 4 GiB image with about 1 GiB of half-compressible data in scattered
//!   4 MiB extents, as raw, qcow2 and compressed qcow2 (`--quick`: 512 MiB
//!   with 128 MiB of data). Cases: each source into RBD, RBD into qcow2 and
//!   raw, qcow2 into raw and raw into qcow2 locally.
//! * `crypto`: 1 GiB into and out of an encrypted qcow2 and an encrypted
//!   RBD image (LUKS, aes-256-xts) on the cluster (`bench/crypto.rs`).
//! * `layering`: clones of a golden image's snapshot, rbdimg against
//!   `rbd clone`/`rbd flatten` on the cluster, and on the embedded store
//!   (`bench/layering.rs`).
//! * `store`: the embedded store against a local raw file, no cluster:
//!   `convert -n` of 1 GiB of incompressible data (`--quick`: 256 MiB) into
//!   an existing image of that size in a fresh store, and into an existing
//!   raw file, each followed by `sync` (with the source in the page cache,
//!   and with the page cache dropped before each run, as root) or flushed
//!   by rbdimg itself (`-t writeback`).
//! * `scale`: 1 MiB of data in 8 TiB sparse files and 16 TiB RBD images
//!   (embedded store and cluster): convert, compare, check (`bench/scale.rs`).
//! * `rootfs`: a Debian root filesystem into and out of RBD against the
//!   cluster's `rados bench` write ceiling (`bench/rootfs.rs`).
//!
//!   cargo run --release --bin bench -- [--runs N] [--quick] [--rows convert,crypto,layering,store,scale,rootfs] [--out FILE]
//!
//! Each case runs one untimed warm-up round, then the timed rounds with
//! its tools interleaved. Every target is deleted right after it is timed.
//! Reported: medians of wall time, CPU (user+sys, the command's whole
//! process tree) and peak RSS, and the ratios of each tool to the row's
//! first, in `target/bench/results.md`.

// Beside this crate root, out of cargo's view as binaries of their own.
#[path = "bench/crypto.rs"]
mod crypto;
#[path = "bench/layering.rs"]
mod layering;
#[path = "bench/rootfs.rs"]
mod rootfs;
#[path = "bench/scale.rs"]
mod scale;

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

struct Tool {
    label: &'static str,
    /// Command line with {src}, {dst} and {dst_plain} placeholders.
    run: String,
    /// Untimed command run before each timed one (same placeholders).
    setup: Option<String>,
}

fn tool(label: &'static str, run: String) -> Tool {
    Tool {
        label,
        run,
        setup: None,
    }
}

struct Case {
    title: String,
    /// Ratios are against the first tool.
    tools: Vec<Tool>,
    src: String,
    /// Target name pattern; {n} is the run number.
    dst: String,
    /// Command that deletes a target (with {n}).
    cleanup: String,
    cache: Cache,
}

/// What is done to the page cache before each timed run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cache {
    Untouched,
    /// Every dirty page written back.
    Synced,
    /// Synced, then emptied (needs root).
    Dropped,
}

struct Config {
    runs: usize,
    quick: bool,
    convert: bool,
    crypto: bool,
    layering: bool,
    store: bool,
    scale: bool,
    rootfs: bool,
    out: PathBuf,
}

const USAGE: &str = "usage: bench [--runs N] [--quick] [--rows convert,crypto,layering,store,scale,rootfs] [--out FILE]";

/// A bad command line: one line and status 2, as the other tools here.
fn usage_error(what: &str) -> ! {
    eprintln!("bench: {what}\n{USAGE}");
    std::process::exit(2)
}

fn parse_args() -> Config {
    let mut config = Config {
        runs: 3,
        quick: false,
        convert: true,
        crypto: true,
        layering: true,
        store: true,
        scale: true,
        rootfs: true,
        out: PathBuf::from("target/bench/results.md"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                config.runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| usage_error("--runs takes a count of at least 1"))
            }
            "--quick" => config.quick = true,
            "--rows" => {
                let rows = args
                    .next()
                    .unwrap_or_else(|| usage_error("--rows takes a list of row groups"));
                config.convert = false;
                config.crypto = false;
                config.layering = false;
                config.store = false;
                config.scale = false;
                config.rootfs = false;
                for row in rows.split(',') {
                    match row {
                        "convert" => config.convert = true,
                        "crypto" => config.crypto = true,
                        "layering" => config.layering = true,
                        "store" => config.store = true,
                        "scale" => config.scale = true,
                        "rootfs" => config.rootfs = true,
                        other => usage_error(&format!("unknown row group {other}")),
                    }
                }
            }
            "--out" => {
                config.out = PathBuf::from(
                    args.next()
                        .unwrap_or_else(|| usage_error("--out takes a file name")),
                )
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            other => usage_error(&format!("unknown argument {other}")),
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

/// Seeded xorshift64: the same sources on every run and machine.
struct XorShift(u64);

impl XorShift {
    fn new() -> XorShift {
        XorShift(0x2545_f491_4f6c_dd1d)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A raw source of `size` bytes with `data` bytes in 4 MiB extents at
/// seeded pseudo-random places; each 64 KiB half random, half text, so
/// compression has something to do.
fn make_raw(path: &Path, size: u64, data: u64) {
    let file = File::create(path).unwrap();
    file.set_len(size).unwrap();
    let mut rng = XorShift::new();
    let extent = 4u64 << 20;
    let slots = size / extent;
    let mut chosen: Vec<u64> = Vec::new();
    while (chosen.len() as u64) < data / extent {
        let slot = rng.next() % slots;
        if !chosen.contains(&slot) {
            chosen.push(slot);
        }
    }
    let mut block = vec![0u8; extent as usize];
    for slot in chosen {
        for piece in block.chunks_mut(65536) {
            let (random, text) = piece.split_at_mut(32768);
            for b in random.iter_mut() {
                *b = rng.next() as u8;
            }
            for (i, b) in text.iter_mut().enumerate() {
                *b = b"rbdimg benchmark "[i % 17];
            }
        }
        file.write_all_at(&block, slot * extent).unwrap();
    }
    file.sync_all().unwrap();
}

/// A raw source of `size` incompressible bytes, no holes.
fn make_random(path: &Path, size: u64) {
    let file = File::create(path).unwrap();
    let mut rng = XorShift::new();
    let mut block = vec![0u8; 4 << 20];
    for at in (0..size).step_by(block.len()) {
        for word in block.chunks_exact_mut(8) {
            word.copy_from_slice(&rng.next().to_le_bytes());
        }
        let n = (size - at).min(block.len() as u64) as usize;
        file.write_all_at(&block[..n], at).unwrap();
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

const DROP_CACHES: &str = "/proc/sys/vm/drop_caches";

/// Puts the page cache in the state a timed run starts from, the same for
/// every tool of a case.
fn settle(cache: Cache) {
    if cache != Cache::Untouched {
        sh("sync");
    }
    if cache == Cache::Dropped {
        fs::write(DROP_CACHES, "3").expect("dropping the page cache needs root");
    }
}

fn main() {
    let config = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rbdimg = root.join("target/release/rbdimg");
    assert!(rbdimg.exists(), "build first: cargo build --release");
    let work = PathBuf::from(format!("/var/tmp/rbdimg-bench-{}", std::process::id()));
    fs::create_dir_all(&work).unwrap();
    let dir = work.as_path();
    let mut report = String::from("# rbdimg benchmark\n\n");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if config.store {
            report += &store_rows(&config, dir, &rbdimg);
        }
        if config.layering {
            report += &layering::embedded_rows(config.runs, dir, &rbdimg);
        }
        if config.scale {
            report += &scale::local_rows(config.runs, dir, &rbdimg);
        }
        if config.convert || config.crypto || config.layering || config.scale || config.rootfs {
            report += &with_cluster(root, dir, |conf| {
                let mut rows = String::new();
                if config.convert {
                    rows += &convert_rows(&config, dir, &rbdimg, conf);
                }
                if config.crypto {
                    rows += &crypto::rows(config.runs, config.quick, dir, &rbdimg, conf);
                }
                if config.layering {
                    rows += &layering::ceph_rows(config.runs, config.quick, dir, &rbdimg, conf);
                }
                if config.scale {
                    rows += &scale::ceph_rows(config.runs, dir, &rbdimg, conf);
                }
                if config.rootfs {
                    rows += &rootfs::rows(config.runs, root, dir, &rbdimg, conf);
                }
                rows
            });
        }
    }));
    let _ = fs::remove_dir_all(dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    if let Some(parent) = config.out.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(&config.out, &report).unwrap();
    print!("{report}");
    eprintln!("results written to {}", config.out.display());
}

/// Runs `f` with the ceph.conf of a bluestore cluster started in `dir`,
/// stopping the cluster afterwards whatever happens.
fn with_cluster(root: &Path, dir: &Path, f: impl FnOnce(&str) -> String) -> String {
    let cluster = dir.join("cluster");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = root.join("tests/ceph/cluster.sh");
    eprintln!("starting a bluestore cluster in {}", cluster.display());
    sh(&format!(
        "CEPH_TEST_PORT={port} bash {} start {} bluestore",
        script.display(),
        cluster.display()
    ));
    let conf = cluster.join("ceph.conf").display().to_string();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&conf)));
    sh(&format!(
        "bash {} stop {}",
        script.display(),
        cluster.display()
    ));
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The embedded store against a local raw file: the same `convert -n` of
/// incompressible data into an existing target of its size, `sync`
/// included, with the source in the page cache and without.
fn store_rows(config: &Config, dir: &Path, rbdimg: &Path) -> String {
    let size = if config.quick {
        256u64 << 20
    } else {
        1u64 << 30
    };
    let src = dir.join("random.raw");
    eprintln!("making a source: {} MiB of random data", size >> 20);
    make_random(&src, size);
    let ours = rbdimg.display().to_string();
    let file = dir.join("file-{n}").display().to_string();
    let store = dir.join("store-{n}").display().to_string();
    let image = format!("rbd:rbd/img:store={store}");
    // Made durable by `sync` (the whole system's page cache), or by
    // rbdimg's own flush at the end (`-t writeback`: only its target).
    let target = |label, dst: &str, flush: bool| Tool {
        label,
        run: if flush {
            format!("{ours} convert -t writeback -n -f raw -O raw {{src}} {dst}")
        } else {
            format!("{ours} convert -n -f raw -O raw {{src}} {dst} && sync")
        },
        setup: Some(format!("{ours} create -q -f raw {dst} {size}")),
    };
    let case = |title: &str, cache, flush| Case {
        title: title.into(),
        tools: vec![
            target("local raw file", &file, flush),
            target("embedded store", &image, flush),
        ],
        src: src.display().to_string(),
        dst: String::new(),
        cleanup: format!("rm -rf {file} {store}"),
        cache,
    };
    let mut report = String::new();
    writeln!(
        report,
        "{} MiB of incompressible data: `rbdimg convert -n -f raw -O raw` into an existing \
         raw file and into an existing image in a fresh embedded store, made durable by a \
         `sync` after it or by `-t writeback` (timed); everything synced before each run; \
         median of {} interleaved runs; {}, {} cores. CPU is user+sys of the command and \
         `sync`.\n",
        size >> 20,
        config.runs,
        filesystem(dir),
        cores()
    )
    .unwrap();
    report += &time_cases(
        &[
            case(
                "embedded store vs local file (sync; source in page cache)",
                Cache::Synced,
                false,
            ),
            case(
                "embedded store vs local file (sync; page cache dropped before each run)",
                Cache::Dropped,
                false,
            ),
            case(
                "embedded store vs local file (-t writeback; source in page cache)",
                Cache::Synced,
                true,
            ),
        ],
        config.runs,
    );
    report
}

/// The type of the filesystem holding `dir`, e.g. "ext4".
fn filesystem(dir: &Path) -> String {
    let out = Command::new("findmnt")
        .args(["-n", "-o", "FSTYPE", "-T"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn convert_rows(config: &Config, dir: &Path, rbdimg: &Path, conf: &str) -> String {
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
    let dst = dir.join("dst-{n}").display().to_string();
    let local = |title: &str, src: String, fmt: &str, out_fmt: &str| {
        local_convert(&ours, title, &src, fmt, out_fmt, &dst)
    };
    let cases = vec![
        into_rbd(&ours, conf, "raw -> rbd", &raw, "raw", true),
        into_rbd(&ours, conf, "qcow2 -> rbd", &qcow2, "qcow2", false),
        into_rbd(
            &ours,
            conf,
            "compressed qcow2 -> rbd",
            &compressed,
            "qcow2",
            false,
        ),
        from_rbd(&ours, conf, dir, "rbd -> qcow2", rbd_source, "qcow2"),
        from_rbd(&ours, conf, dir, "rbd -> raw (local)", rbd_source, "raw"),
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
    writeln!(
        report,
        "{} source, {} MiB of data in 4 MiB extents; median of {} interleaved runs; single-node Ceph \
         16.2 (bluestore) on 127.0.0.1, {} cores. CPU is the converting process's user+sys.\n",
        if config.quick { "512 MiB" } else { "4 GiB" },
        data >> 20,
        config.runs,
        cores()
    )
    .unwrap();
    report += &time_cases(&cases, config.runs);
    report
}

/// A source converted into a new RBD image on the cluster of `conf` by
/// rbdimg, qemu-img (default and `-m 16 -W`) and, for raw, `rbd import`.
/// rbdimg and qemu-img converting a local file into a local file (`dst`
/// with the run number for {n}).
fn local_convert(ours: &str, title: &str, src: &str, fmt: &str, out_fmt: &str, dst: &str) -> Case {
    Case {
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
        dst: dst.to_string(),
        cleanup: format!("rm -f {dst}"),
        cache: Cache::Untouched,
    }
}

fn into_rbd(ours: &str, conf: &str, title: &str, src: &Path, fmt: &str, with_import: bool) -> Case {
    let mut tools = vec![
        tool(
            "rbdimg",
            format!("{ours} convert -f {fmt} -O raw {{src}} {{dst}}"),
        ),
        tool(
            "qemu-img",
            format!("qemu-img convert -f {fmt} -O raw {{src}} {{dst}}"),
        ),
        tool(
            "qemu-img -m 16 -W",
            format!("qemu-img convert -m 16 -W -f {fmt} -O raw {{src}} {{dst}}"),
        ),
    ];
    if with_import {
        tools.push(tool(
            "rbd import",
            format!("rbd --conf {conf} import --no-progress {{src}} {{dst_plain}}"),
        ));
    }
    Case {
        title: title.into(),
        tools,
        src: src.display().to_string(),
        dst: format!("rbd:rbd/bench-dst-{{n}}:conf={conf}"),
        cleanup: format!("rbd --conf {conf} rm rbd/bench-dst-{{n}} >/dev/null 2>&1"),
        cache: Cache::Untouched,
    }
}

/// The RBD image `image` (`pool/name`) converted into a local file by
/// rbdimg and qemu-img, and exported (raw) by `rbd export`.
fn from_rbd(ours: &str, conf: &str, dir: &Path, title: &str, image: &str, out_fmt: &str) -> Case {
    let dst = dir.join("dst-{n}").display().to_string();
    Case {
        title: title.into(),
        tools: vec![
            tool(
                "rbdimg",
                format!("{ours} convert -f raw -O {out_fmt} {{src}} {{dst}}"),
            ),
            tool(
                "qemu-img",
                format!("qemu-img convert -f raw -O {out_fmt} {{src}} {{dst}}"),
            ),
            tool(
                "rbd export",
                format!("rbd --conf {conf} export --no-progress {image} {{dst}}"),
            ),
        ],
        src: format!("rbd:{image}:conf={conf}"),
        dst: dst.clone(),
        cleanup: format!("rm -f {dst}"),
        cache: Cache::Untouched,
    }
}

/// Times every case's tools in turn, `runs` rounds interleaved; returns
/// one markdown table per case.
fn time_cases(cases: &[Case], runs: usize) -> String {
    cases
        .iter()
        .map(|case| time_case(case, runs).table)
        .collect()
}

/// One tool's medians over the timed rounds.
#[derive(Clone, Copy)]
struct Median {
    wall: Duration,
    cpu: Duration,
    rss_kib: u64,
}

/// A timed case: its markdown table, and each tool's medians (`None` when
/// the tool failed).
struct Timed {
    table: String,
    medians: Vec<Option<Median>>,
}

/// Times a case's tools in turn, `runs` rounds interleaved, after one
/// untimed warm-up round.
fn time_case(case: &Case, runs: usize) -> Timed {
    eprintln!("== {}", case.title);
    let mut samples: Vec<Vec<Sample>> = case.tools.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Option<String>> = case.tools.iter().map(|_| None).collect();
    let mut n = 0;
    // Round 0 warms up (caches, allocator, a first run's outliers) untimed.
    for round in 0..=runs {
        for (i, t) in case.tools.iter().enumerate() {
            n += 1;
            let dst = case.dst.replace("{n}", &n.to_string());
            let dst_plain = format!("rbd/bench-dst-{n}");
            let fill = |template: &str| {
                template
                    .replace("{src}", &case.src)
                    .replace("{dst_plain}", &dst_plain)
                    .replace("{dst}", &dst)
                    .replace("{n}", &n.to_string())
            };
            if let Some(setup) = &t.setup {
                sh(&fill(setup));
            }
            settle(case.cache);
            match measure(&fill(&t.run)) {
                Ok(sample) => {
                    eprintln!(
                        "  {:<18} {}s cpu {}s rss {} MiB{}",
                        t.label,
                        secs(sample.wall),
                        secs(sample.cpu),
                        sample.rss_kib / 1024,
                        if round == 0 { " (warm-up)" } else { "" }
                    );
                    if round > 0 {
                        samples[i].push(sample);
                    }
                }
                Err(why) => {
                    eprintln!("  {:<18} FAILED: {why}", t.label);
                    failures[i] = Some(why);
                }
            }
            let _ = Command::new("sh")
                .arg("-c")
                .arg(case.cleanup.replace("{n}", &n.to_string()))
                .status();
        }
    }
    let base = case.tools[0].label;
    let mut table = String::new();
    writeln!(table, "## {}\n", case.title).unwrap();
    writeln!(
        table,
        "| tool | wall s | cpu s | peak RSS MiB | wall vs {base} | cpu vs {base} | RSS vs {base} |"
    )
    .unwrap();
    writeln!(table, "|---|---|---|---|---|---|---|").unwrap();
    let medians: Vec<Option<Median>> = samples
        .iter()
        .zip(&failures)
        .map(|(s, failed)| {
            (failed.is_none() && !s.is_empty()).then(|| Median {
                wall: median(s.iter().map(|x| x.wall).collect()),
                cpu: median(s.iter().map(|x| x.cpu).collect()),
                rss_kib: median(s.iter().map(|x| x.rss_kib).collect()),
            })
        })
        .collect();
    let ratio = |a: f64, b: Option<f64>| match b {
        Some(b) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    };
    let first = medians[0];
    for ((t, m), failed) in case.tools.iter().zip(&medians).zip(&failures) {
        match (m, failed) {
            (Some(m), _) => writeln!(
                table,
                "| {} | {} | {} | {} | {} | {} | {} |",
                t.label,
                secs(m.wall),
                secs(m.cpu),
                m.rss_kib / 1024,
                ratio(m.wall.as_secs_f64(), first.map(|f| f.wall.as_secs_f64())),
                ratio(m.cpu.as_secs_f64(), first.map(|f| f.cpu.as_secs_f64())),
                ratio(m.rss_kib as f64, first.map(|f| f.rss_kib as f64)),
            ),
            (None, why) => writeln!(
                table,
                "| {} | failed: {} | | | | | |",
                t.label,
                why.as_deref().unwrap_or("no run")
            ),
        }
        .unwrap();
    }
    writeln!(table).unwrap();
    Timed { table, medians }
}
