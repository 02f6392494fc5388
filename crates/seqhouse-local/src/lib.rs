//! The embedded seqhouse engine: `LocalWarehouse` reads Parquet/CSV from local folders or S3,
//! runs the core kernel on its own thread pool and publishes Parquet with `_manifest.json` last.
#![warn(missing_docs)]

mod list_chunk;
mod memory;
mod output;
mod parquet_internals;
mod ranges;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use seqhouse_core::manifest::OutputColumn;
use seqhouse_core::vocab::{ValueCounts, Vocabulary};
use seqhouse_core::{
    Capabilities, Error, Explanation, JobReport, Phase, PhaseTimes, Progress, ResolvedSpec, Result, SequenceJob,
    SequenceStats, Sequencer, Setting, Step, Warehouse,
};

pub use memory::{OutputBatches, Windows, read_published};
use output::PartSinks;
pub use output::{OutputCompression, PartLayout, PartSink};
pub use seqhouse_storage::S3Options;

use seqhouse_storage::failpoint;
use seqhouse_storage::lock::OutputLock;
use seqhouse_storage::publish::{self, Publication, WrittenOutput};
use seqhouse_storage::{Location, Storage, input};

/// Settings of the local engine that do not change what is computed, only how.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Worker threads; `None` uses every core. The output bytes do not depend on it.
    pub threads: Option<usize>,
    /// CSV field delimiter.
    pub csv_delimiter: u8,
    /// Part file compression.
    pub compression: OutputCompression,
    /// Windows per part file; `None` picks about eight million values per column.
    pub rows_per_part: Option<usize>,
    /// How to reach S3.
    pub s3: S3Options,
    /// Peak memory the job should stay under, in bytes; `None` derives it from the machine
    /// ([`default_memory_limit`]). A job whose input would exceed it in memory is split by
    /// entity range and spilled to `spill_dir`.
    pub memory_limit: Option<u64>,
    /// Where spill folders are made; `None` is the system's temporary folder.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Rows per entity range when a job that fits in memory is still sequenced range by range
    /// (see [`DEFAULT_RANGE_ROWS`]); a tuning knob, the output does not depend on it.
    pub range_rows: u64,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            threads: None,
            csv_delimiter: b',',
            compression: OutputCompression::default(),
            rows_per_part: None,
            s3: S3Options::default(),
            memory_limit: None,
            spill_dir: None,
            range_rows: DEFAULT_RANGE_ROWS,
        }
    }
}

/// The embedded engine (the default `--engine local`): computes on this machine, reads and
/// writes local folders or S3.
pub struct LocalWarehouse {
    config: LocalConfig,
    pool: rayon::ThreadPool,
    storage: Storage,
    /// Raised (by Ctrl-C) to stop the job at the next wave or range, cleaning up as it goes.
    cancel: Arc<AtomicBool>,
}

impl LocalWarehouse {
    /// Builds the engine, its thread pool and its I/O runtime.
    pub fn new(config: LocalConfig) -> Result<Self> {
        if config.threads == Some(0) {
            return Err(Error::setting(Setting::Threads, "must be at least 1"));
        }
        if config.rows_per_part == Some(0) {
            return Err(Error::setting(Setting::RowsPerPart, "must be at least 1"));
        }
        if config.memory_limit == Some(0) {
            return Err(Error::setting(Setting::MemoryLimit, "must be at least one byte"));
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        if let Some(threads) = config.threads
            && threads > cores * MAX_THREADS_PER_CORE
        {
            return Err(Error::setting(
                Setting::Threads,
                format!(
                    "{threads} is more than {MAX_THREADS_PER_CORE} per core of this machine's {cores}; seqhouse gains nothing past one thread per core. Pass at most {}",
                    cores * MAX_THREADS_PER_CORE
                ),
            ));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.unwrap_or(0))
            .thread_name(|i| format!("seqhouse-{i}"))
            .build()
            .map_err(|e| Error::internal(format!("cannot start the thread pool: {e}")))?;
        let storage = Storage::new(config.s3.clone())?;
        Ok(LocalWarehouse { config, pool, storage, cancel: Arc::new(AtomicBool::new(false)) })
    }

    /// Stops a running job when `flag` is raised: it fails with [`Error::Interrupted`] at the
    /// next batch of row groups or range, removing its spill files and staged output.
    pub fn with_cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = flag;
        self
    }

