//! The fuzz targets on the stable toolchain, as part of `cargo test`: each
//! target (tests/fuzz/targets/, shared with the cargo-fuzz crate) gets its
//! seed corpus, then a fixed number of mutated inputs from a fixed seed,
//! so a run is reproducible and a failure names the case that caused it.
//! No input may panic or make the target's thread hold more than
//! `MEMORY_CAP` bytes at once (a counting allocator refuses the allocation
//! that would, which ends the process with the case's name).
//!
//! `RBDIMG_FUZZ_ITERS=N` runs N mutations per target instead of the short
//! default, `RBDIMG_FUZZ_SEED=S` explores from another seed,
//! `RBDIMG_FUZZ_REPLAY=CASE` writes case CASE of a target to
//! `target/fuzz-failures/` and stops there (with the same ITERS and SEED),
//! and `RBDIMG_FUZZ_CORPUS_OUT=DIR` writes each target's seeds to
//! `DIR/<target>/` (tests/fuzz/make-seeds.sh uses it for cargo-fuzz).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use rng::Rng;

#[path = "targets/cls_reply.rs"]
mod cls_reply;
#[path = "targets/cls_server.rs"]
mod cls_server;
#[path = "targets/image_name.rs"]
mod image_name;
#[path = "targets/luks2_header.rs"]
mod luks2_header;
#[path = "targets/luks_header.rs"]
mod luks_header;
#[path = "targets/padded.rs"]
mod padded;
#[path = "targets/qcow2_header.rs"]
mod qcow2_header;
#[path = "targets/qcow2_open.rs"]
mod qcow2_open;
#[path = "targets/qcow2_tables.rs"]
mod qcow2_tables;
#[path = "targets/rbd_name.rs"]
mod rbd_name;
#[path = "../rng.rs"]
mod rng;

/// The most one input may make its thread hold: far above what valid
/// inputs need (QEMU's table limits are 64 MiB; Ceph's largest object map,
/// 256M objects, is 64 MiB, held a few times over while it is resized),
/// far below what an unchecked length field would ask for.
const MEMORY_CAP: isize = 512 << 20;

// ---------------------------------------------------------------- memory ---

/// Counts each thread's live bytes and refuses an allocation past its
/// limit (no limit outside a fuzz case).
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static LIMIT: Cell<isize> = const { Cell::new(isize::MAX) };
    static CASE: Cell<(&'static str, u64)> = const { Cell::new(("", 0)) };
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Accounts `delta` bytes to this thread; false when that passes its limit.
fn account(delta: isize) -> bool {
    LIVE.try_with(|live| {
        let now = live.get() + delta;
        if delta > 0 && now > LIMIT.with(Cell::get) {
            over_cap(delta);
            return false;
        }
        live.set(now);
        true
    })
    .unwrap_or(true)
}

/// Says which case went over the cap, without allocating (the process then
/// aborts on the refused allocation).
fn over_cap(bytes: isize) {
    let (target, case) = CASE.with(Cell::get);
    let mut line = [0u8; 256];
    let mut at = 0;
    let mut put = |s: &[u8]| {
        let n = s.len().min(line.len() - at);
        line[at..at + n].copy_from_slice(&s[..n]);
        at += n;
    };
    put(b"\nfuzz: target ");
    put(target.as_bytes());
    put(b", case ");
    put(digits(case, &mut [0; 20]));
    put(b": an allocation of ");
    put(digits(bytes as u64, &mut [0; 20]));
    put(b" bytes passes the memory cap; RBDIMG_FUZZ_REPLAY=");
    put(digits(case, &mut [0; 20]));
    put(b" (and the same ITERS and SEED) saves the input\n");
    // SAFETY: writing a valid buffer to stderr.
    unsafe { libc::write(2, line.as_ptr().cast(), at) };
}

/// `n` in decimal, in `buf` (no allocation: this runs inside the allocator).
fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

// SAFETY: every call forwards to the system allocator unchanged, or
// returns null (an allocation failure) without touching memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !account(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        // SAFETY: the caller's layout contract is forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !account(layout.size() as isize) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !account(new_size as isize - layout.size() as isize) {
            return std::ptr::null_mut();
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

// -------------------------------------------------------------- mutation ---

/// Values at the edges of integer fields.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    9,
    16,
    22,
    63,
    64,
    255,
    256,
    511,
    512,
    4095,
    4096,
    0x7fff,
    0x8000,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    0x00ff_ffff_ffff_fe00,
    0x7fff_ffff_ffff_ffff,
    0x8000_0000_0000_0000,
    0xffff_ffff_ffff_fffe,
    u64::MAX,
];

