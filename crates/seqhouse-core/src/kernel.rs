//! The sequencing kernel: record batches in, padded windows out. No I/O.
//!
//! [`Sequencer::prepare`] takes the decoded input, concatenates it (in input order, freeing each
//! input column once copied), applies the null-key policy,
//! orders every row by (entity, order-by, input position) and cuts each entity's events into
//! windows. The windows are then materialised in slices with [`Sequencer::build`], so output that
//! is much larger than the input (sliding with stride 1, prefix mode) never exists whole in memory.
//!
//! Ties on the order-by columns keep input order because the input position is the last sort key;
//! that key also makes the order total, so any sort algorithm and any thread count give the same
//! permutation (the private module `order` says how the sort is done).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, ArrowPrimitiveType, AsArray, BooleanArray, BooleanBufferBuilder, FixedSizeListArray, Int8Array,
    Int32Array, Int64Array, MutableArrayData, PrimitiveArray, RecordBatch, UInt32Array, make_array,
};
use arrow::buffer::NullBuffer;
use arrow::compute::kernels::zip::zip;
use arrow::compute::{concat, filter_record_batch, is_not_null, take};
use arrow::datatypes::{DataType, Field};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::order::order_rows;
use crate::resolve::ResolvedSpec;
use crate::setting::Setting;
use crate::spec::{Mode, NullKeyPolicy, Padding};

/// Counts a job reports in its manifest. Every engine computes the same numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceStats {
    /// Rows read from the input.
    pub input_rows: u64,
    /// Rows dropped because an entity or order-by value was null (`--on-null-key drop`).
    pub dropped_null_key_rows: u64,
    /// Per key column, rows with a null there (a row null in two columns counts in both).
    pub null_key_rows_by_column: BTreeMap<String, u64>,
    /// Rows that were sequenced (input rows minus dropped rows).
    pub sequenced_rows: u64,
    /// Distinct entities among the sequenced rows.
    pub entities: u64,
    /// Windows written.
    pub windows: u64,
    /// Windows dropped because they held fewer than `--min-length` real events.
    pub windows_below_min_length: u64,
    /// Per feature, nulls among the sequenced rows (counted before `--fill-null`).
    pub feature_nulls: BTreeMap<String, u64>,
}

impl SequenceStats {
    /// Adds what a range of a job's entities sequenced (rows, entities, windows, feature nulls) to
    /// these counts. The input and null-key counts are not added: a job split by entity range
    /// counts those once, as it splits its input.
    pub fn add_sequenced(&mut self, range: &SequenceStats) {
        self.sequenced_rows += range.sequenced_rows;
        self.entities += range.entities;
        self.windows += range.windows;
        self.windows_below_min_length += range.windows_below_min_length;
        for (name, nulls) in &range.feature_nulls {
            *self.feature_nulls.entry(name.clone()).or_insert(0) += nulls;
        }
    }
}

/// One output row: a slice of an entity's ordered events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    /// Position of the first real event in the sorted order.
    start: u32,
    /// Number of real events.
    len: u32,
    /// Index among the entity's kept windows.
    seq: u32,
}

/// The cuts `[start, end)` (relative to the entity's first event) that `mode` makes of `len` events.
///
/// This is the definition of the modes; every engine must make the same cuts.
pub fn window_bounds(mode: Mode, len: usize, n: usize, stride: usize) -> Vec<(usize, usize)> {
    match mode {
        Mode::Chunk => (0..len).step_by(n).map(|s| (s, (s + n).min(len))).collect(),
        Mode::Sliding => {
            let mut out = Vec::new();
            let mut start = 0;
            loop {
                out.push((start, (start + n).min(len)));
                if start + n >= len {
                    break;
                }
                start += stride;
            }
            out
        }
        Mode::Last => vec![(len.saturating_sub(n), len)],
        Mode::Prefix => (1..=len).map(|k| (k.saturating_sub(n), k)).collect(),
    }
}

/// A prepared job: the ordered input and its windows, ready to be materialised in slices.
pub struct Sequencer {
    resolved: ResolvedSpec,
    /// The entity columns, in input order (after dropping null-key rows).
    entities: Vec<ArrayRef>,
    /// Per feature: its values (nulls filled if asked) in sorted order.
    sorted_features: Vec<ArrayRef>,
    /// Input positions in (entity, order-by, input position) order.
    order: Vec<u32>,
    windows: Vec<Window>,
    stats: SequenceStats,
}

