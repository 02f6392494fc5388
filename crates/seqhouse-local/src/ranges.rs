//! Large jobs: the input is split into ranges of entities, kept in memory or, for a job larger
//! than `--memory-limit`, spilled to a temporary folder as Arrow IPC files, and sequenced one
//! range at a time.
//!
//! Sequencing a range at a time bounds the sort's working set: only one range's keys, order and
//! permuted features exist at once, which keeps memory low and the sort in cache even when the
//! input fits in memory.
//!
//! 1. **Sample**: the entity columns alone are read and every k-th row kept (about
//!    [`SAMPLE_ROWS`] rows, chosen by position, so the same for any thread count). Their
//!    quantiles become the range bounds ([`EntityRanges`]).
//! 2. **Split**: all needed columns are streamed in input order; the null-key policy is applied,
//!    and each batch's rows go to their range (a list of batches, or a spill file), in input
//!    order.
//! 3. **Sequence**: each range is taken back (a spill file is read and deleted), sequenced by the
//!    in-memory kernel and handed to the [`PartSink`], in range order; the next range is
//!    prepared while the current one is written.
//!
//! Ranges follow the entity order and hold whole entities, and rows keep their input order
//! within a range, so the windows, their order and the part files are exactly those of the job
//! sequenced in one piece. Only memory and time differ.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{RecordBatch, UInt32Array};
use arrow::compute::{concat, take_record_batch};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use rayon::prelude::*;
use seqhouse_core::kernel::rows_without_nulls;
use seqhouse_core::manifest::InputFile;
use seqhouse_core::partition::EntityRanges;
use seqhouse_core::{
    BatchNulls, Error, NullKeyPolicy, NullKeys, Progress, ResolvedSpec, Result, SequenceStats, Sequencer,
};
use seqhouse_storage::input::{self, SourceFile};
use seqhouse_storage::{Location, Storage};

use crate::output::PartSink;

/// Rows of the entity sample the range bounds are taken from: enough that ranges come out
/// within a few percent of equal, little enough to sort in a moment.
const SAMPLE_ROWS: u64 = 1 << 20;
/// Ranges are capped so that the spill files stay few (each is an open file while splitting).
pub(crate) const MAX_RANGES: usize = 512;

/// Where a split job reads its input, how finely it splits it and where it keeps the ranges.
pub(crate) struct SplitJob<'a> {
    pub storage: &'a Storage,
    pub location: &'a Location,
    pub files: &'a [SourceFile],
    pub resolved: &'a ResolvedSpec,
    pub delimiter: u8,
    /// Estimated input rows (to space the sample).
    pub estimated_rows: u64,
    /// Ranges wanted (fewer result when the sample has fewer distinct entities).
    pub ranges: usize,
    /// Where the ranges are held until sequenced: `None` in memory, else in a spill folder made
    /// in this folder.
    pub spill_dir: Option<&'a Path>,
    /// Fails once the job is cancelled; checked between waves of row groups.
    pub cancelled: &'a (dyn Fn() -> Result<()> + Sync),
}

/// One range's rows as the split writes them.
enum RangeWriter {
    Memory(Vec<RecordBatch>),
    Disk(Box<StreamWriter<BufWriter<File>>>, PathBuf),
}

/// One range's rows, split and waiting to be sequenced.
enum HeldRange {
    Memory(Vec<RecordBatch>),
    Disk(PathBuf),
}

impl RangeWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self {
            RangeWriter::Memory(batches) => batches.push(batch.clone()),
            RangeWriter::Disk(writer, path) => writer.write(batch).map_err(|e| spill_error("cannot write", path, e))?,
        }
        Ok(())
    }

    fn finish(self) -> Result<HeldRange> {
        Ok(match self {
            RangeWriter::Memory(batches) => HeldRange::Memory(batches),
            RangeWriter::Disk(writer, path) => {
                let mut buffered = writer.into_inner().map_err(|e| spill_error("cannot write", &path, e))?;
                std::io::Write::flush(&mut buffered).map_err(|e| spill_error("cannot write", &path, e))?;
                HeldRange::Disk(path)
            }
        })
    }
}

impl HeldRange {
    fn take(self) -> Result<Vec<RecordBatch>> {
        match self {
            HeldRange::Memory(batches) => Ok(batches),
            HeldRange::Disk(path) => {
                let file = File::open(&path).map_err(|e| spill_error("cannot open", &path, e))?;
                let reader = StreamReader::try_new(BufReader::with_capacity(1 << 20, file), None)
                    .map_err(|e| spill_error("cannot read", &path, e))?;
                let batches = reader
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| spill_error("cannot read", &path, e))?;
                // The range is in memory now; its file is no longer needed.
                std::fs::remove_file(&path).map_err(|e| spill_error("cannot delete", &path, e))?;
                Ok(batches)
            }
        }
    }
}

