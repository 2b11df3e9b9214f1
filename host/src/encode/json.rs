//! `json`: one flat JSON object per row: weir's metadata columns, then the user
//! columns by their PostgreSQL names, then the old image as `_before` (an object, or
//! null). The key is the primary key as an object (`{"id":1}`), null without one.

use arrow::array::Array;
use arrow::record_batch::RecordBatch;

use super::layout::{Layout, is_unchanged};
use super::value::{ColumnWriter, ValueOptions, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::{COMMIT_LSN, COMMIT_TS, LSN, OP, SEQ, XID, op};

/// The `json` encoder.
#[derive(Debug, Clone, Default)]
pub struct JsonEncoder {
    options: ValueOptions,
}

impl JsonEncoder {
    /// An encoder with these value conventions.
    pub fn new(options: ValueOptions) -> Self {
        Self { options }
    }
}

impl Encoder for JsonEncoder {
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
        let before_writers = layout.before_writers(batch);
        let meta: Vec<ColumnWriter<'_>> = [layout.lsn, layout.commit_lsn, layout.xid, layout.seq]
            .iter()
            .map(|&i| ColumnWriter::new(schema.field(i), batch.column(i)))
            .collect();
        let commit_ts = ColumnWriter::new(
            schema.field(layout.commit_ts),
            batch.column(layout.commit_ts),
        );
        // Rows of one transaction share their commit time: format it once.
        let commit_ts_cache: std::cell::RefCell<(Option<usize>, Vec<u8>)> = Default::default();
        let ops = layout.ops(batch)?;
        let unchanged = layout.unchanged(batch);
        let options = &self.options;
        for row in 0..batch.num_rows() {
            let key = |buffer: &mut Vec<u8>| layout.write_key(&writers, row, Some(options), buffer);
            let value = |buffer: &mut Vec<u8>| {
                buffer.extend_from_slice(b"{\"");
                buffer.extend_from_slice(OP.as_bytes());
                buffer.extend_from_slice(b"\":\"");
                buffer.push(ops.value(row));
                buffer.push(b'"');
                for (name, writer) in [LSN, COMMIT_LSN, XID, SEQ].iter().zip(&meta) {
                    buffer.extend_from_slice(b",\"");
                    buffer.extend_from_slice(name.as_bytes());
                    buffer.extend_from_slice(b"\":");
                    writer.write(row, options, buffer);
                }
                buffer.extend_from_slice(b",\"");
                buffer.extend_from_slice(COMMIT_TS.as_bytes());
                buffer.extend_from_slice(b"\":");
                let mut cache = commit_ts_cache.borrow_mut();
                let same = cache.0.is_some_and(|last| commit_ts.same_value(last, row));
                if !same {
                    cache.1.clear();
                    commit_ts.write(row, options, &mut cache.1);
                    cache.0 = Some(row);
                }
                buffer.extend_from_slice(&cache.1);
                for (position, (column, writer)) in layout.columns.iter().zip(&writers).enumerate()
                {
                    buffer.push(b',');
                    buffer.extend_from_slice(&column.json_prefix);
                    if writer.is_null(row) && is_unchanged(unchanged, row, position) {
                        string(&options.unavailable_placeholder, buffer);
                    } else {
                        writer.write(row, options, buffer);
                    }
                }
                if let Some(before) = before {
                    buffer.extend_from_slice(b",\"_before\":");
                    if before.is_null(row) {
                        buffer.extend_from_slice(b"null");
                    } else {
                        write_image(&layout, &before_writers, &[], row, options, buffer);
                    }
                }
                buffer.push(b'}');
            };
            // A TRUNCATE is the table's, not a row's: no key.
            let has_key = !layout.key.is_empty() && ops.value(row) != op::TRUNCATE;
            out.push(row, has_key.then_some(&key as WriteBytes<'_>), Some(&value));
        }
        Ok(())
    }
}

/// An image (old row) as a JSON object of the columns that have a writer.
pub(crate) fn write_image(
    layout: &Layout,
    writers: &[Option<ColumnWriter<'_>>],
    zeros: &[Option<&'static [u8]>],
    row: usize,
    options: &ValueOptions,
    buffer: &mut Vec<u8>,
) {
    buffer.push(b'{');
    let mut first = true;
    for (position, (column, writer)) in layout.columns.iter().zip(writers).enumerate() {
        let Some(writer) = writer else { continue };
        if !first {
            buffer.push(b',');
        }
        first = false;
        buffer.extend_from_slice(&column.json_prefix);
        match zeros.get(position).copied().flatten() {
            Some(zero) if writer.is_null(row) => buffer.extend_from_slice(zero),
            _ => writer.write(row, options, buffer),
        }
    }
    buffer.push(b'}');
}
