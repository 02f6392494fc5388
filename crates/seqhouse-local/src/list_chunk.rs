//! Fixed-size list columns of numbers, encoded straight into Parquet column chunks.
//!
//! Why: the sequence columns are most of the output, and the `parquet` crate's generic column
//! writer spent more than half of the 10M-row benchmark's encoding time on them. It hashes every
//! value into its dictionary interner, derives repetition and definition levels value by value
//! from the Arrow list structure, and checks page limits per mini-batch. The shape of these
//! columns is fixed (every row is a list of exactly N values), so here:
//! - the levels are written as run-length runs straight from that shape;
//! - the dictionary of an integer column is a direct lookup table over its value range (a hash
//!   map when the range is wide, and for floats, keyed by their bits as the crate's is);
//! - pages are cut at row boundaries to the writer's page size and row limits, and each page's
//!   indices are as wide as the dictionary entries seen up to its end (as the crate writes them);
//! - without a dictionary, values are PLAIN, or DELTA_BINARY_PACKED where the writer's
//!   properties set that for the column (integers only; packed by the crate's encoder);
//! - statistics follow the crate's rules: signed order for integers; IEEE 754 total order for
//!   floats, NaN skipped and counted. A chunk with a page that has no value besides nulls and NaN
//!   is left to the crate, which has its own conventions for such pages.
//!
//! Everything else is the crate's: the RLE/bit-packing encoder, the codecs, page headers, column
//! metadata, statistics and page indexes. The file is the one the crate's writer would produce
//! up to page boundaries and dictionary order (both free per the format): same encodings (PLAIN
//! dictionary page, RLE_DICTIONARY, PLAIN or DELTA_BINARY_PACKED data pages v1, RLE levels; where
//! the dictionary outgrows its limit, the whole chunk uses the fallback), chunk statistics, level
//! histograms, column and offset indexes. Columns this does not cover return `None` and go
//! through the crate's writer.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type};
use bytes::Bytes;
use parquet::basic::{BoundaryOrder, Encoding, EncodingMask, PageType, Type as PhysicalType};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::data_type as parquet_type;
use parquet::errors::Result;
use parquet::file::metadata::{
    ColumnChunkMetaData, ColumnIndexBuilder, LevelHistogram, OffsetIndexBuilder, PageEncodingStats,
};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::page_index::offset_index::OffsetIndexMetaData;
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::statistics::{Statistics, ValueStatistics};
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, ColumnDescriptor, ColumnPath};
use seqhouse_core::MulHasher;

use crate::parquet_internals::{
    Codec, CodecOptionsBuilder, DeltaBinaryPackedEncoderOptions, DeltaBitPackEncoder, Encoder, RleEncoder, create_codec,
};

/// One encoded column chunk, ready for `SerializedRowGroupWriter::append_column`.
pub(crate) struct EncodedChunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// Whether a column of `data_type` whose one leaf is `descr` is encoded here under `props`:
/// a fixed-size list of 8- to 64-bit signed integers or of 32- or 64-bit floats, written as data
/// pages v1 without bloom filters, in the default encoding or DELTA_BINARY_PACKED (integers).
/// Anything else (strings, booleans, unsigned, decimal and temporal types, other encodings) is
/// the crate's.
pub(crate) fn covers(data_type: &DataType, descr: &ColumnDescriptor, props: &WriterProperties) -> bool {
    let DataType::FixedSizeList(item, length) = data_type else { return false };
    let physical = match item.data_type() {
        DataType::Int8 | DataType::Int16 | DataType::Int32 => PhysicalType::INT32,
        DataType::Int64 => PhysicalType::INT64,
        DataType::Float32 => PhysicalType::FLOAT,
        DataType::Float64 => PhysicalType::DOUBLE,
        _ => return false,
    };
    *length > 0
        && descr.physical_type() == physical
        && descr.max_rep_level() == 1
        && descr.max_def_level() == 1 + i16::from(item.is_nullable())
        && props.writer_version() == WriterVersion::PARQUET_1_0
        && props.bloom_filter_properties(descr.path()).is_none()
        && match props.encoding(descr.path()) {
            None | Some(Encoding::PLAIN) => true,
            Some(Encoding::DELTA_BINARY_PACKED) => matches!(physical, PhysicalType::INT32 | PhysicalType::INT64),
            Some(_) => false,
        }
}

/// Encodes `column` (a fixed-size list array of a type [`covers`] accepts) as one column chunk.
/// `None` when this chunk is not for here after all: null lists, or a page without a value
/// besides nulls and NaN (the crate writes such chunks, which are rare, with its own conventions
/// for empty statistics).
pub(crate) fn encode(
    column: &ArrayRef,
    descr: &ColumnDescPtr,
    props: &WriterProperties,
) -> Result<Option<EncodedChunk>> {
    let list = column.as_fixed_size_list();
    if list.is_empty() || list.null_count() > 0 {
        return Ok(None);
    }
    let length = list.value_length() as usize;
    let slots = list.values().slice(list.value_offset_at(0), list.len() * length);
    let shape = Shape { rows: list.len(), length, nulls: slots.logical_nulls().filter(|n| n.null_count() > 0) };
    // Int8 and Int16 are stored as INT32, so they are widened; the other types are encoded
    // from the Arrow buffer as it is.
    macro_rules! widened {
        ($arrow:ty) => {{
            let values = slots.as_primitive::<$arrow>().values().iter().map(|&v| i32::from(v)).collect();
            ChunkEncoder::new(descr, props, shape, Cow::Owned(values)).encode()
        }};
    }
    macro_rules! as_is {
        ($arrow:ty) => {
            ChunkEncoder::new(descr, props, shape, Cow::Borrowed(&slots.as_primitive::<$arrow>().values()[..])).encode()
        };
    }
    match slots.data_type() {
        DataType::Int8 => widened!(Int8Type),
        DataType::Int16 => widened!(Int16Type),
        DataType::Int32 => as_is!(Int32Type),
        DataType::Int64 => as_is!(Int64Type),
        DataType::Float32 => as_is!(Float32Type),
        DataType::Float64 => as_is!(Float64Type),
        _ => Ok(None),
    }
}

/// The physical values encoded here: Parquet INT32, INT64, FLOAT and DOUBLE.
trait Physical: Copy + Send + Sync + 'static {
    /// The crate's type for these values, for its encoders.
    type Parquet: parquet_type::DataType<T = Self>;
    const WIDTH: usize;
    const FLOAT: bool;
    /// Equal for exactly the values the crate's dictionary treats as one (equal bytes).
    fn dictionary_key(self) -> i64;
    /// A key in the column's sort order: signed for integers, IEEE 754 total order for floats,
    /// as the crate compares them. `None` for NaN, which statistics skip (and count).
    fn order_key(self) -> Option<i64>;
    fn from_order_key(key: i64) -> Self;
    fn put_plain(self, out: &mut Vec<u8>);
    fn statistics(min: Self, max: Self, nulls: u64, nans: Option<u64>, signed: bool) -> Statistics;
}

