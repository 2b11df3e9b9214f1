//! How PostgreSQL types become Arrow types.
//!
//! A type becomes a native Arrow type where its values fit, and a column keeps its
//! Arrow type for good: the few values PostgreSQL allows that the type cannot hold
//! are mapped as the table says (a `NaN` in `numeric(p, s)` is null, a timestamp
//! past 294247 AD the latest one, a multi-dimensional array its elements), so no
//! value changes a column's type under consumers. Everything else keeps
//! PostgreSQL's own text form in a Utf8 column, with the type named in the field's
//! `weir.pg_type` metadata. A type weir does not know is carried as text and never
//! stops the pipeline.
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | `bool` | Boolean |
//! | `int2`, `int4`, `int8` | Int16, Int32, Int64 |
//! | `oid`, `xid` | UInt32 |
//! | `float4`, `float8` (incl. NaN, ±Infinity) | Float32, Float64 |
//! | `numeric(p, s)` with p ≤ 38 | Decimal128(p, s); `NaN` as null |
//! | `numeric` without precision, or p > 38 | Utf8 (exact text, `NaN`, `±Infinity`) |
//! | `date` | Date32 (`±infinity` as i32::MAX / MIN) |
//! | `time` | Time64(µs) |
//! | `timestamp` | Timestamp(µs) (`±infinity` as i64::MAX / MIN; past 294247-01-10 04:00:54.775806, that instant) |
//! | `timestamptz` | Timestamp(µs, "UTC") (as `timestamp`) |
//! | `interval` | Interval(MonthDayNano) (a time part past ±292 years of hours carries whole days into the days) |
//! | `bytea` | Binary |
//! | one-dimensional arrays of `bool`, `int2`, `int4`, `int8`, `float4`, `float8`, `text`, `varchar` | List of the element type; a multi-dimensional value, or one with explicit bounds, gives its elements in storage order (as `unnest`) |
//! | one-dimensional arrays of `numeric`, `uuid`, `json`, `jsonb` | List of Utf8 (each element's text form); flattened as above |
//! | everything else: text types, `json`, `jsonb`, `uuid`, `xml`, `timetz`, `money`, network, geometric, bit string and text-search types, enums, domains, composites, other arrays | Utf8 (PostgreSQL's text form) |

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, IntervalUnit, TimeUnit};

use crate::contract::columns::numeric_precision_scale;

use weir_pgoutput::Oid;

/// The largest precision Decimal128 holds.
const DECIMAL128_MAX_PRECISION: i32 = 38;

/// Well-known type OIDs (`pg_type.oid`, stable across PostgreSQL versions).
pub(crate) mod oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT4: u32 = 23;
    pub(crate) const OID: u32 = 26;
    pub(crate) const XID: u32 = 28;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const DATE: u32 = 1082;
    pub(crate) const TIME: u32 = 1083;
    pub(crate) const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const INTERVAL: u32 = 1186;
    pub(crate) const NUMERIC: u32 = 1700;
    pub(crate) const BOOL_ARRAY: u32 = 1000;
    pub(crate) const INT2_ARRAY: u32 = 1005;
    pub(crate) const INT4_ARRAY: u32 = 1007;
    pub(crate) const TEXT_ARRAY: u32 = 1009;
    pub(crate) const VARCHAR_ARRAY: u32 = 1015;
    pub(crate) const INT8_ARRAY: u32 = 1016;
    pub(crate) const FLOAT4_ARRAY: u32 = 1021;
    pub(crate) const FLOAT8_ARRAY: u32 = 1022;
    pub(crate) const JSON_ARRAY: u32 = 199;
    pub(crate) const NUMERIC_ARRAY: u32 = 1231;
    pub(crate) const UUID_ARRAY: u32 = 2951;
    pub(crate) const JSONB_ARRAY: u32 = 3807;
}

