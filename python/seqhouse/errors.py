"""The errors seqhouse raises. Every one is a :class:`SeqhouseError`; each subclass is also the
matching built-in exception, so ``except ValueError`` or ``except FileNotFoundError`` work too."""


class SeqhouseError(Exception):
    """Any error of seqhouse. The message names what the caller wrote (keywords, columns, files)."""


class InvalidArgumentError(SeqhouseError, ValueError):
    """A bad argument or value: an option out of range, a pad that is not of its column's type,
    a missing column, null keys with ``on_null_key="error"``."""


class InputNotFoundError(SeqhouseError, FileNotFoundError):
    """The input does not exist, holds no readable file, or (for :func:`seqhouse.read`) is not a
    published output."""


class OutputExistsError(SeqhouseError, FileExistsError):
    """The output already holds a seqhouse output and ``overwrite`` was not given."""


class OutputNotOursError(SeqhouseError, FileExistsError):
    """The output folder holds files seqhouse did not write; it is never written into or replaced."""


class OutputLockedError(SeqhouseError, BlockingIOError):
    """Another seqhouse run is writing the output."""


class EngineUnreachableError(SeqhouseError, ConnectionError):
    """A push-down engine's server (Athena, Spark Connect) cannot be reached; nothing ran."""


class JobInterrupted(SeqhouseError, KeyboardInterrupt):
    """The job was stopped (Ctrl-C, or a query timeout); nothing was published."""


__all__ = [
    "SeqhouseError",
    "InvalidArgumentError",
    "InputNotFoundError",
    "OutputExistsError",
    "OutputNotOursError",
    "OutputLockedError",
    "EngineUnreachableError",
    "JobInterrupted",
]
