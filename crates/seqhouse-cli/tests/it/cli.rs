//! The command line itself: help, aliases, the config file, subsets, determinism.

use std::path::{Path, PathBuf};

use crate::util::*;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

#[test]
fn help_documents_every_option_with_an_example() {
    let out = seqhouse_ok(&["sequence", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "--input",
        "--output",
        "--entity",
        "--order-by",
        "--feature",
        "--sequence-length",
        "--mode",
        "--stride",
        "--padding",
        "--min-length",
        "--subsets",
        "--fill-null",
        "--on-null-key",
        "--overwrite",
        "--config",
        "--csv-delimiter",
        "--threads",
        "--compression",
        "--rows-per-part",
        "--memory-limit",
        "--spill-dir",
        "--quiet",
        "--verbose",
        "data-location",
        "s3_data_location",
        "output-location",
        "output_s3_location",
        "sequence_length",
    ] {
        assert!(help.contains(option), "help lacks {option}");
    }
    assert!(help.contains("Examples:") && help.contains("seqhouse sequence --input"), "help has examples");
}

#[test]
fn the_bundled_example_job_runs_from_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // The README's job, with the output redirected; run from the project root like the README.
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"))
        .current_dir(examples().join(".."))
        .args(["sequence", "--config", "examples/pupils.toml", "--output", s(&out), "-q"])
        .status()
        .unwrap();
    assert!(status.success());
    for (subset, pupils) in [("train", 12), ("validation", 4)] {
        let output = read_output(&out.join(format!("{subset}_sequenced_10")));
        assert_eq!(output.manifest.subset.as_deref(), Some(subset));
        assert_eq!(output.manifest.counts.entities, pupils);
        assert_eq!(output.manifest.spec.fill_null.len(), 1);
        assert!(output.manifest.counts.windows > 0);
        assert_eq!(output.manifest.input_files[0].path, "answers.csv");
    }
}

#[test]
fn flags_override_the_config_file_and_aliases_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = examples().join("pupils/train");
    let config = dir.path().join("job.toml");
    std::fs::write(
        &config,
        format!(
            "input = '{}'\noutput = '{}'\nentity = 'pupil_id'\norder-by = ['timestamp']\nfeature = ['exercise_id=-1']\nsequence-length = 4\n",
            s(&input),
            s(&dir.path().join("from_config"))
        ),
    )
    .unwrap();
    seqhouse_ok(&["sequence", "--config", s(&config), "-q"]);
    // The same job by flags, through the aliases pipelines use.
    seqhouse_ok(&[
        "sequence",
        "--data-location",
        s(&input),
        "--output_s3_location",
        s(&dir.path().join("from_flags")),
        "--entity",
        "pupil_id",
        "--order-by",
        "timestamp",
        "--feature",
        "exercise_id=-1",
        "--sequence_length",
        "4",
    ]);
    assert_eq!(folder_bytes(&dir.path().join("from_config")), folder_bytes(&dir.path().join("from_flags")));
    // The flags' aliases are config keys too.
    let aliased = dir.path().join("aliased.toml");
    std::fs::write(
        &aliased,
        format!(
            "data-location = '{}'\noutput_s3_location = '{}'\nentity = 'pupil_id'\norder-by = ['timestamp']\nfeature = ['exercise_id=-1']\nsequence_length = 4\n",
            s(&input),
            s(&dir.path().join("from_aliases"))
        ),
    )
    .unwrap();
    seqhouse_ok(&["sequence", "--config", s(&aliased), "-q"]);
    assert_eq!(folder_bytes(&dir.path().join("from_aliases")), folder_bytes(&dir.path().join("from_flags")));
    // A flag wins over the file.
    seqhouse_ok(&["sequence", "--config", s(&config), "-n", "6", "--output", s(&dir.path().join("override"))]);
    assert_eq!(read_output(&dir.path().join("override")).manifest.spec.sequence_length, 6);
}

