//! Precheck: what the source needs of the database, checked before anything starts.
//!
//! Each check yields a [`Finding`]: pass, warn (weir runs, but something will not work
//! as a user expects) or fail (weir cannot run), with the fix to apply. `weir check`
//! prints them; `weir run` refuses to start on a failure.

use std::fmt;

use tokio_postgres::Client;

use super::catalog::{
    CatalogError, publication_exists, resolve_tables, server_major_version, slot_info,
};
use super::ddl::{ddl_capture_installed, install_sql};
use crate::contract::TableSelector;
use crate::contract::sql::{quote_identifier, quote_qualified};

/// WAL a slot may hold back before the precheck warns: past this, weir is far behind
/// or was stopped long ago, and the server's disk fills while the slot waits.
pub const RETAINED_WAL_WARN_BYTES: i64 = 1 << 30;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckStatus {
    /// Fine.
    Pass,
    /// weir runs, but not everything will behave as expected.
    Warn,
    /// weir cannot run until this is fixed.
    Fail,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "FAIL",
        })
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked, e.g. `wal_level`.
    pub check: &'static str,
    /// Pass, warn or fail.
    pub status: CheckStatus,
    /// What was found.
    pub message: String,
    /// What to do about it, for warnings and failures.
    pub fix: Option<String>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.status, self.check, self.message)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n       fix: {fix}")?;
        }
        Ok(())
    }
}

/// What the source will use.
#[derive(Debug, Clone)]
pub struct PrecheckInput<'a> {
    /// The slot's name.
    pub slot: &'a str,
    /// The publication's name.
    pub publication: &'a str,
    /// The selected tables.
    pub tables: &'a [TableSelector],
    /// Whether DDL capture is asked for (`source.postgres.ddl: capture`).
    pub ddl_capture: bool,
}

/// Runs every check, connected as the user weir will run as.
///
/// # Errors
///
/// Only when the catalog cannot be queried at all; everything the checks find is a
/// [`Finding`].
pub async fn precheck(
    client: &Client,
    input: &PrecheckInput<'_>,
) -> Result<Vec<Finding>, CatalogError> {
    let mut findings = Vec::new();
    findings.push(wal_level(client).await?);
    findings.push(encoding(client).await?);
    findings.push(replication_privilege(client).await?);
    findings.push(free_slots(client, input.slot).await?);
    findings.push(free_wal_senders(client).await?);
    findings.push(slot_state(client, input.slot).await?);
    findings.push(wal_limit(client).await?);
    findings.extend(idle_slot_timeout(client).await?);
    findings.extend(old_transactions(client).await?);
    findings.push(publication(client, input.publication).await?);
    findings.extend(tables(client, input.tables).await?);
    if input.ddl_capture {
        findings.push(ddl_capture(client).await?);
    }
    Ok(findings)
}

/// The worst status among findings (Pass when there are none).
pub fn worst(findings: &[Finding]) -> CheckStatus {
    findings
        .iter()
        .map(|f| f.status)
        .max()
        .unwrap_or(CheckStatus::Pass)
}

fn finding(
    check: &'static str,
    status: CheckStatus,
    message: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        check,
        status,
        message,
        fix,
    }
}

pub(super) async fn setting(client: &Client, name: &str) -> Result<String, CatalogError> {
    Ok(client
        .query_one("SELECT setting FROM pg_settings WHERE name = $1", &[&name])
        .await?
        .get(0))
}

async fn wal_level(client: &Client) -> Result<Finding, CatalogError> {
    let level = setting(client, "wal_level").await?;
    Ok(if level == "logical" {
        finding("wal_level", CheckStatus::Pass, "logical".to_owned(), None)
    } else {
        finding(
            "wal_level",
            CheckStatus::Fail,
            format!("wal_level is {level}; logical replication needs logical"),
            Some("ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL".to_owned()),
        )
    })
}

async fn encoding(client: &Client) -> Result<Finding, CatalogError> {
    let encoding: String = client
        .query_one("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()", &[])
        .await?
        .get(0);
    Ok(if encoding == "UTF8" {
        finding("encoding", CheckStatus::Pass, "UTF8".to_owned(), None)
    } else {
        finding(
            "encoding",
            CheckStatus::Fail,
            format!(
                "the database encoding is {encoding}; pgoutput sends text in it, and weir reads UTF-8"
            ),
            Some(
                "use a UTF8 database (CREATE DATABASE … ENCODING 'UTF8' and migrate the data)"
                    .to_owned(),
            ),
        )
    })
}

