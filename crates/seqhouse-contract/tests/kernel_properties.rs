//! Property tests: the core kernel against the naive reference, over random logs and specs.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use proptest::prelude::*;
use seqhouse_contract::reference;
use seqhouse_core::split::Split;
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

/// No split, or one of each kind: over the entity keys, the order column's values (0..6) or
/// the entities' last events.
fn split_strategy() -> impl Strategy<Value = Option<Split>> {
    prop_oneof![
        Just(None),
        (
            prop::sample::select(vec!["train=0.5,test=0.5", "train=0.6,validation=0.2,test=0.2", "a=0.1,b=0.9"]),
            -3i64..3,
            prop::option::of(2u32..6)
        )
            .prop_map(|(fractions, seed, folds)| Some(Split::Entity {
                fractions: fractions.parse().unwrap(),
                seed,
                folds
            })),
        prop::collection::btree_set(-1i64..8, 1..4).prop_map(|cutoffs| {
            let text: Vec<String> = cutoffs.iter().enumerate().map(|(k, c)| format!("s{k}={c}")).collect();
            Some(Split::Temporal { cutoffs: text.join(",").parse().unwrap() })
        }),
        prop::collection::vec(1usize..3, 1..3).prop_map(|counts| {
            let text: Vec<String> = counts.iter().enumerate().map(|(k, c)| format!("h{k}={c}")).collect();
            Some(Split::LeaveLast { counts: text.join(",").parse().unwrap() })
        }),
    ]
}

fn spec_strategy() -> impl Strategy<Value = SequenceSpec> {
    (spec_without_split(), split_strategy(), any::<bool>()).prop_map(|(mut spec, split, target_mask)| {
        spec.split = split;
        spec.target_mask = target_mask;
        spec
    })
}

fn spec_without_split() -> impl Strategy<Value = SequenceSpec> {
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
        let want = reference::sequence_outputs(&spec, &input);
        match Sequencer::prepare(&resolved, input.clone(), &sources, seqhouse_core::Core::Whole) {
            Ok(sequencer) => {
                let want = want.expect("the kernel accepted input the reference rejects");
                prop_assert_eq!(want.len(), resolved.output_schemas.len());
                let stats = sequencer.stats();
                let mut total = 0;
                for (output, (name, want)) in want.iter().enumerate() {
                    let windows = sequencer.output(output);
                    // Materialise in uneven slices: the result must not depend on slicing.
                    let mut out = Vec::new();
                    let mut at = 0;
                    while at < windows.len() {
                        let to = (at + slice).min(windows.len());
                        out.push(windows.build(at..to).unwrap());
                        at = to;
                    }
                    // Rows come ordered by entity, then sequence_index, exactly like the reference.
                    prop_assert_eq!(&reference::rows_of(&spec, &out), want, "output {:?}", name);
                    total += want.len() as u64;
                    if let Some(counts) = stats.splits.get(output) {
                        prop_assert_eq!(counts.windows, want.len() as u64);
                        prop_assert_eq!(&counts.leaks, &Default::default());
                        if spec.target_mask {
                            let marked: i64 = want.iter().flat_map(|r| r.target_mask.clone().unwrap()).map(i64::from).sum();
                            prop_assert_eq!(counts.scored_events, marked as u64);
                        }
                    }
                }
                prop_assert_eq!(stats.windows, total);
                prop_assert_eq!(stats.sequenced_rows + stats.dropped_null_key_rows, events.len() as u64);
                if spec.split.is_some() {
                    // Every sequenced event is the target of exactly one split.
                    let targets: u64 = stats.splits.iter().map(|s| s.target_events).sum();
                    prop_assert_eq!(targets, stats.sequenced_rows);
                }
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
            let s = Sequencer::prepare(&resolved, input.clone(), &["t"; 3], seqhouse_core::Core::Whole).unwrap();
            s.output(0).build(0..s.num_windows()).unwrap()
        })
    };
    let one = run(1);
    assert_eq!(one, run(2));
    assert_eq!(one, run(4));
}
