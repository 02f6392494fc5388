//! Every byte seqhouse reads or writes goes through here: local paths, `file://` and `s3://`
//! locations, all behind `object_store`, so local folders and S3 share one code path.
//!
//! S3 is configured the AWS way: credentials and region come from the standard chain of
//! `aws-config` (environment, `~/.aws` profiles, SSO, web identity, container and instance roles),
//! bridged into object_store, whose own chain lacks profiles. `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL` (or `--s3-endpoint`) point at S3-compatible stores. Transient failures (5xx,
//! throttling, timeouts, dropped connections) are retried by object_store with exponential
//! backoff; credentials never appear in logs or errors.

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt, TryFutureExt, TryStreamExt};
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, CredentialProvider, ObjectMeta, ObjectStore, ObjectStoreExt, RetryConfig,
    WriteMultipart,
};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use seqhouse_core::{Error, Result, Setting};

/// Objects up to this size are written with one PUT; larger ones with a multipart upload.
const SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;
/// Size of each part of a multipart upload (S3 needs at least 5 MiB).
const MULTIPART_CHUNK: usize = 8 * 1024 * 1024;

/// How to reach S3 and S3-compatible stores.
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Endpoint URL; `None` reads `AWS_ENDPOINT_URL_S3`, then `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint: Option<String>,
    /// Region; `None` takes it from the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`); `None` means on for custom endpoints
    /// (MinIO, Ceph, local servers) and off for AWS.
    pub path_style: Option<bool>,
    /// Timeout of one request; a stalled request is cut and retried after it.
    pub request_timeout: Duration,
    /// Retries of a failed request before the run stops.
    pub max_retries: usize,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            region: None,
            path_style: None,
            request_timeout: Duration::from_secs(30),
            max_retries: 10,
        }
    }
}

/// A file or folder somewhere: a store and a prefix in it.
#[derive(Debug, Clone)]
pub struct Location {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// How the user wrote it (without a trailing slash), for messages and manifests.
    pub shown: String,
    /// The absolute path when the location is on the local file system.
    pub local: Option<PathBuf>,
    /// The bucket when the location is on S3.
    pub bucket: Option<String>,
}

impl Location {
    /// The location of object `name` inside this folder location.
    pub fn child(&self, name: &str) -> Location {
        Location {
            store: self.store.clone(),
            prefix: join_segments(&self.prefix, name),
            shown: format!("{}/{name}", self.shown),
            local: self.local.as_ref().map(|p| p.join(name)),
            bucket: self.bucket.clone(),
        }
    }

    /// Object `path` of this location's store (as a listing returns it), as a location.
    pub fn object(&self, path: &ObjectPath) -> Location {
        Location {
            store: self.store.clone(),
            prefix: path.clone(),
            shown: self.show(path),
            local: self.local.as_ref().map(|_| PathBuf::from(format!("/{path}"))),
            bucket: self.bucket.clone(),
        }
    }

    /// The object path of this location.
    pub fn path(&self) -> &ObjectPath {
        &self.prefix
    }

    /// The store holding this location.
    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// How to show an object of this store (an absolute path or an `s3://` URL).
    pub fn show(&self, path: &ObjectPath) -> String {
        match &self.bucket {
            Some(bucket) => format!("s3://{bucket}/{path}"),
            None => format!("/{path}"),
        }
    }

    /// Whether `other` is this very location (the same store kind, bucket and path).
    pub fn same_as(&self, other: &Location) -> bool {
        self.bucket == other.bucket && self.local.is_some() == other.local.is_some() && self.prefix == other.prefix
    }

    /// Whether `other` lies strictly inside this location.
    pub fn contains(&self, other: &Location) -> bool {
        if self.bucket != other.bucket || self.local.is_some() != other.local.is_some() {
            return false;
        }
        let mine: Vec<_> = self.prefix.parts().collect();
        let theirs: Vec<_> = other.prefix.parts().collect();
        theirs.len() > mine.len() && theirs[..mine.len()] == mine[..]
    }
}

/// The storage side of the engine: a tokio runtime for I/O and the stores in use.
pub struct Storage {
    runtime: tokio::runtime::Runtime,
    s3: S3Options,
    aws: OnceLock<aws_config::SdkConfig>,
    buckets: Mutex<HashMap<String, Arc<dyn ObjectStore>>>,
    local: Arc<LocalFileSystem>,
}

