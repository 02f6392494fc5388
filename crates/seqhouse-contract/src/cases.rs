//! The contract cases. Each takes the adapter under test and a fixture for its storage.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int8Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use seqhouse_core::vocab::{LEGACY_VOCAB_FOLDER, VOCAB_FOLDER};
use seqhouse_core::{
    Error, FeatureSpec, FillNull, JobReport, Mode, NoProgress, NullKeyPolicy, Padding, SequenceRequest, SequenceSpec,
    Warehouse,
};

use crate::Fixture;
use crate::reference::{self, Row, Value};

/// A small deterministic pseudo-random stream (no dependency, same on every machine).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// An event log: `rows` events of 7 users in 2 courses, timestamps with ties, a unique `row_id`,
/// and features of several types, `correct` null on every 9th row.
pub fn events(rows: usize, seed: u64) -> RecordBatch {
    let mut rng = Lcg(seed);
    let mut user = Vec::new();
    let mut course = Vec::new();
    let mut ts = Vec::new();
    let mut item = Vec::new();
    let mut correct = Vec::new();
    let mut score = Vec::new();
    let mut tag = Vec::new();
    let mut flag = Vec::new();
    let mut day = Vec::new();
    for r in 0..rows {
        user.push(rng.next(7) as i64 * 1000 + 3);
        course.push(["algebra", "geometry"][rng.next(2) as usize]);
        ts.push(rng.next(40) as i64);
        item.push(rng.next(500) as i32);
        correct.push(if r % 9 == 4 { None } else { Some(rng.next(2) as i8) });
        score.push(rng.next(1000) as f64 / 8.0);
        tag.push(format!("t{}", rng.next(30)));
        flag.push(rng.next(2) == 1);
        day.push(19_000 + rng.next(60) as i32);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user", Arc::new(Int64Array::from(user))),
        ("course", Arc::new(StringArray::from(course))),
        ("ts", Arc::new(Int64Array::from(ts))),
        ("row_id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
        ("item", Arc::new(Int32Array::from(item))),
        ("correct", Arc::new(Int8Array::from(correct))),
        ("score", Arc::new(Float64Array::from(score))),
        ("tag", Arc::new(StringArray::from(tag))),
        ("flag", Arc::new(BooleanArray::from(flag))),
        ("day", Arc::new(Date32Array::from(day))),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// Edge cases for push-down engines, compared with the local engine: [`events`] with null users
/// (every 17th row) and an extra feature column whose name is full of quotes, a backtick and SQL.
pub fn edge_case_events() -> RecordBatch {
    let events = events(400, 42);
    let mut columns: Vec<(String, ArrayRef)> =
        events.schema().fields().iter().map(|f| f.name().clone()).zip(events.columns().iter().cloned()).collect();
    columns.push((HOSTILE_NAME.to_string(), events.column_by_name("item").unwrap().clone()));
    let user: Int64Array = (0..400).map(|i| if i % 17 == 3 { None } else { Some((i * 7 % 9) as i64) }).collect();
    columns[0].1 = Arc::new(user);
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The hostile column of [`edge_case_events`].
pub const HOSTILE_NAME: &str = "we\"ird`; DROP TABLE events; --";

/// Specs over [`edge_case_events`]: every mode (alternating padding sides) with a two-column key,
/// null keys dropped, a fill, pads of every type (quotes and backslashes in the string pad), and
/// one with N = 10,003 (past Trino's 10,000-element `repeat`).
pub fn edge_case_specs() -> Vec<(String, SequenceSpec)> {
    let mut specs = Vec::new();
    for (i, mode) in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix].into_iter().enumerate() {
        let mut spec = SequenceSpec::new(
            vec!["course".into(), "user".into()],
            vec!["ts".into(), "row_id".into()],
            vec![
                "correct=-1".parse().unwrap(),
                "tag=it's a \\ 'pad'".parse().unwrap(),
                "score=-0.5".parse().unwrap(),
                "flag=true".parse().unwrap(),
                "day=2000-01-01".parse().unwrap(),
                format!("{HOSTILE_NAME}=7").parse().unwrap(),
            ],
            6,
        );
        spec.mode = mode;
        spec.padding = if i % 2 == 0 { Padding::Pre } else { Padding::Post };
        spec.stride = (mode == Mode::Sliding).then_some(4);
        spec.min_length = 2;
        spec.on_null_key = NullKeyPolicy::Drop;
        if i < 2 {
            spec.fill_null = vec!["correct=9".parse().unwrap()];
        }
        specs.push((format!("edge_{mode}"), spec));
    }
    let mut long = specs[2].1.clone();
    long.sequence_length = 10_003;
    long.padding = Padding::Pre;
    specs.push(("edge_last_n10003".into(), long));
    specs
}

/// The spec most cases start from: per user, by (ts, row_id), item and correct padded with -1.
pub fn base_spec(n: usize) -> SequenceSpec {
    SequenceSpec::new(
        vec!["user".into()],
        vec!["ts".into(), "row_id".into()],
        vec![feature("item", Some("-1")), feature("correct", Some("-1"))],
        n,
    )
}

fn feature(name: &str, pad: Option<&str>) -> FeatureSpec {
    FeatureSpec { name: name.into(), pad: pad.map(str::to_string) }
}

fn run(
    warehouse: &dyn Warehouse,
    input: &str,
    output: &str,
    spec: &SequenceSpec,
    overwrite: bool,
) -> Result<Vec<JobReport>, Error> {
    let request =
        SequenceRequest { input: input.into(), output: output.into(), subsets: vec![], spec: spec.clone(), overwrite };
    seqhouse_core::run(warehouse, &request, &NoProgress)
}

/// Where split `name` of a job publishing to `out_root` is (`out_root` itself when unsplit).
fn output_of(out_root: &str, name: Option<&str>, sequence_length: usize) -> String {
    match name {
        Some(name) => seqhouse_core::join_location(out_root, &seqhouse_core::sequenced_folder(name, sequence_length)),
        None => out_root.to_string(),
    }
}

/// Makes `spec` hold out each entity's last events (`counts`) in prefix windows with a target
/// mask: the split whose windows share the most history between splits.
fn leave_last_in_prefixes(spec: &mut SequenceSpec, counts: &str) {
    spec.mode = Mode::Prefix;
    spec.stride = None;
    spec.target_mask = true;
    spec.split = Some(seqhouse_core::split::Split::LeaveLast { counts: counts.parse().unwrap() });
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort();
    rows
}

/// Runs `spec` on `batches` (as one file) and asserts the output equals the reference's.
fn assert_matches_reference(
    warehouse: &dyn Warehouse,
    fixture: &dyn Fixture,
    name: &str,
    spec: &SequenceSpec,
    batches: &[RecordBatch],
) {
    let input = fixture.put_parquet(name, "events.parquet", batches);
    let output = fixture.output_location(&format!("{name}_out"));
    run(warehouse, &input, &output, spec, false).unwrap_or_else(|e| panic!("{name}: {e}"));
    let got = reference::rows_of(spec, &fixture.read_output(&output).batches);
    let want = reference::sequence(spec, batches).unwrap();
    assert!(!want.is_empty(), "{name}: the case must produce windows");
    assert_eq!(sorted(got), sorted(want), "{name}: output differs from the reference");
}

/// Every mode × padding side, with N smaller and larger than typical entity lengths.
pub fn every_mode_and_padding_matches_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batches = [events(150, 1)];
    for mode in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix] {
        for padding in [Padding::Post, Padding::Pre] {
            for n in [1, 4, 30] {
                let mut spec = base_spec(n);
                spec.mode = mode;
                spec.padding = padding;
                if mode == Mode::Sliding {
                    spec.stride = Some(n.div_ceil(2));
                }
                let name = format!("{mode}_{padding}_{n}");
                assert_matches_reference(warehouse, fixture, &name, &spec, &batches);
            }
        }
    }
}

/// Two entity columns (one a string) and two order columns (a date and an integer).
pub fn multi_column_keys_match_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let mut spec = SequenceSpec::new(
        vec!["course".into(), "user".into()],
        vec!["day".into(), "row_id".into()],
        vec![feature("tag", Some("<pad>")), feature("user", Some("-1"))],
        6,
    );
    spec.mode = Mode::Sliding;
    spec.stride = Some(2);
    assert_matches_reference(warehouse, fixture, "multikey", &spec, &[events(120, 2)]);
}

