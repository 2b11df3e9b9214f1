//! `avro`: Confluent's wire format (magic byte 0, the schema id, the Avro binary
//! datum) with schemas registered in a Schema Registry under Kafka's default
//! subject names, `<topic>-key` and `<topic>-value`.
//!
//! The value is Debezium's envelope (`before`, `after`, `source`, `op`, `ts_ms`,
//! `transaction`) and the key the primary key, as Debezium's PostgreSQL connector
//! writes them through Confluent's Avro converter, so consumers built for Debezium
//! read weir's topics unchanged. The schemas are derived once per table schema and
//! topic (see [`schema`]) and registered once per process; each row is then written
//! straight from the Arrow columns. A changed table (a new column, a new type)
//! derives a new schema, which the registry stores as the subject's next version.
//!
//! Value conventions follow Debezium's defaults: `numeric(p,s)` as Connect
//! `Decimal` bytes (or string/double with `decimal_handling_mode`), unconstrained
//! `numeric` as `VariableScaleDecimal`, times as `MicroTime`/`MicroTimestamp`,
//! `timestamptz` as `ZonedTimestamp` text, `interval` as `MicroDuration`, `bytea` as
//! bytes, and unchanged TOAST values as the placeholder (text and bytes columns) or
//! null. Value fields are optional (a union with null); key fields are required.

pub(crate) mod binary;
pub(crate) mod datum;
pub mod evolution;
pub mod registry;
pub(crate) mod schema;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray};
use arrow::datatypes::{Field, SchemaRef};
use arrow::record_batch::RecordBatch;

use self::evolution::{Evolution, Renames, SchemaChangePolicy};
use self::registry::SchemaRegistry;
use self::schema::AvroSchemas;
use super::debezium::{DebeziumOptions, KeyChange, push_key_change};
use super::kind::ValueKind;
use super::layout::{Layout, MetadataColumns, is_unchanged};
use super::metadata::TransactionOrder;
use super::value::ColumnWriter;
use super::{EncodeError, Encoder, Messages, WriteBytes};
use crate::contract::SnapshotMarks;
use crate::contract::columns::op;
use crate::contract::topics::{TopicNames, sanitize_topic};

/// A table schema's registered form under one topic.
#[derive(Debug)]
struct Registered {
    schemas: AvroSchemas,
    key_id: Option<u32>,
    value_id: u32,
}

/// The `avro` encoder.
#[derive(Debug)]
pub struct AvroEncoder {
    options: DebeziumOptions,
    topics: TopicNames,
    registry: SchemaRegistry,
    /// What happens when the registry refuses a new schema.
    evolution: Evolution,
    /// Renamed columns' earlier names, for aliases.
    renames: Renames,
    registered: HashMap<(SchemaRef, Arc<str>), Arc<Registered>>,
    version: String,
    order: TransactionOrder,
}

impl AvroEncoder {
    /// An encoder registering with `registry`; `topics` names the topics (and so
    /// the subjects) of each table.
    pub fn new(options: DebeziumOptions, topics: TopicNames, registry: SchemaRegistry) -> Self {
        Self {
            options,
            topics,
            registry,
            evolution: Evolution::default(),
            renames: Renames::default(),
            registered: HashMap::new(),
            version: format!("weir-{}", crate::VERSION),
            order: TransactionOrder::default(),
        }
    }

    /// What to do when the registry refuses a table's new schema (default:
    /// stop).
    pub fn with_schema_change(mut self, policy: SchemaChangePolicy) -> Self {
        self.evolution = Evolution::new(policy);
        self
    }

