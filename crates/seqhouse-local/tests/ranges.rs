//! Jobs split by entity range, held in memory or spilled to disk, write the same bytes as jobs
//! sequenced whole, for any thread count; spill folders never outlive the job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::{ArrayRef, Int64Array, RecordBatch};
use seqhouse_contract::cases::{edge_case_events, edge_case_specs, events};
use seqhouse_contract::fixture::parquet_bytes;
use seqhouse_core::split::Split;
use seqhouse_core::{
    Error, Mode, NoProgress, NullKeyPolicy, Padding, Progress, SequenceJob, SequenceRequest, SequenceSpec, Warehouse,
};
use seqhouse_local::{LocalConfig, LocalWarehouse, Plan};

/// The ways one job can run.
#[derive(Debug, Clone, Copy)]
enum Run {
    Whole,
    InMemoryRanges,
    Spilled,
}

fn warehouse(run: Run, threads: usize, spill_dir: &Path) -> LocalWarehouse {
    let mut config = LocalConfig { threads: Some(threads), rows_per_part: Some(23), ..LocalConfig::default() };
    config.spill_dir = Some(spill_dir.to_path_buf());
    match run {
        Run::Whole => {}
        // Ranges of about 60 rows: many ranges, several per file, entities of every size.
        Run::InMemoryRanges => config.range_rows = 60,
        // One byte of memory: every job spills, in as many ranges as it has entities (capped).
        Run::Spilled => config.memory_limit = Some(1),
    }
    LocalWarehouse::new(config).unwrap()
}

fn job(input: &Path, output: &Path, spec: &SequenceSpec) -> SequenceJob {
    let request = SequenceRequest {
        input: input.display().to_string(),
        output: output.display().to_string(),
        subsets: Vec::new(),
        spec: spec.clone(),
        overwrite: false,
    };
    request.jobs().unwrap().remove(0)
}

/// Every file of an output folder (and of the splits' folders in it) with its bytes.
fn folder_bytes(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type().unwrap().is_dir() {
            files
                .extend(folder_bytes(&entry.path()).into_iter().map(|(file, bytes)| (format!("{name}/{file}"), bytes)));
        } else {
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
    }
    files
}

/// A log of three files and about 200 users (negative ids too) in two courses, so that ranges
/// cut between entities of both key columns; `ts` ties within a user.
fn write_log(folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    for (file, seed) in [("a.parquet", 1u64), ("b.parquet", 2), ("c/d.parquet", 3)] {
        let batch = events(700, seed);
        let user: ArrayRef = Arc::new(Int64Array::from_iter_values(
            (0..700).map(|i| ((i as i64 * 7919 + seed as i64 * 31) % 211) - 100),
        ));
        let mut columns: Vec<(String, ArrayRef)> =
            batch.schema().fields().iter().map(|f| f.name().clone()).zip(batch.columns().iter().cloned()).collect();
        columns[0].1 = user;
        let path = folder.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, parquet_bytes(&[RecordBatch::try_from_iter(columns).unwrap()])).unwrap();
    }
}

fn specs() -> Vec<(String, SequenceSpec)> {
    let mut specs = Vec::new();
    for (i, mode) in [Mode::Chunk, Mode::Sliding, Mode::Last, Mode::Prefix].into_iter().enumerate() {
        let mut spec = SequenceSpec::new(
            vec!["user".into()],
            // Only `ts`: ties are broken by input order, across files.
            vec!["ts".into()],
            vec!["item=-1".parse().unwrap(), "correct=-1".parse().unwrap(), "tag=none".parse().unwrap()],
            5,
        );
        spec.mode = mode;
        spec.stride = (mode == Mode::Sliding).then_some(2);
        spec.padding = if i % 2 == 0 { Padding::Pre } else { Padding::Post };
        specs.push((format!("user_{mode}"), spec));
    }
    let mut strings_first = specs[0].1.clone();
    strings_first.entity = vec!["course".into(), "user".into()];
    strings_first.order_by = vec!["ts".into(), "row_id".into()];
    strings_first.min_length = 2;
    specs.push(("course_user_chunk".into(), strings_first.clone()));
    // One of each split kind, each with target masks, over both key columns and modes.
    let mut by_entity = strings_first;
    by_entity.split = Some(Split::Entity {
        fractions: "train=0.6,validation=0.2,test=0.2".parse().unwrap(),
        seed: 3,
        folds: Some(4),
    });
    by_entity.target_mask = true;
    specs.push(("split_entity_chunk".into(), by_entity));
    let mut by_time = specs[1].1.clone();
    by_time.split = Some(Split::Temporal { cutoffs: "validation=25,test=33".parse().unwrap() });
    by_time.target_mask = true;
    specs.push(("split_temporal_sliding".into(), by_time));
    let mut by_last = specs[3].1.clone();
    by_last.split = Some(Split::LeaveLast { counts: "validation=1,test=2".parse().unwrap() });
    by_last.target_mask = true;
    specs.push(("split_last_prefix".into(), by_last));
    specs
}

