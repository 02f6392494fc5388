#!/usr/bin/env python3
"""Driver of bench/run: generates data (cached in bench/.data), times every tool with
/usr/bin/time -v, checks the outputs agree, prints medians of 3 runs and ratios to the peers."""
import os
import re
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(HERE, ".data")
PYTHON = sys.executable
THREADS = 2
RUNS = 3
# seqhouse runs under these --memory-limit values at these sizes, besides its default (75% of
# the machine's memory): "seqhouse@2GiB" is a row of its own. Peers run with their defaults,
# which on this machine means most of its memory.
MEMORY_LIMITS = {10_000_000: ["512MiB"], 100_000_000: ["2GiB"]}
# Sizes where seqhouse runs only under its limits (the 100M target is under 2 GiB).
LIMITED_ONLY = {100_000_000}
# "seqhouse+split" is the same job split by entity into three outputs in the same pass (issue
# 18: within 10% of the unsplit job's wall time), at these sizes.
SPLIT = "train=0.8,validation=0.1,test=0.1"
SPLIT_SIZES = {1_000_000, 10_000_000}
# "TOOL+prep" is the prepared job (issue 19): the same windows with content_id as vocabulary
# ids, a time-gap feature and sessions, at these sizes (see peers.py).
PREPARED = ["--vocab", "content_id", "--time-delta", "lag=timestamp", "--session-gap", "3600000"]
PREP_SIZES = {1_000_000, 10_000_000}
SEQHOUSE = os.path.join(ROOT, "target", "release", "seqhouse")
# The I/O floor (issue 20): the job run in one piece, its read and write phases alone (see
# crates/seqhouse-cli/examples/io_floor.rs), at these sizes.
IO_FLOOR = os.path.join(ROOT, "target", "release", "examples", "io_floor")
FLOOR_SIZES = {10_000_000, 100_000_000}
GENERATOR = os.path.join(ROOT, "..", "shared", "tools", "gen_events.py")


def data(rows):
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, f"events_{rows}.parquet")
    if not os.path.exists(path):
        print(f"generating {rows:,} rows ...", flush=True)
        subprocess.run([PYTHON, GENERATOR, "--rows", str(rows), "--out", path, "--seed", "42"], check=True)
    return path


def command(tool, src, out, rows):
    if tool.startswith("seqhouse"):
        limit = ["--memory-limit", tool.split("@")[1]] if "@" in tool else []
        limit += ["--split", SPLIT] if tool == "seqhouse+split" else []
        prepared = tool == "seqhouse+prep"
        limit += PREPARED if prepared else []
        # A vocabulary's pad is its id 0.
        content = "content_id" if prepared else "content_id=-1"
        return [SEQHOUSE, "sequence"] + limit + [ "--input", src, "--output", out, "--entity", "user_id",
                "--order-by", "timestamp,row_id", "--feature", content, "--feature", "answered_correctly=-1",
                "--feature", "timestamp=-1", "--feature", "prior_question_elapsed_time=0", "-n", "100",
                "--threads", str(THREADS), "--compression", "zstd:3", "-q", "--overwrite"]
    return [PYTHON, os.path.join(HERE, "peers.py"), tool, src, out, str(THREADS)]


def measure(tool, src, out, rows):
    """One timed run, or None when the tool fails (a peer running out of memory, say)."""
    timing = out + ".time"
    if os.path.isdir(out):
        shutil.rmtree(out)
    elif os.path.exists(out):
        os.remove(out)
    # Every run starts with no writes pending from the one before: the outputs (and seqhouse's
    # spill files at 100M) are gigabytes, and the kernel writing back a previous run's dirty pages
    # stalled the next run's writes by up to 40 s on this VM.
    os.sync()
    done = subprocess.run(["/usr/bin/time", "-v", "-o", timing] + command(tool, src, out, rows))
    if done.returncode != 0:
        print(f"{tool} failed on {rows:,} rows (exit code {done.returncode})", flush=True)
        return None
    text = open(timing).read()
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", text)
    hours, minutes, seconds = (float(g) if g else 0.0 for g in wall.groups())
    return {
        "wall": hours * 3600 + minutes * 60 + seconds,
        "cpu": float(re.search(r"User time.*: ([\d.]+)", text).group(1)) + float(re.search(r"System time.*: ([\d.]+)", text).group(1)),
        "rss": int(re.search(r"Maximum resident set size.*: (\d+)", text).group(1)) * 1024,
    }


