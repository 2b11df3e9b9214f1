"""The component's entry module: adapts the user's ``plugin`` module to weir's
``row-plugin`` world (``componentize-py ... componentize weir_component``).

It converts WIT values to Python values and back; the plugin itself only sees dicts.
A value the function left as it was goes back as the very WIT value that came in.
"""

import datetime as _dt

import componentize_py_types
from wit_world import exports
from wit_world.exports import row as wit
from wit_world.imports import host, types

import plugin  # noqa: F401  (registers its functions with weir_plugin)
import weir_plugin as weir

_LEVELS = {
    "trace": types.Level.TRACE,
    "debug": types.Level.DEBUG,
    "info": types.Level.INFO,
    "warn": types.Level.WARN,
    "error": types.Level.ERROR,
}
weir.log.sink = lambda level, message: host.log(_LEVELS[level], message)

_ERRORS = {
    "invalid-config": types.PluginError_InvalidConfig,
    "invalid-input": types.PluginError_InvalidInput,
    "failed": types.PluginError_Failed,
}


def _err(error: BaseException) -> componentize_py_types.Err:
    if isinstance(error, weir.PluginError):
        variant = _ERRORS[error.kind]
        message = str(error)
    else:
        variant = types.PluginError_Failed
        message = f"{type(error).__name__}: {error}"
    return componentize_py_types.Err(variant(message))


def _to_python(value):
    kind = type(value)
    if kind is wit.Value_Null:
        return None
    if kind is wit.Value_Timestamp:
        return weir.timestamp_from_micros(value.value)
    if kind is wit.Value_Date:
        return weir.date_from_days(value.value)
    return value.value


def _to_wit(value, unsigned: bool):
    if value is None:
        return wit.Value_Null()
    kind = type(value)
    if kind is str:
        return wit.Value_Text(value)
    if kind is bool:
        return wit.Value_Boolean(value)
    if kind is int:
        return wit.Value_Uint(value) if unsigned and value >= 0 else wit.Value_Int(value)
    if kind is float:
        return wit.Value_Float(value)
    if kind is bytes or kind is bytearray:
        return wit.Value_Bytes(bytes(value))
    if isinstance(value, _dt.datetime):
        return wit.Value_Timestamp(weir.micros_from_timestamp(value))
    if isinstance(value, _dt.date):
        return wit.Value_Date(weir.days_from_date(value))
    if isinstance(value, (dict, list)):
        return wit.Value_Text(weir.json_text(value))
    return wit.Value_Text(str(value))


# componentize-py makes a new Row for every call: prepared plans live in the module.
_plans = {}


class Row(exports.Row):
    def init(self, config: str) -> None:
        try:
            weir.call_init(config)
        except BaseException as error:
            raise _err(error) from None

    def prepare(self, table: int, info: wit.TableInfo) -> wit.RowPlan:
        try:
            columns = tuple(weir.Column(c.name, c.pg_type, c.nullable) for c in info.columns)
            plan = weir.call_prepare(weir.Table(info.schema, info.name, columns))
        except BaseException as error:
            raise _err(error) from None
        _plans[table] = plan
        return wit.RowPlan(columns=list(plan.names) if plan.wants else [], routing=list(plan.routing), wants_table=plan.wants)

    def process(self, table: int, rows):
        plan = _plans.get(table)
        if plan is None:
            raise componentize_py_types.Err(types.PluginError_Failed(f"table {table} was never prepared"))
        try:
            values = [[_to_python(v) for v in row] for row in rows]
            kind, answer = weir.call_rows(plan, values)
        except BaseException as error:
            raise _err(error) from None
        if kind == "selection":
            return wit.RowOutput_Selection(answer)
        out = []
        width = len(plan.names)
        for original, python, new in zip(rows, values, answer):
            converted = []
            for i in range(width):
                value = new[i]
                # Unchanged (the same object): hand back the value that came in.
                converted.append(original[i] if value is python[i] else _to_wit(value, type(original[i]) is wit.Value_Uint))
            for value in new[width:]:
                converted.append(_to_wit(value, False))
            out.append(converted)
        return wit.RowOutput_Replaced(out)