    /// How `job` would run: whole, or split by entity range in memory or on disk. Reads the
    /// input's listing and footers, not its data.
    pub fn plan(&self, job: &SequenceJob) -> Result<Plan> {
        Ok(self.bind(job)?.plan)
    }

    fn bind(&self, job: &SequenceJob) -> Result<Bound> {
        let storage = &self.storage;
        let input = storage.locate(&job.input)?;
        let listed = input::list_files(storage, &input)?;
        let files = input::describe(storage, &input, listed, self.config.csv_delimiter)?;
        let resolved = input::resolve(job, &files)?;
        let size = input::estimate_size(&files, &resolved.input_schema);
        let limit = self.memory_limit();
        let plan = Plan::for_job(&resolved, size, limit, self.config.range_rows);
        tracing::debug!(rows = size.rows, decoded_bytes = size.decoded_bytes, limit, ?plan, "memory plan");
        Ok(Bound { input, files, resolved, size, plan })
    }

    /// Refuses a job whose windows cannot fit the memory limit however it is split: every
    /// worker builds at least one window of N values per column and encodes it (about as many
    /// bytes again). Limits below [`BASE_MEMORY`] count as that much, as in [`Plan::for_job`]
    /// (they ask for spilling, and the writer's buffers need it anyway).
    fn check_window_memory(&self, resolved: &ResolvedSpec) -> Result<()> {
        let n = resolved.spec.sequence_length as u64;
        let per_window: u64 = resolved
            .output_schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                arrow::datatypes::DataType::FixedSizeList(item, _) => {
                    n * item.data_type().primitive_width().unwrap_or(16) as u64 + n.div_ceil(8)
                }
                _ => 16,
            })
            .sum();
        let threads = self.pool.current_num_threads() as u64;
        let needed = per_window.saturating_mul(2 * threads);
        let limit = self.memory_limit();
        if needed > limit.max(BASE_MEMORY) {
            return Err(Error::setting(
                Setting::SequenceLength,
                format!(
                    "{n}: one window of {n} values per column takes about {}, and {threads} worker thread(s) each build and encode one, about {} in all: more than the memory limit of {} ({}). Lower {} or {}, or raise {}",
                    human_bytes(per_window),
                    human_bytes(needed),
                    human_bytes(limit),
                    Setting::MemoryLimit,
                    Setting::SequenceLength,
                    Setting::Threads,
                    Setting::MemoryLimit
                ),
            ));
        }
        Ok(())
    }

    /// Splits `source` by entity range as `plan` (not [`Plan::Whole`]) says: held in memory, or
    /// spilled to the spill folder.
    fn split(
        &self,
        source: ranges::Source,
        resolved: &ResolvedSpec,
        estimated_rows: u64,
        plan: Plan,
        progress: &dyn Progress,
    ) -> Result<ranges::SplitInput> {
        let (ranges, spill) = match plan {
            Plan::Whole => return Err(Error::internal("a job planned whole is not split")),
            Plan::InMemory { ranges } => (ranges, false),
            Plan::Spilled { ranges } => (ranges, true),
        };
        let spill_dir = self.spill_dir(spill);
        let split_job = ranges::SplitJob {
            source,
            resolved,
            estimated_rows,
            ranges,
            spill_dir: spill.then_some(spill_dir.as_path()),
            cancelled: &|| self.check_cancelled(),
        };
        ranges::split(&split_job, progress)
    }

    /// The folder spill files go in (the configured one, or the system's temporary folder);
    /// when the job spills there (`spilling`) and it is held in memory, a warning says that it
    /// saves no memory.
    fn spill_dir(&self, spilling: bool) -> std::path::PathBuf {
        let spill_dir = self.config.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        if spilling && let Some(mount) = memory_backed_mount(&spill_dir) {
            tracing::warn!(
                "the spill folder {} is on {mount}, which is held in memory: spilling there does not save memory; pass {} on a disk",
                spill_dir.display(),
                Setting::SpillDir
            );
        }
        spill_dir
    }

    /// The memory limit jobs are planned for.
    fn memory_limit(&self) -> u64 {
        self.config.memory_limit.unwrap_or_else(default_memory_limit)
    }

    /// The vocabularies of `resolved`'s `--vocab` features (see
    /// [`seqhouse_storage::vocab::for_job`]), fitted on the values `count` counts.
    fn vocabularies(
        &self,
        resolved: &ResolvedSpec,
        subset: Option<&str>,
        count: &mut dyn FnMut(&mut [ValueCounts]) -> Result<()>,
    ) -> Result<Vec<Vocabulary>> {
        seqhouse_storage::vocab::for_job(&self.storage, resolved, subset, count)
    }

    fn check_cancelled(&self) -> Result<()> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Error::Interrupted("the job was cancelled; nothing was published".to_string()));
        }
        Ok(())
    }

    fn run_job(&self, job: &SequenceJob, locks: Vec<OutputLock>, progress: &dyn Progress) -> Result<JobReport> {
        let storage = &self.storage;
        let Bound { input, files, resolved, size, plan } = self.bind(job)?;
        let outputs =
            job.outputs().into_iter().map(|(_, output)| storage.locate(&output)).collect::<Result<Vec<_>>>()?;
        let delimiter = self.config.csv_delimiter;
        self.check_window_memory(&resolved)?;

        let started = std::time::Instant::now();
        let layout = PartLayout::for_length(job.spec.sequence_length, self.config.rows_per_part);
        let compression = self.config.compression;
        let on_rows = |rows| progress.advance(rows);
        // Begins a target per output (only once the input is known good) and writes into them,
        // or removes what was written when that fails.
        // `fill` times its own writes; finishing the parts and the vocabulary files count as
        // writing too.
        let write = |locks: Vec<OutputLock>,
                     vocabularies: &[Vocabulary],
                     phases: &PhaseTimes,
                     fill: &mut dyn FnMut(&mut PartSinks) -> Result<SequenceStats>| {
            let targets = publish::begin_outputs(storage, &input, &outputs, job.overwrite, locks)?;
            let written = (|| {
                failpoint::hit("local.writing")?;
                let cancelled = || self.check_cancelled();
                let sinks = (targets.iter().enumerate())
                    .map(|(i, target)| {
                        PartSink::new(storage, target, &resolved, i, layout, compression, &on_rows, &cancelled)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut sinks = PartSinks(sinks);
                let stats = fill(&mut sinks)?;
                phases.time(Phase::Write, || {
                    let parts = sinks.0.into_iter().map(PartSink::finish).collect::<Result<Vec<_>>>()?;
                    // Every output carries the vocabularies it was encoded with, so each can be
                    // read (or applied at inference) on its own.
                    let files = (targets.iter())
                        .map(|target| seqhouse_storage::vocab::write_into(storage, target, vocabularies))
                        .collect::<Result<Vec<_>>>()?;
                    Ok((parts.into_iter().zip(files).collect::<Vec<_>>(), stats))
                })
            })();
            match written {
                Ok((parts, stats)) => Ok((targets, parts, stats)),
                Err(e) => {
                    publish::abort_outputs(storage, targets);
                    Err(e)
                }
            }
        };

        let (targets, parts, stats, input_files, phases) = if plan == Plan::Whole {
            let phases = Arc::new(PhaseTimes::default());
            progress.stage("read", files.len() as u64);
            let decoded = phases.time(Phase::Read, || {
                input::read_all(storage, &input, &files, &resolved, delimiter, &|| progress.advance(1))
            })?;
            let batch_sources: Vec<&str> = decoded.batch_file.iter().map(|&i| files[i].shown.as_str()).collect();
            progress.stage("sequence", 0);
            self.check_cancelled()?;
            let mut sequencer =
                Sequencer::prepare(&resolved, decoded.batches, &batch_sources, seqhouse_core::Core::Whole)?;
            sequencer.add_times(&phases);
            let vocabularies = phases.time(Phase::Window, || -> Result<Vec<Vocabulary>> {
                let vocabularies =
                    self.vocabularies(&resolved, job.subset.as_deref(), &mut |counts| sequencer.count_values(counts))?;
                sequencer.encode(&vocabularies)?;
                Ok(vocabularies)
            })?;
            self.check_cancelled()?;
            progress.stage("write", sequencer.num_windows() as u64);
            let (targets, parts, stats) = write(locks, &vocabularies, &phases, &mut |sinks| {
                phases.time(Phase::Write, || ranges::WindowSink::push(sinks, &sequencer))?;
                Ok(sequencer.stats().clone())
            })?;
            (targets, parts, stats, decoded.files, phases)
        } else {
            let source = ranges::Source::Files { storage, location: &input, files: &files, delimiter };
            let split = self.split(source, &resolved, size.rows, plan, progress)?;
            let phases = split.phases();
            self.check_cancelled()?;
            let input_files = split.files.clone();
            let cancelled = || self.check_cancelled();
            let core = split.core_values(&resolved, &cancelled)?;
            let vocabularies = self.vocabularies(&resolved, job.subset.as_deref(), &mut |counts| {
                split.count_values(&resolved, core.as_ref(), counts, &cancelled)
            })?;
            progress.stage("sequence and write", 0);
            let mut split = Some(split);
            let (targets, parts, stats) = write(locks, &vocabularies, &phases, &mut |sinks| {
                split.take().expect("sequenced once").sequence(
                    &resolved,
                    core.as_ref(),
                    &vocabularies,
                    sinks,
                    &cancelled,
                )
            })?;
            (targets, parts, stats, input_files, phases)
        };

        let written = (targets.into_iter().zip(parts).enumerate())
            .map(|(i, (target, (parts, vocabularies)))| WrittenOutput {
                target,
                parts,
                columns: OutputColumn::of_schema(&resolved.output_schemas[i]),
                vocabularies,
            })
            .collect();
        let publication = Publication { engine: self.name(), job, input: &input, input_files, stats };
        let report = phases.time(Phase::Write, || {
            publish::commit_outputs(storage, publication, written, &|| self.check_cancelled())
        })?;
        // `-v`'s one-line summary (bench/run reads it).
        tracing::debug!("{}; wall {:.3} s", phases.summary(), started.elapsed().as_secs_f64());
        Ok(report)
    }
}

/// A split's options as the user wrote them (`train=0.8,test=0.2`, seed and folds apart).
fn split_text(split: &seqhouse_core::split::Split) -> String {
    use seqhouse_core::split::Split;
    match split {
        Split::Entity { fractions, seed, folds } => {
            let folds = folds.map(|k| format!(", {}", Setting::Folds.with(k))).unwrap_or_default();
            format!("{fractions} ({}{folds})", Setting::SplitSeed.with(seed))
        }
        Split::Temporal { cutoffs } => cutoffs.to_string(),
        Split::LeaveLast { counts } => counts.to_string(),
    }
}

/// A job bound to its input.
struct Bound {
    input: Location,
    files: Vec<input::SourceFile>,
    resolved: ResolvedSpec,
    size: input::InputSize,
    plan: Plan,
}

/// `bytes` for a person: `512 B`, `12.3 KiB`, `1.5 GiB`.
fn human_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", units[unit]) }
}

