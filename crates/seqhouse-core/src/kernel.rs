//! The sequencing kernel: record batches in, padded windows out. No I/O.
//!
//! [`Sequencer::prepare`] takes the decoded input, concatenates it (in input order, freeing each
//! input column once copied), applies the null-key policy,
//! orders every row by (entity, order-by, input position) and cuts each entity's events into
//! windows. The windows are then materialised in slices with [`OutputWindows::build`], so output that
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
use arrow::compute::{cast, concat, filter_record_batch, is_not_null, take};
use arrow::datatypes::{DataType, Field};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::core_filter::{CoreEvents, CoreValues};
use crate::error::{Error, Result};
use crate::order::order_rows;
use crate::resolve::ResolvedSpec;
use crate::setting::Setting;
use crate::spec::{FOLD, IS_PAD, Mode, NullKeyPolicy, Padding};
use crate::split::{
    KeyText, LastCounts, Shares, Split, SplitWindow, entity_hash, fold_of, split_windows, write_message,
};

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
    /// Rows dropped by `--dedupe-consecutive` (present when it is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_duplicate_rows: Option<u64>,
    /// Events dropped by `--k-core` because their value fell out of the core (the entities it
    /// left too small are counted as `--min-events` drops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_k_core_rows: Option<u64>,
    /// Entities dropped by `--min-events` (present when it is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_min_events_entities: Option<u64>,
    /// Their rows (after `--dedupe-consecutive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_min_events_rows: Option<u64>,
    /// Sessions kept (present with `--session-gap`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sessions: Option<u64>,
    /// Sessions dropped by `--min-session-length`, and their rows (present when it is asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_short_sessions: Option<u64>,
    /// Their rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_short_session_rows: Option<u64>,
    /// Distinct entities among the sequenced rows.
    pub entities: u64,
    /// Windows written.
    pub windows: u64,
    /// Windows dropped because they held fewer than `--min-length` real events.
    pub windows_below_min_length: u64,
    /// Per feature, nulls among the sequenced rows (counted before `--fill-null`).
    pub feature_nulls: BTreeMap<String, u64>,
    /// Per split of a split job, in order, its counts (empty when the job is not split). The
    /// job's `windows` and `windows_below_min_length` are their sums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub splits: Vec<SplitCounts>,
}

/// What one split of a split job holds, and the checks that nothing leaked into it, as counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    /// The split's name.
    pub name: String,
    /// Entities with at least one window in the split.
    pub entities: u64,
    /// Windows written.
    pub windows: u64,
    /// Windows that held targets but were dropped for holding fewer than `--min-length` events.
    pub windows_below_min_length: u64,
    /// Events that are the split's targets (every event of its entities for an entity split).
    pub target_events: u64,
    /// Positions its target masks mark (`target_mask` 1), each event at most once.
    pub scored_events: u64,
    /// Target events that no kept window scores: `--mode last` scores only an entity's last
    /// window, and `--min-length` drops windows (the other modes cover every event). Not a leak.
    pub unscored_target_events: u64,
    /// Leave-last, `train` only: entities with no more events than the held-out splits take
    /// together, kept whole in `train`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entities_too_short_to_hold_out: Option<u64>,
    /// The leakage checks, each 0 when nothing leaked.
    pub leaks: LeakCounts,
}

/// Counted over a split's windows against the events' own splits, apart from how the windows
/// were cut: each is 0 when nothing leaked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeakCounts {
    /// Events in the split's windows that belong to a later split (temporal, leave-last: the
    /// future) or, for an entity split, to another split.
    pub events_of_later_splits: u64,
    /// Marked positions whose event is not one of the split's targets.
    pub scored_non_targets: u64,
    /// Marked positions whose event an earlier window of the entity marked already.
    pub scored_twice: u64,
}

impl SplitCounts {
    fn add(&mut self, other: &SplitCounts) {
        self.entities += other.entities;
        self.windows += other.windows;
        self.windows_below_min_length += other.windows_below_min_length;
        self.target_events += other.target_events;
        self.scored_events += other.scored_events;
        self.unscored_target_events += other.unscored_target_events;
        if let Some(short) = other.entities_too_short_to_hold_out {
            *self.entities_too_short_to_hold_out.get_or_insert(0) += short;
        }
        self.leaks.events_of_later_splits += other.leaks.events_of_later_splits;
        self.leaks.scored_non_targets += other.leaks.scored_non_targets;
        self.leaks.scored_twice += other.leaks.scored_twice;
    }
}

impl SequenceStats {
    /// Adds what a range of a job's entities sequenced (rows, entities, windows, feature nulls) to
    /// these counts. The input and null-key counts are not added: a job split by entity range
    /// counts those once, as it splits its input.
    pub fn add_sequenced(&mut self, range: &SequenceStats) {
        self.sequenced_rows += range.sequenced_rows;
        let add = |total: &mut Option<u64>, part: Option<u64>| {
            if let Some(part) = part {
                *total.get_or_insert(0) += part;
            }
        };
        add(&mut self.dropped_duplicate_rows, range.dropped_duplicate_rows);
        add(&mut self.dropped_k_core_rows, range.dropped_k_core_rows);
        add(&mut self.dropped_min_events_entities, range.dropped_min_events_entities);
        add(&mut self.dropped_min_events_rows, range.dropped_min_events_rows);
        add(&mut self.sessions, range.sessions);
        add(&mut self.dropped_short_sessions, range.dropped_short_sessions);
        add(&mut self.dropped_short_session_rows, range.dropped_short_session_rows);
        self.entities += range.entities;
        self.windows += range.windows;
        self.windows_below_min_length += range.windows_below_min_length;
        for (name, nulls) in &range.feature_nulls {
            *self.feature_nulls.entry(name.clone()).or_insert(0) += nulls;
        }
        if self.splits.is_empty() {
            self.splits =
                range.splits.iter().map(|s| SplitCounts { name: s.name.clone(), ..SplitCounts::default() }).collect();
        }
        for (total, part) in self.splits.iter_mut().zip(&range.splits) {
            total.add(part);
        }
    }

