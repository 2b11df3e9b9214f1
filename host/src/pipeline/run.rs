//! Running a pipeline: the source on the async runtime, the stages on one
//! blocking worker thread (`worker.rs`), the checkpoint tracker between them.
//!
//! ```text
//! PostgresSource ──events──▶ worker: plugins → encode → route → throttle → producer ──▶ Kafka
//!       ▲                                                                      │
//!       └──────── flush LSN (watch) ◀────── CheckpointTracker ◀───── acks ─────┘
//! ```
//!
//! The bounded event channel and librdkafka's bounded queue keep memory bounded:
//! a worker blocked on a full producer queue stops taking events, and the source
//! stops reading WAL.
//!
//! Shutdown: the source stops first (emitting what it holds), the worker drains the
//! channel and waits for every acknowledgement, and the final flush position is
//! confirmed on the then idle slot, so a clean stop neither loses nor repeats data.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, warn};

use super::dead_letter::DeadLetterProducer;
use super::exactly_once::{ExactlyOnce, Position};
use super::side_topics::{DdlTopic, Heartbeat, TransactionTopic};
use super::snapshot::SnapshotRecorder;
use super::stages::{DeadLetters, Encode, Plugins, Route, Throttling};
use super::state::StateTopic;
use super::worker::Worker;
use crate::Lsn;
use crate::checkpoint::CheckpointTracker;
use crate::config::PipelineConfig;
use crate::metrics::PipelineMetrics;
use crate::metrics::server::{self, Endpoint};
use crate::plugin::{PluginChain, PluginEngine, PluginError};
use crate::produce::admin::TopicAdmin;
use crate::produce::{KafkaProducer, Latency};
use crate::source::snapshot::RecordedProgress;
use crate::source::{PostgresSource, SourceError};

/// Events buffered between the source and the worker: with batches of up to 8k
/// rows this bounds the rows held in memory to a few tens of thousands.
const EVENT_BUFFER: usize = 8;
/// How long reading or writing a state record may take.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// Counters of a run.
#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Replication sessions that started streaming.
    pub sessions: AtomicU64,
    /// Rows received from the source.
    pub rows_in: AtomicU64,
    /// Rows that left the plugin chain.
    pub rows_out: AtomicU64,
    /// Messages handed to the producer.
    pub messages: AtomicU64,
    /// Rows sent to the dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// The Prometheus metrics.
    pub metrics: Arc<PipelineMetrics>,
    /// Set once the source streams.
    pub ready: Arc<AtomicBool>,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunSummary {
    /// The position confirmed to PostgreSQL at the end.
    pub flushed: Lsn,
}

