//! Names and settings a cluster refuses are refused the same way, word for
//! word, by the embedded store: missing pools and namespaces, names past
//! the OSD's length limits, a path posing as a pool, and `key=value`
//! settings librados does not accept.

use super::{Backend, both_backends, rbdimg, rbdimg_ok, unique};

both_backends!(
    missing_pools_and_namespaces_are_errors_when_reading,
    names_longer_than_ceph_allows_are_refused,
    a_path_as_a_pool_name_goes_nowhere,
    snapshot_names_are_checked_as_through_qemu,
    settings_are_checked_as_a_cluster_checks_them,
);

/// Runs rbdimg and requires exit 1 and exactly `stderr`.
fn fails_with(args: &[&str], stderr: &str) {
    let out = rbdimg(args);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, stderr),
        "rbdimg {args:?}: {out:#?}"
    );
}

fn could_not_open(name: &str, why: &str) -> String {
    format!("rbdimg: Could not open '{name}': {why}\n")
}

fn missing_pools_and_namespaces_are_errors_when_reading(b: &Backend) {
    // The pool "rbd" exists (on the embedded store, made by this create).
    let image = unique("names");
    rbdimg_ok(&["create", &b.name(&image), "1M"]);
    let pool = format!("nosuchpool-{}", std::process::id());
    let name = b.name(&format!("{pool}/x"));
    for _ in 0..2 {
        // Reading made nothing: the second look fails the same way.
        fails_with(
            &["info", &name],
            &could_not_open(
                &name,
                &format!("error opening pool {pool}: No such file or directory"),
            ),
        );
    }
    let name = b.name("rbd/nosuchns/x");
    fails_with(
        &["info", &name],
        &could_not_open(&name, "namespace 'nosuchns' does not exist"),
    );
}

fn names_longer_than_ceph_allows_are_refused(b: &Backend) {
    rbdimg_ok(&["create", &b.name(&unique("names")), "1M"]);
    // rbd_id.<name> is an object name: osd_max_object_name_len is 2048.
    let longest = "i".repeat(2048 - "rbd_id.".len());
    rbdimg_ok(&["create", &b.name(&format!("rbd/{longest}")), "1M"]);
    rbdimg_ok(&["info", &b.name(&format!("rbd/{longest}"))]);
    let long = format!("{longest}i");
    let name = b.name(&format!("rbd/{long}"));
    let out = rbdimg(&["create", &name, "1M"]);
    assert_eq!(
        (out.code, out.stderr),
        (
            1,
            format!("rbdimg: {name}: error rbd create: File name too long\n")
        )
    );
    fails_with(
        &["info", &name],
        &could_not_open(
            &name,
            &format!("error reading header from {long}: File name too long"),
        ),
    );
    // osd_max_object_namespace_len is 256.
    let ns = "n".repeat(257);
    let name = b.name(&format!("rbd/{ns}/x"));
    let why = "error checking namespace: rbd.dir_state_assert on rbd_directory: File name too long";
    fails_with(&["info", &name], &could_not_open(&name, why));
    let out = rbdimg(&["create", &name, "1M"]);
    assert_eq!(
        (out.code, out.stderr),
        (1, format!("rbdimg: {name}: {why}\n"))
    );
}