impl Sequencer {
    /// Orders and windows `batches`, which must follow `resolved.input_schema` (see
    /// [`ResolvedSpec::conform`]) and come in input order (files in path order, rows in file
    /// order). `batch_sources[i]` names the file of `batches[i]` for error messages.
    pub fn prepare(resolved: &ResolvedSpec, batches: Vec<RecordBatch>, batch_sources: &[&str]) -> Result<Self> {
        let schema = resolved.input_schema.clone();
        let started = std::time::Instant::now();
        let mut null_keys = NullKeys::new(resolved);
        let batches = batches
            .into_iter()
            .enumerate()
            .map(|(i, batch)| null_keys.filter(batch, batch_sources.get(i).copied().unwrap_or("the input")))
            .collect::<Result<Vec<_>>>()?;
        let null_keys = null_keys.finish()?;
        let input = concat_owned(&schema, batches)?;
        let rows = input.num_rows();
        if rows >= u32::MAX as usize {
            return Err(Error::setting_message(
                Setting::MemoryLimit,
                format!(
                    "{rows} rows do not fit one in-memory pass (at most {} rows); lower {} so the job is split by entity",
                    u32::MAX - 1,
                    Setting::MemoryLimit
                ),
            ));
        }

        // Order-by columns that are not also output are freed as soon as they are sorted on.
        let mut columns: Vec<Option<ArrayRef>> = input.columns().iter().cloned().map(Some).collect();
        drop(input);
        let entities: Vec<ArrayRef> =
            resolved.entity_idx.iter().map(|&i| columns[i].clone().expect("entity")).collect();
        let orders: Vec<ArrayRef> = resolved
            .order_idx
            .iter()
            .map(|&i| {
                let kept = resolved.entity_idx.contains(&i) || resolved.feature_idx.contains(&i);
                if kept { columns[i].clone() } else { columns[i].take() }.expect("order-by column")
            })
            .collect();
        let concatenated = started.elapsed();
        let ordered = order_rows(&entities, &orders, rows)?;
        drop(orders);
        let sorted = started.elapsed();
        let order = ordered.order;

        let spec = &resolved.spec;
        let (n, stride, min_len) = (spec.sequence_length, spec.effective_stride(), spec.min_length);
        let mut windows = Vec::new();
        let mut below_min = 0u64;
        let entity_count = (ordered.entity_starts.len() - 1) as u64;
        for run in ordered.entity_starts.windows(2) {
            let (group_start, group_end) = (run[0], run[1]);
            let mut seq = 0u32;
            for (s, e) in window_bounds(spec.mode, group_end - group_start, n, stride) {
                if e - s < min_len {
                    below_min += 1;
                    continue;
                }
                windows.push(Window { start: (group_start + s) as u32, len: (e - s) as u32, seq });
                seq += 1;
            }
        }

        // Each feature in sorted order (nulls filled if asked): every window is then one
        // contiguous slice of it, copied instead of gathered value by value.
        let mut feature_nulls = BTreeMap::new();
        let feature_columns: Vec<ArrayRef> =
            resolved.feature_idx.iter().map(|&i| columns[i].clone().expect("feature")).collect();
        drop(columns);
        for (f, column) in feature_columns.iter().enumerate() {
            feature_nulls.insert(spec.features[f].name.clone(), column.null_count() as u64);
        }
        let order_array = UInt32Array::from(order);
        let sorted_features = feature_columns
            .into_par_iter()
            .enumerate()
            .map(|(f, column)| {
                let column = &column;
                let filled = match &resolved.fills[f] {
                    Some(fill) if column.null_count() > 0 => {
                        let fill = arrow::array::Scalar::new(fill.clone());
                        zip(&is_not_null(column).map_err(Error::internal)?, column, &fill).map_err(Error::internal)?
                    }
                    _ => column.clone(),
                };
                take(filled.as_ref(), &order_array, None).map_err(Error::internal)
            })
            .collect::<Result<Vec<_>>>()?;
        let order = order_array
            .into_parts()
            .1
            .into_inner()
            .into_vec()
            .map_err(|_| Error::internal("order buffer is shared"))?;

        tracing::trace!(
            concat = ?concatenated,
            sort = ?(sorted - concatenated),
            windows_and_features = ?(started.elapsed() - sorted),
            "prepare phases"
        );
        let stats = SequenceStats {
            input_rows: null_keys.input_rows,
            dropped_null_key_rows: null_keys.dropped,
            null_key_rows_by_column: null_keys.by_column,
            sequenced_rows: rows as u64,
            entities: entity_count,
            windows: windows.len() as u64,
            windows_below_min_length: below_min,
            feature_nulls,
        };
        Ok(Sequencer { resolved: resolved.clone(), entities, sorted_features, order, windows, stats })
    }

