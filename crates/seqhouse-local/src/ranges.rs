//! Large jobs: the input is split into ranges of entities, kept in memory or, for a job larger
//! than `--memory-limit`, spilled to a temporary folder as Arrow IPC files, and sequenced one
//! range at a time.
//!
//! Sequencing a range at a time bounds the sort's working set: only one range's keys, order and
//! permuted features exist at once, which keeps memory low and the sort in cache even when the
//! input fits in memory.
//!
//! 1. **Sample**: every k-th row's entity columns are kept (about [`SAMPLE_ROWS`] rows, chosen
//!    by position, so the same for any thread count). Their quantiles become the range bounds
//!    ([`EntityRanges`]).
//! 2. **Split**: each batch's rows go to their range (a list of batches, or a spill file), in
//!    input order, after the null-key policy. An input that fits in memory is read once: its
//!    batches are held and sampled as they arrive, then split. Batches a caller holds in memory
//!    ([`Source::Batches`]) are split by row number only. A spilled job reads the entity
//!    columns alone for the sample first, then streams all needed columns, splitting each
//!    batch as it is decoded.
//! 3. **Sequence**: each range is taken back (a spill file is read and deleted, a caller's rows
//!    are copied out), sequenced by the in-memory kernel and handed to a [`WindowSink`] (part
//!    files, or batches in memory), in range order; the next range is
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
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use rayon::prelude::*;
use seqhouse_core::core_filter::{CoreEvents, CoreValues};
use seqhouse_core::kernel::rows_without_nulls;
use seqhouse_core::manifest::InputFile;
use seqhouse_core::partition::EntityRanges;
use seqhouse_core::vocab::{ValueCounts, Vocabulary};
use seqhouse_core::{
    BatchNulls, Error, NullKeyCounts, NullKeyPolicy, NullKeys, Progress, ResolvedSpec, Result, SequenceStats,
    Sequencer, Setting,
};
use seqhouse_core::{Core, Phase, PhaseTimes};
use seqhouse_storage::input::{self, SourceFile};
use seqhouse_storage::{Location, Storage};

/// Where sequenced ranges go, in output order: part files, or batches in memory.
pub(crate) trait WindowSink: Send {
    /// Appends every window of `sequencer`.
    fn push(&mut self, sequencer: &Sequencer) -> Result<()>;
}

/// Rows of the entity sample the range bounds are taken from: enough that ranges come out
/// within a few percent of equal, little enough to sort in a moment.
const SAMPLE_ROWS: u64 = 1 << 20;
/// Ranges are capped so that the spill files stay few (each is an open file while splitting).
pub(crate) const MAX_RANGES: usize = 512;

/// Where a split job reads its input, how finely it splits it and where it keeps the ranges.
pub(crate) struct SplitJob<'a> {
    pub source: Source<'a>,
    pub resolved: &'a ResolvedSpec,
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

