//! One weir per slot, from the moment the slot is created.
//!
//! PostgreSQL lets one reader stream a slot at a time, but not from its creation:
//! after `CREATE_REPLICATION_SLOT` the slot is free again while its creator reads
//! the initial snapshot, and a second weir started with the same spec (a standby
//! deployed beside the primary) could stream it meanwhile, sending changes the
//! snapshot's older rows would then overwrite in Kafka. So every session first
//! takes a session-level advisory lock named after the slot, on the control
//! connection it keeps for its whole life; a weir that finds the lock taken
//! waits and retries as for a busy slot. The lock goes when the session's
//! connection goes, so a crashed weir never blocks its standby.

use tokio_postgres::Client;

use super::catalog::CatalogError;

/// The advisory lock's name space: the lock is `hashtextextended(NAME, 0)` of
/// `weir.slot.<slot>`, in the slot's database.
const LOCK_PREFIX: &str = "weir.slot.";

/// Takes the slot's lock for the life of `control`'s session. Returns `false`
/// when another session holds it.
///
/// # Errors
///
/// [`CatalogError::Query`] when the query fails.
pub(crate) async fn try_own(control: &Client, slot: &str) -> Result<bool, CatalogError> {
    let name = format!("{LOCK_PREFIX}{slot}");
    let row = control
        .query_one(
            "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
            &[&name],
        )
        .await?;
    Ok(row.get(0))
}
