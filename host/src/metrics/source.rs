//! The source's live figures: written by the source as it streams, read by the
//! metrics endpoint for the lag gauges. Here, beside the stages, so the source
//! writes them without the metrics importing the source.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use crate::clock::now_unix_micros;

/// Live figures of the source, for metrics and lag reporting.
#[derive(Debug, Default)]
pub struct SourceStats {
    /// The server's end of WAL, as last reported.
    pub server_wal_end: AtomicU64,
    /// The last position received.
    pub received_lsn: AtomicU64,
    /// The last position confirmed to the server.
    pub confirmed_lsn: AtomicU64,
    /// Commit time (µs since the Unix epoch) of the last transaction or heartbeat received.
    pub last_commit_time_micros: AtomicI64,
    /// Rows emitted.
    pub rows: AtomicU64,
    /// Batches emitted.
    pub batches: AtomicU64,
    /// End of the last transaction with rows handed downstream: what Kafka may
    /// hold, to compare with a promoted standby's history.
    pub last_commit_sent: AtomicU64,
    /// A replication session streams now (false while weir reconnects).
    pub streaming: AtomicBool,
    /// Sessions started (1 + reconnects).
    pub sessions: AtomicU64,
    /// `TRUNCATE`s of a table left out (`skipped_operations` holds `t`).
    pub truncates_skipped: AtomicU64,
    /// WAL the slot holds on the server (from its `restart_lsn`), as last looked
    /// at while streaming.
    pub slot_retained_wal_bytes: AtomicU64,
    /// WAL the server may still write before the slot is in danger
    /// (`safe_wal_size`); -1 without `max_slot_wal_keep_size`.
    pub slot_safe_wal_bytes: AtomicI64,
    /// `max_slot_wal_keep_size` in bytes; -1 for unlimited.
    pub slot_wal_limit_bytes: AtomicI64,
}

impl SourceStats {
    /// Replication lag in bytes: WAL the server has that is not confirmed yet.
    pub fn lag_bytes(&self) -> u64 {
        self.server_wal_end
            .load(Ordering::Relaxed)
            .saturating_sub(self.confirmed_lsn.load(Ordering::Relaxed))
    }

    /// Replication lag in seconds: age of the newest commit (or heartbeat) received.
    pub fn lag_seconds(&self) -> Option<f64> {
        let commit = self.last_commit_time_micros.load(Ordering::Relaxed);
        (commit > 0).then(|| (now_unix_micros() - commit).max(0) as f64 / 1e6)
    }
}