/// The rows a job splits.
pub(crate) enum Source<'a> {
    /// The job's input files, read through storage (as often as the split needs).
    Files { storage: &'a Storage, location: &'a Location, files: &'a [SourceFile], delimiter: u8 },
    /// Batches already in memory and conformed to the input schema, from one source named
    /// `shown`. They can be read once, and only to be held in memory: a split that spills reads
    /// its input twice (the sample, then the rows), so batches too large to hold are staged as
    /// a file first.
    Batches { batches: std::sync::Mutex<Vec<RecordBatch>>, shown: &'a str },
}

impl SplitJob<'_> {
    /// Streams the columns of `schema` from the job's input (see [`input::read_in_waves`]);
    /// batches in memory are handed over, and let go, one wave at a time.
    fn read_in_waves<T: Send>(
        &self,
        schema: &SchemaRef,
        map: &(dyn Fn(RecordBatch) -> Result<T> + Sync),
        visit: &mut dyn FnMut(Vec<(usize, T)>) -> Result<()>,
    ) -> Result<Vec<InputFile>> {
        match &self.source {
            Source::Files { storage, location, files, delimiter } => {
                input::read_in_waves(storage, location, files, schema, *delimiter, map, visit)
            }
            Source::Batches { batches, .. } => {
                let batches = std::mem::take(&mut *batches.lock().expect("not poisoned"));
                let wave_size = rayon::current_num_threads() * 2;
                let mut batches = batches.into_iter().peekable();
                while batches.peek().is_some() {
                    let wave: Vec<RecordBatch> = batches.by_ref().take(wave_size).collect();
                    let done = wave.into_par_iter().map(map).collect::<Result<Vec<_>>>()?;
                    visit(done.into_iter().map(|t| (0, t)).collect())?;
                }
                // Rows in memory come from no file the manifest would list.
                Ok(Vec::new())
            }
        }
    }

    /// How many files the input has (for progress).
    fn file_count(&self) -> usize {
        match &self.source {
            Source::Files { files, .. } => files.len(),
            Source::Batches { .. } => 1,
        }
    }

    /// The name of the input's `index`-th file, as errors show it.
    fn shown(&self, index: usize) -> &str {
        match &self.source {
            Source::Files { files, .. } => &files[index].shown,
            Source::Batches { shown, .. } => shown,
        }
    }
}

/// One range's spill file as the split writes it.
struct RangeWriter {
    writer: Box<StreamWriter<BufWriter<File>>>,
    path: PathBuf,
}

/// One range's rows, split and waiting to be sequenced.
enum HeldRange {
    /// The range's rows, copied out of the input.
    Taken(Vec<RecordBatch>),
    /// Rows of input batches held by the caller, taken from them when the range is sequenced.
    Rows {
        input: Arc<[RecordBatch]>,
        pieces: Vec<(usize, Piece)>,
    },
    Disk(PathBuf),
}

/// The rows of one batch that belong to one range.
#[derive(Debug, Clone)]
enum Piece {
    /// All of them.
    Whole,
    /// These, in input order.
    Rows(UInt32Array),
}

impl Piece {
    fn take(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        match self {
            Piece::Whole => Ok(batch.clone()),
            Piece::Rows(rows) => take_record_batch(batch, rows).map_err(Error::internal),
        }
    }
}

impl RangeWriter {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        seqhouse_storage::failpoint::hit_io("local.spill.write")
            .map_err(|e| spill_error("cannot write", &self.path, e))?;
        self.writer.write(batch).map_err(|e| spill_error("cannot write", &self.path, e))
    }

    fn finish(self) -> Result<HeldRange> {
        let RangeWriter { writer, path } = self;
        let mut buffered = writer.into_inner().map_err(|e| spill_error("cannot write", &path, e))?;
        std::io::Write::flush(&mut buffered).map_err(|e| spill_error("cannot write", &path, e))?;
        Ok(HeldRange::Disk(path))
    }
}

impl HeldRange {
    /// The range's rows, leaving them held (for a pass that counts before the one that
    /// sequences).
    fn read(&self) -> Result<Vec<RecordBatch>> {
        match self {
            HeldRange::Taken(batches) => Ok(batches.clone()),
            HeldRange::Rows { input, pieces } => pieces.par_iter().map(|(b, piece)| piece.take(&input[*b])).collect(),
            HeldRange::Disk(path) => {
                let file = File::open(path).map_err(|e| spill_error("cannot open", path, e))?;
                let reader = StreamReader::try_new(BufReader::with_capacity(1 << 20, file), None)
                    .map_err(|e| spill_error("cannot read", path, e))?;
                reader.collect::<std::result::Result<Vec<_>, _>>().map_err(|e| spill_error("cannot read", path, e))
            }
        }
    }

    /// The phase reading the range back counts as: spilling for a range on disk.
    fn phase(&self) -> Phase {
        match self {
            HeldRange::Disk(_) => Phase::Spill,
            _ => Phase::Read,
        }
    }

