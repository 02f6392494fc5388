//! The generated Trino SQL checked offline: every statement against Trino's grammar, and the
//! SELECT and counts query executed (transpiled to DuckDB) on real and edge-case data, compared
//! with the local engine's output and manifest. Needs `SEQHOUSE_PYTHON` with duckdb, sqlglot,
//! trino-query-parser and trino-sql-validator (scripts/test sets it up).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::{DataType, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_contract::{Fixture, LocalFixture, cases, reference};
use seqhouse_core::vocab::ValueCounts;
use seqhouse_core::{Mode, NoProgress, Padding, ResolvedSpec, SequenceRequest, SequenceSpec, SequenceStats};
use seqhouse_local::{LocalConfig, LocalWarehouse};
use seqhouse_sql::{Dialect, Source, athena, select, split_stats, stats};

struct Case {
    name: String,
    spec: SequenceSpec,
    data: PathBuf,
}

fn python() -> String {
    std::env::var("SEQHOUSE_PYTHON").unwrap_or_else(|_| {
        panic!(
            "SEQHOUSE_PYTHON is not set: the SQL checks need duckdb, sqlglot and the Trino validators; run scripts/test"
        )
    })
}

fn read_parquet(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(|b| b.unwrap()).collect()
}

fn sorted(mut rows: Vec<reference::Row>) -> Vec<reference::Row> {
    rows.sort();
    rows
}

