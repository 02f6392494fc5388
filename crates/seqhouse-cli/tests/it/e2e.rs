//! End to end through the library entry point, with exact arrays.

use arrow::array::{AsArray, Float64Array, Int8Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{Float64Type, Int8Type, Int32Type, Int64Type};

use crate::util::*;

#[test]
fn sequence_e2e_local_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events");
    // Two files: pupil 7's tie at t=20 spans them, so input order decides (file a first).
    write_parquet(
        &input.join("a.parquet"),
        vec![
            ("pupil", arc(StringArray::from(vec!["p7", "p2", "p7", "p2", "p7"]))),
            ("t", arc(Int64Array::from(vec![30, 5, 20, 1, 10]))),
            ("exercise", arc(Int32Array::from(vec![103, 201, 102, 200, 101]))),
            ("correct", arc(Int8Array::from(vec![Some(1), Some(0), None, Some(1), Some(0)]))),
            ("elapsed", arc(Float64Array::from(vec![3.5, 1.0, 2.5, 0.5, 1.5]))),
        ],
    );
    write_parquet(
        &input.join("b.parquet"),
        vec![
            ("pupil", arc(StringArray::from(vec!["p7", "p9"]))),
            ("t", arc(Int64Array::from(vec![20, 3]))),
            ("exercise", arc(Int32Array::from(vec![104, 900]))),
            ("correct", arc(Int8Array::from(vec![Some(1), Some(1)]))),
            ("elapsed", arc(Float64Array::from(vec![9.0, 4.0]))),
        ],
    );
    let output = dir.path().join("out");
    let reports = seqhouse_cli::run([
        "seqhouse",
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(&output),
        "--entity",
        "pupil",
        "--order-by",
        "t",
        "--feature",
        "exercise=-1",
        "--feature",
        "correct=-1",
        "--feature",
        "elapsed",
        "--sequence-length",
        "3",
        "--mode",
        "chunk",
        "--padding",
        "pre",
    ])
    .unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].stats.windows, 4);

    let out = read_output(&output);
    assert_eq!(out.batches.len(), 1);
    let b = &out.batches[0];
    let pupils: Vec<&str> = b.column_by_name("pupil").unwrap().as_string::<i32>().iter().map(Option::unwrap).collect();
    assert_eq!(pupils, ["p2", "p7", "p7", "p9"]);
    let ints = |name: &str| b.column_by_name(name).unwrap().as_primitive::<Int64Type>().values().to_vec();
    assert_eq!(ints("sequence_index"), [0, 0, 1, 0]);
    let lengths = b.column_by_name("sequence_length").unwrap().as_primitive::<Int32Type>().values().to_vec();
    assert_eq!(lengths, [2, 3, 1, 1]);

    let list = |name: &str| b.column_by_name(name).unwrap().as_fixed_size_list().clone();
    let exercise = list("exercise_sequence");
    let exercise = exercise.values().as_primitive::<Int32Type>().values().to_vec();
    // p7 by t: 101 (t10), 102 (t20, file a), 104 (t20, file b), 103 (t30).
    assert_eq!(exercise, [-1, 200, 201, 101, 102, 104, -1, -1, 103, -1, -1, 900]);
    let correct = list("correct_sequence");
    let correct: Vec<Option<i8>> = correct.values().as_primitive::<Int8Type>().iter().collect();
    let (y, n) = (Some(1), Some(0));
    assert_eq!(correct, [Some(-1), y, n, n, None, y, Some(-1), Some(-1), y, Some(-1), Some(-1), y]);
    let elapsed = list("elapsed_sequence");
    let elapsed = elapsed.values().as_primitive::<Float64Type>().values().to_vec();
    assert_eq!(elapsed, [0.0, 0.5, 1.0, 1.5, 2.5, 9.0, 0.0, 0.0, 3.5, 0.0, 0.0, 4.0]);
    let mask = list("is_pad_sequence");
    let mask = mask.values().as_primitive::<Int8Type>().values().to_vec();
    assert_eq!(mask, [1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0]);

    let m = &out.manifest;
    assert_eq!(m.counts.input_rows, 7);
    assert_eq!(m.counts.entities, 3);
    assert_eq!(m.counts.feature_nulls["correct"], 1);
    let files: Vec<&str> = m.input_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["a.parquet", "b.parquet"]);
}
