//! `bench [-c count] [-d depth] [-f fmt | --image-opts] [--flush-interval n [--no-drain]]
//! [-i aio] [-n] [-o offset] [--pattern byte] [-q] [-s size] [-S step] [-t cache] [-U] [-w] filename`
//!
//! qemu-img's benchmark: `count` requests of `size` bytes, `depth` of them
//! in flight at once (worker threads here, where QEMU uses AIO), each at
//! the previous offset plus `step`, wrapping at the image's end; writes
//! write the pattern byte and may flush every `flush-interval` requests,
//! after draining what is in flight unless `--no-drain`. The lines are
//! qemu-img's; the time is this run's. Writes to an RBD image take its
//! exclusive lock, as every writer does.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::bail;

use crate::block::BlockDriver;
use crate::cli::BenchArgs;
use crate::commands::{Console, cvtnum, is_cache_mode, one_filename, print, reading};
use crate::error::{Error, ErrorKind, strerror};
use crate::open::spec::{ImageSpec, Location};
use crate::open::{OpenOptions, open_image};

const INT_MAX: u64 = i32::MAX as u64;
/// Worker threads at most, however deep the queue.
const MAX_WORKERS: u64 = 256;

/// The run, as qemu-img's `BenchData` describes it.
#[derive(Debug, Clone, Copy)]
struct Run {
    count: u64,
    depth: u64,
    buffer_size: u64,
    step: u64,
    offset: u64,
    write: bool,
    pattern: u8,
    flush_interval: u64,
    drain: bool,
    /// `-t writethrough|directsync`: every write is flushed.
    writethrough: bool,
}

pub fn run(a: BenchArgs, console: &Console) -> anyhow::Result<i32> {
    let number = |name: &str, text: &Option<String>, min: u64, max: u64, default: u64| {
        text.as_deref()
            .map_or(Ok(default), |t| cvtnum(name, t, min, max))
    };
    let count = number("request count", &a.count, 1, INT_MAX, 75000)?;
    let depth = number("queue depth", &a.depth, 1, INT_MAX, 64)?;
    let buffer_size = number("buffer size", &a.buffer_size, 1, INT_MAX, 4096)?;
    let step = number("step size", &a.step_size, 0, INT_MAX, 0)?;
    let offset = number("offset", &a.offset, 0, i64::MAX as u64, 0)?;
    let pattern = number("pattern byte", &a.pattern, 0, 255, 0)? as u8;
    let flush_interval = number("flush interval", &a.flush_interval, 0, INT_MAX, 0)?;
    let cache = a.cache.as_deref().unwrap_or("writeback");
    if !is_cache_mode(cache) {
        bail!("Invalid cache mode");
    }
    let mut native = a.native;
    if let Some(aio) = &a.aio {
        match aio.as_str() {
            "native" => native = true,
            "threads" | "io_uring" => {}
            _ => bail!("Invalid aio option: {aio}"),
        }
    }
    let filename = one_filename("bench", &a.args)?;
    if !a.write && flush_interval > 0 {
        bail!("--flush-interval is only available in write tests");
    }
    if flush_interval > 0 && flush_interval < depth {
        bail!("Flush interval can't be smaller than depth");
    }
    let direct = matches!(cache, "none" | "directsync");
    if native
        && !direct
        && matches!(
            ImageSpec::parse(filename, a.image.image_opts).map(|s| s.location),
            Ok(Location::File(_))
        )
    {
        bail!(
            "Could not open '{filename}': aio=native was specified, but it requires cache.direct=on, which was not specified."
        );
    }
    let opts = OpenOptions {
        writable: a.write,
        ..reading(&a.image, a.share.force_share, console)
    };
    let image = open_image(filename, &opts)?;
    let run = Run {
        count,
        depth,
        buffer_size,
        step: if step == 0 { buffer_size } else { step },
        offset,
        write: a.write,
        pattern,
        flush_interval,
        drain: !a.no_drain,
        writethrough: matches!(cache, "writethrough" | "directsync"),
    };
    let mut head = format!(
        "Sending {} {} requests, {} bytes each, {} in parallel (starting at offset {}, step size {})\n",
        run.count,
        if run.write { "write" } else { "read" },
        run.buffer_size,
        run.depth,
        run.offset,
        run.step
    );
    if flush_interval > 0 {
        head.push_str(&format!("Sending flush every {flush_interval} requests\n"));
    }
    print(&head)?;
    let started = Instant::now();
    execute(&image, &run, cache != "unsafe")?;
    let seconds = started.elapsed().as_secs_f64();
    print(&format!("Run completed in {seconds:3.3} seconds.\n"))?;
    Ok(0)
}

