//! Unit tests of spec validation, value parsing and type widening.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Date32Type, Float32Type, Int8Type, Int64Type, TimeUnit, TimestampMillisecondType};
use seqhouse_core::resolve::{parse_value, unify_types, zero_value};
use seqhouse_core::{Error, FeatureSpec, FillNull, Mode, SequenceSpec, Setting, window_bounds};

fn spec() -> SequenceSpec {
    SequenceSpec::new(vec!["user".into()], vec!["t".into()], vec!["item=-1".parse().unwrap()], 4)
}

/// The message of a spec's validation error, and that it names `setting` as data. No front end
/// installed names in this test process, so settings read as their neutral keys.
fn invalid_setting(spec: &SequenceSpec, setting: Setting) -> String {
    match spec.validate() {
        Err(Error::InvalidSetting { setting: at_fault, message }) => {
            assert_eq!(at_fault, setting, "{message}");
            assert!(!message.contains("--"), "no front end's words in the core: {message}");
            message
        }
        other => panic!("expected InvalidSetting, got {other:?}"),
    }
}

#[test]
fn feature_and_fill_syntax() {
    let f: FeatureSpec = "tag==x".parse().unwrap();
    assert_eq!((f.name.as_str(), f.pad.as_deref()), ("tag", Some("=x")), "only the first '=' splits");
    let f: FeatureSpec = "item".parse().unwrap();
    assert_eq!(f.pad, None);
    assert!("=5".parse::<FeatureSpec>().is_err());
    let fill: FillNull = "x=".parse().unwrap();
    assert_eq!(fill.value, "");
    assert!("x".parse::<FillNull>().is_err());
    assert!("chunky".parse::<Mode>().is_err());
    assert_eq!("SLIDING".parse::<Mode>().unwrap(), Mode::Sliding);
}

#[test]
fn validation_names_the_problem() {
    assert!(spec().validate().is_ok());
    let mut s = spec();
    s.sequence_length = 0;
    assert_eq!(invalid_setting(&s, Setting::SequenceLength), "sequence_length must be at least 1, got 0");
    let mut s = spec();
    s.mode = Mode::Sliding;
    s.stride = Some(5);
    assert_eq!(invalid_setting(&s, Setting::Stride), "stride must be between 1 and sequence_length (4), got 5");
    let mut s = spec();
    s.stride = Some(1);
    assert!(invalid_setting(&s, Setting::Stride).contains("only to mode=sliding"));
    let mut s = spec();
    s.min_length = 5;
    assert!(invalid_setting(&s, Setting::MinLength).starts_with("min_length must be between 1 and"));
    let mut s = spec();
    s.order_by = vec!["user".into()];
    assert!(invalid_setting(&s, Setting::OrderBy).contains("both an entity and an order_by"));
    let mut s = spec();
    s.features.push("item=0".parse().unwrap());
    assert!(invalid_setting(&s, Setting::Feature).contains("names column 'item' twice"));
    let mut s = spec();
    s.entity = vec!["sequence_index".into()];
    assert!(invalid_setting(&s, Setting::Entity).contains("clashes"));
    let mut s = spec();
    s.entity.push("item_sequence".into());
    assert!(invalid_setting(&s, Setting::Feature).contains("clashes"));
    let mut s = spec();
    s.fill_null = vec!["user=0".parse().unwrap()];
    assert!(invalid_setting(&s, Setting::FillNull).contains("not a feature"));
    let mut s = spec();
    s.features.clear();
    assert!(invalid_setting(&s, Setting::Feature).contains("at least one feature"));
}

