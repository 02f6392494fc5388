//! The Athena engine against moto's Athena and S3 (scripts/test starts the server).
//!
//! Athena's API calls go to moto for real: start, poll through QUEUED -> RUNNING -> SUCCEEDED
//! (moto's state manager), stop. moto runs no SQL, so [`Fake`] plays the SQL engine: it executes
//! the adapter's own Trino statements in DuckDB (via tests/duckdb_athena.py), reading the tables
//! the adapter created and writing UNLOAD results to S3, as Athena would. The shared contract
//! suite therefore checks this adapter's SQL and flow end to end.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use seqhouse_athena::{ApiError, AthenaOptions, AthenaWarehouse, QueryApi, QueryState, SdkQueryApi};
use seqhouse_contract::s3::{TestS3, block_on, list_keys};
use seqhouse_contract::{Fixture, S3Fixture, cases, contract_tests};
use seqhouse_core::{Error, NoProgress, SequenceRequest};
use seqhouse_storage::S3Options;

/// POSTs JSON to moto's own API.
fn moto_post(endpoint: &str, path: &str, body: &str) {
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 20") || response.starts_with("HTTP/1.0 20"), "{response}");
}

/// Asks moto to walk every Athena query through QUEUED and RUNNING before SUCCEEDED.
fn moto_manual_progression(endpoint: &str) {
    let body = r#"{"model_name": "athena::execution", "transition": {"progression": "manual", "times": 2}}"#;
    moto_post(endpoint, "/moto-api/state-manager/set-transition", body);
}

#[derive(Default)]
struct Script {
    fail: Option<(String, String)>,
    hang: Option<String>,
    cancel: Option<(String, Arc<AtomicBool>)>,
}

/// Athena for the tests: moto's API plus DuckDB as the SQL engine.
struct Fake {
    moto: SdkQueryApi,
    worker: Mutex<(Child, ChildStdin, BufReader<ChildStdout>)>,
    store: Arc<dyn ObjectStore>,
    bucket: String,
    scratch: tempfile::TempDir,
    tables: Mutex<HashMap<String, String>>,
    results: Mutex<HashMap<String, Vec<Vec<Option<String>>>>>,
    failures: Mutex<HashMap<String, String>>,
    hanging: Mutex<HashSet<String>>,
    log: Arc<Mutex<Log>>,
    script: Mutex<Script>,
}

#[derive(Default)]
struct Log {
    statements: Vec<String>,
    states: Vec<QueryState>,
    cancelled: Vec<String>,
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("{start:?} not in {text}")) + start.len();
    let to = from + text[from..].find(end).unwrap_or_else(|| panic!("{end:?} not in {text}"));
    &text[from..to]
}

impl Fake {
    fn new(log: Arc<Mutex<Log>>) -> Self {
        let s3 = TestS3::from_env();
        moto_manual_progression(&s3.endpoint);
        let python = std::env::var("SEQHOUSE_PYTHON").expect("SEQHOUSE_PYTHON (run scripts/test)");
        let mut child = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/duckdb_athena.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let options = AthenaOptions { endpoint: Some(s3.endpoint.clone()), ..AthenaOptions::default() };
        Fake {
            moto: SdkQueryApi::new(options).unwrap(),
            worker: Mutex::new((child, stdin, stdout)),
            store: TestS3::store(&s3.endpoint, &s3.bucket),
            bucket: s3.bucket,
            scratch: tempfile::tempdir().unwrap(),
            tables: Mutex::default(),
            results: Mutex::default(),
            failures: Mutex::default(),
            hanging: Mutex::default(),
            log,
            script: Mutex::default(),
        }
    }

    fn key(&self, url: &str) -> String {
        url.strip_prefix(&format!("s3://{}/", self.bucket)).expect("a URL in the test bucket").to_string()
    }

    /// Downloads the data files of every table `sql` mentions; returns name -> local files.
    fn materialize(&self, sql: &str) -> HashMap<String, Vec<String>> {
        let mut out = HashMap::new();
        for (name, location) in self.tables.lock().unwrap().iter() {
            let (db, table) = name.split_once('.').unwrap();
            if !sql.contains(&format!("\"{db}\".\"{table}\"")) {
                continue;
            }
            let mut files = Vec::new();
            for key in list_keys(&self.store, self.key(location).trim_end_matches('/')) {
                let file = key.rsplit('/').next().unwrap();
                if file.starts_with(['_', '.']) || !file.ends_with(".parquet") {
                    continue;
                }
                let bytes = block_on(async {
                    self.store.get(&ObjectPath::from(key.as_str())).await.unwrap().bytes().await.unwrap()
                });
                let local = self.scratch.path().join(key.replace('/', "_"));
                std::fs::write(&local, &bytes).unwrap();
                files.push(local.display().to_string());
            }
            out.insert(name.clone(), files);
        }
        out
    }