impl Storage {
    /// Starts the I/O runtime.
    pub fn new(s3: S3Options) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("seqhouse-io")
            .enable_all()
            .build()
            .map_err(|e| Error::internal(format!("cannot start the I/O runtime: {e}")))?;
        Ok(Storage {
            runtime,
            s3,
            aws: OnceLock::new(),
            buckets: Mutex::new(HashMap::new()),
            local: Arc::new(LocalFileSystem::new()),
        })
    }

    /// Retries of a failed request (`--s3-max-retries`).
    pub(crate) fn max_retries(&self) -> usize {
        self.s3.max_retries
    }

    /// The I/O runtime, for tasks that outlive one call (a lock's heartbeat).
    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.handle().clone()
    }

    /// Runs an I/O future to completion from synchronous code (never from inside the runtime).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.handle().block_on(future)
    }

    /// Parses a location: a local path, `file:///path` or `s3://bucket/prefix`.
    pub fn locate(&self, text: &str) -> Result<Location> {
        let trimmed = text.trim_end_matches('/');
        if let Some(rest) = trimmed.strip_prefix("s3://").or_else(|| trimmed.strip_prefix("s3a://")) {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::invalid(format!("'{text}' names no bucket; expected s3://BUCKET/PREFIX")));
            }
            let prefix =
                ObjectPath::parse(key).map_err(|e| Error::invalid(format!("'{text}' is not a valid S3 key: {e}")))?;
            return Ok(Location {
                store: self.bucket_store(bucket)?,
                prefix,
                shown: trimmed.to_string(),
                local: None,
                bucket: Some(bucket.to_string()),
            });
        }
        let path = match trimmed.strip_prefix("file://") {
            Some(path) => path,
            None if trimmed.contains("://") => {
                return Err(Error::invalid(format!(
                    "'{text}': unsupported storage scheme; use a local path, file:// or s3://"
                )));
            }
            None => trimmed,
        };
        let path = if path.is_empty() && text.starts_with('/') { "/" } else { path };
        let absolute = normalize_local(Path::new(path))
            .map_err(|e| Error::invalid(format!("'{text}' is not a usable path: {e}")))?;
        let prefix = ObjectPath::from_absolute_path(&absolute)
            .map_err(|e| Error::invalid(format!("'{text}' is not a usable path: {e}")))?;
        Ok(Location {
            store: self.local.clone(),
            prefix,
            shown: if path.is_empty() { ".".into() } else { path.to_string() },
            local: Some(absolute),
            bucket: None,
        })
    }

    fn bucket_store(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>> {
        let mut buckets = self.buckets.lock().expect("bucket cache lock");
        if let Some(store) = buckets.get(bucket) {
            return Ok(store.clone());
        }
        let aws = self.aws.get_or_init(|| self.block_on(aws_config::load_from_env()));
        let endpoint = self
            .s3
            .endpoint
            .clone()
            .or_else(|| std::env::var("AWS_ENDPOINT_URL_S3").ok())
            .or_else(|| aws.endpoint_url().map(str::to_string))
            .filter(|e| !e.is_empty());
        let region = self
            .s3
            .region
            .clone()
            .or_else(|| aws.region().map(|r| r.to_string()))
            .unwrap_or_else(|| "us-east-1".to_string());
        let path_style = self.s3.path_style.unwrap_or(endpoint.is_some());
        let client = ClientOptions::new()
            .with_timeout(self.s3.request_timeout)
            .with_connect_timeout(Duration::from_secs(5))
            // Set here, not on the builder: with_client_options would reset it (see NOTES.md).
            .with_allow_http(endpoint.as_deref().is_some_and(|e| e.starts_with("http://")));
        let retry = RetryConfig {
            backoff: BackoffConfig::default(),
            max_retries: self.s3.max_retries,
            retry_timeout: Duration::from_secs(180),
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(region)
            .with_virtual_hosted_style_request(!path_style)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        builder = match aws.credentials_provider() {
            Some(provider) => builder.with_credentials(Arc::new(AwsChain(provider))),
            None => builder.with_skip_signature(true),
        };
        let store: Arc<dyn ObjectStore> = Arc::new(
            builder.build().map_err(|e| Error::invalid(format!("cannot configure S3 for bucket '{bucket}': {e}")))?,
        );
        tracing::debug!(bucket, endpoint = endpoint.as_deref().unwrap_or("aws"), path_style, "S3 store ready");
        buckets.insert(bucket.to_string(), store.clone());
        Ok(store)
    }

    /// The object at exactly `location`, if there is one (a folder is not an object).
    pub fn head(&self, location: &Location) -> Result<Option<ObjectMeta>> {
        if location.prefix.as_ref().is_empty() {
            return Ok(None);
        }
        if let Some(path) = &location.local
            && !path.is_file()
        {
            return Ok(None);
        }
        match self.block_on(location.store.head(&location.prefix)) {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(storage_error("cannot read", &location.shown, e)),
        }
    }

    /// Every object below the folder `location`, recursively, in no particular order.
    pub fn list_recursive(&self, location: &Location) -> Result<Vec<ObjectMeta>> {
        if let Some(path) = &location.local
            && !path.is_dir()
        {
            return Ok(Vec::new());
        }
        let prefix = (!location.prefix.as_ref().is_empty()).then_some(&location.prefix);
        self.block_on(location.store.list(prefix).try_collect())
            .map_err(|e| storage_error("cannot list", &location.shown, e))
    }

    /// Names directly inside the folder `location` (objects and sub-folders).
    pub fn children(&self, location: &Location) -> Result<Vec<String>> {
        if let Some(path) = &location.local
            && !path.is_dir()
        {
            return Ok(Vec::new());
        }
        let prefix = (!location.prefix.as_ref().is_empty()).then_some(&location.prefix);
        let listing = self
            .block_on(location.store.list_with_delimiter(prefix))
            .map_err(|e| storage_error("cannot list", &location.shown, e))?;
        let mut names: Vec<String> = listing
            .objects
            .iter()
            .map(|o| &o.location)
            .chain(&listing.common_prefixes)
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Writes `bytes` as object `name` in the folder `location`, atomically (one PUT, or a
    /// multipart upload that becomes visible only when complete).
    pub fn put(&self, location: &Location, name: &str, bytes: Vec<u8>) -> Result<()> {
        let path = join_segments(&location.prefix, name);
        let shown = format!("{}/{name}", location.shown);
        let store = location.store.clone();
        self.block_on(async move {
            if bytes.len() <= SINGLE_PUT_LIMIT {
                store.put(&path, bytes.into()).await.map(|_| ())
            } else {
                let upload = store.put_multipart(&path).await?;
                let mut writer = WriteMultipart::new_with_chunk_size(upload, MULTIPART_CHUNK);
                writer.write(&bytes);
                match writer.finish().await {
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .map_err(|e| storage_error("cannot write", &shown, e))
    }

    /// The whole object at `location`.
    pub fn get(&self, location: &Location) -> Result<Vec<u8>> {
        let store = location.store.clone();
        self.block_on(async move { store.get(&location.prefix).await?.bytes().await })
            .map(|bytes| bytes.to_vec())
            .map_err(|e| storage_error("cannot read", &location.shown, e))
    }

    /// Deletes object `name` of the folder `location`; a missing object is not an error.
    pub fn delete(&self, location: &Location, name: &str) -> Result<()> {
        self.remove(&location.child(name))
    }

    /// Deletes the object at `location`; a missing object is not an error.
    pub fn remove(&self, location: &Location) -> Result<()> {
        match self.block_on(location.store.delete(&location.prefix)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(storage_error("cannot delete", &location.shown, e)),
        }
    }

    /// Copies object `from` to `to` (server-side within one store).
    pub fn copy(&self, from: &Location, to: &Location) -> Result<()> {
        self.block_on(to.store.copy(&from.prefix, &to.prefix))
            .map_err(|e| storage_error("cannot copy", format!("{} to {}", from.shown, to.shown), e))
    }

    /// A Parquet reader over `meta` that fetches only the byte ranges it needs.
    ///
    /// A local file is read on the calling thread. Through the store, every fetch went to a
    /// blocking thread of the I/O runtime while the decoding thread waited for it: at 10M rows
    /// the decoding threads were a fifth idle while reading.
    pub fn parquet_reader(&self, location: &Location, meta: &ObjectMeta) -> ObjectReader {
        let local = match &location.local {
            Some(_) => self.local.path_to_filesystem(&meta.location).ok(),
            None => None,
        };
        ObjectReader { store: location.store.clone(), path: meta.location.clone(), size: meta.size, local }
    }

    /// A blocking reader streaming the object's bytes (for CSV), to be used outside the runtime.
    pub fn stream(&self, location: &Location, meta: &ObjectMeta) -> Result<BlockingRead<'_>> {
        let shown = location.show(&meta.location);
        let result =
            self.block_on(location.store.get(&meta.location)).map_err(|e| storage_error("cannot read", &shown, e))?;
        Ok(BlockingRead { storage: self, stream: result.into_stream(), current: Bytes::new() })
    }
}

/// An absolute path without `.` or `..`: the nearest existing ancestor is canonicalized (so
/// symlinks resolve as the OS would), the part that does not exist yet is cleaned lexically.
pub fn normalize_local(path: &Path) -> std::io::Result<PathBuf> {
    let absolute = std::path::absolute(path)?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    let base = loop {
        match existing.canonicalize() {
            Ok(resolved) => break resolved,
            Err(_) => match existing.parent() {
                Some(parent) => {
                    rest.push(existing.components().next_back());
                    existing = parent;
                }
                None => break PathBuf::from("/"),
            },
        }
    };
    let mut out = base;
    for component in rest.into_iter().rev().flatten() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
            _ => {}
        }
    }
    Ok(out)
}

/// Parquet's async reader over one object: range requests only, I/O on the runtime of the
/// caller's `block_on`.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
    /// The file, when the object is local (read directly, see [`Storage::parquet_reader`]).
    local: Option<PathBuf>,
}

impl ObjectReader {
    /// `ranges` of the local file at `path`, read on this thread.
    fn read_local(&self, path: &Path, ranges: &[Range<u64>]) -> parquet::errors::Result<Vec<Bytes>> {
        use std::os::unix::fs::FileExt;
        let failed = |e: std::io::Error| {
            parquet_io(object_store::Error::Generic { store: "LocalFileSystem", source: Box::new(e) })
        };
        let file = std::fs::File::open(path).map_err(failed)?;
        ranges
            .iter()
            .map(|range| {
                let mut bytes = vec![0; (range.end - range.start) as usize];
                file.read_exact_at(&mut bytes, range.start).map_err(failed)?;
                Ok(Bytes::from(bytes))
            })
            .collect()
    }
}

fn parquet_io(e: object_store::Error) -> parquet::errors::ParquetError {
    parquet::errors::ParquetError::External(Box::new(e))
}

impl AsyncFileReader for ObjectReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        if let Some(path) = &self.local {
            let read = self.read_local(path, std::slice::from_ref(&range)).map(|mut r| r.remove(0));
            return futures::future::ready(read).boxed();
        }
        self.store.get_range(&self.path, range).map_err(parquet_io).boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        if let Some(path) = &self.local {
            return futures::future::ready(self.read_local(path, &ranges)).boxed();
        }
        // object_store coalesces nearby ranges into fewer requests.
        async move { self.store.get_ranges(&self.path, &ranges).await.map_err(parquet_io) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            // The size is known from the listing, and a 64 KiB tail usually holds the whole footer.
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .with_prefetch_hint(Some(64 * 1024))
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// `std::io::Read` over an object's byte stream, pulling chunks as they are consumed.
pub struct BlockingRead<'a> {
    storage: &'a Storage,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    current: Bytes,
}

impl Read for BlockingRead<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.storage.block_on(self.stream.next()) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Bridges the AWS SDK's credential chain into object_store.
#[derive(Debug)]
struct AwsChain(aws_credential_types::provider::SharedCredentialsProvider);

#[async_trait::async_trait]
impl CredentialProvider for AwsChain {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        use aws_credential_types::provider::ProvideCredentials;
        let credentials = self.0.provide_credentials().await.map_err(|e| object_store::Error::Generic {
            store: "S3",
            source: format!(
                "no AWS credentials: {e}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or run where a role is available"
            )
            .into(),
        })?;
        Ok(Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(str::to_string),
        }))
    }
}

