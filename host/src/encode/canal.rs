//! `canal-json`: Canal's FlatMessage, one row per message, as Flink's and Kafka
//! consumers of Canal read it:
//!
//! ```json
//! {"id": 24023128, "database": "shop", "table": "orders", "pkNames": ["id"],
//!  "isDdl": false, "type": "UPDATE", "es": 1763712000000, "ts": 1763712000123,
//!  "sql": "", "sqlType": {"id": -5, "status": 12}, "mysqlType": {"id": "int8", "status": "text"},
//!  "data": [{"id": "1", "status": "paid"}], "old": [{"status": "new"}]}
//! ```
//!
//! Values are strings in their text form (see [`ColumnWriter::write_text`]);
//! `sqlType` holds `java.sql.Types` codes and `mysqlType` the PostgreSQL type names.
//! `old` lists only the columns an update changed, and needs the old image (`REPLICA
//! IDENTITY FULL`); without it `old` is null. Snapshot reads are `INSERT`s, as Canal
//! has no read type. `id` is the change's LSN. The key is the primary key as an
//! object of text values.

use arrow::array::Array;
use arrow::record_batch::RecordBatch;

use super::layout::{Layout, MetadataColumns};
use super::value::string;
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::{metadata, op};

/// The `canal-json` encoder.
#[derive(Debug, Clone)]
pub struct CanalJsonEncoder {
    database: String,
}

impl CanalJsonEncoder {
    /// An encoder naming `database` in every message.
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
        }
    }
}

/// `java.sql.Types` for a PostgreSQL type name (12, VARCHAR, for the rest).
pub fn sql_type(pg_type: &str) -> i32 {
    match pg_type {
        "bool" => 16,
        "int2" => 5,
        "int4" | "oid" | "xid" => 4,
        "int8" => -5,
        "float4" => 7,
        "float8" => 8,
        "numeric" | "money" => 3,
        "bpchar" | "char" => 1,
        "date" => 91,
        "time" => 92,
        "timetz" => 2013,
        "timestamp" => 93,
        "timestamptz" => 2014,
        "bytea" => -2,
        name if name.starts_with('_') => 2003,
        _ => 12,
    }
}

impl Encoder for CanalJsonEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        _marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError> {
        let layout = Layout::new(batch.schema_ref())?;
        let schema = batch.schema();
        let writers = layout.writers(batch);
        let before = layout.before(batch);
        let before_columns: Vec<Option<&dyn Array>> = layout
            .columns
            .iter()
            .map(|c| Some(before?.column(c.before_child?).as_ref()))
            .collect();
        let before_writers = layout.before_writers(batch);
        let MetadataColumns {
            ops,
            lsns,
            commit_ts,
            ..
        } = layout.metadata(batch)?;
        let now_ms = crate::clock::now_unix_millis();

        // What every message of the batch shares, written once.
        let mut header = b",\"database\":".to_vec();
        string(&self.database, &mut header);
        header.extend_from_slice(b",\"table\":");
        string(&layout.table_name, &mut header);
        header.extend_from_slice(b",\"pkNames\":");
        if layout.key.is_empty() {
            header.extend_from_slice(b"null");
        } else {
            header.push(b'[');
            for (i, &position) in layout.key.iter().enumerate() {
                if i > 0 {
                    header.push(b',');
                }
                string(&layout.columns[position].name, &mut header);
            }
            header.push(b']');
        }
        header.extend_from_slice(b",\"isDdl\":false");
        let mut types = b",\"sql\":\"\",\"sqlType\":{".to_vec();
        let mut pg_types = b"},\"mysqlType\":{".to_vec();
        for (i, column) in layout.columns.iter().enumerate() {
            if i > 0 {
                types.push(b',');
                pg_types.push(b',');
            }
            let pg_type = schema
                .field(column.index)
                .metadata()
                .get(metadata::PG_TYPE)
                .map_or("text", String::as_str);
            types.extend_from_slice(&column.json_prefix);
            types.extend_from_slice(itoa::Buffer::new().format(sql_type(pg_type)).as_bytes());
            pg_types.extend_from_slice(&column.json_prefix);
            string(pg_type, &mut pg_types);
        }
        pg_types.push(b'}');
        types.extend_from_slice(&pg_types);

        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            if change == op::TRUNCATE {
                // Canal carries a TRUNCATE as DDL, which this encoder does not write.
                continue;
            }
            let key = |buffer: &mut Vec<u8>| layout.write_key(&writers, row, None, buffer);
            let value = |buffer: &mut Vec<u8>| {
                let mut itoa = itoa::Buffer::new();
                buffer.extend_from_slice(b"{\"id\":");
                buffer.extend_from_slice(itoa.format(lsns.value(row)).as_bytes());
                buffer.extend_from_slice(&header);
                buffer.extend_from_slice(b",\"type\":\"");
                buffer.extend_from_slice(match change {
                    op::UPDATE => b"UPDATE".as_slice(),
                    op::DELETE => b"DELETE",
                    _ => b"INSERT",
                });
                buffer.extend_from_slice(b"\",\"es\":");
                buffer.extend_from_slice(
                    itoa.format(commit_ts.value(row).div_euclid(1000))
                        .as_bytes(),
                );
                buffer.extend_from_slice(b",\"ts\":");
                buffer.extend_from_slice(itoa.format(now_ms).as_bytes());
                buffer.extend_from_slice(&types);
                // A delete's data is the old row (Canal's convention): the full old
                // image when there is one, else the key the row holds.
                let use_before = change == op::DELETE && before.is_some_and(|b| b.is_valid(row));
                buffer.extend_from_slice(b",\"data\":[{");
                let mut first = true;
                for (position, column) in layout.columns.iter().enumerate() {
                    let writer = match (&before_writers[position], use_before) {
                        (Some(old), true) => old,
                        _ => &writers[position],
                    };
                    if !first {
                        buffer.push(b',');
                    }
                    first = false;
                    buffer.extend_from_slice(&column.json_prefix);
                    writer.write_text(row, buffer);
                }
                buffer.extend_from_slice(b"}],\"old\":");
                match before {
                    Some(old) if change == op::UPDATE && old.is_valid(row) => {
                        buffer.extend_from_slice(b"[{");
                        let mut first = true;
                        for (position, column) in layout.columns.iter().enumerate() {
                            let (Some(old_writer), Some(old_array)) =
                                (&before_writers[position], before_columns[position])
                            else {
                                continue;
                            };
                            let new_array = batch.column(column.index);
                            if equal_at(new_array.as_ref(), old_array, row) {
                                continue;
                            }
                            if !first {
                                buffer.push(b',');
                            }
                            first = false;
                            buffer.extend_from_slice(&column.json_prefix);
                            old_writer.write_text(row, buffer);
                        }
                        buffer.extend_from_slice(b"}]");
                    }
                    _ => buffer.extend_from_slice(b"null"),
                }
                buffer.push(b'}');
            };
            let key_writer = (!layout.key.is_empty()).then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
        }
        Ok(())
    }
}

/// Whether two arrays of the same type hold equal values (both null counts as equal)
/// at `row`.
fn equal_at(a: &dyn Array, b: &dyn Array, row: usize) -> bool {
    match (a.is_null(row), b.is_null(row)) {
        (true, true) => true,
        (false, false) => a.slice(row, 1).to_data() == b.slice(row, 1).to_data(),
        _ => false,
    }
}
