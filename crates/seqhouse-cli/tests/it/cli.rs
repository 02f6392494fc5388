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
