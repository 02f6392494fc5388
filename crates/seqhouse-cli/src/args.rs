//! The command line and the config file, merged into one validated request.
// The doc comments below are the help text users see; `[:LEVEL]` there is option syntax, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

use seqhouse_core::{FeatureSpec, FillNull, Mode, NullKeyPolicy, Padding, SequenceRequest, SequenceSpec};
use seqhouse_local::{LocalConfig, OutputCompression};

/// Turns event logs into fixed-length, padded sequence arrays for sequence models.
#[derive(Debug, Parser)]
#[command(name = "seqhouse", version, about, propagate_version = true)]
pub struct Cli {
    /// Print only warnings and errors.
    // Listed after the subcommand's own options, not between its first two.
    #[arg(short, long, global = true, conflicts_with = "verbose", display_order = 1000)]
    pub quiet: bool,
    /// More detail (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 1001)]
    pub verbose: u8,
    // What to run; not a doc comment, which clap would turn into help text.
    #[allow(missing_docs)]
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Group events by entity, order them, cut them into windows of N, pad and write Parquet.
    #[command(after_long_help = SEQUENCE_EXAMPLES)]
    Sequence(Box<SequenceArgs>),
}

const SEQUENCE_EXAMPLES: &str = "\
Examples:
  # Knowledge tracing: each pupil's answers in windows of 200, padded with -1
  seqhouse sequence --input data/events.parquet --output out/kt \\
      --entity user_id --order-by log_order \\
      --feature skill_id=-1 --feature correct=-1 -n 200 --min-length 3

  # Train/validation/test folders under one root -> OUT/train_sequenced_50/, ...
  seqhouse sequence --input data --output out --subsets train,validation,test \\
      --entity pupil_id --order-by timestamp,row_id --feature exercise_id=0 -n 50

  # Next-item training: one window per event, padded before
  seqhouse sequence --input ratings.csv --output out/next --entity userId \\
      --order-by timestamp --feature movieId=0 -n 20 --mode prefix --padding pre

  # The same options kept in a file (flags given on the command line win)
  seqhouse sequence --config job.toml --overwrite

Output: one row per window: the entity column(s), sequence_index, sequence_length,
NAME_sequence (N values each) and is_pad_sequence (N int8: 1 = padding), as
part-NNNNN.parquet files and a _manifest.json written last.";

/// Options of `seqhouse sequence`. Every option can also be set in `--config FILE.toml` under
/// its long name (`sequence-length = 200`, `feature = ["skill_id=-1"]`); flags override the file.
#[derive(Debug, Default, Args)]
pub struct SequenceArgs {
    /// Input: a file or folder, local or s3://BUCKET/PREFIX (read recursively: *.parquet, *.csv; names starting with '_' or '.' are skipped; files in path order).
    #[arg(long, visible_aliases = ["data-location", "s3_data_location"], value_name = "PATH")]
    pub input: Option<String>,

    /// Output folder, local or s3://BUCKET/PREFIX; fails if it holds data, unless --overwrite.
    #[arg(long, visible_aliases = ["output-location", "output_s3_location"], value_name = "PATH")]
    pub output: Option<String>,

    /// Grouping column(s), comma-separated or repeated, e.g. user_id or user_id,course_id.
    #[arg(long, value_delimiter = ',', value_name = "COL[,COL]")]
    pub entity: Vec<String>,

    /// Ordering column(s), ascending; ties keep input order (file order, then row order).
    #[arg(long, value_delimiter = ',', value_name = "COL[,COL]")]
    pub order_by: Vec<String>,

    /// A feature to sequence as NAME_sequence, padded with PAD (parsed as the column's type; default 0, 0.0, false, "" or the epoch). Repeatable.
    #[arg(long, value_name = "NAME[=PAD]")]
    pub feature: Vec<String>,

    /// N, the length of every output array (>= 1).
    #[arg(long, short = 'n', visible_alias = "sequence_length", value_name = "N")]
    pub sequence_length: Option<usize>,

    /// How windows are cut: chunk ([0,N), [N,2N), ...), sliding (starts 0, S, 2S, ...), last (the most recent N), prefix (one window per event, ending at it). [default: chunk]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,

