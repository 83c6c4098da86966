//! Object classes run inside the embedded store: a registry of the `rbd`
//! (cls_rbd) and `lock` (cls_lock) methods the RBD layer calls, each one
//! function registered with the read/write flags Ceph registers it with
//! (`cls_register_cxx_method`), with Ceph's input and output encodings and
//! errno results, over a small object context.
//!
//! ```text
//!  call(ctx, class, method, input)          as the OSD runs CEPH_OSD_OP_CALL
//!    -> method(class, name)                 unknown class EPERM, method EOPNOTSUPP
//!    -> run on a Counted ctx                reads and writes are counted
//!    -> read without RD, write without WR   EIO (the op's changes are dropped)
//!
//!  exec(obj, class, method, input)          as rados_exec: the request alone
//!    RD-only method, object missing         ENOENT (the OSD finds no object)
//!    WR method that changed the object      output dropped (a write's reply
//!                                           carries no data)
//! ```
//!
//! The store runs every method of a compound write on one staged copy of
//! the object inside one database transaction, so [assert_locked +
//! object_map_update] or [create exclusive + set_id] are atomic; `exec` of
//! a WR method is such a write too, so its change is kept, as on a cluster.

pub mod lock;
pub mod rbd;
#[cfg(test)]
mod replay;

use std::cell::Cell;
use std::collections::BTreeMap;

use crate::ceph::encoding::DecodeError;
use crate::rados::WriteOp;

/// A method's failure: a positive errno, as the OSD returns it negated.
pub type ClsResult<T> = std::result::Result<T, i32>;

/// `CLS_METHOD_RD`: the method may read the object.
pub const RD: u8 = 1;
/// `CLS_METHOD_WR`: the method may change the object.
pub const WR: u8 = 2;

/// One registered method, as `cls_register_cxx_method` names it.
pub struct Method {
    pub name: &'static str,
    /// `RD`, `WR` or both, exactly as Ceph registers the method (cls_lock
    /// also marks some PROMOTE, which only matters to cache tiers).
    pub flags: u8,
    pub run: fn(&mut dyn ObjectCtx, &[u8]) -> ClsResult<Vec<u8>>,
}

impl Method {
    /// `cls_register_cxx_method(class, name, flags, run)`.
    pub const fn new(
        name: &'static str,
        flags: u8,
        run: fn(&mut dyn ObjectCtx, &[u8]) -> ClsResult<Vec<u8>>,
    ) -> Method {
        Method { name, flags, run }
    }

    pub fn writes(&self) -> bool {
        self.flags & WR != 0
    }
}

/// A class and its methods, in groups as its Ceph source groups them.
pub struct Class {
    pub name: &'static str,
    pub groups: &'static [&'static [Method]],
}

const CLASSES: &[&Class] = &[&rbd::CLASS, &lock::CLASS];

/// Every registered method, with its class name: what the tests hold
/// against the recorded fixtures and the fuzz targets.
pub fn methods() -> impl Iterator<Item = (&'static str, &'static Method)> {
    CLASSES.iter().flat_map(|class| {
        class
            .groups
            .iter()
            .flat_map(|group| group.iter())
            .map(|m| (class.name, m))
    })
}

/// The registered `class.name`. A class the store does not have is EPERM,
/// as an OSD answers for a class outside its `osd_class_load_list`; a
/// method its class does not have is EOPNOTSUPP.
pub fn method(class: &str, name: &str) -> ClsResult<&'static Method> {
    let class = CLASSES
        .iter()
        .find(|c| c.name == class)
        .ok_or(libc::EPERM)?;
    class
        .groups
        .iter()
        .flat_map(|group| group.iter())
        .find(|m| m.name == name)
        .ok_or(libc::EOPNOTSUPP)
}

/// Runs `class.method` on `ctx` as the OSD runs one call op of a request:
/// unknown ones fail as `method` says, and a method that reads without
/// RD or writes without WR fails with EIO (what it changed goes with the
/// failed request).
pub fn call(
    ctx: &mut dyn ObjectCtx,
    class: &str,
    method: &str,
    input: &[u8],
) -> ClsResult<Vec<u8>> {
    let m = self::method(class, method)?;
    run(ctx, m, input).map(|(out, _)| out)
}

/// Runs `m` and returns its output and whether it wrote.
fn run(ctx: &mut dyn ObjectCtx, m: &Method, input: &[u8]) -> ClsResult<(Vec<u8>, bool)> {
    let mut counted = Counted {
        inner: ctx,
        reads: Cell::new(0),
        writes: 0,
    };
    let result = (m.run)(&mut counted, input);
    if (counted.reads.get() > 0 && m.flags & RD == 0) || (counted.writes > 0 && !m.writes()) {
        return Err(libc::EIO);
    }
    result.map(|out| (out, counted.writes > 0))
}

