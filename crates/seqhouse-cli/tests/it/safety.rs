//! Never losing or corrupting data: which folders `--overwrite` may replace, the local swap and
//! the object-store commit killed at each step (through the fail points compiled into test
//! builds, never by timing), the output lock, signals, exact types, resource limits, inputs that
//! would be skipped or reused silently.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use arrow::array::{AsArray, Float64Array, Int64Array};
use arrow::datatypes::Float64Type;
use seqhouse_contract::s3::{TestS3, list_keys};
use seqhouse_contract::{Fixture, S3Fixture};

use crate::util::*;

/// A log of `users` users with `per_user` events each (columns user, t, item).
fn log(path: &Path, users: i64, per_user: i64) {
    let rows = users * per_user;
    write_parquet(
        path,
        vec![
            ("user", arc(Int64Array::from_iter_values((0..rows).map(|i| i % users)))),
            ("t", arc(Int64Array::from_iter_values(0..rows))),
            ("item", arc(Int64Array::from_iter_values((0..rows).map(|i| i * 7 % 101)))),
        ],
    );
}

fn job(input: &str, output: &str, n: &str) -> Vec<String> {
    ["sequence", "--input", input, "--output", output, "--entity", "user", "--order-by", "t", "--feature", "item=-1"]
        .into_iter()
        .chain(["-n", n, "--rows-per-part", "3", "-q"])
        .map(String::from)
        .collect()
}

fn command(args: &[String], failpoints: &str, release: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_seqhouse"));
    command.args(args).env("SEQHOUSE_FAILPOINTS", failpoints).env("SEQHOUSE_FAILPOINT_RELEASE", release);
    command
}

/// Runs the binary with `failpoints` set and waits for it.
fn run_with(args: &[String], failpoints: &str) -> std::process::Output {
    let never = PathBuf::from("/nonexistent/release");
    command(args, failpoints, &never).output().unwrap()
}

fn run_s3(args: &[String], failpoints: &str) -> std::process::Output {
    let s3 = TestS3::from_env();
    let mut command = command(args, failpoints, Path::new("/nonexistent/release"));
    with_s3_env(&mut command, &s3.endpoint);
    command.output().unwrap()
}

fn assert_ok(out: &std::process::Output) {
    assert!(out.status.success(), "seqhouse failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// What a whole output holds: exactly the parts its manifest lists, and the manifest.
fn whole_entries(out: &seqhouse_contract::Output) -> Vec<String> {
    let mut expected: Vec<String> = out.manifest.parts.iter().map(|p| p.path.clone()).collect();
    expected.push("_manifest.json".into());
    expected.sort();
    expected
}

/// Runs two copies of the binary with `args` at once (on S3 at `endpoint`, if given); each
/// either publishes or is refused by the lock, never with another error. Returns how many
/// published.
fn run_pair(args: &[String], endpoint: Option<&str>) -> usize {
    let pair: Vec<Child> = (0..2)
        .map(|_| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_seqhouse"));
            command.args(args).stderr(Stdio::piped());
            if let Some(endpoint) = endpoint {
                with_s3_env(&mut command, endpoint);
            }
            command.spawn().unwrap()
        })
        .collect();
    let mut published = 0;
    for child in pair {
        let done = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&done.stderr);
        if done.status.success() {
            published += 1;
        } else {
            assert!(stderr.contains("another seqhouse run"), "only the lock may refuse a run: {stderr}");
        }
    }
    published
}

