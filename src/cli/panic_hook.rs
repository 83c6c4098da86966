//! A panic is a bug in rbdimg, never an answer: on whichever thread it
//! happens (main, a convert worker, a librados callback), the process
//! prints one line, "<prog>: internal error: <message> at <file>:<line>",
//! and ends at once with [`EXIT_INTERNAL_ERROR`]. Ending at once matters:
//! the panicking thread may hold a lock or a turn other threads wait for,
//! and unwinding through a C callback would abort anyway.

use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};

/// Exit status after a panic (sysexits' EX_SOFTWARE): distinct from every
/// status qemu-img gives a result meaning to (compare's 1 = "different",
/// check's 2/3 = corruptions/leaks).
pub const EXIT_INTERNAL_ERROR: i32 = 70;

/// Installs the hook for the whole process.
pub fn install(prog: &str) {
    let prog = prog.to_string();
    std::panic::set_hook(Box::new(move |info| report_and_exit(&prog, info)));
}

fn report_and_exit(prog: &str, info: &PanicHookInfo) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if REPORTED.swap(true, Ordering::SeqCst) {
        // Another thread is already reporting and ending the process.
        loop {
            std::thread::park();
        }
    }
    // Straight to fd 2: another thread may hold the lock of io::stderr().
    let line = line(prog, info);
    // SAFETY: writes from a live buffer of the given length.
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    // _exit, not exit: other threads keep running, and running atexit
    // handlers and C++ destructors (librados) under them can crash or hang.
    // SAFETY: _exit only ends the process.
    unsafe { libc::_exit(EXIT_INTERNAL_ERROR) }
}

fn line(prog: &str, info: &PanicHookInfo) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown panic");
    // One line, whatever the message holds.
    let message = message.replace('\n', " ");
    match info.location() {
        Some(at) => format!(
            "{prog}: internal error: {message} at {}:{}\n",
            at.file(),
            at.line()
        ),
        None => format!("{prog}: internal error: {message}\n"),
    }
}
