//! Every kind of bad input: a one-line error naming the problem, a non-zero exit, nothing written.

use std::path::Path;

use arrow::array::{BinaryArray, Int64Array};

use crate::util::*;

/// A small valid log with columns user, t, item.
fn valid_log(path: &Path) {
    write_parquet(
        path,
        vec![
            ("user", arc(Int64Array::from(vec![1, 1, 2]))),
            ("t", arc(Int64Array::from(vec![1, 2, 3]))),
            ("item", arc(Int64Array::from(vec![10, 11, 12]))),
        ],
    );
}

/// The smallest valid job on `valid_log`'s columns.
fn minimal_job<'a>(input: &'a Path, output: &'a Path, n: &'a str) -> Vec<&'a str> {
    vec![
        "sequence",
        "--input",
        s(input),
        "--output",
        s(output),
        "--entity",
        "user",
        "--order-by",
        "t",
        "--feature",
        "item",
        "-n",
        n,
    ]
}

/// Runs with the usual key/feature flags plus `extra`; asserts failure, the message fragments,
/// the exit code, that the error is one line, and that nothing appeared at (or beside) the output.
fn fails(input: &Path, output: &Path, extra: &[&str], code: i32, fragments: &[&str]) {
    let parent = output.parent().unwrap();
    let before: Vec<_> =
        std::fs::read_dir(parent).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    let mut args = vec!["sequence", "--input", s(input), "--output", s(output)];
    let has = |flag: &str| extra.iter().any(|a| a.starts_with(flag));
    if !has("--entity") {
        args.extend(["--entity", "user"]);
    }
    if !has("--order-by") {
        args.extend(["--order-by", "t"]);
    }
    if !has("--feature") {
        args.extend(["--feature", "item=-1"]);
    }
    if !has("-n") && !has("--sequence-length") {
        args.extend(["-n", "4"]);
    }
    args.extend(extra);
    let (status, stderr) = seqhouse_err(&args);
    assert_eq!(status, code, "exit code for {extra:?}; stderr: {stderr}");
    let line = stderr.lines().find(|l| l.contains("error")).unwrap_or_else(|| panic!("no error line: {stderr}"));
    for fragment in fragments {
        assert!(line.contains(fragment), "error line lacks {fragment:?}: {line}");
    }
    let after: Vec<_> =
        std::fs::read_dir(parent).map(|d| d.map(|e| e.unwrap().file_name()).collect()).unwrap_or_default();
    if !before.contains(&output.file_name().unwrap().to_os_string()) {
        assert!(!output.exists(), "a failed run must not create {}", output.display());
    }
    let mut before = before;
    before.sort();
    let mut after = after;
    after.sort();
    assert_eq!(before, after, "a failed run must leave nothing beside the output either");
}

#[test]
fn missing_input() {
    let dir = tempfile::tempdir().unwrap();
    fails(&dir.path().join("nope"), &dir.path().join("out"), &[], 1, &["input not found", "nope", "--input"]);
}

#[test]
fn no_readable_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("notes.txt"), "hello").unwrap();
    std::fs::write(input.join("_SUCCESS.parquet"), "").unwrap();
    fails(&input, &dir.path().join("out"), &[], 1, &["no readable files", "*.parquet or *.csv"]);
}

#[test]
fn missing_column_lists_the_available_ones() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    fails(
        &input,
        &dir.path().join("out"),
        &["--feature", "skil=-1"],
        1,
        &["column 'skil' not found", "events.parquet", "available columns: user, t, item"],
    );
}

#[test]
fn pad_that_does_not_parse() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    fails(&input, &dir.path().join("out"), &["--feature", "item=x1"], 1, &["'x1'", "'item'", "Int64"]);
}

#[test]
fn zero_sequence_length() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    fails(&input, &dir.path().join("out"), &["-n", "0"], 2, &["--sequence-length must be at least 1"]);
}

#[test]
fn stride_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    let out = dir.path().join("out");
    fails(&input, &out, &["--mode", "sliding", "--stride", "5"], 2, &["--stride must be between 1 and", "got 5"]);
    fails(&input, &out, &["--mode", "sliding", "--stride", "0"], 2, &["--stride", "got 0"]);
    fails(&input, &out, &["--stride", "2"], 2, &["--stride applies only to --mode sliding"]);
}

