//! How the part files encode their columns: which get a dictionary, which are delta-encoded.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use parquet::basic::Encoding;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::reader::{FileReader, SerializedFileReader};
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_core::spec::Mode;
use seqhouse_core::{NoProgress, SequenceRequest, SequenceSpec};
use seqhouse_local::{LocalConfig, LocalWarehouse};

/// Sequences 5000 rows of 7 users (`t` runs up, `item` cycles through 13 values) with `t` and
/// `item` as features and windows of 100, shaped by `shape`, and returns the first part's
/// metadata.
fn first_part_metadata(shape: impl FnOnce(&mut SequenceSpec)) -> Arc<ParquetMetaData> {
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
    let mut spec = SequenceSpec::new(vec!["user".into()], vec!["t".into()], features, 100);
    shape(&mut spec);
    let request = SequenceRequest {
        input: dir.path().join("in.parquet").display().to_string(),
        output: dir.path().join("out").display().to_string(),
        subsets: vec![],
        spec,
        overwrite: false,
    };
    let warehouse = LocalWarehouse::new(LocalConfig::default()).unwrap();
    seqhouse_core::run(&warehouse, &request, &NoProgress).unwrap();
    let part = std::fs::File::open(dir.path().join("out/part-00000.parquet")).unwrap();
    SerializedFileReader::new(part).unwrap().metadata().clone().into()
}

/// The encodings of the first row group's column chunk whose path starts with `root`.
fn encodings_of(metadata: &ParquetMetaData, root: &str) -> Vec<Encoding> {
    let chunk = metadata.row_group(0).columns().iter().find(|c| c.column_path().parts()[0] == root).unwrap();
    chunk.encodings().collect()
}

/// Order-by features and `is_pad_sequence` are written plain; other features keep a dictionary.
#[test]
fn order_by_features_and_the_pad_mask_are_written_without_a_dictionary() {
    let metadata = first_part_metadata(|_| {});
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

/// An integer order-by feature is DELTA_BINARY_PACKED when every event is in one window, and
/// PLAIN when windows share events: there zstd finds each window's repeat of the one before in
/// plain values only.
#[test]
fn integer_order_by_features_are_delta_encoded_only_where_windows_do_not_overlap() {
    let cases: [(&str, Mode, Option<usize>, bool); 6] = [
        ("chunk", Mode::Chunk, None, false),
        ("last", Mode::Last, None, false),
        ("sliding, stride N", Mode::Sliding, Some(100), false),
        ("sliding, stride N - 1", Mode::Sliding, Some(99), true),
        ("sliding, stride 1", Mode::Sliding, Some(1), true),
        ("prefix", Mode::Prefix, None, true),
    ];
    for (case, mode, stride, overlap) in cases {
        let metadata = first_part_metadata(|spec| {
            spec.mode = mode;
            spec.stride = stride;
        });
        let encodings = encodings_of(&metadata, "t_sequence");
        let expected = if overlap { Encoding::PLAIN } else { Encoding::DELTA_BINARY_PACKED };
        assert!(encodings.contains(&expected), "{case}: t_sequence is {encodings:?}, expected {expected:?}");
        let other = if overlap { Encoding::DELTA_BINARY_PACKED } else { Encoding::PLAIN };
        assert!(!encodings.contains(&other), "{case}: t_sequence is {encodings:?}, not expected {other:?}");
        // Features that are not order-by columns keep their dictionary in every mode.
        assert!(encodings_of(&metadata, "item_sequence").contains(&Encoding::RLE_DICTIONARY), "{case}");
    }
}
