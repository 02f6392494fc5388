//! How every engine publishes an output so that a reader following the manifest sees the old
//! output or the complete new one, never a mix and never nothing: part names, which folders may
//! be (re)written, and [`Target`], which stages and commits an output.
//!
//! Every run first takes the output's [`OutputLock`], so no two runs write one output at once.
//!
//! - **Local folders**: parts and then `_manifest.json` go into a hidden sibling of the output
//!   (`.NAME.seqhouse-tmp-*`), are fsynced (the files, then the folder), and the folder takes
//!   the output's place. A new output is renamed into place; an existing one is swapped with it
//!   in one step (`renameat2(RENAME_EXCHANGE)`), so there is no moment without an output, and the
//!   old one, now in the hidden folder, is deleted. Where the exchange is not supported the old
//!   output is first renamed to a hidden aside name unique to the run. Staging and aside folders
//!   left by a run that died are removed by the next run on that output (it holds the lock, so
//!   no live run owns them).
//! - **Object stores** (S3) have no rename; the manifest is the commit point. New parts are
//!   uploaded under names no trusted manifest lists (see [`Target::part_name`]), the new
//!   manifest replaces the old one with one PUT, and only then are the parts it does not list
//!   deleted. Until the PUT, readers of the manifest see the old output; after it, the new one.
//!   A failed run deletes only the parts it uploaded.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use seqhouse_core::manifest::{InputFile, OutputColumn, OutputPart, SplitOutput, VocabularyFile};
use seqhouse_core::vocab::{VOCAB_FOLDER, VOCAB_FOLDERS};
use seqhouse_core::{
    Error, JobReport, MANIFEST_FILE, Manifest, Result, SequenceJob, SequenceStats, Setting, SplitReport,
    check_window_count,
};

use crate::failpoint;
use crate::lock::{LOCK_OBJECT, OutputLock};
use crate::{Location, Storage};

/// Prefix of the staging prefix Athena's UNLOAD writes into inside an object-store output.
pub const UNLOAD_PREFIX: &str = "_seqhouse-unload-";

/// Name of part `index` of a local output (or a fresh object-store one): `part-00000.parquet`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// Whether `name` is a part file as seqhouse names them: `part-` and at least five digits,
/// optionally `-` and sixteen lowercase hex digits, then `.parquet`. Strict on purpose: other
/// tools' parts (Spark's `part-00000-<uuid>-c000.snappy.parquet`) are not seqhouse's to delete.
pub fn is_part(name: &str) -> bool {
    let Some(stem) = name.strip_prefix("part-").and_then(|n| n.strip_suffix(".parquet")) else { return false };
    let (digits, generation) = match stem.split_once('-') {
        Some((digits, generation)) => (digits, Some(generation)),
        None => (stem, None),
    };
    let digits_ok = digits.len() >= 5 && digits.bytes().all(|b| b.is_ascii_digit());
    let generation_ok =
        generation.is_none_or(|g| g.len() == 16 && g.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    digits_ok && generation_ok
}

/// Whether seqhouse writes an entry of this name inside an output folder: the manifest, parts,
/// an object-store lock, an Athena UNLOAD staging prefix, a vocabulary file
/// (`_vocab/NAME.parquet`, or `vocab/NAME.parquet` as earlier versions wrote it, as
/// [`output_entries`] lists the vocabulary folders' files).
pub fn is_own_entry(name: &str) -> bool {
    name == MANIFEST_FILE
        || is_part(name)
        || name == LOCK_OBJECT
        || name.starts_with(UNLOAD_PREFIX)
        || is_vocab_entry(name)
}

/// Whether `name` is a vocabulary file inside an output: one of [`VOCAB_FOLDERS`], `/`, then a
/// file name (no further folder, not hidden) ending in `.parquet`.
fn is_vocab_entry(name: &str) -> bool {
    VOCAB_FOLDERS.iter().any(|folder| {
        name.strip_prefix(folder)
            .and_then(|rest| rest.strip_prefix('/'))
            .and_then(|file| file.strip_suffix(".parquet"))
            .is_some_and(|stem| !stem.is_empty() && !stem.contains(['/', '\\']) && !stem.starts_with('.'))
    })
}

/// What is at the output location now.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputState {
    /// Nothing trusted: no folder, an empty one (users often create it first), or only what
    /// runs that died left (parts without a manifest, a lock, a staging prefix). Written without
    /// `--overwrite`; the leftovers are removed when the new output is published.
    Absent,
    /// A published seqhouse output (it has a manifest), and `--overwrite` was given.
    Replaceable,
}

