//! The columns and metadata of a ChangeBatch: the names every stage reads and the
//! source's batch builder writes (see `batch` for the table of columns).

use arrow::array::{
    AsArray, PrimitiveArray, TimestampMicrosecondArray, UInt8Array, UInt32Array, UInt64Array,
};
use arrow::datatypes::{
    ArrowPrimitiveType, Schema, TimestampMicrosecondType, UInt8Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;

/// `_op`: the change kind as an ASCII code.
pub const OP: &str = "_op";
/// `_lsn`: the change's WAL position.
pub const LSN: &str = "_lsn";
/// `_commit_lsn`: its transaction's commit position, the checkpoint unit.
pub const COMMIT_LSN: &str = "_commit_lsn";
/// `_xid`: its transaction id.
pub const XID: &str = "_xid";
/// `_commit_ts`: its transaction's commit time.
pub const COMMIT_TS: &str = "_commit_ts";
/// `_seq`: its position within the transaction.
pub const SEQ: &str = "_seq";
/// `_before`: the old row image, when the replica identity sends one.
pub const BEFORE: &str = "_before";
/// `_unchanged`: indexes of user columns whose TOASTed value was not sent.
pub const UNCHANGED: &str = "_unchanged";

/// `_op` codes.
pub mod op {
    /// A row read by the initial snapshot.
    pub const READ: u8 = b'r';
    /// An insert.
    pub const INSERT: u8 = b'c';
    /// An update.
    pub const UPDATE: u8 = b'u';
    /// A delete.
    pub const DELETE: u8 = b'd';
    /// A `TRUNCATE` of the table: one row, every column null, no old image (only
    /// when the source is told to emit them; Debezium skips them by default).
    pub const TRUNCATE: u8 = b't';
}

/// Schema metadata keys.
pub mod metadata {
    /// The table's schema (namespace).
    pub const SCHEMA: &str = "weir.schema";
    /// The table's name.
    pub const TABLE: &str = "weir.table";
    /// The table's OID.
    pub const RELATION_OID: &str = "weir.relation_oid";
    /// The primary key's columns, comma-separated field names; empty when unknown.
    pub const PRIMARY_KEY: &str = "weir.primary_key";
    /// What updates and deletes send of the old row: `default`, `full`, `index`, `nothing`.
    pub const REPLICA_IDENTITY: &str = "weir.replica_identity";
    /// Incremented each time the table's columns or their Arrow types change.
    pub const SCHEMA_VERSION: &str = "weir.schema_version";
    /// On a user field: its PostgreSQL type name.
    pub const PG_TYPE: &str = "weir.pg_type";
    /// On a user field whose name was escaped: the column's name in PostgreSQL.
    pub const COLUMN_NAME: &str = "weir.column_name";
    /// On a user field: its type's OID (`pg_type.oid`; a domain's own, as the
    /// Relation message says).
    pub const PG_TYPE_OID: &str = "weir.pg_type_oid";
    /// On a user field whose type has a modifier (`numeric(12,2)`, `bit(4)`,
    /// `varchar(20)`): `atttypmod`, as a number. Encoders that declare schemas keep
    /// the declared type with it when the Arrow type had to widen to text.
    pub const PG_TYPMOD: &str = "weir.pg_typmod";
    /// On a user field of an enum type: its labels in order, comma-separated, for
    /// Debezium's `io.debezium.data.Enum` `allowed`.
    pub const PG_ENUM_LABELS: &str = "weir.pg_enum_labels";
    /// On a user field declared `NOT NULL`: `true`. (The Arrow field stays nullable:
    /// the old image of a delete holds only the key's values.)
    pub const NOT_NULL: &str = "weir.not_null";
}

/// The number of metadata columns before the user columns.
pub const LEADING_METADATA_COLUMNS: usize = 6;

/// `_topic`: a plugin's choice of topic for the row.
pub const TOPIC: &str = "_topic";
/// `_key`: a plugin's message key for the row, which partitioning uses too.
pub const KEY: &str = "_key";
/// `_partition`: a plugin's choice of partition for the row.
pub const PARTITION: &str = "_partition";
/// `_headers`: reserved for a plugin's message headers.
pub const HEADERS: &str = "_headers";
/// The routing columns plugins may add; never encoded as data.
pub const ROUTING_COLUMNS: [&str; 4] = [TOPIC, KEY, PARTITION, HEADERS];

/// `schema.table` of a ChangeBatch schema, from its metadata (empty parts when
/// a schema lacks them).
pub fn qualified_table_name(schema: &Schema) -> String {
    let meta = |key: &str| schema.metadata().get(key).map_or("", String::as_str);
    format!("{}.{}", meta(metadata::SCHEMA), meta(metadata::TABLE))
}

/// A metadata column is missing or has another type than the contract's (a plugin
/// dropped or replaced it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the batch has no `{0}` column of weir's type")]
pub struct MissingColumn(pub String);

/// A batch's metadata columns, typed: what every message needs besides its key
/// and value.
#[derive(Debug, Clone, Copy)]
pub struct MetadataColumns<'a> {
    /// `_op`.
    pub ops: &'a UInt8Array,
    /// `_lsn`.
    pub lsns: &'a UInt64Array,
    /// `_commit_lsn`.
    pub commit_lsns: &'a UInt64Array,
    /// `_xid`.
    pub xids: &'a UInt32Array,
    /// `_commit_ts`.
    pub commit_ts: &'a TimestampMicrosecondArray,
    /// `_seq`.
    pub seqs: &'a UInt32Array,
}

