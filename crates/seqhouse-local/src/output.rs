//! Writing part files: sequences encoded as Parquet, several row groups in parallel.
//! Publishing them is [`seqhouse_storage::publish::Target`]'s job.

use arrow::array::ArrayRef;
use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::datatypes::FieldRef;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::arrow::{ArrowSchemaConverter, ArrowWriter};
use parquet::basic::{Compression, Encoding, GzipLevel, Type as PhysicalType, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::types::ColumnDescPtr;
use rayon::prelude::*;
use seqhouse_core::kernel::OutputWindows;
use seqhouse_core::manifest::OutputPart;
use seqhouse_core::spec::{FEATURE_SUFFIX, IS_PAD, Mode, SequenceSpec, TARGET_MASK};
use seqhouse_core::{Error, ResolvedSpec, Result, Sequencer, Setting};

use seqhouse_storage::Storage;
use seqhouse_storage::publish::{PartWriter, Target};

use crate::list_chunk::{self, EncodedChunk};

/// Output compression of the part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCompression {
    /// zstd at a level (1..=22); the default is level 3.
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// gzip at a level (0..=9).
    Gzip(u32),
    /// LZ4 (raw).
    Lz4,
    /// No compression.
    None,
}

impl Default for OutputCompression {
    fn default() -> Self {
        OutputCompression::Zstd(3)
    }
}

impl std::str::FromStr for OutputCompression {
    type Err = Error;
    /// `zstd`, `zstd:LEVEL`, `snappy`, `gzip`, `gzip:LEVEL`, `lz4`, `none`.
    fn from_str(text: &str) -> Result<Self> {
        let (codec, level) = match text.split_once(':') {
            Some((codec, level)) => (codec, Some(level)),
            None => (text, None),
        };
        let level_of = |default: i64| -> Result<i64> {
            level.map_or(Ok(default), |l| {
                l.parse().map_err(|_| Error::setting(Setting::Compression, format!("level '{l}' is not a number")))
            })
        };
        let parsed = match (codec.to_ascii_lowercase().as_str(), level) {
            ("zstd", _) => OutputCompression::Zstd(level_of(3)? as i32),
            ("gzip", _) => OutputCompression::Gzip(level_of(6)? as u32),
            ("snappy", None) => OutputCompression::Snappy,
            ("lz4", None) => OutputCompression::Lz4,
            ("none" | "uncompressed", None) => OutputCompression::None,
            _ => {
                return Err(Error::setting(
                    Setting::Compression,
                    format!("'{text}' is not one of zstd[:LEVEL], snappy, gzip[:LEVEL], lz4, none"),
                ));
            }
        };
        parsed.to_parquet()?;
        Ok(parsed)
    }
}

/// As the compression setting spells it, so that `FromStr` reads it back.
impl std::fmt::Display for OutputCompression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutputCompression::Zstd(level) => write!(f, "zstd:{level}"),
            OutputCompression::Gzip(level) => write!(f, "gzip:{level}"),
            OutputCompression::Snappy => f.write_str("snappy"),
            OutputCompression::Lz4 => f.write_str("lz4"),
            OutputCompression::None => f.write_str("none"),
        }
    }
}

impl OutputCompression {
    fn to_parquet(self) -> Result<Compression> {
        let bad_level = |e: parquet::errors::ParquetError| {
            Error::setting_message(Setting::Compression, format!("{}: {e}", Setting::Compression))
        };
        Ok(match self {
            OutputCompression::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).map_err(bad_level)?),
            OutputCompression::Gzip(level) => Compression::GZIP(GzipLevel::try_new(level).map_err(bad_level)?),
            OutputCompression::Snappy => Compression::SNAPPY,
            OutputCompression::Lz4 => Compression::LZ4_RAW,
            OutputCompression::None => Compression::UNCOMPRESSED,
        })
    }
}

/// How windows are laid out in part files.
#[derive(Debug, Clone, Copy)]
pub struct PartLayout {
    /// Windows per Parquet row group.
    pub rows_per_row_group: usize,
    /// Windows per part file.
    pub rows_per_part: usize,
}