/// What a column becomes in Arrow, and how its text is parsed. Variants are named
/// after their Arrow type (see the module table).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Boolean,
    Int16,
    Int32,
    Int64,
    UInt32,
    Float32,
    Float64,
    Decimal {
        precision: u8,
        scale: i8,
    },
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Interval,
    Bytes,
    /// A one-dimensional array.
    List(ElementKind),
    /// PostgreSQL's text form, kept as is.
    Text,
}

/// The element type of an array column mapped to an Arrow List.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    Boolean,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Text,
}

impl ElementKind {
    /// The Arrow type of the elements.
    pub fn data_type(self) -> DataType {
        match self {
            ElementKind::Boolean => DataType::Boolean,
            ElementKind::Int16 => DataType::Int16,
            ElementKind::Int32 => DataType::Int32,
            ElementKind::Int64 => DataType::Int64,
            ElementKind::Float32 => DataType::Float32,
            ElementKind::Float64 => DataType::Float64,
            ElementKind::Text => DataType::Utf8,
        }
    }
}

impl ColumnKind {
    /// Whether weir reads this kind's binary form (`typsend`): fixed-size numbers,
    /// dates and times, and bytes. Reading a snapshot, weir asks binary `COPY` for
    /// these (no text formatting on the server, no parsing here) and the text form
    /// of everything else.
    pub fn reads_binary(self) -> bool {
        matches!(
            self,
            ColumnKind::Boolean
                | ColumnKind::Int16
                | ColumnKind::Int32
                | ColumnKind::Int64
                | ColumnKind::UInt32
                | ColumnKind::Float32
                | ColumnKind::Float64
                | ColumnKind::Date
                | ColumnKind::Time
                | ColumnKind::Timestamp
                | ColumnKind::TimestampTz
                | ColumnKind::Bytes
        )
    }

    /// The kind for a column of type `oid` with modifier `type_modifier`
    /// (`atttypmod`, -1 when none).
    pub fn for_type(oid: Oid, type_modifier: i32) -> ColumnKind {
        match oid {
            oid::BOOL => ColumnKind::Boolean,
            oid::INT2 => ColumnKind::Int16,
            oid::INT4 => ColumnKind::Int32,
            oid::INT8 => ColumnKind::Int64,
            oid::OID | oid::XID => ColumnKind::UInt32,
            oid::FLOAT4 => ColumnKind::Float32,
            oid::FLOAT8 => ColumnKind::Float64,
            oid::NUMERIC => numeric_kind(type_modifier),
            oid::DATE => ColumnKind::Date,
            oid::TIME => ColumnKind::Time,
            oid::TIMESTAMP => ColumnKind::Timestamp,
            oid::TIMESTAMPTZ => ColumnKind::TimestampTz,
            oid::INTERVAL => ColumnKind::Interval,
            oid::BYTEA => ColumnKind::Bytes,
            oid::BOOL_ARRAY => ColumnKind::List(ElementKind::Boolean),
            oid::INT2_ARRAY => ColumnKind::List(ElementKind::Int16),
            oid::INT4_ARRAY => ColumnKind::List(ElementKind::Int32),
            oid::INT8_ARRAY => ColumnKind::List(ElementKind::Int64),
            oid::FLOAT4_ARRAY => ColumnKind::List(ElementKind::Float32),
            oid::FLOAT8_ARRAY => ColumnKind::List(ElementKind::Float64),
            // Elements kept as their text; the encoders type them from the array's
            // `weir.pg_type` (`contract::columns::typed_element`).
            oid::TEXT_ARRAY
            | oid::VARCHAR_ARRAY
            | oid::NUMERIC_ARRAY
            | oid::UUID_ARRAY
            | oid::JSON_ARRAY
            | oid::JSONB_ARRAY => ColumnKind::List(ElementKind::Text),
            _ => ColumnKind::Text,
        }
    }

    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnKind::Boolean => DataType::Boolean,
            ColumnKind::Int16 => DataType::Int16,
            ColumnKind::Int32 => DataType::Int32,
            ColumnKind::Int64 => DataType::Int64,
            ColumnKind::UInt32 => DataType::UInt32,
            ColumnKind::Float32 => DataType::Float32,
            ColumnKind::Float64 => DataType::Float64,
            ColumnKind::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
            ColumnKind::Date => DataType::Date32,
            ColumnKind::Time => DataType::Time64(TimeUnit::Microsecond),
            ColumnKind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnKind::TimestampTz => {
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            ColumnKind::Interval => DataType::Interval(IntervalUnit::MonthDayNano),
            ColumnKind::Bytes => DataType::Binary,
            ColumnKind::List(element) => {
                DataType::List(Arc::new(Field::new_list_field(element.data_type(), true)))
            }
            ColumnKind::Text => DataType::Utf8,
        }
    }
}

