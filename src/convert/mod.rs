//! The convert engine: copies one or more sources, concatenated, into a
//! target with N chunks in flight.
//!
//! ```text
//!   Planner (lazy, under a mutex)          N workers (own thread pool)
//!   block::walk extents                        chunk with data (<= 2 MiB):
//!     -> Chunk{Copy|Zero|Skip} ------------->  read -> split at -S granules
//!                                              data runs -> write
//!                                              zero runs -> skip (target reads as zero)
//!                                                           or write_zeroes (-n)
//!                                            chunk without data (any length,
//!                                            no buffer): zero or skip it whole
//!   in order (default): chunk i's writes start after chunk i-1's have
//!   started (a ticket), so the target fills in order while writes overlap;
//!   -W: written as soon as it is ready.
//! ```
//! Memory: each worker owns one chunk buffer, so the peak is about
//! N x chunk size plus a small constant, whatever the image size.
//!
//! A worker that fails or panics stops every other one (a panic is then
//! re-raised on the caller's thread once all workers have returned).

pub mod map;
pub mod plan;
pub mod progress;
pub mod sparse;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use crate::block::driver::BlockDriver;
use crate::error::{Error, ErrorKind, Result};
use plan::{Chunk, Planner, Work};

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// `-S`: zero runs of at least this many bytes (aligned) stay sparse; 0
    /// writes every byte.
    pub sparse_size: u64,
    /// The target reads as zeros before we start (freshly created, or
    /// `--target-is-zero`): zero ranges are then skipped entirely.
    pub target_is_zero: bool,
    /// `-B`: ranges the source takes from its backing chain stay
    /// unallocated in the target, whose own backing provides them.
    pub keep_backing_unallocated: bool,
    /// `-m`: chunks in flight.
    pub parallel: usize,
    /// `-W`: writes may complete out of order.
    pub out_of_order: bool,
    /// `-c`: write whole target allocation units of this size compressed.
    pub compress_unit: Option<u64>,
}

/// Writes are issued in chunk order unless `-W`: a ticket per chunk,
/// passed on as soon as the chunk's writes have started.
struct Ticket {
    next: Mutex<u64>,
    turn: Condvar,
}

impl Ticket {
    fn wait_for(&self, index: u64, abort: &AtomicBool) -> bool {
        let mut next = self.next.lock().expect("no poisoning");
        while *next != index {
            if abort.load(Ordering::SeqCst) {
                return false;
            }
            next = self.turn.wait(next).expect("no poisoning");
        }
        true
    }

    fn done(&self) {
        *self.next.lock().expect("no poisoning") += 1;
        self.turn.notify_all();
    }
}

struct Shared<'a> {
    planner: Mutex<Planner>,
    target: &'a dyn BlockDriver,
    opts: &'a ConvertOptions,
    progress: &'a progress::Progress,
    ticket: Ticket,
    abort: AtomicBool,
    /// The first failure, by chunk order.
    error: Mutex<Option<(u64, Error)>>,
}

/// Copies `sources`, one after the other, into `target` from offset 0.
pub fn convert(
    sources: &[Arc<dyn BlockDriver>],
    target: &dyn BlockDriver,
    opts: &ConvertOptions,
    progress: &progress::Progress,
) -> Result<()> {
    let chunk = plan::CHUNK;
    let shared = Shared {
        planner: Mutex::new(Planner::new(
            sources.to_vec(),
            chunk,
            opts.keep_backing_unallocated,
            !writes_zeros_as_data(opts),
        )),
        target,
        opts,
        progress,
        ticket: Ticket {
            next: Mutex::new(0),
            turn: Condvar::new(),
        },
        abort: AtomicBool::new(false),
        error: Mutex::new(None),
    };
    let workers = opts.parallel.max(1);
    // Workers mostly wait on I/O, so they get their own threads rather
    // than sharing the CPU-sized global pool.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(workers)
        .thread_name(|i| format!("convert-{i}"))
        .build()
        .map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("could not start convert workers: {e}"),
            )
        })?;
    // A panicking worker unwinds through its guard, which stops the
    // others; the scope then re-raises the panic here.
    pool.scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|_| {
                let _guard = StopOnUnwind(&shared);
                worker(&shared, chunk as usize)
            });
        }
    });
    if let Some((_, e)) = shared.error.into_inner().expect("no poisoning") {
        return Err(e);
    }
    Ok(())
}

fn worker(shared: &Shared, chunk_size: usize) {
    let mut buffer = Vec::with_capacity(chunk_size);
    while !shared.abort.load(Ordering::SeqCst) {
        let next = shared.planner.lock().expect("no poisoning").next_chunk();
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return,
            Err(e) => return fail(shared, u64::MAX, e),
        };
        if let Err(e) = process(shared, &chunk, &mut buffer) {
            return fail(shared, chunk.index, e);
        }
        shared.progress.advance(progress_units(&chunk, shared.opts));
    }
}

