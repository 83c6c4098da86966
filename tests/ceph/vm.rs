//! A real VM boots from RBD images rbdimg made: qemu-system-x86_64 (TCG,
//! direct kernel boot of the host's Debian kernel and initramfs) with the
//! image as its virtio root disk through librbd. PID 1 of the guest
//! (`/rbdimg-init`, tests/vm/guest.sh) writes `/marker` or reports whether
//! it exists on the serial console, then powers off.
//!
//! ```text
//!  qcow2 root fs --convert--> RBD --snapshot--> boot: write --snapshot -a--> boot: absent
//!  golden --snapshot--> rbdimg clone --> boot the clone: write --> boot golden: absent
//! ```
//!
//! The root filesystem (Debian bookworm minbase) is built once and cached
//! under target/vm/.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::{rbdimg, rbdimg_ok, shared, unique};
use crate::util::{Oracle, require};

/// The cached guest: root filesystem (qcow2) and kernel directory.
struct Guest {
    rootfs: PathBuf,
    kernel: PathBuf,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vm/guest.sh")
}

fn guest_script(args: &[&str]) {
    let out = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tests/vm/guest.sh {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn guest() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/vm");
        std::fs::create_dir_all(&dir).unwrap();
        // The cache is named after the script that makes it (and the init
        // script inside), so a changed guest is built afresh.
        let mut hasher = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&std::fs::read(script()).unwrap(), &mut hasher);
        let key = std::hash::Hasher::finish(&hasher);
        let guest = Guest {
            rootfs: dir.join(format!("rootfs-bookworm-{key:016x}.qcow2")),
            kernel: dir.join("kernel"),
        };
        guest_script(&["rootfs", guest.rootfs.to_str().unwrap()]);
        guest_script(&["kernel", guest.kernel.to_str().unwrap()]);
        guest
    })
}

/// Boots `image` (an `rbd:` name) with the init script in `mode` ("write"
/// or "check") and returns what it reported.
fn boot(image: &str, mode: &str) -> String {
    let g = guest();
    let out = Command::new("timeout")
        .args(["300", "qemu-system-x86_64", "-accel", "tcg", "-m", "512"])
        .args([
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
            "-serial",
            "stdio",
        ])
        .arg("-kernel")
        .arg(g.kernel.join("vmlinuz"))
        .arg("-initrd")
        .arg(g.kernel.join("initrd.img"))
        .args([
            "-append",
            &format!(
                "console=ttyS0 root=/dev/vda rw quiet panic=-1 init=/rbdimg-init rbdimg={mode}"
            ),
        ])
        .args([
            "-drive",
            &format!("format=raw,file={image},cache=writeback,if=virtio"),
        ])
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the VM did not power off cleanly ({:?}): {console}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    console
        .lines()
        .find_map(|l| l.trim().strip_prefix("RBDIMG-RESULT: "))
        .unwrap_or_else(|| panic!("no result from the guest: {console}"))
        .to_string()
}

/// The guest's qcow2 root filesystem converted into RBD image `image`,
/// with snapshot `snap` of it.
fn root_disk(image: &str, snap: &str) {
    let rootfs = guest().rootfs.to_str().unwrap();
    rbdimg_ok(&["convert", "-f", "qcow2", "-O", "raw", rootfs, image]);
    rbdimg_ok(&["snapshot", "-c", snap, image]);
}

#[test]
fn a_vm_boots_from_rbd_and_a_rollback_undoes_its_write() {
    if !require(Oracle::Vm) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let name = unique("vm-root");
    let (image, snap) = (c.name(&name), c.name(&format!("{name}@clean")));
    root_disk(&image, "clean");
    assert_eq!(boot(&image, "write"), "wrote");
    // The guest's write reached the image.
    assert_eq!(
        rbdimg(&["compare", "-f", "raw", "-F", "raw", &snap, &image]).code,
        1
    );
    rbdimg_ok(&["snapshot", "-a", "clean", &image]);
    rbdimg_ok(&["compare", "-f", "raw", "-F", "raw", &snap, &image]);
    assert_eq!(boot(&image, "check"), "absent");
}

#[test]
fn a_vm_boots_from_an_rbdimg_clone_and_the_golden_image_stays_clean() {
    if !require(Oracle::Vm) || !require(Oracle::RbdDriver) {
        return;
    }
    let c = shared();
    let (golden, vm) = (unique("vm-golden"), unique("vm-clone"));
    let base = format!("{golden}@base");
    root_disk(&c.name(&golden), "base");
    rbdimg_ok(&[
        "create",
        "-f",
        "raw",
        "-b",
        &c.name(&base),
        "-F",
        "raw",
        &c.name(&vm),
    ]);
    assert_eq!(boot(&c.name(&vm), "write"), "wrote");
    // The clone took the write (copy-up through librbd) and still reads
    // through to the golden snapshot elsewhere.
    assert_eq!(
        rbdimg(&[
            "compare",
            "-f",
            "raw",
            "-F",
            "raw",
            &c.name(&base),
            &c.name(&vm)
        ])
        .code,
        1
    );
    let info = c.tool_ok("rbd", &["info", &vm]);
    assert!(
        info.stdout.contains(&format!("parent: {base}")),
        "{info:#?}"
    );
    c.assert_object_map_clean(&vm);
    assert_eq!(boot(&c.name(&golden), "check"), "absent");
}
