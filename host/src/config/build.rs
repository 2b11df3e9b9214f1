//! From a spec to the parts of a running pipeline. Every constraint a value must
//! meet beyond its form is checked here, once, while converting, and a refusal
//! names the field and the constraint: `weir run` fails with exit code 2 before it
//! connects to anything.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use super::spec::{
    DdlSpec, Format, OnErrorSpec, PartitionSpec, PipelineSpec, SchemaChangeSpec, SkippedOperation,
    SlotFailoverSpec, SnapshotModeSpec, SpecError, UnchangedToastSpec,
};
use super::values::{Acks, ByteSize, Interval};
use crate::contract::TopicTemplate;
use crate::contract::columns::op;
use crate::contract::topics::check_topic_name;
use crate::encode::{
    AvroEncoder, CanalJsonEncoder, DdlEncoder, DdlFormat, DebeziumJsonEncoder, DebeziumOptions,
    DtsAvroEncoder, EncodeError, Encoder, JsonEncoder, MaxwellJsonEncoder, MetadataEncoder,
    MetadataFormat, OmsJsonEncoder, SchemaChangePolicy, SchemaRegistry, SharePlexJsonEncoder,
    TimestamptzForm, ValueOptions,
};
use crate::plugin::{Limits, OnError, StageSpec};
use crate::produce::admin::TopicSettings;
use crate::produce::{ProducerOptions, TransactionalOptions};
use crate::route::{PartitionPolicy, Router};
use crate::source::snapshot::SnapshotMode;
use crate::source::snapshot::initial::{DEFAULT_CHUNK_ROWS, DEFAULT_WORKERS, SnapshotOptions};
use crate::source::{PgConnectOptions, PostgresSourceConfig, SlotFailover, TableSelector};

/// How long Kafka may stay unreachable before weir gives up on a message, as for
/// PostgreSQL: long enough to ride out a broker maintenance window.
const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(6 * 3600);
/// The most snapshot connections a pipeline opens: each is a server backend, and
/// past the server's cores more of them only queue.
const MAX_SNAPSHOT_WORKERS: usize = 64;
/// librdkafka's own bounds, checked here so a wrong value is a spec error (exit 2)
/// rather than a producer that fails to start (exit 1).
const MAX_LINGER: Duration = Duration::from_secs(900);
const MAX_BATCH_BYTES: usize = 2_147_483_647;
/// Exactly-once: a commit every 100 ms, Kafka Streams' `commit.interval.ms` for
/// exactly-once: consumers see changes a tenth of a second later.
const DEFAULT_TRANSACTION_INTERVAL: Duration = Duration::from_millis(100);
/// Exactly-once: long enough to ride out a leader change, short enough that an
/// abandoned transaction does not hold `read_committed` consumers back long.
const DEFAULT_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
const MIN_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(900);
/// The producer's linger when the spec names none: a few milliseconds fill
/// batches under load and cost little latency when idle.
const DEFAULT_LINGER: Duration = Duration::from_millis(5);

/// A pipeline's parts, checked and ready to start.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The pipeline's name.
    pub name: String,
    /// The source.
    pub source: PostgresSourceConfig,
    /// The database the source reads (`{database}` in topic templates).
    pub database: String,
    /// Plugin stages, in order.
    pub stages: Vec<StageSpec>,
    /// The message format and its options.
    pub format: FormatConfig,
    /// Topic and partition rules.
    pub router: Router,
    /// Producer settings.
    pub producer: ProducerOptions,
    /// Creation of missing topics; `None`: they must exist.
    pub create_topics: Option<TopicSettings>,
    /// Where dead-lettered rows go.
    pub dead_letter_topic: String,
    /// Where transaction metadata events go, when enabled.
    pub transaction_topic: Option<String>,
    /// Where heartbeats go, and how often.
    pub heartbeat: Option<(String, Duration)>,
    /// Where captured DDL and TRUNCATEs go (`source.postgres.ddl: capture`).
    pub ddl_topic: Option<String>,
    /// Where `/metrics`, `/health` and `/ready` are served.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Streaming rate limits.
    pub throttle: Throttle,
    /// Rate limits while the snapshot is read.
    pub snapshot_throttle: Throttle,
    /// Where the snapshot's progress is kept.
    pub state_topic: String,
    /// How long a stop waits for acknowledgements.
    pub shutdown_timeout: Duration,
    /// Exactly-once: how often the open Kafka transaction is committed; `None`:
    /// at-least-once, no Kafka transactions.
    pub transaction_interval: Option<Duration>,
}

