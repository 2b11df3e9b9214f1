//! The control plane: publications, slots and the catalog, over an ordinary
//! connection (tokio-postgres).

use std::collections::HashMap;

use tokio_postgres::Client;

pub use super::publication::{PublicationState, ensure_publication};
use super::replication::{CreatedSlot, ReplicationConnection, ReplicationError, SlotSnapshot};
use crate::batch::CatalogFacts;
use crate::contract::TableSelector;
use crate::lsn::Lsn;
use weir_pgoutput::Oid;

/// Why a control-plane operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The control-plane connection could not be made.
    #[error(transparent)]
    Connect(#[from] super::connect::ConnectError),
    /// A catalog query or DDL statement failed.
    #[error("PostgreSQL control-plane query failed")]
    Query(#[from] tokio_postgres::Error),
    /// Creating the slot on the replication connection failed.
    #[error("creating the replication slot failed")]
    Replication(#[from] ReplicationError),
    /// A slot of that name exists but is not one weir can read.
    #[error(
        "slot {slot:?} exists but {problem}; drop it (SELECT pg_drop_replication_slot('{slot}')) or choose another slot name"
    )]
    #[allow(missing_docs)]
    SlotMismatch { slot: String, problem: String },
    /// Before PostgreSQL 15 a publication names its tables one by one, and the
    /// selection names none that exists yet.
    #[error(
        "publication {0:?}: the selected tables do not exist yet, and before PostgreSQL 15 a publication cannot name a schema; create the tables first, or create the publication yourself"
    )]
    NoTables(String),
    /// DDL capture was asked for and cannot be installed.
    #[error("{0}")]
    DdlCapture(String),
}

/// A row of `pg_replication_slots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    /// `slot_name`.
    pub name: String,
    /// `plugin` (`pgoutput` for weir's slots).
    pub plugin: Option<String>,
    /// `slot_type`: `logical` or `physical`.
    pub slot_type: String,
    /// `database`.
    pub database: Option<String>,
    /// Whether a reader is connected.
    pub active: bool,
    /// That reader's process id.
    pub active_pid: Option<i32>,
    /// Oldest WAL the slot holds.
    pub restart_lsn: Option<Lsn>,
    /// What the reader confirmed: streaming resumes after it.
    pub confirmed_flush_lsn: Option<Lsn>,
    /// `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+).
    pub wal_status: Option<String>,
    /// WAL bytes between the server's current position and `restart_lsn`.
    pub retained_wal_bytes: Option<i64>,
    /// Whether standbys with `sync_replication_slots` keep a copy (PostgreSQL
    /// 17+; `None` before).
    pub failover: Option<bool>,
    /// Whether this is a standby's copy of a primary's slot (PostgreSQL 17+).
    pub synced: Option<bool>,
    /// Why the server gave up the slot (`wal_removed`, `rows_removed`,
    /// `wal_level_insufficient`, `idle_timeout`; PostgreSQL 17+).
    pub invalidation_reason: Option<String>,
}

impl SlotInfo {
    /// Whether the server gave the slot up: WAL it needs is gone, or (17+) it
    /// was invalidated for another reason.
    pub fn is_invalidated(&self) -> bool {
        self.invalidation_reason.is_some() || self.wal_status.as_deref() == Some("lost")
    }

    /// Why weir cannot stream from this slot in `database`, if it cannot: another kind
    /// or plugin, another database, or WAL it needed is gone.
    pub fn unusable_reason(&self, database: &str) -> Option<String> {
        if self.slot_type != "logical" {
            Some(format!("is a {} slot", self.slot_type))
        } else if self.plugin.as_deref() != Some("pgoutput") {
            Some(format!(
                "uses plugin {:?}, not pgoutput",
                self.plugin.as_deref().unwrap_or("")
            ))
        } else if self.database.as_deref() != Some(database) {
            Some(format!(
                "belongs to database {:?}",
                self.database.as_deref().unwrap_or("")
            ))
        } else if let Some(reason) = &self.invalidation_reason {
            Some(format!(
                "was invalidated by the server ({reason}); its changes cannot be streamed"
            ))
        } else if self.wal_status.as_deref() == Some("lost") {
            Some(
                "has lost WAL it needed (wal_status = lost); its changes cannot be streamed"
                    .to_owned(),
            )
        } else {
            None
        }
    }
}

/// Reads one slot.
pub async fn slot_info(client: &Client, slot: &str) -> Result<Option<SlotInfo>, CatalogError> {
    Ok(list_slots(client)
        .await?
        .into_iter()
        .find(|info| info.name == slot))
}

/// Every slot of the server, ordered by name.
pub async fn list_slots(client: &Client) -> Result<Vec<SlotInfo>, CatalogError> {
    let rows = client
        .query(
            "SELECT slot_name::text, plugin::text, slot_type, database::text, active, active_pid, \
                    restart_lsn::text, confirmed_flush_lsn::text, wal_status, \
                    pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
                                         ELSE pg_current_wal_lsn() END, restart_lsn)::bigint, \
                    (to_jsonb(s) ->> 'failover')::bool, (to_jsonb(s) ->> 'synced')::bool, \
                    to_jsonb(s) ->> 'invalidation_reason' \
             FROM pg_replication_slots s ORDER BY slot_name",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let lsn = |i: usize| row.get::<_, Option<String>>(i).and_then(|t| t.parse().ok());
            SlotInfo {
                name: row.get(0),
                plugin: row.get(1),
                slot_type: row.get(2),
                database: row.get(3),
                active: row.get(4),
                active_pid: row.get(5),
                restart_lsn: lsn(6),
                confirmed_flush_lsn: lsn(7),
                wal_status: row.get(8),
                retained_wal_bytes: row.get(9),
                failover: row.get(10),
                synced: row.get(11),
                invalidation_reason: row.get(12),
            }
        })
        .collect())
}

