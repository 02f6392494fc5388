//! Property tests: the core kernel against the naive reference, over random logs and specs.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use proptest::prelude::*;
use seqhouse_contract::reference;
use seqhouse_core::{
    Error, FeatureSpec, FillNull, Mode, NullKeyPolicy, Padding, ResolvedSpec, SequenceSpec, Sequencer,
};

#[derive(Debug, Clone)]
struct Event {
    entity: Option<i64>,
    group: String,
    order: Option<i64>,
    value: Option<i64>,
    label: Option<String>,
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop::option::weighted(0.95, 0i64..5),
        prop::sample::select(vec!["a", "b", "ä"]),
        prop::option::weighted(0.95, 0i64..6),
        prop::option::weighted(0.8, -50i64..50),
        prop::option::weighted(0.8, "[a-c]{0,3}"),
    )
        .prop_map(|(entity, group, order, value, label)| Event {
            entity,
            group: group.into(),
            order,
            value,
            label,
        })
}

fn spec_strategy() -> impl Strategy<Value = SequenceSpec> {
    (
        1usize..7,
        prop::sample::select(vec![Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix]),
        prop::sample::select(vec![Padding::Post, Padding::Pre]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0usize..100,
        0usize..100,
    )
        .prop_map(|(n, mode, padding, two_keys, fill, drop, stride_pick, min_pick)| {
            let entity = if two_keys { vec!["group".into(), "entity".into()] } else { vec!["entity".into()] };
            let mut spec = SequenceSpec::new(
                entity,
                vec!["order".into()],
                vec![
                    FeatureSpec { name: "value".into(), pad: Some("-1".into()) },
                    FeatureSpec { name: "label".into(), pad: Some("<pad>".into()) },
                    FeatureSpec { name: "entity".into(), pad: None },
                ],
                n,
            );
            spec.mode = mode;
            spec.padding = padding;
            if mode == Mode::Sliding {
                spec.stride = Some(1 + stride_pick % n);
            }
            spec.min_length = 1 + min_pick % n;
            if fill {
                spec.fill_null = vec![FillNull { column: "value".into(), value: "99".into() }];
            }
            spec.on_null_key = if drop { NullKeyPolicy::Drop } else { NullKeyPolicy::Error };
            spec
        })
}

/// Splits the events into batches at the given cut points (input order is preserved).
fn batches(events: &[Event], cuts: &[usize]) -> Vec<RecordBatch> {
    if events.is_empty() {
        return vec![batch_of(events)];
    }
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (events.len() + 1)).collect();
    bounds.push(0);
    bounds.push(events.len());
    bounds.sort();
    bounds.dedup();
    bounds.windows(2).map(|w| batch_of(&events[w[0]..w[1]])).collect()
}

fn batch_of(part: &[Event]) -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("entity", Arc::new(part.iter().map(|e| e.entity).collect::<Int64Array>())),
        ("group", Arc::new(part.iter().map(|e| Some(e.group.clone())).collect::<StringArray>())),
        ("order", Arc::new(part.iter().map(|e| e.order).collect::<Int64Array>())),
        ("value", Arc::new(part.iter().map(|e| e.value).collect::<Int64Array>())),
        ("label", Arc::new(part.iter().map(|e| e.label.clone()).collect::<StringArray>())),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn kernel_matches_reference(
        events in prop::collection::vec(event(), 0..80),
        cuts in prop::collection::vec(0usize..100, 0..4),
        spec in spec_strategy(),
        slice in 1usize..9,
    ) {
        let raw = batches(&events, &cuts);
        let resolved = ResolvedSpec::new(&spec, &raw[0].schema(), "test").unwrap();
        let input: Vec<RecordBatch> = raw.iter().map(|b| resolved.conform(b, "test").unwrap()).collect();
        let sources = vec!["test"; input.len()];
        let want = reference::sequence(&spec, &input);
        match Sequencer::prepare(&resolved, input.clone(), &sources) {
            Ok(sequencer) => {
                let want = want.expect("the kernel accepted input the reference rejects");
                // Materialise in uneven slices: the result must not depend on slicing.
                let mut out = Vec::new();
                let mut at = 0;
                while at < sequencer.num_windows() {
                    let to = (at + slice).min(sequencer.num_windows());
                    out.push(sequencer.build(at..to).unwrap());
                    at = to;
                }
                // Rows come ordered by entity, then sequence_index, exactly like the reference.
                prop_assert_eq!(reference::rows_of(&spec, &out), want.clone());
                prop_assert_eq!(sequencer.stats().windows, want.len() as u64);
                prop_assert_eq!(
                    sequencer.stats().sequenced_rows + sequencer.stats().dropped_null_key_rows,
                    events.len() as u64
                );
            }
            Err(Error::NullKey { column, .. }) => {
                prop_assert_eq!(Err(column), want.map(|_| ()));
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

/// The permutation, and so every output byte, is the same on any number of threads.
#[test]
fn kernel_output_is_independent_of_thread_count() {
    let events: Vec<Event> = (0..5000)
        .map(|i| Event {
            entity: Some((i * 7919) % 37),
            group: ["a", "b"][i as usize % 2].into(),
            order: Some((i * 104729) % 50),
            value: Some(i),
            label: Some(format!("l{}", i % 11)),
        })
        .collect();
    let raw = batches(&events, &[1000, 2500]);
    let spec = SequenceSpec::new(
        vec!["entity".into()],
        vec!["order".into()],
        vec![FeatureSpec { name: "value".into(), pad: None }],
        16,
    );
    let resolved = ResolvedSpec::new(&spec, &raw[0].schema(), "test").unwrap();
    let input: Vec<RecordBatch> = raw.iter().map(|b| resolved.conform(b, "test").unwrap()).collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| {
            let s = Sequencer::prepare(&resolved, input.clone(), &["t"; 3]).unwrap();
            s.build(0..s.num_windows()).unwrap()
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}
