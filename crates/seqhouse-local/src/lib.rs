//! The embedded seqhouse engine: `LocalWarehouse` reads Parquet/CSV files, runs the core kernel
//! on a dedicated thread pool and publishes Parquet parts atomically with `_manifest.json` last.
#![warn(missing_docs)]

mod input;
mod output;

use std::path::Path;

use seqhouse_core::manifest::{MANIFEST_FORMAT, MANIFEST_FORMAT_VERSION, OutputColumn};
use seqhouse_core::{
    Capabilities, Error, JobReport, Manifest, Progress, Result, SequenceJob, Sequencer, VERSION, Warehouse,
};

pub use output::{OutputCompression, PartLayout};

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
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            threads: None,
            csv_delimiter: b',',
            compression: OutputCompression::default(),
            rows_per_part: None,
        }
    }
}

/// The embedded engine (the default `--engine local`).
pub struct LocalWarehouse {
    config: LocalConfig,
    pool: rayon::ThreadPool,
}

impl LocalWarehouse {
    /// Builds the engine and its thread pool.
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
        Ok(LocalWarehouse { config, pool })
    }

    fn run_job(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        let output = input::local_path(&job.output);
        let listed = input::list_files(&job.input)?;
        let files = input::describe(listed, self.config.csv_delimiter)?;
        let resolved = input::resolve(&job.spec, &files)?;

        progress.stage("read", files.len() as u64);
        let (batches, batch_file, input_files) =
            input::read_all(&files, &resolved, self.config.csv_delimiter, &|| progress.advance(1))?;
        let sources: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
        let batch_sources: Vec<&str> = batch_file.iter().map(|&i| sources[i].as_str()).collect();

        progress.stage("sequence", 0);
        let sequencer = Sequencer::prepare(&resolved, &batches, &batch_sources)?;
        drop(batches);

        let staging = output::Staging::create(&output)?;
        progress.stage("write", sequencer.num_windows() as u64);
        let layout = PartLayout::for_length(job.spec.sequence_length, self.config.rows_per_part);
        let parts = output::write_parts(&sequencer, staging.dir(), layout, self.config.compression, &|rows| {
            progress.advance(rows)
        })?;

        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            format_version: MANIFEST_FORMAT_VERSION,
            seqhouse_version: VERSION.to_string(),
            engine: self.name().to_string(),
            subset: job.subset.clone(),
            spec: job.spec.clone(),
            input_location: job.input.clone(),
            input_files,
            parts: parts.clone(),
            columns: resolved
                .output_schema
                .fields()
                .iter()
                .map(|f| OutputColumn { name: f.name().clone(), data_type: f.data_type().to_string() })
                .collect(),
            counts: sequencer.stats().clone(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?;
        staging.publish(&output, &json, job.overwrite)?;
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
        Capabilities { ties_keep_input_order: true }
    }

    fn preflight(&self, job: &SequenceJob) -> Result<()> {
        let input = input::local_path(&job.input);
        if !input.exists() {
            return Err(Error::InputNotFound {
                location: job.input.clone(),
                hint: "no such file or folder; check --input".to_string(),
            });
        }
        let output = input::local_path(&job.output);
        ensure_not_nested(&input, &output, &job.output)?;
        output::check_output(&output, job.overwrite)?;
        Ok(())
    }

    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        self.preflight(job)?;
        self.pool.install(|| self.run_job(job, progress))
    }
}

/// Refuses an output inside the input folder: its parts would be read back as input next time.
fn ensure_not_nested(input: &Path, output: &Path, shown: &str) -> Result<()> {
    let Ok(input) = input.canonicalize() else {
        return Ok(());
    };
    if !input.is_dir() {
        return Ok(());
    }
    // The output may not exist yet: canonicalize its nearest existing ancestor.
    let mut existing = output.to_path_buf();
    let mut rest = Vec::new();
    while !existing.exists() {
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = if parent.as_os_str().is_empty() { ".".into() } else { parent.to_path_buf() };
            }
            _ => return Ok(()),
        }
    }
    let Ok(mut resolved) = existing.canonicalize() else {
        return Ok(());
    };
    resolved.extend(rest.iter().rev());
    if resolved.starts_with(&input) {
        return Err(Error::invalid(format!(
            "--output {shown} is inside the input folder {}; its parts would be read as input by the next run. Write it elsewhere",
            input.display()
        )));
    }
    Ok(())
}