/// Runs `class.method` on `obj` as `rados_exec` does: a request of this
/// one call. A method not flagged WR finds no object when there is none;
/// a WR method's changes stay in `obj` (the caller keeps them), and since
/// an OSD answers a write with no data, a method that wrote returns none.
pub fn exec<D: Bytes>(
    obj: &mut Object<D>,
    class: &str,
    method: &str,
    input: &[u8],
) -> ClsResult<Vec<u8>> {
    let m = self::method(class, method)?;
    if !m.writes() && !obj.exists {
        return Err(libc::ENOENT);
    }
    let (out, wrote) = run(obj, m, input)?;
    Ok(if wrote { Vec::new() } else { out })
}

/// A malformed input is EINVAL, as cls methods answer a decode failure.
pub(crate) fn einval(_: DecodeError) -> i32 {
    libc::EINVAL
}

/// A malformed stored value is EIO.
pub(crate) fn eio(_: DecodeError) -> i32 {
    libc::EIO
}

/// Who is calling (the lock owner cls_lock records): the client's global
/// id and the nonce of its address `127.0.0.1:0/<nonce>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub gid: u64,
    pub nonce: u32,
}

/// What a class method may do to the object it runs on. Which calls read
/// and which write is the OSD's: a stat (`exists`, `size`) is neither.
pub trait ObjectCtx {
    fn exists(&self) -> bool;
    /// Creates the object; EEXIST if `exclusive` and it exists.
    fn create(&mut self, exclusive: bool) -> ClsResult<()>;
    fn remove(&mut self) -> ClsResult<()>;
    /// The data size; ENOENT when the object does not exist.
    fn size(&self) -> ClsResult<u64>;
    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>>;
    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()>;
    fn write_full(&mut self, data: &[u8]) -> ClsResult<()>;
    /// An omap value; ENOENT when the object does not exist.
    fn omap_get(&self, key: &str) -> ClsResult<Option<Vec<u8>>>;
    /// Omap entries after `start_after` that start with `prefix`, in key order.
    fn omap_list(
        &self,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> ClsResult<Vec<(String, Vec<u8>)>>;
    /// Sets an omap value (creating the object).
    fn omap_set(&mut self, key: &str, value: Vec<u8>) -> ClsResult<()>;
    fn omap_remove(&mut self, key: &str) -> ClsResult<()>;
    fn xattr_get(&self, name: &str) -> ClsResult<Option<Vec<u8>>>;
    /// Every xattr name, in order; ENOENT when the object does not exist.
    fn xattr_names(&self) -> ClsResult<Vec<String>>;
    fn xattr_set(&mut self, name: &str, value: Vec<u8>) -> ClsResult<()>;
    fn caller(&self) -> Caller;
    /// The current time as `utime_t`.
    fn now(&self) -> (u32, u32);
}

/// Forwards to a context and counts what the method read and wrote, as
/// the OSD counts a call's reads and writes to check them against its flags.
struct Counted<'a> {
    inner: &'a mut dyn ObjectCtx,
    reads: Cell<u32>,
    writes: u32,
}

impl Counted<'_> {
    /// The inner context, for a read (reads go through `&self`).
    fn reading(&self) -> &dyn ObjectCtx {
        self.reads.set(self.reads.get() + 1);
        &*self.inner
    }
}

