//! The `Warehouse` port: the one interface every engine (local, Athena, Spark) implements.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::kernel::SequenceStats;
use crate::manifest::OutputPart;
use crate::spec::SequenceSpec;

/// One dataset to sequence: read `input`, write the padded windows to `output`.
///
/// Made only by [`crate::SequenceRequest::jobs`], which validated the spec: an engine never
/// checks it again (`non_exhaustive` keeps other crates from building one field by field).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SequenceJob {
    /// Where the events are: a file or folder path, or an engine-specific URL.
    pub input: String,
    /// The folder to publish to.
    pub output: String,
    /// The subset this job is, when the request named subsets.
    pub subset: Option<String>,
    /// What to compute.
    pub spec: SequenceSpec,
    /// Replace an existing output instead of failing.
    pub overwrite: bool,
}

impl SequenceJob {
    /// Where the job publishes, with the split each output holds: `OUTPUT/NAME_sequenced_N` for
    /// each split of a split job, in order, else the job's output alone.
    pub fn outputs(&self) -> Vec<(Option<&str>, String)> {
        self.spec
            .output_names()
            .into_iter()
            .map(|name| match name {
                Some(name) => (
                    Some(name),
                    crate::join_location(&self.output, &crate::sequenced_folder(name, self.spec.sequence_length)),
                ),
                None => (None, self.output.clone()),
            })
            .collect()
    }
}

/// What an engine can and cannot promise, so the contract suite checks each engine fairly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Ties on the order-by columns keep input order (file order, then row order). Engines that
    /// see no input order (SQL engines) break ties only by the order-by columns.
    pub ties_keep_input_order: bool,
    /// Feature and mask columns are Arrow fixed-size lists of N. Engines that write through SQL
    /// (Athena's UNLOAD, Spark) write Parquet LISTs instead, each holding exactly N values.
    pub fixed_size_lists: bool,
    /// Rows are written ordered by entity, then `sequence_index`, so the same input and spec give
    /// the same bytes. SQL engines give the same rows in no fixed order.
    pub ordered_output: bool,
    /// A column that is integer in some files and floating-point in others is widened to
    /// floats, value by value, where every value converts exactly (else refused). SQL engines,
    /// which cannot check values, refuse every such mix before running anything.
    pub widens_integers_to_floats: bool,
    /// The finest timestamp unit read exactly. A job whose result would depend on finer
    /// values (sessions, gaps, vocabularies of a finer timestamp) is refused by name there.
    pub timestamp_unit: arrow::datatypes::TimeUnit,
}

/// What a finished job reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReport {
    /// The published output folder.
    pub output: String,
    /// The subset, if any.
    pub subset: Option<String>,
    /// Input files read.
    pub input_files: usize,
    /// Output part files written.
    pub parts: usize,
    /// Bytes of output parts.
    pub output_bytes: u64,
    /// The job's counts (as in the manifest; per split in `stats.splits` for a split job).
    pub stats: SequenceStats,
    /// For a split job, each split's published output, in order (their counts are in
    /// `stats.splits`).
    pub splits: Vec<SplitReport>,
}

/// One published split of a split job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitReport {
    /// The split's name.
    pub name: String,
    /// Its output folder.
    pub output: String,
    /// Its part files.
    pub parts: usize,
    /// Bytes of its parts.
    pub output_bytes: u64,
}

/// What an engine would do for one job, without doing it (what `--explain` prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// The steps, in the order they would run.
    pub steps: Vec<Step>,
}

/// One step of an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A statement a push-down engine would send, verbatim (without a trailing `;`).
    Statement(String),
    /// A decision of the engine, as one line (`input: 3 files, 1.2M rows`).
    Note(String),
}

impl JobReport {
    /// The report of `job`, read from `input_files` files and published as `parts`.
    pub fn new(job: &SequenceJob, input_files: usize, parts: &[OutputPart], stats: SequenceStats) -> Self {
        JobReport {
            output: job.output.clone(),
            subset: job.subset.clone(),
            input_files,
            parts: parts.len(),
            output_bytes: parts.iter().map(|p| p.bytes).sum(),
            stats,
            splits: Vec::new(),
        }
    }
}

/// The rule for engines that count windows apart from writing them (the SQL engines' counts
/// query): the written windows must be the counted ones, or the manifest would describe an
/// output it does not hold, so nothing is published.
pub fn check_window_count(engine: &str, written: u64, counted: u64) -> Result<()> {
    if written != counted {
        return Err(crate::Error::internal(format!(
            "{engine} wrote {written} windows but counted {counted}; nothing was published"
        )));
    }
    Ok(())
}

/// Observes a job's progress (for a progress bar). Every method has a no-op default.
pub trait Progress: Send + Sync {
    /// A stage starts with `total` units of work (files, windows, ...).
    fn stage(&self, _name: &str, _total: u64) {}
    /// `done` more units of the current stage are finished.
    fn advance(&self, _done: u64) {}
    /// The job is over.
    fn finish(&self) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// An engine that runs sequencing jobs where the data lives.
///
/// # Contract
/// Every implementation must guarantee, and the suite in `seqhouse-contract` checks:
/// - **Output**: one Parquet row per kept window with the columns of
///   [`crate::ResolvedSpec::output_schema`]: entity scalars, `sequence_index`, `sequence_length`,
///   each `NAME_sequence` as N values padded on the requested side, `is_pad_sequence`.
/// - **Windows**: exactly the cuts of [`crate::kernel::window_bounds`], per entity, in order.
/// - **Ties**: rows with equal entity and order-by values keep input order when
///   [`Capabilities::ties_keep_input_order`] holds; otherwise their relative order is unspecified.
/// - **No leakage**: a window holds events of one entity only.
/// - **Atomic publish**: `_manifest.json` is written last, only after every part; a failed run
///   leaves no manifest and no new parts at `output`, and an existing output is replaced only with
///   `overwrite`.
/// - **Errors**: user errors are reported with the variant that names the problem
///   (missing column, bad pad value, null key, ...), never as [`crate::Error::Internal`].
/// - **Determinism**: the same input and spec give the same output rows (in the same order and
///   bytes when [`Capabilities::ordered_output`] holds).
pub trait Warehouse: Send + Sync {
    /// Short engine name, as in `--engine`.
    fn name(&self) -> &str;

    /// What this engine promises beyond the common contract.
    fn capabilities(&self) -> Capabilities;

    /// Cheap checks before any job runs: the input exists and the output may be written.
    /// Errors with [`crate::Error::OutputExists`] when the output holds data and `overwrite` is off.
    ///
    /// The orchestrator preflights every job once, before the first runs, so that a clash on the
    /// last subset fails before any work. [`Warehouse::sequence`] does not repeat it: it makes
    /// the same checks where they decide, under the output's lock, before publishing.
    fn preflight(&self, job: &SequenceJob) -> Result<()>;

    /// What `job` would do, reading at most the input's listing and footers: nothing is run,
    /// written or locked, and the output need not be writable.
    fn explain(&self, job: &SequenceJob) -> Result<Explanation>;

    /// Runs one job to completion and publishes its output.
    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport>;
}
