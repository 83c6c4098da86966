//! The encryption rows: 1 GiB of incompressible data (`--quick`: 256 MiB)
//! into and out of LUKS targets (aes-256-xts), rbdimg against qemu-img
//! (default and `-m 16 -W`) in the same run:
//!
//! * raw -> encrypted qcow2 (local; the convert creates it, with
//!   `encrypt.iter-time=10` so key-slot setup does not hide the data path);
//! * raw -> encrypted RBD image on the cluster (formatted by qemu-img's rbd
//!   driver beforehand, untimed: qemu-img cannot convert into a new one);
//! * and back: each encrypted image -> raw (local).
//!
//! Opening librbd's LUKS header costs both tools the same key-slot
//! derivation (librbd's PBKDF2 iteration count, about 2 s here), inside
//! the timed run. The goal under each table: rbdimg's wall time no longer
//! than the faster qemu-img's.

use std::fmt::Write as _;
use std::path::Path;

use super::{Cache, Case, Tool, cores, make_random, sh};

const SECRET: &str = "--object secret,id=s0,data=bench-passphrase";

/// rbdimg, qemu-img and qemu-img `-m 16 -W` running `args` (the convert's
/// arguments after `convert`), each after `setup` if there is one.
fn three(ours: &str, args: &str, setup: Option<&str>) -> Vec<Tool> {
    [
        ("rbdimg", format!("{ours} convert {SECRET} {args}")),
        ("qemu-img", format!("qemu-img convert {SECRET} {args}")),
        (
            "qemu-img -m 16 -W",
            format!("qemu-img convert -m 16 -W {SECRET} {args}"),
        ),
    ]
    .into_iter()
    .map(|(label, run)| Tool {
        label,
        run,
        setup: setup.map(str::to_string),
    })
    .collect()
}

/// Times a case and says under its table whether rbdimg was at least as
/// fast as both qemu-img runs.
fn timed_with_goal(case: &Case, runs: usize) -> String {
    let timed = super::time_case(case, runs);
    let mut out = timed.table;
    let walls: Vec<Option<f64>> = timed
        .medians
        .iter()
        .map(|m| m.map(|m| m.wall.as_secs_f64()))
        .collect();
    let verdict = match (walls[0], walls[1], walls[2]) {
        (Some(ours), Some(a), Some(b)) => format!(
            "{:.2}x of the faster qemu-img: {}",
            a.min(b) / ours,
            if ours <= a.min(b) { "met" } else { "NOT met" }
        ),
        _ => "a tool failed: NOT met".to_string(),
    };
    writeln!(
        out,
        "goal (rbdimg at least as fast as qemu-img): {verdict}\n"
    )
    .unwrap();
    out
}

pub fn rows(runs: usize, quick: bool, dir: &Path, rbdimg: &Path, conf: &str) -> String {
    let size: u64 = if quick { 256 << 20 } else { 1 << 30 };
    let raw = dir.join("crypto-src.raw");
    eprintln!(
        "making the encryption source: {} MiB of random data",
        size >> 20
    );
    make_random(&raw, size);
    let ours = rbdimg.display().to_string();
    let local_dst = dir.join("crypto-dst-{n}").display().to_string();
    let rm_local = format!("rm -f {local_dst}");
    let rbd_dst = format!("rbd:rbd/crypto-dst-{{n}}:conf={conf}");
    let rm_rbd = format!("rbd --conf {conf} rm rbd/crypto-dst-{{n}} >/dev/null 2>&1");
    let luks_qcow2 = "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10";
    let rbd_opts = |image: &str| {
        format!(
            "driver=rbd,pool=rbd,image={image},conf={conf},encrypt.format=luks,encrypt.key-secret=s0"
        )
    };

    // The encrypted sources the decrypting rows read, made once by qemu-img.
    let qcow2_src = dir.join("crypto-src.qcow2");
    sh(&format!(
        "qemu-img convert {SECRET} -f raw -O qcow2 -o {luks_qcow2} {} {}",
        raw.display(),
        qcow2_src.display()
    ));
    sh(&format!(
        "qemu-img create -q {SECRET} -f raw -o encrypt.format=luks,encrypt.key-secret=s0 \
         rbd:rbd/crypto-src:conf={conf} {size} && qemu-img convert {SECRET} -n -f raw \
         --target-image-opts {} {}",
        raw.display(),
        rbd_opts("crypto-src")
    ));
    let qcow2_opts = format!(
        "driver=qcow2,encrypt.key-secret=s0,file.filename={}",
        qcow2_src.display()
    );

    let case = |title: &str, tools, src: String, dst: &str, cleanup: &str| Case {
        title: title.into(),
        tools,
        src,
        dst: dst.to_string(),
        cleanup: cleanup.to_string(),
        cache: Cache::Untouched,
    };
    let cases = [
        case(
            "raw -> encrypted qcow2 (local)",
            three(
                &ours,
                &format!("-f raw -O qcow2 -o {luks_qcow2} {{src}} {{dst}}"),
                None,
            ),
            raw.display().to_string(),
            &local_dst,
            &rm_local,
        ),
        case(
            "raw -> encrypted rbd",
            three(
                &ours,
                &format!(
                    "-n -f raw --target-image-opts {{src}} {}",
                    rbd_opts("crypto-dst-{n}")
                ),
                Some(&format!(
                    "qemu-img create -q {SECRET} -f raw -o encrypt.format=luks,encrypt.key-secret=s0 {{dst}} {size}"
                )),
            ),
            raw.display().to_string(),
            &rbd_dst,
            &rm_rbd,
        ),
        case(
            "encrypted qcow2 -> raw (local)",
            three(&ours, "-O raw --image-opts {src} {dst}", None),
            qcow2_opts,
            &local_dst,
            &rm_local,
        ),
        case(
            "encrypted rbd -> raw (local)",
            three(&ours, "-O raw --image-opts {src} {dst}", None),
            rbd_opts("crypto-src"),
            &local_dst,
            &rm_local,
        ),
    ];
    let mut report = String::new();
    writeln!(
        report,
        "Encryption: {} MiB of incompressible data, LUKS aes-256-xts; median of {runs} interleaved \
         runs; single-node Ceph 16.2 (bluestore) on 127.0.0.1, {} cores.\n",
        size >> 20,
        cores()
    )
    .unwrap();
    for case in &cases {
        report += &timed_with_goal(case, runs);
    }
    sh(&format!(
        "rbd --conf {conf} rm rbd/crypto-src >/dev/null 2>&1"
    ));
    report
}
