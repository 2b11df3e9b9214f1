//! The pipeline spec: the YAML file `weir run` reads.
//!
//! Parsing is strict: an unknown key, a wrong type or a missing field is an error that
//! names the line and column, because a typo that silently falls back to a default
//! (say, `compresion: zstd`) is worse in production than a refusal to start. `${VAR}`
//! and `${VAR:-default}` read the environment before parsing, so secrets stay out of
//! the file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;

use super::values::{Acks, ByteSize, Compression, Interval, IntervalOrForever, IntervalOrOff};
use super::variables::Expanded;
use crate::encode::{BinaryMode, DecimalMode, IntervalMode, TimestamptzForm};
use crate::plugin::Grants;

/// Why a spec was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A `${VAR}` names a variable that is not set and has no default.
    #[error(
        "line {line}: environment variable {name} is not set (write ${{{name}:-default}} for a default)"
    )]
    MissingVariable {
        /// The 1-based line.
        line: usize,
        /// The variable.
        name: String,
    },
    /// A `${` without its closing `}`.
    #[error("line {line}: unterminated ${{...}}")]
    UnterminatedVariable {
        /// The 1-based line.
        line: usize,
    },
    /// A variable whose value would change the YAML's structure where it stands
    /// (the value itself is never shown).
    #[error("line {line}: environment variable {name} cannot be used here: {reason}")]
    UnsafeVariable {
        /// The 1-based line.
        line: usize,
        /// The variable.
        name: String,
        /// Why, and what to write instead.
        reason: &'static str,
    },
    /// The YAML does not match the spec; the message names the line, column and field.
    #[error("{0}")]
    Yaml(String),
    /// A value that parses but means nothing (an empty table list, a bad duration).
    #[error("{}{field}: {message}", line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Invalid {
        /// The field, as a dotted path.
        field: String,
        /// What is wrong.
        message: String,
        /// The 1-based line of the field, when found in the file.
        line: Option<usize>,
    },
}

/// A pipeline: one source, a chain of plugins, one sink.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The pipeline's name: Debezium's `topic.prefix` in `source.name`, and the
    /// default dead-letter topic's stem.
    pub name: String,
    /// Where changes come from.
    pub source: SourceSpec,
    /// Plugin stages, in order.
    #[serde(default)]
    pub plugins: Vec<PluginSpec>,
    /// Where messages go.
    pub sink: SinkSpec,
    /// The metrics endpoint.
    #[serde(default)]
    pub metrics: Option<MetricsSpec>,
    /// On SIGINT/SIGTERM, how long weir waits for Kafka to acknowledge what was
    /// sent (default `60s`); past it, weir exits with what was acknowledged confirmed.
    #[serde(default)]
    pub shutdown_timeout: Option<Interval>,
}

/// `metrics:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// `host:port` serving `/metrics`, `/health` and `/ready`.
    pub listen: String,
}

/// `source:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// `source.postgres`.
    pub postgres: PostgresSpec,
}

/// `source.postgres`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    /// `postgres://user:password@host:port/database?sslmode=...`.
    pub url: String,
    /// The logical replication slot (created when missing).
    pub slot: String,
    /// The publication (created for `tables` when missing).
    pub publication: String,
    /// `schema.table` or `schema.*`.
    pub tables: Vec<String>,
    /// Interval of the source's heartbeat messages (`10s`, `500ms`), or `off`.
    #[serde(default)]
    pub heartbeat: Option<IntervalOrOff>,
    /// How long connection failures are retried before weir gives up (`6h`
    /// default, or `forever`).
    #[serde(default)]
    pub retry_window: Option<IntervalOrForever>,
    /// When the tables' existing rows are read (`initial` default).
    #[serde(default)]
    pub snapshot: SnapshotModeSpec,
    /// Connections reading the snapshot in parallel (2 default).
    #[serde(default)]
    pub snapshot_workers: Option<usize>,
    /// Rows per snapshot chunk, the unit of progress and resumption (100000
    /// default).
    #[serde(default)]
    pub snapshot_chunk_rows: Option<u64>,
    /// Large transactions stream from the server while they run, weir holding
    /// them on its own disk until the commit (`false` default: the server holds
    /// them until the commit).
    #[serde(default)]
    pub stream_in_progress: bool,
    /// Accept snapshot requests (`weir snapshot`, or a `weir_signal` logical
    /// message) from the WAL (`false` default). Any role that may call
    /// `pg_logical_emit_message` in the database can send one, so it is opt-in;
    /// revoke that function from PUBLIC to choose who may.
    #[serde(default)]
    pub signals: bool,
    /// Capture DDL (`capture`) with an event trigger weir installs, and send each
    /// statement, and each TRUNCATE, to `sink.kafka.ddl_topic` (`off` default).
    /// Needs PostgreSQL 14+ and a role that may create event triggers (a
    /// superuser), or a trigger a superuser installed (`weir check` prints the SQL).
    #[serde(default)]
    pub ddl: DdlSpec,
    /// How often a running pipeline looks for new tables that `tables` selects
    /// by a pattern (`sales.order_*`, or `schema.*` before PostgreSQL 15) and adds
    /// them to the publication weir created, reading their rows with the
    /// incremental snapshot (`10s` default, or `off`). With `ddl: capture` a
    /// CREATE TABLE is acted on at once.
    #[serde(default)]
    pub table_discovery: Option<IntervalOrOff>,
    /// Whether the slot is a failover slot (PostgreSQL 17+), which standbys with
    /// `sync_replication_slots = on` copy, so weir continues on a promoted standby
    /// without losing its place: `auto` (default: on PostgreSQL 17 and later,
    /// also for a slot created earlier), `on` (refused before 17) or `off`.
    #[serde(default)]
    pub slot_failover: SlotFailoverSpec,
    /// What an update carries for a TOASTed value it left unchanged, which
    /// PostgreSQL leaves out of the WAL unless the table has `REPLICA IDENTITY
    /// FULL`: `placeholder` (default: Debezium's `__debezium_unavailable_value`) or
    /// `fetch` (read from the table by primary key, so whole-row formats like
    /// `canal-json` and `maxwell-json` carry the value; one query per such update).
    #[serde(default)]
    pub unchanged_toast: UnchangedToastSpec,
}

