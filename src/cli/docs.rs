//! The man page and shell completions, generated from the clap definitions.
//! `cargo run --bin gen-docs` writes them to man/ and completions/; a test
//! regenerates them in memory and fails when the committed copies are stale.

use clap_complete::Shell;

/// Every generated file: (path relative to the repository root, contents).
pub fn generate() -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let cmd = super::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .expect("rendering to memory cannot fail");
    files.push(("man/rbdimg.1".to_string(), page));
    for sub in cmd.get_subcommands() {
        let name = format!("rbdimg-{}", sub.get_name());
        let mut page = Vec::new();
        let sub = sub.clone().name(name.clone());
        clap_mangen::Man::new(sub)
            .render(&mut page)
            .expect("rendering to memory cannot fail");
        files.push((format!("man/{name}.1"), page));
    }
    for (shell, file) in [
        (Shell::Bash, "rbdimg.bash"),
        (Shell::Zsh, "_rbdimg"),
        (Shell::Fish, "rbdimg.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "rbdimg", &mut script);
        files.push((format!("completions/{file}"), script));
    }
    files
}
