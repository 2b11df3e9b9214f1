//! `weir snapshot SPEC TABLE…`: asks the pipeline of SPEC to read tables again
//! while it streams (see [`crate::source::snapshot::incremental`]).
//!
//! The request is a logical message in the WAL, so it reaches the pipeline in
//! order with the changes, and a pipeline that is stopped picks it up when it
//! starts. Nothing else is written to the database.

use std::path::Path;

use anyhow::Context as _;

use super::run::RunError;
use crate::config;
use crate::contract::TableSelector;
use crate::source::catalog::resolve_tables;
use crate::source::snapshot::incremental::SnapshotSignal;

/// Checks that SPEC selects every table and that they exist, then writes the
/// request. Returns the tables, as `schema.table`.
pub async fn request(spec: &Path, tables: &[String]) -> Result<Vec<String>, RunError> {
    let config = config::load(spec)?;
    if !config.source.signals {
        return Err(RunError::Invalid(anyhow::anyhow!(
            "the pipeline does not accept snapshot requests: set source.postgres.signals: true in its spec (and restart it)"
        )));
    }
    let mut names = Vec::with_capacity(tables.len());
    for table in tables {
        let selector: TableSelector = table
            .parse()
            .map_err(|e| RunError::Invalid(anyhow::Error::new(e)))?;
        let TableSelector::Table { schema, name } = &selector else {
            return Err(RunError::Invalid(anyhow::anyhow!(
                "{table}: name one table (schema.table), not a whole schema"
            )));
        };
        if !config.source.tables.iter().any(|s| s.matches(schema, name)) {
            return Err(RunError::Invalid(anyhow::anyhow!(
                "{table} is not among the tables the pipeline selects (source.postgres.tables)"
            )));
        }
        let qualified = format!("{schema}.{name}");
        names.push((selector, qualified));
    }
    let client = config
        .source
        .connection
        .connect_control()
        .await
        .context("connecting to PostgreSQL")
        .map_err(RunError::Failed)?;
    let major = crate::source::catalog::server_major_version(&client)
        .await
        .context("asking the server's version")
        .map_err(RunError::Failed)?;
    if major < 14 {
        return Err(RunError::Invalid(anyhow::anyhow!(
            "snapshot requests travel as logical messages, which pgoutput sends from PostgreSQL 14 on; this server is PostgreSQL {major}"
        )));
    }
    for (selector, name) in &names {
        let found = resolve_tables(&client, std::slice::from_ref(selector))
            .await
            .context("looking up the tables")
            .map_err(RunError::Failed)?;
        if found.is_empty() {
            return Err(RunError::Invalid(anyhow::anyhow!(
                "table {name} does not exist"
            )));
        }
    }
    let signal = SnapshotSignal {
        slot: config.source.slot.clone(),
        tables: names.into_iter().map(|(_, name)| name).collect(),
    };
    let sql = signal
        .sql()
        .context("writing the request")
        .map_err(RunError::Failed)?;
    client
        .batch_execute(&sql)
        .await
        .context("writing the request into the WAL")
        .map_err(RunError::Failed)?;
    Ok(signal.tables)
}
