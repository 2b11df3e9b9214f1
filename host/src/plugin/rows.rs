//! The row adapter: ChangeBatch columns as rows of WIT values for `row-plugin`
//! components, and their answers back into Arrow.
//!
//! Types without a WIT variant of their own travel as PostgreSQL's text form
//! (`numeric`, `time`, `interval`, arrays), so a row plugin sees what `psql` would
//! show, and the way back uses the source's own parsers: nothing is lost either way.
//! `_before` is flattened into `_before.<column>` so row plugins can read and rewrite
//! the old image like any other column.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int8Builder, Int16Builder, Int32Builder, Int64Builder,
    IntervalMonthDayNanoBuilder, ListBuilder, NullArray, StringBuilder, StructArray,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder, make_builder,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Field, Fields, Float32Type, Float64Type, Int8Type,
    Int16Type, Int32Type, Int64Type, IntervalMonthDayNanoType, IntervalUnit, Time64MicrosecondType,
    TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::bindings::row_world::exports::weir::plugin::row::{Column, TableInfo, Value};
use super::error::CallError;
use crate::batch::builder::append_list_element;
use crate::batch::parse;
use crate::batch::types::ElementKind;
use crate::contract::columns::{BEFORE, metadata};
use crate::contract::pg_text;

/// Prefix of the flattened old-image columns.
pub const BEFORE_PREFIX: &str = "_before.";

/// Where a flat row column comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// A top-level column of the batch.
    Column(usize),
    /// Child `child` of the `_before` struct at top-level `column`.
    Before { column: usize, child: usize },
}

/// The flat view of a ChangeBatch schema that row plugins see.
#[derive(Debug, Clone)]
pub(crate) struct FlatSchema {
    pub(crate) sources: Vec<Source>,
    pub(crate) info: TableInfo,
}

impl FlatSchema {
    pub(crate) fn new(schema: &arrow::datatypes::Schema) -> Self {
        let mut sources = Vec::with_capacity(schema.fields().len());
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (index, field) in schema.fields().iter().enumerate() {
            match field.data_type() {
                DataType::Struct(children) if field.name() == BEFORE => {
                    for (child, child_field) in children.iter().enumerate() {
                        sources.push(Source::Before {
                            column: index,
                            child,
                        });
                        columns.push(Column {
                            name: format!("{BEFORE_PREFIX}{}", child_field.name()),
                            pg_type: pg_type(child_field),
                            nullable: true,
                        });
                    }
                }
                _ => {
                    sources.push(Source::Column(index));
                    columns.push(Column {
                        name: field.name().clone(),
                        pg_type: pg_type(field),
                        nullable: field.is_nullable(),
                    });
                }
            }
        }
        let metadata = schema.metadata();
        let get = |key: &str| metadata.get(key).cloned().unwrap_or_default();
        Self {
            sources,
            info: TableInfo {
                schema: get(metadata::SCHEMA),
                name: get(metadata::TABLE),
                columns,
            },
        }
    }

    /// Positions (in the flat view) of the columns named in a plan; all when empty.
    /// Unknown names are ignored: a plugin may ask for columns only some tables have.
    pub(crate) fn positions(&self, names: &[String]) -> Vec<usize> {
        if names.is_empty() {
            return (0..self.sources.len()).collect();
        }
        (0..self.sources.len())
            .filter(|&i| names.iter().any(|name| *name == self.info.columns[i].name))
            .collect()
    }

    fn array<'a>(&self, batch: &'a RecordBatch, position: usize) -> &'a ArrayRef {
        match self.sources[position] {
            Source::Column(column) => batch.column(column),
            Source::Before { column, child } => batch.column(column).as_struct().column(child),
        }
    }
}

fn pg_type(field: &Field) -> String {
    field
        .metadata()
        .get(metadata::PG_TYPE)
        .cloned()
        .unwrap_or_default()
}

/// The batch's rows, holding the flat columns at `positions`.
pub(crate) fn to_rows(
    flat: &FlatSchema,
    positions: &[usize],
    batch: &RecordBatch,
) -> Result<Vec<Vec<Value>>, CallError> {
    let rows = batch.num_rows();
    let mut out: Vec<Vec<Value>> = (0..rows)
        .map(|_| Vec::with_capacity(positions.len()))
        .collect();
    let mut text = String::new();
    for &position in positions {
        let array = flat.array(batch, position);
        let name = &flat.info.columns[position].name;
        append_values(array.as_ref(), &mut out, &mut text)
            .map_err(|message| CallError::InvalidOutput(format!("column {name}: {message}")))?;
    }
    Ok(out)
}

