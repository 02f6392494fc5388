//! Sequencing into memory: the windows handed back as record batches instead of published, for
//! a front end that returns them (the Python module's `sequence`).
//!
//! It is the same kernel the published path runs on a job that fits in memory, with the same
//! output schema, window order and values (the tests compare it with a published output).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use arrow::array::{Array, RecordBatch, RecordBatchReader};
use arrow::datatypes::{Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use rayon::prelude::*;

use seqhouse_core::vocab::Vocabulary;
use seqhouse_core::{Error, NoProgress, ResolvedSpec, Result, SequenceJob, SequenceStats, Sequencer};
use seqhouse_storage::input::{self, InputSize};

use crate::ranges::{self, SplitInput, WindowSink};
use crate::{LocalWarehouse, PartLayout, Plan};

/// Windows in memory, per output: one, or one per split of a split job.
#[derive(Debug)]
pub struct Windows {
    /// The outputs, in order ([`seqhouse_core::SequenceSpec::output_names`]).
    pub outputs: Vec<OutputBatches>,
    /// What the job counted (per split in `splits`), as a manifest would record it.
    pub stats: SequenceStats,
    /// The vocabularies that encoded the `--vocab` features, in its order.
    pub vocabularies: Vec<Vocabulary>,
}

/// One output's windows: batches of at most [`PartLayout`]'s row-group size, in output order.
#[derive(Debug)]
pub struct OutputBatches {
    /// The split the output holds, for a split job.
    pub split: Option<String>,
    /// The output contract's schema.
    pub schema: SchemaRef,
    /// The windows, ordered by entity, then window.
    pub batches: Vec<RecordBatch>,
}

impl LocalWarehouse {
    /// Sequences in-memory `batches` of `schema` (any Arrow source, read once; `source` names
    /// it in errors) into memory, planned as a job of their size is: whole, split by entity
    /// range in memory, or, once the batches held exceed what the memory limit leaves room for,
    /// staged to a file in the spill folder as they arrive and spilled by range from there.
    /// The memory limit bounds what sequencing holds besides the windows returned.
    pub fn sequence_batches(
        &self,
        job: &SequenceJob,
        schema: &Schema,
        batches: impl IntoIterator<Item = Result<RecordBatch>>,
        source: &str,
    ) -> Result<Windows> {
        let resolved = ResolvedSpec::for_job(job, schema, source)?;
        self.check_window_memory(&resolved)?;
        let limit = self.memory_limit();
        let plan_for = |size| Plan::for_job(&resolved, size, limit, self.config.range_rows);
        let mut held = Vec::new();
        let mut size = InputSize { rows: 0, decoded_bytes: 0 };
        let mut staged: Option<StagedInput> = None;
        for batch in batches {
            self.check_cancelled()?;
            let batch = resolved.conform(&batch?, source)?;
            size.rows += batch.num_rows() as u64;
            size.decoded_bytes += slice_bytes(&batch);
            match &mut staged {
                Some(stage) => stage.write(&batch)?,
                None => {
                    held.push(batch);
                    if let Plan::Spilled { .. } = plan_for(size) {
                        // Too much to hold: what is held, and the rest as it comes, go to a file.
                        let mut stage = StagedInput::create(&self.spill_dir(true), &resolved.input_schema)?;
                        held.drain(..).try_for_each(|batch| stage.write(&batch))?;
                        staged = Some(stage);
                    }
                }
            }
        }
        let plan = plan_for(size);
        let split = match staged {
            None if plan == Plan::Whole => {
                let sources = vec![source; held.len()];
                return self.pool.install(|| self.windows(&resolved, held, &sources));
            }
            None => {
                let batches = ranges::Source::Batches { batches: Mutex::new(held), shown: source };
                self.pool.install(|| self.split(batches, &resolved, size.rows, plan, &NoProgress))?
            }
            Some(stage) => {
                let (folder, path) = stage.finish()?;
                let location = self.storage.locate(&path.display().to_string())?;
                let listed = input::list_files(&self.storage, &location)?;
                let mut files = input::describe(&self.storage, &location, listed, self.config.csv_delimiter)?;
                // Errors name what the caller passed, not the staging file.
                files.iter_mut().for_each(|file| file.shown = source.to_string());
                let staged = ranges::Source::Files {
                    storage: &self.storage,
                    location: &location,
                    files: &files,
                    delimiter: self.config.csv_delimiter,
                };
                let split = self.pool.install(|| self.split(staged, &resolved, size.rows, plan, &NoProgress))?;
                // The ranges' spill files hold the rows now.
                drop(folder);
                split
            }
        };
        self.pool.install(|| self.sequence_split(&resolved, split))
    }

    /// Sequences `job`'s input (read as [`seqhouse_core::Warehouse::sequence`] reads it, and
    /// planned as it plans: whole, or split by entity range in memory or spilled) into memory
    /// instead of publishing it; `job.output` is not used.
    pub fn sequence_input(&self, job: &SequenceJob) -> Result<Windows> {
        let bound = self.bind(job)?;
        self.check_window_memory(&bound.resolved)?;
        self.pool.install(|| {
            let delimiter = self.config.csv_delimiter;
            if bound.plan == Plan::Whole {
                let decoded =
                    input::read_all(&self.storage, &bound.input, &bound.files, &bound.resolved, delimiter, &|| ())?;
                let sources: Vec<&str> = decoded.batch_file.iter().map(|&i| bound.files[i].shown.as_str()).collect();
                self.check_cancelled()?;
                return self.windows(&bound.resolved, decoded.batches, &sources);
            }
            let files = ranges::Source::Files {
                storage: &self.storage,
                location: &bound.input,
                files: &bound.files,
                delimiter,
            };
            let split = self.split(files, &bound.resolved, bound.size.rows, bound.plan, &NoProgress)?;
            self.sequence_split(&bound.resolved, split)
        })
    }

    /// A job in one piece.
    fn windows(&self, resolved: &ResolvedSpec, batches: Vec<RecordBatch>, sources: &[&str]) -> Result<Windows> {
        let mut sequencer = Sequencer::prepare(resolved, batches, sources, seqhouse_core::Core::Whole)?;
        self.check_cancelled()?;
        let vocabularies = self.vocabularies(resolved, None, &mut |counts| sequencer.count_values(counts))?;
        sequencer.encode(&vocabularies)?;
        let mut sink = MemorySink::new(self, resolved);
        sink.push(&sequencer)?;
        Ok(sink.into_windows(resolved, sequencer.stats().clone(), vocabularies))
    }

    /// A job split by entity range, a range at a time.
    fn sequence_split(&self, resolved: &ResolvedSpec, split: SplitInput) -> Result<Windows> {
        let cancelled = || self.check_cancelled();
        let core = split.core_values(resolved, &cancelled)?;
        let vocabularies = self.vocabularies(resolved, None, &mut |counts| {
            split.count_values(resolved, core.as_ref(), counts, &cancelled)
        })?;
        let mut sink = MemorySink::new(self, resolved);
        let stats = split.sequence(resolved, core.as_ref(), &vocabularies, &mut sink, &cancelled)?;
        Ok(sink.into_windows(resolved, stats, vocabularies))
    }
}

/// Windows built into batches of at most a row group each, in parallel, in order, per output.
struct MemorySink<'a> {
    warehouse: &'a LocalWarehouse,
    rows_per_batch: usize,
    outputs: Vec<Vec<RecordBatch>>,
}

