//! Messages that are not row changes: Debezium's transaction metadata (a `BEGIN` and
//! an `END` event per transaction, with event counts per table) and heartbeats, in
//! the pipeline's format: JSON (with the Connect schema when `schemas` is on) or
//! Avro through the Schema Registry.
//!
//! Transaction ids are `"<xid>:<commit LSN>"`, unique per transaction. The same id
//! appears in every data event's `transaction` block, with the event's position in
//! the transaction (`total_order`) and in its table (`data_collection_order`), so a
//! consumer can gather a transaction's events and know from `END` when it has all.

use serde_json::{Value as Json, json};

use super::EncodeError;
use super::avro::binary;
use super::avro::registry::SchemaRegistry;
use crate::contract::columns::{MetadataColumns, op};

/// `BEGIN` or `END`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// The transaction's first event is coming.
    Begin,
    /// All its events were sent.
    End,
}

/// One transaction metadata event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionEvent<'a> {
    /// `BEGIN` or `END`.
    pub status: TransactionStatus,
    /// `"<xid>:<commit LSN>"`.
    pub id: &'a str,
    /// `END`: events per `schema.table`, in first-seen order.
    pub data_collections: &'a [(String, u64)],
    /// The commit time, in milliseconds.
    pub ts_ms: i64,
}

/// How metadata messages are written.
#[derive(Debug)]
pub enum MetadataFormat {
    /// JSON; with `schemas`, wrapped in `{"schema": …, "payload": …}`.
    Json {
        /// Connect's `schemas.enable`.
        schemas: bool,
    },
    /// Avro with schemas registered under `<topic>-key` / `<topic>-value`.
    Avro(Box<SchemaRegistry>),
}

/// Encodes metadata messages into a key and a value.
#[derive(Debug)]
pub struct MetadataEncoder {
    format: MetadataFormat,
    /// The pipeline's name (Debezium's `topic.prefix`), for heartbeat keys.
    name: String,
}

impl MetadataEncoder {
    /// An encoder for pipeline `name`.
    pub fn new(format: MetadataFormat, name: impl Into<String>) -> Self {
        Self {
            format,
            name: name.into(),
        }
    }

    /// A transaction event for `topic`.
    pub fn transaction(
        &mut self,
        topic: &str,
        event: &TransactionEvent<'_>,
    ) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
        let status = match event.status {
            TransactionStatus::Begin => "BEGIN",
            TransactionStatus::End => "END",
        };
        let total: u64 = event.data_collections.iter().map(|(_, n)| n).sum();
        let is_end = event.status == TransactionStatus::End;
        match &mut self.format {
            MetadataFormat::Json { schemas } => {
                let key = json!({"id": event.id});
                let collections: Vec<Json> = event
                    .data_collections
                    .iter()
                    .map(|(table, n)| json!({"data_collection": table, "event_count": n}))
                    .collect();
                let value = json!({
                    "status": status,
                    "id": event.id,
                    "event_count": if is_end { json!(total) } else { Json::Null },
                    "data_collections": if is_end { json!(collections) } else { Json::Null },
                    "ts_ms": event.ts_ms,
                });
                Ok(if *schemas {
                    (
                        wrap(&transaction_key_connect_schema(), key),
                        wrap(&transaction_value_connect_schema(), value),
                    )
                } else {
                    (key.to_string().into_bytes(), value.to_string().into_bytes())
                })
            }
            MetadataFormat::Avro(registry) => {
                let key_id = register(registry, topic, "key", &transaction_key_avro_schema())?;
                let value_id =
                    register(registry, topic, "value", &transaction_value_avro_schema())?;
                let mut key = Vec::new();
                binary::confluent_header(key_id, &mut key);
                binary::bytes(event.id.as_bytes(), &mut key);
                let mut value = Vec::new();
                binary::confluent_header(value_id, &mut value);
                binary::bytes(status.as_bytes(), &mut value);
                binary::bytes(event.id.as_bytes(), &mut value);
                if is_end {
                    binary::union_branch(1, &mut value);
                    binary::long(i64::try_from(total).unwrap_or(i64::MAX), &mut value);
                    binary::union_branch(1, &mut value);
                    if !event.data_collections.is_empty() {
                        let count = i64::try_from(event.data_collections.len()).unwrap_or(0);
                        binary::long(count, &mut value);
                        for (table, n) in event.data_collections {
                            binary::union_branch(1, &mut value);
                            binary::bytes(table.as_bytes(), &mut value);
                            binary::long(i64::try_from(*n).unwrap_or(i64::MAX), &mut value);
                        }
                    }
                    binary::long(0, &mut value);
                } else {
                    binary::union_branch(0, &mut value);
                    binary::union_branch(0, &mut value);
                }
                binary::long(event.ts_ms, &mut value);
                Ok((key, value))
            }
        }
    }

    /// A heartbeat for `topic`: key `{"serverName": name}`, value `{"ts_ms": now}`,
    /// as Debezium's heartbeats.
    pub fn heartbeat(
        &mut self,
        topic: &str,
        ts_ms: i64,
    ) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
        let name = self.name.clone();
        match &mut self.format {
            MetadataFormat::Json { schemas } => {
                let key = json!({"serverName": name});
                let value = json!({"ts_ms": ts_ms});
                Ok(if *schemas {
                    let key_schema = json!({"type": "struct", "optional": false,
                        "name": "io.debezium.connector.common.ServerNameKey", "version": 1,
                        "fields": [{"type": "string", "optional": false, "field": "serverName"}]});
                    let value_schema = json!({"type": "struct", "optional": false,
                        "name": "io.debezium.connector.common.Heartbeat", "version": 1,
                        "fields": [{"type": "int64", "optional": false, "field": "ts_ms"}]});
                    (wrap(&key_schema, key), wrap(&value_schema, value))
                } else {
                    (key.to_string().into_bytes(), value.to_string().into_bytes())
                })
            }
            MetadataFormat::Avro(registry) => {
                let key_schema = json!({"type": "record", "name": "ServerNameKey",
                    "namespace": "io.debezium.connector.common", "connect.version": 1,
                    "connect.name": "io.debezium.connector.common.ServerNameKey",
                    "fields": [{"name": "serverName", "type": "string"}]});
                let value_schema = json!({"type": "record", "name": "Heartbeat",
                    "namespace": "io.debezium.connector.common", "connect.version": 1,
                    "connect.name": "io.debezium.connector.common.Heartbeat",
                    "fields": [{"name": "ts_ms", "type": "long"}]});
                let key_id = register(registry, topic, "key", &key_schema)?;
                let value_id = register(registry, topic, "value", &value_schema)?;
                let mut key = Vec::new();
                binary::confluent_header(key_id, &mut key);
                binary::bytes(name.as_bytes(), &mut key);
                let mut value = Vec::new();
                binary::confluent_header(value_id, &mut value);
                binary::long(ts_ms, &mut value);
                Ok((key, value))
            }
        }
    }
}