/// Why a pipeline stopped with an error. The boundary between the pipeline and
/// the command: each kind has its exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A plugin stage did not load or refused its config: nothing was started.
    #[error("loading plugins: {0}")]
    Plugins(#[source] PluginError),
    /// A part could not be started (the plugin engine, a Kafka client, the
    /// metrics endpoint, the state topic).
    #[error("{0:#}")]
    Start(anyhow::Error),
    /// The source failed for good (an unreachable server past the retry window,
    /// a slot that is gone, …).
    #[error("the PostgreSQL source failed: {0}")]
    Source(#[source] Box<SourceError>),
    /// A stage failed while running: a plugin under `on_error: fail`, a delivery
    /// Kafka refused, …; nothing after the last acknowledged transaction was
    /// confirmed.
    #[error("{0:#}")]
    Stage(anyhow::Error),
}

impl PipelineError {
    /// The exit code: 2 when the spec names something that does not work (as
    /// for a bad spec, nothing was started), 1 when the work failed.
    pub fn exit_code(&self) -> u8 {
        match self {
            PipelineError::Plugins(_) => 2,
            PipelineError::Start(_) | PipelineError::Source(_) | PipelineError::Stage(_) => 1,
        }
    }
}

/// Runs `config` until `shutdown` is cancelled or something fails for good.
pub async fn run(
    config: PipelineConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> Result<RunSummary, PipelineError> {
    let span = info_span!("pipeline", pipeline = %config.name);
    run_pipeline(config, stats, shutdown).instrument(span).await
}

async fn run_pipeline(
    config: PipelineConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> Result<RunSummary, PipelineError> {
    let engine = PluginEngine::with_default_cache()
        .context("starting the plugin engine")
        .map_err(PipelineError::Start)?;
    let stages = config.stages.clone();
    let chain = tokio::task::spawn_blocking(move || PluginChain::new(&engine, stages))
        .await
        .context("loading plugins")
        .map_err(PipelineError::Start)?
        .map_err(PipelineError::Plugins)?;
    let parts = start_parts(&config, &stats, &shutdown, chain)
        .await
        .map_err(PipelineError::Start)?;
    run_parts(config, stats, shutdown, parts).await
}
/// The parts of a pipeline, started and not yet running.
struct Parts {
    worker: Worker,
    source: PostgresSource,
    tracker: Arc<CheckpointTracker>,
}

/// Creates the Kafka clients, the encoder, the source and the worker's stages;
/// serves the metrics. Nothing reads WAL yet.
async fn start_parts(
    config: &PipelineConfig,
    stats: &Arc<PipelineStats>,
    shutdown: &CancellationToken,
    chain: PluginChain,
) -> anyhow::Result<Parts> {
    let tracker = Arc::new(CheckpointTracker::new(Lsn::ZERO));
    let producer = KafkaProducer::with_latency(
        &config.producer,
        Arc::clone(&tracker),
        Some(Latency {
            produce: stats.metrics.produce_latency.clone(),
            commit_to_ack: stats.metrics.commit_to_ack.clone(),
        }),
    )
    .context("creating the Kafka producer")?;
    let topics = TopicAdmin::new(
        &config.producer.brokers,
        &config.producer.properties,
        config.create_topics,
    )
    .context("creating the Kafka admin client")?
    .with_retry_window(
        (!config.producer.delivery_timeout.is_zero()).then_some(config.producer.delivery_timeout),
    )
    .with_stop(shutdown.clone(), config.shutdown_timeout);
    let dead_letters = match (
        Plugins::needs_dead_letters(&chain),
        config.transaction_interval,
    ) {
        (false, _) => None,
        (true, Some(_)) => Some(DeadLetters::InTransaction {
            topic: config.dead_letter_topic.clone(),
        }),
        (true, None) => Some(DeadLetters::Own(
            DeadLetterProducer::new(
                &config.producer.brokers,
                config.dead_letter_topic.clone(),
                &config.producer.properties,
            )
            .context("creating the dead-letter producer")?,
        )),
    };
    let encoder = config
        .format
        .encoder(&config.router)
        .context("creating the encoder")?;
    // The snapshot's progress lives in the state topic: the source loads it, the
    // worker's recorder writes it.
    let state_topic = StateTopic::new(config.state_topic.clone(), &config.source.slot);
    let state = config.keeps_state().then(|| state_topic.clone());
    let topics = if state.is_some() || config.transaction_interval.is_some() {
        prepare_state_topic(state_topic.topic().to_owned(), topics).await?
    } else {
        topics
    };
    // Exactly-once resumes from the position the last committed Kafka
    // transaction recorded; the producer's start fenced any predecessor and
    // aborted what it left open, so that record is final.
    let exactly_once = match config.transaction_interval {
        Some(interval) => {
            let start = load_position(config, state_topic.clone()).await?;
            info!(end = %Lsn(start.end_lsn), partial = start.partial.len(), "exactly-once: resuming after the last committed Kafka transaction");
            tracker.gate(Lsn(start.end_lsn));
            let transaction_timeout = config
                .producer
                .transactional
                .as_ref()
                .map_or(Duration::from_secs(60), |t| t.timeout);
            Some(ExactlyOnce::new(
                interval,
                transaction_timeout,
                config.shutdown_timeout,
                state_topic,
                start,
                stats.metrics.kafka_commit.clone(),
            ))
        }
        None => None,
    };
    let mut source = PostgresSource::new(config.source.clone());
    if let Some(state) = state.clone() {
        let access = Arc::new((
            state,
            config.producer.brokers.clone(),
            config.producer.properties.clone(),
        ));
        let (loader, saver, incremental) = (Arc::clone(&access), Arc::clone(&access), access);
        source = source
            .with_progress_loader(Arc::new(move || {
                let (state, brokers, properties) = &*loader;
                state
                    .load_records(brokers, properties, STATE_TIMEOUT)
                    .map(|records| RecordedProgress {
                        snapshot: records.snapshot,
                        incremental: records.incremental,
                    })
                    .map_err(|error| error.into())
            }))
            .with_progress_saver(Arc::new(move |progress| {
                let (state, brokers, properties) = &*saver;
                state
                    .save_now(brokers, properties, progress, STATE_TIMEOUT)
                    .map_err(|error| error.into())
            }))
            .with_incremental_saver(Arc::new(move |progress| {
                let (state, brokers, properties) = &*incremental;
                state
                    .save_incremental_now(brokers, properties, progress, STATE_TIMEOUT)
                    .map_err(|error| error.into())
            }));
    }
    stats.metrics.attach(source.stats(), Arc::clone(&tracker));
    if let Some(address) = config.metrics_listen {
        let endpoint = Endpoint {
            metrics: Arc::clone(&stats.metrics),
            ready: Arc::clone(&stats.ready),
        };
        server::serve(address, endpoint, shutdown.child_token())
            .await
            .with_context(|| format!("serving metrics on {address}"))?;
    }
    let handle = Handle::current();
    let worker = Worker {
        plugins: Plugins::new(chain, dead_letters, handle.clone(), Arc::clone(stats)),
        encode: Encode::new(encoder, Arc::clone(&stats.metrics)),
        route: Route::new(config.router.clone(), topics),
        throttling: Throttling::new(config.throttle, config.snapshot_throttle),
        producer,
        tracker: Arc::clone(&tracker),
        stats: Arc::clone(stats),
        handle,
        transactions: config.transaction_topic.clone().map(TransactionTopic::new),
        heartbeat: config
            .heartbeat
            .clone()
            .map(|(topic, interval)| Heartbeat::new(topic, interval)),
        ddl: match &config.ddl_topic {
            Some(topic) => Some(DdlTopic::new(
                topic.clone(),
                config
                    .format
                    .ddl_encoder(&config.name, &config.database)
                    .context("creating the DDL encoder")?,
            )),
            None => None,
        },
        metadata: config
            .format
            .metadata_encoder(&config.name)
            .context("creating the metadata encoder")?,
        snapshot: state.map(|state| SnapshotRecorder::new(state, Arc::clone(&stats.metrics))),
        exactly_once,
        shutdown_timeout: config.shutdown_timeout,
        sessions: 0,
    };
    Ok(Parts {
        worker,
        source,
        tracker,
    })
}

/// Runs the source and the worker until both stop; then confirms the final
/// position on the idle slot.
async fn run_parts(
    config: PipelineConfig,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
    parts: Parts,
) -> Result<RunSummary, PipelineError> {
    let Parts {
        worker,
        source,
        tracker,
    } = parts;
    let (events_tx, events_rx) = mpsc::channel(EVENT_BUFFER);
    let source_stop = shutdown.child_token();
    let flushed = tracker.subscribe();
    let source_task = tokio::spawn({
        let source_stop = source_stop.clone();
        async move { source.run(events_tx, flushed, source_stop).await }
    });
    let worker_thread = std::thread::Builder::new()
        .name("weir-pipeline".into())
        .spawn(move || worker.run(events_rx))
        .context("starting the pipeline thread")
        .map_err(PipelineError::Start)?;

    // The worker ends when the source's channel closes or on a failure; a failure
    // stops the source, and a stopping source closes the channel.
    let worker_result = tokio::task::spawn_blocking(move || {
        worker_thread
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the pipeline thread panicked")))
    });
    let worker_result = {
        let source_stop = source_stop.clone();
        async move {
            let result = worker_result
                .await
                .unwrap_or_else(|e| Err(anyhow::anyhow!("joining the pipeline thread: {e}")));
            source_stop.cancel();
            result
        }
    };
    let (worker_result, source_result) = tokio::join!(worker_result, source_task);
    stats.metrics.down();
    stats.ready.store(false, Ordering::Relaxed);
    let source_result = source_result
        .context("the source task panicked")
        .map_err(PipelineError::Stage)?;
    worker_result.map_err(PipelineError::Stage)?;
    match source_result {
        Ok(()) | Err(SourceError::DownstreamClosed) => {}
        Err(error) => return Err(PipelineError::Source(Box::new(error))),
    }
    let flushed = tracker.flushed();
    confirm_final_position(&config, flushed).await;
    info!(%flushed, "pipeline stopped");
    Ok(RunSummary { flushed })
}

/// Makes sure the state topic exists (blocking Kafka calls, off the runtime).
async fn prepare_state_topic(topic: String, mut topics: TopicAdmin) -> anyhow::Result<TopicAdmin> {
    tokio::task::spawn_blocking(move || {
        topics
            .ensure_state_topic(&topic)
            .context("preparing the state topic")?;
        anyhow::Ok(topics)
    })
    .await
    .context("preparing the state topic")?
}

/// The position the last committed Kafka transaction recorded (blocking Kafka
/// calls, off the runtime).
async fn load_position(config: &PipelineConfig, state: StateTopic) -> anyhow::Result<Position> {
    let brokers = config.producer.brokers.clone();
    let properties = config.producer.properties.clone();
    tokio::task::spawn_blocking(move || {
        let records = state.load_records(&brokers, &properties, Duration::from_secs(60))?;
        anyhow::Ok(records.position.unwrap_or_default())
    })
    .await
    .context("reading the exactly-once position")?
    .context("reading the exactly-once position from the state topic")
}

/// After the source stopped, the last acknowledgements may have moved the flush LSN
/// past what the source reported: confirm it on the idle slot, so a restart does
/// not send those transactions again.
async fn confirm_final_position(config: &PipelineConfig, flushed: Lsn) {
    if flushed == Lsn::ZERO {
        return;
    }
    let result = async {
        let client = config.source.connection.connect_control().await?;
        client
            .execute(
                "SELECT pg_replication_slot_advance($1, $2::text::pg_lsn) \
                 FROM pg_replication_slots \
                 WHERE slot_name = $1 AND NOT active AND confirmed_flush_lsn < $2::text::pg_lsn",
                &[&config.source.slot, &flushed.to_string()],
            )
            .await?;
        anyhow::Ok(())
    }
    .await;
    if let Err(error) = result {
        warn!(%error, %flushed, "could not confirm the final position; the transactions after the slot's position will be sent again");
    }
}
