"""seqhouse.publish and read against the CLI; errors, to_numpy, threads, keywords."""

import inspect
import os
import pathlib
import subprocess
import sys
import threading
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqhouse
from seqhouse import _seqhouse

ROOT = pathlib.Path(__file__).resolve().parents[2]
PUPILS = ROOT / "examples" / "pupils"
JOB = dict(
    entity="pupil_id",
    order_by="timestamp",
    features={"exercise_id": -1, "skill_id": -1, "correct": -1, "elapsed_s": 0.0},
    fill_null={"elapsed_s": -1.0},
    sequence_length=10,
    min_length=2,
)


def cli():
    """The seqhouse binary `cargo test` built (scripts/test says where)."""
    binary = os.environ.get("SEQHOUSE_BIN") or str(ROOT / "target" / "debug" / "seqhouse")
    if not os.path.exists(binary):
        pytest.skip("no seqhouse binary built (run through scripts/test)")
    return binary


def folder_bytes(path):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(path).iterdir())}


def test_publish_writes_what_the_cli_writes(tmp_path):
    reports = seqhouse.publish(PUPILS, tmp_path / "py", subsets=["train", "validation"], **JOB)
    assert [r.subset for r in reports] == ["train", "validation"]
    assert reports[0].output.endswith("train_sequenced_10") and reports[0].entities == 12
    subprocess.run(
        [cli(), "sequence", "--input", str(PUPILS), "--output", str(tmp_path / "cli"), "--subsets",
         "train,validation", "--entity", "pupil_id", "--order-by", "timestamp", "--feature", "exercise_id=-1",
         "--feature", "skill_id=-1", "--feature", "correct=-1", "--feature", "elapsed_s=0.0", "--fill-null",
         "elapsed_s=-1.0", "-n", "10", "--min-length", "2", "-q"],
        check=True,
    )
    for subset in ["train_sequenced_10", "validation_sequenced_10"]:
        py, by_cli = folder_bytes(tmp_path / "py" / subset), folder_bytes(tmp_path / "cli" / subset)
        assert py.keys() == by_cli.keys()
        assert py == by_cli, subset


def test_read_follows_the_manifest_and_equals_sequence(tmp_path):
    seqhouse.publish(PUPILS / "train", tmp_path / "out", **JOB)
    published = seqhouse.read(tmp_path / "out")
    in_memory = seqhouse.sequence(PUPILS / "train", **JOB)
    assert published.to_pylist() == in_memory.to_pylist()
    # A part no manifest lists is not read.
    pq.write_table(published.slice(0, 1), tmp_path / "out" / "part-99999.parquet")
    assert seqhouse.read(tmp_path / "out").num_rows == published.num_rows
    with pytest.raises(seqhouse.InputNotFoundError, match="_manifest.json"):
        seqhouse.read(tmp_path)


def test_overwrite_and_the_error_classes(tmp_path):
    out = tmp_path / "out"
    seqhouse.publish(PUPILS / "train", out, **JOB)
    with pytest.raises(seqhouse.OutputExistsError) as existing:
        seqhouse.publish(PUPILS / "train", out, **JOB)
    assert isinstance(existing.value, FileExistsError) and "overwrite" in str(existing.value)
    assert "--" not in str(existing.value)
    seqhouse.publish(PUPILS / "train", out, overwrite=True, **dict(JOB, sequence_length=10))

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / ".bashrc").write_text("alias ll")
    with pytest.raises(seqhouse.OutputNotOursError, match=".bashrc"):
        seqhouse.publish(PUPILS / "train", foreign, overwrite=True, **JOB)
    assert (foreign / ".bashrc").read_text() == "alias ll"

    with pytest.raises(seqhouse.InputNotFoundError) as missing:
        seqhouse.publish(tmp_path / "nowhere", tmp_path / "o2", **JOB)
    assert isinstance(missing.value, FileNotFoundError)
    assert not (tmp_path / "o2").exists()


def test_messages_name_the_python_keywords():
    table = pa.table({"user": [1, 1], "t": [1, 2], "item": [3, 4]})
    base = dict(entity="user", order_by="t", features=["item"])
    with pytest.raises(seqhouse.InvalidArgumentError) as zero:
        seqhouse.sequence(table, sequence_length=0, **base)
    assert isinstance(zero.value, ValueError)
    assert str(zero.value) == "sequence_length must be at least 1, got 0"
    with pytest.raises(ValueError, match=r'stride applies only to mode="sliding"'):
        seqhouse.sequence(table, sequence_length=3, stride=2, **base)
    with pytest.raises(ValueError, match="unknown mode 'window'"):
        seqhouse.sequence(table, sequence_length=3, mode="window", **base)
    with pytest.raises(ValueError, match="features pad value 'x' for column 'item'"):
        seqhouse.sequence(table, sequence_length=3, entity="user", order_by="t", features={"item": "x"})
    with pytest.raises(ValueError, match="column 'nope' not found"):
        seqhouse.sequence(table, sequence_length=3, entity="nope", order_by="t", features=["item"])
    with pytest.raises(ValueError, match="memory_limit"):
        seqhouse.sequence(table, sequence_length=3, memory_limit="2 parsecs", **base)


