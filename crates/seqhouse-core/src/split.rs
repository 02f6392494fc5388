//! Splitting a log into named parts (train, validation, test) without leakage: by entity, by a
//! hash that every engine computes the same way ([`Shares`]); by global time cutoffs
//! ([`Cutoffs`]); or by each entity's last events ([`LastCounts`]). Each kind gives every entity
//! a range of *target* events per split, and [`split_windows`] defines the windows and target
//! masks that follow from those ranges, the same for every kind and engine.
//!
//! The entity hash:
//!
//! An entity's split is decided by its key values and a seed alone, never by the order or the
//! machine it is read on, so the local engine, Athena (Trino SQL) and Spark SQL put every entity
//! in the same split. The hash is one that all three compute exactly:
//!
//! 1. The **message** is the text `v1|SEED` followed, for each entity column in order, by
//!    `|LEN:TEXT`: TEXT is the value as decimal digits for integers (`-12`, no leading zeros) and
//!    the value itself for strings; LEN is TEXT's length in UTF-8 bytes. Seed 0 and user 42 give
//!    `v1|0|2:42`; seed 7 and (`"fr"`, 3) give `v1|7|2:fr|1:3`.
//! 2. Its **SHA-256** digest: bytes 0–3 read as a big-endian unsigned integer are the
//!    entity's *bucket* (0 ≤ bucket < 2³²), bytes 4–7 likewise its *fold bits*.
//! 3. With fractions f₁ … fₙ (exact decimals summing to exactly 1), split k < n holds the
//!    buckets below `floor((f₁ + … + fₖ) · 2³²)` not held by an earlier split, and split n the
//!    rest. The thresholds are computed exactly, from the decimals, not in floating point.
//! 4. With K folds, an entity of the first split is in fold `fold_bits mod K`.
//!
//! In Python: `b = hashlib.sha256(message.encode()).digest()`, `bucket = int.from_bytes(b[:4],
//! "big")`, `fold = int.from_bytes(b[4:8], "big") % K`.

use std::fmt;
use std::str::FromStr;

/// The version tag the message starts with; a different hash would get another.
const MESSAGE_VERSION: &str = "v1";
/// Decimal digits a fraction may have after the point.
const FRACTION_DIGITS: u32 = 18;
/// 10^[`FRACTION_DIGITS`]: the fixed-point unit of fractions.
const FRACTION_ONE: u128 = 10u128.pow(FRACTION_DIGITS);
/// The number of buckets, 2³².
const BUCKETS: u128 = 1 << 32;

/// What is wrong with a split's options, for a front end to render with its own names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// A part is not `NAME=FRACTION`.
    #[error("'{0}' is not NAME=FRACTION (e.g. train=0.8)")]
    NotAPair(String),
    /// A split name that cannot name an output folder.
    #[error("split name '{0}' must be letters, digits, '_' or '-'")]
    BadName(String),
    /// A name given twice.
    #[error("split '{0}' is named twice")]
    RepeatedName(String),
    /// A fraction that is not a decimal in (0, 1].
    #[error(
        "fraction '{0}' of split '{1}' must be a decimal number above 0 and at most 1, with at most 18 digits after the point"
    )]
    BadFraction(String, String),
    /// Fractions that do not add up to exactly 1.
    #[error("the fractions add up to {0}, not 1")]
    NotWhole(String),
    /// Fewer than two splits.
    #[error("a split needs at least two parts, e.g. train=0.8,test=0.2")]
    TooFew,
    /// A held-out count that is not a positive integer.
    #[error("count '{0}' of split '{1}' must be a whole number of events, at least 1")]
    BadCount(String, String),
    /// `train` named among the held-out splits, which it is not: it gets the rest.
    #[error(
        "'train' gets the events that no named split holds; name only the held-out splits (e.g. validation=1,test=1)"
    )]
    TrainNamed,
    /// A cutoff that is empty.
    #[error("split '{0}' has no cutoff value")]
    EmptyCutoff(String),
}

/// A share of entities: an exact decimal in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fraction {
    /// The value in units of 10⁻¹⁸.
    units: u128,
}