#[test]
fn split_columns_are_reserved_only_when_asked_for() {
    use seqhouse_core::split::Split;
    let entity_split = |folds| Split::Entity { fractions: "train=0.5,test=0.5".parse().unwrap(), seed: 0, folds };
    // Entities named as the columns a split adds are fine in a job that does not add them.
    let mut s = spec();
    s.entity = vec!["fold".into(), "target_mask".into()];
    assert!(s.validate().is_ok());
    s.split = Some(entity_split(None));
    assert!(s.validate().is_ok());
    s.split = Some(entity_split(Some(5)));
    assert!(invalid_setting(&s, Setting::Entity).contains("'fold' clashes"));
    s.split = None;
    s.target_mask = true;
    assert!(invalid_setting(&s, Setting::Entity).contains("'target_mask' clashes"));
    let mut s = spec();
    for (folds, ok) in [(1, false), (2, true), (100, true), (101, false)] {
        s.split = Some(entity_split(Some(folds)));
        assert_eq!(s.validate().is_ok(), ok, "{folds} folds");
    }
    s.split = Some(entity_split(Some(101)));
    assert_eq!(invalid_setting(&s, Setting::Folds), "folds must be between 2 and 100, got 101");
    // A split's options written back as they were read (the manifest records them so).
    let text = "validation=2024-01-01T00:00:00,test=7";
    let split = Split::Temporal { cutoffs: text.parse().unwrap() };
    let json = serde_json::to_string(&split).unwrap();
    assert_eq!(json, format!(r#"{{"kind":"temporal","cutoffs":"{text}"}}"#));
    assert_eq!(serde_json::from_str::<Split>(&json).unwrap(), split);
}

#[test]
fn pad_values_parse_as_their_type() {
    let v = parse_value(Setting::Feature, "c", "-1", &DataType::Int8).unwrap();
    assert_eq!(v.as_primitive::<Int8Type>().value(0), -1);
    assert!(
        matches!(parse_value(Setting::Feature, "c", "300", &DataType::Int8), Err(Error::BadValue { .. })),
        "out of range"
    );
    assert!(parse_value(Setting::Feature, "c", "1.5", &DataType::Int64).is_err());
    assert!(parse_value(Setting::Feature, "c", "", &DataType::Int64).is_err());
    let v = parse_value(Setting::Feature, "c", " 2.5 ", &DataType::Float32).unwrap();
    assert_eq!(v.as_primitive::<Float32Type>().value(0), 2.5);
    assert!(
        parse_value(Setting::Feature, "c", "NaN", &DataType::Float64)
            .unwrap()
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0)
            .is_nan()
    );
    assert!(parse_value(Setting::Feature, "c", "yes", &DataType::Boolean).is_err());
    assert!(parse_value(Setting::Feature, "c", "1", &DataType::Boolean).unwrap().as_boolean().value(0));
    let v = parse_value(Setting::Feature, "c", " <pad> ", &DataType::Utf8).unwrap();
    assert_eq!(v.as_string::<i32>().value(0), " <pad> ", "strings are verbatim");
    let v = parse_value(Setting::Feature, "c", "1970-01-11", &DataType::Date32).unwrap();
    assert_eq!(v.as_primitive::<Date32Type>().value(0), 10);
    let v = parse_value(Setting::Feature, "c", "-1", &DataType::Date32).unwrap();
    assert_eq!(v.as_primitive::<Date32Type>().value(0), -1);
    let ts = DataType::Timestamp(TimeUnit::Millisecond, None);
    let v = parse_value(Setting::Feature, "c", "1970-01-01T00:00:01", &ts).unwrap();
    assert_eq!(v.as_primitive::<TimestampMillisecondType>().value(0), 1000);
    let v = parse_value(Setting::Feature, "c", "-1", &ts).unwrap();
    assert_eq!(v.as_primitive::<TimestampMillisecondType>().value(0), -1);
    assert!(parse_value(Setting::Feature, "c", "yesterday", &ts).is_err());
    match parse_value(Setting::Feature, "score", "abc", &DataType::Int64) {
        Err(e) => {
            assert_eq!(e.setting_at_fault(), Some(Setting::Feature));
            assert_eq!(
                e.to_string().split(':').next().unwrap(),
                "feature pad value 'abc' for column 'score' does not parse as Int64"
            )
        }
        Ok(_) => panic!("abc is not an Int64"),
    }
}

#[test]
fn zero_pads() {
    assert_eq!(zero_value(&DataType::Int64).unwrap().as_primitive::<Int64Type>().value(0), 0);
    assert_eq!(zero_value(&DataType::Utf8).unwrap().as_string::<i32>().value(0), "");
    assert!(!zero_value(&DataType::Boolean).unwrap().as_boolean().value(0));
    let epoch = zero_value(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))).unwrap();
    assert!(!epoch.is_null(0));
}

#[test]
fn types_widen_only_when_safe() {
    assert_eq!(unify_types(&DataType::Int32, &DataType::Int64), Some(DataType::Int64));
    assert_eq!(unify_types(&DataType::Int64, &DataType::Int8), Some(DataType::Int64));
    assert_eq!(unify_types(&DataType::Int64, &DataType::Float32), Some(DataType::Float64));
    assert_eq!(unify_types(&DataType::Utf8, &DataType::LargeUtf8), Some(DataType::LargeUtf8));
    assert_eq!(unify_types(&DataType::Null, &DataType::Utf8), Some(DataType::Utf8));
    assert_eq!(unify_types(&DataType::Int64, &DataType::Utf8), None);
    assert_eq!(unify_types(&DataType::UInt64, &DataType::Int64), None);
}

#[test]
fn window_bounds_follow_the_definitions() {
    assert_eq!(window_bounds(Mode::Chunk, 7, 3, 3), [(0, 3), (3, 6), (6, 7)]);
    assert_eq!(window_bounds(Mode::Sliding, 7, 3, 2), [(0, 3), (2, 5), (4, 7)]);
    assert_eq!(window_bounds(Mode::Sliding, 8, 3, 2), [(0, 3), (2, 5), (4, 7), (6, 8)]);
    assert_eq!(window_bounds(Mode::Sliding, 2, 3, 1), [(0, 2)], "an entity with <= N events gives one window");
    assert_eq!(window_bounds(Mode::Sliding, 7, 3, 3), window_bounds(Mode::Chunk, 7, 3, 3), "S = N is chunk");
    assert_eq!(window_bounds(Mode::Last, 7, 3, 3), [(4, 7)]);
    assert_eq!(window_bounds(Mode::Last, 2, 3, 3), [(0, 2)]);
    assert_eq!(window_bounds(Mode::Prefix, 4, 2, 2), [(0, 1), (0, 2), (1, 3), (2, 4)]);
}
