//! The messages of PostgreSQL's `pgoutput` logical decoding plugin, protocol versions 1
//! to 4, as documented in "Logical Replication Message Formats".
//!
//! Fields mirror that documentation one for one and are documented here only where
//! weir adds meaning (units, conversions, what to confirm).
#![allow(missing_docs)]

use bytes::Bytes;

use crate::Lsn;

/// A PostgreSQL object id.
pub type Oid = u32;

/// A transaction id.
pub type Xid = u32;

/// Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00:00 UTC).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// A PostgreSQL timestamp (microseconds since 2000-01-01 UTC) as microseconds since
/// the Unix epoch.
pub fn unix_micros_from_pg(pg_micros: i64) -> i64 {
    pg_micros.saturating_add(PG_EPOCH_OFFSET_MICROS)
}

/// One decoded `pgoutput` message.
///
/// Messages that belong to a streamed in-progress transaction (protocol 2 and later,
/// between [`PgOutputMessage::StreamStart`] and [`PgOutputMessage::StreamStop`]) carry
/// that transaction's id in their `xid` field; elsewhere `xid` is `None` and the
/// transaction is the one opened by the last [`PgOutputMessage::Begin`].
#[derive(Debug, Clone, PartialEq)]
pub enum PgOutputMessage {
    Begin(Begin),
    Commit(Commit),
    Origin(Origin),
    Relation(Relation),
    Type(TypeInfo),
    Insert(Insert),
    Update(Update),
    Delete(Delete),
    Truncate(Truncate),
    Message(LogicalMessage),
    StreamStart(StreamStart),
    StreamStop,
    StreamCommit(Commit),
    StreamAbort(StreamAbort),
}

/// A transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Begin {
    /// The LSN of the commit record: the transaction's position in the stream.
    pub final_lsn: Lsn,
    /// Commit time in microseconds since the Unix epoch.
    pub commit_time_micros: i64,
    pub xid: Xid,
}

/// A transaction (or, as `StreamCommit`, a streamed transaction) committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commit {
    /// The streamed transaction's id; `None` for a plain `Commit`.
    pub xid: Option<Xid>,
    pub flags: u8,
    /// The LSN of the commit record.
    pub commit_lsn: Lsn,
    /// The LSN just past the commit record: where the next transaction may start. This
    /// is the position to confirm once the transaction is durable downstream.
    pub end_lsn: Lsn,
    /// Commit time in microseconds since the Unix epoch.
    pub commit_time_micros: i64,
}

/// The transaction came from another node (replication origin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub commit_lsn: Lsn,
    pub name: String,
}

/// A table's shape as the publisher sees it. Sent before the first change of a table
/// in a session and again whenever its definition changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub xid: Option<Xid>,
    pub oid: Oid,
    pub namespace: String,
    pub name: String,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<RelationColumn>,
}

/// What an update or delete sends of the old row (`ALTER TABLE … REPLICA IDENTITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaIdentity {
    /// The primary key columns.
    Default,
    /// Nothing.
    Nothing,
    /// The whole old row.
    Full,
    /// The columns of a chosen unique index.
    Index,
}

/// One column of a [`Relation`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Part of the replica identity (the key sent for updates and deletes).
    pub is_key: bool,
    pub name: String,
    pub type_oid: Oid,
    /// `atttypmod`: e.g. varchar length + 4, or numeric precision and scale; -1 if none.
    pub type_modifier: i32,
}

/// A non-builtin type used by a following relation (enums, domains, composites…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    pub xid: Option<Xid>,
    pub oid: Oid,
    pub namespace: String,
    pub name: String,
}

/// A row was inserted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub xid: Option<Xid>,
    pub relation: Oid,
    pub new: Tuple,
}

/// A row was updated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub xid: Option<Xid>,
    pub relation: Oid,
    /// The old key or row, when the replica identity provides it and (for a key) it
    /// changed.
    pub old: Option<OldTuple>,
    pub new: Tuple,
}

/// A row was deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub xid: Option<Xid>,
    pub relation: Oid,
    pub old: OldTuple,
}

/// The old image sent with an update or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OldTuple {
    /// Only the replica identity columns are set; the others are null.
    Key(Tuple),
    /// The whole old row (`REPLICA IDENTITY FULL`).
    Full(Tuple),
}

impl OldTuple {
    /// The tuple, whichever kind it is.
    pub fn tuple(&self) -> &Tuple {
        match self {
            OldTuple::Key(tuple) | OldTuple::Full(tuple) => tuple,
        }
    }
}

/// Tables were truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    pub xid: Option<Xid>,
    pub cascade: bool,
    pub restart_identity: bool,
    pub relations: Vec<Oid>,
}

/// A message written with `pg_logical_emit_message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalMessage {
    pub xid: Option<Xid>,
    /// Written inside a transaction, and delivered with it on commit.
    pub transactional: bool,
    pub lsn: Lsn,
    pub prefix: String,
    pub content: Bytes,
}

