"""Splits through the Python keywords, against the README's definitions written here: the entity
hash with hashlib, the leave-last and temporal targets by brute force."""

import hashlib

import pyarrow as pa
import pytest

import seqhouse
from test_sequence import events, window_bounds

BASE = dict(entity="user", order_by="t", features={"item": -1})


def bucket_and_fold_bits(seed, *keys):
    message = f"v1|{seed}" + "".join(f"|{len(str(k).encode())}:{k}" for k in keys)
    digest = hashlib.sha256(message.encode()).digest()
    return int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:8], "big")


@pytest.mark.parametrize("string_users", [False, True])
def test_entity_split_and_folds_follow_the_documented_hash(string_users):
    table = events(rows=3000, string_users=string_users)
    fractions = {"train": 0.5, "validation": 0.25, "test": 0.25}
    splits = seqhouse.sequence(table, sequence_length=4, split=fractions, split_seed=-4, folds=3, **BASE)
    assert list(splits) == ["train", "validation", "test"]
    thresholds = [2**31, 3 * 2**30]  # floor(0.5 · 2^32), floor(0.75 · 2^32)
    placed = {}
    for index, (name, windows) in enumerate(splits.items()):
        assert ("fold" in windows.column_names) == (name == "train")
        for row in windows.to_pylist():
            bucket, bits = bucket_and_fold_bits(-4, row["user"])
            assert sum(bucket >= t for t in thresholds) == index, row["user"]
            if name == "train":
                assert row["fold"] == bits % 3
            assert placed.setdefault(row["user"], name) == name, "an entity in two splits"
    assert sorted(placed, key=str) == sorted(set(table.column("user").to_pylist()), key=str)
    # Unsplit, the same windows: the split only distributes them.
    whole = seqhouse.sequence(table, sequence_length=4, **BASE)
    together = sorted((str(r["user"]), r["sequence_index"]) for t in splits.values() for r in t.to_pylist())
    assert together == sorted((str(r["user"]), r["sequence_index"]) for r in whole.to_pylist())


def owners_last(length, counts):
    """Leave-last: each event's split index (0 = train)."""
    owner = [0] * length
    if length > sum(counts):
        end = length
        for k in reversed(range(len(counts))):
            owner[end - counts[k]:end] = [k + 1] * counts[k]
            end -= counts[k]
    return owner


def reference_split(table, n, stride, owner_of, names):
    """Per split, each window's (user, item values, target mask), by brute force."""
    groups = {}
    for position, row in enumerate(table.to_pylist()):
        groups.setdefault(row["user"], []).append((row["t"], position, row))
    out = {name: [] for name in names}
    for user in sorted(groups):
        rows = [row for _, _, row in sorted(groups[user], key=lambda e: (e[0], e[1]))]
        owner = owner_of(rows)
        for split, name in enumerate(names):
            targets = [p for p in range(len(rows)) if owner[p] == split]
            if not targets:
                continue
            scored = set()
            for start, end in window_bounds("sliding", targets[-1] + 1, n, stride):
                if not any(owner[p] == split for p in range(start, end)):
                    continue
                marks = []
                for p in range(start, end):
                    mark = owner[p] == split and p not in scored
                    scored.add(p)  if mark else None
                    marks.append(int(mark))
                out[name].append((user, [r["item"] for r in rows[start:end]], marks + [0] * (n - end + start)))
    return out


def got(table, n):
    return [(r["user"], r["item_sequence"][:r["sequence_length"]], r["target_mask"]) for r in table.to_pylist()]


def test_leave_last_and_temporal_splits_match_the_reference_and_score_each_event_once():
    table = events(rows=600)
    n = 5
    names = ["train", "validation", "test"]
    splits = seqhouse.sequence(table, sequence_length=n, mode="sliding", stride=1, target_mask=True,
                               split_last={"validation": 1, "test": 2}, **BASE)
    want = reference_split(table, n, 1, lambda rows: owners_last(len(rows), [1, 2]), names)
    for name in names:
        assert got(splits[name], n) == want[name], name
    cutoffs = {"validation": 30, "test": 45}
    splits = seqhouse.sequence(table, sequence_length=n, mode="sliding", stride=1, target_mask=True,
                               split_at=cutoffs, **BASE)
    want = reference_split(table, n, 1, lambda rows: [(r["t"] >= 30) + (r["t"] >= 45) for r in rows], names)
    for name in names:
        assert got(splits[name], n) == want[name], name
    # Stride 1: every event is scored exactly once, in the split its time falls in.
    scored = sum(sum(r["target_mask"]) for t in splits.values() for r in t.to_pylist())
    assert scored == table.num_rows


def test_split_errors_name_the_keywords(tmp_path):
    table = pa.table({"user": [1, 1, 2], "t": [1, 2, 3], "item": [3, 4, 5]})
    with pytest.raises(seqhouse.InvalidArgumentError, match="split.*add up to 0.9, not 1"):
        seqhouse.sequence(table, sequence_length=2, split={"train": 0.8, "test": 0.1}, **BASE)
    with pytest.raises(seqhouse.InvalidArgumentError) as folds:
        seqhouse.sequence(table, sequence_length=2, folds=5, **BASE)
    assert "folds" in str(folds.value) and "split" in str(folds.value) and "--" not in str(folds.value)
    with pytest.raises(seqhouse.InvalidArgumentError, match="split_at.*not later than"):
        seqhouse.sequence(table, sequence_length=2, split_at="validation=3,test=2", **BASE)
    with pytest.raises(TypeError, match="split_seed must be an int"):
        seqhouse.sequence(table, sequence_length=2, split="train=0.5,test=0.5", split_seed="7", **BASE)
    out = tmp_path / "out"
    with pytest.raises(seqhouse.InvalidArgumentError, match="subsets"):
        seqhouse.publish(tmp_path, out, sequence_length=2, split="train=0.5,test=0.5", subsets=["a"], **BASE)
    assert not out.exists()


def test_publish_reports_each_split(tmp_path):
    source = tmp_path / "events.parquet"
    import pyarrow.parquet as pq
    pq.write_table(events(rows=500), source)
    reports = seqhouse.publish(source, tmp_path / "out", sequence_length=4, split={"train": 0.7, "test": 0.3},
                               **BASE)
    assert [r.split for r in reports] == ["train", "test"]
    assert [pathlib_name(r.output) for r in reports] == ["train_sequenced_4", "test_sequenced_4"]
    for report in reports:
        assert seqhouse.read(report.output).num_rows == report.windows
    assert sum(r.windows for r in reports) == seqhouse.sequence(source, sequence_length=4, **BASE).num_rows


def pathlib_name(path):
    return path.rstrip("/").rsplit("/", 1)[-1]
