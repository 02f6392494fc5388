//! The Spark engine against a real Spark Connect server (scripts/test starts one with pyspark's
//! jars and Java 17, and sets `SEQHOUSE_TEST_SPARK_REMOTE`).
//!
//! Spark really runs the adapter's SQL here, so besides the shared contract suite these tests
//! compare Spark's output with the local engine's on the shared real datasets and on generated
//! edge cases (hostile column names, nulls, every type, N past 10,000).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema};
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_contract::{Fixture, LocalFixture, cases, contract_tests, reference};
use seqhouse_core::{Error, Mode, NoProgress, Padding, SequenceRequest, SequenceSpec, Setting, Warehouse};
use seqhouse_local::{LocalConfig, LocalWarehouse};
use seqhouse_spark::{SparkOptions, SparkWarehouse};

fn remote() -> String {
    std::env::var("SEQHOUSE_TEST_SPARK_REMOTE").unwrap_or_else(|_| {
        panic!(
            "SEQHOUSE_TEST_SPARK_REMOTE is not set: the Spark tests need a Spark Connect server. Run the tests with scripts/test, which starts one"
        )
    })
}

fn warehouse() -> Box<SparkWarehouse> {
    Box::new(SparkWarehouse::new(SparkOptions::new(remote())).unwrap())
}

contract_tests!(warehouse(), Box::new(LocalFixture::new()));

use seqhouse_contract::real_data as shared_data;

fn sorted(mut rows: Vec<reference::Row>) -> Vec<reference::Row> {
    rows.sort();
    rows
}

/// Runs each spec on `input` with Spark and with the local engine; the rows, columns and
/// manifest counts of every output (each split's, for a split job) must be equal.
fn assert_same_as_local(input: &Path, specs: &[(String, SequenceSpec)]) {
    let dir = LocalFixture::new();
    let spark = warehouse();
    let local = LocalWarehouse::new(LocalConfig::default()).unwrap();
    for (name, spec) in specs {
        let mut outputs = Vec::new();
        for engine in [spark.as_ref() as &dyn Warehouse, &local] {
            let output = dir.output_location(&format!("{name}_{}", engine.name()));
            let request = SequenceRequest {
                input: input.display().to_string(),
                output: output.clone(),
                subsets: vec![],
                spec: spec.clone(),
                overwrite: false,
            };
            seqhouse_core::run(engine, &request, &NoProgress)
                .unwrap_or_else(|e| panic!("{name} on {}: {e}", engine.name()));
            let job = request.jobs().unwrap().remove(0);
            outputs.push(job.outputs().into_iter().map(|(_, output)| dir.read_output(&output)).collect::<Vec<_>>());
        }
        assert_eq!(outputs[0].len(), outputs[1].len());
        for (split, (spark_out, local_out)) in outputs[0].iter().zip(&outputs[1]).enumerate() {
            let local_rows = reference::rows_of(spec, &local_out.batches);
            assert!(!local_rows.is_empty(), "{name} output {split}: the case produces windows");
            assert_eq!(
                sorted(reference::rows_of(spec, &spark_out.batches)),
                sorted(local_rows),
                "{name} output {split}: Spark's output differs from the local engine's"
            );
            assert_eq!(spark_out.manifest.counts, local_out.manifest.counts, "{name} output {split}: counts differ");
            assert_eq!(spark_out.manifest.engine, "spark");
            let names = |o: &seqhouse_contract::fixture::Output| -> Vec<String> {
                o.manifest.columns.iter().map(|c| c.name.clone()).collect()
            };
            assert_eq!(names(spark_out), names(local_out), "{name} output {split}: output columns differ");
            let split_of = |o: &seqhouse_contract::fixture::Output| o.manifest.split.as_ref().map(|s| s.name.clone());
            assert_eq!(split_of(spark_out), split_of(local_out), "{name} output {split}");
        }
    }
}

/// The real-data split cases on Spark: ASSISTments by entity with 5 folds, MovieLens
/// leave-one-out and a global temporal split with stride-1 windows, each equal to the local
/// engine's splits, counts and leakage checks.
#[test]
fn splits_on_real_logs_match_the_local_engine() {
    use seqhouse_core::split::Split;
    let mut by_entity = SequenceSpec::new(
        vec!["user_id".into()],
        vec!["log_order".into()],
        vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
        200,
    );
    by_entity.split = Some(Split::Entity { fractions: "train=0.8,test=0.2".parse().unwrap(), seed: 7, folds: Some(5) });
    by_entity.target_mask = true;
    assert_same_as_local(&shared_data().join("assist2015/events.parquet"), &[("assist_entity".into(), by_entity)]);

    let dir = LocalFixture::new();
    let input = movielens_parquet(&dir);
    let mut leave_one_out =
        SequenceSpec::new(vec!["userId".into()], vec!["timestamp".into(), "movieId".into()], vec![], 50);
    leave_one_out.features = vec!["movieId=0".parse().unwrap()];
    leave_one_out.mode = Mode::Last;
    leave_one_out.padding = Padding::Pre;
    leave_one_out.target_mask = true;
    let mut by_time = leave_one_out.clone();
    leave_one_out.split = Some(Split::LeaveLast { counts: "validation=1,test=1".parse().unwrap() });
    by_time.mode = Mode::Sliding;
    by_time.stride = Some(1);
    by_time.sequence_length = 10;
    by_time.split = Some(Split::Temporal { cutoffs: "validation=1500000000,test=1520000000".parse().unwrap() });
    assert_same_as_local(
        &input,
        &[("movielens_leave_one_out".into(), leave_one_out), ("movielens_temporal".into(), by_time)],
    );
}

