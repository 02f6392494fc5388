//! Criterion micro-benchmarks of the kernel alone (no I/O): ordering and windowing a Riiid-like
//! log (`Sequencer::prepare`), and materialising the padded windows (`Sequencer::build`), each on
//! 1 and 2 threads. `cargo bench -p seqhouse-core`. The whole job against DuckDB and Polars is
//! `bench/run`.
// criterion_main! generates an undocumented `main`.
#![allow(missing_docs)]

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int8Array, Int32Array, Int64Array, RecordBatch};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use seqhouse_core::{Mode, ResolvedSpec, SequenceSpec, Sequencer};

const ROWS: usize = 1_000_000;

/// Like `gen_events.py`: users with skewed activity, timestamps mostly increasing per user but
/// interleaved across users, a unique row id.
fn log(rows: usize) -> RecordBatch {
    let mut seed = 42u64;
    let mut next = |below: u64| {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) % below
    };
    let users = (rows / 270).max(1) as u64;
    let user: Vec<i64> = (0..rows).map(|_| (next(users) * next(users) / users) as i64).collect();
    let timestamp: Vec<i64> = (0..rows).map(|i| i as i64 * 1000 + next(5000) as i64).collect();
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("user_id", Arc::new(Int64Array::from(user))),
        ("timestamp", Arc::new(Int64Array::from(timestamp))),
        ("row_id", Arc::new(Int64Array::from_iter_values(0..rows as i64))),
        ("content_id", Arc::new(Int32Array::from_iter_values((0..rows).map(|_| next(13_000) as i32)))),
        ("answered_correctly", Arc::new(Int8Array::from_iter_values((0..rows).map(|_| next(2) as i8)))),
        ("elapsed", Arc::new(Float32Array::from_iter_values((0..rows).map(|_| next(30_000) as f32)))),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

fn spec(mode: Mode) -> SequenceSpec {
    let mut spec = SequenceSpec::new(
        vec!["user_id".into()],
        vec!["timestamp".into(), "row_id".into()],
        vec![
            "content_id=-1".parse().unwrap(),
            "answered_correctly=-1".parse().unwrap(),
            "timestamp=-1".parse().unwrap(),
            "elapsed=0".parse().unwrap(),
        ],
        100,
    );
    spec.mode = mode;
    spec.stride = (mode == Mode::Sliding).then_some(10);
    spec
}

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
}

fn kernel(c: &mut Criterion) {
    let batch = log(ROWS);
    let mut group = c.benchmark_group("kernel");
    group.sample_size(10).throughput(Throughput::Elements(ROWS as u64));
    for mode in [Mode::Chunk, Mode::Sliding] {
        let resolved = ResolvedSpec::new(&spec(mode), &batch.schema(), "bench").unwrap();
        for threads in [1, 2] {
            let pool = pool(threads);
            let label = format!("{mode}/{threads}t");
            group.bench_function(BenchmarkId::new("prepare", &label), |b| {
                b.iter(|| {
                    pool.install(|| {
                        Sequencer::prepare(&resolved, vec![batch.clone()], &["bench"], seqhouse_core::Core::Whole)
                            .unwrap()
                    })
                })
            });
            let sequencer =
                Sequencer::prepare(&resolved, vec![batch.clone()], &["bench"], seqhouse_core::Core::Whole).unwrap();
            group.bench_function(BenchmarkId::new("build", &label), |b| {
                b.iter(|| {
                    pool.install(|| {
                        let total = sequencer.num_windows();
                        (0..total)
                            .step_by(10_000)
                            .map(|at| sequencer.output(0).build(at..(at + 10_000).min(total)).unwrap().num_rows())
                            .sum::<usize>()
                    })
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, kernel);
criterion_main!(benches);
