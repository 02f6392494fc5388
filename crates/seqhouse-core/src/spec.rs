//! What a sequencing job is asked to do, validated once, independent of any engine.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::setting::Setting;
use crate::split::{FOLDS, Split};

/// Name of the output column numbering an entity's kept windows (0, 1, 2, ...).
pub const SEQUENCE_INDEX: &str = "sequence_index";
/// Name of the output column holding the number of real events in a window.
pub const SEQUENCE_LENGTH: &str = "sequence_length";
/// Name of the output mask column: N int8 values, 1 where padded, 0 where real.
pub const IS_PAD: &str = "is_pad_sequence";
/// Name of the output column marking the positions a window scores: N int8 values, 1 where the
/// event is a target of the window's split not scored by an earlier window (`--target-mask`).
pub const TARGET_MASK: &str = "target_mask";
/// Name of the output column numbering an entity's sessions (`--session-gap`): 0, 1, ...
pub const SESSION_INDEX: &str = "session_index";
/// Name of the output column holding a window's cross-validation fold (`--folds`).
pub const FOLD: &str = "fold";
/// The most splits a job may publish (each is an output folder).
pub const MAX_SPLITS: usize = 64;
/// Suffix of every feature's output column (`NAME_sequence`).
pub const FEATURE_SUFFIX: &str = "_sequence";

/// How an entity's ordered events are cut into windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Windows `[0,N)`, `[N,2N)`, ...; the last may be partial.
    Chunk,
    /// Windows starting at `0, S, 2S, ...`, stopping after the first that reaches the last event.
    Sliding,
    /// One window per entity: its most recent N events.
    Last,
    /// One window per event, ending at that event: `[max(0,k-N), k)` for `k = 1..=len`.
    Prefix,
}

/// Which side of the real events the padding goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// Real events first, padding after.
    Post,
    /// Padding first, real events after (the most recent event is last).
    Pre,
}

/// What to do with rows whose entity or order-by value is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NullKeyPolicy {
    /// Stop with an error naming the column.
    Error,
    /// Drop those rows and count them in the manifest.
    Drop,
}

macro_rules! text_enum {
    ($ty:ty, $setting:expr, $what:literal, $($text:literal => $variant:expr),+ $(,)?) => {
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s.to_ascii_lowercase().as_str() {
                    $($text => Ok($variant),)+
                    other => Err(Error::setting_message($setting, format!(
                        concat!("unknown ", $what, " '{}'; expected one of: {}"),
                        other,
                        [$($text),+].join(", ")
                    ))),
                }
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let text = match self { $(v if *v == $variant => $text,)+ _ => unreachable!() };
                f.write_str(text)
            }
        }
    };
}

text_enum!(Mode, Setting::Mode, "mode", "chunk" => Mode::Chunk, "sliding" => Mode::Sliding, "last" => Mode::Last, "prefix" => Mode::Prefix);
text_enum!(Padding, Setting::Padding, "padding", "post" => Padding::Post, "pre" => Padding::Pre);
text_enum!(NullKeyPolicy, Setting::OnNullKey, "null-key policy", "error" => NullKeyPolicy::Error, "drop" => NullKeyPolicy::Drop);
text_enum!(GapUnit, Setting::TimeDelta, "time unit", "s" => GapUnit::Seconds, "ms" => GapUnit::Milliseconds, "us" => GapUnit::Microseconds, "ns" => GapUnit::Nanoseconds);

/// The unit a time gap of a timestamp column is given in (`--time-delta NAME=COL:UNIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GapUnit {
    /// Whole seconds (the default).
    #[serde(rename = "s")]
    Seconds,
    /// Whole milliseconds.
    #[serde(rename = "ms")]
    Milliseconds,
    /// Whole microseconds.
    #[serde(rename = "us")]
    Microseconds,
    /// Nanoseconds.
    #[serde(rename = "ns")]
    Nanoseconds,
}

impl GapUnit {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> i64 {
        match self {
            GapUnit::Seconds => 1_000_000_000,
            GapUnit::Milliseconds => 1_000_000,
            GapUnit::Microseconds => 1_000,
            GapUnit::Nanoseconds => 1,
        }
    }
}