async fn replication_privilege(client: &Client) -> Result<Finding, CatalogError> {
    let row = client
        .query_one(
            "SELECT current_user::text, rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (user, replication, superuser): (String, bool, bool) = (row.get(0), row.get(1), row.get(2));
    Ok(if replication || superuser {
        finding(
            "replication privilege",
            CheckStatus::Pass,
            format!("role {user} may replicate"),
            None,
        )
    } else {
        finding(
            "replication privilege",
            CheckStatus::Fail,
            format!("role {user} has no REPLICATION attribute"),
            Some(format!(
                "ALTER ROLE {} WITH REPLICATION;",
                quote_identifier(&user)
            )),
        )
    })
}

/// DDL capture needs logical messages in pgoutput (PostgreSQL 14+) and event
/// triggers, which only a superuser creates.
async fn ddl_capture(client: &Client) -> Result<Finding, CatalogError> {
    const CHECK: &str = "ddl capture";
    if server_major_version(client).await? < 14 {
        return Ok(finding(
            CHECK,
            CheckStatus::Fail,
            "the event trigger's messages reach weir through pgoutput's logical messages, which PostgreSQL 14 and later send".to_owned(),
            Some("set source.postgres.ddl: off, or upgrade PostgreSQL".to_owned()),
        ));
    }
    if ddl_capture_installed(client).await? {
        return Ok(finding(
            CHECK,
            CheckStatus::Pass,
            "weir's event triggers are installed".to_owned(),
            None,
        ));
    }
    let superuser: bool = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    Ok(if superuser {
        finding(
            CHECK,
            CheckStatus::Pass,
            "weir installs its event triggers at start (this role is a superuser)".to_owned(),
            None,
        )
    } else {
        finding(
            CHECK,
            CheckStatus::Fail,
            "event triggers are not installed, and only a superuser (rds_superuser on RDS, cloudsqlsuperuser on Cloud SQL) may create them; without them schema changes show only as new schema versions on a table's next change, and no DDL topic is written".to_owned(),
            Some(format!("as a superuser, in this database:\n{}", install_sql())),
        )
    })
}

async fn free_slots(client: &Client, slot: &str) -> Result<Finding, CatalogError> {
    let max: i64 = setting(client, "max_replication_slots")
        .await?
        .parse()
        .unwrap_or(0);
    let used: i64 = client
        .query_one("SELECT count(*) FROM pg_replication_slots", &[])
        .await?
        .get(0);
    let exists = slot_info(client, slot).await?.is_some();
    Ok(if exists || used < max {
        finding(
            "replication slots",
            CheckStatus::Pass,
            format!("{used} of max_replication_slots = {max} in use"),
            None,
        )
    } else {
        finding(
            "replication slots",
            CheckStatus::Fail,
            format!("all {max} replication slots are in use and slot {slot:?} does not exist"),
            Some("raise max_replication_slots (restart needed) or drop unused slots with pg_drop_replication_slot".to_owned()),
        )
    })
}

async fn free_wal_senders(client: &Client) -> Result<Finding, CatalogError> {
    let max: i64 = setting(client, "max_wal_senders")
        .await?
        .parse()
        .unwrap_or(0);
    let used: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'",
            &[],
        )
        .await?
        .get(0);
    Ok(if used < max {
        finding(
            "wal senders",
            CheckStatus::Pass,
            format!("{used} of max_wal_senders = {max} in use"),
            None,
        )
    } else {
        finding(
            "wal senders",
            CheckStatus::Fail,
            format!("all {max} WAL senders are in use"),
            Some(
                "raise max_wal_senders (restart needed) or stop other replication clients"
                    .to_owned(),
            ),
        )
    })
}

async fn slot_state(client: &Client, slot: &str) -> Result<Finding, CatalogError> {
    let Some(info) = slot_info(client, slot).await? else {
        return Ok(finding(
            "slot",
            CheckStatus::Pass,
            format!("{slot:?} does not exist yet; weir creates it"),
            None,
        ));
    };
    let database: String = client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0);
    let retained = info.retained_wal_bytes.unwrap_or(0);
    let drop_fix =
        format!("drop it (SELECT pg_drop_replication_slot('{slot}')) or choose another slot name");
    Ok(if let Some(problem) = info.unusable_reason(&database) {
        let fix = if info.wal_status.as_deref() == Some("lost") {
            format!("{drop_fix}, then take a new snapshot")
        } else {
            drop_fix
        };
        finding(
            "slot",
            CheckStatus::Fail,
            format!("{slot:?} {problem}"),
            Some(fix),
        )
    } else if retained > RETAINED_WAL_WARN_BYTES {
        finding(
            "slot",
            CheckStatus::Warn,
            format!("{slot:?} holds {} MB of WAL not yet confirmed", retained / (1 << 20)),
            Some("start weir to catch up, or drop the slot if it is no longer used; meanwhile the server keeps the WAL on disk".to_owned()),
        )
    } else {
        let active = if info.active {
            format!(", in use by process {}", info.active_pid.unwrap_or(0))
        } else {
            String::new()
        };
        finding(
            "slot",
            CheckStatus::Pass,
            format!(
                "{slot:?} exists, resumes after {}{active}; holds {} kB of WAL",
                info.confirmed_flush_lsn.unwrap_or_default(),
                retained / 1024
            ),
            None,
        )
    })
}

