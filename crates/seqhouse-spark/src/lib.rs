//! The Spark engine: `SparkWarehouse` pushes the sequencing job down to Apache Spark through
//! Spark Connect (`--engine spark --spark-remote sc://host:port`).
//!
//! The adapter is SQL in, Parquet out: it sends Spark SQL statements rendered by `seqhouse-sql`
//! from the same plan as the Athena SQL, and exchanges no Arrow data with Spark except the one
//! row of counts (the client has its own Arrow version, which never meets ours).
//!
//! Flow: read the input's Parquet footers (so bad columns and pad values fail before Spark is
//! asked anything) and bind the spec; reach the server (a plain TCP probe first, so a wrong
//! address fails in seconds instead of through the client's minutes of retries); create a
//! temporary view over the input folder with the resolved column types (Spark then widens
//! integers across files the way the local engine does); run the counts query (and for a split
//! job the counts of each split); `INSERT OVERWRITE DIRECTORY` the sequences as ZSTD Parquet
//! into a folder inside a hidden staging sibling of the output (a split job's through Spark's
//! writer, partitioned by split); rename Spark's files to `part-NNNNN.parquet` in each output's
//! staging folder, write each `_manifest.json`, and move the staging folders into place. Whatever happens, the view is dropped and the
//! staging folder removed; Ctrl-C interrupts the running Spark operations.
//!
//! Paths must be local folders that the Spark server sees under the same absolute path (the
//! same machine, or a shared file system). Reading S3 from Spark needs the hadoop-aws jars on
//! the server; this adapter does not hand `s3://` locations to Spark.
//!
//! Like Athena, Spark sees no input order: ties on the order-by columns are broken by those
//! columns only, arrays are Parquet LISTs of exactly N, and rows come in no fixed order.
#![warn(missing_docs)]

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::datatypes::{DataType, TimeUnit};
use parquet::file::reader::{FileReader, SerializedFileReader};
use seqhouse_core::manifest::{OutputColumn, OutputPart};
use seqhouse_core::vocab::Vocabulary;
use seqhouse_core::{
    Capabilities, Error, Explanation, JobReport, Progress, ResolvedSpec, Result, SequenceJob, SequenceStats, Setting,
    Step, Warehouse,
};
use seqhouse_sql::Dialect;
use seqhouse_storage::input::{self, SourceFile};
use seqhouse_storage::lock::OutputLock;
use seqhouse_storage::publish::{self, Publication, Target, WrittenOutput, part_name, run_id};
use seqhouse_storage::{Location, S3Options, Storage};
use spark_connect::{SparkError, SparkSession};

/// The port Spark Connect listens on unless the URL names one.
pub const DEFAULT_PORT: u16 = 15002;

/// How to reach the Spark Connect server.
#[derive(Debug, Clone)]
pub struct SparkOptions {
    /// `sc://host:port[/;param=value...]`, as pyspark's `remote()` takes it.
    pub remote: String,
    /// How long the first TCP connection may take before the server is reported unreachable.
    pub connect_timeout: Duration,
}

impl SparkOptions {
    /// Options for `remote` with a 10-second connect timeout.
    pub fn new(remote: impl Into<String>) -> Self {
        SparkOptions { remote: remote.into(), connect_timeout: Duration::from_secs(10) }
    }

    /// `host:port` of the remote URL, checked for the `sc://` scheme.
    pub fn address(&self) -> Result<(String, u16)> {
        let bad = |why: &str| {
            Error::setting(
                Setting::SparkRemote,
                format!("{}: {why}; expected sc://HOST[:PORT], e.g. sc://localhost:15002", self.remote),
            )
        };
        let rest = self.remote.strip_prefix("sc://").ok_or_else(|| bad("not an sc:// URL"))?;
        let authority = rest.split(['/', ';']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad("no host"));
        }
        // `[::1]:15002`, `host:15002` or `host`.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(':') && (!host.starts_with('[') || host.ends_with(']')) => {
                (host, port.parse::<u16>().map_err(|_| bad("the port is not a number"))?)
            }
            _ => (authority, DEFAULT_PORT),
        };
        Ok((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
    }
}

