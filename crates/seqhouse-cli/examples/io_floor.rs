//! The I/O floor of a local `seqhouse sequence` job, for `bench/run` (issue 20): the job run in
//! one piece, never split into entity ranges, so that its `read` phase is exactly decoding the
//! job's input columns and its `write` phase exactly encoding its output from memory and
//! writing it, each on its own, with the project's own reader and writer. Their sum is the least
//! any run of the job can take; `seqhouse / floor` is how close the real run comes to it.
//!
//! Takes the arguments of `seqhouse` itself (`io_floor sequence --input … --output …`) and
//! prints `-v`'s phase summary line on stderr:
//!
//! `cargo run --release -p seqhouse-cli --example io_floor -- sequence --input … --output …`

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail};
use seqhouse_cli::args::Command;
use seqhouse_core::{NoProgress, Warehouse};
use tracing_subscriber::filter::LevelFilter;

fn main() -> anyhow::Result<()> {
    // As the binary runs: the floor is measured with the same allocator settings.
    seqhouse_cli::tune_allocator();
    let log = tracing_subscriber::fmt().with_max_level(LevelFilter::DEBUG).with_writer(std::io::stderr);
    log.with_target(false).with_ansi(false).init();
    let cli = seqhouse_cli::parse(std::env::args_os()).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let Command::Sequence(args) = cli.command else { bail!("io_floor measures `sequence` jobs") };
    let mut resolved = args.resolve()?;
    if resolved.jobs.len() != 1 || resolved.request.spec.split.is_some() {
        bail!("io_floor measures one unsplit job");
    }
    // One piece: no entity ranges, so no phase overlaps another.
    resolved.local.range_rows = u64::MAX;
    let warehouse =
        seqhouse_local::LocalWarehouse::new(resolved.local.clone())?.with_cancel_flag(Arc::new(AtomicBool::new(false)));
    let plan = warehouse.plan(&resolved.jobs[0])?;
    if plan != seqhouse_local::Plan::Whole {
        bail!("the job does not fit in memory in one piece ({plan:?}); raise --memory-limit");
    }
    warehouse.sequence(&resolved.jobs[0], &NoProgress).context("the floor run")?;
    Ok(())
}
