//! How the part files encode their columns: which get a dictionary.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use parquet::file::reader::{FileReader, SerializedFileReader};
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_core::{NoProgress, SequenceRequest, SequenceSpec};
use seqhouse_local::{LocalConfig, LocalWarehouse};

/// Order-by features and `is_pad_sequence` are written plain; other features keep a dictionary.
#[test]
fn order_by_features_and_the_pad_mask_are_written_without_a_dictionary() {
    let dir = tempfile::tempdir().unwrap();
    let rows = 5000i64;
    let column = |values: Vec<i64>| Arc::new(Int64Array::from(values)) as ArrayRef;
    let batch = RecordBatch::try_from_iter([
        ("user", column((0..rows).map(|i| i % 7).collect())),
        ("t", column((0..rows).map(|i| 1_700_000_000_000 + i * 977).collect())),
        ("item", column((0..rows).map(|i| i % 13).collect())),
    ])
    .unwrap();
    std::fs::write(dir.path().join("in.parquet"), parquet_bytes(&[batch])).unwrap();
    let features = vec!["t=-1".parse().unwrap(), "item=-1".parse().unwrap()];
    let request = SequenceRequest {
        input: dir.path().join("in.parquet").display().to_string(),
        output: dir.path().join("out").display().to_string(),
        subsets: vec![],
        spec: SequenceSpec::new(vec!["user".into()], vec!["t".into()], features, 100),
        overwrite: false,
    };
    let warehouse = LocalWarehouse::new(LocalConfig::default()).unwrap();
    seqhouse_core::run(&warehouse, &request, &NoProgress).unwrap();

    let part = std::fs::File::open(dir.path().join("out/part-00000.parquet")).unwrap();
    let metadata = SerializedFileReader::new(part).unwrap().metadata().clone();
    let row_group = metadata.row_group(0);
    let mut with_dictionary: Vec<(String, bool)> = row_group
        .columns()
        .iter()
        .map(|c| (c.column_path().parts()[0].clone(), c.dictionary_page_offset().is_some()))
        .collect();
    with_dictionary.sort();
    let expected = [
        ("is_pad_sequence", false),
        ("item_sequence", true),
        ("sequence_index", true),
        ("sequence_length", true),
        ("t_sequence", false),
        ("user", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(c, d)| (c.to_string(), *d)).collect();
    assert_eq!(with_dictionary, expected);
}
