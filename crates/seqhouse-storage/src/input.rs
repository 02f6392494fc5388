//! Finding and decoding the input files of a job, on any storage.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::csv::reader::Format;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectMeta;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
use rayon::prelude::*;
use seqhouse_core::manifest::InputFile;
use seqhouse_core::resolve::{conform_to, normalize_type, type_kind, unify_types};
use seqhouse_core::{Error, ResolvedSpec, Result, SequenceJob, SequenceSpec, Setting};

use crate::storage::{Location, Storage, storage_error};

/// Rows per decoded batch; large enough to amortise per-batch overhead, small enough to stay in cache.
const BATCH_ROWS: usize = 64 * 1024;
/// Parquet footers fetched at once (latency-bound on S3).
const FOOTER_CONCURRENCY: usize = 32;

/// The two input formats, chosen by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    /// `*.parquet`
    Parquet,
    /// `*.csv`
    Csv,
}

impl InputFormat {
    fn of(name: &str) -> Option<Self> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
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

/// One input file found by [`list_files`].
#[derive(Debug, Clone)]
pub struct Listed {
    meta: ObjectMeta,
    relative: String,
    format: InputFormat,
}

/// One input file with its schema.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The object.
    pub meta: ObjectMeta,
    /// How the file is shown in messages (absolute path or `s3://` URL).
    pub shown: String,
    /// Path relative to the input location with `/` separators (the manifest's name for it).
    pub relative: String,
    /// Its format.
    pub format: InputFormat,
    /// Its schema (for CSV: inferred over the whole file).
    pub schema: SchemaRef,
    /// The decoded Parquet footer, kept so the file is not asked for it twice.
    parquet: Option<ArrowReaderMetadata>,
}

impl SourceFile {
    /// Rows in the file, when its footer says (Parquet).
    pub fn rows(&self) -> Option<u64> {
        self.parquet.as_ref().map(|m| m.metadata().file_metadata().num_rows() as u64)
    }

    /// The file as the manifest lists it, with `rows` counted by whoever read it.
    pub fn manifest_entry(&self, rows: u64) -> InputFile {
        InputFile { path: self.relative.clone(), format: self.format.name().to_string(), bytes: self.meta.size, rows }
    }
}

fn skipped(name: &str) -> bool {
    name.starts_with('_') || name.starts_with('.')
}

/// Lists the input files of `location`: the file itself, or every `*.parquet`/`*.csv` below the
/// folder (recursively), skipping any path part that starts with `_` or `.`, in lexicographic
/// order of the path relative to the folder.
pub fn list_files(storage: &Storage, location: &Location) -> Result<Vec<Listed>> {
    if let Some(meta) = storage.head(location)? {
        let name = meta.location.filename().unwrap_or_default().to_string();
        let format = InputFormat::of(&name).ok_or_else(|| {
            Error::setting_message(
                Setting::Input,
                format!(
                    "input {} is neither *.parquet nor *.csv; name the file by its format or pass its folder",
                    location.shown
                ),
            )
        })?;
        return Ok(vec![Listed { meta, relative: name, format }]);
    }
    if let Some(path) = &location.local
        && path.is_dir()
    {
        refuse_dangling_links(path)?;
    }
    let objects = storage.list_recursive(location)?;
    let any_objects = !objects.is_empty();
    let mut found: Vec<Listed> = objects
        .into_iter()
        .filter_map(|meta| {
            let parts: Vec<String> =
                meta.location.prefix_match(location.path())?.map(|p| p.as_ref().to_string()).collect();
            if parts.iter().any(|p| skipped(p)) {
                return None;
            }
            let format = InputFormat::of(parts.last()?);
            if format.is_none() {
                tracing::debug!(file = %meta.location, "skipping: not *.parquet or *.csv");
            }
            Some(Listed { relative: parts.join("/"), format: format?, meta })
        })
        .collect();
    // Byte-wise order of the relative path is the documented file order (ties keep it).
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    if found.is_empty() {
        let exists = match &location.local {
            Some(path) => path.exists(),
            None => any_objects,
        };
        if !exists {
            return Err(Error::InputNotFound {
                location: location.shown.clone(),
                hint: match location.local {
                    Some(_) => format!("no such file or folder; check {}", Setting::Input),
                    None => format!("no objects under this prefix; check {}", Setting::Input),
                },
            });
        }
        return Err(Error::NoInputFiles { location: location.shown.clone() });
    }
    Ok(found)
}

