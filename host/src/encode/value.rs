//! Column values as JSON, following Debezium's conventions where it has one, with
//! its configurable modes. A [`ColumnWriter`] is made once per column and batch (the
//! downcast and the type decision); writing a row's value is then a match and a
//! write into the output buffer, with no allocation.

use std::io::Write;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Decimal128Array,
    Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array,
    IntervalMonthDayNanoArray, ListArray, StringArray, Time64MicrosecondArray,
    TimestampMicrosecondArray, UInt8Array, UInt16Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType, TimeUnit,
    TimestampMicrosecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::contract::columns::{
    bit_length, declared_decimal, fraction_digits, metadata, millisecond_precision, typed_element,
};
use crate::contract::pg_text;
use crate::encode::hstore::hstore_json;
use crate::encode::kind::is_hstore;

/// How `numeric` values are written (Debezium's `decimal.handling.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecimalMode {
    /// Exact: Kafka Connect's `Decimal` (base64 of the unscaled big-endian two's
    /// complement); unconstrained `numeric` as `{"scale": s, "value": base64}`
    /// (Debezium's `VariableScaleDecimal`).
    #[default]
    Precise,
    /// The decimal text, `"129.90"`.
    String,
    /// A JSON number (may round).
    Double,
}

/// How `interval` values are written (Debezium's `interval.handling.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IntervalMode {
    /// Approximate microseconds, a month being 365.25 / 12 days (`MicroDuration`).
    #[default]
    Numeric,
    /// ISO 8601, `P1Y2M3DT4H5M6.78S`.
    String,
}

/// How the text forms of `canal-json`, `maxwell-json`, `shareplex-json` and
/// `oms-json` write a `timestamptz`. Their consumers disagree: Flink reads a
/// `TIMESTAMP_LTZ` column only with a `Z`, while a `TIMESTAMP` column (Flink's, and
/// the one Paimon's Canal parser makes of `mysqlType` `timestamp(p)`) refuses one,
/// as Canal never writes a zone for MySQL's `TIMESTAMP`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimestamptzForm {
    /// UTC with a `Z`, `2026-11-21 09:00:00.25Z` (Flink's `TIMESTAMP_LTZ`).
    #[default]
    UtcZ,
    /// UTC without a zone, `2026-11-21 09:00:00.25` (Paimon's and Flink's `TIMESTAMP`).
    Utc,
}

/// How `bytea` values are written (Debezium's `binary.handling.mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BinaryMode {
    /// Base64.
    #[default]
    Base64,
    /// Lowercase hex.
    Hex,
}

/// What Debezium writes for a value PostgreSQL did not send (its default
/// `unavailable.value.placeholder`).
pub(crate) const UNAVAILABLE_PLACEHOLDER: &str = "__debezium_unavailable_value";

/// The value conventions of a JSON encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueOptions {
    /// `numeric`.
    pub decimal: DecimalMode,
    /// `interval`.
    pub interval: IntervalMode,
    /// `bytea`.
    pub binary: BinaryMode,
    /// What an unchanged TOASTed value (not sent by PostgreSQL) is written as
    /// (Debezium's `unavailable.value.placeholder`).
    pub unavailable_placeholder: String,
}

impl Default for ValueOptions {
    fn default() -> Self {
        Self {
            decimal: DecimalMode::Precise,
            interval: IntervalMode::Numeric,
            binary: BinaryMode::Base64,
            unavailable_placeholder: UNAVAILABLE_PLACEHOLDER.to_owned(),
        }
    }
}

