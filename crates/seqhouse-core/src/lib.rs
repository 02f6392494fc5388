//! seqhouse core: the request types, the sequencing kernel, the `Warehouse` port and the
//! orchestrator. It does no I/O and knows no engine; adapters live in their own crates.
#![warn(missing_docs)]

pub mod core_filter;
pub mod error;
pub mod kernel;
pub mod manifest;
pub mod orchestrator;
mod order;
pub mod partition;
pub mod phases;
pub mod port;
pub mod preset;
pub mod resolve;
pub mod setting;
pub mod spec;
pub mod split;
pub mod vocab;

pub use error::{Error, Result};
pub use kernel::{
    BatchNulls, Core, LeakCounts, NullKeyCounts, NullKeys, OutputWindows, SequenceStats, Sequencer, SplitCounts,
    window_bounds,
};
pub use manifest::{MANIFEST_FILE, Manifest};
pub use orchestrator::{SequenceRequest, explain, explain_jobs, join_location, run, run_jobs, sequenced_folder};
pub use order::MulHasher;
pub use phases::{Phase, PhaseTimes};
pub use port::{
    Capabilities, Explanation, JobReport, NoProgress, Progress, SequenceJob, SplitReport, Step, Warehouse,
    check_window_count,
};
pub use resolve::ResolvedSpec;
pub use setting::{Setting, SettingNames, SettingValue, name_settings};
pub use spec::{
    FeatureSpec, FillNull, GapUnit, KCore, Mode, NullKeyPolicy, Padding, SequenceSpec, TimeDelta, VocabSpec,
};

/// The version written into manifests.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
