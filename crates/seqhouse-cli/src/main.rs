//! The `seqhouse` binary: logging, the allocator, exit codes; everything else is `seqhouse_cli`.

use std::process::ExitCode;

use tracing_subscriber::filter::LevelFilter;

use seqhouse_cli::{ParseError, TerminalProgress, execute, exit_code};

fn main() -> ExitCode {
    seqhouse_cli::tune_allocator();
    let cli = match seqhouse_cli::parse(std::env::args_os()) {
        Ok(cli) => cli,
        // A bad option value: one line, as every other error (clap's own shape has three).
        Err(ParseError::Clap(e)) if e.kind() == clap::error::ErrorKind::ValueValidation => {
            eprintln!("seqhouse: error: {}", seqhouse_cli::config::clap_message(&e));
            return ExitCode::from(2);
        }
        // Help, version, an unknown flag: as clap prints them.
        Err(ParseError::Clap(e)) => e.exit(),
        Err(ParseError::Usage(e)) => {
            eprintln!("seqhouse: error: {e}");
            return ExitCode::from(2);
        }
    };
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => LevelFilter::WARN,
        (false, 0) => LevelFilter::INFO,
        (false, 1) => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let progress = TerminalProgress::new(!cli.quiet);
    match execute(cli.command, &progress) {
        Ok(reports) => {
            if let Some(signal) = seqhouse_cli::stop_signal() {
                // The signal came after the last commit point: nothing was left to cancel.
                let outputs: Vec<&str> = reports.iter().map(|r| r.output.as_str()).collect();
                let published = outputs.join(", ");
                progress.suspend(|| eprintln!("seqhouse: {signal} came after publishing {published}; it is complete"));
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            seqhouse_core::Progress::finish(&progress);
            let message = seqhouse_cli::render_error(&error);
            progress.suspend(|| eprintln!("seqhouse: error: {message}"));
            ExitCode::from(exit_code(&error))
        }
    }
}