/// What [`ensure_slot`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// The slot was created now; streaming starts at its consistent point.
    Created(CreatedSlot),
    /// The slot existed; streaming resumes after its `confirmed_flush_lsn`.
    Existing(SlotInfo),
}

/// Creates the logical slot `slot` with pgoutput when it is missing; reuses it when it
/// exists, after checking it is a pgoutput slot of this database. With `failover`
/// (PostgreSQL 17+) the slot is created as a failover slot, and an existing one
/// made one.
///
/// # Errors
///
/// [`CatalogError::SlotMismatch`] for a slot of another plugin, kind or database,
/// or one the server invalidated.
pub async fn ensure_slot(
    client: &Client,
    replication: &mut ReplicationConnection,
    slot: &str,
    snapshot: SlotSnapshot,
    failover: bool,
) -> Result<SlotState, CatalogError> {
    if let Some(mut info) = slot_info(client, slot).await? {
        let database: String = client
            .query_one("SELECT current_database()::text", &[])
            .await?
            .get(0);
        if let Some(problem) = info.unusable_reason(&database) {
            return Err(CatalogError::SlotMismatch {
                slot: slot.to_owned(),
                problem,
            });
        }
        if failover && info.failover == Some(false) {
            replication.set_slot_failover(slot, true).await?;
            tracing::info!(
                slot,
                "Made the replication slot a failover slot: standbys with sync_replication_slots keep a copy."
            );
            info.failover = Some(true);
        }
        return Ok(SlotState::Existing(info));
    }
    let created = replication
        .create_logical_slot(slot, false, snapshot, failover)
        .await?;
    tracing::info!(slot, consistent_point = %created.consistent_point, failover, "Created replication slot.");
    Ok(SlotState::Created(created))
}

/// Drops a slot. Only an explicit command does this: a slot holds the position weir
/// resumes from, and dropping it loses changes not yet streamed.
///
/// Returns whether the slot existed.
pub async fn drop_slot(client: &Client, slot: &str) -> Result<bool, CatalogError> {
    let dropped = client
        .execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(dropped > 0)
}

/// The server's major version (`server_version_num / 10000`, e.g. 17).
pub async fn server_major_version(client: &Client) -> Result<u32, CatalogError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    let number: i32 = row.get(0);
    Ok(u32::try_from(number / 10_000).unwrap_or_default())
}

/// Whether a publication of that name exists.
pub async fn publication_exists(client: &Client, publication: &str) -> Result<bool, CatalogError> {
    Ok(client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?
        .is_some())
}

/// The existing tables (ordinary and partitioned) the selectors name, as
/// (schema, table) pairs.
pub async fn resolve_tables(
    client: &Client,
    tables: &[TableSelector],
) -> Result<Vec<(String, String)>, CatalogError> {
    let mut resolved = Vec::new();
    for table in tables {
        let rows = match table {
            TableSelector::Table { schema, name } => {
                client
                    .query(
                        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                        &[schema, name],
                    )
                    .await?
            }
            TableSelector::Schema(schema) | TableSelector::Pattern { schema, .. } => {
                client
                    .query(
                        "SELECT n.nspname::text, c.relname::text FROM pg_class c \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
                         AND c.relpersistence = 'p' ORDER BY c.relname",
                        &[schema],
                    )
                    .await?
            }
        };
        for row in &rows {
            let found: (String, String) = (row.get(0), row.get(1));
            if table.matches(&found.0, &found.1) && !resolved.contains(&found) {
                resolved.push(found);
            }
        }
    }
    Ok(resolved)
}

/// The primary key (in key order) and the `NOT NULL` columns of tables, by table
/// OID: what a pgoutput Relation message does not say.
pub async fn table_catalog(
    client: &Client,
    tables: &[Oid],
) -> Result<HashMap<Oid, CatalogFacts>, CatalogError> {
    // `indkey` is an int2vector, whose subscripts start at 0: its ordinality gives
    // the place in the key.
    let rows = client
        .query(
            "SELECT a.attrelid, a.attname::text, a.attnotnull, \
                    (SELECT k.n FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, n) \
                     WHERE i.indrelid = a.attrelid AND i.indisprimary AND k.attnum = a.attnum)::int4, \
                    CASE WHEN t.typtype = 'd' THEN t.typbasetype END, t.typtypmod, \
                    CASE WHEN t.typtype = 'e' THEN (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) \
                                                    FROM pg_enum e WHERE e.enumtypid = t.oid) END \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped \
             ORDER BY a.attrelid, a.attnum",
            &[&tables],
        )
        .await?;
    let mut facts: HashMap<Oid, CatalogFacts> = HashMap::new();
    let mut keys: HashMap<Oid, Vec<(i32, String)>> = HashMap::new();
    for row in &rows {
        let table: Oid = row.get(0);
        let name: String = row.get(1);
        let entry = facts.entry(table).or_default();
        if row.get::<_, bool>(2) {
            entry.not_null.push(name.clone());
        }
        if let Some(base) = row.get::<_, Option<Oid>>(4) {
            entry.domains.push((name.clone(), base, row.get(5)));
        }
        if let Some(labels) = row.get::<_, Option<Vec<String>>>(6) {
            entry.enums.push((name.clone(), labels));
        }
        if let Some(place) = row.get::<_, Option<i32>>(3) {
            keys.entry(table).or_default().push((place, name));
        }
    }
    for (table, mut key) in keys {
        key.sort();
        if let Some(entry) = facts.get_mut(&table) {
            entry.primary_key = key.into_iter().map(|(_, name)| name).collect();
        }
    }
    Ok(facts)
}
