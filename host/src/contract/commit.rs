//! The commit marker: the source's word that a transaction has no more rows, and
//! where its end lies, which the checkpoint confirms once Kafka has them all.

use weir_pgoutput::Lsn;

/// A transaction whose changes have all been emitted in batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedTransaction {
    /// The transaction id.
    pub xid: u32,
    /// The commit record's position: `_commit_lsn` of its rows.
    pub commit_lsn: Lsn,
    /// Just past the commit record: the position to confirm to the server once every
    /// row of this and all earlier transactions is durable downstream.
    pub end_lsn: Lsn,
    /// Rows of the transaction in the emitted batches.
    pub rows: u64,
}
