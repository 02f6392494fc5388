//! `--engine spark` through the binary, against the Spark Connect server scripts/test starts.

use std::time::{Duration, Instant};

use seqhouse_contract::reference;
use seqhouse_core::SequenceSpec;

use crate::util::{read_output, s, seqhouse, seqhouse_ok, shared_data};

fn spark_remote() -> String {
    std::env::var("SEQHOUSE_TEST_SPARK_REMOTE")
        .expect("SEQHOUSE_TEST_SPARK_REMOTE is not set: run the tests with scripts/test, which starts Spark")
}

fn job<'a>(input: &'a str, output: &'a str) -> Vec<&'a str> {
    vec![
        "sequence",
        "--input",
        input,
        "--output",
        output,
        "--entity",
        "user_id",
        "--order-by",
        "log_order",
        "--feature",
        "skill_id=-1",
        "--feature",
        "correct=-1",
        "-n",
        "100",
        "--padding",
        "pre",
        "--min-length",
        "2",
        "-q",
    ]
}

/// An sc:// URL where nothing listens (a port just freed).
fn closed_remote() -> String {
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("sc://127.0.0.1:{closed_port}")
}

fn sorted_rows(spec: &SequenceSpec, dir: &std::path::Path) -> Vec<reference::Row> {
    let mut rows = reference::rows_of(spec, &read_output(dir).batches);
    rows.sort();
    rows
}

#[test]
fn spark_engine_gives_the_local_engines_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("assist2015/events.parquet");
    let (spark_out, local_out) = (dir.path().join("spark"), dir.path().join("local"));
    let remote = spark_remote();
    let mut args = job(s(&input), s(&spark_out));
    args.extend(["--engine", "spark", "--spark-remote", &remote]);
    seqhouse_ok(&args);
    seqhouse_ok(&job(s(&input), s(&local_out)));
    let spark = read_output(&spark_out);
    let local = read_output(&local_out);
    assert_eq!(spark.manifest.engine, "spark");
    assert_eq!(spark.manifest.spec, local.manifest.spec);
    assert_eq!(spark.manifest.counts, local.manifest.counts);
    let spec = &local.manifest.spec;
    assert_eq!(sorted_rows(spec, &spark_out), sorted_rows(spec, &local_out));

    // SPARK_REMOTE (pyspark's variable) and SEQHOUSE_ENGINE pick the server and engine too.
    let again = dir.path().join("again");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"))
        .args(job(s(&input), s(&again)))
        .env("SEQHOUSE_ENGINE", "spark")
        .env("SPARK_REMOTE", &remote)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(read_output(&again).manifest.engine, "spark");
}

#[test]
fn spark_explain_prints_the_statements_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("assist2015/events.parquet");
    let output = dir.path().join("out");
    let remote = closed_remote();
    let mut args = job(s(&input), s(&output));
    args.extend(["--engine", "spark", "--spark-remote", &remote, "--explain", "--mode", "sliding", "--stride", "10"]);
    let out = seqhouse_ok(&args);
    let sql = String::from_utf8_lossy(&out.stdout);
    let statements: Vec<&str> = sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(statements.len(), 4, "{sql}");
    assert!(statements[0].starts_with("CREATE TEMPORARY VIEW `seqhouse_input_"), "{}", statements[0]);
    let path = input.canonicalize().unwrap();
    assert!(statements[0].contains(&format!("OPTIONS (path '{}'", path.display())), "{}", statements[0]);
    assert!(statements[1].contains("count_if(`user_id` IS NULL)"), "the counts query: {}", statements[1]);
    assert!(
        statements[2].starts_with("INSERT OVERWRITE DIRECTORY '<hidden staging folder beside --output>/_spark'"),
        "{}",
        statements[2]
    );
    assert!(statements[2].contains("LATERAL VIEW explode(sequence("), "sliding windows: {}", statements[2]);
    assert!(statements[3].starts_with("DROP VIEW IF EXISTS `seqhouse_input_"));
    assert!(!output.exists(), "--explain writes nothing");
}

#[test]
fn spark_engine_unreachable_server_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("assist2015/events.parquet");
    let output = dir.path().join("out");
    let remote = closed_remote();
    let mut args = job(s(&input), s(&output));
    args.extend(["--engine", "spark", "--spark-remote", &remote]);
    let started = Instant::now();
    let out = seqhouse(&args);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("cannot reach the spark server at {remote}")), "{stderr}");
    assert!(stderr.contains("--spark-remote"), "{stderr}");
    assert!(!output.exists());

    args.truncate(args.len() - 1);
    args.push("localhost:15002");
    let out = seqhouse(&args);
    assert_eq!(out.status.code(), Some(2), "a malformed URL is a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected sc://HOST[:PORT]"));
}