impl Fraction {
    /// The value as a float (for display and sampling-error checks).
    pub fn as_f64(self) -> f64 {
        self.units as f64 / FRACTION_ONE as f64
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_decimal(f, self.units)
    }
}

/// `units` (of 10⁻¹⁸) as the shortest decimal: `0.8`, `1`, `1.000000000000000001`.
fn write_decimal(f: &mut fmt::Formatter<'_>, units: u128) -> fmt::Result {
    let (whole, part) = (units / FRACTION_ONE, units % FRACTION_ONE);
    if part == 0 {
        return write!(f, "{whole}");
    }
    let digits = format!("{part:018}");
    write!(f, "{whole}.{}", digits.trim_end_matches('0'))
}

impl FromStr for Fraction {
    type Err = ();

    /// `0.8`, `.25`, `1`, `1.0`: plain decimals, no sign or exponent.
    fn from_str(text: &str) -> Result<Self, ()> {
        let (whole, part) = text.split_once('.').unwrap_or((text, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && part.is_empty()) || !all_digits(whole) || !all_digits(part) {
            return Err(());
        }
        if part.len() > FRACTION_DIGITS as usize || whole.len() > 1 {
            return Err(());
        }
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| ())? };
        let part_units: u128 = if part.is_empty() {
            0
        } else {
            part.parse::<u128>().map_err(|_| ())? * 10u128.pow(FRACTION_DIGITS - part.len() as u32)
        };
        let units = whole * FRACTION_ONE + part_units;
        if units == 0 || units > FRACTION_ONE {
            return Err(());
        }
        Ok(Fraction { units })
    }
}

/// Named shares of entities, in the order given: `train=0.8,validation=0.1,test=0.1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shares {
    parts: Vec<(String, Fraction)>,
}

impl Shares {
    /// The splits' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().map(|(name, _)| name.as_str())
    }

    /// The splits with their fractions, in order.
    pub fn parts(&self) -> &[(String, Fraction)] {
        &self.parts
    }

    /// For each split but the last, the bucket it ends before: `floor((f₁ + … + fₖ) · 2³²)`.
    pub fn thresholds(&self) -> Vec<u64> {
        let mut cumulative = 0u128;
        self.parts[..self.parts.len() - 1]
            .iter()
            .map(|(_, fraction)| {
                cumulative += fraction.units;
                // Exact: at most 10^18 · 2^32 < 2^92.
                (cumulative * BUCKETS / FRACTION_ONE) as u64
            })
            .collect()
    }

    /// The split (its index in [`Shares::parts`]) that holds `bucket`.
    pub fn split_of(thresholds: &[u64], bucket: u32) -> usize {
        thresholds.iter().position(|&end| u64::from(bucket) < end).unwrap_or(thresholds.len())
    }
}

impl FromStr for Shares {
    type Err = SplitError;

    fn from_str(text: &str) -> Result<Self, SplitError> {
        let parts = named_values(text, false)?
            .into_iter()
            .map(|(name, fraction)| match fraction.parse() {
                Ok(fraction) => Ok((name, fraction)),
                Err(()) => Err(SplitError::BadFraction(fraction, name)),
            })
            .collect::<Result<Vec<(String, Fraction)>, _>>()?;
        if parts.len() < 2 {
            return Err(SplitError::TooFew);
        }
        let total: u128 = parts.iter().map(|(_, f)| f.units).sum();
        if total != FRACTION_ONE {
            struct Total(u128);
            impl fmt::Display for Total {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write_decimal(f, self.0)
                }
            }
            return Err(SplitError::NotWhole(Total(total).to_string()));
        }
        Ok(Shares { parts })
    }
}

/// The name of the split that gets what the held-out splits do not.
pub const TRAIN: &str = "train";