def phases(tool, src, out, rows, binary=SEQHOUSE):
    """seqhouse's own account of one more run (its `-v` summary): the time of each phase."""
    args = [binary] + ["-v" if a == "-q" else a for a in command(tool, src, out, rows)[1:]]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    line = next(line for line in done.stderr.splitlines() if "phases: " in line)
    return line.split("phases: ", 1)[1]


def seconds_of(summary, phase):
    return float(re.search(rf"\b{phase} ([\d.]+) s", summary).group(1))


def io_floor(src, out, rows):
    """The median over RUNS runs of the job's read and write phases run in one piece: decoding
    its input columns, and encoding and writing its output from memory."""
    floors = []
    for _ in range(RUNS):
        if os.path.isdir(out):
            shutil.rmtree(out)
        os.sync()
        summary = phases("seqhouse@20GiB", src, out, rows, binary=IO_FLOOR)
        floors.append(seconds_of(summary, "read") + seconds_of(summary, "write"))
    return statistics.median(floors)


def size(path):
    if os.path.isdir(path):
        return sum(size(os.path.join(path, f)) for f in os.listdir(path) if f.endswith(".parquet") or
                   os.path.isdir(os.path.join(path, f)))
    return os.path.getsize(path)


def folder_bytes(path):
    return {f: open(os.path.join(path, f), "rb").read() for f in sorted(os.listdir(path))}


