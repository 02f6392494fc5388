#!/usr/bin/env python3
"""Regenerates examples/pupils/: a tiny knowledge-tracing log (pupils answering exercises).

Deterministic (fixed seed, standard library only). Rows are written in arrival order across pupils,
so grouping and ordering are seqhouse's job; a few answers share a timestamp (a bundle of exercises
shown together), where file order decides; some elapsed times are missing.
"""
import csv
import os
import random

rng = random.Random(2015)
HERE = os.path.dirname(os.path.abspath(__file__))


def subset(name, pupils, t0):
    rows = []
    for p in pupils:
        t = t0 + rng.randrange(0, 3600)
        ability = rng.random()
        for _ in range(rng.randrange(3, 27)):
            t += 0 if rng.random() < 0.08 else rng.randrange(5, 240)
            skill = rng.randrange(1, 6)
            exercise = skill * 100 + rng.randrange(0, 20)
            correct = int(rng.random() < 0.35 + 0.5 * ability)
            elapsed = "" if rng.random() < 0.1 else f"{rng.uniform(2, 90):.1f}"
            rows.append((t, p, exercise, skill, correct, elapsed))
    rows.sort(key=lambda r: r[0])  # arrival order; stable, so bundles keep their order
    folder = os.path.join(HERE, "pupils", name)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "answers.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["timestamp", "pupil_id", "exercise_id", "skill_id", "correct", "elapsed_s"])
        w.writerows(rows)


subset("train", [f"p{i:02d}" for i in range(1, 13)], 1_700_000_000)
subset("validation", [f"p{i:02d}" for i in range(13, 17)], 1_700_100_000)
