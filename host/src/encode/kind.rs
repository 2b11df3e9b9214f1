//! What a column is, in the terms of the encoders that carry schemas (Avro, and
//! Debezium JSON with `schema`): decided once per batch schema from the Arrow type
//! and the value options, and shared by the schema and the value writer so they
//! cannot disagree.

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

use crate::contract::columns::{
    bit_length, declared_decimal, fraction_digits, metadata, millisecond_precision, typed_element,
};
use crate::encode::value::{DecimalMode, IntervalMode, ValueOptions, binary, string};

/// How one column is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueKind {
    Boolean,
    /// `int` with Connect's `int16` annotation.
    Int16,
    Int32,
    Int64,
    /// `oid`/`xid`: unsigned 32-bit, as `long`.
    UInt32,
    Float32,
    Float64,
    /// Connect `Decimal`: bytes of the unscaled value.
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// A Decimal128 column as text or as double.
    DecimalString,
    DecimalDouble,
    /// Unconstrained `numeric` (a Utf8 column): Debezium's `VariableScaleDecimal`,
    /// text, or double.
    VariableDecimal,
    NumericString,
    NumericDouble,
    /// A string; `connect_name` for `json`, `jsonb`, `uuid`, `xml`, enums; an
    /// enum's labels in `allowed`.
    Text {
        connect_name: Option<&'static str>,
        allowed: Option<String>,
    },
    Bytes,
    Date,
    MicroTime,
    MicroTimestamp,
    /// `time(0…3)`: milliseconds of the day, `int32` (Debezium's `Time`, adaptive).
    MilliTime,
    /// `timestamp(0…3)`: milliseconds since 1970 (Debezium's `Timestamp`, adaptive).
    MilliTimestamp,
    /// `timestamptz(p)`: ISO 8601 text with `digits` fractional digits.
    ZonedTimestamp {
        digits: u8,
    },
    MicroDuration,
    IntervalString,
    /// `money` (text `-$1,234.56`): Connect `Decimal` of scale 2.
    Money,
    /// `point` (text `(x,y)`): Debezium's `io.debezium.data.geometry.Point` struct.
    Point,
    /// `hstore` (text `"a"=>"1"`): a JSON object in a string (`io.debezium.data.Json`),
    /// Debezium's default `hstore.handling.mode`.
    Hstore,
    /// `bit(n)`/`varbit(n)` (text `1010`): Debezium's `io.debezium.data.Bits`
    /// bytes; `bit(1)` is a boolean. `length` is `n` (varbit without one: i32::MAX).
    Bits {
        length: i32,
    },
    /// One-dimensional array; elements may be null.
    Array(Box<ValueKind>),
    /// Anything else, as PostgreSQL's (or Arrow's) text form.
    TextForm,
}

impl ValueKind {
    /// The kind of an Arrow field.
    pub(crate) fn of(field: &Field, options: &ValueOptions) -> ValueKind {
        let pg_type = field.metadata().get(metadata::PG_TYPE).map(String::as_str);
        match field.data_type() {
            DataType::Boolean => ValueKind::Boolean,
            DataType::Int16 => ValueKind::Int16,
            DataType::Int32 => ValueKind::Int32,
            DataType::Int64 => ValueKind::Int64,
            DataType::UInt32 => ValueKind::UInt32,
            DataType::Float32 => ValueKind::Float32,
            DataType::Float64 => ValueKind::Float64,
            DataType::Decimal128(precision, scale) => match options.decimal {
                // Avro's decimal needs a scale of zero or more.
                DecimalMode::Precise if *scale >= 0 => ValueKind::Decimal {
                    precision: *precision,
                    scale: *scale,
                },
                DecimalMode::Precise | DecimalMode::String => ValueKind::DecimalString,
                DecimalMode::Double => ValueKind::DecimalDouble,
            },
            // A numeric(p, s) carried as text since a NaN: still declared Decimal,
            // so the schema does not change under consumers (the NaN is null).
            DataType::Utf8 if options.decimal == DecimalMode::Precise => {
                match declared_decimal(field) {
                    Some((precision, scale)) => ValueKind::Decimal { precision, scale },
                    None => ValueKind::of_text(field, pg_type, options),
                }
            }
            DataType::Utf8 => ValueKind::of_text(field, pg_type, options),
            DataType::Binary => ValueKind::Bytes,
            DataType::Date32 => ValueKind::Date,
            DataType::Time64(TimeUnit::Microsecond) if millisecond_precision(field) => {
                ValueKind::MilliTime
            }
            DataType::Time64(TimeUnit::Microsecond) => ValueKind::MicroTime,
            DataType::Timestamp(TimeUnit::Microsecond, None) if millisecond_precision(field) => {
                ValueKind::MilliTimestamp
            }
            DataType::Timestamp(TimeUnit::Microsecond, None) => ValueKind::MicroTimestamp,
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => ValueKind::ZonedTimestamp {
                digits: fraction_digits(field),
            },
            DataType::Interval(IntervalUnit::MonthDayNano) => match options.interval {
                IntervalMode::Numeric => ValueKind::MicroDuration,
                IntervalMode::String => ValueKind::IntervalString,
            },
            DataType::List(element) => ValueKind::Array(Box::new(match typed_element(field) {
                Some(typed) => ValueKind::of(&typed, options),
                None => ValueKind::of(element, options),
            })),
            _ => ValueKind::TextForm,
        }
    }

