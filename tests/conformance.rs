//! Library-level conformance: one set of assertions that every byte storage
//! (a local file, an RBD image in the embedded store and on a Ceph cluster)
//! and every image driver over them (raw and qcow2 on each storage) must
//! pass, through the crate's own API rather than the command line.

use std::sync::Arc;

use rbdimg::block::BlockDriver;
use rbdimg::block::diagnostics::Diagnostics;
use rbdimg::block::driver::Preallocation;
use rbdimg::block::extent::Allocation;
use rbdimg::block::options::Options;
use rbdimg::error::ErrorKind;
use rbdimg::open::create::{self, CreateRequest};
use rbdimg::open::{OpenOptions, create_storage, open_image, open_storage};
use rbdimg::storage::Storage;

use crate::rbd::{Backend, unique};

const MIB: u64 = 1 << 20;

/// Where a backend's images are named: a directory of files, or an RBD
/// backend (which must outlive the images).
enum Place {
    Files(tempfile::TempDir),
    Rbd(Backend),
}

impl Place {
    fn files() -> Place {
        Place::Files(tempfile::tempdir().unwrap())
    }

    /// A fresh image name in this place.
    fn name(&self, prefix: &str) -> String {
        match self {
            Place::Files(dir) => dir.path().join(prefix).to_string_lossy().into_owned(),
            Place::Rbd(backend) => backend.name(&unique(prefix)),
        }
    }

    /// The allocation unit the storage itself has (an RBD object).
    fn unit(&self) -> u64 {
        match self {
            Place::Files(_) => 64 << 10,
            Place::Rbd(_) => 4 * MIB,
        }
    }
}

/// A pattern that tells offsets apart.
fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i % 251) as u8))
        .collect()
}

/// Byte comparison that reports where two buffers first differ.
#[track_caller]
fn same(got: &[u8], want: &[u8]) {
    assert_eq!(got.len(), want.len(), "lengths differ");
    if let Some(i) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("bytes differ at {i}: got {}, want {}", got[i], want[i]);
    }
}

#[track_caller]
fn zeroed(got: &[u8]) {
    if let Some(i) = got.iter().position(|&b| b != 0) {
        panic!("byte {i} is {}, not zero", got[i]);
    }
}

fn read(s: &dyn Storage, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xAA; len];
    s.read_at(&mut buf, offset).unwrap();
    buf
}

fn read_image(img: &dyn BlockDriver, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xAA; len];
    img.read_at(&mut buf, offset).unwrap();
    buf
}

/// What every `Storage` does, whatever holds the bytes.
fn storage_conforms(place: &Place) {
    let name = place.name("storage");
    let mut options = Options::default();
    options.set("size", (16 * MIB).to_string());
    let diagnostics = Diagnostics::default();
    create_storage(&name, &options, &diagnostics).unwrap();
    let s = open_storage(&name, true, &diagnostics).unwrap();
    let unit = place.unit();
    assert_eq!(s.length().unwrap(), 16 * MIB);

    // Fresh storage reads as zeros, and says so without reading.
    zeroed(&read(&*s, 5 * MIB, 4096));
    let fresh = s.block_status(8 * MIB, unit).unwrap();
    assert!(fresh.allocation.reads_as_zero(), "{fresh:?}");
    assert_eq!(fresh.offset, 8 * MIB);

    // Writes at any offset read back; their range is data.
    let data = pattern(7, 10_000);
    s.write_at(&data, unit - 1234).unwrap();
    same(&read(&*s, unit - 1234, data.len()), &data);
    assert_eq!(
        s.block_status(unit, 4096).unwrap().allocation,
        Allocation::Data
    );
    // Extents tile the storage: each starts where asked, none is empty.
    let mut at = 0;
    while at < 16 * MIB {
        let e = s.block_status(at, 16 * MIB - at).unwrap();
        assert_eq!(e.offset, at);
        assert!(e.len > 0 && e.end() <= 16 * MIB, "{e:?}");
        at = e.end();
    }

    // Zeroing keeps reading zeros; discarding a whole unit deallocates it.
    s.write_at(&pattern(1, unit as usize), 2 * unit).unwrap();
    s.zero_range(2 * unit + 100, 1000).unwrap();
    let back = read(&*s, 2 * unit, unit as usize);
    assert_eq!(&back[100..1100], &[0; 1000][..]);
    same(&back[..100], &pattern(1, 100)[..]);
    s.discard(2 * unit, unit).unwrap();
    zeroed(&read(&*s, 2 * unit, unit as usize));
    let gone = s.block_status(2 * unit, unit).unwrap();
    assert!(gone.allocation.reads_as_zero(), "{gone:?}");

    // Past the end: reads are zeros, a write grows to exactly its end.
    zeroed(&read(&*s, 16 * MIB - 10, 20));
    let past = s.block_status(16 * MIB, unit).unwrap();
    assert_eq!(past.allocation, Allocation::Unallocated);
    s.write_at(b"tail", 17 * MIB + 3).unwrap();
    assert_eq!(s.length().unwrap(), 17 * MIB + 7);
    same(&read(&*s, 17 * MIB + 3, 4), b"tail");
    zeroed(&read(&*s, 16 * MIB, 4096));

    // Truncation loses what is past the new end; growing reads zeros.
    s.set_len(unit, Preallocation::Off).unwrap();
    assert_eq!(s.length().unwrap(), unit);
    s.set_len(4 * unit, Preallocation::Off).unwrap();
    zeroed(&read(&*s, 2 * unit, 4096));
    same(&read(&*s, unit - 1234, 1234), &data[..1234]);

    // Many threads at once, each on its own range.
    let s2 = s.clone();
    std::thread::scope(|scope| {
        for t in 0..4u8 {
            let s = s2.clone();
            scope.spawn(move || {
                let chunk = pattern(t, 40_000);
                s.write_at(&chunk, u64::from(t) * unit + 77).unwrap();
            });
        }
    });
    for t in 0..4u8 {
        same(
            &read(&*s, u64::from(t) * unit + 77, 40_000),
            &pattern(t, 40_000),
        );
    }
    s.flush().unwrap();
    let info = s.node_info().unwrap();
    assert_eq!(info.format, s.protocol());
    assert!(info.protocol);
    assert_eq!(info.virtual_size, 4 * unit);
}

