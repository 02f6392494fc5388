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

/// Splits and target masks are computed by the local engine only, so far: a push-down engine
/// refuses them before running anything (in its preflight, and in every statement built) rather
/// than publish one unsplit output.
pub fn refuse_splits(spec: &SequenceSpec) -> Result<()> {
    let setting = match &spec.split {
        Some(split) => split.setting(),
        None if spec.target_mask => seqhouse_core::Setting::TargetMask,
        None => return Ok(()),
    };
    Err(Error::setting_message(
        setting,
        format!(
            "{setting} runs on the local engine only for now; run the job with {}",
            seqhouse_core::Setting::Engine.with("local")
        ),
    ))
}

/// Renders the SELECT that computes the output rows of `resolved` from `source` (an already
/// quoted table name). Columns come out in the output contract's order.
pub fn select(resolved: &ResolvedSpec, source: &str, dialect: Dialect) -> Result<String> {
    let spec = &resolved.spec;
    refuse_splits(spec)?;
    let q = |name: &str| ident(name, dialect);
    let n = spec.sequence_length;
    let trino = dialect == Dialect::Trino;
    let div = if trino { "/" } else { "div" };
    let entity: Vec<String> = spec.entity.iter().map(|c| q(c)).collect();
    let entity_list = entity.join(", ");
    let order_list = spec.order_by.iter().map(|c| q(c)).collect::<Vec<_>>().join(", ");
    let feature_alias = |i: usize| q(&format!("__f{i}"));
    let array_alias = |i: usize| q(&format!("__a{i}"));
    let (pos, len, win, count, idx) = (q("__pos"), q("__len"), q("__win"), q("__n"), q("__idx"));

    // 1. The needed columns; fill values replace nulls of real events; null keys never pass.
    let mut src_columns: Vec<String> = entity.clone();
    src_columns.extend(spec.order_by.iter().map(|c| q(c)));
    for (i, feature) in spec.features.iter().enumerate() {
        let column = q(&feature.name);
        let value = match &resolved.fills[i] {
            Some(fill) => format!("coalesce({column}, {})", literal(fill.as_ref(), dialect)?),
            None => column,
        };
        src_columns.push(format!("{value} AS {}", feature_alias(i)));
    }
    let not_null = spec
        .entity
        .iter()
        .chain(&spec.order_by)
        .map(|c| format!("{} IS NOT NULL", q(c)))
        .collect::<Vec<_>>()
        .join(" AND ");

    // 2. Which window(s) each event belongs to, as window ordinals within its entity.
    let assigned = match spec.mode {
        Mode::Chunk => format!("SELECT *, {pos} {div} {n} AS {win} FROM numbered"),
        Mode::Last => format!("SELECT *, 0 AS {win} FROM numbered WHERE {pos} >= {len} - {n}"),
        Mode::Sliding => {
            let s = spec.effective_stride();
            // Window k covers [kS, kS+N); the last start K is the first with KS + N >= len.
            let first = format!("IF({pos} < {n}, 0, ({pos} - {n} + {s}) {div} {s})");
            let last = format!("least(IF({len} <= {n}, 0, ({len} - {n} + {s} - 1) {div} {s}), {pos} {div} {s})");
            unnest(dialect, &format!("sequence({first}, {last})"), &win, "")
        }
        Mode::Prefix => {
            // Window k (1-based) ends at event k: event p is in windows p+1 ..= min(len, p+N).
            let ends = format!("sequence({pos} + 1, least({len}, {pos} + {n}))");
            unnest(dialect, &ends, &win, " - 1")
        }
    };

    // 3. Each window's values in position order.
    // Spark's array_repeat takes an INT count, and `N - count(*)` would be BIGINT.
    let window_length = if trino { "count(*)".to_string() } else { "CAST(count(*) AS INT)".to_string() };
    let mut aggregates = vec![format!("{window_length} AS {count}")];
    for i in 0..spec.features.len() {
        let value = feature_alias(i);
        aggregates.push(match dialect {
            Dialect::Trino => format!("array_agg({value} ORDER BY {pos}) AS {}", array_alias(i)),
            // Spark has no ordered aggregate: sort (position, value) structs, keep the values.
            Dialect::Spark => format!(
                "transform(array_sort(collect_list(struct({pos} AS p, {value} AS v))), x -> x.v) AS {}",
                array_alias(i)
            ),
        });
    }

    // 4. Padding to N, on the requested side.
    let pre = spec.padding == Padding::Pre;
    let pad_to_n = |array: String, pad: &str| {
        let padding = repeat(dialect, pad, &format!("{n} - {count}"), n);
        if pre { format!("concat({padding}, {array})") } else { format!("concat({array}, {padding})") }
    };
    let mut outputs: Vec<String> = entity.clone();
    outputs.push(format!("CAST({idx} AS BIGINT) AS {}", q(seqhouse_core::spec::SEQUENCE_INDEX)));
    outputs.push(format!(
        "CAST({count} AS {}) AS {}",
        sql_type(&DataType::Int32, dialect)?,
        q(seqhouse_core::spec::SEQUENCE_LENGTH)
    ));
    for (i, feature) in spec.features.iter().enumerate() {
        let pad = literal(resolved.pads[i].as_ref(), dialect)?;
        outputs.push(format!("{} AS {}", pad_to_n(array_alias(i), &pad), q(&feature.output_name())));
    }
    let (zero, one) = ("CAST(0 AS TINYINT)", "CAST(1 AS TINYINT)");
    let real = repeat(dialect, zero, &count, n);
    let padded = repeat(dialect, one, &format!("{n} - {count}"), n);
    let mask = if pre { format!("concat({padded}, {real})") } else { format!("concat({real}, {padded})") };
    outputs.push(format!("{mask} AS {}", q(seqhouse_core::spec::IS_PAD)));

    let indent = |items: &[String]| items.join(",\n       ");
    Ok(format!(
        "WITH src AS (\n  SELECT {src}\n  FROM {source}\n  WHERE {not_null}\n),\n\
         numbered AS (\n  SELECT *,\n         row_number() OVER (PARTITION BY {entity_list} ORDER BY {order_list}) - 1 AS {pos},\n         count(*) OVER (PARTITION BY {entity_list}) AS {len}\n  FROM src\n),\n\
         assigned AS (\n  {assigned}\n),\n\
         windows AS (\n  SELECT {entity_list}, {win},\n         {aggs}\n  FROM assigned\n  GROUP BY {entity_list}, {win}\n),\n\
         kept AS (\n  SELECT *, row_number() OVER (PARTITION BY {entity_list} ORDER BY {win}) - 1 AS {idx}\n  FROM windows\n  WHERE {count} >= {min}\n)\n\
         SELECT {outputs}\nFROM kept",
        src = src_columns.join(", "),
        aggs = aggregates.join(",\n         "),
        min = spec.min_length,
        outputs = indent(&outputs),
    ))
}

