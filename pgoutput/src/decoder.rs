//! Decoding `pgoutput` messages from the payload of `XLogData`.

use bytes::Bytes;

use super::messages::*;
use crate::Lsn;

/// Why a `pgoutput` payload could not be decoded. Input never causes a panic.
/// (Each variant's message is its documentation.)
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("empty pgoutput message")]
    Empty,
    #[error("unknown pgoutput message type {0:#04x}")]
    UnknownMessage(u8),
    #[error(
        "pgoutput message {message:?} ends early: {field} needs {needed} bytes at offset {offset}"
    )]
    Truncated {
        message: char,
        field: &'static str,
        offset: usize,
        needed: usize,
    },
    #[error("pgoutput message {message:?} has {extra} unexpected trailing bytes")]
    TrailingBytes { message: char, extra: usize },
    #[error("pgoutput message {message:?}: {field} is not valid UTF-8")]
    InvalidUtf8 { message: char, field: &'static str },
    #[error("pgoutput message {message:?}: {field} has no terminating NUL")]
    UnterminatedString { message: char, field: &'static str },
    #[error("pgoutput message {message:?}: unexpected {what} marker {found:#04x}")]
    UnexpectedMarker {
        message: char,
        what: &'static str,
        found: u8,
    },
}

/// Decodes `pgoutput` messages of one replication session.
///
/// The decoder is stateful only in one respect: inside a streamed transaction block
/// (protocol 2+, between Stream Start and Stream Stop) data messages carry a leading
/// transaction id, and the decoder must know whether it is in such a block.
#[derive(Debug, Default, Clone)]
pub struct PgOutputDecoder {
    in_stream: bool,
}

impl PgOutputDecoder {
    /// A decoder for a fresh session.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the last message opened a streamed block that has not stopped yet.
    pub fn in_stream(&self) -> bool {
        self.in_stream
    }

    /// Decodes one message. Values inside the returned message borrow nothing: they
    /// are `Bytes` slices of `payload`, so no column data is copied.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] when the payload is not a well-formed `pgoutput` message.
    pub fn decode(&mut self, payload: Bytes) -> Result<PgOutputMessage, DecodeError> {
        let (&tag, _) = payload.split_first().ok_or(DecodeError::Empty)?;
        let mut reader = Reader {
            data: payload,
            offset: 1,
            message: char::from(tag),
        };
        let message = match tag {
            b'B' => PgOutputMessage::Begin(Begin {
                final_lsn: reader.lsn("final LSN")?,
                commit_time_micros: reader.timestamp("commit time")?,
                xid: reader.u32("xid")?,
            }),
            b'C' => PgOutputMessage::Commit(reader.commit(None)?),
            b'O' => PgOutputMessage::Origin(Origin {
                commit_lsn: reader.lsn("commit LSN")?,
                name: reader.string("origin name")?,
            }),
            b'R' => {
                let xid = self.read_stream_xid(&mut reader)?;
                PgOutputMessage::Relation(reader.relation(xid)?)
            }
            b'Y' => {
                let xid = self.read_stream_xid(&mut reader)?;
                PgOutputMessage::Type(TypeInfo {
                    xid,
                    oid: reader.u32("type oid")?,
                    namespace: reader.string("namespace")?,
                    name: reader.string("type name")?,
                })
            }
            b'I' => {
                let xid = self.read_stream_xid(&mut reader)?;
                let relation = reader.u32("relation oid")?;
                reader.expect_marker(b'N', "new tuple")?;
                PgOutputMessage::Insert(Insert {
                    xid,
                    relation,
                    new: reader.tuple()?,
                })
            }
            b'U' => {
                let xid = self.read_stream_xid(&mut reader)?;
                let relation = reader.u32("relation oid")?;
                let old = match reader.u8("tuple marker")? {
                    b'K' => Some(OldTuple::Key(reader.tuple()?)),
                    b'O' => Some(OldTuple::Full(reader.tuple()?)),
                    b'N' => None,
                    found => return Err(reader.unexpected("tuple", found)),
                };
                if old.is_some() {
                    reader.expect_marker(b'N', "new tuple")?;
                }
                PgOutputMessage::Update(Update {
                    xid,
                    relation,
                    old,
                    new: reader.tuple()?,
                })
            }
            b'D' => {
                let xid = self.read_stream_xid(&mut reader)?;
                let relation = reader.u32("relation oid")?;
                let old = match reader.u8("tuple marker")? {
                    b'K' => OldTuple::Key(reader.tuple()?),
                    b'O' => OldTuple::Full(reader.tuple()?),
                    found => return Err(reader.unexpected("old tuple", found)),
                };
                PgOutputMessage::Delete(Delete { xid, relation, old })
            }
            b'T' => {
                let xid = self.read_stream_xid(&mut reader)?;
                let count = reader.u32("relation count")?;
                let options = reader.u8("options")?;
                // Bounded by the bytes present, not by the count the message claims.
                let mut relations =
                    Vec::with_capacity((count as usize).min(reader.remaining() / 4));
                for _ in 0..count {
                    relations.push(reader.u32("relation oid")?);
                }
                PgOutputMessage::Truncate(Truncate {
                    xid,
                    cascade: options & 1 != 0,
                    restart_identity: options & 2 != 0,
                    relations,
                })
            }
            b'M' => {
                let xid = self.read_stream_xid(&mut reader)?;
                let flags = reader.u8("flags")?;
                let lsn = reader.lsn("message LSN")?;
                let prefix = reader.string("prefix")?;
                let length = reader.u32("content length")? as usize;
                PgOutputMessage::Message(LogicalMessage {
                    xid,
                    transactional: flags & 1 != 0,
                    lsn,
                    prefix,
                    content: reader.bytes(length, "content")?,
                })
            }
            b'S' => {
                let start = StreamStart {
                    xid: reader.u32("xid")?,
                    first_segment: reader.u8("first segment")? == 1,
                };
                self.in_stream = true;
                PgOutputMessage::StreamStart(start)
            }
            b'E' => {
                self.in_stream = false;
                PgOutputMessage::StreamStop
            }
            b'c' => {
                let xid = reader.u32("xid")?;
                PgOutputMessage::StreamCommit(reader.commit(Some(xid))?)
            }
            b'A' => {
                let xid = reader.u32("xid")?;
                let subxid = reader.u32("subtransaction xid")?;
                // Protocol 4 with parallel streaming adds the abort LSN and time.
                let (abort_lsn, abort_time_micros) = if reader.remaining() >= 16 {
                    (
                        Some(reader.lsn("abort LSN")?),
                        Some(reader.timestamp("abort time")?),
                    )
                } else {
                    (None, None)
                };
                PgOutputMessage::StreamAbort(StreamAbort {
                    xid,
                    subxid,
                    abort_lsn,
                    abort_time_micros,
                })
            }
            other => return Err(DecodeError::UnknownMessage(other)),
        };
        reader.finish()?;
        Ok(message)
    }

    fn read_stream_xid(&self, reader: &mut Reader) -> Result<Option<Xid>, DecodeError> {
        if self.in_stream {
            reader.u32("xid").map(Some)
        } else {
            Ok(None)
        }
    }
}

/// A bounds-checked cursor over one message.
struct Reader {
    data: Bytes,
    offset: usize,
    message: char,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.data.len() - self.offset
    }

    fn take(&mut self, needed: usize, field: &'static str) -> Result<&[u8], DecodeError> {
        let end = self
            .offset
            .checked_add(needed)
            .filter(|end| *end <= self.data.len())
            .ok_or(DecodeError::Truncated {
                message: self.message,
                field,
                offset: self.offset,
                needed,
            })?;
        let slice = &self.data[self.offset..end];
        self.offset = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    fn i32(&mut self, field: &'static str) -> Result<i32, DecodeError> {
        self.array(field).map(i32::from_be_bytes)
    }

    fn lsn(&mut self, field: &'static str) -> Result<Lsn, DecodeError> {
        self.array(field).map(u64::from_be_bytes).map(Lsn)
    }

    /// A PostgreSQL timestamp, converted to microseconds since the Unix epoch.
    fn timestamp(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        let pg = self.array(field).map(i64::from_be_bytes)?;
        Ok(unix_micros_from_pg(pg))
    }

    fn bytes(&mut self, length: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let start = self.offset;
        self.take(length, field)?;
        Ok(self.data.slice(start..self.offset))
    }

    /// A NUL-terminated UTF-8 string.
    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let rest = &self.data[self.offset..];
        let length = rest
            .iter()
            .position(|b| *b == 0)
            .ok_or(DecodeError::UnterminatedString {
                message: self.message,
                field,
            })?;
        let text = std::str::from_utf8(&rest[..length])
            .map_err(|_| DecodeError::InvalidUtf8 {
                message: self.message,
                field,
            })?
            .to_owned();
        self.offset += length + 1;
        Ok(text)
    }

    fn expect_marker(&mut self, expected: u8, what: &'static str) -> Result<(), DecodeError> {
        match self.u8(what)? {
            found if found == expected => Ok(()),
            found => Err(self.unexpected(what, found)),
        }
    }

    fn unexpected(&self, what: &'static str, found: u8) -> DecodeError {
        DecodeError::UnexpectedMarker {
            message: self.message,
            what,
            found,
        }
    }

    fn commit(&mut self, xid: Option<Xid>) -> Result<Commit, DecodeError> {
        Ok(Commit {
            xid,
            flags: self.u8("flags")?,
            commit_lsn: self.lsn("commit LSN")?,
            end_lsn: self.lsn("end LSN")?,
            commit_time_micros: self.timestamp("commit time")?,
        })
    }

    fn relation(&mut self, xid: Option<Xid>) -> Result<Relation, DecodeError> {
        let oid = self.u32("relation oid")?;
        let namespace = self.string("namespace")?;
        let name = self.string("relation name")?;
        let replica_identity = match self.u8("replica identity")? {
            b'd' => ReplicaIdentity::Default,
            b'n' => ReplicaIdentity::Nothing,
            b'f' => ReplicaIdentity::Full,
            b'i' => ReplicaIdentity::Index,
            found => return Err(self.unexpected("replica identity", found)),
        };
        let count = self.u16("column count")?;
        // Each column takes at least 10 bytes; never reserve more than could be present.
        let mut columns = Vec::with_capacity(usize::from(count).min(self.remaining() / 10));
        for _ in 0..count {
            columns.push(RelationColumn {
                is_key: self.u8("column flags")? & 1 != 0,
                name: self.string("column name")?,
                type_oid: self.u32("column type")?,
                type_modifier: self.i32("column type modifier")?,
            });
        }
        Ok(Relation {
            xid,
            oid,
            namespace,
            name,
            replica_identity,
            columns,
        })
    }

    /// TupleData: validates every column entry and returns the slice holding them.
    fn tuple(&mut self) -> Result<Tuple, DecodeError> {
        let column_count = self.u16("tuple column count")?;
        let start = self.offset;
        for _ in 0..column_count {
            match self.u8("column kind")? {
                b'n' | b'u' => {}
                b't' | b'b' => {
                    let length = self.u32("column length")? as usize;
                    self.take(length, "column value")?;
                }
                found => return Err(self.unexpected("column kind", found)),
            }
        }
        Ok(Tuple {
            data: self.data.slice(start..self.offset),
            column_count,
        })
    }

    fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(DecodeError::TrailingBytes {
                message: self.message,
                extra,
            }),
        }
    }
}