    fn registered(
        &mut self,
        schema: &SchemaRef,
        layout: &Layout,
        fields: &[&Field],
        topic: &Arc<str>,
    ) -> Result<Arc<Registered>, EncodeError> {
        let cache_key = (Arc::clone(schema), Arc::clone(topic));
        if let Some(found) = self.registered.get(&cache_key) {
            return Ok(Arc::clone(found));
        }
        // Record names as Debezium's: `<topic.prefix>.<schema>.<table>.Envelope`.
        let name = format!(
            "{}.{}.{}",
            self.options.name, layout.schema_name, layout.table_name
        );
        let table = format!("{}.{}", layout.schema_name, layout.table_name);
        self.renames
            .seed(&table, &self.registry, &format!("{topic}-value"));
        let schemas = AvroSchemas::new(
            layout,
            fields,
            &name,
            &self.options.values,
            self.renames.aliases(&table),
        );
        self.renames.registered(&table, || {
            layout
                .columns
                .iter()
                .map(|c| self::schema::avro_name(&c.name))
                .collect()
        });
        let key_id = match &schemas.key_schema {
            Some(key_schema) => Some(self.evolution.register(
                &mut self.registry,
                &format!("{topic}-key"),
                key_schema,
                &table,
            )?),
            None => None,
        };
        let value_id = self.evolution.register(
            &mut self.registry,
            &format!("{topic}-value"),
            &schemas.value_schema,
            &table,
        )?;
        let registered = Arc::new(Registered {
            schemas,
            key_id,
            value_id,
        });
        self.registered.insert(cache_key, Arc::clone(&registered));
        Ok(registered)
    }
}

/// The arrays of one image (current or old) of a batch, per user column.
struct Image<'a> {
    arrays: Vec<Option<&'a dyn Array>>,
    /// Text renderers for the kinds written through their text form.
    text: Vec<Option<ColumnWriter<'a>>>,
}

impl<'a> Image<'a> {
    fn new(arrays: Vec<Option<(&'a Field, &'a dyn Array)>>, registered: &Registered) -> Self {
        let text = arrays
            .iter()
            .zip(&registered.schemas.columns)
            .map(|(array, column)| {
                let (field, array) = (*array)?;
                matches!(
                    column.kind,
                    ValueKind::TextForm | ValueKind::DecimalString | ValueKind::DecimalDouble
                )
                .then(|| ColumnWriter::for_array(field, array))
            })
            .collect();
        Self {
            arrays: arrays.into_iter().map(|a| a.map(|(_, a)| a)).collect(),
            text,
        }
    }
}

/// Writes the `Value` record of `image` at `row`.
fn write_value_record(
    registered: &Registered,
    image: &Image<'_>,
    row: usize,
    unchanged: Option<&arrow::array::ListArray>,
    placeholder: &str,
    scratch: &mut String,
    out: &mut Vec<u8>,
) {
    for column in &registered.schemas.columns {
        let array = image.arrays[column.position];
        let present =
            array.filter(|a| a.is_valid(row) && datum::representable(&column.kind, *a, row));
        // A required field has no union: its value, the placeholder, or the zero.
        let branch = |index: i64, out: &mut Vec<u8>| {
            if !column.required {
                binary::union_branch(index, out);
            }
        };
        match present {
            Some(array) => {
                branch(1, out);
                datum::write(
                    &column.kind,
                    array,
                    image.text[column.position].as_ref(),
                    row,
                    scratch,
                    out,
                );
            }
            None if is_unchanged(unchanged, row, column.position)
                && matches!(
                    column.kind,
                    ValueKind::Text { .. } | ValueKind::TextForm | ValueKind::Bytes
                ) =>
            {
                branch(1, out);
                binary::bytes(placeholder.as_bytes(), out);
            }
            None if is_unchanged(unchanged, row, column.position)
                && let Some(items) = ArrayPlaceholder::of(&column.kind) =>
            {
                branch(1, out);
                items.write(placeholder, out);
            }
            None if column.required => datum::write_zero(&column.kind, out),
            None => binary::union_branch(0, out),
        }
    }
}

/// Debezium's placeholder for an array left unchanged in TOAST, as the JSON
/// encoder writes it (`ValueKind::placeholder_json`). Other arrays stay null.
#[derive(Debug, Clone, Copy)]
enum ArrayPlaceholder {
    /// Arrays of text: a one-element array of the placeholder.
    Text,
    /// Arrays of integers: the placeholder's bytes.
    Integers,
}

