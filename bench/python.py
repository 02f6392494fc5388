#!/usr/bin/env python3
"""seqhouse.sequence in memory against Polars' fastest expression of the same windows.

    python bench/python.py [ROWS]        (default 10000000; run with the venv holding seqhouse)

The log (bench/.data, as bench/run generates it) is read into memory first, as a pyarrow Table
for seqhouse and a Polars DataFrame for Polars. Then the bench/run job (chunk, N = 100, the same
four features, 2 threads) runs on it, each tool in a process of its own, 3 times: the table
gives medians of the wall time of the call and of the memory it adds (peak RSS during the call
minus RSS before it), and the outputs are checked equal. Not a test: it prints a table.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from peers import FEATURES, N  # noqa: E402

THREADS = 2
RUNS = 3


def status(field):
    with open("/proc/self/status") as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def rss():
    """RSS now, with the peak reset to it (Linux: writing 5 to clear_refs resets VmHWM)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    return status("VmRSS")


def peak():
    return status("VmHWM")


def seqhouse_run(src):
    import pyarrow.parquet as pq
    import seqhouse

    table = pq.read_table(src, columns=["user_id", "timestamp", "row_id"] + [c for c, _ in FEATURES if c != "timestamp"])
    before = rss()
    started = time.perf_counter()
    windows = seqhouse.sequence(
        table, entity="user_id", order_by=["timestamp", "row_id"], features=dict(FEATURES), sequence_length=N,
        threads=THREADS,
    )
    wall = time.perf_counter() - started
    return wall, peak() - before, windows.num_rows, windows.column("content_id_sequence").chunk(0)[0].as_py()


def polars_run(src):
    os.environ["POLARS_MAX_THREADS"] = str(THREADS)
    import polars as pl

    cols = ["user_id", "timestamp", "row_id"] + [c for c, _ in FEATURES if c != "timestamp"]
    df = pl.read_parquet(src, columns=cols)
    before = rss()
    started = time.perf_counter()
    ordered = df.sort(["user_id", "timestamp", "row_id"])
    ordered = ordered.with_columns((pl.int_range(pl.len()).over("user_id") // N).alias("sequence_index"))
    windows = ordered.group_by(["user_id", "sequence_index"], maintain_order=True).agg(
        [pl.len().cast(pl.Int32).alias("sequence_length")] + [pl.col(c) for c, _ in FEATURES]
    )
    padded = [
        pl.concat_list(
            [pl.col(c), pl.lit(p, dtype=windows.schema[c].inner).repeat_by(N - pl.col("sequence_length"))]
        ).alias(f"{c}_sequence")
        for c, p in FEATURES
    ]
    mask = pl.concat_list(
        [pl.lit(0, dtype=pl.Int8).repeat_by(pl.col("sequence_length")),
         pl.lit(1, dtype=pl.Int8).repeat_by(N - pl.col("sequence_length"))]
    ).alias("is_pad_sequence")
    result = windows.select(["user_id", "sequence_index", "sequence_length"] + padded + [mask])
    wall = time.perf_counter() - started
    return wall, peak() - before, result.height, result["content_id_sequence"][0].to_list()


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("seqhouse", "polars"):
        tool, src = sys.argv[1], sys.argv[2]
        print(json.dumps((seqhouse_run if tool == "seqhouse" else polars_run)(src)))
        return
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    src = os.path.join(HERE, ".data", f"events_{rows}.parquet")
    if not os.path.exists(src):
        sys.exit(f"{src} is missing: bench/run {rows} generates it")
    results = {}
    for _ in range(RUNS):
        for tool in ("seqhouse", "polars"):
            out = subprocess.run([sys.executable, __file__, tool, src], check=True, capture_output=True, text=True)
            results.setdefault(tool, []).append(json.loads(out.stdout))
    (_, _, windows, first), (_, _, polars_windows, polars_first) = results["seqhouse"][0], results["polars"][0]
    assert (windows, first) == (polars_windows, polars_first), "the outputs differ"
    print(f"{rows:,} rows in memory, {THREADS} threads, chunk N = {N}: {windows:,} windows (equal in both)")
    print(f"{'tool':10} {'wall s':>8} {'added MiB':>10}")
    medians = {}
    for tool, runs in results.items():
        wall = statistics.median(r[0] for r in runs)
        added = statistics.median(r[1] for r in runs) / 2**20
        medians[tool] = (wall, added)
        print(f"{tool:10} {wall:8.2f} {added:10.0f}")
    (s_wall, s_mem), (p_wall, p_mem) = medians["seqhouse"], medians["polars"]
    print(f"seqhouse / polars: wall {s_wall / p_wall:.2f}, added memory {s_mem / max(p_mem, 1):.2f}")


if __name__ == "__main__":
    main()