/// Parses `NAME=VALUE,...` with valid, distinct names, none of them `train` when `train_implied`.
fn named_values(text: &str, train_implied: bool) -> Result<Vec<(String, String)>, SplitError> {
    let mut parts: Vec<(String, String)> = Vec::new();
    for part in text.split(',').map(str::trim) {
        let (name, value) = part.split_once('=').ok_or_else(|| SplitError::NotAPair(part.to_string()))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(SplitError::BadName(name.to_string()));
        }
        if train_implied && name == TRAIN {
            return Err(SplitError::TrainNamed);
        }
        if parts.iter().any(|(seen, _)| seen == name) {
            return Err(SplitError::RepeatedName(name.to_string()));
        }
        parts.push((name.to_string(), value.to_string()));
    }
    Ok(parts)
}

/// Leave-last counts, `validation=1,test=1`: per entity, the last K events of each named split,
/// the last split's at the very end; `train` gets the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastCounts {
    parts: Vec<(String, usize)>,
}

impl FromStr for LastCounts {
    type Err = SplitError;

    fn from_str(text: &str) -> Result<Self, SplitError> {
        let parts = named_values(text, true)?
            .into_iter()
            .map(|(name, count)| match count.parse::<usize>() {
                Ok(k) if k >= 1 => Ok((name, k)),
                _ => Err(SplitError::BadCount(count, name)),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LastCounts { parts })
    }
}

impl LastCounts {
    /// The held-out splits' counts, in order.
    pub fn counts(&self) -> Vec<usize> {
        self.parts.iter().map(|(_, k)| *k).collect()
    }

    /// The splits' names: `train`, then the held-out ones in order.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(TRAIN).chain(self.parts.iter().map(|(name, _)| name.as_str())).collect()
    }

    /// The target ranges of an entity of `events` events, one per split of [`LastCounts::names`],
    /// and whether it had too few events to hold any out (it then stays in `train` only): an
    /// entity needs more events than all held-out splits together, so that `train` keeps one.
    pub fn targets(&self, events: usize) -> (Vec<std::ops::Range<usize>>, bool) {
        let held_out: usize = self.parts.iter().map(|(_, k)| k).sum();
        if events <= held_out {
            let targets = std::iter::once(0..events).chain(self.parts.iter().map(|_| events..events));
            return (targets.collect(), true);
        }
        let mut start = events - held_out;
        let mut targets = Vec::with_capacity(self.parts.len() + 1);
        targets.push(0..start);
        for (_, k) in &self.parts {
            targets.push(start..start + k);
            start += k;
        }
        (targets, false)
    }
}

/// Temporal cutoffs, `validation=2024-01-01T00:00:00,test=2024-02-01T00:00:00`, as text: the
/// values are parsed as the first order-by column's type once it is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cutoffs {
    parts: Vec<(String, String)>,
}

impl FromStr for Cutoffs {
    type Err = SplitError;

    fn from_str(text: &str) -> Result<Self, SplitError> {
        let parts = named_values(text, true)?;
        if let Some((name, _)) = parts.iter().find(|(_, value)| value.is_empty()) {
            return Err(SplitError::EmptyCutoff(name.clone()));
        }
        Ok(Cutoffs { parts })
    }
}

impl Cutoffs {
    /// The splits' names: `train`, then one per cutoff in order.
    pub fn names(&self) -> Vec<&str> {
        std::iter::once(TRAIN).chain(self.parts.iter().map(|(name, _)| name.as_str())).collect()
    }

    /// The cutoffs' texts, in order, with their splits' names.
    pub fn parts(&self) -> &[(String, String)] {
        &self.parts
    }

    /// The target ranges of an entity whose ordered events number `events`, of which
    /// `before[k]` come before cutoff `k` (non-decreasing, as the cutoffs are): `train` holds
    /// the events before the first cutoff, and split `k` those from cutoff `k` up to the next.
    pub fn targets(events: usize, before: &[usize]) -> Vec<std::ops::Range<usize>> {
        let mut bounds = Vec::with_capacity(before.len() + 2);
        bounds.push(0);
        bounds.extend(before.iter().copied());
        bounds.push(events);
        bounds.windows(2).map(|w| w[0]..w[1]).collect()
    }
}

