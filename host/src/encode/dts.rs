//! `dts-avro`: Alibaba Cloud DTS's Avro record (`com.alibaba.dts.formats.avro.Record`,
//! the schema of DTS's subscribe SDK, `com.aliyun.dts:dts-new-subscribe-sdk` 2.0.0),
//! raw Avro binary in each message with no registry and no header, as DTS writes it
//! to Kafka:
//!
//! - `version` 1, `id` the change's LSN, `sourceTimestamp` the commit time in seconds,
//!   `sourcePosition` the change's LSN (`X/Y`), `safeSourcePosition` its transaction's
//!   commit LSN, `sourceTxid` the transaction id, `source` `{PostgreSQL, ""}`;
//! - `operation` `INSERT` (snapshot reads too), `UPDATE`, `DELETE`, or `DDL` for a
//!   TRUNCATE (its statement in `afterImages`, `fields` null);
//! - `objectName` `database.schema.table` (a `.` in a name as `\u002E`);
//! - `tags` `{"pk_uk_info": "{\"PRIMARY\":[…]}"}`: the SDK's source of key columns;
//! - `fields` each column's name and type OID (`dataTypeNumber`);
//! - `beforeImages` for updates and deletes, `afterImages` for inserts and updates:
//!   one value per column in the class DTS's SDK reads for its type (see
//!   [`write_value`]). A value PostgreSQL did not send — the non-key columns of an
//!   old row without `REPLICA IDENTITY FULL`, an unchanged TOASTed value — is
//!   `EmptyObject.NONE`, DTS's "not present", never a null.
//!
//! The key is `objectName`'s text: DTS's default partitioning hashes the database and
//! table names, so a table's changes stay in order on one partition.

use arrow::array::RecordBatch;
use arrow::datatypes::Field;
use chrono::{Datelike, Timelike};

use super::avro::binary::{bytes, double, long, union_branch};
use super::layout::{Layout, MetadataColumns};
use super::row_images::{Image, RowImages};
use super::value::{ColumnWriter, Scalar, decimal_text, money_cents};
use super::{EncodeError, Encoder, Messages};
use crate::contract::SnapshotMarks;
use crate::contract::columns::{metadata, numeric_typmod, op};
use crate::contract::sql::truncate_statement;
use crate::lsn::Lsn;

/// `Operation`'s symbols, by index.
const INSERT: i64 = 0;
const UPDATE: i64 = 1;
const DELETE: i64 = 2;
const DDL: i64 = 3;
/// `SourceType.PostgreSQL`.
const POSTGRESQL: i64 = 3;

/// The branches of an image value's union, by index in the schema.
mod class {
    pub(super) const NULL: i64 = 0;
    pub(super) const INTEGER: i64 = 1;
    pub(super) const CHARACTER: i64 = 2;
    pub(super) const DECIMAL: i64 = 3;
    pub(super) const FLOAT: i64 = 4;
    pub(super) const DATE_TIME: i64 = 6;
    pub(super) const TIMESTAMP_WITH_TIME_ZONE: i64 = 7;
    pub(super) const BINARY_OBJECT: i64 = 10;
    pub(super) const TEXT_OBJECT: i64 = 11;
    pub(super) const EMPTY_OBJECT: i64 = 12;
    /// `EmptyObject.NONE`: no value (not a null).
    pub(super) const NONE: i64 = 1;
}

/// The `dts-avro` encoder.
#[derive(Debug, Clone)]
pub struct DtsAvroEncoder {
    database: String,
}

impl DtsAvroEncoder {
    /// An encoder naming `database` (PostgreSQL's) in `objectName`.
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
        }
    }
}

/// A column as this format writes it.
struct Column<'a> {
    field: &'a Field,
    pg_type: &'a str,
}