/// The input split into ranges, ready to be sequenced.
pub(crate) struct SplitInput {
    /// The spill folder, if any: deleted with everything in it when dropped, whether the job
    /// succeeded or not.
    _folder: Option<tempfile::TempDir>,
    ranges: Vec<HeldRange>,
    /// The counts of the whole input: rows read, null keys; sequencing counts are added per range.
    stats: SequenceStats,
    /// The manifest's input entries.
    pub files: Vec<InputFile>,
}

/// Samples and splits the input (steps 1 and 2). Nothing is written to the output here, so bad
/// input (a corrupt file, a null key under `--on-null-key error`) fails before it is touched.
pub(crate) fn split(job: &SplitJob, progress: &dyn Progress) -> Result<SplitInput> {
    let resolved = job.resolved;
    let ranges = sample_ranges(job)?;
    tracing::debug!(ranges = ranges.len(), "entity ranges");
    let folder = match job.spill_dir {
        None => None,
        Some(dir) => Some(
            tempfile::Builder::new()
                .prefix(".seqhouse-spill-")
                .tempdir_in(dir)
                .map_err(|e| spill_error("cannot create a spill folder in", dir, e))?,
        ),
    };
    let mut writers = (0..ranges.len())
        .map(|r| match &folder {
            None => Ok(RangeWriter::Memory(Vec::new())),
            Some(folder) => {
                let path = folder.path().join(format!("range-{r:05}.arrows"));
                let file = File::create(&path).map_err(|e| spill_error("cannot create", &path, e))?;
                let writer = StreamWriter::try_new(BufWriter::with_capacity(1 << 20, file), &resolved.input_schema)
                    .map_err(|e| spill_error("cannot write", &path, e))?;
                Ok(RangeWriter::Disk(Box::new(writer), path))
            }
        })
        .collect::<Result<Vec<_>>>()?;

    progress.stage("split", job.files.len() as u64);
    let mut null_keys = NullKeys::new(resolved);
    let mut last_file = None;
    // Decoded batches are filtered and split at once, in parallel, so only their pieces live on;
    // the counts are recorded in input order afterwards.
    let filter = NullKeys::new(resolved);
    let split_one = |batch: RecordBatch| -> Result<(BatchNulls, Vec<Option<RecordBatch>>)> {
        let (kept, nulls) = filter.apply(batch)?;
        let pieces = if nulls.has_nulls() && resolved.spec.on_null_key == NullKeyPolicy::Error {
            // The job fails once the input is counted; nothing of this batch is kept.
            vec![None; ranges.len()]
        } else {
            split_batch(&kept, &ranges, &resolved.entity_idx)?
        };
        Ok((nulls, pieces))
    };
    let files = input::read_in_waves(
        job.storage,
        job.location,
        job.files,
        &resolved.input_schema,
        job.delimiter,
        &split_one,
        &mut |wave| {
            (job.cancelled)()?;
            let mut pieces = Vec::with_capacity(wave.len());
            for (file, (nulls, split)) in wave {
                if last_file.is_some_and(|last| last != file) {
                    progress.advance(1);
                }
                last_file = Some(file);
                null_keys.record(&nulls, &job.files[file].shown);
                pieces.push(split);
            }
            if null_keys.failing() {
                return Ok(());
            }
            writers.par_iter_mut().enumerate().try_for_each(|(r, writer)| {
                pieces.iter().filter_map(|p| p[r].as_ref()).try_for_each(|piece| writer.write(piece))
            })
        },
    )?;
    progress.advance(1);
    let counts = null_keys.finish()?;
    let held = writers.into_iter().map(RangeWriter::finish).collect::<Result<Vec<_>>>()?;
    let stats = SequenceStats {
        input_rows: counts.input_rows,
        dropped_null_key_rows: counts.dropped,
        null_key_rows_by_column: counts.by_column,
        ..SequenceStats::default()
    };
    Ok(SplitInput { _folder: folder, ranges: held, stats, files })
}