    /// Number of output rows (kept windows).
    pub fn num_windows(&self) -> usize {
        self.windows.len()
    }

    /// The schema of every batch [`Sequencer::build`] returns.
    pub fn output_schema(&self) -> arrow::datatypes::SchemaRef {
        self.resolved.output_schema.clone()
    }

    /// The job's counts.
    pub fn stats(&self) -> &SequenceStats {
        &self.stats
    }

    /// Materialises windows `range` (in output order) as one record batch of the output schema.
    pub fn build(&self, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        let windows = &self.windows[range];
        let n = self.resolved.spec.sequence_length;
        let pre = self.resolved.spec.padding == Padding::Pre;
        let firsts = UInt32Array::from_iter_values(windows.iter().map(|w| self.order[w.start as usize]));

        let schema = self.resolved.output_schema.clone();
        let mut columns: Vec<ArrayRef> = self
            .entities
            .iter()
            .map(|e| take(e.as_ref(), &firsts, None).map_err(Error::internal))
            .collect::<Result<_>>()?;
        columns.push(Arc::new(Int64Array::from_iter_values(windows.iter().map(|w| w.seq as i64))));
        columns.push(Arc::new(Int32Array::from_iter_values(windows.iter().map(|w| w.len as i32))));
        let features: Vec<ArrayRef> = self
            .sorted_features
            .par_iter()
            .enumerate()
            .map(|(f, sorted)| {
                let values = padded_windows(sorted, &self.resolved.pads[f], windows, n, pre)?;
                let field = list_item(schema.field(self.resolved.entity_idx.len() + 2 + f).data_type());
                Ok(Arc::new(FixedSizeListArray::try_new(field, n as i32, values, None).map_err(Error::internal)?)
                    as ArrayRef)
            })
            .collect::<Result<_>>()?;
        columns.extend(features);
        let mut mask = Vec::with_capacity(windows.len() * n);
        for w in windows {
            let (real, pads) = (w.len as usize, n - w.len as usize);
            let (first, then) = if pre { ((1i8, pads), (0i8, real)) } else { ((0i8, real), (1i8, pads)) };
            mask.extend(std::iter::repeat_n(first.0, first.1));
            mask.extend(std::iter::repeat_n(then.0, then.1));
        }
        let mask_field = list_item(schema.field(schema.fields().len() - 1).data_type());
        let mask = FixedSizeListArray::try_new(mask_field, n as i32, Arc::new(Int8Array::from(mask)), None)
            .map_err(Error::internal)?;
        columns.push(Arc::new(mask));
        RecordBatch::try_new(schema, columns).map_err(Error::internal)
    }
}

