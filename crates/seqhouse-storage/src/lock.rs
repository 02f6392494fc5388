//! An exclusive claim on one output for the length of a run, so that two runs writing the same
//! output cannot publish a mix of their parts or delete each other's.
//!
//! - **Local folders**: `.NAME.seqhouse-lock` beside the output, held with `flock`. The kernel
//!   drops the claim when the process ends however it ends, so a lock of a dead run never blocks.
//!   The file is removed on release; after a `kill -9` it stays, empty of meaning, and is reused.
//! - **Object stores**: the object `OUTPUT/_seqhouse.lock`, created with a conditional put
//!   (`If-None-Match: *`), so exactly one of two runs gets it. The holder rewrites it every
//!   [`HEARTBEAT`] (a conditional put on its own e-tag); a lock not rewritten for [`STALE_AFTER`]
//!   was left by a run that died and is taken over, again by a conditional put, so two runs
//!   cannot both take it over.
//!
//! The lock file or object holds who took it (process id, host and start time), which the
//! error of a second run shows.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, UpdateVersion};
use seqhouse_core::{Error, Result, Setting};

use crate::storage::{Location, Storage, storage_error};

/// Name of the lock object inside an object-store output.
pub const LOCK_OBJECT: &str = "_seqhouse.lock";
/// How often the holder of an object-store lock rewrites it.
pub const HEARTBEAT: Duration = Duration::from_secs(60);
/// How long an object-store lock may go without a heartbeat before it counts as abandoned.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// [`STALE_AFTER`]; test builds let `SEQHOUSE_LOCK_STALE_SECONDS` shorten it, so that taking
/// over a dead run's lock is tested without waiting ten minutes.
fn stale_after() -> Duration {
    #[cfg(feature = "failpoints")]
    if let Some(seconds) = std::env::var("SEQHOUSE_LOCK_STALE_SECONDS").ok().and_then(|s| s.parse().ok()) {
        return Duration::from_secs(seconds);
    }
    STALE_AFTER
}

/// A held lock on one output, released on drop.
pub struct OutputLock {
    held: Held,
}

enum Held {
    /// The `flock`ed lock file, removed on release with the folders created for it (deepest
    /// first) that are still empty then: a run that fails leaves no empty parents behind.
    File { file: std::fs::File, path: PathBuf, created: Vec<PathBuf> },
    /// The lock object, its current version and the task that keeps it fresh.
    Object {
        store: Arc<dyn ObjectStore>,
        path: object_store::path::Path,
        shown: String,
        version: Arc<Mutex<UpdateVersion>>,
        heartbeat: tokio::task::JoinHandle<()>,
        runtime: tokio::runtime::Handle,
    },
}

impl OutputLock {
    /// Takes the lock on `output`, or fails at once with [`Error::OutputLocked`] naming the
    /// run that holds it.
    pub fn acquire(storage: &Storage, output: &Location) -> Result<OutputLock> {
        match &output.local {
            Some(path) => acquire_file(path, &output.shown),
            None => acquire_object(storage, output),
        }
    }

    /// Checks that this run still holds the lock (an object-store lock can be taken over when
    /// its heartbeat stalled for [`STALE_AFTER`]), so that a run never commits over another.
    pub fn verify(&self, storage: &Storage) -> Result<()> {
        let Held::Object { store, path, shown, version, .. } = &self.held else { return Ok(()) };
        let ours = version.lock().expect("lock version").e_tag.clone();
        let now = storage.block_on(store.head(path)).map_err(|e| storage_error("cannot read", shown, e))?;
        if now.e_tag != ours {
            return Err(Error::storage_message(
                "lost the lock",
                shown,
                format!(
                    "another run took it over after this run's heartbeat stalled for {}; nothing was published",
                    describe(STALE_AFTER)
                ),
            ));
        }
        Ok(())
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        match &self.held {
            Held::File { file, path, created } => {
                // Unlinked while still held: a run waiting on the old file sees it is gone and
                // opens the path again (see `acquire_file`).
                let _ = std::fs::remove_file(path);
                let _ = file;
                for folder in created {
                    // Fails, as it should, once the folder holds anything (a published output).
                    let _ = std::fs::remove_dir(folder);
                }
            }
            Held::Object { store, path, shown, version, heartbeat, runtime } => {
                heartbeat.abort();
                let version = version.lock().expect("lock version").clone();
                let (store, path) = (store.clone(), path.clone());
                // Only the lock this run holds: delete it unless someone took it over.
                let release = async move {
                    let current = store.head(&path).await?;
                    if current.e_tag == version.e_tag {
                        store.delete(&path).await?;
                    }
                    Ok::<_, object_store::Error>(())
                };
                if let Err(e) = runtime.block_on(release)
                    && !matches!(e, object_store::Error::NotFound { .. })
                {
                    tracing::warn!(lock = %shown, error = %e, "could not release the lock; the next run takes it over once it is stale");
                }
            }
        }
    }
}