/// A derived feature: the gap between an event's `column` and the previous event of the same
/// entity, over the entity's whole ordered history (after the filters); null for its first event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeDelta {
    /// The feature's name (`NAME_sequence` in the output); one of the spec's `features`, which
    /// gives its position and pad.
    pub name: String,
    /// The input column the gap is taken over: an integer (its own units), a date (days) or a
    /// timestamp (`unit`).
    pub column: String,
    /// For a timestamp column, the unit of the gap; `None` is seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<GapUnit>,
}

impl FromStr for TimeDelta {
    type Err = Error;
    /// Parses `NAME=COL` or `NAME=COL:UNIT` (UNIT one of s, ms, us, ns).
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::setting(
                Setting::TimeDelta,
                format!("'{s}' must be NAME=COL or NAME=COL:UNIT (UNIT s, ms, us or ns), e.g. lag=timestamp:s"),
            )
        };
        let (name, rest) = s.split_once('=').ok_or_else(bad)?;
        let (column, unit) = match rest.rsplit_once(':') {
            Some((column, unit)) => {
                let unit = unit.parse::<GapUnit>().map_err(|_| {
                    Error::setting(
                        Setting::TimeDelta,
                        format!("'{s}' has the unknown time unit '{unit}'; expected s, ms, us or ns"),
                    )
                })?;
                (column, Some(unit))
            }
            None => (rest, None),
        };
        if name.trim().is_empty() || column.trim().is_empty() {
            return Err(bad());
        }
        Ok(TimeDelta { name: name.trim().to_string(), column: column.trim().to_string(), unit })
    }
}

/// A feature encoded as vocabulary ids (`--vocab NAME[:min_count=K][:max_size=M]`): see
/// [`crate::vocab`] for the ids and how a vocabulary is fitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabSpec {
    /// The feature (one of the spec's `features`).
    pub name: String,
    /// Values seen fewer times than this in the fitting events get the out-of-vocabulary id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u64>,
    /// At most this many values get their own id (the most frequent ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

impl FromStr for VocabSpec {
    type Err = Error;
    /// Parses `NAME`, `NAME:min_count=K`, `NAME:max_size=M` or both, in either order.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::setting(
                Setting::Vocab,
                format!("'{s}' {why}; expected NAME[:min_count=K][:max_size=M], e.g. item_id:min_count=5"),
            )
        };
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or_default().trim();
        if name.is_empty() {
            return Err(bad("has no feature name".to_string()));
        }
        let mut vocab = VocabSpec { name: name.to_string(), min_count: None, max_size: None };
        for part in parts {
            let (key, value) =
                part.split_once('=').ok_or_else(|| bad(format!("has '{part}', which is not KEY=VALUE")))?;
            let value: u64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| bad(format!("gives {key} '{value}', which is not a whole number of at least 1")))?;
            let slot = match key.trim() {
                "min_count" => &mut vocab.min_count,
                "max_size" => &mut vocab.max_size,
                other => return Err(bad(format!("has the unknown key '{other}'"))),
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("gives {key} twice")));
            }
        }
        Ok(vocab)
    }
}

impl fmt::Display for VocabSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(k) = self.min_count {
            write!(f, ":min_count={k}")?;
        }
        if let Some(m) = self.max_size {
            write!(f, ":max_size={m}")?;
        }
        Ok(())
    }
}

/// One feature column to sequence, with its pad value as text (parsed against the column's type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSpec {
    /// Input column name; the output column is `NAME_sequence`.
    pub name: String,
    /// Pad value as given by the user; `None` means the type's zero (0, 0.0, false, "", epoch).
    pub pad: Option<String>,
}

impl FeatureSpec {
    /// The output column name, `NAME_sequence`.
    pub fn output_name(&self) -> String {
        format!("{}{FEATURE_SUFFIX}", self.name)
    }
}

impl FromStr for FeatureSpec {
    type Err = Error;
    /// Parses `NAME` or `NAME=PAD`. The pad may itself contain `=`; only the first one splits.
    fn from_str(s: &str) -> Result<Self> {
        let (name, pad) = match s.split_once('=') {
            Some((name, pad)) => (name, Some(pad.to_string())),
            None => (s, None),
        };
        if name.trim().is_empty() {
            return Err(Error::setting(
                Setting::Feature,
                format!("'{s}' has no column name; expected NAME or NAME=PAD, e.g. skill_id=-1"),
            ));
        }
        Ok(FeatureSpec { name: name.to_string(), pad })
    }
}

/// A replacement for nulls inside real events of one feature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillNull {
    /// The feature column.
    pub column: String,
    /// The replacement, as text (parsed against the column's type).
    pub value: String,
}

