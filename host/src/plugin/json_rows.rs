//! ChangeBatch rows as JSON objects, for people: what `weir plugin test` prints and
//! what a dead letter carries. Values follow the row adapter: numbers and booleans as
//! JSON, `numeric`, `time`, `interval` and arrays in PostgreSQL's text form,
//! timestamps in RFC 3339, `bytea` as `\x…` hex, `_op` as its letter, and the old row
//! image as a nested `_before` object (null when there is none).

use arrow::record_batch::RecordBatch;
use serde_json::{Map, Value as Json};

use super::bindings::row_world::exports::weir::plugin::row::Value;
use super::error::CallError;
use super::rows::{BEFORE_PREFIX, FlatSchema, to_rows};
use crate::contract::columns::{BEFORE, OP};

/// Every row of `batch` as a JSON object, columns in batch order.
pub fn rows_as_json(batch: &RecordBatch) -> Result<Vec<Map<String, Json>>, CallError> {
    let flat = FlatSchema::new(batch.schema_ref());
    let positions: Vec<usize> = (0..flat.info.columns.len()).collect();
    let rows = to_rows(&flat, &positions, batch)?;
    Ok(rows
        .into_iter()
        .map(|values| {
            let mut object = Map::new();
            let mut before = Map::new();
            let mut has_before = false;
            for (column, value) in flat.info.columns.iter().zip(values) {
                let json = if column.name == OP {
                    match value {
                        Value::Uint(op) => u8::try_from(op)
                            .map_or(Json::Null, |op| Json::String(char::from(op).to_string())),
                        other => json_value(other),
                    }
                } else {
                    json_value(value)
                };
                match column.name.strip_prefix(BEFORE_PREFIX) {
                    Some(name) => {
                        has_before |= !json.is_null();
                        before.insert(name.to_owned(), json);
                    }
                    None => {
                        object.insert(column.name.clone(), json);
                    }
                }
            }
            if !before.is_empty() {
                object.insert(
                    BEFORE.to_owned(),
                    if has_before {
                        Json::Object(before)
                    } else {
                        Json::Null
                    },
                );
            }
            object
        })
        .collect())
}

fn json_value(value: Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Uint(u) => Json::from(u),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or_else(
            || {
                Json::String(if f.is_nan() {
                    "NaN".into()
                } else if f > 0.0 {
                    "Infinity".into()
                } else {
                    "-Infinity".into()
                })
            },
            Json::Number,
        ),
        Value::Text(text) => Json::String(text),
        Value::Bytes(bytes) => {
            let mut hex = String::with_capacity(2 + bytes.len() * 2);
            hex.push_str("\\x");
            for byte in bytes {
                hex.push_str(&format!("{byte:02x}"));
            }
            Json::String(hex)
        }
        Value::Timestamp(micros) => chrono::DateTime::from_timestamp_micros(micros)
            .map_or(Json::from(micros), |t| {
                Json::String(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }),
        Value::Date(days) => {
            chrono::NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163))
                .map_or(Json::from(days), |d| Json::String(d.to_string()))
        }
    }
}
