//! The sequencing job as SQL, for engines that run where the data lives.
//!
//! One logical plan, the same cuts as [`seqhouse_core::window_bounds`], rendered in two dialects:
//! Trino (Athena) and Spark SQL. The plan numbers each entity's events by the order-by columns
//! (`row_number() - 1`), assigns every event to the window(s) that hold it, aggregates each
//! window's values in position order, drops windows below the minimum length, numbers the kept
//! windows, and pads each array to N on the requested side.
//!
//! Every identifier is quoted and every literal escaped by this module, so a column or value
//! with quotes, spaces or SQL in it can never change the statement.
#![warn(missing_docs)]

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use seqhouse_core::{Error, Mode, NullKeyPolicy, Padding, ResolvedSpec, Result, SequenceSpec, SequenceStats};

/// The SQL dialects seqhouse renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Trino, as Athena engine v3 runs it.
    Trino,
    /// Spark SQL (3.4+ / 4.x).
    Spark,
}

/// Quotes an identifier: `"a""b"` in Trino, `` `a``b` `` in Spark.
pub fn ident(name: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Trino => format!("\"{}\"", name.replace('"', "\"\"")),
        Dialect::Spark => format!("`{}`", name.replace('`', "``")),
    }
}

/// A string literal. Trino doubles single quotes; Spark also needs backslashes escaped, since it
/// reads them as escapes (and it would join `'a' 'b'`, so doubling quotes is not enough there).
pub fn string(text: &str, dialect: Dialect) -> String {
    match dialect {
        Dialect::Trino => format!("'{}'", text.replace('\'', "''")),
        Dialect::Spark => format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'")),
    }
}

/// The SQL type of an Arrow type.
pub fn sql_type(data_type: &DataType, dialect: Dialect) -> Result<&'static str> {
    use DataType::*;
    let trino = dialect == Dialect::Trino;
    Ok(match data_type {
        Boolean => "BOOLEAN",
        Int8 => "TINYINT",
        Int16 => "SMALLINT",
        Int32 => {
            if trino {
                "INTEGER"
            } else {
                "INT"
            }
        }
        Int64 => "BIGINT",
        Float32 => {
            if trino {
                "REAL"
            } else {
                "FLOAT"
            }
        }
        Float64 => "DOUBLE",
        Utf8 | LargeUtf8 => {
            if trino {
                "VARCHAR"
            } else {
                "STRING"
            }
        }
        Date32 | Date64 => "DATE",
        // Spark's TIMESTAMP is zoned (LTZ); a zone-less Parquet timestamp reads as TIMESTAMP_NTZ.
        Timestamp(_, None) => {
            if trino {
                "TIMESTAMP"
            } else {
                "TIMESTAMP_NTZ"
            }
        }
        other => {
            return Err(Error::UnsupportedType {
                column: String::new(),
                message: format!(
                    "type {other} has no SQL equivalent here; unsigned integers and zoned timestamps run on the local engine only"
                ),
            });
        }
    })
}

/// The SQL type of input column `field`; an unsupported type is reported for that column.
pub fn column_type(field: &arrow::datatypes::Field, dialect: Dialect) -> Result<&'static str> {
    sql_type(field.data_type(), dialect).map_err(|e| match e {
        Error::UnsupportedType { message, .. } => Error::UnsupportedType { column: field.name().clone(), message },
        other => other,
    })
}

/// A typed literal for the one-element array `value` (a pad or fill value).
pub fn literal(value: &dyn Array, dialect: Dialect) -> Result<String> {
    let data_type = value.data_type();
    let sql = sql_type(data_type, dialect)?;
    if value.is_null(0) {
        return Ok(format!("CAST(NULL AS {sql})"));
    }
    let options =
        FormatOptions::default().with_timestamp_format(Some("%Y-%m-%d %H:%M:%S%.f")).with_date_format(Some("%Y-%m-%d"));
    let formatter = ArrayFormatter::try_new(value, &options).map_err(Error::internal)?;
    let text = formatter.value(0).to_string();
    Ok(match data_type {
        DataType::Boolean => text,
        _ => format!("CAST({} AS {sql})", string(&text, dialect)),
    })
}

/// Whether the SELECT of `spec` has the [`SPLIT_COLUMN`] (a split job, or one with target
/// masks): an engine then writes it partitioned by that column, one folder per output.
pub fn has_split_column(spec: &SequenceSpec) -> bool {
    spec.split.is_some() || spec.target_mask
}

/// The table a job's statements read, and what the engine found out about its events before
/// making them: how many rounds of `--k-core` reach the fixed point ([`k_core_rounds`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The table, an already quoted name.
    pub table: String,
    /// The rounds of `--k-core` the statements run (none asked, or not found yet: `None`).
    pub k_core_rounds: Option<usize>,
    /// With `--vocab`, the already quoted tables of the vocabularies the SELECT encodes with,
    /// one per `--vocab` in its order, each with the columns of a vocabulary file (`id`,
    /// `value`, `count`; see [`seqhouse_core::vocab`]). Empty until the engine made them.
    pub vocabularies: Vec<String>,
}

impl Source {
    /// The already quoted table `table`, for a job without `--k-core`.
    pub fn new(table: impl Into<String>) -> Self {
        Source { table: table.into(), k_core_rounds: None, vocabularies: Vec::new() }
    }

    /// The same table, its statements running `rounds` rounds of `--k-core`.
    pub fn with_k_core_rounds(self, rounds: usize) -> Self {
        Source { k_core_rounds: Some(rounds), ..self }
    }
}

/// Renders the SELECT that computes the output rows of `resolved` from `source`. Columns come
/// out in the output contract's order.
///
/// A split job (or one with a target mask) gets one row per window of every split, with the
/// split's index in [`SPLIT_COLUMN`] (0 for an unsplit job), `target_mask` and, in the first
/// split's rows, `fold` (null in the others): each event is copied once per split whose history
/// holds it, and the windows are cut over each split's history as [`seqhouse_core::split`]
/// defines them.
pub fn select(resolved: &ResolvedSpec, source: &Source, dialect: Dialect) -> Result<String> {
    select_outputs(resolved, source, dialect, 0..resolved.spec.output_names().len())
}

/// The statements that write a split job's outputs, as ranges of output indexes for
/// [`select_outputs`]: one for all of them, unless `--folds` gives the first split a column
/// the others lack (then the first, and the rest).
pub fn output_groups(resolved: &ResolvedSpec) -> Vec<std::ops::Range<usize>> {
    let outputs = resolved.spec.output_names().len();
    let folds = resolved.output_schemas[0].column_with_name(seqhouse_core::spec::FOLD).is_some();
    if folds && outputs > 1 { vec![0..1, 1..outputs] } else { std::iter::once(0..outputs).collect() }
}

/// [`select`] for the windows of the outputs `outputs` only (a range from [`output_groups`]),
/// with the columns of the first of them.
pub fn select_outputs(
    resolved: &ResolvedSpec,
    source: &Source,
    dialect: Dialect,
    outputs: std::ops::Range<usize>,
) -> Result<String> {
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let n = spec.sequence_length;
    let trino = dialect == Dialect::Trino;
    let entity: Vec<String> = spec.entity.iter().map(|c| q(c)).collect();
    let entity_list = entity.join(", ");
    // What windows are cut within: an entity, or with sessions each of its sessions.
    let group_list = session_group(spec, dialect, &entity_list);
    let order_list = spec.order_by.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let feature_alias = |i: usize| q(&format!("__f{i}"));
    let array_alias = |i: usize| q(&format!("__a{i}"));
    let (pos, len, win, count, idx) = (q("__pos"), q("__len"), q("__win"), q("__n"), q("__idx"));

    // 1b. For a split job: each event's split, a copy of it per split whose history holds it
    // (its events up to the split's last target), and windows cut over that history.
    let splitting = has_split_column(spec);
    let (owner, split_index, first, marks, fold) = (q("__owner"), q("__s"), q("__first"), q("__marks"), q("__fold"));

    // 2. Which window(s) each event belongs to, as window ordinals within its entity.
    let assigned = assigned(spec, dialect, splitting);

    // 3. Each window's values in position order.
    // Spark's array_repeat takes an INT count, and `N - count(*)` would be BIGINT.
    let window_length = if trino { "count(*)".to_string() } else { "CAST(count(*) AS INT)".to_string() };
    let mut aggregates = vec![format!("{window_length} AS {count}")];
    let ordered_array = |value: &str, alias: &str| match dialect {
        Dialect::Trino => format!("array_agg({value} ORDER BY {pos}) AS {alias}"),
        // Spark has no ordered aggregate: sort (position, value) structs, keep the values.
        Dialect::Spark => {
            format!("transform(array_sort(collect_list(struct({pos} AS p, {value} AS v))), x -> x.v) AS {alias}")
        }
    };
    for i in 0..spec.features.len() {
        aggregates.push(ordered_array(&feature_alias(i), &array_alias(i)));
    }
    let folds = outputs.start == 0 && resolved.output_schemas[0].column_with_name(seqhouse_core::spec::FOLD).is_some();
    if splitting {
        aggregates.push(format!("sum(IF({owner} = {split_index}, 1, 0)) AS {}", q("__targets")));
        if spec.target_mask {
            // An event is scored by the first kept window of its own split that holds it.
            let mark = format!("CAST(IF({owner} = {split_index} AND {win} = {first}, 1, 0) AS TINYINT)");
            aggregates.push(ordered_array(&mark, &marks));
        }
        if folds {
            aggregates.push(format!("max({fold}) AS {fold}"));
        }
    }

    // 4. Padding to N, on the requested side.
    let pre = spec.padding == Padding::Pre;
    let pad_to_n = |array: String, pad: &str| {
        let padding = repeat(dialect, pad, &format!("{n} - {count}"), n);
        if pre { format!("concat({padding}, {array})") } else { format!("concat({array}, {padding})") }
    };
    let mut columns: Vec<String> = entity.clone();
    if spec.session_gap.is_some() {
        let int = sql_type(&DataType::Int32, dialect)?;
        columns.push(format!("CAST({} AS {int}) AS {}", q(SESSION), q(seqhouse_core::spec::SESSION_INDEX)));
    }
    columns.push(format!("CAST({idx} AS BIGINT) AS {}", q(seqhouse_core::spec::SEQUENCE_INDEX)));
    columns.push(format!(
        "CAST({count} AS {}) AS {}",
        sql_type(&DataType::Int32, dialect)?,
        q(seqhouse_core::spec::SEQUENCE_LENGTH)
    ));
    for (i, feature) in spec.features.iter().enumerate() {
        let pad = literal(resolved.pads[i].as_ref(), dialect)?;
        columns.push(format!("{} AS {}", pad_to_n(array_alias(i), &pad), q(&feature.output_name())));
    }
    let (zero, one) = ("CAST(0 AS TINYINT)", "CAST(1 AS TINYINT)");
    let real = repeat(dialect, zero, &count, n);
    let padded = repeat(dialect, one, &format!("{n} - {count}"), n);
    let mask = if pre { format!("concat({padded}, {real})") } else { format!("concat({real}, {padded})") };
    columns.push(format!("{mask} AS {}", q(seqhouse_core::spec::IS_PAD)));
    if splitting {
        if spec.target_mask {
            columns.push(format!("{} AS {}", pad_to_n(marks.clone(), zero), q(seqhouse_core::spec::TARGET_MASK)));
        }
        if folds {
            let int = sql_type(&DataType::Int32, dialect)?;
            columns.push(format!(
                "CASE WHEN {split_index} = 0 THEN CAST({fold} AS {int}) END AS {}",
                q(seqhouse_core::spec::FOLD)
            ));
        }
        columns.push(format!("{split_index} AS {}", q(SPLIT_COLUMN)));
        return split_select(SplitSql {
            resolved,
            dialect,
            source,
            aggregates: &aggregates,
            outputs: &columns,
            splits: outputs,
        });
    }

    let EventSteps { sql: mut steps, mut prepared, .. } =
        event_steps(resolved, dialect, &source.table, source.k_core_rounds)?;
    if let Some(encoded) = encode_step(resolved, dialect, source, prepared)? {
        steps.push_str(&encoded);
        prepared = ENCODED;
    }
    let indent = |items: &[String]| items.join(",\n       ");
    Ok(format!(
        "WITH {steps}\
         numbered AS (\n  SELECT *,\n         row_number() OVER (PARTITION BY {group_list} ORDER BY {order_list}) - 1 AS {pos},\n         count(*) OVER (PARTITION BY {group_list}) AS {len}\n  FROM {prepared}\n),\n\
         assigned AS (\n  {assigned}\n),\n\
         windows AS (\n  SELECT {group_list}, {win},\n         {aggs}\n  FROM assigned\n  GROUP BY {group_list}, {win}\n),\n\
         kept AS (\n  SELECT *, row_number() OVER (PARTITION BY {group_list} ORDER BY {win}) - 1 AS {idx}\n  FROM windows\n  WHERE {count} >= {min}\n)\n\
         SELECT {outputs}\nFROM kept",
        aggs = aggregates.join(",\n         "),
        min = spec.min_length,
        outputs = indent(&columns),
    ))
}

