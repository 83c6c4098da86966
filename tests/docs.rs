//! man/ and completions/ are generated from the clap definitions and
//! committed; this fails when they are stale.

use std::path::Path;

#[test]
fn generated_docs_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut stale = Vec::new();
    for (path, contents) in rbdimg::cli::docs::generate() {
        if std::fs::read(root.join(&path)).ok().as_deref() != Some(&contents[..]) {
            stale.push(path);
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated docs {stale:?}: run `cargo run --bin gen-docs` and commit"
    );
}
