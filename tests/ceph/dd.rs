//! `dd` into RBD images next to qemu-img's rbd driver on a real cluster:
//! the same image (size, bytes, objects) for raw and qcow2 outputs.

use super::{rbdimg_ok, shared, unique};
use crate::util::{Oracle, make_raw, qemu_img, require};

#[test]
fn dd_into_rbd_matches_qemu_img() {
    if !require(Oracle::QemuImg) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a.raw");
    make_raw(&src, 10 << 20, &[(0, 1, 5000), (9 << 20, 2, 4096)]);
    let input = format!("if={}", src.display());
    for args in [
        &["bs=64k", "skip=3"][..],
        &["-O", "qcow2", "bs=1M", "count=9"],
    ] {
        let (ours, theirs) = (unique("dd-ours"), unique("dd-theirs"));
        let run = |image: &str| {
            let mut all = vec![
                "dd".to_string(),
                input.clone(),
                format!("of={}", c.name(image)),
            ];
            all.extend(args.iter().map(|a| a.to_string()));
            all
        };
        let ours_args = run(&ours);
        rbdimg_ok(&ours_args.iter().map(String::as_str).collect::<Vec<_>>());
        let theirs_args = run(&theirs);
        let out = qemu_img(
            dir.path(),
            &theirs_args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(out.code, 0, "{out:#?}");
        assert!(
            c.export(&ours) == c.export(&theirs),
            "{args:?}: different bytes"
        );
        let diff = |image: &str| c.tool_ok("rbd", &["diff", image]).stdout;
        assert_eq!(diff(&ours), diff(&theirs), "{args:?}: different objects");
        c.assert_object_map_clean(&ours);
    }
}
