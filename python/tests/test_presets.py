"""The presets against the peer tools' own published code (from PyPI, installed without their
dependencies by scripts/test): pyKT's generate_sequences and
generate_window_sequences (pykt-toolkit 0.0.38) on the real ASSISTments 2015 log; SASRec's partition
and sampler (recommenders 1.2.1) and RecBole's augmentation and split (recbole 1.2.1) on MovieLens."""

import ast
import importlib.metadata
import importlib.util
import json
import logging
import pathlib

import numpy
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import seqhouse

ASSIST = pathlib.Path(__file__).parents[2] / "testdata" / "assist2015" / "events.parquet"


def peer_file(distribution, suffix):
    return [f for f in importlib.metadata.files(distribution) if str(f).endswith(suffix)][0].locate()


def load_file(distribution, suffix):
    """A peer's module, loaded from its file alone: importing its package would import torch
    or tensorflow, which its sequencing code does not use."""
    spec = importlib.util.spec_from_file_location(suffix.replace("/", "_")[:-3], peer_file(distribution, suffix))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pykt_split_datasets():
    """pyKT's preprocessing module."""
    return load_file("pykt-toolkit", "preprocess/split_datasets.py")


@pytest.fixture(scope="module")
def log():
    """Every third pupil of ASSISTments 2015 (some with more than 200 answers), and the same
    pupils as pyKT's input: one row per pupil, its answers in order, joined by commas."""
    table = pq.read_table(ASSIST)
    table = table.filter(pc.equal(pc.bit_wise_and(table["user_id"], 3), 0))
    frame = table.to_pandas().sort_values(["user_id", "log_order"], kind="stable")
    grouped = frame.groupby("user_id", sort=True)
    pykt = grouped.agg(concepts=("skill_id", lambda v: ",".join(map(str, v))),
                       responses=("correct", lambda v: ",".join(map(str, v)))).reset_index()
    pykt = pykt.rename(columns={"user_id": "uid"})
    assert grouped.size().max() > 400, "some pupils must need several windows"
    return table, pykt


def windows_of(table, marks):
    """Each window as (pupil, concepts, responses, selectmasks) in pyKT's text, where pyKT marks
    the positions it scores 1 and the others with its pad, -1."""
    out = []
    for row in table.to_pylist():
        if marks == "target_mask":
            select = ["1" if m else "-1" for m in row["target_mask"]]
        else:
            select = ["-1" if pad else "1" for pad in row["is_pad_sequence"]]
        out.append((str(row["user_id"]), ",".join(map(str, row["skill_id_sequence"])),
                    ",".join(map(str, row["correct_sequence"])), ",".join(select)))
    return sorted(out)


def pykt_windows(frame):
    return sorted(zip(frame["uid"].astype(str), frame["concepts"], frame["responses"], frame["selectmasks"]))


def test_pykt_preset_is_pykts_generate_sequences(log):
    table, pykt = log
    keys = {"uid", "concepts", "responses"}
    expected = pykt_windows(pykt_split_datasets().generate_sequences(pykt, keys, min_seq_len=3, maxlen=200, pad_val=-1))
    got = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id", "correct"],
                            preset="pykt")
    assert len(expected) > 1000
    assert windows_of(got, "is_pad_sequence") == expected


def test_pykt_window_preset_is_pykts_generate_window_sequences(log):
    table, pykt = log
    keys = {"uid", "concepts", "responses"}
    expected = pykt_windows(pykt_split_datasets().generate_window_sequences(pykt, keys, maxlen=200, pad_val=-1))
    got = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id", "correct"],
                            preset="pykt-window")
    assert len(expected) > len(pykt) + 1000, "pupils past 200 answers get one window per later answer"
    assert windows_of(got, "target_mask") == expected


