"""A team's orchestrator with seqhouse plugged in: it calls only the warehouse it is given.

    MODE=local python examples/orchestrator.py       # this machine (the default)
    MODE=athena python examples/orchestrator.py      # pushed down to Athena (S3 locations)

It writes OUTPUT/train_sequenced_10/ and OUTPUT/validation_sequenced_10/ (OUTPUT defaults to
examples/out), each published atomically with its manifest, and prints what each job did.
"""

import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import seqhouse

HERE = pathlib.Path(__file__).resolve().parent


class Warehouse(Protocol):
    """What the orchestrator needs of a warehouse: sequence a dataset's subsets into a folder."""

    def sequence(self, input: str, output: str, subsets: list[str]) -> list[seqhouse.JobReport]: ...


@dataclass
class SeqhouseWarehouse:
    """seqhouse on one engine, with the job's options fixed."""

    engine: str
    options: dict[str, Any] = field(default_factory=dict)

    def sequence(self, input: str, output: str, subsets: list[str]) -> list[seqhouse.JobReport]:
        return seqhouse.publish(
            input, output, subsets=subsets, overwrite=True, engine=self.engine,
            entity="pupil_id", order_by="timestamp",
            features={"exercise_id": -1, "skill_id": -1, "correct": -1, "elapsed_s": 0.0},
            fill_null={"elapsed_s": -1.0}, sequence_length=10, min_length=2, **self.options,
        )


def run(warehouse: Warehouse, input: str, output: str) -> None:
    """The pipeline step: every subset through the injected warehouse."""
    for report in warehouse.sequence(input, output, ["train", "validation"]):
        print(f"{report.subset}: {report.windows} windows of {report.entities} pupils -> {report.output}")


def main() -> None:
    if os.environ.get("MODE", "local") == "local":
        warehouse: Warehouse = SeqhouseWarehouse("local")
        input = str(HERE / "pupils")
    else:
        warehouse = SeqhouseWarehouse("athena", {"athena_workgroup": os.environ.get("ATHENA_WORKGROUP", "primary")})
        input = os.environ["INPUT"]  # s3://BUCKET/PREFIX holding train/ and validation/
    run(warehouse, input, os.environ.get("OUTPUT", str(HERE / "out")))


if __name__ == "__main__":
    main()
