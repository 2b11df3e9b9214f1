//! The CopyBoth stream that `START_REPLICATION` opens.

use bytes::{BufMut as _, Bytes};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use super::connection::{Backend, ReplicationConnection, server_error, unexpected};
use super::error::ReplicationError;
use crate::clock::now_unix_micros;
use crate::lsn::Lsn;
use weir_pgoutput::{PG_EPOCH_OFFSET_MICROS, unix_micros_from_pg};

/// A chunk of WAL: for a logical slot, one `pgoutput` message in `data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XLogData {
    /// Where this message starts in the WAL (0 for messages that have no position of
    /// their own, like Begin of a streamed transaction).
    pub wal_start: Lsn,
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// The server's clock when it sent this, in microseconds since the Unix epoch.
    pub server_time_micros: i64,
    /// The payload: one `pgoutput` message.
    pub data: Bytes,
}

/// The server checks in; when `reply_requested`, answer with a status update soon or
/// it drops the connection after `wal_sender_timeout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// The server's current end of WAL.
    pub wal_end: Lsn,
    /// The server's clock, in microseconds since the Unix epoch.
    pub server_time_micros: i64,
    /// The server wants a status update now.
    pub reply_requested: bool,
}

/// What the stream delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicationEvent {
    /// WAL data.
    XLogData(XLogData),
    /// A keepalive.
    Keepalive(Keepalive),
    /// The server ended the stream: CopyDone, or CommandComplete straight away, as a
    /// walsender does when its server shuts down (`pg_ctl stop -m fast`, a restart, a
    /// managed service's maintenance).
    End,
}

/// Positions reported to the server. For a logical slot only `flushed` matters: the
/// server advances the slot's `confirmed_flush_lsn` to it and may recycle WAL before
/// it. Report only what is durable downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StandbyStatus {
    /// Received and written.
    pub written: Lsn,
    /// Durable downstream: the slot's `confirmed_flush_lsn` moves here.
    pub flushed: Lsn,
    /// Applied downstream.
    pub applied: Lsn,
    /// Ask the server to answer with a keepalive at once.
    pub reply_requested: bool,
}

impl StandbyStatus {
    /// All three positions at `lsn`.
    pub fn at(lsn: Lsn) -> Self {
        StandbyStatus {
            written: lsn,
            flushed: lsn,
            applied: lsn,
            reply_requested: false,
        }
    }
}

/// A running logical replication stream.
#[derive(Debug)]
pub struct ReplicationStream {
    connection: ReplicationConnection,
}

impl ReplicationStream {
    pub(crate) fn new(connection: ReplicationConnection) -> Self {
        Self { connection }
    }

    /// The next event. Cancel-safe, so it can sit in a `select!` beside a timer that
    /// sends status updates.
    ///
    /// # Errors
    ///
    /// `Server` when the server reports an error (e.g. the slot was dropped), `Closed`
    /// or `Io` when the connection breaks, `Protocol` for malformed frames.
    pub async fn recv(&mut self) -> Result<ReplicationEvent, ReplicationError> {
        match self.connection.next_backend().await? {
            Backend::Message(Message::CopyData(body)) => parse_copy_data(body.into_bytes()),
            Backend::Message(Message::CopyDone | Message::CommandComplete(_)) => {
                Ok(ReplicationEvent::End)
            }
            Backend::Message(Message::ErrorResponse(body)) => {
                Err(server_error(body.fields())?.into())
            }
            Backend::Message(Message::NoticeResponse(_) | Message::ParameterStatus(_)) => {
                Box::pin(self.recv()).await
            }
            Backend::Message(other) => Err(unexpected("replication", &other)),
            Backend::CopyBoth => Err(ReplicationError::Protocol(
                "a second CopyBothResponse".to_owned(),
            )),
        }
    }