/// Registers `schema` under `<topic>-<part>` (`key` or `value`).
pub(super) fn register(
    registry: &mut SchemaRegistry,
    topic: &str,
    part: &str,
    schema: &Json,
) -> Result<u32, EncodeError> {
    registry
        .register(&format!("{topic}-{part}"), &schema.to_string())
        .map_err(EncodeError::Registry)
}

/// A JSON message with its Connect schema (`schemas.enable`).
pub(super) fn wrap(schema: &Json, payload: Json) -> Vec<u8> {
    json!({"schema": schema, "payload": payload})
        .to_string()
        .into_bytes()
}

fn transaction_key_avro_schema() -> Json {
    json!({"type": "record", "name": "TransactionMetadataKey",
        "namespace": "io.debezium.connector.common", "connect.version": 1,
        "connect.name": "io.debezium.connector.common.TransactionMetadataKey",
        "fields": [{"name": "id", "type": "string"}]})
}

fn transaction_value_avro_schema() -> Json {
    json!({"type": "record", "name": "TransactionMetadataValue",
    "namespace": "io.debezium.connector.common", "connect.version": 1,
    "connect.name": "io.debezium.connector.common.TransactionMetadataValue",
    "fields": [
        {"name": "status", "type": "string"},
        {"name": "id", "type": "string"},
        {"name": "event_count", "type": ["null", "long"], "default": null},
        // Debezium's items are optional structs named `event.collection`.
        {"name": "data_collections", "type": ["null", {"type": "array", "items": ["null", {
            "type": "record", "name": "collection", "namespace": "event",
            "fields": [
                {"name": "data_collection", "type": "string"},
                {"name": "event_count", "type": "long"},
            ], "connect.version": 1, "connect.name": "event.collection"}]}], "default": null},
        {"name": "ts_ms", "type": "long"},
    ]})
}

fn transaction_key_connect_schema() -> Json {
    json!({"type": "struct", "optional": false,
        "name": "io.debezium.connector.common.TransactionMetadataKey", "version": 1,
        "fields": [{"type": "string", "optional": false, "field": "id"}]})
}

fn transaction_value_connect_schema() -> Json {
    json!({"type": "struct", "optional": false,
    "name": "io.debezium.connector.common.TransactionMetadataValue", "version": 1,
    "fields": [
        {"type": "string", "optional": false, "field": "status"},
        {"type": "string", "optional": false, "field": "id"},
        {"type": "int64", "optional": true, "field": "event_count"},
        {"type": "array", "optional": true, "field": "data_collections", "items": {
            "type": "struct", "optional": true, "name": "event.collection", "version": 1,
            "fields": [
                {"type": "string", "optional": false, "field": "data_collection"},
                {"type": "int64", "optional": false, "field": "event_count"},
            ]}},
        {"type": "int64", "optional": false, "field": "ts_ms"},
    ]})
}

