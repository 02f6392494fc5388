//! Feature preparation on the local engine beyond what every engine shares: time deltas over
//! timestamps in every unit, across files and window boundaries, against the naive reference;
//! and the gaps' own checks.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray};
use seqhouse_contract::cases::repeating_events;
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_contract::{Fixture, LocalFixture, reference};
use seqhouse_core::{Error, Mode, NoProgress, SequenceRequest, SequenceSpec};
use seqhouse_local::{LocalConfig, LocalWarehouse};

fn run(input: &Path, output: &Path, spec: &SequenceSpec) -> Result<seqhouse_contract::Output, Error> {
    let warehouse = LocalWarehouse::new(LocalConfig { threads: Some(2), ..LocalConfig::default() }).unwrap();
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

/// The repeating log with `seen_ms` also as millisecond and microsecond timestamps, and a
/// column `wobble` whose order disagrees with `ts` (negative gaps), in two files.
fn write_timed(folder: &Path) -> Vec<RecordBatch> {
    let batch = repeating_events(77);
    let seen = batch.column_by_name("seen_ms").unwrap().clone();
    let millis: Vec<Option<i64>> =
        arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(&seen).iter().collect();
    let mut columns: Vec<(String, ArrayRef)> =
        batch.schema().fields().iter().map(|f| f.name().clone()).zip(batch.columns().iter().cloned()).collect();
    columns.push(("at_ms".into(), Arc::new(TimestampMillisecondArray::from(millis.clone()))));
    let micros: Vec<Option<i64>> = millis.iter().enumerate().map(|(i, m)| m.map(|m| m * 1000 + i as i64 * 7)).collect();
    columns.push(("at_us".into(), Arc::new(TimestampMicrosecondArray::from(micros))));
    let wobble: Vec<i64> = (0..batch.num_rows() as i64).map(|i| (i * 7919) % 1009 - 500).collect();
    columns.push(("wobble".into(), Arc::new(Int64Array::from(wobble))));
    let timed = RecordBatch::try_from_iter(columns).unwrap();
    let (first, second) = (timed.slice(0, 130), timed.slice(130, timed.num_rows() - 130));
    std::fs::create_dir_all(folder).unwrap();
    std::fs::write(folder.join("a.parquet"), parquet_bytes(std::slice::from_ref(&first))).unwrap();
    std::fs::write(folder.join("b.parquet"), parquet_bytes(std::slice::from_ref(&second))).unwrap();
    vec![first, second]
}

#[test]
fn timestamp_gaps_in_every_unit_match_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let batches = write_timed(&input);
    let deltas = ["s=at_ms", "ms=at_ms:ms", "us=at_us:us", "ns=at_us:ns", "sec_us=at_us:s", "wobble_gap=wobble"];
    let mut spec = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], vec!["item=-1".parse().unwrap()], 6);
    spec.mode = Mode::Sliding;
    spec.stride = Some(4);
    spec.time_deltas = deltas.iter().map(|d| d.parse().unwrap()).collect();
    spec.features.extend(spec.time_deltas.iter().map(|d| d.name.parse().unwrap()));
    let out = run(&input, &dir.path().join("out"), &spec).unwrap();
    let got = reference::rows_of(&spec, &out.batches);
    let mut want = reference::sequence(&spec, &batches).unwrap();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want);
    // Windows after the first start mid-history: their first gap is a real one, not null.
    let later = got.iter().filter(|r| r.sequence_index > 0).collect::<Vec<_>>();
    assert!(!later.is_empty());
    let first_gaps_known = later.iter().filter(|r| r.features[2][0].is_some()).count();
    assert!(first_gaps_known * 10 > later.len() * 8, "{first_gaps_known} of {}", later.len());
    // The wobbling column goes back in time: negative gaps are kept as they are.
    assert!(got.iter().flat_map(|r| &r.features[6]).any(|v| matches!(v, Some(reference::Value::Int(g)) if *g < 0)));
    // Truncated toward zero: seconds are the milliseconds divided by 1000.
    for row in &got {
        for (s, ms) in row.features[1].iter().zip(&row.features[2]).take(row.sequence_length as usize) {
            match (s, ms) {
                (Some(reference::Value::Int(s)), Some(reference::Value::Int(ms))) => assert_eq!(*s, ms / 1000),
                (None, None) => {}
                other => panic!("seconds and milliseconds disagree: {other:?}"),
            }
        }
    }
    assert_eq!(out.manifest.counts.feature_nulls["s"], out.manifest.counts.feature_nulls["ms"]);
}

#[test]
fn gap_options_are_checked_against_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write_timed(&input);
    for (delta, words) in [
        ("g=ts:ms", vec!["time_delta", "'g' asks for ms", "its own units"]),
        ("g=day:s", vec!["time_delta", "days"]),
        ("g=course", vec!["'course' not found", "available columns"]),
    ] {
        let mut spec = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], vec!["g".parse().unwrap()], 4);
        spec.time_deltas = vec![delta.parse().unwrap()];
        let output = dir.path().join("bad");
        let message = run(&input, &output, &spec).err().unwrap_or_else(|| panic!("{delta} must fail")).to_string();
        assert!(words.iter().all(|w| message.contains(w)), "{delta}: {message}");
        assert!(!output.exists(), "{delta}: nothing is written");
    }
    for bad in ["g", "=ts", "g=", "g=ts:hours"] {
        let message = bad.parse::<seqhouse_core::TimeDelta>().unwrap_err().to_string();
        assert!(message.contains("time_delta") && message.contains(bad.split(':').nth(1).unwrap_or("")), "{message}");
    }
}