    /// Sends a standby status update.
    pub async fn send_status(&mut self, status: StandbyStatus) -> Result<(), ReplicationError> {
        let mut body = [0u8; 34];
        let mut cursor = &mut body[..];
        cursor.put_u8(b'r');
        cursor.put_u64(status.written.0);
        cursor.put_u64(status.flushed.0);
        cursor.put_u64(status.applied.0);
        cursor.put_i64(now_unix_micros() - PG_EPOCH_OFFSET_MICROS);
        cursor.put_u8(u8::from(status.reply_requested));
        frontend::CopyData::new(&body[..])?.write(self.connection.write_buffer());
        self.connection.flush().await
    }

    /// Ends the stream cleanly (CopyDone) and returns the connection for more commands.
    /// Messages still in flight from the server are discarded.
    pub async fn stop(mut self) -> Result<ReplicationConnection, ReplicationError> {
        frontend::copy_done(self.connection.write_buffer());
        self.connection.flush().await?;
        loop {
            match self.connection.next_message().await? {
                Message::ReadyForQuery(_) => return Ok(self.connection),
                Message::ErrorResponse(body) => return Err(server_error(body.fields())?.into()),
                _ => {}
            }
        }
    }
}

fn parse_copy_data(data: Bytes) -> Result<ReplicationEvent, ReplicationError> {
    let short =
        || ReplicationError::Protocol(format!("short replication message of {} bytes", data.len()));
    let u64_at = |at: usize| -> Option<u64> {
        Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
    };
    match data.first() {
        Some(b'w') => {
            let wal_start = u64_at(1).ok_or_else(short)?;
            let wal_end = u64_at(9).ok_or_else(short)?;
            let time = u64_at(17).ok_or_else(short)?;
            Ok(ReplicationEvent::XLogData(XLogData {
                wal_start: Lsn(wal_start),
                wal_end: Lsn(wal_end),
                server_time_micros: unix_micros_from_pg(time as i64),
                data: data.slice(25..),
            }))
        }
        Some(b'k') => {
            let wal_end = u64_at(1).ok_or_else(short)?;
            let time = u64_at(9).ok_or_else(short)?;
            let reply = *data.get(17).ok_or_else(short)?;
            Ok(ReplicationEvent::Keepalive(Keepalive {
                wal_end: Lsn(wal_end),
                server_time_micros: unix_micros_from_pg(time as i64),
                reply_requested: reply == 1,
            }))
        }
        Some(other) => Err(ReplicationError::Protocol(format!(
            "unknown replication message type {other:#04x}"
        ))),
        None => Err(short()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xlogdata_and_keepalive() {
        let mut w = vec![b'w'];
        w.extend(0x10u64.to_be_bytes());
        w.extend(0x20u64.to_be_bytes());
        w.extend(0u64.to_be_bytes());
        w.extend(b"B...");
        let ReplicationEvent::XLogData(x) = parse_copy_data(Bytes::from(w)).expect("parses") else {
            panic!("not xlogdata")
        };
        assert_eq!((x.wal_start, x.wal_end), (Lsn(0x10), Lsn(0x20)));
        assert_eq!(x.server_time_micros, PG_EPOCH_OFFSET_MICROS);
        assert_eq!(x.data.as_ref(), b"B...");

        let mut k = vec![b'k'];
        k.extend(0x30u64.to_be_bytes());
        k.extend(0u64.to_be_bytes());
        k.push(1);
        let event = parse_copy_data(Bytes::from(k)).expect("parses");
        assert!(matches!(
            event,
            ReplicationEvent::Keepalive(Keepalive {
                wal_end: Lsn(0x30),
                reply_requested: true,
                ..
            })
        ));

        assert!(parse_copy_data(Bytes::from_static(b"k\0\0")).is_err());
        assert!(parse_copy_data(Bytes::from_static(b"w")).is_err());
        assert!(parse_copy_data(Bytes::from_static(b"?")).is_err());
        assert!(parse_copy_data(Bytes::new()).is_err());
    }
}
