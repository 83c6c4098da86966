//! The embedded store checks `rbd:` settings against its copy of Ceph's
//! option table: that copy must be the installed Ceph's.

use std::path::Path;
use std::process::Command;

use super::shared;

#[test]
fn the_embedded_option_table_is_the_installed_cephs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(repo.join("tests/ceph/options.sh"))
        .arg(shared().dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let table = std::fs::read_to_string(repo.join("src/rados/embedded/ceph_options.tsv")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == table,
        "src/rados/embedded/ceph_options.tsv differs from the installed Ceph's options: \
         regenerate it with tests/ceph/options.sh"
    );
}
