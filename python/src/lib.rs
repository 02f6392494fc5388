//! The native part of the `seqhouse` Python package: a thin binding.
//!
//! Keyword arguments become the command line's flags (snake case to kebab case, values to
//! text) and go through the CLI's one declaration of options (`seqhouse_cli::SequenceArgs`),
//! so every keyword takes exactly the values, defaults and checks of its flag. The jobs run in
//! the same orchestrator and engines as the CLI's. Errors are rendered with Python's names for
//! settings (`sequence_length`, `on_null_key="drop"`) and raised as the classes of
//! `seqhouse.errors`.
// pyo3's `#[pymodule]` and `#[pyfunction]` expand to unsafe FFI glue; this crate writes none.
#![allow(unsafe_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::array::RecordBatchReader;
use arrow::datatypes::SchemaRef;
use arrow::ffi_stream::RecordBatchStreamReader;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table};
use clap::CommandFactory;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use seqhouse_cli::args::Resolved;
use seqhouse_cli::{Cli, Command, ParseError, UsageError};
use seqhouse_core::{JobReport, NoProgress, Setting, SettingNames, SettingValue};
use seqhouse_local::LocalWarehouse;

/// How Python code names settings: by its keyword arguments.
struct PythonNames;

impl SettingNames for PythonNames {
    fn name(&self, setting: Setting) -> String {
        keyword(setting).to_string()
    }

    fn with_value(&self, setting: Setting, value: &str) -> String {
        match (setting, value.split_once('=')) {
            // `--feature skill_id=-1` is `features={"skill_id": -1}` here.
            (Setting::Feature | Setting::FillNull, Some((name, pad))) => {
                format!("{}={{\"{name}\": {pad}}}", keyword(setting))
            }
            // `--vocab item:min_count=5` is `vocab={"item": {"min_count": 5}}`.
            (Setting::Vocab, _) => {
                let mut parts = value.split(':');
                let feature = parts.next().unwrap_or_default();
                let limits: Vec<String> = (parts.filter_map(|part| part.split_once('=')))
                    .map(|(limit, number)| format!("\"{limit}\": {number}"))
                    .collect();
                let limits = if limits.is_empty() { "None".to_string() } else { format!("{{{}}}", limits.join(", ")) };
                format!("{}={{\"{feature}\": {limits}}}", keyword(setting))
            }
            // `--time-delta lag=ts:ms` is `time_delta={"lag": "ts:ms"}`.
            (Setting::TimeDelta, Some((name, column))) => format!("{}={{\"{name}\": \"{column}\"}}", keyword(setting)),
            _ => format!("{}=\"{value}\"", keyword(setting)),
        }
    }
}

/// The keyword of a setting: its key, but `features` for the repeatable `feature`.
fn keyword(setting: Setting) -> &'static str {
    match setting {
        Setting::Feature => "features",
        other => other.key(),
    }
}

/// The setting a keyword stands for.
fn setting_of(name: &str) -> Option<Setting> {
    Setting::ALL.iter().copied().find(|s| keyword(*s) == name)
}

/// What a keyword's value must be, read from its flag's declaration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A repeatable flag: one text, a list of them, or (features, fill_null) a dict name → value.
    List,
    /// `True`/`False`.
    Bool,
    /// A non-negative integer.
    Count,
    /// Any integer.
    Int,
    /// A positive number of seconds.
    Seconds,
    /// Bytes: an integer, or text with a unit (`"2GiB"`).
    Size,
    /// Text, or a path (`os.PathLike`).
    Text,
}

fn kind_of(arg: &clap::Arg) -> Kind {
    use std::any::TypeId;
    let parsed = arg.get_value_parser().type_id();
    match arg.get_action() {
        clap::ArgAction::Append => Kind::List,
        clap::ArgAction::SetTrue => Kind::Bool,
        _ if parsed == TypeId::of::<usize>() => Kind::Count,
        _ if parsed == TypeId::of::<i64>() => Kind::Int,
        _ if parsed == TypeId::of::<bool>() => Kind::Bool,
        _ if parsed == TypeId::of::<Duration>() => Kind::Seconds,
        _ if parsed == TypeId::of::<u64>() => Kind::Size,
        _ => Kind::Text,
    }
}

