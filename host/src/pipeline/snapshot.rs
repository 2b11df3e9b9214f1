//! The worker's side of the initial snapshot: marks chunks done once Kafka
//! acknowledged them, persists the progress in the state topic, and shows it.
//!
//! It keeps its own copy of the progress, received with `Started` and each table's
//! plan, and changed only by the events that follow: the source and the worker
//! talk in events and share no state.

use std::sync::Arc;

use anyhow::Context as _;

use super::progress::ProgressDisplay;
use super::state::StateTopic;
use crate::metrics::{PipelineMetrics, TableLabel};
use crate::produce::KafkaProducer;
use crate::source::snapshot::{SnapshotEvent, SnapshotProgress};

/// Records the snapshot's progress as its events arrive.
pub(super) struct SnapshotRecorder {
    state: StateTopic,
    progress: SnapshotProgress,
    metrics: Arc<PipelineMetrics>,
    display: Option<ProgressDisplay>,
    /// Rows handed to the producer, for the display (acknowledged ones are
    /// counted in the progress).
    rows_sent: u64,
}

impl SnapshotRecorder {
    pub(super) fn new(state: StateTopic, metrics: Arc<PipelineMetrics>) -> Self {
        SnapshotRecorder {
            state,
            progress: SnapshotProgress::default(),
            metrics,
            display: None,
            rows_sent: 0,
        }
    }

    /// Handles `event`. The caller waited for every message sent before a
    /// `ChunkRead` or `Finished` to be acknowledged.
    pub(super) fn record(
        &mut self,
        event: SnapshotEvent,
        producer: &KafkaProducer,
    ) -> anyhow::Result<()> {
        match event {
            SnapshotEvent::Started { position, progress } => {
                self.progress = *progress;
                let (rows, expected) = self.progress.totals();
                tracing::info!(%position, rows_done = rows, "Snapshot starts.");
                self.rows_sent = rows;
                self.display = Some(ProgressDisplay::new(rows, expected));
            }
            SnapshotEvent::TableStarted {
                table,
                estimated_rows,
                plan,
                ..
            } => {
                self.progress.tables.insert(table.clone(), *plan);
                let label = TableLabel {
                    table: table.clone(),
                };
                self.metrics
                    .snapshot_rows_estimated
                    .get_or_create(&label)
                    .set(i64::try_from(estimated_rows).unwrap_or(i64::MAX));
                if let Some(display) = &mut self.display {
                    display.table(&table);
                }
            }
            SnapshotEvent::ChunkRead(chunk) => {
                let table = self
                    .progress
                    .tables
                    .get_mut(chunk.table.as_ref())
                    .with_context(|| {
                        format!("a finished chunk of {} without a plan", chunk.table)
                    })?;
                if let Some(done) = table.done.get_mut(chunk.index) {
                    *done = true;
                }
                table.rows += chunk.rows;
                let rows = table.rows;
                self.metrics
                    .snapshot_rows
                    .get_or_create(&TableLabel {
                        table: chunk.table.to_string(),
                    })
                    .set(i64::try_from(rows).unwrap_or(i64::MAX));
            }
            SnapshotEvent::Finished { .. } => {
                self.progress.complete = true;
                if let Some(mut display) = self.display.take() {
                    display.finish();
                }
            }
        }
        self.state
            .save(producer, &self.progress)
            .context("recording the snapshot's progress")
    }

    /// `rows` snapshot rows were handed to the producer.
    pub(super) fn rows_sent(&mut self, rows: usize) {
        self.rows_sent += rows as u64;
        if let Some(display) = &mut self.display {
            let (_, expected) = self.progress.totals();
            display.update(self.rows_sent, expected);
        }
    }
}