/// Decides from the names inside `output` whether it may be written.
///
/// A folder holding anything seqhouse does not write there is refused whether or not
/// `overwrite` is set, naming the first such entry: `--output ~ --overwrite` or an output
/// pointed at a repository must never delete what is there. A manifest alone does not make
/// the other entries seqhouse's.
pub fn check_output(shown: &str, names: &[String], overwrite: bool) -> Result<OutputState> {
    let mut names: Vec<&String> = names.iter().collect();
    names.sort();
    if let Some(foreign) = names.iter().find(|n| !is_own_entry(n)) {
        return Err(Error::OutputNotOurs { location: shown.to_string(), entry: foreign.to_string() });
    }
    if !names.iter().any(|n| *n == MANIFEST_FILE) {
        return Ok(OutputState::Absent);
    }
    if !overwrite {
        return Err(Error::OutputExists { location: shown.to_string() });
    }
    Ok(OutputState::Replaceable)
}

/// Refuses an output that overlaps its input. Inside the input folder, its parts would be read
/// as input by the next run; the input inside (or at) the output would be read back as its own
/// old output, and deleted by `--overwrite`.
pub fn ensure_apart(input: &Location, output: &Location) -> Result<()> {
    // Local locations are normalized (symlinks resolved), so comparing paths suffices.
    if output.contains(input) || output.same_as(input) {
        return Err(Error::setting(
            Setting::Input,
            format!(
                "{} lies inside {} {} (or is it); the run would read its own old output, and {} would delete its input. Write the output elsewhere",
                input.shown,
                Setting::Output,
                output.shown,
                Setting::Overwrite
            ),
        ));
    }
    let input_is_folder = input.local.as_ref().is_none_or(|path| path.is_dir());
    if input_is_folder && input.contains(output) {
        return Err(Error::setting(
            Setting::Output,
            format!(
                "{} is inside the input folder {}; its parts would be read as input by the next run. Write it elsewhere",
                output.shown, input.shown
            ),
        ));
    }
    Ok(())
}

/// A short id unique to this run (process, time and a random key), for names that runs must
/// not share: staging prefixes, temporary tables.
pub fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// FNV-1a over `bytes`: a stable 64-bit digest (the same on every machine and release).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// [`Target::begin`] for each of a job's outputs, each holding its lock (in the same order);
/// if one cannot begin, those begun are aborted.
pub fn begin_outputs(
    storage: &Storage,
    input: &Location,
    outputs: &[Location],
    overwrite: bool,
    locks: Vec<OutputLock>,
) -> Result<Vec<Target>> {
    let mut targets = Vec::with_capacity(outputs.len());
    for (lock, output) in locks.into_iter().zip(outputs) {
        match Target::begin(storage, input, output, overwrite, lock) {
            Ok(target) => targets.push(target),
            Err(e) => {
                abort_outputs(storage, targets);
                return Err(e);
            }
        }
    }
    Ok(targets)
}

/// [`Target::abort`] for each of a job's outputs.
pub fn abort_outputs(storage: &Storage, targets: Vec<Target>) {
    targets.into_iter().for_each(|target| target.abort(storage));
}

/// One output of a job, its parts written into its [`Target`], ready to commit.
pub struct WrittenOutput {
    /// Where its parts are.
    pub target: Target,
    /// Its parts, in order.
    pub parts: Vec<OutputPart>,
    /// The columns its parts hold.
    pub columns: Vec<OutputColumn>,
    /// The vocabulary files written into it.
    pub vocabularies: Vec<VocabularyFile>,
}

/// What the manifests of one job's outputs share.
pub struct Publication<'a> {
    /// The engine's name, as the manifest records it.
    pub engine: &'a str,
    /// The job.
    pub job: &'a SequenceJob,
    /// Its input.
    pub input: &'a Location,
    /// The input files read, as the manifest lists them.
    pub input_files: Vec<InputFile>,
    /// The job's counts (each split's in `splits`).
    pub stats: SequenceStats,
}