/// Rate limits; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Throttle {
    /// Rows per second.
    pub rows_per_second: Option<u64>,
    /// Bytes of keys and values per second.
    pub bytes_per_second: Option<f64>,
}

/// The encoder to build for each worker.
#[derive(Debug, Clone)]
pub enum FormatConfig {
    /// `json`.
    Json(ValueOptions),
    /// `debezium-json`.
    DebeziumJson(DebeziumOptions),
    /// `canal-json`.
    CanalJson(TimestamptzForm),
    /// `maxwell-json`.
    MaxwellJson(TimestamptzForm),
    /// `dts-avro`, naming `database` in `objectName`.
    DtsAvro {
        /// PostgreSQL's database.
        database: String,
    },
    /// `shareplex-json`.
    ShareplexJson(TimestamptzForm),
    /// `oms-json`, naming `database` in `db`.
    OmsJson {
        /// PostgreSQL's database.
        database: String,
        /// How `timestamptz` values are written.
        timestamptz: TimestamptzForm,
    },
    /// `avro`.
    Avro {
        /// The registry's URL.
        registry: String,
        /// Debezium envelope settings.
        options: DebeziumOptions,
        /// What a refused schema change does.
        schema_change: SchemaChangePolicy,
    },
}

impl PipelineConfig {
    /// Whether the pipeline keeps snapshot progress in its state topic: the
    /// initial snapshot's, and that of snapshots taken while streaming, which
    /// `weir snapshot` asks for (`signals`).
    pub fn keeps_state(&self) -> bool {
        self.source.snapshot.mode != SnapshotMode::Never || self.source.signals
    }

    /// Checks `spec` and converts it; relative plugin paths are resolved against
    /// `base_dir` (the spec file's directory). [`super::load`] adds the line of a
    /// refused field.
    pub fn build(spec: &PipelineSpec, base_dir: &Path) -> Result<Self, SpecError> {
        check_formats(spec)?;
        let (source, database) = source_config(spec)?;
        let stages = stage_specs(spec, base_dir)?;
        let format = format_config(spec, &database)?;
        let router = router(spec, &database)?;
        let producer = producer_options(spec)?;
        let kafka = &spec.sink.kafka;
        Ok(Self {
            name: spec.name.clone(),
            source,
            database,
            stages,
            format,
            router,
            producer,
            create_topics: kafka.create_topics.map(|c| TopicSettings {
                partitions: c.partitions,
                replication_factor: c.replication_factor,
            }),
            dead_letter_topic: kafka
                .dead_letter_topic
                .clone()
                .unwrap_or_else(|| format!("{}.dlq", spec.name)),
            transaction_topic: kafka.transaction_topic.clone(),
            ddl_topic: ddl_topic(spec)?,
            throttle: Throttle {
                rows_per_second: kafka.max_rows_per_second,
                bytes_per_second: kafka.max_megabytes_per_second.map(|mb| mb * 1e6),
            },
            snapshot_throttle: Throttle {
                rows_per_second: kafka.snapshot_max_rows_per_second,
                bytes_per_second: kafka.snapshot_max_megabytes_per_second.map(|mb| mb * 1e6),
            },
            state_topic: kafka
                .state_topic
                .clone()
                .unwrap_or_else(|| format!("weir.{}.state", spec.name)),
            shutdown_timeout: match spec.shutdown_timeout {
                Some(Interval(timeout)) => positive(
                    timeout,
                    "a stop waits this long for Kafka to acknowledge what was sent",
                )
                .map_err(|m| invalid("shutdown_timeout", m))?,
                None => Duration::from_secs(60),
            },
            metrics_listen: match &spec.metrics {
                Some(metrics) => Some(metrics.listen.parse().map_err(|_| {
                    invalid(
                        "metrics.listen",
                        "is not an address like 0.0.0.0:9187".to_owned(),
                    )
                })?),
                None => None,
            },
            heartbeat: heartbeat(spec)?,
            transaction_interval: transaction_interval(spec)?,
        })
    }
}

