//! When the source takes the initial snapshot (per the mode, the slot and the
//! recorded progress), and how it sends it: the rows, the progress events and a
//! closing commit marker, all before the first streamed change.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, info_span};

use super::batcher::CommittedTransaction;
use super::catalog::{SlotState, resolve_tables};
use super::postgres::{PostgresSource, SourceError, SourceEvent, send};
use super::snapshot::initial::{InitialSnapshot, SnapshotEvent};
use super::snapshot::parallel::{export_snapshot, snapshot_connection};
use super::snapshot::progress::{SnapshotMode, lock};
use super::snapshot::table::SnapshotError;
use super::snapshot::visibility::FirstSnapshot;
use crate::lsn::Lsn;

/// Which snapshot the initial snapshot reads.
#[derive(Debug)]
pub(super) enum SnapshotSource {
    /// The one the slot exported when this session created it: exactly the data
    /// before the slot's consistent point.
    Exported(String),
    /// A new one, later than the slot's position: streaming then replays changes
    /// the snapshot already holds, and the last change of each key still wins.
    Fresh,
}

impl PostgresSource {
    /// Whether this session reads a snapshot, per the mode, the slot and the
    /// recorded progress.
    pub(super) fn snapshot_to_take(&self, slot: &SlotState) -> Option<SnapshotSource> {
        let mode = self.config.snapshot.mode;
        let name = &self.config.slot;
        let mut progress = lock(&self.progress);
        match slot {
            _ if mode == SnapshotMode::Never => None,
            SlotState::Created(created) => {
                progress.restart(name);
                created.snapshot_name.clone().map(SnapshotSource::Exported)
            }
            SlotState::Existing(_) if progress.is_unfinished(name) => {
                info!(slot = %name, "Resuming the unfinished snapshot.");
                Some(SnapshotSource::Fresh)
            }
            SlotState::Existing(_)
                if mode == SnapshotMode::WhenNeeded && !progress.is_finished(name) =>
            {
                info!(slot = %name, "No finished snapshot is recorded for the slot: taking one.");
                progress.restart(name);
                Some(SnapshotSource::Fresh)
            }
            SlotState::Existing(_) => None,
        }
    }

    /// Reads the selected tables' rows under `source`, as of just before `start`,
    /// and sends them with their progress events and a closing commit marker.
    pub(super) async fn initial_snapshot(
        &self,
        control: &Client,
        source: SnapshotSource,
        start: Lsn,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let config = &self.config;
        let tables = resolve_tables(control, &config.tables).await?;
        let (exporter, name) = match source {
            SnapshotSource::Exported(name) => (None, name),
            SnapshotSource::Fresh => {
                let (client, name, _) = export_snapshot(&config.connection).await?;
                (Some(client), name)
            }
        };
        // Just before the slot's start: a transaction committed exactly there is
        // streamed, and its rows must come after the snapshot's in the checkpoint.
        let position = Lsn(start.0.saturating_sub(1));
        self.read_snapshot(&tables, &name, position, true, out)
            .await?;
        drop(exporter);
        Ok(())
    }

    /// `initial_only`: a snapshot of its own, no slot, no streaming.
    pub(super) async fn snapshot_only(
        &self,
        control: &Client,
        out: &mpsc::Sender<SourceEvent>,
        shutdown: &CancellationToken,
    ) -> Result<(), SourceError> {
        let slot = &self.config.slot;
        {
            let mut progress = lock(&self.progress);
            if progress.is_finished(slot) {
                info!("The snapshot is complete already; nothing to do.");
                return Ok(());
            }
            if !progress.is_unfinished(slot) {
                progress.restart(slot);
            }
        }
        let tables = resolve_tables(control, &self.config.tables).await?;
        let (exporter, name, position) = export_snapshot(&self.config.connection).await?;
        tokio::select! {
            read = self.read_snapshot(&tables, &name, position, false, out) => read?,
            _ = shutdown.cancelled() => info!("Stopped during the snapshot; a restart resumes it."),
        }
        drop(exporter);
        Ok(())
    }

    /// Reads `tables` under snapshot `name`; the rows and the closing commit marker
    /// carry `position`. With `streamed` (streaming follows from the slot's
    /// consistent point), a resumed snapshot reads only the row versions its
    /// first run saw: newer ones are streamed.
    pub(super) async fn read_snapshot(
        &self,
        tables: &[(String, String)],
        name: &str,
        position: Lsn,
        streamed: bool,
        out: &mpsc::Sender<SourceEvent>,
    ) -> Result<(), SourceError> {
        let filter = if streamed {
            self.first_snapshot_filter(name).await?
        } else {
            None
        };
        // The pipeline keeps its own copy from here, updated by the events that
        // follow: the two sides share no state.
        let progress = Box::new(lock(&self.progress).clone());
        send(out, SnapshotEvent::Started { position, progress }.into()).await?;
        let snapshot = InitialSnapshot {
            connection: &self.config.connection,
            tables,
            options: self.config.snapshot,
            rows_per_batch: self.config.batch.max_rows,
            position,
            progress: &self.progress,
            filter,
        };
        let rows = snapshot
            .run(name, out)
            .instrument(info_span!("snapshot", stage = "snapshot"))
            .await
            .map_err(|error| match error {
                SnapshotError::Closed => SourceError::DownstreamClosed,
                other => other.into(),
            })?;
        send(out, SnapshotEvent::Finished { rows }.into()).await?;
        let marker = CommittedTransaction {
            xid: 0,
            commit_lsn: position,
            end_lsn: position,
            rows,
        };
        send(out, SourceEvent::Committed(marker)).await
    }

    /// A resumed snapshot's filter: the first run's snapshot as a SQL condition.
    /// A first run records its own snapshot (`name`'s) instead, and reads all.
    async fn first_snapshot_filter(&self, name: &str) -> Result<Option<Arc<str>>, SourceError> {
        let recorded = lock(&self.progress).first_snapshot.clone();
        if let Some(text) = recorded {
            let first: FirstSnapshot = text.parse().map_err(SnapshotError::from)?;
            info!(first_snapshot = %text, "The resumed snapshot reads only rows its first run saw; newer ones are streamed.");
            return Ok(Some(first.condition().into()));
        }
        let client = snapshot_connection(&self.config.connection, name).await?;
        let text: String = client
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            .map_err(|source| SnapshotError::Postgres {
                table: "(snapshot export)".to_owned(),
                source,
            })?
            .get(0);
        lock(&self.progress).first_snapshot = Some(text);
        Ok(None)
    }
}