/// Ties on the order-by columns: input order (file order, then row order) where the engine
/// promises it; otherwise only the multiset of each entity's events is fixed.
pub fn ties_follow_capability(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    // `ts` alone has many ties; the two files split the rows so order crosses a file boundary.
    let all = events(160, 3);
    let (first, second) = (all.slice(0, 70), all.slice(70, 90));
    fixture.put_parquet("ties", "part-a.parquet", std::slice::from_ref(&first));
    let input = fixture.put_parquet("ties", "part-b.parquet", std::slice::from_ref(&second));
    let mut spec = base_spec(5);
    spec.order_by = vec!["ts".into()];
    spec.features = vec![feature("row_id", Some("-1"))];
    let output = fixture.output_location("ties_out");
    run(warehouse, &input, &output, &spec, false).unwrap();
    let got = sorted(reference::rows_of(&spec, &fixture.read_output(&output).batches));
    let want = sorted(reference::sequence(&spec, &[first, second]).unwrap());
    if warehouse.capabilities().ties_keep_input_order {
        assert_eq!(got, want, "ties must keep input order");
    } else {
        let events_of = |rows: &[Row]| {
            let mut per_entity: Vec<(Vec<Value>, Vec<Option<Value>>)> = Vec::new();
            for row in rows {
                let real: Vec<Option<Value>> =
                    row.features[0].iter().zip(&row.mask).filter(|(_, m)| **m == 0).map(|(v, _)| v.clone()).collect();
                per_entity.push((row.entity.clone(), real));
            }
            let mut flat: Vec<(Vec<Value>, Option<Value>)> =
                per_entity.into_iter().flat_map(|(e, vs)| vs.into_iter().map(move |v| (e.clone(), v))).collect();
            flat.sort();
            flat
        };
        assert_eq!(events_of(&got), events_of(&want), "each entity's events must appear exactly once");
    }
}

/// Features of every supported kind keep their type; pads parse as that type.
pub fn types_and_pads_round_trip(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let mut spec = base_spec(7);
    spec.features = vec![
        feature("score", Some("-1.5")),
        feature("tag", Some("")),
        feature("flag", Some("true")),
        feature("day", Some("-1")),
        feature("item", None),
        feature("course", None),
    ];
    let batches = [events(90, 4)];
    assert_matches_reference(warehouse, fixture, "types", &spec, &batches);
    let out = fixture.read_output(&fixture.output_location("types_out"));
    let schema = out.batches[0].schema();
    let fixed = warehouse.capabilities().fixed_size_lists;
    for f in &spec.features {
        let input_type = batches[0].schema().field_with_name(&f.name).unwrap().data_type().clone();
        match schema.field_with_name(&f.output_name()).unwrap().data_type() {
            DataType::FixedSizeList(item, 7) if fixed => assert_eq!(item.data_type(), &input_type, "{}", f.name),
            // Lengths of plain lists are checked row by row by reference::rows_of.
            DataType::List(item) if !fixed => assert_eq!(item.data_type(), &input_type, "{}", f.name),
            other => panic!(
                "{} is {other}, expected a {} list of 7",
                f.output_name(),
                if fixed { "fixed-size" } else { "plain" }
            ),
        }
    }
}

/// Nulls inside real events stay null unless `--fill-null` replaces them; both are counted.
pub fn feature_nulls_kept_or_filled(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batches = [events(100, 5)];
    let spec = base_spec(8);
    assert_matches_reference(warehouse, fixture, "nulls_kept", &spec, &batches);
    let kept = fixture.read_output(&fixture.output_location("nulls_kept_out"));
    let nulls_in_output: usize = kept
        .batches
        .iter()
        .map(|b| b.column_by_name("correct_sequence").unwrap().as_ref().to_data().child_data()[0].null_count())
        .sum();
    assert_eq!(nulls_in_output, 11, "100 rows with a null on every 9th from the 5th: 11 nulls, each in one window");
    assert_eq!(kept.manifest.counts.feature_nulls["correct"], 11);

    let mut filled = spec.clone();
    filled.fill_null = vec![FillNull { column: "correct".into(), value: "7".into() }];
    assert_matches_reference(warehouse, fixture, "nulls_filled", &filled, &batches);
    let out = fixture.read_output(&fixture.output_location("nulls_filled_out"));
    let rows = reference::rows_of(&filled, &out.batches);
    let sevens = rows.iter().flat_map(|r| &r.features[1]).filter(|v| **v == Some(Value::Int(7))).count();
    assert_eq!(sevens, 11);
}

fn with_null_keys() -> RecordBatch {
    let batch = events(80, 6);
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    let user: Int64Array = (0..80).map(|i| if i % 13 == 5 { None } else { Some((i % 4) as i64) }).collect();
    let ts: Int64Array = (0..80).map(|i| if i % 10 == 7 { None } else { Some(i as i64 / 3) }).collect();
    columns[0] = Arc::new(user);
    columns[2] = Arc::new(ts);
    let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
    RecordBatch::try_from_iter(names.into_iter().zip(columns)).unwrap()
}

/// Null entity/order values stop the job by default, naming the column; `drop` drops and counts.
pub fn null_keys_error_or_drop(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batch = with_null_keys();
    let input = fixture.put_parquet("nullkeys", "events.parquet", std::slice::from_ref(&batch));
    let output = fixture.output_location("nullkeys_out");
    let spec = base_spec(5);
    match run(warehouse, &input, &output, &spec, false) {
        Err(Error::NullKey { column, count, .. }) => {
            assert_eq!(column, "user");
            assert_eq!(count, 6);
        }
        other => panic!("expected a NullKey error, got {other:?}"),
    }
    assert!(fixture.list(&output).is_empty(), "a failed run leaves nothing at the output");

    let mut dropping = spec.clone();
    dropping.on_null_key = NullKeyPolicy::Drop;
    assert_matches_reference(warehouse, fixture, "nullkeys_drop", &dropping, &[batch]);
    let counts = fixture.read_output(&fixture.output_location("nullkeys_drop_out")).manifest.counts;
    // user null at i = 5, 18, 31, 44, 57, 70; ts null at i = 7, 17, ..., 77 (8 rows); 57 is both.
    assert_eq!(counts.dropped_null_key_rows, 13);
    assert_eq!(counts.null_key_rows_by_column["user"], 6);
    assert_eq!(counts.null_key_rows_by_column["ts"], 8);
    assert_eq!(counts.sequenced_rows, 67);
}

/// Windows shorter than `--min-length` are dropped, counted, and do not consume a sequence_index.
pub fn min_length_drops_short_windows(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let mut spec = base_spec(6);
    spec.min_length = 4;
    let batches = [events(75, 7)];
    assert_matches_reference(warehouse, fixture, "minlen", &spec, &batches);
    let out = fixture.read_output(&fixture.output_location("minlen_out"));
    let mut all = spec.clone();
    all.min_length = 1;
    let unfiltered = reference::sequence(&all, &batches).unwrap();
    let short = unfiltered.iter().filter(|r| r.sequence_length < 4).count() as u64;
    assert!(short > 0, "the case must have short windows");
    assert_eq!(out.manifest.counts.windows_below_min_length, short);
    assert_eq!(out.manifest.counts.windows, unfiltered.len() as u64 - short);
}

