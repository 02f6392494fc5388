//! The one error type that crosses the `Warehouse` port.
//!
//! Variants are named for what the caller can do about them. User errors carry the column, file or
//! value at fault and say what to do; [`Error::Internal`] is a bug in seqhouse and asks for a report.

use std::fmt;

use crate::setting::Setting;

/// The error that caused another, kept for callers that act on its kind (an `io::Error`'s
/// `ErrorKind`, an object store's `NotFound`); its text is in the message too.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout seqhouse.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a sequencing job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a bad value, or contradicts another setting.
    #[error("invalid request: {message}")]
    InvalidSetting {
        /// The setting at fault (the first one named, when two disagree).
        setting: Setting,
        /// What is wrong and what to do, naming the setting in the front end's words.
        message: String,
    },

    /// The request is inconsistent in a way no single setting names (a location's syntax).
    #[error("invalid request: {0}")]
    InvalidRequest(String),

    /// The input location does not exist.
    #[error("input not found: {location} ({hint})")]
    InputNotFound {
        /// The location as the user gave it.
        location: String,
        /// What to check.
        hint: String,
    },

    /// The input exists but holds no `*.parquet` / `*.csv` file.
    #[error(
        "no readable files in input {location}: expected *.parquet or *.csv files (names starting with '_' or '.' are skipped)"
    )]
    NoInputFiles {
        /// The location as the user gave it.
        location: String,
    },

    /// A column named in the request is missing from an input file.
    #[error("column '{column}' not found in {file}; available columns: {}", available.join(", "))]
    ColumnNotFound {
        /// The missing column.
        column: String,
        /// The file that lacks it.
        file: String,
        /// The columns the file does have.
        available: Vec<String>,
    },

    /// A column has a type seqhouse cannot sequence, or types that disagree between files.
    #[error("column '{column}': {message}")]
    UnsupportedType {
        /// The column.
        column: String,
        /// What is wrong and what to do.
        message: String,
    },

    /// A pad or fill value does not parse as its column's type.
    #[error(
        "{setting}{} value '{value}' for column '{column}' does not parse as {data_type}: {reason}",
        if *setting == Setting::Feature { " pad" } else { "" }
    )]
    BadValue {
        /// [`Setting::Feature`] (a pad) or [`Setting::FillNull`].
        setting: Setting,
        /// The column.
        column: String,
        /// The text given.
        value: String,
        /// The column's type.
        data_type: String,
        /// Why it failed.
        reason: String,
    },

    /// Entity or order-by values are null and the policy is `error`.
    #[error(
        "{count} row(s) have a null in key column '{column}' (first in {file}); clean the input or pass {} to drop them",
        Setting::OnNullKey.with("drop")
    )]
    NullKey {
        /// The key column with nulls.
        column: String,
        /// How many rows have a null there.
        count: u64,
        /// The first file where one was seen.
        file: String,
    },

    /// An input file cannot be decoded.
    #[error("cannot read {file}: {message}")]
    CorruptInput {
        /// The file.
        file: String,
        /// The decoder's message.
        message: String,
        /// The decoder's error, where there is one.
        #[source]
        source: Option<Cause>,
    },

    /// The output already exists and overwriting was not asked for.
    #[error("output {location} already exists; pass {} to replace it", Setting::Overwrite)]
    OutputExists {
        /// The output location.
        location: String,
    },

    /// The output folder holds an entry seqhouse does not write there: it is not a seqhouse
    /// output, and neither writing into it nor overwriting may touch it.
    #[error(
        "{} {location} holds '{entry}', which seqhouse did not write; refusing to replace or write into it. Choose another folder, or move '{entry}' away if the folder is really meant for seqhouse",
        Setting::Output
    )]
    OutputNotOurs {
        /// The output location.
        location: String,
        /// The first entry (in name order) that seqhouse does not write.
        entry: String,
    },

    /// Another run holds the output's lock: two runs writing one output would each publish a
    /// mix, or delete the other's parts.
    #[error(
        "another seqhouse run ({holder}) is writing {location}; wait for it to finish, or stop it. A lock left by a run that died is taken over after {stale_after}"
    )]
    OutputLocked {
        /// The output location.
        location: String,
        /// Who holds it: process id, host and start time, as the holder recorded them.
        holder: String,
        /// When a lock left behind counts as abandoned.
        stale_after: String,
    },

    /// Reading or writing storage failed.
    #[error("{action} {location}: {message}")]
    Storage {
        /// What was being done ("cannot write", "cannot list", ...).
        action: String,
        /// Where.
        location: String,
        /// The underlying message.
        message: String,
        /// The underlying error, where there is one.
        #[source]
        source: Option<Cause>,
    },

    /// A push-down engine rejected or failed a query; `message` is the engine's own reason.
    #[error("{engine} query {query_id} failed: {message}")]
    QueryFailed {
        /// The engine (`athena`, `spark`).
        engine: String,
        /// The engine's id of the query, to look it up in its console.
        query_id: String,
        /// The engine's reason, verbatim.
        message: String,
    },

    /// A push-down engine's server cannot be reached (nothing was run).
    #[error("cannot reach the {engine} server at {address}: {message}")]
    EngineUnreachable {
        /// The engine (`spark`).
        engine: String,
        /// The address tried, as the user gave it.
        address: String,
        /// Why, with what to check.
        message: String,
    },

    /// The run was stopped (Ctrl-C, or a timeout); running queries were cancelled.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// A bug in seqhouse.
    #[error("internal error (a bug in seqhouse, please report it): {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidRequest`].
    pub fn invalid(message: impl fmt::Display) -> Self {
        Error::InvalidRequest(message.to_string())
    }

    /// Shorthand for [`Error::InvalidSetting`] whose message starts with the setting's name;
    /// `rest` follows it: `setting(Setting::Threads, "must be at least 1")`.
    pub fn setting(setting: Setting, rest: impl fmt::Display) -> Self {
        Error::InvalidSetting { setting, message: format!("{setting} {rest}") }
    }

    /// [`Error::InvalidSetting`] with a whole message of its own (which names the setting).
    pub fn setting_message(setting: Setting, message: impl fmt::Display) -> Self {
        Error::InvalidSetting { setting, message: message.to_string() }
    }

    /// The setting an error is about, for a front end that points at it (a Python keyword).
    pub fn setting_at_fault(&self) -> Option<Setting> {
        match self {
            Error::InvalidSetting { setting, .. } | Error::BadValue { setting, .. } => Some(*setting),
            Error::NullKey { .. } => Some(Setting::OnNullKey),
            Error::OutputExists { .. } | Error::OutputNotOurs { .. } | Error::OutputLocked { .. } => {
                Some(Setting::Output)
            }
            Error::InputNotFound { .. } | Error::NoInputFiles { .. } => Some(Setting::Input),
            _ => None,
        }
    }

    /// [`Error::Storage`] caused by `source` (its text is the message).
    pub fn storage<E>(action: &str, location: impl fmt::Display, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::Storage {
            action: action.to_string(),
            location: location.to_string(),
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// [`Error::Storage`] with a message and no underlying error.
    pub fn storage_message(action: &str, location: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::Storage {
            action: action.to_string(),
            location: location.to_string(),
            message: message.to_string(),
            source: None,
        }
    }

    /// [`Error::CorruptInput`] caused by the decoder's error `source` (its text is the message).
    pub fn corrupt<E>(file: impl fmt::Display, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Error::CorruptInput { file: file.to_string(), message: source.to_string(), source: Some(Box::new(source)) }
    }

    /// [`Error::CorruptInput`] with a message and no underlying error.
    pub fn corrupt_message(file: impl fmt::Display, message: impl fmt::Display) -> Self {
        Error::CorruptInput { file: file.to_string(), message: message.to_string(), source: None }
    }

    /// Wraps an arrow error raised by seqhouse's own computation (not by decoding user input).
    pub fn internal(message: impl fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }
}
