//! Golden SQL: every mode x padding side x dialect, every type's literal, the large-N padding,
//! the counts query and Athena's statements. A change to the generated SQL shows up here as a
//! diff to review (`INSTA_UPDATE=always scripts/test -p seqhouse-sql` accepts it); its meaning is
//! checked by executing it in tests/meaning.rs.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use seqhouse_core::{FeatureSpec, Mode, Padding, ResolvedSpec, SequenceSpec};
use seqhouse_sql::{Dialect, Source, athena, select, stats};

fn schema() -> Schema {
    Schema::new(vec![
        Field::new("user_id", DataType::Int64, true),
        Field::new("course", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        Field::new("row_id", DataType::Int64, true),
        Field::new("item", DataType::Int32, true),
        Field::new("correct", DataType::Int8, true),
        Field::new("elapsed", DataType::Float32, true),
        Field::new("score", DataType::Float64, true),
        Field::new("tag", DataType::Utf8, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
    ])
}

fn spec(mode: Mode, padding: Padding) -> SequenceSpec {
    let mut spec = SequenceSpec::new(
        vec!["user_id".into(), "course".into()],
        vec!["ts".into(), "row_id".into()],
        vec![
            FeatureSpec { name: "item".into(), pad: Some("-1".into()) },
            FeatureSpec { name: "correct".into(), pad: None },
            FeatureSpec { name: "tag".into(), pad: Some("it's <pad>".into()) },
        ],
        8,
    );
    spec.mode = mode;
    spec.padding = padding;
    spec.min_length = 2;
    if mode == Mode::Sliding {
        spec.stride = Some(3);
    }
    spec
}

fn resolved(spec: &SequenceSpec) -> ResolvedSpec {
    ResolvedSpec::new(spec, &schema(), "events").unwrap()
}

#[test]
fn select_for_every_mode_padding_and_dialect() {
    for (dialect, name, source) in
        [(Dialect::Trino, "trino", "\"db\".\"events\""), (Dialect::Spark, "spark", "`events`")]
    {
        for mode in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix] {
            for padding in [Padding::Post, Padding::Pre] {
                let sql = select(&resolved(&spec(mode, padding)), &Source::new(source), dialect).unwrap();
                insta::assert_snapshot!(format!("select_{name}_{mode}_{padding}"), sql);
            }
        }
    }
}

#[test]
fn literals_of_every_type() {
    let mut spec = spec(Mode::Chunk, Padding::Post);
    spec.features = [
        ("item", "-7"),
        ("correct", "3"),
        ("elapsed", "1.5"),
        ("score", "NaN"),
        ("tag", "a'b\\c"),
        ("flag", "true"),
        ("day", "2024-02-29"),
        ("ts", "2024-02-29T12:34:56.789"),
    ]
    .into_iter()
    .map(|(name, pad)| FeatureSpec { name: name.into(), pad: Some(pad.into()) })
    .collect();
    spec.fill_null = vec!["score=0.25".parse().unwrap()];
    for (dialect, name) in [(Dialect::Trino, "trino"), (Dialect::Spark, "spark")] {
        insta::assert_snapshot!(
            format!("literals_{name}"),
            select(&resolved(&spec), &Source::new("t"), dialect).unwrap()
        );
    }
}

#[test]
fn padding_beyond_trinos_repeat_cap() {
    let mut spec = spec(Mode::Last, Padding::Pre);
    spec.sequence_length = 20_000;
    insta::assert_snapshot!(
        "select_trino_large_n",
        select(&resolved(&spec), &Source::new("t"), Dialect::Trino).unwrap()
    );
}

#[test]
fn counts_query_for_every_mode() {
    for mode in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix] {
        let sql =
            stats(&resolved(&spec(mode, Padding::Post)), &Source::new("\"db\".\"events\""), Dialect::Trino).unwrap();
        insta::assert_snapshot!(format!("stats_trino_{mode}"), sql);
    }
}