impl SplitInput {
    /// Sequences the ranges in order into `sink` (step 3) and returns the job's counts.
    /// `cancelled` is checked before each range.
    ///
    /// Range `r + 1` is read back and prepared while range `r` is written, so the sort of one
    /// overlaps the encoding of the other (the planner sizes ranges for two at a time).
    pub(crate) fn sequence(
        self,
        resolved: &ResolvedSpec,
        sink: &mut PartSink,
        cancelled: &(dyn Fn() -> Result<()> + Sync),
    ) -> Result<SequenceStats> {
        let prepare = |r: usize, range: HeldRange| -> Result<Sequencer> {
            cancelled()?;
            let batches = range.take()?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let source = format!("range {r} of the split input");
            let sources = vec![source.as_str(); batches.len()];
            let sequencer = Sequencer::prepare(resolved, batches, &sources)?;
            tracing::trace!(range = r, rows, windows = sequencer.num_windows(), "range prepared");
            Ok(sequencer)
        };
        let mut stats = self.stats;
        let mut ranges = self.ranges.into_iter().enumerate();
        let mut next = ranges.next().map(|(r, range)| prepare(r, range)).transpose()?;
        while let Some(current) = next.take() {
            stats.add_sequenced(current.stats());
            let following = ranges.next();
            let (pushed, prepared) =
                rayon::join(|| sink.push(&current), || following.map(|(r, range)| prepare(r, range)).transpose());
            drop(current);
            pushed?;
            next = prepared?;
        }
        Ok(stats)
    }
}

/// Step 1: the range bounds, from every k-th row's entity.
fn sample_ranges(job: &SplitJob) -> Result<EntityRanges> {
    let resolved = job.resolved;
    let entity_schema = Arc::new(resolved.input_schema.project(&resolved.entity_idx).map_err(Error::internal)?);
    let step = (job.estimated_rows / SAMPLE_ROWS).max(1);
    let mut position = 0u64;
    let mut sample: Vec<RecordBatch> = Vec::new();
    let identity = |batch: RecordBatch| Ok(batch);
    input::read_in_waves(
        job.storage,
        job.location,
        job.files,
        &entity_schema,
        job.delimiter,
        &identity,
        &mut |wave| {
            (job.cancelled)()?;
            for (_, batch) in wave {
                let first = (step - position % step) % step;
                let picked = UInt32Array::from_iter_values(
                    (first..batch.num_rows() as u64).step_by(step as usize).map(|i| i as u32),
                );
                position += batch.num_rows() as u64;
                let picked = take_record_batch(&batch, &picked).map_err(Error::internal)?;
                // Rows with a null entity are never sequenced; they do not shape the ranges.
                let valid = rows_without_nulls(picked.columns())?;
                let picked = match valid {
                    Some(valid) => arrow::compute::filter_record_batch(&picked, &valid).map_err(Error::internal)?,
                    None => picked,
                };
                sample.push(picked);
            }
            Ok(())
        },
    )?;
    let columns = (0..entity_schema.fields().len())
        .map(|c| {
            let parts: Vec<_> = sample.iter().map(|b| b.column(c).as_ref()).collect();
            if parts.is_empty() {
                return Ok(arrow::array::new_empty_array(entity_schema.field(c).data_type()));
            }
            concat(&parts).map_err(Error::internal)
        })
        .collect::<Result<Vec<_>>>()?;
    EntityRanges::from_sample(&columns, job.ranges)
}

/// `batch`'s rows per range (input order kept), `None` for ranges without rows.
fn split_batch(batch: &RecordBatch, ranges: &EntityRanges, entity_idx: &[usize]) -> Result<Vec<Option<RecordBatch>>> {
    let mut pieces = vec![None; ranges.len()];
    if batch.num_rows() == 0 {
        return Ok(pieces);
    }
    let entities: Vec<_> = entity_idx.iter().map(|&i| batch.column(i).clone()).collect();
    let assigned = ranges.assign(&entities)?;
    let mut rows_of: Vec<Vec<u32>> = vec![Vec::new(); ranges.len()];
    for (row, &r) in assigned.iter().enumerate() {
        rows_of[r as usize].push(row as u32);
    }
    for (r, rows) in rows_of.into_iter().enumerate() {
        pieces[r] = match rows.len() {
            0 => None,
            n if n == batch.num_rows() => Some(batch.clone()),
            _ => Some(take_record_batch(batch, &UInt32Array::from(rows)).map_err(Error::internal)?),
        };
    }
    Ok(pieces)
}

/// A spill file error, with what the user can do about it (disk space is the usual cause).
fn spill_error(action: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::storage(
        action,
        path.display(),
        format!(
            "{e} (this job spills to disk because its input exceeds --memory-limit; free space there, choose another --spill-dir or raise --memory-limit)"
        ),
    )
}
