"""seqhouse: event logs into the fixed-length, padded sequence arrays that sequence models train on.

The same engines, output contract and errors as the ``seqhouse`` command line, as Python calls:

- :func:`sequence` sequences a DataFrame, an Arrow table or stream, or a path, into a
  ``pyarrow.Table`` of windows, in memory.
- :func:`publish` runs the command line's ``sequence`` job on any engine (local, Athena, Spark)
  and publishes Parquet parts with a manifest, atomically.
- :func:`read` reads a published output through its manifest.
- :func:`to_numpy` turns a table of windows into numpy arrays (``[windows, N]`` per sequence).

Keyword arguments are the command line's options in snake case (``sequence_length`` for
``--sequence-length``); they take the same values and give the same results.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _seqhouse, errors
from .errors import (
    EngineUnreachableError,
    InputNotFoundError,
    InvalidArgumentError,
    JobInterrupted,
    OutputExistsError,
    OutputLockedError,
    OutputNotOursError,
    SeqhouseError,
)

__version__: str = _seqhouse.__version__

Columns = Union[str, Sequence[str]]
Features = Union[Mapping[str, Any], Sequence[str], str]
Splits = Union[Mapping[str, Any], str]
Vocab = Union[str, Sequence[str], Mapping[str, Optional[Mapping[str, int]]]]
"""Features to encode: ``"item"``, ``["item", "tag:min_count=5"]``, or
``{"item": {"min_count": 5, "max_size": 10000}, "tag": None}``."""
"""Named split values: a dict ``{"train": 0.8, "test": 0.2}`` or the command line's text
``"train=0.8,test=0.2"``."""


@dataclass(frozen=True)
class JobReport:
    """What one published job did: where it wrote and what it counted (as its manifest says)."""

    output: str
    """The output folder or URL."""
    subset: Optional[str]
    """The subset, when ``subsets`` were given."""
    input_rows: int
    """Events read."""
    entities: int
    """Entities sequenced."""
    windows: int
    """Windows written."""
    parts: int
    """Part files written."""
    output_bytes: int
    """Bytes written (parts and manifest)."""
    split: Optional[str] = None
    """The split, when the job was split (``split``, ``split_at`` or ``split_last``): one
    report per split, with its own output, entities and windows."""


# The keywords every job takes (the spec and the local engine's resources), as passed on.
_SPEC = ("entity", "order_by", "features", "preset", "sequence_length", "mode", "stride", "padding", "min_length",
         "fill_null",
         "on_null_key", "split", "split_seed", "folds", "split_at", "split_last", "target_mask",
         "dedupe_consecutive", "min_events", "k_core", "time_delta", "session_gap", "min_session_length", "vocab",
         "vocab_from", "threads",
         "memory_limit", "spill_dir")


def _spec(arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {name: arguments[name] for name in _SPEC}


def sequence(
    data: Any,
    *,
    entity: Columns,
    order_by: Columns,
    features: Features,
    sequence_length: Optional[int] = None,
    mode: Optional[str] = None,
    stride: Optional[int] = None,
    padding: Optional[str] = None,
    min_length: Optional[int] = None,
    fill_null: Optional[Mapping[str, Any]] = None,
    on_null_key: str = "error",
    split: Optional[Splits] = None,
    split_seed: Optional[int] = None,
    folds: Optional[int] = None,
    split_at: Optional[Splits] = None,
    split_last: Optional[Splits] = None,
    target_mask: bool = False,
    dedupe_consecutive: bool = False,
    min_events: Optional[int] = None,
    k_core: Optional[Mapping[str, int]] = None,
    time_delta: Optional[Mapping[str, str]] = None,
    session_gap: Union[str, int, None] = None,
    min_session_length: Optional[int] = None,
    vocab: Optional[Vocab] = None,
    vocab_from: Union[str, os.PathLike, None] = None,
    preset: Optional[str] = None,
    threads: Optional[int] = None,
    memory_limit: Union[int, str, None] = None,
    spill_dir: Union[str, os.PathLike, None] = None,
) -> Union[pa.Table, dict[str, pa.Table]]:
    """Sequences ``data`` into windows, returned as a ``pyarrow.Table`` (nothing is written).

    ``data`` is a path or URL (``str`` or ``os.PathLike``: a file or folder, local or
    ``s3://``, read as the command line reads ``--input``), or any object exporting the Arrow
    PyCapsule stream interface: a pyarrow Table or RecordBatchReader, a Polars DataFrame, a
    pandas DataFrame.

    ``entity`` and ``order_by`` are a column name or a list of them. ``features`` is a dict of
    column name to pad value (a Python value of the column's type), or a list of names (pads
    default to 0, 0.0, False, "" or the epoch). ``fill_null`` maps a feature to the value its
    nulls inside real events become.

    The table has exactly the output contract's columns and types (the entity columns,
    ``sequence_index``, ``sequence_length``, each ``NAME_sequence`` and ``is_pad_sequence``),
    rows ordered by entity then ``sequence_index``, built from the engine's buffers without a
    copy. The GIL is released while the job runs; Ctrl-C stops it with :class:`JobInterrupted`.

    ``memory_limit`` (bytes, or text such as ``"2GiB"``; default 75% of the machine's or the
    container's memory) bounds what sequencing holds besides the table it returns, as it does
    for :func:`publish`: a larger input is split by entity range and sequenced a range at a
    time, and one that does not fit at all is spilled to ``spill_dir`` (default: the system's
    temporary folder), as Arrow data held by seqhouse only until the job ends. Data passed in
    memory counts as held (a stream is read once): past the limit, what has arrived is written
    to ``spill_dir`` and the rest follows it there. The windows are the same however the job
    runs.

    ``split`` (entity fractions, with ``split_seed`` and ``folds``), ``split_at`` (cutoffs on
    the first ``order_by`` column) or ``split_last`` (each entity's last events) split the
    windows without leakage, in the same pass; the result is then a dict of tables by split
    name, in the order named. ``target_mask=True`` adds the ``target_mask`` column. They are the
    command line's ``--split``, ``--split-seed``, ``--folds``, ``--split-at``, ``--split-last``
    and ``--target-mask`` (README: "Splitting without leakage").

    Before windowing, ``dedupe_consecutive=True`` drops an event identical to its entity's
    previous event on every feature, and ``min_events`` drops entities with fewer events (both
    counted in the manifest). ``time_delta`` maps a new feature's name to ``"COL"`` or
    ``"COL:UNIT"``: each event's gap to its entity's previous event in that column (integers in
    their own units, dates in days, timestamps in ``s``, ``ms``, ``us`` or ``ns``; null for an
    entity's first event). Name it in ``features`` to place it and give its pad (default 0).
    ``k_core={"item_id": 5}`` repeatedly drops the events of item ids with fewer than 5
    events, the sessions left shorter than ``min_session_length`` (with ``session_gap``, whose
    sessions are cut first and kept) and the entities left with fewer than ``min_events``,
    until nothing changes.
    They are the command line's ``--dedupe-consecutive``, ``--min-events``, ``--k-core`` and ``--time-delta``
    (README: "Feature preparation"). ``session_gap`` (``"30m"``, ``"2h"``, or a number in the
    first ``order_by`` column's units) cuts each entity's events into sessions that windows never
    cross, adding ``session_index``; ``min_session_length`` drops shorter sessions (every engine;
    Athena needs a timestamp clock of at most milliseconds, Spark of at most microseconds).

    ``vocab`` names features whose values become ``int64`` vocabulary ids (0 padding, 1 null,
    2 out of vocabulary, then 3, 4, ... by descending count, ties by ascending value): a name,
    a list of names, or a dict of name to ``None`` or ``{"min_count": K, "max_size": M}``.
    ``vocab_from`` (a published output, or a folder of ``_vocab/NAME.parquet`` or ``NAME.parquet``
    vocabularies) applies existing vocabularies instead of fitting them. :func:`sequence` returns tables only, so it
    needs ``vocab_from`` with ``vocab``; :func:`publish` fits them on the first split or subset
    and writes them into every output (read them with :func:`read_vocab`). They are the command
    line's ``--vocab`` and ``--vocab-from`` (local engine only for now).

    ``preset`` (``"pykt"``, ``"pykt-window"``, ``"sasrec"``, ``"recbole"``) sets a peer tool's defaults for
    ``sequence_length``, ``mode``, ``stride``, ``min_length``, ``padding``, the features' pads
    and ``target_mask`` (``"sasrec"`` and ``"recbole"`` also ``split_last`` and ``vocab``, so
    with :func:`publish`); every keyword given explicitly wins (README: "Presets").
    ``sequence_length`` is required unless a preset gives it; ``mode`` defaults to
    ``"chunk"``, ``padding`` to ``"post"`` and ``min_length`` to 1.
    """
    options = _spec(locals())
    if isinstance(data, (str, os.PathLike)):
        options["input"] = os.fspath(data)
        return _seqhouse.sequence_path(options)
    if not hasattr(data, "__arrow_c_stream__"):
        # pandas before 2.2 exports no stream; pyarrow converts it (a copy).
        if type(data).__module__.startswith("pandas"):
            data = pa.Table.from_pandas(data, preserve_index=False)
        else:
            raise TypeError(
                f"data must be a path, or an Arrow table, stream or DataFrame, got {type(data).__name__}"
            )
    return _seqhouse.sequence_stream(data, options)


def publish(
    input: Union[str, os.PathLike],
    output: Union[str, os.PathLike],
    *,
    entity: Columns,
    order_by: Columns,
    features: Features,
    sequence_length: Optional[int] = None,
    mode: Optional[str] = None,
    stride: Optional[int] = None,
    padding: Optional[str] = None,
    min_length: Optional[int] = None,
    fill_null: Optional[Mapping[str, Any]] = None,
    on_null_key: str = "error",
    split: Optional[Splits] = None,
    split_seed: Optional[int] = None,
    folds: Optional[int] = None,
    split_at: Optional[Splits] = None,
    split_last: Optional[Splits] = None,
    target_mask: bool = False,
    dedupe_consecutive: bool = False,
    min_events: Optional[int] = None,
    k_core: Optional[Mapping[str, int]] = None,
    time_delta: Optional[Mapping[str, str]] = None,
    session_gap: Union[str, int, None] = None,
    min_session_length: Optional[int] = None,
    vocab: Optional[Vocab] = None,
    vocab_from: Union[str, os.PathLike, None] = None,
    preset: Optional[str] = None,
    threads: Optional[int] = None,
    memory_limit: Union[int, str, None] = None,
    spill_dir: Union[str, os.PathLike, None] = None,
    subsets: Optional[Sequence[str]] = None,
    overwrite: bool = False,
    engine: str = "local",
    **engine_options: Any,
) -> list[JobReport]:
    """Runs the command line's ``seqhouse sequence`` job and publishes its output.

    One job per subset (subset ``s`` reads ``INPUT/s/`` and writes ``OUTPUT/s_sequenced_N/``)
    or, with ``split``, ``split_at`` or ``split_last``, one job whose splits are published as
    ``OUTPUT/NAME_sequenced_N/`` (one report per split),
    each published atomically with its ``_manifest.json``, on ``engine`` ``"local"``,
    ``"athena"`` or ``"spark"``. ``engine_options`` are the command line's engine and S3
    options in snake case: ``athena_workgroup=``, ``athena_database=``, ``athena_results=``,
    ``athena_table=``, ``athena_endpoint=``, ``spark_remote=``, ``s3_endpoint=``,
    ``s3_region=``, ``s3_path_style=``, ``compression=``, ``rows_per_part=``, ...
    An unknown keyword is a ``TypeError``.

    Returns one :class:`JobReport` per job. The GIL is released while the jobs run; Ctrl-C
    stops them with :class:`JobInterrupted`, and a job not yet published leaves nothing behind.
    """
    options = _spec(locals())
    options.update(
        {"input": os.fspath(input), "output": os.fspath(output), "subsets": subsets, "overwrite": overwrite,
         "engine": engine}
    )
    for name, value in engine_options.items():
        if name in options or name in ("config", "explain"):
            raise TypeError(f"publish() got an unexpected keyword argument '{name}'")
        options[name] = value
    return [JobReport(**report) for report in _seqhouse.publish(options)]


def read(output: Union[str, os.PathLike], **s3_options: Any) -> pa.Table:
    """Reads a published output through its manifest: exactly the parts ``_manifest.json``
    lists, in its order. A folder without a manifest raises :class:`InputNotFoundError`.
    ``s3_options`` are ``s3_endpoint=``, ``s3_region=``, ``s3_path_style=``, ``s3_timeout=``,
    ``s3_max_retries=``."""
    for name in s3_options:
        if not name.startswith("s3_"):
            raise TypeError(f"read() got an unexpected keyword argument '{name}'")
    return _seqhouse.read(os.fspath(output), dict(s3_options))


def read_vocab(output: Union[str, os.PathLike], feature: str, **s3_options: Any) -> pa.Table:
    """Reads the vocabulary of ``feature`` that a published output lists in its manifest:
    columns ``id`` (int64), ``value`` (the column's type) and ``count``, in id order, after
    checking the file's SHA-256 against the manifest. Ids 0 (padding), 1 (null) and 2 (out of
    vocabulary) have no rows. ``s3_options`` are as for :func:`read`."""
    for name in s3_options:
        if not name.startswith("s3_"):
            raise TypeError(f"read_vocab() got an unexpected keyword argument '{name}'")
    return _seqhouse.read_vocab(os.fspath(output), feature, dict(s3_options))


def to_numpy(table: pa.Table) -> dict[str, np.ndarray]:
    """The columns of a table of windows as numpy arrays.

    Each ``NAME_sequence`` and ``is_pad_sequence`` becomes a 2-D array ``[windows, N]``; the
    scalar columns (entity, ``sequence_index``, ``sequence_length``) 1-D arrays. A column of one
    chunk without nulls is viewed without a copy; a column of several chunks is concatenated
    (a copy), and a sequence with null values becomes a float array with NaN there (a copy).

    For torch: ``{name: torch.from_numpy(array) for name, array in to_numpy(table).items()}``
    shares the memory (as does ``torch.from_dlpack(array)``).
    """
    arrays: dict[str, np.ndarray] = {}
    for name, column in zip(table.column_names, table.columns):
        if pa.types.is_fixed_size_list(column.type):
            width = column.type.list_size
            chunks = [chunk.flatten() for chunk in column.chunks]
            values = chunks[0] if len(chunks) == 1 else pa.concat_arrays(chunks) if chunks else pa.array(
                [], type=column.type.value_type
            )
            numeric = pa.types.is_integer(values.type) or pa.types.is_floating(values.type)
            flat = values.to_numpy(zero_copy_only=numeric and values.null_count == 0)
            arrays[name] = flat.reshape(-1, width)
        else:
            arrays[name] = column.to_numpy()
    return arrays


# Spelled out, not built from errors.__all__, so that type checkers read it (stubtest does not
# follow `+= errors.__all__`); tests/test_stubs.py checks that it names every error class.
__all__ = [
    "sequence",
    "publish",
    "read",
    "read_vocab",
    "to_numpy",
    "JobReport",
    "__version__",
    "SeqhouseError",
    "InvalidArgumentError",
    "InputNotFoundError",
    "OutputExistsError",
    "OutputNotOursError",
    "OutputLockedError",
    "EngineUnreachableError",
    "JobInterrupted",
]
