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
use crate::batch::schema::metadata;
use crate::encode::Messages;
use crate::encode::value::{ColumnWriter, ValueOptions};

/// A topic template or override that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// An unknown `{placeholder}` or unbalanced brace.
    #[error("topic template {template:?}: {problem}")]
    Template {
        /// The template.
        template: String,
        /// What is wrong.
        problem: String,
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

/// A topic template: literal text and `{database}`, `{schema}`, `{table}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicTemplate {
    text: String,
}

impl TopicTemplate {
    /// Checks `text`'s placeholders.
    pub fn new(text: &str) -> Result<Self, RouteError> {
        let error = |problem: String| RouteError::Template {
            template: text.to_owned(),
            problem,
        };
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| error("a `{` without `}`".into()))?;
            let name = &rest[open + 1..open + close];
            if !["database", "schema", "table"].contains(&name) {
                return Err(error(format!(
                    "unknown placeholder {{{name}}} (expected {{database}}, {{schema}}, {{table}})"
                )));
            }
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(error("a `}` without `{`".into()));
        }
        // The placeholders' values are made legal when rendered; the literal text
        // around them must be legal already, and the whole must not be empty.
        let literal = ["{database}", "{schema}", "{table}"]
            .iter()
            .fold(text.to_owned(), |literal, placeholder| {
                literal.replace(placeholder, "x")
            });
        check_topic_name(&literal).map_err(|_| {
            error(
                "does not make Kafka topic names: write letters, digits, . _ - and {database}, {schema}, {table}".into(),
            )
        })?;
        Ok(Self {
            text: text.to_owned(),
        })
    }

    /// The topic for a table, with characters Kafka does not allow replaced by `_`
    /// (as Debezium does).
    pub fn render(&self, database: &str, schema: &str, table: &str) -> String {
        let topic = self
            .text
            .replace("{database}", database)
            .replace("{schema}", schema)
            .replace("{table}", table);
        sanitize_topic(&topic)
    }
}

/// Kafka's longest topic name.
const MAX_TOPIC_LEN: usize = 249;

/// Whether Kafka allows `c` in a topic name: `[a-zA-Z0-9._-]`.
fn is_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// Kafka topic names: `[a-zA-Z0-9._-]`, at most 249 characters.
pub fn sanitize_topic(topic: &str) -> String {
    topic
        .chars()
        .map(|c| if is_topic_char(c) { c } else { '_' })
        .take(MAX_TOPIC_LEN)
        .collect()
}

/// Checks a topic name as written by a user (an override, a dead-letter or state
/// topic): 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`, which Kafka refuses.
///
/// # Errors
///
/// What is wrong with it, for a spec error.
pub fn check_topic_name(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN || topic == "." || topic == ".." {
        return Err(format!(
            "{topic:?} is not a Kafka topic name (1 to {MAX_TOPIC_LEN} characters, not . or ..)"
        ));
    }
    if let Some(bad) = topic.chars().find(|c| !is_topic_char(*c)) {
        return Err(format!(
            "{topic:?} is not a Kafka topic name: {bad:?} is not allowed (letters, digits, . _ -)"
        ));
    }
    Ok(())
}

/// The routing rules of a pipeline's sink.
#[derive(Debug, Clone)]
pub struct Router {
    database: String,
    template: TopicTemplate,
    /// `schema.table` → topic.
    overrides: HashMap<String, String>,
    policy: PartitionPolicy,
}

/// Where one message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition; `None` leaves it to the producer (a null key).
    pub partition: Option<i32>,
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
            database: database.into(),
            template,
            overrides,
            policy,
        }
    }

    /// The topic of a table (without a plugin's say).
    pub fn topic(&self, schema: &str, table: &str) -> String {
        match self.overrides.get(&format!("{schema}.{table}")) {
            Some(topic) => topic.clone(),
            None => self.template.render(&self.database, schema, table),
        }
    }

    /// The destination of every message of `batch`. `partitions` tells a topic's
    /// partition count (from the broker's metadata). A plugin's `_key` replaces the
    /// message's key for partitioning; the caller sends it as the key too.
    pub fn route(
        &self,
        batch: &RecordBatch,
        messages: &Messages,
        partitions: &dyn Fn(&str) -> u32,
    ) -> Result<Vec<Destination>, RouteError> {
        let schema = batch.schema();
        let meta = |key: &str| schema.metadata().get(key).cloned().unwrap_or_default();
        let (table_schema, table) = (meta(metadata::SCHEMA), meta(metadata::TABLE));
        let default_topic: Arc<str> = self.topic(&table_schema, &table).into();
        let plugin_topics: Option<&StringArray> = batch
            .column_by_name("_topic")
            .and_then(|c| c.as_string_opt());
        let plugin_keys: Option<&BinaryArray> =
            batch.column_by_name("_key").and_then(|c| c.as_binary_opt());
        let plugin_partitions: Option<&Int32Array> = batch
            .column_by_name("_partition")
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
        let default_count = partitions(&default_topic);
        let mut plugin_topic_counts: HashMap<String, (Arc<str>, u32)> = HashMap::new();
        let mut hashed = Vec::new();
        let mut out = Vec::with_capacity(messages.len());
        for message in messages.iter() {
            let row = message.row;
            let (topic, count) = match plugin_topics {
                Some(topics_column) if topics_column.is_valid(row) => {
                    let raw = topics_column.value(row);
                    if !plugin_topic_counts.contains_key(raw) {
                        let name: Arc<str> = sanitize_topic(raw).into();
                        let count = partitions(&name);
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
                        key.map(|key| partition_for_key(key, count))
                    }
                    PartitionPolicy::Columns(_) => {
                        hashed.clear();
                        for writer in column_writers.iter().flatten() {
                            writer.write(row, &options, &mut hashed);
                            hashed.push(0);
                        }
                        Some(partition_for_key(&hashed, count))
                    }
                    policy => table_partition(policy, &self.database, &table_schema, &table, count),
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
    fn templates_render_and_refuse_unknown_placeholders() {
        let template = TopicTemplate::new("{database}.{schema}.{table}").expect("valid");
        assert_eq!(
            template.render("shop", "public", "orders"),
            "shop.public.orders"
        );
        assert_eq!(
            template.render("shop", "public", "order items"),
            "shop.public.order_items"
        );
        assert!(TopicTemplate::new("{db}.{table}").is_err());
        assert!(TopicTemplate::new("{table").is_err());
        assert!(TopicTemplate::new("table}").is_err());
    }

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
