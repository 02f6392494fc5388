//! The command line and the config file, merged into one validated request.
// The doc comments below are the help text users see; `[:LEVEL]` there is option syntax, not a link.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use seqhouse_core::preset::Preset;
use seqhouse_core::split::{Cutoffs, LastCounts, Shares, Split, SplitError};
use seqhouse_core::{
    FeatureSpec, FillNull, KCore, Mode, NullKeyPolicy, Padding, SequenceRequest, SequenceSpec, Setting, TimeDelta,
    VocabSpec,
};
use seqhouse_local::{LocalConfig, OutputCompression};

use crate::config::ConfigOrigin;

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
    /// List the presets of --preset and the options each sets.
    Presets,
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
///
/// This struct is the one declaration of every option: its flags, aliases, help text and value
/// parsers; the config file's keys are derived from it (see [`crate::config`]), and each long
/// name is a [`Setting`] (a test holds the two together).
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
    #[arg(long, value_name = "NAME[=PAD]", value_parser = typed::<FeatureSpec>)]
    pub feature: Vec<FeatureSpec>,

    /// Defaults of a peer tool's convention (pykt, pykt-window, sasrec, recbole): N, mode, stride, min length, padding, the features' pad, target mask, and for sasrec and recbole a leave-one-out split and vocabularies; every option given explicitly wins. `seqhouse presets` lists their values.
    #[arg(long, value_name = "NAME", value_parser = preset)]
    pub preset: Option<Preset>,

    /// N, the length of every output array (>= 1).
    #[arg(long, short = 'n', visible_alias = "sequence_length", value_name = "N")]
    pub sequence_length: Option<usize>,

    /// How windows are cut: chunk ([0,N), [N,2N), ...), sliding (starts 0, S, 2S, ...), last (the most recent N), prefix (one window per event, ending at it). [default: chunk]
    #[arg(long, value_name = "MODE", value_parser = typed::<Mode>)]
    pub mode: Option<Mode>,

    /// Step between sliding windows, 1 <= S <= N (sliding mode only). [default: 1]
    #[arg(long, value_name = "S")]
    pub stride: Option<usize>,

    /// Pad after the real events (post) or before them (pre). [default: post]
    #[arg(long, value_name = "post|pre", value_parser = typed::<Padding>)]
    pub padding: Option<Padding>,

    /// Drop windows with fewer than M real events. [default: 1]
    #[arg(long, value_name = "M")]
    pub min_length: Option<usize>,

    /// Subsets: subset s reads INPUT/s/ and writes OUTPUT/s_sequenced_N/.
    #[arg(long, value_delimiter = ',', value_name = "a,b,...")]
    pub subsets: Vec<String>,

    /// Split the input by entity into OUTPUT/NAME_sequenced_N/ per NAME, e.g. train=0.8,validation=0.1,test=0.1 (fractions above 0, adding up to 1). Every entity goes to one split, by a hash of its key values and --split-seed (README: "Splitting without leakage").
    #[arg(long, value_name = "NAME=FRACTION,...", value_parser = |t: &str| split_option::<Shares>(Setting::Split, t))]
    pub split: Option<Shares>,

    /// The seed of --split's entity hash: another seed, another assignment. [default: 0]
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub split_seed: Option<i64>,

    /// Add an int32 column fold (0 to K-1, from the entity hash) to every window of the first --split, for cross-validation inside it; 2 <= K <= 100.
    #[arg(long, value_name = "K")]
    pub folds: Option<usize>,

    /// Split by time on the first --order-by column (T parsed as its type): train gets the windows over the events before the first cutoff, each NAME the windows whose target events fall from its cutoff to the next, with earlier events as context, e.g. validation=2024-01-01T00:00:00,test=2024-02-01T00:00:00.
    #[arg(long, value_name = "NAME=T,...", value_parser = |t: &str| split_option::<Cutoffs>(Setting::SplitAt, t))]
    pub split_at: Option<Cutoffs>,

    /// Hold out each entity's last events: the last K to the last NAME, the K before them to the NAME before it, and so on; train gets the rest, e.g. validation=1,test=1 (leave-one-out). Entities with too few events stay in train, counted in the manifest.
    #[arg(long, value_name = "NAME=K,...", value_parser = |t: &str| split_option::<LastCounts>(Setting::SplitLast, t))]
    pub split_last: Option<LastCounts>,

    /// Add target_mask: N int8 values, 1 where the position is a target of the window's split that no earlier window of the entity scored, 0 for context and padding (without a split, every real event is a target).
    #[arg(long)]
    pub target_mask: bool,

    /// Before windowing, drop an event identical to its entity's previous event on every --feature (nulls equal), counted in the manifest.
    #[arg(long)]
    pub dedupe_consecutive: bool,

    /// Before windowing, drop entities with fewer than M events (after --dedupe-consecutive), counted in the manifest.
    #[arg(long, value_name = "M")]
    pub min_events: Option<usize>,

    /// The recommender systems' k-core filter, before windowing: repeatedly drop the events whose COL (a --feature) value has fewer than K events over all entities, the sessions left shorter than --min-session-length (with --session-gap, whose sessions are cut first and kept) and the entities left with fewer than --min-events events, until nothing changes; counted in the manifest. Athena and Spark find the rounds with a probe query first (at most 32 rounds).
    #[arg(long, value_name = "COL=K", value_parser = typed::<KCore>)]
    pub k_core: Option<KCore>,

    /// Cut each entity's events into sessions where the first --order-by column moves on by more than DURATION from the event before: 30m, 2h, 90s, 1d, 500ms on a timestamp column, or a plain number in the column's units; windows never cross a session, an int32 session_index (0, 1, ... per entity) comes before sequence_index, which counts windows within the session. Athena takes timestamp clocks of seconds or milliseconds, Spark of at most microseconds.
    #[arg(long, value_name = "DURATION")]
    pub session_gap: Option<String>,

    /// With --session-gap: drop sessions with fewer than M events, counted in the manifest.
    #[arg(long, value_name = "M")]
    pub min_session_length: Option<usize>,

    /// Add feature NAME: each event's gap to its entity's previous event in COL (over the whole history, after the filters): integers in their own units, dates in days, timestamps in UNIT (s, ms, us or ns, truncated; default s). Null for an entity's first event (--fill-null NAME=0 fills it); padded with 0, or PAD from --feature NAME=PAD, which also places it. Athena takes timestamps of seconds or milliseconds, Spark of at most microseconds. Repeatable.
    #[arg(long, value_name = "NAME=COL[:UNIT]", value_parser = typed::<TimeDelta>)]
    pub time_delta: Vec<TimeDelta>,

    /// Write feature NAME (a --feature) as int64 vocabulary ids: 0 padding, 1 null, 2 out of vocabulary (unseen, below min_count or beyond max_size), then 3, 4, ... by descending count, ties by ascending value. Fitted on the first split or subset only and written as OUTPUT/_vocab/NAME.parquet (id, value, count) in every output, with its SHA-256 in the manifest. Repeatable.
    #[arg(long, value_name = "NAME[:min_count=K][:max_size=M]", value_parser = typed::<VocabSpec>)]
    pub vocab: Vec<VocabSpec>,

    /// Apply the vocabularies of an earlier output (its folder, whose manifest is checked) or of a folder of NAME.parquet files instead of fitting them, for the features named by --vocab: a later validation run, or inference.
    #[arg(long, value_name = "DIR")]
    pub vocab_from: Option<String>,

    /// Replace nulls inside real events of a feature with VALUE (default: keep them as nulls). Repeatable.
    #[arg(long, value_name = "NAME=VALUE", value_parser = typed::<FillNull>)]
    pub fill_null: Vec<FillNull>,

    /// Rows with a null entity or order-by value: error, or drop them (counted in the manifest). [default: error]
    #[arg(long, value_name = "error|drop", value_parser = typed::<NullKeyPolicy>)]
    pub on_null_key: Option<NullKeyPolicy>,

    /// Replace an existing output folder (only one seqhouse wrote).
    #[arg(long)]
    pub overwrite: bool,

    /// A TOML file with any of these options under their long names; flags override it.
    #[arg(long, value_name = "FILE.toml")]
    pub config: Option<PathBuf>,

    /// CSV field delimiter (one character, or 'tab'). [default: ,]
    #[arg(long, value_name = "C", value_parser = csv_delimiter)]
    pub csv_delimiter: Option<u8>,

    /// Worker threads; the output is byte-identical for any count. [default: all cores]
    #[arg(long, value_name = "T")]
    pub threads: Option<usize>,

    /// Output compression: zstd[:LEVEL], snappy, gzip[:LEVEL], lz4, none. [default: zstd:3]
    #[arg(long, value_name = "CODEC", value_parser = typed::<OutputCompression>)]
    pub compression: Option<OutputCompression>,

    /// Windows per output part file. [default: about 8M values per column]
    #[arg(long, value_name = "ROWS")]
    pub rows_per_part: Option<usize>,

    /// Peak memory of a local job, e.g. 2GiB, 512MiB (K/M/G/T and KiB.. are powers of 1024; KB/MB/GB/TB powers of 1000). A larger job is split by entity and spilled to --spill-dir; the output is the same. [default: 75% of the machine's memory]
    #[arg(long, value_name = "SIZE", value_parser = memory_limit)]
    pub memory_limit: Option<u64>,

    /// Folder for the spill files of a job larger than --memory-limit. [default: the system temp folder, TMPDIR]
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Where the job runs: local (this machine), athena (pushed down to Amazon Athena as SQL) or spark (pushed down to Spark through Spark Connect). [default: local]
    #[arg(long, value_name = "local|athena|spark", env = "SEQHOUSE_ENGINE", help_heading = "Engine", value_parser = engine)]
    pub engine: Option<Engine>,

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
    #[arg(long, value_name = "SECS", help_heading = "Athena", value_parser = |t: &str| seconds(Setting::AthenaPollInterval, t))]
    pub athena_poll_interval: Option<Duration>,

    /// A query running longer than this many seconds is cancelled and the run fails. [default: 3600]
    #[arg(long, value_name = "SECS", help_heading = "Athena", value_parser = |t: &str| seconds(Setting::AthenaTimeout, t))]
    pub athena_timeout: Option<Duration>,

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
    #[arg(long, value_name = "SECS", help_heading = "S3", value_parser = |t: &str| seconds(Setting::S3Timeout, t))]
    pub s3_timeout: Option<Duration>,

    /// Retries of a failed S3 request (5xx, throttling, timeouts, dropped connections), with exponential backoff. [default: 10]
    #[arg(long, value_name = "N", help_heading = "S3")]
    pub s3_max_retries: Option<usize>,

    /// Where the options read from `--config` came from (filled by the parser, not a flag).
    #[arg(skip)]
    pub config_origin: Option<ConfigOrigin>,
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
    /// Its jobs, made (and the spec validated) once, here.
    pub jobs: Vec<seqhouse_core::SequenceJob>,
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
    /// Which settings came from `--config`, to name the file when one of them is at fault.
    pub config_origin: Option<ConfigOrigin>,
}