/// `source.postgres.unchanged_toast`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnchangedToastSpec {
    /// Debezium's placeholder.
    #[default]
    Placeholder,
    /// The value read from the table by primary key.
    Fetch,
}

/// `source.postgres.slot_failover`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SlotFailoverSpec {
    /// A failover slot when the server has them (17+).
    #[default]
    Auto,
    /// A failover slot; a server before 17 is refused.
    On,
    /// An ordinary slot.
    Off,
}

/// `sink.kafka.schema_change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SchemaChangeSpec {
    /// Stop, naming what changed.
    Fail,
    /// Register under a new subject and go on.
    NewSubject,
}

/// `source.postgres.ddl`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DdlSpec {
    /// Schema changes show only as new schema versions on the tables' next
    /// changes.
    #[default]
    Off,
    /// Capture DDL into the DDL topic.
    Capture,
}

/// `source.postgres.snapshot`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotModeSpec {
    /// Snapshot when weir creates the slot, then stream.
    #[default]
    Initial,
    /// Stream only.
    Never,
    /// Snapshot, then stop.
    InitialOnly,
    /// As `initial`, and whenever no finished snapshot is recorded for the slot.
    WhenNeeded,
}

/// One `plugins:` entry.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The stage's name in logs, metrics and dead letters.
    pub name: String,
    /// The component file, relative to the spec file's directory.
    pub wasm: PathBuf,
    /// The tables the stage applies to; absent: all.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Handed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: Option<serde_json::Value>,
    /// `fail` (default), `skip` or `dead_letter`.
    #[serde(default)]
    pub on_error: OnErrorSpec,
    /// Deadline of one call (`1s`, `200ms`).
    #[serde(default)]
    pub timeout: Option<Interval>,
    /// Linear memory cap of one instance (`256MiB`, `1GiB`; default 256 MiB).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// What the plugin may reach beyond computing: environment variables,
    /// directories, the real clock. Default: nothing.
    #[serde(default)]
    pub grants: Grants,
}

/// `on_error:` of a plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnErrorSpec {
    /// Stop the pipeline.
    #[default]
    Fail,
    /// Drop the batch.
    Skip,
    /// Send the batch's rows to the dead-letter topic.
    DeadLetter,
}

/// `sink:`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SinkSpec {
    /// `sink.kafka`.
    pub kafka: KafkaSpec,
}

/// A change kind `sink.kafka.skipped_operations` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SkippedOperation {
    /// Inserts.
    C,
    /// Updates.
    U,
    /// Deletes (and their tombstones).
    D,
    /// TRUNCATE.
    T,
    /// Nothing: the list is `[none]`.
    None,
}

fn default_skipped_operations() -> Vec<SkippedOperation> {
    vec![SkippedOperation::T]
}

/// The message format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Confluent Avro with a Schema Registry, Debezium's envelope.
    Avro,
    /// Debezium's JSON envelope.
    #[default]
    DebeziumJson,
    /// Canal's FlatMessage.
    CanalJson,
    /// Maxwell's row events.
    MaxwellJson,
    /// Alibaba Cloud DTS's Avro record, raw (no registry).
    DtsAvro,
    /// SharePlex JSON as Alibaba Cloud DTS writes it.
    ShareplexJson,
    /// OceanBase Migration Service's Default JSON.
    OmsJson,
    /// One flat object per row.
    Json,
}

/// `sink.kafka.create_topics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTopicsSpec {
    /// Partitions of a created topic.
    pub partitions: u32,
    /// Replication factor of a created topic.
    #[serde(default = "default_replication_factor")]
    pub replication_factor: u16,
}

fn default_replication_factor() -> u16 {
    1
}

/// A partition policy: a name, `columns:a,b`, or a fixed partition number.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PartitionSpec {
    /// `partition: 0`.
    Fixed(i32),
    /// `partition: primary_key`.
    Named(String),
}