fn a_path_as_a_pool_name_goes_nowhere(b: &Backend) {
    // Pool "..", namespace "..", image "etc/x": no such pool anywhere.
    for (path, pool) in [
        ("../../etc/x", ".."),
        ("./x", "."),
        (".hidden/x", ".hidden"),
        ("/x", ""),
    ] {
        let name = b.name(path);
        let out = rbdimg(&["create", &name, "1M"]);
        assert_eq!(
            (out.code, out.stderr),
            (
                1,
                format!("rbdimg: {name}: error opening pool {pool}: No such file or directory\n")
            )
        );
    }
    if let Backend::Embedded(store) = b {
        let mut entries: Vec<_> = std::fs::read_dir(store.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        entries.sort();
        assert_eq!(entries, ["objects", "store.db"]);
    }
}

fn snapshot_names_are_checked_as_through_qemu(b: &Backend) {
    let image = unique("snapnames");
    let name = b.name(&image);
    rbdimg_ok(&["create", &name, "1M"]);
    // QEMU's rbd driver allows names up to 127 bytes.
    rbdimg_ok(&["snapshot", "-f", "raw", "-c", &"s".repeat(127), &name]);
    for (snap, why) in [
        ("s".repeat(128), "Numerical result out of range"),
        (String::new(), "Invalid argument"),
    ] {
        let out = rbdimg(&["snapshot", "-f", "raw", "-c", &snap, &name]);
        assert_eq!(
            (out.code, out.stderr),
            (
                1,
                format!("rbdimg: Could not create snapshot '{snap}': {why}\n")
            )
        );
    }
    let listed = rbdimg_ok(&["snapshot", "-f", "raw", "-l", &name]).stdout;
    // The header lines and the one snapshot.
    assert_eq!(listed.lines().count(), 3, "{listed}");
}

/// `key=value` settings and what Ceph 16.2's librados says to each: "ok",
/// or the errno of "invalid conf option <key>: <strerror>". Escaped colons
/// are part of values.
const SETTINGS: &[(&str, &str)] = &[
    // Keys: unknown, and normalized (spaces, not dashes or case).
    ("foo=bar", "ENOENT"),
    ("RBD_CACHE=true", "ENOENT"),
    ("rbd-cache=true", "ENOENT"),
    ("rbd__cache=true", "ENOENT"),
    ("rbd cache=true", "ok"),
    (" rbd_cache=true", "ok"),
    ("rbd_cache =true", "ok"),
    ("rbd  cache=true", "ok"),
    ("name=client.admin", "ENOENT"),
    ("cluster=ceph", "ENOENT"),
    ("debug_nosuch=1", "ENOENT"),
    // Debug levels: N or N/M, 0..=99.
    ("debug_rbd=5", "ok"),
    ("debug_rbd=5/10", "ok"),
    ("debug_rbd=5/abc", "ok"),
    ("debug_rbd=5x", "ok"),
    ("debug_rbd= 7", "ok"),
    ("debug_rbd= 5/ 7", "ok"),
    ("debug_rbd=0x5", "ok"),
    ("debug_rbd=100", "ERANGE"),
    ("debug_rbd=5/100", "ERANGE"),
    ("debug_rbd=-1", "ERANGE"),
    ("debug_rbd=5/-1", "ERANGE"),
    ("debug_rbd=99999999999", "ERANGE"),
    ("debug_rbd=abc", "EINVAL"),
    ("debug_rbd=", "EINVAL"),
    // Booleans.
    ("rbd_cache=TRUE", "ok"),
    ("rbd_cache=false", "ok"),
    ("rbd_cache=0", "ok"),
    ("rbd_cache=2", "ok"),
    ("rbd_cache=-1", "ok"),
    ("rbd_cache= 1", "ok"),
    ("rbd_cache=+1", "ok"),
    ("rbd_cache=01", "ok"),
    ("rbd_cache=yes", "EINVAL"),
    ("rbd_cache=", "EINVAL"),
    ("rbd_cache=1 ", "EINVAL"),
    ("rbd_cache=0x1", "EINVAL"),
    ("rbd_cache=2147483648", "EINVAL"),
    ("rbd_cache=true=x", "EINVAL"),
    // Unsigned and signed integers, with SI units and bounds.
    ("rbd_default_order=22", "ok"),
    ("rbd_default_order=1K", "ok"),
    ("rbd_default_order=+22", "ok"),
    ("rbd_default_order=-0", "ok"),
    ("rbd_default_order=18E", "ok"),
    ("rbd_default_order=18446744073709551K", "ok"),
    ("rbd_default_order=9223372036854775807", "ok"),
    ("rbd_default_order=-1", "EINVAL"),
    ("rbd_default_order=1B", "EINVAL"),
    ("rbd_default_order=1.5", "EINVAL"),
    ("rbd_default_order=abc", "EINVAL"),
    ("rbd_default_order=", "EINVAL"),
    ("rbd_default_order= 22", "EINVAL"),
    ("rbd_default_order=22 ", "EINVAL"),
    ("rbd_default_order=9223372036854775808", "EINVAL"),
    ("rbd_default_order=20E", "EINVAL"),
    ("rbd_default_order=1k", "EINVAL"),
    ("compressor_zlib_winsize=-15", "ok"),
    ("compressor_zlib_winsize=+5", "ok"),
    ("compressor_zlib_winsize=-16", "EINVAL"),
    ("compressor_zlib_winsize=33", "EINVAL"),
    ("compressor_zlib_winsize=-1K", "EINVAL"),
    ("rbd_discard_granularity_bytes=8192", "ok"),
    ("rbd_discard_granularity_bytes=5000", "EINVAL"),
    ("rbd_discard_granularity_bytes=1024", "EINVAL"),
    ("rbd_discard_granularity_bytes=64K", "EINVAL"),
    // Floats, as strtod reads them.
    ("rbd_cache_max_dirty_age=1.5", "ok"),
    ("rbd_cache_max_dirty_age=1e3", "ok"),
    ("rbd_cache_max_dirty_age=.5", "ok"),
    ("rbd_cache_max_dirty_age=+.5e1", "ok"),
    ("rbd_cache_max_dirty_age= 1.5", "ok"),
    ("rbd_cache_max_dirty_age=0x1.8p1", "ok"),
    ("rbd_cache_max_dirty_age=inf", "ok"),
    ("rbd_cache_max_dirty_age=nan", "ok"),
    ("rbd_cache_max_dirty_age=abc", "EINVAL"),
    ("rbd_cache_max_dirty_age=", "EINVAL"),
    ("rbd_cache_max_dirty_age=1.5x", "EINVAL"),
    ("rbd_cache_max_dirty_age=1,5", "EINVAL"),
    ("rbd_cache_max_dirty_age=1e", "EINVAL"),
    ("rbd_cache_max_dirty_age=1e999", "EINVAL"),
    ("rbd_cache_max_dirty_age=1e-400", "EINVAL"),
    ("log_stop_at_utilization=1", "ok"),
    ("log_stop_at_utilization=2", "EINVAL"),
    ("log_stop_at_utilization=-0.1", "EINVAL"),
    // Sizes, with IEC units.
    ("rbd_cache_size=32M", "ok"),
    ("rbd_cache_size=32Mi", "ok"),
    ("rbd_cache_size=32MB", "ok"),
    ("rbd_cache_size=1B", "ok"),
    ("rbd_cache_size=+1", "ok"),
    ("rbd_cache_size=15E", "ok"),
    ("rbd_cache_size=16E", "EINVAL"),
    ("rbd_cache_size=32Bi", "EINVAL"),
    ("rbd_cache_size=32MiB", "EINVAL"),
    ("rbd_cache_size=32m", "EINVAL"),
    ("rbd_cache_size=-1", "EINVAL"),
    ("rbd_cache_size=", "EINVAL"),
    ("rbd_cache_size= 5", "EINVAL"),
    ("rbd_cache_size=B", "EINVAL"),
    ("rbd_cache_size=Ki", "EINVAL"),
    ("rbd_cache_size=1.5M", "EINVAL"),
    ("rbd_cache_size=1iK", "EINVAL"),
    ("osd_max_write_size=4", "ok"),
    ("osd_max_write_size=3", "EINVAL"),
    // Time spans.
    ("client_mount_timeout=30s", "ok"),
    ("client_mount_timeout=1m 30s", "ok"),
    ("client_mount_timeout=1 minute", "ok"),
    ("client_mount_timeout=1m30", "ok"),
    ("client_mount_timeout=30 ", "ok"),
    ("client_mount_timeout=5x", "EINVAL"),
    ("client_mount_timeout=-1", "EINVAL"),
    ("client_mount_timeout=1.5", "EINVAL"),
    ("client_mount_timeout=1 2", "EINVAL"),
    ("client_mount_timeout=1M", "EINVAL"),
    ("client_mount_timeout=99999999999999999999", "EINVAL"),
    ("cephfs_mirror_action_update_interval=1", "ok"),
    ("cephfs_mirror_action_update_interval=0", "EINVAL"),
    // Milliseconds with a bound: Ceph refuses every value.
    ("cephsqlite_lock_renewal_interval=1000", "EINVAL"),
    // Allowed values.
    ("rbd_cache_policy=writeback", "ok"),
    ("rbd_cache_policy=WriteBack", "EINVAL"),
    ("rbd_cache_policy=", "EINVAL"),
    ("bluestore_compression_algorithm=", "ok"),
    // librbd's feature names or mask.
    ("rbd_default_features=layering", "ok"),
    ("rbd_default_features=layering, exclusive-lock", "ok"),
    ("rbd_default_features=61", "ok"),
    ("rbd_default_features=255", "ok"),
    ("rbd_default_features=", "ok"),
    ("rbd_default_features= 3 ", "ok"),
    ("rbd_default_features=dirty-cache", "ok"),
    ("rbd_default_features=bogus", "EINVAL"),
    ("rbd_default_features=256", "EINVAL"),
    ("rbd_default_features=-1", "EINVAL"),
    ("rbd_default_features=0x3", "EINVAL"),
    ("rbd_default_features=1,layering", "EINVAL"),
    ("rbd_default_features=layering,,exclusive-lock", "EINVAL"),
    ("rbd_default_features=LAYERING", "EINVAL"),
    // UUIDs and addresses (what follows an address is ignored).
    ("fsid=garbage", "EINVAL"),
    ("fsid=", "EINVAL"),
    ("public_addr=127.0.0.1", "ok"),
    (r"public_addr=127.0.0.1\:abc", "ok"),
    ("public_addr=127.0.0.1x", "ok"),
    (r"public_addr=[\:\:1]\:5", "ok"),
    ("public_addr=-", "ok"),
    (r"public_addr=127.0.0.1\:99999", "EINVAL"),
    ("public_addr=1.2.3.4.5", "EINVAL"),
    ("public_addr=localhost", "EINVAL"),
    (r"public_addr=[\:\:1", "EINVAL"),
    ("public_addr=", "EINVAL"),
    ("public_addrv=[127.0.0.1]", "ok"),
    ("public_addrv=127.0.0.1,1.2.3.4", "ok"),
    ("public_addrv=[127.0.0.1,garbage]", "EINVAL"),
    ("public_addrv=[127.0.0.1,]", "EINVAL"),
    ("public_addrv=[]", "EINVAL"),
];

fn settings_are_checked_as_a_cluster_checks_them(b: &Backend) {
    let image = unique("settings");
    rbdimg_ok(&["create", &b.name(&image), "1M"]);
    for (setting, want) in SETTINGS {
        let name = b.name(&format!("{image}:{setting}"));
        let out = rbdimg(&["info", "-f", "raw", &name]);
        let key = setting.split_once('=').unwrap().0;
        let reason = match *want {
            "ok" => {
                assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{setting}");
                continue;
            }
            "ENOENT" => "No such file or directory",
            "EINVAL" => "Invalid argument",
            "ERANGE" => "Numerical result out of range",
            other => panic!("{other}"),
        };
        assert_eq!(
            (out.code, out.stderr),
            (
                1,
                could_not_open(&name, &format!("invalid conf option {key}: {reason}"))
            ),
            "{setting}"
        );
    }
}