/// Pushes the value of every row of `array` onto the corresponding row of `rows`.
fn append_values(
    array: &dyn Array,
    rows: &mut [Vec<Value>],
    text: &mut String,
) -> Result<(), String> {
    macro_rules! each {
        ($array:expr, |$value:ident| $make:expr) => {{
            let array = $array;
            for (index, row) in rows.iter_mut().enumerate() {
                row.push(if array.is_null(index) {
                    Value::Null
                } else {
                    let $value = array.value(index);
                    $make
                });
            }
        }};
    }
    macro_rules! each_text {
        (|$index:ident, $text:ident| $render:expr) => {{
            for ($index, row) in rows.iter_mut().enumerate() {
                row.push(if array.is_null($index) {
                    Value::Null
                } else {
                    let $text = &mut *text;
                    $text.clear();
                    $render;
                    Value::Text($text.clone())
                });
            }
        }};
    }
    match array.data_type() {
        DataType::Null => rows.iter_mut().for_each(|row| row.push(Value::Null)),
        DataType::Boolean => each!(array.as_boolean(), |v| Value::Boolean(v)),
        DataType::Int8 => each!(array.as_primitive::<Int8Type>(), |v| Value::Int(v.into())),
        DataType::Int16 => each!(array.as_primitive::<Int16Type>(), |v| Value::Int(v.into())),
        DataType::Int32 => each!(array.as_primitive::<Int32Type>(), |v| Value::Int(v.into())),
        DataType::Int64 => each!(array.as_primitive::<Int64Type>(), |v| Value::Int(v)),
        DataType::UInt8 => each!(array.as_primitive::<UInt8Type>(), |v| Value::Uint(v.into())),
        DataType::UInt16 => each!(array.as_primitive::<UInt16Type>(), |v| Value::Uint(
            v.into()
        )),
        DataType::UInt32 => each!(array.as_primitive::<UInt32Type>(), |v| Value::Uint(
            v.into()
        )),
        DataType::UInt64 => each!(array.as_primitive::<UInt64Type>(), |v| Value::Uint(v)),
        DataType::Float32 => {
            each!(array.as_primitive::<Float32Type>(), |v| Value::Float(
                v.into()
            ))
        }
        DataType::Float64 => each!(array.as_primitive::<Float64Type>(), |v| Value::Float(v)),
        DataType::Utf8 => each!(array.as_string::<i32>(), |v| Value::Text(v.to_owned())),
        DataType::LargeUtf8 => each!(array.as_string::<i64>(), |v| Value::Text(v.to_owned())),
        DataType::Binary => each!(array.as_binary::<i32>(), |v| Value::Bytes(v.to_vec())),
        DataType::LargeBinary => each!(array.as_binary::<i64>(), |v| Value::Bytes(v.to_vec())),
        DataType::Date32 => each!(array.as_primitive::<Date32Type>(), |v| Value::Date(v)),
        DataType::Timestamp(unit, _) => match unit {
            TimeUnit::Second => each!(array.as_primitive::<TimestampSecondType>(), |v| {
                Value::Timestamp(v.saturating_mul(1_000_000))
            }),
            TimeUnit::Millisecond => {
                each!(array.as_primitive::<TimestampMillisecondType>(), |v| {
                    Value::Timestamp(v.saturating_mul(1_000))
                })
            }
            TimeUnit::Microsecond => {
                each!(array.as_primitive::<TimestampMicrosecondType>(), |v| {
                    Value::Timestamp(v)
                })
            }
            TimeUnit::Nanosecond => {
                each!(array.as_primitive::<TimestampNanosecondType>(), |v| {
                    Value::Timestamp(v.div_euclid(1_000))
                })
            }
        },
        DataType::Decimal128(_, _) => {
            let decimals = array.as_primitive::<Decimal128Type>();
            each_text!(|index, out| out.push_str(&decimals.value_as_string(index)))
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            let times = array.as_primitive::<Time64MicrosecondType>();
            each_text!(|index, out| pg_text::time(times.value(index), out))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let intervals = array.as_primitive::<IntervalMonthDayNanoType>();
            each_text!(|index, out| pg_text::interval(intervals.value(index), out))
        }
        DataType::List(_) => {
            if !supported_list(array.data_type()) {
                return Err(format!("lists of {} are not supported", array.data_type()));
            }
            each_text!(|index, out| pg_text::array(array, index, out))
        }
        _ => {
            // Anything else weir does not produce itself (a plugin's own types):
            // Arrow's display form, which is at least readable.
            let formatter = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(|e| e.to_string())?;
            each_text!(|index, out| out.push_str(&formatter.value(index).to_string()))
        }
    }
    Ok(())
}