/// `--threads` beyond this many per core is refused: it only costs memory and stacks (100,000
/// threads once exhausted the address space for stack guard pages and hung).
const MAX_THREADS_PER_CORE: usize = 8;

/// Fixed memory of any job: the program, thread stacks, buffers of the writer.
const BASE_MEMORY: u64 = 64 << 20;

/// Rows per range when a job is sequenced range by range although it fits in memory: small
/// enough that a range's sort keys stay near the cache and its buffers are reused, large
/// enough that the per-range overhead does not show.
pub const DEFAULT_RANGE_ROWS: u64 = 1 << 20;

/// How a job is run, given its estimated size and the memory limit. The output is the same
/// whichever way it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Read, sorted and windowed in one piece (small jobs).
    Whole,
    /// Split by entity range in memory, sequenced a range at a time.
    InMemory {
        /// Ranges planned (fewer when the input has fewer entities).
        ranges: usize,
    },
    /// Split by entity range into spill files, sequenced a range at a time.
    Spilled {
        /// Ranges planned (fewer when the input has fewer entities).
        ranges: usize,
    },
}

impl Plan {
    /// Sequencing holds, besides the decoded input columns, about as much again (the columns
    /// concatenated or permuted) plus 8 bytes per row and key column for the sort and 8 for the
    /// order and windows: its working set. Split by entity range, only one range's working set
    /// exists at a time, and when even the decoded input does not fit, the ranges wait on disk.
    fn for_job(resolved: &ResolvedSpec, size: input::InputSize, limit: u64, range_rows: u64) -> Plan {
        let key_columns = 1 + resolved.order_idx.len() as u64;
        let working_set = size.decoded_bytes + size.rows * (8 * key_columns + 8);
        let usable = limit / 10 * 8;
        // One sort handles at most u32::MAX rows; ranges of `range_rows` are the fast path anyway.
        let by_rows = size.rows.div_ceil(range_rows.clamp(1, u32::MAX as u64 / 2)).max(1);
        if by_rows == 1 && size.decoded_bytes + working_set + BASE_MEMORY <= usable {
            return Plan::Whole;
        }
        let room = usable.saturating_sub(size.decoded_bytes + BASE_MEMORY);
        // Ranges held in memory need the working sets of two ranges (one being written while
        // the next is prepared) to fit beside the input, with ranges no smaller than a tenth of
        // what is left.
        if room > usable / 10 {
            let ranges = by_rows.max((2 * working_set).div_ceil(room));
            if ranges <= ranges::MAX_RANGES as u64 {
                return Plan::InMemory { ranges: ranges as usize };
            }
        }
        // On disk, two ranges' rows and working sets share the memory (one being written while
        // the next is prepared), with room to spare for ranges larger than planned.
        let per_range = (limit / 10 * 3).saturating_sub(BASE_MEMORY / 2).max(16 << 20);
        let by_memory = (size.decoded_bytes + working_set).div_ceil(per_range);
        Plan::Spilled { ranges: by_rows.max(by_memory).clamp(2, ranges::MAX_RANGES as u64) as usize }
    }
}

