//! The publication: what pgoutput sends. weir creates it for the selected
//! tables when it is missing, marks it as its own, and from then on keeps it in
//! step with `tables`: at every start (a spec that gained or lost tables changes
//! it, the slot stays) and, while streaming, when a table matching a schema or a
//! pattern appears. A publication weir did not create is left as it is: it may
//! be shared, and changing it is its owner's decision.
//!
//! Tables added to a running pipeline's publication had rows before they were
//! published, which no change will carry: the same transaction that adds them
//! writes a [`TABLES_ADDED_PREFIX`] message into the WAL, and the session reads
//! their rows with the incremental snapshot when the stream reaches it, so the
//! snapshot starts exactly where their streaming does.

use std::collections::BTreeSet;

use tokio_postgres::Client;
use tracing::info;

use super::catalog::{CatalogError, publication_exists, resolve_tables, server_major_version};
use super::snapshot::incremental::SnapshotSignal;
use crate::contract::TableSelector;
use crate::contract::sql::{quote_identifier, quote_literal, quote_qualified};

/// The comment that marks a publication as weir's to keep in step.
pub const OWNED_COMMENT: &str = "weir: created for a pipeline, which adds and removes its tables";
/// Prefix of the message that asks the pipeline of a slot to snapshot tables
/// just added to its publication (transactional, with the change).
pub const TABLES_ADDED_PREFIX: &str = "weir_tables_added";

/// What [`ensure_publication`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicationState {
    /// The publication was created for the selected tables.
    Created,
    /// It existed and is weir's: tables (`schema.table`) and schemas
    /// (`schema.*`) were added to it and removed from it to match the selection.
    Synced {
        /// What was added.
        added: Vec<String>,
        /// What was removed.
        removed: Vec<String>,
    },
    /// It existed and is not weir's; `missing` lists selected tables it does
    /// not publish.
    Existing {
        /// Selected tables the publication does not publish.
        missing: Vec<String>,
    },
}

/// Creates the publication for `tables` when it is missing (with
/// `publish_via_partition_root`, so a partitioned table's changes arrive under its
/// own name), or brings one weir created in step with `tables`, or reports what
/// a foreign one lacks. With `snapshot_slot`, tables added to weir's publication
/// are announced to that slot's pipeline for an incremental snapshot.
pub async fn ensure_publication(
    client: &Client,
    publication: &str,
    tables: &[TableSelector],
) -> Result<PublicationState, CatalogError> {
    sync_publication(client, publication, tables, None).await
}

/// [`ensure_publication`], announcing added tables to `snapshot_slot`'s
/// pipeline when given.
pub async fn sync_publication(
    client: &Client,
    publication: &str,
    tables: &[TableSelector],
    snapshot_slot: Option<&str>,
) -> Result<PublicationState, CatalogError> {
    let by_schema = server_major_version(client).await? >= 15;
    if !publication_exists(client, publication).await? {
        create(client, publication, tables, by_schema).await?;
        return Ok(PublicationState::Created);
    }
    if !is_owned(client, publication).await? {
        let published = published_tables(client, publication).await?;
        let missing = resolve_tables(client, tables)
            .await?
            .into_iter()
            .filter(|table| !published.contains(table))
            .map(|(schema, name)| format!("{schema}.{name}"))
            .collect();
        return Ok(PublicationState::Existing { missing });
    }
    let wanted = Members::wanted(client, tables, by_schema).await?;
    let current = Members::current(client, publication, by_schema).await?;
    let mut clauses = Vec::new();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut new_tables = Vec::new();
    for schema in wanted.schemas.difference(&current.schemas) {
        clauses.push(format!("ADD TABLES IN SCHEMA {}", quote_identifier(schema)));
        added.push(format!("{schema}.*"));
        new_tables.extend(resolve_tables(client, &[TableSelector::Schema(schema.clone())]).await?);
    }
    for schema in current.schemas.difference(&wanted.schemas) {
        clauses.push(format!(
            "DROP TABLES IN SCHEMA {}",
            quote_identifier(schema)
        ));
        removed.push(format!("{schema}.*"));
    }
    for (schema, name) in wanted.tables.difference(&current.tables) {
        clauses.push(format!("ADD TABLE {}", quote_qualified(schema, name)));
        added.push(format!("{schema}.{name}"));
        new_tables.push((schema.clone(), name.clone()));
    }
    for (schema, name) in current.tables.difference(&wanted.tables) {
        clauses.push(format!("DROP TABLE {}", quote_qualified(schema, name)));
        removed.push(format!("{schema}.{name}"));
    }
    if clauses.is_empty() {
        return Ok(PublicationState::Synced { added, removed });
    }
    // One statement per clause: ADD and DROP of TABLES IN SCHEMA cannot share one
    // before PostgreSQL 16. All in one transaction with the announcement.
    let mut sql = String::from("BEGIN;\n");
    for clause in &clauses {
        sql.push_str(&format!(
            "ALTER PUBLICATION {} {clause};\n",
            quote_identifier(publication)
        ));
    }
    if let Some(slot) = snapshot_slot.filter(|_| !new_tables.is_empty()) {
        let signal = SnapshotSignal {
            slot: slot.to_owned(),
            tables: new_tables
                .iter()
                .map(|(schema, name)| format!("{schema}.{name}"))
                .collect(),
        };
        let content = serde_json::to_string(&signal).unwrap_or_default();
        sql.push_str(&format!(
            "SELECT pg_logical_emit_message(true, '{TABLES_ADDED_PREFIX}', {});\n",
            quote_literal(&content)
        ));
    }
    sql.push_str("COMMIT;");
    if let Err(error) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(error.into());
    }
    info!(
        publication,
        ?added,
        ?removed,
        "Brought the publication in step with the selected tables."
    );
    Ok(PublicationState::Synced { added, removed })
}