impl Encoder for DtsAvroEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        _marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError> {
        let layout = Layout::new(batch.schema_ref())?;
        let schema = batch.schema();
        let MetadataColumns {
            ops,
            lsns,
            commit_lsns,
            xids,
            commit_ts,
            ..
        } = layout.metadata(batch)?;
        let images = RowImages::new(&layout, batch);
        let columns: Vec<Column<'_>> = layout
            .columns
            .iter()
            .map(|column| {
                let field = schema.field(column.index);
                Column {
                    field,
                    pg_type: field
                        .metadata()
                        .get(metadata::PG_TYPE)
                        .map_or("text", String::as_str),
                }
            })
            .collect();

        let object_name = object_name(&self.database, &layout.schema_name, &layout.table_name);
        // `source` … `objectName`, and `processTimestamps`, `tags`, `fields`: the same
        // for every row but for `operation`, which sits between them.
        let mut source = Vec::new();
        union_branch(POSTGRESQL, &mut source);
        bytes(b"", &mut source);
        let mut after_operation = Vec::new();
        union_branch(1, &mut after_operation);
        bytes(object_name.as_bytes(), &mut after_operation);
        union_branch(0, &mut after_operation);
        let mut row_tail = after_operation.clone();
        tags(&layout, &mut row_tail);
        union_branch(2, &mut row_tail);
        long(array_len(columns.len()), &mut row_tail);
        for (column, user) in columns.iter().zip(&layout.columns) {
            bytes(user.name.as_bytes(), &mut row_tail);
            let oid: i64 = column
                .field
                .metadata()
                .get(metadata::PG_TYPE_OID)
                .and_then(|oid| oid.parse().ok())
                .unwrap_or(0);
            long(oid, &mut row_tail);
        }
        if !columns.is_empty() {
            long(0, &mut row_tail);
        }

        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            let value = |buffer: &mut Vec<u8>| {
                let mut text = String::new();
                long(1, buffer);
                long(i64::try_from(lsns.value(row)).unwrap_or(i64::MAX), buffer);
                long(commit_ts.value(row).div_euclid(1_000_000), buffer);
                lsn_string(lsns.value(row), buffer);
                lsn_string(commit_lsns.value(row), buffer);
                bytes(
                    itoa::Buffer::new().format(xids.value(row)).as_bytes(),
                    buffer,
                );
                buffer.extend_from_slice(&source);
                if change == op::TRUNCATE {
                    long(DDL, buffer);
                    buffer.extend_from_slice(&after_operation);
                    tags(&layout, buffer);
                    union_branch(0, buffer);
                    union_branch(0, buffer);
                    union_branch(1, buffer);
                    let statement = truncate_statement(&layout.schema_name, &layout.table_name);
                    bytes(statement.as_bytes(), buffer);
                    return;
                }
                long(
                    match change {
                        op::UPDATE => UPDATE,
                        op::DELETE => DELETE,
                        _ => INSERT,
                    },
                    buffer,
                );
                buffer.extend_from_slice(&row_tail);
                // beforeImages for updates and deletes, afterImages for inserts and
                // updates; what PostgreSQL did not send is NONE.
                for (image, wanted) in [
                    (Image::Old, matches!(change, op::UPDATE | op::DELETE)),
                    (Image::New, change != op::DELETE),
                ] {
                    if !wanted {
                        union_branch(0, buffer);
                        continue;
                    }
                    union_branch(2, buffer);
                    long(array_len(columns.len()), buffer);
                    for (position, column) in columns.iter().enumerate() {
                        match images.known(&layout.key, row, position, change, image) {
                            Some(writer) => write_value(writer, column, row, &mut text, buffer),
                            None => none(buffer),
                        }
                    }
                    if !columns.is_empty() {
                        long(0, buffer);
                    }
                }
            };
            let key = |buffer: &mut Vec<u8>| buffer.extend_from_slice(object_name.as_bytes());
            out.push(row, Some(&key), Some(&value));
        }
        Ok(())
    }
}

/// An LSN as an Avro `string` in PostgreSQL's `X/Y` form, without allocating.
fn lsn_string(lsn: u64, out: &mut Vec<u8>) {
    use std::io::Write as _;
    let mut text = [0_u8; 17];
    let mut cursor = std::io::Cursor::new(&mut text[..]);
    // `FFFFFFFF/FFFFFFFF` fits: the write cannot fail.
    let _ = write!(cursor, "{}", Lsn(lsn));
    let len = usize::try_from(cursor.position()).unwrap_or(0);
    bytes(&text[..len], out);
}