#[test]
fn assistments_every_mode_matches_the_local_engine() {
    let input = shared_data().join("assist2015/events.parquet");
    let mut specs = Vec::new();
    for (i, mode) in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix].into_iter().enumerate() {
        let mut spec = SequenceSpec::new(
            vec!["user_id".into()],
            vec!["log_order".into()],
            vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
            if mode == Mode::Prefix { 20 } else { 200 },
        );
        spec.mode = mode;
        spec.padding = if i % 2 == 0 { Padding::Post } else { Padding::Pre };
        spec.min_length = 3;
        spec.stride = (mode == Mode::Sliding).then_some(50);
        specs.push((format!("assist_{mode}"), spec));
    }
    assert_same_as_local(&input, &specs);
}

/// MovieLens ratings (CSV, which the Spark engine does not read) as one Parquet file.
fn movielens_parquet(dir: &LocalFixture) -> PathBuf {
    let schema = Arc::new(Schema::new(vec![
        Field::new("userId", DataType::Int64, false),
        Field::new("movieId", DataType::Int64, false),
        Field::new("rating", DataType::Float64, false),
        Field::new("timestamp", DataType::Int64, false),
    ]));
    let file = std::fs::File::open(shared_data().join("movielens-latest-small/ratings.csv")).unwrap();
    let reader = ReaderBuilder::new(schema).with_header(true).build(file).unwrap();
    let batches: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    let location = dir.put_bytes("movielens", "ratings.parquet", &parquet_bytes(&batches));
    PathBuf::from(location)
}

#[test]
fn movielens_matches_the_local_engine() {
    let dir = LocalFixture::new();
    let input = movielens_parquet(&dir);
    // Ratings tie on the second; movieId breaks them the same way on every engine.
    let mut chunk = SequenceSpec::new(vec!["userId".into()], vec!["timestamp".into(), "movieId".into()], vec![], 100);
    chunk.features = vec!["movieId=0".parse().unwrap(), "rating=0".parse().unwrap()];
    let mut last = chunk.clone();
    last.mode = Mode::Last;
    last.padding = Padding::Pre;
    last.min_length = 20;
    assert_same_as_local(&input, &[("movielens_chunk".into(), chunk), ("movielens_last".into(), last)]);
}

#[test]
fn edge_cases_match_the_local_engine() {
    let dir = LocalFixture::new();
    let input = PathBuf::from(dir.put_bytes("edge", "events.parquet", &parquet_bytes(&[cases::edge_case_events()])));
    let specs = cases::edge_case_specs();
    assert_same_as_local(&input, &specs);
}

/// No hidden staging folder remains beside `output`.
fn assert_no_staging_left(output: &str) {
    let parent = Path::new(output).parent().unwrap();
    let leftovers: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("seqhouse-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "the staging folder is removed: {leftovers:?}");
}

#[test]
fn a_failing_query_reports_sparks_message() {
    let dir = LocalFixture::new();
    let input = dir.put_parquet("failing_query", "events.parquet", &[cases::events(50, 3)]);
    let output = dir.output_location("failing_query_out");
    let spark = warehouse();
    let job =
        SequenceRequest { input, output: output.clone(), subsets: vec![], spec: cases::base_spec(4), overwrite: false }
            .jobs()
            .unwrap()
            .remove(0);
    let mut plan = spark.plan(&job).unwrap();
    // As if the table changed under the job: the statement names a column Spark does not have.
    plan.stats = plan.stats.replace("`item`", "`no_such_column`");
    let err = spark.execute(&job, &plan, &NoProgress).unwrap_err();
    match &err {
        Error::QueryFailed { engine, message, .. } => {
            assert_eq!(engine, "spark");
            assert!(message.contains("no_such_column"), "{message}");
            assert!(message.contains("UNRESOLVED_COLUMN"), "Spark's own error class is kept: {message}");
            assert!(!message.contains("+- "), "the logical plan is left out: {message}");
        }
        other => panic!("expected a failed query, got {other:?}"),
    }
    assert!(err.to_string().starts_with("spark query seqhouse-"), "{err}");
    assert!(dir.list(&output).is_empty(), "nothing is published");
    assert_no_staging_left(&output);
}

#[test]
fn an_unreachable_server_fails_fast_and_clearly() {
    let dir = LocalFixture::new();
    let input = dir.put_parquet("unreachable", "events.parquet", &[cases::events(20, 3)]);
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    for remote in [format!("sc://127.0.0.1:{closed_port}"), "sc://no-such-host.invalid:15002".to_string()] {
        let spark = SparkWarehouse::new(SparkOptions::new(remote.clone())).unwrap();
        let request = SequenceRequest {
            input: input.clone(),
            output: dir.output_location("unreachable_out"),
            subsets: vec![],
            spec: cases::base_spec(4),
            overwrite: false,
        };
        let started = Instant::now();
        let err = seqhouse_core::run(&spark, &request, &NoProgress).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5), "{remote}: took {:?}", started.elapsed());
        assert!(matches!(err, Error::EngineUnreachable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&remote) && message.contains("Check spark_remote"), "{message}");
        assert!(dir.list(&dir.output_location("unreachable_out")).is_empty());
    }
    let err = SparkWarehouse::new(SparkOptions::new("http://localhost:15002")).err().unwrap();
    assert!(err.to_string().contains("sc://"), "{err}");
}