/// One batch of `batches` (in order), releasing each input column once it is copied, so the
/// input is not held twice. A single batch is used as it is.
fn concat_owned(schema: &arrow::datatypes::SchemaRef, mut batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    match batches.len() {
        0 => return Ok(RecordBatch::new_empty(schema.clone())),
        1 => return Ok(batches.pop().expect("one batch")),
        _ => {}
    }
    let per_column: Vec<Vec<ArrayRef>> =
        (0..schema.fields().len()).map(|c| batches.iter().map(|b| b.column(c).clone()).collect()).collect();
    drop(batches);
    // Column by column, in parallel (concat_batches copies them one after another).
    let columns = per_column
        .into_par_iter()
        .map(|parts| {
            let refs: Vec<&dyn Array> = parts.iter().map(|p| p.as_ref()).collect();
            concat(&refs).map_err(Error::internal)
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(Error::internal)
}

/// The values of `windows` (slices of `sorted`) each padded to `n` with `pad`, back to back.
fn padded_windows(sorted: &ArrayRef, pad: &ArrayRef, windows: &[Window], n: usize, pre: bool) -> Result<ArrayRef> {
    macro_rules! primitive {
        ($($variant:pat => $t:ty),+ $(,)?) => {
            match sorted.data_type() {
                $($variant => {
                    return Ok(Arc::new(padded_primitive::<$t>(sorted, pad, windows, n, pre)));
                })+
                _ => {}
            }
        };
    }
    use arrow::datatypes::*;
    primitive!(
        DataType::Int8 => Int8Type,
        DataType::Int16 => Int16Type,
        DataType::Int32 => Int32Type,
        DataType::Int64 => Int64Type,
        DataType::UInt8 => UInt8Type,
        DataType::UInt16 => UInt16Type,
        DataType::UInt32 => UInt32Type,
        DataType::UInt64 => UInt64Type,
        DataType::Float32 => Float32Type,
        DataType::Float64 => Float64Type,
        DataType::Date32 => Date32Type,
        DataType::Date64 => Date64Type,
        DataType::Timestamp(TimeUnit::Second, _) => TimestampSecondType,
        DataType::Timestamp(TimeUnit::Millisecond, _) => TimestampMillisecondType,
        DataType::Timestamp(TimeUnit::Microsecond, _) => TimestampMicrosecondType,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => TimestampNanosecondType,
    );
    // Any other type: arrow's slice copier (it carries validity along).
    // The pad repeated N times, so that a window's padding is one copy.
    let pads = take(pad.as_ref(), &UInt32Array::from(vec![0; n]), None).map_err(Error::internal)?;
    let (sorted_data, pad_data) = (sorted.to_data(), pads.to_data());
    let mut out = MutableArrayData::new(vec![&sorted_data, &pad_data], false, windows.len() * n);
    // Offsets overflow only past 2 GiB of string data in one row group.
    let overflow = |e: arrow::error::ArrowError| Error::internal(format!("building a row group: {e}"));
    for w in windows {
        let (start, len) = (w.start as usize, w.len as usize);
        if pre && len < n {
            out.try_extend(1, 0, n - len).map_err(overflow)?;
        }
        out.try_extend(0, start, start + len).map_err(overflow)?;
        if !pre && len < n {
            out.try_extend(1, 0, n - len).map_err(overflow)?;
        }
    }
    Ok(make_array(out.freeze()))
}

/// [`padded_windows`] for a primitive column: straight slice copies into one buffer, and of the
/// validity bits when the column has nulls.
fn padded_primitive<T: ArrowPrimitiveType>(
    sorted: &ArrayRef,
    pad: &ArrayRef,
    windows: &[Window],
    n: usize,
    pre: bool,
) -> PrimitiveArray<T> {
    let values = sorted.as_primitive::<T>().values();
    let nulls = sorted.nulls().filter(|nulls| nulls.null_count() > 0);
    // Pads are never null.
    let pad = pad.as_primitive::<T>().value(0);
    let mut out: Vec<T::Native> = Vec::with_capacity(windows.len() * n);
    let mut valid = nulls.map(|_| BooleanBufferBuilder::new(windows.len() * n));
    for w in windows {
        let (start, len) = (w.start as usize, w.len as usize);
        if pre {
            out.extend(std::iter::repeat_n(pad, n - len));
        }
        out.extend_from_slice(&values[start..start + len]);
        if !pre {
            out.extend(std::iter::repeat_n(pad, n - len));
        }
        if let (Some(valid), Some(nulls)) = (valid.as_mut(), nulls) {
            if pre {
                valid.append_n(n - len, true);
            }
            valid.append_buffer(&nulls.inner().slice(start, len));
            if !pre {
                valid.append_n(n - len, true);
            }
        }
    }
    let nulls = valid.map(|mut valid| NullBuffer::new(valid.finish()));
    // Keep the column's exact type (time zone, unit) rather than the native type's default.
    PrimitiveArray::<T>::new(out.into(), nulls).with_data_type(sorted.data_type().clone())
}

fn list_item(data_type: &DataType) -> Arc<Field> {
    match data_type {
        DataType::FixedSizeList(item, _) => item.clone(),
        other => unreachable!("output feature columns are fixed-size lists, not {other}"),
    }
}

/// Applies `--on-null-key` batch by batch, counting as it goes: [`NullKeys::filter`] drops
/// rows with a null key when asked to, and [`NullKeys::finish`] reports the counts, or the error
/// that `--on-null-key error` calls for, naming the first key column with nulls, their number
/// in the whole input and the first file that has one.
pub struct NullKeys<'a> {
    resolved: &'a ResolvedSpec,
    /// The key columns (name, position), each once even when it is both entity and order-by.
    keys: Vec<(String, usize)>,
    counts: NullKeyCounts,
    /// Per key column (by position), the file of its first null.
    first_null_file: BTreeMap<usize, String>,
}

/// Which rows hold a value in every one of `columns` (of equal length), or `None` when no
/// column has a null.
pub fn rows_without_nulls<'c>(columns: impl IntoIterator<Item = &'c ArrayRef>) -> Result<Option<BooleanArray>> {
    let mut keep: Option<BooleanArray> = None;
    for column in columns.into_iter().filter(|c| c.null_count() > 0) {
        let valid = is_not_null(column).map_err(Error::internal)?;
        keep = Some(match keep {
            None => valid,
            Some(k) => arrow::compute::and(&k, &valid).map_err(Error::internal)?,
        });
    }
    Ok(keep)
}

