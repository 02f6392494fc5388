//! S3 end to end: the binary against the local S3 server (scripts/test starts it), compared with
//! the local engine on the same data; transient and permanent faults through a proxy; S3 errors.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use seqhouse_contract::faults::{FaultProxy, Faults};
use seqhouse_contract::s3::{TestS3, block_on, list_keys};

use crate::util::*;

/// A test's own prefix in the test bucket, with a client to put and get objects directly.
struct Bucket {
    s3: TestS3,
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Bucket {
    fn new(label: &str) -> Self {
        let s3 = TestS3::from_env();
        let store = TestS3::store(&s3.endpoint, &s3.bucket);
        let prefix = s3.unique_prefix(label);
        Bucket { s3, store, prefix }
    }

    /// `s3://bucket/prefix/key`
    fn url(&self, key: &str) -> String {
        format!("s3://{}/{}/{key}", self.s3.bucket, self.prefix)
    }

    fn upload(&self, key: &str, file: &Path) {
        let path = ObjectPath::from(format!("{}/{key}", self.prefix));
        block_on(self.store.put(&path, std::fs::read(file).unwrap().into())).unwrap();
    }

    fn get(&self, key: &str) -> Vec<u8> {
        let path = ObjectPath::from(format!("{}/{key}", self.prefix));
        block_on(async { self.store.get(&path).await.unwrap().bytes().await.unwrap() }).to_vec()
    }

    /// Keys under `key`, relative to it.
    fn keys(&self, key: &str) -> Vec<String> {
        let base = format!("{}/{key}/", self.prefix);
        list_keys(&self.store, &format!("{}/{key}", self.prefix))
            .into_iter()
            .map(|k| k.strip_prefix(&base).unwrap().to_string())
            .collect()
    }

    /// The output folder `key` as (name, bytes), with the manifest's location-dependent field blanked.
    fn output(&self, key: &str) -> Vec<(String, Vec<u8>)> {
        self.keys(key)
            .into_iter()
            .map(|name| (name.clone(), comparable(&name, self.get(&format!("{key}/{name}")))))
            .collect()
    }
}

/// The files of a local output folder, comparable with [`Bucket::output`].
fn local_output(dir: &Path) -> Vec<(String, Vec<u8>)> {
    folder_bytes(dir).into_iter().map(|(name, bytes)| (name.clone(), comparable(&name, bytes))).collect()
}

/// Parts compare byte for byte; in the manifest only `input_location` may differ.
fn comparable(name: &str, bytes: Vec<u8>) -> Vec<u8> {
    if name != "_manifest.json" {
        return bytes;
    }
    let mut manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    manifest["input_location"] = serde_json::Value::Null;
    serde_json::to_vec(&manifest).unwrap()
}

fn assistments_job<'a>(input: &'a str, output: &'a str) -> Vec<&'a str> {
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
        "200",
        "--min-length",
        "3",
        "--rows-per-part",
        "5000",
        "-q",
    ]
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "seqhouse failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn s3_and_local_outputs_are_identical_in_every_direction() {
    let bucket = Bucket::new("directions");
    let dir = tempfile::tempdir().unwrap();
    let parquet = shared_data().join("assist2015/events.parquet");
    bucket.upload("in/events.parquet", &parquet);
    let endpoint = bucket.s3.endpoint.clone();

    let local_out = dir.path().join("local");
    ok(seqhouse_s3(&endpoint, &assistments_job(s(&parquet), s(&local_out))));
    let reference = local_output(&local_out);
    assert!(reference.len() >= 4, "several parts and a manifest: {}", reference.len());

    let s3_in = bucket.url("in");
    let (s3_s3, local_s3) = (bucket.url("s3_to_s3"), bucket.url("local_to_s3"));
    ok(seqhouse_s3(&endpoint, &assistments_job(&s3_in, &s3_s3)));
    ok(seqhouse_s3(&endpoint, &assistments_job(s(&parquet), &local_s3)));
    assert_eq!(bucket.output("s3_to_s3"), reference, "s3 -> s3");
    assert_eq!(bucket.output("local_to_s3"), reference, "local -> s3");

    let s3_local = dir.path().join("s3_to_local");
    ok(seqhouse_s3(&endpoint, &assistments_job(&s3_in, s(&s3_local))));
    assert_eq!(local_output(&s3_local), reference, "s3 -> local");
}

