//! `shareplex-json`: the SharePlex JSON that Alibaba Cloud DTS writes to Kafka
//! (the field list of DTS's "data formats of a Kafka cluster"), one operation per
//! message:
//!
//! ```json
//! {"meta": {"time": "2026-11-21T10:00:00Z", "userid": "", "op": "UPDATE AFTER",
//!           "scn": "24023200", "rowid": "", "trans": "741", "seq": 3, "size": 0,
//!           "table": "public.orders", "idx": "3/0", "posttime": "2026-11-21T10:00:01Z"},
//!  "data": {"id": "1", "status": "paid"}}
//! ```
//!
//! An update is two messages, `UPDATE BEFORE` (the old row) then `UPDATE AFTER` (the
//! new row); inserts (snapshot reads too) are `INSERT`, deletes `DELETE` with the old
//! row, a TRUNCATE (when not skipped) `TRUNCATE` with empty `data`. `data` holds the
//! columns whose values are known: without `REPLICA IDENTITY FULL` an old row is its
//! key, and an unchanged TOASTed value PostgreSQL did not send is left out, so a
//! consumer keeps what it has. Values are strings in `canal-json`'s forms, nulls
//! `null`. `time` is the commit time, `posttime` the time weir wrote the message,
//! `scn` the transaction's commit LSN, `trans` its id, `seq` the operation's place
//! in it from 1. PostgreSQL's WAL says neither the user (`userid`) nor a row address
//! (`rowid`), and weir does not know a transaction's size while it writes its first
//! rows: those are `""`, `""` and `0` (`idx` is `seq/0`). The key is the primary key
//! as an object of text values, as in `canal-json`; both halves of an update are
//! keyed by the new key, so they stay adjacent on one partition.

use arrow::array::RecordBatch;
use chrono::{DateTime, SecondsFormat, Utc};

use super::layout::{Layout, MetadataColumns};
use super::row_images::{Image, RowImages};
use super::value::{TimestamptzForm, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;

/// The `shareplex-json` encoder.
#[derive(Debug, Clone, Default)]
pub struct SharePlexJsonEncoder {
    timestamptz: TimestamptzForm,
}

impl SharePlexJsonEncoder {
    /// An encoder writing `timestamptz` values in the given form.
    pub fn new(timestamptz: TimestamptzForm) -> Self {
        Self { timestamptz }
    }
}

impl Encoder for SharePlexJsonEncoder {
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
        let posttime = utc_seconds(crate::clock::now_unix_millis().saturating_mul(1000));
        let mut table = b"\"table\":".to_vec();
        string(
            &format!("{}.{}", layout.schema_name, layout.table_name),
            &mut table,
        );

        // A batch's rows mostly share their transaction's commit time.
        let mut time = (i64::MIN, String::new());
        for row in 0..batch.num_rows() {
            let change = ops.value(row);
            if time.0 != commit_ts.value(row) {
                time = (commit_ts.value(row), utc_seconds(commit_ts.value(row)));
            }
            let time = &time.1;
            let message = |kind: &str, image: Option<Image>, buffer: &mut Vec<u8>| {
                let mut itoa = itoa::Buffer::new();
                let seq = u64::from(seqs.value(row)) + 1;
                buffer.extend_from_slice(b"{\"meta\":{\"time\":");
                string(time, buffer);
                buffer.extend_from_slice(b",\"userid\":\"\",\"op\":");
                string(kind, buffer);
                buffer.extend_from_slice(b",\"scn\":\"");
                buffer.extend_from_slice(itoa.format(commit_lsns.value(row)).as_bytes());
                buffer.extend_from_slice(b"\",\"rowid\":\"\",\"trans\":\"");
                buffer.extend_from_slice(itoa.format(xids.value(row)).as_bytes());
                buffer.extend_from_slice(b"\",\"seq\":");
                buffer.extend_from_slice(itoa.format(seq).as_bytes());
                buffer.extend_from_slice(b",\"size\":0,");
                buffer.extend_from_slice(&table);
                buffer.extend_from_slice(b",\"idx\":\"");
                buffer.extend_from_slice(itoa.format(seq).as_bytes());
                buffer.extend_from_slice(b"/0\",\"posttime\":");
                string(&posttime, buffer);
                buffer.extend_from_slice(b"},\"data\":{");
                if let Some(image) = image {
                    images.write_known(&layout, row, change, image, self.timestamptz, buffer);
                }
                buffer.extend_from_slice(b"}}");
            };
            let key = |buffer: &mut Vec<u8>| layout.write_key(&images.writers, row, None, buffer);
            let key_writer = (!layout.key.is_empty()).then_some(&key as WriteBytes<'_>);
            match change {
                op::TRUNCATE => out.push(row, None, Some(&|b| message("TRUNCATE", None, b))),
                op::DELETE => {
                    out.push(
                        row,
                        key_writer,
                        Some(&|b| message("DELETE", Some(Image::Old), b)),
                    );
                }
                op::UPDATE => {
                    // Both halves under the new key: they stay adjacent on one
                    // partition, as a consumer pairs them.
                    out.push(
                        row,
                        key_writer,
                        Some(&|b| message("UPDATE BEFORE", Some(Image::Old), b)),
                    );
                    out.push(
                        row,
                        key_writer,
                        Some(&|b| message("UPDATE AFTER", Some(Image::New), b)),
                    );
                }
                _ => out.push(
                    row,
                    key_writer,
                    Some(&|b| message("INSERT", Some(Image::New), b)),
                ),
            }
        }
        Ok(())
    }
}

/// Microseconds since 1970 as `yyyy-MM-ddTHH:mm:ssZ`.
fn utc_seconds(micros: i64) -> String {
    DateTime::<Utc>::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}
