//! A whole image through the public API: the input is written to a scratch
//! file and opened read-only as qcow2, as `info`, `convert` and `check` open
//! it. Backing and external data files are not opened (a fuzzed name could
//! point anywhere); everything else is read: info, the snapshot list, the
//! allocation map and data of the first extents, snapshot views, and a
//! check without repair.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rbdimg::block::BlockDriver;
use rbdimg::block::driver::Repair;
use rbdimg::open::{OpenOptions, open_image};

/// Extents walked, and bytes read from each.
const MAX_EXTENTS: usize = 128;
const MAX_READ: u64 = 64 << 10;

fn scratch() -> &'static str {
    static PATH: OnceLock<String> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::var_os("RBDIMG_FUZZ_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join(format!("rbdimg-fuzz-{}.qcow2", std::process::id()));
        path.to_string_lossy().into_owned()
    })
}

fn exercise(img: &dyn BlockDriver) {
    let _ = img.info();
    let size = img.size();
    let mut buf = vec![0u8; MAX_READ as usize];
    let mut offset = 0;
    for _ in 0..MAX_EXTENTS {
        if offset >= size {
            break;
        }
        let Ok(extent) = img.block_status(offset, size - offset) else {
            break;
        };
        assert!(extent.len > 0 && extent.len <= size - offset);
        let n = extent.len.min(MAX_READ) as usize;
        let _ = img.read_at(&mut buf[..n], offset);
        offset += extent.len;
    }
    // The last bytes, wherever they are.
    if size > 0 {
        let n = size.min(4096);
        let _ = img.read_at(&mut buf[..n as usize], size - n);
    }
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write the scratch image");
    let opts = OpenOptions {
        format: Some("qcow2".into()),
        force_share: true,
        metadata_only: true,
        ..Default::default()
    };
    if let Ok(img) = open_image(path, &opts) {
        exercise(img.as_ref());
        // Snapshot views open backing and data files: only without them.
        let contained = img.info().is_ok_and(|i| {
            i.backing_filename.is_none()
                && i.format_specific
                    .as_ref()
                    .is_none_or(|(_, d)| !d.contains_key("data-file"))
        });
        if contained && let Ok(Some(list)) = img.snapshots() {
            for sn in list.iter().take(4) {
                if let Ok(view) = img.snapshot_open(&sn.id) {
                    exercise(view.as_ref());
                }
            }
        }
    }
    let check = OpenOptions {
        check: true,
        ..opts
    };
    if let Ok(img) = open_image(path, &check) {
        let _ = img.check(Repair::None);
    }
});