// Value parsers. Each returns the message clap shows after the flag; the core's errors already
// name their setting in the CLI's words (see `crate::CliNames`).

/// A value the core parses (`Mode`, `FeatureSpec`, ...), with the core's message.
fn typed<T: std::str::FromStr<Err = seqhouse_core::Error>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|e: seqhouse_core::Error| plain(e.to_string()))
}

/// A message without the port's "invalid request: " prefix, which reads badly after a flag.
fn plain(message: String) -> String {
    message.strip_prefix("invalid request: ").map(str::to_string).unwrap_or(message)
}

/// A split option's value (`train=0.8,test=0.2`), with the setting named in its message.
fn split_option<T: std::str::FromStr<Err = SplitError>>(setting: Setting, text: &str) -> Result<T, String> {
    text.parse().map_err(|e: SplitError| format!("{setting} {text}: {e}"))
}

fn preset(text: &str) -> Result<Preset, String> {
    Preset::named(text).copied().map_err(|e| plain(e.to_string()))
}

fn seconds(setting: Setting, text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(value) if value.is_finite() && value > 0.0 => Ok(Duration::from_secs_f64(value)),
        _ => Err(format!("{setting} must be a positive number of seconds, got {text}")),
    }
}

fn engine(text: &str) -> Result<Engine, String> {
    match text.to_ascii_lowercase().as_str() {
        "local" => Ok(Engine::Local),
        "athena" => Ok(Engine::Athena),
        "spark" => Ok(Engine::Spark),
        other => Err(format!("{} '{other}' is not one of local, athena, spark", Setting::Engine)),
    }
}

