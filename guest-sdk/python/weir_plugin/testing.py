"""Runs a plugin module's functions as weir would, for pytest: init, prepare, then rows.

    import plugin  # registers the functions
    from weir_plugin.testing import run

    def test_lowercases():
        assert run([{"email": "A@B.ORG"}], config={"columns": ["email"]}) == [{"email": "a@b.org"}]

Rows are dicts; the table's columns are the keys of the first row unless ``columns``
names them (``["id int8", "email text"]``, like ``weir plugin test`` samples). What comes
back is the rows that pass, as dicts of every column (and the routing keys a map set).
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Optional

from . import Column, Table, call_init, call_prepare, call_rows


def run(
    rows: list,
    config: Optional[Any] = None,
    table: str = "public.sample",
    columns: Optional[Iterable[str]] = None,
) -> list:
    call_init(json.dumps(config if config is not None else {}))
    schema, _, name = table.rpartition(".")
    if columns is None:
        keys: list = []
        for row in rows:
            keys.extend(k for k in row if k not in keys)
        declared = [Column(k, "", True) for k in keys]
    else:
        declared = [Column(*(c.split(" ", 1) if " " in c else (c, "")), True) for c in columns]
    plan = call_prepare(Table(schema or "public", name, tuple(declared)))
    if not plan.wants:
        return [dict(row) for row in rows]
    values = [[row.get(n) for n in plan.names] for row in rows]
    kind, answer = call_rows(plan, values)
    if kind == "selection":
        return [dict(row) for row, keep in zip(rows, answer) if keep]
    out = []
    for row, new in zip(rows, answer):
        merged = dict(row)
        merged.update(zip(plan.names, new))
        merged.update((n, v) for n, v in zip(plan.routing, new[len(plan.names):]) if v is not None)
        out.append(merged)
    return out
