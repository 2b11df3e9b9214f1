//! The dead-letter topic: rows a plugin stage could not process under
//! `on_error: dead_letter`, one message per row, in the manner of Kafka Connect's
//! dead-letter queues: the value is the row (as JSON, see
//! [`crate::plugin::rows_as_json`]), the key the row's primary key (a JSON object,
//! when the table has one), and headers tell what failed:
//!
//! | header | value |
//! |---|---|
//! | `weir.dlq.stage` | the stage's name |
//! | `weir.dlq.error` | the error, as logged |
//! | `weir.dlq.error.kind` | `timeout`, `memory`, `trap`, `reported` or `invalid-output` |
//! | `weir.table` | `schema.table` |
//! | `weir.op` | `c`, `u`, `d` or `r` |
//! | `weir.lsn` | the change's LSN, `X/Y` |
//!
//! Sending waits for every message to be acknowledged, so the caller can treat the
//! batch as handled (and its transaction as checkpointable) only afterwards.

use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Map, Value as Json};

use crate::Lsn;
use crate::contract::columns::{LSN, OP, metadata, qualified_table_name};
use crate::plugin::{CallError, DeadLetter, rows_as_json};

/// Producing dead letters failed.
#[allow(missing_docs)]
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeadLetterError {
    /// The producer could not be created (bad properties).
    #[error("dead-letter producer: {0}")]
    Create(Box<rdkafka::error::KafkaError>),
    /// The rows could not be rendered.
    #[error("dead letter of stage {stage}: {error}")]
    Render { stage: String, error: CallError },
    /// Kafka did not acknowledge a message.
    #[error("dead letter of stage {stage} to {topic}: {error}")]
    Delivery {
        stage: String,
        topic: String,
        error: Box<rdkafka::error::KafkaError>,
    },
}

/// Produces dead letters to one topic.
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
    queue_timeout: Duration,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterProducer")
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl DeadLetterProducer {
    /// A producer for `topic` on `brokers`, with extra librdkafka `properties`
    /// (security settings and the like). Idempotent, `acks=all`.
    pub fn new(
        brokers: &str,
        topic: impl Into<String>,
        properties: &[(String, String)],
    ) -> Result<Self, DeadLetterError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all");
        for (key, value) in properties {
            config.set(key, value);
        }
        Ok(Self {
            producer: config
                .create()
                .map_err(|e| DeadLetterError::Create(Box::new(e)))?,
            topic: topic.into(),
            queue_timeout: Duration::from_secs(30),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Sends every row of `letter` and waits for all acknowledgements. Returns the
    /// number of messages.
    pub async fn send(&self, letter: &DeadLetter) -> Result<usize, DeadLetterError> {
        let messages = messages(letter)?;
        let deliveries = messages.iter().map(|message| {
            let mut record = FutureRecord::to(&self.topic)
                .payload(&message.value)
                .headers(message.headers.clone());
            if let Some(key) = &message.key {
                record = record.key(key);
            }
            self.producer.send(record, self.queue_timeout)
        });
        for result in join_all(deliveries).await {
            result.map_err(|(error, _)| DeadLetterError::Delivery {
                stage: letter.stage.clone(),
                topic: self.topic.clone(),
                error: Box::new(error),
            })?;
        }
        Ok(messages.len())
    }
}

/// One dead-letter message.
#[derive(Debug, Clone)]
pub struct DeadLetterMessage {
    /// The primary key as a JSON object, when the table has one.
    pub key: Option<Vec<u8>>,
    /// The row as a JSON object.
    pub value: Vec<u8>,
    /// What failed.
    pub headers: OwnedHeaders,
}

/// The messages of a dead letter, one per row.
pub fn messages(letter: &DeadLetter) -> Result<Vec<DeadLetterMessage>, DeadLetterError> {
    let rows = rows_as_json(&letter.batch).map_err(|error| DeadLetterError::Render {
        stage: letter.stage.clone(),
        error,
    })?;
    let schema = letter.batch.schema();
    let get = |key: &str| schema.metadata().get(key).cloned().unwrap_or_default();
    let table = qualified_table_name(&schema);
    let primary_key: Vec<String> = get(metadata::PRIMARY_KEY)
        .split(',')
        .filter(|column| !column.is_empty())
        .map(str::to_owned)
        .collect();
    let error = letter.error.to_string();
    let kind = match letter.error {
        CallError::Timeout(_) => "timeout",
        CallError::MemoryCap(_) => "memory",
        CallError::Trap(_) => "trap",
        CallError::Reported { .. } => "reported",
        _ => "invalid-output",
    };
    Ok(rows
        .into_iter()
        .map(|row| {
            let key = (!primary_key.is_empty()).then(|| {
                let key: Map<String, Json> = primary_key
                    .iter()
                    .map(|column| {
                        (
                            column.clone(),
                            row.get(column).cloned().unwrap_or(Json::Null),
                        )
                    })
                    .collect();
                Json::Object(key).to_string().into_bytes()
            });
            let op = row
                .get(OP)
                .and_then(Json::as_str)
                .unwrap_or_default()
                .to_owned();
            let lsn = row
                .get(LSN)
                .and_then(Json::as_u64)
                .map(|lsn| Lsn(lsn).to_string())
                .unwrap_or_default();
            let headers = OwnedHeaders::new()
                .insert(header("weir.dlq.stage", &letter.stage))
                .insert(header("weir.dlq.error", &error))
                .insert(header("weir.dlq.error.kind", kind))
                .insert(header("weir.table", &table))
                .insert(header("weir.op", &op))
                .insert(header("weir.lsn", &lsn));
            DeadLetterMessage {
                key,
                value: Json::Object(row).to_string().into_bytes(),
                headers,
            }
        })
        .collect())
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
