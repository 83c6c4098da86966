//! What a driver has to tell the user besides its result: qcow2's
//! corruption events, the warning that a raw image's format was guessed,
//! a tail that could not be truncated, an RBD lock wait for a dead owner,
//! an embedded store open to other users. Drivers report these as data; the
//! command layer decides how they print (with the program name QEMU puts
//! in front of some of them), so no driver writes to stderr itself.

use std::fmt;
use std::sync::{Arc, Mutex};

/// One message, kept in the form QEMU prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diagnostic {
    /// A line printed as it is (QEMU's `fprintf(stderr)`, `error_printf`).
    Line(String),
    /// Text printed as it is, without a newline (QEMU's `error_printf` of
    /// a message that has none).
    Text(String),
    /// A warning: "<program>: warning: <text>" (QEMU's `warn_report`).
    Warning(String),
    /// A failure that does not fail the operation: "<program>: <text>"
    /// (QEMU's `error_report`).
    Error(String),
    /// News while an operation goes on, such as a wait: "<program>: <text>"
    /// (QEMU's `info_report`).
    Info(String),
}

/// Where drivers send diagnostics: a handle shared by every layer and
/// thread of one open image. By default they are kept for the caller to
/// `take`; the command layer forwards them to the terminal as they come.
#[derive(Clone, Default)]
pub struct Diagnostics(Arc<Sink>);

enum Sink {
    Kept(Mutex<Vec<Diagnostic>>),
    Forwarded(Box<dyn Fn(&Diagnostic) + Send + Sync>),
}

impl Default for Sink {
    fn default() -> Sink {
        Sink::Kept(Mutex::new(Vec::new()))
    }
}

impl Diagnostics {
    /// A sink that hands each diagnostic to `forward` as it is reported.
    pub fn forwarded(forward: impl Fn(&Diagnostic) + Send + Sync + 'static) -> Diagnostics {
        Diagnostics(Arc::new(Sink::Forwarded(Box::new(forward))))
    }

    pub fn report(&self, diagnostic: Diagnostic) {
        match &*self.0 {
            Sink::Kept(kept) => kept
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(diagnostic),
            Sink::Forwarded(forward) => forward(&diagnostic),
        }
    }

    pub fn line(&self, text: impl Into<String>) {
        self.report(Diagnostic::Line(text.into()));
    }

    pub fn text(&self, text: impl Into<String>) {
        self.report(Diagnostic::Text(text.into()));
    }

    pub fn warning(&self, text: impl Into<String>) {
        self.report(Diagnostic::Warning(text.into()));
    }

    pub fn error(&self, text: impl Into<String>) {
        self.report(Diagnostic::Error(text.into()));
    }

    pub fn info(&self, text: impl Into<String>) {
        self.report(Diagnostic::Info(text.into()));
    }

    /// The diagnostics kept so far, oldest first (none when forwarded).
    pub fn take(&self) -> Vec<Diagnostic> {
        match &*self.0 {
            Sink::Kept(kept) => {
                std::mem::take(&mut *kept.lock().unwrap_or_else(|p| p.into_inner()))
            }
            Sink::Forwarded(_) => Vec::new(),
        }
    }
}

impl fmt::Debug for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match &*self.0 {
            Sink::Kept(_) => "Diagnostics(kept)",
            Sink::Forwarded(_) => "Diagnostics(forwarded)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_taken_or_forwarded_at_once() {
        let kept = Diagnostics::default();
        kept.clone().line("a");
        kept.warning("b");
        assert_eq!(
            kept.take(),
            [
                Diagnostic::Line("a".into()),
                Diagnostic::Warning("b".into())
            ]
        );
        assert!(kept.take().is_empty());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let forwarded = Diagnostics::forwarded(move |d| log.lock().unwrap().push(d.clone()));
        forwarded.error("c");
        assert_eq!(*seen.lock().unwrap(), [Diagnostic::Error("c".into())]);
        assert!(forwarded.take().is_empty());
    }
}