impl FromStr for FillNull {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.split_once('=') {
            Some((column, value)) if !column.trim().is_empty() => {
                Ok(FillNull { column: column.to_string(), value: value.to_string() })
            }
            _ => Err(Error::setting(
                Setting::FillNull,
                format!("'{s}' must be NAME=VALUE, e.g. prior_question_elapsed_time=0"),
            )),
        }
    }
}

/// The k-core filter (`--k-core COL=K`): the recommender systems' filter, to its fixed point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KCore {
    /// The column whose rare values' events are dropped (a `--feature`, such as the item id).
    pub column: String,
    /// Values with fewer events than this (over every entity) are dropped.
    pub k: u64,
}

impl FromStr for KCore {
    type Err = Error;
    /// Parses `COL=K`, K a whole number of at least 1.
    fn from_str(s: &str) -> Result<Self> {
        let parsed = s.split_once('=').and_then(|(column, k)| {
            let k = k.trim().parse::<u64>().ok().filter(|k| *k >= 1)?;
            (!column.trim().is_empty()).then(|| KCore { column: column.trim().to_string(), k })
        });
        parsed.ok_or_else(|| {
            Error::setting(
                Setting::KCore,
                format!("'{s}' must be COL=K with K a whole number of at least 1, e.g. item_id=5"),
            )
        })
    }
}

impl fmt::Display for KCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.column, self.k)
    }
}

/// The full description of how to turn an event log into padded windows.
///
/// Build it, then call [`SequenceSpec::validate`]; every engine runs a validated spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceSpec {
    /// Grouping columns (one sequence family per distinct combination).
    pub entity: Vec<String>,
    /// Ordering columns, ascending; ties keep input order where the engine can see it.
    pub order_by: Vec<String>,
    /// Feature columns, in output order.
    pub features: Vec<FeatureSpec>,
    /// N, the fixed length of every output array.
    pub sequence_length: usize,
    /// How windows are cut.
    pub mode: Mode,
    /// Step between window starts in sliding mode (1 <= S <= N).
    pub stride: Option<usize>,
    /// Which side gets the padding.
    pub padding: Padding,
    /// Windows with fewer real events than this are dropped.
    pub min_length: usize,
    /// Per-feature replacements for nulls inside real events.
    pub fill_null: Vec<FillNull>,
    /// What to do with null entity/order values.
    pub on_null_key: NullKeyPolicy,
    /// How the input is split into named outputs; `None` is one output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<Split>,
    /// Write the `target_mask` column.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub target_mask: bool,
    /// Drop an event identical, on every input feature (nulls equal), to its entity's
    /// previous event.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dedupe_consecutive: bool,
    /// Drop entities with fewer events than this (after `dedupe_consecutive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_events: Option<usize>,
    /// Derived gap features; each name is also listed in `features`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub time_deltas: Vec<TimeDelta>,
    /// Cut each entity's events into sessions where the gap between consecutive events of the
    /// first order-by column exceeds this duration (`30m`, `2h`, or a plain number in the
    /// column's units); windows never cross a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_gap: Option<String>,
    /// Drop sessions with fewer events than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_session_length: Option<usize>,
    /// Repeatedly drop the events of values of a column seen fewer than K times, and the
    /// entities left with fewer than `min_events` events, until nothing changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k_core: Option<KCore>,
    /// Features whose values are replaced by vocabulary ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vocab: Vec<VocabSpec>,
    /// Where existing vocabularies are read from (an output folder, or a folder of vocabulary
    /// files), to apply instead of fitting. Not part of the manifest's spec: where a folder is
    /// depends on the machine, and the manifest names each vocabulary by its digest instead.
    #[serde(skip)]
    pub vocab_from: Option<String>,
}

impl SequenceSpec {
    /// A spec with the documented defaults: chunk mode, post padding, min length 1, error on null keys.
    pub fn new(entity: Vec<String>, order_by: Vec<String>, features: Vec<FeatureSpec>, sequence_length: usize) -> Self {
        SequenceSpec {
            entity,
            order_by,
            features,
            sequence_length,
            mode: Mode::Chunk,
            stride: None,
            padding: Padding::Post,
            min_length: 1,
            fill_null: Vec::new(),
            on_null_key: NullKeyPolicy::Error,
            split: None,
            target_mask: false,
            dedupe_consecutive: false,
            min_events: None,
            time_deltas: Vec::new(),
            session_gap: None,
            min_session_length: None,
            k_core: None,
            vocab: Vec::new(),
            vocab_from: None,
        }
    }