/// The keyword arguments `names` accept, with their kinds (for the stubs test and TypeErrors).
#[pyfunction]
fn keywords() -> Vec<(String, String)> {
    let command = Cli::command();
    let sequence = command.find_subcommand("sequence").expect("the sequence subcommand");
    Setting::ALL
        .iter()
        .filter_map(|setting| {
            let arg = sequence.get_arguments().find(|a| a.get_id() == setting.key())?;
            Some((keyword(*setting).to_string(), format!("{:?}", kind_of(arg)).to_lowercase()))
        })
        .collect()
}

/// A Python value as the text its flag takes (`True` → `true`, `0.5` → `0.5`).
fn text_of(name: &str, value: &Bound<'_, PyAny>) -> PyResult<String> {
    if value.is_instance_of::<PyBool>() {
        return Ok(if value.extract::<bool>()? { "true" } else { "false" }.to_string());
    }
    if value.is_instance_of::<PyString>() {
        return value.extract();
    }
    if value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>() {
        // repr of a float reads back as the same float.
        return Ok(value.repr()?.to_string());
    }
    if value.hasattr("isoformat")? {
        return value.call_method0("isoformat")?.extract();
    }
    if let Ok(path) = value.py().import("os")?.call_method1("fspath", (value,)) {
        return path.extract();
    }
    Err(PyTypeError::new_err(format!("{name}: {} is not a value seqhouse reads", value.get_type().name()?)))
}

fn type_error(name: &str, expected: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let got = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    PyTypeError::new_err(format!("{name} must be {expected}, got {got}"))
}