/// How a job splits its input, as the spec holds it and the manifest records it.
///
/// Every kind gives each entity a range of target events per split ([`Split::names`] in order):
/// the whole entity to one split (`entity`), the events between global cutoffs (`temporal`), or
/// the entity's last events (`leave_last`). The windows follow from those ranges by
/// [`split_windows`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Split {
    /// Every entity to one split, by the entity hash.
    Entity {
        /// The named fractions, in order.
        fractions: Shares,
        /// The seed of the hash.
        seed: i64,
        /// Cross-validation folds inside the first split, if asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        folds: Option<u32>,
    },
    /// Global cutoffs on the first order-by column.
    Temporal {
        /// The named cutoffs, in order.
        cutoffs: Cutoffs,
    },
    /// Per entity, its last events.
    LeaveLast {
        /// The named counts, in order (the last split's events come last).
        counts: LastCounts,
    },
}

/// The folds a split may have.
pub const FOLDS: std::ops::RangeInclusive<u32> = 2..=100;

impl Split {
    /// The splits' names, in output order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            Split::Entity { fractions, .. } => fractions.names().collect(),
            Split::Temporal { cutoffs } => cutoffs.names(),
            Split::LeaveLast { counts } => counts.names(),
        }
    }

    /// The option that asked for this split.
    pub fn setting(&self) -> crate::Setting {
        match self {
            Split::Entity { .. } => crate::Setting::Split,
            Split::Temporal { .. } => crate::Setting::SplitAt,
            Split::LeaveLast { .. } => crate::Setting::SplitLast,
        }
    }

    /// The folds of the first split, if any.
    pub fn folds(&self) -> Option<u32> {
        match self {
            Split::Entity { folds, .. } => *folds,
            _ => None,
        }
    }
}

macro_rules! text_serde {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
text_serde!(Shares);
text_serde!(Cutoffs);
text_serde!(LastCounts);

/// `NAME=VALUE,...` as the options write it.
fn write_pairs<V: fmt::Display>(f: &mut fmt::Formatter<'_>, parts: &[(String, V)]) -> fmt::Result {
    for (i, (name, value)) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(",")?;
        }
        write!(f, "{name}={value}")?;
    }
    Ok(())
}

impl fmt::Display for Shares {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pairs(f, &self.parts)
    }
}

impl fmt::Display for Cutoffs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pairs(f, &self.parts)
    }
}

impl fmt::Display for LastCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_pairs(f, &self.parts)
    }
}

/// One entity key value as the hash reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyText<'a> {
    /// A signed integer of any width.
    Int(i64),
    /// An unsigned integer of any width.
    UInt(u64),
    /// A string.
    Str(&'a str),
}

/// The message hashed for an entity (see the module's documentation), appended to `out` (a
/// buffer reused across entities).
pub fn write_message(out: &mut String, seed: i64, keys: &[KeyText]) {
    use std::fmt::Write;
    out.clear();
    let _ = write!(out, "{MESSAGE_VERSION}|{seed}");
    let mut number = String::new();
    for key in keys {
        let text = match key {
            KeyText::Int(v) => {
                number.clear();
                let _ = write!(number, "{v}");
                number.as_str()
            }
            KeyText::UInt(v) => {
                number.clear();
                let _ = write!(number, "{v}");
                number.as_str()
            }
            KeyText::Str(s) => s,
        };
        let _ = write!(out, "|{}:{text}", text.len());
    }
}

/// An entity's bucket and fold bits: the first two big-endian 32-bit words of the SHA-256 of
/// its message.
pub fn entity_hash(message: &str) -> (u32, u32) {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(message.as_bytes());
    let word = |at: usize| u32::from_be_bytes([digest[at], digest[at + 1], digest[at + 2], digest[at + 3]]);
    (word(0), word(4))
}

/// One window of one entity in one split: events `start..end` of the entity's ordered events,
/// of which `mask_from..end` are this split's targets not scored in an earlier window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitWindow {
    /// The split's index.
    pub split: usize,
    /// First event (position in the entity's order).
    pub start: usize,
    /// One past the last event.
    pub end: usize,
    /// First event of the window that its target mask marks (`end` when none is).
    pub mask_from: usize,
}

