//! The settings of a request, as errors refer to them, and how a front end names them.
//!
//! The core never spells a front end's words: an error about the sequence length carries
//! [`Setting::SequenceLength`], and whoever shows the message decides whether that reads
//! `--sequence-length` (the CLI) or `sequence_length=` (Python). A front end installs its names
//! once, with [`name_settings`], before it runs anything; until then, and in a process that
//! never installs any (a Rust program embedding the engines), settings read as their neutral
//! keys (`sequence_length`).

use std::fmt;
use std::sync::OnceLock;

/// Every setting a user can give, in the order of the CLI's help.
///
/// The neutral key ([`Setting::key`]) is snake_case; the CLI's flag is its kebab-case form
/// (`--sequence-length`), a config file key the same, and a Python keyword the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Setting {
    /// The input location.
    Input,
    /// The output location.
    Output,
    /// The grouping columns.
    Entity,
    /// The ordering columns.
    OrderBy,
    /// The features and their pads.
    Feature,
    /// Named defaults of a peer tool.
    Preset,
    /// N, the window length.
    SequenceLength,
    /// How windows are cut.
    Mode,
    /// The step between sliding windows.
    Stride,
    /// The padding side.
    Padding,
    /// The shortest window kept.
    MinLength,
    /// The subset folders.
    Subsets,
    /// An entity split by hash: named fractions.
    Split,
    /// The seed of the entity hash.
    SplitSeed,
    /// Cross-validation folds inside the first split.
    Folds,
    /// A global temporal split: named cutoffs.
    SplitAt,
    /// A leave-last split: named event counts.
    SplitLast,
    /// Add the `target_mask` column.
    TargetMask,
    /// Drop consecutive duplicate events.
    DedupeConsecutive,
    /// Drop entities with fewer events.
    MinEvents,
    /// The k-core filter.
    KCore,
    /// Derived time-gap features.
    TimeDelta,
    /// The gap that starts a new session.
    SessionGap,
    /// The shortest session kept.
    MinSessionLength,
    /// Features encoded as vocabulary ids.
    Vocab,
    /// Vocabularies applied instead of fitted.
    VocabFrom,
    /// Replacements for nulls in features.
    FillNull,
    /// What to do with null keys.
    OnNullKey,
    /// Replace an existing output.
    Overwrite,
    /// The file the settings were read from.
    Config,
    /// The CSV delimiter.
    CsvDelimiter,
    /// Worker threads.
    Threads,
    /// Output compression.
    Compression,
    /// Windows per output part.
    RowsPerPart,
    /// Peak memory of a local job.
    MemoryLimit,
    /// Where a local job spills.
    SpillDir,
    /// Which engine runs the job.
    Engine,
    /// Show the plan without running it.
    Explain,
    /// Athena workgroup.
    AthenaWorkgroup,
    /// Athena database.
    AthenaDatabase,
    /// Athena query results location.
    AthenaResults,
    /// An existing Athena table to read.
    AthenaTable,
    /// Athena endpoint.
    AthenaEndpoint,
    /// First Athena poll interval.
    AthenaPollInterval,
    /// Athena query timeout.
    AthenaTimeout,
    /// The Spark Connect server.
    SparkRemote,
    /// S3 endpoint.
    S3Endpoint,
    /// S3 region.
    S3Region,
    /// Path-style S3 addressing.
    S3PathStyle,
    /// Timeout of one S3 request.
    S3Timeout,
    /// Retries of a failed S3 request.
    S3MaxRetries,
}