/// Who is taking a lock: `pid 123 on host h, started 2026-12-01T08:00:00Z`.
fn holder() -> String {
    format!("pid {} on host {}, started {}", std::process::id(), host_name(), utc_now())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

fn unix_seconds() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let seconds = unix_seconds();
    let (days, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Days to a civil date (proleptic Gregorian), after Howard Hinnant's `civil_from_days`.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", time / 3600, time % 3600 / 60, time % 60)
}

fn describe(duration: Duration) -> String {
    format!("{} minutes", duration.as_secs() / 60)
}

fn locked(location: &str, holder: &str, stale_after: &str) -> Error {
    let holder = holder.trim();
    Error::OutputLocked {
        location: location.to_string(),
        holder: if holder.is_empty() { "holder not yet recorded".to_string() } else { holder.to_string() },
        stale_after: stale_after.to_string(),
    }
}

/// The lock file of a local output: `.NAME.seqhouse-lock` in its parent folder.
pub fn lock_file_of(output: &Path) -> Option<PathBuf> {
    let name = output.file_name()?.to_string_lossy();
    Some(output.with_file_name(format!(".{name}.seqhouse-lock")))
}

/// Takes `file`'s exclusive `flock` without waiting: `Ok(false)` when another open file holds
/// it. The kernel releases it when the holder closes the file or its process ends, however it
/// ends, so a lock that can be taken tells a holder that died.
#[cfg(unix)]
#[allow(unsafe_code)] // flock(2)
pub fn try_lock_exclusive(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid descriptor for the life of `file`; flock only changes its lock.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    if e.kind() == std::io::ErrorKind::WouldBlock { Ok(false) } else { Err(e) }
}

/// Takes `file`'s exclusive lock without waiting: unsupported on this system, so no holder is
/// ever taken for dead.
#[cfg(not(unix))]
pub fn try_lock_exclusive(_file: &std::fs::File) -> std::io::Result<bool> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(unix)]
fn acquire_file(output: &Path, shown: &str) -> Result<OutputLock> {
    use std::io::{Read, Seek, Write};
    use std::os::unix::fs::MetadataExt;

    let path = lock_file_of(output)
        .ok_or_else(|| Error::setting(Setting::Output, format!("{} must name a folder", output.display())))?;
    let mut created = Vec::new();
    if let Some(parent) = path.parent() {
        let mut missing = parent;
        while !missing.exists() {
            created.push(missing.to_path_buf());
            match missing.parent() {
                Some(up) => missing = up,
                None => break,
            }
        }
        std::fs::create_dir_all(parent).map_err(|e| Error::storage("cannot create", parent.display(), e))?;
    }
    let cannot = |e: std::io::Error| Error::storage("cannot lock", path.display(), e);
    loop {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(cannot)?;
        if !try_lock_exclusive(&file).map_err(cannot)? {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Err(locked(shown, &text, "its process ends (a local lock dies with its run)"));
        }
        // The previous holder unlinks the file on release: if it did so after we opened it,
        // we hold a lock on a file nobody else will see; open the path again.
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(held), Ok(now)) => held.ino() == now.ino() && held.dev() == now.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        file.set_len(0).map_err(cannot)?;
        file.rewind().map_err(cannot)?;
        file.write_all(holder().as_bytes()).map_err(cannot)?;
        return Ok(OutputLock { held: Held::File { file, path, created } });
    }
}

#[cfg(not(unix))]
fn acquire_file(output: &Path, _shown: &str) -> Result<OutputLock> {
    Err(Error::setting(
        Setting::Output,
        format!("{}: local outputs are supported on Linux and other Unix systems only", output.display()),
    ))
}

