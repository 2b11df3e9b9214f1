//! Waiting out the transactions that were writing a table when it joined the
//! publication.
//!
//! pgoutput decides whether a change is published with the catalog as it stood
//! where the change sits in the WAL. A transaction that changed a table before
//! the `ALTER PUBLICATION` committed, and commits after it, is streamed without
//! those changes; an incremental snapshot read before it commits misses them too,
//! and the row is lost. Such a transaction still holds its write lock on the
//! table, so the first chunk waits until every transaction holding one when the
//! announcement arrived has ended (as `CREATE INDEX CONCURRENTLY` waits for
//! earlier writers), without taking a lock that would queue the application's
//! writers behind it.

use std::time::{Duration, Instant};

use tokio_postgres::Client;
use tracing::warn;

use super::table::SnapshotError;

/// How often the lock table is looked at again while writers remain.
const POLL: Duration = Duration::from_millis(50);
/// How long between warnings that a table's snapshot still waits.
const WARN_EVERY: Duration = Duration::from_secs(30);

/// The lock modes a transaction changing rows (or the table) holds.
const WRITE_MODES: &str =
    "('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')";

/// A table whose snapshot waits for earlier writers.
#[derive(Debug)]
pub(super) struct Writers {
    /// `schema.table`.
    pub(super) table: String,
    /// `pg_locks.virtualtransaction` of each writer still to end.
    pending: Vec<String>,
    next_check: Instant,
    since: Instant,
    warned: Instant,
}

impl Writers {
    /// The transactions holding a write lock on `table` now, or `None` when
    /// there are none (or the table is gone).
    pub(super) async fn holding(
        control: &Client,
        table: &str,
        quoted: &str,
    ) -> Result<Option<Writers>, SnapshotError> {
        let pending = lockers(control, table, quoted, None).await?;
        if pending.is_empty() {
            return Ok(None);
        }
        let now = Instant::now();
        Ok(Some(Writers {
            table: table.to_owned(),
            pending,
            next_check: now + POLL,
            since: now,
            warned: now,
        }))
    }

    /// When to look again.
    pub(super) fn next_check(&self) -> Instant {
        self.next_check
    }

    /// Looks again: `true` once every writer has ended.
    pub(super) async fn ended(
        &mut self,
        control: &Client,
        quoted: &str,
    ) -> Result<bool, SnapshotError> {
        self.pending = lockers(control, &self.table, quoted, Some(&self.pending)).await?;
        if self.pending.is_empty() {
            return Ok(true);
        }
        let now = Instant::now();
        self.next_check = now + POLL;
        if now.duration_since(self.warned) >= WARN_EVERY {
            self.warned = now;
            warn!(
                table = %self.table,
                waited_s = now.duration_since(self.since).as_secs(),
                transactions = ?self.pending,
                "The snapshot of a table just added to the publication waits for transactions that were writing it then to end (see pg_locks)."
            );
        }
        Ok(false)
    }
}

/// Virtual transaction ids holding a write lock on the table, among `among` when
/// given. Prepared transactions keep their locks too, and are waited for.
async fn lockers(
    control: &Client,
    table: &str,
    quoted: &str,
    among: Option<&[String]>,
) -> Result<Vec<String>, SnapshotError> {
    let all: Vec<String> = Vec::new();
    let among = among.unwrap_or(&all);
    let row = control
        .query_one(
            &format!(
                "SELECT coalesce(array_agg(DISTINCT l.virtualtransaction), '{{}}') \
                 FROM pg_locks l \
                 WHERE l.locktype = 'relation' AND l.granted \
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND l.relation = to_regclass($1) \
                   AND l.mode IN {WRITE_MODES} \
                   AND l.pid IS DISTINCT FROM pg_backend_pid() \
                   AND (cardinality($2::text[]) = 0 OR l.virtualtransaction = ANY($2))"
            ),
            &[&quoted, &among],
        )
        .await
        .map_err(|source| SnapshotError::Postgres {
            table: table.to_owned(),
            source,
        })?;
    Ok(row.get(0))
}