#[test]
fn config_file_errors_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("job.toml");
    std::fs::write(&config, "entity = \"user\"\nsequence-lenght = 4\n").unwrap();
    let (code, stderr) = seqhouse_err(&["sequence", "--config", s(&config)]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `sequence-lenght`"), "{stderr}");
    assert!(stderr.contains(&format!("--config {}, line 2:", s(&config))), "the file and line: {stderr}");
    assert!(stderr.contains("did you mean `sequence-length`?"), "the closest key: {stderr}");
    assert!(!stderr.contains("`athena-workgroup`"), "not every key name: {stderr}");
    let (code, stderr) = seqhouse_err(&["sequence", "--config", s(&dir.path().join("missing.toml"))]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read --config") && stderr.contains("missing.toml"), "{stderr}");
}

/// `-v` ends a job with one line of where its time went, in memory and spilled to disk: every
/// phase named, each at most the job's wall time (the summary `bench/run` reads).
#[test]
fn verbose_prints_one_phase_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("movielens-latest-small/ratings.csv");
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    for (k, extra) in [vec![], vec!["--memory-limit", "1MiB", "--spill-dir", s(&spill)]].into_iter().enumerate() {
        let out = dir.path().join(format!("out{k}"));
        let mut args = vec!["sequence", "--input", s(&input), "--output", s(&out), "--entity", "userId"];
        args.extend(["--order-by", "timestamp", "--feature", "movieId", "-n", "20", "-v"]);
        args.extend(extra);
        let stderr = String::from_utf8(seqhouse_ok(&args).stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains("phases: ")).collect();
        assert_eq!(lines.len(), 1, "case {k}: {stderr}");
        let summary = lines[0].split("phases: ").nth(1).unwrap();
        let seconds = |name: &str| -> f64 {
            let after = summary.split(&format!("{name} ")).nth(1).unwrap_or_else(|| panic!("{name} in {summary}"));
            after.split(" s").next().unwrap().parse().unwrap()
        };
        let wall = seconds("wall");
        for phase in ["read", "sort", "window", "write", "spill"] {
            assert!(seconds(phase) <= wall + 0.01, "case {k}: {phase} within the wall time: {summary}");
        }
        assert!(seconds("read") > 0.0 && seconds("write") > 0.0, "case {k}: {summary}");
        assert_eq!(seconds("spill") > 0.0, k == 1, "case {k}: only a spilled job spills: {summary}");
    }
}

#[test]
fn same_bytes_for_any_thread_count_and_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = shared_data().join("movielens-latest-small/ratings.csv");
    let spill = dir.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let run = |threads: &str, extra: &[&str]| {
        let out = dir.path().join(format!("t{threads}-{}", extra.len()));
        let mut args = vec![
            "sequence",
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--entity",
            "userId",
            "--order-by",
            "timestamp",
            "--feature",
            "movieId=0",
            "--feature",
            "rating=0",
            "-n",
            "30",
            "--mode",
            "sliding",
            "--stride",
            "10",
            "--threads",
            threads,
            "--rows-per-part",
            "1000",
            "-q",
        ];
        args.extend(extra);
        seqhouse_ok(&args);
        folder_bytes(&out)
    };
    let one = run("1", &[]);
    assert!(one.len() > 3, "several parts are written");
    assert_eq!(one, run("2", &[]));
    assert_eq!(one, run("3", &[]));
    // A limit far below the input's size: the CSV is split by user and spilled, with the same result.
    assert_eq!(one, run("2", &["--memory-limit", "1MiB", "--spill-dir", s(&spill)]));
    assert_eq!(std::fs::read_dir(&spill).unwrap().count(), 0, "the spill folder is removed");
    let (code, stderr) = seqhouse_err(&[
        "sequence",
        "--input",
        s(&input),
        "--output",
        s(&dir.path().join("never")),
        "--entity",
        "userId",
        "--order-by",
        "timestamp",
        "--feature",
        "rating",
        "-n",
        "5",
        "--memory-limit",
        "lots",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--memory-limit 'lots'"), "{stderr}");
}

#[test]
fn csv_delimiter_and_compression_options() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "user\tt\titem\n1\t2\t30\n1\t1\t20\n2\t1\t10\n").unwrap();
    for codec in ["zstd:9", "snappy", "gzip", "lz4", "none"] {
        let out = dir.path().join(codec.replace(':', "_"));
        seqhouse_ok(&[
            "sequence",
            "--input",
            s(&input),
            "--output",
            s(&out),
            "--entity",
            "user",
            "--order-by",
            "t",
            "--feature",
            "item=-1",
            "-n",
            "2",
            "--csv-delimiter",
            "tab",
            "--compression",
            codec,
            "-q",
        ]);
        let rows = seqhouse_contract::reference::rows_of(&read_output(&out).manifest.spec, &read_output(&out).batches);
        let items: Vec<_> = rows.iter().map(|r| format!("{:?}", r.features[0])).collect();
        assert_eq!(items, ["[Some(Int(20)), Some(Int(30))]", "[Some(Int(10)), Some(Int(-1))]"], "{codec}");
    }
}

