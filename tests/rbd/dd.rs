//! `dd` into and out of RBD images on both backends: the output image is
//! created at the copied size, holds exactly the copied bytes (every
//! object written, as qemu-img writes every block), and its object map
//! stays clean; an existing image is refused as the cluster refuses it.

use super::{Backend, both_backends, raw_source, rbdimg, rbdimg_ok, unique};

fn dd_copies_into_and_out_of_images(b: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = raw_source(d, "a.raw", 10 << 20, &[(0, 1, 5000), (9 << 20, 2, 4096)]);
    let bytes = std::fs::read(&src).unwrap();
    let image = unique("dd");
    let name = b.name(&image);
    let input = format!("if={}", src.display());
    rbdimg_ok(&["dd", &input, &format!("of={name}"), "bs=1M", "skip=1"]);
    assert!(b.export(&image) == bytes[1 << 20..], "dd into {image}");
    b.object_map_check(&image);
    let map = rbdimg_ok(&["map", "-f", "raw", "--output=json", &name]).stdout;
    assert!(
        !map.contains(r#""data": false"#),
        "every object written: {map}"
    );

    let back = d.join("back.raw");
    let output = format!("of={}", back.display());
    // `count` counts from the input's start, `skip` then drops blocks of it.
    rbdimg_ok(&[
        "dd",
        &format!("if={name}"),
        &output,
        "bs=4k",
        "count=512",
        "skip=256",
    ]);
    let back = std::fs::read(&back).unwrap();
    assert!(back == bytes[2 << 20..3 << 20], "dd out of {image}");

    let again = rbdimg(&["dd", &input, &format!("of={name}")]);
    assert_eq!(again.code, 1, "{again:#?}");
    assert!(
        again.stderr.contains("error while creating output image"),
        "{again:#?}"
    );
}

both_backends!(dd_copies_into_and_out_of_images);
