//! The panic hook of src/cli/panic_hook.rs, in processes of its own since
//! it ends the process. This binary re-runs itself once per scenario (the
//! scenario in RBDIMG_PANIC_SCENARIO), installs the hook as rbdimg's main
//! does and panics on some thread while others wait for that thread
//! forever; the parent requires one "internal error" line, exit status 70
//! and an end within seconds, whichever thread panicked.

use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rbdimg::cli::panic_hook::{self, EXIT_INTERNAL_ERROR};

const SCENARIO: &str = "RBDIMG_PANIC_SCENARIO";

/// Where the panic happens.
const SCENARIOS: &[&str] = &["main", "std-thread", "rayon-worker"];

/// A turn that is never given: what a worker waits for when the thread
/// that should pass it on has panicked.
fn wait_forever(gate: &(Mutex<bool>, Condvar)) {
    let mut open = gate.0.lock().unwrap();
    while !*open {
        open = gate.1.wait(open).unwrap();
    }
}

fn child(scenario: &str) {
    panic_hook::install("rbdimg");
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    match scenario {
        "main" => panic!("boom on the main thread"),
        "std-thread" => {
            std::thread::spawn(|| panic!("boom on a std thread"));
            wait_forever(&gate);
        }
        "rayon-worker" => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(2)
                .build()
                .unwrap();
            pool.scope(|s| {
                s.spawn(|_| wait_forever(&gate));
                s.spawn(|_| panic!("boom on a rayon worker"));
            });
        }
        other => unreachable!("unknown scenario {other}"),
    }
    unreachable!("the scenario returned");
}

fn parent() {
    let me = std::env::current_exe().unwrap();
    for scenario in SCENARIOS {
        let started = Instant::now();
        let mut child = Command::new(&me)
            .env(SCENARIO, scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                panic!("{scenario}: the process hung after a panic");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert_eq!(
            status.code(),
            Some(EXIT_INTERNAL_ERROR),
            "{scenario}: {status:?} {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{scenario}: {stderr}");
        assert!(
            lines[0].starts_with("rbdimg: internal error: boom on ")
                && lines[0].contains(" at tests/panic_hook.rs:"),
            "{scenario}: {stderr}"
        );
        println!("panic hook, {scenario}: ok ({:?})", started.elapsed());
    }
}

fn main() {
    match std::env::var(SCENARIO) {
        Ok(scenario) => child(&scenario),
        Err(_) => parent(),
    }
}
