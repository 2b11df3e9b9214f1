//! Watching the slot while streaming: how much WAL it holds, how close it is to
//! `max_slot_wal_keep_size`, and whether the server is about to give it up. The
//! stream itself only fails once the WAL is gone; this warns before.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_postgres::Client;
use tracing::warn;

use super::postgres::SourceStats;

/// How often the slot is looked at.
pub(super) const SLOT_WATCH_INTERVAL: Duration = Duration::from_secs(15);

/// Below this share of `max_slot_wal_keep_size` left, weir warns.
const SAFE_SHARE_WARNING: f64 = 0.2;

/// What was last said about the slot, so a warning is logged when things get
/// worse, not every interval.
#[derive(Debug, Default)]
pub(super) struct SlotHealth {
    wal_status: Option<String>,
    warned_low: bool,
}

impl SlotHealth {
    /// Looks at `slot` once: updates the gauges in `stats`, and warns when the
    /// slot crossed into danger.
    pub(super) async fn observe(
        &mut self,
        control: &Client,
        slot: &str,
        stats: &SourceStats,
    ) -> Result<(), tokio_postgres::Error> {
        let Some(row) = control
            .query_opt(
                "SELECT wal_status, safe_wal_size, \
                        pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                                             ELSE pg_current_wal_lsn() END, restart_lsn)::int8, \
                        pg_size_bytes(current_setting('max_slot_wal_keep_size') || \
                                      CASE WHEN current_setting('max_slot_wal_keep_size') ~ '^-?[0-9]+$' THEN 'MB' ELSE '' END) \
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await?
        else {
            return Ok(());
        };
        let wal_status: Option<String> = row.get(0);
        let safe: Option<i64> = row.get(1);
        let retained: Option<i64> = row.get(2);
        let limit: i64 = row.get::<_, Option<i64>>(3).unwrap_or(-1);
        let limit = if limit < 0 { -1 } else { limit };
        stats.slot_retained_wal_bytes.store(
            u64::try_from(retained.unwrap_or(0)).unwrap_or(0),
            Ordering::Relaxed,
        );
        stats
            .slot_safe_wal_bytes
            .store(safe.unwrap_or(-1), Ordering::Relaxed);
        stats.slot_wal_limit_bytes.store(limit, Ordering::Relaxed);
        if wal_status != self.wal_status {
            if wal_status.as_deref() == Some("unreserved") {
                warn!(
                    slot,
                    retained_bytes = retained,
                    "The slot holds more WAL than max_slot_wal_keep_size allows: the server invalidates it at its next checkpoint unless weir catches up first."
                );
            }
            self.wal_status = wal_status;
        }
        let low =
            limit > 0 && safe.is_some_and(|safe| (safe as f64) < limit as f64 * SAFE_SHARE_WARNING);
        if low && !self.warned_low {
            warn!(
                slot,
                safe_bytes = safe,
                limit_bytes = limit,
                "The slot is within 20% of max_slot_wal_keep_size: weir is far behind; past the limit the server invalidates the slot."
            );
        }
        self.warned_low = low;
        Ok(())
    }
}
