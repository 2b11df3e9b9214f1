"""weir's Python plugin SDK: a plugin is a function over a row dict.

A plugin module (``plugin.py``) registers one ``map`` or one ``filter`` function, and
optionally ``init`` (the stage's config, parsed) and ``prepare`` (which columns a
table's rows should carry)::

    import weir_plugin as weir

    @weir.init
    def configure(config):
        if "columns" not in config:
            raise weir.InvalidConfig("config needs columns")

    @weir.map
    def lowercase(row, table):
        for name, value in row.items():
            if isinstance(value, str):
                row[name] = value.lower()

Nothing here imports the component bindings, so the same module runs under pytest
(see ``weir_plugin.testing``) and inside weir (``weir_component`` adapts it to the
``row-plugin`` world of ``weir:plugin``).

Values a row holds: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``datetime.datetime`` (UTC) for timestamps and ``datetime.date`` for dates. numeric,
json, uuid, arrays and the other PostgreSQL types arrive as their text form; a map may
write a ``dict`` or ``list`` back to such a column and it is sent as JSON text.
"""

from __future__ import annotations

import datetime as _dt
import json as _json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

__all__ = [
    "Column",
    "Table",
    "PluginError",
    "InvalidConfig",
    "InvalidInput",
    "init",
    "prepare",
    "map",
    "filter",
    "log",
]


class PluginError(Exception):
    """A failed call: weir applies the stage's ``on_error`` policy to it."""

    kind = "failed"


class InvalidConfig(PluginError):
    """The stage's ``config`` is unusable (raise it from ``init``)."""

    kind = "invalid-config"


class InvalidInput(PluginError):
    """This table or row cannot be handled (a missing column, a value of the wrong type)."""

    kind = "invalid-input"


@dataclass(frozen=True)
class Column:
    name: str
    #: PostgreSQL's type name (``int4``, ``text``); empty for weir's metadata columns.
    pg_type: str
    nullable: bool


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple = field(default_factory=tuple)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Optional[Column]:
        for column in self.columns:
            if column.name == name:
                return column
        return None

    def with_before(self, names: Iterable[str]) -> list:
        """The named columns and their old images (``_before.<name>``) that this table has."""
        present = {column.name for column in self.columns}
        wanted = []
        for name in names:
            for candidate in (name, f"_before.{name}"):
                if candidate in present:
                    wanted.append(candidate)
        return wanted


class _Log:
    """Messages for weir's log (target ``weir::plugin``, tagged with the stage).

    Outside weir (under pytest) they go to the ``logging`` module.
    """

    sink: Optional[Callable[[str, str], None]] = None

    def _write(self, level: str, message: str) -> None:
        if self.sink is not None:
            self.sink(level, message)
        else:
            import logging

            logging.getLogger("weir.plugin").log(
                {"trace": 5, "debug": 10, "info": 20, "warn": 30, "error": 40}[level], message
            )

    def trace(self, message: str) -> None:
        self._write("trace", message)

    def debug(self, message: str) -> None:
        self._write("debug", message)

    def info(self, message: str) -> None:
        self._write("info", message)

    def warn(self, message: str) -> None:
        self._write("warn", message)

    def error(self, message: str) -> None:
        self._write("error", message)


log = _Log()


class _Registry:
    def __init__(self) -> None:
        self.init: Optional[Callable[[Any], None]] = None
        self.prepare: Optional[Callable[[Table], Optional[Iterable[str]]]] = None
        self.map: Optional[Callable[[dict, Table], Optional[dict]]] = None
        self.filter: Optional[Callable[[dict, Table], bool]] = None
        self.routing: tuple = ()


_registry = _Registry()


def init(function):
    """Registers ``function(config)``, called once with the stage's config (parsed JSON)."""
    _registry.init = function
    return function


def prepare(function):
    """Registers ``function(table) -> column names | None``.

    Called once per table and schema version. ``None`` reads every column; an empty
    list tells weir to skip the table entirely (its rows pass unchanged, uncalled).
    Without it, every column is read.
    """
    _registry.prepare = function
    return function


