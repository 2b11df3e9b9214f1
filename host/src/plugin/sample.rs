//! Sample rows for `weir plugin test`: JSON in, ChangeBatches out, built by the
//! source's own batch builder so a plugin sees exactly what a live pipeline gives it.
//!
//! The input is either a JSON array of row objects or an object:
//!
//! ```json
//! {
//!   "table": "public.orders",
//!   "columns": ["id int8", "status text", "total numeric(10,2)"],
//!   "primary_key": ["id"],
//!   "rows": [
//!     {"_op": "c", "id": 1, "status": "paid", "total": "150.00"},
//!     {"_op": "u", "id": 1, "status": "shipped", "_before": {"id": 1, "status": "paid"}},
//!     {"_op": "d", "id": 1}
//!   ]
//! }
//! ```
//!
//! Without `columns`, each column's type is guessed from its first non-null value
//! (integer `int8`, fraction `float8`, boolean `bool`, string `text`, object or array
//! `jsonb`). Values are given as JSON or as PostgreSQL's text form (`"150.00"`,
//! `"2026-11-21 08:00:00+00"`, `"{1,2}"`). `_op` is `c` (default), `u`, `d` or `r`.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value as Json};

use crate::Lsn;
use crate::batch::types::builtin_type_name;
use crate::batch::{CatalogFacts, ChangeBatchBuilder, RowMeta, TableSchema};
use weir_pgoutput::{
    PgOutputDecoder, PgOutputMessage, Relation, RelationColumn, ReplicaIdentity, Tuple,
};

/// Sample input that cannot be turned into a batch.
#[derive(Debug, thiserror::Error)]
#[error("sample rows: {0}")]
pub struct SampleError(String);

fn error(message: impl Into<String>) -> SampleError {
    SampleError(message.into())
}

/// The OID a sample uses for its table.
const SAMPLE_RELATION_OID: u32 = 1;