    fn take(self) -> Result<Vec<RecordBatch>> {
        match self {
            HeldRange::Taken(batches) => Ok(batches),
            HeldRange::Rows { input, pieces } => pieces.par_iter().map(|(b, piece)| piece.take(&input[*b])).collect(),
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
    _folder: Option<SpillFolder>,
    ranges: Vec<HeldRange>,
    /// The counts of the whole input: rows read, null keys; sequencing counts are added per range.
    stats: SequenceStats,
    /// The time of each phase so far, added to as the ranges are counted and sequenced.
    phases: Arc<PhaseTimes>,
    /// The manifest's input entries.
    pub files: Vec<InputFile>,
}

/// Samples and splits the input (steps 1 and 2), timing it as [`Phase::Read`] (the writes to
/// spill files as [`Phase::Spill`]). Nothing is written to the output here, so bad
/// input (a corrupt file, a null key under `--on-null-key error`) fails before it is touched.
pub(crate) fn split(job: &SplitJob, progress: &dyn Progress) -> Result<SplitInput> {
    let started = std::time::Instant::now();
    let phases = Arc::new(PhaseTimes::default());
    let split = match job.spill_dir {
        None => split_in_memory(job, progress, phases),
        Some(_) if matches!(job.source, Source::Batches { .. }) => {
            Err(Error::internal("batches in memory are staged as a file before they are spilled"))
        }
        Some(dir) => split_to_disk(job, dir, progress, phases),
    }?;
    // Reading is the split's time but for the writes to its spill files.
    split.phases.add(Phase::Read, started.elapsed().saturating_sub(split.phases.of(Phase::Spill)));
    Ok(split)
}

/// An input that fits in memory is read once: the decoded batches are held, the sample is
/// taken from them as they arrive, and they are split once the bounds are known.
fn split_in_memory(job: &SplitJob, progress: &dyn Progress, phases: Arc<PhaseTimes>) -> Result<SplitInput> {
    let resolved = job.resolved;
    progress.stage("split", job.file_count() as u64);
    let mut null_keys = NullKeys::new(resolved);
    let mut sample = Sample::new(job);
    let mut held = Vec::new();
    let mut last_file = None;
    let filter = NullKeys::new(resolved);
    let keep_valid = |batch: RecordBatch| filter.apply(batch);
    let files = job.read_in_waves(&resolved.input_schema, &keep_valid, &mut |wave| {
        (job.cancelled)()?;
        for (file, (kept, nulls)) in wave {
            if last_file.is_some_and(|last| last != file) {
                progress.advance(1);
            }
            last_file = Some(file);
            null_keys.record(&nulls, job.shown(file));
            if null_keys.failing() {
                // The job fails once the input is counted; nothing more is kept.
                held.clear();
                continue;
            }
            sample.add(&kept.project(&resolved.entity_idx).map_err(Error::internal)?)?;
            held.push(kept);
        }
        Ok(())
    })?;
    progress.advance(1);
    let counts = null_keys.finish()?;
    let ranges = sample.ranges(job)?;
    tracing::debug!(ranges = ranges.len(), "entity ranges");
    let held = match job.source {
        // Decoded here: each batch is replaced by its ranges' copies as it is split, so the input
        // exists once (measured at 10M rows: 9% less peak memory than taking the rows later).
        Source::Files { .. } => {
            let split = held
                .into_par_iter()
                .map(|batch| {
                    let pieces = split_batch(&batch, &ranges, &resolved.entity_idx)?;
                    pieces.into_iter().map(|piece| piece.map(|p| p.take(&batch)).transpose()).collect()
                })
                .collect::<Result<Vec<Vec<_>>>>()?;
            by_range(split, ranges.len()).into_iter().map(HeldRange::Taken).collect()
        }
        // The caller's: only the row numbers are split, and each range's rows are taken when it
        // is sequenced, so one range's copy exists at a time (at 10M rows from a pyarrow Table,
        // 336 MiB added instead of 588).
        Source::Batches { .. } => {
            let input: Arc<[RecordBatch]> = held.into();
            let split = input
                .par_iter()
                .enumerate()
                .map(|(b, batch)| {
                    let pieces = split_batch(batch, &ranges, &resolved.entity_idx)?;
                    Ok(pieces.into_iter().map(|piece| piece.map(|piece| (b, piece))).collect())
                })
                .collect::<Result<Vec<Vec<_>>>>()?;
            let range_pieces = by_range(split, ranges.len());
            range_pieces.into_iter().map(|pieces| HeldRange::Rows { input: input.clone(), pieces }).collect()
        }
    };
    Ok(SplitInput { _folder: None, ranges: held, stats: input_stats(counts), files, phases })
}

/// Each batch's pieces (one per range, `None` where it has no rows there) regrouped per range,
/// in batch order.
fn by_range<T>(split: Vec<Vec<Option<T>>>, ranges: usize) -> Vec<Vec<T>> {
    let mut per_range: Vec<Vec<T>> = (0..ranges).map(|_| Vec::new()).collect();
    for pieces in split {
        for (r, piece) in pieces.into_iter().enumerate() {
            per_range[r].extend(piece);
        }
    }
    per_range
}

/// An input larger than memory is read twice: the entity columns alone for the sample, then
/// all columns, each decoded batch split at once and its pieces appended to the ranges' spill
/// files.
fn split_to_disk(job: &SplitJob, dir: &Path, progress: &dyn Progress, phases: Arc<PhaseTimes>) -> Result<SplitInput> {
    let resolved = job.resolved;
    let ranges = sample_ranges(job)?;
    tracing::debug!(ranges = ranges.len(), "entity ranges");
    let folder = spill_folder(dir)?;
    let mut writers = (0..ranges.len())
        .map(|r| {
            let path = folder.path().join(format!("range-{r:05}.arrows"));
            let file = File::create(&path).map_err(|e| spill_error("cannot create", &path, e))?;
            let writer = StreamWriter::try_new(BufWriter::with_capacity(1 << 20, file), &resolved.input_schema)
                .map_err(|e| spill_error("cannot write", &path, e))?;
            Ok(RangeWriter { writer: Box::new(writer), path })
        })
        .collect::<Result<Vec<_>>>()?;

    progress.stage("split", job.file_count() as u64);
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
            let pieces = split_batch(&kept, &ranges, &resolved.entity_idx)?;
            pieces.into_iter().map(|piece| piece.map(|p| p.take(&kept)).transpose()).collect::<Result<Vec<_>>>()?
        };
        Ok((nulls, pieces))
    };
    let files = job.read_in_waves(&resolved.input_schema, &split_one, &mut |wave| {
        (job.cancelled)()?;
        let mut pieces = Vec::with_capacity(wave.len());
        for (file, (nulls, split)) in wave {
            if last_file.is_some_and(|last| last != file) {
                progress.advance(1);
            }
            last_file = Some(file);
            null_keys.record(&nulls, job.shown(file));
            pieces.push(split);
        }
        if null_keys.failing() {
            return Ok(());
        }
        phases.time(Phase::Spill, || {
            writers.par_iter_mut().enumerate().try_for_each(|(r, writer)| {
                pieces.iter().filter_map(|p| p[r].as_ref()).try_for_each(|piece| writer.write(piece))
            })
        })
    })?;
    progress.advance(1);
    let counts = null_keys.finish()?;
    let held =
        phases.time(Phase::Spill, || writers.into_iter().map(RangeWriter::finish).collect::<Result<Vec<_>>>())?;
    Ok(SplitInput { _folder: Some(folder), ranges: held, stats: input_stats(counts), files, phases })
}