/// Publishes the outputs of a job (one per split of a split job, in
/// [`SequenceJob::outputs`]'s order): writes each manifest, with its split's counts and the
/// run they share, and commits the outputs one after the other with no more work (or stop)
/// between them, so a reader sees all splits of one run unless a commit itself fails. Before
/// any commit, a failure, a parts/counts mismatch or `stopped` aborts every output.
pub fn commit_outputs(
    storage: &Storage,
    publication: Publication,
    outputs: Vec<WrittenOutput>,
    stopped: &dyn Fn() -> Result<()>,
) -> Result<JobReport> {
    let Publication { engine, job, input, input_files, stats } = publication;
    let names = job.spec.output_names();
    let prepared = (|| {
        let locations =
            job.outputs().into_iter().map(|(_, output)| storage.locate(&output)).collect::<Result<Vec<_>>>()?;
        if locations.len() != outputs.len() {
            return Err(Error::internal(format!("{} outputs written for {} splits", outputs.len(), locations.len())));
        }
        let run = SplitOutput::run_digest(&job.spec, &input_files);
        let folders: Vec<String> = (names.iter().flatten())
            .map(|name| seqhouse_core::sequenced_folder(name, job.spec.sequence_length))
            .collect();
        let mut manifests = Vec::with_capacity(outputs.len());
        for (i, output) in outputs.iter().enumerate() {
            let counts = stats.of_output(i);
            check_window_count(engine, output.parts.iter().map(|p| p.rows).sum(), counts.windows)?;
            let input_location = crate::manifest_input_location(input, &locations[i]);
            let mut manifest = Manifest::new(
                engine,
                job,
                input_location,
                input_files.clone(),
                output.parts.clone(),
                output.columns.clone(),
                counts,
            );
            manifest.split =
                names[i].map(|name| SplitOutput { name: name.to_string(), run: run.clone(), outputs: folders.clone() });
            manifest.vocabularies = output.vocabularies.clone();
            manifests.push(serde_json::to_vec_pretty(&manifest).map_err(Error::internal)?);
        }
        stopped()?;
        Ok((locations, folders, manifests))
    })();
    let (locations, folders, manifests) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            abort_outputs(storage, outputs.into_iter().map(|output| output.target).collect());
            return Err(e);
        }
    };
    let mut report = JobReport::new(job, input_files.len(), &[], stats);
    let mut pending = outputs.into_iter();
    for (i, (output, json)) in pending.by_ref().zip(manifests).enumerate() {
        if let Err(e) = output.target.commit(storage, json) {
            abort_outputs(storage, pending.map(|output| output.target).collect());
            if i > 0 {
                tracing::error!(
                    published = ?&folders[..i],
                    "publishing split {} failed after the splits before it were published; run the job again",
                    folders[i]
                );
            }
            return Err(e);
        }
        report.parts += output.parts.len();
        let bytes: u64 = output.parts.iter().map(|p| p.bytes).sum();
        report.output_bytes += bytes;
        if let Some(name) = names[i] {
            report.splits.push(SplitReport {
                name: name.to_string(),
                output: locations[i].shown.clone(),
                parts: output.parts.len(),
                output_bytes: bytes,
            });
        }
    }
    Ok(report)
}

/// Where a job's output is being written, and how it will be published. Holds the output's
/// lock until it is committed or aborted.
pub struct Target {
    kind: Kind,
    lock: OutputLock,
}

enum Kind {
    /// A local output: a staging folder that takes the output's place.
    Staged {
        /// The hidden staging folder.
        staging: Staging,
        /// The staging folder as a storage location.
        location: Location,
        /// The final output folder.
        output: PathBuf,
        /// Replace an existing output.
        overwrite: bool,
    },
    /// An object-store output: parts beside the old ones, the manifest as the commit point.
    Direct {
        /// The output folder.
        location: Location,
        /// What part names end in: empty for a fresh output, else `-` and sixteen hex digits
        /// derived from the manifest being replaced, so no new part can overwrite a part the
        /// trusted manifest lists, and the same job on the same output state names its parts
        /// the same way (a fresh output on S3 has the same names, and bytes, as a local one).
        generation: String,
        /// Parts this run uploaded, deleted if it fails.
        written: Mutex<Vec<String>>,
    },
}

impl Target {
    /// Prepares to write `output`, holding `lock` (taken on `output` when the job started).
    /// Call only once the input has been read and sequenced, so that bad input never disturbs
    /// an existing output.
    pub fn begin(
        storage: &Storage,
        input: &Location,
        output: &Location,
        overwrite: bool,
        lock: OutputLock,
    ) -> Result<Target> {
        if let Some(path) = &output.local {
            remove_local_leftovers(path);
            // Checked again here, under the lock, where it decides: preflight only fails early.
            check_job(storage, input, output, overwrite)?;
            let staging = Staging::create(path)?;
            let location = storage.locate(&staging.dir().display().to_string())?;
            let kind = Kind::Staged { staging, location, output: path.clone(), overwrite };
            return Ok(Target { kind, lock });
        }
        let generation = match check_job(storage, input, output, overwrite)? {
            OutputState::Absent => String::new(),
            OutputState::Replaceable => {
                let old = storage.get(&output.child(MANIFEST_FILE))?;
                format!("-{:016x}", fnv1a(&old))
            }
        };
        Ok(Target {
            kind: Kind::Direct { location: output.clone(), generation, written: Mutex::new(Vec::new()) },
            lock,
        })
    }

    /// The folder parts are written into.
    pub fn location(&self) -> &Location {
        match &self.kind {
            Kind::Staged { location, .. } | Kind::Direct { location, .. } => location,
        }
    }