/// The inputs of the tests that run every spec every way, in `dir`.
struct Inputs {
    /// [`write_log`]'s folder.
    log: PathBuf,
    /// One file of the contract's edge cases.
    edge: PathBuf,
    /// An empty spill folder.
    spill: PathBuf,
}

fn inputs(dir: &Path) -> Inputs {
    let inputs = Inputs { log: dir.join("log"), edge: dir.join("edge.parquet"), spill: dir.join("spill") };
    write_log(&inputs.log);
    std::fs::write(&inputs.edge, parquet_bytes(&[edge_case_events()])).unwrap();
    std::fs::create_dir(&inputs.spill).unwrap();
    inputs
}

#[test]
fn split_jobs_write_the_same_bytes_as_whole_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let Inputs { log: input, edge: edge_input, spill } = inputs(dir.path());

    let cases = specs().into_iter().map(|(name, spec)| (name, spec, input.clone()));
    let edge_cases = edge_case_specs().into_iter().map(|(name, spec)| (name, spec, edge_input.clone()));
    for (name, spec, input) in cases.chain(edge_cases) {
        let expected_at = dir.path().join(format!("{name}-whole"));
        warehouse(Run::Whole, 2, &spill).sequence(&job(&input, &expected_at, &spec), &NoProgress).unwrap();
        let expected = folder_bytes(&expected_at);
        // Several parts (23 windows each), so windows of one range span parts and vice versa.
        assert!(name.starts_with("edge") || expected.len() > 3, "{name}: the job should write several parts");
        for (run, threads) in [(Run::InMemoryRanges, 2), (Run::Spilled, 2), (Run::Spilled, 1), (Run::InMemoryRanges, 3)]
        {
            let output = dir.path().join(format!("{name}-{run:?}-{threads}"));
            warehouse(run, threads, &spill).sequence(&job(&input, &output, &spec), &NoProgress).unwrap();
            let got = folder_bytes(&output);
            assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "{name} {run:?}");
            for (file, bytes) in &expected {
                assert!(got[file] == *bytes, "{name}: {file} differs when run {run:?} on {threads} threads");
            }
        }
        assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "{name}: a spill folder was left behind");
    }
}

#[test]
fn plans_follow_the_memory_limit_and_range_size() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("log");
    write_log(&input);
    let spec = specs().remove(0).1;
    let job = job(&input, &dir.path().join("out"), &spec);
    let plan = |run| warehouse(run, 2, dir.path()).plan(&job).unwrap();
    assert_eq!(plan(Run::Whole), Plan::Whole);
    // 2,100 rows in ranges of 60 rows.
    assert_eq!(plan(Run::InMemoryRanges), Plan::InMemory { ranges: 35 });
    assert!(matches!(plan(Run::Spilled), Plan::Spilled { ranges } if ranges >= 2), "{:?}", plan(Run::Spilled));
}

#[test]
fn a_failing_spilled_job_leaves_no_spill_files_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("edge.parquet");
    std::fs::write(&input, parquet_bytes(&[edge_case_events()])).unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let mut spec = edge_case_specs().remove(0).1;
    spec.on_null_key = NullKeyPolicy::Error;
    let output = dir.path().join("out");
    let whole = warehouse(Run::Whole, 2, &spill).sequence(&job(&input, &output, &spec), &NoProgress).unwrap_err();
    let spilled = warehouse(Run::Spilled, 2, &spill).sequence(&job(&input, &output, &spec), &NoProgress).unwrap_err();
    // The same error, naming the column, the count and the file, whichever way the job ran.
    assert!(matches!(&spilled, Error::NullKey { column, count, .. } if column == "user" && *count > 0), "{spilled}");
    assert_eq!(spilled.to_string(), whole.to_string());
    assert!(!output.exists(), "nothing is published");
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "the spill folder is removed");
}

#[test]
fn an_unusable_spill_folder_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("log");
    write_log(&input);
    let missing: PathBuf = dir.path().join("no/such/folder");
    let output = dir.path().join("out");
    let failed = warehouse(Run::Spilled, 2, &missing)
        .sequence(&job(&input, &output, &specs().remove(0).1), &NoProgress)
        .unwrap_err();
    // The cause is kept as data, for a caller that acts on its kind.
    let cause = std::error::Error::source(&failed).and_then(|c| c.downcast_ref::<std::io::Error>());
    assert_eq!(cause.map(std::io::Error::kind), Some(std::io::ErrorKind::NotFound), "{failed:?}");
    let error = failed.to_string();
    assert!(error.contains(&missing.display().to_string()), "{error}");
    // Settings read as their neutral keys here: no front end installed its names.
    assert!(error.contains("spill_dir") && error.contains("memory_limit"), "{error}");
    assert!(!output.exists(), "nothing is published");
}

/// Raises the cancel flag when the job reaches `stage`, as Ctrl-C would at that moment.
struct CancelAt {
    stage: &'static str,
    flag: Arc<AtomicBool>,
}