impl PartLayout {
    /// About a million values per column per row group (a good size for readers and for memory),
    /// eight row groups per part unless `rows_per_part` is given.
    pub fn for_length(sequence_length: usize, rows_per_part: Option<usize>) -> Self {
        let per_group = (1 << 20) / sequence_length.max(1);
        let rows_per_row_group = per_group.clamp(1, 64 * 1024);
        let rows_per_part = rows_per_part.unwrap_or(rows_per_row_group * 8).max(1);
        PartLayout { rows_per_row_group: rows_per_row_group.min(rows_per_part), rows_per_part }
    }
}

/// The sequence columns of the features that are also order-by columns.
///
/// They are written without a dictionary: timestamps and tie-breakers are nearly unique, so
/// their dictionary fills up and falls back after interning a few hundred thousand of them.
/// Integer ones are DELTA_BINARY_PACKED instead (see `PartSink::new`). `is_pad_sequence` has no
/// dictionary either: two values in long runs, which zstd stores about as compactly as a
/// dictionary's run-length codes, without interning every value.
///
/// Measured on the 10M-row benchmark (`timestamp` is an order-by feature): 3% less CPU time and
/// 4.5% smaller output than with dictionaries everywhere.
fn order_feature_columns(resolved: &ResolvedSpec) -> Vec<String> {
    let spec = &resolved.spec;
    let order_features = spec.features.iter().filter(|f| spec.order_by.contains(&f.name));
    order_features.map(|f| format!("{}{FEATURE_SUFFIX}", f.name)).collect()
}

/// Whether an event can fall in more than one window: sliding windows with a stride below N,
/// and prefix windows (N > 1).
///
/// Each window then repeats most of the one before it. zstd finds those repeats in PLAIN values,
/// but not in DELTA_BINARY_PACKED ones: the encoder's blocks of 128 values start at a different
/// place in every window of N values, so the same events pack to different bytes. Measured on
/// the 1M-row benchmark log in prefix mode (N = 100): the timestamp column took 333 MB
/// DELTA_BINARY_PACKED against 6.5 MB PLAIN, and the job 3.7 s against 1.7 s.
fn windows_overlap(spec: &SequenceSpec) -> bool {
    let n = spec.sequence_length;
    match spec.mode {
        Mode::Sliding => spec.effective_stride() < n,
        Mode::Prefix => n > 1,
        Mode::Chunk | Mode::Last => false,
    }
}

/// Row groups built and encoded at once: enough to keep every core busy, few enough that their
/// encoded bytes stay small next to the job (output much larger than the input streams through).
const ROW_GROUPS_PER_WAVE: usize = 16;

/// Streams windows into part files, in output order, from one [`Sequencer`] or from several in
/// turn (the entity ranges of a split job).
///
/// Part and row-group boundaries follow from [`PartLayout`] and the windows' position in the
/// whole output only, never from how the windows were handed over or from the thread count, so
/// a job written in one piece and the same job written partition by partition give the same
/// bytes. Complete row groups are built and encoded in parallel, in waves, and appended in
/// order; the windows of a row group that is not yet complete wait as one built batch.
pub struct PartSink<'a> {
    storage: &'a Storage,
    target: &'a Target,
    layout: PartLayout,
    props: WriterProperties,
    schema: SchemaRef,
    /// Hands out column writers; it depends only on the schema and the properties.
    factory: ArrowRowGroupWriterFactory,
    /// Per output column: its leaf, when [`list_chunk`] encodes it rather than the crate's writer.
    direct: Vec<Option<ColumnDescPtr>>,
    on_rows_done: &'a (dyn Fn(u64) + Sync),
    /// Fails once the job is cancelled; checked before each wave.
    cancelled: &'a (dyn Fn() -> Result<()> + Sync),
    /// Windows handed over so far.
    received: usize,
    /// Windows encoded into row groups so far.
    encoded: usize,
    /// Built windows `[encoded, received)`, waiting for the rest of their row group.
    pending: Vec<RecordBatch>,
    open: Option<OpenPart>,
    parts: Vec<OutputPart>,
}

