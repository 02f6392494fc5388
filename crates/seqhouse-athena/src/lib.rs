//! The Athena engine: `AthenaWarehouse` pushes the sequencing job down to Amazon Athena as SQL.
//!
//! Flow: read the input's schema from a Parquet footer on S3 (and bind the spec to it, so bad
//! columns and pad values fail before any query); create a temporary external table over the
//! input prefix (or use `--athena-table`); run one counts query for the manifest (and the
//! null-key check) and, for a split job, one for each split's counts and leakage checks;
//! `UNLOAD` the sequences as ZSTD Parquet into an empty staging prefix inside the (first)
//! output folder, partitioned by split for a split job; copy the parts into place and write
//! each `_manifest.json` last. The temporary table
//! is dropped and the staging prefix removed whatever happens; a timed-out or interrupted query is
//! cancelled. Athena's failure reason is reported verbatim with the query id.
//!
//! Athena sees no input order, so ties on the order-by columns are broken by those columns only
//! ([`seqhouse_core::Capabilities::ties_keep_input_order`] is false): add a tie-break column
//! (such as a row id) to `--order-by` for exact reproducibility. Arrays come out as Parquet
//! LISTs of exactly N elements.
#![warn(missing_docs)]

pub mod api;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use seqhouse_core::manifest::{OutputColumn, OutputPart, VocabularyFile};
use seqhouse_core::vocab::Vocabulary;
use seqhouse_core::{
    Capabilities, Error, Explanation, JobReport, Progress, ResolvedSpec, Result, SequenceJob, SequenceStats, Setting,
    Step, Warehouse,
};
use seqhouse_sql::{Dialect, athena};
use seqhouse_storage::input::{self, SourceFile};
use seqhouse_storage::lock::OutputLock;
use seqhouse_storage::publish::{self, Publication, Target, UNLOAD_PREFIX, WrittenOutput, run_id};
use seqhouse_storage::{Location, S3Options, Storage};

pub use api::{ApiError, AthenaOptions, QueryApi, QueryState, SdkQueryApi};

/// The statements of one job, in the order they run (what `--explain` prints).
#[derive(Debug, Clone)]
pub struct Plan {
    /// `CREATE EXTERNAL TABLE` over the input, unless `--athena-table` names one.
    pub create_table: Option<String>,
    /// The counts for the manifest (and the null-key check).
    pub stats: String,
    /// For a split job, the counts of each split.
    pub split_stats: Option<String>,
    /// The `UNLOAD`s of the sequences: one, or with `--folds` two (the first split has a
    /// column the others lack).
    pub unloads: Vec<String>,
    /// `DROP TABLE` of the temporary table.
    pub drop_table: Option<String>,
    /// With `--k-core`, the probe run with 1, 2, 4, … rounds, after the table is made and
    /// before the statements above, to find how many rounds they run (see
    /// [`seqhouse_sql::k_core_rounds`]); shown with one round, and the statements with none.
    pub k_core_probe: Option<String>,
    /// With `--vocab` (unless `--vocab-from` gives the vocabularies), the `UNLOAD`s of the
    /// counts each vocabulary is fitted on, one per `--vocab`, run after the probe and before
    /// the statements above; seqhouse ranks the counts into ids as the local engine does.
    pub vocab_counts: Vec<String>,
    /// With `--vocab`, the tables over the vocabulary files seqhouse writes (from
    /// [`Plan::vocab_counts`] or `--vocab-from`), which the UNLOADs join to encode the values.
    pub vocab_tables: Vec<VocabTable>,
    resolved: ResolvedSpec,
    source: String,
    files: Vec<SourceFile>,
    input: Location,
    staging: Location,
    /// Beside `staging`, the prefix of the vocabularies' files (counts and tables); its
    /// [`UNLOAD_PREFIX`] makes a later run on the output remove what a dead run left there.
    vocab_staging: Location,
    groups: Vec<std::ops::Range<usize>>,
}

/// The temporary table over one vocabulary file, inside the run's staging prefix.
#[derive(Debug, Clone)]
pub struct VocabTable {
    /// `CREATE EXTERNAL TABLE` over the folder holding the file.
    pub create: String,
    /// `DROP TABLE` of it.
    pub drop: String,
    /// How queries refer to it.
    reference: String,
    /// The folder the file is written into.
    folder: Location,
}

