//! Streamed in-progress transactions (pgoutput `streaming on`), held on local disk
//! until they commit.
//!
//! With streaming, the server sends a large transaction in blocks while it is still
//! running, instead of spilling it to its own disk until the commit. Its rows have no
//! commit position yet and the transaction, or any of its subtransactions, may still
//! roll back; and only committed data may reach Kafka. So weir batches the rows as
//! usual, writes each finished batch to an anonymous temporary file (Arrow IPC), and
//! at the commit replays the file one batch at a time: rows of rolled-back
//! subtransactions dropped, commit LSN, transaction id and commit time filled in.
//! Memory stays bounded by the batch limits; the file is deleted when the transaction
//! ends, and by the OS if weir dies.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, BooleanArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow::compute::filter_record_batch;
use arrow::datatypes::UInt32Type;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;

use super::batch_limits::{BatchLimits, BatcherError, DEFAULT_MAX_BATCH_ROWS};
use crate::batch::{ChangeBatchBuilder, RowMeta, TableSchema};
use crate::contract::columns::{COMMIT_LSN, COMMIT_TS, XID};
use crate::lsn::Lsn;
use weir_pgoutput::{Commit, Oid, Tuple, Xid};

/// One streamed transaction being received.
#[derive(Debug, Default)]
struct Streamed {
    /// Per table: the schema version the builder was made for, and the builder.
    builders: HashMap<Oid, (u32, ChangeBatchBuilder)>,
    spill: Spill,
    /// Rolled-back subtransactions.
    aborted: HashSet<Xid>,
    /// Rows received, per (sub)transaction id.
    rows: HashMap<Xid, u64>,
    seq: u32,
}

/// Every streamed transaction of a session.
#[derive(Debug)]
pub(crate) struct StreamedTransactions {
    limits: BatchLimits,
    open: HashMap<Xid, Streamed>,
    /// The transaction whose block is being received (between Stream Start and Stop).
    current: Option<Xid>,
}

/// A committed streamed transaction, replayed from disk one batch at a time.
#[derive(Debug)]
pub(crate) struct Replay {
    spill: Spill,
    next: usize,
    aborted: HashSet<Xid>,
    xid: Xid,
    commit_lsn: Lsn,
    commit_time_micros: i64,
}

impl StreamedTransactions {
    pub(crate) fn new(limits: BatchLimits) -> Self {
        StreamedTransactions {
            limits,
            open: HashMap::new(),
            current: None,
        }
    }

    /// A block of `xid` starts.
    pub(crate) fn start(&mut self, xid: Xid) {
        self.open.entry(xid).or_default();
        self.current = Some(xid);
    }

    /// The block ends.
    pub(crate) fn stop(&mut self) {
        self.current = None;
    }

    /// Whether a block is being received: changes now belong to a streamed transaction.
    pub(crate) fn in_block(&self) -> bool {
        self.current.is_some()
    }

    /// Whether any streamed transaction has not ended yet.
    pub(crate) fn any_open(&self) -> bool {
        !self.open.is_empty()
    }

    /// Adds a change of the current block. `schema` is the table's current schema;
    /// `change_xid` the (sub)transaction the change carries.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn change(
        &mut self,
        schema: &Arc<TableSchema>,
        op: u8,
        lsn: Lsn,
        change_xid: Option<Xid>,
        image: &Tuple,
        before: Option<&Tuple>,
    ) -> Result<(), BatcherError> {
        let top = self
            .current
            .ok_or(BatcherError::OutsideTransaction(schema.relation_oid))?;
        let limits = self.limits;
        let streamed = self.open.entry(top).or_default();
        let relation = schema.relation_oid;
        // A Relation message changed the table since this builder was made: its rows
        // so far go to disk under the old schema.
        if streamed
            .builders
            .get(&relation)
            .is_some_and(|(version, _)| *version != schema.version)
            && let Some((_, mut old)) = streamed.builders.remove(&relation)
        {
            spill_finished(&mut streamed.spill, &mut old)?;
        }
        let (_, builder) = match streamed.builders.entry(relation) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let capacity = limits.max_rows.min(DEFAULT_MAX_BATCH_ROWS);
                let builder = ChangeBatchBuilder::new(Arc::clone(schema), capacity)?;
                entry.insert((schema.version, builder))
            }
        };
        let xid = change_xid.unwrap_or(top);
        let meta = RowMeta {
            op,
            lsn,
            commit_lsn: Lsn::ZERO,
            xid,
            commit_time_micros: 0,
            seq: streamed.seq,
        };
        builder.append(&meta, image, before)?;
        streamed.seq += 1;
        *streamed.rows.entry(xid).or_default() += 1;
        while let Some(batch) = builder.take_ready() {
            streamed.spill.write(&batch)?;
        }
        if builder.len() >= limits.max_rows || builder.byte_size() >= limits.max_bytes {
            spill_finished(&mut streamed.spill, builder)?;
        }
        Ok(())
    }

    /// `xid` rolled back `subxid` (or, when equal, the whole transaction).
    pub(crate) fn abort(&mut self, xid: Xid, subxid: Xid) {
        if xid == subxid {
            self.open.remove(&xid);
        } else if let Some(streamed) = self.open.get_mut(&xid) {
            streamed.aborted.insert(subxid);
        }
    }

    /// The transaction committed: everything goes to disk, and comes back as a
    /// [`Replay`] with the number of rows it holds.
    pub(crate) fn commit(
        &mut self,
        commit: &Commit,
    ) -> Result<Option<(Replay, u64)>, BatcherError> {
        let Some(xid) = commit.xid else {
            return Ok(None);
        };
        let Some(mut streamed) = self.open.remove(&xid) else {
            return Ok(None);
        };
        for (_, builder) in streamed.builders.values_mut() {
            spill_finished(&mut streamed.spill, builder)?;
        }
        let rows = streamed
            .rows
            .iter()
            .filter(|(xid, _)| !streamed.aborted.contains(xid))
            .map(|(_, rows)| rows)
            .sum();
        Ok(Some((
            Replay {
                spill: streamed.spill,
                next: 0,
                aborted: streamed.aborted,
                xid,
                commit_lsn: commit.commit_lsn,
                commit_time_micros: commit.commit_time_micros,
            },
            rows,
        )))
    }
}

