//! How every engine publishes an output so that a reader never sees a partial one: part names,
//! when an output may be (re)written, and [`Target`], which stages and commits it.
//!
//! - **Local folders**: parts and then `_manifest.json` go into a hidden sibling of the output
//!   (`.NAME.seqhouse-tmp-*`), are fsynced (the files, then the folder), and the folder is renamed
//!   into place. A reader sees the old output or the complete new one, never a mix. Hidden names
//!   keep a half-written staging folder out of any later input listing.
//! - **Object stores** (S3) have no rename: parts are uploaded first (each atomically) and
//!   `_manifest.json` last, so a folder without a manifest is never trusted. When replacing an
//!   output, its manifest is deleted before the first new part is uploaded, and its stale parts
//!   are deleted before the new manifest is written. A failed run deletes the parts it uploaded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use seqhouse_core::{Error, MANIFEST_FILE, Result};

use crate::{Location, Storage};

/// Name of part `index`: `part-00000.parquet`, ...
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.parquet")
}

/// Whether `name` is a part file.
pub fn is_part(name: &str) -> bool {
    name.starts_with("part-") && name.ends_with(".parquet")
}

/// What is at the output location now.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputState {
    /// Nothing, or an empty folder (users often create it first): written without `--overwrite`.
    Absent,
    /// A previous seqhouse output, and `--overwrite` was given.
    Replaceable,
}

/// Decides from the names inside `output` whether it may be written. `--overwrite` replaces
/// only folders that look like seqhouse outputs, so a mistyped `--output ~ --overwrite` cannot
/// delete a home directory.
pub fn check_output(shown: &str, names: &[String], overwrite: bool) -> Result<OutputState> {
    if names.is_empty() {
        return Ok(OutputState::Absent);
    }
    if !overwrite {
        return Err(Error::OutputExists { location: shown.to_string() });
    }
    let looks_like_ours =
        names.iter().any(|n| n == MANIFEST_FILE) || names.iter().all(|n| is_part(n) || n.starts_with(['.', '_']));
    if !looks_like_ours {
        return Err(Error::invalid(format!(
            "--output {shown} holds files that seqhouse did not write (no {MANIFEST_FILE}); refusing to replace it with --overwrite. Choose another folder or empty it yourself"
        )));
    }
    Ok(OutputState::Replaceable)
}

/// Where a job's output is being written, and how it will be published.
pub enum Target {
    /// A local output: a staging folder renamed into place.
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
    /// An object-store output: written in place, manifest last.
    Direct {
        /// The output folder.
        location: Location,
        /// Part files of a replaced output, deleted at commit unless rewritten.
        stale: Vec<String>,
        /// Parts this run uploaded, deleted if it fails.
        written: Mutex<Vec<String>>,
    },
}

impl Target {
    /// Prepares to write `output`. Call only once the input has been read and sequenced, so
    /// that bad input never disturbs an existing output.
    pub fn begin(storage: &Storage, output: &Location, overwrite: bool) -> Result<Target> {
        if let Some(path) = &output.local {
            let staging = Staging::create(path)?;
            let location = storage.locate(&staging.dir().display().to_string())?;
            return Ok(Target::Staged { staging, location, output: path.clone(), overwrite });
        }
        let names = storage.children(output)?;
        let stale = match check_output(&output.shown, &names, overwrite)? {
            OutputState::Absent => Vec::new(),
            OutputState::Replaceable => {
                // From here on the old output is no longer trusted by readers.
                storage.delete(output, MANIFEST_FILE)?;
                names.into_iter().filter(|n| is_part(n)).collect()
            }
        };
        Ok(Target::Direct { location: output.clone(), stale, written: Mutex::new(Vec::new()) })
    }

    /// The folder parts are written into.
    pub fn location(&self) -> &Location {
        match self {
            Target::Staged { location, .. } | Target::Direct { location, .. } => location,
        }
    }

    /// Writes part `name` (recorded so that a failed run can remove it from an object store).
    pub fn put(&self, storage: &Storage, name: &str, bytes: Vec<u8>) -> Result<()> {
        if let Target::Direct { written, .. } = self {
            // Recorded before the upload: a failed multipart upload may still leave an object.
            written.lock().expect("written lock").push(name.to_string());
        }
        storage.put(self.location(), name, bytes)
    }