struct Mutator<'a> {
    rng: Rng,
    dictionary: &'a [&'a [u8]],
    max_len: usize,
    /// Where mutations land more often: the first bytes (headers).
    hot: usize,
}

impl Mutator<'_> {
    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n as u64) as usize
    }

    fn pos(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        if self.below(2) == 0 {
            self.below(len.min(self.hot))
        } else {
            self.below(len)
        }
    }

    /// A havoc of one to eight stacked mutations of `base`, sometimes
    /// spliced with `other`.
    fn mutate(&mut self, base: &[u8], other: &[u8]) -> Vec<u8> {
        let mut v = base.to_vec();
        for _ in 0..1 + self.below(8) {
            let len = v.len();
            match self.below(11) {
                0 if len > 0 => {
                    let p = self.pos(len);
                    v[p] ^= 1 << self.below(8);
                }
                1 if len > 0 => {
                    let p = self.pos(len);
                    v[p] = self.rng.next() as u8;
                }
                2 if len > 0 => {
                    let p = self.pos(len);
                    v[p] = [0, 1, 0x20, 0x7f, 0x80, 0xfe, 0xff][self.below(7)];
                }
                3 => {
                    let value = INTERESTING[self.below(INTERESTING.len())];
                    let width = [1, 2, 4, 8][self.below(4)];
                    let bytes = if self.below(2) == 0 {
                        value.to_be_bytes()[8 - width..].to_vec()
                    } else {
                        value.to_le_bytes()[..width].to_vec()
                    };
                    let p = self.pos(len);
                    let end = (p + width).min(len);
                    v.splice(p..end, bytes);
                }
                4 | 5 if !self.dictionary.is_empty() => {
                    let word = self.dictionary[self.below(self.dictionary.len())];
                    let p = self.pos(len + 1);
                    let end = if self.below(2) == 0 {
                        p
                    } else {
                        (p + word.len()).min(len)
                    };
                    v.splice(p..end, word.iter().copied());
                }
                6 if len > 0 => {
                    let p = self.pos(len);
                    let n = 1 + self.below((len - p).min(64));
                    v.drain(p..p + n);
                }
                7 if len > 0 => {
                    let p = self.pos(len);
                    let n = 1 + self.below((len - p).min(64));
                    let chunk = v[p..p + n].to_vec();
                    let at = self.pos(len + 1);
                    v.splice(at..at, chunk);
                }
                8 if !other.is_empty() => {
                    let from = self.below(other.len());
                    let n = 1 + self.below((other.len() - from).min(256));
                    let at = self.pos(len + 1);
                    let end = (at + n).min(len);
                    v.splice(at..end, other[from..from + n].iter().copied());
                }
                9 => {
                    let n = self.below(len + 1);
                    v.truncate(n);
                }
                _ => {
                    let mut tail = vec![0; 1 + self.below(16)];
                    if self.below(2) == 0 {
                        self.rng.fill(&mut tail);
                    }
                    v.extend(tail);
                }
            }
        }
        v.truncate(self.max_len);
        v
    }
}

// --------------------------------------------------------------- driving ---

struct Target {
    name: &'static str,
    run: fn(&[u8]) -> bool,
    seeds: Vec<Vec<u8>>,
    dictionary: &'static [&'static [u8]],
    max_len: usize,
    hot: usize,
    /// Mutations per run without RBDIMG_FUZZ_ITERS.
    iterations: u64,
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn failures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures")
}

/// Runs one case with the memory cap; a panic fails the test with the
/// input saved.
fn run_case(target: &Target, case: u64, input: &[u8]) -> bool {
    CASE.with(|c| c.set((target.name, case)));
    LIMIT.with(|l| l.set(LIVE.with(Cell::get) + MEMORY_CAP));
    let outcome = std::panic::catch_unwind(|| (target.run)(input));
    LIMIT.with(|l| l.set(isize::MAX));
    match outcome {
        Ok(accepted) => accepted,
        Err(_) => {
            let path = save(target.name, case, input);
            panic!(
                "fuzz target {} panicked on case {case}; input saved to {}",
                target.name,
                path.display()
            );
        }
    }
}