#[test]
fn null_keys_name_the_column_and_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    write_parquet(
        &input,
        vec![
            ("user", arc(Int64Array::from(vec![Some(1), None, Some(2)]))),
            ("t", arc(Int64Array::from(vec![1, 2, 3]))),
            ("item", arc(Int64Array::from(vec![10, 11, 12]))),
        ],
    );
    fails(
        &input,
        &dir.path().join("out"),
        &[],
        1,
        &["1 row(s) have a null in key column 'user'", "--on-null-key drop"],
    );
    seqhouse_ok(&[
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(&dir.path().join("out")),
        "--entity",
        "user",
        "--order-by",
        "t",
        "--feature",
        "item",
        "-n",
        "2",
        "--on-null-key",
        "drop",
    ]);
    assert_eq!(read_output(&dir.path().join("out")).manifest.counts.dropped_null_key_rows, 1);
}

#[test]
fn unsupported_column_type() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    write_parquet(
        &input,
        vec![
            ("user", arc(Int64Array::from(vec![1]))),
            ("t", arc(Int64Array::from(vec![1]))),
            ("item", arc(Int64Array::from(vec![1]))),
            ("blob", arc(BinaryArray::from_iter_values([b"x"]))),
        ],
    );
    fails(&input, &dir.path().join("out"), &["--feature", "blob"], 1, &["column 'blob'", "Binary is not supported"]);
}

#[test]
fn corrupt_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    valid_log(&input.join("a.parquet"));
    std::fs::write(input.join("b.parquet"), b"PAR1 truncated").unwrap();
    fails(&input, &dir.path().join("out"), &[], 1, &["cannot read", "b.parquet"]);
}

#[test]
fn malformed_csv() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.csv");
    std::fs::create_dir_all(input.parent().unwrap()).unwrap();
    std::fs::write(&input, "user,t,item\n1,1,10\n1,2,11,99\n").unwrap();
    fails(&input, &dir.path().join("out"), &[], 1, &["cannot read", "events.csv"]);
}

#[test]
fn existing_output_without_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    let out = dir.path().join("out");
    let args = minimal_job(&input, &out, "2");
    seqhouse_ok(&args);
    let manifest = std::fs::read(out.join("_manifest.json")).unwrap();
    fails(&input, &out, &[], 1, &["already exists", "--overwrite"]);
    assert_eq!(std::fs::read(out.join("_manifest.json")).unwrap(), manifest, "the old output is untouched");
    let mut again = args.clone();
    again.push("--overwrite");
    seqhouse_ok(&again);
}

#[test]
fn overwrite_refuses_a_folder_seqhouse_did_not_write() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    let out = dir.path().join("precious");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("thesis.tex"), "years of work").unwrap();
    fails(&input, &out, &["--overwrite"], 2, &["did not write", "refusing to replace"]);
    assert!(out.join("thesis.tex").exists());
}

#[test]
fn output_inside_the_input_folder() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    valid_log(&input.join("events.parquet"));
    fails(&input, &input.join("out"), &[], 2, &["inside the input folder"]);
}

#[test]
fn unknown_option_values_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    valid_log(&input);
    let out = dir.path().join("out");
    fails(&input, &out, &["--mode", "window"], 2, &["unknown mode 'window'", "chunk, sliding, last, prefix"]);
    fails(&input, &out, &["--padding", "left"], 2, &["unknown padding 'left'"]);
    fails(&input, &out, &["--compression", "zip"], 2, &["--compression 'zip'"]);
    fails(&input, &out, &["--fill-null", "item"], 2, &["--fill-null 'item' must be NAME=VALUE"]);
    fails(&input, &out, &["--fill-null", "user=0"], 2, &["not a --feature"]);
    fails(&input, &out, &["--min-length", "9"], 2, &["--min-length must be between 1 and"]);
}

#[test]
fn empty_input_is_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in/events.parquet");
    write_parquet(
        &input,
        vec![
            ("user", arc(Int64Array::from(Vec::<i64>::new()))),
            ("t", arc(Int64Array::from(Vec::<i64>::new()))),
            ("item", arc(Int64Array::from(Vec::<i64>::new()))),
        ],
    );
    let out = dir.path().join("out");
    seqhouse_ok(&minimal_job(&input, &out, "3"));
    let output = read_output(&out);
    assert_eq!(output.manifest.counts.windows, 0);
    assert_eq!(output.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    assert_eq!(output.entries, ["_manifest.json", "part-00000.parquet"]);
}
