//! The pipeline's state topic: a compacted, single-partition Kafka topic that
//! holds the snapshot's progress, so a restarted weir, or a standby on another
//! host, resumes a snapshot where the acknowledged chunks end. State lives where
//! the data goes, not on the weir host.
//!
//! Each record is the whole progress of one slot, keyed by the slot; the newest
//! wins, and compaction keeps one record per slot, so pipelines may share a topic.
//! Exactly-once adds a second key per slot, `position:<slot>`: the position the
//! last committed Kafka transaction reaches ([`Position`]), written inside that
//! transaction. The topic is read `read_committed`, so a record of an aborted
//! transaction never counts.

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};

use super::exactly_once::Position;
use crate::produce::KafkaProducer;
use crate::produce::admin::{futures_executor_block_on, is_client_wide};
use crate::source::snapshot::{IncrementalProgress, SnapshotProgress};

/// Reading or writing the state topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// The consumer could not be created or read.
    #[error("reading state topic {topic}: {error}")]
    Read {
        /// The topic.
        topic: String,
        /// Why.
        error: rdkafka::error::KafkaError,
    },
    /// The topic was not read to its end within the time allowed.
    #[error("reading state topic {topic}: not read to offset {offset} within {timeout:?}")]
    Timeout {
        /// The topic.
        topic: String,
        /// The end it did not reach.
        offset: i64,
        /// The time allowed.
        timeout: Duration,
    },
    /// A record is not progress weir wrote.
    #[error("state topic {topic} holds an unreadable record at offset {offset}: {error}")]
    Corrupt {
        /// The topic.
        topic: String,
        /// Where.
        offset: i64,
        /// Why.
        error: serde_json::Error,
    },
    /// A record could not be serialized.
    #[error("state topic {topic}: serializing a record: {error}")]
    Serialize {
        /// The topic.
        topic: String,
        /// Why.
        error: serde_json::Error,
    },
    /// A record written at once was not acknowledged.
    #[error("writing state topic {topic}: {error}")]
    Deliver {
        /// The topic.
        topic: String,
        /// Why.
        error: rdkafka::error::KafkaError,
    },
    /// Producing a record failed.
    #[error("writing state topic {topic}: {error}")]
    Write {
        /// The topic.
        topic: String,
        /// Why.
        error: crate::produce::ProduceError,
    },
}

/// The state topic of one pipeline.
#[derive(Debug, Clone)]
pub struct StateTopic {
    topic: String,
    /// `snapshot:<slot>`.
    key: Vec<u8>,
    /// `position:<slot>`.
    position_key: Vec<u8>,
    /// `incremental:<slot>`.
    incremental_key: Vec<u8>,
}

/// What the state topic holds for one slot.
#[derive(Debug, Default)]
pub struct StateRecords {
    /// The snapshot's progress (empty when none is recorded).
    pub snapshot: SnapshotProgress,
    /// Exactly-once: the position of the last committed Kafka transaction.
    pub position: Option<Position>,
    /// Snapshots taken while streaming, not finished.
    pub incremental: Option<IncrementalProgress>,
}

impl StateTopic {
    /// The records of slot `slot` in state topic `topic`.
    pub fn new(topic: impl Into<String>, slot: &str) -> Self {
        StateTopic {
            topic: topic.into(),
            key: format!("snapshot:{slot}").into_bytes(),
            position_key: format!("position:{slot}").into_bytes(),
            incremental_key: format!("incremental:{slot}").into_bytes(),
        }
    }

    /// Its name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The newest recorded progress, or the empty progress when nothing is
    /// recorded. Reads the topic to its end as of the call.
    pub fn load(
        &self,
        brokers: &str,
        properties: &[(String, String)],
        timeout: Duration,
    ) -> Result<SnapshotProgress, StateError> {
        Ok(self.load_records(brokers, properties, timeout)?.snapshot)
    }

