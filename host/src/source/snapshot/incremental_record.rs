//! Recording the snapshots taken while streaming, so a restart finishes them.
//!
//! The slot moves past a snapshot request as soon as the changes after it are
//! acknowledged, long before the table is read to its end; a weir killed in
//! between would never read the rest. The record (in the pipeline's state topic)
//! names the tables still to read and, for the one being read, the greatest key
//! of the chunks Kafka acknowledged: a restart goes on after it.
//!
//! Two rules keep it from losing a row: a table is recorded *before* the stream
//! passes its request (the session waits for the record, so the slot cannot be
//! confirmed past the request first), and a chunk is recorded only once the
//! acknowledged position reached it. The record may trail the truth (a chunk read
//! again), never run ahead of it.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::progress::{IncrementalProgress, IncrementalTable};
use crate::Lsn;
use crate::source::event::{LoadError, SourceError};

/// Records the incremental snapshots' progress and returns once it is stored.
/// Blocking.
pub type IncrementalSaver =
    std::sync::Arc<dyn Fn(&IncrementalProgress) -> Result<(), LoadError> + Send + Sync>;

/// How often acknowledged chunks are recorded at most: each record is a round
/// trip to Kafka, and a record trailing by a second only means a chunk read again.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// What happened at a position, recorded once it is acknowledged.
#[derive(Debug)]
enum Step {
    /// A chunk of `table` ending at key `after`, `rows` rows, was sent.
    Chunk {
        table: String,
        after: Vec<String>,
        rows: u64,
    },
    /// `table` was read to its end (or is gone).
    Ended { table: String },
}

/// The incremental snapshots as acknowledged, and how to record them.
pub struct IncrementalRecord {
    durable: IncrementalProgress,
    pending: VecDeque<(Lsn, Step)>,
    saver: Option<IncrementalSaver>,
    /// `durable` changed since it was last recorded.
    dirty: bool,
    last_saved: Instant,
}

impl std::fmt::Debug for IncrementalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncrementalRecord")
            .field("durable", &self.durable)
            .field("pending", &self.pending)
            .field("records", &self.saver.is_some())
            .finish_non_exhaustive()
    }
}

impl IncrementalRecord {
    /// Starts from what was recorded for `slot`; without a saver nothing is
    /// recorded (no state topic), and a restart forgets unfinished snapshots.
    pub fn new(
        recorded: Option<IncrementalProgress>,
        slot: &str,
        saver: Option<IncrementalSaver>,
    ) -> Self {
        IncrementalRecord {
            durable: IncrementalProgress::for_slot(recorded, slot),
            pending: VecDeque::new(),
            saver,
            dirty: false,
            last_saved: Instant::now(),
        }
    }

    /// The snapshots a restart resumes.
    pub fn unfinished(&self) -> &[IncrementalTable] {
        &self.durable.tables
    }

    /// Tables were asked for: recorded before the stream goes past the request.
    pub async fn asked(&mut self, tables: Vec<(String, bool)>) -> Result<(), SourceError> {
        if tables.is_empty() {
            return Ok(());
        }
        for (table, joined) in tables {
            if !self.durable.tables.iter().any(|t| t.table == table) {
                self.durable.tables.push(IncrementalTable {
                    table,
                    after: None,
                    rows: 0,
                    joined,
                });
            }
        }
        self.save().await
    }

    /// A chunk of `table` up to key `after` went out at `at`.
    pub fn chunk_sent(&mut self, at: Lsn, table: &str, after: Vec<String>, rows: u64) {
        self.pending.push_back((
            at,
            Step::Chunk {
                table: table.to_owned(),
                after,
                rows,
            },
        ));
    }

    /// `table` needs nothing more once everything up to `at` is acknowledged.
    pub fn ended(&mut self, at: Lsn, table: &str) {
        self.pending.push_back((
            at,
            Step::Ended {
                table: table.to_owned(),
            },
        ));
    }

    /// Kafka acknowledged everything up to `flushed`: the steps there count, and
    /// are recorded now and then (at once when a table ended, or `force`).
    pub async fn acknowledged(&mut self, flushed: Lsn, force: bool) -> Result<(), SourceError> {
        let mut ended = false;
        while let Some((at, _)) = self.pending.front() {
            if *at > flushed {
                break;
            }
            let Some((_, step)) = self.pending.pop_front() else {
                break;
            };
            match step {
                Step::Chunk { table, after, rows } => {
                    if let Some(entry) = self.durable.tables.iter_mut().find(|t| t.table == table) {
                        entry.after = Some(after);
                        entry.rows += rows;
                    }
                }
                Step::Ended { table } => {
                    self.durable.tables.retain(|t| t.table != table);
                    ended = true;
                }
            }
            self.dirty = true;
        }
        if self.dirty && (ended || force || self.last_saved.elapsed() >= SAVE_EVERY) {
            self.save().await?;
        }
        Ok(())
    }

    async fn save(&mut self) -> Result<(), SourceError> {
        let Some(saver) = self.saver.clone() else {
            self.dirty = false;
            return Ok(());
        };
        let progress = self.durable.clone();
        tokio::task::spawn_blocking(move || saver(&progress))
            .await
            .map_err(|e| SourceError::Progress(Box::new(e)))?
            .map_err(SourceError::Progress)?;
        self.dirty = false;
        self.last_saved = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (IncrementalSaver, Arc<Mutex<Vec<IncrementalProgress>>>) {
        let saved = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&saved);
        let saver: IncrementalSaver = Arc::new(move |progress: &IncrementalProgress| {
            sink.lock().expect("lock").push(progress.clone());
            Ok(())
        });
        (saver, saved)
    }

    #[tokio::test]
    async fn chunks_count_only_once_acknowledged_and_a_request_is_recorded_at_once() {
        let (saver, saved) = recorder();
        let mut record = IncrementalRecord::new(None, "s", Some(saver));
        record
            .asked(vec![("public.a".into(), false), ("public.b".into(), true)])
            .await
            .expect("asked");
        assert_eq!(
            saved.lock().expect("lock").len(),
            1,
            "recorded before going on"
        );

        record.chunk_sent(Lsn(100), "public.a", vec!["'10'".into()], 10);
        record.chunk_sent(Lsn(200), "public.a", vec!["'20'".into()], 10);
        record.ended(Lsn(200), "public.a");
        record.acknowledged(Lsn(150), true).await.expect("ack");
        let last = saved.lock().expect("lock").last().cloned().expect("saved");
        assert_eq!(last.tables[0].after, Some(vec!["'10'".to_owned()]));
        assert_eq!(last.tables[0].rows, 10);

        record.acknowledged(Lsn(200), false).await.expect("ack");
        let last = saved.lock().expect("lock").last().cloned().expect("saved");
        assert_eq!(last.tables.len(), 1, "a ended: recorded without waiting");
        assert_eq!(last.tables[0].table, "public.b");
        assert!(last.tables[0].joined);
    }

    #[test]
    fn a_record_of_another_slot_is_not_resumed() {
        let recorded = IncrementalProgress {
            slot: "old".into(),
            tables: vec![IncrementalTable {
                table: "public.a".into(),
                ..IncrementalTable::default()
            }],
        };
        let record = IncrementalRecord::new(Some(recorded.clone()), "new", None);
        assert!(record.unfinished().is_empty());
        let record = IncrementalRecord::new(Some(recorded), "old", None);
        assert_eq!(record.unfinished().len(), 1);
    }
}
