//! Writing one column value in Avro's binary encoding, following [`ValueKind`].

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    IntervalMonthDayNanoType, Time64MicrosecondType, TimestampMicrosecondType, UInt32Type,
};

use super::binary;
use crate::contract::pg_text;
use crate::encode::hstore::hstore_json;
use crate::encode::kind::ValueKind;
use crate::encode::value::{
    ColumnWriter, bits_bytes, interval_micros, money_cents, point, point_wkb, unscaled,
    unscaled_at, with_variable_scale, zoned_timestamp_text,
};

/// Whether the value at `row` has an Avro form (see [`ValueKind::may_fail`]).
pub(crate) fn representable(kind: &ValueKind, array: &dyn Array, row: usize) -> bool {
    match kind {
        // PostgreSQL writes a numeric as digits, or as one of these.
        ValueKind::VariableDecimal => !matches!(
            array.as_string::<i32>().value(row),
            "NaN" | "Infinity" | "-Infinity"
        ),
        ValueKind::NumericDouble => array.as_string::<i32>().value(row).parse::<f64>().is_ok(),
        ValueKind::Money => money_cents(array.as_string::<i32>().value(row)).is_some(),
        ValueKind::Point => point(array.as_string::<i32>().value(row)).is_some(),
        ValueKind::Bits { .. } => array
            .as_string::<i32>()
            .value(row)
            .bytes()
            .all(|b| b == b'0' || b == b'1'),
        // A numeric(p, s) carried as text since a NaN.
        ValueKind::Decimal { scale, .. } => match array.as_string_opt::<i32>() {
            Some(text) => unscaled_at(text.value(row), *scale).is_some(),
            None => true,
        },
        _ => true,
    }
}

/// The zero of `kind` (false, 0, empty text or bytes, an empty array, a zero
/// decimal): what a required field holds where an old image lacks the column.
pub(crate) fn write_zero(kind: &ValueKind, out: &mut Vec<u8>) {
    match kind {
        ValueKind::Boolean => binary::boolean(false, out),
        ValueKind::Float32 => binary::float(0.0, out),
        ValueKind::Float64 | ValueKind::DecimalDouble | ValueKind::NumericDouble => {
            binary::double(0.0, out);
        }
        ValueKind::Decimal { .. } | ValueKind::Money => binary::bytes(&[0], out),
        ValueKind::Bits { length: 1 } => binary::boolean(false, out),
        ValueKind::Point => {
            binary::double(0.0, out);
            binary::double(0.0, out);
            binary::union_branch(0, out);
            binary::union_branch(0, out);
        }
        ValueKind::Bits { .. } => binary::bytes(&[], out),
        ValueKind::VariableDecimal => {
            binary::long(0, out);
            binary::bytes(&[0], out);
        }
        ValueKind::Int16
        | ValueKind::Int32
        | ValueKind::Int64
        | ValueKind::UInt32
        | ValueKind::Date
        | ValueKind::MicroTime
        | ValueKind::MicroTimestamp
        | ValueKind::MilliTime
        | ValueKind::MilliTimestamp
        | ValueKind::MicroDuration
        // An empty array: a block count of zero.
        | ValueKind::Array(_) => binary::long(0, out),
        ValueKind::DecimalString
        | ValueKind::NumericString
        | ValueKind::Text { .. }
        | ValueKind::Bytes
        | ValueKind::ZonedTimestamp { .. }
        | ValueKind::IntervalString
        | ValueKind::Hstore
        | ValueKind::TextForm => binary::bytes(&[], out),
    }
}