/// What a chunk counts toward progress, as qemu-img counts it: the data
/// it copies, and with `-S 0` the zeros it writes too.
pub fn progress_units(chunk: &Chunk, opts: &ConvertOptions) -> u64 {
    chunk
        .runs
        .iter()
        .filter(|r| r.work == Work::Copy || (r.work == Work::Zero && opts.sparse_size == 0))
        .map(|r| r.len)
        .sum()
}

fn fail(shared: &Shared, index: u64, e: Error) {
    let mut first = shared.error.lock().expect("no poisoning");
    if first.as_ref().is_none_or(|(i, _)| index < *i) {
        *first = Some((index, e));
    }
    drop(first);
    stop(shared);
}

/// Tells every worker to stop after its current chunk.
fn stop(shared: &Shared) {
    shared.abort.store(true, Ordering::SeqCst);
    // Wake writers waiting for a turn that will never come (under the
    // ticket's lock, so none is between checking `abort` and waiting).
    // Poisoning is harmless here: the counter is only read.
    let _turn = shared
        .ticket
        .next
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    shared.ticket.turn.notify_all();
}

/// Stops the other workers when a worker unwinds: the chunk it held never
/// takes its turn, so workers waiting for later turns would wait forever.
struct StopOnUnwind<'a, 'b>(&'a Shared<'b>);

impl Drop for StopOnUnwind<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            stop(self.0);
        }
    }
}

/// `-S 0` allocates everything, zeros included; `-c` compresses whole
/// units, zeros included unless `-S` lets them stay sparse.
fn writes_zeros_as_data(opts: &ConvertOptions) -> bool {
    opts.sparse_size == 0
}

/// Reads (when needed) outside any lock, then writes in turn.
fn process(shared: &Shared, chunk: &Chunk, buffer: &mut Vec<u8>) -> Result<()> {
    let opts = shared.opts;
    // Nothing to read, so no buffer (the chunk may be any length), unless
    // compression must look at units that straddle runs.
    if !chunk.copies()
        && !writes_zeros_as_data(opts)
        && (opts.compress_unit.is_none() || chunk.runs.len() == 1)
    {
        if !opts.out_of_order {
            if !shared.ticket.wait_for(chunk.index, &shared.abort) {
                return Ok(());
            }
            shared.ticket.done();
        }
        return chunk.runs.iter().try_for_each(|run| match run.work {
            Work::Zero => zero(shared, chunk.target_offset + run.offset, run.len),
            Work::Copy | Work::Skip => Ok(()),
        });
    }
    buffer.resize(chunk.len as usize, 0);
    let mut source = None;
    for run in &chunk.runs {
        let window = &mut buffer[run.offset as usize..(run.offset + run.len) as usize];
        match run.work {
            Work::Copy => {
                let source = source.get_or_insert_with(|| {
                    shared.planner.lock().expect("no poisoning").sources()[chunk.source].clone()
                });
                let at = chunk.source_offset + run.offset;
                source
                    .read_at(window, at)
                    .map_err(|e| e.prepend(format!("error while reading at byte {at}")))?;
            }
            // Zeros written as data, or compressed with whole units.
            Work::Zero if writes_zeros_as_data(opts) || opts.compress_unit.is_some() => {
                window.fill(0)
            }
            Work::Zero | Work::Skip => {}
        }
    }
    if !opts.out_of_order {
        if !shared.ticket.wait_for(chunk.index, &shared.abort) {
            return Ok(());
        }
        shared.ticket.done();
    }
    if let Some(unit) = opts.compress_unit {
        return write_compressed(shared, chunk, buffer, unit);
    }
    chunk.runs.iter().try_for_each(|run| {
        let at = chunk.target_offset + run.offset;
        let bytes = &buffer[run.offset as usize..(run.offset + run.len) as usize];
        match run.work {
            Work::Copy => write_data(shared, at, bytes),
            Work::Zero if opts.sparse_size == 0 => write_data(shared, at, bytes),
            Work::Zero => zero(shared, at, run.len),
            Work::Skip => Ok(()),
        }
    })
}

/// `-c`: the chunk in whole target units (2 MiB chunks hold whole
/// clusters): units left entirely to the backing file stay unallocated,
/// all-zero units are zeroed, others are written compressed (a unit cut
/// short by the end of a source that is not the target's end, plain).
fn write_compressed(shared: &Shared, chunk: &Chunk, buffer: &[u8], unit: u64) -> Result<()> {
    let target_size = shared.target.size();
    let mut pos = 0;
    while pos < chunk.len {
        let at = chunk.target_offset + pos;
        let len = ((at / unit + 1) * unit - at).min(chunk.len - pos);
        let inherited = chunk
            .runs
            .iter()
            .filter(|r| r.offset < pos + len && r.offset + r.len > pos)
            .all(|r| r.work == Work::Skip);
        let bytes = &buffer[pos as usize..(pos + len) as usize];
        if inherited {
            // The target's backing file provides these bytes.
        } else if sparse::is_zero(bytes) && shared.opts.sparse_size > 0 {
            zero(shared, at, len)?;
        } else {
            let whole = at.is_multiple_of(unit) && (len == unit || at + len == target_size);
            let written = if whole {
                shared.target.write_compressed(bytes, at)
            } else {
                shared.target.write_at(bytes, at)
            };
            written.map_err(|e| e.prepend(format!("error while writing at byte {at}")))?;
        }
        pos += len;
    }
    Ok(())
}

