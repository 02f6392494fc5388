"""Vocabularies (vocab=, vocab_from=) against a pandas reference written here: ids by
descending count then ascending value, min_count, max_size, nulls, values unseen in training,
fitted on the first split or subset only; and the errors, with nothing published."""

import pathlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqhouse

MOVIELENS = pathlib.Path(__file__).parents[2] / "testdata" / "movielens-latest-small" / "ratings.csv"


def reference_vocab(values, min_count=1, max_size=None):
    """value -> id, the pandas way: counts of the non-null values, at least min_count, by
    descending count then ascending value, the first max_size of them, numbered from 3."""
    counts = values.dropna().value_counts()
    ranked = sorted(((-int(c), v) for v, c in counts.items() if c >= min_count))
    if max_size is not None:
        ranked = ranked[:max_size]
    return {v: 3 + i for i, (_, v) in enumerate(ranked)}, {v: -c for c, v in ranked}


def encode(windows, column, ids):
    """Raw windows with `column` replaced by ids (0 at padding, 1 for null, 2 unseen)."""
    out = []
    for row in windows:
        values = row[f"{column}_sequence"]
        encoded = [0 if pad else 1 if v is None else ids.get(v, 2) for v, pad in zip(values, row["is_pad_sequence"])]
        out.append({**row, f"{column}_sequence": encoded})
    return out


def test_leave_one_out_on_movielens_fits_on_train_only(tmp_path):
    frame = pd.read_csv(MOVIELENS)
    options = dict(entity="userId", order_by="timestamp", features={"movieId": 0, "rating": 0.0},
                   sequence_length=20, mode="last", padding="pre", split_last={"test": 1})
    reports = seqhouse.publish(MOVIELENS, tmp_path / "out", vocab={"movieId": {"min_count": 3}}, **options)
    assert [r.split for r in reports] == ["train", "test"]
    # The reference: each user's events in time order (ties in file order), the last one held out.
    ordered = frame.sort_values(["userId", "timestamp"], kind="stable")
    is_last = ordered.groupby("userId").cumcount(ascending=False) == 0
    train_events = ordered[~is_last | (ordered.groupby("userId")["userId"].transform("size") <= 1)]
    ids, counts = reference_vocab(train_events["movieId"], min_count=3)
    assert len(ids) > 1000 and len(ids) < frame["movieId"].nunique()
    for split in ("train", "test"):
        output = tmp_path / "out" / f"{split}_sequenced_20"
        vocab = seqhouse.read_vocab(output, "movieId").to_pylist()
        assert vocab == [{"id": ids[v], "value": v, "count": counts[v]} for v in sorted(ids, key=ids.get)]
        raw = seqhouse.sequence(MOVIELENS, **options)[split].to_pylist()
        got = seqhouse.read(output)
        assert got.schema.field("movieId_sequence").type.value_type == pa.int64()
        assert got.to_pylist() == encode(raw, "movieId", ids)
    test_ids = [row["movieId_sequence"][-1] for row in seqhouse.read(tmp_path / "out" / "test_sequenced_20").to_pylist()]
    # Some held-out movies were never (or too rarely) rated in training: out of vocabulary.
    assert 2 in test_ids and any(i >= 3 for i in test_ids)


def test_ties_nulls_and_max_size(tmp_path):
    frame = pd.DataFrame({
        "user": [1, 1, 1, 1, 2, 2, 2, 3, 3, 3],
        "ts": [1, 2, 3, 4, 1, 2, 3, 1, 2, 3],
        "tag": ["b", "a", None, "c", "b", "a", "d", "c", None, "e"],
    })
    data = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data)
    for max_size in (None, 2):
        out = tmp_path / f"out_{max_size}"
        limits = {"max_size": max_size} if max_size else None
        seqhouse.publish(data, out, entity="user", order_by="ts", features=["tag"], sequence_length=3,
                         vocab={"tag": limits})
        ids, _ = reference_vocab(frame["tag"], max_size=max_size)
        # a, b and c tie at two each: by value. d and e (one each) follow, unless cut.
        assert list(ids) == ["a", "b", "c", "d", "e"][: max_size or 5]
        raw = seqhouse.sequence(data, entity="user", order_by="ts", features=["tag"], sequence_length=3)
        raw = raw.to_pylist()
        assert seqhouse.read(out).to_pylist() == encode(raw, "tag", ids)