/// The flags that keyword arguments stand for; `None` values are left out (the default).
fn flags_of(options: &Bound<'_, PyDict>) -> PyResult<Vec<String>> {
    let command = Cli::command();
    let sequence = command.find_subcommand("sequence").expect("the sequence subcommand");
    let mut flags = Vec::new();
    for (name, value) in options.iter() {
        let name: String = name.extract()?;
        if value.is_none() {
            continue;
        }
        let arg = setting_of(&name)
            .filter(|s| !matches!(s, Setting::Config | Setting::Explain))
            .and_then(|s| sequence.get_arguments().find(|a| a.get_id() == s.key()))
            .ok_or_else(|| PyTypeError::new_err(format!("unexpected keyword argument '{name}'")))?;
        let long = arg.get_long().expect("every option has a long name");
        let flag = |text: String| format!("--{long}={text}");
        match kind_of(arg) {
            // `vocab={"item": {"min_count": 5}, "tag": None}` is `--vocab item:min_count=5 --vocab tag`.
            Kind::List if setting_of(&name) == Some(Setting::Vocab) && value.is_instance_of::<PyDict>() => {
                for (key, item) in value.cast::<PyDict>()?.iter() {
                    let mut text: String =
                        key.extract().map_err(|_| type_error(&name, "a dict of feature names", &value))?;
                    if !item.is_none() {
                        let limits = item.cast::<PyDict>().map_err(|_| {
                            type_error(
                                &name,
                                "a dict of feature names to None or {\"min_count\": K, \"max_size\": M}",
                                &item,
                            )
                        })?;
                        for (limit, number) in limits.iter() {
                            let limit: String =
                                limit.extract().map_err(|_| type_error(&name, "a dict with str keys", &item))?;
                            text.push_str(&format!(":{limit}={}", text_of(&name, &number)?));
                        }
                    }
                    flags.push(flag(text));
                }
            }
            Kind::List => {
                if let Ok(dict) = value.cast::<PyDict>() {
                    for (key, item) in dict.iter() {
                        let key: String =
                            key.extract().map_err(|_| type_error(&name, "a dict of column names", &value))?;
                        flags.push(flag(format!("{key}={}", text_of(&name, &item)?)));
                    }
                } else if value.is_instance_of::<PyString>() {
                    flags.push(flag(value.extract()?));
                } else if value.is_instance_of::<PyList>() || value.is_instance_of::<PyTuple>() {
                    for item in value.try_iter()? {
                        let item = item?;
                        if !item.is_instance_of::<PyString>() {
                            return Err(type_error(&name, "a list of column names", &item));
                        }
                        flags.push(flag(item.extract()?));
                    }
                } else {
                    return Err(type_error(&name, "a column name or a list of them", &value));
                }
            }
            Kind::Bool => {
                if !value.is_instance_of::<PyBool>() {
                    return Err(type_error(&name, "True or False", &value));
                }
                let on: bool = value.extract()?;
                match arg.get_action() {
                    clap::ArgAction::SetTrue if on => flags.push(format!("--{long}")),
                    clap::ArgAction::SetTrue => {}
                    _ => flags.push(flag(on.to_string())),
                }
            }
            Kind::Count => {
                if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
                    return Err(type_error(&name, "an int", &value));
                }
                let count: i64 = value.extract()?;
                if count < 0 {
                    return Err(seqhouse_error(
                        value.py(),
                        "InvalidArgumentError",
                        format!("{name} must be at least 0, got {count}"),
                    ));
                }
                flags.push(flag(count.to_string()));
            }
            Kind::Int => {
                if !value.is_instance_of::<PyInt>() || value.is_instance_of::<PyBool>() {
                    return Err(type_error(&name, "an int", &value));
                }
                flags.push(flag(value.extract::<i64>()?.to_string()));
            }
            Kind::Seconds => {
                let number = value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>();
                if !number || value.is_instance_of::<PyBool>() {
                    return Err(type_error(&name, "a number of seconds", &value));
                }
                flags.push(flag(text_of(&name, &value)?));
            }
            Kind::Size => {
                let ok = (value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>())
                    || value.is_instance_of::<PyString>();
                if !ok {
                    return Err(type_error(&name, "a number of bytes or a size such as \"2GiB\"", &value));
                }
                flags.push(flag(text_of(&name, &value)?));
            }
            // A dict stands for the flag's NAME=VALUE,... text (`split={"train": 0.8, ...}`).
            Kind::Text if value.is_instance_of::<PyDict>() => {
                let dict = value.cast::<PyDict>()?;
                let mut pairs = Vec::with_capacity(dict.len());
                for (key, item) in dict.iter() {
                    let key: String = key.extract().map_err(|_| type_error(&name, "a dict with str keys", &value))?;
                    pairs.push(format!("{key}={}", text_of(&name, &item)?));
                }
                flags.push(flag(pairs.join(",")));
            }
            Kind::Text => {
                let text = value.is_instance_of::<PyString>() || value.hasattr("__fspath__")?;
                // A duration may also be a plain number in the column's units.
                let number = setting_of(&name) == Some(Setting::SessionGap)
                    && value.is_instance_of::<PyInt>()
                    && !value.is_instance_of::<PyBool>();
                if !text && !number {
                    return Err(type_error(&name, "a str", &value));
                }
                flags.push(flag(text_of(&name, &value)?));
            }
        }
    }
    Ok(flags)
}

/// Parses keyword arguments as the CLI parses its flags.
fn parse(py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<Box<seqhouse_cli::SequenceArgs>> {
    let mut argv = vec!["seqhouse".to_string(), "sequence".to_string()];
    argv.extend(flags_of(options)?);
    let cli = match seqhouse_cli::parse(argv) {
        Ok(cli) => cli,
        Err(ParseError::Clap(e)) => {
            return Err(seqhouse_error(py, "InvalidArgumentError", seqhouse_cli::config::clap_message(&e)));
        }
        Err(ParseError::Usage(e)) => return Err(seqhouse_error(py, "InvalidArgumentError", e.0)),
    };
    match cli.command {
        Command::Sequence(args) => Ok(args),
        Command::Presets => unreachable!("the binding parses `sequence` only"),
    }
}

/// Parses keyword arguments and builds the request, validated once.
fn resolve(py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<Resolved> {
    parse(py, options)?.resolve().map_err(|e| to_python(py, &e))
}

/// An instance of `seqhouse.errors.NAME` with `message`.
fn seqhouse_error(py: Python<'_>, class: &str, message: String) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let class = py.import("seqhouse.errors")?.getattr(class)?;
        Ok(PyErr::from_value(class.call1((message.clone(),))?))
    })();
    made.unwrap_or_else(|e| e)
}

