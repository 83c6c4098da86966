//! `measure` of RBD images on both backends: an image counts its existing
//! objects as data, exactly as a local file with the same whole objects
//! of data does.

use super::{Backend, both_backends, raw_source, rbdimg_ok, unique};

fn measure_counts_existing_objects(b: &Backend) {
    const M: usize = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let sparse = raw_source(
        dir.path(),
        "a.raw",
        20 << 20,
        &[(0, 1, 5000), (12 << 20, 2, 4096)],
    );
    // What the image holds: objects 0 and 3, whole.
    let objects = raw_source(
        dir.path(),
        "b.raw",
        20 << 20,
        &[(0, 1, 4 * M), (12 << 20, 2, 4 * M)],
    );
    let name = b.name(&unique("measure"));
    rbdimg_ok(&["convert", "-O", "raw", sparse.to_str().unwrap(), &name]);
    for target in ["raw", "qcow2"] {
        let ours = rbdimg_ok(&["measure", "-f", "raw", "-O", target, &name]);
        let file = rbdimg_ok(&["measure", "-O", target, objects.to_str().unwrap()]);
        assert_eq!(ours.stdout, file.stdout, "-O {target}");
    }
    let out = rbdimg_ok(&["measure", "-O", "qcow2", "--output=json", &name]);
    assert!(
        out.stdout.contains(r#""required": 8716288"#),
        "{}",
        out.stdout
    );
}

both_backends!(measure_counts_existing_objects);