/// Fails on a symbolic link below `folder` whose target does not exist. The store's listing
/// skips such links without a word, and a training set would silently lack a file. Folders are
/// walked without following links (a linked folder is listed by the store, which detects loops);
/// names starting with `_` or `.` are skipped, as the listing skips them.
fn refuse_dangling_links(folder: &std::path::Path) -> Result<()> {
    let entries = std::fs::read_dir(folder).map_err(|e| Error::storage("cannot list", folder.display(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage("cannot list", folder.display(), e))?;
        if skipped(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| Error::storage("cannot inspect", path.display(), e))?;
        if kind.is_dir() {
            refuse_dangling_links(&path)?;
        } else if kind.is_symlink() && std::fs::metadata(&path).is_err() {
            let target = std::fs::read_link(&path).map(|t| t.display().to_string()).unwrap_or_default();
            return Err(Error::InputNotFound {
                location: path.display().to_string(),
                hint: format!(
                    "a symbolic link in the input folder points to {target}, which does not exist; fix or remove the link"
                ),
            });
        }
    }
    Ok(())
}

fn corrupt(file: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::corrupt(file, e)
}

/// Maps a decoder error to a storage error when it came from storage, else to corrupt input.
fn read_error(file: &str, e: parquet::errors::ParquetError) -> Error {
    match e {
        parquet::errors::ParquetError::External(inner) => match inner.downcast::<object_store::Error>() {
            Ok(store) => storage_error("cannot read", file, *store),
            Err(other) => {
                Error::CorruptInput { file: file.to_string(), message: other.to_string(), source: Some(other) }
            }
        },
        other => corrupt(file, other),
    }
}

/// Reads the schema of every file: Parquet footers concurrently, CSV inferred over the whole file.
pub fn describe(storage: &Storage, location: &Location, files: Vec<Listed>, delimiter: u8) -> Result<Vec<SourceFile>> {
    let footers: Vec<Option<ArrowReaderMetadata>> = storage.block_on(
        futures::stream::iter(files.iter().map(|file| async move {
            if file.format != InputFormat::Parquet {
                return Ok(None);
            }
            let shown = location.show(&file.meta.location);
            let mut reader = storage.parquet_reader(location, &file.meta);
            ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new())
                .await
                .map(Some)
                .map_err(|e| read_error(&shown, e))
        }))
        .buffered(FOOTER_CONCURRENCY)
        .try_collect(),
    )?;
    files
        .into_par_iter()
        .zip(footers)
        .map(|(file, footer)| {
            let shown = location.show(&file.meta.location);
            let schema = match &footer {
                Some(footer) => footer.schema().clone(),
                None => {
                    let reader = storage.stream(location, &file.meta)?;
                    let (schema, _) =
                        csv_format(delimiter).infer_schema(reader, None).map_err(|e| corrupt(&shown, e))?;
                    Arc::new(schema)
                }
            };
            Ok(SourceFile {
                meta: file.meta,
                shown,
                relative: file.relative,
                format: file.format,
                schema,
                parquet: footer,
            })
        })
        .collect()
}

fn csv_format(delimiter: u8) -> Format {
    Format::default().with_header(true).with_delimiter(delimiter)
}

/// Refuses CSV inputs for an engine that reads Parquet only (`engine` is its engine name).
pub fn require_parquet(files: &[SourceFile], engine: &str) -> Result<()> {
    match files.iter().find(|f| f.format != InputFormat::Parquet) {
        Some(csv) => Err(Error::setting_message(
            Setting::Engine,
            format!(
                "the {engine} engine reads Parquet; {} is CSV. Convert it, or use {}",
                csv.shown,
                Setting::Engine.with("local")
            ),
        )),
        None => Ok(()),
    }
}