#[test]
fn s3_locations_are_refused_with_a_way_out() {
    let spark = warehouse();
    let request = SequenceRequest {
        input: "s3://bucket/events/".into(),
        output: "/tmp/out".into(),
        subsets: vec![],
        spec: cases::base_spec(4),
        overwrite: false,
    };
    let err = seqhouse_core::run(spark.as_ref(), &request, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::InvalidSetting { setting: Setting::Input, .. }), "{err:?}");
    assert!(err.to_string().contains("use engine=local or athena"), "{err}");
}

#[test]
fn timestamps_round_trip_and_units_spark_would_change_are_refused() {
    use arrow::array::{TimestampMicrosecondArray, TimestampMillisecondArray};
    let dir = LocalFixture::new();
    let events = cases::events(120, 9);
    let ts = events.column_by_name("ts").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
    let micros: TimestampMicrosecondArray =
        ts.iter().map(|t| t.map(|t| 1_700_000_000_000_000 + t * 1_000_123)).collect();
    let millis: TimestampMillisecondArray = ts.iter().map(|t| t.map(|t| 1_700_000_000_000 + t * 1_001)).collect();
    let mut columns: Vec<(String, ArrayRef)> =
        events.schema().fields().iter().map(|f| f.name().clone()).zip(events.columns().iter().cloned()).collect();
    columns.push(("seen_us".into(), Arc::new(micros)));
    columns.push(("seen_ms".into(), Arc::new(millis)));
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let input = PathBuf::from(dir.put_bytes("timestamps", "events.parquet", &parquet_bytes(&[batch])));
    // A millisecond timestamp orders the events; a microsecond one is a feature with a pad.
    let spec = SequenceSpec::new(
        vec!["user".into()],
        vec!["seen_ms".into(), "row_id".into()],
        vec!["seen_us=2000-01-01T00:00:00".parse().unwrap(), "item=-1".parse().unwrap()],
        8,
    );
    assert_same_as_local(&input, &[("timestamps".into(), spec.clone())]);

    let mut changed = spec;
    changed.features.push("seen_ms".parse().unwrap());
    let request = SequenceRequest {
        input: input.display().to_string(),
        output: dir.output_location("timestamps_ms_out"),
        subsets: vec![],
        spec: changed,
        overwrite: false,
    };
    let err = seqhouse_core::run(warehouse().as_ref(), &request, &NoProgress).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedType { column, .. } if column == "seen_ms"), "{err:?}");
    assert!(err.to_string().contains("use engine=local"), "{err}");
}

#[test]
fn cancelling_interrupts_spark_and_publishes_nothing() {
    let dir = LocalFixture::new();
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spark = SparkWarehouse::new(SparkOptions::new(remote())).unwrap().with_cancel_flag(flag.clone());
    // Prefix windows of ASSISTments: hundreds of millions of values, far longer than the wait.
    let mut spec = SequenceSpec::new(
        vec!["user_id".into()],
        vec!["log_order".into()],
        vec!["skill_id=-1".parse().unwrap(), "correct=-1".parse().unwrap()],
        200,
    );
    spec.mode = Mode::Prefix;
    let output = dir.output_location("cancelled_out");
    let request = SequenceRequest {
        input: shared_data().join("assist2015/events.parquet").display().to_string(),
        output: output.clone(),
        subsets: vec![],
        spec,
        overwrite: false,
    };
    let setter = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(4));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        })
    };
    let started = Instant::now();
    let err = seqhouse_core::run(&spark, &request, &NoProgress).unwrap_err();
    setter.join().unwrap();
    assert!(matches!(err, Error::Interrupted(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30), "interrupted promptly: {:?}", started.elapsed());
    assert!(dir.list(&output).is_empty(), "nothing is published");
    assert_no_staging_left(&output);
}
