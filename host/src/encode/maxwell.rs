//! `maxwell-json`: Maxwell's row events, as Flink's `maxwell-json` format and the
//! consumers written for Maxwell read them:
//!
//! ```json
//! {"database": "shop", "table": "orders", "type": "update", "ts": 1763712000,
//!  "xid": 940786, "primary_key_columns": ["id"],
//!  "data": {"id": 1, "status": "paid", "total": 12.50},
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
//! seconds, `xid` PostgreSQL's transaction id, `primary_key_columns` the primary
//! key's columns (Maxwell's `output_primary_key_columns`; left out for a table
//! without one). The key is Maxwell's:
//! `{"database": …, "table": …, "pk.<column>": value, …}`. `database` is the table's
//! PostgreSQL schema, as in `canal-json`.

use arrow::record_batch::RecordBatch;

use super::layout::{Layout, MetadataColumns};
use super::row_images::RowImages;
use super::value::{ColumnWriter, TimestamptzForm, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;

/// The `maxwell-json` encoder.
#[derive(Debug, Clone, Default)]
pub struct MaxwellJsonEncoder {
    timestamptz: TimestamptzForm,
}

impl MaxwellJsonEncoder {
    /// An encoder writing `timestamptz` values in the given form.
    pub fn new(timestamptz: TimestamptzForm) -> Self {
        Self { timestamptz }
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
        let images = RowImages::new(&layout, batch);
        let MetadataColumns {
            ops,
            xids,
            commit_ts,
            ..
        } = layout.metadata(batch)?;

        let mut header = b"{\"database\":".to_vec();
        string(&layout.schema_name, &mut header);
        header.extend_from_slice(b",\"table\":");
        string(&layout.table_name, &mut header);

        // Maxwell's `output_primary_key_columns`: Paimon's Maxwell parser takes the
        // table's primary key from it (it has no other way to learn one).
        let mut key_columns = Vec::new();
        if !layout.key.is_empty() {
            key_columns.extend_from_slice(b",\"primary_key_columns\":");
            layout.write_key_names(&mut key_columns);
        }

        let timestamptz = self.timestamptz;
        let column_value = |writer: &ColumnWriter<'_>, row: usize, out: &mut Vec<u8>| {
            write_value(writer, row, timestamptz, out);
        };
        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            if change == op::TRUNCATE {
                // Maxwell has no row event for a TRUNCATE.
                continue;
            }
            let key = |buffer: &mut Vec<u8>| {
                buffer.extend_from_slice(&header);
                for &position in &layout.key {
                    let column = &layout.columns[position];
                    buffer.extend_from_slice(b",\"pk.");
                    // `"name":` without the opening quote: the column's prefix.
                    buffer.extend_from_slice(&column.json_prefix[1..]);
                    column_value(images.row_writer(row, position, change), row, buffer);
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
                buffer.extend_from_slice(&key_columns);
                buffer.extend_from_slice(b",\"data\":{");
                images.write_data(&layout, row, change, column_value, buffer);
                buffer.push(b'}');
                if change == op::UPDATE {
                    buffer.extend_from_slice(b",\"old\":{");
                    images.write_old(&layout, batch, row, column_value, buffer);
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
fn write_value(
    writer: &ColumnWriter<'_>,
    row: usize,
    timestamptz: TimestamptzForm,
    out: &mut Vec<u8>,
) {
    if !writer.write_json_number(row, out) {
        writer.write_canal(row, timestamptz, out);
    }
}