/// Runs tests/check_sql.py on `payload` (its cases): each case's statements validated, its
/// SELECT's rows written to its `out`; returns the counts query's result per case.
fn run_checker(payload: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut child = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_sql.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SQL checker");
    child.stdin.take().unwrap().write_all(serde_json::to_string(payload).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SQL check failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The rounds of `--k-core` that [`seqhouse_sql::k_core_rounds`] finds by running its probes in
/// DuckDB on `data` (every probe it may run is run once, in one checker run).
fn k_core_rounds(resolved: &ResolvedSpec, data: &Path) -> usize {
    let table = "\"events\"";
    let probes: Vec<String> = std::iter::successors(Some(1), |r| Some(r * 2))
        .take_while(|&r| r <= seqhouse_sql::K_CORE_MAX_ROUNDS)
        .map(|rounds| seqhouse_sql::k_core_probe(resolved, table, Dialect::Trino, rounds).unwrap())
        .collect();
    let reply = run_checker(&[serde_json::json!({"name": "probes", "probes": probes, "data": data})]);
    let counts: Vec<Vec<u64>> = serde_json::from_value(reply[0]["probes"].clone()).unwrap();
    seqhouse_sql::k_core_rounds(resolved, table, Dialect::Trino, "duckdb", |probe| {
        Ok(vec![counts[probes.iter().position(|p| p == probe).expect("a probe run above")].clone()])
    })
    .unwrap()
}

/// Where the local engine publishes `case` (in `dir`).
fn local_output(dir: &Path, case: &Case) -> PathBuf {
    dir.join(format!("{}_local", case.name))
}

/// Renders every case, runs the checker once for all, and compares each result with the local
/// engine. Returns the rounds of `--k-core` each case ran (0 without). A case with `--vocab`
/// runs its counts queries, whose counts must fit to the local engine's vocabulary files byte
/// for byte, and its SELECT joins those files as its vocabulary tables.
fn check(cases: Vec<Case>) -> Vec<usize> {
    let dir = tempfile::tempdir().unwrap();
    let warehouse = LocalWarehouse::new(LocalConfig::default()).unwrap();
    for case in &cases {
        let request = SequenceRequest {
            input: case.data.display().to_string(),
            output: local_output(dir.path(), case).display().to_string(),
            subsets: vec![],
            spec: case.spec.clone(),
            overwrite: false,
        };
        seqhouse_core::run(&warehouse, &request, &NoProgress).unwrap();
    }
    let mut payload = Vec::new();
    let mut resolved_specs = Vec::new();
    let mut rounds = Vec::new();
    // Per vocabulary: its case, its spec, the local engine's file, the SQL's counts.
    let mut vocab_checks = Vec::new();
    for case in &cases {
        let schema = read_parquet(&case.data)[0].schema();
        let resolved = ResolvedSpec::new(&case.spec, &schema, "events").unwrap();
        let mut source = Source::new("\"events\"");
        if case.spec.k_core.is_some() {
            source = source.with_k_core_rounds(k_core_rounds(&resolved, &case.data));
        }
        let vocab_files: Vec<PathBuf> = (case.spec.vocab.iter())
            .map(|v| local_output(dir.path(), case).join(seqhouse_core::vocab::vocab_file("_vocab", &v.name)))
            .collect();
        source.vocabularies = (0..vocab_files.len()).map(|j| format!("\"vocab_{j}\"")).collect();
        let vocab_tables: serde_json::Map<String, serde_json::Value> =
            vocab_files.iter().enumerate().map(|(j, file)| (format!("vocab_{j}"), serde_json::json!(file))).collect();
        let counts_out: Vec<PathBuf> =
            (0..vocab_files.len()).map(|j| dir.path().join(format!("{}_counts_{j}.parquet", case.name))).collect();
        rounds.push(source.k_core_rounds.unwrap_or(0));
        let source = &source;
        let columns: Vec<(String, arrow::datatypes::DataType)> =
            resolved.input_schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
        let select = select(&resolved, source, Dialect::Trino).unwrap();
        payload.push(serde_json::json!({
            "name": case.name,
            "select": select,
            "stats": stats(&resolved, source, Dialect::Trino).unwrap(),
            "unload": athena::unload(&select, "s3://bucket/prefix/_unload-1"),
            "ddl": athena::create_parquet_table("db", "seqhouse_tmp_1", &columns, "s3://bucket/in").unwrap(),
            "data": case.data,
            "out": dir.path().join(format!("{}.parquet", case.name)),
            "vocab_tables": vocab_tables,
            "vocab_counts": seqhouse_sql::vocab_counts(&resolved, source, Dialect::Trino).unwrap(),
            "vocab_counts_out": counts_out,
        }));
        for ((vocab, file), counts) in case.spec.vocab.iter().zip(&vocab_files).zip(&counts_out) {
            vocab_checks.push((case.name.clone(), vocab.clone(), file.clone(), counts.clone()));
        }
        resolved_specs.push(resolved);
    }
    let stats_lines = run_checker(&payload);

    // Each vocabulary: the SQL's counts, ranked by seqhouse, equal the local engine's file.
    for (name, vocab, file, counts) in vocab_checks {
        let local = read_parquet(&file);
        let mut fitted = ValueCounts::new(local[0].schema().field_with_name("value").unwrap().data_type()).unwrap();
        for batch in read_parquet(&counts) {
            let number = arrow::compute::cast(batch.column_by_name("count").unwrap(), &DataType::Int64).unwrap();
            let number: Vec<u64> = number.as_primitive::<Int64Type>().values().iter().map(|&c| c as u64).collect();
            fitted.add_counted(batch.column_by_name("value").unwrap(), &number).unwrap();
        }
        let fitted = fitted.fit(&vocab).unwrap().to_batch().unwrap();
        assert!(fitted.num_rows() > 1, "{name}: {} fits a vocabulary", vocab.name);
        assert_eq!(vec![fitted], local, "{name}: the counts query fits another {} vocabulary", vocab.name);
    }

    for (i, case) in cases.iter().enumerate() {
        let local_out = local_output(dir.path(), case);
        let local = LocalFixture::new().read_output(local_out.to_str().unwrap());
        let sql_rows =
            reference::rows_of(&case.spec, &read_parquet(&dir.path().join(format!("{}.parquet", case.name))));
        let local_rows = reference::rows_of(&case.spec, &local.batches);
        assert!(!local_rows.is_empty(), "{}: the case produces windows", case.name);
        if sorted(sql_rows.clone()) != sorted(local_rows.clone()) {
            // The rows one side has and the other lacks, not the whole outputs.
            let only = |a: &[reference::Row], b: &[reference::Row]| -> Vec<reference::Row> {
                a.iter().filter(|r| !b.contains(r)).take(3).cloned().collect()
            };
            panic!(
                "{}: SQL output differs from the local engine ({} rows against {}):\nonly in SQL: {:?}\nonly local: {:?}",
                case.name,
                sql_rows.len(),
                local_rows.len(),
                only(&sql_rows, &local_rows),
                only(&local_rows, &sql_rows)
            );
        }

        let c = &local.manifest.counts;
        let keys = resolved_specs[i].spec.entity.len() + resolved_specs[i].spec.order_by.len();
        let mut want = vec![c.input_rows];
        want.extend(case.spec.entity.iter().chain(&case.spec.order_by).map(|k| c.null_key_rows_by_column[k]));
        want.push(c.dropped_null_key_rows);
        want.extend(case.spec.features.iter().map(|f| c.feature_nulls[&f.name]));
        want.extend([c.entities, c.windows, c.windows_below_min_length]);
        want.extend(c.dropped_duplicate_rows);
        want.extend(c.dropped_k_core_rows);
        want.extend(c.dropped_min_events_entities.into_iter().chain(c.dropped_min_events_rows));
        want.extend(c.dropped_short_sessions.into_iter().chain(c.dropped_short_session_rows).chain(c.sessions));
        let got: Vec<u64> = stats_lines[i]["stats"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
        assert_eq!(got, want, "{}: counts query differs from the manifest ({keys} key columns)", case.name);
    }
    rounds
}

/// Per ASSISTments user, by `log_order`: skill and correctness padded with -1, in `mode`.
fn assist_spec(mode: Mode, n: usize) -> SequenceSpec {
    let mut spec = SequenceSpec::new(
        vec!["user_id".into()],
        vec!["log_order".into()],
        vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
        n,
    );
    spec.mode = mode;
    spec
}

fn assistments() -> PathBuf {
    let path = seqhouse_contract::real_data().join("assist2015/events.parquet");
    assert!(path.exists(), "missing {}", path.display());
    path
}

#[test]
fn every_mode_and_padding_on_assistments() {
    let mut all = Vec::new();
    for mode in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix] {
        for padding in [Padding::Post, Padding::Pre] {
            let mut spec = SequenceSpec::new(
                vec!["user_id".into()],
                vec!["log_order".into()],
                vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
                50,
            );
            spec.mode = mode;
            spec.padding = padding;
            spec.min_length = 3;
            if mode == Mode::Sliding {
                spec.stride = Some(20);
            }
            all.push(Case { name: format!("assist_{mode}_{padding}"), spec, data: assistments() });
        }
    }
    check(all);
}

/// `--dedupe-consecutive`, `--min-events` and `--time-delta` (over an integer and a date
/// column), alone and together, on the real log and on the contract's repeating log.
#[test]
fn filters_and_time_deltas_match_the_local_engine() {
    let base = assist_spec;
    let mut deduped = base(Mode::Chunk, 50);
    deduped.dedupe_consecutive = true;
    let mut small = base(Mode::Last, 20);
    small.min_events = Some(30);
    let mut all = base(Mode::Sliding, 30);
    all.stride = Some(10);
    all.padding = Padding::Pre;
    all.dedupe_consecutive = true;
    all.min_events = Some(5);
    all.features.push("gap=-1".parse().unwrap());
    all.time_deltas = vec!["gap=log_order".parse().unwrap()];
    all.fill_null = vec!["gap=0".parse().unwrap()];
    let mut cases: Vec<Case> = [("assist_deduped", deduped), ("assist_min_events", small), ("assist_all", all)]
        .into_iter()
        .map(|(name, spec)| Case { name: name.into(), spec, data: assistments() })
        .collect();

    let dir = LocalFixture::new();
    let location = dir.put_bytes("repeating", "events.parquet", &parquet_bytes(&[cases::repeating_events(31)]));
    let mut dated = SequenceSpec::new(
        vec!["user".into()],
        vec!["ts".into()],
        vec![
            "days".parse().unwrap(),
            "item=-1".parse().unwrap(),
            "correct=-1".parse().unwrap(),
            "gap".parse().unwrap(),
        ],
        5,
    );
    dated.mode = Mode::Prefix;
    dated.dedupe_consecutive = true;
    dated.min_events = Some(15);
    dated.time_deltas = vec!["days=day".parse().unwrap(), "gap=seen_ms".parse().unwrap()];
    cases.push(Case {
        name: "repeating_dated".into(),
        spec: dated,
        data: PathBuf::from(location).join("events.parquet"),
    });
    // Gaps over a millisecond timestamp in each unit: Trino's exact milliseconds, scaled.
    let mut timed = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], session_features(), 4);
    for (name, unit) in [("waited", ""), ("waited_ms", ":ms"), ("waited_us", ":us"), ("waited_ns", ":ns")] {
        timed.features.push(name.parse().unwrap());
        timed.time_deltas.push(format!("{name}=at{unit}").parse().unwrap());
    }
    timed.mode = Mode::Sliding;
    cases.push(Case { name: "timestamp_gaps".into(), spec: timed, data: timed_log(&dir, 29) });
    check(cases);
    drop(dir);
}