#[test]
fn csv_and_subsets_on_s3() {
    let bucket = Bucket::new("subsets");
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/pupils");
    for subset in ["train", "validation"] {
        bucket.upload(&format!("data/{subset}/answers.csv"), &examples.join(subset).join("answers.csv"));
    }
    let dir = tempfile::tempdir().unwrap();
    let job = |input: &str, output: &str| {
        ok(seqhouse_s3(
            &bucket.s3.endpoint,
            &[
                "sequence",
                "--input",
                input,
                "--output",
                output,
                "--subsets",
                "train,validation",
                "--entity",
                "pupil_id",
                "--order-by",
                "timestamp",
                "--feature",
                "exercise_id=-1",
                "--feature",
                "correct=-1",
                "-n",
                "10",
                "-q",
            ],
        ))
    };
    job(s(&examples), s(dir.path()));
    job(&bucket.url("data"), &bucket.url("out"));
    assert_eq!(bucket.keys("out").iter().filter(|k| k.ends_with("_manifest.json")).count(), 2);
    for subset in ["train", "validation"] {
        let name = format!("{subset}_sequenced_10");
        assert_eq!(bucket.output(&format!("out/{name}")), local_output(&dir.path().join(&name)), "{subset}");
    }
}

#[test]
fn parquet_is_read_with_range_requests_for_the_needed_columns_only() {
    let bucket = Bucket::new("ranges");
    let parquet = shared_data().join("assist2015/events.parquet");
    let size = std::fs::metadata(&parquet).unwrap().len();
    bucket.upload("in/events.parquet", &parquet);
    let proxy = FaultProxy::start(&bucket.s3.endpoint, Faults::default());
    ok(seqhouse_s3(&proxy.endpoint, &assistments_job(&bucket.url("in"), &bucket.url("out"))));
    let reads: Vec<_> =
        proxy.seen().into_iter().filter(|r| r.method == "GET" && r.target.contains("events.parquet")).collect();
    assert!(!reads.is_empty());
    assert!(reads.iter().all(|r| r.range.is_some()), "every read of the file is a range request: {reads:?}");
    let fetched: u64 = reads.iter().map(|r| r.body_bytes).sum();
    // 4 of the file's 7 columns are needed; the rest must not be downloaded.
    assert!(fetched < size * 3 / 4, "fetched {fetched} of {size} bytes");
}

#[test]
fn large_parts_are_written_with_multipart_uploads() {
    let bucket = Bucket::new("multipart");
    let dir = tempfile::tempdir().unwrap();
    // Uncompressed, ~14 MB in one part: above the single-PUT limit.
    let movielens = shared_data().join("movielens-latest-small/ratings.csv");
    let job = |output: &str| -> Vec<String> {
        [
            "sequence",
            "--input",
            s(&movielens),
            "--output",
            output,
            "--entity",
            "userId",
            "--order-by",
            "timestamp",
            "--feature",
            "movieId=0",
            "--feature",
            "rating=0",
            "--feature",
            "timestamp=0",
            "-n",
            "20",
            "--mode",
            "prefix",
            "--compression",
            "none",
            "--rows-per-part",
            "200000",
            "-q",
        ]
        .map(str::to_string)
        .to_vec()
    };
    let local = dir.path().join("local");
    ok(seqhouse(&job(s(&local)).iter().map(String::as_str).collect::<Vec<_>>()));
    let proxy = FaultProxy::start(&bucket.s3.endpoint, Faults::default());
    let url = bucket.url("out");
    ok(seqhouse_s3(&proxy.endpoint, &job(&url).iter().map(String::as_str).collect::<Vec<_>>()));
    let seen = proxy.seen();
    assert!(seen.iter().any(|r| r.method == "POST" && r.target.contains("uploads")), "a multipart upload was started");
    assert!(seen.iter().filter(|r| r.method == "PUT" && r.target.contains("partNumber")).count() >= 2);
    assert_eq!(bucket.output("out"), local_output(&local));
}

#[test]
fn transient_faults_are_retried_and_do_not_change_the_output() {
    let bucket = Bucket::new("faults");
    let dir = tempfile::tempdir().unwrap();
    let parquet = shared_data().join("assist2015/events.parquet");
    bucket.upload("in/events.parquet", &parquet);
    let local_out = dir.path().join("local");
    ok(seqhouse(&assistments_job(s(&parquet), s(&local_out))));

    let faults = Faults {
        slow_down_every: Some(4),
        drop_every: Some(7),
        stall: Some((3, Duration::from_secs(4))),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&bucket.s3.endpoint, faults);
    let (input, output) = (bucket.url("in"), bucket.url("out"));
    let mut args = assistments_job(&input, &output);
    args.extend(["--s3-timeout", "1"]);
    ok(seqhouse_s3(&proxy.endpoint, &args));
    assert!(proxy.faults_injected() >= 4, "faults were injected: {:?}", proxy.seen());
    assert_eq!(bucket.output("out"), local_output(&local_out));
}