impl Default for PartitionSpec {
    fn default() -> Self {
        PartitionSpec::Named("primary_key".to_owned())
    }
}

/// `sink.kafka`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaSpec {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// Topic template with `{database}`, `{schema}`, `{table}`.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Per-table topics: `schema.table: topic`.
    #[serde(default)]
    pub topics: BTreeMap<String, String>,
    /// `primary_key`, `table`, `schema`, `columns:a,b` or a partition number.
    #[serde(default)]
    pub partition: PartitionSpec,
    /// Under `partition: primary_key`, where rows of a table without a primary key
    /// go: `table` (default: a hash of the table's name, one partition, commit
    /// order kept), `schema`, a partition number, or `spread` (every partition,
    /// no order).
    #[serde(default)]
    pub keyless_partition: Option<PartitionSpec>,
    /// The message format.
    #[serde(default)]
    pub format: Format,
    /// The Schema Registry's URL (`avro` only); user and password in the URL are
    /// sent as HTTP basic authentication.
    #[serde(default)]
    pub schema_registry: Option<String>,
    /// Debezium JSON: a tombstone (null value) after each delete, so compaction can
    /// drop the key.
    #[serde(default = "default_true")]
    pub tombstones: bool,
    /// Change kinds left out, as Debezium's `skipped.operations`: any of `c`, `u`,
    /// `d`, `t`, or `[none]`. Default `[t]`: a TRUNCATE is logged and counted, not
    /// sent.
    #[serde(default = "default_skipped_operations")]
    pub skipped_operations: Vec<SkippedOperation>,
    /// Debezium JSON: keys and values carry their Kafka Connect schema,
    /// `{"schema": …, "payload": …}` (Connect's `schemas.enable`).
    #[serde(default)]
    pub schemas_enable: bool,
    /// `precise` (default), `string` or `double`.
    #[serde(default)]
    pub decimal_handling_mode: DecimalMode,
    /// `numeric` (default) or `string`.
    #[serde(default)]
    pub interval_handling_mode: IntervalMode,
    /// `base64` (default) or `hex`.
    #[serde(default)]
    pub binary_handling_mode: BinaryMode,
    /// `canal-json`, `maxwell-json`, `shareplex-json`, `oms-json`: `utc_z`
    /// (default; UTC with a `Z`, Flink's `TIMESTAMP_LTZ`) or `utc` (UTC without a
    /// zone, as Canal writes MySQL's `TIMESTAMP`: Paimon's Canal parser, Flink's
    /// `TIMESTAMP`).
    #[serde(default)]
    pub timestamptz_form: Option<TimestamptzForm>,
    /// `none`, `gzip`, `snappy`, `lz4` (default) or `zstd`.
    #[serde(default)]
    pub compression: Compression,
    /// `all` (default), `1` or `0`.
    #[serde(default)]
    pub acks: Acks,
    /// How long the producer waits to fill a batch (`linger.ms`; `5ms` default).
    #[serde(default)]
    pub linger: Option<Interval>,
    /// `linger` in milliseconds, as weir 0.1 spelt it; use `linger`.
    #[serde(default)]
    #[schemars(extend("deprecated" = true))]
    pub linger_ms: Option<u64>,
    /// Most bytes of one producer batch (`batch.size`; `1MiB` default).
    #[serde(default)]
    pub batch_bytes: Option<ByteSize>,
    /// Create missing topics with these settings; absent: a missing topic stops the
    /// pipeline with an error naming it.
    #[serde(default)]
    pub create_topics: Option<CreateTopicsSpec>,
    /// Debezium's transaction metadata: a `BEGIN` and an `END` event per
    /// transaction on this topic, and each event's `transaction` block filled
    /// (`debezium-json` and `avro`).
    #[serde(default)]
    pub transaction_topic: Option<String>,
    /// When the Schema Registry refuses a table's new schema as incompatible
    /// (`avro`): `fail` (default) stops before any row of it is sent, naming the
    /// columns and the level; `new_subject` registers it under `<subject>-v2`
    /// and goes on.
    #[serde(default)]
    pub schema_change: Option<SchemaChangeSpec>,
    /// Where captured DDL and TRUNCATEs go, keyed by table (default `<name>.ddl`;
    /// with `source.postgres.ddl: capture`).
    #[serde(default)]
    pub ddl_topic: Option<String>,
    /// Heartbeat messages (`{"serverName": name}` → `{"ts_ms": …}`) on this topic.
    #[serde(default)]
    pub heartbeat_topic: Option<String>,
    /// How often heartbeats are sent (default `10s`).
    #[serde(default)]
    pub heartbeat_interval: Option<Interval>,
    /// Where `on_error: dead_letter` stages send rows (default `<name>.dlq`).
    #[serde(default)]
    pub dead_letter_topic: Option<String>,
    /// How long a message is retried while Kafka is unreachable before weir gives up
    /// (`6h` default, or `forever`).
    #[serde(default)]
    pub retry_window: Option<IntervalOrForever>,
    /// Rows per second at most, over the whole pipeline (streaming).
    #[serde(default)]
    pub max_rows_per_second: Option<u64>,
    /// Megabytes (10^6 bytes of keys and values) per second at most.
    #[serde(default)]
    pub max_megabytes_per_second: Option<f64>,
    /// Rows per second at most while the snapshot is read.
    #[serde(default)]
    pub snapshot_max_rows_per_second: Option<u64>,
    /// Megabytes per second at most while the snapshot is read.
    #[serde(default)]
    pub snapshot_max_megabytes_per_second: Option<f64>,
    /// weir's compacted topic for the snapshot's progress (`weir.<name>.state`
    /// default); created when missing.
    #[serde(default)]
    pub state_topic: Option<String>,
    /// Exactly-once: every message goes out in Kafka transactions that hold whole
    /// PostgreSQL transactions, with the position they reach in the state topic;
    /// `read_committed` consumers see each change once, even after a crash.
    #[serde(default)]
    pub exactly_once: bool,
    /// Exactly-once: the producer's `transactional.id` (default `weir-<name>`). A
    /// weir starting with it fences any other still running.
    #[serde(default)]
    pub transactional_id: Option<String>,
    /// Exactly-once: how often the open Kafka transaction is committed (`100ms`
    /// default); consumers reading committed data see changes this much later.
    #[serde(default)]
    pub transaction_interval: Option<Interval>,
    /// Exactly-once: the broker aborts a transaction open longer
    /// (`transaction.timeout.ms`, `1m` default; the broker's
    /// `transaction.max.timeout.ms`, 15 minutes by default, is the most).
    #[serde(default)]
    pub transaction_timeout: Option<Interval>,
    /// Any librdkafka property (security, SASL, tuning); they win over the above.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