/// The counts of the whole input: rows read and null keys; sequencing counts are added per range.
fn input_stats(counts: NullKeyCounts) -> SequenceStats {
    SequenceStats {
        input_rows: counts.input_rows,
        dropped_null_key_rows: counts.dropped,
        null_key_rows_by_column: counts.by_column,
        ..SequenceStats::default()
    }
}

impl SplitInput {
    /// Counts the values vocabularies are fitted on (see [`Sequencer::count_values`]), range
    /// by range, leaving the ranges held for [`SplitInput::sequence`].
    pub(crate) fn count_values(
        &self,
        resolved: &ResolvedSpec,
        core: Option<&CoreValues>,
        counts: &mut [ValueCounts],
        cancelled: &(dyn Fn() -> Result<()> + Sync),
    ) -> Result<()> {
        let spec = &resolved.spec;
        // When every event is fitted on (no split) and no filter drops any, the ranges' rows
        // (null keys already dropped) are the fitting events: counted as they are, unsorted.
        let every_event = spec.split.is_none()
            && !spec.dedupe_consecutive
            && spec.min_events.is_none_or(|m| m <= 1)
            && spec.min_session_length.is_none_or(|m| m <= 1)
            && spec.k_core.is_none();
        for (r, range) in self.ranges.iter().enumerate() {
            cancelled()?;
            let batches = self.phases.time(range.phase(), || range.read())?;
            if every_event {
                for (counts, vocab) in counts.iter_mut().zip(&spec.vocab) {
                    let column = resolved.feature_idx[resolved.feature_position(&vocab.name)];
                    batches.iter().try_for_each(|batch| counts.add(batch.column(column)))?;
                }
                continue;
            }
            let source = format!("range {r} of the split input");
            let sources = vec![source.as_str(); batches.len()];
            let sequencer = Sequencer::prepare(resolved, batches, &sources, in_range(core))?;
            sequencer.add_times(&self.phases);
            self.phases.time(Phase::Window, || sequencer.count_values(counts))?;
        }
        Ok(())
    }

