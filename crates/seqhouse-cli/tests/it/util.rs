//! Helpers: run the real binary, write inputs, read outputs.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_contract::{Fixture, LocalFixture};

/// Runs the `seqhouse` binary with `args`.
pub fn seqhouse(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse")).args(args).output().expect("run seqhouse")
}

/// Runs the binary against the S3 endpoint `endpoint` with the test credentials.
pub fn seqhouse_s3(endpoint: &str, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"));
    with_s3_env(command.args(args), endpoint).output().expect("run seqhouse")
}

/// Points `command` at the S3 endpoint `endpoint` with the test credentials, and at nothing else.
pub fn with_s3_env<'a>(command: &'a mut std::process::Command, endpoint: &str) -> &'a mut std::process::Command {
    command
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "seqhouse-test")
        .env("AWS_SECRET_ACCESS_KEY", S3_TEST_SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
}

/// The secret key the S3 tests use; it must never show up in seqhouse's output.
pub const S3_TEST_SECRET: &str = "seqhouse-test-secret-do-not-print";

/// Runs it and asserts success, printing stderr otherwise.
pub fn seqhouse_ok(args: &[&str]) -> Output {
    let out = seqhouse(args);
    assert!(out.status.success(), "seqhouse {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs it expecting failure; returns (exit code, stderr).
pub fn seqhouse_err(args: &[&str]) -> (i32, String) {
    let out = seqhouse(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "seqhouse {args:?} should fail; stderr: {stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

/// The real logs in the repository's test data.
pub use seqhouse_contract::real_data as shared_data;

/// Writes `columns` as a Parquet file at `path`.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, parquet_bytes(&[batch])).unwrap();
}

/// Reads a published output folder.
pub fn read_output(dir: &Path) -> seqhouse_contract::Output {
    LocalFixture::new().read_output(dir.to_str().unwrap())
}

/// Shorthand for an `Arc`ed array.
pub fn arc<A: arrow::array::Array + 'static>(array: A) -> ArrayRef {
    Arc::new(array)
}

/// Path as &str.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file of a folder with its bytes, sorted by name.
pub fn folder_bytes(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}