fn acquire_object(storage: &Storage, output: &Location) -> Result<OutputLock> {
    let lock = output.child(LOCK_OBJECT);
    let store = lock.store().clone();
    let path = lock.path().clone();
    // Unique to this run, so that a create whose answer was lost is recognised as ours.
    let body = format!("{} (run {})", holder(), crate::publish::run_id());
    let put = |mode: PutMode| {
        let options = PutOptions { mode, ..Default::default() };
        storage.block_on(store.put_opts(&path, body.clone().into(), options))
    };
    let cannot = |e: object_store::Error| storage_error("cannot write", &lock.shown, e);
    let held = |e_tag: Option<String>, version: Option<String>| {
        let version = Arc::new(Mutex::new(UpdateVersion { e_tag, version }));
        let heartbeat = storage.handle().spawn(heartbeat(store.clone(), path.clone(), body.clone(), version.clone()));
        let runtime = storage.handle();
        OutputLock {
            held: Held::Object {
                store: store.clone(),
                path: path.clone(),
                shown: lock.shown.clone(),
                version,
                heartbeat,
                runtime,
            },
        }
    };
    // Conditional PUTs are not retried by the store's client (it cannot tell whether a dropped
    // request landed), so transient failures are retried here, up to the S3 retry budget.
    let mut retries = 0;
    let mut transient = |e: object_store::Error| -> Result<()> {
        if retries >= storage.max_retries() || !matches!(e, object_store::Error::Generic { .. }) {
            return Err(cannot(e));
        }
        retries += 1;
        std::thread::sleep(Duration::from_millis(100 << retries.min(6)));
        Ok(())
    };
    loop {
        let taken = match put(PutMode::Create) {
            Ok(result) => result,
            Err(object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }) => {
                let current = storage.block_on(async {
                    let got = store.get(&path).await?;
                    let meta = got.meta.clone();
                    Ok::<_, object_store::Error>((meta, got.bytes().await?))
                });
                let (meta, text) = match current {
                    Ok(found) => found,
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => {
                        transient(e)?;
                        continue;
                    }
                };
                let holder = String::from_utf8_lossy(&text).into_owned();
                if holder == body {
                    // An earlier attempt of ours landed, though its answer was lost.
                    return Ok(held(meta.e_tag, meta.version));
                }
                let age = unix_seconds() - meta.last_modified.timestamp();
                if age < stale_after().as_secs() as i64 {
                    return Err(locked(&output.shown, &holder, &describe(stale_after())));
                }
                let previous = UpdateVersion { e_tag: meta.e_tag.clone(), version: meta.version.clone() };
                match put(PutMode::Update(previous)) {
                    Ok(result) => {
                        tracing::warn!(lock = %lock.shown, previous = %holder.trim(), age_seconds = age, "took over a lock left by a run that stopped without releasing it");
                        result
                    }
                    // Another run took it over first, or it was released: look again.
                    Err(object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }) => continue,
                    Err(e) => {
                        transient(e)?;
                        continue;
                    }
                }
            }
            Err(e) => {
                transient(e)?;
                continue;
            }
        };
        return Ok(held(taken.e_tag, taken.version));
    }
}

/// Keeps an object-store lock fresh: rewrites it every [`HEARTBEAT`], only over its own version.
async fn heartbeat(
    store: Arc<dyn ObjectStore>,
    path: object_store::path::Path,
    body: String,
    version: Arc<Mutex<UpdateVersion>>,
) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let current = version.lock().expect("lock version").clone();
        let options = PutOptions { mode: PutMode::Update(current), ..Default::default() };
        match store.put_opts(&path, body.clone().into(), options).await {
            Ok(result) => {
                *version.lock().expect("lock version") = UpdateVersion { e_tag: result.e_tag, version: result.version }
            }
            Err(e) => {
                // Lost (taken over) or unreachable: the commit's `verify` decides.
                tracing::warn!(lock = %path, error = %e, "could not refresh the output lock");
                if matches!(e, object_store::Error::Precondition { .. }) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_now_is_an_iso_timestamp() {
        let text = utc_now();
        assert_eq!(text.len(), 20, "{text}");
        assert!(text.starts_with("20") && text.ends_with('Z') && text.as_bytes()[10] == b'T', "{text}");
    }

    #[test]
    fn a_second_local_lock_fails_at_once_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path().join("out");
        let first = acquire_file(&output, "out").unwrap();
        match acquire_file(&output, "out") {
            Err(Error::OutputLocked { location, holder, .. }) => {
                assert_eq!(location, "out");
                assert!(holder.contains(&format!("pid {}", std::process::id())), "{holder}");
                assert!(holder.contains("started 20"), "{holder}");
            }
            other => panic!("expected OutputLocked, got {:?}", other.map(|_| ())),
        }
        drop(first);
        assert!(!lock_file_of(&output).unwrap().exists(), "the lock file is removed on release");
        let _again = acquire_file(&output, "out").unwrap();
    }

    #[test]
    fn folders_created_for_a_lock_are_removed_unless_something_was_published_there() {
        let dir = tempfile::tempdir().unwrap();
        let failed = dir.path().join("a/b/out");
        drop(acquire_file(&failed, "a/b/out").unwrap());
        assert!(!dir.path().join("a").exists(), "a run that published nothing leaves no folders");
        let published = dir.path().join("c/d/out");
        let lock = acquire_file(&published, "c/d/out").unwrap();
        std::fs::create_dir(&published).unwrap();
        drop(lock);
        assert!(published.is_dir(), "an output published there keeps its folders");
    }
}
