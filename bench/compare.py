#!/usr/bin/env python3
"""Checks that every benchmark output holds the same sequences: python compare.py DIR..."""
import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

COLUMNS = ["user_id", "sequence_index", "sequence_length", "content_id_sequence", "answered_correctly_sequence",
           "timestamp_sequence", "prior_question_elapsed_time_sequence", "is_pad_sequence"]


def load(path):
    table = pq.read_table(path, columns=COLUMNS)
    table = table.sort_by([("user_id", "ascending"), ("sequence_index", "ascending")])
    out = {}
    for name in COLUMNS:
        column = table[name].combine_chunks()
        if pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
            column = column.cast(pa.list_(column.type.value_type))
        if pa.types.is_list(column.type):
            # Compare values as float64 (tools differ in integer widths and float32 vs 64).
            column = pa.ListArray.from_arrays(column.offsets, pc.cast(column.flatten(), pa.float64()))
        else:
            column = pc.cast(column, pa.int64())
        out[name] = column
    return out


def main():
    first = load(sys.argv[1])
    for other_path in sys.argv[2:]:
        other = load(other_path)
        for name in COLUMNS:
            if not first[name].equals(other[name]):
                raise SystemExit(f"{other_path}: column {name} differs from {sys.argv[1]}")
    print(f"all {len(sys.argv) - 1} outputs agree ({len(first['user_id'])} windows)")


if __name__ == "__main__":
    main()