    /// The counts an output of this job reports: those of split `split` (its entities and
    /// windows) beside the job's input counts, or the job's own when it is not split.
    pub fn of_output(&self, split: usize) -> SequenceStats {
        let Some(counts) = self.splits.get(split) else { return self.clone() };
        SequenceStats {
            entities: counts.entities,
            windows: counts.windows,
            windows_below_min_length: counts.windows_below_min_length,
            ..self.clone()
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
    /// Index among the entity's kept windows (of its split).
    seq: u32,
    /// Leading real events the target mask leaves 0 (context, or scored before).
    unscored: u32,
    /// The cross-validation fold (first split, with `--folds`), else 0.
    fold: u8,
    /// The entity's session holding the window (`--session-gap`), else 0.
    session: u32,
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

/// Where [`Sequencer::prepare`] takes the k-core filter's surviving values from.
pub enum Core<'a> {
    /// The batches are the whole input: the filter's fixed point is found over them.
    Whole,
    /// The batches are one range of the input; these values survive over the whole of it.
    Values(&'a CoreValues),
    /// Only collect the range's events into the list (for [`CoreEvents::fixed_point`] over
    /// every range); the sequencer returned holds no windows.
    Collect(&'a mut CoreEvents),
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
    /// Per output (one per split, or one), its windows in output order.
    windows: Vec<Vec<Window>>,
    /// When features are encoded (`--vocab`): the positions, in sorted order, of the events
    /// of the first split (of every event when unsplit), which vocabularies are fitted on.
    fit_ranges: Vec<std::ops::Range<usize>>,
    stats: SequenceStats,
    /// How long preparing took: dropping null keys and sorting, then the rest.
    sort_time: std::time::Duration,
    window_time: std::time::Duration,
}

/// The windows of one output of a [`Sequencer`] (a split's, or the job's when unsplit).
#[derive(Clone, Copy)]
pub struct OutputWindows<'a> {
    sequencer: &'a Sequencer,
    output: usize,
}

impl OutputWindows<'_> {
    /// Number of windows.
    pub fn len(&self) -> usize {
        self.sequencer.windows[self.output].len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Materialises windows `range` (in output order) as one batch of the output's schema.
    pub fn build(&self, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        self.sequencer.build_output(self.output, range)
    }
}

impl Sequencer {
    /// Orders and windows `batches`, which must follow `resolved.input_schema` (see
    /// [`ResolvedSpec::conform`]) and come in input order (files in path order, rows in file
    /// order). `batch_sources[i]` names the file of `batches[i]` for error messages.
    ///
    /// `core` says where the k-core filter's values come from, when the spec asks for one
    /// (else it is not used).
    pub fn prepare(
        resolved: &ResolvedSpec,
        batches: Vec<RecordBatch>,
        batch_sources: &[&str],
        core: Core<'_>,
    ) -> Result<Self> {
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
        let (mut order, mut entity_starts) = (ordered.order, ordered.entity_starts);

        let spec = &resolved.spec;
        let cutter = Cutter::new(resolved, &entities, &orders)?;
        // The first order-by column outlives the others only when it cuts sessions.
        let orders_first = resolved.session_gap.map(|_| orders[0].clone());
        drop(orders);
        let sorted = started.elapsed();

        // Each input feature in sorted order: every window is then one contiguous slice of it,
        // copied instead of gathered value by value.
        let feature_columns: Vec<ArrayRef> =
            resolved.feature_idx.iter().map(|&i| columns[i].clone().expect("feature")).collect();
        drop(columns);
        let order_array = UInt32Array::from_iter_values(order.iter().copied());
        let take_sorted =
            |column: &ArrayRef, order: &UInt32Array| take(column.as_ref(), order, None).map_err(Error::internal);
        let mut sorted_features: Vec<Option<ArrayRef>> = feature_columns
            .par_iter()
            .zip(&resolved.gaps)
            .map(|(column, gap)| gap.is_none().then(|| take_sorted(column, &order_array)).transpose())
            .collect::<Result<_>>()?;
        drop(order_array);
        let mut filters = EventFilters::default();
        // Per entity, where each of its sessions starts (relative to the entity), and the end.
        let mut sessions: Vec<Vec<usize>> = Vec::new();
        if spec.filters_events() {
            let first_order = match &orders_first {
                Some(column) => {
                    let order_array = UInt32Array::from_iter_values(order.iter().copied());
                    Some(session_clock(&take(column.as_ref(), &order_array, None).map_err(Error::internal)?)?)
                }
                None => None,
            };
            let (mut keep, session_of) = filters.keep(resolved, &sorted_features, first_order.as_ref(), &entity_starts);
            if let Some(k_core) = &spec.k_core {
                let f = resolved.feature_position(&k_core.column);
                let values = sorted_features[f].as_ref().expect("an input feature");
                let computed;
                let values_kept = match core {
                    Core::Values(values) => values,
                    Core::Whole | Core::Collect(_) => {
                        let kept = BooleanArray::from(keep.clone());
                        let starts = kept_entity_starts(&keep, &entity_starts);
                        let kept_values = arrow::compute::filter(values, &kept).map_err(Error::internal)?;
                        let kept_sessions: Vec<u32> =
                            session_of.iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| *s).collect();
                        if let Core::Collect(into) = core {
                            // Only collected: the caller finds the values over every range.
                            into.add(&kept_values, &starts, &kept_sessions)?;
                            return Ok(Sequencer::empty(resolved, entities));
                        }
                        let mut events = CoreEvents::new(values.data_type())?;
                        events.add(&kept_values, &starts, &kept_sessions)?;
                        computed = events.fixed_point(
                            k_core.k,
                            spec.min_session_length.unwrap_or(1),
                            spec.min_events.unwrap_or(1),
                        );
                        &computed
                    }
                };
                filters.drop_outside_core(spec, values_kept, values, &mut keep, &entity_starts, &session_of)?;
            }
            filters.apply(&keep, &mut order, &mut entity_starts);
            if resolved.session_gap.is_some() {
                let session_of: Vec<u32> =
                    session_of.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(s, _)| s).collect();
                sessions = entity_starts
                    .windows(2)
                    .map(|run| {
                        let mut starts = vec![0];
                        for p in run[0] + 1..run[1] {
                            if session_of[p] != session_of[p - 1] {
                                starts.push(p - run[0]);
                            }
                        }
                        starts.push(run[1] - run[0]);
                        starts
                    })
                    .collect();
            }
            let keep = BooleanArray::from(keep);
            for sorted in sorted_features.iter_mut().flatten() {
                *sorted = arrow::compute::filter(sorted, &keep).map_err(Error::internal)?;
            }
        }
        // Gaps over each entity's kept events.
        if resolved.gaps.iter().any(Option::is_some) {
            let order_array = UInt32Array::from_iter_values(order.iter().copied());
            for (f, (sorted, gap)) in sorted_features.iter_mut().zip(&resolved.gaps).enumerate() {
                if let Some(gap) = gap {
                    let column = take_sorted(&feature_columns[f], &order_array)?;
                    *sorted = Some(gaps(gap, &spec.features[f].name, &column, &entity_starts)?);
                }
            }
        }
        drop(feature_columns);
        let mut feature_nulls = BTreeMap::new();
        for (feature, sorted) in spec.features.iter().zip(&sorted_features) {
            feature_nulls.insert(feature.name.clone(), sorted.as_ref().expect("sorted").null_count() as u64);
        }
        let sorted_features = sorted_features
            .into_par_iter()
            .zip(&resolved.fills)
            .map(|(sorted, fill)| {
                let sorted = sorted.expect("every feature is sorted");
                match fill {
                    Some(fill) if sorted.null_count() > 0 => {
                        let fill = arrow::array::Scalar::new(fill.clone());
                        zip(&is_not_null(&sorted).map_err(Error::internal)?, &sorted, &fill).map_err(Error::internal)
                    }
                    _ => Ok(sorted),
                }
            })
            .collect::<Result<Vec<_>>>()?;

        let entity_count = (entity_starts.len() - 1) as u64;
        let mut windows: Vec<Vec<Window>> = vec![Vec::new(); spec.output_names().len()];
        let mut splits = cutter.counts();
        let mut below_min = 0u64;
        let mut scratch = Scratch::default();
        let fits_vocab = !spec.vocab.is_empty();
        let mut fit_ranges: Vec<std::ops::Range<usize>> = Vec::new();
        for (e, run) in entity_starts.windows(2).enumerate() {
            // Without sessions, the entity is one session: no bounds to allocate per entity.
            let whole = [0, run[1] - run[0]];
            let bounds: &[usize] = sessions.get(e).map_or(&whole, Vec::as_slice);
            let rows = &order[run[0]..run[1]];
            below_min += cutter.cut(rows, run[0], bounds, &mut windows, &mut splits, &mut scratch);
            if fits_vocab {
                let first_split = &scratch.targets[0];
                let (start, end) = (run[0] + first_split.start, run[0] + first_split.end);
                match fit_ranges.last_mut() {
                    Some(last) if last.end == start => last.end = end,
                    _ if start < end => fit_ranges.push(start..end),
                    _ => {}
                }
            }
        }

        let window_time = started.elapsed() - sorted;
        tracing::trace!(concat = ?concatenated, sort = ?(sorted - concatenated), features_and_windows = ?window_time, "prepare phases");
        let stats = SequenceStats {
            input_rows: null_keys.input_rows,
            dropped_null_key_rows: null_keys.dropped,
            null_key_rows_by_column: null_keys.by_column,
            sequenced_rows: order.len() as u64,
            dropped_duplicate_rows: spec.dedupe_consecutive.then_some(filters.duplicates),
            dropped_k_core_rows: spec.k_core.as_ref().map(|_| filters.outside_core),
            dropped_min_events_entities: spec.min_events.map(|_| filters.small_entities),
            dropped_min_events_rows: spec.min_events.map(|_| filters.small_entity_rows),
            sessions: spec.session_gap.as_ref().map(|_| sessions.iter().map(|s| s.len() as u64 - 1).sum()),
            dropped_short_sessions: spec.min_session_length.map(|_| filters.short_sessions),
            dropped_short_session_rows: spec.min_session_length.map(|_| filters.short_session_rows),
            entities: entity_count,
            windows: windows.iter().map(|w| w.len() as u64).sum(),
            windows_below_min_length: below_min,
            feature_nulls,
            splits,
        };
        Ok(Sequencer {
            resolved: resolved.clone(),
            entities,
            sorted_features,
            order,
            windows,
            fit_ranges,
            stats,
            sort_time: sorted,
            window_time,
        })
    }

    /// Adds the time preparing took to `phases`: dropping null keys and ordering the events
    /// to [`crate::Phase::Sort`], the rest to [`crate::Phase::Window`].
    pub fn add_times(&self, phases: &crate::PhaseTimes) {
        phases.add(crate::Phase::Sort, self.sort_time);
        phases.add(crate::Phase::Window, self.window_time);
    }

    /// Counts, into `counts` (one per `--vocab`, in its order), the values of the events
    /// vocabularies are fitted on: those of the first split, or every event when unsplit.
    pub fn count_values(&self, counts: &mut [crate::vocab::ValueCounts]) -> Result<()> {
        let spec = &self.resolved.spec;
        let total = self.order.len();
        let keep = match self.fit_ranges.as_slice() {
            [only] if only.start == 0 && only.end == total => None,
            ranges => {
                let mut keep = vec![false; total];
                ranges.iter().for_each(|range| keep[range.clone()].fill(true));
                Some(BooleanArray::from(keep))
            }
        };
        counts.par_iter_mut().zip(&spec.vocab).try_for_each(|(counts, vocab)| {
            let values = &self.sorted_features[self.resolved.feature_position(&vocab.name)];
            match &keep {
                None => counts.add(values),
                Some(keep) => counts.add(&arrow::compute::filter(values, keep).map_err(Error::internal)?),
            }
        })
    }

    /// Replaces each encoded feature's values by their ids in `vocabularies` (one per
    /// `--vocab`, in its order). Call once, before building any window.
    pub fn encode(&mut self, vocabularies: &[crate::vocab::Vocabulary]) -> Result<()> {
        let spec = &self.resolved.spec;
        let encoded = (spec.vocab.par_iter().zip(vocabularies))
            .map(|(vocab, vocabulary)| {
                let f = self.resolved.feature_position(&vocab.name);
                Ok((f, vocabulary.encode(&self.sorted_features[f])?))
            })
            .collect::<Result<Vec<_>>>()?;
        for (f, ids) in encoded {
            self.sorted_features[f] = ids;
        }
        Ok(())
    }

    /// A sequencer of no windows (for a pass that only collected what it needed).
    fn empty(resolved: &ResolvedSpec, entities: Vec<ArrayRef>) -> Sequencer {
        Sequencer {
            resolved: resolved.clone(),
            entities,
            sorted_features: Vec::new(),
            order: Vec::new(),
            windows: vec![Vec::new(); resolved.spec.output_names().len()],
            fit_ranges: Vec::new(),
            stats: SequenceStats::default(),
            sort_time: std::time::Duration::ZERO,
            window_time: std::time::Duration::ZERO,
        }
    }

    /// Number of output rows (kept windows) of every output together.
    pub fn num_windows(&self) -> usize {
        self.windows.iter().map(Vec::len).sum()
    }

    /// The windows of output `output` (split `output`'s, or the job's when it is not split).
    pub fn output(&self, output: usize) -> OutputWindows<'_> {
        OutputWindows { sequencer: self, output }
    }

