//! Writing part files: sequences encoded as Parquet, several row groups in parallel.
//! Publishing them is [`seqhouse_storage::publish::Target`]'s job.

use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnChunk, compute_leaves};
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;
use seqhouse_core::manifest::OutputPart;
use seqhouse_core::{Error, Result, Sequencer};

use seqhouse_storage::Storage;
use seqhouse_storage::publish::{Target, part_name};

/// Output compression of the part files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCompression {
    /// zstd at a level (1..=22); the default is level 3.
    Zstd(i32),
    /// Snappy.
    Snappy,
    /// gzip at a level (0..=9).
    Gzip(u32),
    /// LZ4 (raw).
    Lz4,
    /// No compression.
    None,
}

impl Default for OutputCompression {
    fn default() -> Self {
        OutputCompression::Zstd(3)
    }
}

impl std::str::FromStr for OutputCompression {
    type Err = Error;
    /// `zstd`, `zstd:LEVEL`, `snappy`, `gzip`, `gzip:LEVEL`, `lz4`, `none`.
    fn from_str(text: &str) -> Result<Self> {
        let (codec, level) = match text.split_once(':') {
            Some((codec, level)) => (codec, Some(level)),
            None => (text, None),
        };
        let level_of = |default: i64| -> Result<i64> {
            level.map_or(Ok(default), |l| {
                l.parse().map_err(|_| Error::invalid(format!("--compression level '{l}' is not a number")))
            })
        };
        let parsed = match (codec.to_ascii_lowercase().as_str(), level) {
            ("zstd", _) => OutputCompression::Zstd(level_of(3)? as i32),
            ("gzip", _) => OutputCompression::Gzip(level_of(6)? as u32),
            ("snappy", None) => OutputCompression::Snappy,
            ("lz4", None) => OutputCompression::Lz4,
            ("none" | "uncompressed", None) => OutputCompression::None,
            _ => {
                return Err(Error::invalid(format!(
                    "--compression '{text}' is not one of zstd[:LEVEL], snappy, gzip[:LEVEL], lz4, none"
                )));
            }
        };
        parsed.to_parquet()?;
        Ok(parsed)
    }
}

impl OutputCompression {
    fn to_parquet(self) -> Result<Compression> {
        let bad_level = |e: parquet::errors::ParquetError| Error::invalid(format!("--compression: {e}"));
        Ok(match self {
            OutputCompression::Zstd(level) => Compression::ZSTD(ZstdLevel::try_new(level).map_err(bad_level)?),
            OutputCompression::Gzip(level) => Compression::GZIP(GzipLevel::try_new(level).map_err(bad_level)?),
            OutputCompression::Snappy => Compression::SNAPPY,
            OutputCompression::Lz4 => Compression::LZ4_RAW,
            OutputCompression::None => Compression::UNCOMPRESSED,
        })
    }
}

/// How windows are laid out in part files.
#[derive(Debug, Clone, Copy)]
pub struct PartLayout {
    /// Windows per Parquet row group.
    pub rows_per_row_group: usize,
    /// Windows per part file.
    pub rows_per_part: usize,
}

impl PartLayout {
    /// About a million values per column per row group (a good size for readers and for memory),
    /// eight row groups per part unless `rows_per_part` is given.
    pub fn for_length(sequence_length: usize, rows_per_part: Option<usize>) -> Self {
        let per_group = (1 << 20) / sequence_length.max(1);
        let rows_per_row_group = per_group.clamp(1, 64 * 1024);
        let rows_per_part = rows_per_part.unwrap_or(rows_per_row_group * 8).max(1);
        PartLayout { rows_per_row_group: rows_per_row_group.min(rows_per_part), rows_per_part }
    }
}

/// Writes every window of `sequencer` as parts into `target`.
///
/// Parts, the row groups of each part and the columns of each row group are all encoded in
/// parallel (parquet's `ArrowColumnWriter`), then each part's row groups are appended in order.
/// The layout depends only on the window count, never on the thread count, so neither do the
/// bytes. An empty job still writes one empty part so the folder carries its schema.
pub fn write_parts(
    sequencer: &Sequencer,
    storage: &Storage,
    target: &Target,
    layout: PartLayout,
    compression: OutputCompression,
    on_rows_done: &(dyn Fn(u64) + Sync),
) -> Result<Vec<OutputPart>> {
    let total = sequencer.num_windows();
    let part_count = total.div_ceil(layout.rows_per_part).max(1);
    let props = WriterProperties::builder()
        .set_compression(compression.to_parquet()?)
        .set_max_row_group_row_count(Some(layout.rows_per_row_group))
        .build();
    let schema = sequencer.output_schema();
    let location = target.location();
    (0..part_count)
        .into_par_iter()
        .map(|part| {
            let start = part * layout.rows_per_part;
            let end = (start + layout.rows_per_part).min(total);
            let name = part_name(part);
            let shown = format!("{}/{name}", location.shown);
            let encode_err = |e: parquet::errors::ParquetError| Error::storage("cannot encode", &shown, e);
            // ArrowWriter sets up the file (and embeds the Arrow schema); the row groups are
            // encoded below, in parallel, by column writers from its factory.
            let (mut file, factory) = ArrowWriter::try_new(Vec::new(), schema.clone(), Some(props.clone()))
                .and_then(|w| w.into_serialized_writer())
                .map_err(encode_err)?;
            let groups: Vec<(usize, usize)> = (start..end)
                .step_by(layout.rows_per_row_group)
                .map(|at| (at, (at + layout.rows_per_row_group).min(end)))
                .collect();
            let encoded: Vec<Vec<ArrowColumnChunk>> = groups
                .par_iter()
                .enumerate()
                .map(|(index, &(from, upto))| {
                    let batch = sequencer.build(from..upto)?;
                    let mut leaves = Vec::new();
                    for (field, column) in schema.fields().iter().zip(batch.columns()) {
                        leaves.extend(compute_leaves(field, column).map_err(encode_err)?);
                    }
                    let writers = factory.create_column_writers(index).map_err(encode_err)?;
                    let chunks = writers
                        .into_par_iter()
                        .zip(leaves)
                        .map(|(mut writer, leaf)| {
                            writer.write(&leaf)?;
                            writer.close()
                        })
                        .collect::<parquet::errors::Result<Vec<_>>>()
                        .map_err(encode_err)?;
                    on_rows_done((upto - from) as u64);
                    Ok(chunks)
                })
                .collect::<Result<_>>()?;
            for chunks in encoded {
                let mut row_group = file.next_row_group().map_err(encode_err)?;
                for chunk in chunks {
                    chunk.append_to_row_group(&mut row_group).map_err(encode_err)?;
                }
                row_group.close().map_err(encode_err)?;
            }
            let bytes = file.into_inner().map_err(encode_err)?;
            let size = bytes.len() as u64;
            target.put(storage, &name, bytes)?;
            Ok(OutputPart { path: name, rows: (end - start) as u64, bytes: size })
        })
        .collect()
}
