#!/usr/bin/env python3
"""The benchmark job done by a peer tool, for bench/run.

python peers.py TOOL INPUT OUTPUT THREADS

The job: per user_id, order by (timestamp, row_id), chunks of N = 100 (sequence_index = position
// 100), features content_id, answered_correctly, timestamp padded with -1 and
prior_question_elapsed_time padded with 0, post padding, is_pad_sequence mask; Parquet output
with zstd level 3. Each tool does it the way its users would write it.
"""
import sys

N = 100
FEATURES = [("content_id", -1), ("answered_correctly", -1), ("timestamp", -1), ("prior_question_elapsed_time", 0)]


def duckdb_job(src, out, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    aggs = ", ".join(f"list({c} ORDER BY pos) AS {c}_l" for c, _ in FEATURES)
    pads = ", ".join(
        f"list_concat({c}_l, repeat([{p}::{'FLOAT' if c.startswith('prior') else 'BIGINT'}], {N} - len({c}_l))) AS {c}_sequence"
        for c, p in FEATURES
    )
    con.execute(
        f"""
        COPY (
          WITH numbered AS (
            SELECT *, row_number() OVER (PARTITION BY user_id ORDER BY timestamp, row_id) - 1 AS pos
            FROM read_parquet('{src}')
          ),
          windows AS (
            SELECT user_id, pos // {N} AS sequence_index, count(*) AS sequence_length, {aggs}
            FROM numbered GROUP BY user_id, pos // {N}
          )
          SELECT user_id, sequence_index, sequence_length::INTEGER AS sequence_length, {pads},
                 list_concat(repeat([0::TINYINT], sequence_length), repeat([1::TINYINT], {N} - sequence_length)) AS is_pad_sequence
          FROM windows
        ) TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 3)
        """
    )


def polars_job(src, out, threads):
    import os

    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    cols = ["user_id", "timestamp", "row_id"] + [c for c, _ in FEATURES if c != "timestamp"]
    df = pl.read_parquet(src, columns=cols).sort(["user_id", "timestamp", "row_id"])
    df = df.with_columns((pl.int_range(pl.len()).over("user_id") // N).alias("sequence_index"))
    windows = df.group_by(["user_id", "sequence_index"], maintain_order=True).agg(
        [pl.len().cast(pl.Int32).alias("sequence_length")] + [pl.col(c) for c, _ in FEATURES]
    )
    padded = [
        pl.concat_list([pl.col(c), pl.lit(p, dtype=windows.schema[c].inner).repeat_by(N - pl.col("sequence_length"))]).alias(
            f"{c}_sequence"
        )
        for c, p in FEATURES
    ]
    mask = pl.concat_list(
        [pl.lit(0, dtype=pl.Int8).repeat_by(pl.col("sequence_length")), pl.lit(1, dtype=pl.Int8).repeat_by(N - pl.col("sequence_length"))]
    ).alias("is_pad_sequence")
    windows.select(["user_id", "sequence_index", "sequence_length"] + padded + [mask]).write_parquet(
        out, compression="zstd", compression_level=3
    )


def pandas_job(src, out, threads):
    import numpy as np
    import pandas as pd

    df = pd.read_parquet(src).sort_values(["user_id", "timestamp", "row_id"], kind="stable")
    df["sequence_index"] = df.groupby("user_id").cumcount() // N
    rows = []
    for (user, index), g in df.groupby(["user_id", "sequence_index"], sort=True):
        length = len(g)
        row = {"user_id": user, "sequence_index": index, "sequence_length": length}
        for c, p in FEATURES:
            values = g[c].to_numpy()
            row[f"{c}_sequence"] = np.concatenate([values, np.full(N - length, p, dtype=values.dtype)])
        row["is_pad_sequence"] = np.concatenate([np.zeros(length, np.int8), np.ones(N - length, np.int8)])
        rows.append(row)
    pd.DataFrame(rows).to_parquet(out, compression="zstd")


if __name__ == "__main__":
    tool, src, out, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    {"duckdb": duckdb_job, "polars": polars_job, "pandas": pandas_job}[tool](src, out, threads)