/// The shell commands of README's `sh` blocks and of `seqhouse sequence --help`'s examples, each
/// as its arguments from `sequence` on (continued lines joined, comments dropped).
fn documented_commands() -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(examples().join("../README.md")).unwrap();
    let mut text = String::new();
    let mut in_sh = false;
    for line in readme.lines() {
        match line.trim() {
            "```sh" => in_sh = true,
            "```" => in_sh = false,
            _ if in_sh => text.push_str(&format!("{line}\n")),
            _ => {}
        }
    }
    let help = seqhouse_ok(&["sequence", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let examples = help.split("Examples:").nth(1).unwrap().split("Output:").next().unwrap();
    text.push_str(examples);
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .map(|line| line.split('#').next().unwrap().trim())
        .filter_map(|line| {
            let words: Vec<String> = line.split_whitespace().map(String::from).collect();
            let start = words.iter().position(|w| w == "sequence")?;
            (words[..start].iter().any(|w| w == "seqhouse" || w == "--")).then(|| words[start..].to_vec())
        })
        .collect()
}

#[test]
fn every_documented_example_parses() {
    let commands = documented_commands();
    assert!(commands.len() >= 7, "README's and help's examples were found: {commands:?}");
    let dir = tempfile::tempdir().unwrap();
    let stand_in = dir.path().join("job.toml");
    std::fs::write(&stand_in, "input = 'in'\noutput = 'out'\n").unwrap();
    for command in commands {
        // README's commands run from the project root; help's `job.toml` is a stand-in.
        let mut args = vec!["seqhouse".to_string()];
        for (i, arg) in command.iter().enumerate() {
            let config = (i > 0 && command[i - 1] == "--config").then(|| examples().join("..").join(arg));
            args.push(match config {
                Some(path) if path.exists() => s(&path).to_string(),
                Some(_) => s(&stand_in).to_string(),
                None => arg.clone(),
            });
        }
        if let Err(e) = seqhouse_cli::parse(args) {
            panic!("{command:?} does not parse: {e:?}");
        }
    }
}

/// Every config key the CLI has accepted, with a value: the long options and their aliases.
/// Keys are relied on by users' files: this list changes only by adding to it.
const CONFIG_KEYS: &[(&str, &str)] = &[
    ("input", "'/data/in'"),
    ("data-location", "'/data/in'"),
    ("s3_data_location", "'/data/in'"),
    ("output", "'/data/out'"),
    ("output-location", "'/data/out'"),
    ("output_s3_location", "'/data/out'"),
    ("entity", "'user_id,course_id'"),
    ("order-by", "['timestamp', 'row_id']"),
    ("feature", "['skill_id=-1', 'correct']"),
    ("sequence-length", "200"),
    ("sequence_length", "200"),
    ("mode", "'sliding'"),
    ("stride", "2"),
    ("padding", "'pre'"),
    ("min-length", "3"),
    ("subsets", "['train', 'test']"),
    ("split", "'train=0.8,test=0.2'"),
    ("split-seed", "-3"),
    ("folds", "5"),
    ("split-at", "'validation=2024-01-01T00:00:00,test=2024-02-01T00:00:00'"),
    ("split-last", "'validation=1,test=1'"),
    ("target-mask", "true"),
    ("dedupe-consecutive", "true"),
    ("preset", "'pykt'"),
    ("min-events", "5"),
    ("k-core", "'item_id=5'"),
    ("session-gap", "'30m'"),
    ("min-session-length", "2"),
    ("time-delta", "['gap=ts:ms', 'days=day']"),
    ("vocab", "['item:min_count=2', 'tag:max_size=9:min_count=3']"),
    ("vocab-from", "'/models/vocab'"),
    ("fill-null", "['elapsed=0']"),
    ("on-null-key", "'drop'"),
    ("overwrite", "true"),
    ("csv-delimiter", "'tab'"),
    ("threads", "2"),
    ("compression", "'gzip:4'"),
    ("rows-per-part", "1000"),
    ("memory-limit", "'2GiB'"),
    ("spill-dir", "'/scratch'"),
    ("engine", "'athena'"),
    ("athena-workgroup", "'wg'"),
    ("athena-database", "'db'"),
    ("athena-results", "'s3://bucket/results/'"),
    ("athena-table", "'db.events'"),
    ("athena-endpoint", "'http://127.0.0.1:5000'"),
    ("athena-poll-interval", "0.25"),
    ("athena-timeout", "60"),
    ("spark-remote", "'sc://spark:15002'"),
    ("s3-endpoint", "'http://127.0.0.1:9000'"),
    ("s3-region", "'eu-west-1'"),
    ("s3-path-style", "false"),
    ("s3-timeout", "5"),
    ("s3-max-retries", "3"),
];

/// The parsed options, without where they came from.
fn options_of(args: Vec<String>) -> String {
    let cli = seqhouse_cli::parse(std::iter::once("seqhouse".to_string()).chain(args))
        .unwrap_or_else(|e| panic!("does not parse: {e:?}"));
    let seqhouse_cli::Command::Sequence(mut options) = cli.command else { panic!("parsed as `sequence`") };
    options.config = None;
    options.config_origin = None;
    format!("{options:?}")
}

#[test]
fn every_config_key_means_what_its_flag_means() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value) in CONFIG_KEYS {
        let config = dir.path().join("job.toml");
        std::fs::write(&config, format!("{key} = {value}\n")).unwrap();
        let from_file = options_of(vec!["sequence".into(), "--config".into(), s(&config).into()]);
        // The same value as flags: a list is the flag repeated.
        let parsed: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}")).unwrap()["v"].clone();
        let items: Vec<toml::Value> = match parsed {
            toml::Value::Array(items) => items,
            other => vec![other],
        };
        let mut flags = vec!["sequence".to_string()];
        for item in items {
            let text = match item {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => panic!("no such value in CONFIG_KEYS: {other:?}"),
            };
            if ["overwrite", "target-mask", "dedupe-consecutive"].contains(key) {
                flags.push(format!("--{key}"));
            } else {
                flags.push(format!("--{key}={text}"));
            }
        }
        assert_eq!(from_file, options_of(flags), "config key `{key}`");
        assert_ne!(from_file, options_of(vec!["sequence".into()]), "config key `{key}` sets something");
    }
    // Every flag of `sequence` but --config and --explain is a key, by its long name.
    let help = String::from_utf8_lossy(&seqhouse_ok(&["sequence", "--help"]).stdout).into_owned();
    let longs: std::collections::BTreeSet<&str> = help
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .map(|w| w.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).next().unwrap())
        .filter(|w| !w.is_empty() && !["config", "explain", "help", "quiet", "verbose", "version"].contains(w))
        .collect();
    for long in longs {
        assert!(CONFIG_KEYS.iter().any(|(key, _)| *key == long), "--{long} has no config key in CONFIG_KEYS");
    }
}

