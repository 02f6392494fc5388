"""seqhouse.sequence against a naive reference written here, on every kind of input."""

import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import seqhouse


def window_bounds(mode, length, n, stride):
    """The cuts of each mode, as README defines them."""
    if mode == "chunk":
        return [(s, min(s + n, length)) for s in range(0, length, n)]
    if mode == "sliding":
        out, start = [], 0
        while True:
            out.append((start, min(start + n, length)))
            if start + n >= length:
                return out
            start += stride
    if mode == "last":
        return [(max(length - n, 0), length)]
    if mode == "prefix":
        return [(max(k - n, 0), k) for k in range(1, length + 1)]
    raise ValueError(mode)


def reference(table, entity, order_by, features, n, mode="chunk", stride=None, padding="post", min_length=1):
    """Windows by brute force: group, stable sort, cut, pad; rows as dicts."""
    groups = {}
    for position, row in enumerate(table.to_pylist()):
        key = tuple(row[c] for c in entity)
        groups.setdefault(key, []).append((tuple(row[c] for c in order_by), position, row))
    out = []
    for key in sorted(groups):
        events = [row for _, _, row in sorted(groups[key], key=lambda t: (t[0], t[1]))]
        index = 0
        for start, end in window_bounds(mode, len(events), n, stride or 1):
            real = end - start
            if real < min_length:
                continue
            row = dict(zip(entity, key))
            row["sequence_index"] = index
            row["sequence_length"] = real
            for name, pad in features.items():
                values = [event[name] for event in events[start:end]]
                pads = [pad] * (n - real)
                row[f"{name}_sequence"] = values + pads if padding == "post" else pads + values
            flags = [0] * real + [1] * (n - real) if padding == "post" else [1] * (n - real) + [0] * real
            row["is_pad_sequence"] = flags
            out.append(row)
            index += 1
    return out


def events(rows=400, seed=7, string_users=False):
    """A log with ties on the order-by column, two entity columns and a float feature with nulls."""
    rng = random.Random(seed)
    users = [rng.randrange(12) for _ in range(rows)]
    return pa.table(
        {
            "user": [f"u{u:02d}" for u in users] if string_users else users,
            "course": [rng.randrange(2) for _ in range(rows)],
            "t": [rng.randrange(60) for _ in range(rows)],
            "item": [rng.randrange(1000) for _ in range(rows)],
            "score": [None if rng.random() < 0.1 else rng.random() for _ in range(rows)],
        }
    )


MODES = [("chunk", None), ("sliding", 1), ("sliding", 3), ("last", None), ("prefix", None)]


@pytest.mark.parametrize("mode,stride", MODES)
@pytest.mark.parametrize("padding", ["post", "pre"])
def test_every_mode_and_padding_match_the_reference(mode, stride, padding):
    table = events()
    features = {"item": -1, "score": -1.0}
    got = seqhouse.sequence(
        table, entity="user", order_by="t", features=features, sequence_length=5, mode=mode, stride=stride,
        padding=padding, min_length=2,
    )
    expected = reference(table, ["user"], ["t"], features, 5, mode, stride, padding, 2)
    assert got.to_pylist() == expected


def test_types_are_the_output_contract():
    got = seqhouse.sequence(events(), entity="user", order_by="t", features={"item": -1, "score": 0.0}, sequence_length=4)
    assert got.schema.field("user").type == pa.int64()
    assert got.schema.field("sequence_index").type == pa.int64()
    assert got.schema.field("sequence_length").type == pa.int32()
    item = got.schema.field("item_sequence").type
    assert pa.types.is_fixed_size_list(item) and item.list_size == 4 and item.value_type == pa.int64()
    assert got.schema.field("is_pad_sequence").type.value_type == pa.int8()
    assert got.column_names == ["user", "sequence_index", "sequence_length", "item_sequence", "score_sequence",
                                "is_pad_sequence"]