/// `--k-core` on ASSISTments' skills, alone, with `--min-events` (the fixed point then takes
/// rounds) and with `--dedupe-consecutive`: the rounds found by running the probes, the
/// windows and every count (the events outside the core too) equal the local engine's.
#[test]
fn k_core_matches_the_local_engine() {
    let base = assist_spec;
    let mut values = base(Mode::Chunk, 50);
    values.k_core = Some("skill_id=3000".parse().unwrap());
    let mut rounds = base(Mode::Last, 20);
    rounds.k_core = Some("skill_id=1500".parse().unwrap());
    rounds.min_events = Some(60);
    let mut deduped = base(Mode::Sliding, 30);
    deduped.stride = Some(10);
    deduped.k_core = Some("skill_id=800".parse().unwrap());
    deduped.min_events = Some(40);
    deduped.dedupe_consecutive = true;
    let cases = [("assist_k_core", values), ("assist_k_core_rounds", rounds), ("assist_k_core_deduped", deduped)]
        .into_iter()
        .map(|(name, spec)| Case { name: name.into(), spec, data: assistments() })
        .collect();
    let rounds = check(cases);
    assert!(rounds.iter().all(|&r| r >= 1) && rounds.iter().any(|&r| r >= 2), "rounds: {rounds:?}");
}

