"""contact-normalise: puts e-mail addresses and phone numbers in one form, and
says what to do with those that are not valid.

    config:
      email: [email, billing_email]   # lowercased and trimmed; must be local@domain.tld
      phone: [phone]                  # to E.164: +<country><number>, 8 to 15 digits
      default_country_code: "44"      # for national numbers (leading 0 or no prefix)
      invalid: "null"                 # null (default) | keep | fail

E-mail: surrounding spaces and a `mailto:` prefix go; the address is lowercased.
Phone: spaces, dots, dashes, slashes and parentheses go; `00` becomes `+`; a national
number (leading 0) gets the default country code in place of its 0. An invalid value
becomes null, is kept as it was, or fails the call (and the stage's `on_error`
policy applies: `dead_letter` keeps the rows for inspection). Old row images
(`_before.<column>`) are normalised the same way, so a change never looks like one
only because the form differs. Columns a table lacks are skipped.
"""

import re

import weir_plugin as weir

_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_NOISE = re.compile(r"[\s.\-/()]")
_POLICIES = ("null", "keep", "fail")

_settings = {"email": [], "phone": [], "country": None, "invalid": "null"}


@weir.init
def configure(config):
    email = config.get("email", [])
    phone = config.get("phone", [])
    for key, value in (("email", email), ("phone", phone)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise weir.InvalidConfig(f"{key} must be a list of column names")
    if not email and not phone:
        raise weir.InvalidConfig("name at least one column in email or phone")
    country = config.get("default_country_code")
    if country is not None:
        country = str(country).lstrip("+")
        if not country.isdigit() or not 1 <= len(country) <= 3:
            raise weir.InvalidConfig("default_country_code must be 1 to 3 digits, like \"44\"")
    invalid = config.get("invalid", "null")
    if invalid not in _POLICIES:
        raise weir.InvalidConfig(f"invalid must be one of {', '.join(_POLICIES)}, not {invalid!r}")
    _settings.update(email=email, phone=phone, country=country, invalid=invalid)
    weir.log.info(f"contact-normalise: {len(email)} e-mail and {len(phone)} phone column(s)")


@weir.prepare
def columns(table):
    return table.with_before(_settings["email"] + _settings["phone"])


def normalise_email(value):
    text = value.strip()
    if text[:7].lower() == "mailto:":
        text = text[7:]
    text = text.lower()
    return text if _EMAIL.match(text) else None


def normalise_phone(value, country):
    text = _PHONE_NOISE.sub("", value)
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        if country is None:
            return None
        text = "+" + country + (text[1:] if text.startswith("0") else text)
    digits = text[1:]
    return text if digits.isdigit() and 8 <= len(digits) <= 15 else None


@weir.map
def normalise(row, table):
    country = _settings["country"]
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        column = name[len("_before."):] if name.startswith("_before.") else name
        if column in _settings["email"]:
            clean = normalise_email(value)
            kind = "e-mail address"
        else:
            clean = normalise_phone(value, country)
            kind = "phone number"
        if clean is None:
            policy = _settings["invalid"]
            if policy == "fail":
                raise weir.InvalidInput(f"{table.qualified}.{name}: {value!r} is not a valid {kind}")
            clean = value if policy == "keep" else None
        row[name] = clean