/// A publication's members: whole schemas (PostgreSQL 15+) and single tables.
#[derive(Debug, Default)]
struct Members {
    schemas: BTreeSet<String>,
    tables: BTreeSet<(String, String)>,
}

impl Members {
    /// What `tables` asks to publish now: schemas as schemas where the server
    /// publishes them so (they then take tables created later by themselves),
    /// single tables and the tables patterns match now.
    async fn wanted(
        client: &Client,
        tables: &[TableSelector],
        by_schema: bool,
    ) -> Result<Members, CatalogError> {
        let mut members = Members::default();
        for selector in tables {
            if let (TableSelector::Schema(schema), true) = (selector, by_schema) {
                members.schemas.insert(schema.clone());
            }
        }
        for table in resolve_tables(client, tables).await? {
            if !members.schemas.contains(&table.0) {
                members.tables.insert(table);
            }
        }
        Ok(members)
    }

    /// What the publication publishes.
    async fn current(
        client: &Client,
        publication: &str,
        by_schema: bool,
    ) -> Result<Members, CatalogError> {
        let tables = client
            .query(
                "SELECT n.nspname::text, c.relname::text FROM pg_publication_rel r \
                 JOIN pg_publication p ON p.oid = r.prpubid \
                 JOIN pg_class c ON c.oid = r.prrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.pubname = $1",
                &[&publication],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let schemas = if by_schema {
            client
                .query(
                    "SELECT n.nspname::text FROM pg_publication_namespace s \
                     JOIN pg_publication p ON p.oid = s.pnpubid \
                     JOIN pg_namespace n ON n.oid = s.pnnspid WHERE p.pubname = $1",
                    &[&publication],
                )
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect()
        } else {
            BTreeSet::new()
        };
        Ok(Members { schemas, tables })
    }
}

async fn create(
    client: &Client,
    publication: &str,
    tables: &[TableSelector],
    by_schema: bool,
) -> Result<(), CatalogError> {
    let wanted = Members::wanted(client, tables, by_schema).await?;
    let mut targets: Vec<String> = wanted
        .schemas
        .iter()
        .map(|schema| format!("TABLES IN SCHEMA {}", quote_identifier(schema)))
        .collect();
    if !wanted.tables.is_empty() {
        let names: Vec<String> = wanted
            .tables
            .iter()
            .map(|(schema, name)| quote_qualified(schema, name))
            .collect();
        targets.push(format!("TABLE {}", names.join(", ")));
    }
    if targets.is_empty() {
        // Before PostgreSQL 15 a publication lists tables only, and a pattern
        // or a schema that matches none yet leaves it nothing to list.
        return Err(CatalogError::NoTables(publication.to_owned()));
    }
    let name = quote_identifier(publication);
    let sql = format!(
        "BEGIN;\nCREATE PUBLICATION {name} FOR {} WITH (publish_via_partition_root = true);\n\
         COMMENT ON PUBLICATION {name} IS {};\nCOMMIT;",
        targets.join(", "),
        quote_literal(OWNED_COMMENT)
    );
    if let Err(error) = client.batch_execute(&sql).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(error.into());
    }
    info!(publication, targets = targets.len(), "Created publication.");
    Ok(())
}

/// Whether weir created the publication (its comment says so).
async fn is_owned(client: &Client, publication: &str) -> Result<bool, CatalogError> {
    let comment: Option<String> = client
        .query_opt(
            "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?
        .and_then(|row| row.get(0));
    Ok(comment.as_deref() == Some(OWNED_COMMENT))
}

/// The tables a publication publishes now, as pgoutput sees them.
async fn published_tables(
    client: &Client,
    publication: &str,
) -> Result<BTreeSet<(String, String)>, CatalogError> {
    Ok(client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}