    /// With `--k-core`, the values that survive it over every range: each range's events are
    /// collected (a value code each) and the fixed point found over all of them, leaving the
    /// ranges held for the passes that follow.
    pub(crate) fn core_values(
        &self,
        resolved: &ResolvedSpec,
        cancelled: &(dyn Fn() -> Result<()> + Sync),
    ) -> Result<Option<CoreValues>> {
        let spec = &resolved.spec;
        let Some(k_core) = &spec.k_core else { return Ok(None) };
        let mut events = CoreEvents::new(resolved.feature_input_type(&k_core.column))?;
        for (r, range) in self.ranges.iter().enumerate() {
            cancelled()?;
            let batches = self.phases.time(range.phase(), || range.read())?;
            let source = format!("range {r} of the split input");
            let sources = vec![source.as_str(); batches.len()];
            Sequencer::prepare(resolved, batches, &sources, Core::Collect(&mut events))?.add_times(&self.phases);
        }
        Ok(Some(self.phases.time(Phase::Window, || {
            events.fixed_point(k_core.k, spec.min_session_length.unwrap_or(1), spec.min_events.unwrap_or(1))
        })))
    }

    /// Sequences the ranges in order into `sink` (step 3), each feature of `--vocab` encoded
    /// by its vocabulary, and returns the job's counts. `cancelled` is checked before each
    /// range.
    ///
    /// Range `r + 1` is read back and prepared while range `r` is written, so the sort of one
    /// overlaps the encoding of the other (the planner sizes ranges for two at a time).
    pub(crate) fn sequence(
        self,
        resolved: &ResolvedSpec,
        core: Option<&CoreValues>,
        vocabularies: &[Vocabulary],
        sink: &mut dyn WindowSink,
        cancelled: &(dyn Fn() -> Result<()> + Sync),
    ) -> Result<SequenceStats> {
        let phases = self.phases.clone();
        let prepare = |r: usize, range: HeldRange| -> Result<Sequencer> {
            cancelled()?;
            let batches = phases.time(range.phase(), || range.take())?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let source = format!("range {r} of the split input");
            let sources = vec![source.as_str(); batches.len()];
            let mut sequencer = Sequencer::prepare(resolved, batches, &sources, in_range(core))?;
            sequencer.add_times(&phases);
            phases.time(Phase::Window, || sequencer.encode(vocabularies))?;
            tracing::trace!(range = r, rows, windows = sequencer.num_windows(), "range prepared");
            Ok(sequencer)
        };
        let mut stats = self.stats;
        let mut ranges = self.ranges.into_iter().enumerate();
        let mut next = ranges.next().map(|(r, range)| prepare(r, range)).transpose()?;
        while let Some(current) = next.take() {
            stats.add_sequenced(current.stats());
            let following = ranges.next();
            let (pushed, prepared) = rayon::join(
                || phases.time(Phase::Write, || sink.push(&current)),
                || following.map(|(r, range)| prepare(r, range)).transpose(),
            );
            drop(current);
            pushed?;
            next = prepared?;
        }
        Ok(stats)
    }