impl<'a> MetadataColumns<'a> {
    /// The metadata columns of `batch`; an error, not a panic, when a plugin
    /// dropped one or changed its type.
    pub fn of(batch: &'a RecordBatch) -> Result<Self, MissingColumn> {
        fn typed<'b, T: ArrowPrimitiveType>(
            batch: &'b RecordBatch,
            name: &str,
        ) -> Result<&'b PrimitiveArray<T>, MissingColumn> {
            batch
                .column_by_name(name)
                .and_then(|column| column.as_primitive_opt::<T>())
                .ok_or_else(|| MissingColumn(name.to_owned()))
        }
        Ok(Self {
            ops: typed::<UInt8Type>(batch, OP)?,
            lsns: typed::<UInt64Type>(batch, LSN)?,
            commit_lsns: typed::<UInt64Type>(batch, COMMIT_LSN)?,
            xids: typed::<UInt32Type>(batch, XID)?,
            commit_ts: typed::<TimestampMicrosecondType>(batch, COMMIT_TS)?,
            seqs: typed::<UInt32Type>(batch, SEQ)?,
        })
    }
}

/// The precision and scale of `numeric(p, s)` from its type modifier
/// (`((p << 16) | s) + 4`, `s` an 11-bit signed field: negative scales exist since
/// PostgreSQL 15); `None` for an unconstrained `numeric`.
pub fn numeric_typmod(type_modifier: i32) -> Option<(i32, i32)> {
    if type_modifier < 4 {
        return None;
    }
    let packed = type_modifier - 4;
    Some(((packed >> 16) & 0xFFFF, ((packed & 0x7FF) ^ 0x400) - 0x400))
}

/// [`numeric_typmod`] in Arrow's `Decimal128` terms; `None` as well for a precision
/// past `max_precision`.
pub fn numeric_precision_scale(type_modifier: i32, max_precision: i32) -> Option<(u8, i8)> {
    let (precision, scale) = numeric_typmod(type_modifier)?;
    if !(1..=max_precision).contains(&precision) {
        return None;
    }
    Some((u8::try_from(precision).ok()?, i8::try_from(scale).ok()?))
}

/// The declared `numeric(p, s)` of a field (its `weir.pg_type` and
/// `weir.pg_typmod`), with `s` of zero or more: what a `numeric(p, s)` column
/// carried as text after a `NaN` was declared as.
pub fn declared_decimal(field: &arrow::datatypes::Field) -> Option<(u8, i8)> {
    let meta = field.metadata();
    if meta.get(metadata::PG_TYPE).map(String::as_str) != Some("numeric") {
        return None;
    }
    let type_modifier = meta.get(metadata::PG_TYPMOD)?.parse().ok()?;
    numeric_precision_scale(type_modifier, 38).filter(|(_, scale)| *scale >= 0)
}

/// The element field of an array column whose elements are carried as text but
/// have a type of their own (`numeric[]`, `uuid[]`, `json[]`, `jsonb[]`): Utf8,
/// with the element type as `weir.pg_type` and the column's modifier (a
/// `numeric(6,2)[]` has elements of `numeric(6,2)`), so encoders type the elements
/// as they type such a column. `None` for other fields.
pub fn typed_element(field: &arrow::datatypes::Field) -> Option<arrow::datatypes::Field> {
    use arrow::datatypes::DataType;
    let meta = field.metadata();
    let element = match meta.get(metadata::PG_TYPE)?.as_str() {
        "_numeric" => "numeric",
        "_uuid" => "uuid",
        "_json" => "json",
        "_jsonb" => "jsonb",
        _ => return None,
    };
    let DataType::List(item) = field.data_type() else {
        return None;
    };
    if item.data_type() != &DataType::Utf8 {
        return None;
    }
    let mut element_meta =
        std::collections::HashMap::from([(metadata::PG_TYPE.to_owned(), element.to_owned())]);
    if let Some(modifier) = meta.get(metadata::PG_TYPMOD) {
        element_meta.insert(metadata::PG_TYPMOD.to_owned(), modifier.clone());
    }
    Some(item.as_ref().clone().with_metadata(element_meta))
}

/// The fractional digits of a `timestamptz(p)` field: `p`, or 6 without one, as
/// Debezium's `ZonedTimestamp` writes them.
pub fn fraction_digits(field: &arrow::datatypes::Field) -> u8 {
    field
        .metadata()
        .get(metadata::PG_TYPMOD)
        .and_then(|t| t.parse::<u8>().ok())
        .filter(|p| *p <= 6)
        .unwrap_or(6)
}

/// Whether a `time(p)`/`timestamp(p)` field declares a precision of 0 to 3, which
/// Debezium's default `time.precision.mode` (`adaptive`) writes in milliseconds.
pub fn millisecond_precision(field: &arrow::datatypes::Field) -> bool {
    field
        .metadata()
        .get(metadata::PG_TYPMOD)
        .and_then(|t| t.parse::<i32>().ok())
        .is_some_and(|precision| (0..=3).contains(&precision))
}

/// The declared length of a `bit(n)`/`varbit(n)` field (its `weir.pg_typmod`);
/// `i32::MAX` for a `varbit` without one.
pub fn bit_length(field: &arrow::datatypes::Field) -> i32 {
    field
        .metadata()
        .get(metadata::PG_TYPMOD)
        .and_then(|t| t.parse().ok())
        .unwrap_or(i32::MAX)
}
