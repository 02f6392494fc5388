//! Named points inside publishing where a test makes the run fail, die or wait, so that every
//! step of the commit protocols is reached deterministically rather than by timing a kill.
//!
//! Compiled in only with the `failpoints` feature, which only test builds enable (the CLI's and
//! the engines' dev-dependencies); elsewhere [`hit`] is an empty inline function. A test names the
//! points in the environment of the process it starts:
//!
//! `SEQHOUSE_FAILPOINTS="publish.local.staged=abort,publish.object.committed=pause"`
//!
//! - `error`: the step fails with a storage error (the run's own clean-up then runs);
//! - `abort`: the process dies on the spot, as under `kill -9` (no clean-up at all);
//! - `pause`: prints `seqhouse: failpoint NAME paused` to stderr, then waits until the file named
//!   by `SEQHOUSE_FAILPOINT_RELEASE` exists (so a test can send a signal, or start a second run,
//!   at exactly that step), then goes on;
//! - `full` (at points reached through [`hit_io`]): the write fails as on a full disk (ENOSPC).

use seqhouse_core::Result;

/// Reached by a run at the point `name`; see the module documentation.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) -> Result<()> {
    match action(name).as_deref() {
        None => Ok(()),
        Some("error") => Err(seqhouse_core::Error::storage_message("cannot go on at", name, "failpoint")),
        Some("abort") => std::process::abort(),
        Some("pause") => {
            eprintln!("seqhouse: failpoint {name} paused");
            let release = std::env::var_os("SEQHOUSE_FAILPOINT_RELEASE").expect("SEQHOUSE_FAILPOINT_RELEASE is set");
            while !std::path::Path::new(&release).exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Ok(())
        }
        Some(other) => panic!("unknown failpoint action '{other}' for {name}"),
    }
}

/// The action `SEQHOUSE_FAILPOINTS` names for the point `name`, if any.
#[cfg(feature = "failpoints")]
fn action(name: &str) -> Option<String> {
    let points = std::env::var("SEQHOUSE_FAILPOINTS").ok()?;
    points.split(',').find_map(|point| Some(point.trim().strip_prefix(name)?.strip_prefix('=')?.to_string()))
}

/// Reached by a run at the point `name` (fail points are compiled out of this build).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) -> Result<()> {
    Ok(())
}

/// [`hit`] at a point inside file I/O, whose failures are I/O errors: `full` fails as a full
/// disk does, and the other actions as at [`hit`].
#[cfg(feature = "failpoints")]
pub fn hit_io(name: &str) -> std::io::Result<()> {
    if action(name).as_deref() == Some("full") {
        // ENOSPC, as the kernel reports a full disk.
        return Err(std::io::Error::from_raw_os_error(28));
    }
    hit(name).map_err(std::io::Error::other)
}

/// [`hit_io`] (fail points are compiled out of this build).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit_io(_name: &str) -> std::io::Result<()> {
    Ok(())
}
