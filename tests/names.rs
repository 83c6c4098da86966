//! `json:` and `--image-opts` names against qemu-img (issue 9): QEMU's JSON
//! dialect and its parse errors (a duplicate key is an error), nested
//! objects against dotted keys, references, leftover options, and raw over
//! another format node, which is a valid stack in QEMU.

use crate::util::{Oracle, Twin, make_raw, require, sh};

fn images(dir: &std::path::Path) {
    make_raw(&dir.join("A"), 1 << 20, &[(0, 1, 4096)]);
    make_raw(&dir.join("B"), 2 << 20, &[(4096, 2, 4096)]);
    sh(
        dir,
        "qemu-img create -q -f qcow2 -o cluster_size=4k q.qcow2 4M && \
         qemu-io -f qcow2 -c 'write -P 7 0 1M' q.qcow2 >/dev/null && \
         qemu-img snapshot -c s1 q.qcow2",
    );
}

#[test]
fn json_names_parse_like_qemu() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(images);
    let names = [
        // Duplicate keys, at any depth.
        r#"{"driver":"raw","driver":"raw","file":"A"}"#,
        r#"{"driver":"raw","file":{"driver":"file","filename":"A","filename":"B"}}"#,
        r#"{"driver":"raw","file":{"filename":"A"},"file":{"filename":"B"}}"#,
        // A nested object wins over a dotted key, in either order.
        r#"{"driver":"raw","file":{"driver":"file","filename":"A"},"file.filename":"B"}"#,
        r#"{"driver":"raw","file.filename":"B","file":{"driver":"file","filename":"A"}}"#,
        r#"{"file.filename":"B","file":{"filename":"A"}}"#,
        r#"{"file":{"filename":"A"},"file.filename":"B","file.driver":"file"}"#,
        r#"{"driver":"raw","file":{"driver":"raw","file":{"filename":"A"}},"file.file.filename":"B"}"#,
        r#"{"driver":"raw","file":{"file":{"filename":"B"},"file.filename":"A","driver":"raw"}}"#,
        r#"{"file.filename":"A","x":{"y":{"z":1}}}"#,
        // References to nodes a command line never has.
        r#"{"driver":"raw","file":"A"}"#,
        r#"{"driver":"raw","file":"A","file.filename":"B"}"#,
        r#"{"driver":"raw","file":"","file.filename":"A"}"#,
        // Missing children, filenames in the wrong node, unknown options.
        r#"{"filename":"A"}"#,
        r#"{"filename":"A","driver":"file"}"#,
        r#"{"driver":"raw","filename":"A","file":{"driver":"file","filename":"B"}}"#,
        r#"{"driver":"raw","file":{}}"#,
        r#"{"driver":"raw","file":{"driver":"raw"}}"#,
        r#"{"driver":"raw","file":{"locking":"off"}}"#,
        r#"{"driver":"raw","file":{"file":{"filename":"A"}}}"#,
        r#"{"file.filename":null}"#,
        r#"{"file.filename":1}"#,
        r#"{"file.filename":"A","driver":null}"#,
        r#"{"file.filename":"A","driver":1}"#,
        r#"{"file.filename":"A","foo":null}"#,
        r#"{"file.filename":"A","driver":"raw","bar":1,"foo":2,"baz":3}"#,
        r#"{"file":{"filename":"A","bar":1,"foo":2}}"#,
        r#"{"driver":"raw","file":{"driver":"raw","file":{"filename":"A"},"zzz":1}}"#,
        r#"{"driver":"qcow2","file":{"filename":"A"},"foo":1}"#,
        r#"{"driver":"nope","file":{"filename":"A"}}"#,
        r#"{"driver":"raw","file":{"filename":"A","locking":"off","aio":"threads"},"read-only":true}"#,
        // Raw over raw, over raw over raw, and over qcow2.
        r#"{"driver":"raw","file":{"driver":"raw","file":{"driver":"file","filename":"A"}}}"#,
        r#"{"driver":"raw","file":{"driver":"raw","file":{"driver":"raw","file":{"filename":"A"}}}}"#,
        r#"{"driver":"raw","file":{"driver":"qcow2","file":{"filename":"q.qcow2"}}}"#,
        r#"{"file":{"driver":"raw","file":{"filename":"A"}}}"#,
        // QEMU's JSON: its dialect and its messages.
        r#"{'driver':'raw','file.filename':'A'}"#,
        r#"{"file.filename":"A\/"}"#,
        r#"{  "file"  :  {  "filename" : "A" } }"#,
        r#"{"driver":"raw""#,
        r#"{"driver":"raw"} x"#,
        "[1]",
        "",
        "   ",
        r#"{"a" 1}"#,
        r#"{"a":1 "b":2}"#,
        "{1:2}",
        r#"{"a":x}"#,
        "@",
        "01",
        r#""abc"#,
        "]",
        r#""\x""#,
        r#""\ud800""#,
        r#""\u12""#,
        r#"{"file.filename":"A",}"#,
        r#"{,"file.filename":"A"}"#,
        r#"{"file.filename":"A"}}"#,
        r#"{"file.filename":"A","n":1e999}"#,
        r#"{"file.filename":"A","n":tru}"#,
        r#"{"file.filename":"A","n":-}"#,
        r#"{"file.filename":"A","n":1.5e}"#,
        r#"{"file.filename":"A","n":[1,]}"#,
        &format!("{}1{}", "[".repeat(1025), "]".repeat(1025)),
    ];
    // Both programs read the same files (a snapshot's date differs
    // between two copies).
    for name in names {
        let name = format!("json:{name}");
        twin.assert_same_on_theirs(&["info", &name]);
    }
    for name in [
        r#"{"driver":"raw","file":{"driver":"raw","file":{"driver":"file","filename":"A"}}}"#,
        r#"{"driver":"raw","file":{"driver":"qcow2","file":{"filename":"q.qcow2"}}}"#,
    ] {
        let name = format!("json:{name}");
        twin.assert_same_on_theirs(&["info", "--output=json", &name]);
        twin.assert_same_on_theirs(&["check", &name]);
        twin.assert_same_on_theirs(&["snapshot", "-l", &name]);
        twin.assert_same_on_theirs(&["compare", &name, "A"]);
        twin.assert_same(&["convert", "-O", "qcow2", &name, "out.qcow2"]);
        twin.assert_same(&["compare", &name, "out.qcow2"]);
        twin.assert_same(&["info", "out.qcow2"]);
    }
}

