//! Notes for the user from deep in the layers, such as "waiting for a dead
//! lock owner's watch to expire", without drivers printing: the program's
//! edge decides where they go (rbdimg prints them as "<prog>: <note>" on
//! stderr); until it does, they are dropped.

use std::sync::OnceLock;

type Sink = Box<dyn Fn(&str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Where notes go, for the whole process (the first call wins).
pub fn set_sink(sink: impl Fn(&str) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
}

/// Tells the user something worth knowing while an operation goes on.
pub fn notice(note: &str) {
    if let Some(sink) = SINK.get() {
        sink(note);
    }
}