fn save(target: &str, case: u64, input: &[u8]) -> PathBuf {
    let dir = failures_dir();
    std::fs::create_dir_all(&dir).expect("create target/fuzz-failures");
    let path = dir.join(format!("{target}-{case}"));
    std::fs::write(&path, input).expect("save the failing input");
    path
}

/// The seeds, then mutations of the corpus (which keeps what a target
/// accepted, so later mutations start deeper in the format).
fn fuzz(target: Target) {
    let iterations = env_u64("RBDIMG_FUZZ_ITERS").unwrap_or(target.iterations);
    let seed = env_u64("RBDIMG_FUZZ_SEED").unwrap_or(0x5eed_f022);
    let replay = env_u64("RBDIMG_FUZZ_REPLAY");
    let name_hash = target
        .name
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let mut mutator = Mutator {
        rng: Rng(seed ^ name_hash),
        dictionary: target.dictionary,
        max_len: target.max_len,
        hot: target.hot,
    };
    let mut corpus = target.seeds.clone();
    assert!(!corpus.is_empty(), "{}: no seeds", target.name);
    if let Some(dir) = std::env::var_os("RBDIMG_FUZZ_CORPUS_OUT") {
        let dir = Path::new(&dir).join(target.name);
        std::fs::create_dir_all(&dir).expect("create the corpus directory");
        for (i, seed) in corpus.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), seed).expect("write a seed");
        }
    }
    let seeds = corpus.len() as u64;
    for (case, input) in target.seeds.iter().enumerate() {
        if replay == Some(case as u64) {
            return replayed(&target, case as u64, input);
        }
        run_case(&target, case as u64, input);
    }
    let mut accepted = 0u64;
    for i in 0..iterations {
        let case = seeds + i;
        let base = &corpus[mutator.below(corpus.len())];
        let other = &corpus[mutator.below(corpus.len())];
        let input = mutator.mutate(base, other);
        if replay == Some(case) {
            return replayed(&target, case, &input);
        }
        if run_case(&target, case, &input) {
            accepted += 1;
            if corpus.len() < 512 {
                corpus.push(input);
            } else {
                let slot = seeds as usize + mutator.below(corpus.len() - seeds as usize);
                corpus[slot] = input;
            }
        }
    }
    eprintln!(
        "fuzz {}: {seeds} seeds, {iterations} mutations ({accepted} accepted)",
        target.name
    );
}

fn replayed(target: &Target, case: u64, input: &[u8]) {
    let path = save(target.name, case, input);
    eprintln!("case {case} of {} saved to {}", target.name, path.display());
}

// ------------------------------------------------------------------ seeds ---

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut images: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "qcow2"))
        .collect();
    images.sort();
    let mut out: Vec<Vec<u8>> = images.iter().map(|p| std::fs::read(p).unwrap()).collect();
    out.extend(made_images());
    // The cargo-fuzz corpus, when tests/fuzz/make-seeds.sh has made it.
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/qcow2_open");
    if let Ok(entries) = std::fs::read_dir(corpus) {
        let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        out.extend(paths.iter().filter_map(|p| std::fs::read(p).ok()));
    }
    out
}

