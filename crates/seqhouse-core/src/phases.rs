//! Where a local job's time goes, phase by phase: the one line `-v` prints at the end of a job,
//! which `bench/run` reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A phase of a local job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Decoding the input, and for a job split by entity, splitting it into ranges.
    Read,
    /// Dropping null keys and ordering each entity's events.
    Sort,
    /// The filters, features and vocabularies, and cutting the windows.
    Window,
    /// Encoding, compressing and writing the output.
    Write,
    /// Writing entity ranges to the spill folder and reading them back.
    Spill,
}

impl Phase {
    /// Every phase, in the order a job meets them and the summary names them.
    pub const ALL: [Phase; 5] = [Phase::Read, Phase::Sort, Phase::Window, Phase::Write, Phase::Spill];

    /// The phase's name in the summary.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Read => "read",
            Phase::Sort => "sort",
            Phase::Window => "window",
            Phase::Write => "write",
            Phase::Spill => "spill",
        }
    }
}

/// The time spent in each phase, added from any thread. A job split by entity writes one range
/// while it sorts the next, so phases overlap and their sum can exceed the job's wall time;
/// each counts the time its own calls took.
#[derive(Debug, Default)]
pub struct PhaseTimes {
    nanos: [AtomicU64; 5],
}

impl PhaseTimes {
    /// Adds `elapsed` to `phase`.
    pub fn add(&self, phase: Phase, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[phase as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    /// Runs `work`, adding the time it takes to `phase`.
    pub fn time<T>(&self, phase: Phase, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.add(phase, started.elapsed());
        result
    }

    /// The time added to `phase` so far.
    pub fn of(&self, phase: Phase) -> Duration {
        Duration::from_nanos(self.nanos[phase as usize].load(Ordering::Relaxed))
    }

    /// One line: `phases: read 0.412 s, sort 0.203 s, window 0.301 s, write 0.660 s, spill 0.000 s`.
    pub fn summary(&self) -> String {
        let phases: Vec<String> =
            Phase::ALL.iter().map(|&p| format!("{} {:.3} s", p.name(), self.of(p).as_secs_f64())).collect();
        format!("phases: {}", phases.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_adds_up_its_own_time() {
        let times = PhaseTimes::default();
        times.add(Phase::Sort, Duration::from_millis(1500));
        times.add(Phase::Sort, Duration::from_millis(250));
        assert_eq!(times.time(Phase::Write, || 7), 7);
        times.add(Phase::Spill, Duration::from_millis(40));
        assert_eq!(times.of(Phase::Sort), Duration::from_millis(1750));
        assert_eq!(times.of(Phase::Read), Duration::ZERO);
        assert!(times.of(Phase::Write) < Duration::from_secs(1));
        assert_eq!(times.summary(), "phases: read 0.000 s, sort 1.750 s, window 0.000 s, write 0.000 s, spill 0.040 s");
    }
}
