//! The embedded store's own files: links planted inside it are never
//! followed (no read leaks another file, no write lands outside, no
//! dangling target is created), what it creates is private whatever the
//! umask, an existing store open to others gets a warning and is left as
//! it is, and only creating an image makes pools and namespaces.
//! Every planted link points into the test's own temporary directory.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Backend, KillOnDrop, raw_source, rbdimg, rbdimg_fails, rbdimg_ok, source};
use crate::util::{Outcome, RBDIMG};

fn store_of(b: &Backend) -> &Path {
    match b {
        Backend::Embedded(dir) => dir.path(),
        Backend::Ceph(_) => unreachable!("embedded only"),
    }
}

/// The one directory holding the default namespace's data objects.
fn data_dir(store: &Path) -> PathBuf {
    let pools: Vec<_> = std::fs::read_dir(store.join("objects"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pools.len(), 1, "{pools:?}");
    pools[0].join("default")
}

/// The data object file of object `n` of the only image with data.
fn object(store: &Path, n: u64) -> PathBuf {
    let dir = data_dir(store);
    let any = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n.starts_with("rbd_data."))
        .expect("a data object");
    let prefix = &any[..any.rfind('.').unwrap()];
    dir.join(format!("{prefix}.{n:016x}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

fn refused(out: &Outcome, what: &str) {
    assert_eq!(out.code, 1, "{out:#?}");
    assert!(
        out.stderr.contains(&format!("{what}, not a")),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn links_in_place_of_data_objects_are_never_followed() {
    let b = Backend::embedded();
    let store = store_of(&b);
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let name = b.name("rbd/links");
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"SECRET".repeat(1000)).unwrap();
    // Object 0 holds data: a link there must not be read through...
    let obj0 = object(store, 0);
    std::fs::remove_file(&obj0).unwrap();
    symlink(&secret, &obj0).unwrap();
    let out_file = dir.path().join("out.raw");
    let out = rbdimg(&["convert", "-O", "raw", &name, out_file.to_str().unwrap()]);
    refused(&out, "is a symbolic link");
    assert!(
        out.stderr.contains("error reading rbd_data."),
        "{}",
        out.stderr
    );
    let leaked = std::fs::read(&out_file).unwrap_or_default();
    assert!(!leaked.windows(6).any(|w| w == b"SECRET"), "read leaked");
    // ...nor written through.
    let out = rbdimg(&["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name]);
    refused(&out, "is a symbolic link");
    assert_eq!(std::fs::read(&secret).unwrap(), b"SECRET".repeat(1000));
    // Object 2 does not exist: a dangling link there is not created.
    let target = dir.path().join("dangling");
    symlink(&target, object(store, 2)).unwrap();
    let src2 = raw_source(dir.path(), "two.raw", 48 << 20, &[(8 << 20, 9, 4096)]);
    let out = rbdimg(&["convert", "-n", "-O", "raw", src2.to_str().unwrap(), &name]);
    refused(&out, "is a symbolic link");
    assert!(!target.exists(), "a dangling link's target was created");
}

#[test]
fn links_in_place_of_directories_and_the_database_are_refused() {
    let b = Backend::embedded();
    let store = store_of(&b);
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    let name = b.name("rbd/dirs");
    rbdimg_ok(&["convert", "-O", "raw", src.to_str().unwrap(), &name]);
    let out_file = dir.path().join("out.raw");
    let read = || rbdimg(&["convert", "-O", "raw", &name, out_file.to_str().unwrap()]);
    let write = || rbdimg(&["convert", "-n", "-O", "raw", src.to_str().unwrap(), &name]);
    // Each store path in turn moves into the test directory and a link
    // to it takes its place; then it comes back.
    let pool_dir = data_dir(store).parent().unwrap().to_path_buf();
    for (path, what) in [
        (data_dir(store), "default is a symbolic link"),
        (pool_dir, "is a symbolic link"),
        (store.join("objects"), "objects is a symbolic link"),
        (store.join("store.db"), "store.db is a symbolic link"),
    ] {
        let moved = dir.path().join("moved");
        std::fs::rename(&path, &moved).unwrap();
        symlink(&moved, &path).unwrap();
        let before = snapshot(&moved);
        refused(&read(), what);
        refused(&write(), what);
        assert_eq!(snapshot(&moved), before, "{path:?}: written through a link");
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&moved, &path).unwrap();
    }
    // SQLite's companions, which it would open by path: never created
    // through a link either.
    for companion in ["store.db-wal", "store.db-shm", "store.db-journal"] {
        let target = dir.path().join(companion);
        let link = store.join(companion);
        symlink(&target, &link).unwrap();
        refused(&read(), &format!("{companion} is a symbolic link"));
        assert!(
            !target.exists(),
            "{companion}: the link's target was created"
        );
        std::fs::remove_file(&link).unwrap();
    }
    assert!(read().code == 0 && std::fs::read(&out_file).unwrap() == std::fs::read(&src).unwrap());
}

/// Names and contents of a file or of the files in a directory tree.
fn snapshot(path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    if path.is_file() {
        return vec![(path.to_path_buf(), std::fs::read(path).unwrap())];
    }
    let mut all = Vec::new();
    for entry in std::fs::read_dir(path).unwrap() {
        all.extend(snapshot(&entry.unwrap().path()));
    }
    all.sort();
    all
}

/// rbdimg under `umask`, through a shell as a user would run it.
fn with_umask(umask: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(RBDIMG)
        .args(args)
        .env_remove("RBDIMG_STORE");
    cmd
}

/// Every directory below `root` (and itself) and every file in it.
fn modes(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut all = vec![(root.to_path_buf(), mode(root))];
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(modes(&path));
        } else {
            all.push((path.clone(), mode(&path)));
        }
    }
    all
}

#[test]
fn the_store_is_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    let src = source(dir.path());
    for umask in ["000", "022"] {
        let store = dir.path().join(format!("umask{umask}/a/store"));
        let name = format!("rbd:rbd/private@s:store={}", store.display());
        let head = name.replace("@s", "");
        let steps: [&[&str]; 3] = [
            &["convert", "-O", "raw", src.to_str().unwrap(), &head],
            &["snapshot", "-c", "s", &head],
            &["convert", "-n", "-O", "raw", src.to_str().unwrap(), &head],
        ];
        for args in steps {
            let out: Outcome = with_umask(umask, args).output().unwrap().into();
            assert_eq!(out.code, 0, "{out:#?}");
        }
        rbdimg_ok(&["info", &name]);
        let all = modes(&store);
        assert!(all.len() > 6, "{all:?}");
        for (path, m) in all {
            let want = if path.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(m, want, "umask {umask}: {path:?} is {m:o}");
        }
        // Missing parents were made private too.
        assert_eq!(mode(store.parent().unwrap()), 0o700);
    }
    // SQLite's -wal and -shm, while a writer holds them, get the
    // database's mode.
    let store = dir.path().join("umask000/a/store");
    let big = raw_source(dir.path(), "big.raw", 256 << 20, &[(0, 7, 256 << 20)]);
    let name = format!("rbd:rbd/big:store={}", store.display());
    let _writer = KillOnDrop(
        with_umask(
            "000",
            &["convert", "-O", "raw", big.to_str().unwrap(), &name],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (wal, shm) = (store.join("store.db-wal"), store.join("store.db-shm"));
    while !(wal.exists() && shm.exists()) {
        assert!(Instant::now() < deadline, "no -wal and -shm appeared");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!((mode(&wal), mode(&shm)), (0o600, 0o600));
}

#[test]
fn a_store_open_to_others_is_warned_about_and_left_as_it_is() {
    let b = Backend::embedded();
    let store = store_of(&b);
    let name = b.name("rbd/open");
    rbdimg_ok(&["create", &name, "1M"]);
    let set = |path: &Path, m: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap()
    };
    set(store, 0o755);
    set(&store.join("store.db"), 0o644);
    let out = rbdimg_ok(&["info", &name]);
    assert_eq!(
        out.stderr,
        format!(
            "rbdimg: warning: the embedded store is open to other users ({} is 0755, \
             store.db is 0644); `chmod -R go= {}` makes it private\n",
            store.display(),
            store.display()
        )
    );
    assert_eq!((mode(store), mode(&store.join("store.db"))), (0o755, 0o644));
    set(store, 0o700);
    set(&store.join("store.db"), 0o600);
    assert_eq!(rbdimg_ok(&["info", &name]).stderr, "");
}

#[test]
fn only_creating_an_image_makes_pools_and_namespaces() {
    let b = Backend::embedded();
    let name = |image: &str| b.name(image);
    // Reading a missing pool or namespace makes nothing: twice the same.
    let missing = [
        (
            "newpool/img",
            "error opening pool newpool: No such file or directory",
        ),
        ("newpool/ns1/img", "namespace 'ns1' does not exist"),
    ];
    for (image, why) in missing {
        rbdimg_fails(&["info", &name(image)], why);
        rbdimg_fails(&["info", &name(image)], why);
        // Creating an image makes its pool or namespace, as `ceph osd pool
        // create` and `rbd namespace create` do on a cluster.
        rbdimg_ok(&["create", &name(image), "1M"]);
        rbdimg_ok(&["info", &name(image)]);
    }
    rbdimg_fails(
        &["info", &name("newpool/ns2/img")],
        "namespace 'ns2' does not exist",
    );
}
