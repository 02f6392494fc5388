#!/usr/bin/env python3
"""The benchmark job done by a peer tool, for bench/run.

python peers.py TOOL INPUT OUTPUT THREADS

TOOL is duckdb, polars or pandas for the plain job, duckdb+prep or polars+prep for the
prepared one (below).

The job: per user_id, order by (timestamp, row_id), chunks of N = 100 (sequence_index = position
// 100), features content_id, answered_correctly, timestamp padded with -1 and
prior_question_elapsed_time padded with 0, post padding, is_pad_sequence mask; Parquet output
with zstd level 3. Each tool does it the way its users would write it.

The prepared job (seqhouse --vocab content_id --time-delta lag=timestamp --session-gap 3600000)
adds, before the windows: content_id as vocabulary ids (3, 4, ... by descending count, ties by
ascending value; padded with 0); a feature lag, each event's timestamp minus the user's previous
one (null for the first, padded with 0); sessions where lag exceeds 3,600,000 ms, each cut into
its own chunks (session_index, then sequence_index within the session).
"""
import sys

N = 100
FEATURES = [("content_id", -1), ("answered_correctly", -1), ("timestamp", -1), ("prior_question_elapsed_time", 0)]


def duckdb_lists(features):
    """The SELECT items that gather each feature's values of a window in order (`aggs`), and
    that pad those lists to N (`pads`)."""
    aggs = ", ".join(f"list({c} ORDER BY pos) AS {c}_l" for c, _ in features)
    pads = ", ".join(
        f"list_concat({c}_l, repeat([{p}::{'FLOAT' if c.startswith('prior') else 'BIGINT'}], {N} - len({c}_l))) AS {c}_sequence"
        for c, p in features
    )
    return aggs, pads


def duckdb_job(src, out, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    aggs, pads = duckdb_lists(FEATURES)
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


def polars_windows(df, keys, features, out):
    """Groups the sorted, numbered events `df` into windows by `keys`, pads each feature to N and
    writes them with the mask."""
    import polars as pl

    windows = df.group_by(keys, maintain_order=True).agg(
        [pl.len().cast(pl.Int32).alias("sequence_length")] + [pl.col(c) for c, _ in features]
    )
    padded = [
        pl.concat_list([pl.col(c), pl.lit(p, dtype=windows.schema[c].inner).repeat_by(N - pl.col("sequence_length"))]).alias(
            f"{c}_sequence"
        )
        for c, p in features
    ]
    mask = pl.concat_list(
        [pl.lit(0, dtype=pl.Int8).repeat_by(pl.col("sequence_length")), pl.lit(1, dtype=pl.Int8).repeat_by(N - pl.col("sequence_length"))]
    ).alias("is_pad_sequence")
    windows.select(keys + ["sequence_length"] + padded + [mask]).write_parquet(out, compression="zstd", compression_level=3)


def polars_job(src, out, threads):
    import os

    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    cols = ["user_id", "timestamp", "row_id"] + [c for c, _ in FEATURES if c != "timestamp"]
    df = pl.read_parquet(src, columns=cols).sort(["user_id", "timestamp", "row_id"])
    df = df.with_columns((pl.int_range(pl.len()).over("user_id") // N).alias("sequence_index"))
    polars_windows(df, ["user_id", "sequence_index"], FEATURES, out)


SESSION_GAP = 3_600_000
PREP_FEATURES = [("content_id", 0), ("answered_correctly", -1), ("timestamp", -1), ("prior_question_elapsed_time", 0),
                 ("lag", 0)]


def duckdb_prep_job(src, out, threads):
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    aggs, pads = duckdb_lists(PREP_FEATURES)
    con.execute(
        f"""
        COPY (
          WITH src AS (SELECT * FROM read_parquet('{src}')),
          vocab AS (
            SELECT content_id AS value, row_number() OVER (ORDER BY count(*) DESC, content_id) + 2 AS id
            FROM src WHERE content_id IS NOT NULL GROUP BY content_id
          ),
          lagged AS (
            SELECT src.user_id, src.timestamp, src.row_id, src.answered_correctly, src.prior_question_elapsed_time,
                   CASE WHEN src.content_id IS NULL THEN 1 ELSE coalesce(vocab.id, 2) END AS content_id,
                   src.timestamp - lag(src.timestamp) OVER (PARTITION BY src.user_id ORDER BY src.timestamp, src.row_id) AS lag
            FROM src LEFT JOIN vocab ON src.content_id = vocab.value
          ),
          sessioned AS (
            SELECT *, sum(CASE WHEN lag > {SESSION_GAP} THEN 1 ELSE 0 END)
                        OVER (PARTITION BY user_id ORDER BY timestamp, row_id ROWS UNBOUNDED PRECEDING) AS session_index
            FROM lagged
          ),
          numbered AS (
            SELECT *, row_number() OVER (PARTITION BY user_id, session_index ORDER BY timestamp, row_id) - 1 AS pos
            FROM sessioned
          ),
          windows AS (
            SELECT user_id, session_index, pos // {N} AS sequence_index, count(*) AS sequence_length, {aggs}
            FROM numbered GROUP BY user_id, session_index, pos // {N}
          )
          SELECT user_id, session_index::INTEGER AS session_index, sequence_index,
                 sequence_length::INTEGER AS sequence_length, {pads},
                 list_concat(repeat([0::TINYINT], sequence_length), repeat([1::TINYINT], {N} - sequence_length)) AS is_pad_sequence
          FROM windows
        ) TO '{out}' (FORMAT PARQUET, COMPRESSION ZSTD, COMPRESSION_LEVEL 3)
        """
    )


def polars_prep_job(src, out, threads):
    import os

    os.environ["POLARS_MAX_THREADS"] = str(threads)
    import polars as pl

    cols = ["user_id", "timestamp", "row_id", "content_id", "answered_correctly", "prior_question_elapsed_time"]
    df = pl.read_parquet(src, columns=cols).sort(["user_id", "timestamp", "row_id"])
    counts = (
        df.drop_nulls("content_id").group_by("content_id").len()
        .sort(["len", "content_id"], descending=[True, False])
        .with_row_index("id", offset=3)
    )
    content = pl.col("content_id")
    df = df.with_columns(
        pl.when(content.is_null()).then(pl.lit(1, pl.Int64))
        .otherwise(content.replace_strict(counts["content_id"], counts["id"].cast(pl.Int64), default=2))
        .alias("content_id"),
        pl.col("timestamp").diff().over("user_id").alias("lag"),
    )
    df = df.with_columns(
        (pl.col("lag") > SESSION_GAP).fill_null(False).cast(pl.Int32).cum_sum().over("user_id").alias("session_index")
    )
    df = df.with_columns((pl.int_range(pl.len()).over(["user_id", "session_index"]) // N).alias("sequence_index"))
    polars_windows(df, ["user_id", "session_index", "sequence_index"], PREP_FEATURES, out)


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
    jobs = {"duckdb": duckdb_job, "polars": polars_job, "pandas": pandas_job, "duckdb+prep": duckdb_prep_job,
            "polars+prep": polars_prep_job}
    jobs[tool](src, out, threads)