/// Zero input rows is not an error: a valid, empty output with the full schema.
pub fn empty_input_gives_empty_output(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let empty = events(10, 8).slice(0, 0);
    let input = fixture.put_parquet("empty", "events.parquet", &[empty]);
    let output = fixture.output_location("empty_out");
    let spec = base_spec(4);
    run(warehouse, &input, &output, &spec, false).unwrap();
    let out = fixture.read_output(&output);
    assert_eq!(out.batches.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
    assert_eq!(out.manifest.counts.windows, 0);
    assert_eq!(out.manifest.counts.entities, 0);
    let names: Vec<String> = out.manifest.columns.iter().map(|c| c.name.clone()).collect();
    assert_eq!(
        names,
        ["user", "sequence_index", "sequence_length", "item_sequence", "correct_sequence", "is_pad_sequence"]
    );
}

/// A missing column is reported by name with the columns that exist; nothing is written.
pub fn missing_column_is_named(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("missing", "events.parquet", &[events(20, 9)]);
    let output = fixture.output_location("missing_out");
    let mut spec = base_spec(4);
    spec.features.push(feature("skill", Some("-1")));
    match run(warehouse, &input, &output, &spec, false) {
        Err(Error::ColumnNotFound { column, available, .. }) => {
            assert_eq!(column, "skill");
            assert!(available.contains(&"item".to_string()), "available columns are listed: {available:?}");
        }
        other => panic!("expected ColumnNotFound, got {other:?}"),
    }
    assert!(fixture.list(&output).is_empty());
}

/// `explain` says what a job would do, one explanation per subset, and does none of it: no
/// output, no lock, nothing at the output location. It binds the spec, so a missing column is
/// reported as `sequence` would report it.
pub fn explain_does_nothing(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("explain/train", "events.parquet", &[events(30, 21)]);
    fixture.put_parquet("explain/valid", "events.parquet", &[events(10, 22)]);
    let root = input.trim_end_matches('/').trim_end_matches("train").trim_end_matches('/').to_string();
    let output = fixture.output_location("explain_out");
    let request = SequenceRequest {
        input: root.clone(),
        output: output.clone(),
        subsets: vec!["train".into(), "valid".into()],
        spec: base_spec(4),
        overwrite: false,
    };
    let explanations = seqhouse_core::explain(warehouse, &request).unwrap();
    assert_eq!(explanations.len(), 2, "one per subset");
    assert!(explanations.iter().all(|e| !e.steps.is_empty()), "{explanations:?}");
    assert!(fixture.list(&output).is_empty(), "explain writes nothing");
    let mut spec = base_spec(4);
    spec.features.push(feature("skill", Some("-1")));
    let bad = SequenceRequest { spec, subsets: vec![], input: input.clone(), ..request };
    match seqhouse_core::explain(warehouse, &bad) {
        Err(Error::ColumnNotFound { column, .. }) => assert_eq!(column, "skill"),
        other => panic!("expected ColumnNotFound, got {other:?}"),
    }
    assert!(fixture.list(&output).is_empty());
}

/// A feature that is integer in one file and floating-point in another is widened to floats
/// only when every value converts exactly (then the windows are the reference's over the
/// widened values); a value beyond 2^53 is refused, naming the column, with nothing published.
/// Engines without [`seqhouse_core::Capabilities::widens_integers_to_floats`] refuse both.
pub fn widening_between_files_is_exact_or_refused(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let mut spec = base_spec(5);
    spec.features = vec![feature("score", Some("-1"))];
    let with_score = |batch: RecordBatch, score: ArrayRef| {
        let schema = batch.schema();
        let columns = schema.fields().iter().zip(batch.columns()).map(|(field, column)| {
            (field.name().clone(), if field.name() == "score" { score.clone() } else { column.clone() })
        });
        RecordBatch::try_from_iter(columns).unwrap()
    };
    for (name, largest, exact) in [("widen_exact", 1i64 << 53, true), ("widen_lossy", (1 << 53) + 1, false)] {
        let ints = events(40, 31);
        let scores: Vec<i64> = (0..40).map(|i| if i == 17 { largest } else { i * 1000 }).collect();
        let ints = with_score(ints, Arc::new(Int64Array::from(scores)));
        let floats = events(40, 32);
        fixture.put_parquet(name, "a.parquet", std::slice::from_ref(&ints));
        let input = fixture.put_parquet(name, "b.parquet", std::slice::from_ref(&floats));
        let output = fixture.output_location(&format!("{name}_out"));
        let result = run(warehouse, &input, &output, &spec, false);
        if exact && warehouse.capabilities().widens_integers_to_floats {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            let as_floats = arrow::compute::cast(ints.column_by_name("score").unwrap(), &DataType::Float64).unwrap();
            let want = reference::sequence(&spec, &[with_score(ints.clone(), as_floats), floats]).unwrap();
            let got = reference::rows_of(&spec, &fixture.read_output(&output).batches);
            assert_eq!(sorted(got), sorted(want), "{name}: output differs from the reference");
        } else {
            match result {
                Err(Error::UnsupportedType { column, message }) => {
                    assert_eq!(column, "score");
                    assert!(message.contains("a.parquet"), "{name}: {message}");
                }
                other => panic!("{name}: expected UnsupportedType, got {other:?}"),
            }
            assert!(fixture.list(&output).is_empty(), "{name}: nothing published");
        }
    }
}

/// A pad that does not parse as the column's type is reported with the column and value.
pub fn bad_pad_value_is_named(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("badpad", "events.parquet", &[events(20, 10)]);
    let output = fixture.output_location("badpad_out");
    for (column, pad) in [("item", "abc"), ("correct", "300"), ("flag", "maybe"), ("score", "1.2.3")] {
        let mut spec = base_spec(4);
        spec.features = vec![feature(column, Some(pad))];
        match run(warehouse, &input, &output, &spec, false) {
            Err(Error::BadValue { column: c, value, .. }) => {
                assert_eq!((c.as_str(), value.as_str()), (column, pad));
            }
            other => panic!("expected BadValue for {column}={pad}, got {other:?}"),
        }
    }
    assert!(fixture.list(&output).is_empty());
}

/// A column of a type seqhouse cannot sequence is named.
pub fn unsupported_type_is_named(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batch = events(20, 11);
    let blob: ArrayRef = Arc::new(BinaryArray::from_iter_values((0..20).map(|i| vec![i as u8])));
    let mut fields: Vec<Field> = batch.schema().fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new("blob", DataType::Binary, false));
    let mut columns = batch.columns().to_vec();
    columns.push(blob);
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
    let input = fixture.put_parquet("unsupported", "events.parquet", &[batch]);
    let output = fixture.output_location("unsupported_out");
    let mut spec = base_spec(4);
    spec.features = vec![feature("blob", None)];
    match run(warehouse, &input, &output, &spec, false) {
        Err(Error::UnsupportedType { column, .. }) => assert_eq!(column, "blob"),
        other => panic!("expected UnsupportedType, got {other:?}"),
    }
    assert!(fixture.list(&output).is_empty());
}

/// An existing output is an error without `overwrite`; with it, it is replaced entirely.
pub fn existing_output_needs_overwrite(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("overwrite", "events.parquet", &[events(60, 12)]);
    let output = fixture.output_location("overwrite_out");
    run(warehouse, &input, &output, &base_spec(3), false).unwrap();
    match run(warehouse, &input, &output, &base_spec(5), false) {
        Err(Error::OutputExists { location }) => assert!(location.contains("overwrite_out")),
        other => panic!("expected OutputExists, got {other:?}"),
    }
    assert_eq!(fixture.read_output(&output).manifest.spec.sequence_length, 3, "the old output is untouched");
    run(warehouse, &input, &output, &base_spec(5), true).unwrap();
    let out = fixture.read_output(&output);
    assert_eq!(out.manifest.spec.sequence_length, 5);
    let mut expected: Vec<String> = out.manifest.parts.iter().map(|p| p.path.clone()).collect();
    expected.push(seqhouse_core::MANIFEST_FILE.to_string());
    expected.sort();
    assert_eq!(out.entries, expected, "nothing of the old output remains");
}

/// A run that fails midway leaves a previous output as it was and creates nothing new.
pub fn failed_run_publishes_nothing(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let good = fixture.put_parquet("failing", "a.parquet", &[events(40, 13)]);
    let output = fixture.output_location("failing_out");
    run(warehouse, &good, &output, &base_spec(4), false).unwrap();
    let before = fixture.read_output(&output);
    // A second file that is not Parquet: the failure comes while reading, after planning.
    fixture.put_bytes("failing", "b.parquet", b"PAR1 this is not parquet");
    let err = run(warehouse, &good, &output, &base_spec(6), true).unwrap_err();
    assert!(matches!(err, Error::CorruptInput { ref file, .. } if file.contains("b.parquet")), "{err:?}");
    let after = fixture.read_output(&output);
    assert_eq!(after.manifest, before.manifest);
    assert_eq!(after.entries, before.entries);
    let fresh = fixture.output_location("failing_fresh_out");
    assert!(run(warehouse, &good, &fresh, &base_spec(6), false).is_err());
    assert!(fixture.list(&fresh).is_empty());
}

