//! Encoders: ChangeBatches in, Kafka messages (key and value bytes) out.
//!
//! An encoder works a batch at a time. It decides how to write each column once per
//! batch ([`value::ColumnWriter`]) and then writes rows into one growing buffer;
//! [`Messages`] keeps each message as ranges of that buffer, so encoding allocates
//! nothing per row.

pub mod avro;
pub mod canal;
pub(crate) mod connect;
pub mod debezium;
pub mod json;
pub(crate) mod kind;
pub mod layout;
pub mod metadata;
pub mod value;

use std::ops::Range;

use arrow::record_batch::RecordBatch;

pub use avro::AvroEncoder;
pub use avro::registry::{RegistryError, SchemaRegistry};
pub use canal::CanalJsonEncoder;
pub use debezium::{DebeziumJsonEncoder, DebeziumOptions};
pub use json::JsonEncoder;
pub use metadata::{
    MetadataEncoder, MetadataFormat, TransactionEvent, TransactionStatus, transaction_id,
};
pub use value::{BinaryMode, DecimalMode, IntervalMode, ValueOptions};

/// A batch cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The batch lacks a column every ChangeBatch has (a plugin dropped it?).
    #[error("the batch has no `{0}` column")]
    MissingColumn(String),
    /// The Schema Registry refused a schema or could not be reached.
    #[error("{0}")]
    Registry(String),
    /// A key column is null (a plugin nulled it?): an Avro key cannot say so.
    #[error("key column `{0}` is null")]
    NullKey(String),
}

/// The messages of one batch, in row order.
#[derive(Debug, Default, Clone)]
pub struct Messages {
    buffer: Vec<u8>,
    messages: Vec<Message>,
}

/// One message: which row it came from and where its key and value are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The batch row.
    pub row: usize,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

impl Messages {
    /// Bytes of all keys and values.
    pub fn byte_len(&self) -> usize {
        self.buffer.len()
    }

    /// Empties the messages, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.messages.clear();
    }

    /// The messages.
    pub fn iter(&self) -> impl Iterator<Item = &Message> {
        self.messages.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// A message's key; `None` for a null key.
    pub fn key(&self, message: &Message) -> Option<&[u8]> {
        message.key.clone().map(|range| &self.buffer[range])
    }

    /// A message's value; `None` for a tombstone.
    pub fn value(&self, message: &Message) -> Option<&[u8]> {
        message.value.clone().map(|range| &self.buffer[range])
    }

    /// Appends a message whose key and value the closures write.
    pub(crate) fn push(
        &mut self,
        row: usize,
        key: Option<WriteBytes<'_>>,
        value: Option<WriteBytes<'_>>,
    ) {
        let key = key.map(|write| self.write(write));
        let value = value.map(|write| self.write(write));
        self.messages.push(Message { row, key, value });
    }

    fn write(&mut self, write: WriteBytes<'_>) -> Range<usize> {
        let start = self.buffer.len();
        write(&mut self.buffer);
        start..self.buffer.len()
    }
}

/// Writes one key or value into the message buffer.
pub(crate) type WriteBytes<'a> = &'a dyn Fn(&mut Vec<u8>);

/// Turns ChangeBatches into messages.
pub trait Encoder: Send {
    /// Appends the messages of `batch` to `out`.
    fn encode(&mut self, batch: &RecordBatch, out: &mut Messages) -> Result<(), EncodeError>;
}
