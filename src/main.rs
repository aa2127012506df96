//! `failover` CLI entry point: parse the command line, set up logging and the async runtime,
//! hand the command to `cli::dispatch`, map the result to an exit code. `anyhow`-style error
//! handling stops here; everything the tool does is a use case in `failover::app`.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    // `failover runs | head` must end quietly, as any Unix tool does, not panic on EPIPE.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread is started.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // A panic marks this process's runs `crashed` (with their calls in doubt), never `running`.
    failover::app::lifecycle::install_crash_hook();
    // The simulator's timeline already shows every retry; keep its output to the timeline.
    let quiet = matches!(cli.command, Command::Simulate { .. } | Command::Demo { .. });
    let filter = match cli.verbose {
        0 if quiet => "error",
        // Our own warnings (retries) matter under stress; the SDK's own are noise there.
        0 => "failover=warn,error",
        1 => "failover=debug,info",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match rt.block_on(cli::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