macro_rules! physical {
    (int $($native:ty as $parquet:ty),*) => {$(
        impl Physical for $native {
            type Parquet = $parquet;
            const WIDTH: usize = std::mem::size_of::<$native>();
            const FLOAT: bool = false;
            fn dictionary_key(self) -> i64 {
                i64::from(self)
            }
            fn order_key(self) -> Option<i64> {
                Some(i64::from(self))
            }
            fn from_order_key(key: i64) -> Self {
                key as $native
            }
            physical!(common $native);
        }
    )*};
    (float $($native:ty as $bits:ty, $parquet:ty),*) => {$(
        impl Physical for $native {
            type Parquet = $parquet;
            const WIDTH: usize = std::mem::size_of::<$native>();
            const FLOAT: bool = true;
            fn dictionary_key(self) -> i64 {
                i64::from(self.to_bits() as $bits)
            }
            fn order_key(self) -> Option<i64> {
                // The bits of `total_cmp`: negative values' magnitude bits flipped.
                let bits = self.to_bits() as $bits;
                (!self.is_nan()).then(|| i64::from(bits ^ ((bits >> (<$bits>::BITS - 1)) as <$native as FloatBits>::Unsigned >> 1) as $bits))
            }
            fn from_order_key(key: i64) -> Self {
                let bits = key as $bits;
                <$native>::from_bits((bits ^ ((bits >> (<$bits>::BITS - 1)) as <$native as FloatBits>::Unsigned >> 1) as $bits) as _)
            }
            physical!(common $native);
        }
    )*};
    (common $native:ty) => {
        fn put_plain(self, out: &mut Vec<u8>) {
            out.extend_from_slice(&self.to_le_bytes());
        }
        fn statistics(min: Self, max: Self, nulls: u64, nans: Option<u64>, signed: bool) -> Statistics {
            // Signed orders also write the deprecated min/max fields, as the crate does.
            ValueStatistics::new(Some(min), Some(max), None, Some(nulls), false)
                .with_nan_count(nans)
                .with_backwards_compatible_min_max(signed)
                .into()
        }
    };
}

/// The unsigned integer of a float's width, for the total-order bit flip.
trait FloatBits {
    type Unsigned;
}
impl FloatBits for f32 {
    type Unsigned = u32;
}
impl FloatBits for f64 {
    type Unsigned = u64;
}

physical!(int i32 as parquet_type::Int32Type, i64 as parquet_type::Int64Type);
physical!(float f32 as i32, parquet_type::FloatType, f64 as i64, parquet_type::DoubleType);

/// The smallest and largest non-NaN order key of `values` and how many NaNs it holds; the
/// smallest is above the largest when it holds no other value.
fn scan_keys<P: Physical>(values: &[P]) -> (i64, i64, u64) {
    let (mut low, mut high, mut nans) = (i64::MAX, i64::MIN, 0u64);
    for value in values {
        match value.order_key() {
            Some(key) => {
                low = low.min(key);
                high = high.max(key);
            }
            None => nans += 1,
        }
    }
    (low, high, nans)
}

/// Values per block of [`Bounds`].
const BOUNDS_BLOCK: usize = 4096;

/// The bounds of a chunk's values block by block, so that the chunk's bounds and each page's
/// take one pass over the values, not two.
struct Bounds<'v, P> {
    values: &'v [P],
    blocks: Vec<(i64, i64, u64)>,
}

impl<'v, P: Physical> Bounds<'v, P> {
    fn new(values: &'v [P]) -> Self {
        Bounds { values, blocks: values.chunks(BOUNDS_BLOCK).map(scan_keys).collect() }
    }

    /// The smallest and largest non-NaN value of `values[range]` in the column's sort order, and
    /// how many NaNs it holds; `None` when it holds no other value.
    fn of(&self, range: std::ops::Range<usize>) -> Option<(P, P, u64)> {
        let (first_block, end_block) = (range.start.div_ceil(BOUNDS_BLOCK), range.end / BOUNDS_BLOCK);
        let (low, high, nans) = if end_block <= first_block {
            scan_keys(&self.values[range])
        } else {
            // The whole blocks inside the range, and the values before and after them.
            let head = scan_keys(&self.values[range.start..first_block * BOUNDS_BLOCK]);
            let tail = scan_keys(&self.values[end_block * BOUNDS_BLOCK..range.end]);
            let parts = self.blocks[first_block..end_block].iter().chain([&head, &tail]);
            parts.fold((i64::MAX, i64::MIN, 0), |(low, high, nans), part| {
                (low.min(part.0), high.max(part.1), nans + part.2)
            })
        };
        (low <= high).then(|| (P::from_order_key(low), P::from_order_key(high), nans))
    }
}

/// Values per DELTA_BINARY_PACKED block, in four miniblocks.
const DELTA_BLOCK: usize = 128;

/// About how many bytes `values` take as DELTA_BINARY_PACKED (blocks of [`DELTA_BLOCK`] values in
/// four miniblocks, each as wide as its largest delta above the block's smallest): to size
/// pages before encoding them.
fn delta_packed_size<P: Physical>(values: &[P]) -> usize {
    let miniblock = DELTA_BLOCK / 4;
    let delta = |pair: &[P]| pair[1].dictionary_key().wrapping_sub(pair[0].dictionary_key());
    let deltas = values.len().saturating_sub(1);
    let mut bytes = 16;
    // Each block's deltas are read from `values` in place (a block of k deltas spans k + 1
    // values), rather than collected: the chunk may hold a million values.
    for block_start in (0..deltas).step_by(DELTA_BLOCK) {
        let block = &values[block_start..=(block_start + DELTA_BLOCK).min(deltas)];
        let min = block.windows(2).map(delta).min().unwrap_or(0);
        bytes += 10 + 4;
        for mini_start in (0..block.len() - 1).step_by(miniblock) {
            let mini = &block[mini_start..=(mini_start + miniblock).min(block.len() - 1)];
            let widest = mini.windows(2).map(|pair| delta(pair).wrapping_sub(min) as u64).max().unwrap_or(0);
            bytes += miniblock * usize::from(bits_for(widest)) / 8;
        }
    }
    bytes
}

/// The list shape of a chunk: `rows` lists of `length` slots; `nulls` marks null items, if any.
struct Shape {
    rows: usize,
    length: usize,
    nulls: Option<NullBuffer>,
}

impl Shape {
    fn null_count(&self, slots: std::ops::Range<usize>) -> usize {
        self.nulls.as_ref().map_or(0, |n| slots.len() - n.inner().slice(slots.start, slots.len()).count_set_bits())
    }
}

/// A dictionary in first-seen order and each non-null value's index into it.
struct Dictionary<P> {
    entries: Vec<P>,
    indices: Vec<u64>,
    /// Where each entry was first seen (ascending): how many entries the values before a
    /// position use, without scanning their indices.
    first_seen: Vec<usize>,
}

