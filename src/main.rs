//! `failover` CLI entry point: parse the command line, set up logging and the async runtime,
//! hand the command to `cli::dispatch`, map the result to an exit code. `anyhow`-style error
//! handling stops here; everything the tool does is a use case in `failover::app`.

mod cli;

use clap::Parser;
use cli::args::{Cli, Command, LogFormat};
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
    init_logging(&cli);
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

/// Log lines on stderr, filtered by -v (or RUST_LOG). `--log-format json`: one JSON object a
/// line, with the spans of the run and step it belongs to (`run_id`, `step_id`); the text format
/// leaves those spans out (target `failover_run`), so its lines read as they always have.
fn init_logging(cli: &Cli) {
    // The simulator's timeline already shows every retry; keep its output to the timeline.
    let quiet = matches!(cli.command, Command::Simulate { .. } | Command::Demo { .. });
    let filter = match cli.verbose {
        0 if quiet => "error",
        // Our own warnings (retries) matter under stress; the SDK's own are noise there.
        0 => "failover=warn,error",
        1 => "failover=debug,info",
        _ => "trace",
    };
    let spans = match cli.log_format {
        LogFormat::Text => "failover_run=off",
        LogFormat::Json => "failover_run=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let filter = match spans.parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match cli.log_format {
        LogFormat::Text => fmt.init(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
}
