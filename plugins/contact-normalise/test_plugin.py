import pytest

import plugin  # noqa: F401  (registers the map)
import weir_plugin as weir
from weir_plugin.testing import run

CONFIG = {"email": ["email"], "phone": ["phone"], "default_country_code": "44"}


def test_emails_are_trimmed_and_lowercased():
    out = run([{"id": 1, "email": "  MailTo:Ann.Lee@Example.ORG "}], config=CONFIG)
    assert out == [{"id": 1, "email": "ann.lee@example.org"}]


def test_phones_become_e164():
    rows = [{"phone": "020 7946 0958"}, {"phone": "0044 (20) 7946-0958"}, {"phone": "+1 415.555.2671"}]
    assert [r["phone"] for r in run(rows, config=CONFIG)] == ["+442079460958", "+442079460958", "+14155552671"]


def test_invalid_values_follow_the_policy():
    rows = [{"email": "not an address", "phone": "12"}]
    assert run(rows, config=CONFIG) == [{"email": None, "phone": None}]
    assert run(rows, config={**CONFIG, "invalid": "keep"}) == rows
    with pytest.raises(weir.InvalidInput, match="not a valid e-mail address"):
        run(rows, config={**CONFIG, "invalid": "fail"})


def test_old_images_are_normalised_too_and_other_columns_untouched():
    rows = [{"id": 7, "note": "Keep ME", "email": "A@B.CO", "_before.email": "a@b.co "}]
    out = run(rows, config=CONFIG)
    assert out == [{"id": 7, "note": "Keep ME", "email": "a@b.co", "_before.email": "a@b.co"}]


def test_national_numbers_need_a_country_code():
    out = run([{"phone": "020 7946 0958"}], config={"phone": ["phone"]})
    assert out == [{"phone": None}]


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "at least one column"),
        ({"email": "email"}, "list of column names"),
        ({"email": ["e"], "invalid": "drop"}, "invalid must be one of"),
        ({"phone": ["p"], "default_country_code": "44x"}, "1 to 3 digits"),
    ],
)
def test_bad_config_is_refused(config, message):
    with pytest.raises(weir.InvalidConfig, match=message):
        run([{"email": "a@b.co"}], config=config)