/// Writes the non-null value at `row`. `text` renders [`ValueKind::TextForm`];
/// `scratch` is reused for text forms.
pub(crate) fn write(
    kind: &ValueKind,
    array: &dyn Array,
    text_form: Option<&ColumnWriter<'_>>,
    row: usize,
    scratch: &mut String,
    out: &mut Vec<u8>,
) {
    match kind {
        ValueKind::Boolean => binary::boolean(array.as_boolean().value(row), out),
        ValueKind::Int16 => {
            binary::long(i64::from(array.as_primitive::<Int16Type>().value(row)), out)
        }
        ValueKind::Int32 => {
            binary::long(i64::from(array.as_primitive::<Int32Type>().value(row)), out)
        }
        ValueKind::Int64 => binary::long(array.as_primitive::<Int64Type>().value(row), out),
        ValueKind::UInt32 => binary::long(
            i64::from(array.as_primitive::<UInt32Type>().value(row)),
            out,
        ),
        ValueKind::Float32 => binary::float(array.as_primitive::<Float32Type>().value(row), out),
        ValueKind::Float64 => binary::double(array.as_primitive::<Float64Type>().value(row), out),
        ValueKind::Money => {
            // Checked by `representable` first.
            let cents = money_cents(array.as_string::<i32>().value(row)).unwrap_or(0);
            let (bytes, start) = unscaled(cents);
            binary::bytes(&bytes[start..], out);
        }
        ValueKind::Bits { length: 1 } => {
            binary::boolean(array.as_string::<i32>().value(row) == "1", out);
        }
        ValueKind::Point => {
            // Checked by `representable` first.
            let (x, y) = point(array.as_string::<i32>().value(row)).unwrap_or((0.0, 0.0));
            binary::double(x, out);
            binary::double(y, out);
            binary::union_branch(1, out);
            binary::bytes(&point_wkb(x, y), out);
            binary::union_branch(0, out);
        }
        ValueKind::Bits { .. } => {
            let mut bytes = Vec::new();
            bits_bytes(array.as_string::<i32>().value(row), &mut bytes);
            binary::bytes(&bytes, out);
        }
        ValueKind::Decimal { scale, .. } => {
            let value = match array.as_string_opt::<i32>() {
                // Checked by `representable` first.
                Some(text) => unscaled_at(text.value(row), *scale).unwrap_or(0),
                None => array
                    .as_primitive::<arrow::datatypes::Decimal128Type>()
                    .value(row),
            };
            let (bytes, start) = unscaled(value);
            binary::bytes(&bytes[start..], out);
        }
        ValueKind::DecimalString | ValueKind::DecimalDouble | ValueKind::TextForm => {
            scratch.clear();
            if let Some(writer) = text_form {
                writer.text(row, scratch);
            }
            if *kind == ValueKind::DecimalDouble {
                binary::double(scratch.parse().unwrap_or(f64::NAN), out);
            } else {
                binary::bytes(scratch.as_bytes(), out);
            }
        }
        ValueKind::VariableDecimal => {
            // Checked by `representable` first; a value without a form is null.
            let written =
                with_variable_scale(array.as_string::<i32>().value(row), |scale, bytes| {
                    binary::long(i64::from(scale), out);
                    binary::bytes(bytes, out);
                });
            if !written {
                binary::long(0, out);
                binary::bytes(&[], out);
            }
        }
        ValueKind::NumericString | ValueKind::Text { .. } => {
            binary::bytes(array.as_string::<i32>().value(row).as_bytes(), out);
        }
        ValueKind::Hstore => {
            // The JSON object is built in `scratch`'s buffer, then length-prefixed.
            let text = array.as_string::<i32>().value(row);
            let mut buffer = std::mem::take(scratch).into_bytes();
            buffer.clear();
            if hstore_json(text, &mut buffer) {
                binary::bytes(&buffer, out);
            } else {
                binary::bytes(text.as_bytes(), out);
            }
            buffer.clear();
            *scratch = String::from_utf8(buffer).unwrap_or_default();
        }
        ValueKind::NumericDouble => {
            let value = array
                .as_string::<i32>()
                .value(row)
                .parse()
                .unwrap_or(f64::NAN);
            binary::double(value, out);
        }
        ValueKind::Bytes => binary::bytes(array.as_binary::<i32>().value(row), out),
        ValueKind::Date => binary::long(
            i64::from(array.as_primitive::<Date32Type>().value(row)),
            out,
        ),
        ValueKind::MicroTime => binary::long(
            array.as_primitive::<Time64MicrosecondType>().value(row),
            out,
        ),
        ValueKind::MicroTimestamp => {
            binary::long(
                array.as_primitive::<TimestampMicrosecondType>().value(row),
                out,
            );
        }
        // Avro `int` and `long` share the zig-zag encoding.
        ValueKind::MilliTime => binary::long(
            array
                .as_primitive::<Time64MicrosecondType>()
                .value(row)
                .div_euclid(1000),
            out,
        ),
        ValueKind::MilliTimestamp => binary::long(
            match array.as_primitive::<TimestampMicrosecondType>().value(row) {
                micros @ (i64::MAX | i64::MIN) => micros,
                micros => micros.div_euclid(1000),
            },
            out,
        ),
        ValueKind::ZonedTimestamp { digits } => {
            let micros = array.as_primitive::<TimestampMicrosecondType>().value(row);
            match zoned_timestamp_text(micros, *digits) {
                Some(text) => binary::bytes(text.as_str().as_bytes(), out),
                None => binary::bytes(itoa::Buffer::new().format(micros).as_bytes(), out),
            }
        }
        ValueKind::MicroDuration => {
            binary::long(
                interval_micros(array.as_primitive::<IntervalMonthDayNanoType>().value(row)),
                out,
            );
        }
        ValueKind::IntervalString => {
            let mut rendered = String::new();
            pg_text::interval(
                array.as_primitive::<IntervalMonthDayNanoType>().value(row),
                &mut rendered,
            );
            binary::bytes(rendered.as_bytes(), out);
        }
        ValueKind::Array(element) => {
            let list = array.as_list::<i32>();
            let offsets = list.value_offsets();
            let (start, end) = (offsets[row], offsets[row + 1]);
            let values = list.values();
            let element_text = (**element == ValueKind::TextForm
                || matches!(
                    **element,
                    ValueKind::DecimalString | ValueKind::DecimalDouble
                ))
            .then(|| {
                let field = match list.data_type() {
                    arrow::datatypes::DataType::List(field) => field.clone(),
                    _ => unreachable_field(),
                };
                ColumnWriter::new(&field, values)
            });
            if end > start {
                binary::long(i64::from(end - start), out);
                for index in start..end {
                    let index = usize::try_from(index).unwrap_or(0);
                    if values.is_null(index) || !representable(element, values.as_ref(), index) {
                        binary::union_branch(0, out);
                    } else {
                        binary::union_branch(1, out);
                        write(
                            element,
                            values.as_ref(),
                            element_text.as_ref(),
                            index,
                            scratch,
                            out,
                        );
                    }
                }
            }
            // A block count of zero ends the array.
            binary::long(0, out);
        }
    }
}

/// A field for a list whose type is not a list: cannot happen, since the kind was
/// derived from the same field; falls back to a nullable Utf8 field.
fn unreachable_field() -> arrow::datatypes::FieldRef {
    std::sync::Arc::new(arrow::datatypes::Field::new(
        "item",
        arrow::datatypes::DataType::Utf8,
        true,
    ))
}