def rows_of(path):
    import pyarrow.parquet as pq
    if os.path.isfile(path):
        return pq.read_metadata(path).num_rows
    # Parts, and the split folders' parts; not the vocabularies (_vocab/, or vocab/ of earlier versions).
    return sum(rows_of(os.path.join(path, f)) for f in os.listdir(path)
               if f.endswith(".parquet") or (os.path.isdir(os.path.join(path, f)) and f not in ("_vocab", "vocab")))


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 10_000_000, 100_000_000]
    print(f"machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; threads {THREADS}; medians of {RUNS} runs\n")
    for rows in sizes:
        src = data(rows)
        ours = ([] if rows in LIMITED_ONLY else ["seqhouse"]) + [f"seqhouse@{m}" for m in MEMORY_LIMITS.get(rows, [])]
        split = ["seqhouse+split"] if rows in SPLIT_SIZES and "seqhouse" in ours else []
        prep = ["seqhouse+prep", "duckdb+prep", "polars+prep"] if rows in PREP_SIZES and "seqhouse" in ours else []
        tools = ours + split + ["duckdb", "polars"] + (["pandas"] if rows <= 1_000_000 else []) + prep
        results, outputs = {}, {}
        for tool in tools:
            out = os.path.join(DATA, f"out_{tool}_{rows}" + ("" if tool.startswith("seqhouse") else ".parquet"))
            runs = []
            for _ in range(RUNS):
                run = measure(tool, src, out, rows)
                if run is None:
                    break
                runs.append(run)
            if len(runs) == RUNS:
                results[tool] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                outputs[tool] = out
        if not all(t in results for t in ours):
            raise SystemExit(f"seqhouse failed on {rows:,} rows")
        tools = [t for t in tools if t in results]
        if split:
            if "seqhouse+split" not in results:
                raise SystemExit(f"seqhouse+split failed on {rows:,} rows")
            # The splits hold the unsplit job's windows, distributed by entity.
            if rows_of(outputs["seqhouse+split"]) != rows_of(outputs["seqhouse"]):
                raise SystemExit("the splits do not hold the unsplit job's windows")
        compared = [t for t in tools if t != "seqhouse+split" and not t.endswith("+prep")]
        subprocess.run([PYTHON, os.path.join(HERE, "compare.py")] + [outputs[t] for t in compared], check=True)
        prep = [t for t in tools if t.endswith("+prep")]
        if prep:
            if "seqhouse+prep" not in results:
                raise SystemExit(f"seqhouse+prep failed on {rows:,} rows")
            subprocess.run([PYTHON, os.path.join(HERE, "compare.py")] + [outputs[t] for t in prep], check=True)
        # Memory limits change how seqhouse runs, never what it writes.
        for other in ours[1:]:
            if folder_bytes(outputs[other]) != folder_bytes(outputs[ours[0]]):
                raise SystemExit(f"{other} wrote other bytes than {ours[0]}")
        if len(ours) > 1:
            print(f"{', '.join(ours)}: byte-identical outputs")
        peers = [t for t in tools if not t.startswith("seqhouse") and not t.endswith("+prep")]
        if not peers:
            print(f"\n{rows:,} rows: no peer completed")
            continue
        if split:
            ratio = results["seqhouse+split"]["wall"] / results["seqhouse"]["wall"]
            print(f"--split {SPLIT}: wall {ratio:.2f}x the unsplit job's")
        fastest = min(peers, key=lambda t: results[t]["wall"])
        leanest = min(peers, key=lambda t: results[t]["rss"])
        print(f"\n{rows:,} rows, chunk mode, N = 100, 4 features, zstd 3")
        print("| tool | wall s | CPU s | peak RSS MiB | output rows | output MiB | wall vs fastest peer | RSS vs leanest peer |")
        print("|---|---|---|---|---|---|---|---|")
        for tool in [t for t in tools if not t.endswith("+prep")]:
            r = results[tool]
            print(f"| {tool} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss'] / 2**20:.0f} | {rows_of(outputs[tool]):,} | "
                  f"{size(outputs[tool]) / 2**20:.1f} | {r['wall'] / results[fastest]['wall']:.2f} ({fastest}) | "
                  f"{r['rss'] / results[leanest]['rss']:.2f} ({leanest}) |")


        prep_peers = [t for t in prep if t != "seqhouse+prep"]
        if prep_peers:
            fastest = min(prep_peers, key=lambda t: results[t]["wall"])
            leanest = min(prep_peers, key=lambda t: results[t]["rss"])
            print(f"\nthe same job prepared ({' '.join(PREPARED)}): {rows:,} rows")
            print("| tool | wall s | CPU s | peak RSS MiB | output rows | wall vs fastest peer | RSS vs leanest peer |")
            print("|---|---|---|---|---|---|---|")
            for tool in prep:
                r = results[tool]
                print(f"| {tool} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss'] / 2**20:.0f} | {rows_of(outputs[tool]):,} | "
                      f"{r['wall'] / results[fastest]['wall']:.2f} ({fastest}) | {r['rss'] / results[leanest]['rss']:.2f} ({leanest}) |")

        # One more run of each seqhouse job with -v: where its time goes. A job split into
        # entity ranges writes one range while it sorts the next, so phases overlap.
        print(f"\nseqhouse's phases at {rows:,} rows (one more run each, -v; phases overlap when ranges are pipelined):")
        for tool in [t for t in tools if t.startswith("seqhouse")]:
            print(f"- {tool}: {phases(tool, src, outputs[tool], rows)}")
        if rows in FLOOR_SIZES:
            floor = io_floor(src, os.path.join(DATA, f"out_floor_{rows}"), rows)
            ours = "seqhouse" if "seqhouse" in results else [t for t in tools if t.startswith("seqhouse@")][0]
            print(f"\nthe I/O floor at {rows:,} rows (the job's input decoded and its output written, in one piece; "
                  f"median of {RUNS}): {floor:.2f} s; {ours} / floor = {results[ours]['wall'] / floor:.2f}")


if __name__ == "__main__":
    main()