def test_wrong_types_are_type_errors_naming_the_argument():
    table = pa.table({"user": [1], "t": [1], "item": [3]})
    base = dict(entity="user", order_by="t", features=["item"])
    with pytest.raises(TypeError, match="sequence_length must be an int, got float"):
        seqhouse.sequence(table, sequence_length=1.5, **base)
    with pytest.raises(TypeError, match="min_length must be an int, got bool"):
        seqhouse.sequence(table, sequence_length=2, min_length=True, **base)
    with pytest.raises(TypeError, match="entity"):
        seqhouse.sequence(table, sequence_length=2, entity=5, order_by="t", features=["item"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'athena_workgrup'"):
        seqhouse.publish("in", "out", sequence_length=2, athena_workgrup="x", **base)
    with pytest.raises(TypeError):
        seqhouse.sequence(table, sequence_length=2, unknown=1, **base)
    with pytest.raises(TypeError, match="data must be a path"):
        seqhouse.sequence(42, sequence_length=2, **base)


def test_every_keyword_is_a_setting_of_the_one_declaration():
    known = dict(_seqhouse.keywords())
    for function in (seqhouse.sequence, seqhouse.publish):
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.kind == parameter.KEYWORD_ONLY or name in ("input", "output"):
                assert name in known, f"{function.__name__}({name}=) is not a setting"
    for engine_option in ["athena_workgroup", "spark_remote", "s3_endpoint", "s3_path_style", "compression"]:
        assert engine_option in known


def test_to_numpy_shapes_values_and_zero_copy():
    table = seqhouse.sequence(PUPILS / "train", **JOB)
    arrays = seqhouse.to_numpy(table)
    windows = table.num_rows
    assert arrays["exercise_id_sequence"].shape == (windows, 10)
    assert arrays["is_pad_sequence"].dtype == np.int8 and arrays["is_pad_sequence"].shape == (windows, 10)
    assert arrays["sequence_index"].shape == (windows,)
    assert arrays["exercise_id_sequence"].tolist() == table.column("exercise_id_sequence").to_pylist()
    one_chunk = table.combine_chunks()
    shared = seqhouse.to_numpy(one_chunk)
    buffer = one_chunk.column("skill_id_sequence").chunk(0).flatten().buffers()[1]
    assert shared["skill_id_sequence"].ctypes.data == buffer.address, "a view, not a copy"
    assert not shared["skill_id_sequence"].flags.owndata


def test_the_torch_one_liner_shares_the_memory():
    # torch is not installable on the build machine (no CPU-only wheel there): this runs where
    # it is, as the README's line for feeding torch.
    torch = pytest.importorskip("torch")
    arrays = seqhouse.to_numpy(seqhouse.sequence(PUPILS / "train", **JOB).combine_chunks())
    tensors = {name: torch.from_numpy(array) for name, array in arrays.items()}
    assert tensors["skill_id_sequence"].data_ptr() == arrays["skill_id_sequence"].ctypes.data
    assert tensors["is_pad_sequence"].shape == arrays["is_pad_sequence"].shape


def test_a_job_in_a_thread_leaves_the_main_thread_running():
    rows = 2_000_000
    table = pa.table({"user": np.arange(rows) % 20000, "t": np.arange(rows), "item": np.arange(rows)})
    result = {}

    def job():
        started = time.perf_counter()
        result["table"] = seqhouse.sequence(table, entity="user", order_by="t", features=["item"], sequence_length=20)
        result["seconds"] = time.perf_counter() - started

    worker = threading.Thread(target=job)
    ticks = 0
    worker.start()
    while worker.is_alive():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    assert result["table"].num_rows == 20000 * 5
    # Held through the job, the GIL would leave the main thread a tick or two.
    assert result["seconds"] > 0.05 and ticks >= 10, (result["seconds"], ticks)


def test_the_orchestrator_example_runs(tmp_path):
    env = dict(os.environ, MODE="local", OUTPUT=str(tmp_path))
    subprocess.run([sys.executable, str(ROOT / "examples" / "orchestrator.py")], check=True, env=env)
    for subset in ["train_sequenced_10", "validation_sequenced_10"]:
        assert (tmp_path / subset / "_manifest.json").exists()


def test_the_readme_python_examples_run(monkeypatch):
    section = (ROOT / "README.md").read_text().split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("```", 1)[0] for block in section.split("```python\n")[1:]]
    assert len(blocks) >= 2
    monkeypatch.chdir(ROOT)
    scope = {}
    for block in blocks:
        exec(compile(__import__("textwrap").dedent(block), "README.md", "exec"), scope)
    assert scope["arrays"]["exercise_id_sequence"].shape[1] == 10


def test_ctrl_c_stops_a_running_job_and_publishes_nothing(tmp_path):
    """SIGINT while the job writes: the call raises JobInterrupted (a KeyboardInterrupt) and the
    output is absent, with nothing beside it. Fail points (test builds) pause the job as it
    starts writing, and the main thread once it has asked the job to stop."""
    import signal

    release = tmp_path / "release"
    out = tmp_path / "out"
    # Python leaves SIGINT ignored when it starts with it ignored (a background job of a
    # non-interactive shell, nohup): restore the interactive default, KeyboardInterrupt.
    script = f"""
import signal
signal.signal(signal.SIGINT, signal.default_int_handler)
import seqhouse
try:
    seqhouse.publish({str(PUPILS / "train")!r}, {str(out)!r}, entity="pupil_id", order_by="timestamp",
                     features=["skill_id"], sequence_length=10)
except seqhouse.JobInterrupted as e:
    assert isinstance(e, KeyboardInterrupt)
    print("interrupted:", e)
"""
    env = dict(os.environ, SEQHOUSE_FAILPOINTS="local.writing=pause,python.cancelled=pause",
               SEQHOUSE_FAILPOINT_RELEASE=str(release))
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    markers = []
    for line in child.stderr:
        if "failpoint local.writing paused" in line:
            markers.append(line)
            child.send_signal(signal.SIGINT)
        if "failpoint python.cancelled paused" in line:
            markers.append(line)
            release.touch()
            break
    stdout, stderr = child.communicate(timeout=60)
    assert len(markers) == 2, (markers, stderr)
    assert child.returncode == 0 and stdout.startswith("interrupted:"), (stdout, stderr)
    assert "nothing was published" in stdout
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["release"], "no staging, lock or aside left"


def _sequence_in_child(queue):
    table = pa.table({"user": [1, 1, 2], "t": [1, 2, 3], "item": [4, 5, 6]})
    windows = seqhouse.sequence(table, entity="user", order_by="t", features=["item"], sequence_length=2)
    queue.put(windows.num_rows)


def test_safe_after_fork_as_in_torch_dataloader_workers():
    """Runtimes and thread pools are made per call, so a forked child (a DataLoader worker)
    sequences after its parent did."""
    import multiprocessing

    _sequence_in_child(multiprocessing.Queue())  # the parent has run a job (and its pools) first
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_sequence_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the forked child finished its job"
    assert queue.get(timeout=5) == 2


def test_an_unreachable_engine_and_a_locked_output_have_their_classes(tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    pq.write_table(pa.table({"user": [1, 1], "t": [1, 2], "item": [3, 4]}), events / "part.parquet")
    with pytest.raises(seqhouse.EngineUnreachableError) as unreachable:
        seqhouse.publish(events, tmp_path / "spark", engine="spark", spark_remote="sc://127.0.0.1:1", entity="user",
                         order_by="t", features=["item"], sequence_length=2)
    assert isinstance(unreachable.value, ConnectionError)
    assert "sc://127.0.0.1:1" in str(unreachable.value) and "spark_remote" in str(unreachable.value)

    # A CLI run holds the output's lock, paused at a fail point (test builds) as it writes.
    out, release = tmp_path / "out", tmp_path / "release"
    env = dict(os.environ, SEQHOUSE_FAILPOINTS="local.writing=pause", SEQHOUSE_FAILPOINT_RELEASE=str(release))
    holder = subprocess.Popen(
        [cli(), "sequence", "--input", str(PUPILS / "train"), "--output", str(out), "--entity", "pupil_id",
         "--order-by", "timestamp", "--feature", "skill_id", "-n", "10"],
        env=env, stderr=subprocess.PIPE, text=True,
    )
    for line in holder.stderr:
        if "failpoint local.writing paused" in line:
            break
    try:
        with pytest.raises(seqhouse.OutputLockedError) as locked:
            seqhouse.publish(PUPILS / "train", out, **JOB)
        assert isinstance(locked.value, BlockingIOError) and "another seqhouse run" in str(locked.value)
    finally:
        release.touch()
        holder.communicate(timeout=60)
    assert holder.returncode == 0, "the holder published"