/// The mount point and type of the file system holding `path` when it lives in memory (tmpfs,
/// ramfs), as `/tmp` does on many Linux systems; `None` elsewhere or where it cannot be told.
fn memory_backed_mount(path: &std::path::Path) -> Option<String> {
    let path = std::fs::canonicalize(path).ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    // The mount whose point is the longest prefix of the path is the one holding it.
    let (point, kind) = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            // Spaces in mount points are escaped as \040 in this file.
            let point = point.replace("\\040", " ");
            path.starts_with(&point).then(|| (point, kind.to_string()))
        })
        .max_by_key(|(point, _)| point.len())?;
    matches!(kind.as_str(), "tmpfs" | "ramfs").then(|| format!("{point} ({kind})"))
}

/// The memory limit when none is given: 75% of the machine's memory, or of the control group's
/// limit when that is lower (a container); no limit where neither can be read.
pub fn default_memory_limit() -> u64 {
    let machine = std::fs::read_to_string("/proc/meminfo").ok().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    });
    let cgroup = ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok()?.trim().parse::<u64>().ok());
    match (machine, cgroup) {
        (Some(m), Some(c)) => m.min(c) / 4 * 3,
        (Some(m), None) => m / 4 * 3,
        (None, Some(c)) => c / 4 * 3,
        (None, None) => u64::MAX,
    }
}