/// The class of `seqhouse.errors` for an error, by its kind.
fn class_of(error: &anyhow::Error) -> &'static str {
    use seqhouse_core::Error;
    if error.downcast_ref::<UsageError>().is_some() {
        return "InvalidArgumentError";
    }
    match error.downcast_ref::<Error>() {
        Some(
            Error::InvalidSetting { .. }
            | Error::InvalidRequest(_)
            | Error::BadValue { .. }
            | Error::ColumnNotFound { .. }
            | Error::UnsupportedType { .. }
            | Error::NullKey { .. },
        ) => "InvalidArgumentError",
        Some(Error::InputNotFound { .. } | Error::NoInputFiles { .. }) => "InputNotFoundError",
        Some(Error::OutputExists { .. }) => "OutputExistsError",
        Some(Error::OutputNotOurs { .. }) => "OutputNotOursError",
        Some(Error::OutputLocked { .. }) => "OutputLockedError",
        Some(Error::EngineUnreachable { .. }) => "EngineUnreachableError",
        Some(Error::Interrupted(_)) => "JobInterrupted",
        _ => "SeqhouseError",
    }
}

fn to_python(py: Python<'_>, error: &anyhow::Error) -> PyErr {
    let message = seqhouse_cli::render_error(error);
    let message = message.strip_prefix("invalid request: ").map(str::to_string).unwrap_or(message);
    seqhouse_error(py, class_of(error), message)
}