/// The windows of one entity in every split, given each split's *target* events as a range of
/// positions in the entity's order (`targets[s]`, empty where the entity has none in split `s`).
///
/// This is the definition every engine follows. A split's windows are the `mode`'s cuts of the
/// entity's history up to the end of the split's targets (so never an event after them),
/// keeping those with at least `min_length` events and at least one target. Within a window, the
/// mask marks the targets that no earlier window of the split held: the cuts' ends never
/// decrease, so those are the positions from `max(start, targets.start, end of the previous
/// kept window)`. With `mode` sliding and stride 1, every target is marked exactly once.
///
/// An entity split gives the entity's split the range of all its events and the others none;
/// a temporal or leave-last split gives `train` the events before the first cutoff and each
/// later split its own; no split at all is one split holding every event.
///
/// The windows are appended to `windows` (a buffer reused across entities), split by split;
/// `below_min_length[s]` counts split `s`'s windows dropped for holding targets but fewer than
/// `min_length` events.
pub fn split_windows(
    mode: crate::Mode,
    n: usize,
    stride: usize,
    min_length: usize,
    targets: &[std::ops::Range<usize>],
    windows: &mut Vec<SplitWindow>,
    below_min_length: &mut [u64],
) {
    for (split, range) in targets.iter().enumerate() {
        if range.is_empty() {
            continue;
        }
        let mut scored_to = range.start;
        for (start, end) in crate::window_bounds(mode, range.end, n, stride) {
            if end <= range.start {
                continue;
            }
            if end - start < min_length {
                below_min_length[split] += 1;
                continue;
            }
            let mask_from = start.max(scored_to).min(end);
            windows.push(SplitWindow { split, start, end, mask_from });
            scored_to = scored_to.max(end);
        }
    }
}

