//! The pipeline's messages besides row changes: Debezium's transaction metadata
//! (`BEGIN`/`END` per transaction, with event counts), heartbeats, and the DDL
//! topic's schema changes.
//!
//! The worker lends them an [`Outlet`] (its producer, topic admin and metadata
//! encoder) for each call, so they hold no Kafka clients of their own.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;

use crate::Lsn;
use crate::contract::columns::MetadataColumns;
use crate::contract::{Messages, SchemaChange};
use crate::encode::{
    DdlEncoder, MetadataEncoder, TransactionEvent, TransactionStatus, transaction_id,
};
use crate::produce::KafkaProducer;
use crate::produce::admin::TopicAdmin;
use crate::route::partition_for_key;

/// What side topics send through.
pub(super) struct Outlet<'a> {
    pub(super) producer: &'a KafkaProducer,
    pub(super) topics: &'a mut TopicAdmin,
    pub(super) metadata: &'a mut MetadataEncoder,
}

impl Outlet<'_> {
    /// Sends one keyed message to the partition Kafka's default partitioner picks,
    /// counted under `commit_lsn` by the checkpoint tracker (or not at all).
    fn send(
        &mut self,
        topic: &str,
        key: &[u8],
        value: &[u8],
        commit_lsn: Option<Lsn>,
    ) -> anyhow::Result<()> {
        let partitions = self.topics.partitions(topic)?;
        let partition = partition_for_key(key, partitions);
        self.producer
            .send_one(topic, Some(partition), key, value, commit_lsn)?;
        Ok(())
    }

    fn transaction_event(
        &mut self,
        topic: &str,
        open: &OpenTransaction,
        status: TransactionStatus,
    ) -> anyhow::Result<()> {
        let event = TransactionEvent {
            status,
            id: &open.id,
            data_collections: if status == TransactionStatus::End {
                &open.tables
            } else {
                &[]
            },
            ts_ms: open.ts_ms,
        };
        let (key, value) = self.metadata.transaction(topic, &event)?;
        self.send(topic, &key, &value, Some(Lsn(open.commit_lsn)))
    }
}

/// Transaction metadata: the transactions whose `BEGIN` was sent and whose `END`
/// is due at their commit marker, with their event counts per table.
pub(super) struct TransactionTopic {
    topic: String,
    open: VecDeque<OpenTransaction>,
    /// Commit LSN of the last transaction given a `BEGIN`.
    last_begun: u64,
}

struct OpenTransaction {
    commit_lsn: u64,
    id: String,
    ts_ms: i64,
    tables: Vec<(String, u64)>,
    /// Per entry of `tables`: the `_seq` of its first row. `tables` is kept in
    /// this order, Debezium's for `data_collections` (first written first),
    /// which weir's per-table batches may not follow.
    first_seqs: Vec<u32>,
    /// Whether its `BEGIN` was sent: only once the previous transaction's `END`
    /// was, so the metadata topic reads BEGIN, END, BEGIN, END as with Debezium,
    /// even when one batch holds rows of several transactions.
    begun: bool,
}

impl TransactionTopic {
    pub(super) fn new(topic: String) -> Self {
        Self {
            topic,
            open: VecDeque::new(),
            last_begun: 0,
        }
    }

    /// After a reconnect, transactions not confirmed come again from their start:
    /// they get a new `BEGIN` and fresh counts.
    pub(super) fn rewind(&mut self, flushed: Lsn) {
        self.open.clear();
        self.last_begun = flushed.0;
    }