/// `database.schema.table`, a `.` inside a name written `\u002E`, as DTS's
/// `ObjectNameUtils` does.
fn object_name(database: &str, schema: &str, table: &str) -> String {
    [database, schema, table]
        .iter()
        .map(|name| name.replace('.', "\\u002E"))
        .collect::<Vec<_>>()
        .join(".")
}

/// `tags`: the primary key as DTS's SDK reads it (`pk_uk_info`).
fn tags(layout: &Layout, out: &mut Vec<u8>) {
    if layout.key.is_empty() {
        long(0, out);
        return;
    }
    let names: Vec<&str> = layout
        .key
        .iter()
        .map(|&position| layout.columns[position].name.as_str())
        .collect();
    let info = serde_json::json!({ "PRIMARY": names }).to_string();
    long(1, out);
    bytes(b"pk_uk_info", out);
    bytes(info.as_bytes(), out);
    long(0, out);
}

fn array_len(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

/// `EmptyObject.NONE`.
fn none(out: &mut Vec<u8>) {
    union_branch(class::EMPTY_OBJECT, out);
    long(class::NONE, out);
}

/// Writes `writer`'s value at `row` in the value class DTS's SDK reads for the
/// column's PostgreSQL type:
///
/// | PostgreSQL | class |
/// |---|---|
/// | `int2`, `int4`, `int8`, `oid` | `Integer` (its digits; `precision` the type's) |
/// | `numeric`, `money` | `Decimal` (value, precision, scale); `NaN`, `±Infinity` as `Float` |
/// | `float4`, `float8` | `Float` |
/// | `char`, `varchar`, `text`, `name` | `Character` (UTF-8 bytes, charset `UTF-8`) |
/// | `bytea` | `BinaryObject` `BYTEA` |
/// | `date`, `time`, `timestamp` | `DateTime` (the parts it has; `millis` holds microseconds, as the SDK reads it) |
/// | `timestamptz`, `timetz` | `TimestampWithTimeZone` (UTC `+00:00`, or `timetz`'s offset) |
/// | `bool` | `TextObject` `BOOL` (`true`/`false`) |
/// | `json`, `jsonb`, `xml`, `uuid`, enums | `TextObject` `JSON`, `XML`, `UUID`, `ENUM` |
/// | everything else, and infinite dates and timestamps | `TextObject` `TEXT`: PostgreSQL's text |
fn write_value(
    writer: &ColumnWriter<'_>,
    column: &Column<'_>,
    row: usize,
    text: &mut String,
    out: &mut Vec<u8>,
) {
    let scalar = writer.scalar(row);
    let mut digits = itoa::Buffer::new();
    match (column.pg_type, scalar) {
        (_, Scalar::Null) => union_branch(class::NULL, out),
        (pg_type, Scalar::Int(value)) => {
            union_branch(class::INTEGER, out);
            long(integer_precision(pg_type), out);
            bytes(digits.format(value).as_bytes(), out);
        }
        (_, Scalar::Float(value)) => float(value, column.pg_type == "float4", out),
        (_, Scalar::Decimal(unscaled, scale)) => {
            let mut value = Vec::new();
            decimal_text(unscaled, scale, &mut value);
            let (precision, _) = declared(column.field).unwrap_or((0, 0));
            decimal(&value, precision, i64::from(scale), out);
        }
        ("numeric", Scalar::Text(value)) => numeric_text(value, column.field, out),
        ("money", Scalar::Text(value)) => match money_cents(value) {
            Some(cents) => {
                let mut value = Vec::new();
                decimal_text(cents, 2, &mut value);
                decimal(&value, 19, 2, out);
            }
            None => text_object("TEXT", value, out),
        },
        ("timetz", Scalar::Text(value)) => time_with_zone(value, out),
        (_, Scalar::Bool(value)) => {
            text_object("BOOL", if value { "true" } else { "false" }, out);
        }
        ("bpchar" | "char" | "varchar" | "text" | "name" | "citext", Scalar::Text(value)) => {
            union_branch(class::CHARACTER, out);
            bytes(b"UTF-8", out);
            bytes(value.as_bytes(), out);
        }
        (pg_type, Scalar::Text(value)) => text_object(object_type(column, pg_type), value, out),
        (_, Scalar::Bytes(value)) => {
            union_branch(class::BINARY_OBJECT, out);
            bytes(b"BYTEA", out);
            bytes(value, out);
        }
        (_, Scalar::Date(days)) => {
            match chrono::NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)) {
                Some(date) => {
                    union_branch(class::DATE_TIME, out);
                    date_time(Some(date), None, out);
                }
                None => formatted(writer, row, "TEXT", text, out),
            }
        }
        (_, Scalar::Time(micros)) => {
            union_branch(class::DATE_TIME, out);
            date_time(None, Some(micros), out);
        }
        (_, Scalar::Timestamp(micros)) => match timestamp_parts(micros) {
            Some((date, time)) => {
                union_branch(class::DATE_TIME, out);
                date_time(Some(date), Some(time), out);
            }
            None => formatted(writer, row, "TEXT", text, out),
        },
        (_, Scalar::TimestampTz(micros)) => match timestamp_parts(micros) {
            Some((date, time)) => {
                union_branch(class::TIMESTAMP_WITH_TIME_ZONE, out);
                date_time(Some(date), Some(time), out);
                bytes(b"+00:00", out);
            }
            None => formatted(writer, row, "TEXT", text, out),
        },
        (pg_type, Scalar::Formatted) => {
            formatted(writer, row, object_type(column, pg_type), text, out);
        }
    }
}

