//! Encoders: ChangeBatches in, Kafka messages (key and value bytes) out.
//!
//! An encoder works a batch at a time. It decides how to write each column once per
//! batch ([`value::ColumnWriter`]) and then writes rows into one growing buffer;
//! [`Messages`] keeps each message as ranges of that buffer, so encoding allocates
//! nothing per row.

pub mod avro;
pub mod canal;
pub(crate) mod connect;
pub mod ddl;
pub mod debezium;
pub mod dts;
mod hstore;
pub mod json;
pub(crate) mod kind;
pub mod layout;
pub mod maxwell;
pub mod metadata;
pub mod oms;
mod row_images;
pub mod shareplex;
pub mod value;

use arrow::record_batch::RecordBatch;

pub(crate) use crate::contract::messages::WriteBytes;
pub use crate::contract::{Message, Messages, SnapshotMarks};
pub use avro::AvroEncoder;
pub use avro::evolution::SchemaChangePolicy;
pub use avro::registry::{RegistryError, SchemaRegistry};
pub use canal::CanalJsonEncoder;
pub use ddl::{DdlEncoder, DdlFormat};
pub use debezium::{DebeziumJsonEncoder, DebeziumOptions};
pub use dts::DtsAvroEncoder;
pub use json::JsonEncoder;
pub use maxwell::MaxwellJsonEncoder;
pub use metadata::{
    MetadataEncoder, MetadataFormat, TransactionEvent, TransactionStatus, transaction_id,
};
pub use oms::OmsJsonEncoder;
pub use shareplex::SharePlexJsonEncoder;
pub use value::{BinaryMode, DecimalMode, IntervalMode, TimestamptzForm, ValueOptions};

/// A batch cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The batch lacks a column every ChangeBatch has (a plugin dropped it?).
    #[error("the batch has no `{0}` column")]
    MissingColumn(String),
    /// The Schema Registry refused a schema or could not be reached.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The Schema Registry refused a table's new schema under its subject's
    /// compatibility level, and `sink.kafka.schema_change` is `fail`.
    #[error(
        "table {table}: the Schema Registry refuses its new schema under subject {subject} (compatibility level {level}): {changes}. The registry says: {reasons}. weir stopped before sending any row with the new schema, so nothing after the change is confirmed to PostgreSQL. To go on: allow the change (PUT /config/{subject} with another level), or set sink.kafka.schema_change: new_subject to register it under a new subject"
    )]
    Incompatible {
        /// `schema.table`.
        table: String,
        /// The subject that refused it.
        subject: String,
        /// The level that applied.
        level: String,
        /// What changed, column by column.
        changes: String,
        /// The registry's own reasons.
        reasons: String,
    },
    /// A key column is null (a plugin nulled it?): an Avro key cannot say so.
    #[error("key column `{0}` is null")]
    NullKey(String),
}

/// Turns ChangeBatches into messages.
pub trait Encoder: Send {
    /// Appends the messages of `batch` to `out`. `marks` says where its snapshot
    /// reads sit in their snapshot, for the formats that tell (Debezium's
    /// `source.snapshot`); streamed batches pass the default.
    fn encode(
        &mut self,
        batch: &RecordBatch,
        marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError>;

    /// A captured schema change of a table, before the rows written under it:
    /// formats with a schema history (Avro: aliases for renamed columns) note it.
    fn schema_change(&mut self, _change: &crate::contract::SchemaChange) {}
}
