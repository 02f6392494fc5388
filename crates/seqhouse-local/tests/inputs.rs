//! Local input discovery and decoding: recursion, skipped names, file order, mixed formats,
//! dictionary strings and widening between files.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, DictionaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::Int32Type;
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_contract::{Fixture, LocalFixture, reference};
use seqhouse_core::{Error, NoProgress, SequenceRequest, SequenceSpec};
use seqhouse_local::{LocalConfig, LocalWarehouse};

fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, parquet_bytes(&[RecordBatch::try_from_iter(columns).unwrap()])).unwrap();
}

fn run(input: &Path, output: &Path, spec: &SequenceSpec) -> Result<seqhouse_contract::Output, Error> {
    let warehouse = LocalWarehouse::new(LocalConfig::default()).unwrap();
    let request = SequenceRequest {
        input: input.display().to_string(),
        output: output.display().to_string(),
        subsets: vec![],
        spec: spec.clone(),
        overwrite: false,
    };
    seqhouse_core::run(&warehouse, &request, &NoProgress)?;
    Ok(LocalFixture::new().read_output(output.to_str().unwrap()))
}

/// Columns user, t, item with the given users and `t = item = 1`.
fn log(user: ArrayRef) -> Vec<(&'static str, ArrayRef)> {
    let ones: ArrayRef = Arc::new(Int64Array::from(vec![1; user.len()]));
    vec![("user", user), ("t", ones.clone()), ("item", ones)]
}

fn spec() -> SequenceSpec {
    SequenceSpec::new(vec!["user".into()], vec!["t".into()], vec!["item=-1".parse().unwrap()], 8)
}

#[test]
fn folders_are_read_recursively_in_path_order_skipping_hidden_and_underscore_names() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    // Every row ties on (user, t): the output order is the file order.
    let one = |item: i64| {
        vec![
            ("user", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("t", Arc::new(Int64Array::from(vec![0]))),
            ("item", Arc::new(Int64Array::from(vec![item]))),
        ]
    };
    write(&input.join("b.parquet"), one(3));
    write(&input.join("a/z.parquet"), one(2));
    write(&input.join("a/y.parquet"), one(1));
    write(&input.join("_tmp/x.parquet"), one(99));
    write(&input.join(".hidden.parquet"), one(98));
    write(&input.join("_SUCCESS.parquet"), one(97));
    std::fs::write(input.join("README.md"), "not data").unwrap();
    std::fs::write(input.join("c.csv"), "user,t,item\n1,0,4\n").unwrap();
    let out = run(&input, &dir.path().join("out"), &spec()).unwrap();
    let files: Vec<&str> = out.manifest.input_files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["a/y.parquet", "a/z.parquet", "b.parquet", "c.csv"]);
    let rows = reference::rows_of(&spec(), &out.batches);
    let items: Vec<String> = rows[0].features[0].iter().take(4).map(|v| format!("{v:?}")).collect();
    assert_eq!(items, ["Some(Int(1))", "Some(Int(2))", "Some(Int(3))", "Some(Int(4))"]);
}

#[test]
fn dictionary_strings_and_mixed_integer_widths_are_unified() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let users: DictionaryArray<Int32Type> = vec!["u1", "u2", "u1"].into_iter().collect();
    write(
        &input.join("a.parquet"),
        vec![
            ("user", Arc::new(users)),
            ("t", Arc::new(Int32Array::from(vec![3, 1, 2]))),
            ("item", Arc::new(Int32Array::from(vec![30, 10, 20]))),
        ],
    );
    write(
        &input.join("b.parquet"),
        vec![
            ("user", Arc::new(StringArray::from(vec!["u2"]))),
            ("t", Arc::new(Int64Array::from(vec![0]))),
            ("item", Arc::new(Int64Array::from(vec![5_000_000_000]))),
        ],
    );
    let out = run(&input, &dir.path().join("out"), &spec()).unwrap();
    let types: Vec<(&str, &str)> =
        out.manifest.columns.iter().map(|c| (c.name.as_str(), c.data_type.as_str())).take(4).collect();
    assert_eq!(types[0], ("user", "Utf8"));
    assert_eq!(types[3], ("item_sequence", "FixedSizeList(8 x Int64)"));
    let rows = reference::rows_of(&spec(), &out.batches);
    let firsts: Vec<String> = rows.iter().map(|r| format!("{:?}/{:?}", r.entity[0], r.features[0][0])).collect();
    assert_eq!(firsts, [r#"Str("u1")/Some(Int(20))"#, r#"Str("u2")/Some(Int(5000000000))"#]);
}

#[test]
fn conflicting_types_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write(&input.join("a.parquet"), log(Arc::new(Int64Array::from(vec![1]))));
    write(&input.join("b.parquet"), log(Arc::new(StringArray::from(vec!["x"]))));
    match run(&input, &dir.path().join("out"), &spec()) {
        Err(Error::UnsupportedType { column, message }) => {
            assert_eq!(column, "user");
            assert!(
                message.contains("Int64 in")
                    && message.contains("a.parquet")
                    && message.contains("Utf8 in")
                    && message.contains("b.parquet"),
                "{message}"
            );
        }
        other => panic!("expected UnsupportedType, got {:?}", other.err()),
    }
}

#[test]
fn a_missing_column_names_the_file_that_lacks_it() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write(&input.join("a.parquet"), log(Arc::new(Int64Array::from(vec![1]))));
    std::fs::write(input.join("b.csv"), "user,t\n1,2\n").unwrap();
    match run(&input, &dir.path().join("out"), &spec()) {
        Err(Error::ColumnNotFound { column, file, available }) => {
            assert_eq!(column, "item");
            assert!(file.ends_with("b.csv"), "{file}");
            assert_eq!(available, ["user", "t"]);
        }
        other => panic!("expected ColumnNotFound, got {:?}", other.err()),
    }
}

#[test]
fn a_header_only_csv_is_an_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("empty.csv");
    std::fs::write(&input, "user,t,item\n").unwrap();
    let out = run(&input, &dir.path().join("out"), &spec()).unwrap();
    assert_eq!(out.manifest.counts.input_rows, 0);
    assert_eq!(out.manifest.counts.windows, 0);
    assert_eq!(out.entries, ["_manifest.json", "part-00000.parquet"]);
}