    /// Step between sliding windows, 1 <= S <= N (sliding mode only). [default: 1]
    #[arg(long, value_name = "S")]
    pub stride: Option<usize>,

    /// Pad after the real events (post) or before them (pre). [default: post]
    #[arg(long, value_name = "post|pre")]
    pub padding: Option<String>,

    /// Drop windows with fewer than M real events. [default: 1]
    #[arg(long, value_name = "M")]
    pub min_length: Option<usize>,

    /// Subsets: subset s reads INPUT/s/ and writes OUTPUT/s_sequenced_N/.
    #[arg(long, value_delimiter = ',', value_name = "a,b,...")]
    pub subsets: Vec<String>,

    /// Replace nulls inside real events of a feature with VALUE (default: keep them as nulls). Repeatable.
    #[arg(long, value_name = "NAME=VALUE")]
    pub fill_null: Vec<String>,

    /// Rows with a null entity or order-by value: error, or drop them (counted in the manifest). [default: error]
    #[arg(long, value_name = "error|drop")]
    pub on_null_key: Option<String>,

    /// Replace an existing output folder (only one seqhouse wrote).
    #[arg(long)]
    pub overwrite: bool,

    /// A TOML file with any of these options under their long names; flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,

    /// CSV field delimiter (one character, or 'tab'). [default: ,]
    #[arg(long, value_name = "C")]
    pub csv_delimiter: Option<String>,

    /// Worker threads; the output is byte-identical for any count. [default: all cores]
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,

    /// Output compression: zstd[:LEVEL], snappy, gzip[:LEVEL], lz4, none. [default: zstd:3]
    #[arg(long, value_name = "CODEC")]
    pub compression: Option<String>,

    /// Windows per output part file. [default: about 8M values per column]
    #[arg(long, value_name = "ROWS")]
    pub rows_per_part: Option<usize>,

