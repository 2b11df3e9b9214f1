//! One replication session: streams the slot, decodes and batches, looks up keys,
//! sends heartbeats and standby status, and serves snapshot requests (watermarks).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::batcher::{BatcherOutput, ChangeBatcher, CommittedTransaction};
use super::catalog::table_catalog;
use super::options::{HEARTBEAT_PREFIX, STATUS_THROTTLE};
use super::pgoutput::{PgOutputDecoder, PgOutputMessage};
use super::postgres::{PostgresSourceConfig, SourceError, SourceEvent, SourceStats, send};
use super::publication::{PublicationState, TABLES_ADDED_PREFIX, sync_publication};
use super::replication::{
    ReplicationError, ReplicationEvent, ReplicationStream, StandbyStatus, now_unix_micros,
};
use super::slot_health::{SLOT_WATCH_INTERVAL, SlotHealth};
use super::snapshot::incremental::{
    IncrementalSnapshot, Joined, SIGNAL_PREFIX, WATERMARK_PREFIX, Watermark,
};
use super::snapshot::incremental_record::IncrementalRecord;
use super::unchanged_toast::UnchangedToastReader;
use crate::contract::SnapshotMarks;
use crate::lsn::Lsn;

/// One replication session's state.
pub(super) struct Session<'a> {
    pub(super) config: &'a PostgresSourceConfig,
    pub(super) stats: &'a SourceStats,
    pub(super) control: Client,
    pub(super) stream: ReplicationStream,
    pub(super) decoder: PgOutputDecoder,
    pub(super) batcher: ChangeBatcher,
    /// Relations whose catalog facts were looked up in this session, with
    /// their column names then.
    pub(super) looked_up: HashMap<u32, Vec<String>>,
    /// End of the last transaction (or idle stretch) emitted downstream.
    pub(super) emitted_end: Lsn,
    /// The flush position last reported to the server.
    pub(super) reported: Lsn,
    pub(super) last_status: Instant,
    /// Tables asked to be snapshotted while streaming.
    pub(super) incremental: IncrementalSnapshot,
    /// Their progress as acknowledged, recorded so a restart finishes them.
    pub(super) incremental_record: IncrementalRecord,
    /// A refused snapshot request was reported (once per session).
    pub(super) signal_ignored: bool,
    /// How often weir's publication is brought in step with tables created
    /// since (patterns); `None`: not this session's job.
    pub(super) discovery: Option<Duration>,
    /// A captured CREATE/ALTER TABLE asks for that now.
    pub(super) discover_now: bool,
    /// What the slot's WAL looked like last.
    pub(super) slot_health: SlotHealth,
    /// Write heartbeat messages (not on a standby).
    pub(super) heartbeats: bool,
    /// Reads back TOASTed values updates left unchanged (`fetch_unchanged_toast`).
    pub(super) unchanged_toast: UnchangedToastReader,
}