/// `TextObject`'s `type` for a value kept as text.
fn object_type(column: &Column<'_>, pg_type: &str) -> &'static str {
    match pg_type {
        "json" | "jsonb" => "JSON",
        "xml" => "XML",
        "uuid" => "UUID",
        _ if column
            .field
            .metadata()
            .contains_key(metadata::PG_ENUM_LABELS) =>
        {
            "ENUM"
        }
        _ => "TEXT",
    }
}

/// A `TextObject` of the value's PostgreSQL text.
fn formatted(
    writer: &ColumnWriter<'_>,
    row: usize,
    kind: &str,
    text: &mut String,
    out: &mut Vec<u8>,
) {
    text.clear();
    writer.text(row, text);
    text_object(kind, text, out);
}

fn text_object(kind: &str, value: &str, out: &mut Vec<u8>) {
    union_branch(class::TEXT_OBJECT, out);
    bytes(kind.as_bytes(), out);
    bytes(value.as_bytes(), out);
}

fn decimal(value: &[u8], precision: i64, scale: i64, out: &mut Vec<u8>) {
    union_branch(class::DECIMAL, out);
    bytes(value, out);
    long(precision, out);
    long(scale, out);
}

/// `Float {value, precision, scale}`: `precision` the binary digits of the type.
fn float(value: f64, single: bool, out: &mut Vec<u8>) {
    union_branch(class::FLOAT, out);
    double(value, out);
    long(if single { 24 } else { 53 }, out);
    long(0, out);
}

/// A `numeric` carried as text: unconstrained, or widened by a `NaN`.
fn numeric_text(value: &str, field: &Field, out: &mut Vec<u8>) {
    match value {
        "NaN" => float(f64::NAN, false, out),
        "Infinity" => float(f64::INFINITY, false, out),
        "-Infinity" => float(f64::NEG_INFINITY, false, out),
        _ => {
            let (precision, scale) = declared(field).unwrap_or_else(|| {
                let digits = value.bytes().filter(u8::is_ascii_digit).count();
                let scale = value
                    .split_once('.')
                    .map_or(0, |(_, fraction)| fraction.len());
                (
                    i64::try_from(digits).unwrap_or(0),
                    i64::try_from(scale).unwrap_or(0),
                )
            });
            decimal(value.as_bytes(), precision, scale, out);
        }
    }
}

/// A `numeric(p, s)` field's declared precision and scale.
fn declared(field: &Field) -> Option<(i64, i64)> {
    let typmod = field.metadata().get(metadata::PG_TYPMOD)?.parse().ok()?;
    let (precision, scale) = numeric_typmod(typmod)?;
    Some((i64::from(precision), i64::from(scale)))
}

/// `Integer`'s `precision`: the digits of the type's largest value.
fn integer_precision(pg_type: &str) -> i64 {
    match pg_type {
        "int2" => 5,
        "int4" | "oid" | "xid" => 10,
        _ => 19,
    }
}

/// The date and the time of day (microseconds) of a finite timestamp.
fn timestamp_parts(micros: i64) -> Option<(chrono::NaiveDate, i64)> {
    if matches!(micros, i64::MAX | i64::MIN) {
        return None;
    }
    let time = chrono::DateTime::from_timestamp_micros(micros)?;
    Some((time.date_naive(), micros.rem_euclid(86_400_000_000)))
}

/// `DateTime`: the date's parts (the year astronomical: 1 BC is 0) and the time's,
/// each branch of its `["null", "int"]` union.
fn date_time(date: Option<chrono::NaiveDate>, time: Option<i64>, out: &mut Vec<u8>) {
    let part = |value: Option<i64>, out: &mut Vec<u8>| match value {
        Some(value) => {
            union_branch(1, out);
            long(value, out);
        }
        None => union_branch(0, out),
    };
    part(date.map(|d| i64::from(d.year())), out);
    part(date.map(|d| i64::from(d.month())), out);
    part(date.map(|d| i64::from(d.day())), out);
    let seconds = time.map(|micros| micros.div_euclid(1_000_000));
    part(seconds.map(|s| s / 3600), out);
    part(seconds.map(|s| s / 60 % 60), out);
    part(seconds.map(|s| s % 60), out);
    part(time.map(|micros| micros.rem_euclid(1_000_000)), out);
}

/// `timetz`'s text (`12:00:00.25+05:30`) as `TimestampWithTimeZone`.
fn time_with_zone(value: &str, out: &mut Vec<u8>) {
    let Some(at) = value.rfind(['+', '-']) else {
        text_object("TEXT", value, out);
        return;
    };
    let (time, zone) = value.split_at(at);
    let Ok(parsed) = chrono::NaiveTime::parse_from_str(time, "%H:%M:%S%.f") else {
        // 24:00:00 is a time PostgreSQL has and chrono has not.
        text_object("TEXT", value, out);
        return;
    };
    let micros = i64::from(parsed.num_seconds_from_midnight()) * 1_000_000
        + i64::from(parsed.nanosecond() / 1000);
    union_branch(class::TIMESTAMP_WITH_TIME_ZONE, out);
    date_time(None, Some(micros), out);
    // `+05:30` as written; `+05` as `+05:00`.
    let zone = if zone.len() == 3 {
        format!("{zone}:00")
    } else {
        zone.to_owned()
    };
    bytes(zone.as_bytes(), out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_escape_dots_as_dts_does() {
        assert_eq!(
            object_name("shop", "public", "orders"),
            "shop.public.orders"
        );
        assert_eq!(
            object_name("shop", "a.b", "orders"),
            "shop.a\\u002Eb.orders"
        );
    }

    #[test]
    fn numeric_typmods_give_precision_and_scale() {
        let field = |typmod: i32| {
            Field::new("n", arrow::datatypes::DataType::Utf8, true).with_metadata(
                std::collections::HashMap::from([(
                    metadata::PG_TYPMOD.to_owned(),
                    typmod.to_string(),
                )]),
            )
        };
        // numeric(12,2): (12 << 16 | 2) + 4.
        assert_eq!(declared(&field((12 << 16 | 2) + 4)), Some((12, 2)));
        // numeric(5,-2) (PostgreSQL 15+): the scale's 11 bits are 2046.
        assert_eq!(declared(&field((5 << 16 | 2046) + 4)), Some((5, -2)));
    }
}