fn default_topic() -> String {
    "{database}.{schema}.{table}".to_owned()
}

fn default_true() -> bool {
    true
}

impl PipelineSpec {
    /// The JSON Schema of the spec (draft 2020-12), for editors: YAML language
    /// servers complete and check keys with it.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(PipelineSpec)).unwrap_or_default()
    }
    /// Parses a spec, reading `${VAR}` through `env`: the syntax and each value's
    /// form. What the values must also be is checked by
    /// [`super::PipelineConfig::build`]; [`super::load`] does both.
    ///
    /// Errors quote the file as written, never a value from the environment.
    pub fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, SpecError> {
        let expanded = super::variables::expand(text, env)?;
        Self::from_expanded(&expanded, text)
    }

    pub(super) fn from_expanded(expanded: &Expanded, written: &str) -> Result<Self, SpecError> {
        serde_saphyr::from_str(&expanded.text).map_err(|e| {
            let message = e.without_snippet().to_string();
            let mut message = expanded.redact(message.trim_start_matches("error: "));
            let line = e
                .location()
                .and_then(|location| usize::try_from(location.line()).ok());
            // The location leads, as in every other spec error.
            if let Some(at) = message.rfind(" at line ").filter(|_| line.is_some()) {
                message.truncate(at);
            }
            let prefix = line
                .map(|line| format!("line {line}: "))
                .unwrap_or_default();
            let field = line
                .and_then(|line| field_at(&expanded.text, line))
                .map(|field| format!("{field}: "))
                .unwrap_or_default();
            let snippet = line
                .and_then(|line| Some((line, written.lines().nth(line.checked_sub(1)?)?)))
                .map(|(line, source)| format!("\n {line:>4} | {source}"))
                .unwrap_or_default();
            let message = format!("{prefix}{field}{}{snippet}", with_suggestion(&message));
            SpecError::Yaml(crate::redact::credentials(&message).into_owned())
        })
    }
}

/// The dotted path of the key on `line` (1-based) of the YAML text, from the keys
/// above it at smaller indentation: `sink.kafka.linger`, `plugins[1].timeout`.
pub(super) fn field_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let (mut column, item) =
        key_line(lines.get(line.checked_sub(1)?)?).map(|key| (key.column, key.item))?;
    let mut path = vec![key_line(lines[line - 1])?.key];
    // While inside a list item: the column of its `- ` and the line it starts on.
    let mut list: Option<(usize, usize)> = item.then(|| (column - 2, line - 1));
    for index in (0..line - 1).rev() {
        let Some(key) = key_line(lines[index]) else {
            continue;
        };
        if let Some((dash, start)) = list {
            let parent = if key.item {
                key.column - 2 < dash
            } else {
                key.column <= dash
            };
            if parent {
                let position = lines[index + 1..=start]
                    .iter()
                    .filter(|l| l.trim_start().starts_with("- ") && indent(l) == dash)
                    .count()
                    .saturating_sub(1);
                path.push(format!("{}[{position}]", key.key));
                column = key.column;
                list = key.item.then(|| (key.column - 2, index));
            }
            continue;
        }
        if key.item && key.column == column {
            // The first key of the item our key belongs to.
            list = Some((column - 2, index));
        } else if key.column < column {
            path.push(key.key);
            column = key.column;
            list = key.item.then(|| (key.column - 2, index));
        }
    }
    path.reverse();
    Some(path.join("."))
}

