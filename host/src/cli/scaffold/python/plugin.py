"""{{name}}: a weir plugin in Python. As generated it lowercases the text columns
named in its config (and their old images), e.g. `{"columns": ["customer_email"]}`.
Change `configure`, `columns` and `lowercase` to make it yours."""

import weir_plugin as weir

_columns = []


@weir.init
def configure(config):
    columns = config.get("columns")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) for c in columns):
        raise weir.InvalidConfig('config needs {"columns": ["name", ...]}')
    _columns[:] = columns
    weir.log.info(f"{{name}}: lowercasing {', '.join(columns)}")


@weir.prepare
def columns(table):
    # Read only these (weir sends nothing else); an empty list skips the table.
    return table.with_before(_columns)


@weir.map
def lowercase(row, table):
    for name, value in row.items():
        if isinstance(value, str):
            row[name] = value.lower()