impl<P: Physical> Dictionary<P> {
    /// The dictionary of `values`, or `None` once its plain size would pass `limit` bytes (the
    /// chunk is then written plain, as the crate falls back to plain at that size too).
    fn build(values: &[P], min: P, max: P, limit: usize) -> Option<Self> {
        let max_entries = (limit / P::WIDTH).max(1);
        let (mut entries, mut first_seen) = (Vec::new(), Vec::new());
        let mut indices = Vec::with_capacity(values.len());
        let span = max.dictionary_key().abs_diff(min.dictionary_key());
        // For integers, a lookup table over [min, max] when it is no larger than the values
        // themselves (or small): one load per value instead of a hash probe.
        if !P::FLOAT && span < (values.len() as u64).max(1 << 16) {
            let mut slot_of = vec![u32::MAX; span as usize + 1];
            let base = min.dictionary_key();
            for (at, &value) in values.iter().enumerate() {
                let slot = &mut slot_of[value.dictionary_key().abs_diff(base) as usize];
                if *slot == u32::MAX {
                    if entries.len() == max_entries {
                        return None;
                    }
                    *slot = entries.len() as u32;
                    entries.push(value);
                    first_seen.push(at);
                }
                indices.push(u64::from(*slot));
            }
        } else {
            let mut slot_of: HashMap<i64, u32, BuildHasherDefault<MulHasher>> = HashMap::default();
            for (at, &value) in values.iter().enumerate() {
                let next = entries.len() as u32;
                let slot = *slot_of.entry(value.dictionary_key()).or_insert(next);
                if slot == next {
                    if entries.len() == max_entries {
                        return None;
                    }
                    entries.push(value);
                    first_seen.push(at);
                }
                indices.push(u64::from(slot));
            }
        }
        Some(Dictionary { entries, indices, first_seen })
    }

    /// Bits per index for the whole dictionary.
    fn bit_width(&self) -> u8 {
        bits_for(self.entries.len().saturating_sub(1) as u64)
    }
}

fn bits_for(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// Appends an RLE run of `count` copies of `value` (a level or index `bit_width` bits wide).
fn put_run(out: &mut Vec<u8>, count: usize, value: u64, bit_width: u8) {
    let mut header = (count as u64) << 1;
    while header >= 0x80 {
        out.push(header as u8 | 0x80);
        header >>= 7;
    }
    out.push(header as u8);
    out.extend_from_slice(&value.to_le_bytes()[..usize::from(bit_width).div_ceil(8)]);
}

/// Feeds runs of levels to an [`RleEncoder`] in blocks, through `put_batch` (which skips the
/// per-value bookkeeping of `put` for whole groups and long runs, and writes the same bytes).
struct LevelRuns {
    encoder: RleEncoder,
    block: Vec<u64>,
}

impl LevelRuns {
    const BLOCK: usize = 4096;

    fn new(encoder: RleEncoder) -> Self {
        LevelRuns { encoder, block: Vec::with_capacity(Self::BLOCK) }
    }

    /// Appends `count` copies of `level`.
    fn put(&mut self, level: u64, mut count: usize) {
        while count > 0 {
            let taken = (Self::BLOCK - self.block.len()).min(count);
            self.block.extend(std::iter::repeat_n(level, taken));
            count -= taken;
            if self.block.len() == Self::BLOCK {
                self.encoder.put_batch(&self.block);
                self.block.clear();
            }
        }
    }

    fn finish(mut self) -> Vec<u8> {
        self.encoder.put_batch(&self.block);
        self.encoder.consume()
    }
}

/// Appends `levels` as a v1 level block: its byte length, then the RLE/bit-packed data.
fn put_levels(out: &mut Vec<u8>, levels: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    levels(out);
    let length = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&length.to_le_bytes());
}

struct ChunkEncoder<'a, P: Physical> {
    descr: &'a ColumnDescPtr,
    props: &'a WriterProperties,
    shape: Shape,
    /// Every slot's value, nulls included (their values are arbitrary).
    slots: Cow<'a, [P]>,
}

impl<'a, P: Physical> ChunkEncoder<'a, P> {
    fn new(descr: &'a ColumnDescPtr, props: &'a WriterProperties, shape: Shape, slots: Cow<'a, [P]>) -> Self {
        ChunkEncoder { descr, props, shape, slots }
    }

    /// The chunk: its dictionary page, then its data pages cut at row boundaries, then the
    /// column metadata and page indexes that describe them.
    fn encode(self) -> Result<Option<EncodedChunk>> {
        let path = self.descr.path();
        let valid = self.valid_values();
        let bounds = Bounds::new(&valid);
        let Some((min, max, nans)) = bounds.of(0..valid.len()) else { return Ok(None) };
        let dictionary = if self.props.dictionary_enabled(path) {
            Dictionary::build(&valid, min, max, self.props.dictionary_page_size_limit())
        } else {
            None
        };

        let mut sink = TrackedWrite::new(Vec::new());
        let mut pages = Pages::new(&mut sink, self.props, path)?;
        if let Some(dictionary) = &dictionary {
            pages.put_dictionary(dictionary, self.props.dictionary_page_encoding())?;
        }
        let mut values = Values::new(dictionary, self.props, path, &valid)?;
        pages.summary.encodings.push(values.encoding);
        // Rows per page: the writer's page size limit over the encoded size of a row, and its
        // row count limit.
        let row_bytes = values.row_bytes(&valid, self.shape.length);
        let rows_per_page = (self.props.data_page_size_limit() / row_bytes.max(1))
            .clamp(1, self.props.data_page_row_count_limit().max(1));

        let mut index = PageIndexes::new(self.descr, self.props);
        let length = self.shape.length;
        let (mut row, mut valid_at) = (0, 0);
        while row < self.shape.rows {
            let rows = rows_per_page.min(self.shape.rows - row);
            let slots = row * length..(row + rows) * length;
            let nulls = self.shape.null_count(slots.clone());
            let page_valid = valid_at..valid_at + slots.len() - nulls;
            row += rows;
            valid_at = page_valid.end;
            let mut buffer = Vec::with_capacity(rows * (row_bytes + 8) + 16);
            self.put_levels(&mut buffer, rows, slots.clone(), nulls);
            values.put_page(&mut buffer, &valid[page_valid.clone()], valid_at)?;
            let (offset, compressed_size) = pages.put_data(buffer, slots.len(), values.encoding)?;
            let page = PageSummary { rows, slots: slots.len(), nulls, offset, compressed_size };
            if !index.add(&page, bounds.of(page_valid))? {
                return Ok(None);
            }
        }
        let encoding = values.encoding;
        let summary = pages.close(encoding)?;
        let bytes_written = sink.bytes_written() as u64;
        let bytes = Bytes::from(sink.into_inner()?);

        let mut metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(self.props.compression(path))
            .set_encodings_mask(EncodingMask::new_from_encodings(summary.encodings.iter()))
            .set_page_encoding_stats(summary.encoding_stats)
            .set_total_compressed_size(summary.compressed_size as i64)
            .set_total_uncompressed_size(summary.uncompressed_size as i64)
            .set_num_values(self.slots.len() as i64)
            .set_data_page_offset(summary.first_data_offset.unwrap_or(0))
            .set_dictionary_page_offset(summary.dictionary_offset);
        let (column_index, offset_index, rep_histogram, def_histogram) = index.finish()?;
        if self.props.statistics_enabled(path) != EnabledStatistics::None {
            let nulls = (self.slots.len() - valid.len()) as u64;
            let nans = P::FLOAT.then_some(nans);
            metadata = metadata
                .set_statistics(P::statistics(min, max, nulls, nans, self.descr.sort_order().is_signed()))
                .set_repetition_level_histogram(Some(rep_histogram))
                .set_definition_level_histogram(Some(def_histogram));
        }
        let close = ColumnCloseResult {
            bytes_written,
            rows_written: self.shape.rows as u64,
            metadata: metadata.build()?,
            bloom_filter: None,
            column_index,
            offset_index,
        };
        Ok(Some(EncodedChunk { bytes, close }))
    }