struct OpenPart {
    index: usize,
    rows: usize,
    row_groups: usize,
    file: SerializedFileWriter<PartWriter>,
}

/// One sink per output of the job, in order: each gets its split's windows.
pub(crate) struct PartSinks<'a>(pub(crate) Vec<PartSink<'a>>);

impl crate::ranges::WindowSink for PartSinks<'_> {
    fn push(&mut self, sequencer: &Sequencer) -> Result<()> {
        for (output, sink) in self.0.iter_mut().enumerate() {
            sink.push(sequencer.output(output))?;
        }
        Ok(())
    }
}

impl<'a> PartSink<'a> {
    /// A sink writing parts of output `output` (of [`ResolvedSpec::output_schemas`]) into
    /// `target`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        storage: &'a Storage,
        target: &'a Target,
        resolved: &ResolvedSpec,
        output: usize,
        layout: PartLayout,
        compression: OutputCompression,
        on_rows_done: &'a (dyn Fn(u64) + Sync),
        cancelled: &'a (dyn Fn() -> Result<()> + Sync),
    ) -> Result<Self> {
        let schema = resolved.output_schemas[output].clone();
        let mut props = WriterProperties::builder()
            .set_compression(compression.to_parquet()?)
            .set_max_row_group_row_count(Some(layout.rows_per_row_group));
        let ordered = order_feature_columns(resolved);
        let leaves = ArrowSchemaConverter::new()
            .convert(&schema)
            .map_err(|e| Error::internal(format!("cannot set up the Parquet writer: {e}")))?;
        for leaf in leaves.columns() {
            let root = &leaf.path().parts()[0];
            if ordered.contains(root) || root == IS_PAD || root == TARGET_MASK {
                props = props.set_column_dictionary_enabled(leaf.path().clone(), false);
            }
            // Integer order-by features run up within a window, which DELTA_BINARY_PACKED stores
            // in under half the bytes of PLAIN. At 10M rows zstd then spends 40% less time on
            // the timestamp column (which took half of all compression time), for output 8%
            // larger: 6% less CPU for the whole job. Not when windows share events: see
            // `windows_overlap`.
            let integer = matches!(leaf.physical_type(), PhysicalType::INT32 | PhysicalType::INT64);
            if integer && ordered.contains(root) && !windows_overlap(&resolved.spec) {
                props = props.set_column_encoding(leaf.path().clone(), Encoding::DELTA_BINARY_PACKED);
            }
        }
        let props = props.build();
        let direct = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(root, field)| {
                let mut own = (0..leaves.num_columns()).filter(|&leaf| leaves.get_column_root_idx(leaf) == root);
                match (own.next(), own.next()) {
                    (Some(leaf), None) if list_chunk::covers(field.data_type(), &leaves.column(leaf), &props) => {
                        Some(leaves.column(leaf))
                    }
                    _ => None,
                }
            })
            .collect();
        let (_, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
            .and_then(|w| w.into_serialized_writer())
            .map_err(|e| Error::internal(format!("cannot set up the Parquet writer: {e}")))?;
        Ok(PartSink {
            storage,
            target,
            layout,
            props,
            schema,
            factory,
            direct,
            on_rows_done,
            cancelled,
            received: 0,
            encoded: 0,
            pending: Vec::new(),
            open: None,
            parts: Vec::new(),
        })
    }

    /// The end of the row group that starts at window `at`, were the output endless.
    fn row_group_end(&self, at: usize) -> usize {
        let part_start = at / self.layout.rows_per_part * self.layout.rows_per_part;
        let in_part = (at - part_start) / self.layout.rows_per_row_group;
        (part_start + (in_part + 1) * self.layout.rows_per_row_group).min(part_start + self.layout.rows_per_part)
    }

    /// Appends `windows` (one output's, of one sequencer) to the output.
    pub fn push(&mut self, windows: OutputWindows<'_>) -> Result<()> {
        let base = self.received;
        let count = windows.len();
        self.received += count;
        let mut complete = Vec::new();
        let mut at = self.encoded;
        loop {
            let end = self.row_group_end(at);
            if end > self.received {
                break;
            }
            complete.push((at, end));
            at = end;
        }
        let mut pending = std::mem::take(&mut self.pending);
        // The windows of a row group still open: pieces of each push, concatenated once, when
        // the group completes (small outputs, such as a split's, fill a group over many pushes).
        if at < base {
            if count > 0 {
                pending.push(windows.build(0..count)?);
            }
            self.pending = pending;
            return Ok(());
        }
        // Windows `from..upto` (positions in the whole output), with the pending windows of
        // earlier pushes in front when the row group began there.
        let mut build = |from: usize, upto: usize| -> Result<RecordBatch> {
            let own = windows.build(from.max(base) - base..upto - base)?;
            if from >= base {
                return Ok(own);
            }
            pending.push(own);
            concat_batches(&self.schema, &std::mem::take(&mut pending)).map_err(Error::internal)
        };
        let mut head = match complete.first() {
            Some(&(from, upto)) if from < base => Some(build(from, upto)?),
            _ => None,
        };
        let leftover = if at < self.received { Some(build(at, self.received)?) } else { None };
        for wave in complete.chunks(ROW_GROUPS_PER_WAVE) {
            (self.cancelled)()?;
            let head = head.take();
            let encoded = wave
                .par_iter()
                .enumerate()
                .map(|(i, &(from, upto))| {
                    let batch = match (i, &head) {
                        (0, Some(batch)) => batch.clone(),
                        _ => windows.build(from - base..upto - base)?,
                    };
                    self.encode(from, &batch)
                })
                .collect::<Result<Vec<_>>>()?;
            for (&(from, upto), chunks) in wave.iter().zip(encoded) {
                self.append(from, upto, chunks)?;
            }
        }
        self.pending = leftover.into_iter().collect();
        Ok(())
    }

    /// Encodes the windows that start at `from` as the columns of one row group.
    fn encode(&self, from: usize, batch: &RecordBatch) -> Result<Vec<EncodedColumn>> {
        let encode_err = self.part_error("cannot encode", self.part_of(from));
        let in_part = (from - self.part_of(from) * self.layout.rows_per_part) / self.layout.rows_per_row_group;
        let mut writers = self.factory.create_column_writers(in_part).map_err(&encode_err)?.into_iter();
        let mut jobs = Vec::new();
        for ((field, column), direct) in self.schema.fields().iter().zip(batch.columns()).zip(&self.direct) {
            match direct {
                Some(leaf) => jobs.push(ColumnJob::Direct {
                    fallback: writers.next().expect("a writer per leaf"),
                    field: field.clone(),
                    column: column.clone(),
                    leaf: leaf.clone(),
                }),
                None => {
                    for leaf in compute_leaves(field, column).map_err(&encode_err)? {
                        jobs.push(ColumnJob::Crate(writers.next().expect("a writer per leaf"), leaf));
                    }
                }
            }
        }
        let chunks = jobs
            .into_par_iter()
            .map(|job| job.run(&self.props))
            .collect::<parquet::errors::Result<Vec<_>>>()
            .map_err(encode_err)?;
        (self.on_rows_done)(batch.num_rows() as u64);
        Ok(chunks)
    }

    /// The index of the part holding window `at`.
    fn part_of(&self, at: usize) -> usize {
        at / self.layout.rows_per_part
    }

    /// Turns a Parquet error on part `index` into one naming the part's location and file.
    fn part_error(
        &self,
        action: &'static str,
        index: usize,
    ) -> impl Fn(parquet::errors::ParquetError) -> Error + use<> {
        let shown = format!("{}/{}", self.target.location().shown, self.target.part_name(index));
        move |e| Error::storage(action, &shown, e)
    }

    /// Appends an encoded row group, finishing the previous part when this one starts a new part.
    fn append(&mut self, from: usize, upto: usize, chunks: Vec<EncodedColumn>) -> Result<()> {
        let index = self.part_of(from);
        if self.open.as_ref().is_some_and(|open| open.index != index) {
            self.finish_part()?;
        }
        // Row groups go to the part file as they are appended: a failure here is a write.
        let write_err = self.part_error("cannot write", index);
        if self.open.is_none() {
            self.open = Some(self.start_part(index)?);
        }
        let open = self.open.as_mut().expect("opened above");
        let mut row_group = open.file.next_row_group().map_err(&write_err)?;
        for chunk in chunks {
            chunk.append_to(&mut row_group).map_err(&write_err)?;
        }
        row_group.close().map_err(&write_err)?;
        open.rows += upto - from;
        open.row_groups += 1;
        self.encoded = upto;
        Ok(())
    }

    fn start_part(&self, index: usize) -> Result<OpenPart> {
        let name = self.target.part_name(index);
        let writer = self.target.open_part(&name)?;
        // ArrowWriter writes the file header and embeds the Arrow schema; row groups come from
        // the column writers above.
        let (file, _) = ArrowWriter::try_new(writer, self.schema.clone(), Some(self.props.clone()))
            .and_then(|w| w.into_serialized_writer())
            .map_err(self.part_error("cannot write", index))?;
        Ok(OpenPart { index, rows: 0, row_groups: 0, file })
    }

    fn finish_part(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else { return Ok(()) };
        let name = self.target.part_name(open.index);
        let writer = open.file.into_inner().map_err(self.part_error("cannot write", open.index))?;
        let size = self.target.finish_part(self.storage, writer)?;
        tracing::trace!(part = %name, row_groups = open.row_groups, "part written");
        self.parts.push(OutputPart { path: name, rows: open.rows as u64, bytes: size });
        Ok(())
    }

    /// Encodes the last row group and finishes the last part. An output without windows still
    /// gets one empty part, so the folder carries its schema.
    pub fn finish(mut self) -> Result<Vec<OutputPart>> {
        if self.encoded < self.received {
            let pending = std::mem::take(&mut self.pending);
            let batch = concat_batches(&self.schema, &pending).map_err(Error::internal)?;
            let (from, upto) = (self.encoded, self.received);
            let chunks = self.encode(from, &batch)?;
            self.append(from, upto, chunks)?;
        }
        if self.received == 0 {
            self.open = Some(self.start_part(0)?);
        }
        self.finish_part()?;
        Ok(self.parts)
    }
}