/// The fold (0 … `folds` − 1) of an entity of the first split, from its fold bits.
pub fn fold_of(fold_bits: u32, folds: u32) -> i32 {
    (fold_bits % folds.max(1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seed: i64, keys: &[KeyText]) -> String {
        let mut out = String::new();
        write_message(&mut out, seed, keys);
        out
    }

    #[test]
    fn messages_are_as_documented() {
        assert_eq!(message(0, &[KeyText::Int(42)]), "v1|0|2:42");
        assert_eq!(message(7, &[KeyText::Str("fr"), KeyText::UInt(3)]), "v1|7|2:fr|1:3");
        assert_eq!(message(-1, &[KeyText::Int(-12), KeyText::Str("é|x")]), "v1|-1|3:-12|4:é|x");
        // Lengths keep apart keys that concatenate alike.
        assert_ne!(message(0, &[KeyText::Str("a|1:b")]), message(0, &[KeyText::Str("a"), KeyText::Str("b")]));
    }

    #[test]
    fn hashes_match_an_independent_sha256() {
        // From Python: hashlib.sha256(b"v1|0|2:42").digest()[:8], and `printf v1\|0\|2:42 | sha256sum`.
        let (bucket, fold_bits) = entity_hash("v1|0|2:42");
        let digest = format!("{bucket:08x}{fold_bits:08x}");
        assert_eq!(digest, EXPECTED_V1_0_42);
        // int.from_bytes(digest[4:8], "big") % 5 in Python.
        assert_eq!(fold_of(fold_bits, 5), (2_387_332_109u32 % 5) as i32);
    }

    /// The first 16 hex digits of SHA-256("v1|0|2:42"), computed outside Rust.
    const EXPECTED_V1_0_42: &str = "5d30e3aa8e4bcc0d";

    #[test]
    fn shares_of_entities_are_within_sampling_error_and_follow_the_seed() {
        let shares: Shares = "train=0.8,validation=0.1,test=0.1".parse().unwrap();
        let thresholds = shares.thresholds();
        let assign = |seed: i64| -> Vec<usize> {
            let mut buffer = String::new();
            (0..100_000i64)
                .map(|user| {
                    write_message(&mut buffer, seed, &[KeyText::Int(user)]);
                    Shares::split_of(&thresholds, entity_hash(&buffer).0)
                })
                .collect()
        };
        let seed_0 = assign(0);
        for (k, (name, fraction)) in shares.parts().iter().enumerate() {
            let share = seed_0.iter().filter(|&&s| s == k).count() as f64 / seed_0.len() as f64;
            let p = fraction.as_f64();
            let sigma = (p * (1.0 - p) / seed_0.len() as f64).sqrt();
            assert!((share - p).abs() < 5.0 * sigma, "{name}: {share} of entities for a fraction of {p}");
        }
        let seed_1 = assign(1);
        let moved = seed_0.iter().zip(&seed_1).filter(|(a, b)| a != b).count();
        // Independent assignments agree on 0.8² + 0.1² + 0.1² = 66% of entities.
        assert!((30_000..38_000).contains(&moved), "{moved} of 100,000 entities moved with the seed");
        assert_eq!(assign(0), seed_0, "the same seed gives the same assignment");
    }

    #[test]
    fn shares_parse_exactly_and_thresholds_are_exact() {
        let shares: Shares = "train=0.8,validation=0.1,test=0.1".parse().unwrap();
        assert_eq!(shares.names().collect::<Vec<_>>(), ["train", "validation", "test"]);
        // floor(0.8 · 2^32) and floor(0.9 · 2^32), as integers.
        assert_eq!(shares.thresholds(), [3_435_973_836, 3_865_470_566]);
        assert_eq!(Shares::split_of(&shares.thresholds(), 0), 0);
        assert_eq!(Shares::split_of(&shares.thresholds(), 3_435_973_835), 0);
        assert_eq!(Shares::split_of(&shares.thresholds(), 3_435_973_836), 1);
        assert_eq!(Shares::split_of(&shares.thresholds(), 3_865_470_566), 2);
        assert_eq!(Shares::split_of(&shares.thresholds(), u32::MAX), 2);
        let halves: Shares = "a=.5,b=0.5".parse().unwrap();
        assert_eq!(halves.thresholds(), [1 << 31]);
        assert_eq!(halves.parts()[0].1.to_string(), "0.5");
    }

    #[test]
    fn bad_shares_say_what_is_wrong() {
        let error = |text: &str| text.parse::<Shares>().unwrap_err().to_string();
        assert_eq!(error("train=0.8,test=0.3"), "the fractions add up to 1.1, not 1");
        assert_eq!(error("train=0.8,test=0.1"), "the fractions add up to 0.9, not 1");
        assert_eq!(error("train=0.8,train=0.2"), "split 'train' is named twice");
        assert_eq!(error("train=1"), "a split needs at least two parts, e.g. train=0.8,test=0.2");
        assert_eq!(error("train"), "'train' is not NAME=FRACTION (e.g. train=0.8)");
        assert_eq!(error("tr/ain=0.5,test=0.5"), "split name 'tr/ain' must be letters, digits, '_' or '-'");
        for bad in ["0", "-0.5", "1.5", "1e-1", "abc", "", ".", "0.1234567890123456789"] {
            assert!(error(&format!("a={bad},b=0.5")).starts_with(&format!("fraction '{bad}' of split 'a'")), "{bad}");
        }
    }

    /// The windows of one split, by the definition spelled out naively: every cut of the
    /// history, filtered, with the mask from a set of the targets already held.
    fn naive(
        mode: crate::Mode,
        n: usize,
        stride: usize,
        min_length: usize,
        split: usize,
        targets: std::ops::Range<usize>,
    ) -> Vec<(usize, usize, usize, Vec<bool>)> {
        let mut held = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        if targets.is_empty() {
            return out;
        }
        for (start, end) in crate::window_bounds(mode, targets.end, n, stride) {
            let has_target = (start..end).any(|p| targets.contains(&p));
            if !has_target || end - start < min_length {
                continue;
            }
            let mask: Vec<bool> = (start..end).map(|p| targets.contains(&p) && !held.contains(&p)).collect();
            held.extend((start..end).filter(|p| targets.contains(p)));
            assert!((start..end).all(|p| p < targets.end), "no event after the split's targets");
            out.push((split, start, end, mask));
        }
        out
    }

    #[test]
    fn leave_last_holds_out_each_entitys_last_events_in_order() {
        let counts: LastCounts = "validation=1,test=2".parse().unwrap();
        assert_eq!(counts.names(), ["train", "validation", "test"]);
        assert_eq!(counts.targets(10), (vec![0..7, 7..8, 8..10], false));
        assert_eq!(counts.targets(4), (vec![0..1, 1..2, 2..4], false));
        // Three events cannot keep one for train: the entity stays in train only.
        assert_eq!(counts.targets(3), (vec![0..3, 3..3, 3..3], true));
        let error = |text: &str| text.parse::<LastCounts>().unwrap_err().to_string();
        assert_eq!(
            error("validation=0"),
            "count '0' of split 'validation' must be a whole number of events, at least 1"
        );
        assert_eq!(
            error("validation=x"),
            "count 'x' of split 'validation' must be a whole number of events, at least 1"
        );
        assert!(error("train=1,test=1").starts_with("'train' gets the events"), "{}", error("train=1"));
        assert_eq!(error("test=1,test=2"), "split 'test' is named twice");
    }

    #[test]
    fn cutoffs_give_train_the_past_and_each_split_its_range() {
        let cutoffs: Cutoffs = "validation=2024-01-01T00:00:00, test=2024-02-01".parse().unwrap();
        assert_eq!(cutoffs.names(), ["train", "validation", "test"]);
        assert_eq!(cutoffs.parts()[1], ("test".to_string(), "2024-02-01".to_string()));
        assert_eq!(Cutoffs::targets(10, &[4, 8]), vec![0..4, 4..8, 8..10]);
        // All events after both cutoffs: nothing for train or validation.
        assert_eq!(Cutoffs::targets(5, &[0, 0]), vec![0..0, 0..0, 0..5]);
        let error = |text: &str| text.parse::<Cutoffs>().unwrap_err().to_string();
        assert_eq!(error("validation="), "split 'validation' has no cutoff value");
        assert!(error("train=5").starts_with("'train' gets the events"));
    }

    proptest::proptest! {
        #[test]
        fn split_windows_follow_the_naive_definition(
            mode in proptest::sample::select(vec![crate::Mode::Chunk, crate::Mode::Sliding, crate::Mode::Last, crate::Mode::Prefix]),
            n in 1usize..7,
            stride in 1usize..9,
            min_length in 1usize..4,
            cuts in proptest::collection::vec(0usize..30, 1..5),
        ) {
            // Cutoffs at sorted positions: split s targets cuts[s-1]..cuts[s] (train from 0).
            let mut cuts = cuts;
            cuts.sort_unstable();
            let total = cuts.last().copied().unwrap_or(0) + 3;
            let mut bounds = vec![0];
            bounds.extend(cuts.iter().copied());
            bounds.push(total);
            let targets: Vec<std::ops::Range<usize>> = bounds.windows(2).map(|w| w[0]..w[1]).collect();
            // As the spec allows: 1 ≤ stride ≤ N in sliding mode, N otherwise.
            let stride = if mode == crate::Mode::Sliding { stride.min(n) } else { n };
            let mut got = Vec::new();
            let mut below = vec![0; targets.len()];
            split_windows(mode, n, stride, min_length, &targets, &mut got, &mut below);
            let expected: Vec<_> = targets.iter().enumerate()
                .flat_map(|(s, t)| naive(mode, n, stride, min_length, s, t.clone()))
                .collect();
            let got_masks: Vec<_> = got.iter()
                .map(|w| (w.split, w.start, w.end, (w.start..w.end).map(|p| p >= w.mask_from).collect::<Vec<_>>()))
                .collect();
            proptest::prop_assert_eq!(got_masks, expected);
            if mode == crate::Mode::Sliding && stride == 1 && min_length == 1 {
                // Every event is a target of exactly one split, and marked exactly once.
                let marked: usize = got.iter().map(|w| w.end - w.mask_from).sum();
                proptest::prop_assert_eq!(marked, total);
            }
        }
    }
}
