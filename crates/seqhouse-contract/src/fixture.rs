//! Where contract inputs are put and outputs read back, per storage.

use std::fs::File;
use std::path::PathBuf;

use arrow::array::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use seqhouse_core::{MANIFEST_FILE, Manifest};

/// A published output read back.
pub struct Output {
    /// The manifest.
    pub manifest: Manifest,
    /// Every part's batches, in manifest order.
    pub batches: Vec<RecordBatch>,
    /// Names of all entries in the output folder.
    pub entries: Vec<String>,
    /// The bytes of each vocabulary file the manifest lists, in its order.
    pub vocab_files: Vec<Vec<u8>>,
}

/// The storage an adapter reads and writes, seen from the tests.
pub trait Fixture {
    /// Writes `batches` as one Parquet file `name` (a path relative to the dataset) of dataset
    /// `dataset`, and returns the dataset's location.
    fn put_parquet(&self, dataset: &str, name: &str, batches: &[RecordBatch]) -> String;
    /// Writes raw bytes as file `name` of dataset `dataset`; returns the dataset's location.
    fn put_bytes(&self, dataset: &str, name: &str, bytes: &[u8]) -> String;
    /// A location for output `name` that does not exist yet.
    fn output_location(&self, name: &str) -> String;
    /// Names of the entries at `location` (empty if it does not exist).
    fn list(&self, location: &str) -> Vec<String>;
    /// Reads a published output (manifest and parts).
    fn read_output(&self, location: &str) -> Output;
}

/// A fixture on the local file system, in a temporary folder removed on drop.
pub struct LocalFixture {
    root: tempfile::TempDir,
}

impl LocalFixture {
    /// A fresh temporary folder.
    pub fn new() -> Self {
        LocalFixture { root: tempfile::tempdir().expect("temp dir") }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }
}

impl Default for LocalFixture {
    fn default() -> Self {
        Self::new()
    }
}

/// Encodes batches as Parquet bytes.
pub fn parquet_bytes(batches: &[RecordBatch]) -> Vec<u8> {
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, batches[0].schema(), None).unwrap();
    for batch in batches {
        writer.write(batch).unwrap();
    }
    writer.close().unwrap();
    buffer
}

impl Fixture for LocalFixture {
    fn put_parquet(&self, dataset: &str, name: &str, batches: &[RecordBatch]) -> String {
        self.put_bytes(dataset, name, &parquet_bytes(batches))
    }

    fn put_bytes(&self, dataset: &str, name: &str, bytes: &[u8]) -> String {
        let file = self.path(dataset).join(name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
        self.path(dataset).display().to_string()
    }

    fn output_location(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn list(&self, location: &str) -> Vec<String> {
        let mut names: Vec<String> = match std::fs::read_dir(location) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    fn read_output(&self, location: &str) -> Output {
        let dir = PathBuf::from(location);
        let manifest: Manifest =
            serde_json::from_slice(&std::fs::read(dir.join(MANIFEST_FILE)).expect("manifest present")).unwrap();
        let mut batches = Vec::new();
        for part in &manifest.parts {
            let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(dir.join(&part.path)).unwrap())
                .unwrap()
                .build()
                .unwrap();
            batches.extend(reader.map(|b| b.unwrap()));
        }
        let vocab_files = manifest.vocabularies.iter().map(|v| std::fs::read(dir.join(&v.path)).unwrap()).collect();
        Output { manifest, batches, entries: self.list(location), vocab_files }
    }
}