/// The statements of one job, in the order they run (what `--explain` prints).
#[derive(Debug, Clone)]
pub struct Plan {
    /// `CREATE TEMPORARY VIEW` over the input folder, with the resolved column types.
    pub create_view: String,
    /// The counts for the manifest (and the null-key check).
    pub stats: String,
    /// For a split job, the counts of each split.
    pub split_stats: Option<String>,
    /// `INSERT OVERWRITE DIRECTORY` of the sequences as Parquet; for a split job, the SELECTs
    /// written partitioned by split (two with `--folds`: the first split has a column the
    /// others lack).
    pub writes: Vec<String>,
    /// `DROP VIEW` of the temporary view.
    pub drop_view: String,
    /// With `--k-core`, the probe run with 1, 2, 4, … rounds, after the view is made and
    /// before the statements above, to find how many rounds they run (see
    /// [`seqhouse_sql::k_core_rounds`]); shown with one round, and the statements with none.
    pub k_core_probe: Option<String>,
    /// With `--vocab` (unless `--vocab-from` gives the vocabularies), the queries of the counts
    /// each vocabulary is fitted on, one per `--vocab`, run after the probe and before the
    /// statements above (written as Parquet into the staging folder); seqhouse ranks the
    /// counts into ids as the local engine does.
    pub vocab_counts: Vec<String>,
    /// With `--vocab`, the temporary views over the vocabulary files seqhouse writes into the
    /// staging folder, which the writes join to encode the values (one per `--vocab`).
    pub vocab_views: Vec<VocabView>,
    selects: Vec<String>,
    groups: Vec<std::ops::Range<usize>>,
    resolved: ResolvedSpec,
    view: String,
    files: Vec<SourceFile>,
    tag: String,
}

/// The temporary view over one vocabulary file.
#[derive(Debug, Clone)]
pub struct VocabView {
    /// The quoted name of the view.
    pub name: String,
    /// The columns of the file, as Spark SQL declares them.
    columns: String,
}

impl VocabView {
    /// `CREATE TEMPORARY VIEW` over the file `file` (a quoted literal).
    pub fn create(&self, file: &str) -> String {
        format!("CREATE TEMPORARY VIEW {} ({})\nUSING parquet\nOPTIONS (path {file})", self.name, self.columns)
    }

    /// `DROP VIEW` of it.
    pub fn drop(&self) -> String {
        format!("DROP VIEW IF EXISTS {}", self.name)
    }
}

/// Where, inside the first output's staging folder, the vocabularies' files go: the counts
/// Spark writes, and the vocabulary files its views read. Removed before anything is published.
const VOCAB_DIR: &str = "_spark_vocab";

impl Plan {
    /// Makes the counts queries and the writes, running `k_core_rounds` rounds of `--k-core`.
    fn make_statements(&mut self, k_core_rounds: Option<usize>) -> Result<()> {
        let source = seqhouse_sql::Source {
            table: self.view.clone(),
            k_core_rounds,
            vocabularies: self.vocab_views.iter().map(|v| v.name.clone()).collect(),
        };
        let resolved = &self.resolved;
        self.vocab_counts = match resolved.spec.vocab_from {
            Some(_) => Vec::new(),
            None => seqhouse_sql::vocab_counts(resolved, &source, Dialect::Spark)?,
        };
        self.stats = seqhouse_sql::stats(resolved, &source, Dialect::Spark)?;
        self.split_stats = seqhouse_sql::split_stats(resolved, &source, Dialect::Spark)?;
        self.selects = (self.groups.iter())
            .map(|outputs| seqhouse_sql::select_outputs(resolved, &source, Dialect::Spark, outputs.clone()))
            .collect::<Result<Vec<_>>>()?;
        // The real directory lies in the staging folder a run creates; --explain shows where.
        self.writes = match seqhouse_sql::has_split_column(&resolved.spec) {
            false => vec![insert_directory(
                &self.selects[0],
                &format!("'<hidden staging folder beside {}>/_spark'", Setting::Output),
            )],
            true => (self.selects.iter())
                .map(|select| {
                    format!(
                        "-- written by DataFrameWriter.partitionBy({}) as ZSTD Parquet into the hidden staging folder, one folder per split\n{select}",
                        seqhouse_sql::SPLIT_COLUMN
                    )
                })
                .collect(),
        };
        Ok(())
    }
}