    /// The time of each phase: the split's, and the passes' over the ranges so far.
    pub(crate) fn phases(&self) -> Arc<PhaseTimes> {
        self.phases.clone()
    }
}

/// How a range is prepared: with the k-core values found over every range, when there are.
fn in_range(core: Option<&CoreValues>) -> Core<'_> {
    core.map_or(Core::Whole, Core::Values)
}

/// Step 1 of a spilled job: the range bounds, from a pass over the entity columns alone.
fn sample_ranges(job: &SplitJob) -> Result<EntityRanges> {
    let resolved = job.resolved;
    let entity_schema = Arc::new(resolved.input_schema.project(&resolved.entity_idx).map_err(Error::internal)?);
    let mut sample = Sample::new(job);
    let identity = |batch: RecordBatch| Ok(batch);
    job.read_in_waves(&entity_schema, &identity, &mut |wave| {
        (job.cancelled)()?;
        wave.iter().try_for_each(|(_, batch)| sample.add(batch))
    })?;
    sample.ranges(job)
}

/// Every k-th row of the entity columns, by position in the input: the same rows for any
/// thread count.
struct Sample {
    step: u64,
    position: u64,
    batches: Vec<RecordBatch>,
}

impl Sample {
    fn new(job: &SplitJob) -> Self {
        Sample { step: (job.estimated_rows / SAMPLE_ROWS).max(1), position: 0, batches: Vec::new() }
    }

    /// Takes the sampled rows of the next batch of entity columns.
    fn add(&mut self, entities: &RecordBatch) -> Result<()> {
        let step = self.step;
        let first = (step - self.position % step) % step;
        let picked =
            UInt32Array::from_iter_values((first..entities.num_rows() as u64).step_by(step as usize).map(|i| i as u32));
        self.position += entities.num_rows() as u64;
        let picked = take_record_batch(entities, &picked).map_err(Error::internal)?;
        // Rows with a null entity are never sequenced; they do not shape the ranges.
        let picked = match rows_without_nulls(picked.columns())? {
            Some(valid) => arrow::compute::filter_record_batch(&picked, &valid).map_err(Error::internal)?,
            None => picked,
        };
        self.batches.push(picked);
        Ok(())
    }

