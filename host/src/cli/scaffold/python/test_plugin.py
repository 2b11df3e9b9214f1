import pytest

import plugin  # noqa: F401  (registers the functions)
import weir_plugin as weir
from weir_plugin.testing import run


def test_lowercases_the_named_columns_only():
    rows = [{"id": 1, "customer_email": "Ann@Example.org", "status": "PAID"}]
    out = run(rows, config={"columns": ["customer_email"]})
    assert out == [{"id": 1, "customer_email": "ann@example.org", "status": "PAID"}]


def test_config_without_columns_is_refused():
    with pytest.raises(weir.InvalidConfig):
        run([], config={})
