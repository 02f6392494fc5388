//! Finding and decoding the input files of a local job.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rayon::prelude::*;
use seqhouse_core::manifest::InputFile;
use seqhouse_core::resolve::{normalize_type, unify_types};
use seqhouse_core::{Error, ResolvedSpec, Result, SequenceSpec};

/// Rows per decoded batch; large enough to amortise per-batch overhead, small enough to stay in cache.
const BATCH_ROWS: usize = 64 * 1024;

/// The two input formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `*.parquet`
    Parquet,
    /// `*.csv`
    Csv,
}

impl InputFormat {
    fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "parquet" => Some(InputFormat::Parquet),
            "csv" => Some(InputFormat::Csv),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            InputFormat::Parquet => "parquet",
            InputFormat::Csv => "csv",
        }
    }
}

/// One input file: where it is, how it is shown, and the columns it has.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Absolute or as-given path, for opening and for error messages.
    pub path: PathBuf,
    /// Path relative to the input root with `/` separators (the manifest's name for it).
    pub relative: String,
    /// Its format.
    pub format: InputFormat,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema (for CSV: inferred over the whole file).
    pub schema: SchemaRef,
}

impl SourceFile {
    fn label(&self) -> String {
        self.path.display().to_string()
    }
}

/// Strips an optional `file://` scheme.
pub fn local_path(location: &str) -> PathBuf {
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

fn skipped(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// Lists the input files of `location`: the file itself, or every `*.parquet`/`*.csv` below the
/// folder (recursively), skipping names that start with `_` or `.`, in lexicographic path order.
pub fn list_files(location: &str) -> Result<Vec<(PathBuf, String, InputFormat)>> {
    let root = local_path(location);
    let meta = std::fs::metadata(&root).map_err(|e| Error::InputNotFound {
        location: location.to_string(),
        hint: if e.kind() == std::io::ErrorKind::NotFound {
            "no such file or folder; check --input".to_string()
        } else {
            e.to_string()
        },
    })?;
    if meta.is_file() {
        let format = InputFormat::of(&root).ok_or_else(|| {
            Error::invalid(format!(
                "input {location} is neither *.parquet nor *.csv; name the file by its format or pass its folder"
            ))
        })?;
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        return Ok(vec![(root, name, format)]);
    }
    let mut found = Vec::new();
    walk(&root, "", &mut found)?;
    // Byte-wise order of the relative path is the documented file order (ties keep it).
    found.sort_by(|a, b| a.1.cmp(&b.1));
    if found.is_empty() {
        return Err(Error::NoInputFiles { location: location.to_string() });
    }
    Ok(found)
}

fn walk(dir: &Path, prefix: &str, found: &mut Vec<(PathBuf, String, InputFormat)>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::storage("cannot list", dir.display(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage("cannot list", dir.display(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if skipped(&name) {
            continue;
        }
        let path = entry.path();
        let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let file_type = std::fs::metadata(&path).map_err(|e| Error::storage("cannot read", path.display(), e))?;
        if file_type.is_dir() {
            walk(&path, &relative, found)?;
        } else if let Some(format) = InputFormat::of(&path) {
            found.push((path, relative, format));
        } else {
            tracing::debug!(file = %path.display(), "skipping: not *.parquet or *.csv");
        }
    }
    Ok(())
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::CorruptInput { file: path.display().to_string(), message: e.to_string() }
}

fn open(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| Error::storage("cannot open", path.display(), e))
}

/// Reads the schema of every file (Parquet footer; CSV inferred over the whole file).
pub fn describe(files: Vec<(PathBuf, String, InputFormat)>, delimiter: u8) -> Result<Vec<SourceFile>> {
    files
        .into_par_iter()
        .map(|(path, relative, format)| {
            let file = open(&path)?;
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            let schema = match format {
                InputFormat::Parquet => {
                    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(&path, e))?.schema().clone()
                }
                InputFormat::Csv => {
                    let (schema, _) = csv_format(delimiter)
                        .infer_schema(std::io::BufReader::new(file), None)
                        .map_err(|e| corrupt(&path, e))?;
                    Arc::new(schema)
                }
            };
            Ok(SourceFile { path, relative, format, bytes, schema })
        })
        .collect()
}

fn csv_format(delimiter: u8) -> Format {
    Format::default().with_header(true).with_delimiter(delimiter)
}

/// Binds the spec to the columns the files share, widening numeric types that differ between
/// files (Int32 in one, Int64 in another) and naming the file when a column is missing.
pub fn resolve(spec: &SequenceSpec, files: &[SourceFile]) -> Result<ResolvedSpec> {
    let mut fields: Vec<Field> = Vec::new();
    for column in spec.needed_columns() {
        let mut unified: Option<(DataType, &SourceFile)> = None;
        for file in files {
            let field = file.schema.field_with_name(&column).map_err(|_| Error::ColumnNotFound {
                column: column.clone(),
                file: file.label(),
                available: file.schema.fields().iter().map(|f| f.name().clone()).collect(),
            })?;
            let data_type = normalize_type(field.data_type());
            unified = Some(match unified {
                None => (data_type, file),
                Some((seen, first)) => match unify_types(&seen, &data_type) {
                    Some(t) => (t, first),
                    None => {
                        return Err(Error::UnsupportedType {
                            column,
                            message: format!(
                                "it is {seen} in {} but {data_type} in {}; give it one type in every file",
                                first.label(),
                                file.label()
                            ),
                        });
                    }
                },
            });
        }
        let (mut data_type, _) = unified.expect("list_files never returns an empty list");
        if data_type == DataType::Null {
            // No file holds a value to type the column by (a header-only CSV, an all-null column).
            // Read it as strings: an empty input then gives an empty output, and null keys are
            // still reported as null keys rather than as a type problem.
            tracing::debug!(column = %column, "no values to infer a type from; reading as Utf8");
            data_type = DataType::Utf8;
        }
        fields.push(Field::new(column, data_type, true));
    }
    let label = if files.len() == 1 { files[0].label() } else { format!("{} input files", files.len()) };
    ResolvedSpec::new(spec, &Schema::new(fields), &label)
}

/// Decodes every file's needed columns, in file order, cast to the resolved types.
pub fn read_all(
    files: &[SourceFile],
    resolved: &ResolvedSpec,
    delimiter: u8,
    on_file_done: &(dyn Fn() + Sync),
) -> Result<(Vec<RecordBatch>, Vec<usize>, Vec<InputFile>)> {
    let per_file: Vec<(Vec<RecordBatch>, InputFile)> = files
        .par_iter()
        .map(|file| {
            let batches = read_one(file, resolved, delimiter)?;
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            on_file_done();
            let info = InputFile {
                path: file.relative.clone(),
                format: file.format.name().to_string(),
                bytes: file.bytes,
                rows,
            };
            Ok((batches, info))
        })
        .collect::<Result<_>>()?;
    let mut batches = Vec::new();
    let mut batch_file = Vec::new();
    let mut infos = Vec::new();
    for (i, (file_batches, info)) in per_file.into_iter().enumerate() {
        batch_file.extend(std::iter::repeat_n(i, file_batches.len()));
        batches.extend(file_batches);
        infos.push(info);
    }
    Ok((batches, batch_file, infos))
}

fn read_one(file: &SourceFile, resolved: &ResolvedSpec, delimiter: u8) -> Result<Vec<RecordBatch>> {
    let target = &resolved.input_schema;
    let indices: Vec<usize> = target
        .fields()
        .iter()
        .map(|f| file.schema.index_of(f.name()).expect("resolve checked every file has every column"))
        .collect();
    let raw: Vec<RecordBatch> = match file.format {
        InputFormat::Parquet => {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(open(&file.path)?).map_err(|e| corrupt(&file.path, e))?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
            let reader = builder
                .with_projection(mask)
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| corrupt(&file.path, e))?;
            reader.collect::<std::result::Result<_, _>>().map_err(|e| corrupt(&file.path, e))?
        }
        InputFormat::Csv => {
            let reader = arrow::csv::ReaderBuilder::new(file.schema.clone())
                .with_format(csv_format(delimiter))
                .with_batch_size(BATCH_ROWS)
                .with_projection(indices.clone())
                .build(std::io::BufReader::new(open(&file.path)?))
                .map_err(|e| corrupt(&file.path, e))?;
            reader.collect::<std::result::Result<_, _>>().map_err(|e| corrupt(&file.path, e))?
        }
    };
    let label = file.label();
    raw.iter().map(|batch| resolved.conform(batch, &label)).collect()
}