def test_subsets_and_vocab_from_apply_the_training_vocabulary(tmp_path):
    frame = pd.read_csv(MOVIELENS)
    early = frame[frame["timestamp"] < frame["timestamp"].quantile(0.8)]
    late = frame[frame["timestamp"] >= frame["timestamp"].quantile(0.8)]
    (tmp_path / "in" / "train").mkdir(parents=True)
    (tmp_path / "in" / "validation").mkdir(parents=True)
    early.to_csv(tmp_path / "in" / "train" / "ratings.csv", index=False)
    late.to_csv(tmp_path / "in" / "validation" / "ratings.csv", index=False)
    options = dict(entity="userId", order_by="timestamp", features=["movieId"], sequence_length=50)
    seqhouse.publish(tmp_path / "in", tmp_path / "out", subsets=["train", "validation"],
                     vocab={"movieId": {"min_count": 2}}, **options)
    ids, _ = reference_vocab(early["movieId"], min_count=2)
    validation = seqhouse.read(tmp_path / "out" / "validation_sequenced_50").to_pylist()
    raw = seqhouse.sequence(tmp_path / "in" / "validation", **options).to_pylist()
    assert validation == encode(raw, "movieId", ids)
    # The same vocabulary applied in memory, as at inference.
    applied = seqhouse.sequence(late, vocab="movieId", vocab_from=tmp_path / "out" / "train_sequenced_50", **options)
    assert applied.to_pylist() == validation


def test_bad_vocabularies_are_named_and_nothing_is_published(tmp_path):
    frame = pd.DataFrame({"user": [1, 1, 2], "ts": [1, 2, 1], "item": [5, 6, 5], "score": [0.5, 1.0, 2.0]})
    data = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), data)
    options = dict(entity="user", order_by="ts", sequence_length=2)
    out = tmp_path / "out"
    with pytest.raises(seqhouse.SeqhouseError, match=r"score.*vocab"):
        seqhouse.publish(data, out, features=["score"], vocab="score", **options)
    with pytest.raises(seqhouse.InvalidArgumentError, match=r"vocab_from.*item"):
        seqhouse.publish(data, out, features=["item"], vocab="item", vocab_from=tmp_path / "nowhere", **options)
    with pytest.raises(seqhouse.InvalidArgumentError, match=r"vocab.*publish\(\)"):
        seqhouse.sequence(data, features=["item"], vocab="item", **options)
    with pytest.raises(seqhouse.InvalidArgumentError, match=r"features=\{\"item\": -1\}|pad"):
        seqhouse.publish(data, out, features={"item": -1}, vocab="item", **options)
    assert not out.exists()
    seqhouse.publish(data, out, features=["item"], vocab="item", **options)
    # Applied to a column of another type, the vocabulary is refused by name.
    strings = tmp_path / "strings.parquet"
    pq.write_table(pa.table({"user": [1], "ts": [1], "item": ["5"]}), strings)
    with pytest.raises(seqhouse.InvalidArgumentError, match=r"int64.*'item'.*string|Int64.*'item'.*Utf8"):
        seqhouse.sequence(strings, features=["item"], vocab="item", vocab_from=out, **options)
    # A vocabulary changed after it was published is refused: its digest no longer matches.
    vocab_file = out / "_vocab" / "item.parquet"
    pq.write_table(pa.table({"id": [3], "value": [6], "count": [9]}), vocab_file)
    with pytest.raises(seqhouse.InvalidArgumentError, match="SHA-256"):
        seqhouse.sequence(data, features=["item"], vocab="item", vocab_from=out, **options)
    with pytest.raises(seqhouse.SeqhouseError, match="SHA-256"):
        seqhouse.read_vocab(out, "item")