fn csv_delimiter(text: &str) -> Result<u8, String> {
    match text {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        d if d.len() == 1 && d.is_ascii() => Ok(d.as_bytes()[0]),
        d => Err(format!("{} '{d}' must be one ASCII character or 'tab'", Setting::CsvDelimiter)),
    }
}

fn memory_limit(text: &str) -> Result<u64, String> {
    parse_size(Setting::MemoryLimit, text)
}

/// A byte size: a number with an optional unit. K, M, G, T and KiB, MiB, GiB, TiB are powers of
/// 1024 (as memory is counted); KB, MB, GB, TB powers of 1000; B or nothing is bytes.
fn parse_size(setting: Setting, text: &str) -> Result<u64, String> {
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
        _ => return Err(format!("{setting} '{text}': unknown unit '{unit}'; use e.g. 2GiB, 512MiB or 4G")),
    };
    let value: f64 =
        number.parse().map_err(|_| format!("{setting} '{text}' is not a size; use e.g. 2GiB, 512MiB or 4G"))?;
    let bytes = value * scale as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{setting} '{text}' must be at least one byte"));
    }
    Ok(bytes as u64)
}

/// The split the split options ask for: at most one kind, with a seed and folds only for
/// `--split`.
fn split_of(
    shares: Option<Shares>,
    seed: Option<i64>,
    folds: Option<usize>,
    cutoffs: Option<Cutoffs>,
    counts: Option<LastCounts>,
) -> anyhow::Result<Option<Split>> {
    let given: Vec<Setting> = [
        (shares.is_some(), Setting::Split),
        (cutoffs.is_some(), Setting::SplitAt),
        (counts.is_some(), Setting::SplitLast),
    ]
    .into_iter()
    .filter_map(|(given, setting)| given.then_some(setting))
    .collect();
    if let [first, second, ..] = given[..] {
        return Err(usage(format!("{first} and {second} are two ways to split the input; pass one of them")));
    }
    let Some(fractions) = shares else {
        for (given, setting) in [(seed.is_some(), Setting::SplitSeed), (folds.is_some(), Setting::Folds)] {
            if given {
                return Err(usage(format!("{setting} applies to an entity split; pass {} with it", Setting::Split)));
            }
        }
        return Ok(cutoffs
            .map(|cutoffs| Split::Temporal { cutoffs })
            .or(counts.map(|counts| Split::LeaveLast { counts })));
    };
    let folds = folds.map(|k| u32::try_from(k).unwrap_or(u32::MAX));
    Ok(Some(Split::Entity { fractions, seed: seed.unwrap_or(0), folds }))
}