/// The steps every statement of a job starts with (without `WITH`, each followed by `,\n`),
/// from `from` (a quoted table, or an earlier step) to `prepared`, one row per event kept:
///
/// - `src`: the key columns, each input feature as `__f{i}` and each time delta's column as
///   `__c{i}`; rows with a null key never pass;
/// - `flagged`, `deduped` (`--dedupe-consecutive`): an entity's event that no input feature
///   tells from the one before it (nulls equal) is dropped;
/// - `starts` (`--session-gap`, see [`session_starts_step`]): each event's session;
/// - `long_sessions` (`--k-core` with `--min-session-length`): the sessions long enough;
/// - `core_round_0` … `core_round_R`, `core_values`, `core_marked`, `cored` (`--k-core`, see
///   [`k_core_steps`]): the events of values outside the k-core are dropped;
/// - `sessioned` (`--session-gap`): the sessions long enough, numbered again from 0;
/// - `sized` (`--min-events`): entities with fewer events are dropped;
/// - `derived` (`--time-delta`): each time delta's gaps as `__f{i}`, over the events kept;
/// - `prepared` (`--fill-null`): fill values in place of the features' nulls.
///
/// Steps a job does not need are left out; [`EventSteps`] names the last ones. `k_core_rounds`
/// is how many rounds of `--k-core` to run (needed when it is asked).
fn event_steps(
    resolved: &ResolvedSpec,
    dialect: Dialect,
    from: &str,
    k_core_rounds: Option<usize>,
) -> Result<EventSteps> {
    event_steps_until(resolved, dialect, from, k_core_rounds, Until::Prepared)
}

/// Where [`event_steps_until`] stops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    /// At `prepared`: every step.
    Prepared,
    /// At the last round of `--k-core` (for [`k_core_probe`]).
    LastCoreRound,
}

/// [`event_steps`], up to `until`.
fn event_steps_until(
    resolved: &ResolvedSpec,
    dialect: Dialect,
    from: &str,
    k_core_rounds: Option<usize>,
    until: Until,
) -> Result<EventSteps> {
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let keys: Vec<String> = spec.entity.iter().chain(&spec.order_by).map(|c| q(c)).collect();
    let window = format!(
        "OVER (PARTITION BY {} ORDER BY {})",
        spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "),
        spec.order_by.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ")
    );
    let feature = |i: usize| q(&format!("__f{i}"));
    let gap_column = |i: usize| q(&format!("__c{i}"));
    let is_gap = |i: usize| resolved.gaps[i].is_some();
    let mut src = keys.clone();
    let mut names = keys.clone();
    for (i, f) in spec.features.iter().enumerate() {
        let (input, alias) = match spec.time_delta(&f.name) {
            Some(delta) => (q(&delta.column), gap_column(i)),
            None => (q(&f.name), feature(i)),
        };
        src.push(format!("{input} AS {alias}"));
        names.push(alias);
    }
    let not_null = keys.iter().map(|k| format!("{k} IS NOT NULL")).collect::<Vec<_>>().join(" AND ");
    let mut names = names.join(", ");
    let mut steps = format!("src AS (\n  SELECT {}\n  FROM {from}\n  WHERE {not_null}\n),\n", src.join(", "));
    let mut last = "src";
    if spec.dedupe_consecutive {
        let inputs: Vec<usize> = (0..spec.features.len()).filter(|&i| !is_gap(i)).collect();
        let previous: Vec<String> =
            inputs.iter().map(|&i| format!("lag({}) {window} AS {}", feature(i), q(&format!("__p{i}")))).collect();
        let same = inputs
            .iter()
            .map(|&i| format!("{} IS NOT DISTINCT FROM {}", feature(i), q(&format!("__p{i}"))))
            .collect::<Vec<_>>()
            .join(" AND ");
        let (rank, new) = (q("__rank"), q("__new"));
        steps.push_str(&format!(
            "flagged AS (\n  SELECT *, {rank} = 0 OR NOT ({same}) AS {new}\n  FROM (SELECT *, row_number() {window} - 1 AS {rank}, {} FROM src) AS with_previous\n),\n\
             deduped AS (\n  SELECT {names}\n  FROM flagged\n  WHERE {new}\n),\n",
            previous.join(", ")
        ));
        last = "deduped";
    }
    // Sessions are cut before k-core, which keeps them: its rounds count each session's
    // events, and the sessions it leaves too short drop after it.
    if let Some(gap) = resolved.session_gap {
        steps.push_str(&session_starts_step(resolved, dialect, gap, last, &names, &window)?);
        last = SESSION_STARTS.0;
    }
    if spec.k_core.is_some() {
        let rounds = k_core_rounds.ok_or_else(|| Error::internal("a --k-core job's statements need its rounds"))?;
        let mut core_names = names.clone();
        if spec.session_gap.is_some() {
            core_names.push_str(&format!(", {}", q(SESSION_STARTS.1)));
            if spec.min_session_length.is_some_and(|min| min > 1) {
                steps.push_str(&sessions_at_least(spec, dialect, LONG_SESSIONS, last, &core_names, false));
                last = LONG_SESSIONS;
            }
        }
        let core = k_core_steps(resolved, dialect, last, &core_names, rounds)?;
        steps.push_str(&core.rounds);
        if until == Until::LastCoreRound {
            return Ok(EventSteps { sql: steps, raw: CORE_ROUNDS_DONE, prepared: CORE_ROUNDS_DONE });
        }
        steps.push_str(&core.filter);
        last = "cored";
    }
    if spec.session_gap.is_some() {
        steps.push_str(&sessions_at_least(spec, dialect, "sessioned", last, &names, true));
        names.push_str(&format!(", {}", q(SESSION)));
        last = "sessioned";
    }
    if let Some(min) = spec.min_events {
        let (entity_list, events) = (spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", "), q("__events"));
        steps.push_str(&format!(
            "sized AS (\n  SELECT {names}\n  FROM (SELECT *, count(*) OVER (PARTITION BY {entity_list}) AS {events} FROM {last}) AS with_events\n  WHERE {events} >= {min}\n),\n"
        ));
        last = "sized";
    }
    let mut derived = keys.clone();
    let mut prepared = keys;
    if spec.session_gap.is_some() {
        derived.push(q(SESSION));
        prepared.push(q(SESSION));
    }
    for i in 0..spec.features.len() {
        let value = match &resolved.gaps[i] {
            Some(gap) => gap_sql(gap, &spec.features[i].name, &gap_column(i), &window, dialect)?,
            None => feature(i),
        };
        derived.push(format!("{value} AS {}", feature(i)));
        prepared.push(match &resolved.fills[i] {
            Some(fill) => format!("coalesce({}, {}) AS {}", feature(i), literal(fill.as_ref(), dialect)?, feature(i)),
            None => feature(i),
        });
    }
    if resolved.gaps.iter().any(Option::is_some) {
        steps.push_str(&format!("derived AS (\n  SELECT {}\n  FROM {last}\n),\n", derived.join(", ")));
        last = "derived";
    }
    let raw = last;
    if resolved.fills.iter().any(Option::is_some) {
        steps.push_str(&format!("prepared AS (\n  SELECT {}\n  FROM {last}\n),\n", prepared.join(", ")));
        last = "prepared";
    }
    Ok(EventSteps { sql: steps, raw, prepared: last })
}