/// `source.postgres`: the source's config, and the database it reads.
fn source_config(spec: &PipelineSpec) -> Result<(PostgresSourceConfig, String), SpecError> {
    let postgres = &spec.source.postgres;
    let connection: PgConnectOptions = postgres
        .url
        .parse()
        .map_err(|e| invalid("source.postgres.url", format!("{e}")))?;
    let database = connection
        .config
        .get_dbname()
        .or_else(|| connection.config.get_user())
        .unwrap_or("postgres")
        .to_owned();
    let tables = postgres
        .tables
        .iter()
        .map(|t| t.parse::<TableSelector>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("source.postgres.tables", e.to_string()))?;
    check_slot_name(&postgres.slot)?;
    if postgres.publication.is_empty() || postgres.publication.len() > 63 {
        return Err(invalid(
            "source.postgres.publication",
            "must be 1 to 63 bytes long (a PostgreSQL identifier)".to_owned(),
        ));
    }
    let mut source =
        PostgresSourceConfig::new(connection, &postgres.slot, &postgres.publication, tables);
    if let Some(window) = postgres.retry_window {
        source.retry.window =
            nonzero_window(window.0).map_err(|m| invalid("source.postgres.retry_window", m))?;
    }
    source.snapshot = SnapshotOptions {
        mode: match postgres.snapshot {
            SnapshotModeSpec::Initial => SnapshotMode::Initial,
            SnapshotModeSpec::Never => SnapshotMode::Never,
            SnapshotModeSpec::InitialOnly => SnapshotMode::InitialOnly,
            SnapshotModeSpec::WhenNeeded => SnapshotMode::WhenNeeded,
        },
        workers: match postgres.snapshot_workers {
            Some(0) => {
                return Err(invalid(
                    "source.postgres.snapshot_workers",
                    "must be at least 1".to_owned(),
                ));
            }
            Some(workers) if workers > MAX_SNAPSHOT_WORKERS => {
                return Err(invalid(
                    "source.postgres.snapshot_workers",
                    format!(
                        "{workers} connections is more than the {MAX_SNAPSHOT_WORKERS} weir opens at most (each is a server connection)"
                    ),
                ));
            }
            Some(workers) if workers > 1 && spec.sink.kafka.exactly_once => {
                return Err(invalid(
                    "source.postgres.snapshot_workers",
                    "must be 1 with sink.kafka.exactly_once: a Kafka transaction holds whole snapshot chunks, so they are read one at a time".to_owned(),
                ));
            }
            Some(workers) => workers,
            None if spec.sink.kafka.exactly_once => 1,
            None => DEFAULT_WORKERS,
        },
        chunk_rows: match postgres.snapshot_chunk_rows {
            Some(0) => {
                return Err(invalid(
                    "source.postgres.snapshot_chunk_rows",
                    "must be at least 1".to_owned(),
                ));
            }
            Some(rows) => rows,
            None => DEFAULT_CHUNK_ROWS,
        },
    };
    source.stream_in_progress = postgres.stream_in_progress;
    source.signals = postgres.signals;
    source.ddl_capture = postgres.ddl == DdlSpec::Capture;
    source.slot_failover = match postgres.slot_failover {
        SlotFailoverSpec::Auto => SlotFailover::Auto,
        SlotFailoverSpec::On => SlotFailover::On,
        SlotFailoverSpec::Off => SlotFailover::Off,
    };
    source.fetch_unchanged_toast = postgres.unchanged_toast == UnchangedToastSpec::Fetch;
    source.skipped_operations = skipped_operations(&spec.sink.kafka.skipped_operations)?;
    if let Some(heartbeat) = postgres.heartbeat {
        source.heartbeat = heartbeat
            .0
            .map(|d| positive(d, "write off for no heartbeat"))
            .transpose()
            .map_err(|m| invalid("source.postgres.heartbeat", m))?;
    }
    if let Some(discovery) = postgres.table_discovery {
        source.table_discovery = discovery
            .0
            .map(|d| positive(d, "write off for no discovery while streaming"))
            .transpose()
            .map_err(|m| invalid("source.postgres.table_discovery", m))?;
    }
    Ok((source, database))
}

