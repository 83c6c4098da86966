use crate::cli::BitmapArgs;
use crate::commands::Console;
pub fn run(_a: BitmapArgs, _c: &Console) -> anyhow::Result<i32> {
    anyhow::bail!("wip")
}