    /// The name of part `index`: [`part_name`], with the generation suffix when replacing an
    /// object-store output.
    pub fn part_name(&self, index: usize) -> String {
        format!("part-{index:05}{}.parquet", self.generation())
    }

    /// What this run's file names end in before `.parquet`: empty, or when replacing an
    /// object-store output `-` and the generation's sixteen hex digits.
    fn generation(&self) -> &str {
        match &self.kind {
            Kind::Direct { generation, .. } => generation,
            Kind::Staged { .. } => "",
        }
    }

    /// The name of feature `feature`'s vocabulary file: [`seqhouse_core::vocab::vocab_file`],
    /// with the generation suffix when replacing an object-store output (so the file the
    /// trusted manifest lists is never overwritten before the new manifest replaces it).
    pub fn vocab_name(&self, feature: &str) -> String {
        format!("{VOCAB_FOLDER}/{feature}{}.parquet", self.generation())
    }

    /// Records part `name` as this run's before it is written: a failed upload may still
    /// leave an object, and a failed run removes what it wrote.
    fn record(&self, name: &str) {
        if let Kind::Direct { written, .. } = &self.kind {
            written.lock().expect("written lock").push(name.to_string());
        }
    }

    /// Writes part `name`.
    pub fn put(&self, storage: &Storage, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.record(name);
        storage.put(self.location(), name, bytes)
    }

    /// Copies the object `from` in as part `name` (server-side, for Athena's unloaded files).
    pub fn copy_part(&self, storage: &Storage, from: &Location, name: &str) -> Result<()> {
        self.record(name);
        storage.copy(from, &self.location().child(name))
    }

    /// Starts part `name`: a file in the staging folder for a local output, so that a part is
    /// never held whole in memory; a buffer for an object store, uploaded by
    /// [`Target::finish_part`].
    pub fn open_part(&self, name: &str) -> Result<PartWriter> {
        match &self.kind {
            Kind::Staged { staging, .. } => {
                let path = staging.dir().join(name);
                let file = File::create(&path).map_err(|e| Error::storage("cannot create", path.display(), e))?;
                let file = BufWriter::with_capacity(1 << 20, file);
                Ok(PartWriter(PartSpool::File { file, path, bytes: 0, writeback_from: 0 }))
            }
            Kind::Direct { .. } => Ok(PartWriter(PartSpool::Buffer { name: name.to_string(), bytes: Vec::new() })),
        }
    }

    /// Completes a part started with [`Target::open_part`] and returns its size in bytes.
    pub fn finish_part(&self, storage: &Storage, part: PartWriter) -> Result<u64> {
        match part.0 {
            PartSpool::File { file, path, bytes, .. } => {
                file.into_inner().map_err(|e| Error::storage("cannot write", path.display(), e.into_error()))?;
                Ok(bytes)
            }
            PartSpool::Buffer { name, bytes } => {
                let size = bytes.len() as u64;
                self.put(storage, &name, bytes)?;
                Ok(size)
            }
        }
    }

    /// [`Target::commit`], unless `stopped` says the run was asked to stop (Ctrl-C): a stop
    /// that arrives before the commit point leaves nothing published, however late it came.
    pub fn commit_unless_stopped(
        self,
        storage: &Storage,
        manifest_json: Vec<u8>,
        stopped: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        if let Err(e) = stopped() {
            self.abort(storage);
            return Err(e);
        }
        self.commit(storage, manifest_json)
    }

    /// Publishes: the manifest last, after every part. Once this returns `Ok` the output is
    /// published; a failure before the commit point leaves the old output as it was and
    /// removes this run's parts.
    pub fn commit(self, storage: &Storage, manifest_json: Vec<u8>) -> Result<()> {
        let Target { kind, lock } = self;
        match kind {
            Kind::Staged { staging, location, output, overwrite } => {
                storage.put(&location, MANIFEST_FILE, manifest_json)?;
                staging.publish(&output, overwrite)
            }
            Kind::Direct { location, written, .. } => {
                let written = written.into_inner().expect("written lock");
                let committed = lock
                    .verify(storage)
                    .and_then(|()| failpoint::hit("publish.object.before_commit"))
                    .map_err(Commit::NotMade)
                    .and_then(|()| put_manifest(storage, &location, manifest_json));
                match committed {
                    Ok(()) => {}
                    Err(Commit::NotMade(e)) => {
                        remove_parts(storage, &location, &written);
                        return Err(e);
                    }
                    // The parts stay: the new manifest may list them. If it did not land, the
                    // next run on this output removes them, as parts no manifest lists.
                    Err(Commit::Unknown(e)) => return Err(e),
                }
                // Committed: readers of the manifest now see the new output. What follows only
                // tidies up, and cannot unpublish it.
                let _ = failpoint::hit("publish.object.committed");
                let keep: HashSet<&String> = written.iter().collect();
                match output_entries(storage, &location) {
                    Ok(names) => {
                        let stale: Vec<String> = (names.into_iter())
                            .filter(|n| (is_part(n) || is_vocab_entry(n)) && !keep.contains(n))
                            .collect();
                        remove_parts(storage, &location, &stale);
                    }
                    Err(e) => tracing::warn!(error = %e, "could not list the replaced output's parts to remove them"),
                }
                Ok(())
            }
        }
    }