/// A run stopped at a fail point with `pause`, until [`Paused::release`].
struct Paused {
    child: Child,
    release: PathBuf,
    stderr: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Paused {
    /// Starts the binary and returns once it has reached `point` (read from its stderr).
    fn start(args: &[String], point: &str, s3: Option<&str>) -> Paused {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        let mut command = command(args, &format!("{point}=pause"), &release);
        if let Some(endpoint) = s3 {
            with_s3_env(&mut command, endpoint);
        }
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let (send, stderr) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = send.send(line);
            }
        });
        let marker = format!("failpoint {point} paused");
        loop {
            match stderr.recv_timeout(Duration::from_secs(120)) {
                Ok(line) if line.contains(&marker) => break,
                Ok(_) => {}
                Err(e) => panic!("the run never reached {point}: {e}; status {:?}", child.try_wait()),
            }
        }
        Paused { child, release, stderr, _dir: dir }
    }

    /// Sends signal `name` and returns once the run has raised its stop flag (it says so on
    /// stderr after raising it).
    fn signal(&self, name: &str) {
        let status = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains("received: stopping") => return,
                Ok(_) => {}
                Err(e) => panic!("the run did not take the {name} signal: {e}"),
            }
        }
    }

    /// Lets the run go on; returns its exit code and the rest of its stderr.
    fn release(mut self) -> (Option<i32>, String) {
        std::fs::write(&self.release, b"").unwrap();
        let status = self.child.wait().unwrap();
        // Everything the run wrote: the reader thread ends (and the channel with it) at the
        // pipe's end, which comes with the run's exit.
        let rest: Vec<String> = self.stderr.iter().collect();
        (status.code(), rest.join("\n"))
    }
}

/// The entries of `dir`'s parent other than `keep`: what a run left beside its output.
fn beside(output: &Path, keep: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(output.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    names
}

/// The sequence length of the output a reader following the manifest trusts, after checking
/// that every part it lists is there and holds the rows it says.
fn trusted_length(output: &Path) -> usize {
    let out = read_output(output);
    let rows: u64 = out.manifest.parts.iter().map(|p| p.rows).sum();
    assert_eq!(out.batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(), rows);
    out.manifest.spec.sequence_length
}

#[test]
fn overwrite_never_replaces_a_folder_seqhouse_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 3, 4);
    let home: &[(&str, &str)] = &[(".bashrc", "alias ll"), (".gitconfig", "[user]"), (".ssh/id_ed25519", "KEY")];
    let repo: &[(&str, &str)] = &[(".git/HEAD", "ref: refs/heads/main")];
    let site: &[(&str, &str)] = &[("_posts/2026-01-01-hello.md", "hi"), ("_config.yml", "title: x")];
    for (name, files, first) in [("home", home, ".bashrc"), ("repo", repo, ".git"), ("site", site, "_config.yml")] {
        let out = dir.path().join(name);
        for (file, text) in files {
            std::fs::create_dir_all(out.join(file).parent().unwrap()).unwrap();
            std::fs::write(out.join(file), text).unwrap();
        }
        let before = folder_tree(&out);
        for overwrite in [true, false] {
            let mut args = job(s(&input), s(&out), "2");
            if overwrite {
                args.push("--overwrite".into());
            }
            let out_run = run_with(&args, "");
            let stderr = String::from_utf8_lossy(&out_run.stderr);
            assert_eq!(out_run.status.code(), Some(2), "{name}: {stderr}");
            assert!(stderr.contains(&format!("'{first}'")) && stderr.contains("did not write"), "{name}: {stderr}");
            assert!(!stderr.contains("pass --overwrite"), "{name}: no advice that leads to a refusal: {stderr}");
            assert_eq!(folder_tree(&out), before, "{name}: untouched");
        }
    }
    assert_eq!(beside(&dir.path().join("home"), &["in", "home", "repo", "site"]), Vec::<String>::new());
}