    fn execute(&self, request: serde_json::Value) -> serde_json::Value {
        let mut worker = self.worker.lock().unwrap();
        writeln!(worker.1, "{request}").unwrap();
        worker.1.flush().unwrap();
        let mut line = String::new();
        worker.2.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = self.worker.lock().unwrap().0.kill();
    }
}

impl QueryApi for Fake {
    fn start(&self, sql: &str) -> Result<String, ApiError> {
        self.log.lock().unwrap().statements.push(sql.to_string());
        let id = self.moto.start(sql)?;
        let script = self.script.lock().unwrap();
        if let Some((pattern, flag)) = &script.cancel
            && sql.contains(pattern.as_str())
        {
            flag.store(true, Ordering::SeqCst);
        }
        if let Some(pattern) = &script.hang
            && sql.contains(pattern.as_str())
        {
            self.hanging.lock().unwrap().insert(id.clone());
            return Ok(id);
        }
        if let Some((pattern, reason)) = &script.fail
            && sql.contains(pattern.as_str())
        {
            self.failures.lock().unwrap().insert(id.clone(), reason.clone());
            return Ok(id);
        }
        drop(script);
        if sql.starts_with("CREATE EXTERNAL TABLE") {
            let name = between(sql, "TABLE `", "` (").replace("`.`", ".");
            self.tables.lock().unwrap().insert(name, between(sql, "LOCATION '", "'").to_string());
        } else if sql.starts_with("DROP TABLE") {
            let name = sql.trim_start_matches("DROP TABLE IF EXISTS ").trim_matches('`').replace("`.`", ".");
            self.tables.lock().unwrap().remove(&name);
        } else {
            let tables = self.materialize(sql);
            let (query, target) = if sql.starts_with("UNLOAD") {
                (between(sql, "UNLOAD (\n", "\n) TO '").to_string(), Some(between(sql, ") TO '", "'").to_string()))
            } else {
                (sql.to_string(), None)
            };
            let out = target.as_ref().map(|_| self.scratch.path().join(format!("{id}.parquet")));
            let partition =
                sql.contains("partitioned_by = ARRAY['").then(|| between(sql, "partitioned_by = ARRAY['", "'"));
            let reply =
                self.execute(serde_json::json!({"sql": query, "tables": tables, "out": out, "partition": partition}));
            if let Some(error) = reply.get("error") {
                self.failures.lock().unwrap().insert(id.clone(), error.as_str().unwrap().to_string());
            } else if let (Some(target), Some(out)) = (target, out) {
                if let Some(files) = reply.get("files") {
                    // `col=VALUE/` folders, each file named by query id as Athena does.
                    for (k, file) in files.as_array().unwrap().iter().enumerate() {
                        let file = file.as_str().unwrap();
                        let folder = file.rsplit_once('/').unwrap().0;
                        let key = format!("{}{folder}/{id}_{k:05}", self.key(&target));
                        let bytes = std::fs::read(out.join(file)).unwrap();
                        block_on(self.store.put(&ObjectPath::from(key), bytes.into())).unwrap();
                    }
                } else if reply["rows"].as_u64().unwrap() > 0 {
                    // Athena names UNLOAD files by query id, without an extension.
                    let key = format!("{}{id}_00000", self.key(&target));
                    block_on(self.store.put(&ObjectPath::from(key), std::fs::read(out).unwrap().into())).unwrap();
                }
            } else {
                let rows = reply["result"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|row| row.as_array().unwrap().iter().map(|v| v.as_str().map(str::to_string)).collect());
                self.results.lock().unwrap().insert(id.clone(), rows.collect());
            }
        }
        Ok(id)
    }

    fn state(&self, id: &str) -> Result<QueryState, ApiError> {
        let moto = self.moto.state(id)?;
        let state = match (self.failures.lock().unwrap().get(id), self.hanging.lock().unwrap().contains(id)) {
            (_, true) if !matches!(moto, QueryState::Cancelled(_)) => QueryState::Running,
            (Some(reason), _) if moto == QueryState::Succeeded => QueryState::Failed(reason.clone()),
            _ => moto,
        };
        self.log.lock().unwrap().states.push(state.clone());
        Ok(state)
    }

    fn cancel(&self, id: &str) -> Result<(), ApiError> {
        self.log.lock().unwrap().cancelled.push(id.to_string());
        self.moto.cancel(id)
    }

    fn rows(&self, id: &str) -> Result<Vec<Vec<Option<String>>>, ApiError> {
        self.results.lock().unwrap().get(id).cloned().ok_or_else(|| ApiError::Other(format!("no results for {id}")))
    }
}

