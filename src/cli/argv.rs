//! Turning argv into a `Cli`, with qemu-img's wording for every misuse:
//! getopt's "invalid option -- 'z'", "Command not found: x", and the
//! "Try '... --help' for more info" hint. Also qemu-img's one argv quirk:
//! `resize` takes its last argument as the size before options are parsed,
//! so "-1G" is a size there, not an option.

use std::ffi::OsString;
use std::path::Path;

use clap::error::{ContextKind, ContextValue, ErrorKind};

use super::Cli;
use clap::FromArgMatches;

/// What to print and the exit code, when argv does not lead to a command run.
#[derive(Debug, PartialEq, Eq)]
pub struct EarlyExit {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The program name as QEMU prints it: the basename of argv[0].
pub fn program_name(argv0: Option<&OsString>) -> String {
    argv0
        .and_then(|a| {
            Path::new(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "rbdimg".to_string())
}

/// A usage error: "<prog>: <message>" plus the help hint for `command`.
pub fn usage_failure(prog: &str, command: Option<&str>, message: &str) -> EarlyExit {
    let hint = match command {
        Some(c) => format!("Try '{prog} {c} --help' for more info"),
        None => format!("Try '{prog} --help' for more info"),
    };
    EarlyExit {
        code: 1,
        stdout: String::new(),
        stderr: format!("{prog}: {message}\n{hint}\n"),
    }
}

pub fn parse(argv: Vec<OsString>) -> Result<Cli, EarlyExit> {
    let prog = program_name(argv.first());
    let subcommand = argv.get(1).map(|a| a.to_string_lossy().into_owned());
    let mut args = argv.clone();
    let mut resize_size = None;
    if subcommand.as_deref() == Some("resize") && !args.iter().any(|a| a == "-h" || a == "--help") {
        if args.len() < 4 {
            return Err(usage_failure(
                &prog,
                Some("resize"),
                "Expecting image file name and size",
            ));
        }
        resize_size = args.pop();
    }
    let parsed = super::command()
        .try_get_matches_from(&args)
        .and_then(|matches| {
            let mut cli = Cli::from_arg_matches(&matches)?;
            if let (super::Command::Bitmap(b), Some(("bitmap", sub))) =
                (&mut cli.command, matches.subcommand())
            {
                b.order_ops(sub);
            }
            Ok(cli)
        });
    match parsed {
        Ok(mut cli) => {
            if let (super::Command::Resize(r), Some(size)) = (&mut cli.command, resize_size) {
                r.args.push(size.to_string_lossy().into_owned());
            }
            Ok(cli)
        }
        Err(err) => Err(translate(&prog, subcommand.as_deref(), &args, err)),
    }
}

fn translate(
    prog: &str,
    subcommand: Option<&str>,
    args: &[OsString],
    err: clap::Error,
) -> EarlyExit {
    let command = super::command();
    let sub = subcommand.and_then(|s| command.find_subcommand(s));
    let known_sub = sub.map(|c| c.get_name());
    let invalid_arg = || match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // The long name getopt resolved a typed `--name[=value]` to.
    let long_name = |typed: &str| {
        let name = typed.split('=').next().unwrap_or(typed);
        let names = sub
            .map(|c| long_candidates(c, &name[2..]))
            .unwrap_or_default();
        match names.as_slice() {
            [one] => format!("--{one}"),
            _ => name.to_string(),
        }
    };
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => EarlyExit {
            code: 0,
            stdout: err.render().to_string(),
            stderr: String::new(),
        },
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            usage_failure(prog, None, "Not enough arguments")
        }
        ErrorKind::InvalidSubcommand => usage_failure(
            prog,
            None,
            &format!("Command not found: {}", subcommand.unwrap_or_default()),
        ),
        ErrorKind::UnknownArgument => {
            let arg = invalid_arg();
            let text = match arg.strip_prefix("--") {
                Some(typed) => {
                    let typed = typed.split('=').next().unwrap_or(typed);
                    let names = sub.map(|c| long_candidates(c, typed)).unwrap_or_default();
                    if names.len() > 1 {
                        let list: Vec<String> = names.iter().map(|n| format!("'--{n}'")).collect();
                        format!(
                            "option '--{typed}' is ambiguous; possibilities: {}",
                            list.join(" ")
                        )
                    } else {
                        format!("unrecognized option '{arg}'")
                    }
                }
                None => format!(
                    "invalid option -- '{}'",
                    arg.trim_start_matches('-').chars().next().unwrap_or('?')
                ),
            };
            getopt_failure(prog, known_sub, &text)
        }
        ErrorKind::TooManyValues => {
            // A flag given a value: `--image-opts=x`.
            let typed = args
                .iter()
                .map(|a| a.to_string_lossy())
                .find(|a| a.starts_with("--") && a.contains('='))
                .unwrap_or_default();
            let text = format!("option '{}' doesn't allow an argument", long_name(&typed));
            getopt_failure(prog, known_sub, &text)
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals => {
            // clap reports a missing option value as an invalid (empty) value.
            let typed = args
                .last()
                .map(|a| a.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = match typed.strip_prefix("--") {
                Some(_) => format!("option '{}' requires an argument", long_name(&typed)),
                None => format!(
                    "option requires an argument -- '{}'",
                    typed.chars().last().unwrap_or('?')
                ),
            };
            getopt_failure(prog, known_sub, &text)
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ");
            usage_failure(prog, known_sub, first)
        }
    }
}

/// The long names (or aliases) of `command` that `typed` abbreviates, one
/// per option, in declaration order: an exact name alone, as getopt_long
/// resolves it.
fn long_candidates(command: &clap::Command, typed: &str) -> Vec<String> {
    let names = |a: &clap::Arg| -> Vec<String> {
        a.get_long()
            .into_iter()
            .chain(a.get_all_aliases().unwrap_or_default())
            .map(str::to_string)
            .collect()
    };
    let args: Vec<Vec<String>> = command.get_arguments().map(names).collect();
    if let Some(exact) = args.iter().flatten().find(|n| *n == typed) {
        return vec![exact.clone()];
    }
    args.iter()
        .filter_map(|names| names.iter().find(|n| n.starts_with(typed)).cloned())
        .collect()
}

/// getopt's own messages name the command: "qemu-img info: invalid option -- 'z'".
fn getopt_failure(prog: &str, subcommand: Option<&str>, text: &str) -> EarlyExit {
    let (who, hint) = match subcommand {
        Some(c) => (
            format!("{prog} {c}"),
            format!("Try '{prog} {c} --help' for more info"),
        ),
        None => (
            prog.to_string(),
            format!("Try '{prog} --help' for more info"),
        ),
    };
    EarlyExit {
        code: 1,
        stdout: String::new(),
        stderr: format!("{who}: {text}\n{hint}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Cli, EarlyExit> {
        parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn getopt_style_messages() {
        let e = run(&["/usr/bin/qemu-img", "info", "-z", "a"]).unwrap_err();
        assert_eq!(
            e.stderr,
            "qemu-img info: invalid option -- 'z'\nTry 'qemu-img info --help' for more info\n"
        );
        let e = run(&["rbdimg", "info", "--foo", "a"]).unwrap_err();
        assert_eq!(
            e.stderr,
            "rbdimg info: unrecognized option '--foo'\nTry 'rbdimg info --help' for more info\n"
        );
        let e = run(&["rbdimg", "info", "-f"]).unwrap_err();
        assert_eq!(
            e.stderr,
            "rbdimg info: option requires an argument -- 'f'\nTry 'rbdimg info --help' for more info\n"
        );
        let e = run(&["rbdimg", "frob"]).unwrap_err();
        assert_eq!(
            e.stderr,
            "rbdimg: Command not found: frob\nTry 'rbdimg --help' for more info\n"
        );
        let e = run(&["rbdimg"]).unwrap_err();
        assert_eq!(
            e.stderr,
            "rbdimg: Not enough arguments\nTry 'rbdimg --help' for more info\n"
        );
        assert_eq!(e.code, 1);
    }

    #[test]
    fn resize_takes_the_last_argument_as_size() {
        let cli = run(&["rbdimg", "resize", "a.raw", "-1G"]).unwrap();
        match cli.command {
            crate::cli::Command::Resize(r) => assert_eq!(r.args, ["a.raw", "-1G"]),
            other => panic!("parsed as {other:?}"),
        }
        let e = run(&["rbdimg", "resize", "a.raw"]).unwrap_err();
        assert!(
            e.stderr
                .starts_with("rbdimg: Expecting image file name and size\n")
        );
    }

    #[test]
    fn bitmap_operations_keep_their_command_line_order() {
        use crate::cli::{BitmapOp, Command};
        let cli = run(&[
            "rbdimg",
            "bitmap",
            "--add",
            "--merge",
            "a",
            "--clear",
            "--add",
            "--merge=b",
            "f",
            "x",
        ])
        .unwrap();
        let Command::Bitmap(b) = cli.command else {
            panic!("not bitmap")
        };
        assert_eq!(
            b.ops,
            [
                BitmapOp::Add,
                BitmapOp::Merge("a".into()),
                BitmapOp::Clear,
                BitmapOp::Add,
                BitmapOp::Merge("b".into()),
            ]
        );
    }

    #[test]
    fn help_and_version_exit_zero() {
        let e = run(&["rbdimg", "--version"]).unwrap_err();
        assert_eq!(e.code, 0);
        assert!(e.stdout.contains("rbdimg"));
        assert_eq!(run(&["rbdimg", "info", "--help"]).unwrap_err().code, 0);
    }
}
