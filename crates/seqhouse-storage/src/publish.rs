//! The rules every engine publishes by: part names, and when an output may be (re)written.

use seqhouse_core::{Error, MANIFEST_FILE, Result};

/// Name of part `index`: `part-00000.parquet`, ...
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// Whether `name` is a part file.
pub fn is_part(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// What is at the output location now.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputState {
    /// Nothing, or an empty folder (users often create it first): written without `--overwrite`.
    Absent,
    /// A previous seqhouse output, and `--overwrite` was given.
    Replaceable,
}

/// Decides from the names inside `output` whether it may be written. `--overwrite` replaces
/// only folders that look like seqhouse outputs, so a mistyped `--output ~ --overwrite` cannot
/// delete a home directory.
pub fn check_output(shown: &str, names: &[String], overwrite: bool) -> Result<OutputState> {
    if names.is_empty() {
        return Ok(OutputState::Absent);
    }
    if !overwrite {
        return Err(Error::OutputExists { location: shown.to_string() });
    }
    let looks_like_ours =
        names.iter().any(|n| n == MANIFEST_FILE) || names.iter().all(|n| is_part(n) || n.starts_with(['.', '_']));
    if !looks_like_ours {
        return Err(Error::invalid(format!(
            "--output {shown} holds files that seqhouse did not write (no {MANIFEST_FILE}); refusing to replace it with --overwrite. Choose another folder or empty it yourself"
        )));
    }
    Ok(OutputState::Replaceable)
}
