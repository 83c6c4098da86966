//! The librados backend: a real Ceph cluster through `librados.so.2`,
//! opened with dlopen at run time so the binary builds and runs where Ceph
//! is not installed. Only the C API functions below are used.

use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use libloading::Library;

use crate::ceph::Call;
use crate::ceph::errno::errno_error;
use crate::error::{Error, ErrorKind, Result};
use crate::rados::{Cluster, Pool, SNAP_HEAD, SnapContext, Watch, WatchHandler, Watcher, WriteOp};

type Handle = *mut c_void;
type WatchCb = extern "C" fn(*mut c_void, u64, u64, u64, *mut c_void, usize);
type WatchErrCb = extern "C" fn(*mut c_void, u64, c_int);

/// Names a librados other than the system's `librados.so.2`.
pub const LIBRADOS_ENV: &str = "RBDIMG_LIBRADOS";

/// What to tell a user whose machine lacks librados.
pub const MISSING_LIBRADOS: &str = "librados is not available (librados.so.2 could not be loaded): install \
     Ceph's client library (Debian/Ubuntu: apt-get install librados2) to use Ceph clusters";

macro_rules! api {
    ($($name:ident : fn($($arg:ty),*) $(-> $ret:ty)?;)*) => {
        /// The librados entry points, resolved once.
        #[allow(non_snake_case)]
        struct Api {
            _lib: Library,
            $($name: unsafe extern "C" fn($($arg),*) $(-> $ret)?,)*
        }

        impl Api {
            fn load() -> std::result::Result<Api, String> {
                let path = std::env::var_os(LIBRADOS_ENV).unwrap_or_else(|| "librados.so.2".into());
                // SAFETY: loading librados runs its initialisers, which are sound.
                let lib = unsafe { Library::new(&path) }.map_err(|e| e.to_string())?;
                $(
                    // SAFETY: the type matches the pacific C prototype.
                    let $name = unsafe {
                        *lib.get::<unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                            concat!(stringify!($name), "\0").as_bytes(),
                        )
                        .map_err(|e| e.to_string())?
                    };
                )*
                Ok(Api { _lib: lib, $($name,)* })
            }
        }
    };
}