/// Column lists are comma-separated or repeated; blanks around and between commas are dropped.
fn columns(list: Vec<String>) -> Vec<String> {
    list.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

impl SequenceArgs {
    /// How to reach S3, from the S3 options (the rest of the chain: AWS's environment).
    pub fn s3_options(&self) -> seqhouse_local::S3Options {
        let mut s3 = seqhouse_local::S3Options::default();
        s3.endpoint = self.s3_endpoint.clone();
        s3.region = self.s3_region.clone();
        s3.path_style = self.s3_path_style;
        s3.request_timeout = self.s3_timeout.unwrap_or(s3.request_timeout);
        s3.max_retries = self.s3_max_retries.unwrap_or(s3.max_retries);
        s3
    }

    /// Builds the request and the engine settings. Values are already parsed and the config
    /// file merged in (by [`crate::parse`]); the spec is validated here, once, before any
    /// engine sees it.
    pub fn resolve(self) -> anyhow::Result<Resolved> {
        let s3 = self.s3_options();
        let required = |setting: Setting| usage(format!("{setting} is required"));
        let input = self.input.ok_or_else(|| required(Setting::Input))?;
        let output = self.output.ok_or_else(|| required(Setting::Output))?;
        // A preset's values are defaults; its stride only goes with its mode.
        let preset = self.preset;
        let sequence_length = (self.sequence_length.or(preset.map(|p| p.sequence_length)))
            .ok_or_else(|| required(Setting::SequenceLength))?;
        let mut features = self.feature;
        if let Some(pad) = preset.and_then(|p| p.pad) {
            // A vocabulary's pad is its id 0, whatever the preset pads raw values with.
            let encoded = |f: &FeatureSpec| self.vocab.iter().any(|v| v.name == f.name);
            for feature in features.iter_mut().filter(|f| f.pad.is_none() && !encoded(f)) {
                feature.pad = Some(pad.to_string());
            }
        }
        let mut spec = SequenceSpec::new(columns(self.entity), columns(self.order_by), features, sequence_length);
        spec.mode = self.mode.or(preset.map(|p| p.mode)).unwrap_or(spec.mode);
        spec.stride = self.stride.or(preset.filter(|p| p.mode == spec.mode).and_then(|p| p.stride));
        spec.padding = self.padding.or(preset.map(|p| p.padding)).unwrap_or(spec.padding);
        spec.min_length = self.min_length.or(preset.map(|p| p.min_length)).unwrap_or(spec.min_length);
        spec.target_mask = self.target_mask || preset.is_some_and(|p| p.target_mask);
        spec.fill_null = self.fill_null;
        spec.on_null_key = self.on_null_key.unwrap_or(spec.on_null_key);
        spec.dedupe_consecutive = self.dedupe_consecutive;
        spec.min_events = self.min_events;
        spec.k_core = self.k_core;
        spec.session_gap = self.session_gap;
        spec.min_session_length = self.min_session_length;
        // A gap not named by a --feature is sequenced after the features, with the default pad.
        for delta in &self.time_delta {
            if !spec.features.iter().any(|f| f.name == delta.name) {
                spec.features.push(FeatureSpec { name: delta.name.clone(), pad: None });
            }
        }
        let mut vocab = self.vocab;
        if preset.is_some_and(|p| p.vocab) {
            // Every feature the user gave without a pad (a gap is a number, never a token).
            let tokens: Vec<VocabSpec> = (spec.features.iter())
                .filter(|f| f.pad.is_none() && !vocab.iter().any(|v| v.name == f.name))
                .filter(|f| !self.time_delta.iter().any(|d| d.name == f.name))
                .map(|f| VocabSpec { name: f.name.clone(), min_count: None, max_size: None })
                .collect();
            vocab.extend(tokens);
        }
        spec.time_deltas = self.time_delta;
        spec.vocab = vocab;
        spec.vocab_from = self.vocab_from;
        let no_split = self.split.is_none() && self.split_at.is_none() && self.split_last.is_none();
        let split_last = match preset.and_then(|p| p.split_last) {
            Some(counts) if no_split && self.subsets.is_empty() => {
                Some(counts.parse::<LastCounts>().map_err(|e| usage(format!("preset split: {e}")))?)
            }
            _ => self.split_last,
        };
        spec.split = split_of(self.split, self.split_seed, self.folds, self.split_at, split_last)?;

        let mut local = LocalConfig::default();
        local.csv_delimiter = self.csv_delimiter.unwrap_or(local.csv_delimiter);
        local.threads = self.threads;
        local.compression = self.compression.unwrap_or(local.compression);
        local.rows_per_part = self.rows_per_part;
        local.memory_limit = self.memory_limit;
        local.spill_dir = self.spill_dir;
        local.s3 = s3;

        let request =
            SequenceRequest { input, output, subsets: columns(self.subsets), spec, overwrite: self.overwrite };
        // Checks the spec and the subsets; every engine then runs what passed here.
        let jobs = request.jobs().map_err(|e| {
            let place = e.setting_at_fault().and_then(|setting| self.config_origin.as_ref()?.describe(setting));
            let message = plain(e.to_string());
            usage(match place {
                Some(place) => format!("from {place}: {message}"),
                None => message,
            })
        })?;

        let mut athena = seqhouse_athena::AthenaOptions::default();
        athena.workgroup = self.athena_workgroup.unwrap_or(athena.workgroup);
        athena.database = self.athena_database.unwrap_or(athena.database);
        athena.results = self.athena_results;
        athena.endpoint = self.athena_endpoint;
        athena.region = local.s3.region.clone();
        athena.poll_interval = self.athena_poll_interval.unwrap_or(athena.poll_interval);
        athena.timeout = self.athena_timeout.unwrap_or(athena.timeout);
        Ok(Resolved {
            request,
            jobs,
            engine: self.engine.unwrap_or(Engine::Local),
            explain: self.explain,
            local,
            athena,
            athena_table: self.athena_table,
            spark_remote: self.spark_remote.unwrap_or_else(|| "sc://localhost:15002".into()),
            config_origin: self.config_origin,
        })
    }
}

/// The folder a relative path of a config file is read from.
pub(crate) fn folder_of(config: &Path) -> PathBuf {
    match config.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::{Setting, parse_size};

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
            assert_eq!(parse_size(Setting::MemoryLimit, text).unwrap(), bytes, "{text}");
        }
        for bad in ["", "GiB", "2 parsecs", "-1G", "0", "1e3"] {
            let message = parse_size(Setting::MemoryLimit, bad).unwrap_err();
            assert!(message.contains("memory_limit") && message.contains(bad), "{bad}: {message}");
        }
    }
}
