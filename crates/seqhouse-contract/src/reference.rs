//! A deliberately naive sequencer, written from the definitions in the README and sharing no code
//! with the kernel: rows of plain values, a stable sort, loops. Tests compare engines against it.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Int32Type, Int64Type};

use seqhouse_core::{Mode, NullKeyPolicy, Padding, SequenceSpec};

/// A cell value, typed loosely enough to compare across engines.
#[derive(Debug, Clone)]
pub enum Value {
    /// Booleans.
    Bool(bool),
    /// Signed integers, dates (days) and timestamps (their unit).
    Int(i64),
    /// Unsigned integers.
    UInt(u64),
    /// Floats, compared by total order.
    Float(f64),
    /// Strings.
    Str(String),
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Value {}
impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        use Value::*;
        match (self, other) {
            (Bool(a), Bool(b)) => a.cmp(b),
            (Int(a), Int(b)) => a.cmp(b),
            (UInt(a), UInt(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            (a, b) => panic!("comparing values of different types: {a:?} vs {b:?}"),
        }
    }
}

/// Reads element `i` of an array of a supported type.
pub fn value_at(array: &ArrayRef, i: usize) -> Option<Value> {
    if array.is_null(i) {
        return None;
    }
    use arrow::datatypes::*;
    // Direct downcasts: this runs for every output value of large test outputs.
    Some(match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(i) as i64),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(i) as i64),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::UInt(array.as_primitive::<UInt8Type>().value(i) as u64),
        DataType::UInt16 => Value::UInt(array.as_primitive::<UInt16Type>().value(i) as u64),
        DataType::UInt32 => Value::UInt(array.as_primitive::<UInt32Type>().value(i) as u64),
        DataType::UInt64 => Value::UInt(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::Str(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::Str(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::Str(array.as_string_view().value(i).to_string()),
        DataType::Date32 => Value::Int(array.as_primitive::<Date32Type>().value(i) as i64),
        DataType::Date64 | DataType::Timestamp(_, _) => {
            let raw = cast(&array.slice(i, 1), &DataType::Int64).unwrap();
            Value::Int(raw.as_primitive::<Int64Type>().value(0))
        }
        other => panic!("reference: unsupported type {other}"),
    })
}

/// Parses a pad or fill text the simple way, for the column's type.
pub fn parse_simple(text: &str, data_type: &DataType) -> Value {
    match data_type {
        DataType::Boolean => Value::Bool(matches!(text.trim(), "true" | "1")),
        DataType::Float32 | DataType::Float64 => Value::Float(text.trim().parse().unwrap()),
        DataType::Utf8 | DataType::LargeUtf8 => Value::Str(text.to_string()),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            Value::UInt(text.trim().parse().unwrap())
        }
        // ISO dates and timestamps, as arrow parses them (their raw integers otherwise).
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _) if text.trim().parse::<i64>().is_err() => {
            let parsed = cast(&(Arc::new(arrow::array::StringArray::from(vec![text.trim()])) as ArrayRef), data_type)
                .unwrap_or_else(|e| panic!("reference: {text} as {data_type}: {e}"));
            value_at(&parsed, 0).expect("parsed")
        }
        _ => Value::Int(text.trim().parse().unwrap()),
    }
}

fn zero(data_type: &DataType) -> Value {
    parse_simple(if matches!(data_type, DataType::Utf8 | DataType::LargeUtf8) { "" } else { "0" }, data_type)
}

/// One output row in plain values.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Row {
    /// Entity values.
    pub entity: Vec<Value>,
    /// `sequence_index`.
    pub sequence_index: i64,
    /// `sequence_length`.
    pub sequence_length: i32,
    /// Each feature's N values.
    pub features: Vec<Vec<Option<Value>>>,
    /// `is_pad_sequence`.
    pub mask: Vec<i8>,
    /// `target_mask`, when the output has it.
    pub target_mask: Option<Vec<i8>>,
    /// `fold`, when the output has it.
    pub fold: Option<i32>,
    /// `session_index`, when the output has it.
    pub session: Option<i32>,
}

