"""The presets against the peer tool's own published code: pyKT's generate_sequences and
generate_window_sequences (pykt-toolkit 0.0.38 from PyPI, installed without its dependencies by
scripts/test) on the real ASSISTments 2015 log."""

import importlib.metadata
import importlib.util
import pathlib

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import seqhouse

ASSIST = pathlib.Path(__file__).parents[2] / "testdata" / "assist2015" / "events.parquet"


def pykt_split_datasets():
    """pyKT's preprocessing module, loaded from its file: importing the `pykt` package would
    import torch, which its sequencing code does not use."""
    files = [f for f in importlib.metadata.files("pykt-toolkit") if str(f).endswith("preprocess/split_datasets.py")]
    spec = importlib.util.spec_from_file_location("pykt_split_datasets", files[0].locate())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def log():
    """Every third pupil of ASSISTments 2015 (some with more than 200 answers), and the same
    pupils as pyKT's input: one row per pupil, its answers in order, joined by commas."""
    table = pq.read_table(ASSIST)
    table = table.filter(pc.equal(pc.bit_wise_and(table["user_id"], 3), 0))
    frame = table.to_pandas().sort_values(["user_id", "log_order"], kind="stable")
    grouped = frame.groupby("user_id", sort=True)
    pykt = grouped.agg(concepts=("skill_id", lambda v: ",".join(map(str, v))),
                       responses=("correct", lambda v: ",".join(map(str, v)))).reset_index()
    pykt = pykt.rename(columns={"user_id": "uid"})
    assert grouped.size().max() > 400, "some pupils must need several windows"
    return table, pykt


def windows_of(table, marks):
    """Each window as (pupil, concepts, responses, selectmasks) in pyKT's text, where pyKT marks
    the positions it scores 1 and the others with its pad, -1."""
    out = []
    for row in table.to_pylist():
        if marks == "target_mask":
            select = ["1" if m else "-1" for m in row["target_mask"]]
        else:
            select = ["-1" if pad else "1" for pad in row["is_pad_sequence"]]
        out.append((str(row["user_id"]), ",".join(map(str, row["skill_id_sequence"])),
                    ",".join(map(str, row["correct_sequence"])), ",".join(select)))
    return sorted(out)


def pykt_windows(frame):
    return sorted(zip(frame["uid"].astype(str), frame["concepts"], frame["responses"], frame["selectmasks"]))


def test_pykt_preset_is_pykts_generate_sequences(log):
    table, pykt = log
    keys = {"uid", "concepts", "responses"}
    expected = pykt_windows(pykt_split_datasets().generate_sequences(pykt, keys, min_seq_len=3, maxlen=200, pad_val=-1))
    got = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id", "correct"],
                            preset="pykt")
    assert len(expected) > 1000
    assert windows_of(got, "is_pad_sequence") == expected


def test_pykt_window_preset_is_pykts_generate_window_sequences(log):
    table, pykt = log
    keys = {"uid", "concepts", "responses"}
    expected = pykt_windows(pykt_split_datasets().generate_window_sequences(pykt, keys, maxlen=200, pad_val=-1))
    got = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id", "correct"],
                            preset="pykt-window")
    assert len(expected) > len(pykt) + 1000, "pupils past 200 answers get one window per later answer"
    assert windows_of(got, "target_mask") == expected


def test_explicit_options_win_over_a_preset_and_unknown_presets_are_named(log):
    table, _ = log
    given = seqhouse.sequence(table, entity="user_id", order_by="log_order", features={"skill_id": 0},
                              preset="pykt", sequence_length=50, padding="pre").to_pylist()
    short = next(r for r in given if r["sequence_length"] < 50)
    assert len(short["skill_id_sequence"]) == 50
    assert short["is_pad_sequence"][0] == 1 and short["skill_id_sequence"][0] == 0, "pre padding, skill_id's own pad"
    assert min(r["sequence_length"] for r in given) == 3, "the preset's min_length still holds"
    defaulted = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["correct"], preset="pykt")
    short = next(r for r in defaulted.to_pylist() if r["sequence_length"] < 200)
    assert short["correct_sequence"][-1] == -1, "the preset's pad where none is given"
    with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
        seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id"], preset="sasrec2")
    assert "preset" in str(raised.value) and "pykt-window" in str(raised.value)
    with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
        seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id"])
    assert "sequence_length is required" in str(raised.value)
