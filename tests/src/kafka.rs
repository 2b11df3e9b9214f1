//! Reading topics back, with our own client and with an independent one (kcat).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use serde::Deserialize;

use crate::error::HarnessError;

/// One message as read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp in milliseconds: the producer's, or the broker's
    /// append time on a topic with `message.timestamp.type=LogAppendTime`.
    pub timestamp_ms: Option<i64>,
}

impl Record {
    /// The payload as UTF-8 text (lossy), or `None` for a tombstone.
    pub fn payload_text(&self) -> Option<String> {
        self.payload
            .as_deref()
            .map(|p| String::from_utf8_lossy(p).into_owned())
    }

    /// The value of header `name` as UTF-8 text (lossy); `None` when absent or null.
    pub fn header_text(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| value.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The key as UTF-8 text (lossy).
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

/// Reads every message of every partition of `topic`, up to each partition's end as
/// of the call, ordered by (partition, offset). Fails with
/// [`HarnessError::Truncated`] when the broker no longer has a partition's first
/// messages, so that no test mistakes the broker's retention for weir's loss.
///
/// "The end" is the high watermark read at the start, so messages produced meanwhile
/// may or may not be included; call it after the producer you are checking has been
/// acknowledged.
pub fn read_topic(
    bootstrap_servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Record>, HarnessError> {
    read_topic_with(bootstrap_servers, &[], topic, timeout)
}

/// Counts the messages of some topics, over one connection, for a harness that
/// polls until a reader has written everything.
pub struct MessageCounter {
    consumer: BaseConsumer,
    /// Each topic's partitions.
    partitions: Vec<(String, Vec<i32>)>,
    timeout: Duration,
}

impl MessageCounter {
    /// A counter of `topics` (which exist).
    pub fn new(
        bootstrap_servers: &str,
        topics: &[String],
        timeout: Duration,
    ) -> Result<Self, HarnessError> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap_servers)
            .create()
            .map_err(HarnessError::Kafka)?;
        let mut partitions = Vec::new();
        for topic in topics {
            let metadata = consumer
                .fetch_metadata(Some(topic), timeout)
                .map_err(HarnessError::Kafka)?;
            let ids = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            partitions.push((topic.clone(), ids));
        }
        Ok(Self {
            consumer,
            partitions,
            timeout,
        })
    }

    /// The messages the topics hold: the sum of their partitions' high
    /// watermarks, which count only what the brokers acknowledged.
    pub fn count(&self) -> Result<i64, HarnessError> {
        let mut count = 0;
        for (topic, partitions) in &self.partitions {
            for partition in partitions {
                let (low, high) = self
                    .consumer
                    .fetch_watermarks(topic, *partition, self.timeout)
                    .map_err(HarnessError::Kafka)?;
                count += high - low;
            }
        }
        Ok(count)
    }
}

/// [`read_topic`] with client `properties` (security settings, e.g.
/// [`crate::KafkaCluster::admin_properties`]).
pub fn read_topic_with(
    bootstrap_servers: &str,
    properties: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Record>, HarnessError> {
    read_topic_isolated(bootstrap_servers, properties, topic, timeout, false)
}

/// [`read_topic`] as a `read_committed` consumer reads it: only what committed
/// Kafka transactions (and non-transactional producers) wrote. "The end" is the
/// high watermark at the start; open transactions before it hold the read back
/// until they end (or the timeout).
pub fn read_topic_committed(
    bootstrap_servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Record>, HarnessError> {
    read_topic_isolated(bootstrap_servers, &[], topic, timeout, true)
}

fn read_topic_isolated(
    bootstrap_servers: &str,
    properties: &[(String, String)],
    topic: &str,
    timeout: Duration,
    committed: bool,
) -> Result<Vec<Record>, HarnessError> {
    let mut config = ClientConfig::new();
    config.set(
        "isolation.level",
        if committed {
            "read_committed"
        } else {
            "read_uncommitted"
        },
    );
    for (key, value) in properties {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", bootstrap_servers)
        .set(
            "group.id",
            format!("weir-tests-readback-{}", std::process::id()),
        )
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(HarnessError::Kafka)?;
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .map_err(HarnessError::Kafka)?;
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    if let Some(error) = found.and_then(|t| t.error()) {
        // Denied (an ACL) or broken: not the same as an empty topic.
        return Err(HarnessError::Broker(format!(
            "topic {topic}: {}",
            rdkafka::error::RDKafkaErrorCode::from(error)
        )));
    }
    let partitions: Vec<i32> = found
        .into_iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();

    let mut ends = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, timeout)
            .map_err(HarnessError::Kafka)?;
        if low > 0 {
            return Err(HarnessError::Truncated {
                topic: topic.to_owned(),
                partition,
                low,
            });
        }
        if high > low {
            ends.insert(partition, high);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(low))
                .map_err(HarnessError::Kafka)?;
        }
    }
    consumer.assign(&assignment).map_err(HarnessError::Kafka)?;

    let mut records = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while !ends.is_empty() {
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                doing: format!(
                    "reading {topic}: partitions {:?} not read to the end (last error: {last_error:?})",
                    ends.keys()
                ),
                after: timeout,
            });
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            // Transaction markers (and, read committed, aborted messages) take
            // offsets that are never delivered: the position tells the end passed.
            if let Ok(positions) = consumer.position() {
                ends.retain(|partition, end| {
                    !positions
                        .find_partition(topic, *partition)
                        .is_some_and(|p| matches!(p.offset(), Offset::Offset(at) if at >= *end))
                });
            }
            continue;
        };
        let message = match message {
            Ok(message) => message,
            // A broker that is down or a leader that moved: the consumer recovers on
            // its own, so keep reading until the deadline.
            Err(error) => {
                last_error = Some(error);
                continue;
            }
        };
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        let (partition, offset) = (message.partition(), message.offset());
        records.push(Record {
            partition,
            offset,
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            timestamp_ms: message.timestamp().to_millis(),
        });
        if ends.get(&partition).is_some_and(|end| offset + 1 >= *end) {
            ends.remove(&partition);
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Produces `(key, payload)` pairs to `topic` and waits until all are acknowledged.
/// For harness self-tests and for seeding topics; weir's own producer is under test
/// elsewhere.
pub fn produce(
    bootstrap_servers: &str,
    topic: &str,
    messages: &[(&str, &str)],
    timeout: Duration,
) -> Result<(), HarnessError> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("enable.idempotence", "true")
        .create()
        .map_err(HarnessError::Kafka)?;
    for (key, payload) in messages {
        producer
            .send(BaseRecord::to(topic).key(*key).payload(*payload))
            .map_err(|(e, _)| HarnessError::Kafka(e))?;
    }
    producer.flush(timeout).map_err(HarnessError::Kafka)
}