/// `FROM numbered` joined with one row per element of `array`, named `alias` (plus `offset`).
fn unnest(dialect: Dialect, array: &str, alias: &str, offset: &str) -> String {
    match dialect {
        Dialect::Trino => {
            let element = ident("__k", dialect);
            format!(
                "SELECT numbered.*, {element}{offset} AS {alias}\n  FROM numbered CROSS JOIN UNNEST({array}) AS t({element})"
            )
        }
        Dialect::Spark => {
            let element = ident("__k", dialect);
            format!(
                "SELECT numbered.*, {element}{offset} AS {alias}\n  FROM numbered LATERAL VIEW explode({array}) t AS {element}"
            )
        }
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
    let expected = 1 + keys.len() + 1 + spec.features.len() + 3;
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
    let tail = &values[values.len() - 3..];
    Ok(SequenceStats {
        input_rows: values[0],
        dropped_null_key_rows: dropped,
        null_key_rows_by_column: keys.iter().map(|k| k.to_string()).zip(key_nulls.iter().copied()).collect(),
        sequenced_rows: values[0] - dropped,
        entities: tail[0],
        windows: tail[1],
        windows_below_min_length: tail[2],
        feature_nulls: spec.features.iter().map(|f| f.name.clone()).zip(feature_nulls.iter().copied()).collect(),
        splits: Vec::new(),
    })
}

/// The one-row aggregate that gives the manifest's counts without running the windows:
/// `input_rows, null_<key>..., dropped_null_key_rows, nulls_<feature>..., entities, windows,
/// windows_below_min_length`, in that order. Window counts follow from each entity's length.
pub fn stats(resolved: &ResolvedSpec, source: &str, dialect: Dialect) -> Result<String> {
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
    let nulls: Vec<String> = spec
        .features
        .iter()
        .enumerate()
        .map(|(i, f)| format!("count_if({} IS NULL) AS {}", q(&f.name), q(&format!("__nulls{i}"))))
        .collect();
    let mut names: Vec<String> = vec![q("__rows")];
    names.extend((0..keys.len()).map(|i| q(&format!("__null_key{i}"))));
    names.push(q("__dropped"));
    names.extend((0..spec.features.len()).map(|i| q(&format!("__nulls{i}"))));
    names.extend([q("__entities"), q("__windows"), q("__short")]);
    let totals = totals.join(", ");
    Ok(format!(
        "WITH src AS (\n  SELECT {cols}\n  FROM {source}\n),\n\
         kept AS (\n  SELECT * FROM src WHERE NOT ({any_null})\n),\n\
         entities AS (\n  SELECT count(*) AS {len} FROM kept GROUP BY {entity_list}\n),\n\
         totals AS (\n  SELECT {totals}\n  FROM src\n),\n\
         feature_nulls AS (\n  SELECT {nulls}\n  FROM kept\n),\n\
         window_counts AS (\n  SELECT count(*) AS {entities}, coalesce(sum({all} - {short}), 0) AS {windows}, coalesce(sum({short}), 0) AS {short_alias}\n  FROM entities\n)\n\
         SELECT {names}\nFROM totals CROSS JOIN feature_nulls CROSS JOIN window_counts",
        cols = columns.join(", "),
        nulls = nulls.join(", "),
        entities = q("__entities"),
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
