#!/usr/bin/env python3
"""Plays Athena's SQL engine for the tests: runs the adapter's Trino statements in DuckDB.

One JSON request per line on stdin, one JSON reply per line on stdout:
  {"sql": "...", "tables": {"db.table": ["/local/file.parquet", ...]}, "out": "/path.parquet" | null}
For a SELECT with `out`, the rows are written there as Parquet and {"rows": N} is returned; with
`"partition": "col"` too, `out` is a folder that receives `col=VALUE/` folders of Parquet files
without that column (as Athena's partitioned UNLOAD writes them) and {"rows": N, "files": [...]}
lists them relative to `out`;
otherwise {"result": [[...], ...]} with every value as text (like Athena's GetQueryResults).
Errors come back as {"error": "..."}. The Trino -> DuckDB transpile is check_sql.py's.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "seqhouse-sql", "tests"))
import duckdb  # noqa: E402
from check_sql import to_duckdb  # noqa: E402


def main():
    con = duckdb.connect()
    con.execute("SET integer_division = true")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            for name, files in request["tables"].items():
                schema, table = name.split(".", 1)
                con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
                con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{table}" AS SELECT * FROM read_parquet([{listing}])')
            query = to_duckdb(request["sql"])
            if request.get("out"):
                count = con.execute(f"SELECT count(*) FROM ({query})").fetchone()[0]
                reply = {"rows": count}
                partition = request.get("partition")
                if count and partition:
                    out = request["out"]
                    column = '"' + partition.replace('"', '""') + '"'
                    con.execute(f"COPY ({query}) TO '{out}' (FORMAT PARQUET, PARTITION_BY ({column}))")
                    reply["files"] = sorted(
                        os.path.relpath(os.path.join(root, f), out) for root, _, fs in os.walk(out) for f in fs
                    )
                elif count:
                    con.execute(f"COPY ({query}) TO '{request['out']}' (FORMAT PARQUET)")
            else:
                rows = con.execute(query).fetchall()
                reply = {"result": [[None if v is None else str(v) for v in row] for row in rows]}
        except Exception as e:  # reported to the test, which fails the query like Athena would
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