/// Converts an object_store error into the port's error, naming the location and what to do.
pub fn storage_error(action: &str, shown: impl std::fmt::Display, e: object_store::Error) -> Error {
    let message = match &e {
        object_store::Error::NotFound { .. } => "not found".to_string(),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            format!("access denied; check the credentials and the bucket policy ({e})")
        }
        _ => match s3_error_code(&e).as_deref() {
            Some("NoSuchBucket") => format!(
                "the bucket does not exist; check the bucket name (and {} / AWS_ENDPOINT_URL)",
                Setting::S3Endpoint
            ),
            Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
                format!("access denied; check the credentials and the bucket policy ({e})")
            }
            _ => e.to_string(),
        },
    };
    Error::Storage { action: action.to_string(), location: shown.to_string(), message, source: Some(Box::new(e)) }
}

/// The S3 error code of a failed request (`NoSuchBucket`, `AccessDenied`, ...): the protocol's
/// own classification, in the `<Code>` element of the XML error body.
///
/// object_store maps only some statuses to its error kinds (a 404 on GET is `NotFound`); a failed
/// LIST, say, arrives as `Generic`, and the request error that holds the status and body is not
/// a public type, so the body, as the error's text carries it, is the one place the code is.
fn s3_error_code(e: &object_store::Error) -> Option<String> {
    let text = e.to_string();
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim().to_string())
}

/// `prefix` and then `name`, whose `/`s separate path segments (`vocab/item.parquet` is a file
/// in the folder `vocab`), as object-store paths would otherwise escape them.
fn join_segments(prefix: &ObjectPath, name: &str) -> ObjectPath {
    name.split('/').filter(|segment| !segment.is_empty()).fold(prefix.clone(), |path, segment| path.join(segment))
}
