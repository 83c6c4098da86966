//! `info [-f fmt] [--output=human|json] [--backing-chain] [-U] [--image-opts] filename`

use serde_json::Value;

use crate::cli::InfoArgs;
use crate::commands::{OutputFormat, one_filename, output_format, print};
use crate::image::open::{OpenOptions, open_image};
use crate::qjson;

pub fn run(a: InfoArgs) -> anyhow::Result<i32> {
    let output = output_format("info", &a.output)?;
    let filename = one_filename("info", &a.args)?;
    let opts = OpenOptions {
        format: a.format,
        writable: false,
        force_share: a.force_share,
        image_opts: a.image_opts,
    };
    let image = open_image(filename, &opts)?;
    let mut nodes = vec![image.info()?];
    if a.backing_chain {
        let mut next = image.backing();
        while let Some(layer) = next {
            nodes.push(layer.info()?);
            next = layer.backing();
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
