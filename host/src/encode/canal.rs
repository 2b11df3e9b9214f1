//! `canal-json`: Canal's FlatMessage, one row per message, as Flink's and Kafka
//! consumers of Canal read it:
//!
//! ```json
//! {"id": 24023128, "database": "shop", "table": "orders", "pkNames": ["id"],
//!  "isDdl": false, "type": "UPDATE", "es": 1763712000000, "ts": 1763712000123,
//!  "sql": "", "sqlType": {"id": -5, "status": 12}, "mysqlType": {"id": "bigint", "status": "longtext"},
//!  "data": [{"id": "1", "status": "paid"}], "old": [{"status": "new"}]}
//! ```
//!
//! Values are strings in their text form, in the forms Flink's `canal-json` reads
//! (see [`ColumnWriter::write_canal`]); `sqlType` holds `java.sql.Types` codes and
//! `mysqlType` the MySQL type a column maps to ([`mysql_type`]). An update's `old`
//! always holds one object: the columns the update changed, with their old values,
//! when the table has `REPLICA IDENTITY FULL`; otherwise only a changed primary key
//! (`{}` when the key did not change). An unchanged TOAST value is taken from the
//! full old image, or, without one, written as Debezium's placeholder. Snapshot
//! reads are `INSERT`s, as Canal has no read type. `id` is the change's LSN. The key
//! is the primary key as an object of text values. A TRUNCATE (when not skipped) is
//! Canal's DDL message in the table's stream, `"isDdl": true, "type": "TRUNCATE"`.
//!
//! `database` is the table's PostgreSQL schema: what MySQL calls a database is a
//! namespace of tables inside the server, which PostgreSQL calls a schema. So
//! `public.accounts` and `sales.accounts` stay apart for consumers that route or
//! filter by `database` and `table` (Flink's `canal-json.database.include`, sinks
//! that create one target table per pair).

use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;