impl Progress for CancelAt {
    fn stage(&self, name: &str, _total: u64) {
        if name == self.stage {
            self.flag.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_cancelled_job_stops_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("log");
    write_log(&input);
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    // While splitting into spill files, while writing a spilled job, and while writing a whole job.
    for (run, stage) in [(Run::Spilled, "split"), (Run::Spilled, "sequence and write"), (Run::Whole, "write")] {
        let flag = Arc::new(AtomicBool::new(false));
        let warehouse = warehouse(run, 2, &spill).with_cancel_flag(flag.clone());
        let output = dir.path().join(format!("out-{stage}"));
        let progress = CancelAt { stage, flag };
        let error = warehouse.sequence(&job(&input, &output, &specs().remove(0).1), &progress).unwrap_err();
        assert!(matches!(error, Error::Interrupted(_)), "{run:?} at {stage}: {error}");
        assert!(!output.exists(), "{run:?} at {stage}: nothing is published");
        assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "{run:?} at {stage}: spill files are removed");
        let staged: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.contains("seqhouse-tmp"))
            .collect();
        assert!(staged.is_empty(), "{run:?} at {stage}: staging left behind: {staged:?}");
    }
}

/// The windows of each published output of `job` (one, or one per split), each as one batch.
fn published(job: &SequenceJob) -> Vec<RecordBatch> {
    job.outputs()
        .into_iter()
        .map(|(_, output)| {
            let (schema, batches) = seqhouse_local::read_published(Default::default(), &output).unwrap();
            arrow::compute::concat_batches(&schema, &batches).unwrap()
        })
        .collect()
}

/// Windows returned in memory, each output as one batch.
fn in_memory(windows: seqhouse_local::Windows) -> Vec<RecordBatch> {
    windows.outputs.iter().map(|o| arrow::compute::concat_batches(&o.schema, &o.batches).unwrap()).collect()
}

/// `batch` as a stream of small batches, as a reader would hand them over.
fn stream(batch: &RecordBatch) -> impl Iterator<Item = Result<RecordBatch, Error>> + '_ {
    (0..batch.num_rows()).step_by(97).map(|at| Ok(batch.slice(at, 97.min(batch.num_rows() - at))))
}

#[test]
fn windows_returned_in_memory_are_the_published_ones_however_the_job_is_planned() {
    let dir = tempfile::tempdir().unwrap();
    let Inputs { log: input, edge: edge_input, spill } = inputs(dir.path());
    let edge_events = edge_case_events();
    // The log's files as one stream of batches.
    let log_events = {
        let files = ["a.parquet", "b.parquet", "c/d.parquet"].map(|f| {
            let bytes = bytes::Bytes::from(std::fs::read(input.join(f)).unwrap());
            let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(bytes, 1 << 20).unwrap();
            reader.map(Result::unwrap).collect::<Vec<_>>()
        });
        let batches: Vec<RecordBatch> = files.into_iter().flatten().collect();
        arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
    };

    let cases = specs().into_iter().map(|(name, spec)| (name, spec, input.clone(), &log_events));
    let edge_cases = edge_case_specs().into_iter().map(|(name, spec)| (name, spec, edge_input.clone(), &edge_events));
    for (name, spec, input, events) in cases.chain(edge_cases) {
        let published_at = dir.path().join(format!("{name}-published"));
        let publish = job(&input, &published_at, &spec);
        warehouse(Run::Whole, 2, &spill).sequence(&publish, &NoProgress).unwrap();
        let expected = published(&publish);
        let job = job(&input, &dir.path().join("unused"), &spec);
        for (run, threads) in [(Run::Whole, 2), (Run::InMemoryRanges, 2), (Run::Spilled, 2), (Run::Spilled, 1)] {
            let engine = warehouse(run, threads, &spill);
            let from_path = in_memory(engine.sequence_input(&job).unwrap());
            assert!(from_path == expected, "{name}: the input read from its path differs when run {run:?}");
            let windows = engine.sequence_batches(&job, &events.schema(), stream(events), "the data").unwrap();
            assert!(
                windows.outputs.iter().flat_map(|o| &o.batches).all(|b| b.num_rows() > 0),
                "{name}: no empty batches"
            );
            assert_eq!(windows.stats.input_rows, events.num_rows() as u64, "{name} {run:?}");
            let from_batches = in_memory(windows);
            assert!(from_batches == expected, "{name}: the batches differ when run {run:?} on {threads} threads");
        }
        assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "{name}: a spill folder was left behind");
    }
}

#[test]
fn a_failing_staged_stream_names_its_source_and_leaves_no_spill_files() {
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let events = edge_case_events();
    let mut spec = edge_case_specs().remove(0).1;
    spec.on_null_key = NullKeyPolicy::Error;
    let job = job(Path::new("unused"), Path::new("unused"), &spec);
    let failed = |run| {
        warehouse(run, 2, &spill).sequence_batches(&job, &events.schema(), stream(&events), "the data").unwrap_err()
    };
    let whole = failed(Run::Whole);
    for run in [Run::InMemoryRanges, Run::Spilled] {
        let error = failed(run);
        assert!(matches!(&error, Error::NullKey { column, .. } if column == "user"), "{error}");
        // Named as the caller named its data, not by the staging file.
        assert_eq!(error.to_string(), whole.to_string(), "{run:?}");
        assert!(error.to_string().contains("the data"), "{error}");
    }
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "the spill folder is removed");
}
