//! What the batcher and the spool of streamed transactions share: when a batch is
//! cut, and why batching failed. Its own module so neither imports the other.

use weir_pgoutput::Oid;

use crate::batch::BatchError;

/// Default rows per batch: large enough to amortise per-batch costs (plugin calls,
/// encoder setup), small enough to keep latency and memory low.
pub const DEFAULT_MAX_BATCH_ROWS: usize = 8192;
/// Default bytes per batch (as received): bounds memory when rows are wide.
pub const DEFAULT_MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;

/// When a table's pending rows are cut into a batch. Time-based cuts are the caller's:
/// it calls [`ChangeBatcher::flush`] when its linger interval passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Cut when this many rows are pending.
    pub max_rows: usize,
    /// Cut when the pending rows' received size reaches this many bytes.
    pub max_bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            max_rows: DEFAULT_MAX_BATCH_ROWS,
            max_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

/// Why a message could not be batched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatcherError {
    /// A row did not fit its table's batch.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// A change arrived outside Begin … Commit (or a streamed block).
    #[error("a change of relation {0} arrived outside a transaction")]
    OutsideTransaction(Oid),
    /// A change arrived for a relation never described by a Relation message.
    #[error("a change of relation {0} arrived before its Relation message")]
    UnknownRelation(Oid),
    /// A streamed transaction could not be written to or read from its spill file.
    #[error("spilling a streamed transaction to disk failed")]
    Spill(#[source] std::io::Error),
    /// Arrow rejected a spilled batch.
    #[error("Arrow failed on a spilled batch")]
    Arrow(#[from] arrow::error::ArrowError),
}