#[test]
fn athena_statements() {
    let columns = schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect::<Vec<_>>();
    let ddl = athena::create_parquet_table("kt", "seqhouse_tmp_1", &columns, "s3://bucket/data/train").unwrap();
    insta::assert_snapshot!("athena_ddl", ddl);
    insta::assert_snapshot!("athena_drop", athena::drop_table("kt", "seqhouse_tmp_1"));
    insta::assert_snapshot!("athena_unload", athena::unload("SELECT 1", "s3://bucket/out/_seqhouse-unload-1"));
    insta::assert_snapshot!(
        "athena_unload_by_split",
        athena::unload_by_split("SELECT 1", "s3://bucket/out/train_sequenced_4/_seqhouse-unload-1/0")
    );
}

#[test]
fn select_for_every_split_kind_and_dialect() {
    use seqhouse_core::split::Split;
    let kinds = [
        (
            "entity",
            Mode::Chunk,
            Split::Entity { fractions: "train=0.8,test=0.2".parse().unwrap(), seed: 7, folds: Some(5) },
        ),
        (
            "temporal",
            Mode::Sliding,
            Split::Temporal { cutoffs: "validation=2024-01-01T00:00:00,test=2024-02-01T00:00:00".parse().unwrap() },
        ),
        ("leave_last", Mode::Prefix, Split::LeaveLast { counts: "validation=1,test=2".parse().unwrap() }),
    ];
    for (dialect, name, source) in
        [(Dialect::Trino, "trino", "\"db\".\"events\""), (Dialect::Spark, "spark", "`events`")]
    {
        for (kind, mode, split) in &kinds {
            let mut spec = spec(*mode, Padding::Post);
            spec.split = Some(split.clone());
            spec.target_mask = true;
            let sql = select(&resolved(&spec), &Source::new(source), dialect).unwrap();
            insta::assert_snapshot!(format!("select_split_{name}_{kind}"), sql);
            let counts = seqhouse_sql::split_stats(&resolved(&spec), &Source::new(source), dialect).unwrap().unwrap();
            insta::assert_snapshot!(format!("split_stats_{name}_{kind}"), counts);
        }
    }
}

/// Sessions over the millisecond clock `ts`, in a leave-last split with target masks, and the
/// counts query: the session steps, the session-relative history of each split, the counts.
#[test]
fn select_with_sessions_for_each_dialect() {
    let mut spec = spec(Mode::Sliding, Padding::Pre);
    spec.session_gap = Some("30m".into());
    spec.min_session_length = Some(2);
    let mut split = spec.clone();
    split.split = Some(seqhouse_core::split::Split::LeaveLast { counts: "test=1".parse().unwrap() });
    split.target_mask = true;
    for (dialect, name, source) in
        [(Dialect::Trino, "trino", "\"db\".\"events\""), (Dialect::Spark, "spark", "`events`")]
    {
        insta::assert_snapshot!(
            format!("select_sessions_{name}"),
            select(&resolved(&spec), &Source::new(source), dialect).unwrap()
        );
        insta::assert_snapshot!(
            format!("stats_sessions_{name}"),
            stats(&resolved(&spec), &Source::new(source), dialect).unwrap()
        );
        insta::assert_snapshot!(
            format!("select_split_sessions_{name}"),
            select(&resolved(&split), &Source::new(source), dialect).unwrap()
        );
    }
}

/// A session clock finer than the engine reads timestamps (Athena: milliseconds; Spark:
/// microseconds) would cut other sessions there than in the data: refused by name.
#[test]
fn session_clocks_finer_than_the_engine_reads_are_refused() {
    let mut spec = spec(Mode::Chunk, Padding::Post);
    spec.session_gap = Some("30m".into());
    let units = [
        (TimeUnit::Millisecond, true, true),
        (TimeUnit::Microsecond, false, true),
        (TimeUnit::Nanosecond, false, false),
    ];
    assert_runs_or_is_refused_by_ts_unit(&spec, &units, &["session", "'ts'", "local"]);
}