#[test]
fn every_flag_is_a_setting_and_messages_use_its_flag() {
    use clap::CommandFactory;
    let command = seqhouse_cli::Cli::command();
    let sequence = command.find_subcommand("sequence").unwrap();
    let ids: Vec<&str> = sequence.get_arguments().map(|a| a.get_id().as_str()).collect();
    for setting in seqhouse_core::Setting::ALL {
        let arg = sequence.get_arguments().find(|a| a.get_id() == setting.key());
        let arg = arg.unwrap_or_else(|| panic!("{setting:?} is not an option of `sequence`: {ids:?}"));
        assert_eq!(arg.get_long().unwrap().replace('-', "_"), setting.key(), "{setting:?}");
    }
    for arg in sequence.get_arguments().filter(|a| a.get_long().is_some()) {
        let id = arg.get_id().as_str();
        assert!(seqhouse_core::Setting::ALL.iter().any(|s| s.key() == id), "--{id} is not a Setting");
    }
    // The CLI renders a setting by its flag, in every message the core makes.
    let (_, stderr) = seqhouse_err(&["sequence", "--input", "x", "--output", "y", "--entity", "u", "-n", "4"]);
    assert!(stderr.contains("--order-by"), "{stderr}");
}

#[test]
fn config_paths_are_read_from_the_files_folder() {
    let dir = tempfile::tempdir().unwrap();
    // The bundled job from another working folder gives the same bytes as from the root.
    let from_root = dir.path().join("from_root");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let config = examples().join("pupils.toml").canonicalize().unwrap();
    for (cwd, out) in [(examples().join(".."), &from_root), (elsewhere.clone(), &elsewhere.join("out"))] {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"))
            .current_dir(cwd)
            .args(["sequence", "--config", s(&config), "--output", s(out), "-q"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    // The parts are the same bytes (the manifests differ in the input's path relative to each).
    let part = "train_sequenced_10/part-00000.parquet";
    let same = std::fs::read(from_root.join(part)).unwrap() == std::fs::read(elsewhere.join("out").join(part)).unwrap();
    assert!(same, "the same job from another working folder");

    // A relative path that only the old reading (the working folder) finds stops the run.
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("jobs")).unwrap();
    std::fs::create_dir_all(work.join("data")).unwrap();
    std::fs::copy(examples().join("pupils/train/answers.csv"), work.join("data/answers.csv")).unwrap();
    std::fs::write(
        work.join("jobs/job.toml"),
        "input = 'data'\noutput = 'out'\nentity = 'pupil_id'\norder-by = 'timestamp'\nfeature = 'skill_id'\nsequence-length = 4\n",
    )
    .unwrap();
    let run = |cwd: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_seqhouse"))
            .current_dir(cwd)
            .args(["sequence", "--config", "jobs/job.toml", "-q"])
            .output()
            .unwrap()
    };
    let refused = run(&work);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("jobs/job.toml, line 1: `input` = 'data' is read from the config file's folder"),
        "{stderr}"
    );
    assert!(!work.join("out").exists() && !work.join("jobs/out").exists(), "nothing written");
    // Written relative to the file, it runs, and writes beside the file.
    std::fs::rename(work.join("data"), work.join("jobs/data")).unwrap();
    assert!(run(&work).status.success());
    assert!(work.join("jobs/out/_manifest.json").exists());
}

