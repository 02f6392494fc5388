//! The binary on the real logs in testdata/, checked against values read independently.

use std::collections::BTreeMap;

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int64Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use seqhouse_contract::reference::{self, Row, Value};

use crate::util::*;

/// ASSISTments 2015 read directly: per user, (log_order, skill_id, correct) sorted by log_order.
pub(crate) fn assistments_by_user() -> BTreeMap<i64, Vec<(i64, i64, i64)>> {
    let file = std::fs::File::open(shared_data().join("assist2015/events.parquet")).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
    let mut users: BTreeMap<i64, Vec<(i64, i64, i64)>> = BTreeMap::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        let col = |name: &str| {
            arrow::compute::cast(batch.column_by_name(name).unwrap(), &arrow::datatypes::DataType::Int64).unwrap()
        };
        let (user, order, skill, correct) = (col("user_id"), col("log_order"), col("skill_id"), col("correct"));
        for i in 0..batch.num_rows() {
            let v = |a: &arrow::array::ArrayRef| a.as_primitive::<Int64Type>().value(i);
            users.entry(v(&user)).or_default().push((v(&order), v(&skill), v(&correct)));
        }
    }
    for events in users.values_mut() {
        events.sort();
    }
    users
}

fn int(v: &Option<Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

#[test]
fn assistments_chunk_200_min_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kt");
    let input = shared_data().join("assist2015/events.parquet");
    seqhouse_ok(&[
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--entity",
        "user_id",
        "--order-by",
        "log_order",
        "--feature",
        "skill_id=-1",
        "--feature",
        "correct=-1",
        "--feature",
        "log_order=-1",
        "-n",
        "200",
        "--min-length",
        "3",
        "-q",
    ]);
    let output = read_output(&out);
    let rows: Vec<Row> = reference::rows_of(&output.manifest.spec, &output.batches);
    let users = assistments_by_user();
    assert_eq!(output.manifest.counts.input_rows, 682_797);
    assert_eq!(output.manifest.counts.entities, 19_093);
    assert_eq!(users.len(), 19_093);

    // The expected windows, cut by hand from the independently read log.
    let mut expected = Vec::new();
    for (&user, events) in &users {
        let mut index = 0;
        for chunk in events.chunks(200) {
            if chunk.len() >= 3 {
                expected.push((user, index, chunk.to_vec()));
                index += 1;
            }
        }
    }
    assert_eq!(rows.len(), expected.len());
    for (row, (user, index, events)) in rows.iter().zip(&expected) {
        assert_eq!(row.entity, [Value::Int(*user)]);
        assert_eq!(row.sequence_index, *index);
        assert_eq!(row.sequence_length as usize, events.len());
        for (k, &(order, skill, correct)) in events.iter().enumerate() {
            assert_eq!(int(&row.features[0][k]), skill);
            assert_eq!(int(&row.features[1][k]), correct);
            assert_eq!(int(&row.features[2][k]), order, "events in log order");
        }
        for k in events.len()..200 {
            assert_eq!(row.mask[k], 1);
            assert!(row.features.iter().all(|f| int(&f[k]) == -1), "pads are -1");
        }
        assert!(row.mask[..events.len()].iter().all(|&m| m == 0));
    }
    // Every event appears exactly once, except those of windows dropped for min length.
    let written: u64 = rows.iter().map(|r| r.sequence_length as u64).sum();
    assert!(output.manifest.counts.windows_below_min_length > 0, "ASSISTments has short tails");
    let all: u64 = users.values().map(|e| e.len() as u64).sum();
    let short: u64 = users.values().map(|e| e.len() as u64 % 200).filter(|&r| r > 0 && r < 3).sum();
    assert_eq!(written, all - short);
}

/// MovieLens ratings (CSV) parsed by hand: (userId, movieId, rating, timestamp) in file order.
pub(crate) fn movielens() -> Vec<(i64, i64, f64, i64)> {
    let text = std::fs::read_to_string(shared_data().join("movielens-latest-small/ratings.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[2].parse().unwrap(), f[3].parse().unwrap())
        })
        .collect()
}

