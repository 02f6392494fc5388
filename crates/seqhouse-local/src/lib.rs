//! The embedded seqhouse engine: `LocalWarehouse` reads Parquet/CSV from local folders or S3,
//! runs the core kernel on its own thread pool and publishes Parquet with `_manifest.json` last.
#![warn(missing_docs)]

mod output;

use seqhouse_core::manifest::OutputColumn;
use seqhouse_core::{Capabilities, Error, JobReport, Manifest, Progress, Result, SequenceJob, Sequencer, Warehouse};

pub use output::{OutputCompression, PartLayout};
pub use seqhouse_storage::S3Options;

use seqhouse_storage::publish::{self, Target};
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
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            threads: None,
            csv_delimiter: b',',
            compression: OutputCompression::default(),
            rows_per_part: None,
            s3: S3Options::default(),
        }
    }
}

/// The embedded engine (the default `--engine local`): computes on this machine, reads and
/// writes local folders or S3.
pub struct LocalWarehouse {
    config: LocalConfig,
    pool: rayon::ThreadPool,
    storage: Storage,
}

impl LocalWarehouse {
    /// Builds the engine, its thread pool and its I/O runtime.
    pub fn new(config: LocalConfig) -> Result<Self> {
        if config.threads == Some(0) {
            return Err(Error::invalid("--threads must be at least 1"));
        }
        if config.rows_per_part == Some(0) {
            return Err(Error::invalid("--rows-per-part must be at least 1"));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(config.threads.unwrap_or(0))
            .thread_name(|i| format!("seqhouse-{i}"))
            .build()
            .map_err(|e| Error::internal(format!("cannot start the thread pool: {e}")))?;
        let storage = Storage::new(config.s3.clone())?;
        Ok(LocalWarehouse { config, pool, storage })
    }

    fn run_job(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        let storage = &self.storage;
        let input = storage.locate(&job.input)?;
        let output = storage.locate(&job.output)?;
        let delimiter = self.config.csv_delimiter;
        let listed = input::list_files(storage, &input)?;
        let files = input::describe(storage, &input, listed, delimiter)?;
        let resolved = input::resolve(&job.spec, &files)?;

        let started = std::time::Instant::now();
        progress.stage("read", files.len() as u64);
        let decoded = input::read_all(storage, &input, &files, &resolved, delimiter, &|| progress.advance(1))?;
        let batch_sources: Vec<&str> = decoded.batch_file.iter().map(|&i| files[i].shown.as_str()).collect();

        let read_done = started.elapsed();
        progress.stage("sequence", 0);
        let sequencer = Sequencer::prepare(&resolved, decoded.batches, &batch_sources)?;
        let input_files = decoded.files;
        let sequence_done = started.elapsed();

        // Only now, with the input known good, is the output touched.
        let target = Target::begin(storage, &output, job.overwrite)?;
        progress.stage("write", sequencer.num_windows() as u64);
        let layout = PartLayout::for_length(job.spec.sequence_length, self.config.rows_per_part);
        let written = output::write_parts(&sequencer, storage, &target, layout, self.config.compression, &|rows| {
            progress.advance(rows)
        });
        let parts = match written {
            Ok(parts) => parts,
            Err(e) => {
                target.abort(storage);
                return Err(e);
            }
        };

        tracing::debug!(
            read = ?read_done,
            sequence = ?(sequence_done - read_done),
            write = ?(started.elapsed() - sequence_done),
            "phases"
        );
        let columns = OutputColumn::of_schema(&resolved.output_schema);
        let manifest = Manifest::new(self.name(), job, input_files, parts.clone(), columns, sequencer.stats().clone());
        let json = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
        target.commit(storage, json)?;
        Ok(JobReport {
            output: job.output.clone(),
            subset: job.subset.clone(),
            input_files: files.len(),
            parts: parts.len(),
            output_bytes: parts.iter().map(|p| p.bytes).sum(),
            stats: sequencer.stats().clone(),
        })
    }
}

impl Warehouse for LocalWarehouse {
    fn name(&self) -> &str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities { ties_keep_input_order: true, fixed_size_lists: true, ordered_output: true }
    }

    fn preflight(&self, job: &SequenceJob) -> Result<()> {
        let input = self.storage.locate(&job.input)?;
        let output = self.storage.locate(&job.output)?;
        if let Some(path) = &input.local
            && !path.exists()
        {
            return Err(Error::InputNotFound {
                location: job.input.clone(),
                hint: "no such file or folder; check --input".to_string(),
            });
        }
        ensure_not_nested(&input, &output)?;
        let names = match &output.local {
            Some(path) => publish::local_children(path)?,
            None => self.storage.children(&output)?,
        };
        seqhouse_storage::publish::check_output(&output.shown, &names, job.overwrite)?;
        Ok(())
    }

    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        self.preflight(job)?;
        self.pool.install(|| self.run_job(job, progress))
    }
}

/// Refuses an output inside the input folder: its parts would be read back as input next time.
fn ensure_not_nested(input: &Location, output: &Location) -> Result<()> {
    // Local locations are normalized (symlinks resolved), so a prefix test on paths suffices.
    let nested = match &input.local {
        Some(path) => path.is_dir() && input.contains(output),
        None => input.contains(output),
    };
    if nested {
        return Err(Error::invalid(format!(
            "--output {} is inside the input folder {}; its parts would be read as input by the next run. Write it elsewhere",
            output.shown, input.shown
        )));
    }
    Ok(())
}
