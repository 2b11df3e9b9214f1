//! The replication plane: one connection in `replication=database` mode.
//!
//! [`ReplicationConnection::connect`] authenticates (trust, password, MD5,
//! SCRAM-SHA-256); replication commands manage the slot; and
//! [`ReplicationConnection::start_logical_replication`] turns the connection into a
//! [`ReplicationStream`] of `XLogData` (each a `pgoutput` message) and keepalives. The
//! stream reports progress with [`ReplicationStream::send_status`]: the flush position
//! it sends is what the server may forget, so weir sends only positions Kafka has
//! acknowledged.

mod commands;
mod connection;
mod error;
mod stream;

pub(crate) use crate::clock::now_unix_micros;
pub use commands::{CreatedSlot, PgOutputOptions, SlotSnapshot, SystemIdentity};
pub use connection::{ReplicationConnection, SESSION_SETTINGS, session_settings_sql};
pub use error::{ReplicationError, SQLSTATE_DUPLICATE_OBJECT, SQLSTATE_OBJECT_IN_USE, ServerError};
pub use stream::{Keepalive, ReplicationEvent, ReplicationStream, StandbyStatus, XLogData};