#[test]
fn errors_name_the_config_key_a_value_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("job.toml");
    let log = examples().join("pupils/train/answers.csv");
    let job = format!("entity = 'pupil_id'\norder-by = 'timestamp'\nfeature = 'skill_id'\ninput = '{}'\n", s(&log));
    let cases: &[(&str, &[&str])] = &[
        ("mode = 'window'\nsequence-length = 4\n", &["line 5: `mode`: unknown mode 'window'"]),
        (
            "sequence-length = 0\n",
            &["from `sequence-length` in --config", "line 5: --sequence-length must be at least 1"],
        ),
        (
            "sequence-length = 4\nmin-length = 9\n",
            &["from `min-length` in --config", "line 6: --min-length must be between"],
        ),
        ("sequence-length = 4\nsubsets = { a = 1 }\n", &["line 6: `subsets` must be a string"]),
        ("sequence-length = [4, 5]\n", &["`sequence-length`"]),
        ("sequence-length = 4\nconfig = 'other.toml'\n", &["line 6: unknown field `config`"]),
    ];
    for (extra, fragments) in cases {
        std::fs::write(&config, format!("{job}{extra}")).unwrap();
        let (code, stderr) = seqhouse_err(&["sequence", "--config", s(&config), "--output", s(&dir.path().join("o"))]);
        assert_eq!(code, 2, "{extra}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        for fragment in *fragments {
            assert!(stderr.contains(fragment), "{extra}: `{fragment}` not in {stderr}");
        }
    }
    // A setting from the file at fault when the engine runs: the message names the key too.
    std::fs::write(&config, format!("{job}sequence-length = 4\noutput = '{}'\n", s(&log))).unwrap();
    let (code, stderr) = seqhouse_err(&["sequence", "--config", s(&config)]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("from `input` in --config") && stderr.contains("line 4") && stderr.contains("lies inside"),
        "{stderr}"
    );
}