/// `plugins:`: one stage spec each, its path resolved against `base_dir`.
fn stage_specs(spec: &PipelineSpec, base_dir: &Path) -> Result<Vec<StageSpec>, SpecError> {
    let mut stages = Vec::with_capacity(spec.plugins.len());
    for (index, plugin) in spec.plugins.iter().enumerate() {
        let field = |name: &str| format!("plugins[{index}].{name}");
        let mut stage = StageSpec::new(&plugin.name, base_dir.join(&plugin.wasm));
        stage.tables = plugin
            .tables
            .iter()
            .map(|t| t.parse::<TableSelector>())
            .collect::<Result<_, _>>()
            .map_err(|e| invalid(&field("tables"), e.to_string()))?;
        if let Some(config) = &plugin.config {
            stage.config = config.clone();
        }
        stage.on_error = match plugin.on_error {
            OnErrorSpec::Fail => OnError::Fail,
            OnErrorSpec::Skip => OnError::Skip,
            OnErrorSpec::DeadLetter => OnError::DeadLetter,
        };
        let defaults = Limits::default();
        stage.limits = Limits {
            timeout: match plugin.timeout {
                Some(Interval(timeout)) => positive(timeout, "a call needs time to run")
                    .map_err(|m| invalid(&field("timeout"), m))?,
                None => defaults.timeout,
            },
            memory_bytes: match plugin.memory {
                Some(ByteSize(0)) => {
                    return Err(invalid(
                        &field("memory"),
                        "must be more than 0 bytes".to_owned(),
                    ));
                }
                Some(ByteSize(bytes)) => bytes,
                None => defaults.memory_bytes,
            },
        };
        stage.grants = plugin.grants.clone();
        stages.push(stage);
    }
    Ok(stages)
}

/// `sink.kafka.skipped_operations` as `_op` codes: `[none]` alone is nothing.
fn skipped_operations(list: &[SkippedOperation]) -> Result<Vec<u8>, SpecError> {
    if list.contains(&SkippedOperation::None) {
        if list.len() > 1 {
            return Err(invalid(
                "sink.kafka.skipped_operations",
                "`none` cannot be listed with operations".to_owned(),
            ));
        }
        return Ok(Vec::new());
    }
    let mut codes: Vec<u8> = list
        .iter()
        .filter_map(|operation| match operation {
            SkippedOperation::C => Some(op::INSERT),
            SkippedOperation::U => Some(op::UPDATE),
            SkippedOperation::D => Some(op::DELETE),
            SkippedOperation::T => Some(op::TRUNCATE),
            SkippedOperation::None => None,
        })
        .collect();
    codes.sort_unstable();
    codes.dedup();
    Ok(codes)
}

/// The message format and its options.
fn format_config(spec: &PipelineSpec, database: &str) -> Result<FormatConfig, SpecError> {
    let kafka = &spec.sink.kafka;
    let values = ValueOptions {
        decimal: kafka.decimal_handling_mode,
        interval: kafka.interval_handling_mode,
        binary: kafka.binary_handling_mode,
        ..ValueOptions::default()
    };
    let timestamptz = kafka.timestamptz_form.unwrap_or_default();
    let mut debezium = DebeziumOptions::new(&spec.name, database);
    debezium.tombstones = kafka.tombstones;
    debezium.schemas = kafka.schemas_enable;
    debezium.transactions = kafka.transaction_topic.is_some();
    debezium.values = values.clone();
    let format = match kafka.format {
        Format::Json => FormatConfig::Json(values),
        Format::DebeziumJson => FormatConfig::DebeziumJson(debezium),
        Format::CanalJson => FormatConfig::CanalJson(timestamptz),
        Format::MaxwellJson => FormatConfig::MaxwellJson(timestamptz),
        Format::ShareplexJson => FormatConfig::ShareplexJson(timestamptz),
        Format::OmsJson => FormatConfig::OmsJson {
            database: database.to_owned(),
            timestamptz,
        },
        Format::DtsAvro => FormatConfig::DtsAvro {
            database: database.to_owned(),
        },
        Format::Avro => FormatConfig::Avro {
            registry: kafka.schema_registry.clone().unwrap_or_default(),
            options: debezium,
            schema_change: match kafka.schema_change {
                Some(SchemaChangeSpec::NewSubject) => SchemaChangePolicy::NewSubject,
                Some(SchemaChangeSpec::Fail) | None => SchemaChangePolicy::Fail,
            },
        },
    };
    Ok(format)
}