fn supported_list(data_type: &DataType) -> bool {
    matches!(data_type, DataType::List(field) if element_kind(field.data_type()).is_some()
        || *field.data_type() == DataType::UInt16)
}

fn element_kind(data_type: &DataType) -> Option<ElementKind> {
    Some(match data_type {
        DataType::Boolean => ElementKind::Boolean,
        DataType::Int16 => ElementKind::Int16,
        DataType::Int32 => ElementKind::Int32,
        DataType::Int64 => ElementKind::Int64,
        DataType::Float32 => ElementKind::Float32,
        DataType::Float64 => ElementKind::Float64,
        DataType::Utf8 => ElementKind::Text,
        _ => return None,
    })
}

/// Builds a column of `field`'s type from value `index` of each row.
pub(crate) fn from_rows(
    field: &Field,
    rows: &[Vec<Value>],
    index: usize,
) -> Result<ArrayRef, String> {
    let values = rows
        .iter()
        .map(|row| row.get(index).unwrap_or(&Value::Null));
    build_array(field.data_type(), values)
        .map_err(|message| format!("column {}: {message}", field.name()))
}

fn mismatch(expected: &DataType, value: &Value) -> String {
    let found = match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint",
        Value::Float(_) => "float",
        Value::Text(_) => "text",
        Value::Bytes(_) => "bytes",
        Value::Timestamp(_) => "timestamp",
        Value::Date(_) => "date",
    };
    format!("a {found} value does not fit type {expected}")
}

fn build_array<'a>(
    data_type: &DataType,
    values: impl ExactSizeIterator<Item = &'a Value>,
) -> Result<ArrayRef, String> {
    let len = values.len();
    macro_rules! build {
        ($builder:expr, |$value:ident| $convert:expr) => {{
            let mut builder = $builder;
            for $value in values {
                match $value {
                    Value::Null => builder.append_null(),
                    _ => match $convert {
                        Some(v) => builder.append_value(v),
                        None => return Err(mismatch(data_type, $value)),
                    },
                }
            }
            Ok(Arc::new(builder.finish()) as ArrayRef)
        }};
    }
    let int = |value: &Value| match value {
        Value::Int(v) => Some(*v),
        Value::Uint(v) => i64::try_from(*v).ok(),
        _ => None,
    };
    let uint = |value: &Value| match value {
        Value::Uint(v) => Some(*v),
        Value::Int(v) => u64::try_from(*v).ok(),
        _ => None,
    };
    let float = |value: &Value| match value {
        Value::Float(v) => Some(*v),
        #[allow(clippy::cast_precision_loss)]
        Value::Int(v) => Some(*v as f64),
        _ => None,
    };
    let text_of = |value: &'a Value| match value {
        Value::Text(text) => Some(text.as_bytes()),
        _ => None,
    };
    match data_type {
        DataType::Null => Ok(Arc::new(NullArray::new(len))),
        DataType::Boolean => build!(BooleanBuilder::with_capacity(len), |v| match v {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }),
        DataType::Int8 => build!(Int8Builder::with_capacity(len), |v| int(v)
            .and_then(|v| i8::try_from(v).ok())),
        DataType::Int16 => build!(Int16Builder::with_capacity(len), |v| int(v)
            .and_then(|v| i16::try_from(v).ok())),
        DataType::Int32 => build!(Int32Builder::with_capacity(len), |v| int(v)
            .and_then(|v| i32::try_from(v).ok())),
        DataType::Int64 => build!(Int64Builder::with_capacity(len), |v| int(v)),
        DataType::UInt8 => build!(UInt8Builder::with_capacity(len), |v| uint(v)
            .and_then(|v| u8::try_from(v).ok())),
        DataType::UInt16 => build!(UInt16Builder::with_capacity(len), |v| uint(v)
            .and_then(|v| u16::try_from(v).ok())),
        DataType::UInt32 => build!(UInt32Builder::with_capacity(len), |v| uint(v)
            .and_then(|v| u32::try_from(v).ok())),
        DataType::UInt64 => build!(UInt64Builder::with_capacity(len), |v| uint(v)),
        #[allow(clippy::cast_possible_truncation)]
        DataType::Float32 => build!(Float32Builder::with_capacity(len), |v| float(v)
            .map(|v| v as f32)),
        DataType::Float64 => build!(Float64Builder::with_capacity(len), |v| float(v)),
        DataType::Utf8 => build!(StringBuilder::with_capacity(len, len * 8), |v| match v {
            Value::Text(text) => Some(text.as_str()),
            _ => None,
        }),
        DataType::Binary => build!(BinaryBuilder::with_capacity(len, len * 8), |v| match v {
            Value::Bytes(bytes) => Some(bytes.as_slice()),
            Value::Text(text) => Some(text.as_bytes()),
            _ => None,
        }),
        DataType::Date32 => build!(Date32Builder::with_capacity(len), |v| match v {
            Value::Date(days) => Some(*days),
            Value::Text(text) => parse::date(text.as_bytes()),
            _ => None,
        }),
        DataType::Timestamp(TimeUnit::Microsecond, zone) => {
            let with_zone = zone.is_some();
            build!(
                TimestampMicrosecondBuilder::with_capacity(len).with_timezone_opt(zone.clone()),
                |v| match v {
                    Value::Timestamp(micros) | Value::Int(micros) => Some(*micros),
                    Value::Text(text) => parse::timestamp(text.as_bytes(), with_zone),
                    _ => None,
                }
            )
        }
        DataType::Decimal128(precision, scale) => build!(
            Decimal128Builder::with_capacity(len)
                .with_precision_and_scale(*precision, *scale)
                .map_err(|e| e.to_string())?,
            |v| match v {
                Value::Text(text) => parse::decimal(text.as_bytes(), *scale),
                Value::Int(int) => 10i128
                    .checked_pow(u32::try_from(*scale).unwrap_or(u32::MAX))
                    .and_then(|factor| i128::from(*int).checked_mul(factor)),
                _ => None,
            }
        ),
        DataType::Time64(TimeUnit::Microsecond) => {
            build!(Time64MicrosecondBuilder::with_capacity(len), |v| text_of(v)
                .and_then(parse::time))
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            build!(IntervalMonthDayNanoBuilder::with_capacity(len), |v| {
                text_of(v).and_then(parse::interval)
            })
        }
        DataType::List(field) => build_list(field, values),
        other => Err(format!("type {other} cannot be rebuilt from row values")),
    }
}

