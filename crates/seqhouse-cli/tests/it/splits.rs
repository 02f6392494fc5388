//! Splits (`--split`, `--split-at`, `--split-last`, `--folds`, `--target-mask`) on the real logs,
//! checked against the definitions computed here from the raw files; bad split options; and
//! what a failed split run leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use seqhouse_contract::reference::{self, Row, Value};

use crate::real_data::{assistments_by_user, movielens};
use crate::util::*;

/// The README's entity hash, written from its text: bucket and fold bits of one integer key.
fn entity_hash(seed: i64, user: i64) -> (u64, u64) {
    use sha2::Digest;
    let text = user.to_string();
    let digest = sha2::Sha256::digest(format!("v1|{seed}|{}:{text}", text.len()).as_bytes());
    let word = |at: usize| u32::from_be_bytes(digest[at..at + 4].try_into().unwrap()) as u64;
    (word(0), word(4))
}

fn user_of(row: &Row) -> i64 {
    match row.entity[..] {
        [Value::Int(user)] => user,
        ref other => panic!("entity {other:?}"),
    }
}

fn int(v: &Option<Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

/// Each split's output under `root`, read back: its manifest and rows.
fn split_outputs(root: &Path, names: &[&str], n: usize) -> Vec<(seqhouse_contract::Output, Vec<Row>)> {
    names
        .iter()
        .map(|name| {
            let output = read_output(&root.join(format!("{name}_sequenced_{n}")));
            let rows = reference::rows_of(&output.manifest.spec, &output.batches);
            (output, rows)
        })
        .collect()
}

fn assistments_split(out: &Path, seed: &str) {
    let input = shared_data().join("assist2015/events.parquet");
    seqhouse_ok(&[
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(out),
        "--entity",
        "user_id",
        "--order-by",
        "log_order",
        "--feature",
        "skill_id=-1",
        "--feature",
        "correct=-1",
        "-n",
        "100",
        "--split",
        "train=0.8,test=0.2",
        "--split-seed",
        seed,
        "--folds",
        "5",
        "--target-mask",
        "-q",
    ]);
}

#[test]
fn assistments_entity_split_with_five_folds() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kt");
    assistments_split(&out, "7");
    let users = assistments_by_user();
    let outputs = split_outputs(&out, &["train", "test"], 100);

    // Every user in exactly one split, the one the README's hash names; folds from the same hash.
    let threshold = (8u64 << 32) / 10; // floor(0.8 · 2^32), exactly
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut folds = [0u64; 5];
    for (split, (output, rows)) in outputs.iter().enumerate() {
        let columns: Vec<&str> = output.manifest.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(columns.contains(&"fold"), split == 0, "fold is a column of the first split only");
        assert!(columns.contains(&"target_mask"));
        let mut events_of_split = 0u64;
        for row in rows {
            let user = user_of(row);
            let (bucket, bits) = entity_hash(7, user);
            assert_eq!(usize::from(bucket >= threshold), split, "user {user}");
            if let Some(previous) = seen.insert(user, split) {
                assert_eq!(previous, split, "user {user} in two splits");
            }
            if split == 0 {
                let fold = row.fold.expect("train windows have a fold");
                assert_eq!(fold as u64, bits % 5, "user {user}");
                if row.sequence_index == 0 {
                    folds[fold as usize] += 1;
                }
            }
            // Chunk windows: every real event is a target, scored once.
            let marks = row.target_mask.as_ref().unwrap();
            let real = row.sequence_length as usize;
            assert!(marks[..real].iter().all(|&m| m == 1) && marks[real..].iter().all(|&m| m == 0));
            events_of_split += real as u64;
        }
        let counts = &output.manifest.counts;
        let split_counts = &counts.splits[split];
        assert_eq!(split_counts.target_events, events_of_split);
        assert_eq!(split_counts.scored_events, events_of_split);
        assert_eq!(counts.windows, rows.len() as u64);
        assert_eq!(split_counts.leaks, Default::default());
        assert_eq!(output.manifest.split.as_ref().unwrap().name, ["train", "test"][split]);
    }
    // Disjoint and covering.
    assert_eq!(seen.keys().copied().collect::<BTreeSet<_>>(), users.keys().copied().collect::<BTreeSet<_>>());
    let events: u64 = users.values().map(|e| e.len() as u64).sum();
    let in_splits: u64 = outputs
        .iter()
        .map(|(o, _)| o.manifest.counts.splits.iter().map(|s| s.target_events).sum::<u64>())
        .next()
        .unwrap();
    assert_eq!(in_splits, events);
    // Shares within 5 standard errors of their fractions: train 0.8, folds 0.2 of train each.
    let total = users.len() as f64;
    let train = seen.values().filter(|&&s| s == 0).count() as f64;
    assert!((train / total - 0.8).abs() < 5.0 * (0.8f64 * 0.2 / total).sqrt(), "train share {}", train / total);
    for fold in folds {
        let share = fold as f64 / train;
        assert!((share - 0.2).abs() < 5.0 * (0.2f64 * 0.8 / train).sqrt(), "fold share {share}");
    }
    // One run: the manifests name the same run.
    let runs: BTreeSet<&str> = outputs.iter().map(|(o, _)| o.manifest.split.as_ref().unwrap().run.as_str()).collect();
    assert_eq!(runs.len(), 1);

    // Another seed moves about 2 · 0.8 · 0.2 = 32% of the users.
    let other = dir.path().join("kt8");
    assistments_split(&other, "8");
    let mut moved = 0;
    for (split, (_, rows)) in split_outputs(&other, &["train", "test"], 100).iter().enumerate() {
        let users: BTreeSet<i64> = rows.iter().map(user_of).collect();
        moved += users.iter().filter(|u| seen[u] != split).count();
    }
    let moved = moved as f64 / total;
    assert!((0.25..0.40).contains(&moved), "seed 8 moved {moved} of the users");
}