/// MovieLens' ratings (`userId`, `movieId`, `rating`, `timestamp` in seconds) as a Parquet
/// file in `dir`, converted by DuckDB.
fn movielens(dir: &Path) -> PathBuf {
    let csv = seqhouse_contract::real_data().join("movielens-latest-small/ratings.csv");
    let out = dir.join("ratings.parquet");
    let copy = format!(
        "import duckdb; duckdb.sql(\"COPY (SELECT * FROM read_csv('{}')) TO '{}' (FORMAT PARQUET)\")",
        csv.display(),
        out.display()
    );
    let status = Command::new(python()).args(["-c", &copy]).status().expect("run DuckDB");
    assert!(status.success(), "converting {} failed", csv.display());
    out
}

/// `--k-core` with `--session-gap` on MovieLens (ratings a user gives within an hour of each
/// other are a session): the sessions are cut before the core, each round drops the sessions
/// left shorter than `--min-session-length` and the users left with fewer than `--min-events`,
/// and the rounds, windows and every count equal the local engine's.
#[test]
fn k_core_with_sessions_matches_the_local_engine() {
    let dir = tempfile::tempdir().unwrap();
    let ratings = movielens(dir.path());
    let mut spec = SequenceSpec::new(
        vec!["userId".into()],
        // A user rates many movies in the same second: the movie orders them (SQL keeps no
        // input order among ties).
        vec!["timestamp".into(), "movieId".into()],
        vec!["movieId=-1".parse().unwrap(), "rating=-1".parse().unwrap()],
        20,
    );
    spec.k_core = Some("movieId=10".parse().unwrap());
    spec.session_gap = Some("3600".into());
    spec.min_session_length = Some(5);
    spec.min_events = Some(20);
    let mut last = spec.clone();
    last.mode = Mode::Last;
    last.padding = Padding::Pre;
    last.min_session_length = Some(3);
    last.k_core = Some("movieId=20".parse().unwrap());
    let cases = [("movielens_core_sessions", spec), ("movielens_core_sessions_last", last)]
        .into_iter()
        .map(|(name, spec)| Case { name: name.into(), spec, data: ratings.clone() })
        .collect();
    let rounds = check(cases);
    assert!(rounds.iter().all(|&r| r >= 2), "rounds: {rounds:?}");
}

