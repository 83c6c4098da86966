//! `info [-f fmt] [--output=human|json] [--backing-chain] [-U] [--image-opts] filename`

use anyhow::bail;
use serde_json::Value;

use crate::cli::InfoArgs;
use crate::commands::{Console, OutputFormat, one_filename, output_format, print, reading};
use crate::open::{OpenOptions, open_image};
use crate::qjson;

pub fn run(a: InfoArgs, console: &Console) -> anyhow::Result<i32> {
    let output = output_format("info", &a.output)?;
    let filename = one_filename("info", &a.args)?;
    let opts = OpenOptions {
        metadata_only: true,
        ..reading(&a.image, a.share.force_share, console)
    };
    let image = open_image(filename, &opts)?;
    let mut nodes = vec![image.info()?];
    if a.backing_chain {
        // As qemu-img: open each backing file by its full name, without its
        // own backing, and stop at a name seen before.
        let mut seen = vec![filename.to_string()];
        loop {
            let last = nodes.last().expect("one node at least");
            let Some(backing) = &last.backing_filename else {
                break;
            };
            let Some(full) = last.full_backing_filename.clone() else {
                bail!(
                    "Could not determine absolute backing filename, but backing filename '{backing}' present"
                );
            };
            if seen.contains(&full) {
                bail!("Backing file '{full}' creates an infinite loop.");
            }
            seen.push(full.clone());
            let chain_opts = OpenOptions {
                format: last.backing_filename_format.clone(),
                force_share: a.share.force_share,
                metadata_only: true,
                diagnostics: console.diagnostics(),
                ..Default::default()
            };
            let layer = open_image(&full, &chain_opts)?;
            nodes.push(layer.info()?);
        }
    }
    let text = match output {
        OutputFormat::Human => nodes
            .iter()
            .map(|n| n.to_human())
            .collect::<Vec<_>>()
            .join("\n"),
        OutputFormat::Json if a.backing_chain => {
            let list = Value::Array(nodes.iter().map(|n| n.to_json()).collect());
            format!("{}\n", qjson::to_pretty_string(&list))
        }
        OutputFormat::Json => format!("{}\n", qjson::to_pretty_string(&nodes[0].to_json())),
    };
    print(&text)?;
    Ok(0)
}