/// Every file below `dir` with its bytes.
fn folder_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// Killed (as by `kill -9`) or failing at each step of the local swap, a run leaves exactly the
/// old or the new output trusted, and the next run succeeds and leaves nothing behind.
#[test]
fn local_replace_killed_at_each_step_keeps_a_whole_output() {
    // (fail points, the output trusted after the crash: 3 old, 5 new, 0 none)
    let cases = [
        ("local.writing=abort", 3),
        ("publish.local.staged=abort", 3),
        ("publish.local.staged=error", 3),
        ("publish.local.swapped=abort", 5),
        ("publish.local.no_exchange=error,publish.local.aside=error", 3),
        // Where folders cannot be exchanged, a kill between the two renames leaves the output
        // at its aside name only: the one gap of the fallback, closed by the next run.
        ("publish.local.no_exchange=error,publish.local.aside=abort", 0),
        ("publish.local.no_exchange=error", 5),
    ];
    for (failpoints, trusted) in cases {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in/events.parquet");
        log(&input, 5, 9);
        let out = dir.path().join("out");
        assert_ok(&run_with(&job(s(&input), s(&out), "3"), ""));
        let mut replace = job(s(&input), s(&out), "5");
        replace.push("--overwrite".into());
        let crashed = run_with(&replace, failpoints);
        let expect_success = trusted == 5 && !failpoints.contains("abort");
        assert_eq!(
            crashed.status.success(),
            expect_success,
            "{failpoints}: {}",
            String::from_utf8_lossy(&crashed.stderr)
        );
        match trusted {
            0 => assert!(!out.exists(), "{failpoints}"),
            n => assert_eq!(trusted_length(&out), n, "{failpoints}"),
        }
        if failpoints.ends_with("=error") && !expect_success {
            assert_eq!(beside(&out, &["in", "out"]), Vec::<String>::new(), "{failpoints}: a failed run cleans up");
        }
        // The next run recognises what the dead one left, removes it and publishes.
        let again = run_with(&replace, "");
        assert_ok(&again);
        assert_eq!(trusted_length(&out), 5, "{failpoints}");
        assert_eq!(beside(&out, &["in", "out"]), Vec::<String>::new(), "{failpoints}: no leftovers");
        let mut entries = read_output(&out).entries;
        entries.retain(|e| e != "_manifest.json");
        assert!(entries.iter().all(|e| e.starts_with("part-")), "{failpoints}: {entries:?}");
    }
}

/// A second run on an output another run is writing fails at once, naming the holder; the
/// first run is unaffected.
#[test]
fn a_second_run_on_a_locked_output_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 5, 9);
    let out = dir.path().join("out");
    let first = Paused::start(&job(s(&input), s(&out), "4"), "local.writing", None);
    let second = run_with(&job(s(&input), s(&out), "4"), "");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another seqhouse run"), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.child.id())) && stderr.contains(s(&out)), "{stderr}");
    let (code, rest) = first.release();
    assert_eq!(code, Some(0), "{rest}");
    assert_eq!(trusted_length(&out), 4);
    assert_eq!(beside(&out, &["in", "out"]), Vec::<String>::new());
}

/// Many pairs of concurrent `--overwrite` runs: each run either publishes or is refused by the
/// lock, never with another error; the output is always whole; nothing is left behind.
#[test]
fn concurrent_overwrites_of_one_output_never_corrupt_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 20, 30);
    let out = dir.path().join("out");
    let mut args = job(s(&input), s(&out), "6");
    args.push("--overwrite".into());
    for round in 0..40 {
        assert!(run_pair(&args, None) >= 1, "round {round}: a run of each pair publishes");
        assert_eq!(trusted_length(&out), 6);
        assert_eq!(beside(&out, &["in", "out"]), Vec::<String>::new());
    }
}

/// SIGTERM (what `timeout`, Docker, Kubernetes and systemd send) and Ctrl-C stop a spilling
/// job with its staging folder present: exit 143 or 130, spill and staging removed, nothing
/// published.
#[test]
fn sigterm_and_ctrl_c_clean_up_spill_and_staging() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in/events.parquet");
        log(&input, 50, 40);
        let out = dir.path().join("out");
        let spill = dir.path().join("spill");
        std::fs::create_dir_all(&spill).unwrap();
        let mut args = job(s(&input), s(&out), "4");
        args.extend(["--memory-limit", "1MiB", "--spill-dir", s(&spill)].map(String::from));
        let run = Paused::start(&args, "local.writing", None);
        assert!(std::fs::read_dir(&spill).unwrap().count() > 0, "{signal}: the job is spilling");
        assert!(beside(&out, &["in", "spill"]).iter().any(|n| n.contains("seqhouse-tmp")), "{signal}: staging exists");
        run.signal(signal);
        let (exit, stderr) = run.release();
        assert_eq!(exit, Some(code), "{signal}: {stderr}");
        assert!(stderr.contains("cancelled"), "{signal}: {stderr}");
        assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "{signal}: spill files removed");
        assert_eq!(beside(&out, &["in", "spill"]), Vec::<String>::new(), "{signal}: nothing published or staged");
    }
}