/// The step of [`encode_step`].
const ENCODED: &str = "encoded";

/// With `--vocab`, the step `encoded` after `prepared` (followed by `,\n`): the same rows, each
/// `--vocab` feature's values replaced by their ids in its vocabulary table (see
/// [`Source::vocabularies`]): the null id for a null, the out-of-vocabulary id for a value
/// the table lacks. `None` without `--vocab`.
fn encode_step(resolved: &ResolvedSpec, dialect: Dialect, source: &Source, prepared: &str) -> Result<Option<String>> {
    use seqhouse_core::vocab::{NULL_ID, OOV_ID};
    let spec = &resolved.spec;
    if spec.vocab.is_empty() {
        return Ok(None);
    }
    refuse_vocab_finer_than_engine(resolved, dialect)?;
    if source.vocabularies.len() != spec.vocab.len() {
        return Err(Error::internal("a --vocab job's SELECT needs a vocabulary table per --vocab"));
    }
    let q = |name: &str| ident(name, dialect);
    let mut columns: Vec<String> = spec.entity.iter().chain(&spec.order_by).map(|c| format!("e.{}", q(c))).collect();
    if spec.session_gap.is_some() {
        columns.push(format!("e.{}", q(SESSION)));
    }
    let mut joins = String::new();
    for (i, f) in spec.features.iter().enumerate() {
        let feature = q(&format!("__f{i}"));
        match spec.vocab.iter().position(|v| v.name == f.name) {
            Some(j) => {
                let (table, alias) = (&source.vocabularies[j], q(&format!("__v{j}")));
                columns.push(format!(
                    "CASE WHEN e.{feature} IS NULL THEN CAST({NULL_ID} AS BIGINT) ELSE coalesce({alias}.{id}, CAST({OOV_ID} AS BIGINT)) END AS {feature}",
                    id = q("id")
                ));
                joins.push_str(&format!("\n  LEFT JOIN {table} AS {alias} ON e.{feature} = {alias}.{}", q("value")));
            }
            None => columns.push(format!("e.{feature}")),
        }
    }
    Ok(Some(format!("{ENCODED} AS (\n  SELECT {}\n  FROM {prepared} AS e{joins}\n),\n", columns.join(", "))))
}

/// What `--explain` says before a `--vocab` job's vocabulary statements: how the ids are made
/// (the statements themselves cannot show it).
pub fn vocab_note(spec: &SequenceSpec) -> String {
    use seqhouse_core::Setting;
    let tables = "written as vocabulary files into the run's staging folder, and the sequences join them through the tables below";
    match &spec.vocab_from {
        Some(from) => format!("{}: seqhouse reads the vocabularies of {from}; they are {tables}", Setting::VocabFrom),
        None => format!(
            "{}: seqhouse ranks the value counts below into ids (descending count, ties by ascending value), as the local engine does; the vocabularies are {tables}",
            Setting::Vocab
        ),
    }
}

/// With `--vocab`, the queries of the counts each vocabulary is fitted on, one per `--vocab`
/// in its order: a row per distinct non-null value of the feature in the events of the first
/// split (of every event when unsplit), after every filter, as `value` and `count`; read by
/// [`seqhouse_core::vocab::ValueCounts::add_counted`], which ranks them as the local engine
/// does (so string order is never the engine's collation). Empty without `--vocab`.
pub fn vocab_counts(resolved: &ResolvedSpec, source: &Source, dialect: Dialect) -> Result<Vec<String>> {
    let spec = &resolved.spec;
    if spec.vocab.is_empty() {
        return Ok(Vec::new());
    }
    refuse_vocab_finer_than_engine(resolved, dialect)?;
    let q = |name: &str| ident(name, dialect);
    let steps = match spec.split {
        None => {
            let EventSteps { sql, prepared, .. } = event_steps(resolved, dialect, &source.table, source.k_core_rounds)?;
            format!("{sql}fitting AS (\n  SELECT * FROM {prepared}\n)\n")
        }
        Some(_) => format!(
            "{}fitting AS (\n  SELECT * FROM owned WHERE {} = 0\n)\n",
            owned_steps(resolved, dialect, source, false)?,
            q("__owner")
        ),
    };
    Ok((spec.vocab.iter())
        .map(|vocab| {
            let feature = q(&format!("__f{}", resolved.feature_position(&vocab.name)));
            format!(
                "WITH {steps}SELECT {feature} AS {value}, count(*) AS {count}\nFROM fitting\nWHERE {feature} IS NOT NULL\nGROUP BY {feature}",
                value = q("value"),
                count = q("count"),
            )
        })
        .collect())
}

/// The step of [`k_core_steps`] that holds the (entity, value) pairs left after its rounds.
const CORE_ROUNDS_DONE: &str = "core_rounds_done";
/// The column of the k-core column's values in the steps of [`k_core_steps`].
const CORE_VALUE: &str = "__core_value";
/// The column of [`k_core_steps`]' `core_marked` step telling the events it keeps.
const IN_CORE: &str = "__in_core";

/// The steps of `--k-core` in [`event_steps`], as SQL text.
struct CoreSteps {
    /// `core_round_0` (each event's entity and value) and `rounds` rounds after it
    /// (`core_round_1` …), the last also as [`CORE_ROUNDS_DONE`].
    rounds: String,
    /// `core_values` (the values left after the rounds), `core_marked` (every event of `last`,
    /// [`IN_CORE`] where its value is one of them or null) and `cored` (those events).
    filter: String,
}

/// The steps of `--k-core` after step `last` (whose columns are `names`, with sessions the
/// session column of [`SESSION_STARTS`] among them), as the local kernel's fixed point runs:
/// each round drops the events of values seen fewer than K times, then the sessions left with
/// fewer than `--min-session-length` events and the entities left with fewer than
/// `--min-events`, over the events the round before kept ([`k_core_round`]). Run to the fixed
/// point (`rounds` from [`k_core_rounds`]), the values left decide every event: those of
/// other values are dropped, and `sessioned` and `sized` then drop the sessions and entities
/// left too small, as without k-core.
fn k_core_steps(
    resolved: &ResolvedSpec,
    dialect: Dialect,
    last: &str,
    names: &str,
    rounds: usize,
) -> Result<CoreSteps> {
    let spec = &resolved.spec;
    let core = spec.k_core.as_ref().expect("k-core asked");
    if resolved.feature_input_type(&core.column).is_floating() {
        return Err(Error::setting(
            seqhouse_core::Setting::KCore,
            format!(
                "'{}' is floating-point, which SQL engines group by equality (0.0 with -0.0, every NaN together) where seqhouse counts distinct values; use {}",
                core.column,
                seqhouse_core::Setting::Engine.with("local")
            ),
        ));
    }
    let q = |name: &str| ident(name, dialect);
    let value = q(&format!("__f{}", resolved.feature_position(&core.column)));
    let groups = core_groups(spec, dialect);
    let (v, in_core) = (q(CORE_VALUE), q(IN_CORE));
    let round = |r: usize| format!("core_round_{r}");
    let mut text = format!("{} AS (\n  SELECT {groups}, {value} AS {v}\n  FROM {last}\n),\n", round(0));
    for r in 1..=rounds {
        text.push_str(&format!(
            "{} AS (\n  SELECT {groups}, {v}\n  FROM ({}) AS core_round\n  WHERE {}\n),\n",
            round(r),
            k_core_round(spec, dialect, &round(r - 1)),
            q(CORE_KEPT)
        ));
    }
    text.push_str(&format!("{CORE_ROUNDS_DONE} AS (\n  SELECT * FROM {}\n),\n", round(rounds)));
    let filter = format!(
        "core_values AS (\n  SELECT {v}\n  FROM {CORE_ROUNDS_DONE}\n  WHERE {v} IS NOT NULL\n  GROUP BY {v}\n),\n\
         core_marked AS (\n  SELECT {names}, {value} IS NULL OR core_values.{v} IS NOT NULL AS {in_core}\n  FROM {last} LEFT JOIN core_values ON {value} = core_values.{v}\n),\n\
         cored AS (\n  SELECT {names}\n  FROM core_marked\n  WHERE {in_core}\n),\n"
    );
    Ok(CoreSteps { rounds: text, filter })
}

/// The column of [`k_core_round`] telling the (entity, value) pairs the round keeps.
const CORE_KEPT: &str = "__core_kept";

/// The columns of the rows of [`k_core_steps`]' rounds besides [`CORE_VALUE`]: the entity
/// columns, and with `--session-gap` the session column of [`SESSION_STARTS`].
fn core_groups(spec: &SequenceSpec, dialect: Dialect) -> String {
    let mut groups: Vec<String> = spec.entity.iter().map(|c| ident(c, dialect)).collect();
    if spec.session_gap.is_some() {
        groups.push(ident(SESSION_STARTS.1, dialect));
    }
    groups.join(", ")
}

