//! `compare [-f fmt] [-F fmt] [-T cache] [-p] [-q] [-s] [-U] filename1 filename2`
//!
//! qemu-img's algorithm and exit codes: 0 identical, 1 different, 2 an image
//! could not be opened, 3 an allocation lookup failed (a corrupt image), 4 a
//! read failed. The images are walked in allocation extents through their
//! backing chains (`block::walk`): a run both read as zeros is skipped in
//! one step however long; a range only one side allocates must read as
//! zeros there.

use std::sync::Arc;

use crate::block::BlockDriver;
use crate::block::extent::Extent;
use crate::block::walk;
use crate::cli::CompareArgs;
use crate::commands::progress::reporter;
use crate::commands::{Console, print, usage};
use crate::convert::progress::{Progress, Report};
use crate::convert::sparse::SECTOR;
use crate::open::{OpenOptions, open_image};

const EXIT_DIFFERENT: i32 = 1;
const EXIT_OPEN: i32 = 2;
/// Block status failed (qemu-img's "Sector allocation test failed").
const EXIT_STATUS: i32 = 3;
const EXIT_READ: i32 = 4;
/// The most compared at once, as qemu-img.
const STEP: u64 = 2 << 20;

pub fn run(a: CompareArgs, console: &Console) -> anyhow::Result<i32> {
    let [first, second] = a.args.as_slice() else {
        return Err(usage("compare", "Expecting two image file names"));
    };
    let report = reporter(a.progress && !a.quiet.quiet, 2.0);
    let code = compare_images(&a, first, second, console, &report);
    report.end();
    code
}

fn compare_images(
    a: &CompareArgs,
    first: &str,
    second: &str,
    console: &Console,
    report: &Arc<dyn Report>,
) -> anyhow::Result<i32> {
    if let Some(mode) = &a.cache
        && !crate::commands::is_cache_mode(mode)
    {
        console.error(format!("Invalid source cache option: {mode}"));
        return Ok(EXIT_OPEN);
    }
    let open = |name: &str, format: &Option<String>| {
        // One format per image: the second image's `-F` replaces `-f`.
        let opts = OpenOptions {
            format: format.clone(),
            ..crate::commands::reading(&a.image, a.share.force_share, console)
        };
        open_image(name, &opts)
    };
    let (one, two) = match (open(first, &a.image.format), open(second, &a.second_format)) {
        (Ok(one), Ok(two)) => (one, two),
        (Err(e), _) | (_, Err(e)) => {
            console.error(e);
            return Ok(EXIT_OPEN);
        }
    };
    let say = |text: &str| if a.quiet.quiet { Ok(()) } else { print(text) };
    let (size1, size2) = (one.size(), two.size());
    let progress = Progress::new(size1.max(size2), report.clone());
    report.update(0.0);
    if a.strict && size1 != size2 {
        say("Strict mode: Image size mismatch!\n")?;
        return Ok(EXIT_DIFFERENT);
    }
    let images = [(&one, first), (&two, second)];
    let mut outcome = compare(images, a.strict, &progress);
    if matches!(outcome, Ok(None)) && size1 != size2 {
        say("Warning: Image size mismatch!\n")?;
        let (larger, from) = if size1 > size2 {
            (images[0], size2)
        } else {
            (images[1], size1)
        };
        outcome = first_nonzero(larger, from, &progress).map(|o| o.map(Mismatch::Content));
    }
    match outcome {
        Ok(None) => {}
        Ok(Some(Mismatch::Content(offset))) => {
            say(&format!("Content mismatch at offset {offset}!\n"))?;
            return Ok(EXIT_DIFFERENT);
        }
        Ok(Some(Mismatch::Strict(message))) => {
            say(&format!("{message}\n"))?;
            return Ok(EXIT_DIFFERENT);
        }
        Err(failure) => {
            console.error(failure.message);
            return Ok(failure.code);
        }
    }
    say("Images are identical.\n")?;
    Ok(0)
}

/// How two images differ.
enum Mismatch {
    /// The first differing 512-byte sector.
    Content(u64),
    /// A strict-mode difference, worded as qemu-img words it.
    Strict(String),
}

/// Why the comparison stopped: qemu-img's message and exit code.
struct Failure {
    code: i32,
    message: String,
}

/// An image and the name the user gave it.
type Named<'a> = (&'a Arc<dyn BlockDriver>, &'a str);

/// Block status through the backing chain (as qemu-img's
/// `bdrv_block_status_above`), or qemu-img's exit 3 when the image cannot
/// say.
fn status((image, name): Named, offset: u64, len: u64) -> Result<Extent, Failure> {
    walk::status_above(image.as_ref(), offset, len).map_err(|_| Failure {
        code: EXIT_STATUS,
        message: format!("Sector allocation test failed for {name}"),
    })
}

/// Reads `buf` at `offset`, or qemu-img's exit 4.
fn read((image, _): Named, buf: &mut [u8], offset: u64) -> Result<(), Failure> {
    image.read_at(buf, offset).map_err(|e| Failure {
        code: EXIT_READ,
        message: format!(
            "Error while reading offset {offset} of {}: {e}",
            image.filename()
        ),
    })
}

/// The first difference over the common length, `None` when equal.
fn compare(
    [one, two]: [Named; 2],
    strict: bool,
    progress: &Progress,
) -> Result<Option<Mismatch>, Failure> {
    let total = one.0.size().min(two.0.size());
    let (mut a, mut b) = (vec![0u8; STEP as usize], vec![0u8; STEP as usize]);
    let mut offset = 0;
    while offset < total {
        let left = total - offset;
        let s1 = status(one, offset, left)?;
        let s2 = status(two, offset, left)?;
        if strict && s1.allocation != s2.allocation {
            return Ok(Some(Mismatch::Strict(format!(
                "Strict mode: Offset {offset} block status mismatch!"
            ))));
        }
        let mut n = s1.len.min(s2.len);
        // A run both read as zeros is skipped whole, however long.
        if !(s1.allocation.reads_as_zero() && s2.allocation.reads_as_zero()) {
            n = n.min(STEP);
            let (a, b) = (&mut a[..n as usize], &mut b[..n as usize]);
            read(one, a, offset)?;
            read(two, b, offset)?;
            if let Some(i) = a
                .chunks(SECTOR)
                .zip(b.chunks(SECTOR))
                .position(|(x, y)| x != y)
            {
                return Ok(Some(Mismatch::Content(offset + (i * SECTOR) as u64)));
            }
        }
        progress.advance(n);
        offset += n;
    }
    Ok(None)
}

/// The first sector from `from` to the end of `image` that is not all zeros.
fn first_nonzero(image: Named, from: u64, progress: &Progress) -> Result<Option<u64>, Failure> {
    let to = image.0.size();
    let mut buf = vec![0u8; STEP as usize];
    let mut offset = from;
    while offset < to {
        let status = status(image, offset, to - offset)?;
        let mut n = status.len;
        if !status.allocation.reads_as_zero() {
            n = n.min(STEP);
            let buf = &mut buf[..n as usize];
            read(image, buf, offset)?;
            if let Some(i) = buf.chunks(SECTOR).position(|s| s.iter().any(|&x| x != 0)) {
                return Ok(Some(offset + (i * SECTOR) as u64));
            }
        }
        progress.advance(n);
        offset += n;
    }
    Ok(None)
}
