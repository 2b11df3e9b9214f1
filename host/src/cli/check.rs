//! `weir validate SPEC` and `weir check SPEC`: what can be known about a pipeline
//! before it runs.
//!
//! `validate` needs nothing but the file: the spec parses, every value means
//! something, and every plugin loads and accepts its config. `check` also talks to
//! the peers, as the pipeline will: the source precheck (settings, privileges,
//! slot, publication, tables), the brokers (reachable, every table's topic present
//! or creatable) and, when asked, a test message to a topic of the user's choosing.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

use crate::checkpoint::CheckpointTracker;
use crate::config::{self, FormatConfig, PipelineConfig};
use crate::encode::SchemaRegistry;
use crate::plugin::{PluginChain, PluginEngine};
use crate::produce::KafkaProducer;
use crate::produce::admin::{TopicAdmin, TopicError};
use crate::source::catalog::resolve_tables;
use crate::source::failover_check::failover_precheck;
use crate::source::precheck::{CheckStatus, Finding, PrecheckInput, precheck};

use super::run::RunError;

/// Parses and checks the spec at `path` and loads its plugins. Blocking: plugins
/// are compiled and instantiated (their `init` runs with their config).
pub fn validate_file(path: &Path) -> Result<PipelineConfig, RunError> {
    let config = config::load(path)?;
    if !config.stages.is_empty() {
        let engine = PluginEngine::with_default_cache()
            .map_err(|e| RunError::Failed(anyhow::Error::new(e)))?;
        PluginChain::new(&engine, config.stages.clone())
            .map_err(|e| RunError::Invalid(anyhow::Error::new(e).context("loading plugins")))?;
    }
    Ok(config)
}

/// One line of `weir check`'s report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    /// Pass, warn or fail.
    pub status: CheckStatus,
    /// What was checked.
    pub check: String,
    /// What was found, and what to do about a failure.
    pub message: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.status, self.check, self.message)
    }
}

impl From<Finding> for CheckLine {
    fn from(finding: Finding) -> Self {
        let message = match finding.fix {
            Some(fix) => format!("{} (fix: {fix})", finding.message),
            None => finding.message,
        };
        Self {
            status: finding.status,
            check: format!("postgres {}", finding.check),
            message,
        }
    }
}

/// Validates `path`, then checks PostgreSQL and Kafka as the pipeline would use
/// them; with `test_topic`, produces one message there and waits for its ack.
pub async fn check_file(path: &Path, test_topic: Option<&str>) -> Result<Vec<CheckLine>, RunError> {
    let owned = path.to_owned();
    let config = tokio::task::spawn_blocking(move || validate_file(&owned))
        .await
        .map_err(|e| RunError::Failed(anyhow::anyhow!("validating: {e}")))??;
    let mut lines = vec![CheckLine {
        status: CheckStatus::Pass,
        check: "spec".into(),
        message: format!("valid; {} plugin stage(s) load", config.stages.len()),
    }];
    let source = &config.source;
    let client = match source.connection.connect_control().await {
        Ok(client) => client,
        Err(error) => {
            lines.push(CheckLine {
                status: CheckStatus::Fail,
                check: "postgres connection".into(),
                message: crate::redact::error_chain(&error),
            });
            return Ok(lines);
        }
    };
    let input = PrecheckInput {
        slot: &source.slot,
        publication: &source.publication,
        tables: &source.tables,
        ddl_capture: source.ddl_capture,
    };
    let findings = precheck(&client, &input)
        .await
        .context("running the source precheck")
        .map_err(RunError::Failed)?;
    lines.extend(findings.into_iter().map(CheckLine::from));
    let failover = failover_precheck(
        &client,
        &source.connection,
        &source.slot,
        source.slot_failover,
    )
    .await
    .context("checking what a failover needs")
    .map_err(RunError::Failed)?;
    lines.extend(failover.into_iter().map(CheckLine::from));
    let tables = resolve_tables(&client, &source.tables)
        .await
        .context("resolving the tables")
        .map_err(RunError::Failed)?;

    let brokers = &config.producer.brokers;
    // A check reports an unreachable broker; it does not wait hours for it.
    let mut admin = TopicAdmin::new(brokers, &config.producer.properties, None)
        .context("creating the Kafka admin client")
        .map_err(RunError::Failed)?
        .with_retry_window(Some(Duration::from_secs(10)));
    let mut topics: Vec<String> = tables
        .iter()
        .map(|(schema, table)| config.router.topic(schema, table))
        .collect();
    topics.sort();
    topics.dedup();
    topics.extend(config.transaction_topic.clone());
    topics.extend(config.ddl_topic.clone());
    topics.extend(config.heartbeat.as_ref().map(|(topic, _)| topic.clone()));
    // weir creates its state topic whatever create_topics says.
    let state_topic = config.keeps_state().then(|| config.state_topic.clone());
    topics.extend(state_topic.clone());
    let creatable = config.create_topics.is_some();
    let lookups = tokio::task::spawn_blocking(move || {
        topics
            .into_iter()
            .map(|topic| {
                let found = admin.partitions(&topic);
                (topic, found)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| RunError::Failed(anyhow::anyhow!("looking up topics: {e}")))?;
    for (topic, found) in lookups {
        let (status, message) = match found {
            Ok(partitions) => (
                CheckStatus::Pass,
                format!("exists, {partitions} partitions"),
            ),
            Err(TopicError::Missing(_)) if state_topic.as_ref() == Some(&topic) => (
                CheckStatus::Pass,
                "missing; weir creates it (the snapshot's progress: 1 partition, compacted)"
                    .to_owned(),
            ),
            Err(TopicError::Missing(_)) if creatable => (
                CheckStatus::Pass,
                "missing; will be created (create_topics)".to_owned(),
            ),
            Err(TopicError::Missing(_)) => (
                CheckStatus::Fail,
                "missing (create it, or set sink.kafka.create_topics)".to_owned(),
            ),
            Err(error) => (CheckStatus::Fail, crate::redact::error_chain(&error)),
        };
        lines.push(CheckLine {
            status,
            check: format!("kafka topic {topic}"),
            message,
        });
    }
    if let FormatConfig::Avro { registry, .. } = &config.format {
        lines.push(check_registry(registry.clone()).await);
    }
    if config.producer.transactional.is_some() {
        let active: Option<bool> = client
            .query_opt(
                "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                &[&source.slot],
            )
            .await
            .ok()
            .flatten()
            .map(|row| row.get(0));
        lines.push(check_transactions(&config, active == Some(true)).await);
    }
    if let Some(topic) = test_topic {
        lines.push(test_produce(&config, topic).await);
    }
    Ok(lines)
}

/// Lists the Schema Registry's subjects: the URL, the network and the
/// credentials work before the first Avro message needs them.
async fn check_registry(url: String) -> CheckLine {
    let check = "schema registry".to_owned();
    let listed = tokio::task::spawn_blocking(move || SchemaRegistry::new(&url)?.check()).await;
    match listed {
        Ok(Ok(subjects)) => CheckLine {
            status: CheckStatus::Pass,
            check,
            message: format!("reachable, {subjects} subject(s)"),
        },
        Ok(Err(error)) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: crate::redact::credentials(&error.to_string()).into_owned(),
        },
        Err(error) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: error.to_string(),
        },
    }
}

/// Exactly-once: the brokers serve transactions and the principal may use the
/// pipeline's transactional id, proven by initialising it as the pipeline does.
/// Not while the pipeline runs (its slot active): that would fence it.
async fn check_transactions(config: &PipelineConfig, running: bool) -> CheckLine {
    let options = config.producer.clone();
    let id = options
        .transactional
        .as_ref()
        .map(|t| t.id.clone())
        .unwrap_or_default();
    let check = format!("kafka transactions ({id})");
    if running {
        return CheckLine {
            status: CheckStatus::Warn,
            check,
            message: "not tried: the pipeline runs (its slot is active), and initialising its transactional id would fence it".into(),
        };
    }
    let result = tokio::task::spawn_blocking(move || {
        let tracker = std::sync::Arc::new(CheckpointTracker::new(crate::Lsn(0)));
        KafkaProducer::new(&options, tracker).map(drop)
    })
    .await;
    match result {
        Ok(Ok(())) => CheckLine {
            status: CheckStatus::Pass,
            check,
            message: "the brokers serve transactions and the id may be used".into(),
        },
        Ok(Err(error)) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: transaction_refusal(&error),
        },
        Err(error) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: error.to_string(),
        },
    }
}