fn write_data(shared: &Shared, offset: u64, buffer: &[u8]) -> Result<()> {
    for run in sparse::split(buffer, offset, shared.opts.sparse_size) {
        let at = offset + run.start as u64;
        if run.zero {
            zero(shared, at, (run.end - run.start) as u64)?;
        } else {
            shared
                .target
                .write_at(&buffer[run.start..run.end], at)
                .map_err(|e| e.prepend(format!("error while writing at byte {at}")))?;
        }
    }
    Ok(())
}

fn zero(shared: &Shared, offset: u64, len: u64) -> Result<()> {
    if shared.opts.target_is_zero {
        return Ok(());
    }
    shared
        .target
        .write_zeroes(offset, len, true)
        .map_err(|e| e.prepend(format!("error while writing at byte {offset}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::driver::{Check, Preallocation};
    use crate::block::extent::{Allocation, Extent};
    use crate::block::info::NodeInfo;
    use crate::block::snapshot::Snapshots;
    use std::time::Duration;

    /// An all-data disk in memory whose reads at `panic_at` panic.
    struct Disk {
        bytes: Mutex<Vec<u8>>,
        panic_at: Option<u64>,
    }

    impl Disk {
        fn new(size: usize, panic_at: Option<u64>) -> Disk {
            Disk {
                bytes: Mutex::new((0..size).map(|i| (i / 4096) as u8 | 1).collect()),
                panic_at,
            }
        }
    }

    impl Snapshots for Disk {}
    impl Check for Disk {}

    impl BlockDriver for Disk {
        fn format_name(&self) -> &'static str {
            "raw"
        }
        fn filename(&self) -> &str {
            "memory"
        }
        fn size(&self) -> u64 {
            self.bytes.lock().unwrap().len() as u64
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<()> {
            if self.panic_at == Some(offset) {
                panic!("read at {offset}");
            }
            let bytes = self.bytes.lock().unwrap();
            buf.copy_from_slice(&bytes[offset as usize..offset as usize + buf.len()]);
            Ok(())
        }
        fn write_at(&self, buf: &[u8], offset: u64) -> Result<()> {
            let mut bytes = self.bytes.lock().unwrap();
            bytes[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
            Ok(())
        }
        fn write_zeroes(&self, offset: u64, len: u64, _may_unmap: bool) -> Result<()> {
            let mut bytes = self.bytes.lock().unwrap();
            bytes[offset as usize..(offset + len) as usize].fill(0);
            Ok(())
        }
        fn discard(&self, offset: u64, len: u64) -> Result<()> {
            self.write_zeroes(offset, len, true)
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
        fn resize(&self, _new_size: u64, _prealloc: Preallocation) -> Result<()> {
            Err(Error::not_supported())
        }
        fn block_status(&self, offset: u64, len: u64) -> Result<Extent> {
            Ok(Extent {
                offset,
                len,
                allocation: Allocation::Data,
            })
        }
        fn info(&self) -> Result<NodeInfo> {
            Ok(NodeInfo::default())
        }
    }

    fn options(out_of_order: bool) -> ConvertOptions {
        ConvertOptions {
            sparse_size: 4096,
            target_is_zero: true,
            keep_backing_unallocated: false,
            parallel: 4,
            out_of_order,
            compress_unit: None,
        }
    }

    /// Runs a conversion on another thread; `None` if it did not end in 20 s.
    fn run(source: Disk, out_of_order: bool) -> Option<std::thread::Result<Result<Vec<u8>>>> {
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let size = source.size() as usize;
            let sources: Vec<Arc<dyn BlockDriver>> = vec![Arc::new(source)];
            let target = Disk::new(size, None);
            target.write_zeroes(0, size as u64, true).unwrap();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let progress = progress::Progress::silent();
                convert(&sources, &target, &options(out_of_order), &progress)
                    .map(|()| target.bytes.lock().unwrap().clone())
            }));
            let _ = done.send(outcome);
        });
        result.recv_timeout(Duration::from_secs(20)).ok()
    }

    #[test]
    fn copies_every_chunk() {
        let source = Disk::new(9 * plan::CHUNK as usize + 4096, None);
        let expected = source.bytes.lock().unwrap().clone();
        let copied = run(source, false).expect("convert hung").unwrap().unwrap();
        assert!(copied == expected);
    }

    #[test]
    fn a_panicking_worker_stops_the_others_and_the_panic_reaches_the_caller() {
        // The panicking chunk never takes its write turn: in order, the
        // workers holding later chunks wait for it.
        for out_of_order in [false, true] {
            let source = Disk::new(16 * plan::CHUNK as usize, Some(2 * plan::CHUNK));
            let outcome = run(source, out_of_order).expect("convert hung after a worker panicked");
            let panic = outcome.expect_err("the worker's panic was swallowed");
            assert_eq!(
                panic.downcast_ref::<String>().map(String::as_str),
                Some(format!("read at {}", 2 * plan::CHUNK).as_str())
            );
        }
    }
}