/// For each `(unit, runs on Trino, runs on Spark)` of `units`: `spec` over the schema with `ts`
/// a timestamp of that unit renders, or is refused with a message holding every one of `words`.
fn assert_runs_or_is_refused_by_ts_unit(spec: &SequenceSpec, units: &[(TimeUnit, bool, bool)], words: &[&str]) {
    for &(unit, trino_ok, spark_ok) in units {
        let fields: Vec<Field> = (schema().fields().iter())
            .map(|f| match f.name().as_str() {
                "ts" => Field::new("ts", DataType::Timestamp(unit, None), true),
                _ => f.as_ref().clone(),
            })
            .collect();
        let resolved = ResolvedSpec::new(spec, &Schema::new(fields), "events").unwrap();
        for (dialect, ok) in [(Dialect::Trino, trino_ok), (Dialect::Spark, spark_ok)] {
            match select(&resolved, &Source::new("events"), dialect) {
                Ok(_) => assert!(ok, "{unit:?} on {dialect:?} runs"),
                Err(e) => {
                    let message = e.to_string();
                    assert!(!ok, "{unit:?} on {dialect:?}: {message}");
                    assert!(words.iter().all(|w| message.contains(w)), "{message}");
                }
            }
        }
    }
}

/// `--k-core` on the string feature `tag` with `--min-events` and `--dedupe-consecutive`: the
/// probe of two rounds, then the SELECT and the counts query running the two rounds before it.
#[test]
fn select_with_k_core_for_each_dialect() {
    let mut spec = spec(Mode::Chunk, Padding::Post);
    spec.k_core = Some("tag=3".parse().unwrap());
    spec.min_events = Some(4);
    spec.dedupe_consecutive = true;
    for (dialect, name, source) in
        [(Dialect::Trino, "trino", "\"db\".\"events\""), (Dialect::Spark, "spark", "`events`")]
    {
        let resolved = resolved(&spec);
        let probe = seqhouse_sql::k_core_probe(&resolved, source, dialect, 3).unwrap();
        insta::assert_snapshot!(format!("k_core_probe_{name}"), probe);
        let source = Source::new(source).with_k_core_rounds(2);
        insta::assert_snapshot!(format!("select_k_core_{name}"), select(&resolved, &source, dialect).unwrap());
        insta::assert_snapshot!(format!("stats_k_core_{name}"), stats(&resolved, &source, dialect).unwrap());
    }
}

/// A float k-core column is refused on SQL engines (they group 0.0 with -0.0 and every NaN
/// together), and a k-core job's statements need their rounds.
#[test]
fn k_core_on_floats_and_without_rounds_is_refused() {
    let mut spec = spec(Mode::Chunk, Padding::Post);
    spec.features.push(FeatureSpec { name: "score".into(), pad: None });
    spec.k_core = Some("score=2".parse().unwrap());
    let message = select(&resolved(&spec), &Source::new("t").with_k_core_rounds(1), Dialect::Trino).unwrap_err();
    let message = message.to_string();
    assert!(message.contains("k_core") && message.contains("'score'") && message.contains("local"), "{message}");
    spec.k_core = Some("tag=2".parse().unwrap());
    assert!(select(&resolved(&spec), &Source::new("t"), Dialect::Spark).is_err(), "no rounds given");
}

/// Timestamp gaps are taken in the engine's exact unit and scaled to the unit asked for; over a
/// column finer than the engine reads they are refused by name, as sessions are.
#[test]
fn timestamp_gaps_are_exact_or_refused() {
    let mut spec = spec(Mode::Chunk, Padding::Post);
    spec.features.push(FeatureSpec { name: "waited".into(), pad: None });
    spec.time_deltas = vec!["waited=ts:s".parse().unwrap()];
    let expected = [
        (Dialect::Trino, "date_diff('millisecond', lag(\"__c3\")"),
        (Dialect::Spark, "timestampdiff(MICROSECOND, lag(`__c3`)"),
    ];
    for (dialect, exact) in expected {
        let sql = select(&resolved(&spec), &Source::new("t"), dialect).unwrap();
        let scaled = if dialect == Dialect::Trino { ") / 1000 AS" } else { ") div 1000000 AS" };
        assert!(sql.contains(exact) && sql.contains(scaled), "{dialect:?}:\n{sql}");
    }
    let units = [(TimeUnit::Microsecond, false, true), (TimeUnit::Nanosecond, false, false)];
    assert_runs_or_is_refused_by_ts_unit(&spec, &units, &["time_delta", "'waited'", "local"]);
}