/// One round of the k-core fixed point over step `before` (the columns of [`core_groups`]
/// and [`CORE_VALUE`]): a SELECT of its rows with [`CORE_KEPT`], true where the value is null
/// or seen at least K times there, its session keeps at least `--min-session-length` such
/// rows and its entity at least `--min-events` rows of such sessions.
fn k_core_round(spec: &SequenceSpec, dialect: Dialect, before: &str) -> String {
    let core = spec.k_core.as_ref().expect("k-core asked");
    let q = |name: &str| ident(name, dialect);
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let groups = core_groups(spec, dialect);
    let v = q(CORE_VALUE);
    let mut kept = q("__value_kept");
    let mut round = format!(
        "SELECT {groups}, {v}, {v} IS NULL OR count({v}) OVER (PARTITION BY {v}) >= {k} AS {kept} FROM {before}",
        k = core.k
    );
    // Each bound after the values: the rows kept so far, counted over a partition; the last
    // tells what the round keeps.
    let session_bound = spec.min_session_length.filter(|_| spec.session_gap.is_some());
    let bounds: Vec<(usize, &str)> = [(session_bound, groups.as_str()), (spec.min_events, entity_list.as_str())]
        .into_iter()
        .filter_map(|(min, partition)| min.filter(|&min| min > 1).map(|min| (min, partition)))
        .collect();
    if bounds.is_empty() {
        return format!("SELECT {groups}, {v}, {kept} AS {}\n        FROM ({round}) AS counted_values", q(CORE_KEPT));
    }
    for (b, &(min, partition)) in bounds.iter().enumerate() {
        let next = if b + 1 == bounds.len() { q(CORE_KEPT) } else { q("__session_kept") };
        let alias = if b == 0 { "counted_values" } else { "counted_sessions" };
        round = format!(
            "SELECT {groups}, {v}, {kept} AND sum(IF({kept}, 1, 0)) OVER (PARTITION BY {partition}) >= {min} AS {next}\n        FROM ({round}) AS {alias}"
        );
        kept = next;
    }
    round
}

/// The statement that tells whether `rounds` rounds of `--k-core` reach the fixed point on
/// `source`'s events: one row of the (entity, value) pairs the rounds before the last kept and
/// of those the last keeps. Equal counts mean the last round dropped nothing, so `rounds - 1`
/// reach it (see [`k_core_rounds`]).
pub fn k_core_probe(resolved: &ResolvedSpec, source: &str, dialect: Dialect, rounds: usize) -> Result<String> {
    let before = rounds.checked_sub(1).ok_or_else(|| Error::internal("a k-core probe runs at least one round"))?;
    let EventSteps { sql: steps, prepared: done, .. } =
        event_steps_until(resolved, dialect, source, Some(before), Until::LastCoreRound)?;
    let kept = ident(CORE_KEPT, dialect);
    Ok(format!(
        "WITH {steps}probed AS (\n  {}\n)\nSELECT count(*) AS {}, count_if({kept}) AS {}\nFROM probed",
        k_core_round(&resolved.spec, dialect, done),
        ident("__before", dialect),
        ident("__after", dialect)
    ))
}

/// What `--explain` says of the [`k_core_probe`] it shows (with one round) before the
/// statements (shown with none).
pub const K_CORE_PROBE_NOTE: &str = "k-core: the probe below runs with 1, 2, 4, … rounds until its last round drops nothing; the statements after it then run the rounds before that one (shown here with none)";

/// The most rounds of `--k-core` the SQL engines run, probing with 1, 2, 4, … of them: each
/// statement repeats every round, so a log that needs more runs on the local engine. At 64,
/// Trino's validator refuses the statement as too complex.
pub const K_CORE_MAX_ROUNDS: usize = 32;

/// How many rounds of `--k-core` reach the fixed point on the events of `source`: runs the
/// [`k_core_probe`] of 1, 2, 4, … rounds through `probe` (which returns its rows) until
/// the last round drops nothing, and returns the rounds before it. Extra rounds past the fixed
/// point drop nothing, so doubling finds enough rounds in about as many rounds again.
/// `engine` names the engine in the error of a log that needs more than [`K_CORE_MAX_ROUNDS`].
pub fn k_core_rounds(
    resolved: &ResolvedSpec,
    source: &str,
    dialect: Dialect,
    engine: &str,
    mut probe: impl FnMut(&str) -> Result<Vec<Vec<u64>>>,
) -> Result<usize> {
    let mut rounds = 1;
    while rounds <= K_CORE_MAX_ROUNDS {
        let rows = probe(&k_core_probe(resolved, source, dialect, rounds)?)?;
        let &[before, after] = rows.first().map(Vec::as_slice).unwrap_or_default() else {
            return Err(Error::internal(format!("the {engine} k-core probe returned {rows:?}, not two counts")));
        };
        if before == after {
            return Ok(rounds - 1);
        }
        rounds *= 2;
    }
    Err(Error::setting(
        seqhouse_core::Setting::KCore,
        format!(
            "still drops events after {} rounds on the {engine} engine, which stops there (each query repeats every round); use {}, which runs to the fixed point",
            rounds / 2,
            seqhouse_core::Setting::Engine.with("local")
        ),
    ))
}

/// What [`event_steps`] renders: its steps, and the names of the last before fill values
/// replace nulls (`raw`) and of the last (`prepared`).
struct EventSteps {
    sql: String,
    raw: &'static str,
    prepared: &'static str,
}

/// The step before `sized` in [`event_steps`] (whose entities `--min-events` counts).
fn before_sized(spec: &SequenceSpec) -> &'static str {
    if spec.session_gap.is_some() {
        "sessioned"
    } else if spec.k_core.is_some() {
        "cored"
    } else if spec.dedupe_consecutive {
        "deduped"
    } else {
        "src"
    }
}

/// `partition` (quoted columns), and with `--session-gap` the [`SESSION`] column after them:
/// what windows are cut and numbered within.
fn session_group(spec: &SequenceSpec, dialect: Dialect, partition: &str) -> String {
    match spec.session_gap {
        Some(_) => format!("{partition}, {}", ident(SESSION, dialect)),
        None => partition.to_string(),
    }
}

/// The column of [`event_steps`]' rows that numbers each entity's kept sessions (0, 1, …),
/// with `--session-gap`.
const SESSION: &str = "__sess";
/// The step of [`session_starts_step`] that numbers every session, short ones included, and
/// its column of those numbers: [`stats`] counts the short sessions there.
const SESSION_STARTS: (&str, &str) = ("starts", "__raw_sess");

/// The step of [`LONG_SESSIONS`]' name: with `--k-core` and `--min-session-length`, the events
/// of the sessions long enough before the k-core rounds, which drop only in them.
const LONG_SESSIONS: &str = "long_sessions";

/// Step `name` (followed by `,\n`): the rows of `from` (columns `names`, then the session
/// column of [`SESSION_STARTS`]) in sessions of at least `--min-session-length` of them; with
/// `renumber`, with the session column left out and the kept sessions numbered again from 0
/// as [`SESSION`] instead.
fn sessions_at_least(
    spec: &SequenceSpec,
    dialect: Dialect,
    name: &str,
    from: &str,
    names: &str,
    renumber: bool,
) -> String {
    let q = |name: &str| ident(name, dialect);
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let (raw, length, session) = (q(SESSION_STARTS.1), q("__sess_len"), q(SESSION));
    let min = spec.min_session_length.unwrap_or(1);
    let numbered = match renumber {
        true => format!(", dense_rank() OVER (PARTITION BY {entity_list} ORDER BY {raw}) - 1 AS {session}"),
        false => String::new(),
    };
    format!(
        "{name} AS (\n  SELECT {names}{numbered}\n  FROM (SELECT *, count(*) OVER (PARTITION BY {entity_list}, {raw}) AS {length} FROM {from}) AS with_lengths\n  WHERE {length} >= {min}\n),\n"
    )
}

/// The first step of `--session-gap` in [`event_steps`], after `last` (whose columns are
/// `names`), as the local kernel cuts sessions: over the events kept so far, a new session
/// starts where the first order-by column moves on by more than `gap` (in its units, days for
/// dates) since the previous event (`starts`: a running sum of those starts, as the column of
/// [`SESSION_STARTS`]). [`sessions_at_least`] then drops the sessions shorter than
/// `--min-session-length` and numbers the others from 0 as [`SESSION`].
fn session_starts_step(
    resolved: &ResolvedSpec,
    dialect: Dialect,
    gap: i64,
    last: &str,
    names: &str,
    window: &str,
) -> Result<String> {
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let column = q(&spec.order_by[0]);
    let data_type = resolved.input_schema.field(resolved.order_idx[0]).data_type();
    let previous = format!("lag({column}) {window}");
    // Whether the event starts a session, given the previous one is not null (keys never are).
    let moved_on = match data_type {
        DataType::Date32 | DataType::Date64 => {
            let in_days =
                seqhouse_core::resolve::Gap { kind: seqhouse_core::resolve::GapKind::Date, divisor: 1, multiplier: 1 };
            let days = gap_sql(&in_days, &spec.order_by[0], &column, window, dialect)?;
            format!("{days} > {gap}")
        }
        DataType::Timestamp(unit, _) => {
            // `previous + gap < column`: exact in every engine, where a difference in units
            // would be rounded differently by each. Athena reads timestamps to the millisecond
            // and Spark to the microsecond: a finer clock would cut other sessions there than
            // its values do, so it is refused rather than rounded.
            refuse_finer_timestamp(
                *unit,
                dialect,
                seqhouse_core::Setting::SessionGap,
                &format!("cuts sessions on '{}', a timestamp", spec.order_by[0]),
                "its sessions could differ from the values'",
            )?;
            let (nanos_per_unit, engine_nanos) = (unit_nanos(*unit), unit_nanos(timestamp_unit(dialect)));
            let in_engine_units = i128::from(gap) * nanos_per_unit / engine_nanos;
            match dialect {
                Dialect::Trino => format!("date_add('millisecond', {in_engine_units}, {previous}) < {column}"),
                Dialect::Spark => format!("timestampadd(MICROSECOND, {in_engine_units}, {previous}) < {column}"),
            }
        }
        _ => format!("CAST({column} AS BIGINT) - CAST({previous} AS BIGINT) > {gap}"),
    };
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let order_list = spec.order_by.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let (starts, raw) = (SESSION_STARTS.0, q(SESSION_STARTS.1));
    let start = q("__start");
    Ok(format!(
        "{starts} AS (\n  SELECT {names}, sum({start}) OVER (PARTITION BY {entity_list} ORDER BY {order_list} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS {raw}\n  FROM (SELECT *, CASE WHEN {previous} IS NULL OR {moved_on} THEN 1 ELSE 0 END AS {start} FROM {last}) AS with_starts\n),\n"
    ))
}