impl<'a> MemorySink<'a> {
    fn new(warehouse: &'a LocalWarehouse, resolved: &ResolvedSpec) -> Self {
        let layout = PartLayout::for_length(resolved.spec.sequence_length, warehouse.config.rows_per_part);
        let outputs = vec![Vec::new(); resolved.output_schemas.len()];
        MemorySink { warehouse, rows_per_batch: layout.rows_per_row_group.max(1), outputs }
    }

    fn into_windows(self, resolved: &ResolvedSpec, stats: SequenceStats, vocabularies: Vec<Vocabulary>) -> Windows {
        let names = resolved.spec.output_names();
        let outputs = self
            .outputs
            .into_iter()
            .zip(&resolved.output_schemas)
            .zip(names)
            .map(|((batches, schema), name)| OutputBatches {
                split: name.map(str::to_string),
                schema: schema.clone(),
                batches,
            })
            .collect();
        Windows { outputs, stats, vocabularies }
    }
}

impl WindowSink for MemorySink<'_> {
    fn push(&mut self, sequencer: &Sequencer) -> Result<()> {
        let step = self.rows_per_batch;
        for (output, batches) in self.outputs.iter_mut().enumerate() {
            let windows = sequencer.output(output);
            let starts: Vec<usize> = (0..windows.len()).step_by(step).collect();
            let built = starts
                .into_par_iter()
                .map(|start| {
                    self.warehouse.check_cancelled()?;
                    windows.build(start..(start + step).min(windows.len()))
                })
                .collect::<Result<Vec<_>>>()?;
            batches.extend(built);
        }
        Ok(())
    }
}

/// The bytes a batch's rows take, counting only the slices of its buffers it covers (a batch
/// sliced from a larger one shares, and does not own, the rest).
fn slice_bytes(batch: &RecordBatch) -> u64 {
    batch.columns().iter().map(|column| column.to_data().get_slice_memory_size().unwrap_or(0) as u64).sum()
}

/// In-memory input too large to hold, written as it arrives to a Parquet file in a spill
/// folder of its own (removed with everything in it when dropped), so that it can be read
/// twice as a spilled job reads its input.
struct StagedInput {
    folder: ranges::SpillFolder,
    path: PathBuf,
    writer: ArrowWriter<std::io::BufWriter<std::fs::File>>,
}

impl StagedInput {
    fn create(dir: &Path, schema: &SchemaRef) -> Result<Self> {
        let folder = ranges::spill_folder(dir)?;
        let path = folder.path().join("input.parquet");
        let file = std::fs::File::create(&path).map_err(|e| ranges::spill_error("cannot create", &path, e))?;
        let writer = ArrowWriter::try_new(std::io::BufWriter::with_capacity(1 << 20, file), schema.clone(), None)
            .map_err(|e| ranges::spill_error("cannot write", &path, e))?;
        Ok(StagedInput { folder, path, writer })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.writer.write(batch).map_err(|e| ranges::spill_error("cannot write", &self.path, e))
    }

    /// Closes the file; the folder holds it until dropped.
    fn finish(self) -> Result<(ranges::SpillFolder, PathBuf)> {
        let StagedInput { folder, path, writer } = self;
        let mut buffered = writer.into_inner().map_err(|e| ranges::spill_error("cannot write", &path, e))?;
        std::io::Write::flush(&mut buffered).map_err(|e| ranges::spill_error("cannot write", &path, e))?;
        Ok((folder, path))
    }
}

/// The windows of a published output, read through its manifest: exactly the parts it lists,
/// in its order (parts a run left unlisted are not read). An output without a manifest is an
/// error: it is not one seqhouse published, or not yet.
pub fn read_published(s3: seqhouse_storage::S3Options, output: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let storage = seqhouse_storage::Storage::new(s3)?;
    let (location, manifest) = seqhouse_storage::read_manifest(&storage, output)?;
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
    let schema = schema.ok_or_else(|| {
        Error::corrupt_message(&location.child(seqhouse_core::MANIFEST_FILE).shown, "the manifest lists no parts")
    })?;
    Ok((schema, batches))
}