/// A list column from PostgreSQL array literals.
fn build_list<'a>(
    field: &Arc<Field>,
    values: impl Iterator<Item = &'a Value>,
) -> Result<ArrayRef, String> {
    // `_unchanged` holds column indexes, which parse as int4 elements.
    let kind = match field.data_type() {
        DataType::UInt16 => ElementKind::Int32,
        other => {
            element_kind(other).ok_or_else(|| format!("lists of {other} are not supported"))?
        }
    };
    let mut builder =
        ListBuilder::new(make_builder(field.data_type(), 0)).with_field(Arc::clone(field));
    let (mut elements, mut scratch) = (Vec::new(), Vec::new());
    for value in values {
        let text = match value {
            Value::Null => {
                builder.append(false);
                continue;
            }
            Value::Text(text) => text,
            other => return Err(mismatch(&DataType::List(Arc::clone(field)), other)),
        };
        elements.clear();
        scratch.clear();
        parse::array(text.as_bytes(), kind, &mut elements, &mut scratch).ok_or_else(|| {
            format!(
                "{text:?} is not a one-dimensional array of {}",
                field.data_type()
            )
        })?;
        let inner = builder.values();
        for element in &elements {
            if !append_list_element(inner.as_any_mut(), field.data_type(), *element, &scratch) {
                return Err(format!(
                    "{text:?} has an element out of range for {}",
                    field.data_type()
                ));
            }
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}

/// Rebuilds the `_before` struct from the children the plugin returned (`Some`) and
/// the input's children for the others. Its validity: the input's when the row count
/// is unchanged, else valid where any child is.
pub(crate) fn rebuild_before(
    input: &StructArray,
    fields: &Fields,
    children: Vec<Option<ArrayRef>>,
    rows: usize,
) -> Result<ArrayRef, String> {
    let same_rows = input.len() == rows;
    let mut arrays = Vec::with_capacity(children.len());
    for ((child, field), input_child) in
        children.into_iter().zip(fields.iter()).zip(input.columns())
    {
        arrays.push(match child {
            Some(array) => array,
            None if same_rows => Arc::clone(input_child),
            None => arrow::array::new_null_array(field.data_type(), rows),
        });
    }
    let nulls = if same_rows {
        input.nulls().cloned()
    } else {
        let valid: Vec<bool> = (0..rows)
            .map(|row| arrays.iter().any(|array| array.is_valid(row)))
            .collect();
        Some(NullBuffer::from(valid))
    };
    StructArray::try_new(fields.clone(), arrays, nulls)
        .map(|array| Arc::new(array) as ArrayRef)
        .map_err(|e| e.to_string())
}
