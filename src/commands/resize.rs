//! `resize [-f fmt] [--shrink] [--preallocation=mode] [-q] filename [+|-]size`

use anyhow::bail;

use crate::block::driver::Preallocation;
use crate::block::options::SIZE_HINT;
use crate::cli::ResizeArgs;
use crate::commands::{Console, print, usage};
use crate::open::{OpenOptions, open_image};
use crate::size::parse_size;

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
        Err(_) => bail!("Parameter 'size' expects a non-negative number below 2^64\n{SIZE_HINT}"),
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
    let opts = OpenOptions {
        format: a.image.format,
        writable: true,
        force_share: a.image.force_share,
        image_opts: a.image.image_opts,
        diagnostics: console.diagnostics(),
        ..Default::default()
    };
    let image = open_image(filename, &opts)?;
    let current = image.size() as i128;
    let new_size = match target {
        Target::Absolute(n) => n as i128,
        Target::Grow(n) => current + n as i128,
        Target::Shrink(n) => current - n as i128,
    };
    // QEMU computes in int64_t: anything past 8 EiB wraps negative.
    if new_size <= 0 || new_size > i64::MAX as i128 {
        bail!("New image size must be positive");
    }
    let new_size = new_size as u64;
    if (new_size as i128) < current {
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
    image.resize(new_size, prealloc)?;
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
