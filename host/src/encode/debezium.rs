//! `debezium-json`: Debezium's change event envelope, as Debezium's PostgreSQL
//! connector writes it with Kafka Connect's JSON converter. With `schemas` off
//! (`schemas.enable=false`):
//!
//! ```json
//! {"before": null, "after": {"id": 1, …},
//!  "source": {"version": "…", "connector": "postgresql", "name": "shop", "ts_ms": …,
//!             "snapshot": "false", "db": "shop", "sequence": "[\"…\",\"…\"]",
//!             "schema": "public", "table": "orders", "txId": 741, "lsn": 24023128,
//!             "xmin": null},
//!  "op": "c", "ts_ms": …, "transaction": null}
//! ```
//!
//! The key is the primary key as an object (`{"id":1}`); tables without one get a
//! null key. A delete is followed by a tombstone (same key, null value) unless
//! `tombstones` is off, as with Debezium's `tombstones.on.delete`. `before` is the
//! old row image: the whole row under `REPLICA IDENTITY FULL`, else for a delete the
//! key columns (the others null) and for an update null, as Debezium has it.
//!
//! With `schemas` on, key and value are `{"schema": …, "payload": …}`, the schema
//! being the Connect schema Debezium declares (see [`super::connect`]), named
//! `<name>.<schema>.<table>.Key`/`.Envelope`; it is serialized once per table schema.

use std::sync::Arc;

use arrow::array::Array;
use arrow::datatypes::{Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::connect::ConnectSchemas;
use super::json::write_image;
use super::kind::ValueKind;
use super::layout::{Layout, MetadataColumns, is_unchanged};
use super::metadata::TransactionOrder;
use super::value::{ValueOptions, string};
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;

/// What the envelope says beyond the row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebeziumOptions {
    /// `source.name`: Debezium's logical server name (`topic.prefix`).
    pub name: String,
    /// `source.db`: the database name.
    pub database: String,
    /// Whether a delete is followed by a tombstone.
    pub tombstones: bool,
    /// Whether keys and values carry their Kafka Connect schema,
    /// `{"schema": …, "payload": …}` (Connect's `schemas.enable`).
    pub schemas: bool,
    /// Whether each event's `transaction` block is filled (`id`, `total_order`,
    /// `data_collection_order`), for consumers of the transaction metadata topic.
    pub transactions: bool,
    /// Value conventions.
    pub values: ValueOptions,
}

impl DebeziumOptions {
    /// Debezium's defaults for a server `name` and `database`.
    pub fn new(name: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            database: database.into(),
            tombstones: true,
            schemas: false,
            transactions: false,
            values: ValueOptions::default(),
        }
    }
}

/// The `debezium-json` encoder.
#[derive(Debug, Clone)]
pub struct DebeziumJsonEncoder {
    options: DebeziumOptions,
    /// `"version":"…","connector":"postgresql","name":"…"`, written once.
    source_prefix: Vec<u8>,
    /// With `schemas`: the Connect schemas of the last batch schema seen.
    connect: Option<(SchemaRef, Arc<ConnectSchemas>)>,
    /// With `transactions`: each event's place in its transaction.
    order: TransactionOrder,
}

impl DebeziumJsonEncoder {
    /// An encoder with these options.
    pub fn new(options: DebeziumOptions) -> Self {
        let mut source_prefix = b"{\"version\":".to_vec();
        string(&format!("weir-{}", crate::VERSION), &mut source_prefix);
        source_prefix.extend_from_slice(b",\"connector\":\"postgresql\",\"name\":");
        string(&options.name, &mut source_prefix);
        Self {
            options,
            source_prefix,
            connect: None,
            order: TransactionOrder::default(),
        }
    }
}

impl DebeziumJsonEncoder {
    /// The Connect schemas of `batch`'s table, derived again only when the batch
    /// schema changed.
    fn connect_schemas(&mut self, batch: &RecordBatch, layout: &Layout) -> Arc<ConnectSchemas> {
        let schema = batch.schema();
        if let Some((last, schemas)) = &self.connect
            && *last == schema
        {
            return Arc::clone(schemas);
        }
        let fields: Vec<&Field> = layout
            .columns
            .iter()
            .map(|c| schema.field(c.index))
            .collect();
        let name = format!(
            "{}.{}.{}",
            self.options.name, layout.schema_name, layout.table_name
        );
        let schemas = Arc::new(ConnectSchemas::new(
            layout,
            &fields,
            &name,
            &self.options.values,
        ));
        self.connect = Some((Arc::clone(&schema), Arc::clone(&schemas)));
        schemas
    }
}