    /// Undoes a failed run: removes the staging folder, or the parts uploaded so far, and
    /// releases the lock. The old output, if any, is untouched.
    pub fn abort(self, storage: &Storage) {
        match self.kind {
            Kind::Staged { staging, .. } => drop(staging),
            Kind::Direct { location, written, .. } => {
                remove_parts(storage, &location, &written.into_inner().expect("written lock"));
            }
        }
    }
}

/// Why a commit did not return `Ok`.
enum Commit {
    /// Nothing was committed: the old output stands, and this run's parts can go.
    NotMade(Error),
    /// The manifest PUT failed and the manifest could not be read back: it may have landed.
    Unknown(Error),
}

/// Puts the manifest (one PUT: the commit point). When the PUT fails, the request may still
/// have reached the store, so the manifest is read back: ours there is a commit; another (the
/// old one) or none means nothing was committed; no answer leaves it unknown.
fn put_manifest(storage: &Storage, location: &Location, manifest_json: Vec<u8>) -> std::result::Result<(), Commit> {
    let put = failpoint::hit("publish.object.manifest_put")
        .and_then(|()| storage.put(location, MANIFEST_FILE, manifest_json.clone()))
        // The PUT landed but its answer is lost.
        .and_then(|()| failpoint::hit("publish.object.manifest_answer"));
    let Err(e) = put else { return Ok(()) };
    let manifest = location.child(MANIFEST_FILE);
    match failpoint::hit("publish.object.read_back").and_then(|()| storage.head(&manifest)) {
        Ok(None) => return Err(Commit::NotMade(e)),
        Ok(Some(_)) => {}
        Err(_) => return Err(Commit::Unknown(unknown(e, location))),
    }
    match storage.get(&manifest) {
        Ok(found) if found == manifest_json => Ok(()),
        Ok(_) => Err(Commit::NotMade(e)),
        Err(_) => Err(Commit::Unknown(unknown(e, location))),
    }
}

fn unknown(e: Error, location: &Location) -> Error {
    Error::storage_message(
        "cannot tell whether this run published",
        &location.shown,
        format!(
            "{e}; the manifest could not be read back. This run's parts were kept; run again with {}: the next run removes every part no manifest lists",
            Setting::Overwrite
        ),
    )
}

fn remove_parts(storage: &Storage, location: &Location, names: &[String]) {
    for name in names {
        if let Err(e) = storage.delete(location, name) {
            tracing::warn!(error = %e, "could not remove a part; the next run on this output removes it");
        }
    }
}

/// A part file being written (see [`Target::open_part`]).
pub struct PartWriter(PartSpool);

enum PartSpool {
    /// Written straight into the staging folder; `writeback_from` is where the bytes not yet
    /// handed to the disk start (see [`start_writeback`]).
    File { file: BufWriter<File>, path: PathBuf, bytes: u64, writeback_from: u64 },
    /// Held in memory until uploaded whole.
    Buffer { name: String, bytes: Vec<u8> },
}

impl Write for PartWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.0 {
            PartSpool::File { file, bytes, writeback_from, .. } => {
                let written = file.write(buf)?;
                *bytes += written as u64;
                let in_file = *bytes - file.buffer().len() as u64;
                if in_file - *writeback_from >= WRITEBACK_BYTES {
                    start_writeback(file.get_ref(), *writeback_from, in_file);
                    *writeback_from = in_file;
                }
                Ok(written)
            }
            PartSpool::Buffer { bytes, .. } => bytes.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.0 {
            PartSpool::File { file, .. } => file.flush(),
            PartSpool::Buffer { .. } => Ok(()),
        }
    }
}

/// Bytes of a part file after which the disk is asked to start writing them.
const WRITEBACK_BYTES: u64 = 8 << 20;