/// The windows of one entity of `len` events, straight from the definitions.
fn cuts(mode: Mode, len: usize, n: usize, stride: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    match mode {
        Mode::Chunk => {
            let mut start = 0;
            while start < len {
                out.push((start, usize::min(start + n, len)));
                start += n;
            }
        }
        Mode::Sliding => {
            let mut start = 0;
            loop {
                let end = usize::min(start + n, len);
                out.push((start, end));
                if end == len {
                    break;
                }
                start += stride;
            }
        }
        Mode::Last => out.push((len.saturating_sub(n), len)),
        Mode::Prefix => {
            for k in 1..=len {
                out.push((k.saturating_sub(n), k));
            }
        }
    }
    out
}

/// Sequences `batches` (in input order) per `spec`, ignoring any split: the rows of an unsplit
/// job. Returns the rows, or the name of the first key column holding a null under the `error`
/// policy.
pub fn sequence(spec: &SequenceSpec, batches: &[RecordBatch]) -> Result<Vec<Row>, String> {
    let mut unsplit = spec.clone();
    unsplit.split = None;
    Ok(sequence_outputs(&unsplit, batches)?.pop().expect("one output").1)
}

/// One output's name (a split's, or `None`) and its rows.
pub type OutputRows = (Option<String>, Vec<Row>);

/// Sequences `batches` (in input order) per `spec`: each output's name (a split's, or `None`)
/// with its rows, from the definitions in the README. Returns the name of the first key column
/// holding a null under the `error` policy.
pub fn sequence_outputs(spec: &SequenceSpec, batches: &[RecordBatch]) -> Result<Vec<OutputRows>, String> {
    sequence_and_count(spec, batches).map(|(out, _)| out)
}

/// The manifest's session counts of `spec` over `batches` (`None` where the spec does not ask
/// for them): sessions of the entities kept, short sessions dropped and their events.
pub fn session_counts(spec: &SequenceSpec, batches: &[RecordBatch]) -> (Option<u64>, Option<u64>, Option<u64>) {
    let (_, counts) = sequence_and_count(spec, batches).expect("no null keys under error");
    let sessions = spec.session_gap.as_ref().map(|_| counts.sessions);
    let short = spec.min_session_length.map(|_| (counts.short_sessions, counts.short_session_rows));
    (sessions, short.map(|s| s.0), short.map(|s| s.1))
}

/// What [`session_counts`] reports.
#[derive(Default)]
struct SessionCounts {
    sessions: u64,
    short_sessions: u64,
    short_session_rows: u64,
}