/// Small images rbdimg makes itself, with what the fixtures lack:
/// internal snapshots, compressed clusters, small clusters.
fn made_images() -> Vec<Vec<u8>> {
    use rbdimg::block::options::Options;
    use rbdimg::open::create::{self, CreateRequest};
    use rbdimg::open::{OpenOptions, open_image};
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    for (name, options) in [
        ("snap", "cluster_size=512"),
        ("small", "cluster_size=512,refcount_bits=1"),
        ("el2", "cluster_size=16k,extended_l2=on"),
    ] {
        let path = dir.path().join(name).to_string_lossy().into_owned();
        let request = CreateRequest {
            filename: path.clone(),
            format: "qcow2".into(),
            options: Options::parse(&[options]).unwrap(),
            size: Some(1 << 20),
            backing: None,
            backing_format: None,
            unsafe_backing: false,
            diagnostics: Default::default(),
        };
        create::execute(&create::plan(&request).unwrap()).unwrap();
        let opts = OpenOptions {
            format: Some("qcow2".into()),
            writable: true,
            ..Default::default()
        };
        let img = open_image(&path, &opts).unwrap();
        img.write_at(&[1; 3000], 0).unwrap();
        img.write_compressed(&[2; 512], 65536).ok();
        img.write_zeroes(8192, 4096, false).unwrap();
        if name == "snap" {
            img.snapshot_create("first").unwrap();
            img.write_at(&[3; 1024], 512).unwrap();
            img.snapshot_create("second").unwrap();
        }
        img.flush().unwrap();
        drop(img);
        out.push(std::fs::read(&path).unwrap());
    }
    out
}

fn be(image: &[u8], at: usize, n: usize) -> u64 {
    image
        .get(at..at + n)
        .map_or(0, |b| b.iter().fold(0, |v, &x| v << 8 | u64::from(x)))
}

/// Table seeds behind qcow2_tables' 5-byte prefix: snapshot tables, L2
/// tables and refcount blocks of the seed images.
fn table_seeds(images: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for img in images {
        let cbits = be(img, 20, 4) as u32;
        if !(9..=21).contains(&cbits) {
            continue;
        }
        let cs = 1usize << cbits;
        let order = if be(img, 4, 4) >= 3 {
            be(img, 96, 4)
        } else {
            4
        } as u8;
        let ext = if be(img, 72, 8) & 16 != 0 { 2 } else { 0 };
        let slice = |off: u64, len: usize| {
            let off = (off as usize).min(img.len());
            img[off..(off + len).min(img.len())].to_vec()
        };
        let mut seed = |count: u16, flags: u8, table: Vec<u8>| {
            let mut s = count.to_be_bytes().to_vec();
            s.extend([flags | ext, (cbits - 9) as u8, order]);
            s.extend(table);
            out.push(s);
        };
        let snapshots = be(img, 60, 4) as u16;
        if snapshots > 0 {
            seed(snapshots, 0, slice(be(img, 64, 8), 4096));
            seed(snapshots, 1, slice(be(img, 64, 8), 4096));
        }
        let l2 = be(img, be(img, 40, 8) as usize, 8) & 0x00ff_ffff_ffff_fe00;
        if l2 != 0 {
            seed(0, 0, slice(l2, cs));
        }
        let refblock = be(img, be(img, 48, 8) as usize, 8);
        if refblock != 0 {
            seed(0, 0, slice(refblock, cs));
        }
    }
    out
}