impl Plan {
    /// Makes the counts queries and the UNLOADs, running `k_core_rounds` rounds of `--k-core`.
    fn make_statements(&mut self, k_core_rounds: Option<usize>) -> Result<()> {
        let source = seqhouse_sql::Source {
            table: self.source.clone(),
            k_core_rounds,
            vocabularies: self.vocab_tables.iter().map(|t| t.reference.clone()).collect(),
        };
        self.vocab_counts = match self.resolved.spec.vocab_from {
            Some(_) => Vec::new(),
            None => (seqhouse_sql::vocab_counts(&self.resolved, &source, Dialect::Trino)?.iter().enumerate())
                .map(|(j, select)| athena::unload(select, &self.vocab_counted(j).shown))
                .collect(),
        };
        self.stats = seqhouse_sql::stats(&self.resolved, &source, Dialect::Trino)?;
        self.split_stats = seqhouse_sql::split_stats(&self.resolved, &source, Dialect::Trino)?;
        self.unloads.clear();
        for (group, outputs) in self.groups.iter().enumerate() {
            let select = seqhouse_sql::select_outputs(&self.resolved, &source, Dialect::Trino, outputs.clone())?;
            let prefix = self.unload_prefix(group);
            self.unloads.push(match seqhouse_sql::has_split_column(&self.resolved.spec) {
                true => athena::unload_by_split(&select, &prefix.shown),
                false => athena::unload(&select, &prefix.shown),
            });
        }
        Ok(())
    }

    /// Where the counts of vocabulary `j` are unloaded.
    fn vocab_counted(&self, j: usize) -> Location {
        self.vocab_staging.child("counts").child(&j.to_string())
    }

    /// Where UNLOAD `group` writes.
    fn unload_prefix(&self, group: usize) -> Location {
        match seqhouse_sql::has_split_column(&self.resolved.spec) {
            true => self.staging.child(&group.to_string()),
            false => self.staging.clone(),
        }
    }

    /// Where the unloaded files of output `output` are.
    fn unloaded(&self, output: usize) -> Location {
        if !seqhouse_sql::has_split_column(&self.resolved.spec) {
            return self.staging.clone();
        }
        let group = self.groups.iter().position(|g| g.contains(&output)).expect("every output is unloaded");
        self.unload_prefix(group).child(&format!("{}={output}", seqhouse_sql::SPLIT_COLUMN))
    }
}

/// The Athena engine (`--engine athena`).
pub struct AthenaWarehouse {
    options: AthenaOptions,
    table: Option<String>,
    api: Box<dyn QueryApi>,
    storage: Storage,
    cancelled: Arc<AtomicBool>,
}

fn failed(query_id: &str, message: impl Into<String>) -> Error {
    Error::QueryFailed { engine: "athena".into(), query_id: query_id.into(), message: message.into() }
}

impl AthenaWarehouse {
    /// A failed call to Athena as the port's error: unreachable (nothing ran) or a failure of
    /// the query `query_id`, while doing `doing` ("start the counts query").
    fn api_failed(&self, query_id: &str, doing: &str, e: ApiError) -> Error {
        match e {
            ApiError::Unreachable(source) => Error::EngineUnreachable {
                engine: "athena".into(),
                address: self.options.endpoint.clone().unwrap_or_else(|| "the AWS Athena endpoint".into()),
                message: format!(
                    "cannot {doing}: {}; check {}, AWS_ENDPOINT_URL_ATHENA and the network",
                    api::chain(source.as_ref()),
                    Setting::AthenaEndpoint
                ),
            },
            e => failed(query_id, format!("cannot {doing}: {e}")),
        }
    }
}