impl Session<'_> {
    pub(super) async fn run(
        mut self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &mut watch::Receiver<Lsn>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let mut linger = tokio::time::interval(self.config.linger);
        linger.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut status = tokio::time::interval(STATUS_THROTTLE.min(self.config.status_interval));
        status.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut heartbeat =
            tokio::time::interval(self.config.heartbeat.unwrap_or(Duration::from_secs(3600)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let mut discovery =
            tokio::time::interval(self.discovery.unwrap_or(Duration::from_secs(3600)));
        discovery.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        discovery.tick().await;
        let mut slot_watch = tokio::time::interval(SLOT_WATCH_INTERVAL);
        slot_watch.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let unfinished = self.incremental_record.unfinished().to_vec();
        self.incremental.resume(&unfinished);
        loop {
            // A table waiting for its earlier writers is looked at again then.
            let recheck = self.incremental.next_check();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return self.finish(out, flushed).await,
                _ = std::future::ready(()), if self.incremental.wants_chunk() => {
                    if let Some(table) = self.incremental.read_chunk(&self.control).await? {
                        self.incremental_record.ended(self.emitted_end, &table);
                    }
                }
                _ = std::future::ready(()), if self.discover_now => self.discover().await?,
                _ = tokio::time::sleep_until(recheck.unwrap_or_else(Instant::now).into()), if recheck.is_some() => {}
                event = self.stream.recv() => {
                    let event = event?;
                    let reply = matches!(&event, ReplicationEvent::Keepalive(k) if k.reply_requested);
                    self.on_event(event, out).await?;
                    // The stream wins every race above the timers while WAL flows:
                    // report from here too, so the slot keeps pace with Kafka and a
                    // restart resends little. A requested reply goes out at once.
                    if reply || self.last_status.elapsed() >= STATUS_THROTTLE {
                        let current = *flushed.borrow();
                        self.report(current, reply).await?;
                    }
                }
                _ = linger.tick() => {
                    if self.batcher.pending_rows() > 0 {
                        self.batcher.flush()?;
                        self.emit(out).await?;
                    }
                }
                _ = status.tick() => {
                    let current = *flushed.borrow();
                    self.report(current, false).await?;
                }
                _ = heartbeat.tick(), if self.heartbeats => self.heartbeat().await,
                _ = discovery.tick(), if self.discovery.is_some() => self.discover().await?,
                _ = slot_watch.tick() => {
                    if let Err(error) = self
                        .slot_health
                        .observe(&self.control, &self.config.slot, self.stats)
                        .await
                    {
                        tracing::debug!(%error, "Could not look at the slot; the stream says if the server is gone.");
                    }
                }
            }
        }
    }

    async fn on_event(
        &mut self,
        event: ReplicationEvent,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        match event {
            ReplicationEvent::XLogData(data) => {
                self.stats
                    .server_wal_end
                    .fetch_max(data.wal_end.0, Ordering::Relaxed);
                self.stats
                    .received_lsn
                    .fetch_max(data.wal_start.0, Ordering::Relaxed);
                if data.data.is_empty() {
                    // PostgreSQL 13 and 14 send an empty message where a
                    // transaction's origin has no name they can see (a replayed
                    // transaction): nothing to decode, and no reason to stop.
                    tracing::debug!(wal_start = %data.wal_start, "skipping an empty pgoutput message");
                    return Ok(());
                }
                let mut message = self.decoder.decode(data.data)?;
                match &message {
                    // Looked up again when its columns changed: NOT NULL and
                    // the key follow a column renamed or added.
                    PgOutputMessage::Relation(relation)
                        if self.looked_up.get(&relation.oid).is_none_or(|names| {
                            !names.iter().eq(relation.columns.iter().map(|c| &c.name))
                        }) =>
                    {
                        self.looked_up.insert(
                            relation.oid,
                            relation.columns.iter().map(|c| c.name.clone()).collect(),
                        );
                        let mut facts = table_catalog(&self.control, &[relation.oid]).await?;
                        if let Some(facts) = facts.remove(&relation.oid) {
                            self.batcher.set_catalog(relation.oid, facts);
                        }
                    }
                    PgOutputMessage::Begin(begin) => {
                        self.stats
                            .last_commit_time_micros
                            .store(begin.commit_time_micros, Ordering::Relaxed);
                    }
                    PgOutputMessage::Message(message) if message.prefix == HEARTBEAT_PREFIX => {
                        self.stats
                            .last_commit_time_micros
                            .store(now_unix_micros(), Ordering::Relaxed);
                        self.idle_progress(message.lsn, out).await?;
                    }
                    PgOutputMessage::Message(message) if message.prefix == SIGNAL_PREFIX => {
                        if self.config.signals {
                            let asked = self.incremental.signal(&message.content, Joined::Before);
                            self.incremental_record.asked(asked).await?;
                        } else if !self.signal_ignored {
                            self.signal_ignored = true;
                            warn!(lsn = %message.lsn, "Ignored a snapshot request (a weir_signal message): this pipeline does not accept them (source.postgres.signals is false).");
                        }
                    }
                    // Weir's own announcement, in the transaction that added the
                    // tables to its publication: their rows are read from here on.
                    PgOutputMessage::Message(message) if message.prefix == TABLES_ADDED_PREFIX => {
                        let asked = self.incremental.signal(&message.content, Joined::Now);
                        self.incremental_record.asked(asked).await?;
                    }
                    PgOutputMessage::Message(message) if message.prefix == WATERMARK_PREFIX => {
                        if let Watermark::High(lsn) =
                            self.incremental.watermark(&message.content, message.lsn)
                        {
                            self.close_chunk(lsn, out).await?;
                        }
                    }
                    PgOutputMessage::Update(update)
                        if self.config.fetch_unchanged_toast
                            && UnchangedToastReader::wanted(update) =>
                    {
                        if let Some(table) = self.batcher.table(update.relation) {
                            let table = std::sync::Arc::clone(table);
                            if let Some(filled) = self
                                .unchanged_toast
                                .fill(&self.control, &table, update, data.wal_start)
                                .await?
                            {
                                message = PgOutputMessage::Update(filled);
                            }
                        }
                    }
                    _ => {}
                }
                self.batcher.push(&message, data.wal_start)?;
                if matches!(message, PgOutputMessage::Truncate(_)) {
                    self.stats
                        .truncates_skipped
                        .fetch_add(self.batcher.take_truncates_skipped(), Ordering::Relaxed);
                }
                self.emit(out).await?;
            }
            ReplicationEvent::Keepalive(keepalive) => {
                self.stats
                    .server_wal_end
                    .fetch_max(keepalive.wal_end.0, Ordering::Relaxed);
                // The server sends keepalives only after everything before `wal_end`,
                // so with nothing open here that stretch of WAL holds nothing for us.
                self.idle_progress(keepalive.wal_end, out).await?;
            }
            // A server that shuts down ends the stream once it has our confirmation
            // of everything sent; the next session resumes from there.
            ReplicationEvent::End => return Err(ReplicationError::StreamEnded.into()),
        }
        Ok(())
    }

    /// Emits a zero-row commit at `lsn` when nothing is open or pending, so confirming
    /// it moves the slot across WAL that holds nothing for us.
    async fn idle_progress(
        &mut self,
        lsn: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        if self.batcher.is_idle() && lsn > self.emitted_end {
            self.emitted_end = lsn;
            // Confirming `lsn` is right, but a transaction whose commit record
            // starts exactly there is still to come (a keepalive's end of WAL can
            // be the start of a commit being decoded): the marker sits just before
            // it, so that transaction stays after it in the checkpoint order.
            let marker = CommittedTransaction {
                xid: 0,
                commit_lsn: Lsn(lsn.0 - 1),
                end_lsn: lsn,
                rows: 0,
            };
            send(out, SourceEvent::Committed(marker)).await?;
        }
        Ok(())
    }

    /// The high watermark of the chunk in flight streamed past at `lsn` (the end
    /// of its record): every change before it goes first, then the chunk's rows
    /// that no change superseded, as a transaction of their own just before the
    /// watermark's end.
    async fn close_chunk(
        &mut self,
        lsn: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        self.batcher.flush()?;
        self.emit(out).await?;
        // pgoutput gives a message the position where its record ends, which
        // can be exactly where the next transaction's commit record starts:
        // the chunk sits just before it, and after every earlier commit.
        let position = Lsn(lsn.0.saturating_sub(1));
        let Some(closed) = self.incremental.close(position)? else {
            return Ok(());
        };
        let count = closed
            .rows
            .as_ref()
            .map_or(0, |rows| rows.num_rows() as u64);
        self.incremental_record
            .chunk_sent(position, &closed.table, closed.after, count);
        let Some(rows) = closed.rows else {
            return Ok(());
        };
        self.stats.rows.fetch_add(count, Ordering::Relaxed);
        self.stats.batches.fetch_add(1, Ordering::Relaxed);
        send(
            out,
            SourceEvent::Reads {
                batch: rows,
                marks: SnapshotMarks::INCREMENTAL,
            },
        )
        .await?;
        self.emitted_end = self.emitted_end.max(position);
        let marker = CommittedTransaction {
            xid: 0,
            commit_lsn: position,
            end_lsn: position,
            rows: count,
        };
        send(out, SourceEvent::Committed(marker)).await
    }

    /// Sends what the batcher finished.
    async fn emit(&mut self, out: &mpsc::Sender<SourceEvent>) -> Result<(), SourceError> {
        while let Some(output) = self.batcher.pop()? {
            let event = match output {
                BatcherOutput::Batch(batch) => {
                    self.incremental.streamed(&batch);
                    self.stats
                        .rows
                        .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    SourceEvent::Batch(batch)
                }
                BatcherOutput::Committed(commit) => {
                    self.emitted_end = self.emitted_end.max(commit.end_lsn);
                    // Only transactions with rows put anything in Kafka: before
                    // PostgreSQL 15 pgoutput sends every transaction, rows or not.
                    if commit.rows > 0 {
                        self.stats
                            .last_commit_sent
                            .fetch_max(commit.end_lsn.0, Ordering::Relaxed);
                    }
                    SourceEvent::Committed(commit)
                }
                BatcherOutput::SchemaChange(change) => {
                    // A table created or renamed may now match a pattern.
                    self.discover_now |= self.discovery.is_some()
                        && matches!(
                            change.command.tag.as_str(),
                            "CREATE TABLE" | "CREATE TABLE AS" | "SELECT INTO" | "ALTER TABLE"
                        );
                    SourceEvent::SchemaChange(change)
                }
            };
            send(out, event).await?;
        }
        Ok(())
    }

    /// Brings weir's publication in step with the tables the selection matches
    /// now; tables added are announced for an incremental snapshot. Even under
    /// `snapshot: never`: a table created while streaming has its first rows
    /// written before it joins the publication, which the stream never carries.
    async fn discover(&mut self) -> Result<(), SourceError> {
        self.discover_now = false;
        if let PublicationState::Synced { added, removed } = sync_publication(
            &self.control,
            &self.config.publication,
            &self.config.tables,
            Some(self.config.slot.as_str()),
        )
        .await?
            && !(added.is_empty() && removed.is_empty())
        {
            info!(
                ?added,
                ?removed,
                "Tables appeared or went while streaming; the publication follows them."
            );
        }
        Ok(())
    }

    async fn heartbeat(&mut self) {
        let sql = format!("SELECT pg_logical_emit_message(false, '{HEARTBEAT_PREFIX}', '')");
        if let Err(error) = self.control.batch_execute(&sql).await {
            warn!(%error, "Heartbeat failed.");
        }
    }

    /// Reports `flushed` when it moved (at most every [`STATUS_THROTTLE`]) or when the
    /// status interval passed.
    async fn report(&mut self, flushed: Lsn, force: bool) -> Result<(), SourceError> {
        self.incremental_record.acknowledged(flushed, force).await?;
        let due = self.last_status.elapsed() >= self.config.status_interval;
        if force || due || flushed > self.reported {
            self.send_status(flushed.max(self.reported)).await?;
        }
        Ok(())
    }

    async fn send_status(&mut self, flushed: Lsn) -> Result<(), SourceError> {
        self.stream.send_status(StandbyStatus::at(flushed)).await?;
        self.reported = flushed;
        self.last_status = Instant::now();
        self.stats
            .confirmed_lsn
            .fetch_max(flushed.0, Ordering::Relaxed);
        Ok(())
    }

    /// Graceful end: emit what is pending, report the last flushed position, stop.
    async fn finish(
        mut self,
        out: &mpsc::Sender<SourceEvent>,
        flushed: &watch::Receiver<Lsn>,
    ) -> Result<(), SourceError> {
        self.batcher.flush()?;
        self.emit(out).await?;
        let last = *flushed.borrow();
        self.report(last, true).await?;
        self.stream.stop().await?;
        info!(confirmed = %self.reported, "Source stopped.");
        Ok(())
    }
}
