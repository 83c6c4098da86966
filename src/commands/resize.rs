//! `resize [-f fmt] [--shrink] [--preallocation=mode] [-q] filename [+|-]size`

use anyhow::bail;

use crate::block::driver::Preallocation;
use crate::block::options::SIZE_HINT;
use crate::cli::ResizeArgs;
use crate::commands::{Console, print, usage, writing};
use crate::open::open_image;
use crate::size::{SizeError, parse_size};

/// The requested size: absolute, or relative to the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Absolute(u64),
    Grow(u64),
    Shrink(u64),
}

fn parse_target(text: &str) -> anyhow::Result<Target> {
    let (make, digits): (fn(u64) -> Target, &str) = match text.as_bytes().first() {
        Some(b'+') => (Target::Grow, &text[1..]),
        Some(b'-') => (Target::Shrink, &text[1..]),
        _ => (Target::Absolute, text),
    };
    match parse_size(digits) {
        Ok(n) => Ok(make(n)),
        Err(SizeError::Overflow) => bail!("Value '{digits}' is out of range for parameter 'size'"),
        Err(SizeError::Invalid) => {
            bail!("Parameter 'size' expects a non-negative number below 2^64\n{SIZE_HINT}")
        }
    }
}

pub fn run(a: ResizeArgs, console: &Console) -> anyhow::Result<i32> {
    let [filename, size] = a.args.as_slice() else {
        return Err(usage("resize", "Expecting image file name and size"));
    };
    let prealloc = match a.preallocation.as_deref() {
        None => Preallocation::Off,
        Some(mode) => match Preallocation::parse(mode) {
            Some(p) => p,
            None => bail!("Invalid preallocation mode '{mode}'"),
        },
    };
    let target = parse_target(size)?;
    let opts = writing(&a.image, console);
    let image = open_image(filename, &opts)?;
    // QEMU computes in int64_t, wrapping: a size past 8 EiB is negative.
    let current = image.size() as i64;
    let new_size = match target {
        Target::Absolute(n) => n as i64,
        Target::Grow(n) => current.wrapping_add(n as i64),
        Target::Shrink(n) => current.wrapping_sub(n as i64),
    };
    if new_size <= 0 {
        bail!("New image size must be positive");
    }
    if new_size < current {
        if !a.shrink {
            // qemu-img prints the error, then a warning line of its own.
            let prog = console.program();
            bail!(
                "Use the --shrink option to perform a shrink operation.\n{prog}: warning: Shrinking an image \
                 will delete all data beyond the shrunken image's end. Before performing such an operation, \
                 make sure there is no important data there."
            );
        }
        if prealloc != Preallocation::Off {
            bail!("Preallocation can only be used for growing images");
        }
    }
    // QEMU's block layer limit on any request (`BDRV_MAX_LENGTH`).
    const MAX_LENGTH: i64 = i64::MAX - (1 << 30) + 1;
    if new_size > MAX_LENGTH {
        bail!("offset({new_size}) exceeds maximum({MAX_LENGTH})");
    }
    image.resize(new_size as u64, prealloc)?;
    image.flush()?;
    if !a.quiet.quiet {
        print("Image resized.\n")?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_and_absolute_sizes() {
        assert_eq!(parse_target("+1G").unwrap(), Target::Grow(1 << 30));
        assert_eq!(parse_target("-512").unwrap(), Target::Shrink(512));
        assert_eq!(parse_target("2M").unwrap(), Target::Absolute(2 << 20));
        assert!(
            parse_target("1Q")
                .unwrap_err()
                .to_string()
                .starts_with("Parameter 'size' expects")
        );
    }
}