impl Warehouse for LocalWarehouse {
    fn explain(&self, job: &SequenceJob) -> Result<Explanation> {
        let Bound { input, files, size, plan, .. } = self.bind(job)?;
        let limit = self.memory_limit();
        let spill_dir = self.spill_dir(false);
        let how = match plan {
            Plan::Whole => "read, sorted and windowed in one piece".to_string(),
            Plan::InMemory { ranges } => format!("split into {ranges} entity ranges held in memory"),
            Plan::Spilled { ranges } => format!("split into {ranges} entity ranges spilled to {}", spill_dir.display()),
        };
        let layout = PartLayout::for_length(job.spec.sequence_length, self.config.rows_per_part);
        let mut notes = vec![
            format!(
                "input: {} ({} file(s), {} rows, about {} of the needed columns decoded)",
                input.shown,
                files.len(),
                size.rows,
                human_bytes(size.decoded_bytes)
            ),
            format!(
                "plan: {how}, on {} thread(s), under a memory limit of {}",
                self.pool.current_num_threads(),
                human_bytes(limit)
            ),
        ];
        if let Some(split) = &job.spec.split {
            notes.push(format!(
                "split: {} into {}, in the same pass",
                split.setting().with(split_text(split)),
                split.names().join(", ")
            ));
        }
        let preparation = job.spec.preparation();
        if !preparation.is_empty() {
            notes.push(format!("before windowing, per entity: {}", preparation.join("; then ")));
        }
        for (split, output) in job.outputs() {
            let output = self.storage.locate(&output)?;
            let state = match publish::check_job(&self.storage, &input, &output, job.overwrite) {
                Ok(publish::OutputState::Absent) => "written new".to_string(),
                Ok(publish::OutputState::Replaceable) => "replaces the seqhouse output there".to_string(),
                Err(e) => format!("refused: {e}"),
            };
            let what = split.map(|name| format!(" split {name}:")).unwrap_or_default();
            notes.push(format!(
                "output:{what} {} ({state}), parts of up to {} windows in row groups of {}, {} compression",
                output.shown, layout.rows_per_part, layout.rows_per_row_group, self.config.compression
            ));
        }
        Ok(Explanation { steps: notes.into_iter().map(Step::Note).collect() })
    }