/// `--vocab` on ASSISTments' skills and correctness (with `min_count` and `max_size`, after
/// dedupe and k-core): the counts queries fit the local engine's vocabularies byte for byte,
/// and the SELECT joining them gives its windows of ids.
#[test]
fn vocabularies_on_assistments_match_the_local_engine() {
    let mut encoded = assist_spec(Mode::Chunk, 50);
    encoded.features = vec!["skill_id".parse().unwrap(), "correct".parse().unwrap()];
    encoded.vocab = vec!["skill_id:min_count=50:max_size=60".parse().unwrap(), "correct".parse().unwrap()];
    let mut cored = assist_spec(Mode::Sliding, 30);
    cored.stride = Some(10);
    cored.features = vec!["skill_id".parse().unwrap(), "correct=-1".parse().unwrap()];
    cored.vocab = vec!["skill_id".parse().unwrap()];
    cored.dedupe_consecutive = true;
    cored.k_core = Some("skill_id=800".parse().unwrap());
    cored.min_events = Some(40);
    let cases = [("assist_vocab", encoded), ("assist_vocab_core", cored)]
        .into_iter()
        .map(|(name, spec)| Case { name: name.into(), spec, data: assistments() })
        .collect();
    check(cases);
}

/// The contract's repeating log (`seed`) with its minute clock `at`, as a Parquet file in
/// `fixture`.
fn timed_log(fixture: &LocalFixture, seed: u64) -> PathBuf {
    let batch = cases::with_minute_clock(&cases::repeating_events(seed));
    PathBuf::from(fixture.put_bytes("timed", "events.parquet", &parquet_bytes(&[batch]))).join("events.parquet")
}

/// The features of the session cases: item and correctness padded with -1.
fn session_features() -> Vec<seqhouse_core::FeatureSpec> {
    vec!["item=-1".parse().unwrap(), "correct=-1".parse().unwrap()]
}

/// `--session-gap` over a timestamp clock (with `--min-session-length`, dedupe, min-events and
/// a gap), over dates (a session per day, many events sharing one) and over integers: the
/// windows, `session_index` and every count, including the sessions', equal the local
/// engine's. Athena's SQL is also checked against Trino's grammar and validator here.
#[test]
fn sessions_match_the_local_engine() {
    let dir = LocalFixture::new();
    let location = timed_log(&dir, 37);
    let mut timed = SequenceSpec::new(vec!["user".into()], vec!["at".into()], session_features(), 4);
    timed.session_gap = Some("3m".into());
    timed.min_session_length = Some(2);
    timed.dedupe_consecutive = true;
    timed.min_events = Some(10);
    timed.features.push("gap".parse().unwrap());
    timed.time_deltas = vec!["gap=ts".parse().unwrap()];
    timed.mode = Mode::Sliding;
    timed.stride = Some(2);
    let mut daily = SequenceSpec::new(vec!["user".into()], vec!["day".into(), "ts".into()], session_features(), 3);
    daily.session_gap = Some("0".into());
    daily.mode = Mode::Prefix;
    daily.padding = Padding::Pre;
    let mut counted = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], session_features(), 5);
    counted.session_gap = Some("4".into());
    counted.min_session_length = Some(4);
    counted.min_length = 2;
    let cases = [("sessions_timed", timed), ("sessions_daily", daily), ("sessions_counted", counted)]
        .into_iter()
        .map(|(name, spec)| Case { name: name.into(), spec, data: location.clone() })
        .collect();
    check(cases);
    drop(dir);
}

#[test]
fn edge_cases_types_nulls_fill_and_hostile_names() {
    let dir = LocalFixture::new();
    let location = dir.put_bytes("edge", "events.parquet", &parquet_bytes(&[cases::edge_case_events()]));
    let data = PathBuf::from(location).join("events.parquet");
    let cases: Vec<Case> =
        cases::edge_case_specs().into_iter().map(|(name, spec)| Case { name, spec, data: data.clone() }).collect();
    check(cases);
    drop(dir);
}