/// MovieLens per user in time order (ties in file order): (movieId, timestamp).
fn movielens_by_user() -> BTreeMap<i64, Vec<(i64, i64)>> {
    let mut by_user: BTreeMap<i64, Vec<(i64, i64)>> = BTreeMap::new();
    for (user, movie, _, ts) in movielens() {
        by_user.entry(user).or_default().push((movie, ts));
    }
    for events in by_user.values_mut() {
        events.sort_by_key(|e| e.1);
    }
    by_user
}

fn movielens_job(out: &Path, mode: &str, split: &[&str]) {
    let input = shared_data().join("movielens-latest-small/ratings.csv");
    let mut args = vec![
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(out),
        "--entity",
        "userId",
        "--order-by",
        "timestamp",
        "--feature",
        "movieId=0",
        "--feature",
        "timestamp=-1",
        "-n",
        "20",
        "--mode",
        mode,
        "--target-mask",
        "-q",
    ];
    args.extend_from_slice(split);
    seqhouse_ok(&args);
}

#[test]
fn movielens_leave_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ml");
    movielens_job(&out, "last", &["--split-last", "validation=1,test=1"]);
    let by_user = movielens_by_user();
    let outputs = split_outputs(&out, &["train", "validation", "test"], 20);
    for (split, (output, rows)) in outputs.iter().enumerate() {
        assert_eq!(rows.len(), by_user.len(), "one last window per user and split");
        for row in rows {
            let events = &by_user[&user_of(row)];
            // The window ends at the split's held-out event: the last one for test, the one
            // before for validation, and train ends before both.
            let end = events.len() - (2 - split);
            let real = row.sequence_length as usize;
            let start = end.saturating_sub(20);
            assert_eq!(real, end - start);
            for (k, &(movie, ts)) in events[start..end].iter().enumerate() {
                assert_eq!((int(&row.features[0][k]), int(&row.features[1][k])), (movie, ts));
            }
            let marks = row.target_mask.as_ref().unwrap();
            match split {
                // train's targets are all of its events; the last window scores them all.
                0 => assert!(marks[..real].iter().all(|&m| m == 1)),
                // a held-out split scores its one event, the window's last; the rest is context.
                _ => assert_eq!(marks[..real].iter().map(|&m| m as usize).sum::<usize>(), 1),
            }
            if split > 0 {
                assert_eq!(marks[real - 1], 1);
            }
        }
        let counts = &output.manifest.counts.splits;
        assert_eq!(counts[0].entities_too_short_to_hold_out, Some(0), "every MovieLens user has 20 ratings");
        assert!(counts.iter().all(|c| c.leaks == Default::default()));
    }
}

#[test]
fn movielens_global_temporal_split_scores_every_event_once() {
    let (first, second) = (1_500_000_000i64, 1_520_000_000i64);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ml");
    let cutoffs = format!("validation={first},test={second}");
    movielens_job(&out, "sliding", &["--stride", "1", "--split-at", &cutoffs]);
    let outputs = split_outputs(&out, &["train", "validation", "test"], 20);
    let range = [(i64::MIN, first), (first, second), (second, i64::MAX)];
    // Each event scored, by (user, movie, timestamp); MovieLens has no repeated rating.
    let mut scored: BTreeMap<(i64, i64, i64), usize> = BTreeMap::new();
    for (split, (output, rows)) in outputs.iter().enumerate() {
        for row in rows {
            let real = row.sequence_length as usize;
            let marks = row.target_mask.as_ref().unwrap();
            for (k, &mark) in marks.iter().enumerate().take(real) {
                let (movie, ts) = (int(&row.features[0][k]), int(&row.features[1][k]));
                // No window holds an event after its split's range: no future in any context.
                assert!(ts < range[split].1, "split {split} window holds {ts}");
                if mark == 1 {
                    assert!(range[split].0 <= ts, "split {split} scores {ts}, before its range");
                    *scored.entry((user_of(row), movie, ts)).or_default() += 1;
                }
            }
        }
        assert!(output.manifest.counts.splits.iter().all(|c| c.leaks == Default::default()));
    }
    let ratings = movielens();
    assert_eq!(scored.len(), ratings.len(), "every event scored");
    assert!(scored.values().all(|&times| times == 1), "no event scored twice");
    let late = ratings.iter().filter(|r| r.3 >= first).count() as u64;
    let counts = &outputs[0].0.manifest.counts.splits;
    assert_eq!(counts[1].target_events + counts[2].target_events, late);
}