fn athena(script: Script, timeout: Duration) -> (AthenaWarehouse, Arc<Mutex<Log>>) {
    let s3 = TestS3::from_env();
    let log = Arc::new(Mutex::new(Log::default()));
    let fake = Fake::new(log.clone());
    *fake.script.lock().unwrap() = script;
    let options = AthenaOptions {
        endpoint: Some(s3.endpoint.clone()),
        poll_interval: Duration::from_millis(20),
        timeout,
        ..AthenaOptions::default()
    };
    let s3_options = S3Options { endpoint: Some(s3.endpoint), ..S3Options::default() };
    (AthenaWarehouse::new(options, None, s3_options, Box::new(fake)).unwrap(), log)
}

fn athena_for_contract() -> Box<AthenaWarehouse> {
    Box::new(athena(Script::default(), Duration::from_secs(60)).0)
}

contract_tests!(athena_for_contract(), Box::new(S3Fixture::new()));

/// Runs the usual job on a fresh input; returns the result and the output location.
fn run_job(warehouse: &AthenaWarehouse, fixture: &S3Fixture) -> (Result<(), Error>, String) {
    let input = fixture.put_parquet("flow", "events.parquet", &[cases::events(120, 7)]);
    let output = fixture.output_location("flow_out");
    let request =
        SequenceRequest { input, output: output.clone(), subsets: vec![], spec: cases::base_spec(5), overwrite: false };
    (seqhouse_core::run(warehouse, &request, &NoProgress).map(|_| ()), output)
}

#[test]
fn queries_walk_through_queued_and_running_and_the_table_is_dropped() {
    let (warehouse, log) = athena(Script::default(), Duration::from_secs(60));
    let fixture = S3Fixture::new();
    let (result, output) = run_job(&warehouse, &fixture);
    result.unwrap();
    let log = log.lock().unwrap();
    let kinds: Vec<&str> = log.statements.iter().map(|s| s.split_whitespace().next().unwrap()).collect();
    assert_eq!(kinds, ["CREATE", "WITH", "UNLOAD", "DROP"], "create, counts, unload, drop");
    assert!(log.states.contains(&QueryState::Queued) && log.states.contains(&QueryState::Running));
    let out = fixture.read_output(&output);
    assert_eq!(out.manifest.engine, "athena");
    assert!(!out.entries.iter().any(|e| e.starts_with("_seqhouse-unload")), "staging removed: {:?}", out.entries);
}

/// A run killed after its UNLOAD leaves the staging prefix inside the output; the next run on
/// that output (which holds the lock) removes it.
#[test]
fn a_dead_runs_unload_prefix_is_removed_by_the_next_run() {
    let (warehouse, _) = athena(Script::default(), Duration::from_secs(60));
    let fixture = S3Fixture::new();
    fixture.put_bytes("flow_out/_seqhouse-unload-0123456789abcdef", "20261201_0.parquet", b"a dead run's file");
    let (result, output) = run_job(&warehouse, &fixture);
    result.unwrap();
    let out = fixture.read_output(&output);
    assert!(!out.entries.iter().any(|e| e.starts_with("_seqhouse-unload")), "dead staging removed: {:?}", out.entries);
}

#[test]
fn a_failed_query_reports_athenas_reason_and_cleans_up() {
    let reason = "SYNTAX_ERROR: line 3:8: Column 'skil' cannot be resolved";
    let script = Script { fail: Some(("UNLOAD".into(), reason.into())), ..Script::default() };
    let (warehouse, log) = athena(script, Duration::from_secs(60));
    let fixture = S3Fixture::new();
    let (result, output) = run_job(&warehouse, &fixture);
    match result {
        Err(Error::QueryFailed { engine, query_id, message }) => {
            assert_eq!((engine.as_str(), message.as_str()), ("athena", reason));
            assert!(!query_id.is_empty());
        }
        other => panic!("expected QueryFailed, got {other:?}"),
    }
    assert!(log.lock().unwrap().statements.last().unwrap().starts_with("DROP TABLE IF EXISTS"));
    assert!(fixture.list(&output).is_empty(), "no manifest, no parts, no staging");
}

