//! The `seqhouse` binary: logging, the allocator, exit codes; everything else is `seqhouse_cli`.

use std::process::ExitCode;

use tracing_subscriber::filter::LevelFilter;

use seqhouse_cli::{ParseError, TerminalProgress, execute, exit_code};

fn main() -> ExitCode {
    tune_allocator();
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

/// Keeps freed buffers in the process for reuse instead of handing them back to the kernel.
///
/// A job allocates and frees buffers of a few MiB in waves (decoded row groups, sort keys, row
/// groups being encoded). By default glibc serves such buffers with fresh `mmap`s once they pass
/// a moving threshold, and returns free memory at the top of its heaps at once; every wave then
/// pays page faults and the kernel's zeroing of the pages again (about a sixth of a job's CPU
/// time, measured with perf). Memory freed by one thread is reused by the others only within
/// the same arena, so arenas are limited to one per core. Measured on the 10M-row benchmark:
/// minor page faults 350k -> 170k, system time 0.8 -> 0.55 s, peak RSS about unchanged
/// (637 -> 625 MiB; without the arena limit it rose to 649 MiB).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)] // mallopt(3)
fn tune_allocator() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        // glibc's largest allowed value on 64-bit: buffers up to 32 MiB come from the heaps.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        // Free memory at the top of a heap is returned only beyond 1 GiB.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        // Fewer arenas than threads would make threads wait on each other's allocations; more
        // leave freed memory where the other threads do not reuse it.
        libc::mallopt(libc::M_ARENA_MAX, cores.min(i32::MAX as usize) as i32);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_allocator() {}