/// `heartbeat_topic` and how often heartbeats go there.
fn heartbeat(spec: &PipelineSpec) -> Result<Option<(String, Duration)>, SpecError> {
    let kafka = &spec.sink.kafka;
    let heartbeat_interval = match kafka.heartbeat_interval {
        Some(Interval(interval)) => {
            positive(interval, "leave heartbeat_topic out for no heartbeats")
                .map_err(|m| invalid("sink.kafka.heartbeat_interval", m))?
        }
        None => Duration::from_secs(10),
    };
    Ok(kafka
        .heartbeat_topic
        .clone()
        .map(|topic| (topic, heartbeat_interval)))
}

/// `ddl_topic`: where captured DDL goes, when `source.postgres.ddl` captures it.
fn ddl_topic(spec: &PipelineSpec) -> Result<Option<String>, SpecError> {
    let topic = &spec.sink.kafka.ddl_topic;
    match spec.source.postgres.ddl {
        DdlSpec::Capture => Ok(Some(
            topic
                .clone()
                .unwrap_or_else(|| format!("{}.ddl", spec.name)),
        )),
        DdlSpec::Off if topic.is_some() => Err(invalid(
            "sink.kafka.ddl_topic",
            "only source.postgres.ddl: capture writes a DDL topic".to_owned(),
        )),
        DdlSpec::Off => Ok(None),
    }
}

/// Topics (template, overrides, the side topics' names) and the partition policy.
fn router(spec: &PipelineSpec, database: &str) -> Result<Router, SpecError> {
    let kafka = &spec.sink.kafka;
    let policy = match &kafka.partition {
        PartitionSpec::Fixed(partition) if *partition < 0 => {
            return Err(invalid(
                "sink.kafka.partition",
                format!("partition {partition} does not exist: partitions count from 0"),
            ));
        }
        PartitionSpec::Fixed(partition) => PartitionPolicy::Fixed(*partition),
        PartitionSpec::Named(text) => text
            .parse()
            .map_err(|e| invalid("sink.kafka.partition", format!("{e}")))?,
    };
    let template =
        TopicTemplate::new(&kafka.topic).map_err(|e| invalid("sink.kafka.topic", e.to_string()))?;
    for (table, topic) in &kafka.topics {
        check_topic_name(topic)
            .map_err(|m| invalid("sink.kafka.topics", format!("{table}: {m}")))?;
    }
    for (field, topic) in [
        ("sink.kafka.dead_letter_topic", &kafka.dead_letter_topic),
        ("sink.kafka.transaction_topic", &kafka.transaction_topic),
        ("sink.kafka.heartbeat_topic", &kafka.heartbeat_topic),
        ("sink.kafka.ddl_topic", &kafka.ddl_topic),
        ("sink.kafka.state_topic", &kafka.state_topic),
    ] {
        if let Some(topic) = topic {
            check_topic_name(topic).map_err(|m| invalid(field, m))?;
        }
    }
    let overrides: HashMap<String, String> = kafka
        .topics
        .iter()
        .map(|(table, topic)| (table.clone(), topic.clone()))
        .collect();
    let router =
        Router::new(database, template, overrides, policy).with_keyless(keyless_policy(kafka)?);
    Ok(router)
}

/// `sink.kafka.keyless_partition`: a table-wide policy, or `None` for `spread`.
fn keyless_policy(kafka: &super::spec::KafkaSpec) -> Result<Option<PartitionPolicy>, SpecError> {
    const FIELD: &str = "sink.kafka.keyless_partition";
    let Some(spec) = &kafka.keyless_partition else {
        return Ok(Some(PartitionPolicy::Table));
    };
    if !matches!(&kafka.partition, PartitionSpec::Named(name) if name.trim() == "primary_key") {
        return Err(invalid(
            FIELD,
            "applies only with partition: primary_key (the other policies place rows without a key themselves)".to_owned(),
        ));
    }
    match spec {
        PartitionSpec::Fixed(partition) if *partition < 0 => Err(invalid(
            FIELD,
            format!("partition {partition} does not exist: partitions count from 0"),
        )),
        PartitionSpec::Fixed(partition) => Ok(Some(PartitionPolicy::Fixed(*partition))),
        PartitionSpec::Named(name) => match name.trim() {
            "table" => Ok(Some(PartitionPolicy::Table)),
            "schema" => Ok(Some(PartitionPolicy::Schema)),
            "spread" => Ok(None),
            other => Err(invalid(
                FIELD,
                format!("{other:?} is not one of table, schema, spread or a partition number"),
            )),
        },
    }
}