def test_multi_column_string_entities_and_ties_keep_input_order():
    table = events(string_users=True)
    features = {"item": -1}
    got = seqhouse.sequence(table, entity=["user", "course"], order_by=["t"], features=features, sequence_length=3)
    assert got.to_pylist() == reference(table, ["user", "course"], ["t"], features, 3)


def test_every_input_kind_gives_the_same_windows(tmp_path):
    table = events(string_users=True)
    options = dict(entity="user", order_by="t", features={"item": -1, "score": -1.0}, sequence_length=6)
    expected = reference(table, ["user"], ["t"], options["features"], 6)
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    inputs = {
        "table": table,
        "reader": pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=50)),
        "path": path,
        "str path": str(path),
        "pandas": table.to_pandas(),
    }
    try:
        import polars

        inputs["polars"] = polars.from_arrow(table)
    except ImportError:
        pass
    for name, data in inputs.items():
        assert seqhouse.sequence(data, **options).to_pylist() == expected, name


def test_large_string_and_string_view_columns_are_read():
    table = events(string_users=True)
    large = table.cast(table.schema.set(0, pa.field("user", pa.large_string())))
    view = table.cast(table.schema.set(0, pa.field("user", pa.string_view())))
    options = dict(entity="user", order_by="t", features=["item"], sequence_length=4)
    expected = seqhouse.sequence(table, **options).to_pylist()
    assert seqhouse.sequence(large, **options).to_pylist() == expected
    assert seqhouse.sequence(view, **options).to_pylist() == expected


def test_nulls_kept_filled_or_dropped():
    table = events()
    options = dict(entity="user", order_by="t", sequence_length=4)
    kept = seqhouse.sequence(table, features={"score": -1.0}, **options).to_pylist()
    assert kept == reference(table, ["user"], ["t"], {"score": -1.0}, 4)
    filled = seqhouse.sequence(table, features={"score": -1.0}, fill_null={"score": 9.5}, **options)
    values = [v for row in filled.to_pylist() for v in row["score_sequence"]]
    assert None not in values and 9.5 in values
    keyed = pa.table({"user": [1, None, 1], "t": [1, 2, 3], "item": [5, 6, 7]})
    with pytest.raises(seqhouse.InvalidArgumentError, match='on_null_key="drop"'):
        seqhouse.sequence(keyed, entity="user", order_by="t", features=["item"], sequence_length=2)
    dropped = seqhouse.sequence(keyed, entity="user", order_by="t", features=["item"], sequence_length=2,
                                on_null_key="drop")
    assert dropped.to_pylist()[0]["item_sequence"] == [5, 7]


def test_empty_input_gives_an_empty_table_with_the_schema():
    table = events().slice(0, 0)
    got = seqhouse.sequence(table, entity="user", order_by="t", features=["item"], sequence_length=3)
    assert got.num_rows == 0 and "item_sequence" in got.column_names


def test_memory_limit_splits_or_spills_with_the_same_windows(tmp_path):
    table = events(rows=2000, string_users=True)
    options = dict(entity="user", order_by="t", features={"item": -1, "score": -1.0}, sequence_length=5)
    expected = reference(table, ["user"], ["t"], options["features"], 5)
    path = tmp_path / "events.parquet"
    pq.write_table(table, path, row_group_size=300)
    spill = tmp_path / "spill"
    spill.mkdir()
    inputs = {
        "table": lambda: table,
        "reader": lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=128)),
        "path": lambda: path,
    }
    for name, data in inputs.items():
        # One byte: everything spills, whatever the input.
        got = seqhouse.sequence(data(), memory_limit=1, spill_dir=spill, threads=2, **options)
        assert got.to_pylist() == expected, name
        assert list(spill.iterdir()) == [], f"{name}: spill files were left behind"
        # Spilling really happens: a spill folder that does not exist is named, in Python's words.
        with pytest.raises(seqhouse.SeqhouseError, match="spill_dir") as failed:
            seqhouse.sequence(data(), memory_limit=1, spill_dir=tmp_path / "missing", **options)
        assert str(tmp_path / "missing") in str(failed.value) and "memory_limit" in str(failed.value)
