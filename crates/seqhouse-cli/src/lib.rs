//! The `seqhouse` command line: parses arguments into a request, picks the engine, runs the
//! orchestrator. All sequencing logic lives in `seqhouse-core` and the engine crates.

pub mod args;
mod progress;

use std::ffi::OsString;

use clap::Parser;

use seqhouse_core::{JobReport, NoProgress, Progress};
use seqhouse_local::LocalWarehouse;

pub use args::{Cli, Command, SequenceArgs, UsageError};

/// Runs `seqhouse` with `args` (the first item is the program name), without logging set-up or
/// a progress bar: the entry point for tests and embedding. Returns the reports of the jobs run.
pub fn run<I, T>(args: I) -> anyhow::Result<Vec<JobReport>>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| UsageError(e.to_string()))?;
    execute(cli.command, &NoProgress)
}

/// Runs a parsed command.
pub fn execute(command: Command, progress: &dyn Progress) -> anyhow::Result<Vec<JobReport>> {
    match command {
        Command::Sequence(args) => {
            let resolved = args.resolve()?;
            let (request, spec) = (&resolved.request, &resolved.request.spec);
            tracing::info!(
                input = %request.input,
                output = %request.output,
                subsets = %request.subsets.join(","),
                entity = %spec.entity.join(","),
                order_by = %spec.order_by.join(","),
                features = %spec.features.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(","),
                n = spec.sequence_length,
                mode = %spec.mode,
                padding = %spec.padding,
                min_length = spec.min_length,
                "seqhouse {}",
                seqhouse_core::VERSION
            );
            tracing::debug!(request = ?resolved.request, engine = ?resolved.local, "full request");
            let warehouse = LocalWarehouse::new(resolved.local)?;
            Ok(seqhouse_core::run(&warehouse, &resolved.request, progress)?)
        }
    }
}

pub use progress::TerminalProgress;

/// Exit code for an error: 2 for usage errors (flags, config, option values), 1 for the rest.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        return 2;
    }
    match error.downcast_ref::<seqhouse_core::Error>() {
        Some(seqhouse_core::Error::InvalidRequest(_)) => 2,
        _ => 1,
    }
}
