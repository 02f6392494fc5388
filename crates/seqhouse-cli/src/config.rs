//! `--config FILE.toml`: the options of `seqhouse sequence` kept in a file.
//!
//! Nothing here lists an option. A key is the long name of a flag, or one of its aliases, as
//! [`SequenceArgs`](crate::SequenceArgs) declares them; the file is turned into the flags it
//! stands for and parsed by that same declaration, so a key takes exactly the values, parsers
//! and checks of its flag. A flag given on the command line (or its environment variable) wins
//! over the file's key. Relative paths in the file are read from the file's folder.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches};

use seqhouse_core::Setting;

use crate::UsageError;
use crate::args::{Cli, Command, folder_of};

/// Which settings a config file gave, to name the file when one of them is at fault later.
#[derive(Debug, Clone, Default)]
pub struct ConfigOrigin {
    /// The file, as given to `--config`.
    pub file: PathBuf,
    /// The settings it gave (those the command line did not override), with the key as
    /// written and its line.
    pub keys: Vec<(Setting, String, usize)>,
}

impl ConfigOrigin {
    /// "`input` in --config job.toml, line 2", if the file gave `setting`.
    pub fn describe(&self, setting: Setting) -> Option<String> {
        let (_, key, line) = self.keys.iter().find(|(given, _, _)| *given == setting)?;
        Some(format!("`{key}` in {} {}, line {line}", Setting::Config, self.file.display()))
    }
}

/// Long options that are not config keys: the file itself, a question asked per run
/// (`--explain`), and the options of the program rather than of the job.
const NOT_KEYS: &[&str] = &["config", "explain", "quiet", "verbose", "help", "version"];

/// Settings whose relative values are paths, read from the config file's folder.
const PATHS: &[Setting] = &[Setting::Input, Setting::Output, Setting::SpillDir, Setting::VocabFrom];

/// Why the arguments did not parse: clap's own error (help and version included), or a
/// config file error.
#[derive(Debug)]
pub enum ParseError {
    /// Clap's error, to print (or exit with) as clap does.
    Clap(clap::Error),
    /// A config file error, one line.
    Usage(UsageError),
}

impl From<clap::Error> for ParseError {
    fn from(e: clap::Error) -> Self {
        ParseError::Clap(e)
    }
}

fn usage(message: String) -> ParseError {
    ParseError::Usage(UsageError(message))
}

/// Parses the command line (the first item is the program name), merging `--config` in.
pub fn parse(args: Vec<OsString>) -> Result<Cli, ParseError> {
    let matches = Cli::command().try_get_matches_from(&args)?;
    let Some(("sequence", given)) = matches.subcommand() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let Some(file) = given.get_one::<PathBuf>("config").cloned() else {
        return Ok(Cli::from_arg_matches(&matches)?);
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| usage(format!("cannot read {} {}: {e}", Setting::Config, file.display())))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| usage(syntax_error(&file, &text, &e)))?;

    let command = Cli::command();
    let sequence = command.find_subcommand("sequence").expect("the sequence subcommand");
    let keys: Vec<(&str, &clap::Arg)> = sequence
        .get_arguments()
        .filter(|arg| !NOT_KEYS.contains(&arg.get_id().as_str()))
        .flat_map(|arg| {
            let aliases = arg.get_all_aliases().unwrap_or_default();
            arg.get_long().into_iter().chain(aliases).map(move |name| (name, arg))
        })
        .collect();

    let mut origin = ConfigOrigin { file: file.clone(), keys: Vec::new() };
    let mut from_file: Vec<OsString> = Vec::new();
    for (key, value) in &table {
        let line = line_of(&text, key);
        let at = format!("{} {}, line {line}", Setting::Config, file.display());
        let Some(&(_, arg)) = keys.iter().find(|(name, _)| name == key) else {
            return Err(usage(unknown_key(&at, key, keys.iter().map(|(name, _)| *name))));
        };
        let id = arg.get_id().as_str();
        let setting = setting_of(id);
        let long = arg.get_long().expect("every option has a long name");
        let mut values = scalars(value).ok_or_else(|| {
            usage(format!("{at}: `{key}` must be a string, a number, true or false, or a list of them"))
        })?;
        if PATHS.contains(&setting) {
            values = values.iter().map(|v| beside_the_file(&file, &at, key, v)).collect::<Result<_, _>>()?;
        }
        let flags: Vec<OsString> = match arg.get_action() {
            ArgAction::SetTrue => match values.as_slice() {
                [only] if only == "true" => vec![format!("--{long}").into()],
                [only] if only == "false" => Vec::new(),
                _ => return Err(usage(format!("{at}: `{key}` must be true or false"))),
            },
            _ => values.iter().map(|v| format!("--{long}={v}").into()).collect(),
        };
        // Parsed alone first, so that a bad value is reported with its key and line.
        let alone = ["seqhouse".into(), "sequence".into()].into_iter().chain(flags.iter().cloned());
        if let Err(e) = Cli::command().try_get_matches_from(alone) {
            return Err(usage(format!("{at}: `{key}`: {}", clap_message(&e))));
        }
        if matches!(given.value_source(id), Some(ValueSource::CommandLine | ValueSource::EnvVariable)) {
            continue; // the flag wins
        }
        from_file.extend(flags);
        origin.keys.push((setting, key.clone(), line));
    }

    let merged = Cli::command().try_get_matches_from(args.into_iter().chain(from_file))?;
    let mut cli = Cli::from_arg_matches(&merged)?;
    if let Command::Sequence(sequence) = &mut cli.command {
        sequence.config_origin = Some(origin);
    }
    Ok(cli)
}

