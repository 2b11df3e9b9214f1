//! What the PostgreSQL source emits, and why it stops.

use std::time::Duration;

use arrow::record_batch::RecordBatch;

use super::batcher::{BatcherError, CommittedTransaction};
use super::catalog::CatalogError;
use super::connect::ConnectError;
use super::pgoutput::DecodeError;
use super::replication::ReplicationError;
use super::snapshot::initial::SnapshotEvent;
use super::snapshot::parallel::ChunkRead;
use super::snapshot::table::SnapshotError;
use crate::contract::{SchemaChange, SnapshotMarks};
use crate::lsn::Lsn;

/// Why the progress loader failed: the loader's own error, kept whole.
pub type LoadError = Box<dyn std::error::Error + Send + Sync>;

/// What the source emits, in order.
#[derive(Debug, Clone)]
pub enum SourceEvent {
    /// A replication session started streaming after `start`. After a reconnect the
    /// stream rewinds to the last confirmed position: transactions emitted but not
    /// confirmed before come again.
    SessionStarted {
        /// Changes committed after this position follow.
        start: Lsn,
    },
    /// Changes of one table.
    Batch(RecordBatch),
    /// Snapshot reads (`_op = r`) of one table, and where they sit in their
    /// snapshot.
    Reads {
        /// The rows.
        batch: RecordBatch,
        /// Their place: first or last of a table or of the snapshot, or incremental.
        marks: SnapshotMarks,
    },
    /// Every change of this transaction, and of all earlier ones, was in an earlier
    /// `Batch`. A transaction without changes of the selected tables (or an idle
    /// stretch of WAL) appears with `rows == 0`; confirming it lets the slot advance.
    Committed(CommittedTransaction),
    /// A DDL statement or TRUNCATE of a selected table (`source.postgres.ddl:
    /// capture`), before its transaction's `Committed`.
    SchemaChange(Box<SchemaChange>),
    /// Progress of the initial snapshot, whose rows come as `Batch`es with
    /// `_op = r`, all before the first streamed change, and end with a `Committed`
    /// just before the slot's start.
    Snapshot(SnapshotEvent),
}

impl From<RecordBatch> for SourceEvent {
    fn from(batch: RecordBatch) -> Self {
        SourceEvent::Batch(batch)
    }
}

impl From<(RecordBatch, SnapshotMarks)> for SourceEvent {
    fn from((batch, marks): (RecordBatch, SnapshotMarks)) -> Self {
        SourceEvent::Reads { batch, marks }
    }
}

impl From<ChunkRead> for SourceEvent {
    fn from(chunk: ChunkRead) -> Self {
        SourceEvent::Snapshot(SnapshotEvent::ChunkRead(chunk))
    }
}

impl From<SnapshotEvent> for SourceEvent {
    fn from(event: SnapshotEvent) -> Self {
        SourceEvent::Snapshot(event)
    }
}

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The replication connection failed.
    #[error(transparent)]
    Replication(#[from] ReplicationError),
    /// The control-plane connection or a catalog operation failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// pgoutput sent something weir cannot decode.
    #[error("decoding the replication stream failed")]
    Decode(#[from] DecodeError),
    /// A change could not be batched.
    #[error(transparent)]
    Batch(#[from] BatcherError),
    /// Reading the initial snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The downstream stage is gone.
    #[error("the downstream stage stopped")]
    DownstreamClosed,
    /// A promoted standby lacks changes weir already sent.
    #[error(transparent)]
    Diverged(#[from] super::timeline::Diverged),
    /// The slot an earlier session streamed from is gone.
    #[error(
        "slot {slot} is gone from the server weir reconnected to (a standby promoted without a synchronised copy of it, or a drop): what was committed after {confirmed} until a new slot exists is out of weir's reach. weir stops rather than create it afresh and skip those changes: restart weir to create it with a new snapshot, or set source.postgres.snapshot: when_needed to have weir do that by itself (and on PostgreSQL 17+ let standbys keep a copy: weir check names what they need)"
    )]
    SlotLost {
        /// The slot.
        slot: String,
        /// The last position weir confirmed from it.
        confirmed: Lsn,
    },
    /// The settings ask for something this server cannot do.
    #[error("{0}")]
    Config(String),
    /// Another weir holds the slot's lock (see `ownership`): it streams or
    /// snapshots the slot. Retried, so a standby takes over when it stops.
    #[error("slot {slot} belongs to another running weir; waiting for it to stop")]
    SlotOwned {
        /// The slot.
        slot: String,
    },
    /// The snapshot's progress could not be read or recorded (not retried: the
    /// loader and the saver have their own timeouts).
    #[error("reading or recording the snapshot's progress: {0}")]
    Progress(#[source] LoadError),
    /// Retrying did not help within the retry window.
    #[error("gave up after retrying for {after:?}")]
    RetriesExhausted {
        /// How long it kept failing.
        after: Duration,
        /// The last failure.
        #[source]
        last: Box<SourceError>,
    },
}

impl SourceError {
    /// Whether a new session may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SourceError::Replication(error) => error.is_retryable(),
            SourceError::Catalog(CatalogError::Query(error))
            | SourceError::Catalog(CatalogError::Connect(ConnectError::Postgres(error))) => {
                control_error_is_retryable(error)
            }
            SourceError::Catalog(CatalogError::Replication(error)) => error.is_retryable(),
            SourceError::Snapshot(SnapshotError::Postgres { source, .. }) => {
                control_error_is_retryable(source)
            }
            SourceError::Snapshot(SnapshotError::Connect(_)) | SourceError::SlotOwned { .. } => {
                true
            }
            _ => false,
        }
    }
}

fn control_error_is_retryable(error: &tokio_postgres::Error) -> bool {
    if error.is_closed() {
        return true;
    }
    match error.code() {
        Some(code) => {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P") || code.starts_with("53")
        }
        // No SQLSTATE: the connection itself failed (refused, reset, timed out).
        None => true,
    }
}