/// Valid replies, made by running the store's own class methods on an
/// image it creates: each decoder's seed is what an OSD would answer.
fn reply_seeds() -> Vec<Vec<u8>> {
    use rbdimg::ceph::{Call, NOSNAP, cls_lock, cls_rbd, cls_rbd_layering};
    use rbdimg::rados::embedded::cls::{self, Caller, Staged};
    let mut header = Staged {
        caller: Some(Caller { gid: 4, nonce: 7 }),
        clock: Some((1_700_000_000, 5)),
        ..Default::default()
    };
    let mut run = |call: Call| {
        cls::call(&mut header, call.class, call.method, &call.input).unwrap_or_default()
    };
    run(cls_rbd::create(1 << 30, 22, 61, "rbd_data.1234", None));
    run(cls_rbd::snapshot_add("s1", 4));
    run(cls_lock::lock("rbd_lock", "auto 1", "internal", ""));
    let pick = |name: &str| {
        cls_reply::DECODERS
            .iter()
            .position(|d| *d == name)
            .expect("a decoder") as u8
    };
    let mut seeds = Vec::new();
    let mut add = |decoder: &str, reply: Vec<u8>| {
        let mut s = vec![pick(decoder)];
        s.extend(reply);
        seeds.push(s);
    };
    add("decode_size", run(cls_rbd::get_size(NOSNAP)));
    add("decode_features", run(cls_rbd::get_features(false)));
    add("decode_string", run(cls_rbd::get_object_prefix()));
    add("decode_u64", run(cls_rbd::get_flags(NOSNAP)));
    add("decode_i64", run(cls_rbd::get_data_pool()));
    add("decode_snapcontext", run(cls_rbd::get_snapcontext()));
    add("decode_stripe", run(cls_rbd::get_stripe_unit_count()));
    add("decode_utime", run(cls_rbd::get_create_timestamp()));
    add("decode_parent", run(cls_rbd::parent_get()));
    add("decode_overlap", run(cls_rbd::parent_overlap_get(NOSNAP)));
    add("decode_snapshot", run(cls_rbd::snapshot_get(4)));
    add("decode_u8", run(cls_rbd::get_protection_status(4)));
    add("decode_info", run(cls_lock::get_info("rbd_lock")));
    let mut dir = Staged::default();
    cls::call(
        &mut dir,
        "rbd",
        "dir_add_image",
        &cls_rbd::dir_add_image("img", "1234").input,
    )
    .unwrap();
    let list = cls_rbd::dir_list("", 64);
    add(
        "decode_dir_list",
        cls::call(&mut dir, list.class, list.method, &list.input).unwrap(),
    );
    let mut map = Staged::default();
    let resize = cls_rbd::object_map_resize(100, 1);
    cls::call(&mut map, resize.class, resize.method, &resize.input).unwrap();
    add("ObjectMap::decode", map.data.clone());
    add("notify::decode", Vec::new());
    let child = cls_rbd_layering::ChildSpec {
        pool_id: 2,
        namespace: String::new(),
        image_id: "c1".into(),
    };
    run(cls_rbd_layering::child_attach(4, &child));
    add(
        "decode_child_specs",
        run(cls_rbd_layering::children_list(4)),
    );
    let parent = cls_rbd::ParentSpec {
        pool_id: 2,
        namespace: String::new(),
        image_id: "1234".into(),
        snap_id: 4,
    };
    let mut children = Staged::default();
    let add_child = cls_rbd_layering::add_child(&parent, "c1");
    cls::call(
        &mut children,
        add_child.class,
        add_child.method,
        &add_child.input,
    )
    .unwrap();
    let get = cls_rbd_layering::get_children(&parent);
    add(
        "decode_children",
        cls::call(&mut children, get.class, get.method, &get.input).unwrap(),
    );
    seeds
}

/// A clone's and a clone parent's calls, as cls_server records them.
fn layering_script(script: &dyn Fn(Vec<rbdimg::ceph::Call>) -> Vec<u8>) -> Vec<u8> {
    use rbdimg::ceph::{cls_rbd, cls_rbd_layering as l};
    let parent = cls_rbd::ParentSpec {
        pool_id: 2,
        namespace: String::new(),
        image_id: "1234".into(),
        snap_id: 4,
    };
    let child = l::ChildSpec {
        pool_id: 2,
        namespace: "ns".into(),
        image_id: "c1".into(),
    };
    script(vec![
        cls_rbd::create(1 << 30, 22, 61, "rbd_data.1234", None),
        l::parent_attach(&parent, 1 << 20, false),
        l::op_features_set(l::OP_CLONE_CHILD, l::OP_CLONE_CHILD),
        cls_rbd::snapshot_add("s1", 4),
        l::child_attach(4, &child),
        l::children_list(4),
        l::child_detach(4, &child),
        l::snapshot_trash_add(4),
        l::parent_detach(),
        l::add_child(&parent, "c1"),
        l::get_children(&parent),
        l::remove_child(&parent, "c1"),
    ])
}