#[test]
fn image_opts_parse_like_qemu() {
    if !require(Oracle::QemuImg) || !require(Oracle::QemuIo) {
        return;
    }
    let twin = Twin::new(images);
    for opts in [
        // The first item may omit `file=`: a reference, as in QEMU.
        "A",
        "A,driver=raw",
        "driver=raw",
        "driver=raw,file=A",
        "driver=raw,file=A,file.driver=file",
        "driver=raw,filename=A",
        "driver=file",
        "file.driver=file,file.filename=A",
        "driver=raw,file.filename=A,file.filename=B",
        "driver=raw,file.filename=A,foo=1,bar=2",
        "driver=raw,file.filename=A,file.foo=1",
        "driver=raw,file.filename,file.filename=A",
        "driver=raw,file.filename=A,nolocking",
        "driver=raw,file.driver=raw,file.file.filename=A",
        "driver=raw,file.driver=raw,file.file.driver=raw,file.file.file.filename=A,file.foo=1",
        "driver=raw,file.driver=qcow2,file.file.filename=q.qcow2",
    ] {
        twin.assert_same_on_theirs(&["info", "--image-opts", opts]);
    }
    let stack = "driver=raw,file.driver=raw,file.file.filename=A";
    twin.assert_same(&["info", "--output=json", "--image-opts", stack]);
    twin.assert_same(&["check", "--image-opts", stack]);
    twin.assert_same(&[
        "compare",
        "--image-opts",
        stack,
        "driver=raw,file.filename=A",
    ]);
    twin.assert_same(&["convert", "--image-opts", stack, "out.raw"]);
    twin.assert_same_file("out.raw");
}