/// A block of a streamed in-progress transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStart {
    pub xid: Xid,
    /// The first block of this transaction.
    pub first_segment: bool,
}

/// A streamed transaction, or one of its subtransactions, was rolled back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAbort {
    pub xid: Xid,
    /// Equal to `xid` when the whole transaction aborted.
    pub subxid: Xid,
    /// Sent by protocol 4 with parallel streaming.
    pub abort_lsn: Option<Lsn>,
    pub abort_time_micros: Option<i64>,
}

/// The column values of one row image, as sent: a validated slice of the message.
///
/// Values are read lazily with [`Tuple::values`], borrowing from the message buffer,
/// so decoding a row allocates nothing per column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tuple {
    /// The column entries, starting after the column count.
    pub(crate) data: Bytes,
    pub(crate) column_count: u16,
}

/// One column value of a [`Tuple`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TupleValue<'a> {
    Null,
    /// A TOASTed value that did not change and was not sent.
    UnchangedToast,
    /// The value in the type's text output form.
    Text(&'a [u8]),
    /// The value in the type's binary send form (when `binary` was requested).
    Binary(&'a [u8]),
}

impl Tuple {
    /// The number of columns.
    pub fn len(&self) -> usize {
        usize::from(self.column_count)
    }

    /// The size of the column entries as received, in bytes (for byte-based limits).
    pub fn byte_len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tuple has no columns.
    pub fn is_empty(&self) -> bool {
        self.column_count == 0
    }

    /// The values in column order.
    pub fn values(&self) -> TupleValues<'_> {
        TupleValues {
            data: &self.data,
            remaining: self.column_count,
        }
    }

    /// A value's bytes as a zero-copy `Bytes` handle (for values kept beyond the row,
    /// like large text handed to Arrow without copying).
    pub fn slice_of(&self, value: &[u8]) -> Bytes {
        self.data.slice_ref(value)
    }
}

/// Builds [`Tuple`]s in pgoutput's layout from values read elsewhere (an initial
/// snapshot's `COPY` rows, TOASTed values read back), so they take the same path into ChangeBatches as
/// streamed rows. One buffer serves many rows: each [`TupleWriter::finish`] hands
/// out the bytes written since the previous one.
#[derive(Debug, Default)]
pub struct TupleWriter {
    buffer: bytes::BytesMut,
    count: u16,
}

impl TupleWriter {
    /// A null value.
    pub fn null(&mut self) {
        self.buffer.extend_from_slice(b"n");
        self.count = self.count.saturating_add(1);
    }

    /// A value in its type's text form. Values of over 4 GiB cannot occur
    /// (PostgreSQL's limit is 1 GiB) and are cut at the length field's maximum.
    pub fn text(&mut self, value: &[u8]) {
        self.value(b't', value);
    }

    /// A value in its type's binary form (`typsend`), as binary `COPY` sends it.
    pub fn binary(&mut self, value: &[u8]) {
        self.value(b'b', value);
    }

    /// A TOASTed value left unchanged and not sent.
    pub fn unchanged_toast(&mut self) {
        self.buffer.extend_from_slice(b"u");
        self.count = self.count.saturating_add(1);
    }

    fn value(&mut self, kind: u8, value: &[u8]) {
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.buffer.extend_from_slice(&[kind]);
        self.buffer.extend_from_slice(&length.to_be_bytes());
        self.buffer
            .extend_from_slice(&value[..usize::try_from(length).unwrap_or(value.len())]);
        self.count = self.count.saturating_add(1);
    }

    /// The tuple of the values written since the last call.
    pub fn finish(&mut self) -> Tuple {
        let column_count = std::mem::take(&mut self.count);
        Tuple {
            data: self.buffer.split().freeze(),
            column_count,
        }
    }
}

/// Iterator over a [`Tuple`]'s values.
#[derive(Debug, Clone)]
pub struct TupleValues<'a> {
    data: &'a [u8],
    remaining: u16,
}

impl<'a> Iterator for TupleValues<'a> {
    type Item = TupleValue<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        // The layout was validated when the tuple was decoded; a short buffer here
        // cannot happen, and ends the iteration rather than panicking.
        let (&kind, rest) = self.data.split_first()?;
        self.remaining -= 1;
        let value = match kind {
            b'n' => {
                self.data = rest;
                TupleValue::Null
            }
            b'u' => {
                self.data = rest;
                TupleValue::UnchangedToast
            }
            _ => {
                let length =
                    usize::try_from(u32::from_be_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
                let value = rest.get(4..4 + length)?;
                self.data = &rest[4 + length..];
                if kind == b'b' {
                    TupleValue::Binary(value)
                } else {
                    TupleValue::Text(value)
                }
            }
        };
        Some(value)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::from(self.remaining);
        (n, Some(n))
    }
}

impl ExactSizeIterator for TupleValues<'_> {}