/// For engines that read the files in SQL (Athena, Spark): refuses a needed column that is
/// integer in some files and floating-point in others. Such an engine cannot read one column
/// as two kinds of number faithfully (measured: Spark fails in the middle of the query, DuckDB
/// reading for Athena truncated the floats), whereas the local engine widens exact integers and
/// refuses the rest value by value.
pub fn require_one_kind(files: &[SourceFile], spec: &SequenceSpec, engine: &str) -> Result<()> {
    for column in spec.needed_columns() {
        let mut first: Option<(&SourceFile, DataType)> = None;
        for file in files {
            let Ok(field) = file.schema.field_with_name(&column) else { continue };
            let data_type = normalize_type(field.data_type());
            if data_type == DataType::Null {
                continue;
            }
            match &first {
                None => first = Some((file, data_type)),
                Some((seen_in, seen)) if type_kind(seen) != type_kind(&data_type) => {
                    return Err(Error::UnsupportedType {
                        column,
                        message: format!(
                            "it is {seen} in {} but {data_type} in {}; the {engine} engine cannot read one column as two kinds of number faithfully. Give the column one type in every file, or use {}, which widens integers to floats where each value converts exactly",
                            seen_in.shown,
                            file.shown,
                            Setting::Engine.with("local")
                        ),
                    });
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Binds the job's spec to the columns the files share, widening numeric types that differ
/// between files (Int32 in one, Int64 in another) and naming the file when a column is missing.
pub fn resolve(job: &SequenceJob, files: &[SourceFile]) -> Result<ResolvedSpec> {
    let spec = &job.spec;
    for file in files {
        seqhouse_core::resolve::refuse_shadowed_columns(spec, file.schema.fields().iter().map(|f| f.name().as_str()))?;
    }
    let mut fields: Vec<Field> = Vec::new();
    for column in spec.needed_columns() {
        let is_key = spec.entity.contains(&column) || spec.order_by.contains(&column);
        let mut unified: Option<(DataType, &SourceFile)> = None;
        for file in files {
            let field = file.schema.field_with_name(&column).map_err(|_| Error::ColumnNotFound {
                column: column.clone(),
                file: file.shown.clone(),
                available: file.schema.fields().iter().map(|f| f.name().clone()).collect(),
            })?;
            let data_type = normalize_type(field.data_type());
            unified = Some(match unified {
                None => (data_type, file),
                Some((seen, first)) => match unify_types(&seen, &data_type) {
                    Some(_)
                        if is_key
                            && ![&seen, &data_type].contains(&&DataType::Null)
                            && type_kind(&seen) != type_kind(&data_type) =>
                    {
                        return Err(Error::UnsupportedType {
                            column,
                            message: format!(
                                "it is {seen} in {} but {data_type} in {}; an {} or {} column must be of one kind in every file (as floating-point, integer ids and times above 2^53 would merge or reorder). Cast it to one type upstream",
                                first.shown,
                                file.shown,
                                Setting::Entity,
                                Setting::OrderBy
                            ),
                        });
                    }
                    Some(t) => (t, first),
                    None => {
                        return Err(Error::UnsupportedType {
                            column,
                            message: format!(
                                "it is {seen} in {} but {data_type} in {}; give it one type in every file",
                                first.shown, file.shown
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
    let label = if files.len() == 1 { files[0].shown.clone() } else { format!("{} input files", files.len()) };
    ResolvedSpec::for_job(job, &Schema::new(fields), &label)
}

/// The decoded input: batches in input order, the file index of each, and the manifest entries.
pub struct Decoded {
    /// Batches in input order.
    pub batches: Vec<RecordBatch>,
    /// For each batch, the index of its file.
    pub batch_file: Vec<usize>,
    /// One manifest entry per file.
    pub files: Vec<InputFile>,
}

/// Decodes every file's needed columns, in file order, cast to the resolved types. Files, and
/// the row groups of each Parquet file, are decoded in parallel; Parquet fetches only the needed
/// columns' byte ranges.
pub fn read_all(
    storage: &Storage,
    location: &Location,
    files: &[SourceFile],
    resolved: &ResolvedSpec,
    delimiter: u8,
    on_file_done: &(dyn Fn() + Sync),
) -> Result<Decoded> {
    let per_file: Vec<(Vec<RecordBatch>, InputFile)> = files
        .par_iter()
        .map(|file| {
            let batches = read_one(storage, location, file, resolved, delimiter)?;
            on_file_done();
            let info = file.manifest_entry(batches.iter().map(|b| b.num_rows() as u64).sum());
            Ok((batches, info))
        })
        .collect::<Result<_>>()?;
    let mut decoded = Decoded { batches: Vec::new(), batch_file: Vec::new(), files: Vec::new() };
    for (i, (batches, info)) in per_file.into_iter().enumerate() {
        decoded.batch_file.extend(std::iter::repeat_n(i, batches.len()));
        decoded.batches.extend(batches);
        decoded.files.push(info);
    }
    Ok(decoded)
}

fn read_one(
    storage: &Storage,
    location: &Location,
    file: &SourceFile,
    resolved: &ResolvedSpec,
    delimiter: u8,
) -> Result<Vec<RecordBatch>> {
    let schema = &resolved.input_schema;
    let raw: Vec<RecordBatch> = match &file.parquet {
        // Row groups are fetched and decoded in parallel (a big log is often one file), and
        // their batches concatenated in file order.
        Some(footer) => (0..footer.metadata().num_row_groups())
            .into_par_iter()
            .map(|group| decode_row_group(storage, location, file, schema, group))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect(),
        None => csv_batches(storage, location, file, schema, delimiter)?
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| corrupt(&file.shown, e))?,
    };
    raw.iter().map(|batch| conform_to(schema, batch, &file.shown)).collect()
}

/// Positions in `file` of the columns of `schema`.
fn file_indices(file: &SourceFile, schema: &SchemaRef) -> Vec<usize> {
    schema
        .fields()
        .iter()
        .map(|f| file.schema.index_of(f.name()).expect("resolve checked every file has every column"))
        .collect()
}

/// The columns of `schema` in one row group of a Parquet file, as decoded (not yet conformed).
fn decode_row_group(
    storage: &Storage,
    location: &Location,
    file: &SourceFile,
    schema: &SchemaRef,
    group: usize,
) -> Result<Vec<RecordBatch>> {
    let footer = file.parquet.clone().expect("a Parquet file");
    let reader = storage.parquet_reader(location, &file.meta);
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, footer);
    let mask = ProjectionMask::roots(builder.parquet_schema(), file_indices(file, schema));
    let stream = builder
        .with_projection(mask)
        .with_batch_size(BATCH_ROWS)
        .with_row_groups(vec![group])
        .build()
        .map_err(|e| read_error(&file.shown, e))?;
    storage.block_on(stream.try_collect()).map_err(|e| read_error(&file.shown, e))
}

/// A CSV file's batches of the columns of `schema`, as parsed (not yet conformed).
fn csv_batches(
    storage: &Storage,
    location: &Location,
    file: &SourceFile,
    schema: &SchemaRef,
    delimiter: u8,
) -> Result<impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>>> {
    arrow::csv::ReaderBuilder::new(file.schema.clone())
        .with_format(csv_format(delimiter))
        .with_batch_size(BATCH_ROWS)
        .with_projection(file_indices(file, schema))
        .build(std::io::BufReader::with_capacity(1 << 20, storage.stream(location, &file.meta)?))
        .map_err(|e| corrupt(&file.shown, e))
}

/// Reads the columns of `schema` (some or all of `resolved.input_schema`, conformed to its
/// types) from every file, in input order, so that an input larger than memory can be streamed.
///
/// Each batch is passed through `map` as soon as it is decoded, in parallel (row groups of a
/// Parquet file are decoded in parallel, a wave at a time), and `visit` gets each wave's results
/// as `(file index, result)` in input order. How many batches make a wave depends on the thread
/// count; the batches and their order do not. Returns the files' manifest entries.
pub fn read_in_waves<T: Send>(
    storage: &Storage,
    location: &Location,
    files: &[SourceFile],
    schema: &SchemaRef,
    delimiter: u8,
    map: &(dyn Fn(RecordBatch) -> Result<T> + Sync),
    visit: &mut dyn FnMut(Vec<(usize, T)>) -> Result<()>,
) -> Result<Vec<InputFile>> {
    let wave_size = rayon::current_num_threads() * 2;
    let mut rows = vec![0u64; files.len()];
    // Conforms and maps one decoded batch, keeping its row count for the manifest.
    let mapped = |file: &SourceFile, batch: &RecordBatch| -> Result<(u64, T)> {
        Ok((batch.num_rows() as u64, map(conform_to(schema, batch, &file.shown)?)?))
    };
    let mut hand_over = |index: usize, wave: Vec<(u64, T)>| {
        rows[index] += wave.iter().map(|(n, _)| n).sum::<u64>();
        visit(wave.into_iter().map(|(_, t)| (index, t)).collect())
    };
    for (index, file) in files.iter().enumerate() {
        match &file.parquet {
            Some(footer) => {
                let groups: Vec<usize> = (0..footer.metadata().num_row_groups()).collect();
                for wave in groups.chunks(wave_size) {
                    let done = wave
                        .par_iter()
                        .map(|&group| {
                            let decoded = decode_row_group(storage, location, file, schema, group)?;
                            decoded.iter().map(|batch| mapped(file, batch)).collect::<Result<Vec<_>>>()
                        })
                        .collect::<Result<Vec<_>>>()?;
                    hand_over(index, done.into_iter().flatten().collect())?;
                }
            }
            None => {
                // About as many rows per wave as a Parquet wave of 1M-row groups.
                let batches_per_wave = wave_size * 16;
                let mut parsed = csv_batches(storage, location, file, schema, delimiter)?.peekable();
                while parsed.peek().is_some() {
                    let wave = parsed
                        .by_ref()
                        .take(batches_per_wave)
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .map_err(|e| corrupt(&file.shown, e))?;
                    let done = wave.par_iter().map(|batch| mapped(file, batch)).collect::<Result<Vec<_>>>()?;
                    hand_over(index, done)?;
                }
            }
        }
    }
    Ok(files.iter().zip(rows).map(|(file, rows)| file.manifest_entry(rows)).collect())
}

/// How big the decoded input of a job is, before reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputSize {
    /// Rows (exact for Parquet; estimated from the size of CSV files).
    pub rows: u64,
    /// Bytes the columns of the schema take once decoded to Arrow (an estimate for strings and
    /// for CSV).
    pub decoded_bytes: u64,
}

/// Estimates the decoded size of the columns of `schema` over `files`, from Parquet footers
/// (row counts, and for strings their unencoded size when the writer recorded it) and from the
/// byte size of CSV files.
pub fn estimate_size(files: &[SourceFile], schema: &SchemaRef) -> InputSize {
    let fixed_width = |data_type: &DataType| data_type.primitive_width().map(|w| w as u64);
    let row_width: u64 = schema.fields().iter().map(|f| fixed_width(f.data_type()).unwrap_or(16)).sum::<u64>().max(1);
    let mut size = InputSize { rows: 0, decoded_bytes: 0 };
    for file in files {
        let Some(footer) = &file.parquet else {
            // CSV text is about as large as the values it spells; only the needed columns count.
            let share = schema.fields().len() as f64 / file.schema.fields().len().max(1) as f64;
            let bytes = (file.meta.size as f64 * share) as u64;
            size.decoded_bytes += bytes;
            size.rows += bytes / row_width;
            continue;
        };
        let metadata = footer.metadata();
        let indices = file_indices(file, schema);
        for group in metadata.row_groups() {
            let rows = group.num_rows() as u64;
            size.rows += rows;
            for (field, &index) in schema.fields().iter().zip(&indices) {
                size.decoded_bytes += match fixed_width(field.data_type()) {
                    Some(width) => rows * width + rows / 8,
                    // Variable width: value bytes plus 4-byte offsets and validity.
                    None => {
                        let chunk = group.column(index);
                        let values = chunk.unencoded_byte_array_data_bytes().unwrap_or(0).max(0) as u64;
                        values.max(chunk.uncompressed_size().max(0) as u64) + rows * 4 + rows / 8
                    }
                };
            }
        }
    }
    size
}