/// One message as kcat's `-J` envelope prints it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KcatRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Option<String>,
}

/// Reads every partition of `topic` to its end with `kcat`, an independent client.
pub fn kcat_read(bootstrap_servers: &str, topic: &str) -> Result<Vec<KcatRecord>, HarnessError> {
    kcat_read_with(bootstrap_servers, &[], topic)
}

/// [`kcat_read`] with client `properties` (passed as `-X key=value`).
pub fn kcat_read_with(
    bootstrap_servers: &str,
    properties: &[(String, String)],
    topic: &str,
) -> Result<Vec<KcatRecord>, HarnessError> {
    let mut command = Command::new("kcat");
    for (key, value) in properties {
        command.arg("-X").arg(format!("{key}={value}"));
    }
    let output = command
        .args([
            "-b",
            bootstrap_servers,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-J",
            "-q",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| HarnessError::io("run kcat (apt-get install kcat)", e))?;
    if !output.status.success() {
        return Err(HarnessError::Command {
            what: "kcat",
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let mut records = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            serde_json::from_str::<KcatRecord>(line).map_err(|e| HarnessError::Command {
                what: "kcat",
                detail: format!("unexpected output line {line:?}: {e}"),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// Kafka's default partitioner as kafka-python implements it (an independent
/// murmur2): one partition per key.
const KAFKA_PYTHON_PARTITIONER: &str = r#"
import sys
from kafka.partitioner.default import DefaultPartitioner

class Cluster:
    """Just enough cluster metadata for the partitioner: one topic, all up."""
    def __init__(self, partitions):
        self.ids = set(range(partitions))
    def topics(self):
        return {"t"}
    def partitions_for_topic(self, topic):
        return self.ids
    def available_partitions_for_topic(self, topic):
        return self.ids

cluster = Cluster(int(sys.argv[1]))
partitioner = DefaultPartitioner()
for line in sys.stdin:
    key = bytes.fromhex(line.strip())
    print(partitioner.partition("t", key, key, None, None, cluster))
"#;

/// kafka-python's partition for each key among `partitions`.
///
/// # Panics
///
/// When python3 or kafka-python is missing (`scripts/setup.sh` installs them).
pub fn kafka_python_partitions(keys: &[Vec<u8>], partitions: u32) -> Vec<i32> {
    let mut child = Command::new("python3")
        .args(["-c", KAFKA_PYTHON_PARTITIONER, &partitions.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for key in keys {
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            std::io::Write::write_all(&mut stdin, format!("{hex}\n").as_bytes()).expect("write");
        }
    }
    let output = child.wait_with_output().expect("python3 finishes");
    assert!(
        output.status.success(),
        "kafka-python missing? run scripts/setup.sh"
    );
    String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .map(|line| line.parse().expect("a partition"))
        .collect()
}