/// Which row image goes in `before` or `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Image {
    Null,
    /// The old image (`_before`), or the key-only image a delete carries.
    Old,
    /// The row's values.
    New,
}

/// One event of a row: a change is one event, except a primary key change, which
/// Debezium splits into a delete under the old key and a create under the new one.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: u8,
    before: Image,
    after: Image,
    /// Which of the row's events: 0, or 1 for the create of a key change.
    nth: u64,
}

impl Event {
    fn of(change: u8) -> Event {
        let (before, after) = match change {
            op::UPDATE => (Image::Old, Image::New),
            op::DELETE => (Image::Old, Image::Null),
            op::TRUNCATE => (Image::Null, Image::Null),
            _ => (Image::Null, Image::New),
        };
        Event {
            op: change,
            before,
            after,
            nth: 0,
        }
    }
}

/// Debezium's header on the delete (and its tombstone) of a primary key change,
/// holding the new key.
const NEW_KEY_HEADER: &str = "__debezium.newkey";
/// Debezium's header on the create of a primary key change, holding the old key.
const OLD_KEY_HEADER: &str = "__debezium.oldkey";

impl Encoder for DebeziumJsonEncoder {
    fn encode(
        &mut self,
        batch: &RecordBatch,
        marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError> {
        let layout = Layout::new(batch.schema_ref())?;
        let connect = self
            .options
            .schemas
            .then(|| self.connect_schemas(batch, &layout));
        let writers = layout.writers(batch);
        let before = layout.before(batch);
        let before_writers = layout.before_writers(batch);
        let metadata = layout.metadata(batch)?;
        let MetadataColumns {
            ops,
            lsns,
            commit_lsns,
            xids,
            commit_ts,
            ..
        } = metadata;
        let unchanged = layout.unchanged(batch);
        let options = &self.options;
        let order = &mut self.order;
        let table_key = format!("{}.{}", layout.schema_name, layout.table_name);
        let values = &options.values;
        // A required column's stand-in where an old image lacks it.
        let zeros: Vec<Option<&'static [u8]>> = layout
            .columns
            .iter()
            .map(|c| {
                c.required
                    .then(|| ValueKind::of(batch.schema().field(c.index), values).zero_json())
            })
            .collect();
        // Per column, what stands for a value left unchanged in TOAST (only when
        // the batch has any).
        let placeholders: Vec<Vec<u8>> = match unchanged {
            Some(_) => layout
                .columns
                .iter()
                .map(|c| {
                    ValueKind::of(batch.schema().field(c.index), values).placeholder_json(values)
                })
                .collect(),
            None => Vec::new(),
        };
        let now_micros = crate::clock::now_unix_micros();
        let mut source_rest = Vec::new();
        source_rest.extend_from_slice(b",\"db\":");
        string(&options.database, &mut source_rest);
        let mut table_part = b",\"schema\":".to_vec();
        string(&layout.schema_name, &mut table_part);
        table_part.extend_from_slice(b",\"table\":");
        string(&layout.table_name, &mut table_part);
        let has_key = !layout.key.is_empty();
        let mut old_key = Vec::new();
        let mut new_key = Vec::new();

        let rows = batch.num_rows();
        for row in 0..rows {
            let change = ops.value(row);
            let has_old_image = before.is_some_and(|b| !b.is_null(row));
            // A primary key change: the old image's key differs from the row's.
            let key_changed = change == op::UPDATE
                && has_key
                && has_old_image
                && layout.key_changed(
                    (&before_writers, &writers),
                    row,
                    values,
                    (&mut old_key, &mut new_key),
                );
            let transaction = options
                .transactions
                .then(|| order.place(&metadata, row, &table_key, key_changed))
                .flatten();
            let wrap_key = |key: &[u8], buffer: &mut Vec<u8>| match connect
                .as_ref()
                .and_then(|c| c.key_prefix.as_ref())
            {
                Some(prefix) => {
                    buffer.extend_from_slice(prefix);
                    buffer.extend_from_slice(key);
                    buffer.push(b'}');
                }
                None => buffer.extend_from_slice(key),
            };
            let key =
                |buffer: &mut Vec<u8>| match connect.as_ref().and_then(|c| c.key_prefix.as_ref()) {
                    Some(prefix) => {
                        buffer.extend_from_slice(prefix);
                        layout.write_key(&writers, row, Some(values), buffer);
                        buffer.push(b'}');
                    }
                    None => layout.write_key(&writers, row, Some(values), buffer),
                };
            let row_image = |buffer: &mut Vec<u8>| {
                buffer.push(b'{');
                for (position, (column, writer)) in layout.columns.iter().zip(&writers).enumerate()
                {
                    if position > 0 {
                        buffer.push(b',');
                    }
                    buffer.extend_from_slice(&column.json_prefix);
                    if writer.is_null(row) && is_unchanged(unchanged, row, position) {
                        buffer.extend_from_slice(&placeholders[position]);
                    } else if let (true, Some(zero)) = (writer.is_null(row), zeros[position]) {
                        buffer.extend_from_slice(zero);
                    } else {
                        writer.write(row, values, buffer);
                    }
                }
                buffer.push(b'}');
            };
            let old_image = |buffer: &mut Vec<u8>| {
                match before {
                    Some(before) if !before.is_null(row) => {
                        write_image(&layout, &before_writers, &zeros, row, values, buffer);
                    }
                    // Without a full old image, a delete's row is the old key.
                    _ if change == op::DELETE => row_image(buffer),
                    _ => buffer.extend_from_slice(b"null"),
                }
            };
            let image = |which: Image, buffer: &mut Vec<u8>| match which {
                Image::Null => buffer.extend_from_slice(b"null"),
                Image::Old => old_image(buffer),
                Image::New => row_image(buffer),
            };
            let envelope = |event: Event, buffer: &mut Vec<u8>| {
                if let Some(connect) = &connect {
                    buffer.extend_from_slice(&connect.value_prefix);
                }
                let mut itoa = itoa::Buffer::new();
                let commit_micros = commit_ts.value(row);
                buffer.extend_from_slice(b"{\"before\":");
                image(event.before, buffer);
                buffer.extend_from_slice(b",\"after\":");
                image(event.after, buffer);
                buffer.extend_from_slice(b",\"source\":");
                buffer.extend_from_slice(&self.source_prefix);
                buffer.extend_from_slice(b",\"ts_ms\":");
                buffer.extend_from_slice(itoa.format(commit_micros.div_euclid(1000)).as_bytes());
                buffer.extend_from_slice(b",\"snapshot\":");
                buffer.push(b'"');
                buffer.extend_from_slice(if change == op::READ {
                    marks.marker(row, rows).as_bytes()
                } else {
                    b"false"
                });
                buffer.push(b'"');
                buffer.extend_from_slice(&source_rest);
                buffer.extend_from_slice(b",\"sequence\":");
                // `"[\"<commit lsn>\",\"<lsn>\"]"`: a JSON string holding a JSON array.
                buffer.extend_from_slice(br#""[\""#);
                buffer.extend_from_slice(itoa.format(commit_lsns.value(row)).as_bytes());
                buffer.extend_from_slice(br#"\",\""#);
                buffer.extend_from_slice(itoa.format(lsns.value(row)).as_bytes());
                buffer.extend_from_slice(br#"\"]""#);
                write_micros_as_us_ns(commit_micros, buffer);
                buffer.extend_from_slice(&table_part);
                buffer.extend_from_slice(b",\"txId\":");
                buffer.extend_from_slice(itoa.format(xids.value(row)).as_bytes());
                buffer.extend_from_slice(b",\"lsn\":");
                buffer.extend_from_slice(itoa.format(lsns.value(row)).as_bytes());
                buffer.extend_from_slice(
                    b",\"xmin\":null,\"origin\":null,\"origin_lsn\":null},\"transaction\":",
                );
                match transaction {
                    Some((id, total, in_table)) => {
                        buffer.extend_from_slice(b"{\"id\":\"");
                        buffer.extend_from_slice(id.as_bytes());
                        buffer.extend_from_slice(b"\",\"total_order\":");
                        buffer.extend_from_slice(itoa.format(total + event.nth).as_bytes());
                        buffer.extend_from_slice(b",\"data_collection_order\":");
                        buffer.extend_from_slice(itoa.format(in_table + event.nth).as_bytes());
                        buffer.push(b'}');
                    }
                    None => buffer.extend_from_slice(b"null"),
                }
                buffer.extend_from_slice(b",\"op\":\"");
                buffer.push(event.op);
                buffer.extend_from_slice(b"\",\"ts_ms\":");
                buffer.extend_from_slice(itoa.format(now_micros.div_euclid(1000)).as_bytes());
                write_micros_as_us_ns(now_micros, buffer);
                buffer.push(b'}');
                if connect.is_some() {
                    buffer.push(b'}');
                }
            };
            if key_changed {
                // Debezium's three events: a delete under the old key, its tombstone,
                // and a create under the new key, the other key in a header of each.
                let deleted = |buffer: &mut Vec<u8>| {
                    envelope(
                        Event {
                            op: op::DELETE,
                            before: Image::Old,
                            after: Image::Null,
                            nth: 0,
                        },
                        buffer,
                    )
                };
                let created = |buffer: &mut Vec<u8>| {
                    envelope(
                        Event {
                            op: op::INSERT,
                            before: Image::Null,
                            after: Image::New,
                            nth: 1,
                        },
                        buffer,
                    )
                };
                let old_key_message = |buffer: &mut Vec<u8>| wrap_key(&old_key, buffer);
                push_key_change(
                    out,
                    row,
                    options.tombstones,
                    KeyChange {
                        old_key: &old_key_message,
                        new_key: &key,
                        old_key_json: &old_key,
                        new_key_json: &new_key,
                    },
                    &deleted,
                    &created,
                );
                continue;
            }
            let value = |buffer: &mut Vec<u8>| envelope(Event::of(change), buffer);
            // A TRUNCATE is the table's, not a row's: no key, as Debezium's.
            let key_writer = (has_key && change != op::TRUNCATE).then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
            if change == op::DELETE && options.tombstones && has_key {
                out.push(row, key_writer, None);
            }
        }
        Ok(())
    }
}

/// The keys of a primary key change: the messages' keys, and their JSON for the
/// headers.
pub(crate) struct KeyChange<'a> {
    pub(crate) old_key: WriteBytes<'a>,
    pub(crate) new_key: WriteBytes<'a>,
    pub(crate) old_key_json: &'a [u8],
    pub(crate) new_key_json: &'a [u8],
}

/// Debezium's three messages for a primary key change: `deleted` under the old key
/// and its tombstone, each with the new key in `__debezium.newkey`, then `created`
/// under the new key with the old one in `__debezium.oldkey`.
pub(crate) fn push_key_change(
    out: &mut Messages,
    row: usize,
    tombstones: bool,
    keys: KeyChange<'_>,
    deleted: WriteBytes<'_>,
    created: WriteBytes<'_>,
) {
    let old_key_header = |buffer: &mut Vec<u8>| buffer.extend_from_slice(keys.old_key_json);
    let new_key_header = |buffer: &mut Vec<u8>| buffer.extend_from_slice(keys.new_key_json);
    out.push_with_header(
        row,
        Some(keys.old_key),
        Some(deleted),
        Some((NEW_KEY_HEADER, &new_key_header)),
    );
    if tombstones {
        out.push_with_header(
            row,
            Some(keys.old_key),
            None,
            Some((NEW_KEY_HEADER, &new_key_header)),
        );
    }
    out.push_with_header(
        row,
        Some(keys.new_key),
        Some(created),
        Some((OLD_KEY_HEADER, &old_key_header)),
    );
}

/// `,"ts_us":…,"ts_ns":…` for a time in microseconds (nanoseconds are not known
/// more precisely).
fn write_micros_as_us_ns(micros: i64, buffer: &mut Vec<u8>) {
    let mut itoa = itoa::Buffer::new();
    buffer.extend_from_slice(b",\"ts_us\":");
    buffer.extend_from_slice(itoa.format(micros).as_bytes());
    buffer.extend_from_slice(b",\"ts_ns\":");
    buffer.extend_from_slice(itoa.format(i128::from(micros) * 1000).as_bytes());
}