    /// The stride actually used: the given one in sliding mode (default 1), N otherwise.
    pub fn effective_stride(&self) -> usize {
        match self.mode {
            Mode::Sliding => self.stride.unwrap_or(1),
            _ => self.sequence_length,
        }
    }

    /// Checks everything that can be checked without seeing the data.
    pub fn validate(&self) -> Result<()> {
        let n = self.sequence_length;
        if n == 0 {
            return Err(Error::setting(Setting::SequenceLength, "must be at least 1, got 0"));
        }
        // Arrow's fixed-size lists store their length as i32.
        if n > i32::MAX as usize {
            return Err(Error::setting(
                Setting::SequenceLength,
                format!("{n} is too large; the maximum is {}", i32::MAX),
            ));
        }
        if let Some(stride) = self.stride {
            if self.mode != Mode::Sliding {
                return Err(Error::setting(
                    Setting::Stride,
                    format!("applies only to {} (mode is {})", Setting::Mode.with(Mode::Sliding), self.mode),
                ));
            }
            if stride == 0 || stride > n {
                return Err(Error::setting(
                    Setting::Stride,
                    format!("must be between 1 and {} ({n}), got {stride}", Setting::SequenceLength),
                ));
            }
        }
        if self.min_length == 0 || self.min_length > n {
            return Err(Error::setting(
                Setting::MinLength,
                format!("must be between 1 and {} ({n}), got {}", Setting::SequenceLength, self.min_length),
            ));
        }
        if self.entity.is_empty() {
            return Err(Error::setting(
                Setting::Entity,
                format!("needs at least one column, e.g. {}", Setting::Entity.with("user_id")),
            ));
        }
        if self.order_by.is_empty() {
            return Err(Error::setting(
                Setting::OrderBy,
                format!("needs at least one column, e.g. {}", Setting::OrderBy.with("timestamp")),
            ));
        }
        if self.features.is_empty() {
            return Err(Error::setting_message(
                Setting::Feature,
                format!("at least one {} is needed, e.g. {}", Setting::Feature, Setting::Feature.with("skill_id=-1")),
            ));
        }
        for name in self.entity.iter().chain(&self.order_by) {
            if name.trim().is_empty() {
                let setting = if self.entity.contains(name) { Setting::Entity } else { Setting::OrderBy };
                return Err(Error::setting_message(
                    setting,
                    format!("an {} or {} column name is empty", Setting::Entity, Setting::OrderBy),
                ));
            }
        }
        ensure_unique(Setting::Entity, &self.entity)?;
        ensure_unique(Setting::OrderBy, &self.order_by)?;
        ensure_unique(Setting::Feature, self.features.iter().map(|f| &f.name))?;
        ensure_unique(Setting::FillNull, self.fill_null.iter().map(|f| &f.column))?;
        if let Some(both) = self.order_by.iter().find(|c| self.entity.contains(c)) {
            return Err(Error::setting_message(
                Setting::OrderBy,
                format!(
                    "column '{both}' is both an {} and an {} column; ordering within an entity by its own key does nothing",
                    Setting::Entity,
                    Setting::OrderBy
                ),
            ));
        }
        self.validate_derived()?;
        for fill in &self.fill_null {
            if !self.features.iter().any(|f| f.name == fill.column) {
                return Err(Error::setting(
                    Setting::FillNull,
                    format!(
                        "names '{}', which is not a {}; nulls in key columns are handled by {}",
                        fill.column,
                        Setting::Feature,
                        Setting::OnNullKey
                    ),
                ));
            }
        }
        if let Some(split) = &self.split
            && split.names().len() > MAX_SPLITS
        {
            return Err(Error::setting(
                split.setting(),
                format!("names {} splits; at most {MAX_SPLITS} are allowed", split.names().len()),
            ));
        }
        if let Some(folds) = self.split.as_ref().and_then(Split::folds)
            && !FOLDS.contains(&folds)
        {
            return Err(Error::setting(
                Setting::Folds,
                format!("must be between {} and {}, got {folds}", FOLDS.start(), FOLDS.end()),
            ));
        }
        let mut output_names: HashSet<String> = self.entity.iter().cloned().collect();
        // The columns a split adds are reserved only when asked for: an entity named `fold`
        // stays valid in a job without folds.
        let folds = self.split.as_ref().and_then(Split::folds).is_some();
        let optional = [(self.target_mask, TARGET_MASK), (folds, FOLD), (self.session_gap.is_some(), SESSION_INDEX)];
        let added = optional.into_iter().filter_map(|(asked, name)| asked.then_some(name));
        for reserved in [SEQUENCE_INDEX, SEQUENCE_LENGTH, IS_PAD].into_iter().chain(added) {
            if !output_names.insert(reserved.to_string()) {
                return Err(Error::setting_message(
                    Setting::Entity,
                    format!("entity column '{reserved}' clashes with the output column of the same name; rename it"),
                ));
            }
        }
        for feature in &self.features {
            let out = feature.output_name();
            if !output_names.insert(out.clone()) {
                return Err(Error::setting_message(
                    Setting::Feature,
                    format!(
                        "feature '{}' would be written as '{out}', which clashes with another output column",
                        feature.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks the options that derive features and filter events.
    fn validate_derived(&self) -> Result<()> {
        ensure_unique(Setting::TimeDelta, self.time_deltas.iter().map(|t| &t.name))?;
        for delta in &self.time_deltas {
            if !self.features.iter().any(|f| f.name == delta.name) {
                return Err(Error::setting(
                    Setting::TimeDelta,
                    format!("'{}' is not also a {}, which gives its place and pad", delta.name, Setting::Feature),
                ));
            }
            if self.entity.contains(&delta.name) || self.order_by.contains(&delta.name) {
                return Err(Error::setting(
                    Setting::TimeDelta,
                    format!("'{}' is the name of a key column; give the gap another name", delta.name),
                ));
            }
        }
        self.validate_vocab()?;
        if let Some(core) = &self.k_core
            && !self.input_features().any(|f| f.name == core.column)
        {
            return Err(Error::setting(
                Setting::KCore,
                format!(
                    "'{}' is not a sequenced input column; add {} (k-core counts the values of one)",
                    core.column,
                    Setting::Feature.with(&core.column)
                ),
            ));
        }
        if self.min_session_length.is_some() && self.session_gap.is_none() {
            return Err(Error::setting(
                Setting::MinSessionLength,
                format!("applies to sessions; pass {} with it", Setting::SessionGap),
            ));
        }
        if self.min_session_length == Some(0) {
            return Err(Error::setting(Setting::MinSessionLength, "must be at least 1, got 0"));
        }
        if self.min_events == Some(0) {
            return Err(Error::setting(Setting::MinEvents, "must be at least 1, got 0"));
        }
        if self.dedupe_consecutive && self.input_features().next().is_none() {
            return Err(Error::setting_message(
                Setting::DedupeConsecutive,
                format!(
                    "compares the input features of consecutive events, and every {} here is a {}",
                    Setting::Feature,
                    Setting::TimeDelta
                ),
            ));
        }
        Ok(())
    }

    /// Checks `vocab` and `vocab_from` against the features, their pads and fills.
    fn validate_vocab(&self) -> Result<()> {
        ensure_unique(Setting::Vocab, self.vocab.iter().map(|v| &v.name))?;
        for vocab in &self.vocab {
            let name = &vocab.name;
            let Some(feature) = self.features.iter().find(|f| &f.name == name) else {
                return Err(Error::setting(
                    Setting::Vocab,
                    format!("'{name}' is not a {}; only features are encoded", Setting::Feature),
                ));
            };
            if self.time_delta(name).is_some() {
                return Err(Error::setting(
                    Setting::Vocab,
                    format!("'{name}' is a {}, a number of time units; encode its column instead", Setting::TimeDelta),
                ));
            }
            if let Some(pad) = feature.pad.as_deref().filter(|pad| pad.trim() != "0") {
                return Err(Error::setting(
                    Setting::Feature,
                    format!(
                        "gives '{name}' the pad {pad}, but it is a {} feature, whose pad is the id 0; write {} or drop the pad",
                        Setting::Vocab,
                        Setting::Feature.with(name)
                    ),
                ));
            }
            if self.fill_null.iter().any(|f| &f.column == name) {
                return Err(Error::setting(
                    Setting::FillNull,
                    format!(
                        "names '{name}', a {} feature: its nulls get their own id (1); drop the fill",
                        Setting::Vocab
                    ),
                ));
            }
            if self.vocab_from.is_some() && (vocab.min_count.is_some() || vocab.max_size.is_some()) {
                return Err(Error::setting(
                    Setting::Vocab,
                    format!(
                        "'{vocab}' sets min_count or max_size, which were fixed when the vocabulary in {} was fitted; write {} alone",
                        Setting::VocabFrom,
                        Setting::Vocab.with(name)
                    ),
                ));
            }
        }
        if self.vocab_from.is_some() && self.vocab.is_empty() {
            return Err(Error::setting(
                Setting::VocabFrom,
                format!("applies the vocabularies of the features named by {}; pass it too", Setting::Vocab),
            ));
        }
        Ok(())
    }

    /// The vocabulary of feature `name`, if it is encoded.
    pub fn vocab_of(&self, name: &str) -> Option<&VocabSpec> {
        self.vocab.iter().find(|v| v.name == name)
    }

    /// The time delta that derives feature `name`, if it is one.
    pub fn time_delta(&self, name: &str) -> Option<&TimeDelta> {
        self.time_deltas.iter().find(|t| t.name == name)
    }

    /// The features read from the input (not derived by [`SequenceSpec::time_deltas`]).
    pub fn input_features(&self) -> impl Iterator<Item = &FeatureSpec> {
        self.features.iter().filter(|f| self.time_delta(&f.name).is_none())
    }

    /// Whether events are filtered (besides null keys) before they are windowed.
    pub fn filters_events(&self) -> bool {
        self.dedupe_consecutive
            || self.min_events.is_some_and(|m| m > 1)
            || self.session_gap.is_some()
            || self.k_core.is_some()
    }

    /// What is done to each entity's events before windowing, as the options say it, in order
    /// (empty when nothing is asked): for `--explain`.
    pub fn preparation(&self) -> Vec<String> {
        let mut steps = Vec::new();
        if self.dedupe_consecutive {
            steps.push(format!("drop events that repeat the one before ({})", Setting::DedupeConsecutive));
        }
        if let Some(gap) = &self.session_gap {
            let shortest = (self.min_session_length)
                .map(|m| {
                    format!(", dropping sessions of fewer than {m} events ({})", Setting::MinSessionLength.with(m))
                })
                .unwrap_or_default();
            steps.push(format!(
                "cut sessions where '{}' moves on by more than {gap} ({}){shortest}",
                self.order_by[0],
                Setting::SessionGap.with(gap)
            ));
        }
        match (&self.k_core, self.min_events) {
            (Some(core), min) => steps.push(format!(
                "drop the events of '{}' values seen fewer than {} times{}, again until nothing changes ({})",
                core.column,
                core.k,
                min.map(|m| format!(" and entities left with fewer than {m} events")).unwrap_or_default(),
                Setting::KCore.with(core)
            )),
            (None, Some(min)) => {
                steps.push(format!("drop entities with fewer than {min} events ({})", Setting::MinEvents.with(min)))
            }
            (None, None) => {}
        }
        for delta in &self.time_deltas {
            let unit = delta.unit.map(|u| format!(":{u}")).unwrap_or_default();
            let option = Setting::TimeDelta.with(format!("{}={}{unit}", delta.name, delta.column));
            steps.push(format!("add the gaps in '{}' as feature '{}' ({option})", delta.column, delta.name));
        }
        for vocab in &self.vocab {
            let source = match &self.vocab_from {
                Some(from) => format!("read from {from} ({})", Setting::VocabFrom.with(from)),
                None => "fitted on the first split or subset".to_string(),
            };
            steps.push(format!("encode '{}' as vocabulary ids, {source} ({})", vocab.name, Setting::Vocab.with(vocab)));
        }
        steps
    }

    /// The names of the outputs: one per split, in order, or `None` alone for an unsplit job.
    pub fn output_names(&self) -> Vec<Option<&str>> {
        match &self.split {
            Some(split) => split.names().into_iter().map(Some).collect(),
            None => vec![None],
        }
    }

    /// The input columns a job reads, each once: entity, then order-by, then the input
    /// features, then the columns of the time deltas.
    pub fn needed_columns(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.entity
            .iter()
            .chain(&self.order_by)
            .chain(self.input_features().map(|f| &f.name))
            .chain(self.time_deltas.iter().map(|t| &t.column))
            .filter(|c| seen.insert(c.as_str()))
            .cloned()
            .collect()
    }
}

fn ensure_unique<'a>(setting: Setting, names: impl IntoIterator<Item = &'a String>) -> Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(Error::setting(setting, format!("names column '{name}' twice")));
        }
    }
    Ok(())
}
