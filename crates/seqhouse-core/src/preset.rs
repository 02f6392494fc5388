//! Presets: a peer tool's sequencing conventions as named defaults (`--preset NAME`). Every value
//! a preset sets is a default: an option given explicitly wins over it.
//!
//! Each preset is checked in the tests against the peer's own published code on the shared real
//! data (pyKT's `generate_sequences` and `generate_window_sequences`).

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
        out
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}