_ROUTING = ("_topic", "_key", "_partition")


def map(function=None, *, routing: Iterable[str] = ()):
    """Registers ``function(row, table) -> row | None`` over each row.

    The function may change ``row`` in place (and return ``None``) or return a new
    dict. Keys for columns it did not read are ignored; missing keys keep their value.
    ``routing`` names the routing columns the map sets (``_topic``, ``_key``,
    ``_partition``): a row without one leaves the pipeline's rule in charge.
    """

    def register(function):
        routes = tuple(routing)
        for name in routes:
            if name not in _ROUTING:
                raise ValueError(f"routing column {name!r} is not one of {', '.join(_ROUTING)}")
        if _registry.filter is not None:
            raise ValueError("a plugin registers one map or one filter, not both")
        _registry.map = function
        _registry.routing = routes
        return function

    return register(function) if function is not None else register


def filter(function):
    """Registers ``function(row, table) -> bool``: rows for which it is false are dropped."""
    if _registry.map is not None:
        raise ValueError("a plugin registers one map or one filter, not both")
    _registry.filter = function
    return function


# --- the dispatch both the component and the test runner use -----------------------

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_EPOCH_DATE = _dt.date(1970, 1, 1)


def timestamp_from_micros(micros: int) -> _dt.datetime:
    return _EPOCH + _dt.timedelta(microseconds=micros)


def micros_from_timestamp(value: _dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def date_from_days(days: int) -> _dt.date:
    return _EPOCH_DATE + _dt.timedelta(days=days)


def days_from_date(value: _dt.date) -> int:
    return (value - _EPOCH_DATE).days


def json_text(value: Any) -> str:
    """How a dict or list written to a column travels: compact JSON."""
    return _json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Plan:
    """What a plugin asked of one prepared table."""

    __slots__ = ("table", "names", "routing", "wants")

    def __init__(self, table: Table, names: list, routing: tuple, wants: bool) -> None:
        self.table = table
        self.names = names
        self.routing = routing
        self.wants = wants


def _require_function() -> None:
    if _registry.map is None and _registry.filter is None:
        raise PluginError("the plugin registered neither a map nor a filter (weir_plugin.map / .filter)")


def call_init(config_json: str) -> None:
    _require_function()
    try:
        config = _json.loads(config_json) if config_json else {}
    except ValueError as error:
        raise InvalidConfig(f"config is not JSON: {error}") from None
    if _registry.init is not None:
        try:
            _registry.init(config)
        except PluginError:
            raise
        except Exception as error:  # a config the function could not use
            raise InvalidConfig(f"{type(error).__name__}: {error}") from None


def call_prepare(table: Table) -> Plan:
    names: Optional[list] = None
    if _registry.prepare is not None:
        chosen = _registry.prepare(table)
        if chosen is not None:
            names = list(chosen)
            present = {column.name for column in table.columns}
            for name in names:
                if name not in present:
                    raise InvalidInput(f"table {table.qualified} has no column {name!r}")
            # weir sends the read columns in the table's order.
            order = {column.name: i for i, column in enumerate(table.columns)}
            names.sort(key=order.__getitem__)
    wants = names is None or len(names) > 0
    if names is None:
        names = [column.name for column in table.columns]
    return Plan(table, names, _registry.routing if _registry.map else (), wants)


def call_rows(plan: Plan, rows: list) -> tuple:
    """Runs the function over rows (lists of Python values in ``plan.names`` order).

    Returns ``("selection", [bool])`` for a filter, ``("replaced", [list])`` for a map:
    each list holds the read columns, then the plan's routing values.
    """
    names = plan.names
    table = plan.table
    if _registry.filter is not None:
        keep = _registry.filter
        return "selection", [bool(keep(dict(zip(names, row)), table)) for row in rows]
    function = _registry.map
    routing = plan.routing
    out = []
    for row in rows:
        values = dict(zip(names, row))
        result = function(values, table)
        if result is not None:
            values = result
        new = [values.get(name, old) for name, old in zip(names, row)]
        for name in routing:
            new.append(values.get(name))
        out.append(new)
    return "replaced", out
