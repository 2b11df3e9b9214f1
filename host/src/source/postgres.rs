//! The PostgreSQL source stage: a replication session that emits ChangeBatches.
//!
//! [`PostgresSource::run`] keeps one session alive: it makes sure the publication and
//! the slot exist, streams the slot, decodes and batches, and sends
//! [`SourceEvent`]s down a bounded channel. When that channel is full it stops reading
//! WAL: backpressure reaches PostgreSQL instead of growing memory.
//!
//! The position it confirms to PostgreSQL comes only from the `flushed` watch channel,
//! which the checkpoint tracker moves when Kafka acknowledged every message of a
//! transaction and of all earlier ones. The server keeps everything after that
//! position, so a restart, a crash or a standby taking over resumes there and loses
//! nothing; transactions emitted but not yet confirmed come again (at-least-once).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span, warn};

use super::batcher::ChangeBatcher;
use super::catalog::{
    CatalogError, PublicationState, SlotState, ensure_slot, server_major_version, slot_info,
};
use super::pgoutput::PgOutputDecoder;
use super::publication::sync_publication;
use super::replication::{PgOutputOptions, ReplicationConnection, SlotSnapshot};
use super::session::Session;
use super::snapshot::incremental::IncrementalSnapshot;
use super::snapshot::incremental_record::IncrementalRecord;
pub use super::snapshot::incremental_record::IncrementalSaver;
use super::snapshot::progress::{SnapshotMode, SnapshotProgress, lock};
use super::unchanged_toast::UnchangedToastReader;
use crate::contract::TableSelector;
use crate::lsn::Lsn;

// The source's types, spread over this module's siblings, under one name.
pub use super::event::{LoadError, SourceError, SourceEvent};
pub use super::options::{
    DEFAULT_HEARTBEAT, DEFAULT_LINGER, DEFAULT_STATUS_INTERVAL, HEARTBEAT_PREFIX,
    PostgresSourceConfig, RetryPolicy,
};
pub use crate::metrics::SourceStats;

/// The PostgreSQL source stage.
pub struct PostgresSource {
    pub(super) config: PostgresSourceConfig,
    pub(super) stats: Arc<SourceStats>,
    /// The snapshot's progress as this source knows it: loaded at each session
    /// start, planned and read here. The pipeline gets its own copy through the
    /// snapshot events; nothing is shared.
    pub(super) progress: Mutex<SnapshotProgress>,
    pub(super) progress_loader: Option<ProgressLoader>,
    pub(super) progress_saver: Option<ProgressSaver>,
    pub(super) incremental_saver: Option<IncrementalSaver>,
    /// The timeline of the last session's server (0 before the first), to
    /// notice a promotion.
    pub(super) timeline: AtomicU32,
}

impl std::fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSource")
            .field("config", &self.config)
            .field("progress", &self.progress)
            .field("reloads_progress", &self.progress_loader.is_some())
            .finish_non_exhaustive()
    }
}

/// Reads the snapshots' progress as recorded (by the pipeline, in Kafka). Blocking.
pub type ProgressLoader =
    Arc<dyn Fn() -> Result<super::snapshot::RecordedProgress, LoadError> + Send + Sync>;

/// Records a snapshot's progress and returns once it is stored. Blocking.
pub type ProgressSaver =
    Arc<dyn Fn(&super::snapshot::SnapshotProgress) -> Result<(), LoadError> + Send + Sync>;

impl PostgresSource {
    /// A source for `config`.
    pub fn new(config: PostgresSourceConfig) -> Self {
        PostgresSource {
            config,
            stats: Arc::new(SourceStats::default()),
            progress: Mutex::default(),
            progress_loader: None,
            progress_saver: None,
            incremental_saver: None,
            timeline: AtomicU32::new(0),
        }
    }

    /// How to record, before the slot is created, that its snapshot is due: a weir
    /// killed between creating the slot and recording the snapshot's first chunk
    /// then finds the snapshot unfinished on its next start, rather than an
    /// existing slot with nothing recorded (which takes no snapshot).
    pub fn with_progress_saver(mut self, saver: ProgressSaver) -> Self {
        self.progress_saver = Some(saver);
        self
    }

    /// How to record the progress of snapshots taken while streaming, so a
    /// restart finishes them (see `snapshot::incremental_record`).
    pub fn with_incremental_saver(mut self, saver: IncrementalSaver) -> Self {
        self.incremental_saver = Some(saver);
        self
    }

    /// How to read the recorded progress, at the start of every session once this
    /// weir owns the slot: another weir may have started or advanced the snapshot
    /// while this one waited, and the record says what is left.
    pub fn with_progress_loader(mut self, loader: ProgressLoader) -> Self {
        self.progress_loader = Some(loader);
        self
    }

    /// Live figures, shared with the running source.
    pub fn stats(&self) -> Arc<SourceStats> {
        Arc::clone(&self.stats)
    }