/// Asks the kernel to start writing bytes `[from, to)` of `file` to disk, without waiting.
///
/// Publishing fsyncs every part. Left alone, the kernel holds a job's output in memory (up to a
/// tenth of it by default) and the fsync then waits for all of it at the end: at 100M rows,
/// 760 MB written while the cores sit idle. Started as the parts are written, the writing
/// overlaps the job and the fsync finds little left. Errors are left to that fsync.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // sync_file_range(2)
fn start_writeback(file: &File, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor for the life of `file`; the call only schedules I/O.
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), from as i64, (to - from) as i64, libc::SYNC_FILE_RANGE_WRITE);
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _from: u64, _to: u64) {}

/// A hidden staging folder beside a local output, removed on drop unless published.
pub struct Staging {
    dir: PathBuf,
    published: bool,
}

/// The hidden sibling names a run gives its staging and aside folders, for `output`'s name.
fn hidden_prefixes(name: &str) -> [String; 2] {
    [format!(".{name}.seqhouse-tmp-"), format!(".{name}.seqhouse-old-")]
}

/// A name beside `output` unique to this run: `.NAME.seqhouse-KIND-PID-NANOS`.
fn hidden_sibling(parent: &Path, name: &str, kind: &str) -> PathBuf {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    parent.join(format!(".{name}.seqhouse-{kind}-{}-{nanos}", std::process::id()))
}

/// Removes the staging and aside folders that runs which died left beside `output`. The caller
/// holds the output's lock, so no live run owns any of them.
fn remove_local_leftovers(output: &Path) {
    let Ok((parent, name)) = split_output(output) else { return };
    let Ok(entries) = std::fs::read_dir(&parent) else { return };
    let prefixes = hidden_prefixes(&name);
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !prefixes.iter().any(|p| file_name.starts_with(p.as_str())) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => tracing::info!(folder = %path.display(), "removed what an interrupted run left behind"),
            Err(e) => {
                tracing::warn!(folder = %path.display(), error = %e, "could not remove what an interrupted run left behind")
            }
        }
    }
}

impl Staging {
    /// Creates `.NAME.seqhouse-tmp-PID-NANOS` next to `output` (creating `output`'s parents).
    pub fn create(output: &Path) -> Result<Self> {
        let (parent, name) = split_output(output)?;
        std::fs::create_dir_all(&parent).map_err(|e| Error::storage("cannot create", parent.display(), e))?;
        let dir = hidden_sibling(&parent, &name, "tmp");
        std::fs::create_dir(&dir).map_err(|e| Error::storage("cannot create", dir.display(), e))?;
        Ok(Staging { dir, published: false })
    }

    /// The folder to write into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the staged files durable, then puts the folder in the output's place, replacing
    /// a previous output only when `overwrite` is set.
    fn publish(mut self, output: &Path, overwrite: bool) -> Result<()> {
        // The vocabulary folder's files first, then it, then the output's own entries (the
        // vocabulary folder among them).
        let vocab = self.dir.join(VOCAB_FOLDER);
        let folders: &[&Path] = if vocab.is_dir() { &[&vocab, &self.dir] } else { &[&self.dir] };
        for folder in folders {
            for entry in std::fs::read_dir(folder).map_err(|e| Error::storage("cannot list", folder.display(), e))? {
                let path = entry.map_err(|e| Error::storage("cannot list", folder.display(), e))?.path();
                File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::storage("cannot sync", path.display(), e))?;
            }
            // The folder's entries too: synced files are durable, but their names in the folder
            // are the folder's own data, and after a crash the published folder could lack some.
            File::open(folder)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| Error::storage("cannot sync", folder.display(), e))?;
        }
        // Checked again at the last moment: something may have been put into the output since.
        check_output(&output.display().to_string(), &local_entries(output)?, overwrite)?;
        failpoint::hit("publish.local.staged")?;
        let exists = match std::fs::symlink_metadata(output) {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(Error::storage("cannot inspect", output.display(), e)),
        };
        if !exists {
            std::fs::rename(&self.dir, output).map_err(|e| Error::storage("cannot publish", output.display(), e))?;
            self.published = true;
        } else if exchange(&self.dir, output).is_ok() {
            // The staging path now holds the old output (or the empty folder the user made);
            // dropping `self` deletes it.
            let _ = failpoint::hit("publish.local.swapped");
        } else {
            self.replace_through_aside(output)?;
        }
        sync_parent(output);
        Ok(())
    }

    /// Replaces `output` where folders cannot be exchanged: the old output moves to an aside
    /// name unique to this run, the new one into place, then the old one is deleted. A run
    /// that dies in between leaves the output at the aside name, which the next run on this
    /// output removes (see [`remove_local_leftovers`]).
    fn replace_through_aside(&mut self, output: &Path) -> Result<()> {
        let (parent, name) = split_output(output)?;
        let aside = hidden_sibling(&parent, &name, "old");
        std::fs::rename(output, &aside).map_err(|e| Error::storage("cannot move aside", output.display(), e))?;
        if let Err(e) = failpoint::hit("publish.local.aside").and_then(|()| {
            std::fs::rename(&self.dir, output).map_err(|e| Error::storage("cannot publish", output.display(), e))
        }) {
            // Put the old output back rather than leave the user with none.
            let _ = std::fs::rename(&aside, output);
            return Err(e);
        }
        self.published = true;
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            tracing::warn!(folder = %aside.display(), error = %e, "could not remove the replaced output");
        }
        Ok(())
    }
}