/// The spill disk filling up: the job fails with an error naming `--spill-dir` and what to do,
/// exits non-zero, and leaves no spill files and nothing at the output. A run killed (`kill -9`,
/// no clean-up) while spilling leaves its spill folder; the next run removes it, says so, and
/// writes the same output as an unspilled run.
#[test]
fn a_full_spill_disk_and_a_killed_spilling_run_leave_no_litter() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 50, 40);
    let spill = dir.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    let spilled = |out: &Path| {
        let mut args = job(s(&input), s(out), "4");
        args.extend(["--memory-limit", "1MiB", "--spill-dir", s(&spill)].map(String::from));
        args
    };
    let out = dir.path().join("out");
    let full = run_with(&spilled(&out), "local.spill.write=full");
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device") && stderr.contains("--spill-dir"), "{stderr}");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "spill files removed: {stderr}");
    assert_eq!(beside(&out, &["in", "spill"]), Vec::<String>::new(), "nothing published or staged");

    let killed = run_with(&spilled(&out), "local.spill.write=abort");
    assert!(!killed.status.success(), "the run died");
    let left: Vec<_> = std::fs::read_dir(&spill).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "a dead run leaves its spill folder: {left:?}");
    let again = run_with(&spilled(&out).into_iter().filter(|a| a != "-q").collect::<Vec<_>>(), "");
    assert_ok(&again);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("removed the spill folder") && stderr.contains("run that died"), "{stderr}");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "nothing is left in the spill folder");
    let whole = dir.path().join("whole");
    assert_ok(&run_with(&job(s(&input), s(&whole), "4"), ""));
    assert_eq!(folder_bytes(&out), folder_bytes(&whole), "the same output as an unspilled run");
}

/// A signal that comes while a small job writes its only parts, with no later check of the
/// stop flag but the one at the commit point, still leaves nothing published.
#[test]
fn a_signal_before_the_commit_point_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 5, 9);
    let out = dir.path().join("out");
    let run = Paused::start(&job(s(&input), s(&out), "3"), "local.writing", None);
    run.signal("INT");
    let (exit, stderr) = run.release();
    assert_eq!(exit, Some(130), "{stderr}");
    assert!(stderr.contains("nothing was published"), "{stderr}");
    assert_eq!(beside(&out, &["in"]), Vec::<String>::new(), "nothing published or staged");
}

/// A signal that arrives after the commit point does not unpublish anything, and says so.
#[test]
fn a_signal_after_the_commit_reports_the_output_as_published() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 5, 9);
    let out = dir.path().join("out");
    assert_ok(&run_with(&job(s(&input), s(&out), "3"), ""));
    let mut replace = job(s(&input), s(&out), "5");
    replace.push("--overwrite".into());
    let run = Paused::start(&replace, "publish.local.swapped", None);
    run.signal("TERM");
    let (exit, stderr) = run.release();
    assert_eq!(exit, Some(0), "{stderr}");
    assert!(stderr.contains("SIGTERM came after publishing") && !stderr.contains("error"), "{stderr}");
    assert_eq!(trusted_length(&out), 5);
    assert_eq!(beside(&out, &["in", "out"]), Vec::<String>::new());
}

