//! Reading back TOASTed values an update left unchanged (`unchanged_toast: fetch`).
//!
//! PostgreSQL writes a TOASTed value into the WAL only when it changes; pgoutput
//! marks it unchanged (`u`) otherwise. Under `REPLICA IDENTITY FULL` the old image
//! holds it and the batch builder takes it from there. Under the other identities
//! weir reads it from the table by primary key on its control connection, and the
//! update goes on as if PostgreSQL had sent the value.
//!
//! The value read is the row's value *now*, not at the update's commit: a later
//! transaction may have changed it already. That later change is in the stream
//! too, after this one, so a consumer applying the changes in order ends with the
//! table; it may only see the later value a little early. A row that is gone (deleted
//! or its key changed since) keeps the value unavailable, and its later delete or key
//! change follows. Updates of a transaction streamed while it runs are not looked
//! up: the table does not show their own changes before the commit.

use std::collections::HashMap;

use tokio_postgres::{Client, Statement};
use tracing::warn;

use super::catalog::CatalogError;
use super::pgoutput::{OldTuple, TupleValue, TupleWriter, Update};
use super::replication::session_settings_sql;
use crate::batch::TableSchema;
use crate::contract::sql::{output_text, quote_identifier, quote_qualified};
use crate::lsn::Lsn;

/// The statements of one session's look-ups, and whether its settings are made.
#[derive(Default)]
pub(super) struct UnchangedToastReader {
    /// By table, schema version and the columns read.
    statements: HashMap<(u32, u32, Vec<usize>), Statement>,
    /// The session's text forms are pgoutput's (set once per control connection).
    settings_made: bool,
}

impl UnchangedToastReader {
    /// Whether `update` leaves a TOASTed value out that the table can give: no full
    /// old image, not streamed while its transaction runs, some value unchanged.
    pub(super) fn wanted(update: &Update) -> bool {
        update.xid.is_none()
            && !matches!(update.old, Some(OldTuple::Full(_)))
            && update
                .new
                .values()
                .any(|value| matches!(value, TupleValue::UnchangedToast))
    }

    /// `update` with its unchanged TOASTed values read from `table`, or `None` when
    /// they cannot be (no primary key, the row is gone, or the table cannot be read
    /// as it was: logged).
    ///
    /// # Errors
    ///
    /// The control connection failed.
    pub(super) async fn fill(
        &mut self,
        control: &Client,
        table: &TableSchema,
        update: &Update,
        lsn: Lsn,
    ) -> Result<Option<Update>, CatalogError> {
        let values: Vec<TupleValue<'_>> = update.new.values().collect();
        let Some(key) = key_positions(table) else {
            return Ok(None);
        };
        let key_values: Option<Vec<&[u8]>> = key
            .iter()
            .map(|&position| match values.get(position) {
                Some(TupleValue::Text(text)) => Some(*text),
                _ => None,
            })
            .collect();
        let Some(key_values) = key_values else {
            return Ok(None);
        };
        let missing: Vec<usize> = values
            .iter()
            .enumerate()
            .filter(|(_, value)| matches!(value, TupleValue::UnchangedToast))
            .map(|(position, _)| position)
            .collect();
        if !self.settings_made {
            control.batch_execute(&session_settings_sql()).await?;
            self.settings_made = true;
        }
        let statement_key = (table.relation_oid, table.version, missing.clone());
        let statement = match self.statements.get(&statement_key) {
            Some(statement) => statement.clone(),
            None => match control.prepare(&select(table, &key, &missing)).await {
                Ok(statement) => {
                    self.statements.insert(statement_key, statement.clone());
                    statement
                }
                Err(error) => return unreadable(table, lsn, error),
            },
        };
        let key_object = key_json(table, &key, &key_values);
        let row = match control.query_opt(&statement, &[&key_object]).await {
            Ok(Some(row)) => row,
            Ok(None) => return Ok(None),
            Err(error) => return unreadable(table, lsn, error),
        };
        let mut read: Vec<Option<String>> = Vec::with_capacity(missing.len());
        for index in 0..missing.len() {
            read.push(row.try_get(index)?);
        }
        let mut writer = TupleWriter::default();
        let mut fetched = missing.iter().zip(&read).peekable();
        for (position, value) in values.iter().enumerate() {
            match value {
                TupleValue::Null => writer.null(),
                TupleValue::Text(text) => writer.text(text),
                TupleValue::Binary(bytes) => writer.binary(bytes),
                TupleValue::UnchangedToast => {
                    match fetched.next_if(|(missing, _)| **missing == position) {
                        Some((_, Some(text))) => writer.text(text.as_bytes()),
                        Some((_, None)) => writer.null(),
                        None => writer.unchanged_toast(),
                    }
                }
            }
        }
        Ok(Some(Update {
            xid: update.xid,
            relation: update.relation,
            old: update.old.clone(),
            new: writer.finish(),
        }))
    }
}

/// The positions of the table's primary key columns; `None` without one.
fn key_positions(table: &TableSchema) -> Option<Vec<usize>> {
    if table.primary_key.is_empty() {
        return None;
    }
    table
        .primary_key
        .iter()
        .map(|field| table.columns.iter().position(|c| &c.field_name == field))
        .collect()
}

/// `SELECT` of the `missing` columns' text of the row whose key a JSON object of
/// text values gives. `json_populate_record` turns each text into the key column's
/// type with that type's input function, so no type name is written here and the
/// comparison can use the key's index.
fn select(table: &TableSchema, key: &[usize], missing: &[usize]) -> String {
    let name = quote_qualified(&table.namespace, &table.name);
    let column = |position: usize| quote_identifier(&table.columns[position].name);
    let read: Vec<String> = missing.iter().map(|&p| output_text(&column(p))).collect();
    let key_columns: Vec<String> = key.iter().map(|&p| column(p)).collect();
    let key_values: Vec<String> = key.iter().map(|&p| format!("k.{}", column(p))).collect();
    format!(
        "SELECT {} FROM {name} WHERE ({}) = (SELECT {} FROM json_populate_record(NULL::{name}, $1::text::json) k)",
        read.join(", "),
        key_columns.join(", "),
        key_values.join(", "),
    )
}

/// The key's values as a JSON object of text, by column name.
fn key_json(table: &TableSchema, key: &[usize], values: &[&[u8]]) -> String {
    let object: serde_json::Map<String, serde_json::Value> = key
        .iter()
        .zip(values)
        .map(|(&position, value)| {
            (
                table.columns[position].name.clone(),
                serde_json::Value::from(String::from_utf8_lossy(value).into_owned()),
            )
        })
        .collect();
    serde_json::Value::Object(object).to_string()
}

/// A look-up the server refused (the table dropped or altered since the update, no
/// privilege): the values stay unavailable; a broken connection is an error.
fn unreadable(
    table: &TableSchema,
    lsn: Lsn,
    error: tokio_postgres::Error,
) -> Result<Option<Update>, CatalogError> {
    if error.as_db_error().is_none() {
        return Err(error.into());
    }
    warn!(
        table = %format!("{}.{}", table.namespace, table.name),
        %lsn,
        %error,
        "Could not read the TOASTed values an update left unchanged; they stay unavailable (the placeholder)."
    );
    Ok(None)
}