#[test]
fn a_permanent_failure_stops_the_run_and_publishes_no_manifest() {
    let bucket = Bucket::new("permanent");
    let parquet = shared_data().join("assist2015/events.parquet");
    bucket.upload("in/events.parquet", &parquet);
    // Reads work, every upload fails: the run must stop and leave nothing behind.
    let proxy = FaultProxy::start(&bucket.s3.endpoint, Faults { fail_method: Some("PUT".into()), ..Faults::default() });
    let (input, output) = (bucket.url("in"), bucket.url("out"));
    let mut args = assistments_job(&input, &output);
    args.extend(["--s3-max-retries", "1"]);
    let out = seqhouse_s3(&proxy.endpoint, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot write") && stderr.contains(&output), "{stderr}");
    assert_eq!(bucket.keys("out"), Vec::<String>::new(), "no manifest and no parts are left");
}

#[test]
fn s3_errors_name_the_problem() {
    let bucket = Bucket::new("errors");
    let endpoint = bucket.s3.endpoint.clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let fails = |endpoint: &str, input: &str, output: &str, fragments: &[&str]| {
        let result = seqhouse_s3(endpoint, &assistments_job(input, output));
        let stderr = String::from_utf8_lossy(&result.stderr).to_string();
        assert_eq!(result.status.code(), Some(1), "{stderr}");
        for fragment in fragments {
            assert!(stderr.contains(fragment), "{fragment:?} not in: {stderr}");
        }
        assert!(!stderr.contains(S3_TEST_SECRET), "credentials must never be printed");
    };
    fails(
        &endpoint,
        "s3://no-such-bucket-seqhouse/in",
        s(&out),
        &["s3://no-such-bucket-seqhouse/in", "bucket does not exist"],
    );
    fails(
        &endpoint,
        &bucket.url("missing"),
        s(&out),
        &["input not found", &bucket.url("missing"), "no objects under this prefix"],
    );
    bucket.upload("in/events.parquet", &shared_data().join("assist2015/events.parquet"));
    fails(
        &endpoint,
        &bucket.url("in"),
        "s3://no-such-bucket-seqhouse/out",
        &["s3://no-such-bucket-seqhouse/out", "bucket does not exist"],
    );
    let proxy =
        FaultProxy::start(&endpoint, Faults { deny_bucket: Some(bucket.s3.bucket.clone()), ..Faults::default() });
    fails(&proxy.endpoint, &bucket.url("in"), s(&out), &["access denied", "check the credentials"]);
    assert!(!out.exists());

    // With -vv every request is logged: still no secret.
    let input = bucket.url("in");
    let mut args: Vec<&str> = assistments_job(&input, s(&out)).into_iter().filter(|a| *a != "-q").collect();
    args.push("-vv");
    let verbose = seqhouse_s3(&endpoint, &args);
    assert!(verbose.status.success(), "{}", String::from_utf8_lossy(&verbose.stderr));
    assert!(String::from_utf8_lossy(&verbose.stderr).contains("seqhouse-test"), "-vv logs the requests");
    assert!(!String::from_utf8_lossy(&verbose.stderr).contains(S3_TEST_SECRET));
}

#[test]
fn credentials_come_from_the_aws_chain() {
    let bucket = Bucket::new("credentials");
    bucket.upload("in/events.parquet", &shared_data().join("assist2015/events.parquet"));
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (bucket.url("in"), bucket.url("out"));
    let run = |envs: &[(&str, String)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"));
        command
            .args(assistments_job(&input, &output))
            .env("AWS_ENDPOINT_URL", &bucket.s3.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.path().join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("credentials"))
            .env("HOME", dir.path());
        for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"] {
            command.env_remove(name);
        }
        command.envs(envs.iter().map(|(k, v)| (*k, v))).output().unwrap()
    };
    // Nothing anywhere: a clear error that says where credentials come from.
    let none = run(&[]);
    let stderr = String::from_utf8_lossy(&none.stderr);
    assert_eq!(none.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no AWS credentials") && stderr.contains("AWS_PROFILE"), "{stderr}");

    // A named profile in the shared files, as on a developer's laptop.
    std::fs::write(dir.path().join("config"), "[profile research]\nregion = eu-west-1\n").unwrap();
    std::fs::write(
        dir.path().join("credentials"),
        format!("[research]\naws_access_key_id = seqhouse-profile\naws_secret_access_key = {S3_TEST_SECRET}\n"),
    )
    .unwrap();
    let profile = run(&[("AWS_PROFILE", "research".to_string())]);
    assert!(profile.status.success(), "{}", String::from_utf8_lossy(&profile.stderr));
    assert!(bucket.keys("out").contains(&"_manifest.json".to_string()));
}

#[test]
fn athena_explain_prints_the_statements_and_runs_nothing() {
    let bucket = Bucket::new("explain");
    bucket.upload("in/events.parquet", &shared_data().join("assist2015/events.parquet"));
    let (input, output) = (bucket.url("in"), bucket.url("out"));
    let mut args = assistments_job(&input, &output);
    args.extend(["--engine", "athena", "--explain", "--athena-database", "kt", "--mode", "sliding", "--stride", "50"]);
    let out = seqhouse_s3(&bucket.s3.endpoint, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = String::from_utf8_lossy(&out.stdout);
    let statements: Vec<&str> = sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(statements.len(), 4, "{sql}");
    assert!(statements[0].starts_with("CREATE EXTERNAL TABLE `kt`.`seqhouse_tmp_"), "{}", statements[0]);
    assert!(statements[0].ends_with(&format!("STORED AS PARQUET LOCATION '{input}/'")));
    assert!(statements[1].contains("count_if(\"user_id\" IS NULL)"), "the counts query");
    assert!(
        statements[2].starts_with("UNLOAD (") && statements[2].contains(&format!("TO '{output}/_seqhouse-unload-"))
    );
    assert!(statements[2].contains("CROSS JOIN UNNEST(sequence("), "sliding windows");
    assert!(statements[3].starts_with("DROP TABLE IF EXISTS `kt`.`seqhouse_tmp_"));
    // With --k-core, the probe that finds its rounds runs first, and a note says how.
    args.extend(["--k-core", "skill_id=500", "--min-events", "5"]);
    let out = seqhouse_s3(&bucket.s3.endpoint, &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sql = String::from_utf8_lossy(&out.stdout);
    let statements: Vec<&str> = sql.split(";\n").map(str::trim).filter(|s| !s.is_empty()).collect();
    assert_eq!(statements.len(), 5, "{sql}");
    assert!(statements[1].starts_with("-- k-core: the probe below runs with 1, 2, 4"), "{}", statements[1]);
    assert!(
        statements[1]
            .ends_with("SELECT count(*) AS \"__before\", count_if(\"__core_kept\") AS \"__after\"\nFROM probed")
    );
    assert!(statements[2].contains("core_values AS") && statements[3].starts_with("UNLOAD ("), "{sql}");
    assert!(bucket.keys("out").is_empty(), "--explain writes nothing");
}

#[test]
fn athena_engine_needs_s3_locations_and_every_engine_explains() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("assist2015/events.parquet");
    let out = dir.path().join("out");
    let job = assistments_job(s(&input), s(&out));
    let run = |extra: &[&str], env_engine: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"));
        command.args(&job).args(extra).env("AWS_EC2_METADATA_DISABLED", "true").env_remove("SEQHOUSE_ENGINE");
        if let Some(engine) = env_engine {
            command.env("SEQHOUSE_ENGINE", engine);
        }
        command.output().unwrap()
    };
    let result = run(&["--engine", "athena"], None);
    assert_eq!(result.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&result.stderr).contains("the athena engine reads and writes s3:// locations"));
    let result = run(&[], Some("athena"));
    assert!(String::from_utf8_lossy(&result.stderr).contains("athena engine"), "SEQHOUSE_ENGINE picks the engine");
    // The local engine explains itself too: what it would read, how, and what it would write.
    let result = run(&["--explain"], None);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let explained = String::from_utf8_lossy(&result.stdout);
    let lines: Vec<&str> = explained.lines().collect();
    assert_eq!(lines.len(), 3, "{explained}");
    assert!(lines[0].starts_with("-- input: ") && lines[0].contains("(1 file(s), 682797 rows"), "{explained}");
    assert!(lines[1].starts_with("-- plan: read, sorted and windowed in one piece"), "{explained}");
    assert!(lines[2].starts_with(&format!("-- output: {} (written new)", s(&out))), "{explained}");
    let result = run(&["--engine", "spark-ish"], None);
    assert!(
        String::from_utf8_lossy(&result.stderr).contains("--engine 'spark-ish' is not one of local, athena, spark")
    );
    assert!(!out.exists());
}