    /// The values of the valid slots, in order.
    fn valid_values(&self) -> Cow<'_, [P]> {
        match &self.shape.nulls {
            None => Cow::Borrowed(&self.slots[..]),
            // Runs of valid items, copied whole: nulls are usually few.
            Some(nulls) => {
                Cow::Owned(nulls.valid_slices().flat_map(|(from, to)| &self.slots[from..to]).copied().collect())
            }
        }
    }

    /// A page's repetition levels (0 at each row's first value, 1 after) and definition levels
    /// (null items one below the maximum), each as RLE runs behind their byte length.
    fn put_levels(&self, buffer: &mut Vec<u8>, rows: usize, slots: std::ops::Range<usize>, nulls: usize) {
        let length = self.shape.length;
        put_levels(buffer, |out| {
            for _ in 0..rows {
                put_run(out, 1, 0, 1);
                if length > 1 {
                    put_run(out, length - 1, 1, 1);
                }
            }
        });
        let max_def = self.descr.max_def_level();
        let def_width = bits_for(max_def as u64);
        put_levels(buffer, |out| match &self.shape.nulls {
            Some(null_items) if nulls > 0 => {
                let mut levels = LevelRuns::new(RleEncoder::new_from_buf(def_width, std::mem::take(out)));
                let (valid_level, null_level) = (max_def as u64, max_def as u64 - 1);
                let mut at = 0;
                for (from, to) in null_items.inner().slice(slots.start, slots.len()).set_slices() {
                    levels.put(null_level, from - at);
                    levels.put(valid_level, to - from);
                    at = to;
                }
                levels.put(null_level, slots.len() - at);
                *out = levels.finish();
            }
            _ => put_run(out, slots.len(), max_def as u64, def_width),
        });
    }
}

/// How a chunk's data pages hold their values: as indices into its dictionary, or in the
/// column's own encoding, as the crate falls back to it: PLAIN unless DELTA_BINARY_PACKED is set
/// and pays (see [`delta_pays`]).
struct Values<P: Physical> {
    dictionary: Option<Dictionary<P>>,
    /// The DELTA_BINARY_PACKED encoder, and the chunk's size in it ([`delta_packed_size`]).
    delta: Option<(DeltaBitPackEncoder<P::Parquet>, usize)>,
    encoding: Encoding,
}

/// Whether DELTA_BINARY_PACKED, at `delta_bytes` for `values` values of `width` bytes, is
/// worth writing instead of PLAIN: where it packs them into at most 11/20 of PLAIN's bytes.
///
/// Windows mostly full of increasing timestamps pack into under half (47% on the 10M-row
/// benchmark), and zstd then has half the bytes to compress. Windows mostly padding do not:
/// each jump from a window's last value to the pad and back widens a whole miniblock, so they
/// pack into about two thirds (65% with `--session-gap 3600000` there), which zstd compresses
/// worse and more slowly than PLAIN's runs of pads: PLAIN took the job's CPU time from 4.5 to
/// 3.5 s and its output from 164 to 116 MiB.
fn delta_pays(delta_bytes: usize, values: usize, width: usize) -> bool {
    delta_bytes * 20 <= values * width * 11
}

impl<P: Physical> Values<P> {
    fn new(
        dictionary: Option<Dictionary<P>>,
        props: &WriterProperties,
        path: &ColumnPath,
        valid: &[P],
    ) -> Result<Self> {
        let mut encoding = match &dictionary {
            Some(_) => props.dictionary_data_page_encoding(),
            None => props.encoding(path).unwrap_or(Encoding::PLAIN),
        };
        let mut delta = None;
        if encoding == Encoding::DELTA_BINARY_PACKED {
            let bytes = delta_packed_size(valid);
            if delta_pays(bytes, valid.len(), P::WIDTH) {
                // Miniblocks of 32 values, also for INT64 (the crate's default there is 64): the
                // jumps between windows then widen fewer values (a timestamp column: 9% smaller).
                let options = DeltaBinaryPackedEncoderOptions::try_new(DELTA_BLOCK, 4)?;
                delta = Some((DeltaBitPackEncoder::<P::Parquet>::new_with_options(options), bytes));
            } else {
                encoding = Encoding::PLAIN;
            }
        }
        Ok(Values { dictionary, delta, encoding })
    }

    /// The encoded size of a row of `length` values, to cut pages by the page size limit.
    fn row_bytes(&self, valid: &[P], length: usize) -> usize {
        match (&self.dictionary, &self.delta) {
            (Some(d), _) => (length * usize::from(d.bit_width().max(1))).div_ceil(8),
            (None, Some((_, bytes))) => (bytes * length).div_ceil(valid.len().max(1)),
            (None, None) => length * P::WIDTH,
        }
    }

    /// Appends one page's values: `page`, the chunk's valid values up to `valid_end`.
    fn put_page(&mut self, buffer: &mut Vec<u8>, page: &[P], valid_end: usize) -> Result<()> {
        match (&self.dictionary, self.delta.as_mut()) {
            (Some(d), _) => {
                // Entries are numbered as first seen, so a page needs only the bits of the
                // entries seen up to its end, as the crate's encoder writes it: early pages of a
                // chunk whose dictionary keeps growing get narrower indices (3% smaller output
                // for a float feature with 55k distinct values per row group).
                let indices = &d.indices[valid_end - page.len()..valid_end];
                let seen = d.first_seen.partition_point(|&at| at < valid_end);
                let bit_width = bits_for(seen.saturating_sub(1) as u64);
                buffer.push(bit_width);
                let mut values = RleEncoder::new_from_buf(bit_width, std::mem::take(buffer));
                values.put_batch(indices);
                *buffer = values.consume();
            }
            (None, Some((encoder, _))) => {
                encoder.put(page)?;
                buffer.extend_from_slice(&encoder.flush_buffer()?);
            }
            (None, None) => page.iter().for_each(|v| v.put_plain(buffer)),
        }
        Ok(())
    }
}

/// A chunk's pages as written: compressed, framed by the crate's page writer, and counted for
/// the column metadata.
struct Pages<'s> {
    writer: SerializedPageWriter<'s, Vec<u8>>,
    codec: Option<Box<dyn Codec>>,
    summary: PagesSummary,
}