/// `--subsets`: subset s reads INPUT/s/ and writes OUTPUT/s_sequenced_N/.
pub fn subsets_go_to_their_folders(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let train = events(90, 14);
    let valid = events(30, 15);
    let train_loc = fixture.put_parquet("root/train", "events.parquet", std::slice::from_ref(&train));
    fixture.put_parquet("root/valid", "events.parquet", std::slice::from_ref(&valid));
    let root = train_loc.trim_end_matches('/').trim_end_matches("train").trim_end_matches('/').to_string();
    let out_root = fixture.output_location("subsets_out");
    let spec = base_spec(4);
    let request = SequenceRequest {
        input: root,
        output: out_root.clone(),
        subsets: vec!["train".into(), "valid".into()],
        spec: spec.clone(),
        overwrite: false,
    };
    let reports = seqhouse_core::run(warehouse, &request, &NoProgress).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(fixture.list(&out_root), ["train_sequenced_4", "valid_sequenced_4"]);
    for (name, batch) in [("train", train), ("valid", valid)] {
        let out = fixture.read_output(&seqhouse_core::join_location(&out_root, &format!("{name}_sequenced_4")));
        assert_eq!(out.manifest.subset.as_deref(), Some(name));
        let got = sorted(reference::rows_of(&spec, &out.batches));
        assert_eq!(got, sorted(reference::sequence(&spec, &[batch]).unwrap()), "subset {name}");
    }
}

/// Every split kind, with target masks and folds: each split at `OUTPUT/NAME_sequenced_N/`
/// holds the reference's windows and columns (`fold` in the first split only), and the
/// manifests agree on one run, count each split's windows, no leak, and every event as the
/// target of exactly one split.
pub fn splits_match_the_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    use seqhouse_core::split::Split;
    let batch = events(300, 21);
    let input = fixture.put_parquet("splits", "events.parquet", std::slice::from_ref(&batch));
    let kinds = [
        (
            Mode::Chunk,
            Split::Entity { fractions: "train=0.6,validation=0.2,test=0.2".parse().unwrap(), seed: 11, folds: Some(3) },
        ),
        (Mode::Sliding, Split::Temporal { cutoffs: "validation=25,test=33".parse().unwrap() }),
        (Mode::Prefix, Split::LeaveLast { counts: "validation=2,test=1".parse().unwrap() }),
    ];
    for (k, (mode, split)) in kinds.into_iter().enumerate() {
        let mut spec = base_spec(5);
        spec.mode = mode;
        spec.stride = (mode == Mode::Sliding).then_some(1);
        spec.split = Some(split.clone());
        spec.target_mask = true;
        let out_root = fixture.output_location(&format!("splits_out_{k}"));
        let ran = run(warehouse, &input, &out_root, &spec, false);
        let reports = ran.unwrap_or_else(|e| panic!("{split:?}: {e}"));
        let want = reference::sequence_outputs(&spec, std::slice::from_ref(&batch)).unwrap();
        let folders: Vec<String> = split.names().iter().map(|name| format!("{name}_sequenced_5")).collect();
        let mut listed = fixture.list(&out_root);
        listed.sort();
        let mut expected_folders = folders.clone();
        expected_folders.sort();
        assert_eq!(listed, expected_folders, "{split:?}");
        assert_eq!(reports[0].splits.len(), folders.len());
        let mut runs = std::collections::BTreeSet::new();
        for ((folder, (name, want)), report) in folders.iter().zip(want).zip(&reports[0].splits) {
            let out = fixture.read_output(&seqhouse_core::join_location(&out_root, folder));
            let recorded = out.manifest.split.clone().expect("a split's manifest names its split");
            assert_eq!(Some(&recorded.name), name.as_ref());
            assert_eq!(&report.name, &recorded.name);
            runs.insert(recorded.run);
            assert!(!want.is_empty(), "{folder}: the case must produce windows");
            let names: Vec<&str> = out.manifest.columns.iter().map(|c| c.name.as_str()).collect();
            let has_fold = split.folds().is_some() && folder == &folders[0];
            assert_eq!(names.contains(&seqhouse_core::spec::FOLD), has_fold, "{folder}: {names:?}");
            assert!(names.contains(&seqhouse_core::spec::TARGET_MASK) && !names.iter().any(|n| n.starts_with("__")));
            let counts = &out.manifest.counts;
            assert_eq!(counts.windows, want.len() as u64, "{folder}: the manifest counts the split's windows");
            assert_eq!(sorted(reference::rows_of(&spec, &out.batches)), sorted(want), "{split:?}: {folder}");
            assert!(counts.splits.iter().all(|s| s.leaks == Default::default()), "{folder}");
            let split_counts = counts.splits.iter().find(|s| Some(&s.name) == name.as_ref()).expect("its counts");
            assert_eq!(split_counts.windows, counts.windows, "{folder}");
            // Every sequenced event is the target of exactly one split.
            let targets: u64 = counts.splits.iter().map(|s| s.target_events).sum();
            assert_eq!(targets, counts.sequenced_rows, "{folder}");
        }
        assert_eq!(runs.len(), 1, "the splits of one run name one run");
    }
}

/// The manifest carries the spec, the files read and counts that agree with the parts.
pub fn manifest_describes_the_job(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batch = events(110, 16);
    let input = fixture.put_parquet("manifest", "events.parquet", std::slice::from_ref(&batch));
    let output = fixture.output_location("manifest_out");
    let spec = base_spec(9);
    let reports = run(warehouse, &input, &output, &spec, false).unwrap();
    let out = fixture.read_output(&output);
    let m = &out.manifest;
    assert_eq!(m.format, seqhouse_core::manifest::MANIFEST_FORMAT);
    assert_eq!(m.engine, warehouse.name());
    assert_eq!(m.spec, spec);
    assert_eq!(m.input_files.len(), 1);
    assert_eq!(m.input_files[0].rows, 110);
    assert_eq!(m.counts.input_rows, 110);
    let want = reference::sequence(&spec, &[batch]).unwrap();
    assert_eq!(m.counts.windows, want.len() as u64);
    assert_eq!(m.counts.entities, 7);
    assert_eq!(m.parts.iter().map(|p| p.rows).sum::<u64>(), want.len() as u64);
    assert_eq!(reports[0].stats, m.counts);
    let mut expected: Vec<String> = m.parts.iter().map(|p| p.path.clone()).collect();
    expected.push(seqhouse_core::MANIFEST_FILE.to_string());
    expected.sort();
    assert_eq!(out.entries, expected, "the output holds the parts and the manifest, nothing else");
}

/// The same input and spec give the same rows in the same order.
pub fn same_input_same_output(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("determinism", "events.parquet", &[events(130, 17)]);
    let mut spec = base_spec(5);
    spec.mode = Mode::Prefix;
    let (a, b) = (fixture.output_location("det_a"), fixture.output_location("det_b"));
    run(warehouse, &input, &a, &spec, false).unwrap();
    run(warehouse, &input, &b, &spec, false).unwrap();
    let (a, b) = (fixture.read_output(&a), fixture.read_output(&b));
    let (rows_a, rows_b) = (reference::rows_of(&spec, &a.batches), reference::rows_of(&spec, &b.batches));
    if warehouse.capabilities().ordered_output {
        assert_eq!(rows_a, rows_b, "same rows in the same order");
        assert_eq!(a.manifest, b.manifest, "same manifest, parts included");
    } else {
        assert_eq!(sorted(rows_a), sorted(rows_b), "same rows");
        assert_eq!((&a.manifest.spec, &a.manifest.counts), (&b.manifest.spec, &b.manifest.counts));
    }
}