/// The finest timestamp unit `dialect`'s engine reads exactly (Athena: milliseconds; Spark:
/// microseconds): what its adapter reports in [`seqhouse_core::Capabilities`].
pub fn timestamp_unit(dialect: Dialect) -> arrow::datatypes::TimeUnit {
    match dialect {
        Dialect::Trino => arrow::datatypes::TimeUnit::Millisecond,
        Dialect::Spark => arrow::datatypes::TimeUnit::Microsecond,
    }
}

/// How finely `dialect`'s engine reads timestamps: its name, the unit in words, and the
/// nanoseconds of that unit ([`timestamp_unit`]).
fn timestamp_precision(dialect: Dialect) -> (&'static str, &'static str, i128) {
    let nanos = unit_nanos(timestamp_unit(dialect));
    match dialect {
        Dialect::Trino => ("Athena", "milliseconds", nanos),
        Dialect::Spark => ("Spark", "microseconds", nanos),
    }
}

/// Refuses, as `setting`, a timestamp of `unit` finer than `dialect`'s engine reads: what the
/// job makes of it (`consequence`) could differ from the values there. `subject` names what
/// reads it (`'at' is a timestamp`).
fn refuse_finer_timestamp(
    unit: arrow::datatypes::TimeUnit,
    dialect: Dialect,
    setting: seqhouse_core::Setting,
    subject: &str,
    consequence: &str,
) -> Result<()> {
    let (engine, precision, engine_nanos) = timestamp_precision(dialect);
    if unit_nanos(unit) >= engine_nanos {
        return Ok(());
    }
    Err(Error::setting(
        setting,
        format!(
            "{subject} of {unit:?} units, but {engine} reads timestamps to {precision} only, so {consequence}; use {}",
            seqhouse_core::Setting::Engine.with("local")
        ),
    ))
}

/// Refuses a `--vocab` feature that is a timestamp finer than `dialect`'s engine reads: values
/// that differ below its precision would be counted as one and share an id there.
fn refuse_vocab_finer_than_engine(resolved: &ResolvedSpec, dialect: Dialect) -> Result<()> {
    for vocab in &resolved.spec.vocab {
        if let DataType::Timestamp(unit, _) = resolved.feature_input_type(&vocab.name) {
            let subject = format!("'{}' is a timestamp", vocab.name);
            let consequence = "values that differ below that would share an id";
            refuse_finer_timestamp(*unit, dialect, seqhouse_core::Setting::Vocab, &subject, consequence)?;
        }
    }
    Ok(())
}

/// The nanoseconds of a timestamp unit.
fn unit_nanos(unit: arrow::datatypes::TimeUnit) -> i128 {
    use arrow::datatypes::TimeUnit;
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// Gap `gap` (named `name`) of each event's `column` (quoted) to the previous event's over
/// `window`, as the local kernel computes it: integers in their own units, dates in days, and
/// timestamps in the unit asked for, truncated toward zero. A timestamp gap is taken exactly in
/// the engine's own unit (`date_diff('millisecond', …)` on Athena, `timestampdiff(MICROSECOND,
/// …)` on Spark, never a difference of rounded seconds) and then scaled; a timestamp column
/// finer than the engine reads is refused, as its gaps there could differ from its values'.
fn gap_sql(
    gap: &seqhouse_core::resolve::Gap,
    name: &str,
    column: &str,
    window: &str,
    dialect: Dialect,
) -> Result<String> {
    use seqhouse_core::resolve::GapKind;
    let previous = format!("lag({column}) {window}");
    Ok(match (gap.kind, dialect) {
        (GapKind::Integer, _) => format!("CAST({column} AS BIGINT) - lag(CAST({column} AS BIGINT)) {window}"),
        (GapKind::Date, Dialect::Trino) => format!("date_diff('day', {previous}, {column})"),
        (GapKind::Date, Dialect::Spark) => format!("CAST(datediff({column}, {previous}) AS BIGINT)"),
        (GapKind::Timestamp(unit), _) => {
            let subject = format!("'{name}' is a gap over a timestamp");
            let consequence = "its gaps could differ from the values'";
            refuse_finer_timestamp(unit, dialect, seqhouse_core::Setting::TimeDelta, &subject, consequence)?;
            let (own, engine_nanos) = (unit_nanos(unit), unit_nanos(timestamp_unit(dialect)));
            let exact = match dialect {
                Dialect::Trino => format!("date_diff('millisecond', {previous}, {column})"),
                Dialect::Spark => format!("timestampdiff(MICROSECOND, {previous}, {column})"),
            };
            // The unit asked for, in nanoseconds: the column's, scaled as the kernel scales it.
            let asked = own * i128::from(gap.divisor) / i128::from(gap.multiplier);
            let div = if dialect == Dialect::Trino { "/" } else { "div" };
            match asked.cmp(&engine_nanos) {
                std::cmp::Ordering::Equal => exact,
                std::cmp::Ordering::Greater => format!("{exact} {div} {}", asked / engine_nanos),
                std::cmp::Ordering::Less => format!("{exact} * {}", engine_nanos / asked),
            }
        }
    })
}

/// The `assigned` step: which window(s) each event belongs to, as window ordinals within its
/// entity (within its entity and split, over the split's history, for a split job).
fn assigned(spec: &SequenceSpec, dialect: Dialect, splitting: bool) -> String {
    let q = |name: &str| ident(name, dialect);
    let (win, n) = (q("__win"), spec.sequence_length);
    let div = if dialect == Dialect::Trino { "/" } else { "div" };
    // An event's position and the length of the history it is cut in: its entity's (or
    // session's) in an unsplit job; a split's history in a split job, within the event's
    // session with sessions (`located`).
    let (pos, history, rows_of) = match (splitting, spec.session_gap.is_some()) {
        (true, true) => (q("__spos"), q("__send"), "located"),
        (true, false) => (q("__pos"), q("__end"), "hist"),
        (false, _) => (q("__pos"), q("__len"), "numbered"),
    };
    match spec.mode {
        Mode::Chunk => format!("SELECT *, {pos} {div} {n} AS {win} FROM {rows_of}"),
        Mode::Last => format!("SELECT *, 0 AS {win} FROM {rows_of} WHERE {pos} >= {history} - {n}"),
        Mode::Sliding => {
            let s = spec.effective_stride();
            // Window k covers [kS, kS+N); the last start K is the first with KS + N >= len.
            let first = format!("IF({pos} < {n}, 0, ({pos} - {n} + {s}) {div} {s})");
            let last =
                format!("least(IF({history} <= {n}, 0, ({history} - {n} + {s} - 1) {div} {s}), {pos} {div} {s})");
            unnest(dialect, rows_of, &format!("sequence({first}, {last})"), &win, "")
        }
        Mode::Prefix => {
            // Window k (1-based) ends at event k: event p is in windows p+1 ..= min(len, p+N).
            let ends = format!("sequence({pos} + 1, least({history}, {pos} + {n}))");
            unnest(dialect, rows_of, &ends, &win, " - 1")
        }
    }
}

/// `FROM rows` joined with one row per element of `array`, named `alias` (plus `offset`).
fn unnest(dialect: Dialect, rows: &str, array: &str, alias: &str, offset: &str) -> String {
    let element = ident("__k", dialect);
    match dialect {
        Dialect::Trino => format!(
            "SELECT {rows}.*, {element}{offset} AS {alias}\n  FROM {rows} CROSS JOIN UNNEST({array}) AS t({element})"
        ),
        Dialect::Spark => format!(
            "SELECT {rows}.*, {element}{offset} AS {alias}\n  FROM {rows} LATERAL VIEW explode({array}) t AS {element}"
        ),
    }
}

/// The column of a split job's SELECT that holds each window's split (its index in
/// [`SequenceSpec::output_names`]); not part of the output contract.
pub const SPLIT_COLUMN: &str = "__seqhouse_split";

/// The parts of a split job's SELECT that [`select_outputs`] shares with the unsplit one.
struct SplitSql<'a> {
    resolved: &'a ResolvedSpec,
    dialect: Dialect,
    source: &'a Source,
    aggregates: &'a [String],
    outputs: &'a [String],
    splits: std::ops::Range<usize>,
}

/// The steps of a split job up to `assigned` (without `WITH`, each step followed by `,\n`):
/// each event's split (`owned`), a copy per split (`exploded`; for an entity split only its own)
/// kept where the split's history holds it (`hist`: up to its last target, and only for the
/// splits `splits`), and the window(s) of each copy (`assigned`); with `encode`, the
/// `--vocab` features as ids.
fn split_steps(
    resolved: &ResolvedSpec,
    dialect: Dialect,
    source: &Source,
    splits: std::ops::Range<usize>,
    encode: bool,
) -> Result<String> {
    let spec = &resolved.spec;
    let owned_steps = owned_steps(resolved, dialect, source, encode)?;
    let q = |name: &str| ident(name, dialect);
    let pos = q("__pos");
    let (owner, split_index, end) = (q("__owner"), q("__s"), q("__end"));
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let part = format!("{entity_list}, {split_index}");
    let located = match spec.session_gap {
        Some(_) => format!(
            "located AS (\n  SELECT *, {pos} - {} AS {}, least({end}, {}) - {} AS {}\n  FROM hist\n),\n",
            q("__sfrom"),
            q("__spos"),
            q("__sto"),
            q("__sfrom"),
            q("__send")
        ),
        None => String::new(),
    };
    let all = spec.output_names().len();
    let only = if splits == (0..all) {
        String::new()
    } else {
        format!(" AND {split_index} >= {} AND {split_index} < {}", splits.start, splits.end)
    };
    let element = q("__k");
    let sequence = format!("sequence(0, {})", all - 1);
    let one_split_per_entity = matches!(spec.split, None | Some(seqhouse_core::split::Split::Entity { .. }));
    let exploded = match dialect {
        // Every event of an entity in one split: no copies to make.
        _ if one_split_per_entity => format!("SELECT owned.*, {owner} AS {split_index}\n  FROM owned"),
        Dialect::Trino => format!(
            "SELECT owned.*, {element} AS {split_index}\n  FROM owned CROSS JOIN UNNEST({sequence}) AS t({element})"
        ),
        Dialect::Spark => format!(
            "SELECT owned.*, {element} AS {split_index}\n  FROM owned LATERAL VIEW explode({sequence}) t AS {element}"
        ),
    };
    Ok(format!(
        "{owned_steps}\
         exploded AS (\n  {exploded}\n),\n\
         ended AS (\n  SELECT *, max(IF({owner} = {split_index}, {pos} + 1, 0)) OVER (PARTITION BY {part}) AS {end}\n  FROM exploded\n),\n\
         hist AS (\n  SELECT * FROM ended WHERE {pos} < {end}{only}\n),\n\
         {located}assigned AS (\n  {assigned}\n),\n",
        assigned = assigned(spec, dialect, true),
    ))
}