/// The setting a clap argument id (the field's name) stands for.
fn setting_of(id: &str) -> Setting {
    *Setting::ALL.iter().find(|s| s.key() == id).unwrap_or_else(|| panic!("option `{id}` is not a Setting"))
}

/// A value as the flag would be given it, item by item for a list.
fn scalars(value: &toml::Value) -> Option<Vec<String>> {
    let scalar = |value: &toml::Value| match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        toml::Value::Array(_) | toml::Value::Table(_) => None,
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

/// A relative path from the file, read from the file's folder.
///
/// Earlier versions read such paths from the working folder. Where the old reading names
/// something and the new one nothing, the job stops and says so, rather than read or write
/// elsewhere than it used to.
fn beside_the_file(file: &Path, at: &str, key: &str, value: &str) -> Result<String, ParseError> {
    let path = Path::new(value);
    if value.contains("://") || path.is_absolute() {
        return Ok(value.to_string());
    }
    let folder = folder_of(file);
    let beside = folder.join(path);
    if !beside.exists() && path.exists() && folder != Path::new(".") {
        return Err(usage(format!(
            "{at}: `{key}` = '{value}' is read from the config file's folder, where {} does not exist; the working folder has {value}, which earlier versions of seqhouse read. Write the path relative to {}, or absolute",
            beside.display(),
            folder.display()
        )));
    }
    Ok(beside.to_string_lossy().into_owned())
}

/// The line where `key` is set (1 for a key that is not found as written, e.g. quoted).
fn line_of(text: &str, key: &str) -> usize {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let rest = line.strip_prefix(key).or_else(|| {
                line.strip_prefix(['"', '\''])
                    .and_then(|l| l.strip_prefix(key))
                    .and_then(|l| l.strip_prefix(['"', '\'']))
            });
            rest.is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map_or(1, |index| index + 1)
}

fn unknown_key<'a>(at: &str, key: &str, valid: impl Iterator<Item = &'a str>) -> String {
    match valid.min_by_key(|candidate| edit_distance(key, candidate)) {
        Some(closest) => format!(
            "{at}: unknown field `{key}`; did you mean `{closest}`? (the keys are the long options of `seqhouse sequence`)"
        ),
        None => format!("{at}: unknown field `{key}`"),
    }
}

/// A TOML syntax error as one line: the file, the line and what is wrong.
fn syntax_error(path: &Path, text: &str, error: &toml::de::Error) -> String {
    let line = error.span().map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
    let at = line.map(|l| format!(", line {l}")).unwrap_or_default();
    format!("{} {}{at}: {}", Setting::Config, path.display(), error.message().trim())
}

/// Clap's error as one line: the value parser's own message where there is one (it names the
/// flag already), else clap's first line.
pub fn clap_message(e: &clap::Error) -> String {
    if let Some(source) = std::error::Error::source(e) {
        return source.to_string();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    first.strip_prefix("error: ").unwrap_or(first).to_string()
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
