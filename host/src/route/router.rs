//! Where each message goes: the topic from the pipeline's template (`{database}`,
//! `{schema}`, `{table}`) or a per-table override, and the partition from the
//! partition policy; a plugin's routing columns (`_topic`, `_key`, `_partition`)
//! win over both.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryArray, Int32Array, StringArray};
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;

use super::partition::{PartitionPolicy, partition_for_key, table_partition};
use crate::contract::Messages;
use crate::contract::columns::{KEY, PARTITION, TOPIC, metadata};
use crate::contract::topics::{
    Destination, TemplateError, TopicNames, TopicTemplate, sanitize_topic,
};
use crate::encode::value::{ColumnWriter, ValueOptions};

/// Why the messages of a batch could not be routed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The topic template or an override is not one.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A topic's partition count could not be learnt (a topic missing that weir
    /// may not create, a broker that does not answer).
    #[error("{source}")]
    PartitionCount {
        /// The topic.
        topic: String,
        /// Why.
        source: LookupError,
    },
    /// A `columns` policy names a column the table lacks.
    #[error("partition columns: table {table} has no column {column}")]
    MissingColumn {
        /// `schema.table`.
        table: String,
        /// The column.
        column: String,
    },
}

/// Why a topic's partition count is unknown; the caller's error, kept whole.
pub type LookupError = Box<dyn std::error::Error + Send + Sync>;

/// The routing rules of a pipeline's sink.
#[derive(Debug, Clone)]
pub struct Router {
    topics: TopicNames,
    policy: PartitionPolicy,
    /// Under `primary_key`, where a message without a key goes (a table without a
    /// primary key): a table-wide policy, or `None` to spread them with no order.
    keyless: Option<PartitionPolicy>,
}

impl Router {
    /// Rules for `database`'s tables.
    pub fn new(
        database: impl Into<String>,
        template: TopicTemplate,
        overrides: HashMap<String, String>,
        policy: PartitionPolicy,
    ) -> Self {
        Self {
            topics: TopicNames::new(database, template, overrides),
            policy,
            keyless: Some(PartitionPolicy::Table),
        }
    }

    /// Sends messages without a key (rows of a table without a primary key) by
    /// `keyless`, a table-wide policy (`table`, `schema` or a partition), or with
    /// `None` lets the producer spread them over the partitions, in no order.
    pub fn with_keyless(mut self, keyless: Option<PartitionPolicy>) -> Self {
        self.keyless = keyless;
        self
    }

    /// The topic naming rules (the Avro encoder names its subjects after them).
    pub fn topics(&self) -> &TopicNames {
        &self.topics
    }

    /// The topic of a table (without a plugin's say).
    pub fn topic(&self, schema: &str, table: &str) -> String {
        self.topics.topic(schema, table)
    }

    /// The destination of every message of `batch`. `partitions` tells a topic's
    /// partition count (from the broker's metadata), once per distinct topic; its
    /// first failure ends routing. A plugin's `_key` replaces the message's key for
    /// partitioning; the caller sends it as the key too.
    pub fn route(
        &self,
        batch: &RecordBatch,
        messages: &Messages,
        partitions: &mut dyn FnMut(&str) -> Result<u32, LookupError>,
    ) -> Result<Vec<Destination>, RouteError> {
        let mut partitions = |topic: &str| {
            partitions(topic).map_err(|source| RouteError::PartitionCount {
                topic: topic.to_owned(),
                source,
            })
        };
        let schema = batch.schema();
        let meta = |key: &str| schema.metadata().get(key).cloned().unwrap_or_default();
        let (table_schema, table) = (meta(metadata::SCHEMA), meta(metadata::TABLE));
        let default_topic: Arc<str> = self.topic(&table_schema, &table).into();
        let plugin_topics: Option<&StringArray> =
            batch.column_by_name(TOPIC).and_then(|c| c.as_string_opt());
        let plugin_keys: Option<&BinaryArray> =
            batch.column_by_name(KEY).and_then(|c| c.as_binary_opt());
        let plugin_partitions: Option<&Int32Array> = batch
            .column_by_name(PARTITION)
            .and_then(|c| c.as_primitive_opt::<Int32Type>());
        let column_writers = match &self.policy {
            PartitionPolicy::Columns(columns) => {
                let mut writers = Vec::with_capacity(columns.len());
                for column in columns {
                    let index = schema
                        .index_of(column)
                        .map_err(|_| RouteError::MissingColumn {
                            table: format!("{table_schema}.{table}"),
                            column: column.clone(),
                        })?;
                    writers.push(ColumnWriter::new(schema.field(index), batch.column(index)));
                }
                Some(writers)
            }
            _ => None,
        };
        let options = ValueOptions::default();
        // Topics and their partition counts, looked up once per distinct topic: by
        // the plugin's raw `_topic` value, so a repeated one costs no allocation.
        let default_count = partitions(&default_topic)?;
        let mut plugin_topic_counts: HashMap<String, (Arc<str>, u32)> = HashMap::new();
        let mut hashed = Vec::new();
        // The keyless partition for the last partition count asked: the same for
        // every message of the table, so hashed once, not per message.
        let mut keyless: Option<(u32, Option<i32>)> = None;
        let mut out = Vec::with_capacity(messages.len());
        for message in messages.iter() {
            let row = message.row;
            let (topic, count) = match plugin_topics {
                Some(topics_column) if topics_column.is_valid(row) => {
                    let raw = topics_column.value(row);
                    if !plugin_topic_counts.contains_key(raw) {
                        let name: Arc<str> = sanitize_topic(raw).into();
                        let count = partitions(&name)?;
                        plugin_topic_counts.insert(raw.to_owned(), (name, count));
                    }
                    match plugin_topic_counts.get(raw) {
                        Some((name, count)) => (Arc::clone(name), *count),
                        None => (Arc::clone(&default_topic), default_count),
                    }
                }
                _ => (Arc::clone(&default_topic), default_count),
            };
            let partition = match plugin_partitions {
                Some(column) if column.is_valid(row) => Some(column.value(row)),
                _ => match &self.policy {
                    PartitionPolicy::PrimaryKey => {
                        let key = match plugin_keys {
                            Some(keys) if keys.is_valid(row) => Some(keys.value(row)),
                            _ => messages.key(message),
                        };
                        match key {
                            Some(key) => Some(partition_for_key(key, count)),
                            None => match keyless {
                                Some((for_count, partition)) if for_count == count => partition,
                                _ => {
                                    let partition = self.keyless.as_ref().and_then(|policy| {
                                        table_partition(
                                            policy,
                                            self.topics.database(),
                                            &table_schema,
                                            &table,
                                            count,
                                        )
                                    });
                                    keyless = Some((count, partition));
                                    partition
                                }
                            },
                        }
                    }
                    PartitionPolicy::Columns(_) => {
                        hashed.clear();
                        for writer in column_writers.iter().flatten() {
                            writer.write(row, &options, &mut hashed);
                            hashed.push(0);
                        }
                        Some(partition_for_key(&hashed, count))
                    }
                    policy => table_partition(
                        policy,
                        self.topics.database(),
                        &table_schema,
                        &table,
                        count,
                    ),
                },
            };
            out.push(Destination { topic, partition });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_win_over_the_template() {
        let router = Router::new(
            "shop",
            TopicTemplate::new("cdc.{table}").expect("valid"),
            HashMap::from([("public.orders".to_owned(), "orders-v2".to_owned())]),
            PartitionPolicy::PrimaryKey,
        );
        assert_eq!(router.topic("public", "orders"), "orders-v2");
        assert_eq!(router.topic("public", "customers"), "cdc.customers");
    }
}