/// `numeric(p, s)` stores `((p << 16) | s) + 4` in the type modifier, with `s` an
/// 11-bit signed field (negative scales exist since PostgreSQL 15).
fn numeric_kind(type_modifier: i32) -> ColumnKind {
    match numeric_precision_scale(type_modifier, DECIMAL128_MAX_PRECISION) {
        Some((precision, scale)) => ColumnKind::Decimal { precision, scale },
        None => ColumnKind::Text,
    }
}

/// The name of a built-in type, for `weir.pg_type`; `None` for types the catalog or
/// a pgoutput Type message must name.
pub fn builtin_type_name(oid: Oid) -> Option<&'static str> {
    Some(match oid {
        16 => "bool",
        17 => "bytea",
        18 => "char",
        19 => "name",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        26 => "oid",
        28 => "xid",
        114 => "json",
        142 => "xml",
        600 => "point",
        601 => "lseg",
        602 => "path",
        603 => "box",
        604 => "polygon",
        628 => "line",
        650 => "cidr",
        700 => "float4",
        701 => "float8",
        718 => "circle",
        774 => "macaddr8",
        790 => "money",
        829 => "macaddr",
        869 => "inet",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1266 => "timetz",
        1560 => "bit",
        1562 => "varbit",
        1700 => "numeric",
        2950 => "uuid",
        3220 => "pg_lsn",
        3614 => "tsvector",
        3615 => "tsquery",
        3802 => "jsonb",
        199 => "_json",
        1000 => "_bool",
        1001 => "_bytea",
        1005 => "_int2",
        1007 => "_int4",
        1009 => "_text",
        1014 => "_bpchar",
        1015 => "_varchar",
        1016 => "_int8",
        1021 => "_float4",
        1022 => "_float8",
        1115 => "_timestamp",
        1182 => "_date",
        1183 => "_time",
        1185 => "_timestamptz",
        1187 => "_interval",
        1231 => "_numeric",
        2951 => "_uuid",
        3807 => "_jsonb",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_typmod(precision: i32, scale: i32) -> i32 {
        ((precision << 16) | (scale & 0x7FF)) + 4
    }

    #[test]
    fn numeric_precision_and_scale() {
        assert_eq!(
            ColumnKind::for_type(oid::NUMERIC, numeric_typmod(12, 2)),
            ColumnKind::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(
            ColumnKind::for_type(oid::NUMERIC, numeric_typmod(5, -2)),
            ColumnKind::Decimal {
                precision: 5,
                scale: -2
            }
        );
        assert_eq!(ColumnKind::for_type(oid::NUMERIC, -1), ColumnKind::Text);
        assert_eq!(
            ColumnKind::for_type(oid::NUMERIC, numeric_typmod(39, 0)),
            ColumnKind::Text
        );
    }

    #[test]
    fn unknown_types_are_text() {
        assert_eq!(ColumnKind::for_type(2950, -1), ColumnKind::Text);
        assert_eq!(ColumnKind::for_type(99_999, -1), ColumnKind::Text);
        assert_eq!(builtin_type_name(99_999), None);
    }
}
