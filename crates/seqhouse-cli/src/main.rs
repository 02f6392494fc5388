use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;

use seqhouse_cli::{Cli, TerminalProgress, execute, exit_code};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            seqhouse_core::Progress::finish(&progress);
            let message = format!("{error:#}").replace('\n', " ");
            progress.suspend(|| eprintln!("seqhouse: error: {message}"));
            ExitCode::from(exit_code(&error))
        }
    }
}