/// Call sequences a client sends, as cls_server records.
fn server_seeds() -> Vec<Vec<u8>> {
    use rbdimg::ceph::{Call, NOSNAP, cls_lock, cls_rbd};
    let script = |calls: Vec<Call>| {
        let mut s = Vec::new();
        for call in calls {
            let pick = cls_server::METHODS
                .iter()
                .position(|(c, m)| *c == call.class && *m == call.method)
                .expect("a listed method") as u8;
            s.push(pick);
            s.push(call.input.len().min(255) as u8);
            s.extend(&call.input[..call.input.len().min(255)]);
        }
        s
    };
    vec![
        script(vec![
            cls_rbd::create(1 << 30, 22, 61, "rbd_data.1234", None),
            cls_rbd::set_id("1234"),
            cls_rbd::snapshot_add("s1", 4),
            cls_rbd::get_snapcontext(),
            cls_rbd::snapshot_get(4),
            cls_rbd::set_size(1 << 31),
            cls_rbd::snapshot_remove(4),
            cls_rbd::set_flags(NOSNAP, 1, 1),
        ]),
        script(vec![
            cls_lock::lock("rbd_lock", "auto 1", "internal", ""),
            cls_lock::assert_locked("rbd_lock", "auto 1", "internal"),
            cls_lock::get_info("rbd_lock"),
            cls_lock::break_lock("rbd_lock", 8, 4, "auto 1"),
            cls_lock::unlock("rbd_lock", "auto 1"),
        ]),
        script(vec![
            cls_rbd::object_map_resize(1000, 0),
            cls_rbd::object_map_update(0, 10, 1, None),
            cls_rbd::object_map_update(5, 500, 3, Some(1)),
            cls_rbd::object_map_snap_add(),
            cls_rbd::object_map_load(),
        ]),
        script(vec![
            cls_rbd::dir_add_image("a", "1"),
            cls_rbd::dir_add_image("b", "2"),
            cls_rbd::dir_list("", 10),
            cls_rbd::dir_remove_image("a", "1"),
            cls_rbd::dir_state_assert(0),
        ]),
        layering_script(&script),
    ]
}

const NAME_WORDS: &[&[u8]] = &[
    b":",
    b"@",
    b"/",
    b"\\",
    b"=",
    b",",
    b",,",
    b"rbd:",
    b"json:",
    b"conf=",
    b"id=",
    b"store=",
    b"mon_host=",
    b"key=",
    b"keyring=",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"'",
    b":",
    b"file.",
    b"driver",
    b"raw",
    b"qcow2",
    b"rbd",
    b"file",
    b"filename",
    b"pool",
    b"image",
    b"namespace",
    b"snapshot",
    b"server",
    b"host",
    b"port",
    b"\\u",
    b"\\ud800",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"help",
    b"no",
    b"\xc3\xa9",
    b"\t",
    b" ",
];