/// The feature-preparation flags on MovieLens (integer seconds): the gap is the difference of
/// the timestamps of consecutive kept ratings, filters are counted, and bad values are usage
/// errors in the CLI's words that leave nothing behind.
#[test]
fn feature_preparation_flags_on_movielens() {
    let dir = tempfile::tempdir().unwrap();
    let ratings = shared_data().join("movielens-latest-small/ratings.csv");
    let out = dir.path().join("prepared");
    let common = [
        "sequence",
        "--input",
        s(&ratings),
        "--entity",
        "userId",
        "--order-by",
        "timestamp,movieId",
        "--feature",
        "rating=0",
        "-n",
        "20",
        "-q",
    ];
    let mut args = common.to_vec();
    args.extend([
        "--output",
        s(&out),
        "--feature",
        "timestamp=0",
        "--time-delta",
        "gap=timestamp",
        "--fill-null",
        "gap=-1",
        "--min-events",
        "40",
        "--dedupe-consecutive",
    ]);
    let mut explain = args.clone();
    explain.push("--explain");
    let plan = String::from_utf8_lossy(&seqhouse_ok(&explain).stdout).into_owned();
    let expected = "before windowing, per entity: drop events that repeat the one before (--dedupe-consecutive); then drop entities with fewer than 40 events (--min-events 40); then add the gaps in 'timestamp' as feature 'gap' (--time-delta gap=timestamp)";
    assert!(plan.contains(expected), "{plan}");
    assert!(!out.exists(), "--explain writes nothing");
    seqhouse_ok(&args);
    let output = read_output(&out);
    let counts = &output.manifest.counts;
    let (dropped, small) = (counts.dropped_duplicate_rows.unwrap(), counts.dropped_min_events_entities.unwrap());
    assert!(dropped > 0 && small > 0, "{counts:?}");
    assert_eq!(counts.sequenced_rows, counts.input_rows - dropped - counts.dropped_min_events_rows.unwrap());
    let names: Vec<&str> = output.manifest.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "userId",
            "sequence_index",
            "sequence_length",
            "rating_sequence",
            "timestamp_sequence",
            "gap_sequence",
            "is_pad_sequence"
        ]
    );
    let spec = &output.manifest.spec;
    let rows = seqhouse_contract::reference::rows_of(spec, &output.batches);
    let mut previous: Option<(seqhouse_contract::reference::Value, i64)> = None;
    let mut checked = 0;
    for row in &rows {
        for k in 0..row.sequence_length as usize {
            let Some(seqhouse_contract::reference::Value::Int(ts)) = row.features[1][k] else { panic!("timestamp") };
            let Some(seqhouse_contract::reference::Value::Int(gap)) = row.features[2][k] else { panic!("gap") };
            match &previous {
                Some((user, before)) if *user == row.entity[0] => assert_eq!(gap, ts - before),
                _ => assert_eq!(gap, -1, "a user's first rating has no gap (filled with -1)"),
            }
            previous = Some((row.entity[0].clone(), ts));
            checked += 1;
        }
    }
    assert_eq!(checked as u64, counts.sequenced_rows);

    for (flag, value, words) in [
        ("--time-delta", "gap=timestamp:hours", vec!["--time-delta", "hours"]),
        ("--time-delta", "gap=timestamp:ms", vec!["--time-delta", "its own units"]),
        ("--time-delta", "rating=timestamp", vec!["--time-delta", "input column"]),
        ("--min-events", "0", vec!["--min-events", "at least 1"]),
    ] {
        let bad = dir.path().join("bad");
        let mut args = common.to_vec();
        args.extend(["--output", s(&bad), flag, value]);
        let (code, stderr) = seqhouse_err(&args);
        assert!(code == 2 || code == 1, "{flag} {value}: exit {code}");
        assert!(words.iter().all(|w| stderr.contains(w)), "{flag} {value}: {stderr}");
        assert!(!bad.exists(), "{flag} {value}: nothing is written");
    }
}