/// A `key:` line: the key, the column it starts at, and whether a `- ` opens a
/// list item before it.
struct KeyLine {
    key: String,
    column: usize,
    item: bool,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn key_line(line: &str) -> Option<KeyLine> {
    let trimmed = line.trim_start();
    let (item, body) = match trimmed.strip_prefix("- ") {
        Some(body) => (true, body.trim_start()),
        None => (false, trimmed),
    };
    let key = body.split_once(':')?.0.trim();
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    plain.then(|| KeyLine {
        key: key.to_owned(),
        column: line.len() - body.len(),
        item,
    })
}

/// The line of a dotted field (`sink.kafka.partition`, `plugins[1].timeout`) in
/// the YAML text: each segment looked for as a key below the previous one.
pub(super) fn locate(text: &str, field: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut found = None;
    for segment in field.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((key, rest)) => (key, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let position = lines[from..].iter().position(|line| {
            let trimmed = line.trim_start().trim_start_matches("- ");
            trimmed.starts_with(&format!("{key}:"))
        })?;
        from += position;
        found = Some(from + 1);
        if let Some(index) = index {
            // The index-th list item below the key.
            let item = lines[from + 1..]
                .iter()
                .enumerate()
                .filter(|(_, line)| line.trim_start().starts_with("- "))
                .nth(index)?
                .0;
            from += 1 + item;
            found = Some(from + 1);
        }
        from += 1;
        // A key on a `- ` item line is on that line, not below it.
        if index.is_some() {
            from -= 1;
        }
    }
    found
}

/// Adds "did you mean `…`?" to an unknown-field message when one of the expected
/// keys is a likely intended spelling.
fn with_suggestion(message: &str) -> String {
    let (first, rest) = message.split_once('\n').unwrap_or((message, ""));
    let unknown = first
        .split_once("unknown field `")
        .and_then(|(_, after)| after.split_once('`'));
    let Some((unknown, after)) = unknown else {
        return message.to_owned();
    };
    let Some((_, expected)) = after.split_once("expected one of ") else {
        return message.to_owned();
    };
    let nearest = expected
        .split(", ")
        .map(|candidate| candidate.trim().trim_matches('`'))
        .map(|candidate| (edit_distance(unknown, candidate), candidate))
        .min();
    match nearest {
        Some((distance, candidate)) if distance <= (unknown.len() / 3).max(2) => {
            let separator = if rest.is_empty() { "" } else { "\n" };
            format!("{first} (did you mean `{candidate}`?){separator}{rest}")
        }
        _ => message.to_owned(),
    }
}

/// Levenshtein distance, for key suggestions (keys are short).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    /// Parses and builds `text`, as `weir validate` does; the spec on success.
    fn checked(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PipelineSpec, SpecError> {
        crate::config::from_text(text, env, Path::new("."))?;
        PipelineSpec::parse(text, env)
    }

    const MINIMAL: &str = "\
name: shop
source:
  postgres:
    url: postgres://u:${PGPASSWORD}@db/shop
    slot: weir_shop
    publication: weir_shop
    tables: [public.orders]
sink:
  kafka:
    brokers: ${BROKERS:-localhost:9092}
";

    fn env(name: &str) -> Option<String> {
        (name == "PGPASSWORD").then(|| "secret".to_owned())
    }

    #[test]
    fn defaults_and_variables() {
        let spec = checked(MINIMAL, &env).expect("parses");
        assert_eq!(spec.source.postgres.url, "postgres://u:secret@db/shop");
        assert_eq!(spec.sink.kafka.brokers, "localhost:9092");
        assert_eq!(spec.sink.kafka.topic, "{database}.{schema}.{table}");
        assert_eq!(spec.sink.kafka.format, Format::DebeziumJson);
        assert_eq!(spec.sink.kafka.partition, PartitionSpec::default());
        assert!(spec.sink.kafka.tombstones);
    }

    #[test]
    fn a_missing_variable_names_its_line() {
        let error = checked(MINIMAL, &|_| None).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "line 4: environment variable PGPASSWORD is not set (write ${PGPASSWORD:-default} for a default)"
        );
    }

    #[test]
    fn an_unknown_key_names_its_line_and_the_key() {
        let text = MINIMAL.replace("    brokers:", "    compresion: zstd\n    brokers:");
        let error = checked(&text, &env).expect_err("refused");
        let message = error.to_string();
        assert!(message.contains("compresion"), "{message}");
        assert!(message.contains("line 10"), "{message}");
    }

    #[test]
    fn a_misspelt_key_gets_the_nearest_valid_one() {
        let text = MINIMAL.replace("    brokers:", "    compresion: zstd\n    brokers:");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert!(
            message.contains("(did you mean `compression`?)"),
            "{message}"
        );
        let text = MINIMAL.replace("    brokers:", "    xyzzy: 1\n    brokers:");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert!(!message.contains("did you mean"), "{message}");
        assert_eq!(edit_distance("slto", "slot"), 2);
        assert_eq!(edit_distance("tables", "tables"), 0);
    }