/// What the column metadata says of a chunk's pages.
#[derive(Default)]
struct PagesSummary {
    compressed_size: u64,
    uncompressed_size: u64,
    encodings: Vec<Encoding>,
    encoding_stats: Vec<PageEncodingStats>,
    dictionary_offset: Option<i64>,
    first_data_offset: Option<i64>,
    data_pages: i32,
}

impl<'s> Pages<'s> {
    fn new(sink: &'s mut TrackedWrite<Vec<u8>>, props: &WriterProperties, path: &ColumnPath) -> Result<Self> {
        let codec = create_codec(props.compression(path), &CodecOptionsBuilder::default().build())?;
        let summary = PagesSummary { encodings: vec![Encoding::RLE], ..PagesSummary::default() };
        Ok(Pages { writer: SerializedPageWriter::new(sink), codec, summary })
    }

    fn compress(&mut self, buffer: Vec<u8>) -> Result<(Bytes, usize)> {
        let size = buffer.len();
        match self.codec.as_mut() {
            Some(codec) => {
                // Empty: the codec reserves its bound itself, and growing a presized buffer
                // would copy it whole.
                let mut out = Vec::new();
                codec.compress(&buffer, &mut out)?;
                Ok((out.into(), size))
            }
            None => Ok((buffer.into(), size)),
        }
    }

    fn put_dictionary<P: Physical>(&mut self, dictionary: &Dictionary<P>, encoding: Encoding) -> Result<()> {
        let mut plain = Vec::with_capacity(dictionary.entries.len() * P::WIDTH);
        dictionary.entries.iter().for_each(|v| v.put_plain(&mut plain));
        let (buf, size) = self.compress(plain)?;
        let page =
            Page::DictionaryPage { buf, num_values: dictionary.entries.len() as u32, encoding, is_sorted: false };
        let spec = self.writer.write_page(CompressedPage::new(page, size))?;
        let summary = &mut self.summary;
        summary.dictionary_offset = Some(spec.offset as i64);
        (summary.compressed_size, summary.uncompressed_size) =
            (spec.compressed_size as u64, spec.uncompressed_size as u64);
        summary.encodings.push(encoding);
        summary.encoding_stats.push(PageEncodingStats { page_type: PageType::DICTIONARY_PAGE, encoding, count: 1 });
        Ok(())
    }

    /// Writes a data page of `slots` values; returns its offset and compressed size.
    fn put_data(&mut self, buffer: Vec<u8>, slots: usize, encoding: Encoding) -> Result<(i64, i32)> {
        let (buf, size) = self.compress(buffer)?;
        let page = Page::DataPage {
            buf,
            num_values: slots as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = self.writer.write_page(CompressedPage::new(page, size))?;
        let summary = &mut self.summary;
        summary.first_data_offset.get_or_insert(spec.offset as i64);
        summary.compressed_size += spec.compressed_size as u64;
        summary.uncompressed_size += spec.uncompressed_size as u64;
        summary.data_pages += 1;
        Ok((spec.offset as i64, spec.compressed_size as i32))
    }

    fn close(mut self, encoding: Encoding) -> Result<PagesSummary> {
        let count = self.summary.data_pages;
        self.summary.encoding_stats.push(PageEncodingStats { page_type: PageType::DATA_PAGE, encoding, count });
        self.writer.close()?;
        Ok(self.summary)
    }
}

/// One data page, as the page indexes record it.
struct PageSummary {
    rows: usize,
    slots: usize,
    nulls: usize,
    offset: i64,
    compressed_size: i32,
}

/// The column index (bounds per page, with their order), the offset index and the level
/// histograms of a chunk, built page by page.
struct PageIndexes {
    column_index: ColumnIndexBuilder,
    offset_index: Option<OffsetIndexBuilder>,
    max_def: i16,
    rep_histogram: Vec<i64>,
    def_histogram: Vec<i64>,
    ascending: bool,
    descending: bool,
    last_keys: Option<(i64, i64)>,
}

impl PageIndexes {
    fn new(descr: &ColumnDescPtr, props: &WriterProperties) -> Self {
        let mut column_index = ColumnIndexBuilder::new(descr.physical_type());
        if props.statistics_enabled(descr.path()) != EnabledStatistics::Page {
            column_index.to_invalid();
        }
        let max_def = descr.max_def_level();
        PageIndexes {
            column_index,
            offset_index: (!props.offset_index_disabled()).then(OffsetIndexBuilder::new),
            max_def,
            rep_histogram: vec![0; 2],
            def_histogram: vec![0; max_def as usize + 1],
            ascending: true,
            descending: true,
            last_keys: None,
        }
    }

    /// Records a page whose valid values have `bounds` (low, high, NaN count). `false` when the
    /// column index needs bounds and the page has none (only nulls and NaN): such chunks are
    /// left to the crate's writer, which drops the index or marks a null page.
    fn add<P: Physical>(&mut self, page: &PageSummary, bounds: Option<(P, P, u64)>) -> Result<bool> {
        if let Some(offsets) = self.offset_index.as_mut() {
            offsets.append_offset_and_size(page.offset, page.compressed_size);
            offsets.append_row_count(page.rows as i64);
        }
        let max_def = self.max_def as usize;
        let page_rep = vec![page.rows as i64, (page.slots - page.rows) as i64];
        let mut page_def = vec![0i64; max_def + 1];
        page_def[max_def] = (page.slots - page.nulls) as i64;
        page_def[max_def - 1] += page.nulls as i64;
        self.rep_histogram.iter_mut().zip(&page_rep).for_each(|(total, page)| *total += page);
        self.def_histogram.iter_mut().zip(&page_def).for_each(|(total, page)| *total += page);
        if !self.column_index.valid() {
            return Ok(true);
        }
        let Some((low, high, nans)) = bounds else { return Ok(false) };
        let keys = (low.order_key().expect("not NaN"), high.order_key().expect("not NaN"));
        if let Some((last_low, last_high)) = self.last_keys {
            self.ascending &= last_low <= keys.0 && last_high <= keys.1;
            self.descending &= keys.0 <= last_low && keys.1 <= last_high;
        }
        self.last_keys = Some(keys);
        let (mut low_bytes, mut high_bytes) = (Vec::new(), Vec::new());
        low.put_plain(&mut low_bytes);
        high.put_plain(&mut high_bytes);
        let nans = P::FLOAT.then_some(nans as i64);
        self.column_index.append(false, low_bytes, high_bytes, page.nulls as i64, nans);
        self.column_index
            .append_histograms(&Some(LevelHistogram::from(page_rep)), &Some(LevelHistogram::from(page_def)));
        Ok(true)
    }

