//! The local S3 server the tests use (started by `scripts/test`), and a fixture on it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use seqhouse_core::{MANIFEST_FILE, Manifest};

use crate::fixture::parquet_bytes;
use crate::{Fixture, Output};

/// Where the test S3 server is: `SEQHOUSE_TEST_S3_ENDPOINT` and `SEQHOUSE_TEST_S3_BUCKET`.
#[derive(Debug, Clone)]
pub struct TestS3 {
    /// The server's URL.
    pub endpoint: String,
    /// A bucket that exists.
    pub bucket: String,
}

impl TestS3 {
    /// Reads the environment `scripts/test` sets up; panics with the way out when it is missing.
    pub fn from_env() -> Self {
        let endpoint = std::env::var("SEQHOUSE_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
            panic!(
                "SEQHOUSE_TEST_S3_ENDPOINT is not set: S3 tests need the local S3 server. Run the tests with scripts/test, which starts it"
            )
        });
        let bucket = std::env::var("SEQHOUSE_TEST_S3_BUCKET").unwrap_or_else(|_| "seqhouse-test".to_string());
        TestS3 { endpoint, bucket }
    }

    /// A client for `bucket` on `endpoint` (the server itself, or a proxy in front of it).
    pub fn store(endpoint: &str, bucket: &str) -> Arc<dyn ObjectStore> {
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(endpoint)
                .with_bucket_name(bucket)
                .with_region("us-east-1")
                .with_access_key_id("seqhouse-test")
                .with_secret_access_key("seqhouse-test-secret")
                .with_virtual_hosted_style_request(false)
                .with_client_options(ClientOptions::new().with_allow_http(true))
                .build()
                .expect("test S3 client"),
        )
    }

    /// A prefix no other test uses.
    pub fn unique_prefix(&self, label: &str) -> String {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        format!("{label}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// Runs an object_store future on a small runtime of its own.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

/// A contract fixture on the test S3 server, under a unique prefix.
pub struct S3Fixture {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    root: String,
}

impl S3Fixture {
    /// A fresh prefix in the test bucket.
    pub fn new() -> Self {
        let s3 = TestS3::from_env();
        S3Fixture {
            store: TestS3::store(&s3.endpoint, &s3.bucket),
            root: s3.unique_prefix("contract"),
            bucket: s3.bucket,
        }
    }

    fn key(&self, location: &str) -> ObjectPath {
        let prefix = format!("s3://{}/", self.bucket);
        ObjectPath::from(location.strip_prefix(&prefix).expect("a location of this fixture"))
    }

    /// Reads one object's bytes.
    pub fn get(&self, location: &str) -> Vec<u8> {
        block_on(async { self.store.get(&self.key(location)).await.unwrap().bytes().await.unwrap() }).to_vec()
    }
}

impl Default for S3Fixture {
    fn default() -> Self {
        Self::new()
    }
}

impl Fixture for S3Fixture {
    fn put_parquet(&self, dataset: &str, name: &str, batches: &[arrow::array::RecordBatch]) -> String {
        self.put_bytes(dataset, name, &parquet_bytes(batches))
    }

    fn put_bytes(&self, dataset: &str, name: &str, bytes: &[u8]) -> String {
        let path = ObjectPath::from(format!("{}/{dataset}/{name}", self.root));
        block_on(self.store.put(&path, bytes.to_vec().into())).unwrap();
        format!("s3://{}/{}/{dataset}", self.bucket, self.root)
    }

    fn output_location(&self, name: &str) -> String {
        format!("s3://{}/{}/{name}", self.bucket, self.root)
    }

    fn list(&self, location: &str) -> Vec<String> {
        let prefix = self.key(location);
        let listing = block_on(self.store.list_with_delimiter(Some(&prefix))).unwrap();
        let mut names: Vec<String> = listing
            .objects
            .iter()
            .map(|o| &o.location)
            .chain(&listing.common_prefixes)
            .map(|p| p.filename().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    fn read_output(&self, location: &str) -> Output {
        let manifest: Manifest =
            serde_json::from_slice(&self.get(&format!("{location}/{MANIFEST_FILE}"))).expect("manifest present");
        let mut batches = Vec::new();
        for part in &manifest.parts {
            let bytes = bytes::Bytes::from(self.get(&format!("{location}/{}", part.path)));
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap();
            batches.extend(reader.map(|b| b.unwrap()));
        }
        let vocab_files = manifest.vocabularies.iter().map(|v| self.get(&format!("{location}/{}", v.path))).collect();
        Output { manifest, batches, entries: self.list(location), vocab_files }
    }
}

/// Every object under `prefix` of `bucket` (keys relative to the bucket), sorted.
pub fn list_keys(store: &Arc<dyn ObjectStore>, prefix: &str) -> Vec<String> {
    let prefix = ObjectPath::from(prefix);
    let mut keys: Vec<String> = block_on(store.list(Some(&prefix)).try_collect::<Vec<_>>())
        .unwrap()
        .into_iter()
        .map(|m| m.location.to_string())
        .collect();
    keys.sort();
    keys
}
