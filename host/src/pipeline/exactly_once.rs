//! Exactly-once: the worker's messages go out in Kafka transactions, each ending
//! with a record of the position it reaches in the state topic, so a restarted
//! weir knows exactly what `read_committed` consumers already have.
//!
//! A Kafka transaction is committed every `transaction_interval`, at a batch
//! boundary, preferably where no PostgreSQL transaction is half sent. The
//! position says where the last whole PostgreSQL transaction ends, and, for
//! those only partly sent (a transaction larger than one Kafka transaction
//! should hold), the highest `_seq` sent per table. On start, the tracker is
//! gated at that end (what comes again before it is skipped, even if the slot
//! was never confirmed that far), and rows of a partly sent transaction up to
//! the recorded `_seq` are skipped. `_seq` is a change's place in its
//! transaction, the same each time PostgreSQL decodes it.
//!
//! The flush LSN confirmed to PostgreSQL moves only when a commit released it
//! ([`CheckpointTracker::release`]): an acknowledged message of an uncommitted
//! transaction may still be aborted.
//!
//! Snapshot chunks are whole in one Kafka transaction: no commit while a chunk's
//! reads are being sent; the chunk's progress record commits with them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arrow::array::{AsArray as _, BooleanArray, UInt32Array, UInt64Array};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{UInt32Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use prometheus_client::metrics::histogram::Histogram;

use super::state::StateTopic;
use crate::Lsn;
use crate::checkpoint::CheckpointTracker;
use crate::contract::CommittedTransaction;
use crate::contract::columns::{COMMIT_LSN, SEQ};
use crate::produce::KafkaProducer;

/// How long a PostgreSQL transaction may keep its Kafka transaction open, in
/// commit intervals, before the Kafka transaction is committed in its middle.
const SPLIT_AFTER_INTERVALS: u32 = 10;

/// A Kafka transaction is split in the middle of PostgreSQL transactions only
/// when at most this many are half sent: one large transaction, not a backlog
/// of small ones whose commit markers are about to come (each would add an entry
/// to the position record).
const SPLIT_MAX_OPEN: usize = 16;

/// With nothing to send, how often (in commit intervals) a position that moved
/// (keepalives, filtered-out transactions) is committed alone, so the slot
/// advances without a state record every interval.
const IDLE_AFTER_INTERVALS: u32 = 10;

/// What a committed Kafka transaction reaches; the state topic's `position:<slot>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    /// The end LSN of the last PostgreSQL transaction held whole.
    pub end_lsn: u64,
    /// PostgreSQL transactions after it partly held: commit LSN → `schema.table`
    /// → the highest `_seq` of that table's changes held.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partial: BTreeMap<u64, BTreeMap<String, u32>>,
}

/// The worker's exactly-once bookkeeping.
pub(super) struct ExactlyOnce {
    interval: Duration,
    /// Past this age a Kafka transaction is committed whatever is half sent, well
    /// before the broker aborts it (half the transaction timeout).
    hard_limit: Duration,
    /// `weir_kafka_commit_seconds`.
    commit_seconds: Histogram,
    commit_timeout: Duration,
    state: StateTopic,
    /// Everything handed to the producer: what the next commit records.
    sent: Position,
    /// The end the last commit recorded.
    committed_end: u64,
    last_commit: Instant,
    /// Initial-snapshot reads were sent since the last chunk ended: no commit may
    /// split the chunk.
    chunk_open: bool,
}

impl ExactlyOnce {
    /// Bookkeeping resuming from `start` (the state topic's position, or nothing).
    pub(super) fn new(
        interval: Duration,
        transaction_timeout: Duration,
        commit_timeout: Duration,
        state: StateTopic,
        start: Position,
        commit_seconds: Histogram,
    ) -> Self {
        Self {
            interval,
            hard_limit: transaction_timeout / 2,
            commit_seconds,
            commit_timeout,
            state,
            committed_end: start.end_lsn,
            sent: start,
            last_commit: Instant::now(),
            chunk_open: false,
        }
    }

    /// Drops the rows of `batch` (streamed changes of `table`) that a committed
    /// Kafka transaction already holds: the first part of a transaction that was
    /// split, sent again after a restart.
    pub(super) fn skip_sent(
        &self,
        batch: RecordBatch,
        table: &str,
    ) -> anyhow::Result<Option<RecordBatch>> {
        if self.sent.partial.is_empty() {
            return Ok(Some(batch));
        }
        let (commit_lsns, seqs) = places(&batch)?;
        let held = |row: usize| {
            self.sent
                .partial
                .get(&commit_lsns.value(row))
                .and_then(|tables| tables.get(table))
                .is_some_and(|seq| seqs.value(row) <= *seq)
        };
        if !(0..batch.num_rows()).any(held) {
            return Ok(Some(batch));
        }
        let keep: BooleanArray = (0..batch.num_rows()).map(|row| Some(!held(row))).collect();
        let kept = filter_record_batch(&batch, &keep)?;
        Ok((kept.num_rows() > 0).then_some(kept))
    }