    /// The kind of a Utf8 column of PostgreSQL type `pg_type`.
    fn of_text(field: &Field, pg_type: Option<&str>, options: &ValueOptions) -> ValueKind {
        match pg_type {
            Some("money") if options.decimal == DecimalMode::Precise => ValueKind::Money,
            Some("point") => ValueKind::Point,
            Some(name) if is_hstore(name) => ValueKind::Hstore,
            Some("bit" | "varbit") => ValueKind::Bits {
                length: bit_length(field),
            },
            Some("numeric") => match options.decimal {
                DecimalMode::Precise => ValueKind::VariableDecimal,
                DecimalMode::String => ValueKind::NumericString,
                DecimalMode::Double => ValueKind::NumericDouble,
            },
            _ if field.metadata().contains_key(metadata::PG_ENUM_LABELS) => ValueKind::Text {
                connect_name: Some("io.debezium.data.Enum"),
                allowed: field.metadata().get(metadata::PG_ENUM_LABELS).cloned(),
            },
            _ => ValueKind::Text {
                allowed: None,
                connect_name: match pg_type {
                    Some("json" | "jsonb") => Some("io.debezium.data.Json"),
                    Some("uuid") => Some("io.debezium.data.Uuid"),
                    Some("xml") => Some("io.debezium.data.Xml"),
                    Some("tsvector") => Some("io.debezium.data.Tsvector"),
                    Some("timetz") => Some("io.debezium.time.ZonedTime"),
                    _ => None,
                },
            },
        }
    }

    /// What Debezium writes for a required (NOT NULL) column an old image lacks —
    /// What stands for a value PostgreSQL left unchanged in TOAST and did not send,
    /// typed as Debezium types it (the oracle shows it): `placeholder`'s bytes for
    /// `bytea`, a one-element array of it for arrays of text, its bytes as numbers
    /// for arrays of integers, and the string itself for the rest (arrays of other
    /// types included, whatever their schema says: Debezium's choice, kept).
    pub(crate) fn placeholder_json(&self, options: &ValueOptions) -> Vec<u8> {
        let placeholder = options.unavailable_placeholder.as_str();
        let mut out = Vec::with_capacity(placeholder.len() + 4);
        match self {
            ValueKind::Bytes => binary(placeholder.as_bytes(), options.binary, &mut out),
            ValueKind::Array(element)
                if matches!(
                    **element,
                    ValueKind::Int16 | ValueKind::Int32 | ValueKind::Int64
                ) =>
            {
                out.push(b'[');
                for (index, byte) in placeholder.bytes().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(itoa::Buffer::new().format(byte).as_bytes());
                }
                out.push(b']');
            }
            ValueKind::Array(element)
                if matches!(
                    **element,
                    ValueKind::Text {
                        connect_name: None,
                        ..
                    }
                ) =>
            {
                out.push(b'[');
                string(placeholder, &mut out);
                out.push(b']');
            }
            // Other arrays too, as Debezium does.
            _ => string(placeholder, &mut out),
        }
        out
    }

    /// a delete's old image under the default replica identity holds only the key —
    /// since a required field cannot be null: the type's zero.
    pub(crate) fn zero_json(&self) -> &'static [u8] {
        match self {
            ValueKind::Boolean => b"false",
            ValueKind::Int16
            | ValueKind::Int32
            | ValueKind::Int64
            | ValueKind::UInt32
            | ValueKind::Float32
            | ValueKind::Float64
            | ValueKind::DecimalDouble
            | ValueKind::NumericDouble
            | ValueKind::Date
            | ValueKind::MicroTime
            | ValueKind::MicroTimestamp
            | ValueKind::MilliTime
            | ValueKind::MilliTimestamp
            | ValueKind::MicroDuration => b"0",
            // The unscaled value 0 in one byte.
            ValueKind::Decimal { .. } | ValueKind::Money => b"\"AA==\"",
            ValueKind::Bits { length: 1 } => b"false",
            ValueKind::Point => b"{\"x\":0.0,\"y\":0.0,\"wkb\":null,\"srid\":null}",
            ValueKind::Bits { .. } => b"\"\"",
            ValueKind::VariableDecimal => b"{\"scale\":0,\"value\":\"AA==\"}",
            ValueKind::Array(_) => b"[]",
            ValueKind::DecimalString
            | ValueKind::NumericString
            | ValueKind::Text { .. }
            | ValueKind::Bytes
            | ValueKind::ZonedTimestamp { .. }
            | ValueKind::IntervalString
            | ValueKind::Hstore
            | ValueKind::TextForm => b"\"\"",
        }
    }

    /// Whether a value may have no form in its type (NaN or over 38 digits for
    /// `VariableScaleDecimal`, text that is no number for a double), so the field must
    /// admit null even in a key.
    pub(crate) fn may_fail(&self) -> bool {
        matches!(self, ValueKind::VariableDecimal | ValueKind::NumericDouble)
    }
}

/// Whether `pg_type` names the `hstore` extension's type (`public.hstore`, or
/// `hstore` when the extension lives in `pg_catalog`).
pub(crate) fn is_hstore(pg_type: &str) -> bool {
    pg_type == "hstore" || pg_type.ends_with(".hstore")
}