    #[test]
    fn a_wrong_value_names_its_line() {
        let text = MINIMAL.replace("    brokers:", "    format: protobuf\n    brokers:");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert!(message.contains("protobuf"), "{message}");
        assert!(message.contains("line 10"), "{message}");
    }

    #[test]
    fn avro_needs_a_registry() {
        let text = format!("{MINIMAL}    format: avro\n");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert_eq!(
            message,
            "sink.kafka.schema_registry: format avro needs the Schema Registry's URL"
        );
    }

    /// Each class of bad spec, and the line its message names.
    #[test]
    fn every_class_of_bad_spec_names_its_line() {
        let cases = [
            // A missing required field: where its mapping ends.
            (
                MINIMAL.replace("    slot: weir_shop\n", ""),
                "line 6",
                "slot",
            ),
            // A value of the wrong type.
            (
                format!("{MINIMAL}    linger_ms: soon\n"),
                "line 11",
                "linger_ms",
            ),
            // Broken YAML: where the parser notices.
            (
                MINIMAL.replace("[public.orders]", "[public.orders"),
                "line 8",
                "",
            ),
            // A value that parses but means nothing.
            (
                format!("{MINIMAL}    partition: by_magic\n"),
                "line 11",
                "sink.kafka.partition",
            ),
            (
                MINIMAL.replace(
                    "    tables: [public.orders]",
                    "    tables: [public.orders]\n    heartbeat: soon",
                ),
                "line 8",
                "source.postgres.heartbeat",
            ),
            (
                MINIMAL.replace("[public.orders]", "[\"*.orders\"]"),
                "line 7",
                "source.postgres.tables",
            ),
            (
                format!("{MINIMAL}metrics:\n  listen: nowhere\n"),
                "line 12",
                "metrics.listen",
            ),
        ];
        for (text, line, key) in cases {
            let message = checked(&text, &env).expect_err("refused").to_string();
            assert!(message.contains(line), "expected {line} in: {message}");
            assert!(message.contains(key), "expected {key} in: {message}");
        }
    }

    /// Issue 15, item 4: each of these passed `validate` and then panicked or
    /// failed only at run time, after the slot and publication existed.
    #[test]
    fn values_that_mean_nothing_are_refused_naming_the_field() {
        let source = |line: &str| {
            MINIMAL.replace(
                "    tables: [public.orders]\n",
                &format!("    tables: [public.orders]\n    {line}\n"),
            )
        };
        let sink = |line: &str| format!("{MINIMAL}    {line}\n");
        let plugin = |line: &str| {
            MINIMAL.replace(
                "sink:\n",
                &format!("plugins:\n  - name: p\n    wasm: p.wasm\n    {line}\nsink:\n"),
            )
        };
        let cases = [
            (source("heartbeat: 0s"), "source.postgres.heartbeat"),
            (source("retry_window: 0s"), "source.postgres.retry_window"),
            (
                source("snapshot_workers: 100000"),
                "source.postgres.snapshot_workers",
            ),
            (
                source("snapshot_workers: 0"),
                "source.postgres.snapshot_workers",
            ),
            (
                source("snapshot_chunk_rows: 0"),
                "source.postgres.snapshot_chunk_rows",
            ),
            (
                MINIMAL.replace("slot: weir_shop", "slot: Weir-Shop"),
                "source.postgres.slot",
            ),
            (
                MINIMAL.replace("slot: weir_shop", "slot: \"\""),
                "source.postgres.slot",
            ),
            (
                sink("snapshot_max_rows_per_second: 0"),
                "sink.kafka.snapshot_max_rows_per_second",
            ),
            (
                sink("max_rows_per_second: 0"),
                "sink.kafka.max_rows_per_second",
            ),
            (
                sink("max_megabytes_per_second: -1"),
                "sink.kafka.max_megabytes_per_second",
            ),
            (
                sink("snapshot_max_megabytes_per_second: -1.5"),
                "sink.kafka.snapshot_max_megabytes_per_second",
            ),
            (
                sink("snapshot_max_megabytes_per_second: .nan"),
                "sink.kafka.snapshot_max_megabytes_per_second",
            ),
            (sink("batch_bytes: 0"), "sink.kafka.batch_bytes"),
            (sink("acks: most"), "sink.kafka.acks"),
            (sink("compression: brotli"), "sink.kafka.compression"),
            (sink("linger_ms: 99999999"), "sink.kafka.linger_ms"),
            (sink("topic: \"\""), "sink.kafka.topic"),
            (sink("topic: \"shop/{table}\""), "sink.kafka.topic"),
            (
                sink("topics: { public.orders: \"a b\" }"),
                "sink.kafka.topics",
            ),
            (
                sink("dead_letter_topic: \"..\""),
                "sink.kafka.dead_letter_topic",
            ),
            (sink("partition: -1"), "sink.kafka.partition"),
            (
                sink("heartbeat_interval: 0ms"),
                "sink.kafka.heartbeat_interval",
            ),
            (sink("retry_window: 0s"), "sink.kafka.retry_window"),
            (sink("timestamptz_form: utc"), "sink.kafka.timestamptz_form"),
            (
                sink("format: canal-json\n    timestamptz_form: local"),
                "sink.kafka.timestamptz_form",
            ),
            (
                sink("exactly_once: true\n    transaction_interval: 0s"),
                "sink.kafka.transaction_interval",
            ),
            (
                sink("exactly_once: true\n    transaction_interval: 40s"),
                "sink.kafka.transaction_interval",
            ),
            (
                sink("exactly_once: true\n    transaction_timeout: 1h"),
                "sink.kafka.transaction_timeout",
            ),
            (
                sink("exactly_once: true\n    transactional_id: \"\""),
                "sink.kafka.transactional_id",
            ),
            (sink("exactly_once: true\n    acks: 1"), "sink.kafka.acks"),
            (
                sink("transaction_interval: 1s"),
                "sink.kafka.transaction_interval",
            ),
            (
                format!("{}    exactly_once: true\n", source("snapshot_workers: 4")),
                "source.postgres.snapshot_workers",
            ),
            (
                sink("keyless_partition: anywhere"),
                "sink.kafka.keyless_partition",
            ),
            (
                sink("partition: table\n    keyless_partition: spread"),
                "sink.kafka.keyless_partition",
            ),
            (sink("ddl_topic: schema.changes"), "sink.kafka.ddl_topic"),
            (
                format!("{}    ddl_topic: \"a b\"\n", source("ddl: capture")),
                "sink.kafka.ddl_topic",
            ),
            (source("ddl: log"), "source.postgres.ddl"),
            (
                source("table_discovery: 0s"),
                "source.postgres.table_discovery",
            ),
            (
                sink("schema_change: new_subject"),
                "sink.kafka.schema_change",
            ),
            (plugin("timeout: 0s"), "plugins[0].timeout"),
            (plugin("memory: 0MiB"), "plugins[0].memory"),
        ];
        for (text, field) in cases {
            let message = match checked(&text, &env) {
                Ok(_) => panic!("accepted, expected {field} refused:\n{text}"),
                Err(error) => error.to_string(),
            };
            assert!(message.contains(field), "expected {field} in: {message}");
            assert!(message.starts_with("line "), "no line in: {message}");
        }
    }