    /// Starts part `name`: a file in the staging folder for a local output, so that a part is
    /// never held whole in memory; a buffer for an object store, uploaded by
    /// [`Target::finish_part`].
    pub fn open_part(&self, name: &str) -> Result<PartWriter> {
        match self {
            Target::Staged { staging, .. } => {
                let path = staging.dir().join(name);
                let file = File::create(&path).map_err(|e| Error::storage("cannot create", path.display(), e))?;
                let file = BufWriter::with_capacity(1 << 20, file);
                Ok(PartWriter(PartSpool::File { file, path, bytes: 0, writeback_from: 0 }))
            }
            Target::Direct { .. } => Ok(PartWriter(PartSpool::Buffer { name: name.to_string(), bytes: Vec::new() })),
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

    /// Publishes: the manifest last, after every part.
    pub fn commit(self, storage: &Storage, manifest_json: Vec<u8>) -> Result<()> {
        match self {
            Target::Staged { staging, location, output, overwrite } => {
                storage.put(&location, MANIFEST_FILE, manifest_json)?;
                staging.publish(&output, overwrite)
            }
            Target::Direct { location, stale, written } => {
                let written = written.into_inner().expect("written lock");
                for name in stale.iter().filter(|n| !written.contains(n)) {
                    storage.delete(&location, name)?;
                }
                storage.put(&location, MANIFEST_FILE, manifest_json)
            }
        }
    }

    /// Undoes a failed run: removes the staging folder, or the parts uploaded so far.
    pub fn abort(self, storage: &Storage) {
        match self {
            Target::Staged { staging, .. } => drop(staging),
            Target::Direct { location, written, .. } => {
                for name in written.into_inner().expect("written lock") {
                    if let Err(e) = storage.delete(&location, &name) {
                        tracing::warn!(error = %e, "could not remove a part of the failed run");
                    }
                }
            }
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

impl Staging {
    /// Creates `.NAME.seqhouse-tmp-PID-NANOS` next to `output` (creating `output`'s parents).
    pub fn create(output: &Path) -> Result<Self> {
        let (parent, name) = split_output(output)?;
        std::fs::create_dir_all(&parent).map_err(|e| Error::storage("cannot create", parent.display(), e))?;
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = parent.join(format!(".{name}.seqhouse-tmp-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).map_err(|e| Error::storage("cannot create", dir.display(), e))?;
        Ok(Staging { dir, published: false })
    }

    /// The folder to write into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes the staged files durable, then moves the folder into place, replacing a previous
    /// output only when `overwrite` is set.
    fn publish(mut self, output: &Path, overwrite: bool) -> Result<()> {
        for entry in std::fs::read_dir(&self.dir).map_err(|e| Error::storage("cannot list", self.dir.display(), e))? {
            let path = entry.map_err(|e| Error::storage("cannot list", self.dir.display(), e))?.path();
            File::open(&path)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::storage("cannot sync", path.display(), e))?;
        }
        // The folder's entries too: synced files are durable, but their names in the folder
        // are the folder's own data, and after a crash the published folder could lack some.
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::storage("cannot sync", self.dir.display(), e))?;
        let previous = match check_output(&output.display().to_string(), &local_children(output)?, overwrite)? {
            // rename(2) replaces an empty folder, which users often create beforehand.
            OutputState::Absent => None,
            OutputState::Replaceable => {
                let aside = self.dir.with_extension("old");
                std::fs::rename(output, &aside).map_err(|e| Error::storage("cannot replace", output.display(), e))?;
                Some(aside)
            }
        };
        if let Err(e) = std::fs::rename(&self.dir, output) {
            if let Some(aside) = &previous {
                // Put the old output back rather than leave the user with none.
                let _ = std::fs::rename(aside, output);
            }
            return Err(Error::storage("cannot publish", output.display(), e));
        }
        self.published = true;
        if let Some(aside) = previous
            && let Err(e) = std::fs::remove_dir_all(&aside)
        {
            tracing::warn!(folder = %aside.display(), error = %e, "could not remove the replaced output");
        }
        sync_parent(output);
        Ok(())
    }
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
        .ok_or_else(|| Error::invalid(format!("--output {} must name a folder", output.display())))?;
    let parent = output.parent().map(Path::to_path_buf).unwrap_or_default();
    let parent = if parent.as_os_str().is_empty() { PathBuf::from(".") } else { parent };
    Ok((parent, name))
}

/// Names inside a local folder; empty if it does not exist. A file there is an error.
pub fn local_children(output: &Path) -> Result<Vec<String>> {
    let shown = output.display().to_string();
    match std::fs::metadata(output) {
        Ok(meta) if !meta.is_dir() => {
            return Err(Error::invalid(format!("--output {shown} is a file; --output must be a folder")));
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
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::S3Options;

    /// A part several times the writeback step, written in odd-sized pieces, is published with
    /// exactly the bytes written: asking for early writeback changes when they reach the disk,
    /// never what they are.
    #[test]
    fn a_large_part_is_published_whole() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        let storage = Storage::new(S3Options::default()).unwrap();
        let location = storage.locate(output.to_str().unwrap()).unwrap();
        let target = Target::begin(&storage, &location, false).unwrap();
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
}