/// `--vocab` and `--vocab-from` on MovieLens: every split's output holds the vocabulary file
/// its manifest lists (digest checked), a later run applies it by `--vocab-from`, giving the
/// same ids, and bad values exit 2, naming the flag, with nothing written.
#[test]
fn vocabulary_flags_on_movielens() {
    use seqhouse_contract::reference::Value;
    let dir = tempfile::tempdir().unwrap();
    let ratings = shared_data().join("movielens-latest-small/ratings.csv");
    let common = [
        "sequence",
        "--input",
        s(&ratings),
        "--entity",
        "userId",
        "--order-by",
        "timestamp",
        "--feature",
        "movieId",
        "-n",
        "10",
        "-q",
    ];
    let out = dir.path().join("fitted");
    let mut args = common.to_vec();
    args.extend(["--output", s(&out), "--vocab", "movieId:min_count=5", "--split-last", "test=1"]);
    let mut explain = args.clone();
    explain.push("--explain");
    let plan = String::from_utf8_lossy(&seqhouse_ok(&explain).stdout).into_owned();
    assert!(plan.contains("encode 'movieId' as vocabulary ids, fitted on the first split or subset"), "{plan}");
    seqhouse_ok(&args);
    let train = read_output(&out.join("train_sequenced_10"));
    let test = read_output(&out.join("test_sequenced_10"));
    assert_eq!(train.vocab_files, test.vocab_files, "both splits carry the vocabulary");
    let entry = &train.manifest.vocabularies[0];
    assert_eq!((entry.path.as_str(), entry.fitted_on.as_deref()), ("_vocab/movieId.parquet", Some("train")));
    assert_eq!(seqhouse_core::manifest::VocabularyFile::digest(&train.vocab_files[0]), entry.sha256);
    let bytes = std::fs::read(out.join("train_sequenced_10/_vocab/movieId.parquet")).unwrap();
    assert_eq!(bytes, train.vocab_files[0]);

    // Applied by a later run: the same ids.
    let applied = dir.path().join("applied");
    let train_dir = out.join("train_sequenced_10");
    let mut args = common.to_vec();
    args.extend([
        "--output",
        s(&applied),
        "--vocab",
        "movieId",
        "--vocab-from",
        s(&train_dir),
        "--split-last",
        "test=1",
    ]);
    seqhouse_ok(&args);
    let again = read_output(&applied.join("test_sequenced_10"));
    assert_eq!(again.batches, test.batches);
    assert_eq!(again.vocab_files, test.vocab_files);
    let ids = seqhouse_contract::reference::rows_of(&test.manifest.spec, &test.batches);
    let ids: Vec<&Value> = ids.iter().flat_map(|r| r.features[0].iter().flatten()).collect();
    assert!(ids.contains(&&Value::Int(2)) && ids.contains(&&Value::Int(3)), "unseen and known movies");

    for (extra, words) in [
        (vec!["--vocab", "movieId:min_count=x"], vec!["--vocab", "min_count"]),
        (vec!["--vocab", "rating"], vec!["--vocab", "'rating'", "--feature"]),
        (vec!["--vocab", "movieId", "--fill-null", "movieId=0"], vec!["--fill-null", "id (1)"]),
        (vec!["--vocab", "movieId:max_size=3", "--vocab-from", s(&train_dir)], vec!["--vocab", "--vocab-from"]),
        (vec!["--vocab", "movieId", "--vocab-from", s(dir.path())], vec!["--vocab-from", "movieId.parquet"]),
        (vec!["--vocab-from", s(&train_dir)], vec!["--vocab-from", "--vocab"]),
        (vec!["--k-core", "movieId"], vec!["--k-core", "COL=K"]),
        (vec!["--k-core", "userId=5"], vec!["--k-core", "'userId'", "--feature userId"]),
    ] {
        let bad = dir.path().join("bad");
        let mut args = common.to_vec();
        args.extend(["--output", s(&bad)]);
        args.extend(extra.iter().copied());
        let (code, stderr) = seqhouse_err(&args);
        assert_eq!(code, 2, "{extra:?}: {stderr}");
        assert!(words.iter().all(|w| stderr.contains(w)), "{extra:?}: {stderr}");
        assert!(!bad.exists(), "{extra:?}: nothing is written");
    }
}