    /// The range bounds: the sample's quantiles.
    fn ranges(self, job: &SplitJob) -> Result<EntityRanges> {
        let resolved = job.resolved;
        let columns = resolved
            .entity_idx
            .iter()
            .enumerate()
            .map(|(c, &i)| {
                let parts: Vec<_> = self.batches.iter().map(|b| b.column(c).as_ref()).collect();
                if parts.is_empty() {
                    return Ok(arrow::array::new_empty_array(resolved.input_schema.field(i).data_type()));
                }
                concat(&parts).map_err(Error::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        EntityRanges::from_sample(&columns, job.ranges)
    }
}

/// `batch`'s rows per range (input order kept), `None` for ranges without rows.
fn split_batch(batch: &RecordBatch, ranges: &EntityRanges, entity_idx: &[usize]) -> Result<Vec<Option<Piece>>> {
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
            n if n == batch.num_rows() => Some(Piece::Whole),
            _ => Some(Piece::Rows(UInt32Array::from(rows))),
        };
    }
    Ok(pieces)
}

/// A spill folder of this job's own in `dir`: hidden, named so that it is known for seqhouse's,
/// and removed with everything in it when dropped, whether the job succeeded or not.
pub(crate) fn spill_folder(dir: &Path) -> Result<SpillFolder> {
    remove_stale_spill_folders(dir);
    let folder = tempfile::Builder::new()
        .prefix(SPILL_PREFIX)
        .tempdir_in(dir)
        .map_err(|e| spill_error("cannot create a spill folder in", dir, e))?;
    let lock_path = folder.path().join(OWNER_LOCK);
    let owner = File::create(&lock_path).map_err(|e| spill_error("cannot create", &lock_path, e))?;
    match seqhouse_storage::lock::try_lock_exclusive(&owner) {
        // Without file locks, no other run takes this folder for a dead one's either.
        Ok(true) => {}
        Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {}
        Ok(false) => return Err(Error::internal(format!("{} is locked by another run", lock_path.display()))),
        Err(e) => return Err(spill_error("cannot lock", &lock_path, e)),
    }
    Ok(SpillFolder { folder, _owner: owner })
}

/// What spill folders' names start with.
const SPILL_PREFIX: &str = ".seqhouse-spill-";
/// The file in a spill folder its run holds locked while it lives: the kernel releases the
/// lock when the process ends, however it ends, so a folder whose lock can be taken was left
/// by a run that died (a `kill -9`, a crash, a power cut).
const OWNER_LOCK: &str = "owner.lock";

/// A run's spill folder, removed with everything in it when dropped (on success, on failure and
/// when a signal cancels the job), and locked as its run's while it lives.
pub(crate) struct SpillFolder {
    folder: tempfile::TempDir,
    _owner: File,
}

impl SpillFolder {
    pub(crate) fn path(&self) -> &Path {
        self.folder.path()
    }
}

/// Removes the spill folders in `dir` left by runs that died (their owner lock is free), and
/// warns of each; a folder without an owner lock (an earlier version's, or one whose run is
/// creating it this instant) is left alone and reported. Failing to look is no reason to fail
/// the job: spilling then fails with its own error if the disk is full.
fn remove_stale_spill_folders(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(SPILL_PREFIX) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let folder = entry.path();
        let Ok(owner) = File::open(folder.join(OWNER_LOCK)) else {
            // One being created has no lock for an instant; one older than a minute has none.
            let age = entry.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if age.is_some_and(|age| age.as_secs() > 60) {
                tracing::warn!(
                    "the spill folder {} holds no owner lock (an earlier seqhouse's?); remove it if no seqhouse is using it",
                    folder.display()
                );
            }
            continue;
        };
        if !seqhouse_storage::lock::try_lock_exclusive(&owner).unwrap_or(false) {
            continue; // A live run's (or one whose lock cannot be told).
        }
        match std::fs::remove_dir_all(&folder) {
            Ok(()) => tracing::warn!("removed the spill folder {} of a seqhouse run that died", folder.display()),
            Err(e) => tracing::warn!(
                "the spill folder {} of a seqhouse run that died could not be removed ({e}); remove it by hand",
                folder.display()
            ),
        }
    }
}

/// A spill file error, with what the user can do about it (disk space is the usual cause).
pub(crate) fn spill_error(action: &str, path: &Path, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let message = format!(
        "{e} (this job spills to disk because its input exceeds {}; free space there, choose another {} or raise {})",
        Setting::MemoryLimit,
        Setting::SpillDir,
        Setting::MemoryLimit
    );
    Error::Storage {
        action: action.to_string(),
        location: path.display().to_string(),
        message,
        source: Some(Box::new(e)),
    }
}
