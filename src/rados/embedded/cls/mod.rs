//! Object classes run inside the embedded store: the `rbd` (cls_rbd) and
//! `lock` (cls_lock) methods the RBD layer calls, with Ceph's input and
//! output encodings and errno results, over a small object context. The
//! store runs every method of a compound write on one staged copy of the
//! object inside one database transaction, so [assert_locked +
//! object_map_update] or [create exclusive + set_id] are atomic.

pub mod lock;
pub mod rbd;

use std::collections::BTreeMap;

use crate::ceph::encoding::DecodeError;

/// A method's failure: a positive errno, as the OSD returns it negated.
pub type ClsResult<T> = std::result::Result<T, i32>;

/// Who is calling (the lock owner cls_lock records): the client's global
/// id and the nonce of its address `127.0.0.1:0/<nonce>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub gid: u64,
    pub nonce: u32,
}

/// What a class method may do to the object it runs on.
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
    fn xattr_set(&mut self, name: &str, value: Vec<u8>) -> ClsResult<()>;
    fn caller(&self) -> Caller;
    /// The current time as `utime_t`.
    fn now(&self) -> (u32, u32);
}

/// Runs `class.method` on `ctx`; unknown methods fail with EOPNOTSUPP.
pub fn call(
    ctx: &mut dyn ObjectCtx,
    class: &str,
    method: &str,
    input: &[u8],
) -> ClsResult<Vec<u8>> {
    match class {
        "rbd" => rbd::call(ctx, method, input),
        "lock" => lock::call(ctx, method, input),
        _ => Err(libc::EOPNOTSUPP),
    }
}

/// A malformed input is EINVAL, as cls methods answer a decode failure.
pub(crate) fn einval(_: DecodeError) -> i32 {
    libc::EINVAL
}

/// A malformed stored value is EIO.
pub(crate) fn eio(_: DecodeError) -> i32 {
    libc::EIO
}

/// One object's whole state, staged in memory for a transaction: what the
/// store loads before running a compound op and writes back after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Staged {
    pub exists: bool,
    pub data: Vec<u8>,
    pub omap: BTreeMap<String, Vec<u8>>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    pub caller: Option<Caller>,
    pub clock: Option<(u32, u32)>,
}

impl Staged {
    /// An existing object with no data, omap or xattrs.
    pub fn empty() -> Staged {
        Staged {
            exists: true,
            ..Default::default()
        }
    }

    fn need(&self) -> ClsResult<()> {
        if self.exists {
            Ok(())
        } else {
            Err(libc::ENOENT)
        }
    }

    pub fn truncate(&mut self, size: u64) {
        self.exists = true;
        self.data.resize(size as usize, 0);
    }

    pub fn zero(&mut self, offset: u64, len: u64) {
        let end = (offset + len).min(self.data.len() as u64);
        if offset < end {
            self.data[offset as usize..end as usize].fill(0);
        }
    }
}

impl ObjectCtx for Staged {
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
        *self = Staged {
            caller: self.caller,
            clock: self.clock,
            ..Default::default()
        };
        Ok(())
    }

    fn size(&self) -> ClsResult<u64> {
        self.need()?;
        Ok(self.data.len() as u64)
    }

    fn read(&self, offset: u64, len: u64) -> ClsResult<Vec<u8>> {
        self.need()?;
        let start = (offset as usize).min(self.data.len());
        let end = (offset.saturating_add(len) as usize).min(self.data.len());
        Ok(self.data[start..end].to_vec())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> ClsResult<()> {
        self.exists = true;
        let end = offset as usize + data.len();
        if self.data.len() < end {
            self.data.resize(end, 0);
        }
        self.data[offset as usize..end].copy_from_slice(data);
        Ok(())
    }

    fn write_full(&mut self, data: &[u8]) -> ClsResult<()> {
        self.exists = true;
        self.data = data.to_vec();
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