/// Swaps two folders in one step (Linux `renameat2(RENAME_EXCHANGE)`); an error where the
/// system or file system cannot, and always when the `publish.local.no_exchange` fail point
/// says so (to test the fallback).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // renameat2(2)
fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    failpoint::hit("publish.local.no_exchange").map_err(std::io::Error::other)?;
    let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (a, b) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths; the call only renames.
    let done = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn sync_parent(output: &Path) {
    if let Some(parent) = output.parent()
        && let Ok(dir) = File::open(if parent.as_os_str().is_empty() { Path::new(".") } else { parent })
    {
        let _ = dir.sync_all();
    }
}

fn split_output(output: &Path) -> Result<(PathBuf, String)> {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| Error::setting(Setting::Output, format!("{} must name a folder", output.display())))?;
    let parent = output.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent };
    Ok((parent, name))
}

/// The names inside an output folder, local or on a store, sorted; empty if it does not exist.
///
/// A vocabulary folder ([`VOCAB_FOLDERS`]) is listed by its files (`_vocab/NAME.parquet`), so
/// that a folder of that name holding anything else is not taken for seqhouse's.
pub fn output_entries(storage: &Storage, output: &Location) -> Result<Vec<String>> {
    match &output.local {
        Some(path) => local_entries(path),
        None => with_vocab_files(storage.children(output)?, |folder| storage.children(&output.child(folder))),
    }
}

/// [`output_entries`] of a local folder. A file named like a vocabulary folder stays listed as
/// itself, which is not a vocabulary file.
fn local_entries(output: &Path) -> Result<Vec<String>> {
    with_vocab_files(local_children(output)?, |folder| {
        let path = output.join(folder);
        if path.is_dir() { local_children(&path) } else { Ok(Vec::new()) }
    })
}

/// `names`, with each vocabulary folder's entry replaced by its files, listed by `inside`. An
/// empty folder stays listed as itself, which is not a vocabulary file.
fn with_vocab_files(names: Vec<String>, inside: impl Fn(&str) -> Result<Vec<String>>) -> Result<Vec<String>> {
    let mut entries = names;
    for folder in VOCAB_FOLDERS {
        if !entries.iter().any(|n| n == folder) {
            continue;
        }
        let files = inside(folder)?;
        if !files.is_empty() {
            entries.retain(|n| n != folder);
            entries.extend(files.into_iter().map(|file| format!("{folder}/{file}")));
        }
    }
    entries.sort();
    Ok(entries)
}

/// The checks every engine's preflight makes, and [`Target::begin`] makes again under the lock:
/// input and output apart, and the output absent or a seqhouse output that may be replaced.
pub fn check_job(storage: &Storage, input: &Location, output: &Location, overwrite: bool) -> Result<OutputState> {
    ensure_apart(input, output)?;
    check_output(&output.shown, &output_entries(storage, output)?, overwrite)
}

