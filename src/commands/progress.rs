//! `-p` and SIGUSR1, as qemu-img reports progress: with `-p` on a terminal
//! rbdimg's bar (stderr); with `-p` elsewhere qemu-img's plain lines on
//! stdout, `    (12.50/100%)` each ended by a carriage return, printed
//! when the value moved by more than the command's step, and a newline
//! at the end; without `-p`, SIGUSR1 prints the current value on stderr
//! (`    (12.50/100%)` and a newline). The signal handler only sets a flag;
//! the next progress update prints.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::convert::progress::Report;

static SIGUSR1_PENDING: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigusr1(_: libc::c_int) {
    SIGUSR1_PENDING.store(true, Ordering::Relaxed);
}

/// Catches SIGUSR1 for the whole process (every thread).
fn catch_sigusr1() {
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; the sigaction struct is fully initialised.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigusr1 as *const () as libc::sighandler_t;
        libc::sigfillset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut());
    }
}

/// Where a command with `-p` reports (qemu's `qemu_progress_init`):
/// `min_skip` is qemu-img's step between printed values for that command
/// (1 for convert, 2 for compare). The command ends it on every way out
/// once it exists, as qemu-img does.
pub fn reporter(enabled: bool, min_skip: f32) -> Arc<dyn Report> {
    catch_sigusr1();
    match enabled {
        true if std::io::stdout().is_terminal() => Arc::new(Bar::new()),
        true => Arc::new(Plain {
            min_skip,
            last: Mutex::new(None),
        }),
        false => Arc::new(OnSignal {
            current: Mutex::new(0.0),
        }),
    }
}

fn line(percent: f32) -> String {
    format!("    ({percent:3.2}/100%)")
}

/// qemu-img's `progress_simple_print`.
struct Plain {
    min_skip: f32,
    last: Mutex<Option<f32>>,
}

impl Report for Plain {
    fn update(&self, percent: f32) {
        let mut last = self.last.lock().expect("no poisoning");
        let moved = (percent - last.unwrap_or(0.0)).abs() > self.min_skip;
        if moved || percent == 100.0 || percent == 0.0 {
            *last = Some(percent);
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "{}\r", line(percent));
            let _ = out.flush();
        }
    }

    fn end(&self) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out);
        let _ = out.flush();
    }
}

/// qemu-img's `progress_dummy_print`: silent until SIGUSR1 asks.
struct OnSignal {
    current: Mutex<f32>,
}

impl Report for OnSignal {
    fn update(&self, percent: f32) {
        *self.current.lock().expect("no poisoning") = percent;
        if SIGUSR1_PENDING.swap(false, Ordering::Relaxed) {
            let _ = writeln!(std::io::stderr(), "{}", line(percent));
        }
    }

    fn end(&self) {}
}

/// rbdimg's bar on a terminal.
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Bar {
        let bar = ProgressBar::with_draw_target(Some(10000), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {percent:>3}% {elapsed_precise} ETA {eta}")
                .expect("static template is valid"),
        );
        Bar(bar)
    }
}

impl Report for Bar {
    fn update(&self, percent: f32) {
        self.0.set_position((percent * 100.0) as u64);
    }

    fn end(&self) {
        self.0.finish();
    }
}