/// `max_slot_wal_keep_size`: unlimited, a slot whose reader stopped keeps WAL
/// until the disk is full; limited, the server invalidates the slot first.
async fn wal_limit(client: &Client) -> Result<Finding, CatalogError> {
    const CHECK: &str = "wal limit";
    let limit = setting(client, "max_slot_wal_keep_size").await?;
    Ok(if limit == "-1" {
        finding(
            CHECK,
            CheckStatus::Warn,
            "max_slot_wal_keep_size is unlimited: while weir is stopped or far behind, its slot keeps every WAL file, until the server's disk is full".to_owned(),
            Some("ALTER SYSTEM SET max_slot_wal_keep_size = '…GB'; SELECT pg_reload_conf(); (what the disk can spare; past it the server invalidates the slot instead: weir then stops with the reason, or with snapshot: when_needed takes a new snapshot)".to_owned()),
        )
    } else {
        finding(
            CHECK,
            CheckStatus::Pass,
            format!(
                "max_slot_wal_keep_size = {limit} MB: a slot past it is invalidated, not the disk filled"
            ),
            None,
        )
    })
}

/// PostgreSQL 18's `idle_replication_slot_timeout` invalidates a slot nobody
/// read for that long.
async fn idle_slot_timeout(client: &Client) -> Result<Option<Finding>, CatalogError> {
    let timeout: Option<String> = client
        .query_one(
            "SELECT current_setting('idle_replication_slot_timeout', true)",
            &[],
        )
        .await?
        .get(0);
    Ok(timeout
        .filter(|value| !value.is_empty() && value != "0")
        .map(|value| {
            finding(
                "idle slot timeout",
                CheckStatus::Warn,
                format!("idle_replication_slot_timeout is {value}: a weir stopped longer than that finds its slot invalidated, and must take a new snapshot"),
                Some("keep stops shorter, raise it, or set snapshot: when_needed so weir takes the new snapshot by itself".to_owned()),
            )
        }))
}

/// Transactions open for long hold decoding back: a slot is created only once
/// transactions running at that moment end, and a slot's WAL cannot be freed
/// past the oldest transaction it still has to decode.
async fn old_transactions(client: &Client) -> Result<Option<Finding>, CatalogError> {
    let row = client
        .query_one(
            "SELECT count(*), max(extract(epoch FROM now() - xact_start))::float8, \
                    (array_agg(pid ORDER BY xact_start))[1] \
             FROM pg_stat_activity \
             WHERE xact_start < now() - interval '5 minutes' AND pid <> pg_backend_pid() \
               AND backend_xid IS NOT NULL",
            &[],
        )
        .await?;
    let count: i64 = row.get(0);
    if count == 0 {
        return Ok(None);
    }
    let seconds: f64 = row.get::<_, Option<f64>>(1).unwrap_or_default();
    let pid: i32 = row.get::<_, Option<i32>>(2).unwrap_or_default();
    Ok(Some(finding(
        "old transactions",
        CheckStatus::Warn,
        format!(
            "{count} transaction(s) have written and stayed open for over 5 minutes (the oldest, process {pid}, for {} min): a new slot waits for them to end, and WAL since they began stays on disk",
            (seconds / 60.0).round()
        ),
        Some(format!(
            "end them (SELECT pg_terminate_backend({pid}); if it is forgotten), or wait; set idle_in_transaction_session_timeout to keep it from recurring"
        )),
    )))
}

async fn publication(client: &Client, publication: &str) -> Result<Finding, CatalogError> {
    if publication_exists(client, publication).await? {
        return Ok(finding(
            "publication",
            CheckStatus::Pass,
            format!("{publication:?} exists"),
            None,
        ));
    }
    let can_create: bool = client
        .query_one(
            "SELECT rolsuper OR has_database_privilege(current_database(), 'CREATE') FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    Ok(if can_create {
        finding(
            "publication",
            CheckStatus::Pass,
            format!("{publication:?} does not exist yet; weir creates it"),
            None,
        )
    } else {
        finding(
            "publication",
            CheckStatus::Fail,
            format!(
                "{publication:?} does not exist, and this role may not create publications in the database"
            ),
            Some(format!(
                "GRANT CREATE ON DATABASE … TO this role (it must also own the tables), or have the table owner run CREATE PUBLICATION {} FOR TABLE …",
                quote_identifier(publication)
            )),
        )
    })
}

