//! Vocabulary files (`--vocab`): written into an output beside its parts, and read back by
//! `--vocab-from` (see [`seqhouse_core::vocab`] for the ids and the file's columns).

use arrow::array::{RecordBatch, RecordBatchReader};
use arrow::datatypes::DataType;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use seqhouse_core::manifest::VocabularyFile;
use seqhouse_core::vocab::{VOCAB_FOLDERS, ValueCounts, Vocabulary, vocab_file};
use seqhouse_core::{Error, MANIFEST_FILE, Manifest, ResolvedSpec, Result, Setting};

use crate::publish::Target;
use crate::{Location, Storage};

/// The bytes of `vocabulary`'s file: one row group, zstd, the same bytes for the same
/// vocabulary.
pub fn file_bytes(vocabulary: &Vocabulary) -> Result<Vec<u8>> {
    let batch = vocabulary.to_batch()?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).map_err(Error::internal)?;
    writer.write(&batch).map_err(Error::internal)?;
    writer.close().map_err(Error::internal)?;
    Ok(bytes)
}

/// The vocabularies of `resolved`'s `--vocab` features, in its order, for a job on `subset`
/// (if any): read from `--vocab-from`, else fitted on the values `count` counts (the events
/// of the job's first split, or all of them when unsplit) and recorded as fitted on that split,
/// or on `subset`. Every engine gets its vocabularies here, so that all fit them alike.
pub fn for_job(
    storage: &Storage,
    resolved: &ResolvedSpec,
    subset: Option<&str>,
    count: &mut dyn FnMut(&mut [ValueCounts]) -> Result<()>,
) -> Result<Vec<Vocabulary>> {
    let spec = &resolved.spec;
    if spec.vocab.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(from) = &spec.vocab_from {
        return read_from(storage, from, resolved);
    }
    let mut counts = (spec.vocab.iter())
        .map(|vocab| ValueCounts::new(resolved.feature_input_type(&vocab.name)))
        .collect::<Result<Vec<_>>>()?;
    count(&mut counts)?;
    let fitted_on = spec.output_names()[0].or(subset).map(str::to_string);
    (counts.into_iter().zip(&spec.vocab))
        .map(|(counts, vocab)| {
            let mut vocabulary = counts.fit(vocab)?;
            vocabulary.fitted_on = fitted_on.clone();
            Ok(vocabulary)
        })
        .collect()
}

/// Adds to `counts` the grouped counts an engine wrote as Parquet files under `folder`: a
/// `value` column and a `count` column, in any order of rows and files. Files whose names
/// start with `_` or `.` (an engine's markers and checksums) are not data and are skipped.
pub fn add_counts_in(storage: &Storage, folder: &Location, counts: &mut ValueCounts) -> Result<()> {
    use arrow::array::AsArray;
    for object in storage.list_recursive(folder)? {
        let name = object.location.filename().unwrap_or_default();
        if name.starts_with(['_', '.']) {
            continue;
        }
        let location = folder.object(&object.location);
        let batch = parquet_batch(storage.get(&location)?).map_err(|e| Error::corrupt(&location.shown, e))?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .ok_or_else(|| Error::internal(format!("the value counts {} have no column '{name}'", location.shown)))
        };
        let (values, number) = (column("value")?, column("count")?);
        let number = arrow::compute::cast(number, &DataType::Int64).map_err(Error::internal)?;
        let number: Vec<u64> =
            number.as_primitive::<arrow::datatypes::Int64Type>().iter().map(|c| c.unwrap_or(0) as u64).collect();
        counts.add_counted(values, &number)?;
    }
    Ok(())
}

/// Writes each of `vocabularies` into `target` and returns their manifest entries.
pub fn write_into(storage: &Storage, target: &Target, vocabularies: &[Vocabulary]) -> Result<Vec<VocabularyFile>> {
    vocabularies
        .iter()
        .map(|vocabulary| {
            let bytes = file_bytes(vocabulary)?;
            let path = target.vocab_name(&vocabulary.feature);
            let sha256 = VocabularyFile::digest(&bytes);
            target.put(storage, &path, bytes)?;
            Ok(VocabularyFile {
                feature: vocabulary.feature.clone(),
                path,
                sha256,
                values: vocabulary.len() as u64,
                fitted_on: vocabulary.fitted_on.clone(),
            })
        })
        .collect()
}

