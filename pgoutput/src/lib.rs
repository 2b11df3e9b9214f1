//! The `pgoutput` logical decoding protocol: what PostgreSQL sends inside each
//! `XLogData` of a logical replication stream.
//!
//! [`PgOutputDecoder::decode`] turns one payload into a [`PgOutputMessage`]. Row values
//! stay in the received buffer ([`Tuple`] is a validated slice of it), so decoding
//! copies no column data; the batch builder reads them straight into Arrow builders.
//! Any byte sequence decodes to a message or a [`DecodeError`], never a panic: a
//! fuzz target (`pgoutput/fuzz`) holds the decoder to that.
//!
//! A crate of its own so the decoder builds (and fuzzes) without the rest of weir.
#![warn(missing_docs)]

mod decoder;
pub mod lsn;
mod messages;

pub use decoder::{DecodeError, PgOutputDecoder};
pub use lsn::Lsn;
pub use messages::*;

#[cfg(test)]
mod tests;