/// A log with many consecutive repeats: 6 users, `ts` unique per user (so the order is the same
/// on every engine), `item` in 0..3 and `correct` 0, 1 or null, `seen_ms` the event's time in
/// milliseconds (null on every 23rd row), `day` a date; users 4 and 5 have few events.
pub fn repeating_events(seed: u64) -> RecordBatch {
    let mut rng = Lcg(seed);
    let (mut user, mut ts, mut item) = (Vec::<i64>::new(), Vec::<i64>::new(), Vec::<i32>::new());
    let (mut correct, mut seen, mut day) = (Vec::<Option<i8>>::new(), Vec::<Option<i64>>::new(), Vec::<i32>::new());
    let mut clock = [0i64; 6];
    for r in 0..260 {
        // Users 4 and 5 get about one event in 40.
        let u = match rng.next(40) {
            0 => 4,
            1 => 5,
            _ => rng.next(4) as usize,
        };
        clock[u] += 1 + rng.next(5) as i64;
        user.push(u as i64 * 10 + 1);
        ts.push(clock[u]);
        item.push(rng.next(3) as i32);
        correct.push(match rng.next(5) {
            0 => None,
            v => Some((v % 2) as i8),
        });
        seen.push((r % 23 != 7).then(|| 1_700_000_000_000 + clock[u] * 1_500 + rng.next(1000) as i64));
        day.push(19_000 + (clock[u] / 4) as i32);
    }
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user", Arc::new(Int64Array::from(user))),
        ("ts", Arc::new(Int64Array::from(ts))),
        ("item", Arc::new(Int32Array::from(item))),
        ("correct", Arc::new(Int8Array::from(correct))),
        ("seen_ms", Arc::new(Int64Array::from(seen))),
        ("day", Arc::new(Date32Array::from(day))),
        ("score", Arc::new(Float64Array::from_iter_values((0..260).map(|i| i as f64 / 4.0)))),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// `--dedupe-consecutive`, `--min-events` and `--time-delta` (over integers, dates and a
/// millisecond timestamp in seconds, milliseconds and microseconds, with a pad, a fill and
/// windows that start mid-history), alone and together, unsplit and split: the windows equal
/// the reference's, and the manifest counts what each filter dropped.
pub fn filters_and_time_deltas_match_the_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    use seqhouse_core::split::Split;
    // `seen_ms` also as a millisecond timestamp, nulls included: its gaps in seconds truncate.
    let batch = repeating_events(31);
    let seen = batch.column_by_name("seen_ms").unwrap();
    let seen_at = arrow::compute::cast(seen, &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None));
    let mut columns: Vec<(String, ArrayRef)> =
        batch.schema().fields().iter().map(|f| f.name().clone()).zip(batch.columns().iter().cloned()).collect();
    columns.push(("seen_at".to_string(), seen_at.unwrap()));
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let input = fixture.put_parquet("filters", "events.parquet", std::slice::from_ref(&batch));
    let base = |n: usize| {
        SequenceSpec::new(
            vec!["user".into()],
            vec!["ts".into()],
            vec![feature("item", Some("-1")), feature("correct", Some("-1"))],
            n,
        )
    };
    let mut deduped = base(6);
    deduped.dedupe_consecutive = true;
    let mut small = base(4);
    small.min_events = Some(15);
    small.mode = Mode::Last;
    let mut gaps = base(5);
    gaps.mode = Mode::Sliding;
    gaps.stride = Some(3);
    gaps.padding = Padding::Pre;
    gaps.features.push(feature("gap", Some("-7")));
    gaps.features.insert(0, feature("days", None));
    gaps.features.extend([feature("waited", None), feature("waited_ms", None), feature("waited_us", Some("-1"))]);
    gaps.time_deltas = ["gap=seen_ms", "days=day", "waited=seen_at", "waited_ms=seen_at:ms", "waited_us=seen_at:us"]
        .iter()
        .map(|delta| delta.parse().unwrap())
        .collect();
    gaps.fill_null = vec!["days=0".parse().unwrap()];
    let mut all = gaps.clone();
    all.dedupe_consecutive = true;
    all.min_events = Some(15);
    all.target_mask = true;
    let mut split = all.clone();
    split.mode = Mode::Prefix;
    split.stride = None;
    split.split = Some(Split::LeaveLast { counts: "validation=1,test=1".parse().unwrap() });

    for (k, spec) in [deduped, small, gaps, all, split].into_iter().enumerate() {
        let out_root = fixture.output_location(&format!("filters_out_{k}"));
        let reports = run(warehouse, &input, &out_root, &spec, false).unwrap_or_else(|e| panic!("case {k}: {e}"));
        let want = reference::sequence_outputs(&spec, std::slice::from_ref(&batch)).unwrap();
        let folders: Vec<String> = match &spec.split {
            Some(split) => {
                split.names().iter().map(|name| format!("{name}_sequenced_{}", spec.sequence_length)).collect()
            }
            None => vec![String::new()],
        };
        assert_eq!(reports.len(), 1);
        for (folder, (_, want)) in folders.iter().zip(want) {
            let location =
                if folder.is_empty() { out_root.clone() } else { seqhouse_core::join_location(&out_root, folder) };
            let out = fixture.read_output(&location);
            assert!(!want.is_empty(), "case {k} {folder}: the case must produce windows");
            assert_eq!(sorted(reference::rows_of(&spec, &out.batches)), sorted(want), "case {k} {folder}");
            assert_eq!(out.manifest.spec, spec, "case {k}: the manifest records the options");
            let counts = &out.manifest.counts;
            let (duplicates, small_entities, small_rows) = filter_counts(&spec, &batch);
            assert_eq!(counts.dropped_duplicate_rows, spec.dedupe_consecutive.then_some(duplicates), "case {k}");
            assert_eq!(counts.dropped_min_events_entities, spec.min_events.map(|_| small_entities), "case {k}");
            assert_eq!(counts.dropped_min_events_rows, spec.min_events.map(|_| small_rows), "case {k}");
            assert_eq!(counts.sequenced_rows, 260 - duplicates - small_rows, "case {k}");
            if spec.min_events.is_some() {
                assert!(small_entities == 2 && small_rows > 0, "case {k}: users 4 and 5 are dropped");
            }
            if spec.dedupe_consecutive {
                assert!(duplicates > 20, "case {k}: the log repeats often ({duplicates})");
            }
        }
    }
}

/// The filters' counts over `batch`, the plain way: (consecutive duplicates, entities below
/// `--min-events`, their rows after deduplication).
fn filter_counts(spec: &SequenceSpec, batch: &RecordBatch) -> (u64, u64, u64) {
    let user = batch.column_by_name("user").unwrap();
    let ts = batch.column_by_name("ts").unwrap();
    let features: Vec<&ArrayRef> = spec.input_features().map(|f| batch.column_by_name(&f.name).unwrap()).collect();
    let mut rows: Vec<usize> = (0..batch.num_rows()).collect();
    rows.sort_by_key(|&r| (reference::value_at(user, r), reference::value_at(ts, r)));
    let mut per_user: std::collections::BTreeMap<Option<Value>, u64> = Default::default();
    let mut duplicates = 0;
    for (p, &r) in rows.iter().enumerate() {
        let previous =
            p.checked_sub(1).map(|q| rows[q]).filter(|&q| reference::value_at(user, q) == reference::value_at(user, r));
        let repeat =
            previous.is_some_and(|q| features.iter().all(|f| reference::value_at(f, q) == reference::value_at(f, r)));
        if spec.dedupe_consecutive && repeat {
            duplicates += 1;
        } else {
            *per_user.entry(reference::value_at(user, r)).or_insert(0) += 1;
        }
    }
    let min = spec.min_events.unwrap_or(0) as u64;
    let small: Vec<u64> = per_user.values().copied().filter(|&n| n < min).collect();
    (duplicates, small.len() as u64, small.iter().sum())
}

/// A time delta over a column that holds no times, or named like an input column, is refused
/// before anything is written, naming the option and the column.
pub fn bad_time_delta_is_named(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let input = fixture.put_parquet("badgap", "events.parquet", &[repeating_events(5)]);
    for (option, words) in [("gap=score", ["score", "Float64"]), ("item=ts", ["item", "input column"])] {
        let output = fixture.output_location("badgap_out");
        let mut spec = base_spec(4);
        spec.order_by = vec!["ts".into()];
        let delta: seqhouse_core::TimeDelta = option.parse().unwrap();
        if !spec.features.iter().any(|f| f.name == delta.name) {
            spec.features.push(feature(&delta.name, None));
        }
        spec.time_deltas = vec![delta];
        let message = match run(warehouse, &input, &output, &spec, false) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{option}: a bad time delta must fail"),
        };
        assert!(words.iter().all(|w| message.contains(w)) && message.contains("time_delta"), "{option}: {message}");
        assert!(fixture.list(&output).is_empty(), "{option}: nothing is left at the output");
    }
}