impl ObjectCtx for Counted<'_> {
    fn exists(&self) -> bool {
        self.inner.exists()
    }

    fn create(&mut self, exclusive: bool) -> ClsResult<()> {
        self.writes += 1;
        self.inner.create(exclusive)
    }

    fn remove(&mut self) -> ClsResult<()> {
        self.writes += 1;
        self.inner.remove()
    }

    fn size(&self) -> ClsResult<u64> {
        self.inner.size()
    }

    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>> {
        self.reading().read(offset, len)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()> {
        self.writes += 1;
        self.inner.write(offset, data)
    }

    fn write_full(&mut self, data: &[u8]) -> ClsResult<()> {
        self.writes += 1;
        self.inner.write_full(data)
    }

    fn omap_get(&self, key: &str) -> ClsResult<Option<Vec<u8>>> {
        self.reading().omap_get(key)
    }

    fn omap_list(
        &self,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> ClsResult<Vec<(String, Vec<u8>)>> {
        self.reading().omap_list(start_after, prefix, max)
    }

    fn omap_set(&mut self, key: &str, value: Vec<u8>) -> ClsResult<()> {
        self.writes += 1;
        self.inner.omap_set(key, value)
    }

    fn omap_remove(&mut self, key: &str) -> ClsResult<()> {
        self.writes += 1;
        self.inner.omap_remove(key)
    }

    fn xattr_get(&self, name: &str) -> ClsResult<Option<Vec<u8>>> {
        self.reading().xattr_get(name)
    }

    fn xattr_names(&self) -> ClsResult<Vec<String>> {
        self.reading().xattr_names()
    }

    fn xattr_set(&mut self, name: &str, value: Vec<u8>) -> ClsResult<()> {
        self.writes += 1;
        self.inner.xattr_set(name, value)
    }

    fn caller(&self) -> Caller {
        self.inner.caller()
    }

    fn now(&self) -> (u32, u32) {
        self.inner.now()
    }
}

/// An object's bytes as class methods and compound writes see them: in
/// memory (`Vec<u8>`), or staged from the store's database a few chunks at
/// a time (`embedded::bytes`).
pub trait Bytes {
    /// How many bytes there are.
    fn size(&self) -> u64;
    /// `[offset, offset + len)` clipped to the bytes there are; EIO when
    /// they cannot be loaded.
    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>>;
    /// Writes `data` at `offset`, growing with zeros up to it.
    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()>;
    /// Shrinks to `len`, or grows with zeros.
    fn truncate(&mut self, len: u64) -> ClsResult<()>;
    /// Replaces everything with `data`.
    fn replace(&mut self, data: &[u8]);
}

impl Bytes for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>> {
        let start = (offset as usize).min(self.len());
        let end = (offset.saturating_add(len) as usize).min(self.len());
        Ok(self[start..end].to_vec())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()> {
        let end = offset as usize + data.len();
        if self.len() < end {
            self.resize(end, 0);
        }
        self[offset as usize..end].copy_from_slice(data);
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> ClsResult<()> {
        self.resize(len as usize, 0);
        Ok(())
    }

    fn replace(&mut self, data: &[u8]) {
        *self = data.to_vec();
    }
}

/// One object's whole state, staged for a transaction: what the store
/// loads before running a compound op and writes back after it. Its bytes
/// are `D`: in memory for `Staged`, lazily loaded for the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Object<D> {
    pub exists: bool,
    pub data: D,
    pub omap: BTreeMap<String, Vec<u8>>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub caller: Option<Caller>,
    pub clock: Option<(u32, u32)>,
}

/// An object held wholly in memory (unit tests, fixture replays, fuzzing).
pub type Staged = Object<Vec<u8>>;

impl Staged {
    /// An existing object with no data, omap or xattrs.
    pub fn empty() -> Staged {
        Staged {
            exists: true,
            ..Default::default()
        }
    }
}

impl<D: Bytes> Object<D> {
    fn need(&self) -> ClsResult<()> {
        if self.exists {
            Ok(())
        } else {
            Err(libc::ENOENT)
        }
    }

    /// Applies one step of a compound write.
    pub fn apply(&mut self, op: &WriteOp) -> ClsResult<()> {
        match *op {
            WriteOp::CreateExclusive => self.create(true),
            WriteOp::Create => self.create(false),
            WriteOp::AssertExists => self.need(),
            WriteOp::Write { offset, data } => ObjectCtx::write(self, offset, data),
            WriteOp::WriteFull(data) => self.write_full(data),
            // As the OSD: a missing object stays missing, and zeros that
            // reach the end truncate the object where they start.
            WriteOp::Zero { offset, len } => {
                let size = self.data.size();
                if self.exists && offset < size {
                    if offset.saturating_add(len) >= size {
                        self.data.truncate(offset)?;
                    } else {
                        self.data.write(offset, &vec![0; len as usize])?;
                    }
                }
                Ok(())
            }
            WriteOp::Truncate(size) => {
                if self.exists {
                    self.data.truncate(size)?;
                }
                Ok(())
            }
            WriteOp::Remove => self.remove(),
            WriteOp::Exec(c) => call(self, c.class, c.method, &c.input).map(|_| ()),
        }
    }
}

impl<D: Bytes> ObjectCtx for Object<D> {
    fn exists(&self) -> bool {
        self.exists
    }

    fn create(&mut self, exclusive: bool) -> ClsResult<()> {
        if self.exists && exclusive {
            return Err(libc::EEXIST);
        }
        self.exists = true;
        Ok(())
    }

    fn remove(&mut self) -> ClsResult<()> {
        self.need()?;
        self.exists = false;
        self.data.truncate(0)?;
        self.omap.clear();
        self.xattrs.clear();
        Ok(())
    }

    fn size(&self) -> ClsResult<u64> {
        self.need()?;
        Ok(self.data.size())
    }

    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>> {
        self.need()?;
        self.data.read(offset, len)
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()> {
        self.exists = true;
        self.data.write(offset, data)
    }

    fn write_full(&mut self, data: &[u8]) -> ClsResult<()> {
        self.exists = true;
        self.data.replace(data);
        Ok(())
    }

    fn omap_get(&self, key: &str) -> ClsResult<Option<Vec<u8>>> {
        self.need()?;
        Ok(self.omap.get(key).cloned())
    }

    fn omap_list(
        &self,
        start_after: &str,
        prefix: &str,
        max: usize,
    ) -> ClsResult<Vec<(String, Vec<u8>)>> {
        self.need()?;
        use std::ops::Bound;
        Ok(self
            .omap
            .range::<str, _>((Bound::Excluded(start_after), Bound::Unbounded))
            .filter(|(k, _)| k.starts_with(prefix))
            .take(max)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn omap_set(&mut self, key: &str, value: Vec<u8>) -> ClsResult<()> {
        self.exists = true;
        self.omap.insert(key.to_string(), value);
        Ok(())
    }

    fn omap_remove(&mut self, key: &str) -> ClsResult<()> {
        self.need()?;
        self.omap.remove(key);
        Ok(())
    }

    fn xattr_get(&self, name: &str) -> ClsResult<Option<Vec<u8>>> {
        self.need()?;
        Ok(self.xattrs.get(name).cloned())
    }

    fn xattr_names(&self) -> ClsResult<Vec<String>> {
        self.need()?;
        Ok(self.xattrs.keys().cloned().collect())
    }

    fn xattr_set(&mut self, name: &str, value: Vec<u8>) -> ClsResult<()> {
        self.exists = true;
        self.xattrs.insert(name.to_string(), value);
        Ok(())
    }

    fn caller(&self) -> Caller {
        self.caller.unwrap_or(Caller { gid: 0, nonce: 0 })
    }

    fn now(&self) -> (u32, u32) {
        self.clock.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            (t.as_secs() as u32, t.subsec_nanos())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes_anyway(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
        ctx.omap_set("k", vec![1])?;
        Ok(vec![9])
    }

    fn reads_anyway(ctx: &mut dyn ObjectCtx, _input: &[u8]) -> ClsResult<Vec<u8>> {
        ctx.omap_get("k")?;
        Ok(vec![9])
    }

    #[test]
    fn flags_bound_what_a_method_may_do() {
        let mut obj = Staged::empty();
        let rd_only = Method::new("w", RD, writes_anyway);
        assert_eq!(run(&mut obj, &rd_only, &[]), Err(libc::EIO));
        let wr_only = Method::new("r", WR, reads_anyway);
        assert_eq!(run(&mut obj, &wr_only, &[]), Err(libc::EIO));
        let both = Method::new("w", RD | WR, writes_anyway);
        assert_eq!(run(&mut obj, &both, &[]), Ok((vec![9], true)));
        let stat_only = Method::new("s", 0, |ctx, _| Ok(vec![ctx.exists() as u8]));
        assert_eq!(run(&mut obj, &stat_only, &[]), Ok((vec![1], false)));
    }

    #[test]
    fn exec_keeps_writes_and_finds_no_object_for_reads() {
        let set_id = crate::ceph::cls_rbd::set_id("abc");
        let mut obj = Staged::empty();
        assert_eq!(exec(&mut obj, "rbd", "set_id", &set_id.input), Ok(vec![]));
        assert_eq!(obj.data, b"\x03\0\0\0abc");
        assert_eq!(exec(&mut obj, "rbd", "get_id", &[]), Ok(obj.data.clone()));
        let mut missing = Staged::default();
        assert_eq!(
            exec(&mut missing, "rbd", "get_all_features", &[]),
            Err(libc::ENOENT)
        );
        assert_eq!(
            exec(&mut missing, "rbd", "nope", &[]),
            Err(libc::EOPNOTSUPP)
        );
        assert_eq!(exec(&mut missing, "nope", "get_id", &[]), Err(libc::EPERM));
    }

    #[test]
    fn every_method_is_registered_once() {
        let mut seen = std::collections::BTreeSet::new();
        for (class, m) in methods() {
            assert!(seen.insert((class, m.name)), "{class}.{} twice", m.name);
            assert!(m.flags & RD != 0, "{class}.{} reads", m.name);
        }
    }
}
