//! `maxwell-json`: Maxwell's row events, as Flink's `maxwell-json` format and the
//! consumers written for Maxwell read them:
//!
//! ```json
//! {"database": "shop", "table": "orders", "type": "update", "ts": 1763712000,
//!  "xid": 940786, "data": {"id": 1, "status": "paid", "total": 12.50},
//!  "old": {"status": "new"}}
//! ```
//!
//! Numbers and booleans are JSON numbers and booleans; decimals are numbers written
//! exactly as PostgreSQL holds them; other values are strings in the forms of
//! `canal-json` ([`ColumnWriter::write_canal`]). An update's `old` is always present:
//! the changed columns with their old values under `REPLICA IDENTITY FULL`, otherwise
//! only a changed primary key, or `{}` (Flink fails on an update without `old`). A
//! delete's `data` is the old row. Snapshot reads are `insert`s: Maxwell's own
//! `bootstrap-insert` is a type Flink's format refuses. `ts` is the commit time in
//! seconds, `xid` PostgreSQL's transaction id. The key is Maxwell's:
//! `{"database": …, "table": …, "pk.<column>": value, …}`.

use arrow::array::Array;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;

use super::layout::{Layout, MetadataColumns, is_unchanged};
use super::value::{ColumnWriter, base64, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::{metadata, op};

/// The `maxwell-json` encoder.
#[derive(Debug, Clone)]
pub struct MaxwellJsonEncoder {
    database: String,
    /// Written for an unchanged TOAST value weir does not know (Debezium's
    /// `unavailable.value.placeholder`).
    placeholder: String,
}

impl MaxwellJsonEncoder {
    /// An encoder naming `database` in every message.
    pub fn new(database: impl Into<String>) -> Self {
        Self {
            database: database.into(),
            placeholder: super::value::ValueOptions::default().unavailable_placeholder,
        }
    }
}

impl Encoder for MaxwellJsonEncoder {
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
        let unchanged = layout.unchanged(batch);
        let full_identity = schema
            .metadata()
            .get(metadata::REPLICA_IDENTITY)
            .is_some_and(|identity| identity == "full");
        let is_bytes: Vec<bool> = layout
            .columns
            .iter()
            .map(|c| {
                matches!(
                    schema.field(c.index).data_type(),
                    DataType::Binary | DataType::LargeBinary
                )
            })
            .collect();
        let MetadataColumns {
            ops,
            xids,
            commit_ts,
            ..
        } = layout.metadata(batch)?;

        let mut header = b"{\"database\":".to_vec();
        string(&self.database, &mut header);
        header.extend_from_slice(b",\"table\":");
        string(&layout.table_name, &mut header);

        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            if change == op::TRUNCATE {
                // Maxwell has no row event for a TRUNCATE.
                continue;
            }
            let has_before = before.is_some_and(|b| b.is_valid(row));
            let full_image = has_before && full_identity;
            let use_before = change == op::DELETE && has_before;
            let key = |buffer: &mut Vec<u8>| {
                buffer.extend_from_slice(&header);
                for &position in &layout.key {
                    let column = &layout.columns[position];
                    buffer.extend_from_slice(b",\"pk.");
                    // `"name":` without the opening quote: the column's prefix.
                    buffer.extend_from_slice(&column.json_prefix[1..]);
                    let writer = match (&before_writers[position], use_before) {
                        (Some(old), true) => old,
                        _ => &writers[position],
                    };
                    write_value(writer, row, buffer);
                }
                buffer.push(b'}');
            };
            let value = |buffer: &mut Vec<u8>| {
                buffer.extend_from_slice(&header);
                buffer.extend_from_slice(b",\"type\":\"");
                buffer.extend_from_slice(match change {
                    op::UPDATE => b"update".as_slice(),
                    op::DELETE => b"delete",
                    _ => b"insert",
                });
                let mut itoa = itoa::Buffer::new();
                buffer.extend_from_slice(b"\",\"ts\":");
                buffer.extend_from_slice(
                    itoa.format(commit_ts.value(row).div_euclid(1_000_000))
                        .as_bytes(),
                );
                buffer.extend_from_slice(b",\"xid\":");
                buffer.extend_from_slice(itoa.format(xids.value(row)).as_bytes());
                buffer.extend_from_slice(b",\"data\":{");
                for (position, column) in layout.columns.iter().enumerate() {
                    if position > 0 {
                        buffer.push(b',');
                    }
                    buffer.extend_from_slice(&column.json_prefix);
                    let writer = match (&before_writers[position], use_before) {
                        (Some(old), true) => old,
                        _ => &writers[position],
                    };
                    if change == op::UPDATE
                        && writer.is_null(row)
                        && is_unchanged(unchanged, row, position)
                    {
                        // Not in the WAL's new row: from the full old image, else
                        // the placeholder (see canal.rs).
                        match (&before_writers[position], full_image) {
                            (Some(old), true) => write_value(old, row, buffer),
                            _ if is_bytes[position] => {
                                base64(self.placeholder.as_bytes(), buffer);
                            }
                            _ => string(&self.placeholder, buffer),
                        }
                        continue;
                    }
                    write_value(writer, row, buffer);
                }
                buffer.push(b'}');
                if change == op::UPDATE {
                    buffer.extend_from_slice(b",\"old\":{");
                    let mut first = true;
                    for (position, column) in layout.columns.iter().enumerate() {
                        let (Some(old_writer), Some(old_array)) =
                            (&before_writers[position], before_columns[position])
                        else {
                            continue;
                        };
                        let listed = if full_image {
                            !is_unchanged(unchanged, row, position)
                        } else {
                            has_before && layout.key.contains(&position)
                        };
                        if !listed
                            || super::canal::equal_at(
                                batch.column(column.index).as_ref(),
                                old_array,
                                row,
                            )
                        {
                            continue;
                        }
                        if !first {
                            buffer.push(b',');
                        }
                        first = false;
                        buffer.extend_from_slice(&column.json_prefix);
                        write_value(old_writer, row, buffer);
                    }
                    buffer.push(b'}');
                }
                buffer.push(b'}');
            };
            let key_writer = (!layout.key.is_empty()).then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
        }
        Ok(())
    }
}

/// A value as Maxwell writes it: numbers, decimals and booleans as JSON numbers and
/// booleans, the rest as `canal-json` strings.
fn write_value(writer: &ColumnWriter<'_>, row: usize, out: &mut Vec<u8>) {
    if !writer.write_json_number(row, out) {
        writer.write_canal(row, out);
    }
}
