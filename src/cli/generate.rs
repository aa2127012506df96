//! `failover completions` and `failover man`: shell completion scripts and man pages, generated
//! from the clap definition in `cli::args` (so they list every command and flag as built).

use super::args::{exit, Cli};
use clap::CommandFactory;
use failover::app::AppError;
use std::path::Path;

/// A completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, AppError> {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "failover", &mut std::io::stdout());
    Ok(exit::OK)
}

/// Man pages: every page into `dir`, or failover(1) on stdout.
pub fn man(dir: Option<&Path>) -> Result<u8, AppError> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .and_then(|_| clap_mangen::generate_to(cmd, dir))
                .map_err(|e| {
                    AppError::Input(format!(
                        "error: cannot write man pages into {}: {e}\n  hint: give a directory you can write to, e.g. `failover man target/man`",
                        dir.display()
                    ))
                })?;
            let n = std::fs::read_dir(dir)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
                        .count()
                })
                .unwrap_or(0);
            println!(
                "Wrote {n} man page(s) into {}; read one with `man {}/failover.1`.",
                dir.display(),
                dir.display()
            );
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(|e| AppError::Input(format!("error: cannot print the man page: {e}")))?,
    }
    Ok(exit::OK)
}