/// What every image driver does, whatever its format and storage.
fn driver_conforms(place: &Place, format: &str) {
    let name = place.name(format);
    let request = CreateRequest {
        filename: name.clone(),
        format: format.into(),
        size: Some(16 * MIB),
        ..Default::default()
    };
    create::execute(&create::plan(&request).unwrap()).unwrap();
    let opts = OpenOptions {
        format: Some(format.into()),
        writable: true,
        ..Default::default()
    };
    let img: Arc<dyn BlockDriver> = open_image(&name, &opts).unwrap();
    assert_eq!(img.format_name(), format);
    assert_eq!(img.size(), 16 * MIB);

    // A fresh image reads as zeros and says so.
    zeroed(&read_image(&*img, 3 * MIB, 4096));
    let fresh = img.block_status(MIB, 15 * MIB).unwrap();
    assert!(fresh.allocation.reads_as_zero(), "{fresh:?}");

    // Writes read back at any offset; allocation follows them.
    let data = pattern(3, 300_000);
    img.write_at(&data, 5 * MIB - 1000).unwrap();
    same(&read_image(&*img, 5 * MIB - 1000, data.len()), &data);
    assert_eq!(
        img.block_status(5 * MIB, 4096).unwrap().allocation,
        Allocation::Data
    );
    let mut at = 0;
    while at < img.size() {
        let e = img.block_status(at, img.size() - at).unwrap();
        assert_eq!(e.offset, at);
        assert!(e.len > 0 && e.end() <= img.size(), "{e:?}");
        if e.allocation.reads_as_zero() {
            let len = e.len.min(MIB) as usize;
            zeroed(&read_image(&*img, at, len));
        }
        at = e.end();
    }

    // Zeros and discards read as zeros; around them the data stays.
    img.write_zeroes(5 * MIB, 4096, false).unwrap();
    img.write_zeroes(5 * MIB + 8192, 4096, true).unwrap();
    img.discard(5 * MIB + 65536, 65536).unwrap();
    let back = read_image(&*img, 5 * MIB - 1000, data.len());
    same(&back[..1000], &data[..1000]);
    assert_eq!(&back[1000..5096], &[0; 4096][..]);
    same(&back[5096..9192], &data[5096..9192]);
    assert_eq!(&back[9192..13288], &[0; 4096][..]);
    assert_eq!(&back[66536..132072], &[0; 65536][..]);

    // The image ends where it says: no access past it.
    let err = img.read_at(&mut [0; 1], img.size()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfBounds);
    assert!(img.write_at(&[1], img.size()).is_err());

    // Grow reads zeros in the new space; shrink drops the tail.
    img.resize(32 * MIB, Preallocation::Off).unwrap();
    assert_eq!(img.size(), 32 * MIB);
    zeroed(&read_image(&*img, 20 * MIB, 4096));
    img.write_at(b"end", 32 * MIB - 3).unwrap();
    img.resize(4 * MIB, Preallocation::Off).unwrap();
    assert_eq!(img.size(), 4 * MIB);
    img.resize(8 * MIB, Preallocation::Off).unwrap();
    zeroed(&read_image(&*img, 5 * MIB - 1000, 4096));
    img.flush().unwrap();
    drop(img);

    // Everything is on the storage: a fresh open sees it.
    let again = open_image(&name, &opts).unwrap();
    assert_eq!(again.size(), 8 * MIB);
    zeroed(&read_image(&*again, 0, 4096));
    let info = again.info().unwrap();
    assert_eq!(info.format, format);
    assert_eq!(info.virtual_size, 8 * MIB);
}

/// One test per backend, each running the same assertions.
macro_rules! conformance {
    ($($test:ident: $place:expr => $body:expr;)*) => {
        $(
            #[test]
            fn $test() {
                let place = $place;
                $body(&place);
            }
        )*
    };
}

conformance! {
    file_storage: Place::files() => storage_conforms;
    rbd_storage_embedded: Place::Rbd(Backend::embedded()) => storage_conforms;
    rbd_storage_ceph: Place::Rbd(Backend::ceph()) => storage_conforms;
    raw_on_file: Place::files() => |p| driver_conforms(p, "raw");
    raw_on_rbd_embedded: Place::Rbd(Backend::embedded()) => |p| driver_conforms(p, "raw");
    raw_on_rbd_ceph: Place::Rbd(Backend::ceph()) => |p| driver_conforms(p, "raw");
    qcow2_on_file: Place::files() => |p| driver_conforms(p, "qcow2");
    qcow2_on_rbd_embedded: Place::Rbd(Backend::embedded()) => |p| driver_conforms(p, "qcow2");
    qcow2_on_rbd_ceph: Place::Rbd(Backend::ceph()) => |p| driver_conforms(p, "qcow2");
}