fn sequence_and_count(
    spec: &SequenceSpec,
    batches: &[RecordBatch],
) -> Result<(Vec<OutputRows>, SessionCounts), String> {
    let mut session_counts = SessionCounts::default();
    let column = |name: &str| -> (DataType, Vec<Option<Value>>) {
        let mut values = Vec::new();
        let mut data_type = DataType::Null;
        for batch in batches {
            let array = batch.column_by_name(name).unwrap_or_else(|| panic!("no column {name}"));
            data_type = array.data_type().clone();
            values.extend((0..array.len()).map(|i| value_at(array, i)));
        }
        (data_type, values)
    };
    let entity: Vec<Vec<Option<Value>>> = spec.entity.iter().map(|c| column(c).1).collect();
    let order: Vec<Vec<Option<Value>>> = spec.order_by.iter().map(|c| column(c).1).collect();
    let first_order_type = column(&spec.order_by[0]).0;
    // A time delta's feature holds its column's values until the gaps are taken per entity.
    let features: Vec<(DataType, Vec<Option<Value>>)> = (spec.features.iter())
        .map(|f| match spec.time_delta(&f.name) {
            Some(delta) => (DataType::Int64, column(&delta.column).1),
            None => column(&f.name),
        })
        .collect();
    let delta_column_types: Vec<Option<DataType>> =
        (spec.features.iter()).map(|f| spec.time_delta(&f.name).map(|delta| column(&delta.column).0)).collect();
    let rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();

    // Under `error`, the first key column (entity columns, then order-by) holding a null is named.
    for (name, col) in spec.entity.iter().zip(&entity).chain(spec.order_by.iter().zip(&order)) {
        if spec.on_null_key == NullKeyPolicy::Error && col.iter().any(Option::is_none) {
            return Err(name.clone());
        }
    }
    let mut kept: Vec<usize> = (0..rows).filter(|&r| entity.iter().chain(&order).all(|col| col[r].is_some())).collect();
    let key = |cols: &Vec<Vec<Option<Value>>>, r: usize| cols.iter().map(|c| c[r].clone().unwrap()).collect::<Vec<_>>();
    // A stable sort: equal keys keep input order.
    kept.sort_by(|&a, &b| key(&entity, a).cmp(&key(&entity, b)).then(key(&order, a).cmp(&key(&order, b))));

    let n = spec.sequence_length;
    let stride = spec.stride.unwrap_or(1);
    let pads: Vec<Value> = spec
        .features
        .iter()
        .zip(&features)
        .map(|(f, (t, _))| match spec.vocab_of(&f.name) {
            Some(_) => Value::Int(0),
            None => f.pad.as_deref().map(|p| parse_simple(p, t)).unwrap_or_else(|| zero(t)),
        })
        .collect();
    let fills: Vec<Option<Value>> = spec
        .features
        .iter()
        .zip(&features)
        .map(|(f, (t, _))| spec.fill_null.iter().find(|x| x.column == f.name).map(|x| parse_simple(&x.value, t)))
        .collect();
    let names: Vec<Option<String>> = match &spec.split {
        None => vec![None],
        Some(split) => split.names().into_iter().map(|n| Some(n.to_string())).collect(),
    };

    let mut out: Vec<OutputRows> = names.iter().map(|n| (n.clone(), Vec::new())).collect();
    // Each entity's events after the filters, with its feature values, splits and sessions.
    struct Prepared {
        entity_key: Vec<Value>,
        events: Vec<usize>,
        sessions: Vec<(usize, usize)>,
        values_at: Vec<Vec<Option<Value>>>,
        owner: Vec<usize>,
        fold: Option<i32>,
    }
    let mut prepared: Vec<Prepared> = Vec::new();
    // Each entity's key and events after the filters that see it alone, with its sessions.
    type Filtered = (Vec<Value>, Vec<usize>, Vec<(usize, usize)>);
    let mut filtered: Vec<Filtered> = Vec::new();
    let mut i = 0;
    while i < kept.len() {
        let mut j = i;
        while j < kept.len() && key(&entity, kept[j]) == key(&entity, kept[i]) {
            j += 1;
        }
        let entity_key = key(&entity, kept[i]);
        let mut events: Vec<usize> = kept[i..j].to_vec();
        i = j;
        if spec.dedupe_consecutive {
            // Consecutive events with the same values of every input feature (nulls alike).
            let same = |a: usize, b: usize| {
                features.iter().zip(&delta_column_types).all(|((_, v), delta)| delta.is_some() || v[a] == v[b])
            };
            let all = std::mem::take(&mut events);
            for (p, &row) in all.iter().enumerate() {
                if p == 0 || !same(row, all[p - 1]) {
                    events.push(row);
                }
            }
        }
        // Sessions: a new one where the first order-by value moves on by more than the gap;
        // sessions shorter than the minimum are dropped.
        let mut sessions = vec![(0, events.len())];
        if let Some(text) = &spec.session_gap {
            let gap = reference_session_gap(text, &first_order_type);
            let clock = |r: usize| match order[0][r] {
                Some(Value::Int(v)) => v,
                ref other => panic!("session clock {other:?}"),
            };
            let mut cut = Vec::new();
            let mut start = 0;
            for p in 1..=events.len() {
                if p == events.len() || clock(events[p]) - clock(events[p - 1]) > gap {
                    cut.push(events[start..p].to_vec());
                    start = p;
                }
            }
            let min = spec.min_session_length.unwrap_or(1);
            for short in cut.iter().filter(|session| session.len() < min) {
                session_counts.short_sessions += 1;
                session_counts.short_session_rows += short.len() as u64;
            }
            cut.retain(|session| session.len() >= min);
            events = cut.concat();
            sessions.clear();
            let mut from = 0;
            for session in &cut {
                sessions.push((from, from + session.len()));
                from += session.len();
            }
        }
        // With k-core, min-events is its entity side, applied with it below.
        if events.is_empty() || spec.k_core.is_none() && spec.min_events.is_some_and(|min| events.len() < min) {
            continue;
        }
        filtered.push((entity_key, events, sessions));
    }
    // k-core, the plain way: drop the events of values seen fewer than k times (over every
    // entity), then the sessions left shorter than min-session-length (the sessions cut
    // above: dropping events never cuts new ones), then the entities left with fewer than
    // min-events, until a round drops nothing.
    if let Some(core) = &spec.k_core {
        let f = spec.features.iter().position(|x| x.name == core.column).unwrap();
        let values = &features[f].1;
        let (min_session, min) = (spec.min_session_length.unwrap_or(1), spec.min_events.unwrap_or(1));
        type Sessions = Vec<(Vec<Value>, Vec<Vec<usize>>)>;
        let cut: Sessions = (filtered.iter())
            .map(|(key, events, sessions)| {
                (key.clone(), sessions.iter().map(|&(a, b)| events[a..b].to_vec()).collect())
            })
            .collect();
        let mut left = cut.clone();
        let total = |left: &Sessions| left.iter().flat_map(|(_, s)| s).map(Vec::len).sum::<usize>();
        loop {
            let mut counts: std::collections::BTreeMap<Value, u64> = Default::default();
            for &r in left.iter().flat_map(|(_, sessions)| sessions).flatten() {
                if let Some(v) = &values[r] {
                    *counts.entry(v.clone()).or_default() += 1;
                }
            }
            let before = total(&left);
            for (_, sessions) in &mut left {
                for events in sessions.iter_mut() {
                    events.retain(|&r| values[r].as_ref().is_none_or(|v| counts[v] >= core.k));
                }
                sessions.retain(|events| !events.is_empty() && events.len() >= min_session);
            }
            left.retain(|(_, sessions)| sessions.iter().map(Vec::len).sum::<usize>() >= min);
            if total(&left) == before {
                break;
            }
        }
        // Counted as the manifest counts them: the events of values outside the core first,
        // then the sessions that leaves too short, with the events they have left.
        let core_values: std::collections::BTreeSet<&Value> =
            left.iter().flat_map(|(_, sessions)| sessions).flatten().filter_map(|&r| values[r].as_ref()).collect();
        for events in cut.iter().flat_map(|(_, sessions)| sessions) {
            let in_core =
                events.iter().filter(|&&r| values[r].as_ref().is_none_or(|v| core_values.contains(v))).count();
            if in_core > 0 && in_core < min_session {
                session_counts.short_sessions += 1;
                session_counts.short_session_rows += in_core as u64;
            }
        }
        filtered = (left.into_iter())
            .map(|(key, sessions)| {
                let mut from = 0;
                let ranges = (sessions.iter())
                    .map(|events| {
                        from += events.len();
                        (from - events.len(), from)
                    })
                    .collect();
                (key, sessions.concat(), ranges)
            })
            .collect();
    }
    session_counts.sessions = filtered.iter().map(|(_, _, sessions)| sessions.len() as u64).sum();
    for (entity_key, events, sessions) in filtered {
        // Each feature's value per event: the row's, or the gap to the previous kept event.
        let values_at: Vec<Vec<Option<Value>>> = features
            .iter()
            .zip(&delta_column_types)
            .zip(&spec.features)
            .map(|(((_, values), delta_type), f)| match delta_type {
                None => events.iter().map(|&r| values[r].clone()).collect(),
                Some(data_type) => (0..events.len())
                    .map(|p| {
                        let (Some(Value::Int(now)), Some(Value::Int(before))) =
                            (values[events[p]].clone(), p.checked_sub(1).and_then(|q| values[events[q]].clone()))
                        else {
                            return None;
                        };
                        Some(Value::Int(reference_gap(now - before, data_type, spec.time_delta(&f.name).unwrap())))
                    })
                    .collect(),
            })
            .collect();
        // Each event's split, and the entity's fold.
        let (owner, fold) = owners(spec, &entity_key, &events, &order[0], &first_order_type);
        prepared.push(Prepared { entity_key, events, sessions, values_at, owner, fold });
    }
    // Vocabularies: counted over the first split's events of every entity, then ids by
    // descending count, ties by ascending value; 1 for null, 2 for the rest.
    for vocab in &spec.vocab {
        let f = spec.features.iter().position(|x| x.name == vocab.name).unwrap();
        let mut counts: std::collections::BTreeMap<Value, u64> = Default::default();
        for entity in &prepared {
            for (p, value) in entity.values_at[f].iter().enumerate() {
                if let (0, Some(value)) = (entity.owner[p], value) {
                    *counts.entry(value.clone()).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(Value, u64)> =
            counts.into_iter().filter(|(_, c)| *c >= vocab.min_count.unwrap_or(1)).collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(vocab.max_size.unwrap_or(u64::MAX) as usize);
        let ids: std::collections::BTreeMap<Value, i64> =
            ranked.into_iter().enumerate().map(|(k, (v, _))| (v, k as i64 + 3)).collect();
        for entity in &mut prepared {
            for value in &mut entity.values_at[f] {
                let id = match value {
                    None => 1,
                    Some(v) => ids.get(v).copied().unwrap_or(2),
                };
                *value = Some(Value::Int(id));
            }
        }
    }
    for Prepared { entity_key, events, sessions, values_at, owner, fold } in prepared {
        let events = &events[..];
        for (session, &(from, to)) in sessions.iter().enumerate() {
            for (split, (_, rows_out)) in out.iter_mut().enumerate() {
                let targets: Vec<usize> = (from..to).filter(|&p| owner[p] == split).collect();
                let Some(&last_target) = targets.last() else { continue };
                let mut scored = vec![false; events.len()];
                let mut seq = 0;
                for (s, e) in cuts(spec.mode, last_target + 1 - from, n, stride) {
                    let (s, e) = (s + from, e + from);
                    let real = &events[s..e];
                    if !(s..e).any(|p| owner[p] == split) || real.len() < spec.min_length {
                        continue;
                    }
                    let pad_count = n - real.len();
                    let pad_side = |values: Vec<i8>| match spec.padding {
                        Padding::Post => [values, vec![0; pad_count]].concat(),
                        Padding::Pre => [vec![0; pad_count], values].concat(),
                    };
                    let marks: Vec<i8> = (s..e)
                        .map(|p| {
                            let mark = owner[p] == split && !scored[p];
                            scored[p] |= mark;
                            mark as i8
                        })
                        .collect();
                    let mut feature_values = Vec::new();
                    for (f, values) in values_at.iter().enumerate() {
                        let mut seqv: Vec<Option<Value>> =
                            values[s..e].iter().map(|v| v.clone().or_else(|| fills[f].clone())).collect();
                        let padding = vec![Some(pads[f].clone()); pad_count];
                        seqv = match spec.padding {
                            Padding::Post => [seqv, padding].concat(),
                            Padding::Pre => [padding, seqv].concat(),
                        };
                        feature_values.push(seqv);
                    }
                    let mask = (0..n)
                        .map(|k| match spec.padding {
                            Padding::Post => k >= real.len(),
                            Padding::Pre => k < pad_count,
                        } as i8)
                        .collect();
                    rows_out.push(Row {
                        entity: entity_key.clone(),
                        sequence_index: seq,
                        sequence_length: real.len() as i32,
                        features: feature_values,
                        mask,
                        target_mask: spec.target_mask.then(|| pad_side(marks)),
                        fold: (split == 0).then_some(fold).flatten(),
                        session: spec.session_gap.as_ref().map(|_| session as i32),
                    });
                    seq += 1;
                }
            }
        }
    }
    Ok((out, session_counts))
}

/// `--session-gap` in the first order-by column's units, the plain way.
fn reference_session_gap(text: &str, data_type: &DataType) -> i64 {
    use arrow::datatypes::TimeUnit;
    let digits: String = text.chars().take_while(|c| c.is_ascii_digit()).collect();
    let number: i64 = digits.parse().unwrap();
    let nanos: i64 = match &text[digits.len()..] {
        "" => return number,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        other => panic!("reference: unit {other}"),
    };
    let per: i64 = match data_type {
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Date32 => 86_400_000_000_000,
        other => panic!("reference: session clock {other}"),
    };
    number * nanos / per
}

/// A gap of `raw` units of a column of `data_type` in the unit `delta` asks for: integers and
/// dates as they are, timestamps converted through nanoseconds and truncated toward zero.
fn reference_gap(raw: i64, data_type: &DataType, delta: &seqhouse_core::TimeDelta) -> i64 {
    use arrow::datatypes::TimeUnit;
    let own: i128 = match data_type {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        DataType::Date64 => return raw / 86_400_000,
        _ => return raw,
    };
    let asked: i128 = match delta.unit.unwrap_or(seqhouse_core::GapUnit::Seconds) {
        seqhouse_core::GapUnit::Seconds => 1_000_000_000,
        seqhouse_core::GapUnit::Milliseconds => 1_000_000,
        seqhouse_core::GapUnit::Microseconds => 1_000,
        seqhouse_core::GapUnit::Nanoseconds => 1,
    };
    (raw as i128 * own / asked) as i64
}

/// Each event's split (index into the split's names; all 0 without a split) and, for an entity
/// split with folds, the entity's fold: the definitions of the README's "Splitting without
/// leakage", computed the plain way.
fn owners(
    spec: &SequenceSpec,
    entity_key: &[Value],
    events: &[usize],
    first_order: &[Option<Value>],
    first_order_type: &DataType,
) -> (Vec<usize>, Option<i32>) {
    use seqhouse_core::split::Split;
    let len = events.len();
    match &spec.split {
        None => (vec![0; len], None),
        Some(Split::Entity { fractions, seed, folds }) => {
            let mut message = format!("v1|{seed}");
            for value in entity_key {
                let text = match value {
                    Value::Int(v) => v.to_string(),
                    Value::UInt(v) => v.to_string(),
                    Value::Str(s) => s.clone(),
                    other => panic!("entity split over {other:?}"),
                };
                message.push_str(&format!("|{}:{text}", text.len()));
            }
            use sha2::Digest;
            let digest = sha2::Sha256::digest(message.as_bytes());
            let bucket = u32::from_be_bytes(digest[0..4].try_into().unwrap()) as u128;
            let bits = u32::from_be_bytes(digest[4..8].try_into().unwrap());
            // The split holding the bucket: the first whose cumulative fraction (exact, as a
            // ratio over 10^18) times 2^32 exceeds it.
            let text = fractions.to_string();
            let mut cumulative = 0u128;
            let parts: Vec<&str> = text.split(',').collect();
            let mut split = parts.len() - 1;
            for (k, part) in parts.iter().enumerate().take(parts.len() - 1) {
                let fraction = part.split_once('=').unwrap().1;
                let (whole, digits) = fraction.split_once('.').unwrap_or((fraction, ""));
                let units = whole.parse::<u128>().unwrap() * 10u128.pow(18)
                    + if digits.is_empty() {
                        0
                    } else {
                        digits.parse::<u128>().unwrap() * 10u128.pow(18 - digits.len() as u32)
                    };
                cumulative += units;
                if bucket * 10u128.pow(18) < cumulative << 32 {
                    split = k;
                    break;
                }
            }
            let fold = folds.filter(|_| split == 0).map(|k| (bits % k) as i32);
            (vec![split; len], fold)
        }
        Some(Split::Temporal { cutoffs }) => {
            let cutoffs: Vec<Value> = cutoffs.parts().iter().map(|(_, t)| parse_simple(t, first_order_type)).collect();
            let owner = events
                .iter()
                .map(|&r| {
                    let value = first_order[r].clone().unwrap();
                    cutoffs.iter().filter(|c| **c <= value).count()
                })
                .collect();
            (owner, None)
        }
        Some(Split::LeaveLast { counts }) => {
            let counts: Vec<usize> =
                counts.to_string().split(',').map(|p| p.split_once('=').unwrap().1.parse().unwrap()).collect();
            let mut owner = vec![0; len];
            if len > counts.iter().sum::<usize>() {
                let mut end = len;
                for (k, count) in counts.iter().enumerate().rev() {
                    owner[end - count..end].fill(k + 1);
                    end -= count;
                }
            }
            (owner, None)
        }
    }
}

/// Element `row` of a list column: fixed-size lists (the local engine) or plain lists (SQL
/// engines write Parquet LISTs), checked to hold exactly `n` values.
fn list_value(column: &ArrayRef, row: usize, n: usize, name: &str) -> ArrayRef {
    let value = match column.data_type() {
        DataType::FixedSizeList(_, _) => column.as_fixed_size_list().value(row),
        DataType::List(_) => column.as_list::<i32>().value(row),
        DataType::LargeList(_) => column.as_list::<i64>().value(row),
        other => panic!("{name} is {other}, not a list"),
    };
    assert_eq!(value.len(), n, "{name} row {row} must hold N = {n} values");
    value
}

/// Converts output batches of any engine to plain rows, in the order given.
pub fn rows_of(spec: &SequenceSpec, batches: &[RecordBatch]) -> Vec<Row> {
    let n = spec.sequence_length;
    let mut out = Vec::new();
    for batch in batches {
        let column = |name: &str| batch.column_by_name(name).unwrap_or_else(|| panic!("output lacks {name}")).clone();
        let features: Vec<(String, ArrayRef)> =
            spec.features.iter().map(|f| (f.output_name(), column(&f.output_name()))).collect();
        let mask = column("is_pad_sequence");
        let target_mask = batch.column_by_name("target_mask").cloned();
        let fold = batch.column_by_name("fold").cloned();
        let session = batch.column_by_name("session_index").cloned();
        let index = cast(&column("sequence_index"), &DataType::Int64).unwrap();
        let length = cast(&column("sequence_length"), &DataType::Int32).unwrap();
        for r in 0..batch.num_rows() {
            let values_of = |name: &str, list: &ArrayRef| {
                let v = list_value(list, r, n, name);
                (0..v.len()).map(|i| value_at(&v, i)).collect::<Vec<_>>()
            };
            out.push(Row {
                entity: spec
                    .entity
                    .iter()
                    .map(|e| value_at(&column(e), r).expect("entity values are never null"))
                    .collect(),
                sequence_index: index.as_primitive::<Int64Type>().value(r),
                sequence_length: length.as_primitive::<Int32Type>().value(r),
                features: features.iter().map(|(name, list)| values_of(name, list)).collect(),
                mask: int8s(values_of("is_pad_sequence", &mask)),
                target_mask: target_mask.as_ref().map(|marks| int8s(values_of("target_mask", marks))),
                fold: fold.as_ref().map(|fold| match value_at(fold, r) {
                    Some(Value::Int(v)) => v as i32,
                    other => panic!("fold value {other:?}"),
                }),
                session: session.as_ref().map(|session| match value_at(session, r) {
                    Some(Value::Int(v)) => v as i32,
                    other => panic!("session_index value {other:?}"),
                }),
            });
        }
    }
    out
}

fn int8s(values: Vec<Option<Value>>) -> Vec<i8> {
    values
        .into_iter()
        .map(|v| match v {
            Some(Value::Int(m)) => m as i8,
            other => panic!("mask value {other:?}"),
        })
        .collect()
}