impl ArrayPlaceholder {
    fn of(kind: &ValueKind) -> Option<Self> {
        let ValueKind::Array(element) = kind else {
            return None;
        };
        match **element {
            ValueKind::Text {
                connect_name: None, ..
            } => Some(ArrayPlaceholder::Text),
            ValueKind::Int16 | ValueKind::Int32 | ValueKind::Int64 => {
                Some(ArrayPlaceholder::Integers)
            }
            _ => None,
        }
    }

    /// The array (one block, then the end); its items are `["null", T]` unions.
    fn write(self, placeholder: &str, out: &mut Vec<u8>) {
        match self {
            ArrayPlaceholder::Text => {
                binary::long(1, out);
                binary::union_branch(1, out);
                binary::bytes(placeholder.as_bytes(), out);
            }
            ArrayPlaceholder::Integers => {
                binary::long(i64::try_from(placeholder.len()).unwrap_or(i64::MAX), out);
                for byte in placeholder.bytes() {
                    binary::union_branch(1, out);
                    binary::long(i64::from(byte), out);
                }
            }
        }
        binary::long(0, out);
    }
}

/// Optional `ts_us` and `ts_ns` for a time in microseconds.
fn write_us_ns(micros: i64, out: &mut Vec<u8>) {
    binary::union_branch(1, out);
    binary::long(micros, out);
    binary::union_branch(1, out);
    binary::long(micros.saturating_mul(1000), out);
}

/// Which image a side (`before`, `after`) of an event holds.
#[derive(Debug, Clone, Copy)]
enum Side {
    Null,
    Old,
    Current,
}

impl Encoder for AvroEncoder {
    fn schema_change(&mut self, change: &crate::contract::SchemaChange) {
        let table = change.table_name();
        let topic = self
            .topics
            .topic(&change.command.schema, &change.command.table);
        self.renames
            .seed(&table, &self.registry, &format!("{topic}-value"));
        self.renames.schema_change(change);
    }