/// The producer's settings.
fn producer_options(spec: &PipelineSpec) -> Result<ProducerOptions, SpecError> {
    let kafka = &spec.sink.kafka;
    let linger = check_producer_settings(kafka)?;
    let mut producer = ProducerOptions::new(&kafka.brokers);
    producer.compression = kafka.compression.as_str().to_owned();
    producer.acks = kafka.acks.as_str().to_owned();
    producer.linger = linger;
    if let Some(ByteSize(bytes)) = kafka.batch_bytes {
        producer.batch_bytes = bytes;
    }
    producer.delivery_timeout = match kafka.retry_window {
        Some(window) => nonzero_window(window.0)
            .map_err(|m| invalid("sink.kafka.retry_window", m))?
            .unwrap_or(Duration::ZERO),
        None => DEFAULT_RETRY_WINDOW,
    };
    producer.properties = kafka
        .properties
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    producer.transactional = transactional_options(spec)?;
    Ok(producer)
}

/// Exactly-once's producer settings, when it is on.
fn transactional_options(spec: &PipelineSpec) -> Result<Option<TransactionalOptions>, SpecError> {
    let kafka = &spec.sink.kafka;
    if !kafka.exactly_once {
        for (field, set) in [
            (
                "sink.kafka.transactional_id",
                kafka.transactional_id.is_some(),
            ),
            (
                "sink.kafka.transaction_interval",
                kafka.transaction_interval.is_some(),
            ),
            (
                "sink.kafka.transaction_timeout",
                kafka.transaction_timeout.is_some(),
            ),
        ] {
            if set {
                return Err(invalid(
                    field,
                    "applies only with exactly_once: true".to_owned(),
                ));
            }
        }
        return Ok(None);
    }
    if kafka.acks != Acks::All {
        return Err(invalid(
            "sink.kafka.acks",
            "must be all with exactly_once: true (Kafka transactions need every replica's acknowledgement)".to_owned(),
        ));
    }
    for key in [
        "transactional.id",
        "transaction.timeout.ms",
        "enable.idempotence",
    ] {
        if kafka.properties.contains_key(key) {
            return Err(invalid(
                "sink.kafka.properties",
                format!(
                    "{key} is set by weir with exactly_once: true; use sink.kafka.transactional_id or transaction_timeout"
                ),
            ));
        }
    }
    let id = match &kafka.transactional_id {
        Some(id) if id.trim().is_empty() => {
            return Err(invalid(
                "sink.kafka.transactional_id",
                "must not be empty".to_owned(),
            ));
        }
        Some(id) => id.clone(),
        None => format!("weir-{}", spec.name),
    };
    let timeout = match kafka.transaction_timeout {
        Some(Interval(timeout)) => {
            let timeout = positive(timeout, "the broker aborts a transaction open longer")
                .map_err(|m| invalid("sink.kafka.transaction_timeout", m))?;
            if timeout < MIN_TRANSACTION_TIMEOUT || timeout > MAX_TRANSACTION_TIMEOUT {
                return Err(invalid(
                    "sink.kafka.transaction_timeout",
                    format!(
                        "{timeout:?} is outside 1s to 15m (Kafka's transaction.max.timeout.ms default)"
                    ),
                ));
            }
            timeout
        }
        None => DEFAULT_TRANSACTION_TIMEOUT,
    };
    Ok(Some(TransactionalOptions { id, timeout }))
}

/// Exactly-once's commit interval, when it is on.
fn transaction_interval(spec: &PipelineSpec) -> Result<Option<Duration>, SpecError> {
    let kafka = &spec.sink.kafka;
    if !kafka.exactly_once {
        return Ok(None);
    }
    let interval = match kafka.transaction_interval {
        Some(Interval(interval)) => positive(
            interval,
            "the open Kafka transaction is committed this often",
        )
        .map_err(|m| invalid("sink.kafka.transaction_interval", m))?,
        None => DEFAULT_TRANSACTION_INTERVAL,
    };
    let timeout = kafka
        .transaction_timeout
        .map_or(DEFAULT_TRANSACTION_TIMEOUT, |Interval(t)| t);
    if interval * 2 > timeout {
        return Err(invalid(
            "sink.kafka.transaction_interval",
            format!(
                "{interval:?} must be at most half of transaction_timeout ({timeout:?}), or the broker aborts transactions"
            ),
        ));
    }
    Ok(Some(interval))
}