/// `--session-gap` with `--min-session-length`, alone, with the other filters and gaps, with
/// every kind of split (leave-last with target masks, temporal, by entity) and over integer,
/// date and timestamp clocks: windows never cross a session, `session_index` numbers an
/// entity's kept sessions and `sequence_index` the windows within one, and the manifest
/// counts the sessions and what they dropped.
pub fn sessions_match_the_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    use seqhouse_core::split::Split;
    let batch = with_minute_clock(&repeating_events(43));
    let input = fixture.put_parquet("sessions", "events.parquet", std::slice::from_ref(&batch));
    let mut plain = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], vec![feature("item", Some("-1"))], 4);
    plain.session_gap = Some("3".into());
    let mut shortest = plain.clone();
    shortest.min_session_length = Some(3);
    shortest.mode = Mode::Sliding;
    shortest.stride = Some(2);
    let mut all = shortest.clone();
    all.dedupe_consecutive = true;
    all.min_events = Some(15);
    all.features.push(feature("gap", None));
    all.time_deltas = vec!["gap=ts".parse().unwrap()];
    let mut split = all.clone();
    leave_last_in_prefixes(&mut split, "test=2");
    // The same sessions over a timestamp clock (`at` is `ts` minutes), in time periods.
    let mut timed = shortest.clone();
    timed.order_by = vec!["at".into()];
    timed.session_gap = Some("3m".into());
    timed.mode = Mode::Chunk;
    timed.stride = None;
    timed.split = Some(Split::Temporal { cutoffs: "test=1970-01-01T00:40:00".parse().unwrap() });
    // A session per day, where many events share one: ties never cut a session.
    let mut dated = plain.clone();
    dated.order_by = vec!["day".into(), "ts".into()];
    dated.session_gap = Some("0".into());
    dated.mode = Mode::Last;
    dated.split = Some(Split::Entity { fractions: "train=0.6,test=0.4".parse().unwrap(), seed: 7, folds: None });
    for (k, spec) in [plain, shortest, all, split, timed, dated].into_iter().enumerate() {
        let out_root = fixture.output_location(&format!("sessions_out_{k}"));
        run(warehouse, &input, &out_root, &spec, false).unwrap_or_else(|e| panic!("case {k}: {e}"));
        let want = reference::sequence_outputs(&spec, std::slice::from_ref(&batch)).unwrap();
        for (name, want) in want {
            let location = output_of(&out_root, name.as_deref(), spec.sequence_length);
            let out = fixture.read_output(&location);
            let rows = reference::rows_of(&spec, &out.batches);
            assert!(rows.iter().any(|r| r.session.unwrap() > 1), "case {k}: entities have several sessions");
            assert_eq!(sorted(rows), sorted(want), "case {k} {name:?}");
            let names: Vec<&str> = out.manifest.columns.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names[1..3], ["session_index", "sequence_index"], "case {k}");
            let counts = &out.manifest.counts;
            assert!(counts.sessions.unwrap() > counts.entities, "case {k}: {counts:?}");
            assert_eq!(counts.dropped_short_sessions.is_some(), spec.min_session_length.is_some(), "case {k}");
            if spec.min_session_length.is_some() {
                assert!(counts.dropped_short_sessions.unwrap() > 0, "case {k}: short sessions are dropped");
            }
            let dropped =
                [counts.dropped_duplicate_rows, counts.dropped_short_session_rows, counts.dropped_min_events_rows];
            assert_eq!(counts.sequenced_rows + dropped.iter().flatten().sum::<u64>(), counts.input_rows, "case {k}");
        }
        // The counts, against a recount of the reference's sessions: every engine counts the
        // same sessions and drops the same short ones.
        let recount = reference::session_counts(&spec, std::slice::from_ref(&batch));
        let counts =
            fixture.read_output(&output_of(&out_root, spec.split.as_ref().map(|s| s.names()[0]), 4)).manifest.counts;
        assert_eq!(
            (counts.sessions, counts.dropped_short_sessions, counts.dropped_short_session_rows),
            recount,
            "case {k}"
        );
    }
}

/// `batch` (of [`repeating_events`]) with a column `at`: `ts` as minutes since the epoch, a
/// millisecond timestamp.
pub fn with_minute_clock(batch: &RecordBatch) -> RecordBatch {
    let ts = batch.column_by_name("ts").unwrap().as_any().downcast_ref::<Int64Array>().unwrap();
    let at = arrow::array::TimestampMillisecondArray::from_iter_values(ts.values().iter().map(|t| t * 60_000));
    let mut columns: Vec<(String, ArrayRef)> =
        batch.schema().fields().iter().map(|f| f.name().clone()).zip(batch.columns().iter().cloned()).collect();
    columns.push(("at".to_string(), Arc::new(at)));
    RecordBatch::try_from_iter(columns).unwrap()
}

/// [`repeating_events`] with a string column `tag` whose values after `ts` 40 (the test
/// period of a temporal split there) are mostly new, and a third of whose values are null.
fn tagged_events(seed: u64) -> RecordBatch {
    let batch = repeating_events(seed);
    let ts = batch.column_by_name("ts").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
    let item = batch.column_by_name("item").unwrap().as_any().downcast_ref::<Int32Array>().unwrap().clone();
    let tags: Vec<Option<String>> = (0..batch.num_rows())
        .map(|r| {
            let (t, i) = (ts.value(r), item.value(r) as i64);
            match (t * 7 + i) % 9 {
                0..=2 => None,
                k if t > 40 && k > 5 => Some(format!("late-{k}")),
                k => Some(format!("t{}", (k * k) % 5)),
            }
        })
        .collect();
    let mut columns: Vec<(String, ArrayRef)> =
        batch.schema().fields().iter().map(|f| f.name().clone()).zip(batch.columns().iter().cloned()).collect();
    columns.push(("tag".to_string(), Arc::new(arrow::array::StringArray::from(tags))));
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The vocabulary of `feature` an output's manifest lists, read back: `(value, id, count)`
/// rows in id order, after checking the file's digest against the manifest's.
fn vocab_rows(out: &crate::Output, feature: &str) -> Vec<(Value, i64, i64)> {
    use arrow::array::AsArray;
    let k = out.manifest.vocabularies.iter().position(|v| v.feature == feature).expect("vocabulary listed");
    let entry = &out.manifest.vocabularies[k];
    let bytes = &out.vocab_files[k];
    assert_eq!(seqhouse_core::manifest::VocabularyFile::digest(bytes), entry.sha256, "{feature}: digest");
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone()))
            .unwrap()
            .build()
            .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let ids = batch.column(0).as_primitive::<arrow::datatypes::Int64Type>();
        let counts = batch.column(2).as_primitive::<arrow::datatypes::Int64Type>();
        for r in 0..batch.num_rows() {
            rows.push((reference::value_at(batch.column(1), r).unwrap(), ids.value(r), counts.value(r)));
        }
    }
    assert_eq!(rows.len() as u64, entry.values, "{feature}: the manifest counts its values");
    rows
}

