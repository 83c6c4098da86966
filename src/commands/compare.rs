//! `compare [-f fmt] [-F fmt] [-T cache] [-p] [-q] [-s] [-U] filename1 filename2`
//!
//! qemu-img's algorithm and exit codes: 0 identical, 1 different, 2 an image
//! could not be opened, 4 a read failed. Ranges both images report as zeros
//! are not read; a range only one side allocates must read as zeros there.

use std::sync::Arc;

use crate::block::BlockDriver;
use crate::cli::CompareArgs;
use crate::commands::{Console, print, usage};
use crate::convert::progress::Progress;
use crate::convert::sparse::SECTOR;
use crate::open::{OpenOptions, open_image};

const EXIT_DIFFERENT: i32 = 1;
const EXIT_OPEN: i32 = 2;
const EXIT_READ: i32 = 4;
/// The most compared at once, as qemu-img.
const STEP: u64 = 2 << 20;

pub fn run(a: CompareArgs, console: &Console) -> anyhow::Result<i32> {
    let [first, second] = a.args.as_slice() else {
        return Err(usage("compare", "Expecting two image file names"));
    };
    if let Some(mode) = &a.cache
        && !crate::commands::convert::CACHE_MODES.contains(&mode.as_str())
    {
        console.error(format!("Invalid source cache option: {mode}"));
        return Ok(EXIT_OPEN);
    }
    let open = |name: &str, format: &Option<String>| {
        let opts = OpenOptions {
            format: format.clone(),
            force_share: a.image.force_share,
            image_opts: a.image.image_opts,
            diagnostics: console.diagnostics(),
            ..Default::default()
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
    if a.strict && size1 != size2 {
        say("Strict mode: Image size mismatch!\n")?;
        return Ok(EXIT_DIFFERENT);
    }
    let progress = Progress::new(size1.max(size2), a.progress && !a.quiet.quiet);
    let mut outcome = compare(&one, &two, a.strict, &progress);
    if matches!(outcome, Ok(None)) && size1 != size2 {
        say("Warning: Image size mismatch!\n")?;
        let (larger, from) = if size1 > size2 {
            (&one, size2)
        } else {
            (&two, size1)
        };
        outcome =
            first_nonzero(larger, from, larger.size(), &progress).map(|o| o.map(Mismatch::Content));
    }
    progress.finish();
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
        Err(e) => {
            console.error(e);
            return Ok(EXIT_READ);
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

/// The first difference over the common length, `None` when equal.
fn compare(
    one: &Arc<dyn BlockDriver>,
    two: &Arc<dyn BlockDriver>,
    strict: bool,
    progress: &Progress,
) -> crate::error::Result<Option<Mismatch>> {
    let total = one.size().min(two.size());
    let (mut a, mut b) = (vec![0u8; STEP as usize], vec![0u8; STEP as usize]);
    let mut offset = 0;
    while offset < total {
        let left = total - offset;
        let s1 = one.block_status(offset, left)?;
        let s2 = two.block_status(offset, left)?;
        if strict && s1.allocation != s2.allocation {
            return Ok(Some(Mismatch::Strict(format!(
                "Strict mode: Offset {offset} block status mismatch!"
            ))));
        }
        let n = s1.len.min(s2.len).clamp(1, STEP);
        if !(s1.allocation.reads_as_zero() && s2.allocation.reads_as_zero()) {
            let (a, b) = (&mut a[..n as usize], &mut b[..n as usize]);
            one.read_at(a, offset).map_err(|e| {
                e.prepend(format!(
                    "Error while reading offset {offset} of {}",
                    one.filename()
                ))
            })?;
            two.read_at(b, offset).map_err(|e| {
                e.prepend(format!(
                    "Error while reading offset {offset} of {}",
                    two.filename()
                ))
            })?;
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

/// The first sector in `[from, to)` of `image` that is not all zeros.
fn first_nonzero(
    image: &Arc<dyn BlockDriver>,
    from: u64,
    to: u64,
    progress: &Progress,
) -> crate::error::Result<Option<u64>> {
    let mut buf = vec![0u8; STEP as usize];
    let mut offset = from;
    while offset < to {
        let status = image.block_status(offset, to - offset)?;
        let n = status.len.clamp(1, STEP);
        if !status.allocation.reads_as_zero() {
            let buf = &mut buf[..n as usize];
            image.read_at(buf, offset).map_err(|e| {
                e.prepend(format!(
                    "Error while reading offset {offset} of {}",
                    image.filename()
                ))
            })?;
            if let Some(i) = buf.chunks(SECTOR).position(|s| s.iter().any(|&x| x != 0)) {
                return Ok(Some(offset + (i * SECTOR) as u64));
            }
        }
        progress.advance(n);
        offset += n;
    }
    Ok(None)
}