    /// Sends a `BEGIN` for each transaction that first appears in `batch` (of
    /// table `table`), and counts the batch's events per transaction for the `END`.
    ///
    /// An event is an encoded message with a value, as Debezium counts them: a
    /// primary key change is two (its delete and its create), a tombstone none.
    pub(super) fn begin(
        &mut self,
        batch: &RecordBatch,
        messages: &Messages,
        table: &str,
        outlet: &mut Outlet<'_>,
    ) -> anyhow::Result<()> {
        let MetadataColumns {
            commit_lsns,
            xids,
            commit_ts,
            seqs,
            ..
        } = MetadataColumns::of(batch)?;
        // Messages come in row order: one pass over them beside the rows.
        let mut events_of_rows = messages.iter().peekable();
        let mut row = 0;
        while row < batch.num_rows() {
            let commit_lsn = commit_lsns.value(row);
            let run = commit_lsns.values()[row..]
                .iter()
                .take_while(|lsn| **lsn == commit_lsn)
                .count();
            let mut events = 0;
            while let Some(message) = events_of_rows.next_if(|m| m.row < row + run) {
                events += u64::from(messages.value(message).is_some());
            }
            if commit_lsn > self.last_begun {
                self.last_begun = commit_lsn;
                let mut open = OpenTransaction {
                    commit_lsn,
                    id: transaction_id(xids.value(row), commit_lsn),
                    ts_ms: commit_ts.value(row).div_euclid(1000),
                    tables: Vec::new(),
                    first_seqs: Vec::new(),
                    begun: false,
                };
                if self.open.is_empty() {
                    outlet.transaction_event(&self.topic, &open, TransactionStatus::Begin)?;
                    open.begun = true;
                }
                self.open.push_back(open);
            }
            if let Some(open) = self
                .open
                .iter_mut()
                .rev()
                .find(|t| t.commit_lsn == commit_lsn)
            {
                match open.tables.iter_mut().find(|(t, _)| t == table) {
                    Some((_, n)) => *n += events,
                    None => {
                        let first = seqs.value(row);
                        let at = open.first_seqs.partition_point(|seq| *seq < first);
                        open.tables.insert(at, (table.to_owned(), events));
                        open.first_seqs.insert(at, first);
                    }
                }
            }
            row += run;
        }
        Ok(())
    }

    /// Sends the `END` of the transaction committed at `commit_lsn`, if it had
    /// events, and the `BEGIN` of the next one, which waited for it.
    pub(super) fn end(&mut self, commit_lsn: Lsn, outlet: &mut Outlet<'_>) -> anyhow::Result<()> {
        while let Some(open) = self.open.pop_front() {
            if open.commit_lsn > commit_lsn.0 {
                self.open.push_front(open);
                break;
            }
            if open.commit_lsn < commit_lsn.0 {
                continue;
            }
            outlet.transaction_event(&self.topic, &open, TransactionStatus::End)?;
            if let Some(next) = self.open.front_mut()
                && !next.begun
            {
                outlet.transaction_event(&self.topic, next, TransactionStatus::Begin)?;
                next.begun = true;
            }
        }
        Ok(())
    }
}

/// Heartbeats on a topic every `interval`.
pub(super) struct Heartbeat {
    topic: String,
    interval: Duration,
    last: Instant,
}

impl Heartbeat {
    pub(super) fn new(topic: String, interval: Duration) -> Self {
        Self {
            topic,
            interval,
            last: Instant::now(),
        }
    }

    /// Sends a heartbeat when one is due; no checkpoint waits for it.
    pub(super) fn send_if_due(&mut self, outlet: &mut Outlet<'_>) -> anyhow::Result<()> {
        if self.last.elapsed() < self.interval {
            return Ok(());
        }
        self.last = Instant::now();
        let now_ms = crate::clock::now_unix_millis();
        let (key, value) = outlet.metadata.heartbeat(&self.topic, now_ms)?;
        outlet.send(&self.topic, &key, &value, None)
    }
}

/// Captured DDL and TRUNCATEs on the DDL topic, keyed by table.
pub(super) struct DdlTopic {
    topic: String,
    encoder: DdlEncoder,
}

impl DdlTopic {
    pub(super) fn new(topic: String, encoder: DdlEncoder) -> Self {
        Self { topic, encoder }
    }

    /// Sends `change`, counted with its transaction: the slot moves past the
    /// statement only once Kafka has it.
    pub(super) fn send(
        &mut self,
        change: &SchemaChange,
        outlet: &mut Outlet<'_>,
    ) -> anyhow::Result<()> {
        let (key, value) = self.encoder.encode(&self.topic, change)?;
        outlet.send(&self.topic, &key, &value, Some(change.commit_lsn))
    }
}