/// Microseconds per average month: 365.25 / 12 days, as Debezium's `MicroDuration`.
const MICROS_PER_MONTH: f64 = 365.25 / 12.0 * 86_400_000_000.0;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One value as its Arrow type holds it ([`ColumnWriter::scalar`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unscaled, and the scale.
    Decimal(i128, i8),
    /// A value kept as PostgreSQL's text (unconstrained `numeric`, `money`,
    /// `timetz`, text types, …).
    Text(&'a str),
    Bytes(&'a [u8]),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since 1970 (`i64::MAX`/`MIN`: ±infinity).
    Timestamp(i64),
    /// Microseconds since 1970 UTC (`i64::MAX`/`MIN`: ±infinity).
    TimestampTz(i64),
    /// Anything else: its text form ([`ColumnWriter::text`]).
    Formatted,
}

/// Writes one column's values as JSON.
pub struct ColumnWriter<'a> {
    kind: Kind<'a>,
    array: &'a dyn Array,
}

enum Kind<'a> {
    Null,
    Bool(&'a BooleanArray),
    I8(&'a Int8Array),
    I16(&'a Int16Array),
    I32(&'a Int32Array),
    I64(&'a Int64Array),
    U8(&'a UInt8Array),
    U16(&'a UInt16Array),
    U32(&'a UInt32Array),
    U64(&'a UInt64Array),
    F32(&'a Float32Array),
    F64(&'a Float64Array),
    Decimal(&'a Decimal128Array, i8),
    /// Unconstrained `numeric`, kept as exact text.
    NumericText(&'a StringArray),
    /// A `numeric(p, s)` carried as text since a `NaN`: written as the `Decimal`
    /// of scale `s` it was declared as.
    NumericTextScaled(&'a StringArray, i8),
    Text(&'a StringArray),
    /// `timetz`, kept as its text: written as Debezium's `ZonedTime` (UTC).
    TimeTz(&'a StringArray),
    /// `money`, kept as its text: written as a `Decimal` of scale 2.
    Money(&'a StringArray),
    /// `point`, kept as its text: written as Debezium's `Point` struct.
    Point(&'a StringArray),
    /// `hstore`, kept as its text: written as a JSON object in a string.
    Hstore(&'a StringArray),
    /// `bit(n)`/`varbit`, kept as their text: written as Debezium's `Bits` (a
    /// boolean for `bit(1)`).
    Bits(&'a StringArray, bool),
    Binary(&'a BinaryArray),
    Date(&'a Date32Array),
    Time(&'a Time64MicrosecondArray),
    /// `time(0…3)`: written in milliseconds, as Debezium's adaptive mode does.
    TimeMillis(&'a Time64MicrosecondArray),
    /// `timestamp(0…3)`: written in milliseconds.
    TimestampMillis(&'a TimestampMicrosecondArray),
    Timestamp(&'a TimestampMicrosecondArray),
    /// With its fractional digits.
    TimestampTz(&'a TimestampMicrosecondArray, u8),
    Interval(&'a IntervalMonthDayNanoArray),
    List(&'a ListArray, Box<ColumnWriter<'a>>),
    Other(ArrayFormatter<'a>),
}

impl<'a> ColumnWriter<'a> {
    /// A writer for `array`, described by `field` (its `weir.pg_type` tells an
    /// unconstrained `numeric`, kept as text, from other text).
    pub fn new(field: &Field, array: &'a ArrayRef) -> Self {
        Self::for_array(field, array.as_ref())
    }

    pub(crate) fn for_array(field: &Field, array: &'a dyn Array) -> Self {
        let pg_type = field.metadata().get(metadata::PG_TYPE).map(String::as_str);
        let kind = match array.data_type() {
            DataType::Null => Kind::Null,
            DataType::Boolean => Kind::Bool(array.as_boolean()),
            DataType::Int8 => Kind::I8(array.as_primitive::<Int8Type>()),
            DataType::Int16 => Kind::I16(array.as_primitive::<Int16Type>()),
            DataType::Int32 => Kind::I32(array.as_primitive::<Int32Type>()),
            DataType::Int64 => Kind::I64(array.as_primitive::<Int64Type>()),
            DataType::UInt8 => Kind::U8(array.as_primitive::<UInt8Type>()),
            DataType::UInt16 => Kind::U16(array.as_primitive::<UInt16Type>()),
            DataType::UInt32 => Kind::U32(array.as_primitive::<UInt32Type>()),
            DataType::UInt64 => Kind::U64(array.as_primitive::<UInt64Type>()),
            DataType::Float32 => Kind::F32(array.as_primitive::<Float32Type>()),
            DataType::Float64 => Kind::F64(array.as_primitive::<Float64Type>()),
            DataType::Decimal128(_, scale) => {
                Kind::Decimal(array.as_primitive::<Decimal128Type>(), *scale)
            }
            DataType::Utf8 if pg_type == Some("numeric") => match declared_decimal(field) {
                Some((_, scale)) => Kind::NumericTextScaled(array.as_string(), scale),
                None => Kind::NumericText(array.as_string()),
            },
            DataType::Utf8 if pg_type == Some("timetz") => Kind::TimeTz(array.as_string()),
            DataType::Utf8 if pg_type == Some("money") => Kind::Money(array.as_string()),
            DataType::Utf8 if pg_type == Some("point") => Kind::Point(array.as_string()),
            DataType::Utf8 if pg_type.is_some_and(is_hstore) => Kind::Hstore(array.as_string()),
            // One bit is a boolean, as the schema's `ValueKind::Bits` says.
            DataType::Utf8 if matches!(pg_type, Some("bit" | "varbit")) => {
                Kind::Bits(array.as_string(), bit_length(field) == 1)
            }
            DataType::Utf8 => Kind::Text(array.as_string()),
            DataType::Binary => Kind::Binary(array.as_binary()),
            DataType::Date32 => Kind::Date(array.as_primitive::<Date32Type>()),
            DataType::Time64(TimeUnit::Microsecond) if millisecond_precision(field) => {
                Kind::TimeMillis(array.as_primitive::<Time64MicrosecondType>())
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) if millisecond_precision(field) => {
                Kind::TimestampMillis(array.as_primitive::<TimestampMicrosecondType>())
            }
            DataType::Time64(TimeUnit::Microsecond) => {
                Kind::Time(array.as_primitive::<Time64MicrosecondType>())
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                Kind::Timestamp(array.as_primitive::<TimestampMicrosecondType>())
            }
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Kind::TimestampTz(
                array.as_primitive::<TimestampMicrosecondType>(),
                fraction_digits(field),
            ),
            DataType::Interval(IntervalUnit::MonthDayNano) => {
                Kind::Interval(array.as_primitive::<IntervalMonthDayNanoType>())
            }
            DataType::List(element) => {
                let list = array.as_list::<i32>();
                let values: &'a dyn Array = list.values().as_ref();
                let elements = match typed_element(field) {
                    Some(typed) => ColumnWriter::for_array(&typed, values),
                    None => ColumnWriter::for_array(element, values),
                };
                Kind::List(list, Box::new(elements))
            }
            _ => match ArrayFormatter::try_new(array, &FormatOptions::default()) {
                Ok(formatter) => Kind::Other(formatter),
                Err(_) => Kind::Null,
            },
        };
        Self { kind, array }
    }

    /// Whether rows `a` and `b` hold the same timestamp (for caching a formatted
    /// value); false for other kinds.
    pub fn same_value(&self, a: usize, b: usize) -> bool {
        match &self.kind {
            Kind::TimestampTz(array, _) | Kind::Timestamp(array) | Kind::TimestampMillis(array) => {
                array.is_valid(a) && array.is_valid(b) && array.value(a) == array.value(b)
            }
            _ => false,
        }
    }

    /// Whether the value at `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        self.array.is_null(row)
    }

    /// The value at `row` as its Arrow type holds it, for encoders that choose a
    /// value class per type (`dts-avro`); kinds kept as text are `Text`, the rest
    /// (intervals, arrays, other types) `Formatted`: write them with [`Self::text`].
    pub(crate) fn scalar(&self, row: usize) -> Scalar<'a> {
        if self.array.is_null(row) {
            return Scalar::Null;
        }
        match &self.kind {
            Kind::Null => Scalar::Null,
            Kind::Bool(a) => Scalar::Bool(a.value(row)),
            Kind::I8(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::I16(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::I32(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::I64(a) => Scalar::Int(a.value(row)),
            Kind::U8(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::U16(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::U32(a) => Scalar::Int(i64::from(a.value(row))),
            Kind::U64(a) => i64::try_from(a.value(row)).map_or(Scalar::Formatted, Scalar::Int),
            Kind::F32(a) => Scalar::Float(f64::from(a.value(row))),
            Kind::F64(a) => Scalar::Float(a.value(row)),
            Kind::Decimal(a, scale) => Scalar::Decimal(a.value(row), *scale),
            Kind::NumericText(a)
            | Kind::NumericTextScaled(a, _)
            | Kind::Text(a)
            | Kind::TimeTz(a)
            | Kind::Money(a)
            | Kind::Point(a)
            | Kind::Hstore(a)
            | Kind::Bits(a, _) => Scalar::Text(a.value(row)),
            Kind::Binary(a) => Scalar::Bytes(a.value(row)),
            Kind::Date(a) => Scalar::Date(a.value(row)),
            Kind::Time(a) | Kind::TimeMillis(a) => Scalar::Time(a.value(row)),
            Kind::Timestamp(a) | Kind::TimestampMillis(a) => Scalar::Timestamp(a.value(row)),
            Kind::TimestampTz(a, _) => Scalar::TimestampTz(a.value(row)),
            Kind::Interval(_) | Kind::List(_, _) | Kind::Other(_) => Scalar::Formatted,
        }
    }

    /// Writes a boolean, an integer, a finite float or a decimal at `row` as a JSON
    /// boolean or number (a decimal exactly as PostgreSQL holds it); returns false,
    /// writing nothing, for any other value.
    pub fn write_json_number(&self, row: usize, out: &mut Vec<u8>) -> bool {
        if self.array.is_null(row) {
            return false;
        }
        if self.write_integral(row, out) {
            return true;
        }
        match &self.kind {
            Kind::F32(a) if a.value(row).is_finite() => float32(a.value(row), out),
            Kind::F64(a) if a.value(row).is_finite() => float(a.value(row), out),
            Kind::Decimal(a, scale) => decimal_text(a.value(row), *scale, out),
            _ => return false,
        }
        true
    }

    /// Writes a boolean or an integer at `row` (not null) as JSON; returns false,
    /// writing nothing, for any other kind.
    fn write_integral(&self, row: usize, out: &mut Vec<u8>) -> bool {
        match &self.kind {
            Kind::Bool(a) => out.extend_from_slice(if a.value(row) { b"true" } else { b"false" }),
            Kind::I8(a) => integer(a.value(row), out),
            Kind::I16(a) => integer(a.value(row), out),
            Kind::I32(a) => integer(a.value(row), out),
            Kind::I64(a) => integer(a.value(row), out),
            Kind::U8(a) => integer(a.value(row), out),
            Kind::U16(a) => integer(a.value(row), out),
            Kind::U32(a) => integer(a.value(row), out),
            Kind::U64(a) => integer(a.value(row), out),
            _ => return false,
        }
        true
    }

    /// Writes the value at `row` as `canal-json` carries it: [`Self::write_text`],
    /// except where Flink's `canal-json` format (the main consumer) reads a
    /// different form: `timestamptz` in UTC with a `Z` (`TIMESTAMP_LTZ`) unless
    /// `timestamptz` says otherwise, `bytea` as base64 (`BYTES`), arrays as JSON
    /// arrays of their elements' text forms (`ARRAY<…>`), and `money` as the decimal
    /// its `mysqlType` (`decimal(19,2)`) promises.
    pub fn write_canal(&self, row: usize, timestamptz: TimestamptzForm, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        match &self.kind {
            Kind::TimestampTz(a, _)
                if timestamptz == TimestamptzForm::UtcZ
                    && !matches!(a.value(row), i64::MAX | i64::MIN) =>
            {
                let mut text = String::with_capacity(28);
                self.text(row, &mut text);
                text.push('Z');
                string(&text, out);
            }
            Kind::Binary(a) => base64(a.value(row), out),
            Kind::Money(a) => match money_cents(a.value(row)) {
                Some(cents) => {
                    out.push(b'"');
                    decimal_text(cents, 2, out);
                    out.push(b'"');
                }
                None => string(a.value(row), out),
            },
            Kind::List(list, elements) => {
                write_elements(list, row, out, |index, out| {
                    elements.write_canal(index, timestamptz, out)
                });
            }
            _ => self.write_text(row, out),
        }
    }

    /// Writes the value at `row` as a JSON string of its text form (or `null`), as
    /// Canal's FlatMessage carries values: numbers and decimals as written,
    /// booleans `true`/`false`, dates `YYYY-MM-DD`, times and timestamps
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC for `timestamptz`), intervals in ISO 8601,
    /// `bytea` as `\x…` hex and arrays in PostgreSQL's `{…}` form.
    pub fn write_text(&self, row: usize, out: &mut Vec<u8>) {
        if self.array.is_null(row) || matches!(self.kind, Kind::Null) {
            out.extend_from_slice(b"null");
            return;
        }
        // The common kinds straight into the buffer; the rest through a String.
        let quoted_integer = |digits: &str, out: &mut Vec<u8>| {
            out.push(b'"');
            out.extend_from_slice(digits.as_bytes());
            out.push(b'"');
        };
        let mut itoa = itoa::Buffer::new();
        match &self.kind {
            Kind::NumericText(a)
            | Kind::NumericTextScaled(a, _)
            | Kind::Text(a)
            | Kind::TimeTz(a)
            | Kind::Money(a)
            | Kind::Point(a)
            | Kind::Hstore(a)
            | Kind::Bits(a, _) => string(a.value(row), out),
            Kind::Bool(a) => out.extend_from_slice(if a.value(row) {
                b"\"true\""
            } else {
                b"\"false\""
            }),
            Kind::I16(a) => quoted_integer(itoa.format(a.value(row)), out),
            Kind::I32(a) => quoted_integer(itoa.format(a.value(row)), out),
            Kind::I64(a) => quoted_integer(itoa.format(a.value(row)), out),
            Kind::U32(a) => quoted_integer(itoa.format(a.value(row)), out),
            Kind::Decimal(a, scale) => {
                out.push(b'"');
                decimal_text(a.value(row), *scale, out);
                out.push(b'"');
            }
            _ => {
                let mut text = String::new();
                self.text(row, &mut text);
                string(&text, out);
            }
        }
    }

    /// Appends the text form of the non-null value at `row` (see
    /// [`ColumnWriter::write_text`]) to `text`, unquoted.
    pub fn text(&self, row: usize, text: &mut String) {
        match &self.kind {
            Kind::Null => {}
            Kind::Bool(a) => text.push_str(if a.value(row) { "true" } else { "false" }),
            Kind::I8(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::I16(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::I32(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::I64(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::U8(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::U16(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::U32(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::U64(a) => text.push_str(itoa::Buffer::new().format(a.value(row))),
            Kind::F32(a) => pg_text::float(f64::from(a.value(row)), text),
            Kind::F64(a) => pg_text::float(a.value(row), text),
            Kind::Decimal(a, scale) => {
                decimal_parts(a.value(row), *scale, |part| text.push_str(part))
            }
            Kind::NumericText(a)
            | Kind::NumericTextScaled(a, _)
            | Kind::Text(a)
            | Kind::TimeTz(a)
            | Kind::Money(a)
            | Kind::Point(a)
            | Kind::Hstore(a)
            | Kind::Bits(a, _) => text.push_str(a.value(row)),
            Kind::Binary(a) => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                text.push_str("\\x");
                text.reserve(a.value(row).len() * 2);
                for byte in a.value(row) {
                    text.push(char::from(HEX[usize::from(byte >> 4)]));
                    text.push(char::from(HEX[usize::from(byte & 0x0f)]));
                }
            }
            Kind::Date(a) => match a.value(row) {
                i32::MAX => text.push_str("infinity"),
                i32::MIN => text.push_str("-infinity"),
                days => {
                    match chrono::NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163))
                    {
                        Some(date) => push_date(date, text),
                        None => text.push_str(itoa::Buffer::new().format(days)),
                    }
                }
            },
            Kind::Time(a) | Kind::TimeMillis(a) => pg_text::time(a.value(row), text),
            Kind::Timestamp(a) | Kind::TimestampTz(a, _) | Kind::TimestampMillis(a) => {
                match a.value(row) {
                    i64::MAX => text.push_str("infinity"),
                    i64::MIN => text.push_str("-infinity"),
                    micros => match chrono::DateTime::from_timestamp_micros(micros) {
                        Some(time) => {
                            push_date(time.date_naive(), text);
                            text.push(' ');
                            pg_text::time(micros.rem_euclid(86_400_000_000), text);
                        }
                        None => text.push_str(itoa::Buffer::new().format(micros)),
                    },
                }
            }
            Kind::Interval(a) => pg_text::interval(a.value(row), text),
            Kind::List(_, _) => {
                if pg_text::array(self.array, row, text).is_none() {
                    text.push_str("{}");
                }
            }
            Kind::Other(formatter) => {
                use std::fmt::Write as _;
                let _ = write!(text, "{}", formatter.value(row));
            }
        }
    }

    /// Writes the value at `row` (or `null`).
    pub fn write(&self, row: usize, options: &ValueOptions, out: &mut Vec<u8>) {
        if self.array.is_null(row) {
            out.extend_from_slice(b"null");
            return;
        }
        if self.write_integral(row, out) {
            return;
        }
        match &self.kind {
            Kind::Null => out.extend_from_slice(b"null"),
            Kind::Bool(_)
            | Kind::I8(_)
            | Kind::I16(_)
            | Kind::I32(_)
            | Kind::I64(_)
            | Kind::U8(_)
            | Kind::U16(_)
            | Kind::U32(_)
            | Kind::U64(_) => {}
            Kind::F32(a) => float32(a.value(row), out),
            Kind::F64(a) => float(a.value(row), out),
            Kind::Decimal(a, scale) => decimal(a, row, *scale, options.decimal, out),
            Kind::NumericText(a) => numeric_text(a.value(row), options.decimal, out),
            Kind::NumericTextScaled(a, scale) => match options.decimal {
                DecimalMode::Precise => match unscaled_at(a.value(row), *scale) {
                    Some(value) => {
                        let (bytes, start) = unscaled(value);
                        base64(&bytes[start..], out);
                    }
                    // NaN has no Decimal form: null, as Debezium writes it.
                    None => out.extend_from_slice(b"null"),
                },
                mode => numeric_text(a.value(row), mode, out),
            },
            Kind::Text(a) => string(a.value(row), out),
            Kind::TimeTz(a) => zoned_time(a.value(row), out),
            Kind::Money(a) => match (money_cents(a.value(row)), options.decimal) {
                (Some(cents), DecimalMode::Precise) => {
                    let (bytes, start) = unscaled(cents);
                    base64(&bytes[start..], out);
                }
                (Some(cents), DecimalMode::String) => {
                    out.push(b'"');
                    decimal_text(cents, 2, out);
                    out.push(b'"');
                }
                #[allow(clippy::cast_precision_loss)]
                (Some(cents), DecimalMode::Double) => float(cents as f64 / 100.0, out),
                (None, _) => string(a.value(row), out),
            },
            Kind::Hstore(a) => {
                // A rare type: its object is built in a buffer of its own, then
                // written as a JSON string.
                let text = a.value(row);
                let mut object = Vec::with_capacity(text.len() + 2);
                if hstore_json(text, &mut object) {
                    string(&String::from_utf8_lossy(&object), out);
                } else {
                    string(text, out);
                }
            }
            Kind::Point(a) => match point(a.value(row)) {
                Some((x, y)) => {
                    out.extend_from_slice(b"{\"x\":");
                    float(x, out);
                    out.extend_from_slice(b",\"y\":");
                    float(y, out);
                    out.extend_from_slice(b",\"wkb\":");
                    base64(&point_wkb(x, y), out);
                    out.extend_from_slice(b",\"srid\":null}");
                }
                None => string(a.value(row), out),
            },
            Kind::Bits(a, true) => out.extend_from_slice(if a.value(row) == "1" {
                b"true"
            } else {
                b"false"
            }),
            Kind::Bits(a, false) => {
                // Rare enough (bit columns) to allocate.
                let mut bytes = Vec::new();
                if bits_bytes(a.value(row), &mut bytes) {
                    base64(&bytes, out);
                } else {
                    string(a.value(row), out);
                }
            }
            Kind::Binary(a) => binary(a.value(row), options.binary, out),
            Kind::Date(a) => integer(a.value(row), out),
            Kind::Time(a) => integer(a.value(row), out),
            Kind::Timestamp(a) => integer(a.value(row), out),
            Kind::TimeMillis(a) => integer(a.value(row).div_euclid(1000), out),
            // ±infinity stay the extreme values they are in microseconds.
            Kind::TimestampMillis(a) => match a.value(row) {
                micros @ (i64::MAX | i64::MIN) => integer(micros, out),
                micros => integer(micros.div_euclid(1000), out),
            },
            Kind::TimestampTz(a, digits) => zoned_timestamp(a.value(row), *digits, out),
            Kind::Interval(a) => {
                let value = a.value(row);
                match options.interval {
                    IntervalMode::Numeric => integer(interval_micros(value), out),
                    IntervalMode::String => {
                        let mut text = String::new();
                        pg_text::interval(value, &mut text);
                        string(&text, out);
                    }
                }
            }
            Kind::List(list, elements) => {
                write_elements(list, row, out, |index, out| {
                    elements.write(index, options, out)
                });
            }
            Kind::Other(formatter) => string(&formatter.value(row).to_string(), out),
        }
    }
}

/// Debezium's `MicroDuration` of an interval: a month counts 365.25 / 12 days.
pub(crate) fn interval_micros(value: arrow::datatypes::IntervalMonthDayNano) -> i64 {
    #[allow(clippy::cast_possible_truncation)]
    let months = (f64::from(value.months) * MICROS_PER_MONTH).round() as i64;
    months
        .saturating_add(i64::from(value.days).saturating_mul(MICROS_PER_DAY))
        .saturating_add(value.nanoseconds / 1_000)
}

/// The elements of list `row` as a JSON array, each through `write` (given the
/// element's index in the list's values).
fn write_elements(
    list: &ListArray,
    row: usize,
    out: &mut Vec<u8>,
    write: impl Fn(usize, &mut Vec<u8>),
) {
    let offsets = list.value_offsets();
    let (start, end) = (offsets[row], offsets[row + 1]);
    out.push(b'[');
    for (i, index) in (start..end).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write(usize::try_from(index).unwrap_or(0), out);
    }
    out.push(b']');
}

fn integer(value: impl itoa::Integer, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// A finite float as a JSON number; NaN and infinities as the strings Kafka
/// Connect's JSON converter uses.
fn float(value: f64, out: &mut Vec<u8>) {
    if value.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else if value.is_nan() {
        out.extend_from_slice(b"\"NaN\"");
    } else if value > 0.0 {
        out.extend_from_slice(b"\"Infinity\"");
    } else {
        out.extend_from_slice(b"\"-Infinity\"");
    }
}

/// A `real` as the shortest decimal that reads back as the same `f32`
/// (`3.4028235e38`, as Java's `Float.toString` has it), not as the `f64` it widens to.
fn float32(value: f32, out: &mut Vec<u8>) {
    if value.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(value).as_bytes());
    } else {
        float(f64::from(value), out);
    }
}

/// A JSON string, escaped. Most values need no escaping: one scan decides, and
/// those are copied as they are.
pub(crate) fn string(text: &str, out: &mut Vec<u8>) {
    let needs_escape = text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
    if needs_escape {
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// `"name":`, escaped, for writing before each value of a column.
pub(crate) fn field_prefix(name: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(name.len() + 3);
    string(name, &mut prefix);
    prefix.push(b':');
    prefix
}

/// `bytes` as a JSON string in `mode`.
pub(crate) fn binary(bytes: &[u8], mode: BinaryMode, out: &mut Vec<u8>) {
    match mode {
        BinaryMode::Base64 => base64(bytes, out),
        BinaryMode::Hex => {
            out.push(b'"');
            for byte in bytes {
                let _ = write!(out, "{byte:02x}");
            }
            out.push(b'"');
        }
    }
}

pub(crate) fn base64(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    out.resize(start + bytes.len().div_ceil(3) * 4, 0);
    let written = BASE64.encode_slice(bytes, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn decimal(array: &Decimal128Array, row: usize, scale: i8, mode: DecimalMode, out: &mut Vec<u8>) {
    match mode {
        DecimalMode::Precise => {
            let (bytes, start) = unscaled(array.value(row));
            base64(&bytes[start..], out);
        }
        DecimalMode::String => {
            out.push(b'"');
            decimal_text(array.value(row), scale, out);
            out.push(b'"');
        }
        DecimalMode::Double => {
            let unscaled = array.value(row);
            #[allow(clippy::cast_precision_loss)]
            let value = unscaled as f64 / 10f64.powi(i32::from(scale));
            float(value, out);
        }
    }
}

/// The decimal text of `unscaled` at `scale` (`12990` at 2 is `129.90`), as
/// PostgreSQL prints `numeric(p, s)`, without allocating.
pub(crate) fn decimal_text(unscaled: i128, scale: i8, out: &mut Vec<u8>) {
    decimal_parts(unscaled, scale, |part| {
        out.extend_from_slice(part.as_bytes())
    });
}

/// The text of a decimal in pieces handed to `emit`, so a `Vec<u8>` and a `String`
/// both take it without an intermediate buffer.
fn decimal_parts(unscaled: i128, scale: i8, mut emit: impl FnMut(&str)) {
    let mut digits = itoa::Buffer::new();
    let text = digits.format(unscaled.unsigned_abs());
    let zeros = |mut count: usize, emit: &mut dyn FnMut(&str)| {
        const ZEROS: &str = "0000000000000000000000000000000000000000";
        while count > 0 {
            let run = count.min(ZEROS.len());
            emit(&ZEROS[..run]);
            count -= run;
        }
    };
    if unscaled < 0 {
        emit("-");
    }
    match usize::try_from(scale) {
        Ok(0) => emit(text),
        Ok(scale) => {
            if text.len() > scale {
                let (whole, fraction) = text.split_at(text.len() - scale);
                emit(whole);
                emit(".");
                emit(fraction);
            } else {
                emit("0.");
                zeros(scale - text.len(), &mut emit);
                emit(text);
            }
        }
        // A negative scale: trailing zeros.
        Err(_) => {
            emit(text);
            if unscaled != 0 {
                zeros(usize::from(scale.unsigned_abs()), &mut emit);
            }
        }
    }
}

/// `YYYY-MM-DD` as PostgreSQL prints a date in the years 1 to 9999 (chrono's form,
/// with a sign and more digits, outside them), without a temporary `String`.
fn push_date(date: chrono::NaiveDate, text: &mut String) {
    use chrono::Datelike as _;
    let year = date.year();
    if !(1..=9999).contains(&year) {
        use std::fmt::Write as _;
        let _ = write!(text, "{date}");
        return;
    }
    let mut buffer = *b"0000-00-00";
    for (index, value, width) in [
        (0, year as u32, 4),
        (5, date.month(), 2),
        (8, date.day(), 2),
    ] {
        let mut value = value;
        for position in (index..index + width).rev() {
            buffer[position] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    text.push_str(std::str::from_utf8(&buffer).unwrap_or_default());
}

/// Kafka Connect's `Decimal` bytes: the unscaled value, big-endian two's complement,
/// in as few bytes as hold it (Java's `BigInteger.toByteArray`).
#[cfg(test)]
pub(crate) fn unscaled_bytes(value: i128) -> Vec<u8> {
    let (bytes, start) = unscaled(value);
    bytes[start..].to_vec()
}

/// [`unscaled_bytes`] without allocating: the big-endian bytes and where the minimal
/// form starts.
pub(crate) fn unscaled(value: i128) -> ([u8; 16], usize) {
    let bytes = value.to_be_bytes();
    let start = minimal_start(&bytes);
    (bytes, start)
}

/// Where the minimal form of big-endian two's complement `bytes` starts: past the
/// leading `0x00`/`0xff` bytes that only repeat the sign.
fn minimal_start(bytes: &[u8]) -> usize {
    let mut start = 0;
    while start + 1 < bytes.len() {
        let (byte, next) = (bytes[start], bytes[start + 1]);
        let redundant = (byte == 0x00 && next & 0x80 == 0) || (byte == 0xff && next & 0x80 != 0);
        if !redundant {
            break;
        }
        start += 1;
    }
    start
}

/// Hands `write` a numeric's scale and its unscaled value's minimal bytes
/// (`"-12.340"`: 3 and `-12340`), on the stack up to 38 digits and allocated past
/// them; `false` (nothing written) for `NaN` and the infinities.
pub(crate) fn with_variable_scale(text: &str, write: impl FnOnce(u32, &[u8])) -> bool {
    if let Some((scale, value)) = variable_scale(text) {
        let (bytes, start) = unscaled(value);
        write(scale, &bytes[start..]);
        return true;
    }
    let mut bytes = Vec::new();
    match variable_scale_bytes(text, &mut bytes) {
        Some(scale) => {
            write(scale, &bytes);
            true
        }
        None => false,
    }
}

/// Unconstrained `numeric`, exact text from PostgreSQL.
fn numeric_text(text: &str, mode: DecimalMode, out: &mut Vec<u8>) {
    match mode {
        DecimalMode::String => string(text, out),
        DecimalMode::Double => match text.parse::<f64>() {
            Ok(value) => float(value, out),
            Err(_) => string(text, out),
        },
        DecimalMode::Precise => {
            let written = with_variable_scale(text, |scale, bytes| {
                out.extend_from_slice(b"{\"scale\":");
                integer(scale, out);
                out.extend_from_slice(b",\"value\":");
                base64(bytes, out);
                out.push(b'}');
            });
            if !written {
                // NaN and the infinities have no VariableScaleDecimal form: null, as
                // Debezium writes them (a string would break the declared schema).
                out.extend_from_slice(b"null");
            }
        }
    }
}

/// A `point`'s text `(x,y)` as its coordinates.
pub(crate) fn point(text: &str) -> Option<(f64, f64)> {
    let (x, y) = text.strip_prefix('(')?.strip_suffix(')')?.split_once(',')?;
    Some((x.trim().parse().ok()?, y.trim().parse().ok()?))
}

/// A point as Well-Known Binary (little-endian, type 1), as Debezium's `wkb`.
pub(crate) fn point_wkb(x: f64, y: f64) -> [u8; 21] {
    let mut wkb = [0u8; 21];
    wkb[0] = 1;
    wkb[1] = 1;
    wkb[5..13].copy_from_slice(&x.to_le_bytes());
    wkb[13..21].copy_from_slice(&y.to_le_bytes());
    wkb
}

/// `money`'s text under `lc_monetary = C` (`-$1,234.56`) as cents.
pub(crate) fn money_cents(text: &str) -> Option<i128> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let body = body.strip_prefix('$')?;
    let mut cents: i128 = 0;
    let mut fraction_digits = None;
    for byte in body.bytes() {
        match byte {
            b',' if fraction_digits.is_none() => {}
            b'.' if fraction_digits.is_none() => fraction_digits = Some(0),
            b'0'..=b'9' => {
                cents = cents
                    .checked_mul(10)?
                    .checked_add(i128::from(byte - b'0'))?;
                if let Some(digits) = fraction_digits.as_mut() {
                    *digits += 1;
                }
            }
            _ => return None,
        }
    }
    let cents = match fraction_digits.unwrap_or(0) {
        0 => cents.checked_mul(100)?,
        1 => cents.checked_mul(10)?,
        2 => cents,
        _ => return None,
    };
    Some(if negative { -cents } else { cents })
}

/// A bit string (`1010`, first bit the most significant) as Debezium's `Bits`:
/// the number's bytes little-endian, without high zero bytes (Java's
/// `BitSet.toByteArray`), appended to `out`; `false` for text that is not bits.
pub(crate) fn bits_bytes(text: &str, out: &mut Vec<u8>) -> bool {
    let start = out.len();
    for (i, bit) in text.bytes().rev().enumerate() {
        let (byte, shift) = (i / 8, i % 8);
        if start + byte == out.len() {
            out.push(0);
        }
        match bit {
            b'1' => out[start + byte] |= 1 << shift,
            b'0' => {}
            _ => {
                out.truncate(start);
                return false;
            }
        }
    }
    while out.len() > start && out.last() == Some(&0) {
        out.pop();
    }
    true
}

/// A numeric's text as its unscaled value at `scale` (`"12.5"` at 2 is 1250);
/// `None` for `NaN`, the infinities, more fractional digits than `scale` or past
/// `i128`.
pub(crate) fn unscaled_at(text: &str, scale: i8) -> Option<i128> {
    let (digits, value) = variable_scale(text)?;
    let missing = u32::try_from(i32::from(scale) - i32::try_from(digits).ok()?).ok()?;
    value.checked_mul(10_i128.checked_pow(missing)?)
}

/// `"-12.340"` → (3, -12340).
pub(crate) fn variable_scale(text: &str) -> Option<(u32, i128)> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        if !digit.is_ascii_digit() {
            return None;
        }
        value = value
            .checked_mul(10)?
            .checked_add(i128::from(digit - b'0'))?;
    }
    let scale = u32::try_from(fraction.len()).ok()?;
    Some((scale, if negative { -value } else { value }))
}

/// Debezium's `ZonedTime`: a `timetz` (`12:00:00+05:30`) as the same instant's time
/// of day in UTC (`06:30:00Z`), the fraction without trailing zeros. Text that is
/// not a `timetz` is written as it is.
fn zoned_time(text: &str, out: &mut Vec<u8>) {
    match timetz_utc_micros(text) {
        Some(micros) => {
            let mut buffer = String::with_capacity(16);
            pg_text::time(micros, &mut buffer);
            out.push(b'"');
            out.extend_from_slice(buffer.as_bytes());
            out.extend_from_slice(b"Z\"");
        }
        None => string(text, out),
    }
}

/// `HH:MM:SS[.f]±HH[:MM[:SS]]` as microseconds of the day in UTC.
fn timetz_utc_micros(text: &str) -> Option<i64> {
    let sign_at = text.rfind(['+', '-'])?;
    let (time, offset) = text.split_at(sign_at);
    let mut parts = time.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds = parts.next()?;
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    let whole: i64 = whole.parse().ok()?;
    if fraction.len() > 6 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fraction = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(6)
        .fold(0_i64, |value, digit| value * 10 + i64::from(digit - b'0'));
    let (sign, offset) = offset.split_at(1);
    let mut offset_parts = offset.split(':');
    let mut offset_seconds: i64 = 0;
    for unit in [3600, 60, 1] {
        if let Some(part) = offset_parts.next() {
            offset_seconds += part.parse::<i64>().ok()? * unit;
        }
    }
    if sign == "-" {
        offset_seconds = -offset_seconds;
    }
    let local = ((hours * 60 + minutes) * 60 + whole) * 1_000_000 + fraction;
    Some((local - offset_seconds * 1_000_000).rem_euclid(86_400_000_000))
}

/// A numeric's text (`"-12.340"`) as its scale (3) and its unscaled value's bytes —
/// big-endian two's complement in as few bytes as hold it, like Java's
/// `BigInteger.toByteArray` — appended to `bytes`, for any number of digits (an
/// unconstrained `numeric` holds up to 131072 before the point). `None` for `NaN`
/// and the infinities. [`with_variable_scale`] takes the allocation-free path first.
fn variable_scale_bytes(text: &str, bytes: &mut Vec<u8>) -> Option<u32> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let digits = whole.bytes().chain(fraction.bytes());
    if whole.is_empty() && fraction.is_empty() || !digits.clone().all(|d| d.is_ascii_digit()) {
        return None;
    }
    // The magnitude, big-endian base 256, by long multiplication.
    let mut magnitude: Vec<u8> = vec![0];
    for digit in digits {
        let mut carry = u32::from(digit - b'0');
        for byte in magnitude.iter_mut().rev() {
            let value = u32::from(*byte) * 10 + carry;
            *byte = (value & 0xff) as u8;
            carry = value >> 8;
        }
        while carry > 0 {
            magnitude.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        magnitude.insert(0, 0);
    }
    if negative {
        // Two's complement: invert, add one.
        let mut carry = true;
        for byte in magnitude.iter_mut().rev() {
            let (value, overflow) = (!*byte).overflowing_add(u8::from(carry));
            *byte = value;
            carry = carry && overflow;
        }
    }
    bytes.extend_from_slice(&magnitude[minimal_start(&magnitude)..]);
    u32::try_from(fraction.len()).ok()
}

/// Debezium's `ZonedTimestamp`: ISO 8601 in UTC with `Z` and `digits` fractional
/// digits; `±infinity` as text.
fn zoned_timestamp(micros: i64, digits: u8, out: &mut Vec<u8>) {
    match zoned_timestamp_text(micros, digits) {
        Some(text) => string(text.as_str(), out),
        None => integer(micros, out),
    }
}

/// The text of a `ZonedTimestamp` with `digits` (0 to 6) fractional digits, the
/// column's precision (the value holds no more); `None` beyond chrono's range.
pub(crate) fn zoned_timestamp_text(micros: i64, digits: u8) -> Option<ZonedText> {
    let digits = usize::from(digits.min(6));
    match micros {
        i64::MAX => Some(ZonedText::fixed("infinity")),
        i64::MIN => Some(ZonedText::fixed("-infinity")),
        _ => chrono::DateTime::from_timestamp_micros(micros).map(|time| {
            use chrono::{Datelike as _, Timelike as _};
            let year = time.year();
            if !(0..=9999).contains(&year) {
                // Beyond four digits chrono's own (allocating) form is right.
                let mut text = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                // `….uuuuuuZ`: keep `digits` of the six (and the point only with some).
                let point = text.len() - 8;
                let keep = if digits == 0 { 0 } else { digits + 1 };
                text.replace_range(point + keep..text.len() - 1, "");
                return ZonedText::owned(text);
            }
            // `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`, as chrono's Micros form writes it,
            // without allocating: the hot path of every timestamptz column.
            let mut text = ZonedText::empty();
            let two = |n: u32| [b'0' + (n / 10 % 10) as u8, b'0' + (n % 10) as u8];
            let year = year.unsigned_abs();
            text.push(&[
                b'0' + (year / 1000 % 10) as u8,
                b'0' + (year / 100 % 10) as u8,
                b'0' + (year / 10 % 10) as u8,
                b'0' + (year % 10) as u8,
            ]);
            text.push(b"-");
            text.push(&two(time.month()));
            text.push(b"-");
            text.push(&two(time.day()));
            text.push(b"T");
            text.push(&two(time.hour()));
            text.push(b":");
            text.push(&two(time.minute()));
            text.push(b":");
            text.push(&two(time.second()));
            // Debezium writes the column's fractional precision, which is 6 for a
            // `timestamptz` without one (`…:00.000000Z`) and none for
            // `timestamptz(0)` (`…:00Z`).
            let fraction = micros.rem_euclid(1_000_000);
            if digits > 0 {
                text.push(b".");
                let mut buffer = [b'0'; 6];
                let mut rest = fraction;
                for slot in buffer.iter_mut().rev() {
                    *slot = b'0' + (rest % 10) as u8;
                    rest /= 10;
                }
                text.push(&buffer[..digits]);
            }
            text.push(b"Z");
            text
        }),
    }
}

/// A `ZonedTimestamp`'s text: on the stack for the years 0 to 9999.
pub(crate) enum ZonedText {
    Stack([u8; 32], usize),
    Owned(String),
}

impl ZonedText {
    fn empty() -> Self {
        ZonedText::Stack([0; 32], 0)
    }

    fn fixed(text: &str) -> Self {
        let mut out = Self::empty();
        out.push(text.as_bytes());
        out
    }

    fn owned(text: String) -> Self {
        ZonedText::Owned(text)
    }

    fn push(&mut self, bytes: &[u8]) {
        if let ZonedText::Stack(buffer, len) = self {
            let end = (*len + bytes.len()).min(buffer.len());
            buffer[*len..end].copy_from_slice(&bytes[..end - *len]);
            *len = end;
        }
    }

    /// The text (ASCII).
    pub(crate) fn as_str(&self) -> &str {
        match self {
            ZonedText::Stack(buffer, len) => std::str::from_utf8(&buffer[..*len]).unwrap_or(""),
            ZonedText::Owned(text) => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zoned_timestamps_match_chronos_micros_form() {
        let samples = [
            0_i64,
            1,
            999,
            1000,
            1_763_712_000_250_000,
            1_763_712_000_000_001,
            -1,
            -62_135_596_800_000_000,
            253_402_300_799_999_999,
            86_399_999_999,
        ];
        for micros in samples {
            let expected = chrono::DateTime::from_timestamp_micros(micros)
                .expect("in range")
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
            let ours = zoned_timestamp_text(micros, 6).expect("in range");
            assert_eq!(ours.as_str(), expected, "{micros}");
        }
        assert_eq!(
            zoned_timestamp_text(i64::MAX, 6).expect("text").as_str(),
            "infinity"
        );
        // Years past 9999 fall back to chrono's form.
        let far = 300_000_000_000_000_000;
        let expected = chrono::DateTime::from_timestamp_micros(far)
            .expect("in range")
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        assert_eq!(
            zoned_timestamp_text(far, 6).expect("text").as_str(),
            expected
        );
        // The column's precision: `timestamptz(3)`, `timestamptz(1)`, `timestamptz(0)`.
        let at = 1_763_712_000_123_000;
        for (digits, text) in [
            (3, "2025-11-21T08:00:00.123Z"),
            (1, "2025-11-21T08:00:00.1Z"),
            (0, "2025-11-21T08:00:00Z"),
        ] {
            assert_eq!(
                zoned_timestamp_text(at, digits).expect("text").as_str(),
                text
            );
        }
        let far_text = zoned_timestamp_text(far, 2).expect("text");
        assert!(
            far_text.as_str().ends_with(":00.00Z"),
            "{}",
            far_text.as_str()
        );
        assert_eq!(
            zoned_timestamp_text(far, 0).expect("text").as_str().len() + 7,
            expected.len()
        );
    }

    #[test]
    fn decimal_bytes_are_minimal_twos_complement() {
        // As Java's BigInteger.toByteArray.
        assert_eq!(unscaled_bytes(0), [0x00]);
        assert_eq!(unscaled_bytes(12990), [0x32, 0xbe]);
        assert_eq!(unscaled_bytes(128), [0x00, 0x80]);
        assert_eq!(unscaled_bytes(-1), [0xff]);
        assert_eq!(unscaled_bytes(-129), [0xff, 0x7f]);
    }

    #[test]
    fn decimal_text_is_postgresqls() {
        let text = |unscaled, scale| {
            let mut out = Vec::new();
            decimal_text(unscaled, scale, &mut out);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(text(12_990, 2), "129.90");
        assert_eq!(text(-1, 2), "-0.01");
        assert_eq!(text(5, 0), "5");
        assert_eq!(text(123, -2), "12300");
        assert_eq!(text(0, 3), "0.000");
    }

    #[test]
    fn money_and_bits_take_debeziums_forms() {
        assert_eq!(money_cents("$12.34"), Some(1234));
        assert_eq!(money_cents("-$0.50"), Some(-50));
        assert_eq!(money_cents("$1,234,567.00"), Some(123_456_700));
        assert_eq!(money_cents("12.34"), None);
        let bits = |text: &str| {
            let mut out = Vec::new();
            bits_bytes(text, &mut out).then_some(out)
        };
        assert_eq!(bits("1010"), Some(vec![0x0a]));
        assert_eq!(bits("10101"), Some(vec![0x15]));
        assert_eq!(bits("0000"), Some(vec![]));
        assert_eq!(bits("100000000"), Some(vec![0x00, 0x01]));
        assert_eq!(bits("10x"), None);
    }

    #[test]
    fn numeric_text_rescales_to_its_declared_scale() {
        assert_eq!(unscaled_at("12.5", 2), Some(1250));
        assert_eq!(unscaled_at("-0.01", 2), Some(-1));
        assert_eq!(unscaled_at("7", 0), Some(7));
        assert_eq!(unscaled_at("NaN", 2), None);
        assert_eq!(unscaled_at("1.234", 2), None);
    }

    #[test]
    fn timetz_is_written_in_utc_as_debezium_zoned_time() {
        let zoned = |text: &str| {
            let mut out = Vec::new();
            zoned_time(text, &mut out);
            String::from_utf8(out).expect("utf-8")
        };
        assert_eq!(zoned("12:00:00+05:30"), "\"06:30:00Z\"");
        assert_eq!(zoned("23:59:59.999999+14"), "\"09:59:59.999999Z\"");
        assert_eq!(zoned("00:00:00-12"), "\"12:00:00Z\"");
        assert_eq!(zoned("10:00:00.5+00"), "\"10:00:00.5Z\"");
        assert_eq!(zoned("not a time"), "\"not a time\"");
    }

    #[test]
    fn variable_scale_bytes_hold_any_number_of_digits() {
        let bytes = |text: &str| {
            let mut out = None;
            with_variable_scale(text, |scale, bytes| out = Some((scale, bytes.to_vec())));
            out
        };
        assert_eq!(bytes("-0.50"), Some((2, vec![0xce])));
        assert_eq!(bytes("128"), Some((0, vec![0x00, 0x80])));
        assert_eq!(bytes("NaN"), None);
        assert_eq!(bytes("Infinity"), None);
        // 2^128 (39 digits, past i128) and its negation: 0x01 followed by 16 zero
        // bytes, and 0xff followed by 16 zero bytes.
        let big = "340282366920938463463374607431768211456";
        let mut expected = vec![0x01];
        expected.extend([0u8; 16]);
        assert_eq!(bytes(big), Some((0, expected)));
        let mut expected = vec![0xff];
        expected.extend([0u8; 16]);
        assert_eq!(bytes(&format!("-{big}")), Some((0, expected)));
        assert_eq!(bytes(&format!("{big}.5")).map(|(scale, _)| scale), Some(1));
    }

    #[test]
    fn variable_scale_keeps_every_digit() {
        assert_eq!(
            variable_scale("1234567890.123456789"),
            Some((9, 1_234_567_890_123_456_789))
        );
        assert_eq!(variable_scale("-0.50"), Some((2, -50)));
        assert_eq!(variable_scale("NaN"), None);
    }

    #[test]
    fn timestamps_and_floats_follow_debezium() {
        let mut out = Vec::new();
        zoned_timestamp(1_763_712_000_123_456, 6, &mut out);
        assert_eq!(
            String::from_utf8_lossy(&out),
            "\"2025-11-21T08:00:00.123456Z\""
        );
        out.clear();
        float(f64::NAN, &mut out);
        float(1.5, &mut out);
        assert_eq!(String::from_utf8_lossy(&out), "\"NaN\"1.5");
    }
}