    /// Before the slot is created, records an unfinished snapshot of it (see
    /// [`PostgresSource::with_progress_saver`]). A slot that exists while its
    /// recorded snapshot never finished a chunk is dropped first: nothing of it
    /// reached Kafka (the snapshot precedes streaming), and a new slot exports a
    /// snapshot that meets its start exactly, where a later one would not.
    async fn prepare_snapshot_slot(
        &self,
        control: &tokio_postgres::Client,
        saver: ProgressSaver,
    ) -> Result<(), SourceError> {
        let slot = &self.config.slot;
        let recorded = lock(&self.progress).clone();
        if slot_info(control, slot).await?.is_some() {
            let started = recorded
                .tables
                .values()
                .any(|table| table.done.contains(&true));
            if !recorded.is_unfinished(slot) || started {
                return Ok(());
            }
            info!(slot = %slot, "The slot's snapshot never finished a chunk: creating the slot again, for a snapshot that meets its start.");
            drop_idle_slot(control, slot).await?;
        }
        if recorded.is_unfinished(slot) {
            return Ok(());
        }
        let mut due = super::snapshot::SnapshotProgress::default();
        due.restart(slot);
        let saved = due.clone();
        tokio::task::spawn_blocking(move || saver(&saved))
            .await
            .map_err(|e| SourceError::Progress(Box::new(e)))?
            .map_err(SourceError::Progress)?;
        *lock(&self.progress) = due;
        Ok(())
    }

    /// Runs until `shutdown` is cancelled (then it emits what is pending, reports the
    /// last flushed position and returns `Ok`), or until a failure that retrying
    /// within the policy's window does not cure.
    ///
    /// # Errors
    ///
    /// [`SourceError`]: non-retryable failures at once, retryable ones as
    /// [`SourceError::RetriesExhausted`] after the window.
    pub async fn run(
        &self,
        out: mpsc::Sender<SourceEvent>,
        mut flushed: watch::Receiver<Lsn>,
        shutdown: CancellationToken,
    ) -> Result<(), SourceError> {
        let mut failing_since: Option<Instant> = None;
        let mut backoff = self.config.retry.initial_backoff;
        loop {
            let sessions_before = self.stats.sessions.load(Ordering::Relaxed);
            let span = info_span!("source", stage = "source", slot = %self.config.slot);
            let result = self
                .session(&out, &mut flushed, &shutdown)
                .instrument(span)
                .await;
            self.stats.streaming.store(false, Ordering::Relaxed);
            let error = match result {
                Ok(()) => return Ok(()),
                Err(error) if !error.is_retryable() => return Err(error),
                Err(error) => error,
            };
            // A session that got as far as streaming starts the retry budget afresh.
            if self.stats.sessions.load(Ordering::Relaxed) > sessions_before {
                failing_since = None;
                backoff = self.config.retry.initial_backoff;
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            if self
                .config
                .retry
                .window
                .is_some_and(|window| since.elapsed() >= window)
            {
                return Err(SourceError::RetriesExhausted {
                    after: since.elapsed(),
                    last: Box::new(error),
                });
            }
            let wait = jitter(backoff);
            warn!(error = %crate::redact::error_chain(&error), retry_in_ms = wait.as_millis() as u64, "PostgreSQL source failed; retrying.");
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(wait) => {}
            }
            backoff = (backoff * 2).min(self.config.retry.max_backoff);
        }
    }