/// A failed request or flush, worded as qemu-img words it.
fn failure(what: &str, e: &Error) -> anyhow::Error {
    let errno = std::io::Error::from_raw_os_error(e.errno_value());
    anyhow::anyhow!("Failed {what}: {}", strerror(&errno))
}

/// Runs the requests: segments of `flush_interval` requests, each drained
/// and followed by a flush (or, with `--no-drain`, flushed by whichever
/// request completes the interval while the others go on).
fn execute(image: &Arc<dyn BlockDriver>, run: &Run, flushes: bool) -> anyhow::Result<()> {
    let size = image.size();
    let segment = match (run.flush_interval, run.drain) {
        (n, true) if n > 0 => n,
        _ => run.count,
    };
    let mut first = 0;
    while first < run.count {
        let last = (first + segment).min(run.count);
        requests(image, run, size, first..last, flushes)?;
        if run.flush_interval > 0 && run.drain && flushes {
            image.flush().map_err(|e| failure("request", &e))?;
        }
        first = last;
    }
    Ok(())
}

/// The offset of request `i`: the first at `offset` as given, then each
/// `step` further, wrapping at the image's end.
fn request_offset(run: &Run, size: u64, i: u64) -> u64 {
    match (i, size) {
        (0, _) => run.offset,
        (_, 0) => 0,
        _ => {
            ((u128::from(run.offset) + u128::from(i) * u128::from(run.step)) % u128::from(size))
                as u64
        }
    }
}

/// Requests `range`, `depth` at a time on worker threads.
fn requests(
    image: &Arc<dyn BlockDriver>,
    run: &Run,
    size: u64,
    range: std::ops::Range<u64>,
    flushes: bool,
) -> anyhow::Result<()> {
    let next = AtomicU64::new(range.start);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let fail = |e: anyhow::Error| {
        stop.store(true, Ordering::Relaxed);
        error.lock().expect("no poisoning").get_or_insert(e);
    };
    let workers = run.depth.min(range.end - range.start).min(MAX_WORKERS);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let mut buf = vec![run.pattern; run.buffer_size as usize];
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= range.end {
                        break;
                    }
                    if let Err(e) = request(image, run, size, i, &mut buf, flushes) {
                        return fail(e);
                    }
                    let completed = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if !run.drain
                        && flushes
                        && run.flush_interval > 0
                        && completed.is_multiple_of(run.flush_interval)
                        && let Err(e) = image.flush()
                    {
                        return fail(failure("flush request", &e));
                    }
                }
            });
        }
    });
    match error.into_inner().expect("no poisoning") {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn request(
    image: &Arc<dyn BlockDriver>,
    run: &Run,
    size: u64,
    i: u64,
    buf: &mut [u8],
    flushes: bool,
) -> anyhow::Result<()> {
    let offset = request_offset(run, size, i);
    // QEMU's block layer refuses a request past the end with EIO.
    if offset
        .checked_add(run.buffer_size)
        .is_none_or(|end| end > size)
    {
        return Err(failure("request", &Error::os(ErrorKind::Io, libc::EIO)));
    }
    let result = match run.write {
        true => image
            .write_at(buf, offset)
            .and_then(|()| match run.writethrough && flushes {
                true => image.flush(),
                false => Ok(()),
            }),
        false => image.read_at(buf, offset),
    };
    result.map_err(|e| failure("request", &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_step_and_wrap_as_qemu_img() {
        let run = Run {
            count: 10,
            depth: 1,
            buffer_size: 4096,
            step: 4096,
            offset: 12288,
            write: false,
            pattern: 0,
            flush_interval: 0,
            drain: true,
            writethrough: false,
        };
        let offsets: Vec<u64> = (0..5).map(|i| request_offset(&run, 16384, i)).collect();
        assert_eq!(offsets, [12288, 0, 4096, 8192, 12288]);
        assert_eq!(request_offset(&run, 0, 3), 0);
        // The first request is where -o says, even past the end.
        assert_eq!(
            request_offset(
                &Run {
                    offset: 1 << 30,
                    ..run
                },
                16384,
                0
            ),
            1 << 30
        );
    }
}