fn name_seeds() -> Vec<Vec<u8>> {
    [
        "rbd/img",
        "rbd/ns/img@snap",
        "pool/img:conf=/nonexistent.conf",
        "p/i:id=admin:mon_host=127.0.0.1\\:6789",
        "p/i@s:store=/nonexistent:rbd_cache=false",
        "a\\/b/c\\@d/e",
        "p/i:key=AQBQ:auth_supported=cephx\\;none",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn image_name_seeds() -> Vec<Vec<u8>> {
    let json = [
        r#"{"driver":"raw","file":{"driver":"file","filename":"A"},"file.filename":"B"}"#,
        r#"{"driver":"rbd","pool":"p","image":"i","server":[{"host":"h","port":"1"}]}"#,
        r#"{'driver':'raw','file':{'driver':'raw','file':{'filename':'A'}}}"#,
        r#"{"a":[1,-2,1.5e3,true,false,null,{}],"b":"\u00e9\ud83d\ude00\/"}"#,
        r#"{"driver":"qcow2","file":"node","x":{"y":{"z":[]}}}"#,
    ];
    let opts = [
        "driver=raw,file.driver=raw,file.file.filename=A",
        "A,driver=raw,file.locking=off,nolocking",
        "driver=rbd,pool=p,image=i,conf=/x,,y",
    ];
    let lists = [
        "cluster_size=4k,,x,nolazy_refcounts",
        "size=1M\nhelp,id=x",
        ",",
    ];
    let tagged = |tag: u8, texts: &[&str]| {
        texts
            .iter()
            .map(|t| {
                let mut s = vec![tag];
                s.extend(t.as_bytes());
                s
            })
            .collect::<Vec<_>>()
    };
    [tagged(0, &json), tagged(1, &opts), tagged(2, &lists)].concat()
}

// ------------------------------------------------------------------ tests ---

#[test]
fn qcow2_header() {
    let seeds: Vec<Vec<u8>> = fixtures()
        .iter()
        .map(|img| img[..img.len().min(1024)].to_vec())
        .collect();
    fuzz(Target {
        name: "qcow2_header",
        run: qcow2_header::run,
        seeds,
        dictionary: &[b"QFI\xfb"],
        max_len: 4096,
        hot: 128,
        iterations: 40_000,
    });
}

/// The start of LUKS volumes as rbdimg formats them: each cipher mode and
/// IV generator, the header and slot 0's key material.
fn luks_seeds() -> Vec<Vec<u8>> {
    use rbdimg::formats::luks::cipher::{Algorithm, CipherSpec, Hash, IvGen, Mode};
    use rbdimg::formats::luks::{FormatOptions, Volume};
    let specs = [
        (Algorithm::Aes, 32, Mode::Xts, IvGen::Plain64, Hash::Sha256),
        (
            Algorithm::Aes,
            16,
            Mode::Cbc,
            IvGen::Essiv(Hash::Sha256),
            Hash::Sha1,
        ),
        (
            Algorithm::Cast5,
            16,
            Mode::Ctr,
            IvGen::Essiv(Hash::Md5),
            Hash::Sm3,
        ),
    ];
    specs
        .iter()
        .map(|&(alg, alg_bytes, mode, ivgen, hash)| {
            let options = FormatOptions {
                cipher: CipherSpec {
                    alg,
                    alg_bytes,
                    mode,
                    ivgen,
                },
                hash,
                iter_time: 1,
                ..Default::default()
            };
            let image = std::cell::RefCell::new(vec![0u8; 300 << 10]);
            let write = |buf: &[u8], offset: u64| {
                let mut image = image.borrow_mut();
                let at = offset as usize;
                image[at..at + buf.len()].copy_from_slice(buf);
                Ok(())
            };
            Volume::format(&options, b"seed", &write).expect("format a seed volume");
            image.into_inner()
        })
        .collect()
}

#[test]
fn luks_header() {
    fuzz(Target {
        name: "luks_header",
        run: luks_header::run,
        seeds: luks_seeds(),
        dictionary: &[
            b"LUKS\xba\xbe",
            b"\x00\xac\x71\xf3",
            b"\x00\x00\xde\xad",
            b"aes",
            b"xts-plain64",
            b"cbc-essiv:sha256",
            b"sha256",
        ],
        max_len: 300 << 10,
        hot: 1024,
        iterations: 1_000,
    });
}

#[test]
fn qcow2_tables() {
    fuzz(Target {
        name: "qcow2_tables",
        run: qcow2_tables::run,
        seeds: table_seeds(&fixtures()),
        dictionary: &[],
        max_len: 1 << 16,
        hot: 512,
        iterations: 6_000,
    });
}

#[test]
fn qcow2_open() {
    fuzz(Target {
        name: "qcow2_open",
        run: qcow2_open::run,
        seeds: fixtures(),
        dictionary: &[],
        max_len: 256 << 10,
        hot: 8 << 10,
        iterations: 1_500,
    });
}

#[test]
fn rbd_name() {
    fuzz(Target {
        name: "rbd_name",
        run: rbd_name::run,
        seeds: name_seeds(),
        dictionary: NAME_WORDS,
        max_len: 512,
        hot: 512,
        iterations: 40_000,
    });
}

#[test]
fn image_name() {
    fuzz(Target {
        name: "image_name",
        run: image_name::run,
        seeds: image_name_seeds(),
        dictionary: NAME_WORDS,
        max_len: 1024,
        hot: 1024,
        iterations: 100_000,
    });
}

#[test]
fn cls_reply() {
    fuzz(Target {
        name: "cls_reply",
        run: cls_reply::run,
        seeds: reply_seeds(),
        dictionary: &[],
        max_len: 4096,
        hot: 64,
        iterations: 200_000,
    });
}

#[test]
fn cls_server() {
    fuzz(Target {
        name: "cls_server",
        run: cls_server::run,
        seeds: server_seeds(),
        dictionary: &[],
        max_len: 2048,
        hot: 2048,
        iterations: 5_000,
    });
}

/// The cls_reply target covers every decoder of the two client modules:
/// a decoder added there without being fuzzed fails here.
#[test]
fn every_cls_decoder_is_fuzzed() {
    for source in [
        include_str!("../../src/ceph/cls_rbd.rs"),
        include_str!("../../src/ceph/cls_rbd_layering.rs"),
        include_str!("../../src/ceph/cls_lock.rs"),
    ] {
        for line in source.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("pub fn decode_") {
                let name = format!("decode_{}", rest.split('(').next().unwrap());
                assert!(
                    cls_reply::DECODERS.contains(&name.as_str()),
                    "{name} is not fuzzed by tests/fuzz/targets/cls_reply.rs"
                );
            }
        }
    }
}

/// The cls_server target calls every method the store's class registry
/// holds: a method registered without being fuzzed fails here. (The
/// target keeps its own list, so that a seed's method bytes keep their
/// meaning when the registry grows.)
#[test]
fn every_store_method_is_fuzzed() {
    let mut methods = 0;
    for (class, method) in rbdimg::rados::embedded::cls::methods() {
        methods += 1;
        assert!(
            cls_server::METHODS.contains(&(class, method.name)),
            "{class}.{} is not fuzzed by tests/fuzz/targets/cls_server.rs",
            method.name
        );
    }
    assert!(methods > 40, "only {methods} methods registered");
}

/// LUKS2 volumes laid out as librbd formats them (two 16 KiB metadata
/// copies, key slot 0's material at 32 KiB), with KDFs cheap enough to
/// try: one PBKDF2 key slot, one argon2id key slot.
fn luks2_seeds() -> Vec<Vec<u8>> {
    use base64::Engine;
    let b64 =
        |fill: u8, len: usize| base64::engine::general_purpose::STANDARD.encode(vec![fill; len]);
    let kdfs = [
        serde_json::json!({"type": "pbkdf2", "hash": "sha256", "iterations": 1000,
                           "salt": b64(1, 32)}),
        serde_json::json!({"type": "argon2id", "time": 4, "memory": 64, "cpus": 1,
                           "salt": b64(2, 32)}),
    ];
    kdfs.into_iter()
        .map(|kdf| {
            let json = serde_json::json!({
                "keyslots": {"0": {
                    "type": "luks2", "key_size": 32,
                    "af": {"type": "luks1", "stripes": 4000, "hash": "sha256"},
                    "area": {"type": "raw", "offset": "32768", "size": "128000",
                             "encryption": "aes-xts-plain64", "key_size": 32},
                    "kdf": kdf,
                }},
                "tokens": {},
                "segments": {"0": {
                    "type": "crypt", "offset": "16777216", "size": "dynamic",
                    "iv_tweak": "0", "encryption": "aes-xts-plain64", "sector_size": 4096,
                }},
                "digests": {"0": {
                    "type": "pbkdf2", "keyslots": ["0"], "segments": ["0"], "hash": "sha256",
                    "iterations": 1000, "salt": b64(3, 32), "digest": b64(4, 32),
                }},
                "config": {"json_size": "12288", "keyslots_size": "16744448"},
            });
            let mut volume = vec![0u8; 32768 + 128000];
            for copy in [0, 16384] {
                let area = &mut volume[copy..copy + 16384];
                area[..6].copy_from_slice(b"LUKS\xba\xbe");
                area[6..8].copy_from_slice(&2u16.to_be_bytes());
                area[8..16].copy_from_slice(&16384u64.to_be_bytes());
                area[72..78].copy_from_slice(b"sha256");
                area[168..204].copy_from_slice(b"5a0c6cc3-8c5e-4f4b-9d43-2b1f0f3c1e77");
                let text = json.to_string();
                area[4096..4096 + text.len()].copy_from_slice(text.as_bytes());
            }
            volume[32768..].fill(0x5a);
            volume
        })
        .collect()
}

#[test]
fn luks2_header() {
    fuzz(Target {
        name: "luks2_header",
        run: luks2_header::run,
        seeds: luks2_seeds(),
        dictionary: &[
            b"\"iterations\": ",
            b"\"memory\": ",
            b"\"argon2i\"",
            b"\"pbkdf2\"",
            b"\"sector_size\": 512",
            b"\"offset\": \"",
            b"aes-cbc-essiv:sha256",
            b"twofish-xts-plain64",
            b"18446744073709551615",
        ],
        max_len: 200 << 10,
        hot: 8 << 10,
        iterations: 1_000,
    });
}
