//! Writes man/ and completions/ from the clap definitions: run it from the
//! repository root after changing the command line.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    for (path, contents) in rbdimg::cli::docs::generate() {
        let path = Path::new(&path);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        fs::write(path, contents)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