    /// The job's counts.
    pub fn stats(&self) -> &SequenceStats {
        &self.stats
    }

    /// Materialises windows `range` of output `output` (in output order) as one record batch
    /// of that output's schema.
    fn build_output(&self, output: usize, range: std::ops::Range<usize>) -> Result<RecordBatch> {
        let windows = &self.windows[output][range];
        let n = self.resolved.spec.sequence_length;
        let pre = self.resolved.spec.padding == Padding::Pre;
        let firsts = UInt32Array::from_iter_values(windows.iter().map(|w| self.order[w.start as usize]));

        let schema = self.resolved.output_schemas[output].clone();
        let mut columns: Vec<ArrayRef> = self
            .entities
            .iter()
            .map(|e| take(e.as_ref(), &firsts, None).map_err(Error::internal))
            .collect::<Result<_>>()?;
        if self.resolved.session_gap.is_some() {
            columns.push(Arc::new(Int32Array::from_iter_values(windows.iter().map(|w| w.session as i32))));
        }
        columns.push(Arc::new(Int64Array::from_iter_values(windows.iter().map(|w| w.seq as i64))));
        columns.push(Arc::new(Int32Array::from_iter_values(windows.iter().map(|w| w.len as i32))));
        let features: Vec<ArrayRef> = self
            .sorted_features
            .par_iter()
            .enumerate()
            .map(|(f, sorted)| {
                let values = padded_windows(sorted, &self.resolved.pads[f], windows, n, pre)?;
                let field = list_item(
                    schema
                        .field_with_name(&self.resolved.spec.features[f].output_name())
                        .map_err(Error::internal)?
                        .data_type(),
                );
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
        let mask_field = list_item(schema.field_with_name(IS_PAD).map_err(Error::internal)?.data_type());
        let mask = FixedSizeListArray::try_new(mask_field.clone(), n as i32, Arc::new(Int8Array::from(mask)), None)
            .map_err(Error::internal)?;
        columns.push(Arc::new(mask));
        if self.resolved.spec.target_mask {
            let mut marks = Vec::with_capacity(windows.len() * n);
            for w in windows {
                let (real, pads) = (w.len as usize, n - w.len as usize);
                if pre {
                    marks.extend(std::iter::repeat_n(0i8, pads));
                }
                marks.extend(std::iter::repeat_n(0i8, w.unscored as usize));
                marks.extend(std::iter::repeat_n(1i8, real - w.unscored as usize));
                if !pre {
                    marks.extend(std::iter::repeat_n(0i8, pads));
                }
            }
            let marks = FixedSizeListArray::try_new(mask_field, n as i32, Arc::new(Int8Array::from(marks)), None)
                .map_err(Error::internal)?;
            columns.push(Arc::new(marks));
        }
        if schema.column_with_name(FOLD).is_some() {
            columns.push(Arc::new(Int32Array::from_iter_values(windows.iter().map(|w| i32::from(w.fold)))));
        }
        RecordBatch::try_new(schema, columns).map_err(Error::internal)
    }
}

/// The filters that drop events before windowing (`--dedupe-consecutive`, `--min-events`),
/// over the events in sorted order, with what they dropped.
#[derive(Debug, Default)]
struct EventFilters {
    duplicates: u64,
    short_sessions: u64,
    short_session_rows: u64,
    small_entities: u64,
    small_entity_rows: u64,
    outside_core: u64,
}

/// The first order-by column (in sorted order) as integers for `--session-gap`: its own
/// units, days for dates.
fn session_clock(column: &ArrayRef) -> Result<Int64Array> {
    let days = matches!(column.data_type(), DataType::Date32 | DataType::Date64);
    let column = if days { cast(column, &DataType::Date32).map_err(Error::internal)? } else { column.clone() };
    let via = if days { cast(&column, &DataType::Int32).map_err(Error::internal)? } else { column };
    Ok(cast(&via, &DataType::Int64).map_err(Error::internal)?.as_primitive::<arrow::datatypes::Int64Type>().clone())
}

impl EventFilters {
    /// Which sorted positions are kept, and (with `--session-gap`) each position's session
    /// number within its entity. `sorted` holds the input features in sorted order (`None`
    /// for time deltas, which are not compared); `clock` the first order-by column, in sorted
    /// order, as integers.
    fn keep(
        &mut self,
        resolved: &ResolvedSpec,
        sorted: &[Option<ArrayRef>],
        clock: Option<&Int64Array>,
        entity_starts: &[usize],
    ) -> (Vec<bool>, Vec<u32>) {
        let spec = &resolved.spec;
        let rows = *entity_starts.last().unwrap_or(&0);
        let mut keep = vec![true; rows];
        if spec.dedupe_consecutive && rows > 1 {
            // Position p repeats p - 1 when no input feature is distinct there (nulls equal).
            let mut repeats = vec![true; rows - 1];
            for (column, _) in sorted.iter().zip(&resolved.gaps).filter(|(_, gap)| gap.is_none()) {
                let column = column.as_ref().expect("input features are sorted");
                let (earlier, later) = (column.slice(0, rows - 1), column.slice(1, rows - 1));
                let distinct = arrow::compute::kernels::cmp::distinct(&later, &earlier).expect("same types");
                for (repeat, distinct) in repeats.iter_mut().zip(distinct.values().iter()) {
                    *repeat &= !distinct;
                }
            }
            for run in entity_starts.windows(2) {
                for p in run[0] + 1..run[1] {
                    keep[p] = !repeats[p - 1];
                }
            }
            self.duplicates = keep.iter().filter(|k| !**k).count() as u64;
        }
        let mut session_of = Vec::new();
        if let (Some(gap), Some(clock)) = (resolved.session_gap, clock) {
            session_of = vec![0u32; rows];
            let min = spec.min_session_length.unwrap_or(1);
            for run in entity_starts.windows(2) {
                // Sessions over the kept events: a new one where the clock moves on by more
                // than the gap since the previous kept event.
                let kept: Vec<usize> = (run[0]..run[1]).filter(|&p| keep[p]).collect();
                let mut session = 0u32;
                let mut start = 0;
                for i in 0..=kept.len() {
                    let ends =
                        i == kept.len() || i > 0 && clock.value(kept[i]).saturating_sub(clock.value(kept[i - 1])) > gap;
                    if ends && i > start {
                        if i - start < min {
                            kept[start..i].iter().for_each(|&p| keep[p] = false);
                            self.short_sessions += 1;
                            self.short_session_rows += (i - start) as u64;
                        } else {
                            kept[start..i].iter().for_each(|&p| session_of[p] = session);
                            session += 1;
                        }
                        start = i;
                    }
                }
            }
        }
        // With k-core, min-events is its entity side, applied with it.
        if spec.k_core.is_none() {
            self.drop_small_entities(spec.min_events, &mut keep, entity_starts);
        }
        (keep, session_of)
    }

    /// `--min-events`: drops entities left with fewer than `min` kept events.
    fn drop_small_entities(&mut self, min: Option<usize>, keep: &mut [bool], entity_starts: &[usize]) {
        let Some(min) = min else { return };
        for run in entity_starts.windows(2) {
            let events = keep[run[0]..run[1]].iter().filter(|k| **k).count();
            if events < min {
                keep[run[0]..run[1]].fill(false);
                self.small_entities += u64::from(events > 0);
                self.small_entity_rows += events as u64;
            }
        }
    }

    /// `--k-core`: drops the kept events whose value of the k-core column (`values`, in
    /// sorted order) does not survive in `core`, then the sessions (numbered by `session_of`
    /// within each entity, with `--session-gap`) and entities left too small.
    fn drop_outside_core(
        &mut self,
        spec: &crate::SequenceSpec,
        core: &CoreValues,
        values: &ArrayRef,
        keep: &mut [bool],
        entity_starts: &[usize],
        session_of: &[u32],
    ) -> Result<()> {
        for (keep, survives) in keep.iter_mut().zip(core.keeps(values)?) {
            if *keep && !survives {
                *keep = false;
                self.outside_core += 1;
            }
        }
        if let Some(min) = spec.min_session_length.filter(|_| !session_of.is_empty()) {
            for run in entity_starts.windows(2) {
                let kept: Vec<usize> = (run[0]..run[1]).filter(|&p| keep[p]).collect();
                for session in kept.chunk_by(|&a, &b| session_of[a] == session_of[b]) {
                    if session.len() < min {
                        session.iter().for_each(|&p| keep[p] = false);
                        self.short_sessions += 1;
                        self.short_session_rows += session.len() as u64;
                    }
                }
            }
        }
        self.drop_small_entities(spec.min_events, keep, entity_starts);
        Ok(())
    }

    /// Drops the positions `keep` does not keep from `order`, and entities left with none.
    fn apply(&self, keep: &[bool], order: &mut Vec<u32>, entity_starts: &mut Vec<usize>) {
        let mut position = 0;
        order.retain(|_| {
            position += 1;
            keep[position - 1]
        });
        *entity_starts = kept_entity_starts(keep, entity_starts);
    }
}

/// Where each entity left with events starts among the events `keep` keeps (then the end).
fn kept_entity_starts(keep: &[bool], entity_starts: &[usize]) -> Vec<usize> {
    let mut starts = vec![0];
    let mut kept = 0;
    for run in entity_starts.windows(2) {
        kept += keep[run[0]..run[1]].iter().filter(|k| **k).count();
        if kept > *starts.last().expect("starts at 0") {
            starts.push(kept);
        }
    }
    starts
}

/// The gaps of `gap` over `column` in sorted order: each event's value minus its entity's
/// previous event's, in the unit asked for; null for an entity's first event and where either
/// value is null.
fn gaps(gap: &crate::resolve::Gap, name: &str, column: &ArrayRef, entity_starts: &[usize]) -> Result<ArrayRef> {
    use crate::resolve::GapKind;
    let as_i64 = match gap.kind {
        GapKind::Date => cast(&cast(column, &DataType::Date32).map_err(Error::internal)?, &DataType::Int32),
        _ => cast(column, &DataType::Int64),
    };
    let values = cast(&as_i64.map_err(Error::internal)?, &DataType::Int64).map_err(Error::internal)?;
    let values = values.as_primitive::<arrow::datatypes::Int64Type>();
    let mut out = arrow::array::Int64Builder::with_capacity(values.len());
    for run in entity_starts.windows(2) {
        if run[0] < run[1] {
            out.append_null();
        }
        for p in run[0] + 1..run[1] {
            if values.is_null(p) || values.is_null(p - 1) {
                out.append_null();
                continue;
            }
            let delta = values.value(p).checked_sub(values.value(p - 1));
            let scaled = delta.and_then(|d| d.checked_mul(gap.multiplier)).map(|d| d / gap.divisor);
            match scaled {
                Some(value) => out.append_value(value),
                None => {
                    return Err(Error::UnsupportedType {
                        column: name.to_string(),
                        message: format!(
                            "the time delta between {} and {} does not fit a 64-bit integer",
                            values.value(p - 1),
                            values.value(p)
                        ),
                    });
                }
            }
        }
    }
    Ok(Arc::new(out.finish()))
}

/// How a job cuts each entity's events into the windows of its outputs: the split kind, with
/// what it needs from the data.
struct Cutter<'a> {
    resolved: &'a ResolvedSpec,
    kind: Kind<'a>,
}

enum Kind<'a> {
    /// One output holding every event.
    Whole,
    /// Every entity to one split, by the entity hash of its key values.
    Entity { entities: &'a [ArrayRef], seed: i64, thresholds: Vec<u64>, folds: Option<u32> },
    /// Per input row, the number of cutoffs at or before its first order-by value: the index
    /// of the split whose time range holds it.
    Temporal { periods: Vec<u8> },
    /// Per entity, its last events.
    LeaveLast(&'a LastCounts),
}

/// Buffers [`Cutter::cut`] reuses from entity to entity.
#[derive(Default)]
struct Scratch {
    message: String,
    owner: Vec<u8>,
    targets: Vec<std::ops::Range<usize>>,
    cuts: Vec<SplitWindow>,
    /// The session of each of `cuts`.
    cut_sessions: Vec<u32>,
    /// The targets of each split within one session, relative to it.
    session_targets: Vec<std::ops::Range<usize>>,
    below_min: Vec<u64>,
    /// Per split, prefix counts over the entity's positions: events of that split, and of a
    /// later one.
    own: Vec<Vec<u32>>,
    later: Vec<Vec<u32>>,
}

impl<'a> Cutter<'a> {
    /// `entities` in input order; `orders` the order-by columns, in input order.
    fn new(resolved: &'a ResolvedSpec, entities: &'a [ArrayRef], orders: &[ArrayRef]) -> Result<Self> {
        let kind = match &resolved.spec.split {
            None => Kind::Whole,
            Some(Split::Entity { fractions, seed, folds }) => {
                Kind::Entity { entities, seed: *seed, thresholds: fractions.thresholds(), folds: *folds }
            }
            Some(Split::Temporal { .. }) => {
                let first = &orders[0];
                let mut periods = vec![0u8; first.len()];
                for cutoff in &resolved.cutoffs {
                    let before = arrow::compute::kernels::cmp::lt(first, &arrow::array::Scalar::new(cutoff))
                        .map_err(Error::internal)?;
                    for (period, before) in periods.iter_mut().zip(before.values().iter()) {
                        *period += u8::from(!before);
                    }
                }
                Kind::Temporal { periods }
            }
            Some(Split::LeaveLast { counts }) => Kind::LeaveLast(counts),
        };
        Ok(Cutter { resolved, kind })
    }

    /// The counts of each split, all zero (none when the job is not split).
    fn counts(&self) -> Vec<SplitCounts> {
        let names = self.resolved.spec.output_names();
        let mut counts: Vec<SplitCounts> = names
            .iter()
            .flatten()
            .map(|name| SplitCounts { name: name.to_string(), ..SplitCounts::default() })
            .collect();
        if let (Kind::LeaveLast(_), Some(train)) = (&self.kind, counts.first_mut()) {
            train.entities_too_short_to_hold_out = Some(0);
        }
        counts
    }

    /// Cuts one entity, whose events are input rows `rows` in order, starting at position
    /// `first` of the job's order, and whose sessions start at `sessions` (relative positions,
    /// then the end; `[0, len]` for one): appends its windows to their outputs' and counts them.
    /// Returns the windows dropped for `--min-length`.
    fn cut(
        &self,
        rows: &[u32],
        first: usize,
        sessions: &[usize],
        windows: &mut [Vec<Window>],
        counts: &mut [SplitCounts],
        scratch: &mut Scratch,
    ) -> u64 {
        let spec = &self.resolved.spec;
        let len = rows.len();
        let outputs = windows.len();
        let mut fold = 0u8;
        scratch.targets.clear();
        scratch.owner.clear();
        match &self.kind {
            Kind::Whole => scratch.targets.push(0..len),
            Kind::Entity { entities, seed, thresholds, folds } => {
                let (bucket, bits) = entity_hash(entity_message(entities, rows[0] as usize, *seed, scratch));
                let split = Shares::split_of(thresholds, bucket);
                scratch.targets.extend((0..outputs).map(|s| if s == split { 0..len } else { len..len }));
                scratch.owner.resize(len, split as u8);
                if split == 0
                    && let Some(folds) = folds
                {
                    fold = fold_of(bits, *folds) as u8;
                }
            }
            Kind::Temporal { periods } => {
                scratch.owner.extend(rows.iter().map(|&row| periods[row as usize]));
                // The events before cutoff k: those whose period is at most k (a prefix, as
                // the events are in time order).
                let mut before = vec![0usize; outputs - 1];
                for &period in &scratch.owner {
                    for (k, count) in before.iter_mut().enumerate() {
                        *count += usize::from(usize::from(period) <= k);
                    }
                }
                scratch.targets.extend(crate::split::Cutoffs::targets(len, &before));
            }
            Kind::LeaveLast(last) => {
                let (targets, too_few) = last.targets(len);
                if too_few {
                    *counts[0].entities_too_short_to_hold_out.get_or_insert(0) += 1;
                }
                scratch.owner.resize(len, 0);
                for (split, range) in targets.iter().enumerate() {
                    scratch.owner[range.clone()].fill(split as u8);
                }
                scratch.targets.extend(targets);
            }
        }
        scratch.cuts.clear();
        scratch.cut_sessions.clear();
        scratch.below_min.clear();
        scratch.below_min.resize(outputs, 0);
        let (n, stride) = (spec.sequence_length, spec.effective_stride());
        // Each session is cut on its own, over the part of each split's targets (and history)
        // that falls in it: windows never cross a session.
        for (session, bounds) in sessions.windows(2).enumerate() {
            let (from, to) = (bounds[0], bounds[1]);
            scratch.session_targets.clear();
            scratch.session_targets.extend(scratch.targets.iter().map(|range| {
                let (start, end) = (range.start.clamp(from, to) - from, range.end.clamp(from, to) - from);
                start..end
            }));
            let before = scratch.cuts.len();
            split_windows(
                spec.mode,
                n,
                stride,
                spec.min_length,
                &scratch.session_targets,
                &mut scratch.cuts,
                &mut scratch.below_min,
            );
            for cut in &mut scratch.cuts[before..] {
                (cut.start, cut.end, cut.mask_from) = (cut.start + from, cut.end + from, cut.mask_from + from);
            }
            scratch.cut_sessions.resize(scratch.cuts.len(), session as u32);
        }
        let mut seq = [0u32; 256];
        let mut windows_per_split = [0u32; 256];
        let mut current_session = 0;
        for (cut, &session) in scratch.cuts.iter().zip(&scratch.cut_sessions) {
            if session != current_session {
                (seq, current_session) = ([0u32; 256], session);
            }
            windows[cut.split].push(Window {
                start: (first + cut.start) as u32,
                len: (cut.end - cut.start) as u32,
                seq: seq[cut.split],
                unscored: (cut.mask_from - cut.start) as u32,
                fold: if cut.split == 0 { fold } else { 0 },
                session,
            });
            seq[cut.split] += 1;
            windows_per_split[cut.split] += 1;
        }
        if !counts.is_empty() {
            self.check(scratch, counts, &windows_per_split);
        }
        scratch.below_min.iter().sum()
    }

    /// Counts what one entity's cuts hold per split and checks them against each event's own
    /// split (`scratch.owner`), apart from how they were cut.
    fn check(&self, scratch: &mut Scratch, counts: &mut [SplitCounts], windows_per_split: &[u32]) {
        let len = scratch.owner.len();
        if matches!(self.kind, Kind::Entity { .. }) {
            return Self::check_entity(scratch, counts, windows_per_split);
        }
        scratch.own.resize_with(counts.len(), Vec::new);
        scratch.later.resize_with(counts.len(), Vec::new);
        for split in 0..counts.len() {
            let (own, later) = (&mut scratch.own[split], &mut scratch.later[split]);
            own.clear();
            later.clear();
            own.push(0);
            later.push(0);
            for &owner in &scratch.owner {
                let owner = usize::from(owner);
                own.push(own.last().copied().unwrap_or(0) + u32::from(owner == split));
                later.push(later.last().copied().unwrap_or(0) + u32::from(owner > split));
            }
            let count = &mut counts[split];
            count.target_events += u64::from(own[len]);
            count.windows_below_min_length += scratch.below_min[split];
            count.windows += u64::from(windows_per_split[split]);
            count.entities += u64::from(windows_per_split[split] > 0);
        }
        Self::check_cuts(scratch, counts);
    }

    /// [`Cutter::check`] for an entity split, whose events all belong to one split: the same
    /// counts in closed form, as that split's windows must hold no other split's events.
    fn check_entity(scratch: &Scratch, counts: &mut [SplitCounts], windows_per_split: &[u32]) {
        let (len, owner) = (scratch.owner.len(), usize::from(scratch.owner.first().copied().unwrap_or(0)));
        for (split, count) in counts.iter_mut().enumerate() {
            count.windows_below_min_length += scratch.below_min[split];
            count.windows += u64::from(windows_per_split[split]);
            count.entities += u64::from(windows_per_split[split] > 0);
            if split == owner {
                count.target_events += len as u64;
            }
        }
        let mut scored_to = 0usize;
        let mut scored_targets = 0u64;
        for cut in &scratch.cuts {
            let count = &mut counts[cut.split];
            let scored = (cut.end - cut.mask_from) as u64;
            count.scored_events += scored;
            if cut.split != owner {
                count.leaks.events_of_later_splits += (cut.end - cut.start) as u64;
                count.leaks.scored_non_targets += scored;
                continue;
            }
            let twice = cut.end.min(scored_to).saturating_sub(cut.mask_from);
            count.leaks.scored_twice += twice as u64;
            scored_targets += scored - twice as u64;
            if cut.end > cut.mask_from {
                scored_to = scored_to.max(cut.end);
            }
        }
        counts[owner].unscored_target_events += (len as u64).saturating_sub(scored_targets);
    }

    /// The counts of `scratch.cuts` against the prefix counts of [`Cutter::check`].
    fn check_cuts(scratch: &Scratch, counts: &mut [SplitCounts]) {
        let len = scratch.owner.len();
        let mut scored_to = vec![0usize; counts.len()];
        let mut scored_targets = vec![0u64; counts.len()];
        for cut in &scratch.cuts {
            let (own, later) = (&scratch.own[cut.split], &scratch.later[cut.split]);
            let count = &mut counts[cut.split];
            let between = |prefix: &[u32], from: usize, to: usize| u64::from(prefix[to] - prefix[from]);
            count.leaks.events_of_later_splits += between(later, cut.start, cut.end);
            let scored = (cut.end - cut.mask_from) as u64;
            count.scored_events += scored;
            let own_scored = between(own, cut.mask_from, cut.end);
            count.leaks.scored_non_targets += scored - own_scored;
            let twice = cut.end.min(scored_to[cut.split]).saturating_sub(cut.mask_from);
            count.leaks.scored_twice += twice as u64;
            scored_targets[cut.split] += own_scored.saturating_sub(twice as u64);
            if cut.end > cut.mask_from {
                scored_to[cut.split] = scored_to[cut.split].max(cut.end);
            }
        }
        for (split, count) in counts.iter_mut().enumerate() {
            count.unscored_target_events += u64::from(scratch.own[split][len]).saturating_sub(scored_targets[split]);
        }
    }
}

/// The entity-hash message of the entity whose key values are at input row `row`.
fn entity_message<'s>(entities: &[ArrayRef], row: usize, seed: i64, scratch: &'s mut Scratch) -> &'s str {
    use arrow::datatypes::*;
    let mut keys: Vec<KeyText> = Vec::with_capacity(entities.len());
    for column in entities {
        let column = column.as_ref();
        keys.push(match column.data_type() {
            DataType::Int8 => KeyText::Int(column.as_primitive::<Int8Type>().value(row).into()),
            DataType::Int16 => KeyText::Int(column.as_primitive::<Int16Type>().value(row).into()),
            DataType::Int32 => KeyText::Int(column.as_primitive::<Int32Type>().value(row).into()),
            DataType::Int64 => KeyText::Int(column.as_primitive::<Int64Type>().value(row)),
            DataType::UInt8 => KeyText::UInt(column.as_primitive::<UInt8Type>().value(row).into()),
            DataType::UInt16 => KeyText::UInt(column.as_primitive::<UInt16Type>().value(row).into()),
            DataType::UInt32 => KeyText::UInt(column.as_primitive::<UInt32Type>().value(row).into()),
            DataType::UInt64 => KeyText::UInt(column.as_primitive::<UInt64Type>().value(row)),
            DataType::Utf8 => KeyText::Str(column.as_string::<i32>().value(row)),
            DataType::LargeUtf8 => KeyText::Str(column.as_string::<i64>().value(row)),
            other => unreachable!("the entity split refuses {other} keys when it is bound"),
        });
    }
    write_message(&mut scratch.message, seed, &keys);
    &scratch.message
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