#[test]
fn identifiers_and_literals_cannot_break_out() {
    assert_eq!(seqhouse_sql::ident("a\"b", Dialect::Trino), "\"a\"\"b\"");
    assert_eq!(seqhouse_sql::ident("a`b", Dialect::Spark), "`a``b`");
    assert_eq!(seqhouse_sql::string("it's", Dialect::Trino), "'it''s'");
    assert_eq!(seqhouse_sql::string("it's \\", Dialect::Spark), "'it\\'s \\\\'");
    assert_eq!(athena::hive_ident("x` DROP"), "`x`` DROP`");
    assert_eq!(
        athena::unload("SELECT 1", "s3://b/it's/"),
        "UNLOAD (\nSELECT 1\n) TO 's3://b/it''s/' WITH (format = 'PARQUET', compression = 'ZSTD')"
    );
}

/// Split jobs: the SELECT's rows of each split (by its split column) against the local
/// engine's published split, for every kind, with target masks and folds.
#[test]
fn splits_on_assistments_match_the_local_engine() {
    use seqhouse_core::split::Split;
    let base = assist_spec;
    let mut cases = Vec::new();
    let mut by_entity = base(Mode::Chunk, 50);
    by_entity.split = Some(Split::Entity {
        fractions: "train=0.7,validation=0.15,test=0.15".parse().unwrap(),
        seed: -5,
        folds: Some(5),
    });
    by_entity.target_mask = true;
    cases.push(("entity_chunk", by_entity));
    let mut by_entity_last = base(Mode::Last, 30);
    by_entity_last.split = Some(Split::Entity { fractions: "a=0.5,b=0.5".parse().unwrap(), seed: 3, folds: None });
    cases.push(("entity_last", by_entity_last));
    // Sizes kept small: DuckDB holds every (event, split, window) row of overlapping modes.
    let mut by_time = base(Mode::Sliding, 20);
    by_time.stride = Some(6);
    by_time.min_length = 3;
    by_time.padding = Padding::Pre;
    by_time.split = Some(Split::Temporal { cutoffs: "validation=66,test=99".parse().unwrap() });
    by_time.target_mask = true;
    cases.push(("temporal_sliding", by_time));
    let mut by_last = base(Mode::Prefix, 6);
    by_last.min_length = 2;
    by_last.split = Some(Split::LeaveLast { counts: "validation=2,test=1".parse().unwrap() });
    by_last.target_mask = true;
    cases.push(("leave_last_prefix", by_last));
    let mut masked = base(Mode::Sliding, 12);
    masked.stride = Some(4);
    masked.target_mask = true;
    cases.push(("unsplit_masked_sliding", masked));
    let mut cases: Vec<(&str, SequenceSpec, PathBuf)> =
        cases.into_iter().map(|(name, spec)| (name, spec, assistments())).collect();

    // Sessions in splits, on the contract's log with a timestamp clock: each session cut over
    // the part of each split's history it holds, the per-split counts too.
    let fixture = LocalFixture::new();
    let timed = timed_log(&fixture, 41);
    let mut sessions_last = SequenceSpec::new(vec!["user".into()], vec!["at".into()], session_features(), 4);
    sessions_last.session_gap = Some("3m".into());
    sessions_last.min_session_length = Some(2);
    sessions_last.mode = Mode::Prefix;
    sessions_last.split = Some(Split::LeaveLast { counts: "validation=1,test=2".parse().unwrap() });
    sessions_last.target_mask = true;
    cases.push(("sessions_leave_last_prefix", sessions_last, timed.clone()));
    let mut sessions_time = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], session_features(), 3);
    sessions_time.session_gap = Some("2".into());
    sessions_time.split = Some(Split::Temporal { cutoffs: "test=45".parse().unwrap() });
    sessions_time.target_mask = true;
    cases.push(("sessions_temporal_chunk", sessions_time, timed));

    let dir = tempfile::tempdir().unwrap();
    let mut payload = Vec::new();
    for (name, spec, data) in &cases {
        let schema = read_parquet(data)[0].schema();
        let resolved = ResolvedSpec::new(spec, &schema, "events").unwrap();
        let select = select(&resolved, &Source::new("\"events\""), Dialect::Trino).unwrap();
        let mut unsplit = spec.clone();
        unsplit.split = None;
        unsplit.target_mask = false;
        let counts =
            stats(&ResolvedSpec::new(&unsplit, &schema, "events").unwrap(), &Source::new("\"events\""), Dialect::Trino);
        let mut case = serde_json::json!({
            "name": name,
            "select": select,
            "stats": counts.unwrap(),
            "data": data,
            "out": dir.path().join(format!("{name}.parquet")),
        });
        if let Some(split_counts) = split_stats(&resolved, &Source::new("\"events\""), Dialect::Trino).unwrap() {
            case["split_stats"] = split_counts.into();
        }
        if seqhouse_sql::has_split_column(spec) {
            // The UNLOAD Athena runs for the last group of outputs (the only one without folds).
            let last = seqhouse_sql::output_groups(&resolved).pop().unwrap();
            let rows =
                seqhouse_sql::select_outputs(&resolved, &Source::new("\"events\""), Dialect::Trino, last).unwrap();
            case["unload"] = athena::unload_by_split(&rows, "s3://bucket/out/_seqhouse-unload-1/0").into();
        }
        payload.push(case);
    }
    let results = run_checker(&payload);

    let warehouse = LocalWarehouse::new(LocalConfig::default()).unwrap();
    for (name, spec, data) in &cases {
        let local_out = dir.path().join(format!("{name}_local"));
        let request = SequenceRequest {
            input: data.display().to_string(),
            output: local_out.display().to_string(),
            subsets: vec![],
            spec: spec.clone(),
            overwrite: false,
        };
        seqhouse_core::run(&warehouse, &request, &NoProgress).unwrap();
        let sql = read_parquet(&dir.path().join(format!("{name}.parquet")));
        let job = request.jobs().unwrap().remove(0);
        let result = results.iter().find(|r| r["name"] == *name).expect("a result per case");
        if spec.split.is_some() {
            // The per-split counts of the SQL against the local engine's manifest.
            let rows: Vec<Vec<u64>> = serde_json::from_value(result["split_stats"].clone()).unwrap();
            let mut counts = SequenceStats::default();
            seqhouse_sql::split_stats_from_rows(spec, &rows, &mut counts).unwrap();
            let (_, first) = &job.outputs()[0];
            let local = LocalFixture::new().read_output(first).manifest.counts;
            assert_eq!(counts.splits, local.splits, "{name}: split counts differ from the local engine");
            assert_eq!(counts.of_output(0).windows, local.windows, "{name}");
            assert!(counts.splits.iter().all(|s| s.target_events > 0 && s.windows > 0), "{name}: {counts:?}");
        }
        for (split, (_, output)) in job.outputs().into_iter().enumerate() {
            let local = LocalFixture::new().read_output(&output);
            // This split's rows of the SELECT, without the columns its output does not have.
            let rows: Vec<RecordBatch> = sql
                .iter()
                .map(|batch| {
                    let column = batch.column_by_name(seqhouse_sql::SPLIT_COLUMN).unwrap();
                    let column = arrow::compute::cast(column, &arrow::datatypes::DataType::Int64).unwrap();
                    let wanted = arrow::array::Int64Array::new_scalar(split as i64);
                    let keep = arrow::compute::kernels::cmp::eq(&column, &wanted).unwrap();
                    let batch = arrow::compute::filter_record_batch(batch, &keep).unwrap();
                    let names: Vec<usize> = (0..batch.num_columns())
                        .filter(|&c| {
                            local.batches[0].schema().column_with_name(batch.schema().field(c).name()).is_some()
                        })
                        .collect();
                    batch.project(&names).unwrap()
                })
                .collect();
            let local_rows = reference::rows_of(spec, &local.batches);
            assert!(!local_rows.is_empty(), "{name} split {split}: the case produces windows");
            assert_eq!(
                sorted(reference::rows_of(spec, &rows)),
                sorted(local_rows),
                "{name} split {split}: SQL output differs from the local engine"
            );
        }
    }
    drop(fixture);
}