#[test]
fn movielens_chunk_every_event_once_with_stable_ties() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ml");
    let input = shared_data().join("movielens-latest-small/ratings.csv");
    seqhouse_ok(&[
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(&out),
        "--entity",
        "userId",
        "--order-by",
        "timestamp",
        "--feature",
        "movieId=0",
        "--feature",
        "rating=0.0",
        "--feature",
        "timestamp=-1",
        "-n",
        "50",
        "-q",
    ]);
    let output = read_output(&out);
    let rows = reference::rows_of(&output.manifest.spec, &output.batches);
    let ratings = movielens();
    assert_eq!(output.manifest.counts.input_rows, ratings.len() as u64);

    // Expected: per user, a stable sort by timestamp of the file's rows.
    let mut by_user: BTreeMap<i64, Vec<(i64, f64, i64)>> = BTreeMap::new();
    for &(user, movie, rating, ts) in &ratings {
        by_user.entry(user).or_default().push((movie, rating, ts));
    }
    let mut ties_seen = 0;
    let mut at = 0;
    for (user, mut events) in by_user {
        events.sort_by_key(|e| e.2); // stable: same-second ratings keep file order
        ties_seen += events.windows(2).filter(|w| w[0].2 == w[1].2).count();
        for (index, chunk) in events.chunks(50).enumerate() {
            let row = &rows[at];
            at += 1;
            assert_eq!((row.entity.clone(), row.sequence_index), (vec![Value::Int(user)], index as i64));
            for (k, &(movie, rating, ts)) in chunk.iter().enumerate() {
                assert_eq!(int(&row.features[0][k]), movie, "user {user} window {index} position {k}");
                assert_eq!(row.features[1][k], Some(Value::Float(rating)));
                assert_eq!(int(&row.features[2][k]), ts);
            }
            for k in chunk.len()..50 {
                assert_eq!((row.mask[k], int(&row.features[0][k])), (1, 0));
                assert_eq!(row.features[1][k], Some(Value::Float(0.0)));
            }
        }
    }
    assert_eq!(at, rows.len(), "no extra windows");
    assert!(ties_seen > 15_000, "the data set has its same-second ties ({ties_seen})");
    let events: u64 = rows.iter().map(|r| r.sequence_length as u64).sum();
    assert_eq!(events, ratings.len() as u64, "every event appears exactly once in chunk mode");
}

#[test]
fn movielens_last_and_prefix_windows() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("movielens-latest-small/ratings.csv");
    let ratings = movielens();
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &ratings {
        *counts.entry(r.0).or_default() += 1;
    }
    for (mode, windows) in [("last", counts.len()), ("prefix", ratings.len())] {
        let out = dir.path().join(mode);
        seqhouse_ok(&[
            "sequence",
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--entity",
            "userId",
            "--order-by",
            "timestamp",
            "--feature",
            "movieId=0",
            "-n",
            "20",
            "--mode",
            mode,
            "--padding",
            "pre",
            "-q",
        ]);
        let output = read_output(&out);
        assert_eq!(output.manifest.counts.windows, windows as u64, "{mode}");
        let rows = reference::rows_of(&output.manifest.spec, &output.batches);
        for row in &rows {
            let real = row.sequence_length as usize;
            assert!(row.mask[..20 - real].iter().all(|&m| m == 1) && row.mask[20 - real..].iter().all(|&m| m == 0));
            // last: the user's most recent min(20, len) events; prefix: window k ends at event k.
            let expected = if mode == "last" { counts[&int_entity(row)] } else { row.sequence_index as usize + 1 };
            assert_eq!(real, expected.min(20), "{mode}");
        }
    }
}

fn int_entity(row: &Row) -> i64 {
    match row.entity[0] {
        Value::Int(i) => i,
        ref other => panic!("{other:?}"),
    }
}