/// The statement that writes `select` as ZSTD Parquet into `directory` (a quoted literal).
fn insert_directory(select: &str, directory: &str) -> String {
    format!("INSERT OVERWRITE DIRECTORY {directory}\nUSING parquet\nOPTIONS (compression 'zstd')\n{select}")
}

/// Where Spark writes inside the staging folder (renamed to parts before publishing).
const SPARK_DIR: &str = "_spark";

/// The Spark engine (`--engine spark`).
pub struct SparkWarehouse {
    options: SparkOptions,
    storage: Storage,
    session: Mutex<Option<SparkSession>>,
    cancelled: Arc<AtomicBool>,
}

fn failed(tag: &str, error: SparkError) -> Error {
    Error::QueryFailed { engine: "spark".into(), query_id: tag.into(), message: spark_message(&error.to_string()) }
}

/// Spark's message without the logical plan it appends (dozens of lines of operator tree that
/// bury the reason; `-v` logs the statement itself), and with the error class said once.
fn spark_message(message: &str) -> String {
    let reason: Vec<&str> = message
        .lines()
        .take_while(|line| {
            let line = line.trim_start();
            !(line.starts_with('\'') || line.starts_with("+-") || line.starts_with(":-"))
        })
        .collect();
    let mut text = reason.join("\n").trim().to_string();
    if let Some(class_end) = text.find("] ")
        && text.starts_with('[')
    {
        let class = text[..class_end + 2].to_string();
        if text[class.len()..].starts_with(&class) {
            text = text[class.len()..].to_string();
        }
    }
    if text.is_empty() { message.trim().to_string() } else { text }
}

