//! rbdimg: parse the command line, run the command, map the outcome to an
//! exit code. Errors print as "<program>: <message>" like qemu-img's; a
//! panic on any thread prints "<program>: internal error: ..." and exits 70.

use std::io::{self, Write};
use std::process::ExitCode;

use rbdimg::cli::argv::{self, program_name};
use rbdimg::cli::panic_hook;
use rbdimg::commands::{self, Console, Usage};

/// Exit code for any failed command, as qemu-img uses.
const EXIT_FAILURE: u8 = 1;

fn main() -> ExitCode {
    let argv: Vec<_> = std::env::args_os().collect();
    let prog = program_name(argv.first());
    panic_hook::install(&prog);
    let cli = match argv::parse(argv) {
        Ok(cli) => cli,
        Err(early) => {
            // Help and version go to stdout; a closed pipe there is not an error.
            let _ = io::stdout().write_all(early.stdout.as_bytes());
            let _ = io::stderr().write_all(early.stderr.as_bytes());
            return ExitCode::from(early.code as u8);
        }
    };
    let console = Console::new(&prog);
    match commands::run(cli, &console) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            if let Some(io_err) = err.downcast_ref::<io::Error>()
                && io_err.kind() == io::ErrorKind::BrokenPipe
            {
                return ExitCode::SUCCESS;
            }
            let stderr = &mut io::stderr();
            let _ = match err.downcast_ref::<Usage>() {
                Some(usage) => {
                    let hint = argv::usage_failure(&prog, Some(usage.command), &usage.message);
                    stderr.write_all(hint.stderr.as_bytes())
                }
                None => writeln!(stderr, "{prog}: {err}").and_then(|()| {
                    match err
                        .downcast_ref::<rbdimg::error::Error>()
                        .and_then(|e| e.hint())
                    {
                        Some(hint) => stderr.write_all(hint.as_bytes()),
                        None => Ok(()),
                    }
                }),
            };
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
