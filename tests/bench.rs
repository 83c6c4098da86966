//! `bench` against qemu-img: the same lines (the run's time aside), exit
//! codes and errors for every option; writes land in the image.

use crate::util::{Oracle, Outcome, Twin, make_raw, require, sh};

/// The time of "Run completed in 0.123 seconds." is this run's own.
fn shape(mut out: Outcome) -> Outcome {
    let re_time = |line: &str| match (line.find("in "), line.find(" seconds.")) {
        (Some(a), Some(b)) if line.starts_with("Run completed") => {
            format!("{}T{}", &line[..a + 3], &line[b..])
        }
        _ => line.to_string(),
    };
    out.stdout = out.stdout.lines().map(|l| re_time(l) + "\n").collect();
    out
}

#[test]
fn bench_matches_qemu_img() {
    if !require(Oracle::QemuImg) {
        return;
    }
    let twin = Twin::new(|dir| {
        make_raw(&dir.join("b.raw"), 16 << 20, &[]);
        sh(dir, "qemu-img create -q -f qcow2 q.qcow2 16M");
    });
    let cases: &[&[&str]] = &[
        &["-c", "100", "b.raw"],
        &["-c", "100", "-q", "b.raw"],
        &["-c", "100", "-w", "b.raw"],
        &[
            "-c",
            "100",
            "-w",
            "-f",
            "raw",
            "--flush-interval",
            "64",
            "b.raw",
        ],
        &[
            "-c",
            "100",
            "-w",
            "-f",
            "raw",
            "--flush-interval=64",
            "--no-drain",
            "b.raw",
        ],
        &[
            "-c", "100", "-d", "4", "-s", "8k", "-S", "64k", "-o", "1M", "b.raw",
        ],
        &["-c", "5", "-d", "2", "-w", "-s", "1M", "-S", "7M", "b.raw"],
        &[
            "--count=10",
            "--depth=1",
            "--buffer-size=1k",
            "--step-size=2k",
            "--offset=1k",
            "b.raw",
        ],
        &[
            "-c",
            "10",
            "--cache=writeback",
            "--aio=threads",
            "--write",
            "b.raw",
        ],
        &["-c", "10", "-i", "io_uring", "b.raw"],
        &["-c", "10", "-n", "-t", "none", "b.raw"],
        &[
            "-c",
            "300",
            "-w",
            "-t",
            "writethrough",
            "-f",
            "raw",
            "-d",
            "1",
            "b.raw",
        ],
        &["-c", "10", "--pattern", "0x41", "-w", "-f", "raw", "b.raw"],
        &[
            "-c",
            "10",
            "-U",
            "--image-opts",
            "driver=raw,file.filename=b.raw",
        ],
        &["-c", "500", "-w", "-f", "qcow2", "-s", "64k", "q.qcow2"],
        &["-c", "10", "-o", "16380k", "b.raw"],
        &["-c", "10", "-o", "100M", "b.raw"],
        // Errors.
        &["-c", "x", "b.raw"],
        &["-c", "0", "b.raw"],
        &["-c", "3000000000", "b.raw"],
        &["-d", "0", "b.raw"],
        &["-s", "3G", "b.raw"],
        &["-S", "-1", "b.raw"],
        &["-o", "x", "b.raw"],
        &["-t", "foo", "b.raw"],
        &["-i", "foo", "b.raw"],
        &["-i", "native", "-c", "10", "b.raw"],
        &["-n", "b.raw"],
        &["--pattern", "300", "b.raw"],
        &["--flush-interval", "10", "b.raw"],
        &["-w", "--flush-interval", "10", "b.raw"],
        &["-c", "10"],
        &["-c", "10", "a", "b"],
        &["-c", "10", "nonexistent"],
        &["-c", "10", "-f", "qcow2", "b.raw"],
        &["--image-opts", "-f", "raw", "b.raw"],
        &["--f", "x"],
        &["--n", "x"],
        &["--c", "x"],
        &["--q", "x"],
    ];
    for case in cases {
        let mut args = vec!["bench"];
        args.extend_from_slice(case);
        let (ours, theirs) = twin.run(&args);
        assert_eq!(shape(ours), shape(theirs), "bench {case:?}");
    }
    // The pattern reached the image on both sides.
    twin.assert_same_file("b.raw");
    twin.assert_same(&[
        "compare", "-f", "qcow2", "-F", "qcow2", "q.qcow2", "q.qcow2",
    ]);
}
