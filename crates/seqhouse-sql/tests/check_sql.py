#!/usr/bin/env python3
"""Checks generated Trino SQL offline: syntax with Trino's grammar, meaning by running it.

Reads a JSON list of cases on stdin. A case of `probes` (k-core probes) and `data` has each
probe's two counts printed. Any other case has `select` (the Trino SELECT over a table named
`events`), `stats` (the counts query), optionally `split_stats` (the per-split counts, all rows
printed), `unload` and `ddl`, `data` (a Parquet file that
plays `events`), `out` (where to write the result as Parquet), and with vocabularies
`vocab_tables` (table name to the Parquet file that plays it) and `vocab_counts` (the counts
queries, each written as Parquet to its path in `vocab_counts_out`); `stats` results are
printed as JSON lines. Syntax: `trino-query-parser` (Trino's own ANTLR grammar) parses the SELECT;
`trino-sql-validator` validates whole statements including UNLOAD, function names and arity,
and the DDL in the Hive dialect Athena runs it with. Meaning: sqlglot transpiles the SELECT to
DuckDB, which runs it. Documented gaps of that transpile are bridged: Trino divides integers
as integers (DuckDB: `SET integer_division`); Trino's `repeat(element, n)` is DuckDB's
`repeat([element], n)`; Trino's `from_base(hex, 16)` is DuckDB's `CAST('0x' || hex AS BIGINT)`;
and Trino's `length(varbinary)` is DuckDB's `octet_length(blob)`.
"""
import json
import sys

import duckdb
import sqlglot
import trino_query_parser
import trino_sql_validator
from sqlglot import exp


def validate(sql, dialect, what):
    result = trino_sql_validator.validate(sql, dialect=dialect)
    if not result.valid:
        raise SystemExit(f"{what} is not valid {dialect}: {result.error}\n{sql}")
    unknown = [w for w in getattr(result, "warnings", []) if type(w).__name__ == "FunctionWarning"]
    if unknown:
        raise SystemExit(f"{what} calls functions Trino does not document: {unknown}\n{sql}")


def to_duckdb(sql):
    def bridge(node):
        if isinstance(node, exp.Repeat):
            node.set("this", exp.Array(expressions=[node.this]))
        if isinstance(node, exp.FromBase):
            assert node.expression.name == "16", f"from_base in base {node.expression.name}"
            # A replaced node's subtree is not visited again: bridge it first.
            digits = node.this.transform(bridge)
            return exp.cast(exp.DPipe(this=exp.Literal.string("0x"), expression=digits), "BIGINT")
        if isinstance(node, exp.Length) and isinstance(node.this, exp.Encode):
            return exp.Anonymous(this="octet_length", expressions=[node.this])
        return node

    return sqlglot.parse_one(sql, read="trino").transform(bridge).sql(dialect="duckdb")


def main():
    cases = json.load(sys.stdin)
    con = duckdb.connect()
    con.execute("SET integer_division = true")
    for case in cases:
        name = case["name"]
        con.execute(f"CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet('{case['data']}')")
        if "probes" in case:
            # k-core probes only: each one's two counts.
            counts = []
            for probe in case["probes"]:
                trino_query_parser.parse_statement(probe)
                validate(probe, "trino", f"{name}: k-core probe")
                counts.append([int(v) for v in con.execute(to_duckdb(probe)).fetchone()])
            print(json.dumps({"name": name, "probes": counts}))
            continue
        trino_query_parser.parse_statement(case["select"])
        trino_query_parser.parse_statement(case["stats"])
        validate(case["select"], "trino", f"{name}: SELECT")
        validate(case["stats"], "trino", f"{name}: stats query")
        if "split_stats" in case:
            trino_query_parser.parse_statement(case["split_stats"])
            validate(case["split_stats"], "trino", f"{name}: split counts query")
        if "unload" in case:
            validate(case["unload"], "trino", f"{name}: UNLOAD")
        if "ddl" in case:
            validate(case["ddl"], "hive", f"{name}: DDL")
        for table, path in case.get("vocab_tables", {}).items():
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
        for j, counts in enumerate(case.get("vocab_counts", [])):
            trino_query_parser.parse_statement(counts)
            validate(counts, "trino", f"{name}: vocabulary counts query {j}")
            con.execute(f"COPY ({to_duckdb(counts)}) TO '{case['vocab_counts_out'][j]}' (FORMAT PARQUET)")
        con.execute(f"COPY ({to_duckdb(case['select'])}) TO '{case['out']}' (FORMAT PARQUET)")
        stats = con.execute(to_duckdb(case["stats"])).fetchone()
        reply = {"name": name, "stats": [int(v) for v in stats]}
        if "split_stats" in case:
            rows = con.execute(to_duckdb(case["split_stats"])).fetchall()
            reply["split_stats"] = [[int(v) for v in row] for row in rows]
        print(json.dumps(reply))


if __name__ == "__main__":
    main()
