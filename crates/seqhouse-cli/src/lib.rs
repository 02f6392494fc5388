//! The `seqhouse` command line: parses arguments into a request, picks the engine, runs the
//! orchestrator. All sequencing logic lives in `seqhouse-core` and the engine crates.

pub mod args;
pub mod config;
mod progress;

use std::ffi::OsString;

use seqhouse_core::{Explanation, JobReport, NoProgress, Progress, Setting, SettingNames, Step, Warehouse};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use seqhouse_athena::AthenaWarehouse;
use seqhouse_local::LocalWarehouse;

pub use args::{Cli, Command, SequenceArgs, UsageError};
pub use config::ParseError;

/// How the command line names settings in messages: by their flags.
struct CliNames;

impl SettingNames for CliNames {
    fn name(&self, setting: Setting) -> String {
        format!("--{}", setting.key().replace('_', "-"))
    }

    fn with_value(&self, setting: Setting, value: &str) -> String {
        format!("{} {value}", self.name(setting))
    }
}

/// Parses the command line (the first item is the program name) with `--config` merged in.
/// From here on, messages name settings by their flags.
pub fn parse<I, T>(args: I) -> Result<Cli, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    seqhouse_core::name_settings(&CliNames);
    config::parse(args.into_iter().map(Into::into).collect())
}

/// Runs `seqhouse` with `args` (the first item is the program name), without logging set-up or
/// a progress bar: the entry point for tests and embedding. Returns the reports of the jobs run.
pub fn run<I, T>(args: I) -> anyhow::Result<Vec<JobReport>>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match parse(args) {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) => return Err(UsageError(config::clap_message(&e)).into()),
        Err(ParseError::Usage(e)) => return Err(e.into()),
    };
    execute(cli.command, &NoProgress)
}

/// Runs a parsed command.
pub fn execute(command: Command, progress: &dyn Progress) -> anyhow::Result<Vec<JobReport>> {
    match command {
        Command::Sequence(args) => {
            let resolved = args.resolve()?;
            let origin = resolved.config_origin.clone();
            run_sequence(resolved, progress).map_err(|e| name_the_config_key(e, origin.as_ref()))
        }
        Command::Presets => {
            print!("{}", presets_text());
            Ok(Vec::new())
        }
    }
}

/// What `seqhouse presets` prints: each preset, whose convention it is, and the options it sets.
pub fn presets_text() -> String {
    let mut text = String::new();
    for preset in seqhouse_core::preset::PRESETS {
        text.push_str(&format!("{}\n  {}\n", preset.name, preset.about));
        for setting in preset.settings() {
            text.push_str(&format!("  {setting}\n"));
        }
    }
    text
}

/// Where a setting at fault came from a config file, says so: the message names the flag, the
/// user wrote a key.
fn name_the_config_key(error: anyhow::Error, origin: Option<&config::ConfigOrigin>) -> anyhow::Error {
    let setting = error.downcast_ref::<seqhouse_core::Error>().and_then(seqhouse_core::Error::setting_at_fault);
    match setting.and_then(|setting| origin?.describe(setting)) {
        Some(place) => error.context(format!("from {place}")),
        None => error,
    }
}

