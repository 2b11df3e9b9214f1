//! `oms-json`: OceanBase Migration Service's Default JSON (its "Default"
//! serialization for Kafka), one row change per message:
//!
//! ```json
//! {"prevStruct": {"id": "1", "status": "new"},
//!  "postStruct": {"id": "1", "status": "paid"},
//!  "allMetaData": {"checkpoint": "1763712000", "record_primary_key": "id",
//!                  "record_primary_value": "1", "source_identity": "", "dbType": "POSTGRESQL",
//!                  "storeDataSequence": 176371200000003, "table_name": "orders",
//!                  "db": "shop.public", "timestamp": "1763712000", "uniqueId": "0/16E3A48",
//!                  "transId": "741", "clusterId": "", "ddlType": ""},
//!  "recordType": "UPDATE"}
//! ```
//!
//! `recordType` is `INSERT` (snapshot reads too), `UPDATE`, `DELETE`, or `DDL` for a
//! TRUNCATE (`postStruct` `{"ddl": "TRUNCATE TABLE …"}`, `ddlType` `TRUNCATE`). A
//! delete has only `prevStruct`, an insert only `postStruct`, an update both. The
//! structs hold the columns whose values are known (without `REPLICA IDENTITY
//! FULL` an old row is its key; an unchanged TOASTed value is left out, so a consumer
//! keeps what it has), as strings in `canal-json`'s forms. `db` is
//! `database.schema`, as OMS writes OceanBase's `tenant.database`; the key columns'
//! names and values are joined with `\u0001`. `checkpoint` and `timestamp` are the
//! commit time in seconds, `storeDataSequence` that time followed by the row's
//! five-digit place in its transaction, as OMS builds it; `uniqueId` is the
//! transaction's commit LSN and `transId` its id. The key is the primary key as an
//! object of text values, as in `canal-json`.

use arrow::array::RecordBatch;

use super::layout::{Layout, MetadataColumns};
use super::row_images::{Image, RowImages};
use super::value::{TimestamptzForm, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;
use crate::contract::sql::truncate_statement;
use crate::lsn::Lsn;

/// The `oms-json` encoder.
#[derive(Debug, Clone)]
pub struct OmsJsonEncoder {
    database: String,
    timestamptz: TimestamptzForm,
}

impl OmsJsonEncoder {
    /// An encoder naming `database` (PostgreSQL's) in `db`, writing `timestamptz`
    /// values in the given form.
    pub fn new(database: impl Into<String>, timestamptz: TimestamptzForm) -> Self {
        Self {
            database: database.into(),
            timestamptz,
        }
    }
}

impl Encoder for OmsJsonEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        _marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError> {
        let layout = Layout::new(batch.schema_ref())?;
        let MetadataColumns {
            ops,
            commit_lsns,
            xids,
            commit_ts,
            seqs,
            ..
        } = layout.metadata(batch)?;
        let images = RowImages::new(&layout, batch);

        // `record_primary_key`, `dbType`, `source_identity`, `table_name`, `db`.
        let mut shared = b",\"record_primary_key\":".to_vec();
        let names: Vec<&str> = layout
            .key
            .iter()
            .map(|&position| layout.columns[position].name.as_str())
            .collect();
        string(&names.join("\u{1}"), &mut shared);
        shared.extend_from_slice(
            b",\"source_identity\":\"\",\"dbType\":\"POSTGRESQL\",\"table_name\":",
        );
        string(&layout.table_name, &mut shared);
        shared.extend_from_slice(b",\"db\":");
        string(
            &format!("{}.{}", self.database, layout.schema_name),
            &mut shared,
        );

        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            let seconds = commit_ts.value(row).div_euclid(1_000_000);
            let struct_of = |image: Image, buffer: &mut Vec<u8>| {
                buffer.push(b'{');
                images.write_known(&layout, row, change, image, self.timestamptz, buffer);
                buffer.push(b'}');
            };
            let value = |buffer: &mut Vec<u8>| {
                let mut itoa = itoa::Buffer::new();
                let (record_type, prev, post) = match change {
                    op::TRUNCATE => ("DDL", false, false),
                    op::UPDATE => ("UPDATE", true, true),
                    op::DELETE => ("DELETE", true, false),
                    _ => ("INSERT", false, true),
                };
                buffer.extend_from_slice(b"{\"prevStruct\":");
                if prev {
                    struct_of(Image::Old, buffer);
                } else {
                    buffer.extend_from_slice(b"null");
                }
                buffer.extend_from_slice(b",\"postStruct\":");
                if post {
                    struct_of(Image::New, buffer);
                } else if change == op::TRUNCATE {
                    buffer.extend_from_slice(b"{\"ddl\":");
                    string(
                        &truncate_statement(&layout.schema_name, &layout.table_name),
                        buffer,
                    );
                    buffer.push(b'}');
                } else {
                    buffer.extend_from_slice(b"null");
                }
                buffer.extend_from_slice(b",\"allMetaData\":{\"checkpoint\":\"");
                buffer.extend_from_slice(itoa.format(seconds).as_bytes());
                buffer.push(b'"');
                buffer.extend_from_slice(&shared);
                buffer.extend_from_slice(b",\"record_primary_value\":\"");
                // The changed row's key: the old one for a delete.
                let image = if change == op::DELETE {
                    Image::Old
                } else {
                    Image::New
                };
                // Each value's JSON string (as in the structs) without its quotes,
                // joined by \u0001 (JSON escapes each character alone, so the parts
                // join).
                for (i, &position) in layout.key.iter().enumerate() {
                    if i > 0 {
                        buffer.extend_from_slice(b"\\u0001");
                    }
                    if let Some(writer) = images.known(&layout.key, row, position, change, image)
                        && !writer.is_null(row)
                    {
                        let start = buffer.len();
                        writer.write_canal(row, self.timestamptz, buffer);
                        if buffer.get(start) == Some(&b'"') {
                            buffer.remove(start);
                            buffer.pop();
                        }
                    }
                }
                buffer.extend_from_slice(b"\",\"storeDataSequence\":");
                let sequence = seconds
                    .saturating_mul(100_000)
                    .saturating_add(i64::from(seqs.value(row) % 100_000));
                buffer.extend_from_slice(itoa.format(sequence).as_bytes());
                buffer.extend_from_slice(b",\"timestamp\":\"");
                buffer.extend_from_slice(itoa.format(seconds).as_bytes());
                buffer.extend_from_slice(b"\",\"uniqueId\":");
                string(&Lsn(commit_lsns.value(row)).to_string(), buffer);
                buffer.extend_from_slice(b",\"transId\":\"");
                buffer.extend_from_slice(itoa.format(xids.value(row)).as_bytes());
                buffer.extend_from_slice(b"\",\"clusterId\":\"\",\"ddlType\":");
                buffer.extend_from_slice(if change == op::TRUNCATE {
                    b"\"TRUNCATE\"".as_slice()
                } else {
                    b"\"\""
                });
                buffer.extend_from_slice(b"},\"recordType\":\"");
                buffer.extend_from_slice(record_type.as_bytes());
                buffer.extend_from_slice(b"\"}");
            };
            if change == op::TRUNCATE {
                out.push(row, None, Some(&value));
                continue;
            }
            let key = |buffer: &mut Vec<u8>| layout.write_key(&images.writers, row, None, buffer);
            let key_writer = (!layout.key.is_empty()).then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
        }
        Ok(())
    }
}