/// Encoding one column of a row group.
enum ColumnJob {
    /// A leaf the crate's writer encodes.
    Crate(ArrowColumnWriter, ArrowLeafColumn),
    /// A fixed-size list column for [`list_chunk`]; the crate's writer takes it when
    /// `list_chunk` declines this chunk.
    Direct { fallback: ArrowColumnWriter, field: FieldRef, column: ArrayRef, leaf: ColumnDescPtr },
}

impl ColumnJob {
    fn run(self, props: &WriterProperties) -> parquet::errors::Result<EncodedColumn> {
        let (mut writer, leaves) = match self {
            ColumnJob::Crate(writer, leaf) => (writer, vec![leaf]),
            ColumnJob::Direct { fallback, field, column, leaf } => match list_chunk::encode(&column, &leaf, props)? {
                Some(chunk) => return Ok(EncodedColumn::Direct(chunk)),
                None => (fallback, compute_leaves(&field, &column)?),
            },
        };
        for leaf in &leaves {
            writer.write(leaf)?;
        }
        Ok(EncodedColumn::Crate(writer.close()?))
    }
}

/// One encoded column chunk of a row group, by whichever encoder wrote it.
enum EncodedColumn {
    Crate(ArrowColumnChunk),
    Direct(EncodedChunk),
}

impl EncodedColumn {
    fn append_to<W: std::io::Write + Send>(
        self,
        row_group: &mut SerializedRowGroupWriter<'_, W>,
    ) -> parquet::errors::Result<()> {
        match self {
            EncodedColumn::Crate(chunk) => chunk.append_to_row_group(row_group),
            EncodedColumn::Direct(chunk) => row_group.append_column(&chunk.bytes, chunk.close),
        }
    }
}