fn run_sequence(resolved: args::Resolved, progress: &dyn Progress) -> anyhow::Result<Vec<JobReport>> {
    let (request, spec) = (&resolved.request, &resolved.request.spec);
    tracing::info!(
        engine = ?resolved.engine,
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
    // Raised by the first SIGINT or SIGTERM; every engine stops at its next check.
    let cancel = Arc::new(AtomicBool::new(false));
    let warehouse = warehouse(&resolved, cancel.clone())?;
    if resolved.explain {
        print_explanations(&seqhouse_core::explain_jobs(warehouse.as_ref(), &resolved.jobs)?);
        return Ok(Vec::new());
    }
    cancel_on_signals(cancel);
    Ok(seqhouse_core::run_jobs(warehouse.as_ref(), &resolved.jobs, progress)?)
}

/// The engine `resolved` asks for, stopping its job when `cancel` is raised. The only place
/// that picks an adapter (the Python module calls it too).
pub fn warehouse(resolved: &args::Resolved, cancel: Arc<AtomicBool>) -> anyhow::Result<Box<dyn Warehouse>> {
    Ok(match resolved.engine {
        args::Engine::Local => Box::new(LocalWarehouse::new(resolved.local.clone())?.with_cancel_flag(cancel)),
        args::Engine::Athena => Box::new(
            AthenaWarehouse::connect(
                resolved.athena.clone(),
                resolved.athena_table.clone(),
                resolved.local.s3.clone(),
            )?
            .with_cancel_flag(cancel),
        ),
        args::Engine::Spark => spark_warehouse(resolved.spark_remote.clone(), cancel)?,
    })
}

/// Prints what `--explain` shows, one job after another: statements as SQL, each ending in `;`
/// and a blank line; notes as SQL comments.
fn print_explanations(explanations: &[Explanation]) {
    for explanation in explanations {
        for step in &explanation.steps {
            match step {
                Step::Statement(sql) => println!("{sql};\n"),
                Step::Note(note) => println!("-- {note}"),
            }
        }
    }
}

#[cfg(feature = "spark")]
fn spark_warehouse(remote: String, cancel: Arc<AtomicBool>) -> anyhow::Result<Box<dyn Warehouse>> {
    let options = seqhouse_spark::SparkOptions::new(remote);
    Ok(Box::new(seqhouse_spark::SparkWarehouse::new(options)?.with_cancel_flag(cancel)))
}

#[cfg(not(feature = "spark"))]
fn spark_warehouse(_: String, _: Arc<AtomicBool>) -> anyhow::Result<Box<dyn Warehouse>> {
    Err(UsageError(
        "this seqhouse was built without the spark engine; rebuild with `cargo build --features spark`".into(),
    )
    .into())
}

/// The signal that asked this process to stop: 0 for none, else its number (2 for SIGINT, that
/// is Ctrl-C, 15 for SIGTERM, which `timeout`, Docker, Kubernetes and systemd send).
static STOP_SIGNAL: AtomicI32 = AtomicI32::new(0);
const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

/// The name of the signal that asked this process to stop, if one did.
pub fn stop_signal() -> Option<&'static str> {
    match STOP_SIGNAL.load(Ordering::SeqCst) {
        SIGINT => Some("Ctrl-C"),
        SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// The number of the next SIGINT or SIGTERM to arrive.
#[cfg(unix)]
async fn next_signal(interrupt: &mut tokio::signal::unix::Signal, terminate: &mut tokio::signal::unix::Signal) -> i32 {
    std::future::poll_fn(|cx| {
        if interrupt.poll_recv(cx).is_ready() {
            return std::task::Poll::Ready(SIGINT);
        }
        if terminate.poll_recv(cx).is_ready() {
            return std::task::Poll::Ready(SIGTERM);
        }
        std::task::Poll::Pending
    })
    .await
}

/// On the first SIGINT (Ctrl-C) or SIGTERM, raises `flag`: the engine stops at its next check,
/// cancels a push-down query and removes what the job wrote (staged output, spill files,
/// uploaded parts). On a second one, exits at once.
fn cancel_on_signals(flag: Arc<AtomicBool>) {
    #[cfg(unix)]
    std::thread::spawn(move || {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            let (Ok(mut interrupt), Ok(mut terminate)) =
                (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
            else {
                return;
            };
            let first = next_signal(&mut interrupt, &mut terminate).await;
            STOP_SIGNAL.store(first, Ordering::SeqCst);
            // Raised before the message, so that whoever reads the message knows it is raised.
            flag.store(true, Ordering::SeqCst);
            let name = stop_signal().unwrap_or("a signal");
            eprintln!(
                "seqhouse: {name} received: stopping; a job not yet published is cancelled and what it wrote removed ({name} again to quit at once)"
            );
            let second = next_signal(&mut interrupt, &mut terminate).await;
            std::process::exit(128 + second);
        });
    });
    #[cfg(not(unix))]
    let _ = flag;
}

pub use progress::TerminalProgress;

/// An error and its causes on one line, each said once: the port's errors carry their cause's
/// text in their message and keep the cause itself as `source`, for callers that act on its kind.
pub fn render_error(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text.replace('\n', " ")
}

/// Exit code for an error: 2 for usage errors (flags, config, option values, an output folder
/// that is not seqhouse's), 130 for a job stopped by Ctrl-C and 143 by SIGTERM (128 + the
/// signal, as shells report), 1 for the rest.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some() {
        return 2;
    }
    match error.downcast_ref::<seqhouse_core::Error>() {
        Some(
            seqhouse_core::Error::InvalidRequest(_)
            | seqhouse_core::Error::InvalidSetting { .. }
            | seqhouse_core::Error::OutputNotOurs { .. },
        ) => 2,
        Some(seqhouse_core::Error::Interrupted(_)) if STOP_SIGNAL.load(Ordering::SeqCst) != 0 => {
            (128 + STOP_SIGNAL.load(Ordering::SeqCst)) as u8
        }
        _ => 1,
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
pub fn tune_allocator() {
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

/// Keeps freed buffers for reuse: only glibc needs telling.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}