/// What a failed transaction check means, and what to do.
fn transaction_refusal(error: &crate::produce::ProduceError) -> String {
    use rdkafka::error::RDKafkaErrorCode as Code;
    let code = match error {
        crate::produce::ProduceError::Transaction { error, .. } => error.rdkafka_error_code(),
        _ => None,
    };
    let fix = match code {
        Some(Code::TransactionalIdAuthorizationFailed) => {
            "grant the principal WRITE and DESCRIBE on the TransactionalId (kafka-acls --transactional-id)"
        }
        Some(Code::ClusterAuthorizationFailed) => {
            "grant the principal IDEMPOTENT_WRITE on the cluster"
        }
        Some(Code::CoordinatorNotAvailable | Code::NotCoordinator | Code::OperationTimedOut)
        | None => {
            "the brokers must be able to create __transaction_state: transaction.state.log.replication.factor and min.isr at most the live brokers"
        }
        Some(_) => "see the broker's log",
    };
    format!("{error} (fix: {fix})")
}

/// Produces one small message to `topic` and waits for Kafka's acknowledgement:
/// proves the credentials may write, which metadata requests do not.
async fn test_produce(config: &PipelineConfig, topic: &str) -> CheckLine {
    let mut options = config.producer.clone();
    // Not in a transaction (the transactions check is apart): a transactional
    // producer would fence the pipeline's.
    options.transactional = None;
    let topic = topic.to_owned();
    let check = format!("kafka produce to {topic}");
    let result = tokio::task::spawn_blocking(move || {
        let tracker = std::sync::Arc::new(CheckpointTracker::new(crate::Lsn(0)));
        let producer = KafkaProducer::new(&options, std::sync::Arc::clone(&tracker))?;
        producer.send_one(
            &topic,
            None,
            b"weir-check",
            b"{\"weir\":\"check\"}",
            Some(crate::Lsn(1)),
        )?;
        producer.flush(Duration::from_secs(30))?;
        match tracker.error() {
            Some(error) => Err(anyhow::Error::new(error)),
            None => Ok(()),
        }
    })
    .await;
    match result {
        Ok(Ok(())) => CheckLine {
            status: CheckStatus::Pass,
            check,
            message: "a test message was acknowledged".into(),
        },
        Ok(Err(error)) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: format!("{error:#}"),
        },
        Err(error) => CheckLine {
            status: CheckStatus::Fail,
            check,
            message: error.to_string(),
        },
    }
}