api! {
    rados_create: fn(*mut Handle, *const c_char) -> c_int;
    rados_conf_read_file: fn(Handle, *const c_char) -> c_int;
    rados_conf_set: fn(Handle, *const c_char, *const c_char) -> c_int;
    rados_conf_get: fn(Handle, *const c_char, *mut c_char, usize) -> c_int;
    rados_connect: fn(Handle) -> c_int;
    rados_blocklist_add: fn(Handle, *mut c_char, u32) -> c_int;
    rados_shutdown: fn(Handle);
    rados_get_instance_id: fn(Handle) -> u64;
    rados_get_min_compatible_client: fn(Handle, *mut i8, *mut i8) -> c_int;
    rados_pool_list: fn(Handle, *mut c_char, usize) -> c_int;
    rados_cluster_fsid: fn(Handle, *mut c_char, usize) -> c_int;
    rados_pool_lookup: fn(Handle, *const c_char) -> i64;
    rados_pool_reverse_lookup: fn(Handle, i64, *mut c_char, usize) -> c_int;
    rados_ioctx_create2: fn(Handle, i64, *mut Handle) -> c_int;
    rados_ioctx_destroy: fn(Handle);
    rados_ioctx_set_namespace: fn(Handle, *const c_char);
    rados_ioctx_snap_set_read: fn(Handle, u64);
    rados_ioctx_selfmanaged_snap_create: fn(Handle, *mut u64) -> c_int;
    rados_ioctx_selfmanaged_snap_remove: fn(Handle, u64) -> c_int;
    rados_ioctx_selfmanaged_snap_rollback: fn(Handle, *const c_char, u64) -> c_int;
    rados_ioctx_selfmanaged_snap_set_write_ctx: fn(Handle, u64, *mut u64, c_int) -> c_int;
    rados_read: fn(Handle, *const c_char, *mut c_char, usize, u64) -> c_int;
    rados_stat: fn(Handle, *const c_char, *mut u64, *mut libc::time_t) -> c_int;
    rados_create_read_op: fn() -> Handle;
    rados_release_read_op: fn(Handle);
    rados_read_op_exec: fn(Handle, *const c_char, *const c_char, *const c_char, usize, *mut *mut c_char, *mut usize, *mut c_int);
    rados_read_op_operate: fn(Handle, Handle, *const c_char, c_int) -> c_int;
    rados_buffer_free: fn(*mut c_char);
    rados_create_write_op: fn() -> Handle;
    rados_release_write_op: fn(Handle);
    rados_write_op_create: fn(Handle, c_int, *const c_char);
    rados_write_op_assert_exists: fn(Handle);
    rados_write_op_write: fn(Handle, *const c_char, usize, u64);
    rados_write_op_write_full: fn(Handle, *const c_char, usize);
    rados_write_op_zero: fn(Handle, u64, u64);
    rados_write_op_truncate: fn(Handle, u64);
    rados_write_op_remove: fn(Handle);
    rados_write_op_exec: fn(Handle, *const c_char, *const c_char, *const c_char, usize, *mut c_int);
    rados_write_op_operate: fn(Handle, Handle, *const c_char, *mut libc::time_t, c_int) -> c_int;
    rados_watch3: fn(Handle, *const c_char, *mut u64, WatchCb, WatchErrCb, u32, *mut c_void) -> c_int;
    rados_watch_check: fn(Handle, u64) -> c_int;
    rados_unwatch2: fn(Handle, u64) -> c_int;
    rados_watch_flush: fn(Handle) -> c_int;
    rados_notify_ack: fn(Handle, *const c_char, u64, u64, *const c_char, c_int) -> c_int;
    rados_notify2: fn(Handle, *const c_char, *const c_char, c_int, u64, *mut *mut c_char, *mut usize) -> c_int;
    rados_nobjects_list_open: fn(Handle, *mut Handle) -> c_int;
    rados_nobjects_list_next2: fn(Handle, *mut *const c_char, *mut *const c_char, *mut *const c_char, *mut usize, *mut usize, *mut usize) -> c_int;
    rados_nobjects_list_close: fn(Handle);
}

fn api() -> Result<&'static Api> {
    static API: OnceLock<std::result::Result<Api, String>> = OnceLock::new();
    API.get_or_init(Api::load).as_ref().map_err(|detail| {
        Error::new(
            ErrorKind::UnsupportedFeature,
            format!("{MISSING_LIBRADOS} ({detail})"),
        )
    })
}

/// True when librados can be loaded on this machine.
pub fn available() -> bool {
    api().is_ok()
}

fn cstring(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::invalid(format!("name contains a NUL byte: {s:?}")))
}

/// Maps a negative librados return to an error worded "<what>: <strerror>".
fn check(rc: c_int, what: impl FnOnce() -> String) -> Result<c_int> {
    if rc >= 0 {
        return Ok(rc);
    }
    Err(errno_error(-rc, what()))
}

/// A raw librados handle that may be used from any thread (librados is
/// thread-safe for concurrent operations on one cluster or ioctx).
#[derive(Clone, Copy)]
struct Shared(Handle);
// SAFETY: librados handles are internally synchronised.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

pub struct LibradosCluster {
    api: &'static Api,
    cluster: Shared,
}

impl Drop for LibradosCluster {
    fn drop(&mut self) {
        // SAFETY: every ioctx holds an Arc to us, so none outlives the cluster.
        unsafe { (self.api.rados_shutdown)(self.cluster.0) }
    }
}

/// How to reach a cluster, in QEMU's order of application.
#[derive(Debug, Clone, Default)]
pub struct Connect {
    pub user: Option<String>,
    /// An explicit ceph.conf; `None` searches the default places.
    pub conf: Option<String>,
    pub settings: Vec<(String, String)>,
    /// Settings applied only when neither the conf file nor `settings` set them.
    pub defaults: Vec<(String, String)>,
}