use super::layout::{Layout, MetadataColumns};
use super::row_images::RowImages;
use super::value::{ColumnWriter, TimestamptzForm, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::{metadata, op};
use crate::contract::sql::truncate_statement;

/// The `canal-json` encoder.
#[derive(Debug, Clone, Default)]
pub struct CanalJsonEncoder {
    timestamptz: TimestamptzForm,
}

impl CanalJsonEncoder {
    /// An encoder writing `timestamptz` values in the given form.
    pub fn new(timestamptz: TimestamptzForm) -> Self {
        Self { timestamptz }
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

/// The MySQL type a column is written as in `mysqlType`: consumers written for Canal
/// (Paimon's Canal parser, sinks that create tables) read MySQL's names, with their
/// lengths, precisions and scales, to choose a column type.
pub fn mysql_type(field: &Field) -> String {
    let meta = field.metadata();
    let pg_type = meta.get(metadata::PG_TYPE).map_or("text", String::as_str);
    let typmod: Option<i32> = meta
        .get(metadata::PG_TYPMOD)
        .and_then(|m| m.parse().ok())
        .filter(|m: &i32| *m >= 0);
    // A timestamp's or time's typmod is its precision; a varchar's its length + 4.
    let precision = typmod.map_or(6, |p| p.min(6));
    if pg_type.starts_with('_') {
        return "json".to_owned();
    }
    match pg_type {
        "bool" => "boolean".to_owned(),
        "int2" => "smallint".to_owned(),
        "int4" | "oid" | "xid" => "int".to_owned(),
        "int8" => "bigint".to_owned(),
        "float4" => "float".to_owned(),
        "float8" => "double".to_owned(),
        "numeric" => match field.data_type() {
            DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
            // Unconstrained numeric has no fixed precision: its text is kept whole.
            _ => "longtext".to_owned(),
        },
        "money" => "decimal(19,2)".to_owned(),
        "varchar" => typmod.map_or("longtext".to_owned(), |m| format!("varchar({})", m - 4)),
        "bpchar" => typmod.map_or("char(1)".to_owned(), |m| format!("char({})", m - 4)),
        "char" => "char(1)".to_owned(),
        "bytea" => "longblob".to_owned(),
        "date" => "date".to_owned(),
        "time" => format!("time({precision})"),
        "timestamp" => format!("datetime({precision})"),
        "timestamptz" => format!("timestamp({precision})"),
        "json" | "jsonb" => "json".to_owned(),
        "uuid" => "char(36)".to_owned(),
        _ => "longtext".to_owned(),
    }
}

/// Canal's DDL message for a TRUNCATE of the batch's table (no key, as Debezium's
/// truncate event has none).
fn write_truncate(layout: &Layout, lsn: u64, commit_micros: i64, now_ms: i64, out: &mut Vec<u8>) {
    let mut itoa = itoa::Buffer::new();
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(itoa.format(lsn).as_bytes());
    out.extend_from_slice(b",\"database\":");
    string(&layout.schema_name, out);
    out.extend_from_slice(b",\"table\":");
    string(&layout.table_name, out);
    out.extend_from_slice(b",\"pkNames\":null,\"isDdl\":true,\"type\":\"TRUNCATE\",\"es\":");
    out.extend_from_slice(itoa.format(commit_micros.div_euclid(1000)).as_bytes());
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(itoa.format(now_ms).as_bytes());
    out.extend_from_slice(b",\"sql\":");
    string(
        &truncate_statement(&layout.schema_name, &layout.table_name),
        out,
    );
    out.extend_from_slice(b",\"sqlType\":null,\"mysqlType\":null,\"data\":null,\"old\":null}");
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
        let images = RowImages::new(&layout, batch);
        let MetadataColumns {
            ops,
            lsns,
            commit_ts,
            ..
        } = layout.metadata(batch)?;
        let now_ms = crate::clock::now_unix_millis();

        // What every message of the batch shares, written once.
        let mut header = b",\"database\":".to_vec();
        string(&layout.schema_name, &mut header);
        header.extend_from_slice(b",\"table\":");
        string(&layout.table_name, &mut header);
        header.extend_from_slice(b",\"pkNames\":");
        if layout.key.is_empty() {
            header.extend_from_slice(b"null");
        } else {
            layout.write_key_names(&mut header);
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
            string(&mysql_type(schema.field(column.index)), &mut pg_types);
        }
        pg_types.push(b'}');
        types.extend_from_slice(&pg_types);

        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            if change == op::TRUNCATE {
                // Canal carries a TRUNCATE in the table's stream as a DDL message.
                let value = |buffer: &mut Vec<u8>| {
                    write_truncate(
                        &layout,
                        lsns.value(row),
                        commit_ts.value(row),
                        now_ms,
                        buffer,
                    );
                };
                out.push(row, None, Some(&value));
                continue;
            }
            let key = |buffer: &mut Vec<u8>| layout.write_key(&images.writers, row, None, buffer);
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
                // Canal's conventions, shared with maxwell-json: see row_images.rs.
                buffer.extend_from_slice(b",\"data\":[{");
                let timestamptz = self.timestamptz;
                let canal = |writer: &ColumnWriter<'_>, row: usize, out: &mut Vec<u8>| {
                    writer.write_canal(row, timestamptz, out);
                };
                images.write_data(&layout, row, change, canal, buffer);
                buffer.extend_from_slice(b"}],\"old\":");
                if change == op::UPDATE {
                    // Flink's canal-json needs one `old` object per `data` row.
                    buffer.extend_from_slice(b"[{");
                    images.write_old(&layout, batch, row, canal, buffer);
                    buffer.extend_from_slice(b"}]");
                } else {
                    buffer.extend_from_slice(b"null");
                }
                buffer.push(b'}');
            };
            let key_writer = (!layout.key.is_empty()).then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
        }
        Ok(())
    }
}