    /// Issue 15, item 3: a secret from the environment never appears in an
    /// error, and a value with YAML syntax in it stays one value.
    #[test]
    fn secrets_stay_out_of_errors_and_values_stay_values() {
        let secret = "hunter2: #not-a-comment\ninjected: true";
        let env = |name: &str| (name == "PGPASSWORD").then(|| secret.to_owned());
        let spec = checked(MINIMAL, &env).expect("a password with YAML syntax");
        assert_eq!(
            spec.source.postgres.url,
            format!("postgres://u:{secret}@db/shop")
        );
        // A typo on the line after the url: the snippet shows the file as written.
        let text = MINIMAL.replace("    slot:", "    slto: x\n    slot:");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert!(message.contains("slto"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        // A value that is wrong where it stands: named, not shown.
        let text = MINIMAL.replace("[public.orders]", "[public.orders, ${PGPASSWORD}]");
        let message = checked(&text, &env).expect_err("refused").to_string();
        assert!(
            message.contains("PGPASSWORD") && message.contains("line 7"),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn fields_are_located() {
        let text =
            "a:\n  b: 1\nplugins:\n  - name: x\n    timeout: 1s\n  - name: y\n    timeout: 2s\n";
        assert_eq!(locate(text, "a.b"), Some(2));
        assert_eq!(locate(text, "plugins[1].timeout"), Some(7));
        assert_eq!(locate(text, "plugins[0].name"), Some(4));
        assert_eq!(locate(text, "nothing"), None);
    }

    /// The stage example in docs/plugins.md is a valid `plugins:` section.
    #[test]
    fn the_documented_stage_example_parses() {
        let docs = include_str!("../../../docs/plugins.md");
        let section = &docs[docs
            .find("## Limits, grants and failures")
            .expect("section")..];
        let start = section.find("```yaml\n").expect("example") + 8;
        let end = start + section[start..].find("```").expect("its end");
        let text = MINIMAL.replace("sink:\n", &format!("{}sink:\n", &section[start..end]));
        let spec = checked(&text, &env).expect("the documented example parses");
        let config = crate::config::PipelineConfig::build(&spec, Path::new("/plugins"))
            .expect("and means something");
        let stage = &config.stages[0];
        assert_eq!(stage.limits.memory_bytes, 256 << 20);
        assert_eq!(stage.grants.env, ["GEOIP_LICENSE"]);
        assert!(stage.grants.clock);
        assert_eq!(stage.grants.dirs.len(), 1);
    }

    #[test]
    fn large_transactions_are_held_by_the_server_unless_asked() {
        let spec = checked(MINIMAL, &env).expect("parses");
        let config = crate::config::PipelineConfig::build(&spec, Path::new(".")).expect("builds");
        assert!(!config.source.stream_in_progress);
        let text = MINIMAL.replace(
            "    tables: [public.orders]\n",
            "    tables: [public.orders]\n    stream_in_progress: true\n",
        );
        let spec = checked(&text, &env).expect("parses");
        let config = crate::config::PipelineConfig::build(&spec, Path::new(".")).expect("builds");
        assert!(config.source.stream_in_progress);
        let text = text.replace("stream_in_progress: true", "stream_in_progress: sometimes");
        let error = checked(&text, &env).expect_err("not a boolean");
        assert!(error.to_string().contains("line 8"), "{error}");
    }

    #[test]
    fn skipped_operations_default_to_truncates_and_take_none_alone() {
        let sink = |line: &str| format!("{MINIMAL}    {line}\n");
        let skipped = |text: &str| {
            crate::config::from_text(text, &env, Path::new("."))
                .map(|config| config.source.skipped_operations)
        };
        assert_eq!(skipped(MINIMAL).expect("builds"), vec![b't']);
        assert_eq!(
            skipped(&sink("skipped_operations: [none]")).expect("builds"),
            Vec::<u8>::new()
        );
        assert_eq!(
            skipped(&sink("skipped_operations: [u, d, d]")).expect("builds"),
            vec![b'd', b'u']
        );
        let error = skipped(&sink("skipped_operations: [none, t]")).expect_err("refused");
        assert!(
            error.to_string().contains("sink.kafka.skipped_operations"),
            "{error}"
        );
        let error = skipped(&sink("skipped_operations: [x]")).expect_err("refused");
        assert!(error.to_string().contains("skipped_operations"), "{error}");
    }

    #[test]
    fn typed_values_take_their_text_forms() {
        let sink = |line: &str| format!("{MINIMAL}    {line}\n");
        let build =
            |text: &str| crate::config::from_text(text, &env, Path::new(".")).expect("builds");
        let linger = |text: &str| build(text).producer.linger;
        assert_eq!(linger(MINIMAL), std::time::Duration::from_millis(5));
        assert_eq!(
            linger(&sink("linger: 20ms")),
            std::time::Duration::from_millis(20)
        );
        assert_eq!(
            linger(&sink("linger_ms: 7")),
            std::time::Duration::from_millis(7)
        );
        for (line, acks) in [("acks: 1", "1"), ("acks: -1", "all"), ("acks: \"0\"", "0")] {
            assert_eq!(build(&sink(line)).producer.acks, acks, "{line}");
        }
        assert_eq!(
            build(&sink("batch_bytes: 64KiB")).producer.batch_bytes,
            64 << 10
        );
        assert_eq!(
            build(&sink("batch_bytes: 65536")).producer.batch_bytes,
            65536
        );
        assert_eq!(
            build(&sink("compression: zstd")).producer.compression,
            "zstd"
        );
    }

    #[test]
    fn a_value_of_the_wrong_form_names_its_line_and_field() {
        let sink = |line: &str| format!("{MINIMAL}    {line}\n");
        let plugin = |line: &str| {
            MINIMAL.replace(
                "sink:\n",
                &format!("plugins:\n  - name: p\n    wasm: p.wasm\n  - name: q\n    wasm: q.wasm\n    {line}\nsink:\n"),
            )
        };
        let cases = [
            (sink("linger: soon"), "line 11: sink.kafka.linger: "),
            (
                sink("batch_bytes: 1TB"),
                "line 11: sink.kafka.batch_bytes: ",
            ),
            (
                sink("linger: 5ms\n    linger_ms: 5"),
                "line 12: sink.kafka.linger_ms: ",
            ),
            (
                format!("{MINIMAL}shutdown_timeout: 0s\n"),
                "line 11: shutdown_timeout: must be longer than 0",
            ),
            (plugin("memory: lots"), "line 13: plugins[1].memory: "),
            (plugin("timeout: 0s"), "line 13: plugins[1].timeout: "),
        ];
        for (text, expected) in cases {
            let message = match checked(&text, &env) {
                Ok(_) => panic!("accepted:\n{text}"),
                Err(error) => error.to_string(),
            };
            assert!(
                message.starts_with(expected),
                "expected {expected:?} in: {message}"
            );
        }
    }

    #[test]
    fn the_field_of_a_line_is_found_through_maps_and_lists() {
        let text = "name: a\nsink:\n  kafka:\n    brokers: b\n    topics:\n      public.x: y\nplugins:\n  - name: p\n    wasm: p.wasm\n  - name: q\n    timeout: 1s\n";
        assert_eq!(field_at(text, 1).as_deref(), Some("name"));
        assert_eq!(field_at(text, 4).as_deref(), Some("sink.kafka.brokers"));
        assert_eq!(
            field_at(text, 6).as_deref(),
            Some("sink.kafka.topics.public.x")
        );
        assert_eq!(field_at(text, 9).as_deref(), Some("plugins[0].wasm"));
        assert_eq!(field_at(text, 10).as_deref(), Some("plugins[1].name"));
        assert_eq!(field_at(text, 11).as_deref(), Some("plugins[1].timeout"));
    }
}
