//! Precheck of what a failover needs: whether weir's slot will exist, usable, on a
//! promoted standby (PostgreSQL 17's failover slots), and whether the primary
//! could send weir changes that standby never received.
//!
//! PostgreSQL 17 copies a logical slot created with `FAILOVER` to standbys that
//! run with `sync_replication_slots = on`, stream through a physical slot
//! (`primary_slot_name`) with `hot_standby_feedback = on`, and connect with a
//! `dbname` in `primary_conninfo`. `synchronized_standby_slots` on the primary
//! holds logical decoding back until those standbys have the WAL, so nothing
//! reaches Kafka that a promoted standby lacks. The standby's own settings are
//! read from the other hosts of a multi-host URL, when it names them.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::config::Host;

use super::catalog::{CatalogError, server_major_version, slot_info};
use super::connect::PgConnectOptions;
use super::options::SlotFailover;
use super::precheck::{CheckStatus, Finding, setting};
use crate::contract::sql::quote_literal;

const CHECK: &str = "failover";

/// How long the check waits for another host of the URL.
const STANDBY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The failover findings for weir's `slot` on the server `client` is connected
/// to, reading standbys among the other hosts of `connection`.
///
/// # Errors
///
/// Only when the primary's catalog cannot be queried.
pub async fn failover_precheck(
    client: &Client,
    connection: &PgConnectOptions,
    slot: &str,
    slot_failover: SlotFailover,
) -> Result<Vec<Finding>, CatalogError> {
    let major = server_major_version(client).await?;
    let standbys = physical_standbys(client).await?;
    let mut findings = Vec::new();
    match slot_failover.resolve(major) {
        Err(reason) => {
            findings.push(fail(reason, "set source.postgres.slot_failover: auto"));
            return Ok(findings);
        }
        Ok(false) if major < 17 => {
            findings.push(if standbys.is_empty() {
                pass(format!(
                    "no standby streams from this server; PostgreSQL {major} keeps logical slots on the primary only"
                ))
            } else {
                warn(
                    format!(
                        "PostgreSQL {major} keeps logical slots on the primary only: after a failover to a standby ({}) weir's slot is missing there, and streaming starts again from a new slot and snapshot",
                        names(&standbys)
                    ),
                    "PostgreSQL 17 or later copies weir's slot to standbys (failover slots); before, recreate the pipeline's slot after a failover, with snapshot: initial or when_needed",
                )
            });
            return Ok(findings);
        }
        Ok(false) => {
            findings.push(pass(
                "source.postgres.slot_failover is off: weir's slot stays on the primary".to_owned(),
            ));
            return Ok(findings);
        }
        Ok(true) => {}
    }
    let slot_is_failover = slot_info(client, slot)
        .await?
        .is_none_or(|info| info.failover != Some(false));
    findings.push(pass(if slot_is_failover {
        format!("{slot:?} is (or is created as) a failover slot")
    } else {
        format!("{slot:?} becomes a failover slot when weir starts")
    }));
    let waited_for = setting(client, "synchronized_standby_slots").await?;
    let waited_for: Vec<String> = waited_for
        .split(',')
        .map(|name| name.trim().trim_matches('"').to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    let missing: Vec<&String> = waited_for
        .iter()
        .filter(|name| !standbys.iter().any(|s| &s.slot == *name))
        .collect();
    if !missing.is_empty() {
        findings.push(fail(
            format!(
                "synchronized_standby_slots names {missing:?}, which are no physical slots of this server: logical decoding waits for them, so weir receives nothing"
            ),
            "ALTER SYSTEM SET synchronized_standby_slots = '<the physical slots of the standbys that may be promoted>'; SELECT pg_reload_conf();",
        ));
    } else if waited_for.is_empty() && !standbys.is_empty() {
        findings.push(warn(
            format!(
                "synchronized_standby_slots is empty: weir may receive (and Kafka keep) changes that standby {} has not received yet; promoted, it lacks them",
                names(&standbys)
            ),
            &format!(
                "ALTER SYSTEM SET synchronized_standby_slots = {}; SELECT pg_reload_conf();",
                quote_literal(
                    &standbys
                        .iter()
                        .map(|s| s.slot.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                )
            ),
        ));
    }
    for standby in &standbys {
        if !standby.active {
            findings.push(warn(
                format!("standby slot {:?} is not in use: no standby streams through it, and its WAL piles up on this server", standby.slot),
                "start the standby (primary_slot_name names this slot), or drop the slot",
            ));
        } else if !standby.feedback {
            findings.push(warn(
                format!(
                    "the standby on slot {:?} sends no hot_standby_feedback: the rows its copy of weir's slot needs may be vacuumed away, which invalidates the copy",
                    standby.slot
                ),
                "on the standby: ALTER SYSTEM SET hot_standby_feedback = on; SELECT pg_reload_conf();",
            ));
        }
    }
    if standbys.is_empty() {
        findings.push(pass(
            "no standby streams through a physical slot of this server; weir's slot has nowhere to be copied to yet".to_owned(),
        ));
    }
    for index in 1..connection.config.get_hosts().len() {
        findings.push(other_host(connection, index, slot).await);
    }
    Ok(findings)
}

/// A physical slot of the primary, as standbys use them.
struct PhysicalStandby {
    slot: String,
    active: bool,
    /// The standby reports an xmin: `hot_standby_feedback` is on.
    feedback: bool,
}

async fn physical_standbys(client: &Client) -> Result<Vec<PhysicalStandby>, CatalogError> {
    let rows = client
        .query(
            "SELECT s.slot_name::text, s.active, r.backend_xmin IS NOT NULL OR s.xmin IS NOT NULL \
             FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid \
             WHERE s.slot_type = 'physical' ORDER BY 1",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| PhysicalStandby {
            slot: row.get(0),
            active: row.get(1),
            feedback: row.get(2),
        })
        .collect())
}

/// What a standby named in the URL needs to keep a usable copy of `slot`.
async fn other_host(connection: &PgConnectOptions, index: usize, slot: &str) -> Finding {
    let options = single_host(connection, index);
    let address = options.host_address(0);
    let client = match options.connect_control().await {
        Ok(client) => client,
        Err(error) => {
            return warn(
                format!(
                    "{address} (in the URL) does not answer: {}",
                    crate::redact::error_chain(&error)
                ),
                "a host of the URL that is down cannot take over; check it before relying on it",
            );
        }
    };
    match standby_state(&client, slot).await {
        Ok(None) => pass(format!("{address} (in the URL) is a primary too")),
        Ok(Some(problems)) if problems.is_empty() => pass(format!(
            "standby {address} keeps a synchronised copy of {slot:?}"
        )),
        Ok(Some(problems)) => warn(
            format!(
                "standby {address} will not have a usable copy of {slot:?}: {}",
                problems
                    .iter()
                    .map(|(problem, _)| problem.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            &format!(
                "on {address}: {}",
                problems
                    .iter()
                    .filter_map(|(_, fix)| fix.as_deref())
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        ),
        Err(error) => warn(
            format!("could not read the settings of {address}: {error}"),
            "check that the role may connect to it",
        ),
    }
}

/// `None` for a server not in recovery; else what keeps it from holding a
/// usable copy of `slot`, each with its fix.
async fn standby_state(
    client: &Client,
    slot: &str,
) -> Result<Option<Vec<(String, Option<String>)>>, tokio_postgres::Error> {
    let in_recovery: bool = client
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await?
        .get(0);
    if !in_recovery {
        return Ok(None);
    }
    let row = client
        .query_one(
            "SELECT current_setting('sync_replication_slots', true), \
                    current_setting('hot_standby_feedback'), \
                    current_setting('primary_slot_name'), \
                    current_setting('primary_conninfo') ~ 'dbname=', \
                    (SELECT synced FROM pg_replication_slots WHERE slot_name = $1)",
            &[&slot],
        )
        .await?;
    let mut problems = Vec::new();
    let reload = "SELECT pg_reload_conf();";
    if row.get::<_, Option<String>>(0).as_deref() != Some("on") {
        problems.push((
            "sync_replication_slots is off".to_owned(),
            Some(format!(
                "ALTER SYSTEM SET sync_replication_slots = on; {reload}"
            )),
        ));
    }
    if row.get::<_, String>(1) != "on" {
        problems.push((
            "hot_standby_feedback is off".to_owned(),
            Some(format!(
                "ALTER SYSTEM SET hot_standby_feedback = on; {reload}"
            )),
        ));
    }
    if row.get::<_, String>(2).is_empty() {
        problems.push((
            "primary_slot_name is empty".to_owned(),
            Some(format!(
                "ALTER SYSTEM SET primary_slot_name = '<its physical slot on the primary>'; {reload}"
            )),
        ));
    }
    if !row.get::<_, bool>(3) {
        problems.push((
            "primary_conninfo names no dbname (the slot synchronisation connects to a database)"
                .to_owned(),
            Some(format!(
                "ALTER SYSTEM SET primary_conninfo = '… dbname=postgres'; {reload}"
            )),
        ));
    }
    if problems.is_empty() && row.get::<_, Option<bool>>(4) != Some(true) {
        problems.push((
            "it holds no synchronised copy yet (the copy appears once weir created the slot and the standby caught up)".to_owned(),
            None,
        ));
    }
    Ok(Some(problems))
}

/// `connection` reduced to its `index`th host (with that host's port), without
/// `target_session_attrs`, so a standby can be reached.
fn single_host(connection: &PgConnectOptions, index: usize) -> PgConnectOptions {
    let base = &connection.config;
    let mut config = tokio_postgres::Config::new();
    if let Some(user) = base.get_user() {
        config.user(user);
    }
    if let Some(password) = base.get_password() {
        config.password(password);
    }
    if let Some(database) = base.get_dbname() {
        config.dbname(database);
    }
    config.application_name("weir check");
    config.ssl_mode(base.get_ssl_mode());
    config.connect_timeout(STANDBY_CONNECT_TIMEOUT);
    match base.get_hosts().get(index) {
        Some(Host::Tcp(name)) => {
            config.host(name);
        }
        Some(Host::Unix(path)) => {
            config.host_path(path);
        }
        None => {}
    }
    config.port(connection.host_port(index));
    PgConnectOptions {
        config,
        tls_mode: connection.tls_mode,
        root_cert: connection.root_cert.clone(),
    }
}

fn names(standbys: &[PhysicalStandby]) -> String {
    standbys
        .iter()
        .map(|s| format!("slot {:?}", s.slot))
        .collect::<Vec<_>>()
        .join(", ")
}

fn pass(message: String) -> Finding {
    Finding {
        check: CHECK,
        status: CheckStatus::Pass,
        message,
        fix: None,
    }
}

fn warn(message: String, fix: &str) -> Finding {
    Finding {
        check: CHECK,
        status: CheckStatus::Warn,
        message,
        fix: Some(fix.to_owned()),
    }
}

fn fail(message: String, fix: &str) -> Finding {
    Finding {
        check: CHECK,
        status: CheckStatus::Fail,
        message,
        fix: Some(fix.to_owned()),
    }
}