async fn tables(
    client: &Client,
    selectors: &[TableSelector],
) -> Result<Vec<Finding>, CatalogError> {
    let mut findings = Vec::new();
    for selector in selectors {
        let resolved = resolve_tables(client, std::slice::from_ref(selector)).await?;
        if resolved.is_empty() {
            let (status, message, fix) = match selector {
                TableSelector::Table { .. } => (
                    CheckStatus::Fail,
                    format!("{selector} does not exist"),
                    "check the name in `tables` (schema.table), or create the table",
                ),
                TableSelector::Schema(_) | TableSelector::Pattern { .. } => (
                    CheckStatus::Warn,
                    format!("{selector} matches no table yet"),
                    "check the name; tables created later that match are streamed once published (weir adds them to a publication it created)",
                ),
            };
            findings.push(finding("table", status, message, Some(fix.to_owned())));
            continue;
        }
        for (schema, name) in resolved {
            findings.push(table(client, &schema, &name).await?);
        }
        if let TableSelector::Schema(schema) | TableSelector::Pattern { schema, .. } = selector {
            let unlogged: Vec<String> = client
                .query(
                    "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relpersistence = 'u' \
                     ORDER BY 1",
                    &[schema],
                )
                .await?
                .iter()
                .map(|row| row.get::<_, String>(0))
                .filter(|name| selector.matches(schema, name))
                .collect();
            if !unlogged.is_empty() {
                findings.push(finding(
                    "table",
                    CheckStatus::Warn,
                    format!("{selector} matches UNLOGGED tables {unlogged:?}: PostgreSQL writes no WAL for them, so they are left out"),
                    Some("ALTER TABLE … SET LOGGED; for those that should stream".to_owned()),
                ));
            }
        }
    }
    Ok(findings)
}

async fn table(client: &Client, schema: &str, name: &str) -> Result<Finding, CatalogError> {
    let qualified = quote_qualified(schema, name);
    let row = client
        .query_one(
            "SELECT has_table_privilege(c.oid, 'SELECT'), c.relreplident::text, \
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), \
                    c.relpersistence = 'u' \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &name],
        )
        .await?;
    let (select, identity, has_primary_key): (bool, String, bool) =
        (row.get(0), row.get(1), row.get(2));
    let label = format!("{schema}.{name}");
    if row.get::<_, bool>(3) {
        return Ok(finding(
            "table",
            CheckStatus::Fail,
            format!(
                "{label} is UNLOGGED: PostgreSQL writes no WAL for it, so no publication takes it and nothing of it can be streamed"
            ),
            Some(format!(
                "ALTER TABLE {qualified} SET LOGGED; (rewrites the table), or leave it out of `tables`"
            )),
        ));
    }
    if !select {
        return Ok(finding(
            "table",
            CheckStatus::Fail,
            format!("{label}: this role may not SELECT from it (needed for the snapshot)"),
            Some(format!("GRANT SELECT ON {qualified} TO this role;")),
        ));
    }
    let identity_fix = Some(format!(
        "ALTER TABLE {qualified} REPLICA IDENTITY FULL; (or add a primary key)"
    ));
    // What a table without a key means for delivery, said where it is found.
    let keyless = "its messages have no key, so consumers cannot drop the duplicates a crash \
         resends: weir sends them to one partition in commit order (sink.kafka.keyless_partition), \
         and sink.kafka.exactly_once: true delivers each once";
    Ok(match (identity.as_str(), has_primary_key) {
        ("f", false) => finding(
            "table",
            CheckStatus::Pass,
            format!("{label}: REPLICA IDENTITY FULL without a primary key; {keyless}"),
            None,
        ),
        ("d", true) => finding(
            "table",
            CheckStatus::Pass,
            format!("{label}: primary key"),
            None,
        ),
        ("f", _) => finding(
            "table",
            CheckStatus::Pass,
            format!("{label}: REPLICA IDENTITY FULL"),
            None,
        ),
        ("i", _) => finding(
            "table",
            CheckStatus::Pass,
            format!("{label}: REPLICA IDENTITY USING INDEX"),
            None,
        ),
        ("d", false) => finding(
            "table",
            CheckStatus::Warn,
            format!(
                "{label}: no primary key and no replica identity; PostgreSQL will reject its UPDATEs and DELETEs once published, and {keyless}"
            ),
            identity_fix,
        ),
        _ => finding(
            "table",
            CheckStatus::Warn,
            format!("{label}: REPLICA IDENTITY NOTHING; updates and deletes carry no key"),
            identity_fix,
        ),
    })
}