impl Setting {
    /// Every setting, in the order of the CLI's help.
    pub const ALL: &'static [Setting] = &[
        Setting::Input,
        Setting::Output,
        Setting::Entity,
        Setting::OrderBy,
        Setting::Feature,
        Setting::Preset,
        Setting::SequenceLength,
        Setting::Mode,
        Setting::Stride,
        Setting::Padding,
        Setting::MinLength,
        Setting::Subsets,
        Setting::Split,
        Setting::SplitSeed,
        Setting::Folds,
        Setting::SplitAt,
        Setting::SplitLast,
        Setting::TargetMask,
        Setting::DedupeConsecutive,
        Setting::MinEvents,
        Setting::KCore,
        Setting::TimeDelta,
        Setting::SessionGap,
        Setting::MinSessionLength,
        Setting::Vocab,
        Setting::VocabFrom,
        Setting::FillNull,
        Setting::OnNullKey,
        Setting::Overwrite,
        Setting::Config,
        Setting::CsvDelimiter,
        Setting::Threads,
        Setting::Compression,
        Setting::RowsPerPart,
        Setting::MemoryLimit,
        Setting::SpillDir,
        Setting::Engine,
        Setting::Explain,
        Setting::AthenaWorkgroup,
        Setting::AthenaDatabase,
        Setting::AthenaResults,
        Setting::AthenaTable,
        Setting::AthenaEndpoint,
        Setting::AthenaPollInterval,
        Setting::AthenaTimeout,
        Setting::SparkRemote,
        Setting::S3Endpoint,
        Setting::S3Region,
        Setting::S3PathStyle,
        Setting::S3Timeout,
        Setting::S3MaxRetries,
    ];

    /// The neutral name, snake_case: `sequence_length`.
    pub fn key(self) -> &'static str {
        match self {
            Setting::Input => "input",
            Setting::Output => "output",
            Setting::Entity => "entity",
            Setting::OrderBy => "order_by",
            Setting::Feature => "feature",
            Setting::Preset => "preset",
            Setting::SequenceLength => "sequence_length",
            Setting::Mode => "mode",
            Setting::Stride => "stride",
            Setting::Padding => "padding",
            Setting::MinLength => "min_length",
            Setting::Subsets => "subsets",
            Setting::Split => "split",
            Setting::SplitSeed => "split_seed",
            Setting::Folds => "folds",
            Setting::SplitAt => "split_at",
            Setting::SplitLast => "split_last",
            Setting::TargetMask => "target_mask",
            Setting::DedupeConsecutive => "dedupe_consecutive",
            Setting::MinEvents => "min_events",
            Setting::KCore => "k_core",
            Setting::TimeDelta => "time_delta",
            Setting::SessionGap => "session_gap",
            Setting::MinSessionLength => "min_session_length",
            Setting::Vocab => "vocab",
            Setting::VocabFrom => "vocab_from",
            Setting::FillNull => "fill_null",
            Setting::OnNullKey => "on_null_key",
            Setting::Overwrite => "overwrite",
            Setting::Config => "config",
            Setting::CsvDelimiter => "csv_delimiter",
            Setting::Threads => "threads",
            Setting::Compression => "compression",
            Setting::RowsPerPart => "rows_per_part",
            Setting::MemoryLimit => "memory_limit",
            Setting::SpillDir => "spill_dir",
            Setting::Engine => "engine",
            Setting::Explain => "explain",
            Setting::AthenaWorkgroup => "athena_workgroup",
            Setting::AthenaDatabase => "athena_database",
            Setting::AthenaResults => "athena_results",
            Setting::AthenaTable => "athena_table",
            Setting::AthenaEndpoint => "athena_endpoint",
            Setting::AthenaPollInterval => "athena_poll_interval",
            Setting::AthenaTimeout => "athena_timeout",
            Setting::SparkRemote => "spark_remote",
            Setting::S3Endpoint => "s3_endpoint",
            Setting::S3Region => "s3_region",
            Setting::S3PathStyle => "s3_path_style",
            Setting::S3Timeout => "s3_timeout",
            Setting::S3MaxRetries => "s3_max_retries",
        }
    }

    /// The setting given a value, as a user would write it: `--on-null-key drop` on the
    /// command line, `on_null_key="drop"` in Python.
    pub fn with(self, value: impl fmt::Display) -> SettingValue {
        SettingValue { setting: self, value: value.to_string() }
    }
}

impl fmt::Display for Setting {
    /// The setting in the installed front end's words (see [`name_settings`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.get() {
            Some(names) => f.write_str(&names.name(*self)),
            None => f.write_str(self.key()),
        }
    }
}

/// A setting with a value, shown as the installed front end writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingValue {
    /// The setting.
    pub setting: Setting,
    /// The value, as text.
    pub value: String,
}

impl fmt::Display for SettingValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match NAMES.get() {
            Some(names) => f.write_str(&names.with_value(self.setting, &self.value)),
            None => write!(f, "{}={}", self.setting.key(), self.value),
        }
    }
}

/// How a front end writes settings in its messages.
pub trait SettingNames: Send + Sync {
    /// The setting alone: `--sequence-length`, `sequence_length=`.
    fn name(&self, setting: Setting) -> String;
    /// The setting with a value: `--on-null-key drop`, `on_null_key="drop"`.
    fn with_value(&self, setting: Setting, value: &str) -> String;
}

static NAMES: OnceLock<&'static dyn SettingNames> = OnceLock::new();

/// Installs the front end's names for every message made from now on. A process has one front
/// end, so the first call wins and later ones are ignored.
pub fn name_settings(names: &'static dyn SettingNames) {
    let _ = NAMES.set(names);
}

#[cfg(test)]
mod tests {
    use super::Setting;

    #[test]
    fn keys_are_unique_snake_case_and_all_listed() {
        let mut keys: Vec<&str> = Setting::ALL.iter().map(|s| s.key()).collect();
        assert!(keys.iter().all(|k| k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')));
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), Setting::ALL.len());
        // Without installed names a setting reads as its key.
        assert_eq!(Setting::SequenceLength.to_string(), "sequence_length");
        assert_eq!(Setting::OnNullKey.with("drop").to_string(), "on_null_key=drop");
    }
}