/// The same job typed with relative paths from two working directories, and with absolute
/// paths, gives byte-identical manifests.
#[test]
fn the_manifest_does_not_depend_on_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    log(&root.join("data/in/events.parquet"), 4, 6);
    std::fs::create_dir_all(root.join("data/jobs")).unwrap();
    let (absolute_in, absolute_out) = (root.join("data/in"), root.join("data/out"));
    let runs = [
        (root.to_path_buf(), "data/in", "data/out"),
        (root.join("data/jobs"), "../in", "../out"),
        (PathBuf::from("/"), s(&absolute_in), s(&absolute_out)),
    ];
    let mut manifests = Vec::new();
    for (cwd, input, output) in runs {
        let mut args = job(input, output, "4");
        args.push("--overwrite".into());
        let done = Command::new(env!("CARGO_BIN_EXE_seqhouse")).current_dir(&cwd).args(&args).output().unwrap();
        assert_ok(&done);
        manifests.push(std::fs::read(root.join("data/out/_manifest.json")).unwrap());
    }
    assert_eq!(manifests[0], manifests[1]);
    assert_eq!(manifests[0], manifests[2]);
    let manifest: serde_json::Value = serde_json::from_slice(&manifests[0]).unwrap();
    assert_eq!(manifest["input_location"], "../in");
}

/// An entity or order-by column never changes kind between files; a feature is widened from
/// integers to floats only when every value converts exactly.
#[test]
fn types_that_disagree_between_files_never_lose_precision() {
    let dir = tempfile::tempdir().unwrap();
    let big = 1i64 << 53;
    let write = |name: &str, user: arrow::array::ArrayRef, item: arrow::array::ArrayRef| {
        write_parquet(
            &dir.path().join(name),
            vec![("user", user), ("t", arc(Int64Array::from(vec![1, 2]))), ("item", item)],
        );
    };
    // Users 2^53 and 2^53 + 1 would become one entity as doubles.
    write("keys/a.parquet", arc(Int64Array::from(vec![big, big + 1])), arc(Int64Array::from(vec![1, 2])));
    write("keys/b.parquet", arc(Float64Array::from(vec![1.0, 2.0])), arc(Int64Array::from(vec![1, 2])));
    let out = dir.path().join("out");
    let failed = run_with(&job(s(&dir.path().join("keys")), s(&out), "2"), "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("'user'") && stderr.contains("a.parquet") && stderr.contains("b.parquet"), "{stderr}");
    assert!(stderr.contains("Int64") && stderr.contains("Float64"), "{stderr}");
    assert!(!out.exists());

    // A feature id near 1e18 would be rounded.
    write(
        "lossy/a.parquet",
        arc(Int64Array::from(vec![1, 1])),
        arc(Int64Array::from(vec![7, 1_000_000_000_000_000_001])),
    );
    write("lossy/b.parquet", arc(Int64Array::from(vec![2, 2])), arc(Float64Array::from(vec![0.5, 1.5])));
    let failed = run_with(&job(s(&dir.path().join("lossy")), s(&out), "2"), "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("'item'") && stderr.contains("a.parquet") && stderr.contains("1000000000000000001"),
        "{stderr}"
    );
    assert!(!out.exists());

    // Exact integers are widened, value for value.
    write("exact/a.parquet", arc(Int64Array::from(vec![1, 1])), arc(Int64Array::from(vec![7, big])));
    write("exact/b.parquet", arc(Int64Array::from(vec![2, 2])), arc(Float64Array::from(vec![0.5, 1.5])));
    assert_ok(&run_with(&job(s(&dir.path().join("exact")), s(&out), "2"), ""));
    let output = read_output(&out);
    let items = output.batches[0].column_by_name("item_sequence").unwrap().as_fixed_size_list().values().clone();
    let items: Vec<f64> = items.as_primitive::<Float64Type>().values().to_vec();
    assert_eq!(items, [7.0, big as f64, 0.5, 1.5]);
}

/// Options that size resources are checked against the machine before any work, promptly.
#[test]
fn resource_options_are_checked_before_the_work_starts() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    log(&input, 200, 100);
    let out = dir.path().join("out");
    let mut threads = job(s(&input), s(&out), "4");
    threads.extend(["--threads", "100000"].map(String::from));
    let failed = run_with(&threads, "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--threads 100000") && stderr.contains("at most"), "{stderr}");

    let mut long = job(s(&input), s(&out), "100000000");
    long.extend(["--memory-limit", "1GiB"].map(String::from));
    let started = std::time::Instant::now();
    let failed = run_with(&long, "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--sequence-length 100000000") && stderr.contains("--memory-limit"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60), "refused before the work, not after it");
    assert_eq!(beside(&out, &["in"]), Vec::<String>::new());
}