def test_explicit_options_win_over_a_preset_and_unknown_presets_are_named(log):
    table, _ = log
    given = seqhouse.sequence(table, entity="user_id", order_by="log_order", features={"skill_id": 0},
                              preset="pykt", sequence_length=50, padding="pre").to_pylist()
    short = next(r for r in given if r["sequence_length"] < 50)
    assert len(short["skill_id_sequence"]) == 50
    assert short["is_pad_sequence"][0] == 1 and short["skill_id_sequence"][0] == 0, "pre padding, skill_id's own pad"
    assert min(r["sequence_length"] for r in given) == 3, "the preset's min_length still holds"
    defaulted = seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["correct"], preset="pykt")
    short = next(r for r in defaulted.to_pylist() if r["sequence_length"] < 200)
    assert short["correct_sequence"][-1] == -1, "the preset's pad where none is given"
    with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
        seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id"], preset="sasrec2")
    assert "preset" in str(raised.value) and "pykt-window" in str(raised.value)
    with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
        seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id"])
    assert "sequence_length is required" in str(raised.value)
    # A preset that fits vocabularies needs publish(); the refusal names the keyword passed.
    for given, named in [(dict(preset="sasrec"), 'preset="sasrec"'), (dict(vocab="skill_id", sequence_length=20), "vocab fits")]:
        with pytest.raises(seqhouse.errors.InvalidArgumentError) as raised:
            seqhouse.sequence(table, entity="user_id", order_by="log_order", features=["skill_id"], **given)
        assert str(raised.value).startswith(named) and "seqhouse.publish()" in str(raised.value), str(raised.value)


# SASRec and RecBole on MovieLens: both renumber items with 0 as padding, so seqhouse's windows
# are compared through its vocabulary (id -> movieId, 0 -> 0) with the peers' raw movie ids.
MOVIELENS = pathlib.Path(__file__).parents[2] / "testdata" / "movielens-latest-small" / "ratings.csv"
HISTORY = 50  # SASRec's maxlen and RecBole's MAX_ITEM_LIST_LENGTH; the presets' N is one more


def peer_methods(distribution, suffix, names, stop_at=None):
    """Methods of a peer's module, taken from its source without importing it (RecBole's
    modules import torch, which these methods do not use). A method cut at `stop_at` (the
    first statement assigning that name) returns the locals the rest would pack into tensors."""
    tree = ast.parse(pathlib.Path(peer_file(distribution, suffix)).read_text())
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in names:
            if stop_at and node.name == stop_at[0]:
                cut = next(i for i, s in enumerate(node.body) if isinstance(s, ast.Assign)
                           and any(getattr(t, "id", None) == stop_at[1] for t in s.targets))
                node.body = node.body[:cut] + ast.parse(f"return {stop_at[2]}").body
            found[node.name] = node
    assert set(found) == set(names), f"{suffix} no longer defines {set(names) - set(found)}"
    namespace = {"np": numpy}
    exec(compile(ast.Module(body=list(found.values()), type_ignores=[]), suffix, "exec"), namespace)
    return [namespace[name] for name in names]


@pytest.fixture(scope="module")
def movielens():
    """The ratings in the peers' order: by user, then time, ties by movie id."""
    table = pacsv.read_csv(MOVIELENS)
    return table.sort_by([("userId", "ascending"), ("timestamp", "ascending"), ("movieId", "ascending")])


OOV = "out of vocabulary"


def published(tmp_path, preset):
    """Each split's windows as lists of movie ids (pad 0, OOV for id 2), by split name, and the
    movie ids the vocabulary (fitted on train) knows."""
    seqhouse.publish(str(MOVIELENS), str(tmp_path / preset), entity="userId", order_by=["timestamp", "movieId"],
                     features=["movieId"], preset=preset)
    out = {}
    for split in ("train", "validation", "test"):
        folder = tmp_path / preset / f"{split}_sequenced_{HISTORY + 1}"
        vocab = pq.read_table(folder / "_vocab" / "movieId.parquet").to_pydict()
        movie = dict(zip(vocab["id"], vocab["value"])) | {0: 0, 2: OOV}
        parts = json.loads((folder / "_manifest.json").read_text())["parts"]
        rows = [row for part in parts for row in pq.read_table(folder / part["path"]).to_pylist()]
        out[split] = [(row["userId"], [movie[i] for i in row["movieId_sequence"]]) for row in rows]
    return out, set(vocab["value"])


def as_fitted(known, items):
    """The peers number every movie of the whole log; seqhouse fits on train only, so a movie
    first seen in validation or test is out of vocabulary (2): no leakage from held-out events."""
    return [i if i == 0 or i in known else OOV for i in items]


def pre_padded(items):
    items = list(items)[-HISTORY:]
    return [0] * (HISTORY - len(items)) + items