impl LibradosCluster {
    pub fn connect(c: &Connect) -> Result<Arc<LibradosCluster>> {
        let api = api()?;
        let user = c.user.as_deref().map(cstring).transpose()?;
        let mut handle: Handle = ptr::null_mut();
        // SAFETY: out-pointer to a handle we own; user is a valid C string or NULL.
        let rc = unsafe {
            (api.rados_create)(
                &mut handle,
                user.as_ref().map_or(ptr::null(), |u| u.as_ptr()),
            )
        };
        check(rc, || "error initializing".into())?;
        let cluster = Arc::new(LibradosCluster {
            api,
            cluster: Shared(handle),
        });
        match &c.conf {
            Some(path) => {
                let p = cstring(path)?;
                // SAFETY: valid handle and C string.
                let rc = unsafe { (api.rados_conf_read_file)(handle, p.as_ptr()) };
                check(rc, || format!("error reading conf file {path}"))?;
            }
            // SAFETY: NULL asks for the default search ($CEPH_CONF, /etc/ceph/ceph.conf, ...).
            // A missing default file is not an error, as in QEMU.
            None => unsafe {
                (api.rados_conf_read_file)(handle, ptr::null());
            },
        }
        for (key, value) in &c.defaults {
            if !c.settings.iter().any(|(k, _)| k == key) && cluster.conf_is_default(key)? {
                cluster.set(key, value)?;
            }
        }
        for (key, value) in &c.settings {
            cluster.set(key, value)?;
        }
        // SAFETY: valid handle.
        let rc = unsafe { (api.rados_connect)(handle) };
        check(rc, || "error connecting".into())?;
        Ok(cluster)
    }

    fn set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (cstring(key)?, cstring(value)?);
        // SAFETY: valid handle and C strings.
        let rc = unsafe { (self.api.rados_conf_set)(self.cluster.0, k.as_ptr(), v.as_ptr()) };
        check(rc, || format!("invalid conf option {key}")).map(|_| ())
    }

    fn get(&self, key: &str) -> Result<String> {
        let k = cstring(key)?;
        let mut buf = vec![0 as c_char; 4096];
        // SAFETY: the buffer is as long as we say.
        let rc = unsafe {
            (self.api.rados_conf_get)(self.cluster.0, k.as_ptr(), buf.as_mut_ptr(), buf.len())
        };
        check(rc, || format!("invalid conf option {key}"))?;
        // SAFETY: librados NUL-terminates within the buffer.
        Ok(unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned())
    }

    /// True when `key` still has librados' built-in default (no conf file
    /// or environment set it), so our own default may apply.
    fn conf_is_default(&self, key: &str) -> Result<bool> {
        const LIBRADOS_DEFAULTS: &[(&str, f64)] = &[
            ("client_mount_timeout", 300.0),
            ("rados_osd_op_timeout", 0.0),
            ("rados_mon_op_timeout", 0.0),
        ];
        let current: f64 = self.get(key)?.parse().unwrap_or(f64::NAN);
        Ok(LIBRADOS_DEFAULTS
            .iter()
            .any(|&(k, d)| k == key && current == d))
    }

    fn fsid(&self) -> String {
        let mut buf = vec![0 as c_char; 64];
        // SAFETY: the buffer is as long as we say.
        let rc =
            unsafe { (self.api.rados_cluster_fsid)(self.cluster.0, buf.as_mut_ptr(), buf.len()) };
        if rc < 0 {
            return "unknown".into();
        }
        // SAFETY: NUL-terminated on success.
        unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    fn ioctx(self: &Arc<Self>, pool_id: i64, namespace: &str) -> Result<Shared> {
        let mut io: Handle = ptr::null_mut();
        // SAFETY: valid cluster handle; out-pointer we own.
        let rc = unsafe { (self.api.rados_ioctx_create2)(self.cluster.0, pool_id, &mut io) };
        check(rc, || format!("error opening pool {pool_id}"))?;
        let ns = cstring(namespace)?;
        // SAFETY: valid ioctx; librados copies the namespace.
        unsafe { (self.api.rados_ioctx_set_namespace)(io, ns.as_ptr()) };
        Ok(Shared(io))
    }

    fn open_pool(
        self: &Arc<Self>,
        id: i64,
        name: String,
        namespace: &str,
    ) -> Result<Arc<dyn Pool>> {
        let io = self.ioctx(id, namespace)?;
        Ok(Arc::new(LibradosPool {
            cluster: self.clone(),
            io,
            id,
            name,
            namespace: namespace.to_string(),
            snapc: RwLock::new(SnapContext::default()),
            snap_readers: Mutex::new(HashMap::new()),
        }))
    }
}