/// The steps of a split job up to `owned` (without `WITH`, each followed by `,\n`): the
/// events (with `encode`, their `--vocab` features as ids: see [`encode_step`]), numbered within
/// their entity, and each event's split as `__owner` (with `--folds` its fold, with sessions
/// where its session starts and ends among its entity's events).
fn owned_steps(resolved: &ResolvedSpec, dialect: Dialect, source: &Source, encode: bool) -> Result<String> {
    let spec = &resolved.spec;
    let EventSteps { sql: mut events, mut prepared, .. } =
        event_steps(resolved, dialect, &source.table, source.k_core_rounds)?;
    if encode && let Some(encoded) = encode_step(resolved, dialect, source, prepared)? {
        events.push_str(&encoded);
        prepared = ENCODED;
    }
    let q = |name: &str| ident(name, dialect);
    let (pos, len, owner, fold) = (q("__pos"), q("__len"), q("__owner"), q("__fold"));
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let order_list = spec.order_by.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let (owned, fold_bits) = owner_of_events(resolved, dialect)?;
    let fold_bits = fold_bits.map(|bits| format!(", {bits} AS {fold}")).unwrap_or_default();
    // With sessions, each session is cut on its own over the part of each split's history
    // that falls in it: where the session starts and ends among its entity's events.
    let session_bounds = match spec.session_gap {
        Some(_) => {
            let session = format!("PARTITION BY {entity_list}, {}", q(SESSION));
            format!(
                ", min({pos}) OVER ({session}) AS {}, max({pos}) OVER ({session}) + 1 AS {}",
                q("__sfrom"),
                q("__sto")
            )
        }
        None => String::new(),
    };
    Ok(format!(
        "{events}\
         numbered AS (\n  SELECT *,\n         row_number() OVER (PARTITION BY {entity_list} ORDER BY {order_list}) - 1 AS {pos},\n         count(*) OVER (PARTITION BY {entity_list}) AS {len}\n  FROM {prepared}\n),\n\
         owned AS (\n  SELECT *, {owned} AS {owner}{fold_bits}{session_bounds}\n  FROM numbered\n),\n"
    ))
}

/// The steps after `assigned` that count each window's events and targets (`counted`) and
/// find the first kept window of its split that holds each event (`firsts`: where its target
/// mask marks it).
fn first_windows(spec: &SequenceSpec, dialect: Dialect) -> String {
    let q = |name: &str| ident(name, dialect);
    let (pos, win, owner, split_index, first) = (q("__pos"), q("__win"), q("__owner"), q("__s"), q("__first"));
    let (window_length, window_targets) = (q("__wlen"), q("__wtargets"));
    let part = spec.entity.iter().map(|c| q(c)).chain([split_index.clone()]).collect::<Vec<_>>().join(", ");
    let window = format!("{}, {win}", session_group(spec, dialect, &part));
    let kept = format!("{window_length} >= {} AND {window_targets} > 0", spec.min_length);
    format!(
        "counted AS (\n  SELECT *,\n         count(*) OVER (PARTITION BY {window}) AS {window_length},\n         sum(IF({owner} = {split_index}, 1, 0)) OVER (PARTITION BY {window}) AS {window_targets}\n  FROM assigned\n),\n\
         firsts AS (\n  SELECT *, min(CASE WHEN {kept} THEN {win} END) OVER (PARTITION BY {part}, {pos}) AS {first}\n  FROM counted\n),\n"
    )
}

/// The SELECT of a split job (see [`select`]): the [`split_steps`], with target masks the
/// [`first_windows`], then the windows of each split and the kept ones numbered.
fn split_select(sql: SplitSql) -> Result<String> {
    let SplitSql { resolved, dialect, source, aggregates, outputs, splits } = sql;
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let (win, count, idx, split_index) = (q("__win"), q("__n"), q("__idx"), q("__s"));
    let part = spec.entity.iter().map(|c| q(c)).chain([split_index]).collect::<Vec<_>>().join(", ");
    let steps = split_steps(resolved, dialect, source, splits, true)?;
    let (marked, windows_from) =
        if spec.target_mask { (first_windows(spec, dialect), "firsts") } else { (String::new(), "assigned") };
    let group = session_group(spec, dialect, &part);
    Ok(format!(
        "WITH {steps}{marked}\
         windows AS (\n  SELECT {group}, {win},\n         {aggs}\n  FROM {windows_from}\n  GROUP BY {group}, {win}\n),\n\
         kept AS (\n  SELECT *, row_number() OVER (PARTITION BY {group} ORDER BY {win}) - 1 AS {idx}\n  FROM windows\n  WHERE {count} >= {min} AND {window_count_targets} > 0\n)\n\
         SELECT {outputs}\nFROM kept",
        aggs = aggregates.join(",\n         "),
        min = spec.min_length,
        window_count_targets = q("__targets"),
        outputs = outputs.join(",\n       "),
    ))
}

/// The query of a split job's counts per split (none for an unsplit job): one row per split
/// with targets, `split, entities, windows, windows_below_min_length, target_events,
/// scored_events, scored_target_events, scored_twice, scored_non_targets,
/// events_of_later_splits, entities_too_short_to_hold_out`, read by [`split_stats_from_rows`].
///
/// The counts are those of [`seqhouse_core::SplitCounts`], over the same steps as the split
/// SELECT; the leakage counts check the windows' events against each event's own split.
pub fn split_stats(resolved: &ResolvedSpec, source: &Source, dialect: Dialect) -> Result<Option<String>> {
    use seqhouse_core::split::Split;
    let spec = &resolved.spec;
    let Some(split) = &spec.split else { return Ok(None) };
    let q = |name: &str| ident(name, dialect);
    let (pos, len, win, owner, split_index, first) =
        (q("__pos"), q("__len"), q("__win"), q("__owner"), q("__s"), q("__first"));
    let (window_length, window_targets, kept, mark) = (q("__wlen"), q("__wtargets"), q("__kept"), q("__mark"));
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let part = format!("{entity_list}, {split_index}");
    // The counts do not depend on ids: no vocabulary is joined.
    let steps = split_steps(resolved, dialect, source, 0..spec.output_names().len(), false)?;
    let group = session_group(spec, dialect, &part);
    let firsts = first_windows(spec, dialect);
    let min = spec.min_length;
    let is_kept = format!("{window_length} >= {min} AND {window_targets} > 0");
    // An entity split's windows hold only its own events; the other splits' windows may hold
    // earlier splits' events as context, never later ones.
    let leaked = match split {
        Split::Entity { .. } => format!("{owner} <> {split_index}"),
        _ => format!("{owner} > {split_index}"),
    };
    let short = match split {
        Split::LeaveLast { counts } => {
            format!("count_if({pos} = 0 AND {len} <= {})", counts.counts().iter().sum::<usize>())
        }
        _ => "0".to_string(),
    };
    let names = [
        "entities",
        "windows",
        "below",
        "targets",
        "scored",
        "scored_targets",
        "twice",
        "non_targets",
        "later",
        "short",
    ];
    let big = |alias: &str, name: &str| format!("CAST(coalesce({alias}.{}, 0) AS BIGINT)", q(name));
    let from = |name: &str| match name {
        "entities" => "e",
        "windows" | "below" => "w",
        "scored" | "scored_targets" | "twice" | "non_targets" => "v",
        "later" => "l",
        _ => "t",
    };
    let columns: Vec<String> = std::iter::once(format!("CAST(t.{split_index} AS BIGINT)"))
        .chain(names.iter().map(|name| big(from(name), name)))
        .collect();
    let join = |alias: &str| format!("LEFT JOIN {alias}_counts {alias} ON {alias}.{split_index} = t.{split_index}");
    Ok(Some(format!(
        "WITH {steps}{firsts}\
         marked AS (\n  SELECT *, {is_kept} AS {kept}, IF({owner} = {split_index} AND {win} = {first}, 1, 0) AS {mark}\n  FROM firsts\n),\n\
         windows AS (\n  SELECT {group}, {win}, max({window_length}) AS {window_length}, max({window_targets}) AS {window_targets}\n  FROM counted\n  GROUP BY {group}, {win}\n),\n\
         w_counts AS (\n  SELECT {split_index}, count_if({is_kept}) AS {windows}, count_if({window_targets} > 0 AND {window_length} < {min}) AS {below}\n  FROM windows\n  GROUP BY {split_index}\n),\n\
         e_counts AS (\n  SELECT {split_index}, count(*) AS {entities}\n  FROM (SELECT {part} FROM windows WHERE {is_kept} GROUP BY {part}) AS kept_entities\n  GROUP BY {split_index}\n),\n\
         events AS (\n  SELECT {part}, {pos}, max(IF({owner} = {split_index}, 1, 0)) AS {target}, sum({mark}) AS {marks}\n  FROM marked\n  WHERE {kept}\n  GROUP BY {part}, {pos}\n),\n\
         v_counts AS (\n  SELECT {split_index}, sum({marks}) AS {scored}, sum(IF({target} = 1 AND {marks} > 0, 1, 0)) AS {scored_targets},\n         sum(IF({marks} > 1, {marks} - 1, 0)) AS {twice}, sum(IF({target} = 0, {marks}, 0)) AS {non_targets}\n  FROM events\n  GROUP BY {split_index}\n),\n\
         l_counts AS (\n  SELECT {split_index}, count_if({leaked}) AS {later}\n  FROM marked\n  WHERE {kept}\n  GROUP BY {split_index}\n),\n\
         t_counts AS (\n  SELECT {owner} AS {split_index}, count(*) AS {targets}, {short} AS {short_alias}\n  FROM owned\n  GROUP BY {owner}\n)\n\
         SELECT {columns}\nFROM t_counts t\n{joins}\nORDER BY 1",
        windows = q("windows"),
        below = q("below"),
        entities = q("entities"),
        target = q("target"),
        marks = q("marks"),
        scored = q("scored"),
        scored_targets = q("scored_targets"),
        twice = q("twice"),
        non_targets = q("non_targets"),
        later = q("later"),
        targets = q("targets"),
        short_alias = q("short"),
        columns = columns.join(", "),
        joins = ["w", "e", "v", "l"].map(join).join("\n"),
    )))
}