    /// Peak memory of a local job, e.g. 2GiB, 512MiB (K/M/G/T and KiB.. are powers of 1024; KB/MB/GB/TB powers of 1000). A larger job is split by entity and spilled to --spill-dir; the output is the same. [default: 75% of the machine's memory]
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Folder for the spill files of a job larger than --memory-limit. [default: the system temp folder, TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<std::path::PathBuf>,

    /// Where the job runs: local (this machine), athena (pushed down to Amazon Athena as SQL) or spark (pushed down to Spark through Spark Connect). [default: local]
    #[arg(long, value_name = "local|athena|spark", env = "SEQHOUSE_ENGINE", help_heading = "Engine")]
    pub engine: Option<String>,

    /// Print what the engine would do (the SQL a push-down engine would run; the local
    /// engine's input, memory plan and output), without doing it.
    #[arg(long, help_heading = "Engine")]
    pub explain: bool,

    /// Athena workgroup. [default: primary]
    #[arg(long, value_name = "NAME", help_heading = "Athena")]
    pub athena_workgroup: Option<String>,

    /// Athena database for the temporary table. [default: default]
    #[arg(long, value_name = "NAME", help_heading = "Athena")]
    pub athena_database: Option<String>,

    /// Athena query result location, s3://... [default: the workgroup's]
    #[arg(long, value_name = "S3_URL", help_heading = "Athena")]
    pub athena_results: Option<String>,

    /// Read this existing table (db.table or table) instead of a temporary table over --input.
    #[arg(long, value_name = "TABLE", help_heading = "Athena")]
    pub athena_table: Option<String>,

    /// Athena endpoint URL. [default: AWS_ENDPOINT_URL_ATHENA, AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL", help_heading = "Athena")]
    pub athena_endpoint: Option<String>,

    /// First poll interval in seconds; later polls back off up to 5 s. [default: 0.5]
    #[arg(long, value_name = "SECS", help_heading = "Athena")]
    pub athena_poll_interval: Option<f64>,

    /// A query running longer than this many seconds is cancelled and the run fails. [default: 3600]
    #[arg(long, value_name = "SECS", help_heading = "Athena")]
    pub athena_timeout: Option<f64>,

    /// Spark Connect server, sc://HOST[:PORT]. [default: sc://localhost:15002]
    #[arg(long, value_name = "URL", env = "SPARK_REMOTE", help_heading = "Spark")]
    pub spark_remote: Option<String>,

    /// S3-compatible endpoint URL (MinIO, Ceph, a local server). [default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS]
    #[arg(long, value_name = "URL", help_heading = "S3")]
    pub s3_endpoint: Option<String>,

    /// S3 region. [default: AWS_REGION or the AWS profile, else us-east-1]
    #[arg(long, value_name = "REGION", help_heading = "S3")]
    pub s3_region: Option<String>,

    /// Path-style S3 addressing (ENDPOINT/BUCKET/KEY). [default: on with a custom endpoint, off for AWS]
    #[arg(long, value_name = "true|false", num_args = 0..=1, default_missing_value = "true", help_heading = "S3")]
    pub s3_path_style: Option<bool>,

    /// Timeout of one S3 request in seconds; a stalled request is cut and retried. [default: 30]
    #[arg(long, value_name = "SECS", help_heading = "S3")]
    pub s3_timeout: Option<f64>,

    /// Retries of a failed S3 request (5xx, throttling, timeouts, dropped connections), with exponential backoff. [default: 10]
    #[arg(long, value_name = "N", help_heading = "S3")]
    pub s3_max_retries: Option<usize>,
}

/// `--config` file contents: the same options, kebab-case, unknown keys rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ConfigFile {
    // The flags' aliases are keys too (the same names in both places).
    #[serde(alias = "data-location", alias = "s3_data_location")]
    input: Option<String>,
    #[serde(alias = "output-location", alias = "output_s3_location")]
    output: Option<String>,
    entity: Option<OneOrMany>,
    order_by: Option<OneOrMany>,
    feature: Option<OneOrMany>,
    #[serde(alias = "sequence_length")]
    sequence_length: Option<usize>,
    mode: Option<String>,
    stride: Option<usize>,
    padding: Option<String>,
    min_length: Option<usize>,
    subsets: Option<OneOrMany>,
    fill_null: Option<OneOrMany>,
    on_null_key: Option<String>,
    overwrite: Option<bool>,
    csv_delimiter: Option<String>,
    threads: Option<usize>,
    compression: Option<String>,
    rows_per_part: Option<usize>,
    memory_limit: Option<String>,
    spill_dir: Option<std::path::PathBuf>,
    s3_endpoint: Option<String>,
    s3_region: Option<String>,
    s3_path_style: Option<bool>,
    s3_timeout: Option<f64>,
    s3_max_retries: Option<usize>,
    engine: Option<String>,
    athena_workgroup: Option<String>,
    athena_database: Option<String>,
    athena_results: Option<String>,
    athena_table: Option<String>,
    athena_endpoint: Option<String>,
    athena_poll_interval: Option<f64>,
    athena_timeout: Option<f64>,
    spark_remote: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// A single string is comma-separated like its flag; a list is taken item by item.
    fn into_vec(self, split_commas: bool) -> Vec<String> {
        match self {
            OneOrMany::One(s) if split_commas => s.split(',').map(str::to_string).collect(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A config file error as one line: the file, the line, what is wrong, and for an unknown key
/// the closest valid one (toml's own text squashes an excerpt and every key name into it).
fn config_error(path: &std::path::Path, text: &str, error: &toml::de::Error) -> String {
    let line = error.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
    let message = error.message().trim();
    let unknown = message.strip_prefix("unknown field `").and_then(|rest| rest.split_once('`'));
    let Some((key, rest)) = unknown else {
        // serde's words for a value that is neither a string nor a list of them.
        let message = if message.contains("untagged enum OneOrMany") {
            "expected a string or a list of strings"
        } else {
            message
        };
        return format!("--config {}{at}: {message}", path.display());
    };
    let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let closest = valid.iter().min_by_key(|candidate| edit_distance(key, candidate));
    match closest {
        Some(closest) => format!(
            "--config {}{at}: unknown field `{key}`; did you mean `{closest}`? (the keys are the long options of `seqhouse sequence`)",
            path.display()
        ),
        None => format!("--config {}{at}: unknown field `{key}`", path.display()),
    }
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A usage error: bad flags or config (exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// Which engine runs the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// This machine.
    Local,
    /// Amazon Athena.
    Athena,
    /// Apache Spark, through Spark Connect.
    Spark,
}

/// What `seqhouse sequence` runs: the request for the orchestrator and the engine settings.
#[derive(Debug)]
pub struct Resolved {
    /// The engine-independent request.
    pub request: SequenceRequest,
    /// The engine.
    pub engine: Engine,
    /// Print what the engine would do instead of doing it.
    pub explain: bool,
    /// Settings of the local engine (and the S3 settings every engine uses).
    pub local: LocalConfig,
    /// Settings of the Athena engine.
    pub athena: seqhouse_athena::AthenaOptions,
    /// `--athena-table`.
    pub athena_table: Option<String>,
    /// `--spark-remote`.
    pub spark_remote: String,
}

fn seconds(option: &str, value: f64) -> anyhow::Result<std::time::Duration> {
    if !(value.is_finite() && value > 0.0) {
        return Err(usage(format!("{option} must be a positive number of seconds, got {value}")));
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

fn parse<T: std::str::FromStr<Err = seqhouse_core::Error>>(text: &str) -> anyhow::Result<T> {
    text.parse().map_err(|e: seqhouse_core::Error| usage(strip_prefix(e.to_string())))
}

/// A byte size: a number with an optional unit. K, M, G, T and KiB, MiB, GiB, TiB are powers of
/// 1024 (as memory is counted); KB, MB, GB, TB powers of 1000; B or nothing is bytes.
fn parse_size(option: &str, text: &str) -> anyhow::Result<u64> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(usage(format!("{option} '{text}': unknown unit '{unit}'; use e.g. 2GiB, 512MiB or 4G"))),
    };
    let value: f64 =
        number.parse().map_err(|_| usage(format!("{option} '{text}' is not a size; use e.g. 2GiB, 512MiB or 4G")))?;
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(usage(format!("{option} '{text}' must be at least one byte")));
    }
    Ok(bytes as u64)
}

fn strip_prefix(message: String) -> String {
    message.strip_prefix("invalid request: ").map(str::to_string).unwrap_or(message)
}

fn list(flag: Vec<String>, file: Option<OneOrMany>, split_commas: bool) -> Vec<String> {
    let raw = if flag.is_empty() { file.map(|f| f.into_vec(split_commas)).unwrap_or_default() } else { flag };
    if split_commas { raw.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect() } else { raw }
}

impl SequenceArgs {
    /// Merges flags over the config file and validates the result.
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| usage(format!("cannot read --config {}: {e}", path.display())))?;
                toml::from_str::<ConfigFile>(&text).map_err(|e| usage(config_error(path, &text, &e)))?
            }
            None => ConfigFile::default(),
        };
        let input = self.input.or(file.input).ok_or_else(|| usage("--input is required"))?;
        let output = self.output.or(file.output).ok_or_else(|| usage("--output is required"))?;
        let entity = list(self.entity, file.entity, true);
        let order_by = list(self.order_by, file.order_by, true);
        let features = list(self.feature, file.feature, false)
            .iter()
            .map(|f| parse::<FeatureSpec>(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sequence_length =
            self.sequence_length.or(file.sequence_length).ok_or_else(|| usage("--sequence-length (-n) is required"))?;

        let mut spec = SequenceSpec::new(entity, order_by, features, sequence_length);
        if let Some(mode) = self.mode.or(file.mode) {
            spec.mode = parse::<Mode>(&mode)?;
        }
        spec.stride = self.stride.or(file.stride);
        if let Some(padding) = self.padding.or(file.padding) {
            spec.padding = parse::<Padding>(&padding)?;
        }
        spec.min_length = self.min_length.or(file.min_length).unwrap_or(1);
        spec.fill_null = list(self.fill_null, file.fill_null, false)
            .iter()
            .map(|f| parse::<FillNull>(f))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(policy) = self.on_null_key.or(file.on_null_key) {
            spec.on_null_key = parse::<NullKeyPolicy>(&policy)?;
        }
        spec.validate().map_err(|e| usage(strip_prefix(e.to_string())))?;

        let mut local = LocalConfig::default();
        if let Some(delimiter) = self.csv_delimiter.or(file.csv_delimiter) {
            local.csv_delimiter = match delimiter.as_str() {
                "tab" | "\\t" | "\t" => b'\t',
                d if d.len() == 1 && d.is_ascii() => d.as_bytes()[0],
                d => {
                    return Err(usage(format!("--csv-delimiter '{d}' must be one ASCII character or 'tab'")));
                }
            };
        }
        local.threads = self.threads.or(file.threads);
        if local.threads == Some(0) {
            return Err(usage("--threads must be at least 1"));
        }
        if let Some(compression) = self.compression.or(file.compression) {
            local.compression = parse::<OutputCompression>(&compression)?;
        }
        local.rows_per_part = self.rows_per_part.or(file.rows_per_part);
        if local.rows_per_part == Some(0) {
            return Err(usage("--rows-per-part must be at least 1"));
        }
        if let Some(size) = self.memory_limit.or(file.memory_limit) {
            local.memory_limit = Some(parse_size("--memory-limit", &size)?);
        }
        local.spill_dir = self.spill_dir.or(file.spill_dir);
        local.s3.endpoint = self.s3_endpoint.or(file.s3_endpoint);
        local.s3.region = self.s3_region.or(file.s3_region);
        local.s3.path_style = self.s3_path_style.or(file.s3_path_style);
        if let Some(value) = self.s3_timeout.or(file.s3_timeout) {
            local.s3.request_timeout = seconds("--s3-timeout", value)?;
        }
        if let Some(retries) = self.s3_max_retries.or(file.s3_max_retries) {
            local.s3.max_retries = retries;
        }

        let request = SequenceRequest {
            input,
            output,
            subsets: list(self.subsets, file.subsets, true),
            spec,
            overwrite: self.overwrite || file.overwrite.unwrap_or(false),
        };
        request.jobs().map_err(|e| usage(strip_prefix(e.to_string())))?;

        let engine = match self.engine.or(file.engine).as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("local") => Engine::Local,
            Some("athena") => Engine::Athena,
            Some("spark") => Engine::Spark,
            Some(other) => return Err(usage(format!("--engine '{other}' is not one of local, athena, spark"))),
        };
        let mut athena = seqhouse_athena::AthenaOptions::default();
        if let Some(workgroup) = self.athena_workgroup.or(file.athena_workgroup) {
            athena.workgroup = workgroup;
        }
        if let Some(database) = self.athena_database.or(file.athena_database) {
            athena.database = database;
        }
        athena.results = self.athena_results.or(file.athena_results);
        athena.endpoint = self.athena_endpoint.or(file.athena_endpoint);
        athena.region = local.s3.region.clone();
        if let Some(value) = self.athena_poll_interval.or(file.athena_poll_interval) {
            athena.poll_interval = seconds("--athena-poll-interval", value)?;
        }
        if let Some(value) = self.athena_timeout.or(file.athena_timeout) {
            athena.timeout = seconds("--athena-timeout", value)?;
        }
        Ok(Resolved {
            request,
            engine,
            explain: self.explain,
            local,
            athena,
            athena_table: self.athena_table.or(file.athena_table),
            spark_remote: self.spark_remote.or(file.spark_remote).unwrap_or_else(|| "sc://localhost:15002".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_users_write_them() {
        for (text, bytes) in [
            ("2GiB", 2u64 << 30),
            ("2G", 2 << 30),
            ("2GB", 2_000_000_000),
            ("512MiB", 512 << 20),
            ("1.5g", 3 << 29),
            ("4096", 4096),
            ("10 KB", 10_000),
            ("1T", 1 << 40),
        ] {
            assert_eq!(parse_size("--memory-limit", text).unwrap(), bytes, "{text}");
        }
        for bad in ["", "GiB", "2 parsecs", "-1G", "0", "1e3"] {
            let message = parse_size("--memory-limit", bad).unwrap_err().to_string();
            assert!(message.contains("--memory-limit") && message.contains(bad), "{bad}: {message}");
        }
    }
}