/// `seqhouse presets` lists every preset with the options it sets; `--preset` takes them as
/// defaults under explicit flags, and an unknown name is a usage error listing the presets.
#[test]
fn presets_are_listed_and_are_defaults_under_flags() {
    let listed = String::from_utf8_lossy(&seqhouse_ok(&["presets"]).stdout).into_owned();
    for preset in seqhouse_core::preset::PRESETS {
        assert!(listed.lines().any(|l| l == preset.name), "{listed}");
    }
    for words in
        ["--sequence-length 200", "--mode chunk", "--min-length 3", "--mode sliding", "--stride 1", "--target-mask"]
    {
        assert!(listed.contains(words), "{words}: {listed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let data = shared_data().join("assist2015/events.parquet");
    let common = ["sequence", "--input", s(&data), "--entity", "user_id", "--order-by", "log_order", "-q"];
    let by_preset = dir.path().join("preset");
    let mut args = common.to_vec();
    args.extend(["--output", s(&by_preset), "--preset", "pykt-window", "--feature", "skill_id", "-n", "30"]);
    seqhouse_ok(&args);
    let by_flags = dir.path().join("flags");
    let mut args = common.to_vec();
    args.extend(["--output", s(&by_flags), "--feature", "skill_id=-1", "-n", "30", "--mode", "sliding"]);
    args.extend(["--stride", "1", "--target-mask"]);
    seqhouse_ok(&args);
    let (preset, flags) = (read_output(&by_preset), read_output(&by_flags));
    assert_eq!(preset.manifest.spec, flags.manifest.spec, "the preset is its flags, -n given explicitly");
    assert_eq!(preset.batches, flags.batches);

    let bad = dir.path().join("bad");
    let mut args = common.to_vec();
    args.extend(["--output", s(&bad), "--preset", "pykt2", "--feature", "skill_id"]);
    let (code, stderr) = seqhouse_err(&args);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--preset") && stderr.contains("pykt, pykt-window"), "{stderr}");
    assert!(!bad.exists());

    // sasrec: a vocabulary for each feature without a pad, its leave-one-out split unless the
    // job names its own.
    let features = ["--feature", "skill_id", "--feature", "correct=0"];
    let by_preset = dir.path().join("sasrec");
    let mut args = common.to_vec();
    args.extend(["--output", s(&by_preset), "--preset", "sasrec"]);
    args.extend(features);
    seqhouse_ok(&args);
    let by_flags = dir.path().join("sasrec-flags");
    let mut args = common.to_vec();
    args.extend(["--output", s(&by_flags), "-n", "51", "--mode", "last", "--min-length", "2", "--padding", "pre"]);
    args.extend(["--vocab", "skill_id", "--split-last", "validation=1,test=1"]);
    args.extend(features);
    seqhouse_ok(&args);
    for split in ["train", "validation", "test"] {
        let folder = format!("{split}_sequenced_51");
        let (preset, flags) = (read_output(&by_preset.join(&folder)), read_output(&by_flags.join(&folder)));
        assert_eq!(preset.manifest.spec, flags.manifest.spec, "{split}: the preset is its flags");
        assert_eq!(preset.batches, flags.batches, "{split}");
    }
    let own_split = dir.path().join("sasrec-own-split");
    let mut args = common.to_vec();
    args.extend(["--output", s(&own_split), "--preset", "sasrec", "--split-last", "test=2"]);
    args.extend(features);
    seqhouse_ok(&args);
    let names: Vec<_> = std::fs::read_dir(&own_split).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "train and test only: {names:?}");
}