impl Cluster for Arc<LibradosCluster> {
    fn pool(&self, name: &str, namespace: &str) -> Result<Arc<dyn Pool>> {
        let n = cstring(name)?;
        // SAFETY: valid handle and C string.
        let id = unsafe { (self.api.rados_pool_lookup)(self.cluster.0, n.as_ptr()) };
        if id < 0 {
            return Err(errno_error(
                -id as i32,
                format!("error opening pool {name}"),
            ));
        }
        self.open_pool(id, name.to_string(), namespace)
    }

    fn pool_by_id(&self, id: i64, namespace: &str) -> Result<Arc<dyn Pool>> {
        let mut buf = vec![0 as c_char; 256];
        // SAFETY: the buffer is as long as we say.
        let rc = unsafe {
            (self.api.rados_pool_reverse_lookup)(self.cluster.0, id, buf.as_mut_ptr(), buf.len())
        };
        check(rc, || format!("error opening pool {id}"))?;
        // SAFETY: NUL-terminated on success.
        let name = unsafe { CStr::from_ptr(buf.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        self.open_pool(id, name, namespace)
    }

    fn instance_id(&self) -> u64 {
        // SAFETY: valid, connected handle.
        unsafe { (self.api.rados_get_instance_id)(self.cluster.0) }
    }

    fn min_compat_client(&self) -> Result<u8> {
        let (mut min, mut required) = (0i8, 0i8);
        // SAFETY: valid, connected handle and two out-pointers.
        let rc = unsafe {
            (self.api.rados_get_min_compatible_client)(self.cluster.0, &mut min, &mut required)
        };
        check(rc, || {
            "error reading the cluster's min compat client".into()
        })?;
        Ok(min.max(required).max(0) as u8)
    }

    fn pool_names(&self) -> Result<Vec<String>> {
        let mut buf: Vec<c_char> = vec![0; 4096];
        loop {
            // SAFETY: the buffer is as long as we say.
            let needed =
                unsafe { (self.api.rados_pool_list)(self.cluster.0, buf.as_mut_ptr(), buf.len()) };
            let needed = check(needed, || "error listing pools".into())? as usize;
            if needed <= buf.len() {
                break;
            }
            buf = vec![0; needed];
        }
        let bytes: Vec<u8> = buf.iter().map(|&c| c as u8).collect();
        Ok(bytes
            .split(|&b| b == 0)
            .take_while(|name| !name.is_empty())
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect())
    }

    fn describe(&self) -> String {
        format!("ceph:{}", self.fsid())
    }

    fn config(&self, key: &str) -> Option<String> {
        self.get(key).ok()
    }

    fn blocklist(&self, address: &str) -> Result<()> {
        let addr = cstring(address)?;
        // SAFETY: librados reads the NUL-terminated address; 0 = default expiry.
        let rc = unsafe {
            (self.api.rados_blocklist_add)(self.cluster.0, addr.as_ptr() as *mut c_char, 0)
        };
        check(rc, || format!("error blocklisting {address}")).map(|_| ())
    }
}

struct LibradosPool {
    cluster: Arc<LibradosCluster>,
    io: Shared,
    id: i64,
    name: String,
    namespace: String,
    /// The write snap context currently set on `io`; held for reading while
    /// a write is in flight so no other thread swaps it underneath.
    snapc: RwLock<SnapContext>,
    /// One ioctx per read snapshot (the read snapshot is ioctx state).
    snap_readers: Mutex<HashMap<u64, Shared>>,
}

impl Drop for LibradosPool {
    fn drop(&mut self) {
        let api = self.cluster.api;
        for io in self.snap_readers.lock().expect("no poisoning").values() {
            // SAFETY: ioctxs we created and nobody else holds.
            unsafe { (api.rados_ioctx_destroy)(io.0) };
        }
        // SAFETY: as above.
        unsafe { (api.rados_ioctx_destroy)(self.io.0) };
    }
}

impl LibradosPool {
    fn api(&self) -> &'static Api {
        self.cluster.api
    }

    fn reader(&self, snap: u64) -> Result<Shared> {
        if snap == SNAP_HEAD {
            return Ok(self.io);
        }
        let mut readers = self.snap_readers.lock().expect("no poisoning");
        if let Some(io) = readers.get(&snap) {
            return Ok(*io);
        }
        let io = self.cluster.ioctx(self.id, &self.namespace)?;
        // SAFETY: a fresh ioctx of ours.
        unsafe { (self.api().rados_ioctx_snap_set_read)(io.0, snap) };
        readers.insert(snap, io);
        Ok(io)
    }

    /// Runs `f` with `snapc` installed as the ioctx's write context.
    fn with_snapc<T>(&self, snapc: &SnapContext, f: impl FnOnce() -> Result<T>) -> Result<T> {
        loop {
            {
                let current = self.snapc.read().expect("no poisoning");
                if *current == *snapc {
                    return f();
                }
            }
            let mut current = self.snapc.write().expect("no poisoning");
            if *current != *snapc {
                let mut snaps = snapc.snaps.clone();
                // SAFETY: the slice is as long as we say; the ioctx is ours.
                let rc = unsafe {
                    (self.api().rados_ioctx_selfmanaged_snap_set_write_ctx)(
                        self.io.0,
                        snapc.seq,
                        snaps.as_mut_ptr(),
                        snaps.len() as c_int,
                    )
                };
                check(rc, || "invalid snapshot context".into())?;
                *current = snapc.clone();
            }
        }
    }
}

impl Pool for LibradosPool {
    fn id(&self) -> i64 {
        self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn namespace(&self) -> &str {
        &self.namespace
    }

    fn read_into(&self, oid: &str, offset: u64, buf: &mut [u8], snap: u64) -> Result<usize> {
        let io = self.reader(snap)?;
        let o = cstring(oid)?;
        // SAFETY: librados writes at most buf.len() bytes into our buffer.
        let rc = unsafe {
            (self.api().rados_read)(
                io.0,
                o.as_ptr(),
                buf.as_mut_ptr() as *mut c_char,
                buf.len(),
                offset,
            )
        };
        Ok(check(rc, || format!("error reading {oid}"))? as usize)
    }

    fn stat(&self, oid: &str, snap: u64) -> Result<u64> {
        let io = self.reader(snap)?;
        let o = cstring(oid)?;
        let (mut size, mut mtime) = (0u64, 0 as libc::time_t);
        // SAFETY: out-pointers to locals.
        let rc = unsafe { (self.api().rados_stat)(io.0, o.as_ptr(), &mut size, &mut mtime) };
        check(rc, || format!("error reading {oid}"))?;
        Ok(size)
    }

    fn exec(&self, oid: &str, call: &Call) -> Result<Vec<u8>> {
        let api = self.api();
        let (o, class, method) = (cstring(oid)?, cstring(call.class)?, cstring(call.method)?);
        let (mut out, mut out_len, mut prval): (*mut c_char, usize, c_int) =
            (ptr::null_mut(), 0, 0);
        // SAFETY: the op borrows inputs that outlive operate(); librados
        // allocates `out`, which we free with rados_buffer_free.
        let rc = unsafe {
            let op = (api.rados_create_read_op)();
            (api.rados_read_op_exec)(
                op,
                class.as_ptr(),
                method.as_ptr(),
                call.input.as_ptr() as *const c_char,
                call.input.len(),
                &mut out,
                &mut out_len,
                &mut prval,
            );
            let rc = (api.rados_read_op_operate)(op, self.io.0, o.as_ptr(), 0);
            (api.rados_release_read_op)(op);
            rc
        };
        let bytes = if out.is_null() {
            Vec::new()
        } else {
            // SAFETY: librados returned out_len bytes at out.
            let v = unsafe { std::slice::from_raw_parts(out as *const u8, out_len) }.to_vec();
            // SAFETY: allocated by librados.
            unsafe { (api.rados_buffer_free)(out) };
            v
        };
        check(if rc < 0 { rc } else { prval }, || {
            format!("{}.{} on {oid}", call.class, call.method)
        })?;
        Ok(bytes)
    }

    fn operate(&self, oid: &str, ops: &[WriteOp], snapc: &SnapContext) -> Result<()> {
        let api = self.api();
        let o = cstring(oid)?;
        let names: Vec<(CString, CString)> = ops
            .iter()
            .filter_map(|op| match op {
                WriteOp::Exec(call) => Some((cstring(call.class), cstring(call.method))),
                _ => None,
            })
            .map(|(c, m)| Ok((c?, m?)))
            .collect::<Result<_>>()?;
        let describe = || crate::rados::describe_ops(oid, ops);
        self.with_snapc(snapc, || {
            let mut prvals = vec![0 as c_int; names.len()];
            // SAFETY: every buffer the op borrows lives until operate() returns.
            let rc = unsafe {
                let op = (api.rados_create_write_op)();
                let mut exec_index = 0;
                for step in ops {
                    match *step {
                        WriteOp::CreateExclusive => (api.rados_write_op_create)(op, 1, ptr::null()),
                        WriteOp::Create => (api.rados_write_op_create)(op, 0, ptr::null()),
                        WriteOp::AssertExists => (api.rados_write_op_assert_exists)(op),
                        WriteOp::Write { offset, data } => (api.rados_write_op_write)(
                            op,
                            data.as_ptr() as *const c_char,
                            data.len(),
                            offset,
                        ),
                        WriteOp::WriteFull(data) => (api.rados_write_op_write_full)(
                            op,
                            data.as_ptr() as *const c_char,
                            data.len(),
                        ),
                        WriteOp::Zero { offset, len } => (api.rados_write_op_zero)(op, offset, len),
                        WriteOp::Truncate(size) => (api.rados_write_op_truncate)(op, size),
                        WriteOp::Remove => (api.rados_write_op_remove)(op),
                        WriteOp::Exec(call) => {
                            let (class, method) = &names[exec_index];
                            (api.rados_write_op_exec)(
                                op,
                                class.as_ptr(),
                                method.as_ptr(),
                                call.input.as_ptr() as *const c_char,
                                call.input.len(),
                                &mut prvals[exec_index],
                            );
                            exec_index += 1;
                        }
                    }
                }
                let rc =
                    (api.rados_write_op_operate)(op, self.io.0, o.as_ptr(), ptr::null_mut(), 0);
                (api.rados_release_write_op)(op);
                rc
            };
            check(rc, describe).map(|_| ())
        })
    }

    fn snap_create(&self) -> Result<u64> {
        let mut id = 0u64;
        // SAFETY: out-pointer to a local.
        let rc = unsafe { (self.api().rados_ioctx_selfmanaged_snap_create)(self.io.0, &mut id) };
        check(rc, || "error allocating a snapshot id".into())?;
        Ok(id)
    }

    fn snap_remove(&self, snap: u64) -> Result<()> {
        // SAFETY: plain call on our ioctx.
        let rc = unsafe { (self.api().rados_ioctx_selfmanaged_snap_remove)(self.io.0, snap) };
        check(rc, || format!("error releasing snapshot id {snap}")).map(|_| ())
    }

    fn rollback(&self, oid: &str, snap: u64, snapc: &SnapContext) -> Result<()> {
        let o = cstring(oid)?;
        self.with_snapc(snapc, || {
            // SAFETY: plain call on our ioctx with a valid C string.
            let rc = unsafe {
                (self.api().rados_ioctx_selfmanaged_snap_rollback)(self.io.0, o.as_ptr(), snap)
            };
            check(rc, || format!("error rolling back {oid}")).map(|_| ())
        })
    }

    fn watch(&self, oid: &str, handler: Arc<dyn WatchHandler>) -> Result<Box<dyn Watch>> {
        let api = self.api();
        let context = Box::new(WatchContext {
            api,
            io: self.io,
            oid: cstring(oid)?,
            handler,
            error: Mutex::new(0),
        });
        let raw = Box::into_raw(context);
        let mut handle = 0u64;
        // SAFETY: `raw` stays valid until LibradosWatch::drop has unwatched
        // and flushed callbacks.
        let rc = unsafe {
            (api.rados_watch3)(
                self.io.0,
                (*raw).oid.as_ptr(),
                &mut handle,
                watch_callback,
                watch_error,
                0,
                raw as *mut c_void,
            )
        };
        if rc < 0 {
            // SAFETY: the watch was not registered; we still own the box.
            drop(unsafe { Box::from_raw(raw) });
            return Err(errno_error(-rc, format!("error watching {oid}")));
        }
        Ok(Box::new(LibradosWatch {
            cluster: self.cluster.clone(),
            context: raw,
            handle,
        }))
    }

    fn notify(&self, oid: &str, payload: &[u8], timeout_ms: u64) -> Result<Vec<Watcher>> {
        let api = self.api();
        let o = cstring(oid)?;
        let (mut reply, mut reply_len): (*mut c_char, usize) = (ptr::null_mut(), 0);
        // SAFETY: payload outlives the call; librados allocates the reply.
        let rc = unsafe {
            (api.rados_notify2)(
                self.io.0,
                o.as_ptr(),
                payload.as_ptr() as *const c_char,
                payload.len() as c_int,
                timeout_ms,
                &mut reply,
                &mut reply_len,
            )
        };
        let bytes = if reply.is_null() {
            Vec::new()
        } else {
            // SAFETY: librados returned reply_len bytes.
            let v = unsafe { std::slice::from_raw_parts(reply as *const u8, reply_len) }.to_vec();
            // SAFETY: allocated by librados.
            unsafe { (api.rados_buffer_free)(reply) };
            v
        };
        // A timeout still lists every watcher: the silent ones as timed out.
        if rc < 0 && rc != -libc::ETIMEDOUT {
            return Err(errno_error(-rc, format!("error notifying {oid}")));
        }
        decode_notify_reply(&bytes)
            .map_err(|e| Error::corrupt(format!("bad notify reply from {oid}: {e}")))
    }

    fn list(&self) -> Result<Vec<String>> {
        let api = self.api();
        let mut ctx: Handle = ptr::null_mut();
        // SAFETY: out-pointer we own.
        let rc = unsafe { (api.rados_nobjects_list_open)(self.io.0, &mut ctx) };
        check(rc, || format!("error listing pool {}", self.name))?;
        let mut names = Vec::new();
        loop {
            let (mut entry, mut key, mut ns) = (ptr::null(), ptr::null(), ptr::null());
            let (mut entry_len, mut key_len, mut ns_len) = (0usize, 0usize, 0usize);
            // SAFETY: out-pointers; librados keeps the strings valid until the next call.
            let rc = unsafe {
                (api.rados_nobjects_list_next2)(
                    ctx,
                    &mut entry,
                    &mut key,
                    &mut ns,
                    &mut entry_len,
                    &mut key_len,
                    &mut ns_len,
                )
            };
            if rc == -libc::ENOENT {
                break;
            }
            if rc < 0 {
                // SAFETY: our list context.
                unsafe { (api.rados_nobjects_list_close)(ctx) };
                return Err(errno_error(
                    -rc,
                    format!("error listing pool {}", self.name),
                ));
            }
            // SAFETY: entry_len bytes at entry.
            let name = unsafe { std::slice::from_raw_parts(entry as *const u8, entry_len) };
            names.push(String::from_utf8_lossy(name).into_owned());
        }
        // SAFETY: our list context.
        unsafe { (api.rados_nobjects_list_close)(ctx) };
        Ok(names)
    }
}

/// The OSD's notify reply: acks (gid, cookie, payload), then timeouts (gid, cookie).
fn decode_notify_reply(bytes: &[u8]) -> crate::ceph::encoding::DecodeResult<Vec<Watcher>> {
    use crate::ceph::encoding::Decoder;
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut d = Decoder::new(bytes);
    let mut watchers = Vec::new();
    for _ in 0..d.count(20)? {
        watchers.push(Watcher {
            gid: d.u64()?,
            cookie: d.u64()?,
            reply: Some(d.bytes()?.to_vec()),
        });
    }
    for _ in 0..d.count(16)? {
        watchers.push(Watcher {
            gid: d.u64()?,
            cookie: d.u64()?,
            reply: None,
        });
    }
    Ok(watchers)
}

struct WatchContext {
    api: &'static Api,
    io: Shared,
    oid: CString,
    handler: Arc<dyn WatchHandler>,
    error: Mutex<c_int>,
}

extern "C" fn watch_callback(
    arg: *mut c_void,
    notify_id: u64,
    handle: u64,
    notifier: u64,
    data: *mut c_void,
    len: usize,
) {
    // SAFETY: arg is the WatchContext registered with this watch, alive until unwatch+flush.
    let ctx = unsafe { &*(arg as *const WatchContext) };
    let payload = if data.is_null() {
        &[][..]
    } else {
        // SAFETY: librados passes len bytes at data.
        unsafe { std::slice::from_raw_parts(data as *const u8, len) }
    };
    let reply = ctx.handler.notified(notifier, payload);
    // SAFETY: acking on the watch's ioctx; reply outlives the call.
    unsafe {
        (ctx.api.rados_notify_ack)(
            ctx.io.0,
            ctx.oid.as_ptr(),
            notify_id,
            handle,
            reply.as_ptr() as *const c_char,
            reply.len() as c_int,
        );
    }
}

extern "C" fn watch_error(arg: *mut c_void, _handle: u64, err: c_int) {
    // SAFETY: as in watch_callback.
    let ctx = unsafe { &*(arg as *const WatchContext) };
    *ctx.error.lock().expect("no poisoning") = err;
}

struct LibradosWatch {
    cluster: Arc<LibradosCluster>,
    context: *mut WatchContext,
    handle: u64,
}

// SAFETY: the context is only read from callbacks and freed in drop.
unsafe impl Send for LibradosWatch {}
// SAFETY: as above.
unsafe impl Sync for LibradosWatch {}

impl Watch for LibradosWatch {
    fn handle(&self) -> u64 {
        self.handle
    }

    fn check(&self) -> Result<()> {
        // SAFETY: the context is alive while we are.
        let ctx = unsafe { &*self.context };
        let err = *ctx.error.lock().expect("no poisoning");
        // SAFETY: plain call.
        let rc = if err != 0 {
            err
        } else {
            unsafe { (ctx.api.rados_watch_check)(ctx.io.0, self.handle) }
        };
        check(rc, || "lost the watch on the image header".into()).map(|_| ())
    }
}

impl Drop for LibradosWatch {
    fn drop(&mut self) {
        // SAFETY: unwatch, then flush so no callback still uses the context, then free it.
        unsafe {
            let ctx = &*self.context;
            (ctx.api.rados_unwatch2)(ctx.io.0, self.handle);
            (ctx.api.rados_watch_flush)(self.cluster.cluster.0);
            drop(Box::from_raw(self.context));
        }
    }
}
