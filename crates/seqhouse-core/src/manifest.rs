//! `_manifest.json`: the commit marker of an output folder, the same shape from every engine.

use serde::{Deserialize, Serialize};

use crate::kernel::SequenceStats;
use crate::port::SequenceJob;
use crate::spec::SequenceSpec;

/// File name of the manifest; readers trust an output folder only when it is present.
pub const MANIFEST_FILE: &str = "_manifest.json";
/// Identifies the document kind.
pub const MANIFEST_FORMAT: &str = "seqhouse.sequences";
/// Bumped when the output contract changes incompatibly.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;

/// One input file that was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputFile {
    /// Path relative to the input location (so manifests do not depend on the machine).
    pub path: String,
    /// `parquet` or `csv`.
    pub format: String,
    /// Size in bytes.
    pub bytes: u64,
    /// Rows read from it.
    pub rows: u64,
}

/// One output part file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPart {
    /// File name inside the output folder.
    pub path: String,
    /// Rows (windows) in it.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

/// An output column and its Arrow type, for readers that check before loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputColumn {
    /// Column name.
    pub name: String,
    /// Arrow type, as Arrow prints it.
    pub data_type: String,
}

/// The whole manifest.
///
/// It holds no timestamps or absolute paths on purpose: the same input and options give the
/// same bytes, manifest included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// [`MANIFEST_FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Version of seqhouse that wrote it.
    pub seqhouse_version: String,
    /// Engine that ran the job (`local`, `athena`, `spark`).
    pub engine: String,
    /// The subset, when the job was one of several.
    pub subset: Option<String>,
    /// The spec, as run.
    pub spec: SequenceSpec,
    /// The input: relative to the output folder when both are local (`../events`), else its
    /// normalised URL or absolute path. Never how it was typed, so the manifest does not depend
    /// on the working directory.
    pub input_location: String,
    /// The files read, in the order they were read.
    pub input_files: Vec<InputFile>,
    /// The output parts, in order.
    pub parts: Vec<OutputPart>,
    /// The output schema.
    pub columns: Vec<OutputColumn>,
    /// Counts. For one split of a split job: the split's entities and windows, the input's
    /// rows and nulls, and in `splits` every split's counts and leakage checks.
    pub counts: SequenceStats,
    /// For one split of a split job: which split this output is, and the run it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitOutput>,
    /// The vocabularies that encoded its features (`--vocab`), each a file inside the output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vocabularies: Vec<VocabularyFile>,
}

/// One vocabulary file of an output (see [`crate::vocab`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabularyFile {
    /// The feature it encodes.
    pub feature: String,
    /// Its path inside the output folder (`_vocab/NAME.parquet`).
    pub path: String,
    /// The SHA-256 of the file, in hex: a reader checks the file is the one this output used.
    pub sha256: String,
    /// How many values have their own id (ids 3 to 2 + values).
    pub values: u64,
    /// The split or subset it was fitted on; `None` when it was read from a folder that does
    /// not say (`--vocab-from` a folder of bare vocabulary files).
    pub fitted_on: Option<String>,
}

impl VocabularyFile {
    /// The hex SHA-256 of `bytes`.
    pub fn digest(bytes: &[u8]) -> String {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// Which split of a split job an output holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitOutput {
    /// The split's name.
    pub name: String,
    /// The same in every split's manifest of one run: a digest of the seqhouse version, the
    /// spec and the input files read (their paths, sizes and rows). Splits whose manifests
    /// differ here were not published by one run.
    pub run: String,
    /// Every split's output folder, in order: the folder names beside this one
    /// (`train_sequenced_100`, `test_sequenced_100`).
    pub outputs: Vec<String>,
}

impl SplitOutput {
    /// The run digest of a split job (see [`SplitOutput::run`]).
    pub fn run_digest(spec: &SequenceSpec, input_files: &[InputFile]) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        hasher.update(crate::VERSION.as_bytes());
        hasher.update(b"\0");
        hasher.update(serde_json::to_vec(spec).expect("a spec serialises"));
        for file in input_files {
            hasher.update(b"\0");
            hasher.update(serde_json::to_vec(file).expect("an input file serialises"));
        }
        hasher.finalize()[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl OutputColumn {
    /// The columns of `schema`, as a manifest lists them.
    pub fn of_schema(schema: &arrow::datatypes::Schema) -> Vec<OutputColumn> {
        schema
            .fields()
            .iter()
            .map(|f| OutputColumn { name: f.name().clone(), data_type: f.data_type().to_string() })
            .collect()
    }
}

impl Manifest {
    /// The manifest of `job` as run by `engine`; `input_location` as the field documents it.
    pub fn new(
        engine: &str,
        job: &SequenceJob,
        input_location: String,
        input_files: Vec<InputFile>,
        parts: Vec<OutputPart>,
        columns: Vec<OutputColumn>,
        counts: SequenceStats,
    ) -> Self {
        Manifest {
            format: MANIFEST_FORMAT.to_string(),
            format_version: MANIFEST_FORMAT_VERSION,
            seqhouse_version: crate::VERSION.to_string(),
            engine: engine.to_string(),
            subset: job.subset.clone(),
            spec: job.spec.clone(),
            input_location,
            input_files,
            parts,
            columns,
            counts,
            split: None,
            vocabularies: Vec::new(),
        }
    }
}