    /// `batch` (source rows of `table`, before the plugins) went into the open
    /// Kafka transaction, whatever the plugins made of it.
    pub(super) fn sent(&mut self, batch: &RecordBatch, table: &str) -> anyhow::Result<()> {
        let (commit_lsns, seqs) = places(batch)?;
        let commit_lsns = commit_lsns.values();
        let mut row = 0;
        // One map entry per run of a transaction's rows, not per row.
        while row < commit_lsns.len() {
            let commit_lsn = commit_lsns[row];
            let run = commit_lsns[row..]
                .iter()
                .take_while(|lsn| **lsn == commit_lsn)
                .count();
            let highest = seqs.values()[row..row + run]
                .iter()
                .copied()
                .max()
                .context("an empty run")?;
            let tables = self.sent.partial.entry(commit_lsn).or_default();
            match tables.get_mut(table) {
                Some(seq) => *seq = (*seq).max(highest),
                None => {
                    tables.insert(table.to_owned(), highest);
                }
            }
            row += run;
        }
        Ok(())
    }

    /// Initial-snapshot reads were sent: their chunk is open until its
    /// [`ExactlyOnce::chunk_read`].
    pub(super) fn reads_sent(&mut self) {
        self.chunk_open = true;
    }

    /// A chunk's reads were all sent.
    pub(super) fn chunk_read(&mut self) {
        self.chunk_open = false;
    }

    /// The source's commit marker: `transaction` is whole in what was sent.
    pub(super) fn committed(&mut self, transaction: &CommittedTransaction) {
        let end = transaction.end_lsn.0;
        if end > self.sent.end_lsn {
            self.sent.end_lsn = end;
        }
        // Markers come in commit order: every transaction up to this one is whole.
        while let Some(first) = self.sent.partial.first_entry() {
            if *first.key() > transaction.commit_lsn.0 {
                break;
            }
            first.remove();
        }
    }

    /// Whether a commit is due now: the interval passed, no snapshot chunk is half
    /// sent, and either no PostgreSQL transaction is half sent, or a few have kept
    /// the Kafka transaction open for many intervals, or it nears the broker's
    /// timeout (or, less often, the position moved with nothing to send, as when
    /// every row was filtered out).
    pub(super) fn due(&self, producer: &KafkaProducer) -> bool {
        self.due_at(producer.transaction_age())
    }

    /// [`ExactlyOnce::due`] for an open Kafka transaction of `age` (`None`: none).
    fn due_at(&self, age: Option<Duration>) -> bool {
        if self.chunk_open {
            return false;
        }
        match age {
            Some(age) => {
                age >= self.interval
                    && (self.sent.partial.is_empty()
                        || (age >= self.interval * SPLIT_AFTER_INTERVALS
                            && self.sent.partial.len() <= SPLIT_MAX_OPEN)
                        || age >= self.hard_limit)
            }
            None => {
                self.sent.end_lsn > self.committed_end
                    && self.last_commit.elapsed() >= self.interval * IDLE_AFTER_INTERVALS
            }
        }
    }

    /// At a stop or a reconnect: commits what was sent, unless a snapshot chunk
    /// is half sent, which is aborted (after its messages were delivered, so none
    /// is purged): the chunk is read again, whole, on the next start.
    pub(super) fn close(
        &mut self,
        producer: &KafkaProducer,
        tracker: &CheckpointTracker,
    ) -> anyhow::Result<()> {
        if !self.chunk_open {
            return self.commit(producer, tracker);
        }
        producer
            .flush(self.commit_timeout)
            .context("delivering the half-sent snapshot chunk before aborting it")?;
        producer.abort_transaction(self.commit_timeout)?;
        self.chunk_open = false;
        Ok(())
    }

    /// Records the position in the open Kafka transaction and commits it; then the
    /// tracker may confirm up to the position's end.
    pub(super) fn commit(
        &mut self,
        producer: &KafkaProducer,
        tracker: &CheckpointTracker,
    ) -> anyhow::Result<()> {
        if producer.transaction_age().is_none() && self.sent.end_lsn <= self.committed_end {
            return Ok(());
        }
        let _span = tracing::info_span!("commit", stage = "commit").entered();
        self.state
            .save_position(producer, &self.sent)
            .context("recording the position in the Kafka transaction")?;
        let started = Instant::now();
        producer.commit_transaction(self.commit_timeout)?;
        self.commit_seconds.observe(started.elapsed().as_secs_f64());
        self.committed_end = self.sent.end_lsn;
        self.last_commit = Instant::now();
        tracker.release(Lsn(self.committed_end));
        Ok(())
    }
}