    async fn session(
        &self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &mut watch::Receiver<Lsn>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let config = &self.config;
        let control = config
            .connection
            .connect_control()
            .await
            .map_err(CatalogError::from)?;
        // `initial_only` reads no slot, so it owns none.
        if config.snapshot.mode != SnapshotMode::InitialOnly
            && !super::ownership::try_own(&control, &config.slot).await?
        {
            return Err(SourceError::SlotOwned {
                slot: config.slot.clone(),
            });
        }
        let mut incremental_recorded = None;
        if let Some(loader) = self.progress_loader.clone() {
            let recorded = tokio::task::spawn_blocking(move || loader())
                .await
                .map_err(|e| SourceError::Progress(Box::new(e)))?
                .map_err(SourceError::Progress)?;
            if config.snapshot.mode != SnapshotMode::Never {
                *lock(&self.progress) = recorded.snapshot;
            }
            incremental_recorded = recorded.incremental;
        }
        if config.snapshot.mode == SnapshotMode::InitialOnly {
            return self.snapshot_only(&control, out, shutdown).await;
        }
        let on_standby = super::standby::check(&control, config).await?;
        // Tables added to weir's publication on a restart are announced for an
        // incremental snapshot (harmless before a new slot, which never sees it).
        let announce_to =
            (config.snapshot.mode != SnapshotMode::Never).then_some(config.slot.as_str());
        // A standby cannot change the publication: `standby::check` made sure it
        // exists.
        let owned = !on_standby
            && match sync_publication(&control, &config.publication, &config.tables, announce_to)
                .await?
            {
                PublicationState::Existing { missing } => {
                    if !missing.is_empty() {
                        warn!(publication = %config.publication, missing = ?missing, "The publication does not publish every selected table, and weir did not create it, so it leaves it as it is: they are not streamed.");
                    }
                    false
                }
                PublicationState::Created | PublicationState::Synced { .. } => true,
            };
        if config.ddl_capture {
            if server_major_version(&control).await? < 14 {
                return Err(CatalogError::DdlCapture(
                    "source.postgres.ddl is capture, which travels as logical messages that pgoutput sends from PostgreSQL 14 on; this server is older: set ddl: off".to_owned(),
                )
                .into());
            }
            super::ddl::ensure_ddl_capture(&control).await?;
        }
        let mut replication = ReplicationConnection::connect(&config.connection).await?;
        self.check_timeline(&mut replication).await?;
        self.check_slot_survived(&control).await?;
        let exports = matches!(
            config.snapshot.mode,
            SnapshotMode::Initial | SnapshotMode::WhenNeeded
        );
        if exports && let Some(saver) = self.progress_saver.clone() {
            self.prepare_snapshot_slot(&control, saver).await?;
        }
        let failover = if on_standby {
            super::standby::failover(config.slot_failover)?
        } else {
            config
                .slot_failover
                .resolve(replication.server_major_version().unwrap_or(10))
                .map_err(SourceError::Config)?
        };
        let slot = ensure_slot(
            &control,
            &mut replication,
            &config.slot,
            if exports {
                SlotSnapshot::Export
            } else {
                SlotSnapshot::Nothing
            },
            failover,
        )
        .await?;
        let start = match &slot {
            SlotState::Created(created) => created.consistent_point,
            SlotState::Existing(info) => info.confirmed_flush_lsn.unwrap_or_default(),
        };
        if let Some(source) = self.snapshot_to_take(&slot) {
            // The replication connection stays idle meanwhile: its next command
            // would end the snapshot it exported.
            let snapshot = self.initial_snapshot(&control, source, start, out);
            tokio::select! {
                read = snapshot => read?,
                _ = shutdown.cancelled() => {
                    info!("Stopped during the snapshot; a restart resumes it.");
                    return Ok(());
                }
            }
        }
        let by_schema = replication.server_major_version().unwrap_or(10) >= 15;
        let mut options = PgOutputOptions::for_server(
            replication.server_major_version().unwrap_or(10),
            vec![config.publication.clone()],
        );
        options.streaming &= config.stream_in_progress;
        if config.signals && !options.messages {
            warn!(
                server_major_version = replication.server_major_version(),
                "source.postgres.signals is on, but snapshot requests travel as logical messages, which pgoutput sends from PostgreSQL 14 on: this server will never deliver one."
            );
        }
        let stream = replication
            .start_logical_replication(&config.slot, start, &options)
            .await?;
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        self.stats.streaming.store(true, Ordering::Relaxed);
        info!(start = %start, "Streaming from the replication slot.");
        send(out, SourceEvent::SessionStarted { start }).await?;
        let session = Session {
            config,
            stats: &self.stats,
            control,
            stream,
            decoder: PgOutputDecoder::new(),
            batcher: {
                let mut batcher = ChangeBatcher::new(config.batch);
                batcher.skip_operations(config.skipped_operations.clone());
                if config.ddl_capture {
                    batcher.capture_ddl(config.tables.clone());
                }
                batcher
            },
            looked_up: HashMap::new(),
            emitted_end: start,
            reported: Lsn::ZERO,
            last_status: Instant::now(),
            incremental: IncrementalSnapshot::new(
                &config.slot,
                config.tables.clone(),
                config.batch.max_rows,
            ),
            incremental_record: IncrementalRecord::new(
                incremental_recorded,
                &config.slot,
                self.incremental_saver.clone(),
            ),
            signal_ignored: false,
            discovery: owned
                .then_some(config.table_discovery)
                .flatten()
                .filter(|_| {
                    config.tables.iter().any(|t| match t {
                        TableSelector::Pattern { .. } => true,
                        TableSelector::Schema(_) => !by_schema,
                        TableSelector::Table { .. } => false,
                    })
                }),
            discover_now: false,
            slot_health: super::slot_health::SlotHealth::default(),
            // A standby takes no writes: the slot advances by keepalives.
            heartbeats: config.heartbeat.is_some() && !on_standby,
            unchanged_toast: UnchangedToastReader::default(),
        };
        session.run(out, flushed, shutdown).await
    }
}

pub(super) async fn send(
    out: &mpsc::Sender<SourceEvent>,
    event: SourceEvent,
) -> Result<(), SourceError> {
    out.send(event)
        .await
        .map_err(|_| SourceError::DownstreamClosed)
}

/// `base` ± 20%, so many pipelines do not retry in lockstep.
pub(super) fn jitter(base: Duration) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let factor = 0.8 + f64::from(nanos % 1000) / 1000.0 * 0.4;
    base.mul_f64(factor)
}

/// Drops `slot`, waiting (up to 30 s) for the walsender of a reader that died to
/// let it go.
pub(super) async fn drop_idle_slot(
    control: &tokio_postgres::Client,
    slot: &str,
) -> Result<(), SourceError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match super::catalog::drop_slot(control, slot).await {
            Ok(_) => return Ok(()),
            Err(error) if std::time::Instant::now() < deadline => {
                tracing::debug!(%error, slot, "the slot is still held; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}