/// Runs `work` on a thread of its own with the GIL released, checking for Ctrl-C meanwhile: a
/// KeyboardInterrupt raises `cancel` and waits for the engine to stop and clean up, which it
/// reports as `seqhouse.JobInterrupted` (a `KeyboardInterrupt`); a job already past its commit
/// point completes, and the KeyboardInterrupt is raised as it came.
fn run_detached<T: Send>(
    py: Python<'_>,
    cancel: &Arc<AtomicBool>,
    work: impl FnOnce() -> anyhow::Result<T> + Send,
) -> PyResult<T> {
    std::thread::scope(|scope| {
        let (done, finished) = std::sync::mpsc::channel();
        scope.spawn(move || {
            let _ = done.send(work());
        });
        let mut interrupted = None;
        // The receiver goes into each wait and back out: waiting without the GIL needs it Send.
        let mut finished = Some(finished);
        loop {
            let receiver = finished.take().expect("the receiver is back after each wait");
            let (receiver, received) = py.detach(move || {
                let received = receiver.recv_timeout(Duration::from_millis(50));
                (receiver, received)
            });
            finished = Some(receiver);
            match received {
                Ok(result) => {
                    return match (result, interrupted) {
                        (Ok(value), None) => Ok(value),
                        // The signal came after the commit point: the work is complete, and the
                        // caller still gets its KeyboardInterrupt.
                        (Ok(_), Some(signal)) => Err(signal),
                        // Stopped: the engine's Interrupted error (JobInterrupted) or its failure.
                        (Err(e), _) => Err(to_python(py, &e)),
                    };
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.is_none()
                        && let Err(signal) = py.check_signals()
                    {
                        cancel.store(true, Ordering::SeqCst);
                        // Where a test waits to let the job go on, knowing the stop was asked.
                        let _ = seqhouse_storage::failpoint::hit("python.cancelled");
                        interrupted = Some(signal);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(seqhouse_error(py, "SeqhouseError", "internal error: the job's thread died".into()));
                }
            }
        }
    })
}

/// The windows as a `pyarrow.Table`, from Rust buffers without a copy.
fn to_table(py: Python<'_>, schema: SchemaRef, batches: Vec<RecordBatch>) -> PyResult<Py<PyAny>> {
    let table = Table::try_new(batches, schema).map_err(|e| to_python(py, &anyhow::Error::new(e)))?;
    Ok(table.into_pyarrow(py)?.unbind())
}

/// What `seqhouse.sequence` returns: the windows as one table, or for a split job a dict of
/// tables by split name, in the splits' order.
fn windows_object(py: Python<'_>, windows: seqhouse_local::Windows) -> PyResult<Py<PyAny>> {
    let mut outputs = windows.outputs;
    if outputs.len() == 1 && outputs[0].split.is_none() {
        let only = outputs.pop().expect("one output");
        return to_table(py, only.schema, only.batches);
    }
    let dict = PyDict::new(py);
    for output in outputs {
        dict.set_item(output.split.unwrap_or_default(), to_table(py, output.schema, output.batches)?)?;
    }
    Ok(dict.into_any().unbind())
}

/// `seqhouse.sequence` on a path or URL: reads it as the CLI reads `--input`.
#[pyfunction]
fn sequence_path(py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    options.set_item("output", "<in memory>")?;
    let resolved = resolve(py, options)?;
    refuse_unkept_vocabularies(py, options, &resolved)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let engine = LocalWarehouse::new(resolved.local.clone())
        .map_err(|e| to_python(py, &e.into()))?
        .with_cancel_flag(cancel.clone());
    let job = resolved.jobs[0].clone();
    let windows = run_detached(py, &cancel, || Ok(engine.sequence_input(&job)?))?;
    windows_object(py, windows)
}

/// `seqhouse.sequence` on an object exporting the Arrow PyCapsule stream interface.
#[pyfunction]
fn sequence_stream(py: Python<'_>, data: &Bound<'_, PyAny>, options: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    options.set_item("input", "<in memory>")?;
    options.set_item("output", "<in memory>")?;
    let resolved = resolve(py, options)?;
    refuse_unkept_vocabularies(py, options, &resolved)?;
    let reader = RecordBatchStreamReader::from_pyarrow_bound(data)?;
    let schema = reader.schema();
    let cancel = Arc::new(AtomicBool::new(false));
    let engine = LocalWarehouse::new(resolved.local.clone())
        .map_err(|e| to_python(py, &e.into()))?
        .with_cancel_flag(cancel.clone());
    let job = resolved.jobs[0].clone();
    let windows = run_detached(py, &cancel, move || {
        let batches = reader.map(|batch| batch.map_err(|e| seqhouse_core::Error::corrupt("the data", e)));
        Ok(engine.sequence_batches(&job, &schema, batches, "the data")?)
    })?;
    windows_object(py, windows)
}

/// `sequence` returns tables only: a vocabulary it fitted would be lost with the ids it gave,
/// which could then be neither read back nor applied at inference. The refusal names what the
/// caller passed: `vocab=`, or the `preset=` that asked for the vocabularies.
fn refuse_unkept_vocabularies(py: Python<'_>, options: &Bound<'_, PyDict>, resolved: &Resolved) -> PyResult<()> {
    let spec = &resolved.jobs[0].spec;
    if spec.vocab.is_empty() || spec.vocab_from.is_some() {
        return Ok(());
    }
    let vocab_given = options.get_item("vocab")?.is_some_and(|v| !v.is_none());
    let asked_by = match (vocab_given, options.get_item("preset")?) {
        (false, Some(preset)) if !preset.is_none() => {
            SettingValue { setting: Setting::Preset, value: preset.str()?.to_string() }.to_string()
        }
        _ => Setting::Vocab.to_string(),
    };
    Err(seqhouse_error(
        py,
        "InvalidArgumentError",
        format!(
            "{asked_by} fits vocabularies, which sequence() cannot return beside its tables; use seqhouse.publish(), which writes them into the output (read them with seqhouse.read_vocab()), or pass {} to apply vocabularies published before",
            Setting::VocabFrom
        ),
    ))
}

/// `seqhouse.read_vocab`: a published output's vocabulary of one feature.
#[pyfunction]
fn read_vocab(py: Python<'_>, output: String, feature: String, options: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    let s3 = parse(py, options)?.s3_options();
    let batch = py
        .detach(|| {
            let storage = seqhouse_storage::Storage::new(s3)?;
            seqhouse_storage::vocab::read_published(&storage, &output, &feature)
        })
        .map_err(|e| to_python(py, &e.into()))?;
    to_table(py, batch.schema(), vec![batch])
}

/// `seqhouse.publish`: the CLI's `sequence` command, on any engine.
#[pyfunction]
fn publish(py: Python<'_>, options: &Bound<'_, PyDict>) -> PyResult<Vec<Py<PyAny>>> {
    let resolved = resolve(py, options)?;
    let cancel = Arc::new(AtomicBool::new(false));
    let warehouse = seqhouse_cli::warehouse(&resolved, cancel.clone()).map_err(|e| to_python(py, &e))?;
    let jobs = resolved.jobs.clone();
    let reports = run_detached(py, &cancel, || Ok(seqhouse_core::run_jobs(warehouse.as_ref(), &jobs, &NoProgress)?))?;
    let mut dicts = Vec::new();
    for report in &reports {
        if report.splits.is_empty() {
            dicts.push(report_dict(py, report, None)?);
        }
        for split in 0..report.splits.len() {
            dicts.push(report_dict(py, report, Some(split))?);
        }
    }
    Ok(dicts)
}

/// A job's report as a dict of `JobReport`'s fields; for a split job, split `split`'s.
fn report_dict(py: Python<'_>, report: &JobReport, split: Option<usize>) -> PyResult<Py<PyAny>> {
    let dict = PyDict::new(py);
    let stats = split.map_or_else(|| report.stats.clone(), |s| report.stats.of_output(s));
    let (output, parts, output_bytes) = match split {
        Some(s) => (&report.splits[s].output, report.splits[s].parts, report.splits[s].output_bytes),
        None => (&report.output, report.parts, report.output_bytes),
    };
    dict.set_item("output", output)?;
    dict.set_item("subset", &report.subset)?;
    dict.set_item("split", split.map(|s| report.splits[s].name.clone()))?;
    dict.set_item("input_rows", stats.input_rows)?;
    dict.set_item("entities", stats.entities)?;
    dict.set_item("windows", stats.windows)?;
    dict.set_item("parts", parts)?;
    dict.set_item("output_bytes", output_bytes)?;
    Ok(dict.into_any().unbind())
}

/// `seqhouse.read`: the parts a published output's manifest lists, as one table.
#[pyfunction]
fn read(py: Python<'_>, output: String, options: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
    let s3 = parse(py, options)?.s3_options();
    let (schema, batches) =
        py.detach(|| seqhouse_local::read_published(s3, &output)).map_err(|e| to_python(py, &e.into()))?;
    to_table(py, schema, batches)
}

/// The native module `seqhouse._seqhouse`; `seqhouse/__init__.py` is its public face.
#[pymodule]
fn _seqhouse(module: &Bound<'_, PyModule>) -> PyResult<()> {
    seqhouse_core::name_settings(&PythonNames);
    module.add("__version__", seqhouse_core::VERSION)?;
    module.add_function(wrap_pyfunction!(sequence_path, module)?)?;
    module.add_function(wrap_pyfunction!(sequence_stream, module)?)?;
    module.add_function(wrap_pyfunction!(publish, module)?)?;
    module.add_function(wrap_pyfunction!(read, module)?)?;
    module.add_function(wrap_pyfunction!(read_vocab, module)?)?;
    module.add_function(wrap_pyfunction!(keywords, module)?)?;
    Ok(())
}