impl AthenaWarehouse {
    /// An engine that runs queries through `api` and reads/writes S3 with `s3`.
    /// `table` names an existing table (`db.table` or `table`) to read instead of a temporary one.
    pub fn new(options: AthenaOptions, table: Option<String>, s3: S3Options, api: Box<dyn QueryApi>) -> Result<Self> {
        Ok(AthenaWarehouse {
            options,
            table,
            api,
            storage: Storage::new(s3)?,
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The engine with the real Athena client.
    pub fn connect(options: AthenaOptions, table: Option<String>, s3: S3Options) -> Result<Self> {
        let api =
            SdkQueryApi::new(options.clone()).map_err(|e| Error::internal(format!("cannot configure Athena: {e}")))?;
        Self::new(options, table, s3, Box::new(api))
    }

    /// Uses `flag` as the cancel flag: once set (e.g. by a Ctrl-C handler), the running query is
    /// cancelled, the temporary table dropped and the run stopped.
    pub fn with_cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancelled = flag;
        self
    }

    /// The statements `job` runs, without running any (reads only the input's Parquet footers).
    pub fn plan(&self, job: &SequenceJob) -> Result<Plan> {
        let input = self.s3_location(&job.input, Setting::Input)?;
        let outputs = self.outputs(job)?;
        let listed = input::list_files(&self.storage, &input)?;
        let files = input::describe(&self.storage, &input, listed, b',')?;
        input::require_parquet(&files, "athena")?;
        if files.len() == 1 && files[0].meta.location == *input.path() {
            return Err(Error::setting_message(
                Setting::Input,
                format!("the athena engine reads folders (a table location); pass the folder holding {}", input.shown),
            ));
        }
        input::require_one_kind(&files, &job.spec, "athena")?;
        let resolved = input::resolve(job, &files)?;
        for field in resolved.input_schema.fields() {
            seqhouse_sql::column_type(field, Dialect::Trino)?;
        }
        let id = run_id();
        let (database, table, create_table, drop_table) = match &self.table {
            Some(name) => {
                let (database, table) = name.split_once('.').unwrap_or((&self.options.database, name));
                (database.to_string(), table.to_string(), None, None)
            }
            None => {
                let (database, table) = (self.options.database.clone(), format!("seqhouse_tmp_{id}"));
                let columns: Vec<(String, DataType)> =
                    resolved.input_schema.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
                let create = athena::create_parquet_table(&database, &table, &columns, &input.shown)?;
                let drop = athena::drop_table(&database, &table);
                (database, table, Some(create), Some(drop))
            }
        };
        let source = athena::table_ref(&database, &table);
        // Inside the first output, whose lock this run holds.
        let staging = outputs[0].child(&format!("{UNLOAD_PREFIX}{id}"));
        let vocab_staging = outputs[0].child(&format!("{UNLOAD_PREFIX}{id}-vocab"));
        let groups = seqhouse_sql::output_groups(&resolved);
        let k_core_probe = match resolved.spec.k_core {
            Some(_) => Some(seqhouse_sql::k_core_probe(&resolved, &source, Dialect::Trino, 1)?),
            None => None,
        };
        let vocab_tables = (resolved.spec.vocab.iter().enumerate())
            .map(|(j, vocab)| {
                let table = format!("seqhouse_tmp_{id}_vocab_{j}");
                let folder = vocab_staging.child("tables").child(&j.to_string());
                let file = seqhouse_core::vocab::file_schema(resolved.feature_input_type(&vocab.name));
                let columns: Vec<(String, DataType)> =
                    file.fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect();
                Ok(VocabTable {
                    create: athena::create_parquet_table(&database, &table, &columns, &folder.shown)?,
                    drop: athena::drop_table(&database, &table),
                    reference: athena::table_ref(&database, &table),
                    folder,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut plan = Plan {
            create_table,
            stats: String::new(),
            split_stats: None,
            unloads: Vec::new(),
            drop_table,
            k_core_probe,
            vocab_counts: Vec::new(),
            vocab_tables,
            resolved,
            source,
            files,
            input,
            staging,
            vocab_staging,
            groups,
        };
        plan.make_statements(plan.k_core_probe.as_ref().map(|_| 0))?;
        Ok(plan)
    }

    /// The job's output folders on S3 (one per split of a split job).
    fn outputs(&self, job: &SequenceJob) -> Result<Vec<Location>> {
        self.s3_location(&job.output, Setting::Output)?;
        job.outputs().iter().map(|(_, output)| self.s3_location(output, Setting::Output)).collect()
    }

    fn s3_location(&self, text: &str, setting: Setting) -> Result<Location> {
        let location = self.storage.locate(text)?;
        if location.bucket.is_none() {
            return Err(Error::setting(
                setting,
                format!(
                    "{text}: the athena engine reads and writes s3:// locations; use {} for local files",
                    Setting::Engine.with("local")
                ),
            ));
        }
        Ok(location)
    }

    /// Runs one statement to completion, polling with backoff; cancels it on timeout or Ctrl-C.
    fn run(&self, sql: &str, what: &str) -> Result<String> {
        self.check_cancelled()?;
        let id = self.api.start(sql).map_err(|e| self.api_failed("(not started)", &format!("start the {what}"), e))?;
        tracing::info!(query_id = %id, "athena: {what}");
        let started = Instant::now();
        let mut wait = self.options.poll_interval;
        loop {
            match self.api.state(&id).map_err(|e| self.api_failed(&id, &format!("poll the {what}"), e))? {
                QueryState::Succeeded => return Ok(id),
                QueryState::Failed(reason) => return Err(failed(&id, reason)),
                QueryState::Cancelled(reason) => return Err(failed(&id, format!("cancelled: {reason}"))),
                QueryState::Queued | QueryState::Running => {}
            }
            let timed_out = started.elapsed() >= self.options.timeout;
            if timed_out || self.cancelled.load(Ordering::SeqCst) {
                if let Err(e) = self.api.cancel(&id) {
                    tracing::warn!(query_id = %id, error = %e, "could not cancel the query");
                }
                return Err(Error::Interrupted(if timed_out {
                    format!("the {what} ({id}) ran longer than {:?} and was cancelled", self.options.timeout)
                } else {
                    format!("the {what} ({id}) was cancelled")
                }));
            }
            std::thread::sleep(wait);
            wait = (wait * 3 / 2).min(Duration::from_secs(5));
        }
    }

    fn check_cancelled(&self) -> Result<()> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Error::Interrupted("stopped before the next query".into()));
        }
        Ok(())
    }

    /// Runs a counts query (`what`: "counts query") and reads its rows as counts (null as 0).
    fn count_rows(&self, sql: &str, what: &str) -> Result<(String, Vec<Vec<u64>>)> {
        let id = self.run(sql, what)?;
        let rows = self.api.rows(&id).map_err(|e| self.api_failed(&id, &format!("read the {what}"), e))?;
        let counts = rows
            .iter()
            .map(|row| row.iter().map(|v| v.as_deref().unwrap_or("0").parse::<u64>()).collect())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| failed(&id, format!("unexpected counts from the {what}: {e}")))?;
        Ok((id, counts))
    }

    fn counts(&self, plan: &Plan, job: &SequenceJob) -> Result<SequenceStats> {
        let (id, rows) = self.count_rows(&plan.stats, "counts query")?;
        let values = rows.first().ok_or_else(|| failed(&id, "the counts query returned no row"))?;
        let mut stats = seqhouse_sql::stats_from_row(&job.spec, values, &job.input)?;
        if let Some(split_stats) = &plan.split_stats {
            let (_, rows) = self.count_rows(split_stats, "split counts query")?;
            seqhouse_sql::split_stats_from_rows(&job.spec, &rows, &mut stats)?;
        }
        Ok(stats)
    }

    /// Copies the unloaded files of each output in as its parts and commits them with the
    /// manifests (see [`Target`]: an old output stays trusted until its manifest is replaced).
    fn publish(
        &self,
        plan: &Plan,
        job: &SequenceJob,
        counts: SequenceStats,
        vocabularies: &[Vocabulary],
        locks: Vec<OutputLock>,
    ) -> Result<JobReport> {
        let outputs = self.outputs(job)?;
        let targets = publish::begin_outputs(&self.storage, &plan.input, &outputs, job.overwrite, locks)?;
        // Every output carries the vocabularies it was encoded with, as on the local engine.
        let copied = (targets.iter().enumerate())
            .map(|(i, target)| {
                let (parts, columns) = self.copy_in(plan, i, target)?;
                let files = seqhouse_storage::vocab::write_into(&self.storage, target, vocabularies)?;
                Ok((parts, columns, files))
            })
            .collect();
        let copied: Vec<(Vec<OutputPart>, Vec<OutputColumn>, Vec<VocabularyFile>)> = match copied {
            Ok(copied) => copied,
            Err(e) => {
                publish::abort_outputs(&self.storage, targets);
                return Err(e);
            }
        };
        let written = (targets.into_iter().zip(copied))
            .map(|(target, (parts, columns, vocabularies))| WrittenOutput { target, parts, columns, vocabularies })
            .collect();
        let input_files = plan.files.iter().map(|f| f.manifest_entry(f.rows().unwrap_or(0))).collect();
        let publication = Publication { engine: "athena", job, input: &plan.input, input_files, stats: counts };
        publish::commit_outputs(&self.storage, publication, written, &|| self.check_cancelled())
    }

    /// Copies the unloaded files of output `output` into `target` as parts; returns them and
    /// the columns they hold.
    fn copy_in(&self, plan: &Plan, output: usize, target: &Target) -> Result<(Vec<OutputPart>, Vec<OutputColumn>)> {
        let unloaded = plan.unloaded(output);
        let mut objects = self.storage.list_recursive(&unloaded)?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut parts = Vec::new();
        let mut columns = Vec::new();
        for (index, object) in objects.iter().enumerate() {
            let name = target.part_name(index);
            let mut reader = self.storage.parquet_reader(&unloaded, object);
            let footer = self
                .storage
                .block_on(ArrowReaderMetadata::load_async(&mut reader, ArrowReaderOptions::new()))
                .map_err(|e| Error::storage("cannot read", unloaded.show(&object.location), e))?;
            if columns.is_empty() {
                columns = OutputColumn::of_schema(footer.schema());
            }
            target.copy_part(&self.storage, &unloaded.object(&object.location), &name)?;
            parts.push(OutputPart {
                path: name,
                rows: footer.metadata().file_metadata().num_rows() as u64,
                bytes: object.size,
            });
        }
        if columns.is_empty() {
            // Athena wrote nothing (no windows): describe the columns it would have written.
            columns = OutputColumn::of_schema(&plan.resolved.output_schemas[output]);
        }
        Ok((parts, columns))
    }

    fn run_plan(
        &self,
        plan: &Plan,
        job: &SequenceJob,
        locks: Vec<OutputLock>,
        progress: &dyn Progress,
    ) -> Result<JobReport> {
        progress.stage("athena", 3);
        if let Some(create) = &plan.create_table {
            self.run(create, "temporary table")?;
        }
        let k_core_plan;
        let plan = match plan.k_core_probe {
            Some(_) => {
                let rounds =
                    seqhouse_sql::k_core_rounds(&plan.resolved, &plan.source, Dialect::Trino, "athena", |probe| {
                        Ok(self.count_rows(probe, "k-core probe")?.1)
                    })?;
                tracing::info!(rounds, "athena: k-core reaches its fixed point");
                let mut rebuilt = plan.clone();
                rebuilt.make_statements(Some(rounds))?;
                k_core_plan = rebuilt;
                &k_core_plan
            }
            None => plan,
        };
        let vocabularies = self.vocabularies(plan, job)?;
        let counts = self.counts(plan, job)?;
        progress.advance(1);
        if !self.storage.list_recursive(&plan.staging)?.is_empty() {
            return Err(Error::invalid(format!("the UNLOAD target {} is not empty", plan.staging.shown)));
        }
        for unload in &plan.unloads {
            self.run(unload, "UNLOAD")?;
        }
        progress.advance(1);
        self.check_cancelled()?;
        let report = self.publish(plan, job, counts, &vocabularies, locks)?;
        progress.advance(1);
        Ok(report)
    }

    /// The vocabularies of a `--vocab` job (see [`seqhouse_storage::vocab::for_job`]): fitted
    /// on the counts Athena unloads, or read from `--vocab-from`. Each is then written into the
    /// run's staging prefix as its file, with a table over it for the UNLOADs to join.
    fn vocabularies(&self, plan: &Plan, job: &SequenceJob) -> Result<Vec<Vocabulary>> {
        let storage = &self.storage;
        let vocabularies =
            seqhouse_storage::vocab::for_job(storage, &plan.resolved, job.subset.as_deref(), &mut |counts| {
                for (j, (unload, counts)) in plan.vocab_counts.iter().zip(counts).enumerate() {
                    self.run(unload, "vocabulary counts")?;
                    seqhouse_storage::vocab::add_counts_in(storage, &plan.vocab_counted(j), counts)?;
                }
                Ok(())
            })?;
        for (vocabulary, table) in vocabularies.iter().zip(&plan.vocab_tables) {
            let file = format!("{}.parquet", vocabulary.feature);
            storage.put(&table.folder, &file, seqhouse_storage::vocab::file_bytes(vocabulary)?)?;
            self.run(&table.create, "vocabulary table")?;
        }
        Ok(vocabularies)
    }

    fn clean_up(&self, plan: &Plan) {
        // Drop even after Ctrl-C: leaving tables behind in the user's catalog is worse.
        let drops = plan.drop_table.iter().map(|drop| (drop, "temporary table"));
        let drops = drops.chain(plan.vocab_tables.iter().map(|table| (&table.drop, "vocabulary table")));
        for (drop, what) in drops {
            self.cancelled.store(false, Ordering::SeqCst);
            if let Err(e) = self.run(drop, &format!("drop of the {what}")) {
                tracing::warn!(statement = %drop, error = %e, "could not drop the {what}");
            }
        }
        self.remove_prefix(&plan.staging);
        self.remove_prefix(&plan.vocab_staging);
    }

    /// Removes every object under an UNLOAD staging prefix (warning on failure: the next run on
    /// the output removes what is left, see [`AthenaWarehouse::remove_dead_unloads`]).
    fn remove_prefix(&self, prefix: &Location) {
        match self.storage.list_recursive(prefix) {
            Ok(objects) => {
                for object in objects {
                    if let Err(e) = self.storage.remove(&prefix.object(&object.location)) {
                        tracing::warn!(error = %e, "could not remove an unloaded file");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not list the UNLOAD staging prefix"),
        }
    }

    /// Removes the UNLOAD staging prefixes that runs which died left inside `output`. Called
    /// holding the output's lock and before this run's own UNLOAD, so none belongs to a live run.
    fn remove_dead_unloads(&self, output: &Location) -> Result<()> {
        for name in self.storage.children(output)?.into_iter().filter(|n| n.starts_with(UNLOAD_PREFIX)) {
            tracing::info!(prefix = %output.child(&name).shown, "removing what an interrupted run left behind");
            self.remove_prefix(&output.child(&name));
        }
        Ok(())
    }
}

impl Warehouse for AthenaWarehouse {
    fn explain(&self, job: &SequenceJob) -> Result<Explanation> {
        let plan = self.plan(job)?;
        let mut steps: Vec<Step> = plan.create_table.iter().map(|s| Step::Statement(s.clone())).collect();
        if let Some(probe) = &plan.k_core_probe {
            steps.push(Step::Note(seqhouse_sql::K_CORE_PROBE_NOTE.into()));
            steps.push(Step::Statement(probe.clone()));
        }
        if !plan.vocab_tables.is_empty() {
            steps.push(Step::Note(seqhouse_sql::vocab_note(&plan.resolved.spec)));
        }
        steps.extend(plan.vocab_counts.iter().map(|s| Step::Statement(s.clone())));
        steps.extend(plan.vocab_tables.iter().map(|t| Step::Statement(t.create.clone())));
        let statements = [Some(&plan.stats), plan.split_stats.as_ref()]
            .into_iter()
            .flatten()
            .chain(&plan.unloads)
            .chain(plan.drop_table.as_ref())
            .chain(plan.vocab_tables.iter().map(|t| &t.drop));
        steps.extend(statements.map(|s| Step::Statement(s.clone())));
        Ok(Explanation { steps })
    }

    fn name(&self) -> &str {
        "athena"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ties_keep_input_order: false,
            fixed_size_lists: false,
            ordered_output: false,
            widens_integers_to_floats: false,
            timestamp_unit: seqhouse_sql::timestamp_unit(Dialect::Trino),
        }
    }

    fn preflight(&self, job: &SequenceJob) -> Result<()> {
        let input = self.s3_location(&job.input, Setting::Input)?;
        for output in self.outputs(job)? {
            publish::check_job(&self.storage, &input, &output, job.overwrite)?;
        }
        Ok(())
    }

    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        // Held from the start, so a second run on these outputs fails at once, not after its queries.
        let outputs = self.outputs(job)?;
        let locks =
            outputs.iter().map(|output| OutputLock::acquire(&self.storage, output)).collect::<Result<Vec<_>>>()?;
        for output in &outputs {
            self.remove_dead_unloads(output)?;
        }
        let plan = self.plan(job)?;
        let result = self.run_plan(&plan, job, locks, progress);
        self.clean_up(&plan);
        result
    }
}