/// The vocabularies of `resolved`'s `--vocab` features (in its order) from the folder
/// `--vocab-from` names: a seqhouse output (its manifest says where each file is, and its
/// digest, which is checked), or a folder holding `_vocab/NAME.parquet` (`vocab/NAME.parquet`
/// as earlier versions wrote it) or `NAME.parquet`.
pub fn read_from(storage: &Storage, from: &str, resolved: &ResolvedSpec) -> Result<Vec<Vocabulary>> {
    let folder = storage.locate(from)?;
    let manifest_location = folder.child(MANIFEST_FILE);
    let manifest: Option<Manifest> = match storage.head(&manifest_location)? {
        Some(_) => {
            let bytes = storage.get(&manifest_location)?;
            Some(serde_json::from_slice(&bytes).map_err(|e| {
                Error::setting(
                    Setting::VocabFrom,
                    format!(
                        "{} is not a seqhouse manifest ({e}); point it at an output folder",
                        manifest_location.shown
                    ),
                )
            })?)
        }
        None => None,
    };
    let spec = &resolved.spec;
    spec.vocab
        .iter()
        .map(|vocab| {
            let feature = &vocab.name;
            let column_type = resolved.feature_input_type(feature);
            let (location, expected, fitted_on) = match &manifest {
                Some(manifest) => {
                    let Some(entry) = manifest.vocabularies.iter().find(|v| &v.feature == feature) else {
                        return Err(Error::setting(
                            Setting::VocabFrom,
                            format!(
                                "{} lists no vocabulary of '{feature}' (it has {}); fit one, or drop {}",
                                manifest_location.shown,
                                listed_features(manifest),
                                Setting::Vocab.with(vocab)
                            ),
                        ));
                    };
                    (folder.child(&entry.path), Some(entry.sha256.clone()), entry.fitted_on.clone())
                }
                None => (find_bare(storage, &folder, feature)?, None, None),
            };
            let bytes = storage.get(&location)?;
            if let Some(expected) = expected
                && VocabularyFile::digest(&bytes) != expected
            {
                return Err(Error::setting(
                    Setting::VocabFrom,
                    format!(
                        "{} is not the file its manifest lists (its SHA-256 differs): it was changed after it was written; publish that output again",
                        location.shown
                    ),
                ));
            }
            let mut vocabulary = decode(feature, bytes, column_type, &location.shown)?;
            vocabulary.fitted_on = fitted_on;
            Ok(vocabulary)
        })
        .collect()
}

/// The vocabulary file of `feature` that the published output at `output` lists, checked
/// against the manifest's digest, as one batch (`id`, `value`, `count`): for readers that
/// turn ids back into values.
pub fn read_published(storage: &Storage, output: &str, feature: &str) -> Result<arrow::array::RecordBatch> {
    let (folder, manifest) = crate::read_manifest(storage, output)?;
    let Some(entry) = manifest.vocabularies.iter().find(|v| v.feature == feature) else {
        return Err(Error::InputNotFound {
            location: output.to_string(),
            hint: format!("its manifest lists no vocabulary of '{feature}' (it has {})", listed_features(&manifest)),
        });
    };
    let location = folder.child(&entry.path);
    let bytes = storage.get(&location)?;
    if VocabularyFile::digest(&bytes) != entry.sha256 {
        return Err(Error::corrupt_message(
            &location.shown,
            "is not the file its manifest lists (its SHA-256 differs): it was changed after it was written",
        ));
    }
    parquet_batch(bytes).map_err(|e| Error::corrupt(&location.shown, e))
}

/// The Parquet file `bytes` as one batch.
fn parquet_batch(bytes: Vec<u8>) -> std::result::Result<RecordBatch, ParquetError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))?.build()?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(arrow::compute::concat_batches(&schema, &batches)?)
}

/// The features `manifest` lists vocabularies of, for an error saying which are there.
fn listed_features(manifest: &Manifest) -> String {
    let listed: Vec<&str> = manifest.vocabularies.iter().map(|v| v.feature.as_str()).collect();
    if listed.is_empty() { "none".to_string() } else { listed.join(", ") }
}

/// `FOLDER/_vocab/NAME.parquet`, else `FOLDER/vocab/NAME.parquet` (earlier versions), else
/// `FOLDER/NAME.parquet`: the first that exists.
fn find_bare(storage: &Storage, folder: &Location, feature: &str) -> Result<Location> {
    let mut candidates: Vec<Location> =
        VOCAB_FOLDERS.iter().map(|vocab_folder| folder.child(&vocab_file(vocab_folder, feature))).collect();
    candidates.push(folder.child(&format!("{feature}.parquet")));
    for candidate in &candidates {
        if storage.head(candidate)?.is_some() {
            return Ok(candidate.clone());
        }
    }
    let looked: Vec<&str> = candidates.iter().map(|c| c.shown.as_str()).collect();
    Err(Error::setting(
        Setting::VocabFrom,
        format!(
            "{} holds no vocabulary of '{feature}': looked for {}, {}",
            folder.shown,
            folder.child(MANIFEST_FILE).shown,
            looked.join(", ")
        ),
    ))
}

fn decode(feature: &str, bytes: Vec<u8>, column_type: &DataType, shown: &str) -> Result<Vocabulary> {
    let batch = parquet_batch(bytes).map_err(|e| {
        Error::setting(Setting::VocabFrom, format!("cannot read the vocabulary {shown} of '{feature}': {e}"))
    })?;
    Vocabulary::from_batch(feature, &batch, column_type, shown)
}