/// A batch's `_commit_lsn` and `_seq`: where each row sits in the WAL.
fn places(batch: &RecordBatch) -> anyhow::Result<(&UInt64Array, &UInt32Array)> {
    let commit_lsns = batch
        .column_by_name(COMMIT_LSN)
        .and_then(|c| c.as_primitive_opt::<UInt64Type>())
        .context("a source batch without _commit_lsn")?;
    let seqs = batch
        .column_by_name(SEQ)
        .and_then(|c| c.as_primitive_opt::<UInt32Type>())
        .context("a source batch without _seq")?;
    Ok((commit_lsns, seqs))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn bookkeeping(start: Position) -> ExactlyOnce {
        ExactlyOnce::new(
            Duration::from_millis(100),
            Duration::from_secs(60),
            Duration::from_secs(10),
            StateTopic::new("state", "slot"),
            start,
            Histogram::new([0.1]),
        )
    }

    /// Only the columns the bookkeeping reads.
    fn rows(commits: &[u64], seqs: &[u32]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new(COMMIT_LSN, DataType::UInt64, false),
            Field::new(SEQ, DataType::UInt32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt64Array::from(commits.to_vec())),
                Arc::new(UInt32Array::from(seqs.to_vec())),
            ],
        )
        .expect("batch")
    }

    #[test]
    fn a_split_transaction_keeps_the_highest_seq_per_table_until_its_marker() {
        let mut once = bookkeeping(Position::default());
        once.sent(&rows(&[10, 10, 20], &[0, 2, 0]), "public.a")
            .expect("sent");
        once.sent(&rows(&[10], &[1]), "public.b").expect("sent");
        once.sent(&rows(&[10], &[3]), "public.a").expect("sent");
        assert_eq!(once.sent.partial[&10]["public.a"], 3);
        assert_eq!(once.sent.partial[&10]["public.b"], 1);
        once.committed(&CommittedTransaction {
            xid: 1,
            commit_lsn: Lsn(10),
            end_lsn: Lsn(18),
            rows: 4,
        });
        assert_eq!(once.sent.end_lsn, 18);
        assert_eq!(once.sent.partial.keys().copied().collect::<Vec<_>>(), [20]);
    }

    #[test]
    fn rows_a_committed_kafka_transaction_holds_are_skipped_and_the_rest_kept() {
        let mut partial = BTreeMap::new();
        partial.insert(10, BTreeMap::from([("public.a".to_owned(), 4)]));
        let once = bookkeeping(Position {
            end_lsn: 5,
            partial,
        });
        let kept = once
            .skip_sent(rows(&[10, 10, 10, 20], &[3, 4, 5, 0]), "public.a")
            .expect("filtered")
            .expect("rows left");
        let seqs = places(&kept).expect("columns").1.values().to_vec();
        assert_eq!(seqs, [5, 0]);
        // Another table's rows of the same transaction were not held.
        let other = once
            .skip_sent(rows(&[10], &[0]), "public.b")
            .expect("filtered");
        assert_eq!(other.map(|b| b.num_rows()), Some(1));
        // All held: nothing left.
        let none = once
            .skip_sent(rows(&[10, 10], &[0, 1]), "public.a")
            .expect("filtered");
        assert!(none.is_none());
    }

    #[test]
    fn commits_wait_for_whole_transactions_unless_one_is_large_or_the_broker_would_abort() {
        let ms = Duration::from_millis;
        let mut once = bookkeeping(Position::default());
        assert!(!once.due_at(Some(ms(50))), "before the interval");
        assert!(once.due_at(Some(ms(100))), "nothing half sent");
        once.sent(&rows(&[10], &[0]), "public.a").expect("sent");
        assert!(!once.due_at(Some(ms(500))), "a transaction half sent");
        assert!(
            once.due_at(Some(ms(1_000))),
            "one large transaction is split"
        );
        let many: Vec<u64> = (100..200).collect();
        once.sent(&rows(&many, &vec![0; many.len()]), "public.a")
            .expect("sent");
        assert!(
            !once.due_at(Some(ms(1_000))),
            "a backlog of small ones waits for their markers"
        );
        assert!(once.due_at(Some(ms(30_000))), "half the broker's timeout");
        once.reads_sent();
        assert!(
            !once.due_at(Some(ms(30_000))),
            "never inside a snapshot chunk"
        );
        once.chunk_read();
        assert!(!once.due_at(None), "nothing open, the position unmoved");
    }

    #[test]
    fn the_position_round_trips_through_json() {
        let mut partial = BTreeMap::new();
        partial.insert(u64::MAX, BTreeMap::from([("s.t".to_owned(), 7)]));
        let position = Position {
            end_lsn: 42,
            partial,
        };
        let text = serde_json::to_string(&position).expect("json");
        let back: Position = serde_json::from_str(&text).expect("parsed");
        assert_eq!(back, position);
        let empty: Position = serde_json::from_str(r#"{"end_lsn":1}"#).expect("parsed");
        assert!(empty.partial.is_empty());
    }
}