/// A dangling link in the input folder, and an output that is (or holds) the input, are errors
/// naming the path rather than a silently smaller or self-consuming input.
#[test]
fn inputs_are_never_skipped_or_reused_silently() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    log(&input.join("a.parquet"), 3, 3);
    std::os::unix::fs::symlink(dir.path().join("gone.parquet"), input.join("b.parquet")).unwrap();
    let out = dir.path().join("out");
    let failed = run_with(&job(s(&input), s(&out), "2"), "");
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("b.parquet") && stderr.contains("gone.parquet") && stderr.contains("link"), "{stderr}");
    assert!(!out.exists());
    std::fs::remove_file(input.join("b.parquet")).unwrap();

    assert_ok(&run_with(&job(s(&input), s(&out), "2"), ""));
    for (i, o) in [(&out, &out), (&out.join("part-00000.parquet"), &out)] {
        let mut args = job(s(i), s(o), "2");
        args.push("--overwrite".into());
        let failed = run_with(&args, "");
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert_eq!(failed.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("lies inside --output") && stderr.contains(s(&out)), "{stderr}");
        assert_eq!(trusted_length(&out), 2, "the output is untouched");
    }
}

/// Object-store publishing killed or failing at each step: before the manifest PUT the old
/// output stays trusted, after it the new one; the next run succeeds and removes every part
/// the trusted manifest does not list. A folder seqhouse did not write is never touched.
#[test]
fn s3_replace_killed_at_each_step_keeps_a_whole_output() {
    let fixture = S3Fixture::new();
    let local = tempfile::tempdir().unwrap();
    let input = local.path().join("events.parquet");
    log(&input, 5, 9);
    // (fail points, the sequence length then trusted: 3 old, 5 new)
    for (index, (failpoints, trusted)) in [
        ("local.writing=abort", 3),
        ("publish.object.before_commit=abort", 3),
        ("publish.object.before_commit=error", 3),
        ("publish.object.committed=abort", 5),
        // The manifest PUT fails; reading it back shows the old one: nothing was committed.
        ("publish.object.manifest_put=error", 3),
        // The PUT landed but its answer was lost; reading it back shows ours: committed.
        ("publish.object.manifest_answer=error", 5),
        // The PUT fails and nothing can be read back: unknown, so this run keeps its parts.
        ("publish.object.manifest_put=error,publish.object.read_back=error", 3),
    ]
    .into_iter()
    .enumerate()
    {
        let output = fixture.output_location(&format!("crash{index}"));
        assert_ok(&run_s3(&job(s(&input), &output, "3"), ""));
        let mut replace = job(s(&input), &output, "5");
        replace.push("--overwrite".into());
        let crashed = run_s3(&replace, failpoints);
        let stderr = String::from_utf8_lossy(&crashed.stderr);
        assert_eq!(crashed.status.success(), failpoints.ends_with("manifest_answer=error"), "{failpoints}: {stderr}");
        if failpoints.contains("read_back") {
            assert!(stderr.contains("cannot tell whether this run published"), "{failpoints}: {stderr}");
            let after = fixture.read_output(&output);
            assert!(after.entries.len() > whole_entries(&after).len() + 1, "{failpoints}: its parts were kept");
        }
        let after = fixture.read_output(&output);
        assert_eq!(after.manifest.spec.sequence_length, trusted, "{failpoints}");
        assert_eq!(
            after.batches.iter().map(|b| b.num_rows() as u64).sum::<u64>(),
            after.manifest.parts.iter().map(|p| p.rows).sum::<u64>(),
            "{failpoints}: the trusted manifest's parts are all there"
        );
        if failpoints.ends_with("=error") && !failpoints.contains("read_back") {
            assert_eq!(
                after.entries,
                whole_entries(&after),
                "{failpoints}: a run that committed nothing removes its parts and its lock; a committed one, the old parts"
            );
        }
        // A dead run's lock object counts as abandoned once it has gone without a heartbeat
        // for the stale age (ten minutes; test builds let a test shorten it): taken over.
        let next = run_s3_stale_after_zero(&replace);
        assert_ok(&next);
        if failpoints.contains("abort") {
            assert!(String::from_utf8_lossy(&next.stderr).contains("took over a lock"), "{failpoints}");
        }
        let out = fixture.read_output(&output);
        assert_eq!(out.manifest.spec.sequence_length, 5, "{failpoints}");
        assert_eq!(out.entries, whole_entries(&out), "{failpoints}: only the trusted output remains");
    }

    // Replacing is refused, and nothing deleted, where the prefix holds what seqhouse did not write.
    let foreign = fixture.put_bytes("foreign", "notes.txt", b"mine");
    fixture.put_bytes("foreign", "part-00000.parquet", b"also mine");
    let mut args = job(s(&input), &foreign, "3");
    args.push("--overwrite".into());
    let refused = run_s3(&args, "");
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("'notes.txt'"));
    assert_eq!(fixture.list(&foreign), ["notes.txt", "part-00000.parquet"]);
}

