"""Feature preparation (dedupe_consecutive, min_events, time_delta) against a pandas reference
written here, on the real ASSISTments 2015 log and on a log with nulls and timestamps."""

import pathlib

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqhouse
from test_sequence import reference

ASSIST = pathlib.Path(__file__).parents[2] / "testdata" / "assist2015" / "events.parquet"


def prepared(frame, entity, order_by, features, dedupe=False, min_events=None, gaps=None, fills=None):
    """The events as seqhouse prepares them, the pandas way: stable sort, drop rows equal to the
    row before on every feature (nulls equal), drop small entities, diff the gap columns."""
    frame = frame.sort_values([entity] + order_by, kind="stable").reset_index(drop=True)
    if dedupe:
        before = frame.groupby(entity)[features].shift()
        # pandas' == of a null is null: count it as different, then nulls as equal to nulls.
        same_or_both_null = (frame[features] == before).fillna(False).astype(bool) | (
            frame[features].isna() & before.isna())
        first = frame.groupby(entity).cumcount() == 0
        frame = frame[first | ~same_or_both_null.all(axis=1)].reset_index(drop=True)
    if min_events:
        frame = frame[frame.groupby(entity)[entity].transform("size") >= min_events].reset_index(drop=True)
    for name, (column, divisor) in (gaps or {}).items():
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.astype("int64")
        diff = values.groupby(frame[entity]).diff()
        frame[name] = (diff.astype("Int64") // divisor if divisor > 1 else diff.astype("Int64"))
    for name, value in (fills or {}).items():
        frame[name] = frame[name].fillna(value)
    return frame


def as_lists(table):
    return [{k: (v if not isinstance(v, float) or v == v else None) for k, v in row.items()} for row in table.to_pylist()]


def test_filters_and_gaps_on_assistments():
    frame = pq.read_table(ASSIST).to_pandas()
    kept = prepared(frame, "user_id", ["log_order"], ["skill_id", "correct"], dedupe=True, min_events=10,
                    gaps={"gap": ("log_order", 1)}, fills={"gap": 0})
    expected = reference(pa.Table.from_pandas(kept[["user_id", "log_order", "skill_id", "correct", "gap"]],
                                              preserve_index=False),
                         ["user_id"], ["log_order"], {"skill_id": -1, "correct": -1, "gap": -1}, 50, "sliding", 25)
    got = seqhouse.sequence(
        ASSIST, entity="user_id", order_by="log_order", features={"skill_id": -1, "correct": -1, "gap": -1},
        sequence_length=50, mode="sliding", stride=25, dedupe_consecutive=True, min_events=10,
        time_delta={"gap": "log_order"}, fill_null={"gap": 0},
    )
    assert got.schema.field("gap_sequence").type.value_type == pa.int64()
    rows = got.to_pylist()
    assert len(rows) == len(expected) > 1000
    assert rows == [{**row, "gap_sequence": [int(v) for v in row["gap_sequence"]]} for row in expected]
    assert len(kept) < len(frame)


def test_timestamp_gaps_and_null_features_deduplicated():
    rows = 300
    frame = pd.DataFrame({
        "user": [i % 7 for i in range(rows)],
        "at": pd.to_datetime([1_700_000_000_000 + (i * 7919 % 100_000) * 1_337 for i in range(rows)], unit="ms"),
        "item": [(i // 7) % 3 if i % 11 else None for i in range(rows)],
    })
    frame["item"] = frame["item"].astype("Int64")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    kept = prepared(frame, "user", ["at"], ["item"], dedupe=True, gaps={"gap": ("at", 1_000_000_000)})
    assert len(kept) < rows
    got = seqhouse.sequence(table, entity="user", order_by="at", features={"item": -1, "gap": 0}, sequence_length=8,
                            dedupe_consecutive=True, time_delta={"gap": "at:s"})
    want = reference(pa.Table.from_pandas(kept, preserve_index=False), ["user"], ["at"], {"item": -1, "gap": 0}, 8)
    assert as_lists(got) == [{**row, "gap_sequence": [None if v is pd.NA else v for v in row["gap_sequence"]]}
                             for row in as_lists(pa.Table.from_pylist(want))]


@pytest.mark.parametrize("keywords,words", [
    ({"time_delta": {"gap": "log_order:hours"}}, ["time_delta", "hours"]),
    ({"time_delta": {"gap": "log_order:ms"}}, ["time_delta", "its own units"]),
    ({"min_events": 0}, ["min_events", "at least 1"]),
])
def test_bad_preparation_keywords_are_named(keywords, words, tmp_path):
    with pytest.raises(seqhouse.errors.SeqhouseError) as raised:
        seqhouse.publish(ASSIST, tmp_path / "out", entity="user_id", order_by="log_order", features={"skill_id": -1},
                         sequence_length=10, **keywords)
    assert all(word in str(raised.value) for word in words), str(raised.value)
    assert not (tmp_path / "out").exists()


def test_sessions_on_movielens_match_pandas():
    ratings = pathlib.Path(__file__).parents[2] / "testdata" / "movielens-latest-small" / "ratings.csv"
    frame = pd.read_csv(ratings).sort_values(["userId", "timestamp", "movieId"], kind="stable").reset_index(drop=True)
    # pandas: a new session where a user's next rating comes more than an hour later.
    frame["session"] = (frame.groupby("userId")["timestamp"].diff() > 3600).astype(int).groupby(frame["userId"]).cumsum()
    sizes = frame.groupby(["userId", "session"])["movieId"].transform("size")
    kept = frame[sizes >= 3].copy()
    kept["session"] = kept.groupby("userId")["session"].rank(method="dense").astype(int) - 1
    expected = {}
    for (user, session), group in kept.groupby(["userId", "session"]):
        movies = group["movieId"].tolist()
        expected[(user, session)] = [movies[i:i + 10] for i in range(0, len(movies), 10)]
    got = seqhouse.sequence(ratings, entity="userId", order_by=["timestamp", "movieId"], features={"movieId": 0},
                            sequence_length=10, session_gap=3600, min_session_length=3)
    assert got.column_names[:3] == ["userId", "session_index", "sequence_index"]
    windows = {}
    for row in got.to_pylist():
        real = row["movieId_sequence"][:row["sequence_length"]]
        windows.setdefault((row["userId"], row["session_index"]), []).append((row["sequence_index"], real))
    assert {key: [w for _, w in sorted(v)] for key, v in windows.items()} == expected
    assert len(expected) > 2 * frame["userId"].nunique()
    with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
        seqhouse.sequence(ratings, entity="userId", order_by="timestamp", features=["movieId"], sequence_length=10,
                          session_gap="1h")
    assert "session_gap" in str(raised.value) and "plain number" in str(raised.value)
