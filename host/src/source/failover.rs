//! What a session checks after a failover (or anything else that changed the
//! server under weir): that the server continues the WAL weir sent from, and that
//! weir's slot is still there and usable.

use std::sync::atomic::Ordering;

use tokio_postgres::Client;
use tracing::{info, warn};

use super::catalog::slot_info;
use super::postgres::{PostgresSource, SourceError, drop_idle_slot};
use super::replication::ReplicationConnection;
use super::snapshot::SnapshotMode;
use crate::lsn::Lsn;

impl PostgresSource {
    /// Notices a server on another timeline than the last session's (a promoted
    /// standby) and refuses to continue when weir sent changes past the point
    /// where the new timeline left the old one (see `timeline`).
    pub(super) async fn check_timeline(
        &self,
        replication: &mut ReplicationConnection,
    ) -> Result<(), SourceError> {
        let timeline = replication.identify_system().await?.timeline;
        let previous = self.timeline.swap(timeline, Ordering::Relaxed);
        if previous == 0 || previous == timeline {
            return Ok(());
        }
        let sent = Lsn(self.stats.last_commit_sent.load(Ordering::Relaxed));
        let history = replication.timeline_history(timeline).await?;
        match super::timeline::check(previous, timeline, &history, sent) {
            Ok(Some(switch)) => {
                info!(previous, timeline, %switch, %sent, "The server is on a new timeline (a standby was promoted); everything weir sent is on it, so streaming continues.");
                Ok(())
            }
            Ok(None) => {
                warn!(previous, timeline, %sent, "The server is on a timeline whose history does not include the one weir streamed from (restored from a backup?); continuing from the slot's position.");
                Ok(())
            }
            Err(diverged) => {
                // Stays diverged for the next attempt, whatever it finds.
                self.timeline.store(previous, Ordering::Relaxed);
                Err(diverged.into())
            }
        }
    }

    /// Refuses to create weir's slot afresh when an earlier session of this
    /// process streamed from it: the slot vanished (a promoted standby without a
    /// synchronised copy, or a drop) and changes since its last position are out
    /// of reach. With `snapshot: when_needed` weir instead creates it again and
    /// takes a new snapshot, and it does the same for a slot the server
    /// invalidated.
    pub(super) async fn check_slot_survived(&self, control: &Client) -> Result<(), SourceError> {
        let slot = &self.config.slot;
        let when_needed = self.config.snapshot.mode == SnapshotMode::WhenNeeded;
        let database: String = control
            .query_one("SELECT current_database()::text", &[])
            .await
            .map_err(super::catalog::CatalogError::from)?
            .get(0);
        match slot_info(control, slot).await? {
            Some(info) if when_needed && info.is_invalidated() => {
                warn!(slot = %slot, reason = info.unusable_reason(&database).unwrap_or_default(), "The server invalidated the slot; snapshot is when_needed, so weir drops it, creates it again and takes a new snapshot.");
                drop_idle_slot(control, slot).await
            }
            Some(_) => Ok(()),
            None if self.stats.sessions.load(Ordering::Relaxed) == 0 => Ok(()),
            None if when_needed => {
                warn!(slot = %slot, "The slot weir streamed from is gone from this server (a promoted standby without a synchronised copy, or dropped); snapshot is when_needed, so weir creates it again and takes a new snapshot.");
                Ok(())
            }
            None => Err(SourceError::SlotLost {
                slot: slot.clone(),
                confirmed: Lsn(self.stats.confirmed_lsn.load(Ordering::Relaxed)),
            }),
        }
    }
}