fn run_s3_stale_after_zero(args: &[String]) -> std::process::Output {
    let s3 = TestS3::from_env();
    // Warnings are what this run is checked for: not quiet.
    let loud: Vec<String> = args.iter().filter(|a| *a != "-q").cloned().collect();
    let mut command = command(&loud, "", Path::new("/nonexistent/release"));
    with_s3_env(&mut command, &s3.endpoint);
    command.env("SEQHOUSE_LOCK_STALE_SECONDS", "0").output().unwrap()
}

/// On S3 too, a second run on an output being written fails at once, and the first one's
/// lock object is gone once it has published.
#[test]
fn s3_a_second_run_on_a_locked_output_fails_at_once() {
    let s3 = TestS3::from_env();
    let fixture = S3Fixture::new();
    let local = tempfile::tempdir().unwrap();
    let input = local.path().join("events.parquet");
    log(&input, 5, 9);
    let output = fixture.output_location("locked");
    let first = Paused::start(&job(s(&input), &output, "4"), "local.writing", Some(&s3.endpoint));
    assert!(fixture.list(&output).contains(&"_seqhouse.lock".to_string()));
    let second = run_s3(&job(s(&input), &output, "4"), "");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another seqhouse run") && stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
    let (code, rest) = first.release();
    assert_eq!(code, Some(0), "{rest}");
    assert_eq!(fixture.read_output(&output).manifest.spec.sequence_length, 4);
    let store = TestS3::store(&s3.endpoint, &s3.bucket);
    let prefix = output.strip_prefix(&format!("s3://{}/", s3.bucket)).unwrap();
    assert!(list_keys(&store, prefix).iter().all(|k| !k.ends_with("_seqhouse.lock")), "the lock is released");
}

/// Concurrent overwrites on S3: only the lock refuses a run, and the output stays whole.
#[test]
fn s3_concurrent_overwrites_never_corrupt_the_output() {
    let s3 = TestS3::from_env();
    let fixture = S3Fixture::new();
    let local = tempfile::tempdir().unwrap();
    let input = local.path().join("events.parquet");
    log(&input, 20, 30);
    let output = fixture.output_location("concurrent");
    let mut args = job(s(&input), &output, "6");
    args.push("--overwrite".into());
    for round in 0..10 {
        assert!(run_pair(&args, Some(&s3.endpoint)) >= 1, "round {round}: a run of each pair publishes");
        let out = fixture.read_output(&output);
        assert_eq!(out.manifest.spec.sequence_length, 6);
        assert_eq!(out.entries, whole_entries(&out));
    }
}
