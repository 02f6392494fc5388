//! Sequencing into memory: the windows handed back as record batches instead of published, for
//! a front end that returns them (the Python module's `sequence`).
//!
//! It is the same kernel the published path runs on a job that fits in memory, with the same
//! output schema, window order and values (the tests compare it with a published output).

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use rayon::prelude::*;

use seqhouse_core::{Error, ResolvedSpec, Result, SequenceJob, SequenceSpec, SequenceStats, Sequencer, Setting};
use seqhouse_storage::input;

use crate::{LocalWarehouse, PartLayout, Plan, default_memory_limit, human_bytes};

/// Windows in memory: batches of [`PartLayout`]'s row-group size, in output order.
#[derive(Debug)]
pub struct Windows {
    /// The output contract's schema.
    pub schema: SchemaRef,
    /// The windows, ordered by entity, then window.
    pub batches: Vec<RecordBatch>,
    /// What the job counted, as a manifest would record it.
    pub stats: SequenceStats,
}

impl LocalWarehouse {
    /// Sequences in-memory `batches` of `schema` (any Arrow source; `source` names it in
    /// errors) into memory. The spec is validated here.
    pub fn sequence_batches(
        &self,
        spec: &SequenceSpec,
        schema: &Schema,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        source: &str,
    ) -> Result<Windows> {
        let resolved = ResolvedSpec::new(spec, schema, source)?;
        self.check_window_memory(&resolved)?;
        let mut conformed = Vec::new();
        for batch in batches {
            self.check_cancelled()?;
            conformed.push(resolved.conform(&batch?, source)?);
        }
        let sources = vec![source; conformed.len()];
        self.pool.install(|| self.windows(&resolved, conformed, &sources))
    }

    /// Sequences `job`'s input (read as [`seqhouse_core::Warehouse::sequence`] reads it) into
    /// memory instead of publishing it; `job.output` is not used. An input whose decoded
    /// columns do not fit the memory limit (one the published path would spill) cannot be
    /// returned whole: that is an error saying so.
    pub fn sequence_input(&self, job: &SequenceJob) -> Result<Windows> {
        let bound = self.bind(job)?;
        if let Plan::Spilled { .. } = bound.plan {
            let limit = self.config.memory_limit.unwrap_or_else(default_memory_limit);
            return Err(Error::setting_message(
                Setting::MemoryLimit,
                format!(
                    "{} decodes to about {}, more than fits the memory limit of {} ({}); its windows cannot be returned in memory. Publish it to a folder instead, or raise {}",
                    job.input,
                    human_bytes(bound.size.decoded_bytes),
                    human_bytes(limit),
                    Setting::MemoryLimit,
                    Setting::MemoryLimit
                ),
            ));
        }
        self.check_window_memory(&bound.resolved)?;
        self.pool.install(|| {
            let delimiter = self.config.csv_delimiter;
            let decoded =
                input::read_all(&self.storage, &bound.input, &bound.files, &bound.resolved, delimiter, &|| ())?;
            let sources: Vec<&str> = decoded.batch_file.iter().map(|&i| bound.files[i].shown.as_str()).collect();
            self.check_cancelled()?;
            self.windows(&bound.resolved, decoded.batches, &sources)
        })
    }

    fn windows(&self, resolved: &ResolvedSpec, batches: Vec<RecordBatch>, sources: &[&str]) -> Result<Windows> {
        let sequencer = Sequencer::prepare(resolved, batches, sources)?;
        self.check_cancelled()?;
        let layout = PartLayout::for_length(resolved.spec.sequence_length, self.config.rows_per_part);
        let step = layout.rows_per_row_group.max(1);
        let starts: Vec<usize> = (0..sequencer.num_windows()).step_by(step).collect();
        let batches = starts
            .into_par_iter()
            .map(|start| {
                self.check_cancelled()?;
                sequencer.build(start..(start + step).min(sequencer.num_windows()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Windows { schema: sequencer.output_schema(), batches, stats: sequencer.stats().clone() })
    }
}

/// The windows of a published output, read through its manifest: exactly the parts it lists,
/// in its order (parts a run left unlisted are not read). An output without a manifest is an
/// error: it is not one seqhouse published, or not yet.
pub fn read_published(s3: seqhouse_storage::S3Options, output: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use seqhouse_core::{MANIFEST_FILE, Manifest};

    let storage = seqhouse_storage::Storage::new(s3)?;
    let location = storage.locate(output)?;
    let manifest_location = location.child(MANIFEST_FILE);
    let json = storage.get(&manifest_location).map_err(|_| Error::InputNotFound {
        location: output.to_string(),
        hint: format!("no {MANIFEST_FILE} there: it is not a published seqhouse output (or not yet)"),
    })?;
    let manifest: Manifest = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt_message(&manifest_location.shown, format!("not a seqhouse manifest: {e}")))?;
    let mut schema = None;
    let mut batches = Vec::new();
    for part in &manifest.parts {
        let part_location = location.child(&part.path);
        let bytes = bytes::Bytes::from(storage.get(&part_location)?);
        let corrupt = |e: parquet::errors::ParquetError| Error::corrupt(&part_location.shown, e);
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(corrupt)?.build().map_err(corrupt)?;
        schema.get_or_insert_with(|| reader.schema());
        for batch in reader {
            batches.push(batch.map_err(|e| Error::corrupt(&part_location.shown, e))?);
        }
    }
    let schema =
        schema.ok_or_else(|| Error::corrupt_message(&manifest_location.shown, "the manifest lists no parts"))?;
    Ok((schema, batches))
}