def test_sasrec_preset_is_sasrecs_partition_and_sampler(movielens, tmp_path):
    """SASRec's leave-one-out partition and training sampler, as Microsoft Recommenders 1.2.1
    ships them (from kang205/SASRec): training pairs (seq, pos) from the sampler itself, the
    evaluation input as SASRec's evaluate builds it (the last maxlen items before the target)."""
    util = load_file("recommenders", "models/sasrec/util.py")
    sampler = load_file("recommenders", "models/sasrec/sampler.py")
    lines = zip(movielens["userId"].to_pylist(), movielens["movieId"].to_pylist(), movielens["timestamp"].to_pylist())
    ratings = tmp_path / "ratings.txt"
    ratings.write_text("".join(f"{u} {i} {t}\n" for u, i, t in lines))
    data = util.SASRecDataSet(filename=str(ratings), col_sep=" ")
    data.split()

    class Sampled(Exception):
        pass

    class FirstBatch:
        def put(self, batch):
            raise Sampled(list(batch))

    def sampled(train):
        # A one-user sampler always draws that user (np.random.randint(1, 2) is 1).
        try:
            sampler.sample_function({1: train}, 1, data.itemnum, 1, HISTORY, FirstBatch(), 0)
        except Sampled as batch:
            _, (seq,), (pos,), _ = batch.args[0]
            return seq.tolist(), pos.tolist()

    assert min(len(t) for t in data.user_train.values()) > 1, "every user is sampled"
    expected_train = sorted((u, *sampled(t)) for u, t in data.user_train.items())
    expected_valid = sorted((u, pre_padded(data.user_train[u]), v[0]) for u, v in data.user_valid.items())
    expected_test = sorted((u, pre_padded(data.user_train[u] + data.user_valid[u]), t[0])
                           for u, t in data.user_test.items())

    got, known = published(tmp_path, "sasrec")
    expected_valid = [(u, as_fitted(known, seq), *as_fitted(known, [t])) for u, seq, t in expected_valid]
    expected_test = [(u, as_fitted(known, seq), *as_fitted(known, [t])) for u, seq, t in expected_test]
    assert any(t == OOV for _, _, t in expected_test), "some held-out movies are unseen in train"
    train = sorted((u, w[:-1], [n if s else 0 for s, n in zip(w[:-1], w[1:])]) for u, w in got["train"])
    assert len(expected_train) == 610
    assert train == expected_train
    assert sorted((u, w[:-1], w[-1]) for u, w in got["validation"]) == expected_valid
    assert sorted((u, w[:-1], w[-1]) for u, w in got["test"]) == expected_test


def test_recbole_preset_is_recboles_augmentation_and_leave_one_out(movielens, tmp_path):
    """RecBole 1.2.1's SequentialDataset.data_augmentation (up to where it builds tensors) and
    its leave-one-out split (`eval_args: {split: {LS: valid_and_test}, order: TO}`)."""
    augment, = peer_methods("recbole", "data/dataset/sequential_dataset.py", ["data_augmentation"],
                            stop_at=("data_augmentation", "new_length",
                                     "uid_list, item_list_index, target_index, item_list_length"))
    grouped_index, leave_one_out = peer_methods("recbole", "data/dataset/dataset.py",
                                                ["_grouped_index", "_split_index_by_leave_one_out"])

    class Column:
        def __init__(self, values):
            self.values = numpy.asarray(values)

        def numpy(self):
            return self.values

    class Dataset:
        config = {"MAX_ITEM_LIST_LENGTH": HISTORY}
        uid_field, time_field = "user_id", "timestamp"
        logger = logging.getLogger("recbole")
        inter_feat = {"user_id": Column(movielens["userId"].to_pylist())}

        def _aug_presets(self):
            pass

        def _check_field(self, *fields):
            pass

        def sort(self, by, ascending):
            pass  # inter_feat is already in the order this asks for (ties by movie id)

    dataset = Dataset()
    users, history, targets, _ = augment(dataset)
    parts = leave_one_out(dataset, grouped_index(dataset, users), 2)
    items = movielens["movieId"].to_pylist()
    expected = {name: sorted((int(users[i]), items[history[i]], items[targets[i]]) for i in part)
                for name, part in zip(("train", "validation", "test"), parts)}

    got, known = published(tmp_path, "recbole")
    expected = {name: [(u, as_fitted(known, h), *as_fitted(known, [t])) for u, h, t in rows]
                for name, rows in expected.items()}
    for split, windows in got.items():
        real = [(u, [i for i in w if i != 0]) for u, w in windows]
        assert sorted((u, w[:-1], w[-1]) for u, w in real) == expected[split], split
    assert len(expected["train"]) > 90_000
