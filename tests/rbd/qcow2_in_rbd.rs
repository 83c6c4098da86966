//! A qcow2 image kept inside an RBD image, as qemu-img keeps it with its
//! rbd driver: created, converted into and out of, inspected, checked,
//! snapshotted (qcow2 internal snapshots, not RBD ones) and resized, the
//! same on a Ceph cluster and in the embedded store. Cross-reads with
//! qemu-img's rbd driver are in tests/ceph/qcow2_in_rbd.rs.

use super::{Backend, both_backends, rbdimg_ok, source, unique};

both_backends!(qcow2_lives_inside_rbd_images);

fn qcow2_lives_inside_rbd_images(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let src = src.to_str().unwrap();

    // create: qemu-img's Formatting line; the RBD image starts empty and
    // grows as the qcow2 appends, so it holds the metadata only.
    let created = unique("q2-create");
    let out = rbdimg_ok(&["create", "-f", "qcow2", &b.name(&created), "1G"]);
    assert_eq!(
        out.stdout,
        format!(
            "Formatting '{}', fmt=qcow2 cluster_size=65536 extended_l2=off compression_type=zlib \
             size=1073741824 lazy_refcounts=off refcount_bits=16\n",
            b.name(&created)
        )
    );
    let info: serde_json::Value =
        serde_json::from_str(&rbdimg_ok(&["info", "--output=json", &b.name(&created)]).stdout)
            .unwrap();
    assert_eq!(info["format"], "qcow2", "probed as qcow2");
    assert_eq!(info["virtual-size"], 1u64 << 30);
    let file = &info["children"][0]["info"];
    assert_eq!(file["format"], "rbd");
    assert_eq!(file["virtual-size"], 197120, "qemu-img's metadata, rounded");
    assert!(
        info["filename"]
            .as_str()
            .unwrap()
            .starts_with(r#"json:{"driver": "qcow2", "file": {"#),
        "{info}"
    );
    let check = rbdimg_ok(&["check", &b.name(&created)]);
    assert!(
        check
            .stdout
            .starts_with("No errors were found on the image.")
    );
    // The RBD view of the same image: a raw image holding qcow2 bytes.
    let raw = rbdimg_ok(&["info", "-f", "raw", &b.name(&created)]).stdout;
    assert!(raw.contains("file format: raw"), "{raw}");

    // convert in and out: the bytes come back, holes stay holes.
    let image = unique("q2-convert");
    rbdimg_ok(&["convert", "-O", "qcow2", src, &b.name(&image)]);
    rbdimg_ok(&["compare", "-f", "raw", src, &b.name(&image)]);
    let back = dir.path().join("back.raw");
    rbdimg_ok(&[
        "convert",
        "-O",
        "raw",
        &b.name(&image),
        back.to_str().unwrap(),
    ]);
    assert!(std::fs::read(&back).unwrap() == std::fs::read(src).unwrap());
    // 83 clusters of data (the source's four runs), none for its holes.
    let map = rbdimg_ok(&["check", "--output=json", &b.name(&image)]).stdout;
    assert!(map.contains("\"allocated-clusters\": 83,"), "{map}");
    b.object_map_check(&image);

    // Snapshots are the qcow2's own: the RBD image has none.
    rbdimg_ok(&["snapshot", "-c", "before", &b.name(&image)]);
    let list = rbdimg_ok(&["snapshot", "-l", &b.name(&image)]).stdout;
    assert!(list.contains(" before "), "{list}");
    let rbd_view = rbdimg_ok(&["snapshot", "-l", "-f", "raw", &b.name(&image)]).stdout;
    assert!(rbd_view.is_empty(), "RBD snapshots: {rbd_view}");
    let zeros = dir.path().join("zeros.raw");
    std::fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    rbdimg_ok(&[
        "convert",
        "-n",
        "-O",
        "qcow2",
        zeros.to_str().unwrap(),
        &b.name(&image),
    ]);
    rbdimg_ok(&["snapshot", "-a", "before", &b.name(&image)]);
    rbdimg_ok(&["compare", "-f", "raw", src, &b.name(&image)]);
    rbdimg_ok(&["snapshot", "-d", "before", &b.name(&image)]);

    // resize: the qcow2 grows; its RBD image only as metadata needs.
    rbdimg_ok(&["resize", &b.name(&image), "+64M"]);
    let info = rbdimg_ok(&["info", &b.name(&image)]).stdout;
    assert!(
        info.contains("virtual size: 112 MiB (117440512 bytes)"),
        "{info}"
    );
    let check = rbdimg_ok(&["check", &b.name(&image)]);
    assert!(
        check
            .stdout
            .starts_with("No errors were found on the image.")
    );
    b.object_map_check(&image);
}