/// Builds the ChangeBatch of a JSON sample. `table` overrides the sample's own.
pub fn batch_from_json(text: &str, table: Option<&str>) -> Result<RecordBatch, SampleError> {
    let json: Json = serde_json::from_str(text).map_err(|e| error(format!("not JSON: {e}")))?;
    let (spec, rows) = match json {
        Json::Array(rows) => (Map::new(), rows),
        Json::Object(mut spec) => match spec.remove("rows") {
            Some(Json::Array(rows)) => (spec, rows),
            _ => return Err(error("an object needs a `rows` array")),
        },
        _ => return Err(error("expected an array of rows or an object with `rows`")),
    };
    let rows: Vec<Map<String, Json>> = rows
        .into_iter()
        .enumerate()
        .map(|(index, row)| match row {
            Json::Object(row) => Ok(row),
            _ => Err(error(format!("row {index} is not an object"))),
        })
        .collect::<Result<_, _>>()?;
    if let Some(key) = spec
        .keys()
        .find(|key| !["table", "columns", "primary_key"].contains(&key.as_str()))
    {
        return Err(error(format!(
            "unknown key `{key}` (expected table, columns, primary_key, rows)"
        )));
    }
    let table_name = table
        .map(str::to_owned)
        .or_else(|| spec.get("table").and_then(Json::as_str).map(str::to_owned))
        .unwrap_or_else(|| "public.sample".to_owned());
    let (namespace, name) = table_name
        .split_once('.')
        .map_or(("public", table_name.as_str()), |(s, t)| (s, t));
    let columns = match spec.get("columns") {
        Some(Json::Array(columns)) => columns
            .iter()
            .map(|column| {
                column
                    .as_str()
                    .ok_or_else(|| error("`columns` holds strings like \"id int8\""))
                    .and_then(declared_column)
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => {
            return Err(error(
                "`columns` is a list like [\"id int8\", \"name text\"]",
            ));
        }
        None => inferred_columns(&rows),
    };
    let primary_key: Option<Vec<String>> = match spec.get("primary_key") {
        Some(Json::Array(names)) => Some(
            names
                .iter()
                .filter_map(Json::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        Some(_) => return Err(error("`primary_key` is a list of column names")),
        None => None,
    };
    for row in &rows {
        for key in row.keys() {
            if key != "_op" && key != "_before" && !columns.iter().any(|c| &c.name == key) {
                return Err(error(format!(
                    "a row has column `{key}`, which `columns` does not declare"
                )));
            }
        }
    }
    let relation = Relation {
        xid: None,
        oid: SAMPLE_RELATION_OID,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        replica_identity: ReplicaIdentity::Full,
        columns: columns
            .iter()
            .map(|c| RelationColumn {
                is_key: primary_key
                    .as_ref()
                    .is_some_and(|key| key.contains(&c.name)),
                name: c.name.clone(),
                type_oid: c.oid,
                type_modifier: c.modifier,
            })
            .collect(),
    };
    let facts = primary_key.map(|primary_key| CatalogFacts {
        primary_key,
        not_null: Vec::new(),
        domains: Vec::new(),
        enums: Vec::new(),
    });
    let schema = Arc::new(TableSchema::from_relation(
        &relation,
        &HashMap::new(),
        facts.as_ref(),
        1,
    ));
    let mut builder =
        ChangeBatchBuilder::new(schema, rows.len().max(1)).map_err(|e| error(e.to_string()))?;
    let mut decoder = PgOutputDecoder::new();
    let commit_time_micros = crate::clock::now_unix_micros();
    for (index, row) in rows.iter().enumerate() {
        let op = match row.get("_op") {
            None => b'c',
            Some(Json::String(op)) if matches!(op.as_str(), "c" | "u" | "d" | "r") => {
                op.as_bytes()[0]
            }
            Some(other) => {
                return Err(error(format!(
                    "row {index}: `_op` is {other}; expected \"c\", \"u\", \"d\" or \"r\""
                )));
            }
        };
        let image =
            tuple(&mut decoder, &columns, row).map_err(|e| error(format!("row {index}: {e}")))?;
        let before = match row.get("_before") {
            None | Some(Json::Null) => None,
            Some(Json::Object(before)) => Some(
                tuple(&mut decoder, &columns, before)
                    .map_err(|e| error(format!("row {index}, _before: {e}")))?,
            ),
            Some(_) => {
                return Err(error(format!(
                    "row {index}: `_before` is an object of columns"
                )));
            }
        };
        let position = u64::try_from(index).unwrap_or(u64::MAX);
        let meta = RowMeta {
            op,
            lsn: Lsn(0x1000 + position * 0x100),
            commit_lsn: Lsn(0x1000 + u64::try_from(rows.len()).unwrap_or(u64::MAX) * 0x100),
            xid: 1,
            commit_time_micros,
            seq: u32::try_from(index).unwrap_or(u32::MAX),
        };
        builder
            .append(&meta, &image, before.as_ref())
            .map_err(|e| error(format!("row {index}: {e}")))?;
    }
    let mut batches = Vec::new();
    while let Some(batch) = builder.take_ready() {
        batches.push(batch);
    }
    if let Some(batch) = builder.finish().map_err(|e| error(e.to_string()))? {
        batches.push(batch);
    }
    // A value that widened a column to text split the sample: one schema is simpler
    // to read, so the last (widest) wins when they differ.
    match batches.len() {
        0 => Err(error("no rows")),
        1 => Ok(batches.remove(0)),
        _ => {
            let schema = batches[batches.len() - 1].schema();
            let parts: Vec<RecordBatch> = batches
                .into_iter()
                .map(|batch| widen(batch, &schema))
                .collect::<Result<_, _>>()?;
            arrow::compute::concat_batches(&schema, &parts).map_err(|e| error(e.to_string()))
        }
    }
}

fn widen(
    batch: RecordBatch,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<RecordBatch, SampleError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                arrow::compute::cast(column, field.data_type()).map_err(|e| error(e.to_string()))
            }
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|e| error(e.to_string()))
}

/// A declared or inferred column.
#[derive(Debug, Clone)]
struct SampleColumn {
    name: String,
    oid: u32,
    modifier: i32,
}

/// `"total numeric(10,2)"` → the column.
fn declared_column(text: &str) -> Result<SampleColumn, SampleError> {
    let (name, type_text) = text
        .trim()
        .split_once(char::is_whitespace)
        .ok_or_else(|| error(format!("column {text:?}: expected \"name type\"")))?;
    let type_text = type_text.trim().to_ascii_lowercase();
    let (type_name, args) = match type_text.split_once('(') {
        Some((type_name, rest)) => (type_name.trim(), Some(rest.trim_end_matches(')'))),
        None => (type_text.as_str(), None),
    };
    let type_name = match type_name {
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "boolean" => "bool",
        "real" => "float4",
        "double precision" => "float8",
        "decimal" => "numeric",
        "character varying" => "varchar",
        "timestamp with time zone" => "timestamptz",
        "timestamp without time zone" => "timestamp",
        other => other,
    };
    let oid = type_oid(type_name)
        .ok_or_else(|| error(format!("column {name}: unknown type {type_name}")))?;
    let modifier = match (type_name, args) {
        ("numeric", Some(args)) => {
            let mut parts = args.split(',').map(|p| p.trim().parse::<i32>());
            let precision = parts
                .next()
                .and_then(Result::ok)
                .ok_or_else(|| error(format!("column {name}: numeric(p,s)")))?;
            let scale = parts.next().and_then(Result::ok).unwrap_or(0);
            ((precision << 16) | (scale & 0x7FF)) + 4
        }
        (_, Some(args)) => args.trim().parse::<i32>().map_or(-1, |length| length + 4),
        (_, None) => -1,
    };
    Ok(SampleColumn {
        name: name.to_owned(),
        oid,
        modifier,
    })
}

/// The OID of a built-in type by name (`int8`, `_int4` for `int4[]`).
fn type_oid(name: &str) -> Option<u32> {
    let name = match name.strip_suffix("[]") {
        Some(element) => format!("_{element}"),
        None => name.to_owned(),
    };
    (1..10_000).find(|oid| builtin_type_name(*oid) == Some(name.as_str()))
}

/// Columns in order of first appearance, typed by their first non-null value.
fn inferred_columns(rows: &[Map<String, Json>]) -> Vec<SampleColumn> {
    let mut columns: Vec<(String, Option<&'static str>)> = Vec::new();
    for row in rows {
        for (name, value) in row {
            if name == "_op" || name == "_before" {
                continue;
            }
            let guess = match value {
                Json::Null => None,
                Json::Bool(_) => Some("bool"),
                Json::Number(n) if n.is_i64() || n.is_u64() => Some("int8"),
                Json::Number(_) => Some("float8"),
                Json::String(_) => Some("text"),
                Json::Array(_) | Json::Object(_) => Some("jsonb"),
            };
            match columns.iter_mut().find(|(known, _)| known == name) {
                Some((_, kind @ None)) => *kind = guess,
                Some(_) => {}
                None => columns.push((name.clone(), guess)),
            }
        }
    }
    columns
        .into_iter()
        .map(|(name, kind)| SampleColumn {
            name,
            oid: type_oid(kind.unwrap_or("text")).unwrap_or(25),
            modifier: -1,
        })
        .collect()
}

/// A pgoutput tuple of the row's values in PostgreSQL's text form, decoded by the
/// real decoder (so it is exactly what a live stream would carry).
fn tuple(
    decoder: &mut PgOutputDecoder,
    columns: &[SampleColumn],
    row: &Map<String, Json>,
) -> Result<Tuple, String> {
    let mut message = BytesMut::new();
    message.put_u8(b'I');
    message.put_u32(SAMPLE_RELATION_OID);
    message.put_u8(b'N');
    message.put_i16(i16::try_from(columns.len()).map_err(|_| "too many columns")?);
    for column in columns {
        match row.get(&column.name).map(text_form) {
            None | Some(None) => message.put_u8(b'n'),
            Some(Some(text)) => {
                message.put_u8(b't');
                message.put_i32(i32::try_from(text.len()).map_err(|_| "value too long")?);
                message.put_slice(text.as_bytes());
            }
        }
    }
    match decoder.decode(Bytes::from(message)) {
        Ok(PgOutputMessage::Insert(insert)) => Ok(insert.new),
        Ok(other) => Err(format!("unexpected {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// PostgreSQL's text form of a JSON value; `None` for null.
fn text_form(value: &Json) -> Option<String> {
    Some(match value {
        Json::Null => return None,
        Json::Bool(b) => if *b { "t" } else { "f" }.to_owned(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Decimal128Type, UInt8Type};

    use super::*;

    #[test]
    fn declared_types_become_the_sources_arrow_types() {
        let batch = batch_from_json(
            r#"{"table": "shop.orders", "columns": ["id int8", "total numeric(10,2)", "tags text[]", "at timestamptz"],
                "primary_key": ["id"],
                "rows": [{"id": 1, "total": "150.5", "tags": "{a,b}", "at": "2026-11-21 08:00:00+00"},
                         {"_op": "d", "id": 1}]}"#,
            None,
        )
        .expect("builds");
        let schema = batch.schema();
        assert_eq!(schema.metadata()["weir.table"], "orders");
        assert_eq!(schema.metadata()["weir.primary_key"], "id");
        assert_eq!(
            schema.field_with_name("total").expect("total").data_type(),
            &DataType::Decimal128(10, 2)
        );
        assert!(matches!(
            schema.field_with_name("tags").expect("tags").data_type(),
            DataType::List(_)
        ));
        let totals = batch
            .column_by_name("total")
            .expect("total")
            .as_primitive::<Decimal128Type>();
        assert_eq!(totals.value(0), 15_050);
        assert_eq!(
            batch
                .column(0)
                .as_primitive::<UInt8Type>()
                .values()
                .as_ref(),
            [b'c', b'd']
        );
    }

    #[test]
    fn types_are_inferred_and_errors_are_named() {
        let batch = batch_from_json(
            r#"[{"id": 1, "name": null}, {"id": 2, "name": "x", "ok": true}]"#,
            None,
        )
        .expect("builds");
        let schema = batch.schema();
        let types: Vec<String> = ["id", "name", "ok"]
            .iter()
            .map(|c| {
                schema
                    .field_with_name(c)
                    .expect("column")
                    .data_type()
                    .to_string()
            })
            .collect();
        assert_eq!(types, ["Int64", "Utf8", "Boolean"]);
        assert!(
            batch_from_json(r#"[{"_op": "x"}]"#, None)
                .expect_err("rejected")
                .to_string()
                .contains("`_op`")
        );
        assert!(
            batch_from_json(r#"{"rows": [], "tabel": "x"}"#, None)
                .expect_err("rejected")
                .to_string()
                .contains("tabel")
        );
        let error = batch_from_json(r#"{"columns": ["id int8"], "rows": [{"idd": 1}]}"#, None)
            .expect_err("rejected");
        assert!(error.to_string().contains("idd"), "{error}");
    }
}