    /// The newest snapshot progress and position of the slot. Reads the topic's
    /// committed records to its end as of the call.
    pub fn load_records(
        &self,
        brokers: &str,
        properties: &[(String, String)],
        timeout: Duration,
    ) -> Result<StateRecords, StateError> {
        let failed = |error: rdkafka::error::KafkaError| StateError::Read {
            topic: self.topic.clone(),
            error,
        };
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("weir-state-{}", self.topic))
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("allow.auto.create.topics", "false");
        for (key, value) in properties {
            if is_client_wide(key) {
                config.set(key, value);
            }
        }
        let consumer: BaseConsumer = config.create().map_err(failed)?;
        let deadline = Instant::now() + timeout;
        // A topic created a moment ago (weir creates this one at start) may not be in
        // every broker's metadata yet: wait for it within the timeout.
        let (low, high) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match consumer.fetch_watermarks(&self.topic, 0, left.min(Duration::from_secs(5))) {
                Ok(watermarks) => break watermarks,
                Err(error) if is_settling(&error) && Instant::now() < deadline => {
                    tracing::debug!(topic = %self.topic, %error, "the state topic is not served yet; retrying");
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(error) => return Err(failed(error)),
            }
        };
        let mut records = StateRecords::default();
        if high <= low {
            return Ok(records);
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, 0, Offset::Offset(low))
            .map_err(failed)?;
        consumer.assign(&assignment).map_err(failed)?;
        loop {
            if Instant::now() >= deadline {
                return Err(StateError::Timeout {
                    topic: self.topic.clone(),
                    offset: high,
                    timeout,
                });
            }
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                // Transaction markers and aborted records take offsets but are
                // never delivered: the consumer's position says when the end is
                // passed.
                if self.position_reached(&consumer, high) {
                    return Ok(records);
                }
                continue;
            };
            let message = match message {
                Ok(message) => message,
                // A leader moving or a broker restarting: the consumer recovers.
                Err(error) if is_settling(&error) => continue,
                Err(error) => return Err(failed(error)),
            };
            let corrupt = |error| StateError::Corrupt {
                topic: self.topic.clone(),
                offset: message.offset(),
                error,
            };
            if let Some(payload) = message.payload() {
                if message.key() == Some(self.key.as_slice()) {
                    records.snapshot = serde_json::from_slice(payload).map_err(corrupt)?;
                } else if message.key() == Some(self.position_key.as_slice()) {
                    records.position = Some(serde_json::from_slice(payload).map_err(corrupt)?);
                } else if message.key() == Some(self.incremental_key.as_slice()) {
                    records.incremental = Some(serde_json::from_slice(payload).map_err(corrupt)?);
                }
            }
            if message.offset() + 1 >= high {
                return Ok(records);
            }
        }
    }

    /// Whether `consumer` read past offset `high - 1` of the topic's partition.
    fn position_reached(&self, consumer: &BaseConsumer, high: i64) -> bool {
        consumer.position().ok().is_some_and(|positions| {
            positions
                .find_partition(&self.topic, 0)
                .is_some_and(|p| matches!(p.offset(), Offset::Offset(at) if at >= high))
        })
    }

    /// Writes `progress` as the newest record and waits up to `timeout` for
    /// Kafka's acknowledgement, with a producer of its own (not transactional:
    /// `read_committed` readers see it at once). For the record made before the
    /// slot exists, which nothing else may be sent before.
    pub fn save_now(
        &self,
        brokers: &str,
        properties: &[(String, String)],
        progress: &SnapshotProgress,
        timeout: Duration,
    ) -> Result<(), StateError> {
        self.deliver(brokers, properties, &self.key, progress, timeout)
    }

    /// Writes the progress of the snapshots taken while streaming and waits up
    /// to `timeout` for Kafka's acknowledgement, as [`StateTopic::save_now`]: the
    /// source records a request before the stream passes it, and that must be
    /// stored, not queued, when it goes on.
    pub fn save_incremental_now(
        &self,
        brokers: &str,
        properties: &[(String, String)],
        progress: &IncrementalProgress,
        timeout: Duration,
    ) -> Result<(), StateError> {
        self.deliver(
            brokers,
            properties,
            &self.incremental_key,
            progress,
            timeout,
        )
    }

    fn deliver(
        &self,
        brokers: &str,
        properties: &[(String, String)],
        key: &[u8],
        record: &impl serde::Serialize,
        timeout: Duration,
    ) -> Result<(), StateError> {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let failed = |error| StateError::Deliver {
            topic: self.topic.clone(),
            error,
        };
        let value = self.serialize(record)?;
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The delivery report, success or failure, comes within the timeout.
            .set("message.timeout.ms", timeout.as_millis().to_string());
        for (key, value) in properties {
            if is_client_wide(key) {
                config.set(key, value);
            }
        }
        let producer: FutureProducer = config.create().map_err(failed)?;
        let record = FutureRecord::to(&self.topic)
            .partition(0)
            .key(key)
            .payload(&value);
        // Waits for the delivery report: a record refused for good (an ACL, say)
        // is an error here, where a flush would have returned Ok.
        futures_executor_block_on(producer.send(record, timeout))
            .map(drop)
            .map_err(|(error, _)| failed(error))
    }

    /// Queues `position` as the slot's newest position, in the producer's open
    /// Kafka transaction: it is read only if everything before it in that
    /// transaction is.
    pub fn save_position(
        &self,
        producer: &KafkaProducer,
        position: &Position,
    ) -> Result<(), StateError> {
        self.queue(producer, &self.position_key, position)
    }

    /// Queues `progress` as the newest record. Not waited for: a record lost makes
    /// a restart redo chunks, never skip them, and records of one producer to one
    /// partition stay in order.
    pub fn save(
        &self,
        producer: &KafkaProducer,
        progress: &SnapshotProgress,
    ) -> Result<(), StateError> {
        self.queue(producer, &self.key, progress)
    }

    /// Queues `record` under `key` through the pipeline's producer.
    fn queue(
        &self,
        producer: &KafkaProducer,
        key: &[u8],
        record: &impl serde::Serialize,
    ) -> Result<(), StateError> {
        let value = self.serialize(record)?;
        producer
            .send_one(&self.topic, Some(0), key, &value, None)
            .map_err(|error| StateError::Write {
                topic: self.topic.clone(),
                error,
            })
    }

    fn serialize(&self, record: &impl serde::Serialize) -> Result<Vec<u8>, StateError> {
        serde_json::to_vec(record).map_err(|error| StateError::Serialize {
            topic: self.topic.clone(),
            error,
        })
    }
}

/// Whether `error` passes by itself: a topic or leader not known yet, a broker
/// being restarted.
fn is_settling(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::RDKafkaErrorCode as Code;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Code::UnknownPartition
                | Code::UnknownTopicOrPartition
                | Code::UnknownTopic
                | Code::LeaderNotAvailable
                | Code::NotLeaderForPartition
                | Code::BrokerTransportFailure
                | Code::AllBrokersDown
                | Code::OperationTimedOut
                | Code::RequestTimedOut
        )
    )
}
