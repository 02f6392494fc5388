//! Presets: a peer tool's sequencing conventions as named defaults (`--preset NAME`). Every value
//! a preset sets is a default: an option given explicitly wins over it.
//!
//! Each preset is checked in the tests against the peer's own published code on the shared real
//! data: pyKT's `generate_sequences` and `generate_window_sequences` on ASSISTments 2015; the
//! leave-one-out split and training sampler of SASRec (as Microsoft Recommenders ships them) and
//! RecBole's sequence augmentation and leave-one-out split on MovieLens.

use std::fmt;

use crate::error::{Error, Result};
use crate::setting::Setting;
use crate::spec::{Mode, Padding};

/// One preset: the defaults it sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preset {
    /// Its name, as `--preset` takes it.
    pub name: &'static str,
    /// Whose convention it is, for `seqhouse presets`.
    pub about: &'static str,
    /// N.
    pub sequence_length: usize,
    /// How windows are cut.
    pub mode: Mode,
    /// The stride, in sliding mode.
    pub stride: Option<usize>,
    /// The shortest window kept.
    pub min_length: usize,
    /// The padding side.
    pub padding: Padding,
    /// The pad of every feature that names none.
    pub pad: Option<&'static str>,
    /// Whether the `target_mask` column is added.
    pub target_mask: bool,
    /// The split, as `--split-last` takes it, when the job names no split and no subsets.
    pub split_last: Option<&'static str>,
    /// Whether every feature that gives no pad holds vocabulary ids (pad 0); a feature given a
    /// pad (`--feature NAME=PAD`) keeps its raw values.
    pub vocab: bool,
}

/// Every preset, in the order `seqhouse presets` lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "pykt",
        about: "pyKT's training sequences (generate_sequences): chunks of 200, the last kept when it has 3 events or more, padded after with -1",
        sequence_length: 200,
        mode: Mode::Chunk,
        stride: None,
        min_length: 3,
        padding: Padding::Post,
        pad: Some("-1"),
        target_mask: false,
        split_last: None,
        vocab: false,
    },
    Preset {
        name: "pykt-window",
        about: "pyKT's evaluation windows (generate_window_sequences): the first 200 events, then one window per later event, scoring only its last position (target_mask), padded after with -1",
        sequence_length: 200,
        mode: Mode::Sliding,
        stride: Some(1),
        min_length: 1,
        padding: Padding::Post,
        pad: Some("-1"),
        target_mask: true,
        split_last: None,
        vocab: false,
    },
    // N is the model's 50 inputs plus the event they predict: SASRec's training pair is
    // (window[:-1], window[1:]), its evaluation input window[:-1] with target window[-1].
    Preset {
        name: "sasrec",
        about: "SASRec's sequences (maxlen 50): each entity's last 51 events per split, padded before with id 0, leave-one-out (validation=1,test=1); input window[:-1], next items window[1:]",
        sequence_length: 51,
        mode: Mode::Last,
        stride: None,
        min_length: 2,
        padding: Padding::Pre,
        pad: None,
        target_mask: false,
        split_last: Some("validation=1,test=1"),
        vocab: true,
    },
    // RecBole's MAX_ITEM_LIST_LENGTH = 50 counts the history only; the window adds its target.
    Preset {
        name: "recbole",
        about: "RecBole's sequential data (MAX_ITEM_LIST_LENGTH 50, leave-one-out): one window per target with its last 50 events before it, padded after with id 0; history window[:len-1], target window[len-1]",
        sequence_length: 51,
        mode: Mode::Prefix,
        stride: None,
        min_length: 2,
        padding: Padding::Post,
        pad: None,
        target_mask: false,
        split_last: Some("validation=1,test=1"),
        vocab: true,
    },
];

impl Preset {
    /// The preset called `name`, or an error listing them.
    pub fn named(name: &str) -> Result<&'static Preset> {
        PRESETS.iter().find(|p| p.name.eq_ignore_ascii_case(name.trim())).ok_or_else(|| {
            Error::setting(
                Setting::Preset,
                format!(
                    "'{name}' is not a preset; the presets are {} (`seqhouse presets` lists their values)",
                    PRESETS.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    /// The options it sets, as a user would give them.
    pub fn settings(&self) -> Vec<String> {
        let mut out = vec![Setting::SequenceLength.with(self.sequence_length).to_string()];
        out.push(Setting::Mode.with(self.mode).to_string());
        out.extend(self.stride.map(|s| Setting::Stride.with(s).to_string()));
        out.push(Setting::MinLength.with(self.min_length).to_string());
        out.push(Setting::Padding.with(self.padding).to_string());
        if let Some(pad) = self.pad {
            out.push(format!("{} NAME={pad} for every feature that gives no pad", Setting::Feature));
        }
        if self.target_mask {
            out.push(Setting::TargetMask.to_string());
        }
        out.extend(self.split_last.map(|counts| {
            format!("{} {counts} when no split and no {} is given", Setting::SplitLast, Setting::Subsets)
        }));
        if self.vocab {
            out.push(format!("{} NAME for every feature that gives no pad", Setting::Vocab));
        }
        out
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::PRESETS;
    use crate::split::LastCounts;

    /// A preset's split is text, read when a job takes it: every one must read.
    #[test]
    fn every_presets_split_reads() {
        for preset in PRESETS {
            if let Some(counts) = preset.split_last {
                counts.parse::<LastCounts>().unwrap_or_else(|e| panic!("{preset}: {e}"));
            }
        }
    }
}