impl SparkWarehouse {
    /// An engine for the server at `options.remote`; nothing is contacted until a job runs.
    pub fn new(options: SparkOptions) -> Result<Self> {
        options.address()?;
        Ok(SparkWarehouse {
            options,
            // Local paths only: S3 options are never used.
            storage: Storage::new(S3Options::default())?,
            session: Mutex::new(None),
            cancelled: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Uses `flag` as the cancel flag: once set (e.g. by a Ctrl-C handler), the running Spark
    /// operations are interrupted and the run stops.
    pub fn with_cancel_flag(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancelled = flag;
        self
    }

    fn local_location(&self, text: &str, setting: Setting) -> Result<(Location, PathBuf)> {
        let location = self.storage.locate(text)?;
        let Some(path) = location.local.clone() else {
            return Err(Error::setting(
                setting,
                format!(
                    "{text}: the spark engine reads and writes local folders that the Spark server also sees (S3 from Spark needs hadoop-aws jars on the server); use {} or athena for s3:// locations",
                    Setting::Engine.with("local")
                ),
            ));
        };
        let path = std::path::absolute(&path).map_err(|e| Error::storage("cannot resolve", text, e))?;
        Ok((location, path))
    }

    /// The statements `job` runs, without running any (reads only the input's Parquet footers).
    pub fn plan(&self, job: &SequenceJob) -> Result<Plan> {
        let (input, input_path) = self.local_location(&job.input, Setting::Input)?;
        self.outputs(job)?;
        let listed = input::list_files(&self.storage, &input)?;
        let files = input::describe(&self.storage, &input, listed, b',')?;
        input::require_parquet(&files, "spark")?;
        input::require_one_kind(&files, &job.spec, "spark")?;
        let resolved = input::resolve(job, &files)?;
        // Vocabulary features are written as ids, never as their values.
        let output_columns: Vec<&String> = (job.spec.entity.iter())
            .chain(job.spec.features.iter().map(|f| &f.name).filter(|name| job.spec.vocab_of(name).is_none()))
            .collect();
        let mut columns = Vec::new();
        for field in resolved.input_schema.fields() {
            let unsupported = |message: String| Error::UnsupportedType { column: field.name().clone(), message };
            let sql_type = seqhouse_sql::column_type(field, Dialect::Spark)?;
            if output_columns.contains(&field.name()) {
                // Spark would write these back as another type than the local engine does.
                let changed = match field.data_type() {
                    DataType::Timestamp(TimeUnit::Microsecond, None) => None,
                    DataType::Timestamp(unit, None) => Some(format!("timestamp({unit:?}) as microseconds")),
                    DataType::Date64 => Some("date64 as date32".to_string()),
                    DataType::LargeUtf8 => Some("large_utf8 as utf8".to_string()),
                    _ => None,
                };
                if let Some(changed) = changed {
                    return Err(unsupported(format!(
                        "Spark would write {changed}, unlike the other engines; cast the column, leave it out, or use {}",
                        Setting::Engine.with("local")
                    )));
                }
            }
            columns.push(format!("{} {sql_type}", seqhouse_sql::ident(field.name(), Dialect::Spark)));
        }
        let tag = format!("seqhouse-{}", run_id());
        let view =
            seqhouse_sql::ident(&format!("seqhouse_input_{}", tag.trim_start_matches("seqhouse-")), Dialect::Spark);
        let text = |s: &str| seqhouse_sql::string(s, Dialect::Spark);
        let create_view = format!(
            "CREATE TEMPORARY VIEW {view} ({})\nUSING parquet\nOPTIONS (path {}, recursiveFileLookup 'true', pathGlobFilter '*.parquet')",
            columns.join(", "),
            text(&input_path.display().to_string()),
        );
        let k_core_probe = match resolved.spec.k_core {
            Some(_) => Some(seqhouse_sql::k_core_probe(&resolved, &view, Dialect::Spark, 1)?),
            None => None,
        };
        let vocab_views = (resolved.spec.vocab.iter().enumerate())
            .map(|(j, vocab)| {
                let file = seqhouse_core::vocab::file_schema(resolved.feature_input_type(&vocab.name));
                let columns = (file.fields().iter())
                    .map(|f| {
                        Ok(format!(
                            "{} {}",
                            seqhouse_sql::ident(f.name(), Dialect::Spark),
                            seqhouse_sql::column_type(f, Dialect::Spark)?
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?;
                let name = seqhouse_sql::ident(
                    &format!("seqhouse_vocab_{}_{j}", tag.trim_start_matches("seqhouse-")),
                    Dialect::Spark,
                );
                Ok(VocabView { name, columns: columns.join(", ") })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut plan = Plan {
            create_view,
            k_core_probe,
            vocab_counts: Vec::new(),
            vocab_views,
            stats: String::new(),
            split_stats: None,
            writes: Vec::new(),
            drop_view: format!("DROP VIEW IF EXISTS {view}"),
            selects: Vec::new(),
            groups: seqhouse_sql::output_groups(&resolved),
            resolved,
            view,
            files,
            tag,
        };
        plan.make_statements(plan.k_core_probe.as_ref().map(|_| 0))?;
        Ok(plan)
    }

    /// The job's output folders (one per split of a split job).
    fn outputs(&self, job: &SequenceJob) -> Result<Vec<Location>> {
        job.outputs().iter().map(|(_, output)| Ok(self.local_location(output, Setting::Output)?.0)).collect()
    }

    /// Runs a plan made by [`SparkWarehouse::plan`] for `job` and publishes its output.
    pub fn execute(&self, job: &SequenceJob, plan: &Plan, progress: &dyn Progress) -> Result<JobReport> {
        let (input, _) = self.local_location(&job.input, Setting::Input)?;
        let outputs = self.outputs(job)?;
        let locks =
            outputs.iter().map(|output| OutputLock::acquire(&self.storage, output)).collect::<Result<Vec<_>>>()?;
        let targets = publish::begin_outputs(&self.storage, &input, &outputs, job.overwrite, locks)?;
        let ran = self.run_plan(plan, job, &targets, progress).and_then(|(counts, vocabularies, written)| {
            // Every output carries the vocabularies it was encoded with, as on the local engine.
            let files = (targets.iter())
                .map(|target| seqhouse_storage::vocab::write_into(&self.storage, target, &vocabularies))
                .collect::<Result<Vec<_>>>()?;
            Ok((counts, written, files))
        });
        let (counts, written, files) = match ran {
            Ok(done) => done,
            Err(e) => {
                publish::abort_outputs(&self.storage, targets);
                return Err(e);
            }
        };
        let written = (targets.into_iter().zip(written).zip(files))
            .map(|((target, (parts, columns)), vocabularies)| WrittenOutput { target, parts, columns, vocabularies })
            .collect();
        let input_files = plan.files.iter().map(|f| f.manifest_entry(f.rows().unwrap_or(0))).collect();
        let publication = Publication { engine: "spark", job, input: &input, input_files, stats: counts };
        let stopped = || match self.cancelled.load(Ordering::SeqCst) {
            true => Err(Error::Interrupted("stopped before publishing; nothing was published".into())),
            false => Ok(()),
        };
        let report = publish::commit_outputs(&self.storage, publication, written, &stopped)?;
        progress.advance(1);
        Ok(report)
    }

    /// The session, connected on first use after a TCP probe of the server's address.
    fn session(&self) -> Result<SparkSession> {
        let mut slot = self.session.lock().expect("session lock");
        if let Some(session) = slot.as_ref() {
            return Ok(session.clone());
        }
        let (host, port) = self.options.address()?;
        let unreachable = |message: String| Error::EngineUnreachable {
            engine: "spark".into(),
            address: self.options.remote.clone(),
            message: format!("{message}. Check {} and that the Spark Connect server is running", Setting::SparkRemote),
        };
        let addresses: Vec<_> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| unreachable(format!("cannot resolve {host}: {e}")))?
            .collect();
        let mut last_error = None;
        let reachable =
            addresses.iter().any(|address| match TcpStream::connect_timeout(address, self.options.connect_timeout) {
                Ok(_) => true,
                Err(e) => {
                    last_error = Some(e);
                    false
                }
            });
        if !reachable {
            return Err(unreachable(match last_error {
                Some(e) => format!("{e}"),
                None => format!("{host} has no address"),
            }));
        }
        let session = SparkSession::builder()
            .remote(&self.options.remote)
            .get_or_create()
            .map_err(|e| unreachable(e.to_string()))?;
        let version = session.version().map_err(|e| unreachable(e.to_string()))?;
        tracing::info!(spark = %version, remote = %self.options.remote, "connected to Spark Connect");
        *slot = Some(session.clone());
        Ok(session)
    }

    /// Runs `sql` and collects its rows, interrupting it if the cancel flag is set meanwhile.
    fn run(&self, session: &SparkSession, tag: &str, sql: &str, what: &str) -> Result<Vec<spark_connect::row::Row>> {
        self.run_op(session, tag, sql, what, || {
            session.sql(sql).map_err(|e| failed(tag, e))?.collect().map_err(|e| failed(tag, e))
        })
    }

    /// Writes the rows of `select` as ZSTD Parquet into `directory`, partitioned by split.
    fn write_by_split(&self, session: &SparkSession, tag: &str, select: &str, directory: &Path) -> Result<()> {
        let directory = directory.display().to_string();
        self.run_op(session, tag, select, "write of the sequences", || {
            let frame = session.sql(select).map_err(|e| failed(tag, e))?;
            let writer = frame.write().format("parquet").option("compression", "zstd");
            writer.partition_by([seqhouse_sql::SPLIT_COLUMN]).save(Some(&directory)).map_err(|e| failed(tag, e))?;
            Ok(Vec::new())
        })
        .map(drop)
    }

    /// Runs the Spark operation `op` (`sql` is what it runs, for the log), interrupting it if
    /// the cancel flag is set meanwhile.
    fn run_op(
        &self,
        session: &SparkSession,
        tag: &str,
        sql: &str,
        what: &str,
        op: impl FnOnce() -> Result<Vec<spark_connect::row::Row>>,
    ) -> Result<Vec<spark_connect::row::Row>> {
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Error::Interrupted(format!("stopped before the {what}")));
        }
        tracing::info!(tag, "spark: {what}");
        tracing::debug!("{sql}");
        let finished = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            scope.spawn(|| {
                while !finished.load(Ordering::SeqCst) {
                    if self.cancelled.load(Ordering::SeqCst) {
                        // The session is this engine's own: every operation on it is this job's.
                        if let Err(e) = session.interrupt_all() {
                            tracing::warn!(error = %e, "could not interrupt the Spark operation");
                        }
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
            let result = op();
            finished.store(true, Ordering::SeqCst);
            result
        });
        if self.cancelled.load(Ordering::SeqCst) {
            return Err(Error::Interrupted(format!("the {what} ({tag}) was interrupted")));
        }
        result
    }

    /// Runs a counts query (`what`: "counts query") and reads its rows as counts (null as 0).
    fn count_rows(&self, session: &SparkSession, tag: &str, sql: &str, what: &str) -> Result<Vec<Vec<u64>>> {
        let rows = self.run(session, tag, sql, what)?;
        rows.iter()
            .map(|row| {
                row.values()
                    .iter()
                    .map(|v| if v.is_null() { Some(0) } else { v.as_i64().and_then(|i| u64::try_from(i).ok()) })
                    .collect::<Option<Vec<u64>>>()
                    .ok_or_else(|| Error::internal(format!("the {what} returned {row:?}")))
            })
            .collect()
    }

    fn counts(&self, session: &SparkSession, plan: &Plan, job: &SequenceJob) -> Result<SequenceStats> {
        let rows = self.count_rows(session, &plan.tag, &plan.stats, "counts query")?;
        let values = rows.first().ok_or_else(|| Error::internal("the counts query returned no row"))?;
        let mut stats = seqhouse_sql::stats_from_row(&job.spec, values, &job.input)?;
        if let Some(split_stats) = &plan.split_stats {
            let rows = self.count_rows(session, &plan.tag, split_stats, "split counts query")?;
            seqhouse_sql::split_stats_from_rows(&job.spec, &rows, &mut stats)?;
        }
        Ok(stats)
    }

    /// The vocabularies of a `--vocab` job (see [`seqhouse_storage::vocab::for_job`]): fitted
    /// on the counts Spark writes into `vocab_dir`, or read from `--vocab-from`. Each is then
    /// written into `vocab_dir` as its file, with a temporary view over it for the writes to
    /// join.
    fn vocabularies(
        &self,
        session: &SparkSession,
        plan: &Plan,
        job: &SequenceJob,
        vocab_dir: &Path,
    ) -> Result<Vec<Vocabulary>> {
        let storage = &self.storage;
        let text = |path: &Path| seqhouse_sql::string(&path.display().to_string(), Dialect::Spark);
        let vocabularies =
            seqhouse_storage::vocab::for_job(storage, &plan.resolved, job.subset.as_deref(), &mut |counts| {
                for (j, (select, counts)) in plan.vocab_counts.iter().zip(counts).enumerate() {
                    let directory = vocab_dir.join("counts").join(j.to_string());
                    self.run(session, &plan.tag, &insert_directory(select, &text(&directory)), "vocabulary counts")?;
                    let folder = storage.locate(&directory.display().to_string())?;
                    seqhouse_storage::vocab::add_counts_in(storage, &folder, counts)?;
                }
                Ok(())
            })?;
        for (j, (vocabulary, view)) in vocabularies.iter().zip(&plan.vocab_views).enumerate() {
            let folder = vocab_dir.join("tables").join(j.to_string());
            let name = format!("{}.parquet", vocabulary.feature);
            // Through storage, as the Athena engine writes its vocabulary files.
            let location = storage.locate(&folder.display().to_string())?;
            storage.put(&location, &name, seqhouse_storage::vocab::file_bytes(vocabulary)?)?;
            self.run(session, &plan.tag, &view.create(&text(&folder.join(&name))), "vocabulary view")?;
        }
        Ok(vocabularies)
    }

    /// Runs the plan into the targets' staging folders; returns the job's counts, its
    /// vocabularies and each output's parts and columns.
    #[allow(clippy::type_complexity)]
    fn run_plan(
        &self,
        plan: &Plan,
        job: &SequenceJob,
        targets: &[Target],
        progress: &dyn Progress,
    ) -> Result<(SequenceStats, Vec<Vocabulary>, Vec<(Vec<OutputPart>, Vec<OutputColumn>)>)> {
        let session = self.session()?;
        progress.stage("spark", 3);
        self.run(&session, &plan.tag, &plan.create_view, "temporary view")?;
        // Spark writes into the first output's staging folder; the files move to each output's.
        let spark_dir = target_dir(&targets[0])?.join(SPARK_DIR);
        let vocab_dir = target_dir(&targets[0])?.join(VOCAB_DIR);
        let result = (|| {
            let k_core_plan;
            let plan = match plan.k_core_probe {
                Some(_) => {
                    let rounds =
                        seqhouse_sql::k_core_rounds(&plan.resolved, &plan.view, Dialect::Spark, "spark", |probe| {
                            self.count_rows(&session, &plan.tag, probe, "k-core probe")
                        })?;
                    tracing::info!(rounds, "spark: k-core reaches its fixed point");
                    let mut rebuilt = plan.clone();
                    rebuilt.make_statements(Some(rounds))?;
                    k_core_plan = rebuilt;
                    &k_core_plan
                }
                None => plan,
            };
            let vocabularies = self.vocabularies(&session, plan, job, &vocab_dir)?;
            let counts = self.counts(&session, plan, job)?;
            progress.advance(1);
            let mut sources = Vec::new();
            if seqhouse_sql::has_split_column(&job.spec) {
                for (group, (select, outputs)) in plan.selects.iter().zip(&plan.groups).enumerate() {
                    let directory = spark_dir.join(group.to_string());
                    self.write_by_split(&session, &plan.tag, select, &directory)?;
                    sources
                        .extend(outputs.clone().map(|i| directory.join(format!("{}={i}", seqhouse_sql::SPLIT_COLUMN))));
                }
            } else {
                let directory = seqhouse_sql::string(&spark_dir.display().to_string(), Dialect::Spark);
                let write = insert_directory(&plan.selects[0], &directory);
                self.run(&session, &plan.tag, &write, "write of the sequences")?;
                sources.push(spark_dir.clone());
            }
            progress.advance(1);
            Ok((counts, vocabularies, sources))
        })();
        // Drop the views whatever happened: they would otherwise live as long as the session.
        let was_cancelled = self.cancelled.swap(false, Ordering::SeqCst);
        let drops = std::iter::once((plan.drop_view.clone(), "temporary view"))
            .chain(plan.vocab_views.iter().map(|view| (view.drop(), "vocabulary view")));
        for (drop, what) in drops {
            if let Err(e) = self.run(&session, &plan.tag, &drop, &format!("drop of the {what}")) {
                tracing::warn!(error = %e, "could not drop the {what}");
            }
        }
        self.cancelled.store(was_cancelled, Ordering::SeqCst);
        if vocab_dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&vocab_dir)
        {
            tracing::warn!(error = %e, folder = %vocab_dir.display(), "could not remove the vocabularies' staging folder");
        }
        let adopted = result.and_then(|(counts, vocabularies, sources)| {
            if was_cancelled {
                return Err(Error::Interrupted("stopped before publishing".into()));
            }
            let outputs = (sources.iter().zip(targets).enumerate())
                .map(|(i, (source, target))| {
                    let parts = adopt_spark_files(source, &target_dir(target)?)?;
                    let columns = parts
                        .first()
                        .map(|(_, columns)| columns.clone())
                        .unwrap_or_else(|| OutputColumn::of_schema(&plan.resolved.output_schemas[i]));
                    Ok((parts.into_iter().map(|(p, _)| p).collect(), columns))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((counts, vocabularies, outputs))
        });
        // Spark's own files (`_SUCCESS`, checksums, empty partitions) never reach an output.
        if spark_dir.exists()
            && let Err(e) = std::fs::remove_dir_all(&spark_dir)
        {
            tracing::warn!(error = %e, folder = %spark_dir.display(), "could not remove Spark's staging folder");
        }
        adopted
    }
}

/// The local folder of a staged target (the spark engine only writes local outputs).
fn target_dir(target: &Target) -> Result<PathBuf> {
    target
        .location()
        .local
        .clone()
        .ok_or_else(|| Error::internal("the spark engine staged an output that is not a local folder"))
}

/// Renames the Parquet files Spark wrote into `spark_dir` to `part-NNNNN.parquet` in `staging`
/// (in Spark's file-name order, skipping files without rows; none when Spark wrote no such
/// folder, as for a split without windows). Returns each part with the columns its footer holds.
fn adopt_spark_files(spark_dir: &Path, staging: &Path) -> Result<Vec<(OutputPart, Vec<OutputColumn>)>> {
    if !spark_dir.exists() {
        return Ok(Vec::new());
    }
    let listing = std::fs::read_dir(spark_dir).map_err(|e| Error::storage("cannot list", spark_dir.display(), e))?;
    let mut written = Vec::new();
    for entry in listing {
        let path = entry.map_err(|e| Error::storage("cannot list", spark_dir.display(), e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.ends_with(".parquet") && !name.starts_with(['.', '_']) {
            written.push(path);
        }
    }
    written.sort();
    let mut parts = Vec::new();
    for path in written {
        let file = std::fs::File::open(&path).map_err(|e| Error::storage("cannot open", path.display(), e))?;
        let reader = SerializedFileReader::new(file).map_err(|e| Error::storage("cannot read", path.display(), e))?;
        let rows = reader.metadata().file_metadata().num_rows() as u64;
        if rows == 0 {
            continue;
        }
        let schema = parquet::arrow::parquet_to_arrow_schema(
            reader.metadata().file_metadata().schema_descr(),
            reader.metadata().file_metadata().key_value_metadata(),
        )
        .map_err(|e| Error::storage("cannot read", path.display(), e))?;
        let name = part_name(parts.len());
        let destination = staging.join(&name);
        std::fs::rename(&path, &destination).map_err(|e| Error::storage("cannot move", path.display(), e))?;
        let bytes = std::fs::metadata(&destination)
            .map_err(|e| Error::storage("cannot inspect", destination.display(), e))?
            .len();
        parts.push((OutputPart { path: name, rows, bytes }, OutputColumn::of_schema(&schema)));
    }
    Ok(parts)
}

impl Warehouse for SparkWarehouse {
    fn explain(&self, job: &SequenceJob) -> Result<Explanation> {
        let plan = self.plan(job)?;
        let mut steps = vec![Step::Statement(plan.create_view)];
        if let Some(probe) = plan.k_core_probe {
            steps.extend([Step::Note(seqhouse_sql::K_CORE_PROBE_NOTE.into()), Step::Statement(probe)]);
        }
        if !plan.vocab_views.is_empty() {
            steps.push(Step::Note(seqhouse_sql::vocab_note(&plan.resolved.spec)));
        }
        let staged = |what: String| format!("'<hidden staging folder beside {}>/{VOCAB_DIR}/{what}'", Setting::Output);
        steps.extend(
            (plan.vocab_counts.iter().enumerate())
                .map(|(j, select)| Step::Statement(insert_directory(select, &staged(format!("counts/{j}"))))),
        );
        steps.extend((plan.vocab_views.iter().zip(&plan.resolved.spec.vocab).enumerate()).map(|(j, (view, vocab))| {
            Step::Statement(view.create(&staged(format!("tables/{j}/{}.parquet", vocab.name))))
        }));
        let statements = [plan.stats].into_iter().chain(plan.split_stats).chain(plan.writes);
        let drops = std::iter::once(plan.drop_view).chain(plan.vocab_views.iter().map(VocabView::drop));
        steps.extend(statements.chain(drops).map(Step::Statement));
        Ok(Explanation { steps })
    }

    fn name(&self) -> &str {
        "spark"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            ties_keep_input_order: false,
            fixed_size_lists: false,
            ordered_output: false,
            widens_integers_to_floats: false,
            timestamp_unit: seqhouse_sql::timestamp_unit(Dialect::Spark),
        }
    }

    fn preflight(&self, job: &SequenceJob) -> Result<()> {
        let (input, _) = self.local_location(&job.input, Setting::Input)?;
        for output in self.outputs(job)? {
            publish::check_job(&self.storage, &input, &output, job.overwrite)?;
        }
        Ok(())
    }

    fn sequence(&self, job: &SequenceJob, progress: &dyn Progress) -> Result<JobReport> {
        let plan = self.plan(job)?;
        self.execute(job, &plan, progress)
    }
}