fn bad_split(extra: &[&str]) -> (i32, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.parquet");
    write_parquet(
        &input,
        vec![
            ("user", arc(arrow::array::Int64Array::from(vec![1, 1, 2, 2, 3]))),
            ("t", arc(arrow::array::Int64Array::from(vec![1, 2, 1, 2, 3]))),
            ("item", arc(arrow::array::Int64Array::from(vec![5, 6, 7, 8, 9]))),
        ],
    );
    let out = dir.path().join("out");
    let mut args = vec!["sequence", "--input", s(&input), "--output", s(&out), "--entity", "user", "--order-by", "t"];
    args.extend(["--feature", "item", "-n", "2", "-q"]);
    args.extend_from_slice(extra);
    let (code, stderr) = seqhouse_err(&args);
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(), "{extra:?} left {out:?}");
    (code, stderr, dir)
}

#[test]
fn bad_split_options_are_clear_errors_and_publish_nothing() {
    for (extra, expected) in [
        (&["--split", "train=0.8,test=0.1"][..], vec!["--split", "add up to 0.9, not 1"]),
        (&["--split", "train=0.5,train=0.5"], vec!["--split", "'train' is named twice"]),
        (&["--split", "train=0.5,te/st=0.5"], vec!["--split", "'te/st' must be letters"]),
        (&["--split", "train=1.5,test=-0.5"], vec!["--split", "fraction '1.5'"]),
        (&["--split-last", "train=1"], vec!["--split-last", "'train' gets the events"]),
        (&["--split-at", "validation=soon"], vec!["--split-at", "soon", "'t'"]),
        (&["--split-at", "validation=3,test=2"], vec!["--split-at", "not later than", "increasing order"]),
        (&["--folds", "5"], vec!["--folds", "--split"]),
        (&["--split-seed", "5"], vec!["--split-seed", "--split"]),
        (&["--split", "train=0.5,test=0.5", "--folds", "1"], vec!["--folds", "between 2 and 100"]),
        (&["--split", "train=0.5,test=0.5", "--split-last", "test=1"], vec!["--split", "--split-last", "one of them"]),
        (&["--split", "train=0.5,test=0.5", "--subsets", "a,b"], vec!["--split", "--subsets"]),
    ] {
        let (code, stderr, _dir) = bad_split(extra);
        assert_ne!(code, 0);
        for part in expected {
            assert!(stderr.contains(part), "{extra:?}: expected '{part}' in: {stderr}");
        }
    }
}

#[test]
fn a_failed_split_run_leaves_every_old_split_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.parquet");
    let users = 50i64;
    write_parquet(
        &input,
        vec![
            ("user", arc(arrow::array::Int64Array::from_iter_values((0..500).map(|i| i % users)))),
            ("t", arc(arrow::array::Int64Array::from_iter_values(0..500))),
            ("item", arc(arrow::array::Int64Array::from_iter_values((0..500).map(|i| i * 7 % 101)))),
        ],
    );
    let out = dir.path().join("out");
    let job = |seed: &str| -> Vec<String> {
        ["sequence", "--input", s(&input), "--output", s(&out), "--entity", "user", "--order-by", "t"]
            .into_iter()
            .chain(["--feature", "item", "-n", "3", "--split", "train=0.5,test=0.5", "--split-seed", seed, "-q"])
            .map(String::from)
            .collect()
    };
    let run = |args: &[String], failpoints: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"))
            .args(args)
            .env("SEQHOUSE_FAILPOINTS", failpoints)
            .output()
            .unwrap()
    };
    assert!(run(&job("1"), "").status.success());
    let folders = ["train_sequenced_3", "test_sequenced_3"];
    let before: Vec<_> = folders.iter().map(|f| folder_bytes(&out.join(f))).collect();
    let mut again = job("2");
    again.push("--overwrite".into());
    // A failure while writing (after the input was read and sequenced) and a stop before the
    // first commit both leave the old splits byte for byte, and nothing else.
    for failpoints in ["local.writing=error", "publish.local.staged=error"] {
        let failed = run(&again, failpoints);
        assert!(!failed.status.success(), "{failpoints}");
        let after: Vec<_> = folders.iter().map(|f| folder_bytes(&out.join(f))).collect();
        assert!(after == before, "{failpoints} changed an old split");
        let entries: BTreeSet<String> =
            std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert_eq!(entries, folders.iter().map(|f| f.to_string()).collect(), "{failpoints} left litter");
    }
    // Replaced whole: both splits are the new run's.
    assert!(run(&again, "").status.success());
    let runs: BTreeSet<String> =
        folders.iter().map(|f| read_output(&out.join(f)).manifest.split.unwrap().run).collect();
    assert_eq!(runs.len(), 1);
    assert!(folders.iter().zip(&before).all(|(f, old)| folder_bytes(&out.join(f)) != *old));
}