    /// The column index (if statistics are per page), the offset index (unless disabled), and
    /// the chunk's repetition and definition level histograms.
    #[allow(clippy::type_complexity)]
    fn finish(
        mut self,
    ) -> Result<(Option<ColumnIndexMetaData>, Option<OffsetIndexMetaData>, LevelHistogram, LevelHistogram)> {
        let column_index = if self.column_index.valid() {
            self.column_index.set_boundary_order(match (self.ascending, self.descending) {
                (true, _) => BoundaryOrder::ASCENDING,
                (false, true) => BoundaryOrder::DESCENDING,
                (false, false) => BoundaryOrder::UNORDERED,
            });
            Some(self.column_index.build()?)
        } else {
            None
        };
        Ok((
            column_index,
            self.offset_index.map(OffsetIndexBuilder::build),
            LevelHistogram::from(self.rep_histogram),
            LevelHistogram::from(self.def_histogram),
        ))
    }
}

#[cfg(test)]
mod tests {
    //! Each case is written twice, once through [`encode`] and once by the crate's `ArrowWriter`,
    //! and both files are read back with the crate's reader: the values must equal the input,
    //! and the chunk statistics, value counts and level histograms must equal the crate's. Page
    //! indexes are checked against the input rows each page covers.
    use std::sync::Arc;

    use arrow::array::{
        Array, ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
        RecordBatch,
    };
    use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use bytes::Bytes;
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
    use parquet::basic::{Compression, ZstdLevel};
    use parquet::file::metadata::{ColumnChunkMetaData, PageIndexPolicy, ParquetMetaData};
    use parquet::file::page_index::column_index::{ColumnIndexMetaData, PrimitiveColumnIndex};
    use parquet::file::properties::WriterProperties;

    use super::*;

    fn lists(values: ArrayRef, length: i32, items_nullable: bool) -> ArrayRef {
        let item = Arc::new(Field::new_list_field(values.data_type().clone(), items_nullable));
        Arc::new(FixedSizeListArray::try_new(item, length, values, None).unwrap())
    }

