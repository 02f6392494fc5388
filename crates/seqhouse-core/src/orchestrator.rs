//! The orchestrator: expands a request into jobs (one per subset) and runs them through the port.
//! It knows no engine.

use std::time::Instant;

use crate::error::{Error, Result};
use crate::port::{Explanation, JobReport, Progress, SequenceJob, Warehouse};
use crate::setting::Setting;
use crate::spec::SequenceSpec;

/// What the user asked for: one dataset, or several subsets under a common root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRequest {
    /// Input location (the dataset, or the root holding one folder per subset).
    pub input: String,
    /// Output location (the dataset's folder, or the root receiving `SUBSET_sequenced_N/`).
    pub output: String,
    /// Subset names (`train`, `validation`, `test`, ...); empty for a single dataset.
    pub subsets: Vec<String>,
    /// What to compute.
    pub spec: SequenceSpec,
    /// Replace existing outputs.
    pub overwrite: bool,
}

/// Joins a folder location and a child name with exactly one `/`, for paths and URLs alike.
pub fn join_location(base: &str, child: &str) -> String {
    format!("{}/{child}", base.trim_end_matches('/'))
}

/// The folder a subset or split `name` is published in: `NAME_sequenced_N`.
pub fn sequenced_folder(name: &str, sequence_length: usize) -> String {
    format!("{name}_sequenced_{sequence_length}")
}

impl SequenceRequest {
    /// The jobs this request stands for, in the order they run.
    ///
    /// Subset `s` reads `INPUT/s/` and writes `OUTPUT/s_sequenced_N/`.
    pub fn jobs(&self) -> Result<Vec<SequenceJob>> {
        self.spec.validate()?;
        if let Some(split) = &self.spec.split
            && !self.subsets.is_empty()
        {
            let setting = split.setting();
            return Err(Error::setting_message(
                setting,
                format!(
                    "{setting} splits one input into subsets itself, so it cannot be combined with {}, which reads subsets split beforehand; pass one of them",
                    Setting::Subsets
                ),
            ));
        }
        if self.subsets.is_empty() {
            return Ok(vec![SequenceJob {
                input: self.input.clone(),
                output: self.output.clone(),
                subset: None,
                spec: self.spec.clone(),
                overwrite: self.overwrite,
            }]);
        }
        let mut seen = std::collections::HashSet::new();
        // Vocabularies are fitted on the first subset only and applied to the others from its
        // output, so validation and test never shape them.
        let fitted_by_first = (!self.spec.vocab.is_empty() && self.spec.vocab_from.is_none())
            .then(|| join_location(&self.output, &sequenced_folder(&self.subsets[0], self.spec.sequence_length)));
        self.subsets
            .iter()
            .enumerate()
            .map(|(i, subset)| {
                let valid = !subset.is_empty()
                    && subset != "."
                    && subset != ".."
                    && !subset.contains(['/', '\\'])
                    && !subset.starts_with(['_', '.']);
                if !valid {
                    return Err(Error::setting(
                        Setting::Subsets,
                        format!(
                            "entry '{subset}' is not a plain folder name (no slashes, not empty, not starting with '_' or '.')"
                        ),
                    ));
                }
                if !seen.insert(subset) {
                    return Err(Error::setting(Setting::Subsets, format!("names '{subset}' twice")));
                }
                let mut spec = self.spec.clone();
                if i > 0 && fitted_by_first.is_some() {
                    // Applied as fitted: how it was fitted is the first subset's to record.
                    spec.vocab_from = fitted_by_first.clone();
                    spec.vocab.iter_mut().for_each(|vocab| (vocab.min_count, vocab.max_size) = (None, None));
                }
                Ok(SequenceJob {
                    input: join_location(&self.input, subset),
                    output: join_location(
                        &self.output,
                        &sequenced_folder(subset, self.spec.sequence_length),
                    ),
                    subset: Some(subset.clone()),
                    spec,
                    overwrite: self.overwrite,
                })
            })
            .collect()
    }
}

/// Runs every job of `request` on `warehouse`.
///
/// All jobs are preflighted before the first one runs, so a clash on the last subset's output is
/// reported before any work is done. Each job publishes on its own; if a later job fails, the
/// earlier ones stay published (each is complete, with its manifest).
pub fn run(warehouse: &dyn Warehouse, request: &SequenceRequest, progress: &dyn Progress) -> Result<Vec<JobReport>> {
    run_jobs(warehouse, &request.jobs()?, progress)
}

/// Runs `jobs` (from [`SequenceRequest::jobs`]) on `warehouse`, as [`run`] does: for a front end
/// that made the jobs already, to report a bad request before choosing an engine.
pub fn run_jobs(warehouse: &dyn Warehouse, jobs: &[SequenceJob], progress: &dyn Progress) -> Result<Vec<JobReport>> {
    for job in jobs {
        warehouse.preflight(job)?;
    }
    let mut reports = Vec::with_capacity(jobs.len());
    for job in jobs {
        let started = Instant::now();
        let label = job.subset.as_deref().unwrap_or("dataset");
        tracing::info!(subset = label, input = %job.input, output = %job.output, engine = warehouse.name(), "sequencing");
        let report = warehouse.sequence(job, progress)?;
        let s = &report.stats;
        tracing::info!(
            subset = label,
            input_files = report.input_files,
            input_rows = s.input_rows,
            dropped_null_key_rows = s.dropped_null_key_rows,
            entities = s.entities,
            windows = s.windows,
            windows_below_min_length = s.windows_below_min_length,
            parts = report.parts,
            output_bytes = report.output_bytes,
            seconds = format!("{:.3}", started.elapsed().as_secs_f64()),
            "published {}",
            report.output
        );
        for (split, output) in s.splits.iter().zip(report.splits.iter().map(|r| &r.output)) {
            let leaks = &split.leaks;
            tracing::info!(
                split = %split.name,
                entities = split.entities,
                windows = split.windows,
                target_events = split.target_events,
                scored_events = split.scored_events,
                leaked = leaks.events_of_later_splits + leaks.scored_non_targets + leaks.scored_twice,
                "published split {}: {output}",
                split.name
            );
        }
        reports.push(report);
    }
    progress.finish();
    Ok(reports)
}

/// What every job of `request` would do on `warehouse`, in the order they would run; nothing
/// is run or written.
pub fn explain(warehouse: &dyn Warehouse, request: &SequenceRequest) -> Result<Vec<Explanation>> {
    explain_jobs(warehouse, &request.jobs()?)
}

/// What each of `jobs` would do on `warehouse` (see [`explain`]).
pub fn explain_jobs(warehouse: &dyn Warehouse, jobs: &[SequenceJob]) -> Result<Vec<Explanation>> {
    jobs.iter().map(|job| warehouse.explain(job)).collect()
}