/// Sets a split job's per-split counts in `stats` (from [`stats_from_row`]) from the rows of
/// [`split_stats`] (`rows` in its column order), and the job's windows as their sums.
pub fn split_stats_from_rows(spec: &SequenceSpec, rows: &[Vec<u64>], stats: &mut SequenceStats) -> Result<()> {
    use seqhouse_core::split::Split;
    use seqhouse_core::{LeakCounts, SplitCounts};
    let Some(split) = &spec.split else { return Ok(()) };
    let names = split.names();
    let mut splits: Vec<SplitCounts> =
        names.iter().map(|name| SplitCounts { name: name.to_string(), ..SplitCounts::default() }).collect();
    if let (Split::LeaveLast { .. }, Some(train)) = (split, splits.first_mut()) {
        train.entities_too_short_to_hold_out = Some(0);
    }
    for row in rows {
        let [index, entities, windows, below, targets, scored, scored_targets, twice, non_targets, later, short] =
            row[..]
        else {
            return Err(Error::internal(format!("the split counts query returned {} values, expected 11", row.len())));
        };
        let count = (splits.get_mut(index as usize))
            .ok_or_else(|| Error::internal(format!("the split counts query returned split {index}")))?;
        *count = SplitCounts {
            name: count.name.clone(),
            entities,
            windows,
            windows_below_min_length: below,
            target_events: targets,
            scored_events: scored,
            unscored_target_events: targets.saturating_sub(scored_targets),
            entities_too_short_to_hold_out: count.entities_too_short_to_hold_out.map(|_| short),
            leaks: LeakCounts { events_of_later_splits: later, scored_non_targets: non_targets, scored_twice: twice },
        };
    }
    stats.windows = splits.iter().map(|s| s.windows).sum();
    stats.windows_below_min_length = splits.iter().map(|s| s.windows_below_min_length).sum();
    stats.splits = splits;
    Ok(())
}

/// Each event's split as a SQL expression over `numbered` (its columns, `__pos` and `__len`),
/// and for folds the expression of the entity's fold: the definitions of
/// [`seqhouse_core::split`], the entity hash computed in SQL.
fn owner_of_events(resolved: &ResolvedSpec, dialect: Dialect) -> Result<(String, Option<String>)> {
    use seqhouse_core::split::Split;
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let (pos, len) = (q("__pos"), q("__len"));
    Ok(match &spec.split {
        None => ("0".to_string(), None),
        Some(Split::Entity { fractions, seed, folds }) => {
            let hex = entity_hash_hex(resolved, *seed, dialect);
            // Digits `from..from+8` of the hex digest: one big-endian 32-bit word, unsigned.
            let word = |from: usize| match dialect {
                Dialect::Trino => format!("from_base(substr({hex}, {from}, 8), 16)"),
                Dialect::Spark => format!("CAST(conv(substr({hex}, {from}, 8), 16, 10) AS BIGINT)"),
            };
            let bucket = word(1);
            let thresholds = fractions.thresholds();
            let cases: Vec<String> =
                thresholds.iter().enumerate().map(|(k, end)| format!("WHEN {bucket} < {end} THEN {k}")).collect();
            let owner = format!("CASE {} ELSE {} END", cases.join(" "), thresholds.len());
            (owner, folds.map(|k| format!("{} % {k}", word(9))))
        }
        Some(Split::Temporal { .. }) => {
            let column = q(&spec.order_by[0]);
            let steps = (resolved.cutoffs.iter())
                .map(|cutoff| Ok(format!("IF({column} >= {}, 1, 0)", literal(cutoff.as_ref(), dialect)?)))
                .collect::<Result<Vec<_>>>()?;
            (format!("({})", steps.join(" + ")), None)
        }
        Some(Split::LeaveLast { counts }) => {
            // The last K events to the last split, the K before them to the one before, ...;
            // an entity with no more events than all of them together stays in train.
            let mut cases = Vec::new();
            let mut from_end = 0;
            for (k, count) in counts.counts().iter().enumerate().rev() {
                from_end += count;
                cases.push(format!("WHEN {pos} >= {len} - {from_end} THEN {}", k + 1));
            }
            (format!("CASE WHEN {len} <= {from_end} THEN 0 {} ELSE 0 END", cases.join(" ")), None)
        }
    })
}

/// The SHA-256 of each event's entity-hash message, in hexadecimal (see
/// [`seqhouse_core::split`]): integers as their decimal text, strings as they are, each after
/// its length in UTF-8 bytes.
fn entity_hash_hex(resolved: &ResolvedSpec, seed: i64, dialect: Dialect) -> String {
    let spec = &resolved.spec;
    let text_type = match dialect {
        Dialect::Trino => "VARCHAR",
        Dialect::Spark => "STRING",
    };
    let mut parts = vec![string(&format!("v1|{seed}"), dialect)];
    for (name, &idx) in spec.entity.iter().zip(&resolved.entity_idx) {
        let column = ident(name, dialect);
        let text = match resolved.input_schema.field(idx).data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => column,
            _ => format!("CAST({column} AS {text_type})"),
        };
        let bytes = match dialect {
            Dialect::Trino => format!("length(to_utf8({text}))"),
            Dialect::Spark => format!("octet_length({text})"),
        };
        parts.extend([string("|", dialect), format!("CAST({bytes} AS {text_type})"), string(":", dialect), text]);
    }
    let message = format!("concat({})", parts.join(", "));
    match dialect {
        Dialect::Trino => format!("to_hex(sha256(to_utf8({message})))"),
        Dialect::Spark => format!("sha2({message}, 256)"),
    }
}

/// An array of `count` copies of `value`, where `count` is at most `max`.
///
/// Trino's `repeat` caps at 10,000 elements, so longer padding is built from 10,000-element
/// blocks: `flatten(repeat(repeat(v, 10000), c / 10000))` plus the remainder.
fn repeat(dialect: Dialect, value: &str, count: &str, max: usize) -> String {
    const TRINO_CAP: usize = 10_000;
    match dialect {
        Dialect::Spark => format!("array_repeat({value}, {count})"),
        Dialect::Trino if max <= TRINO_CAP => format!("repeat({value}, {count})"),
        Dialect::Trino => format!(
            "concat(flatten(repeat(repeat({value}, {TRINO_CAP}), ({count}) / {TRINO_CAP})), repeat({value}, ({count}) % {TRINO_CAP}))"
        ),
    }
}

/// The manifest's counts from the row the [`stats`] query returned (`values` in its column
/// order). With `--on-null-key error`, a key column with nulls is the same error as on the local
/// engine; `input` names the input in it.
pub fn stats_from_row(spec: &SequenceSpec, values: &[u64], input: &str) -> Result<SequenceStats> {
    let keys: Vec<&String> = spec.entity.iter().chain(&spec.order_by).collect();
    let filters = usize::from(spec.dedupe_consecutive)
        + usize::from(spec.k_core.is_some())
        + 2 * usize::from(spec.min_events.is_some())
        + usize::from(spec.session_gap.is_some())
        + 2 * usize::from(spec.min_session_length.is_some());
    let expected = 1 + keys.len() + 1 + spec.features.len() + 3 + filters;
    if values.len() != expected {
        return Err(Error::internal(format!("the counts query returned {} values, expected {expected}", values.len())));
    }
    let key_nulls = &values[1..1 + keys.len()];
    if spec.on_null_key == NullKeyPolicy::Error
        && let Some((column, count)) = keys.iter().zip(key_nulls).find(|(_, n)| **n > 0)
    {
        return Err(Error::NullKey { column: column.to_string(), count: *count, file: input.to_string() });
    }
    let dropped = values[1 + keys.len()];
    let feature_nulls = &values[2 + keys.len()..2 + keys.len() + spec.features.len()];
    let windows = &values[2 + keys.len() + spec.features.len()..][..3];
    let mut filtered = values[values.len() - filters..].iter().copied();
    let duplicates = spec.dedupe_consecutive.then(|| filtered.next().unwrap_or(0));
    let outside_core = spec.k_core.as_ref().map(|_| filtered.next().unwrap_or(0));
    let (small_entities, small_rows) = match spec.min_events {
        Some(_) => (filtered.next(), filtered.next()),
        None => (None, None),
    };
    let (short_sessions, short_session_rows) = match spec.min_session_length {
        Some(_) => (filtered.next(), filtered.next()),
        None => (None, None),
    };
    let sessions = spec.session_gap.as_ref().and_then(|_| filtered.next());
    Ok(SequenceStats {
        input_rows: values[0],
        dropped_null_key_rows: dropped,
        null_key_rows_by_column: keys.iter().map(|k| k.to_string()).zip(key_nulls.iter().copied()).collect(),
        sequenced_rows: values[0]
            - dropped
            - duplicates.unwrap_or(0)
            - outside_core.unwrap_or(0)
            - short_session_rows.unwrap_or(0)
            - small_rows.unwrap_or(0),
        dropped_duplicate_rows: duplicates,
        dropped_k_core_rows: outside_core,
        dropped_min_events_entities: small_entities,
        dropped_min_events_rows: small_rows,
        sessions,
        dropped_short_sessions: short_sessions,
        dropped_short_session_rows: short_session_rows,
        entities: windows[0],
        windows: windows[1],
        windows_below_min_length: windows[2],
        feature_nulls: spec.features.iter().map(|f| f.name.clone()).zip(feature_nulls.iter().copied()).collect(),
        splits: Vec::new(),
    })
}