fn spill_finished(spill: &mut Spill, builder: &mut ChangeBatchBuilder) -> Result<(), BatcherError> {
    while let Some(batch) = builder.take_ready() {
        spill.write(&batch)?;
    }
    if let Some(batch) = builder.finish()? {
        spill.write(&batch)?;
    }
    Ok(())
}

impl Replay {
    /// The next batch of the transaction, complete; `None` at the end.
    pub(crate) fn next_batch(&mut self) -> Result<Option<RecordBatch>, BatcherError> {
        loop {
            let Some(batch) = self.spill.read(self.next)? else {
                return Ok(None);
            };
            self.next += 1;
            let batch = self.without_aborted(batch)?;
            if batch.num_rows() > 0 {
                return self.committed(batch).map(Some);
            }
        }
    }

    fn without_aborted(&self, batch: RecordBatch) -> Result<RecordBatch, BatcherError> {
        if self.aborted.is_empty() {
            return Ok(batch);
        }
        let xids = batch
            .column_by_name(XID)
            .ok_or_else(|| spill_error("spilled batch without _xid"))?
            .as_primitive::<UInt32Type>();
        let keep: BooleanArray = xids
            .values()
            .iter()
            .map(|xid| Some(!self.aborted.contains(xid)))
            .collect();
        Ok(filter_record_batch(&batch, &keep)?)
    }

    /// Fills in what was unknown while the transaction ran.
    fn committed(&self, batch: RecordBatch) -> Result<RecordBatch, BatcherError> {
        let rows = batch.num_rows();
        let schema = batch.schema();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| -> ArrayRef {
                match field.name().as_str() {
                    COMMIT_LSN => Arc::new(UInt64Array::from(vec![self.commit_lsn.0; rows])),
                    XID => Arc::new(UInt32Array::from(vec![self.xid; rows])),
                    COMMIT_TS => Arc::new(
                        TimestampMicrosecondArray::from(vec![self.commit_time_micros; rows])
                            .with_timezone("UTC"),
                    ),
                    _ => Arc::clone(column),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

/// Finished batches of one streamed transaction in an anonymous temporary file, each
/// as a self-contained Arrow IPC stream (schemas may differ between batches).
#[derive(Debug, Default)]
struct Spill {
    file: Option<File>,
    /// (offset, length) of each batch.
    segments: Vec<(u64, usize)>,
    end: u64,
}

impl Spill {
    fn write(&mut self, batch: &RecordBatch) -> Result<(), BatcherError> {
        let mut writer = StreamWriter::try_new(Vec::new(), batch.schema_ref())?;
        writer.write(batch)?;
        writer.finish()?;
        let bytes = writer.into_inner()?;
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile().map_err(spill_io)?),
        };
        file.seek(SeekFrom::Start(self.end)).map_err(spill_io)?;
        file.write_all(&bytes).map_err(spill_io)?;
        self.segments.push((self.end, bytes.len()));
        self.end += bytes.len() as u64;
        Ok(())
    }

    fn read(&mut self, index: usize) -> Result<Option<RecordBatch>, BatcherError> {
        let (Some(&(offset, length)), Some(file)) = (self.segments.get(index), self.file.as_mut())
        else {
            return Ok(None);
        };
        let mut bytes = vec![0; length];
        file.seek(SeekFrom::Start(offset)).map_err(spill_io)?;
        file.read_exact(&mut bytes).map_err(spill_io)?;
        let mut reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
        match reader.next() {
            Some(batch) => Ok(Some(batch?)),
            None => Err(spill_error("empty spilled segment")),
        }
    }
}

fn spill_io(error: std::io::Error) -> BatcherError {
    BatcherError::Spill(error)
}

fn spill_error(message: &str) -> BatcherError {
    BatcherError::Spill(std::io::Error::other(message.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_batches_of_different_schemas_come_back_in_order() {
        use arrow::array::Int32Array;
        use arrow::datatypes::{DataType, Field, Schema};
        let one = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)])),
            vec![Arc::new(Int32Array::from(vec![1, 2]))],
        )
        .expect("batch");
        let two = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("b", DataType::UInt32, false)])),
            vec![Arc::new(UInt32Array::from(vec![3]))],
        )
        .expect("batch");
        let mut spill = Spill::default();
        spill.write(&one).expect("write");
        spill.write(&two).expect("write");
        assert_eq!(spill.read(0).expect("read"), Some(one));
        assert_eq!(spill.read(1).expect("read"), Some(two));
        assert_eq!(spill.read(2).expect("read"), None);
    }
}
