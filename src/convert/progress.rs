//! How far a long command has got, as qemu-img counts it (`qemu-progress.c`):
//! a percentage of the work to do, handed to a [`Report`] the command
//! layer chose (which prints it, or not). Workers advance it from any
//! thread.

use std::sync::{Arc, Mutex};

/// Where progress goes: the command layer prints it its own way.
pub trait Report: Send + Sync {
    /// The work done so far, in percent (0..=100).
    fn update(&self, percent: f32);
    /// The command is done (qemu's `qemu_progress_end`).
    fn end(&self);
}

/// No report at all (library callers, tests).
pub struct Silent;

impl Report for Silent {
    fn update(&self, _: f32) {}
    fn end(&self) {}
}

pub struct Progress {
    total: u64,
    done: Mutex<u64>,
    report: Arc<dyn Report>,
}

impl Progress {
    /// Progress over `total` units of work.
    pub fn new(total: u64, report: Arc<dyn Report>) -> Progress {
        Progress {
            total,
            done: Mutex::new(0),
            report,
        }
    }

    pub fn silent() -> Progress {
        Progress::new(0, Arc::new(Silent))
    }

    pub fn advance(&self, units: u64) {
        if units == 0 || self.total == 0 {
            return;
        }
        // Under the lock so that reports come in order.
        let mut done = self.done.lock().expect("no poisoning");
        *done = (*done + units).min(self.total);
        self.report
            .update((100.0 * *done as f64 / self.total as f64) as f32);
    }
}