/// `--vocab` over an integer and a string feature, with min_count, max_size, unsplit and
/// split (a temporal split whose test period holds values train never saw, and leave-last
/// with a target mask): the ids equal the reference's, every split's output carries the same
/// vocabulary file, fitted on the first split. The SQL engines count in the engine and rank
/// in seqhouse, so every engine writes the same vocabulary files, byte for byte.
pub fn vocabularies_match_the_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    use seqhouse_core::split::Split;
    let batch = tagged_events(47);
    let input = fixture.put_parquet("vocab", "events.parquet", std::slice::from_ref(&batch));
    let mut plain = SequenceSpec::new(
        vec!["user".into()],
        vec!["ts".into()],
        vec![feature("item", None), feature("tag", Some("0")), feature("correct", Some("-1"))],
        5,
    );
    plain.vocab = vec!["item".parse().unwrap(), "tag".parse().unwrap()];
    let mut bounded = plain.clone();
    bounded.vocab = vec!["tag:min_count=12:max_size=3".parse().unwrap()];
    bounded.mode = Mode::Sliding;
    bounded.stride = Some(2);
    bounded.padding = Padding::Pre;
    let mut temporal = plain.clone();
    temporal.split = Some(Split::Temporal { cutoffs: "test=40".parse().unwrap() });
    temporal.dedupe_consecutive = true;
    let mut last = bounded.clone();
    leave_last_in_prefixes(&mut last, "validation=1,test=2");
    for (k, spec) in [plain, bounded, temporal, last].into_iter().enumerate() {
        let out_root = fixture.output_location(&format!("vocab_out_{k}"));
        run(warehouse, &input, &out_root, &spec, false).unwrap_or_else(|e| panic!("case {k}: {e}"));
        let want = reference::sequence_outputs(&spec, std::slice::from_ref(&batch)).unwrap();
        let mut files = Vec::new();
        for (name, want) in want {
            let location = output_of(&out_root, name.as_deref(), spec.sequence_length);
            let out = fixture.read_output(&location);
            assert_eq!(sorted(reference::rows_of(&spec, &out.batches)), sorted(want), "case {k} {name:?}");
            let list = if warehouse.capabilities().fixed_size_lists { "FixedSizeList(5 x " } else { "List(" };
            for vocab in &spec.vocab {
                let column = out.manifest.columns.iter().find(|c| c.name == format!("{}_sequence", vocab.name));
                let data_type = &column.unwrap().data_type;
                assert!(
                    data_type.starts_with(list) && data_type.contains("Int64"),
                    "case {k}: ids are int64: {data_type}"
                );
            }

            let fitted_on: Vec<Option<&str>> =
                out.manifest.vocabularies.iter().map(|v| v.fitted_on.as_deref()).collect();
            let first = spec.split.as_ref().map(|s| s.names()[0]);
            assert!(fitted_on.iter().all(|f| *f == first), "case {k}: {fitted_on:?}");
            assert!(out.entries.iter().any(|e| e == VOCAB_FOLDER), "case {k}: {:?}", out.entries);
            files.push(out.vocab_files.clone());
            for vocab in &spec.vocab {
                let rows = vocab_rows(&out, &vocab.name);
                let ids: Vec<i64> = rows.iter().map(|r| r.1).collect();
                assert_eq!(ids, (3..3 + rows.len() as i64).collect::<Vec<_>>(), "case {k}: dense ids from 3");
                assert!(rows.windows(2).all(|w| (w[0].2, &w[1].0) >= (w[1].2, &w[0].0)), "case {k}: ranked");
                if let Some(max) = vocab.max_size {
                    assert_eq!(rows.len() as u64, max, "case {k}");
                }
            }
            if name.as_deref() == Some("test") && k == 2 {
                // The test period's new tags are out of vocabulary there.
                let rows = reference::rows_of(&spec, &out.batches);
                let tag_ids = rows.iter().flat_map(|r| r.features[1].iter().flatten());
                assert!(tag_ids.clone().any(|v| *v == Value::Int(2)), "case {k}: unseen tags get id 2");
            }
        }
        assert!(files.windows(2).all(|w| w[0] == w[1]), "case {k}: every split carries the same vocabulary");
        if k == 0 {
            // Replaced: the new output lists its own vocabulary files, and the old ones are gone,
            // including those of an output an earlier version wrote (its `vocab/` folder is
            // seqhouse's own, so `--overwrite` takes it and leaves none of it behind).
            let before = fixture.read_output(&out_root);
            fixture.put_bytes(
                &format!("vocab_out_{k}"),
                &format!("{LEGACY_VOCAB_FOLDER}/item.parquet"),
                &before.vocab_files[0],
            );
            run(warehouse, &input, &out_root, &spec, true).unwrap();
            assert!(!fixture.list(&out_root).iter().any(|e| e == LEGACY_VOCAB_FOLDER), "the old vocab/ folder is gone");
            let after = fixture.read_output(&out_root);
            assert_eq!(after.vocab_files, before.vocab_files, "the same vocabularies");
            assert_eq!(
                sorted(reference::rows_of(&spec, &after.batches)),
                sorted(reference::rows_of(&spec, &before.batches))
            );
            let listed: Vec<&str> = after.manifest.vocabularies.iter().map(|v| v.path.as_str()).collect();
            let vocab_folder = seqhouse_core::join_location(&out_root, VOCAB_FOLDER);
            let mut present: Vec<String> =
                fixture.list(&vocab_folder).into_iter().map(|f| format!("{VOCAB_FOLDER}/{f}")).collect();
            present.sort();
            let mut listed: Vec<String> = listed.into_iter().map(str::to_string).collect();
            listed.sort();
            assert_eq!(present, listed, "only the new manifest's vocabulary files remain");
        }
    }
}

/// Subsets: the vocabulary is fitted on the first subset and applied, as read from its
/// output, to the next; a value only the second subset holds is out of vocabulary there.
pub fn vocabularies_fitted_on_the_first_subset_apply_to_the_rest(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batch = tagged_events(53);
    let ts = batch.column_by_name("ts").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
    let early = arrow::compute::kernels::cmp::lt_eq(&ts, &Int64Array::new_scalar(40)).unwrap();
    let train = arrow::compute::filter_record_batch(&batch, &early).unwrap();
    let late = arrow::compute::not(&early).unwrap();
    let validation = arrow::compute::filter_record_batch(&batch, &late).unwrap();
    fixture.put_parquet("vocab_subsets/train", "events.parquet", std::slice::from_ref(&train));
    let input = fixture.put_parquet("vocab_subsets/validation", "events.parquet", std::slice::from_ref(&validation));
    let root = input.trim_end_matches("/validation").to_string();
    let mut spec = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], vec![feature("tag", None)], 4);
    spec.vocab = vec!["tag:min_count=2".parse().unwrap()];
    let out_root = fixture.output_location("vocab_subsets_out");
    let request = SequenceRequest {
        input: root,
        output: out_root.clone(),
        subsets: vec!["train".into(), "validation".into()],
        spec: spec.clone(),
        overwrite: false,
    };
    seqhouse_core::run(warehouse, &request, &NoProgress).unwrap();
    let read =
        |subset: &str| fixture.read_output(&seqhouse_core::join_location(&out_root, &format!("{subset}_sequenced_4")));
    let (train_out, validation_out) = (read("train"), read("validation"));
    assert_eq!(train_out.vocab_files, validation_out.vocab_files, "the validation output carries train's vocabulary");
    assert_eq!(validation_out.manifest.vocabularies[0].fitted_on.as_deref(), Some("train"));
    // The reference fits on train alone: train's ids, and validation's under train's vocabulary.
    let ids: std::collections::BTreeMap<Value, i64> =
        vocab_rows(&train_out, "tag").into_iter().map(|(value, id, _)| (value, id)).collect();
    let mut raw = spec.clone();
    raw.vocab.clear();
    let want = reference::sequence(&raw, std::slice::from_ref(&validation)).unwrap();
    let encode = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .map(|mut row| {
                let real = row.sequence_length as usize;
                for (p, value) in row.features[0].iter_mut().enumerate() {
                    let real_position = match spec.padding {
                        Padding::Post => p < real,
                        Padding::Pre => p >= 4 - real,
                    };
                    let id = match (real_position, value.as_ref()) {
                        (false, _) => 0,
                        (true, None) => 1,
                        (true, Some(v)) => ids.get(v).copied().unwrap_or(2),
                    };
                    *value = Some(Value::Int(id));
                }
                row
            })
            .collect()
    };
    let got = reference::rows_of(&spec, &validation_out.batches);
    assert_eq!(sorted(got.clone()), sorted(encode(want)));
    assert!(
        got.iter().flat_map(|r| r.features[0].iter().flatten()).any(|v| *v == Value::Int(2)),
        "late tags are unseen"
    );
    let want_train = reference::sequence(&spec, std::slice::from_ref(&train)).unwrap();
    assert_eq!(sorted(reference::rows_of(&spec, &train_out.batches)), sorted(want_train));
}

/// A small log of events `(user, ts, tag)`, each with its row number as `item`.
fn tag_log(users: &[i64], ts: &[i64], tags: &[&str]) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("user", Arc::new(Int64Array::from(users.to_vec())) as ArrayRef),
        ("ts", Arc::new(Int64Array::from(ts.to_vec()))),
        ("tag", Arc::new(StringArray::from(tags.to_vec()))),
        ("item", Arc::new(Int32Array::from_iter_values(0..users.len() as i32))),
    ])
    .unwrap()
}

