//! Reading a hot standby (PostgreSQL 16+), to take decoding off the primary.
//!
//! A standby decodes its own copy of the WAL from a slot created on it, but takes
//! no writes. So everything weir would write there comes from the primary or is
//! left out: the publication and DDL capture must exist (created on the primary,
//! they reach the standby through the WAL); no heartbeats (the slot advances by
//! the walsender's keepalives); no snapshot requests (their watermarks are
//! writes); no tables added to the publication while streaming; and the slot is
//! no failover slot (PostgreSQL refuses one on a standby).

use tokio_postgres::Client;
use tracing::info;

use super::catalog::{CatalogError, publication_exists, server_major_version};
use super::ddl::{ddl_capture_installed, install_sql};
use super::options::{PostgresSourceConfig, SlotFailover};
use super::postgres::SourceError;
use crate::contract::sql::quote_identifier;

/// Whether the server is a standby, refusing what a standby cannot serve.
///
/// # Errors
///
/// A standby before PostgreSQL 16, a missing publication or DDL capture, or
/// snapshot requests asked for.
pub(super) async fn check(
    control: &Client,
    config: &PostgresSourceConfig,
) -> Result<bool, SourceError> {
    let in_recovery: bool = control
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .map_err(CatalogError::from)?
        .get(0);
    if !in_recovery {
        return Ok(false);
    }
    let refuse = |reason: String| Err(SourceError::Config(reason));
    let major = server_major_version(control).await?;
    if major < 16 {
        return refuse(format!(
            "the server is a standby, and logical decoding on a standby needs PostgreSQL 16 or later (this is {major}): point url at the primary (with several hosts and target_session_attrs=read-write to follow a failover)"
        ));
    }
    if !publication_exists(control, &config.publication).await? {
        return refuse(format!(
            "publication {:?} does not exist, and weir reads a standby, which cannot create it: create it on the primary (CREATE PUBLICATION {} FOR TABLE …); it reaches the standby through the WAL",
            config.publication,
            quote_identifier(&config.publication)
        ));
    }
    if config.ddl_capture && !ddl_capture_installed(control).await? {
        return refuse(format!(
            "source.postgres.ddl is capture, and weir reads a standby, which cannot install the event trigger: run this on the primary as a superuser:\n{}",
            install_sql()
        ));
    }
    if config.signals {
        return refuse(
            "source.postgres.signals is on, but a snapshot request writes watermarks into the WAL, which a standby cannot: read the primary, or set signals: false".to_owned(),
        );
    }
    info!(
        publication = %config.publication,
        "Reading a standby: no heartbeats, no tables added while streaming, and the slot is no failover slot."
    );
    Ok(true)
}

/// Whether the slot is a failover slot when weir reads a standby: never, and
/// `on` is refused.
///
/// # Errors
///
/// `slot_failover: on`.
pub(super) fn failover(asked: SlotFailover) -> Result<bool, SourceError> {
    match asked {
        SlotFailover::On => Err(SourceError::Config(
            "source.postgres.slot_failover is on, but weir reads a standby, and PostgreSQL keeps no failover slot created on a standby: set it to auto or off".to_owned(),
        )),
        SlotFailover::Auto | SlotFailover::Off => Ok(false),
    }
}