    fn schema_of(column: &ArrayRef) -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("f", column.data_type().clone(), false)]))
    }

    /// The file the crate's writer makes of `column`.
    fn by_crate(column: &ArrayRef, props: &WriterProperties) -> Bytes {
        let schema = schema_of(column);
        let mut writer = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone())).unwrap();
        writer.write(&RecordBatch::try_new(schema, vec![column.clone()]).unwrap()).unwrap();
        Bytes::from(writer.into_inner().unwrap())
    }

    /// The file made with `column` encoded here, or `None` when [`encode`] declines it.
    fn by_list_chunk(column: &ArrayRef, props: &WriterProperties) -> Option<Bytes> {
        let schema = schema_of(column);
        let leaves = parquet::arrow::ArrowSchemaConverter::new().convert(&schema).unwrap();
        let descr = leaves.column(0);
        assert!(covers(column.data_type(), &descr, props), "{:?} should be covered", column.data_type());
        let chunk = encode(column, &descr, props).unwrap()?;
        let (mut file, _) =
            ArrowWriter::try_new(Vec::new(), schema, Some(props.clone())).unwrap().into_serialized_writer().unwrap();
        let mut row_group = file.next_row_group().unwrap();
        row_group.append_column(&chunk.bytes, chunk.close).unwrap();
        row_group.close().unwrap();
        Some(Bytes::from(file.into_inner().unwrap()))
    }

    /// The column read back from `file`, and the file's metadata with its page indexes.
    fn read(file: Bytes) -> (ArrayRef, Arc<ParquetMetaData>) {
        let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required);
        let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options).unwrap();
        let metadata = builder.metadata().clone();
        let batches: Vec<RecordBatch> = builder.build().unwrap().collect::<std::result::Result<_, _>>().unwrap();
        let schema = batches[0].schema();
        let batch = arrow::compute::concat_batches(&schema, &batches).unwrap();
        (batch.column(0).clone(), metadata)
    }

    fn chunk_summary(chunk: &ColumnChunkMetaData) -> String {
        format!(
            "values {} stats {:?} rep {:?} def {:?}",
            chunk.num_values(),
            chunk.statistics(),
            chunk.repetition_level_histogram(),
            chunk.definition_level_histogram()
        )
    }

    /// Writes `column` both ways and checks what the module docs promise; returns the
    /// metadata of the file encoded here.
    fn check(column: ArrayRef, props: WriterProperties) -> Arc<ParquetMetaData> {
        let ours = by_list_chunk(&column, &props).expect("encoded here");
        let (read_ours, ours_meta) = read(ours);
        let (read_crate, crate_meta) = read(by_crate(&column, &props));
        assert_eq!(read_ours.as_ref(), column.as_ref(), "values read back");
        assert_eq!(read_crate.as_ref(), column.as_ref());
        let (chunk, crate_chunk) = (ours_meta.row_group(0).column(0), crate_meta.row_group(0).column(0));
        assert_eq!(chunk_summary(chunk), chunk_summary(crate_chunk));
        assert_eq!(chunk.compression(), crate_chunk.compression());

        // The offset index splits the rows; the column index holds each page's bounds.
        let page_index = ours_meta.page_index_for_row_group(0);
        let locations = page_index.offset_index(0).expect("offset index").page_locations().clone();
        assert_eq!(locations[0].first_row_index, 0);
        let list = column.as_fixed_size_list();
        let ends = locations.iter().skip(1).map(|l| l.first_row_index as usize).chain([list.len()]);
        let pages: Vec<_> = locations.iter().map(|l| l.first_row_index as usize).zip(ends).collect();
        assert!(pages.iter().all(|(from, to)| from < to), "{pages:?}");
        // Expected bounds by brute force: integers as i64; floats by `total_cmp`, NaN skipped.
        let bounds = |from: usize, to: usize| -> Option<(String, String)> {
            let length = list.value_length() as usize;
            let values = list.values().slice(from * length, (to - from) * length);
            match values.data_type() {
                DataType::Float32 => {
                    let mut finite: Vec<f32> = values.as_primitive::<Float32Type>().iter().flatten().collect();
                    finite.retain(|v| !v.is_nan());
                    finite.sort_by(f32::total_cmp);
                    Some((format!("{:?}", finite.first()?), format!("{:?}", finite.last()?)))
                }
                DataType::Float64 => {
                    let mut finite: Vec<f64> = values.as_primitive::<Float64Type>().iter().flatten().collect();
                    finite.retain(|v| !v.is_nan());
                    finite.sort_by(f64::total_cmp);
                    Some((format!("{:?}", finite.first()?), format!("{:?}", finite.last()?)))
                }
                _ => {
                    let values = arrow::compute::cast(&values, &DataType::Int64).unwrap();
                    let values = values.as_primitive::<Int64Type>();
                    Some((arrow::compute::min(values)?.to_string(), arrow::compute::max(values)?.to_string()))
                }
            }
        };
        fn shown<T: std::fmt::Debug>(i: &PrimitiveColumnIndex<T>, pages: usize) -> Vec<Option<(String, String)>> {
            (0..pages).map(|p| Some((format!("{:?}", i.min_value(p)?), format!("{:?}", i.max_value(p)?)))).collect()
        }
        let indexed = match page_index.column_index(0).expect("column index") {
            ColumnIndexMetaData::INT32(i) => shown(i, pages.len()),
            ColumnIndexMetaData::INT64(i) => shown(i, pages.len()),
            ColumnIndexMetaData::FLOAT(i) => shown(i, pages.len()),
            ColumnIndexMetaData::DOUBLE(i) => shown(i, pages.len()),
            other => panic!("unexpected column index {other:?}"),
        };
        let expected: Vec<_> = pages.iter().map(|&(from, to)| bounds(from, to)).collect();
        assert_eq!(indexed, expected);
        ours_meta
    }

    fn encodings(metadata: &ParquetMetaData) -> Vec<Encoding> {
        metadata.row_group(0).column(0).encodings().collect()
    }

    fn zstd() -> parquet::file::properties::WriterPropertiesBuilder {
        WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
    }

    #[test]
    fn int32_with_nulls_and_pads_over_several_pages() {
        let values: Int32Array = (0..60_000)
            .map(|i| {
                if i % 7 == 3 {
                    None
                } else if i % 50 > 40 {
                    Some(-1)
                } else {
                    Some(i % 997)
                }
            })
            .collect();
        let column = lists(Arc::new(values), 50, true);
        let metadata = check(column, zstd().set_data_page_size_limit(4096).build());
        assert!(encodings(&metadata).contains(&Encoding::RLE_DICTIONARY));
        assert!(metadata.page_index_for_row_group(0).offset_index(0).unwrap().page_locations().len() > 10);
    }

    #[test]
    fn int64_over_a_wide_range_uses_a_hashed_dictionary() {
        let values: Int64Array = (0..20_000i64).map(|i| Some((i % 300) * 1_000_000_007 - 5)).collect();
        let metadata = check(lists(Arc::new(values), 100, true), zstd().build());
        assert!(encodings(&metadata).contains(&Encoding::RLE_DICTIONARY));
    }

    #[test]
    fn non_null_int8_items_like_the_padding_mask() {
        let values: Int8Array = (0..30_000).map(|i| Some(i8::from(i % 100 >= 70))).collect();
        check(lists(Arc::new(values), 100, false), WriterProperties::builder().build());
    }

    #[test]
    fn int16_values_and_a_single_distinct_value() {
        let values: Int16Array = (0..4_000).map(|i| Some(i16::MIN + (i % 5))).collect();
        check(lists(Arc::new(values), 8, true), zstd().build());
        let constant: Int32Array = (0..4_000).map(|_| Some(42)).collect();
        check(lists(Arc::new(constant), 8, true), zstd().build());
    }

    #[test]
    fn plain_when_the_dictionary_is_disabled_or_outgrows_its_limit() {
        let timestamps: Int64Array = (0..50_000i64).map(|i| Some(1_600_000_000_000 + i * 37)).collect();
        let column = lists(Arc::new(timestamps), 100, true);
        let disabled = check(column.clone(), zstd().set_dictionary_enabled(false).build());
        assert_eq!(encodings(&disabled), vec![Encoding::PLAIN, Encoding::RLE]);
        let outgrown = check(column, zstd().set_dictionary_page_size_limit(1024).build());
        assert!(!encodings(&outgrown).contains(&Encoding::RLE_DICTIONARY));
    }

    #[test]
    fn delta_binary_packed_when_set_for_the_column() {
        // Timestamps running up within windows, with pads, jumps between windows and nulls.
        let timestamps: Int64Array = (0..60_000i64)
            .map(|i| match i % 100 {
                13 => None,
                90.. if i % 300 >= 200 => Some(-1),
                _ => Some(1_600_000_000_000 + (i / 100 % 7) * 86_400_000 + i * 37 + (i * i) % 1000),
            })
            .collect();
        let column = lists(Arc::new(timestamps), 100, true);
        let delta = |builder: parquet::file::properties::WriterPropertiesBuilder| {
            builder
                .set_dictionary_enabled(false)
                .set_encoding(Encoding::DELTA_BINARY_PACKED)
                .set_data_page_size_limit(16 * 1024)
                .build()
        };
        let metadata = check(column.clone(), delta(zstd()));
        assert_eq!(encodings(&metadata), vec![Encoding::RLE, Encoding::DELTA_BINARY_PACKED]);
        // Pages are sized by the packed size: near the limit, not at the plain size's half of it.
        let pages = metadata.page_index_for_row_group(0).offset_index(0).unwrap().page_locations().len();
        let plain =
            check(column.clone(), zstd().set_dictionary_enabled(false).set_data_page_size_limit(16 * 1024).build());
        let plain_pages = plain.page_index_for_row_group(0).offset_index(0).unwrap().page_locations().len();
        assert!(pages * 3 < plain_pages * 2, "{pages} delta pages, {plain_pages} plain pages");
        check(column, delta(WriterProperties::builder()));
        // INT32 (here widened from Int16), and a dictionary that outgrows its limit falls back to it.
        let small: Int16Array = (0..20_000).map(|i| Some((i * 7 % 5_000) as i16 - 2_500)).collect();
        let props = zstd().set_encoding(Encoding::DELTA_BINARY_PACKED).set_dictionary_page_size_limit(256).build();
        let metadata = check(lists(Arc::new(small), 10, false), props);
        assert_eq!(encodings(&metadata), vec![Encoding::RLE, Encoding::DELTA_BINARY_PACKED]);
    }

    #[test]
    fn delta_binary_packed_only_where_it_packs_well() {
        // Windows of 15 timestamps then 85 pads: every jump into the pads and back widens a
        // miniblock, so DELTA packs them into over 11/20 of PLAIN, and PLAIN is written.
        let padded: Int64Array = (0..60_000i64)
            .map(|i| if i % 100 < 15 { 1_600_000_000_000 + i * 37 + (i * i) % 1000 } else { -1 })
            .map(Some)
            .collect();
        let props = zstd().set_dictionary_enabled(false).set_encoding(Encoding::DELTA_BINARY_PACKED).build();
        let metadata = check(lists(Arc::new(padded.clone()), 100, false), props.clone());
        let written = encodings(&metadata);
        assert!(written.contains(&Encoding::PLAIN) && !written.contains(&Encoding::DELTA_BINARY_PACKED), "{written:?}");
        let values = padded.values();
        assert!(!delta_pays(delta_packed_size(values), values.len(), 8));
        // The same timestamps filling their windows pack into under half: DELTA.
        let full: Int64Array = (0..60_000i64).map(|i| Some(1_600_000_000_000 + i * 37 + (i * i) % 1000)).collect();
        let metadata = check(lists(Arc::new(full), 100, false), props);
        assert_eq!(encodings(&metadata), vec![Encoding::RLE, Encoding::DELTA_BINARY_PACKED]);
    }

    #[test]
    fn bounds_of_any_range_equal_a_scan_of_it() {
        // Values that fall and rise across block edges, with NaNs, signed zeros and a range
        // without any non-NaN value.
        let values: Vec<f64> = (0..3 * BOUNDS_BLOCK + 77)
            .map(|i| match i % 997 {
                0 => f64::NAN,
                1 => -0.0,
                _ => ((i * 7919) % 10_007) as f64 - 5_000.5,
            })
            .chain([f64::NAN; 5])
            .collect();
        let bounds = Bounds::new(&values);
        let naive = |range: std::ops::Range<usize>| {
            let slice = &values[range];
            let numbers: Vec<f64> = slice.iter().copied().filter(|v| !v.is_nan()).collect();
            let low = numbers.iter().copied().min_by(f64::total_cmp)?;
            let high = numbers.iter().copied().max_by(f64::total_cmp)?;
            Some((low.to_bits(), high.to_bits(), (slice.len() - numbers.len()) as u64))
        };
        let edges =
            [0, 1, 996, 997, BOUNDS_BLOCK - 1, BOUNDS_BLOCK, BOUNDS_BLOCK + 1, 2 * BOUNDS_BLOCK, values.len() - 5];
        for &start in &edges {
            for end in edges.iter().copied().chain([values.len()]).filter(|&end| end >= start) {
                let got = bounds.of(start..end).map(|(low, high, nans)| (low.to_bits(), high.to_bits(), nans));
                assert_eq!(got, naive(start..end), "{start}..{end}");
            }
        }
    }

    #[test]
    fn level_runs_write_the_bytes_of_one_put_per_level() {
        // Runs short and long (across blocks), alternating two levels, and a trailing odd group.
        let runs: Vec<(u64, usize)> = (0..400).map(|i| (i % 2, [1, 3, 7, 8, 9, 64, 5000][i as usize % 7])).collect();
        let mut by_runs = LevelRuns::new(RleEncoder::new(1, 1024));
        let mut one_by_one = RleEncoder::new(1, 1024);
        for &(level, count) in &runs {
            by_runs.put(level, count);
            (0..count).for_each(|_| one_by_one.put(level));
        }
        assert_eq!(by_runs.finish(), one_by_one.consume());
    }

    #[test]
    fn the_delta_packed_estimate_bounds_the_encoders_size() {
        // The estimate sizes pages, so it must not fall short of what the encoder writes, and
        // may exceed it only by the block headers' slack (a 10-byte varint per block at most).
        let encoded = |values: &[i64]| {
            let options = DeltaBinaryPackedEncoderOptions::try_new(DELTA_BLOCK, 4).unwrap();
            let mut encoder = DeltaBitPackEncoder::<parquet_type::Int64Type>::new_with_options(options);
            encoder.put(values).unwrap();
            encoder.flush_buffer().unwrap().len()
        };
        let runs_up: Vec<i64> = (0..10_000i64).map(|i| 1_600_000_000_000 + i * 37 + (i * i) % 1000).collect();
        let with_jumps: Vec<i64> = (0..10_000i64).map(|i| if i % 100 >= 90 { -1 } else { i * i % 7919 }).collect();
        let extremes: Vec<i64> = (0..1_000i64).map(|i| if i % 2 == 0 { i64::MIN } else { i64::MAX }).collect();
        for (name, values) in [("runs up", &runs_up[..]), ("jumps", &with_jumps), ("extremes", &extremes)] {
            for len in [0, 1, 2, 129, 130, values.len()] {
                let values = &values[..len.min(values.len())];
                let (estimate, actual) = (delta_packed_size(values), encoded(values));
                let blocks = values.len().saturating_sub(1).div_ceil(DELTA_BLOCK);
                assert!(actual <= estimate, "{name}, {len} values: estimated {estimate}, encoded {actual}");
                assert!(estimate <= actual + 10 * blocks + 16, "{name}, {len} values: {estimate} vs {actual}");
            }
        }
    }

    #[test]
    fn leaves_other_encodings_to_the_crate() {
        let schema = |data_type: DataType| {
            let item = Arc::new(Field::new_list_field(data_type, true));
            let list = DataType::FixedSizeList(item, 4);
            let schema = Schema::new(vec![Field::new("f", list.clone(), false)]);
            (list, parquet::arrow::ArrowSchemaConverter::new().convert(&schema).unwrap().column(0))
        };
        let with = |encoding| WriterProperties::builder().set_encoding(encoding).build();
        let (ints, int_leaf) = schema(DataType::Int64);
        assert!(covers(&ints, &int_leaf, &with(Encoding::PLAIN)));
        assert!(covers(&ints, &int_leaf, &with(Encoding::DELTA_BINARY_PACKED)));
        assert!(!covers(&ints, &int_leaf, &with(Encoding::BYTE_STREAM_SPLIT)));
        let (floats, float_leaf) = schema(DataType::Float32);
        assert!(covers(&floats, &float_leaf, &with(Encoding::PLAIN)));
        assert!(!covers(&floats, &float_leaf, &with(Encoding::BYTE_STREAM_SPLIT)));
    }

    #[test]
    fn uncompressed_and_one_value_per_list() {
        let values: Int32Array = (0..1_000).map(|i| if i % 3 == 0 { None } else { Some(i) }).collect();
        check(lists(Arc::new(values), 1, true), WriterProperties::builder().build());
    }

    #[test]
    fn declines_chunks_without_values_and_types_it_does_not_cover() {
        let props = WriterProperties::builder().build();
        let nulls: Int32Array = (0..100).map(|_| None).collect();
        assert!(by_list_chunk(&lists(Arc::new(nulls), 10, true), &props).is_none());
        let nans = Float64Array::from(vec![f64::NAN; 10]);
        assert!(by_list_chunk(&lists(Arc::new(nans), 5, true), &props).is_none());
        // A page of NaNs only, after a page with numbers.
        let mixed: Float32Array = (0..2_000).map(|i| Some(if i < 1_000 { i as f32 } else { f32::NAN })).collect();
        let small_pages = WriterProperties::builder().set_data_page_size_limit(512).build();
        assert!(by_list_chunk(&lists(Arc::new(mixed), 10, true), &small_pages).is_none());
        let unsigned = lists(Arc::new(arrow::array::UInt32Array::from(vec![1; 10])), 5, true);
        let leaves = parquet::arrow::ArrowSchemaConverter::new().convert(&schema_of(&unsigned)).unwrap();
        assert!(!covers(unsigned.data_type(), &leaves.column(0), &props));
    }

    #[test]
    fn floats_with_nans_signed_zeros_and_nulls() {
        let special = [f32::NAN, -0.0, 0.0, f32::INFINITY, -1.5, f32::NEG_INFINITY, 2.25];
        let values: Float32Array =
            (0..40_000).map(|i| if i % 11 == 0 { None } else { Some(special[i % 7] * (1 + i % 3) as f32) }).collect();
        let metadata = check(lists(Arc::new(values), 40, true), zstd().set_data_page_size_limit(2048).build());
        assert!(encodings(&metadata).contains(&Encoding::RLE_DICTIONARY));
        let wide: Float64Array = (0..30_000).map(|i| Some(((i * 7919) % 10_007) as f64 / 3.0 - 1000.0)).collect();
        check(lists(Arc::new(wide), 100, true), zstd().build());
        let zeros: Float64Array = (0..1_000).map(|i| Some(if i % 2 == 0 { 0.0 } else { -0.0 })).collect();
        check(lists(Arc::new(zeros), 10, true), WriterProperties::builder().build());
    }
}