/// `--vocab` over timestamps: values a microsecond apart get ids of their own on an engine that
/// reads microseconds, in the reference's order, over millisecond timestamps on every engine
/// (written as ids, so Spark, which would write them back as microseconds, takes them too),
/// and an engine that reads coarser refuses the finer column by name, publishing nothing.
pub fn vocabularies_of_timestamps_are_exact_or_refused(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    use arrow::array::{TimestampMicrosecondArray, TimestampMillisecondArray};
    use arrow::datatypes::TimeUnit;
    let rows = 40i64;
    let user: Vec<i64> = (0..rows).map(|r| r % 3).collect();
    // Four values within one millisecond, and others a millisecond apart, unevenly repeated.
    let micros: Vec<i64> = (0..rows).map(|r| 1_700_000_000_000_000 + (r * r % 7) * 250 + (r % 5 / 3) * 1_000).collect();
    let batch = RecordBatch::try_from_iter([
        ("user", Arc::new(Int64Array::from(user)) as ArrayRef),
        ("ts", Arc::new(Int64Array::from_iter_values(0..rows))),
        ("at_us", Arc::new(TimestampMicrosecondArray::from(micros.clone()))),
        ("at_ms", Arc::new(TimestampMillisecondArray::from_iter_values(micros.iter().map(|m| m / 250)))),
    ])
    .unwrap();
    let input = fixture.put_parquet("vocab_timestamps", "events.parquet", std::slice::from_ref(&batch));
    for (column, unit) in [("at_ms", TimeUnit::Millisecond), ("at_us", TimeUnit::Microsecond)] {
        let mut spec = SequenceSpec::new(vec!["user".into()], vec!["ts".into()], vec![feature(column, None)], 4);
        spec.vocab = vec![column.parse().unwrap()];
        let out_root = fixture.output_location(&format!("vocab_timestamps_{column}"));
        let result = run(warehouse, &input, &out_root, &spec, false);
        // Units are ordered coarse to fine: a unit past the engine's is finer than it reads.
        if unit > warehouse.capabilities().timestamp_unit {
            let message =
                result.err().unwrap_or_else(|| panic!("{column}: a finer timestamp must be refused")).to_string();
            assert!(message.contains(column) && message.contains("vocab"), "{column}: {message}");
            assert!(fixture.list(&out_root).is_empty(), "{column}: nothing is left at the output");
            continue;
        }
        result.unwrap_or_else(|e| panic!("{column}: {e}"));
        let out = fixture.read_output(&out_root);
        let want = reference::sequence(&spec, std::slice::from_ref(&batch)).unwrap();
        assert_eq!(sorted(reference::rows_of(&spec, &out.batches)), sorted(want), "{column}");
        let values = vocab_rows(&out, column);
        assert_eq!(values.len(), 7, "{column}: every distinct value has an id: {values:?}");
    }
}

/// `--k-core` on the string column of `tagged_events`, with and without `--min-events` and
/// `--dedupe-consecutive`, unsplit and split, with sessions, and on logs whose core takes
/// three rounds, one of them through a session left too short: the windows equal the
/// reference's, whose plain loop runs to the fixed point, the counts add up and the session
/// counts equal the reference's, and with `--vocab` (a split case) the vocabulary is fitted
/// on the core's events.
pub fn k_core_matches_the_reference(warehouse: &dyn Warehouse, fixture: &dyn Fixture) {
    let batch = tagged_events(59);
    let input = fixture.put_parquet("k_core", "events.parquet", std::slice::from_ref(&batch));
    let base = SequenceSpec::new(
        vec!["user".into()],
        vec!["ts".into()],
        vec![feature("tag", None), feature("item", Some("-1"))],
        6,
    );
    // Thresholds just above the rarest tags' counts, so each case drops some.
    let tags = batch.column_by_name("tag").unwrap().as_any().downcast_ref::<StringArray>().unwrap();
    let mut counts: std::collections::BTreeMap<&str, u64> = Default::default();
    tags.iter().flatten().for_each(|tag| *counts.entry(tag).or_default() += 1);
    let mut counts: Vec<u64> = counts.into_values().collect();
    counts.sort();
    let mut specs = Vec::new();
    for (k, min_events, dedupe) in
        [(counts[0] + 1, None, false), (counts[1] + 1, Some(40), false), (counts[2] + 1, Some(50), true)]
    {
        let mut spec = base.clone();
        spec.k_core = Some(seqhouse_core::KCore { column: "tag".into(), k });
        spec.min_events = min_events;
        spec.dedupe_consecutive = dedupe;
        specs.push(spec);
    }
    let mut split = specs[1].clone();
    leave_last_in_prefixes(&mut split, "test=2");
    let mut encoded = split.clone();
    encoded.vocab = vec!["tag".parse().unwrap()];
    // Sessions cut where a user pauses for more than 3, the short ones dropped.
    let mut sessions = specs[1].clone();
    sessions.session_gap = Some("3".into());
    sessions.min_session_length = Some(3);
    sessions.min_events = Some(10);
    let mut split_sessions = sessions.clone();
    leave_last_in_prefixes(&mut split_sessions, "test=2");
    specs.extend([split, encoded, sessions, split_sessions]);
    let mut cases: Vec<(SequenceSpec, &RecordBatch, &str)> =
        specs.into_iter().map(|s| (s, &batch, input.as_str())).collect();
    // A log whose core takes three rounds: w drops; then user 2, left with one event; then z,
    // which user 2's event held at 3; then user 3, left with two. Users 1 and 4 remain.
    let rounds = tag_log(
        &[1, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4],
        &(0..14).collect::<Vec<_>>(),
        &["x", "x", "y", "y", "z", "z", "w", "x", "y", "z", "x", "y", "x", "y"],
    );
    let rounds_input = fixture.put_parquet("k_core_rounds", "events.parquet", std::slice::from_ref(&rounds));
    let mut three_rounds = base.clone();
    three_rounds.k_core = Some(seqhouse_core::KCore { column: "tag".into(), k: 3 });
    three_rounds.min_events = Some(3);
    cases.push((three_rounds, &rounds, rounds_input.as_str()));
    // Sessions of at least 3: x drops (2 events); user 1's first session and user 2's are
    // left with two events and drop, which leaves y with none. User 1's z session remains.
    let session_rounds = tag_log(
        &[1, 1, 1, 1, 1, 1, 2, 2, 2],
        &[0, 1, 2, 100, 101, 102, 0, 1, 2],
        &["y", "y", "x", "z", "z", "z", "y", "x", "z"],
    );
    let session_input = fixture.put_parquet("k_core_sessions", "events.parquet", std::slice::from_ref(&session_rounds));
    let mut session_core = base.clone();
    session_core.k_core = Some(seqhouse_core::KCore { column: "tag".into(), k: 3 });
    session_core.session_gap = Some("10".into());
    session_core.min_session_length = Some(3);
    cases.push((session_core, &session_rounds, session_input.as_str()));
    let case_count = cases.len();
    for (k, (spec, batch, input)) in cases.into_iter().enumerate() {
        let out_root = fixture.output_location(&format!("k_core_out_{k}"));
        run(warehouse, input, &out_root, &spec, false).unwrap_or_else(|e| panic!("case {k}: {e}"));
        let want = reference::sequence_outputs(&spec, std::slice::from_ref(batch)).unwrap();
        if k == case_count - 2 {
            let users: Vec<&Value> = want[0].1.iter().map(|row| &row.entity[0]).collect();
            assert_eq!(users, [&Value::Int(1), &Value::Int(4)], "the reference's core");
        }
        if k == case_count - 1 {
            let items: Vec<&Option<Value>> =
                want[0].1.iter().flat_map(|row| &row.features[1][..row.sequence_length as usize]).collect();
            assert_eq!(
                items,
                [&Some(Value::Int(3)), &Some(Value::Int(4)), &Some(Value::Int(5))],
                "the reference's core"
            );
        }
        for (name, want) in want {
            let out = fixture.read_output(&output_of(&out_root, name.as_deref(), spec.sequence_length));
            assert_eq!(sorted(reference::rows_of(&spec, &out.batches)), sorted(want), "case {k} {name:?}");
            let counts = &out.manifest.counts;
            assert!(counts.dropped_k_core_rows.unwrap() > 0, "case {k}: {counts:?}");
            let dropped = [
                counts.dropped_duplicate_rows,
                counts.dropped_k_core_rows,
                counts.dropped_short_session_rows,
                counts.dropped_min_events_rows,
            ];
            assert_eq!(counts.sequenced_rows + dropped.iter().flatten().sum::<u64>(), counts.input_rows, "case {k}");
            if spec.session_gap.is_some() {
                let recount = reference::session_counts(&spec, std::slice::from_ref(batch));
                let sessions = (counts.sessions, counts.dropped_short_sessions, counts.dropped_short_session_rows);
                if name.is_none() {
                    assert_eq!(sessions, recount, "case {k}");
                }
                assert!(recount.1.unwrap() > 0, "case {k}: sessions are dropped short");
            }
        }
    }
}