    fn name(&self) -> &str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ties_keep_input_order: true,
            fixed_size_lists: true,
            ordered_output: true,
            widens_integers_to_floats: true,
            timestamp_unit: arrow::datatypes::TimeUnit::Nanosecond,
        }
    }

    fn preflight(&self, job: &SequenceJob) -> Result<()> {
        let input = self.storage.locate(&job.input)?;
        if let Some(path) = &input.local
            && !path.exists()
        {
            return Err(Error::InputNotFound {
                location: job.input.clone(),
                hint: format!("no such file or folder; check {}", Setting::Input),
            });
        }
        for (_, output) in job.outputs() {
            publish::check_job(&self.storage, &input, &self.storage.locate(&output)?, job.overwrite)?;
        }
        Ok(())
    }

    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        // Held from the start, so a second run on these outputs fails at once, not after its work.
        let locks = job
            .outputs()
            .iter()
            .map(|(_, output)| OutputLock::acquire(&self.storage, &self.storage.locate(output)?))
            .collect::<Result<Vec<_>>>()?;
        self.pool.install(|| self.run_job(job, locks, progress))
    }
}

#[cfg(test)]
mod tests {
    use super::memory_backed_mount;

    #[test]
    fn memory_backed_folders_are_recognised() {
        let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else { return };
        let mut checked = 0;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (point, kind) = (fields[1], fields[2]);
            if !std::path::Path::new(point).is_dir() || point.contains('\\') {
                continue;
            }
            // Skip points mounted more than once (the last mount shadows the others) and
            // points reached through a link.
            let mounted_again = mounts.lines().filter(|l| l.split_whitespace().nth(1) == Some(point)).count() > 1;
            if mounted_again || std::fs::canonicalize(point).ok().as_deref() != Some(std::path::Path::new(point)) {
                continue;
            }
            let expected = matches!(kind, "tmpfs" | "ramfs");
            assert_eq!(memory_backed_mount(std::path::Path::new(point)).is_some(), expected, "{line}");
            checked += 1;
        }
        assert!(checked > 0, "no mount could be checked");
    }
}