#[test]
fn a_query_past_the_timeout_is_cancelled_and_cleaned_up() {
    let script = Script { hang: Some("UNLOAD".into()), ..Script::default() };
    let (warehouse, log) = athena(script, Duration::from_secs(1));
    let fixture = S3Fixture::new();
    let (result, output) = run_job(&warehouse, &fixture);
    match result {
        Err(Error::Interrupted(message)) => assert!(message.contains("ran longer than"), "{message}"),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    let log = log.lock().unwrap();
    assert_eq!(log.cancelled.len(), 1, "the UNLOAD was stopped");
    assert!(log.states.iter().any(|s| matches!(s, QueryState::Running)));
    assert!(log.statements.last().unwrap().starts_with("DROP TABLE IF EXISTS"));
    assert!(fixture.list(&output).is_empty());
}

#[test]
fn ctrl_c_cancels_the_running_query_and_cleans_up() {
    // The flag a Ctrl-C handler sets, raised here the moment the UNLOAD starts.
    let flag = Arc::new(AtomicBool::new(false));
    let script =
        Script { cancel: Some(("UNLOAD".into(), flag.clone())), hang: Some("UNLOAD".into()), ..Script::default() };
    let (warehouse, log) = athena(script, Duration::from_secs(60));
    let warehouse = warehouse.with_cancel_flag(flag);
    let fixture = S3Fixture::new();
    let (result, output) = run_job(&warehouse, &fixture);
    assert!(matches!(result, Err(Error::Interrupted(ref m)) if m.contains("was cancelled")), "{result:?}");
    let log = log.lock().unwrap();
    assert_eq!(log.cancelled.len(), 1, "the UNLOAD was stopped");
    assert!(log.statements.last().unwrap().starts_with("DROP TABLE IF EXISTS"), "dropped even after Ctrl-C");
    assert!(fixture.list(&output).is_empty());
}

#[test]
fn the_sdk_client_reads_results_without_the_header_row() {
    // Athena returns a SELECT's column names as its first row; moto returns what is queued.
    let s3 = TestS3::from_env();
    // moto hands queued results to the next query of the account and region: this test has a
    // region to itself, so the contract tests' concurrent queries cannot take them.
    let results = r#"{"account_id": "123456789012", "region": "eu-west-3", "results": [{"rows": [
        {"Data": [{"VarCharValue": "input_rows"}, {"VarCharValue": "entities"}]},
        {"Data": [{"VarCharValue": "682797"}, {}]}
    ], "column_info": []}]}"#;
    moto_post(&s3.endpoint, "/moto-api/static/athena/query-results", results);
    let options =
        AthenaOptions { endpoint: Some(s3.endpoint), region: Some("eu-west-3".into()), ..AthenaOptions::default() };
    let api = SdkQueryApi::new(options).unwrap();
    let id = api.start("SELECT count(*) AS input_rows, NULL AS entities FROM t").unwrap();
    let mut state = api.state(&id).unwrap();
    for _ in 0..10 {
        if state == QueryState::Succeeded {
            break;
        }
        state = api.state(&id).unwrap();
    }
    assert_eq!(state, QueryState::Succeeded);
    assert_eq!(api.rows(&id).unwrap(), vec![vec![Some("682797".to_string()), None]]);
    api.cancel(&id).unwrap();
}

/// The SDK's failures arrive by kind: a closed port is `Unreachable` (and, through the engine,
/// the port's `EngineUnreachable` naming the endpoint); a query Athena rejects is `Refused` with
/// Athena's error code.
#[test]
fn sdk_errors_are_classified_by_kind() {
    let s3 = TestS3::from_env();
    let closed = "http://127.0.0.1:1".to_string();
    let options = AthenaOptions { endpoint: Some(closed.clone()), ..AthenaOptions::default() };
    let api = SdkQueryApi::new(options.clone()).unwrap();
    assert!(matches!(api.start("SELECT 1"), Err(ApiError::Unreachable(_))), "a closed port");

    let s3_options = S3Options { endpoint: Some(s3.endpoint.clone()), ..S3Options::default() };
    let warehouse = AthenaWarehouse::connect(options, None, s3_options).unwrap();
    let fixture = S3Fixture::new();
    let (result, output) = run_job(&warehouse, &fixture);
    match result {
        Err(Error::EngineUnreachable { engine, address, message }) => {
            assert_eq!((engine.as_str(), address.as_str()), ("athena", closed.as_str()));
            assert!(message.contains("athena_endpoint"), "{message}");
        }
        other => panic!("expected EngineUnreachable, got {other:?}"),
    }
    assert!(fixture.list(&output).is_empty(), "nothing written");

    // A server that answers as Athena does when it rejects a call (awsJson 1.1 error body).
    let refusing = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", refusing.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        for stream in refusing.incoming() {
            let mut stream = stream.unwrap();
            let mut request = vec![0u8; 64 * 1024];
            let _ = stream.read(&mut request);
            let body = r#"{"__type":"InvalidRequestException","message":"Query has not yet finished"}"#;
            let reply = format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    let api = SdkQueryApi::new(AthenaOptions { endpoint: Some(endpoint), ..AthenaOptions::default() }).unwrap();
    match api.state("a-query") {
        Err(ApiError::Refused { code, message }) => {
            assert_eq!((code.as_str(), message.as_str()), ("InvalidRequestException", "Query has not yet finished"))
        }
        other => panic!("expected Refused, got {other:?}"),
    }
}