/// What [`NullKeys::apply`] found in one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchNulls {
    rows: u64,
    /// Per key column (in [`NullKeys`]' order), nulls there.
    by_key: Vec<u64>,
    dropped: u64,
}

impl BatchNulls {
    /// Whether the batch had a null in any key column.
    pub fn has_nulls(&self) -> bool {
        self.by_key.iter().any(|&n| n > 0)
    }
}

/// What [`NullKeys`] counted over a whole input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NullKeyCounts {
    /// Rows read.
    pub input_rows: u64,
    /// Rows dropped for a null key.
    pub dropped: u64,
    /// Per key column, rows with a null there.
    pub by_column: BTreeMap<String, u64>,
}

impl<'a> NullKeys<'a> {
    /// Starts counting for a job.
    pub fn new(resolved: &'a ResolvedSpec) -> Self {
        let mut keys: Vec<(String, usize)> = Vec::new();
        for (name, idx) in resolved.key_columns() {
            if !keys.iter().any(|(_, seen)| *seen == idx) {
                keys.push((name.to_string(), idx));
            }
        }
        let by_column = keys.iter().map(|(name, _)| (name.clone(), 0)).collect();
        NullKeys {
            resolved,
            keys,
            counts: NullKeyCounts { by_column, ..NullKeyCounts::default() },
            first_null_file: BTreeMap::new(),
        }
    }

    /// Counts `batch` (read from `source`) and, under `--on-null-key drop`, removes its rows
    /// with a null key.
    pub fn filter(&mut self, batch: RecordBatch, source: &str) -> Result<RecordBatch> {
        let (kept, nulls) = self.apply(batch)?;
        self.record(&nulls, source);
        Ok(kept)
    }

    /// [`NullKeys::filter`] without the counting, so batches can be filtered in parallel; hand
    /// each batch's [`BatchNulls`] to [`NullKeys::record`] in input order.
    pub fn apply(&self, batch: RecordBatch) -> Result<(RecordBatch, BatchNulls)> {
        let mut nulls = BatchNulls { rows: batch.num_rows() as u64, by_key: vec![0; self.keys.len()], dropped: 0 };
        for (k, (_, idx)) in self.keys.iter().enumerate() {
            nulls.by_key[k] = batch.column(*idx).null_count() as u64;
        }
        let keep = match self.resolved.spec.on_null_key {
            NullKeyPolicy::Error => None,
            NullKeyPolicy::Drop => rows_without_nulls(self.keys.iter().map(|(_, idx)| batch.column(*idx)))?,
        };
        match keep {
            None => Ok((batch, nulls)),
            Some(keep) => {
                nulls.dropped = keep.false_count() as u64;
                Ok((filter_record_batch(&batch, &keep).map_err(Error::internal)?, nulls))
            }
        }
    }

    /// Counts what [`NullKeys::apply`] found in a batch read from `source`.
    pub fn record(&mut self, nulls: &BatchNulls, source: &str) {
        self.counts.input_rows += nulls.rows;
        self.counts.dropped += nulls.dropped;
        for ((name, idx), &count) in self.keys.iter().zip(&nulls.by_key) {
            if count > 0 {
                *self.counts.by_column.get_mut(name).expect("every key column is counted") += count;
                self.first_null_file.entry(*idx).or_insert_with(|| source.to_string());
            }
        }
    }

    /// Whether a null key has been seen under `--on-null-key error`, so [`NullKeys::finish`]
    /// will fail.
    pub fn failing(&self) -> bool {
        self.resolved.spec.on_null_key == NullKeyPolicy::Error && !self.first_null_file.is_empty()
    }

    /// The counts, or under `--on-null-key error` the error for the first key column with nulls.
    pub fn finish(self) -> Result<NullKeyCounts> {
        if self.resolved.spec.on_null_key == NullKeyPolicy::Error {
            for (name, idx) in &self.keys {
                let count = self.counts.by_column[name];
                if count > 0 {
                    return Err(Error::NullKey {
                        column: name.to_string(),
                        count,
                        file: self.first_null_file.get(idx).cloned().unwrap_or_else(|| "the input".to_string()),
                    });
                }
            }
        }
        Ok(self.counts)
    }
}