def test_k_core_on_movielens_reaches_the_fixed_point():
    """k_core against the textbook loop in pandas: drop rare movies, then small users, again
    until a round drops nothing; the windows are the kept ratings of the kept users."""
    frame = pd.read_csv(MOVIELENS)
    kept = frame
    rounds = 0
    while True:
        rounds += 1
        before = len(kept)
        kept = kept[kept.groupby("movieId")["movieId"].transform("size") >= 20]
        kept = kept[kept.groupby("userId")["userId"].transform("size") >= 30]
        if len(kept) == before:
            break
    assert rounds > 2 and 0 < len(kept) < len(frame)
    options = dict(entity="userId", order_by="timestamp", features=["movieId", "rating"], sequence_length=25)
    got = seqhouse.sequence(frame, k_core={"movieId": 20}, min_events=30, **options)
    want = seqhouse.sequence(kept, **options)
    assert got.to_pylist() == want.to_pylist()
    with pytest.raises(seqhouse.InvalidArgumentError, match=r"k_core 'timestamp'.*add features=\"timestamp\""):
        seqhouse.sequence(frame, k_core={"timestamp": 3}, entity="userId", order_by="movieId",
                          features=["rating"], sequence_length=5)


def test_k_core_with_sessions_on_movielens_reaches_the_fixed_point():
    """k_core with sessions against the session recommenders' loop in pandas: cut each user's
    ratings where they pause for over an hour, then drop rare movies, short sessions and small
    users, again until a round drops nothing; the windows are each kept session's ratings."""
    frame = pd.read_csv(MOVIELENS).sort_values(["userId", "timestamp", "movieId"], kind="stable")
    pause = frame.groupby("userId")["timestamp"].diff() > 3600
    frame["session"] = pause.astype(int).groupby(frame["userId"]).cumsum()
    kept = frame
    rounds = 0
    while True:
        rounds += 1
        before = len(kept)
        kept = kept[kept.groupby("movieId")["movieId"].transform("size") >= 10]
        kept = kept[kept.groupby(["userId", "session"])["movieId"].transform("size") >= 4]
        kept = kept[kept.groupby("userId")["userId"].transform("size") >= 20]
        if len(kept) == before:
            break
    assert rounds > 2 and 0 < len(kept) < len(frame)
    kept = kept.assign(session_index=kept.groupby("userId")["session"].rank(method="dense").astype("int32") - 1)
    options = dict(order_by=["timestamp", "movieId"], features=["movieId", "rating"], sequence_length=10)
    got = seqhouse.sequence(frame.drop(columns="session"), entity="userId", session_gap="3600",
                            min_session_length=4, k_core={"movieId": 10}, min_events=20, **options)
    want = seqhouse.sequence(kept, entity=["userId", "session_index"], **options)
    assert got.column_names[:3] == ["userId", "session_index", "sequence_index"]
    assert got.to_pylist() == want.to_pylist()
    assert max(got.column("session_index").to_pylist()) > 3


def test_folder_readers_see_only_the_windows(tmp_path):
    """A vocabulary output opened as a dataset folder, the way pipelines read Parquet folders,
    gives exactly the windows the manifest lists: the readers skip `_vocab/`. (Polars takes a
    glob of the folder's own files, as README says.)"""
    import polars as pl

    options = dict(entity="userId", order_by="timestamp", features=["movieId"], sequence_length=20)
    seqhouse.publish(MOVIELENS, tmp_path / "out", vocab="movieId", **options)
    folder = tmp_path / "out"
    assert (folder / "_vocab" / "movieId.parquet").is_file()
    windows = seqhouse.read(folder)
    key = ["userId", "sequence_index"]
    want = windows.to_pandas().sort_values(key, ignore_index=True)
    readers = {
        "pyarrow": lambda: pq.read_table(folder).to_pandas(),
        "pandas": lambda: pd.read_parquet(folder),
        # Polars reads folders through globs only (its folder read stops at _manifest.json).
        "polars": lambda: pl.read_parquet(f"{folder}/*.parquet").to_pandas(),
    }
    for name, read in readers.items():
        got = read().sort_values(key, ignore_index=True)
        assert list(got.columns) == list(want.columns), name
        assert len(got) == len(want) == windows.num_rows, name
        assert got["movieId_sequence"].map(list).tolist() == want["movieId_sequence"].map(list).tolist(), name