/// The one-row aggregate that gives the manifest's counts without running the windows:
/// `input_rows, null_<key>..., dropped_null_key_rows, nulls_<feature>..., entities, windows,
/// windows_below_min_length`, then with `--dedupe-consecutive` the duplicates dropped, with
/// `--k-core` the events outside the core, with
/// `--min-events` the entities and rows dropped, with `--min-session-length` the short
/// sessions and their rows dropped and with `--session-gap` the sessions, in that order.
/// Window counts follow from each entity's (or session's) length after the filters.
pub fn stats(resolved: &ResolvedSpec, source: &Source, dialect: Dialect) -> Result<String> {
    let spec = &resolved.spec;
    let q = |name: &str| ident(name, dialect);
    let div = if dialect == Dialect::Trino { "/" } else { "div" };
    let (n, m) = (spec.sequence_length, spec.min_length);
    let keys: Vec<String> = spec.entity.iter().chain(&spec.order_by).map(|c| q(c)).collect();
    let any_null = keys.iter().map(|k| format!("{k} IS NULL")).collect::<Vec<_>>().join(" OR ");
    let columns: Vec<String> = spec.needed_columns().iter().map(|c| q(c)).collect();
    let entity_list = spec.entity.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let len = q("__len");
    // Per entity of `len` events: (all windows, windows shorter than the minimum length).
    let (all, short) = match spec.mode {
        Mode::Chunk => {
            (format!("({len} + {n} - 1) {div} {n}"), format!("IF({len} % {n} > 0 AND {len} % {n} < {m}, 1, 0)"))
        }
        Mode::Last => ("1".to_string(), format!("IF(least({len}, {n}) < {m}, 1, 0)")),
        Mode::Prefix => (len.clone(), format!("least({len}, {m} - 1)")),
        Mode::Sliding => {
            let s = spec.effective_stride();
            let last_start = format!("IF({len} <= {n}, 0, ({len} - {n} + {s} - 1) {div} {s})");
            (format!("{last_start} + 1"), format!("IF({len} - {last_start} * {s} < {m}, 1, 0)"))
        }
    };
    let mut totals = vec![format!("count(*) AS {}", q("__rows"))];
    totals.extend(
        keys.iter().enumerate().map(|(i, k)| format!("count_if({k} IS NULL) AS {}", q(&format!("__null_key{i}")))),
    );
    totals.push(format!("count_if({any_null}) AS {}", q("__dropped")));
    let nulls: Vec<String> = (0..spec.features.len())
        .map(|i| format!("count_if({} IS NULL) AS {}", q(&format!("__f{i}")), q(&format!("__nulls{i}"))))
        .collect();
    let mut names: Vec<String> = vec![q("__rows")];
    names.extend((0..keys.len()).map(|i| q(&format!("__null_key{i}"))));
    names.push(q("__dropped"));
    names.extend((0..spec.features.len()).map(|i| q(&format!("__nulls{i}"))));
    names.extend([q("__entities"), q("__windows"), q("__short")]);
    let mut filters = String::new();
    let mut joins = String::new();
    if spec.dedupe_consecutive {
        filters.push_str(&format!(
            "duplicates AS (\n  SELECT count_if(NOT {}) AS {}\n  FROM flagged\n),\n",
            q("__new"),
            q("__duplicates")
        ));
        joins.push_str(" CROSS JOIN duplicates");
        names.push(q("__duplicates"));
    }
    if spec.k_core.is_some() {
        filters.push_str(&format!(
            "outside_core AS (\n  SELECT count_if(NOT {}) AS {}\n  FROM core_marked\n),\n",
            q(IN_CORE),
            q("__outside_core")
        ));
        joins.push_str(" CROSS JOIN outside_core");
        names.push(q("__outside_core"));
    }
    // A step counting the groups of rows of each of `from` with fewer than `min` rows, and
    // their rows.
    let mut below = |step: &str, from: &[&str], group_by: &str, min: usize, [groups, rows]: [&str; 2]| {
        let size = q("__size");
        let sizes: Vec<String> =
            from.iter().map(|from| format!("SELECT count(*) AS {size} FROM {from} GROUP BY {group_by}")).collect();
        filters.push_str(&format!(
            "{step} AS (\n  SELECT count(*) AS {groups}, coalesce(sum({size}), 0) AS {rows}\n  FROM ({}) AS sized_groups\n  WHERE {size} < {min}\n),\n",
            sizes.join(" UNION ALL "),
            groups = q(groups),
            rows = q(rows),
        ));
        joins.push_str(&format!(" CROSS JOIN {step}"));
        names.extend([q(groups), q(rows)]);
    };
    if let Some(min) = spec.min_events {
        below("small", &[before_sized(spec)], &entity_list, min, ["__small", "__small_rows"]);
    }
    if let Some(min) = spec.min_session_length {
        let sessions = format!("{entity_list}, {}", q(SESSION_STARTS.1));
        // Short when cut, or left short by k-core (whose rounds start from the long ones).
        let from: &[&str] = if spec.k_core.is_some() { &[SESSION_STARTS.0, "cored"] } else { &[SESSION_STARTS.0] };
        below("short_sessions", from, &sessions, min, ["__short_sessions", "__short_session_rows"]);
    }
    let totals = totals.join(", ");
    let EventSteps { sql: steps, raw: events, .. } = event_steps(resolved, dialect, "raw", source.k_core_rounds)?;
    // Windows are cut per entity, or with sessions per session: `entities` has a row for each
    // and `window_counts` counts them; with sessions the entities are counted apart.
    let entity_count = if spec.session_gap.is_some() {
        filters.push_str(&format!(
            "entity_count AS (\n  SELECT count(*) AS {entities}\n  FROM (SELECT {entity_list} FROM {events} GROUP BY {entity_list}) AS kept_entities\n),\n",
            entities = q("__entities"),
        ));
        joins.push_str(" CROSS JOIN entity_count");
        names.push(q("__sessions"));
        q("__sessions")
    } else {
        q("__entities")
    };
    Ok(format!(
        "WITH raw AS (\n  SELECT {cols}\n  FROM {table}\n),\n\
         {steps}\
         entities AS (\n  SELECT count(*) AS {len} FROM {events} GROUP BY {groups}\n),\n\
         totals AS (\n  SELECT {totals}\n  FROM raw\n),\n\
         feature_nulls AS (\n  SELECT {nulls}\n  FROM {events}\n),\n\
         {filters}\
         window_counts AS (\n  SELECT count(*) AS {entity_count}, coalesce(sum({all} - {short}), 0) AS {windows}, coalesce(sum({short}), 0) AS {short_alias}\n  FROM entities\n)\n\
         SELECT {names}\nFROM totals CROSS JOIN feature_nulls CROSS JOIN window_counts{joins}",
        groups = session_group(spec, dialect, &entity_list),
        table = source.table,
        cols = columns.join(", "),
        nulls = nulls.join(", "),
        windows = q("__windows"),
        short_alias = q("__short"),
        names = names.join(", "),
    ))
}

/// Statements specific to Athena.
pub mod athena {
    use super::*;

    /// `UNLOAD (select) TO 'target' WITH (format = 'PARQUET', compression = 'ZSTD')`.
    /// The target prefix must be empty: Athena refuses to unload into a non-empty one.
    pub fn unload(select: &str, target: &str) -> String {
        format!(
            "UNLOAD (\n{select}\n) TO {} WITH (format = 'PARQUET', compression = 'ZSTD')",
            string(&format!("{}/", target.trim_end_matches('/')), Dialect::Trino)
        )
    }

    /// [`unload`] partitioned by [`SPLIT_COLUMN`] (the SELECT's last column, as Athena wants
    /// it): each output's files under `target/__seqhouse_split=K/`, without that column.
    pub fn unload_by_split(select: &str, target: &str) -> String {
        format!(
            "UNLOAD (\n{select}\n) TO {} WITH (format = 'PARQUET', compression = 'ZSTD', partitioned_by = ARRAY[{}])",
            string(&format!("{}/", target.trim_end_matches('/')), Dialect::Trino),
            string(SPLIT_COLUMN, Dialect::Trino)
        )
    }

    /// A Hive identifier (Athena runs DDL through Hive): backticks, doubled inside.
    pub fn hive_ident(name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }

    /// The Hive type of an Arrow type, for `CREATE EXTERNAL TABLE`.
    pub fn hive_type(data_type: &DataType) -> Result<&'static str> {
        Ok(match sql_type(data_type, Dialect::Spark)? {
            "BOOLEAN" => "boolean",
            "TINYINT" => "tinyint",
            "SMALLINT" => "smallint",
            "INT" => "int",
            "BIGINT" => "bigint",
            "FLOAT" => "float",
            "DOUBLE" => "double",
            "STRING" => "string",
            "DATE" => "date",
            _ => "timestamp",
        })
    }

    /// `CREATE EXTERNAL TABLE db.table (columns) STORED AS PARQUET LOCATION 'location/'`.
    /// Parquet columns are matched by name, so only the needed columns are declared.
    pub fn create_parquet_table(
        database: &str,
        table: &str,
        columns: &[(String, DataType)],
        location: &str,
    ) -> Result<String> {
        let columns = columns
            .iter()
            .map(|(name, data_type)| Ok(format!("{} {}", hive_ident(name), hive_type(data_type)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(format!(
            "CREATE EXTERNAL TABLE {}.{} ({}) STORED AS PARQUET LOCATION {}",
            hive_ident(database),
            hive_ident(table),
            columns.join(", "),
            string(&format!("{}/", location.trim_end_matches('/')), Dialect::Trino)
        ))
    }

    /// `DROP TABLE IF EXISTS db.table`.
    pub fn drop_table(database: &str, table: &str) -> String {
        format!("DROP TABLE IF EXISTS {}.{}", hive_ident(database), hive_ident(table))
    }

    /// The quoted Trino name of `db.table`, as queries refer to it.
    pub fn table_ref(database: &str, table: &str) -> String {
        format!("{}.{}", ident(database, Dialect::Trino), ident(table, Dialect::Trino))
    }
}