/// Per-row positions of data events in their transaction, for the envelopes'
/// `transaction` block. Batches arrive in commit order, so one running state
/// suffices; it resets when the commit LSN changes.
///
/// `total_order` is the event's place in the transaction in WAL order, as
/// Debezium's: weir batches rows per table, so a transaction's tables may be
/// encoded in another order than they were written, and a running count would
/// follow weir's order. It comes from the row's `_seq` (its place among the
/// transaction's rows) plus one for each primary key change before it, which is
/// two events (Debezium's delete and create). `data_collection_order` counts
/// within the table, whose rows do come in WAL order.
#[derive(Debug, Default, Clone)]
pub(crate) struct TransactionOrder {
    commit_lsn: u64,
    id: String,
    /// `_seq` of the rows encoded so far whose primary key changed, ascending.
    key_changes: Vec<u32>,
    /// Per `schema.table`: events so far.
    per_table: Vec<(String, u64)>,
}

impl TransactionOrder {
    /// The `transaction` block's place of the row at `row` (whose primary key
    /// changed or not); `None` for a snapshot read, which belongs to no
    /// transaction (Debezium leaves its block null).
    pub(crate) fn place(
        &mut self,
        columns: &MetadataColumns<'_>,
        row: usize,
        table: &str,
        key_changed: bool,
    ) -> Option<(&str, u64, u64)> {
        if columns.ops.value(row) == op::READ {
            return None;
        }
        let events = if key_changed { 2 } else { 1 };
        Some(self.next(
            columns.xids.value(row),
            columns.commit_lsns.value(row),
            columns.seqs.value(row),
            table,
            events,
        ))
    }

    /// Moves past the `events` events (two for a primary key change, else one) of
    /// the row at `seq` of transaction (`xid`, `commit_lsn`) in `table`; returns the
    /// transaction id and the first event's `total_order` and
    /// `data_collection_order` (both 1-based, as Debezium's).
    pub(crate) fn next(
        &mut self,
        xid: u32,
        commit_lsn: u64,
        seq: u32,
        table: &str,
        events: u64,
    ) -> (&str, u64, u64) {
        if commit_lsn != self.commit_lsn || self.id.is_empty() {
            self.commit_lsn = commit_lsn;
            self.id.clear();
            self.id.push_str(itoa::Buffer::new().format(xid));
            self.id.push(':');
            self.id.push_str(itoa::Buffer::new().format(commit_lsn));
            self.key_changes.clear();
            self.per_table.clear();
        }
        // Key changes of rows written before this one, in any table; a table
        // encoded later than its place in the WAL adds them as they come.
        // Kept sorted, so a transaction of a million key changes counts in
        // O(log n) per row (and inserts at the end: a table's rows come in order).
        let earlier = self.key_changes.partition_point(|s| *s < seq);
        let total = u64::from(seq) + 1 + earlier as u64;
        if events > 1 {
            self.key_changes.insert(earlier, seq);
        }
        let in_table = match self.per_table.iter_mut().find(|(t, _)| t == table) {
            Some((_, n)) => {
                *n += events;
                *n + 1 - events
            }
            None => {
                self.per_table.push((table.to_owned(), events));
                1
            }
        };
        (&self.id, total, in_table)
    }
}

/// The transaction id weir uses: `"<xid>:<commit LSN>"`.
pub fn transaction_id(xid: u32, commit_lsn: u64) -> String {
    format!("{xid}:{commit_lsn}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_count_per_transaction_and_table() {
        let mut order = TransactionOrder::default();
        assert_eq!(order.next(7, 100, 0, "public.a", 1), ("7:100", 1, 1));
        assert_eq!(order.next(7, 100, 1, "public.b", 1), ("7:100", 2, 1));
        // A primary key change: a delete and a create.
        assert_eq!(order.next(7, 100, 2, "public.a", 2), ("7:100", 3, 2));
        assert_eq!(order.next(7, 100, 3, "public.a", 1), ("7:100", 5, 4));
        // Another table's row, written after that key change and encoded after
        // it: its place in the WAL.
        assert_eq!(order.next(7, 100, 4, "public.c", 1), ("7:100", 6, 1));
        // A row encoded before a key change written ahead of it in another table
        // cannot count it: one short (the limit of per-table batches).
        assert_eq!(order.next(8, 200, 1, "public.b", 1), ("8:200", 2, 1));
        assert_eq!(order.next(8, 200, 0, "public.a", 2), ("8:200", 1, 1));
        assert_eq!(order.next(8, 200, 2, "public.b", 1), ("8:200", 4, 2));
        assert_eq!(transaction_id(8, 200), "8:200");
    }
}
