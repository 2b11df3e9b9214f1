//! How far the initial snapshot got, kept where a restarted or standby weir finds
//! it (the pipeline persists it in Kafka): a restart reads only the chunks that
//! were not acknowledged yet instead of starting over.
//!
//! A chunk counts as done once Kafka acknowledged every row of it, so the record
//! may trail the truth (the chunk is read again, duplicates are harmless under
//! at-least-once) but never run ahead of it (nothing is skipped).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

use super::parallel::Chunk;

/// When a pipeline reads its tables' existing rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// When weir creates the slot (and to finish an interrupted snapshot), then
    /// stream.
    #[default]
    Initial,
    /// Stream only.
    Never,
    /// Snapshot, then stop: no slot, no streaming.
    InitialOnly,
    /// As `initial`, and also whenever no finished snapshot is recorded for the
    /// slot (a slot created by someone else, or the state lost).
    WhenNeeded,
}

/// Progress of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// The plan: ranges that together cover the table.
    pub chunks: Vec<Chunk>,
    /// Per chunk of `chunks`: acknowledged by Kafka.
    pub done: Vec<bool>,
    /// Rows acknowledged so far.
    pub rows: u64,
    /// The planner's estimate of the table's rows, for percentages.
    pub estimated_rows: u64,
}

impl TableProgress {
    /// Every chunk is acknowledged.
    pub fn is_complete(&self) -> bool {
        !self.chunks.is_empty() && self.done.iter().all(|done| *done)
    }

    /// The chunks still to read, with their index in the plan.
    pub fn remaining(&self) -> Vec<(usize, Chunk)> {
        self.chunks
            .iter()
            .enumerate()
            .filter(|(index, _)| !self.done.get(*index).copied().unwrap_or(false))
            .map(|(index, chunk)| (index, chunk.clone()))
            .collect()
    }
}

/// Progress of the snapshot of one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotProgress {
    /// The slot whose consistent point the snapshot meets (empty for
    /// `initial_only`, which has none).
    pub slot: String,
    /// Every selected table was read and acknowledged.
    pub complete: bool,
    /// By `schema.table`.
    pub tables: BTreeMap<String, TableProgress>,
    /// The MVCC snapshot the first run read (`pg_current_snapshot()`): a
    /// resumed run reads only row versions it saw (see `visibility.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_snapshot: Option<String>,
}

impl SnapshotProgress {
    /// A snapshot of `slot` starts from nothing.
    pub fn restart(&mut self, slot: &str) {
        *self = SnapshotProgress {
            slot: slot.to_owned(),
            ..SnapshotProgress::default()
        };
    }

    /// An unfinished snapshot of `slot` is recorded.
    pub fn is_unfinished(&self, slot: &str) -> bool {
        self.slot == slot && !self.complete
    }

    /// A finished snapshot of `slot` is recorded.
    pub fn is_finished(&self, slot: &str) -> bool {
        self.slot == slot && self.complete
    }

    /// Rows acknowledged and estimated, over all tables.
    pub fn totals(&self) -> (u64, u64) {
        self.tables.values().fold((0, 0), |(rows, estimated), t| {
            (rows + t.rows, estimated + t.estimated_rows.max(t.rows))
        })
    }
}

/// What the pipeline recorded for the source, read at each session's start.
#[derive(Debug, Clone, Default)]
pub struct RecordedProgress {
    /// The initial snapshot's progress.
    pub snapshot: SnapshotProgress,
    /// The unfinished snapshots taken while streaming.
    pub incremental: Option<IncrementalProgress>,
}

/// The snapshots taken while streaming (`weir snapshot`, tables that joined the
/// publication) that are not finished, as far as Kafka acknowledged them. The
/// slot moves on while they run, so without this record a weir killed during one
/// would never finish it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalProgress {
    /// The slot whose stream the chunks are watermarked against.
    pub slot: String,
    /// In the order they are read; the first may be part way.
    pub tables: Vec<IncrementalTable>,
}

/// One table of [`IncrementalProgress`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncrementalTable {
    /// `schema.table`.
    pub table: String,
    /// The greatest key of the chunks acknowledged, as SQL literals in key
    /// order; `None`: no chunk yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<String>>,
    /// Rows of it acknowledged so far.
    #[serde(default)]
    pub rows: u64,
    /// It joined the publication with this request, so its first chunk waits
    /// for the transactions writing it then.
    #[serde(default)]
    pub joined: bool,
}

impl IncrementalProgress {
    /// The record for `slot`, or an empty one when `recorded` belongs to another
    /// slot (a pipeline that moved to a new slot starts over).
    pub fn for_slot(recorded: Option<IncrementalProgress>, slot: &str) -> Self {
        match recorded {
            Some(recorded) if recorded.slot == slot => recorded,
            _ => IncrementalProgress {
                slot: slot.to_owned(),
                tables: Vec::new(),
            },
        }
    }
}

/// Locks the source's progress; a panic elsewhere does not make it unreadable.
pub(crate) fn lock(progress: &Mutex<SnapshotProgress>) -> MutexGuard<'_, SnapshotProgress> {
    progress.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_skips_done_chunks_and_survives_a_round_trip() {
        let mut table = TableProgress {
            chunks: vec![
                Chunk::Key {
                    column: "id".into(),
                    start: None,
                    end: Some(10),
                },
                Chunk::Key {
                    column: "id".into(),
                    start: Some(10),
                    end: None,
                },
            ],
            done: vec![true, false],
            rows: 9,
            estimated_rows: 20,
        };
        assert_eq!(table.remaining().len(), 1);
        assert_eq!(table.remaining()[0].0, 1);
        assert!(!table.is_complete());
        let mut progress = SnapshotProgress {
            slot: "s".into(),
            ..Default::default()
        };
        progress.tables.insert("public.t".into(), table.clone());
        let json = serde_json::to_string(&progress).expect("serialize");
        let back: SnapshotProgress = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, progress);
        assert!(back.is_unfinished("s") && !back.is_unfinished("other"));
        table.done[1] = true;
        assert!(table.is_complete());
    }
}