impl FormatConfig {
    /// The encoder of transaction metadata and heartbeats, in this format's family
    /// (JSON, or Avro through the same registry).
    pub fn metadata_encoder(&self, name: &str) -> Result<MetadataEncoder, EncodeError> {
        let format = match self {
            FormatConfig::Avro { registry, .. } => {
                MetadataFormat::Avro(Box::new(SchemaRegistry::new(registry)?))
            }
            FormatConfig::DebeziumJson(options) => MetadataFormat::Json {
                schemas: options.schemas,
            },
            FormatConfig::Json(_)
            | FormatConfig::CanalJson(_)
            | FormatConfig::MaxwellJson(_)
            | FormatConfig::DtsAvro { .. }
            | FormatConfig::ShareplexJson(_)
            | FormatConfig::OmsJson { .. } => MetadataFormat::Json { schemas: false },
        };
        Ok(MetadataEncoder::new(format, name))
    }

    /// The encoder of the DDL topic: Canal's DDL messages for `canal-json`, a
    /// Debezium-style schema change event for the others.
    pub fn ddl_encoder(&self, name: &str, database: &str) -> Result<DdlEncoder, EncodeError> {
        let format = match self {
            FormatConfig::Avro { registry, .. } => {
                DdlFormat::Avro(Box::new(SchemaRegistry::new(registry)?))
            }
            FormatConfig::DebeziumJson(options) => DdlFormat::Debezium {
                schemas: options.schemas,
            },
            FormatConfig::Json(_)
            | FormatConfig::MaxwellJson(_)
            | FormatConfig::DtsAvro { .. }
            | FormatConfig::ShareplexJson(_)
            | FormatConfig::OmsJson { .. } => DdlFormat::Debezium { schemas: false },
            FormatConfig::CanalJson(_) => DdlFormat::Canal,
        };
        Ok(DdlEncoder::new(format, name, database))
    }

    /// A fresh encoder (encoders keep per-table caches, so each worker owns one).
    pub fn encoder(&self, router: &Router) -> Result<Box<dyn Encoder>, EncodeError> {
        Ok(match self {
            FormatConfig::Json(values) => Box::new(JsonEncoder::new(values.clone())),
            FormatConfig::DebeziumJson(options) => {
                Box::new(DebeziumJsonEncoder::new(options.clone()))
            }
            FormatConfig::CanalJson(timestamptz) => Box::new(CanalJsonEncoder::new(*timestamptz)),
            FormatConfig::MaxwellJson(timestamptz) => {
                Box::new(MaxwellJsonEncoder::new(*timestamptz))
            }
            FormatConfig::DtsAvro { database } => Box::new(DtsAvroEncoder::new(database.clone())),
            FormatConfig::ShareplexJson(timestamptz) => {
                Box::new(SharePlexJsonEncoder::new(*timestamptz))
            }
            FormatConfig::OmsJson {
                database,
                timestamptz,
            } => Box::new(OmsJsonEncoder::new(database.clone(), *timestamptz)),
            FormatConfig::Avro {
                registry,
                options,
                schema_change,
            } => Box::new(
                AvroEncoder::new(
                    options.clone(),
                    router.topics().clone(),
                    SchemaRegistry::new(registry)?,
                )
                .with_schema_change(*schema_change),
            ),
        })
    }
}

/// A value of `field` that cannot work; [`PipelineSpec::parse`] adds the line.
fn invalid(field: &str, message: String) -> SpecError {
    SpecError::Invalid {
        field: field.to_owned(),
        message,
        line: None,
    }
}

/// Refuses a zero duration, which would mean "constantly" or "never".
fn positive(duration: Duration, hint: &str) -> Result<Duration, String> {
    if duration.is_zero() {
        return Err(format!("must be longer than 0 ({hint})"));
    }
    Ok(duration)
}

/// A retry window of zero would give up at the first failure; `forever` is
/// written out.
fn nonzero_window(window: Option<Duration>) -> Result<Option<Duration>, String> {
    window
        .map(|w| positive(w, "write forever to retry without end"))
        .transpose()
}

/// PostgreSQL's rule for slot names, checked before anything is created: a bad
/// name refused by the server after the publication was made leaves it behind.
fn check_slot_name(slot: &str) -> Result<(), SpecError> {
    let valid = !slot.is_empty()
        && slot.len() <= 63
        && slot
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        return Ok(());
    }
    Err(invalid(
        "source.postgres.slot",
        format!("{slot:?} is not a slot name: 1 to 63 lower-case letters, digits and underscores"),
    ))
}