    fn encode(
        &mut self,
        batch: &RecordBatch,
        marks: SnapshotMarks,
        out: &mut Messages,
    ) -> Result<(), EncodeError> {
        let schema = batch.schema();
        let layout = Layout::new(&schema)?;
        let fields: Vec<&Field> = layout
            .columns
            .iter()
            .map(|c| schema.field(c.index))
            .collect();
        let default_topic: Arc<str> = self
            .topics
            .topic(&layout.schema_name, &layout.table_name)
            .into();
        let plugin_topics: Option<&StringArray> = batch
            .column_by_name("_topic")
            .and_then(|c| c.as_string_opt());
        // The registered schemas per row's topic: the default, and each distinct
        // topic a plugin chose.
        let default = self.registered(&schema, &layout, &fields, &default_topic)?;
        let mut by_plugin_topic: HashMap<&str, Arc<Registered>> = HashMap::new();
        if let Some(topics) = plugin_topics {
            for raw in topics.iter().flatten() {
                if !by_plugin_topic.contains_key(raw) {
                    let topic: Arc<str> = sanitize_topic(raw).into();
                    let registered = self.registered(&schema, &layout, &fields, &topic)?;
                    by_plugin_topic.insert(raw, registered);
                }
            }
        }

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
        let before = layout.before(batch);
        let current: Vec<Option<(&Field, &dyn Array)>> = layout
            .columns
            .iter()
            .map(|c| Some((schema.field(c.index), batch.column(c.index).as_ref())))
            .collect();
        let old: Vec<Option<(&Field, &dyn Array)>> = layout
            .columns
            .iter()
            .map(|c| {
                let before = before?;
                let child = c.before_child?;
                Some((
                    before.fields()[child].as_ref(),
                    before.column(child).as_ref(),
                ))
            })
            .collect();
        let now_micros = crate::clock::now_unix_micros();
        let options = &self.options;
        let order = &mut self.order;
        let table_key = format!("{}.{}", layout.schema_name, layout.table_name);
        let placeholder = options.values.unavailable_placeholder.as_str();
        let version = self.version.as_str();
        // Images per registered schema (they differ only in which text renderers
        // exist, which depends on the kinds, which are the same for every topic).
        let current_image = Image::new(current, &default);
        let old_image = Image::new(old, &default);
        let scratch = RefCell::new(String::new());
        let mut missing_key: Option<String> = None;
        // Key changes are found by comparing the keys' JSON, which also fills the
        // `__debezium.oldkey`/`newkey` headers.
        let writers = layout.writers(batch);
        let before_writers = layout.before_writers(batch);
        let mut old_key = Vec::new();
        let mut new_key = Vec::new();

        let rows = batch.num_rows();
        for row in 0..rows {
            let registered = match plugin_topics {
                Some(topics) if topics.is_valid(row) => {
                    by_plugin_topic.get(topics.value(row)).unwrap_or(&default)
                }
                _ => &default,
            };
            let change = ops.value(row);
            let has_old = before.is_some_and(|b| b.is_valid(row));
            // A primary key change: Debezium's delete under the old key, its
            // tombstone, and a create under the new key (see the JSON encoder).
            let key_changed = change == op::UPDATE
                && registered.key_id.is_some()
                && has_old
                && layout.key_changed(
                    (&before_writers, &writers),
                    row,
                    &options.values,
                    (&mut old_key, &mut new_key),
                );
            let transaction = options
                .transactions
                .then(|| order.place(&metadata, row, &table_key, key_changed))
                .flatten();
            let key_of = |image: &Image<'_>, buffer: &mut Vec<u8>| {
                let mut scratch = scratch.borrow_mut();
                binary::confluent_header(registered.key_id.unwrap_or(0), buffer);
                for &position in &registered.schemas.key {
                    let column = &registered.schemas.columns[position];
                    let array = image.arrays[position];
                    let valid = array
                        .filter(|a| a.is_valid(row) && datum::representable(&column.kind, *a, row));
                    match (valid, column.kind.may_fail()) {
                        (Some(array), nullable) => {
                            if nullable {
                                binary::union_branch(1, buffer);
                            }
                            datum::write(
                                &column.kind,
                                array,
                                image.text[position].as_ref(),
                                row,
                                &mut scratch,
                                buffer,
                            );
                        }
                        (None, true) => binary::union_branch(0, buffer),
                        (None, false) => {
                            // Keys of PostgreSQL tables are never null; a plugin
                            // that nulled one gets an error, not a corrupt datum.
                            binary::long(0, buffer);
                        }
                    }
                }
            };
            let key = |buffer: &mut Vec<u8>| key_of(&current_image, buffer);
            if registered.key_id.is_some() && change != op::TRUNCATE {
                for &position in &registered.schemas.key {
                    let column = &registered.schemas.columns[position];
                    if !column.kind.may_fail()
                        && current_image.arrays[position].is_none_or(|a| a.is_null(row))
                    {
                        missing_key.get_or_insert_with(|| layout.columns[position].name.clone());
                    }
                }
            }
            let write_current = |scratch: &mut String, buffer: &mut Vec<u8>| {
                write_value_record(
                    registered,
                    &current_image,
                    row,
                    unchanged,
                    placeholder,
                    scratch,
                    buffer,
                );
            };
            // `nth`: which of the row's events, 1 for the create of a key change.
            let envelope = |event: u8,
                            nth: u64,
                            before_image: Side,
                            after_image: Side,
                            buffer: &mut Vec<u8>| {
                let mut scratch = scratch.borrow_mut();
                binary::confluent_header(registered.value_id, buffer);
                for side in [before_image, after_image] {
                    match side {
                        Side::Null => binary::union_branch(0, buffer),
                        Side::Old => {
                            binary::union_branch(1, buffer);
                            write_value_record(
                                registered,
                                &old_image,
                                row,
                                None,
                                placeholder,
                                &mut scratch,
                                buffer,
                            );
                        }
                        Side::Current => {
                            binary::union_branch(1, buffer);
                            write_current(&mut scratch, buffer);
                        }
                    }
                }
                // source
                let commit_micros = commit_ts.value(row);
                binary::bytes(version.as_bytes(), buffer);
                binary::bytes(b"postgresql", buffer);
                binary::bytes(options.name.as_bytes(), buffer);
                binary::long(commit_micros.div_euclid(1000), buffer);
                binary::union_branch(0, buffer);
                binary::bytes(
                    if change == op::READ {
                        marks.marker(row, rows).as_bytes()
                    } else {
                        b"false"
                    },
                    buffer,
                );
                binary::bytes(options.database.as_bytes(), buffer);
                binary::union_branch(1, buffer);
                let mut itoa = itoa::Buffer::new();
                scratch.clear();
                scratch.push_str("[\"");
                scratch.push_str(itoa.format(commit_lsns.value(row)));
                scratch.push_str("\",\"");
                scratch.push_str(itoa.format(lsns.value(row)));
                scratch.push_str("\"]");
                binary::bytes(scratch.as_bytes(), buffer);
                write_us_ns(commit_micros, buffer);
                binary::bytes(layout.schema_name.as_bytes(), buffer);
                binary::bytes(layout.table_name.as_bytes(), buffer);
                binary::union_branch(1, buffer);
                binary::long(i64::from(xids.value(row)), buffer);
                binary::union_branch(1, buffer);
                binary::long(i64::try_from(lsns.value(row)).unwrap_or(i64::MAX), buffer);
                // xmin, origin, origin_lsn
                binary::union_branch(0, buffer);
                binary::union_branch(0, buffer);
                binary::union_branch(0, buffer);
                // transaction, op, ts_ms, ts_us, ts_ns
                match transaction {
                    Some((id, total, in_table)) => {
                        binary::union_branch(1, buffer);
                        binary::bytes(id.as_bytes(), buffer);
                        for order in [total + nth, in_table + nth] {
                            binary::long(i64::try_from(order).unwrap_or(i64::MAX), buffer);
                        }
                    }
                    None => binary::union_branch(0, buffer),
                }
                binary::bytes(&[event], buffer);
                binary::union_branch(1, buffer);
                binary::long(now_micros.div_euclid(1000), buffer);
                write_us_ns(now_micros, buffer);
            };
            if key_changed {
                let old_key_message = |buffer: &mut Vec<u8>| key_of(&old_image, buffer);
                let deleted =
                    |buffer: &mut Vec<u8>| envelope(op::DELETE, 0, Side::Old, Side::Null, buffer);
                let created = |buffer: &mut Vec<u8>| {
                    envelope(op::INSERT, 1, Side::Null, Side::Current, buffer)
                };
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
            let (before_side, after_side) = match change {
                op::UPDATE | op::DELETE if has_old => (
                    Side::Old,
                    if change == op::DELETE {
                        Side::Null
                    } else {
                        Side::Current
                    },
                ),
                // Without a full old image, a delete's row is the old key.
                op::DELETE => (Side::Current, Side::Null),
                op::TRUNCATE => (Side::Null, Side::Null),
                _ => (Side::Null, Side::Current),
            };
            let value = |buffer: &mut Vec<u8>| envelope(change, 0, before_side, after_side, buffer);
            // A TRUNCATE is the table's, not a row's: no key, as Debezium's.
            let key_writer = (registered.key_id.is_some() && change != op::TRUNCATE)
                .then_some(&key as WriteBytes<'_>);
            out.push(row, key_writer, Some(&value));
            if change == op::DELETE && options.tombstones && key_writer.is_some() {
                out.push(row, key_writer, None);
            }
        }
        match missing_key {
            Some(column) => Err(EncodeError::NullKey(column)),
            None => Ok(()),
        }
    }
}
