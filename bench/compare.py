#!/usr/bin/env python3
"""Checks that every benchmark output holds the same sequences: python compare.py DIR..."""
import os
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ["user_id", "sequence_index", "sequence_length", "content_id_sequence", "answered_correctly_sequence",
           "timestamp_sequence", "prior_question_elapsed_time_sequence", "is_pad_sequence"]
# The prepared job's outputs have these too.
PREPARED = ["session_index", "lag_sequence"]


def parquet_files(path):
    if os.path.isdir(path):
        return sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".parquet"))
    return [path]


def read_column(path, name):
    return pa.concat_arrays([pq.read_table(f, columns=[name])[name].combine_chunks() for f in parquet_files(path)])


def window_order(path, prepared):
    """Positions of the windows sorted by (user_id, session_index, sequence_index)."""
    keys = {"u": pc.cast(read_column(path, "user_id"), pa.int64())}
    if prepared:
        keys["t"] = pc.cast(read_column(path, "session_index"), pa.int64())
    keys["s"] = pc.cast(read_column(path, "sequence_index"), pa.int64())
    return pc.sort_indices(pa.table(keys), sort_keys=[(k, "ascending") for k in keys])


def normalized(column):
    if pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        column = column.cast(pa.list_(column.type.value_type))
    if pa.types.is_list(column.type):
        # Compare values as float64 (tools differ in integer widths and float32 vs 64).
        column = pa.ListArray.from_arrays(column.offsets, pc.cast(column.flatten(), pa.float64()))
    else:
        column = pc.cast(column, pa.int64())
    return column


def main():
    # Column by column, so that 100M-row outputs need not fit in memory at once.
    paths = sys.argv[1:]
    prepared = "session_index" in pq.read_schema(parquet_files(paths[0])[0]).names
    orders = {p: window_order(p, prepared) for p in paths}
    windows = len(orders[paths[0]])
    for name in COLUMNS + (PREPARED if prepared else []):
        first = normalized(read_column(paths[0], name).take(orders[paths[0]]))
        for other_path in paths[1:]:
            other = normalized(read_column(other_path, name).take(orders[other_path]))
            if not first.equals(other):
                raise SystemExit(f"{other_path}: column {name} differs from {paths[0]}")
    print(f"all {len(paths)} outputs agree ({windows} windows)")


if __name__ == "__main__":
    main()