/// The producer settings librdkafka would refuse when the producer starts, and
/// rates that mean nothing. Returns the linger.
fn check_producer_settings(kafka: &super::spec::KafkaSpec) -> Result<Duration, SpecError> {
    let linger = match (kafka.linger, kafka.linger_ms) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "sink.kafka.linger_ms",
                "is the old spelling of linger: write only linger".to_owned(),
            ));
        }
        (Some(Interval(linger)), None) => linger,
        (None, Some(milliseconds)) => Duration::from_millis(milliseconds),
        (None, None) => DEFAULT_LINGER,
    };
    if linger > MAX_LINGER {
        let field = if kafka.linger_ms.is_some() {
            "sink.kafka.linger_ms"
        } else {
            "sink.kafka.linger"
        };
        return Err(invalid(
            field,
            format!("{linger:?} is more than librdkafka's limit of 15 minutes"),
        ));
    }
    if let Some(ByteSize(bytes)) = kafka.batch_bytes
        && (bytes == 0 || bytes > MAX_BATCH_BYTES)
    {
        return Err(invalid(
            "sink.kafka.batch_bytes",
            format!("must be from 1 to {MAX_BATCH_BYTES} bytes"),
        ));
    }
    for (field, rows) in [
        ("sink.kafka.max_rows_per_second", kafka.max_rows_per_second),
        (
            "sink.kafka.snapshot_max_rows_per_second",
            kafka.snapshot_max_rows_per_second,
        ),
    ] {
        if rows == Some(0) {
            return Err(invalid(field, "must be more than 0".to_owned()));
        }
    }
    for (field, megabytes) in [
        (
            "sink.kafka.max_megabytes_per_second",
            kafka.max_megabytes_per_second,
        ),
        (
            "sink.kafka.snapshot_max_megabytes_per_second",
            kafka.snapshot_max_megabytes_per_second,
        ),
    ] {
        if megabytes.is_some_and(|mb| !(mb > 0.0 && mb.is_finite())) {
            return Err(invalid(
                field,
                "must be a positive, finite number".to_owned(),
            ));
        }
    }
    Ok(linger)
}

/// What the format allows of the other sink settings.
fn check_formats(spec: &PipelineSpec) -> Result<(), SpecError> {
    if spec.source.postgres.tables.is_empty() {
        return Err(invalid(
            "source.postgres.tables",
            "lists no table (write public.* for every table of a schema)".to_owned(),
        ));
    }
    let kafka = &spec.sink.kafka;
    if kafka.format == Format::Avro && kafka.schema_registry.is_none() {
        return Err(invalid(
            "sink.kafka.schema_registry",
            "format avro needs the Schema Registry's URL".to_owned(),
        ));
    }
    if kafka.format != Format::Avro && kafka.schema_registry.is_some() {
        return Err(invalid(
            "sink.kafka.schema_registry",
            "only format avro uses a Schema Registry".to_owned(),
        ));
    }
    if kafka.schema_change.is_some() && kafka.format != Format::Avro {
        return Err(invalid(
            "sink.kafka.schema_change",
            "only format avro registers schemas; JSON formats carry every change as it is"
                .to_owned(),
        ));
    }
    if kafka.schemas_enable && kafka.format != Format::DebeziumJson {
        return Err(invalid(
            "sink.kafka.schemas_enable",
            "only format debezium-json writes Connect schemas".to_owned(),
        ));
    }
    if kafka.timestamptz_form.is_some()
        && !matches!(
            kafka.format,
            Format::CanalJson | Format::MaxwellJson | Format::ShareplexJson | Format::OmsJson
        )
    {
        return Err(invalid(
            "sink.kafka.timestamptz_form",
            "only formats canal-json, maxwell-json, shareplex-json and oms-json write timestamptz as text"
                .to_owned(),
        ));
    }
    if kafka.transaction_topic.is_some()
        && !matches!(kafka.format, Format::DebeziumJson | Format::Avro)
    {
        return Err(invalid(
            "sink.kafka.transaction_topic",
            "only formats debezium-json and avro carry transaction metadata".to_owned(),
        ));
    }
    Ok(())
}