/// Names inside a local folder, sorted; empty if it does not exist. A file there is an error.
pub fn local_children(output: &Path) -> Result<Vec<String>> {
    let shown = output.display().to_string();
    match std::fs::metadata(output) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::setting(
                Setting::Output,
                format!("{shown} is a file; {} must be a folder", Setting::Output),
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::storage("cannot inspect", &shown, e)),
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(output).map_err(|e| Error::storage("cannot list", &shown, e))? {
        let entry = entry.map_err(|e| Error::storage("cannot list", &shown, e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::S3Options;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    fn lock(storage: &Storage, location: &Location) -> OutputLock {
        OutputLock::acquire(storage, location).unwrap()
    }

    /// A part several times the writeback step, written in odd-sized pieces, is published with
    /// exactly the bytes written: asking for early writeback changes when they reach the disk,
    /// never what they are.
    #[test]
    fn a_large_part_is_published_whole() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        let storage = Storage::new(S3Options::default()).unwrap();
        let location = storage.locate(output.to_str().unwrap()).unwrap();
        let input = storage.locate(&dir.path().join("input").display().to_string()).unwrap();
        let target = Target::begin(&storage, &input, &location, false, lock(&storage, &location)).unwrap();
        let content: Vec<u8> = (0..(WRITEBACK_BYTES * 3 + 12_345)).map(|i| ((i * 2_654_435_761) >> 13) as u8).collect();
        let mut part = target.open_part("part-00000.bin").unwrap();
        for piece in content.chunks(777_777) {
            part.write_all(piece).unwrap();
        }
        assert_eq!(target.finish_part(&storage, part).unwrap(), content.len() as u64);
        target.commit(&storage, b"{}".to_vec()).unwrap();
        assert_eq!(std::fs::read(output.join("part-00000.bin")).unwrap(), content);
        assert_eq!(std::fs::read(output.join(MANIFEST_FILE)).unwrap(), b"{}");
    }

    #[test]
    fn part_names_are_recognised_strictly() {
        for ours in ["part-00000.parquet", "part-123456.parquet", "part-00007-0123456789abcdef.parquet"] {
            assert!(is_part(ours), "{ours}");
        }
        for theirs in [
            "part-00000-6b0f1f51-7c3e-4a8f-9d0e-1f2a3b4c5d6e-c000.snappy.parquet",
            "part-0.parquet",
            "part-00000.parquet.crc",
            "part-00000-0123456789ABCDEF.parquet",
            "part-abcde.parquet",
        ] {
            assert!(!is_part(theirs), "{theirs}");
        }
    }

    /// Folders that merely start with dot or underscore files are not seqhouse outputs: a home
    /// folder, a git repository, a Jekyll site. They are refused with and without overwrite,
    /// naming the first foreign entry, and without advice to pass --overwrite.
    #[test]
    fn folders_seqhouse_did_not_write_are_never_replaced() {
        let cases: [(&[&str], &str); 4] = [
            (&[".bashrc", ".gitconfig", ".ssh"], ".bashrc"),
            (&[".git"], ".git"),
            (&["_posts", "_config.yml"], "_config.yml"),
            (&[MANIFEST_FILE, "part-00000.parquet", "notes.txt"], "notes.txt"),
        ];
        for (entries, first) in cases {
            for overwrite in [false, true] {
                match check_output("out", &names(entries), overwrite) {
                    Err(e @ Error::OutputNotOurs { .. }) => {
                        let text = e.to_string();
                        assert!(text.contains(&format!("'{first}'")), "{text}");
                        assert!(!text.contains("pass --overwrite"), "{text}");
                    }
                    other => panic!("{entries:?} (overwrite {overwrite}): expected OutputNotOurs, got {other:?}"),
                }
            }
        }
    }

    #[test]
    fn seqhouse_outputs_and_leftovers_are_recognised() {
        let published = names(&[MANIFEST_FILE, "part-00000.parquet", "part-00001.parquet"]);
        assert_eq!(check_output("out", &published, true).unwrap(), OutputState::Replaceable);
        assert!(matches!(check_output("out", &published, false), Err(Error::OutputExists { .. })));
        // What dead runs leave is not an output: written without --overwrite.
        let leftovers = names(&["part-00000-0123456789abcdef.parquet", LOCK_OBJECT, "_seqhouse-unload-1f2e"]);
        assert_eq!(check_output("out", &leftovers, false).unwrap(), OutputState::Absent);
        assert_eq!(check_output("out", &[], false).unwrap(), OutputState::Absent);
    }

    /// Vocabulary files are seqhouse's in the folder this version writes (`_vocab/`) and in
    /// the one earlier versions wrote (`vocab/`), so `--overwrite` replaces an output of either;
    /// either folder holding anything else, or a file of that name, is not seqhouse's.
    #[test]
    fn vocabulary_folders_old_and_new_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let write = |relative: &str| {
            let path = dir.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"x").unwrap();
        };
        write(&format!("out/{MANIFEST_FILE}"));
        write("out/part-00000.parquet");
        write("out/_vocab/item.parquet");
        write("out/vocab/tag.parquet");
        let entries = local_entries(&dir.path().join("out")).unwrap();
        assert_eq!(entries, names(&[MANIFEST_FILE, "_vocab/item.parquet", "part-00000.parquet", "vocab/tag.parquet"]));
        assert_eq!(check_output("out", &entries, true).unwrap(), OutputState::Replaceable);
        for foreign in ["vocab/notes.txt", "_vocab/.hidden.parquet", "vocab/deeper/x.parquet"] {
            assert!(!is_own_entry(foreign), "{foreign}");
        }
        write("other/part-00000.parquet");
        write(&format!("other/{MANIFEST_FILE}"));
        write("other/vocab");
        let entries = local_entries(&dir.path().join("other")).unwrap();
        assert!(entries.contains(&"vocab".to_string()), "{entries:?}");
        assert!(matches!(check_output("other", &entries, true), Err(Error::OutputNotOurs { .. })));
    }
}
