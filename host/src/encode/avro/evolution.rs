//! What weir does when the Schema Registry refuses a table's new schema.
//!
//! A new schema version is registered before the first row that needs it is
//! written; the registry checks it against the subject's compatibility level
//! (Confluent's default is BACKWARD). A compatible one becomes the subject's
//! next version. An incompatible one follows `sink.kafka.schema_change`:
//!
//! - `fail` (default): the pipeline stops before any row of the new schema is
//!   sent, naming the table, the columns that changed and the level, so nothing
//!   past the change is confirmed to PostgreSQL;
//! - `new_subject`: the schema is registered under `<subject>-v2` (`-v3`, … when
//!   that refuses it too) and the pipeline goes on. Consumers find schemas by the
//!   id in each message, so they read on; the new subject's history starts with
//!   this schema.

use std::collections::HashMap;

use serde_json::Value as Json;
use tracing::warn;

use super::registry::{RegistryError, SchemaRegistry};
use super::schema::{Aliases, avro_name};
use crate::contract::SchemaChange;
use crate::encode::EncodeError;

/// `sink.kafka.schema_change`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SchemaChangePolicy {
    /// Stop, naming what changed.
    #[default]
    Fail,
    /// Register under a new subject and go on.
    NewSubject,
}

/// How many new subjects `new_subject` tries before it gives up.
const MAX_SUBJECT_SUFFIX: u32 = 1000;

/// Registers schemas under their subjects, applying the policy on a refusal.
#[derive(Debug, Default)]
pub(crate) struct Evolution {
    policy: SchemaChangePolicy,
    /// The subject each base subject (`<topic>-value`) moved on to.
    moved: HashMap<String, String>,
}

impl Evolution {
    pub(crate) fn new(policy: SchemaChangePolicy) -> Self {
        Self {
            policy,
            moved: HashMap::new(),
        }
    }

    /// The id of `schema` under `subject` (or the subject it moved on to), for
    /// table `table`.
    pub(crate) fn register(
        &mut self,
        registry: &mut SchemaRegistry,
        subject: &str,
        schema: &str,
        table: &str,
    ) -> Result<u32, EncodeError> {
        let current = self
            .moved
            .get(subject)
            .map_or(subject, String::as_str)
            .to_owned();
        let refusal = match registry.register(&current, schema) {
            Ok(id) => return Ok(id),
            Err(RegistryError::Incompatible { message, .. }) => message,
            Err(error) => return Err(error.into()),
        };
        if self.policy == SchemaChangePolicy::Fail {
            return Err(incompatible(registry, &current, schema, table, refusal));
        }
        let first = current
            .strip_prefix(subject)
            .and_then(|rest| rest.strip_prefix("-v"))
            .and_then(|n| n.parse::<u32>().ok())
            .map_or(2, |n| n + 1);
        for n in first..first + MAX_SUBJECT_SUFFIX {
            let candidate = format!("{subject}-v{n}");
            match registry.register(&candidate, schema) {
                Ok(id) => {
                    warn!(
                        table,
                        refused_by = %current,
                        subject = %candidate,
                        "The registry refused the table's new schema as incompatible; registered it under a new subject (sink.kafka.schema_change: new_subject). Consumers read on by schema id."
                    );
                    self.moved.insert(subject.to_owned(), candidate);
                    return Ok(id);
                }
                Err(RegistryError::Incompatible { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(incompatible(registry, &current, schema, table, refusal))
    }
}

/// Renamed columns, for Avro aliases: a field renamed with its earlier name as
/// an alias reads data written under the earlier name, which is what keeps a
/// rename BACKWARD compatible (for a required column, without it the new field
/// has no default and no writer field to read).
///
/// A rename is known from captured DDL (`source.postgres.ddl: capture`): the
/// event names the renamed column's position, and its earlier name is the name
/// at the same place before, when nothing else about the columns changed. The
/// columns before come from the last captured statement, else from the subject's
/// latest registered schema, whose aliases are carried on too.
#[derive(Debug, Default)]
pub(crate) struct Renames {
    /// Per `schema.table`: its user columns (Avro names) as last known.
    columns: HashMap<String, Vec<String>>,
    /// Per `schema.table`: current column name → earlier names.
    aliases: HashMap<String, Aliases>,
    /// Tables whose subject's history was read.
    seeded: std::collections::HashSet<String>,
}

static NO_ALIASES: std::sync::LazyLock<Aliases> = std::sync::LazyLock::new(Aliases::new);

impl Renames {
    /// Reads what the subject's latest schema knows of `table` (its columns and
    /// their aliases), once per table and process.
    pub(crate) fn seed(&mut self, table: &str, registry: &SchemaRegistry, subject: &str) {
        if !self.seeded.insert(table.to_owned()) {
            return;
        }
        let Ok(Some(latest)) = registry.latest(subject) else {
            return;
        };
        let Some(fields) = row_field_objects(&latest) else {
            return;
        };
        let aliases = self.aliases.entry(table.to_owned()).or_default();
        for field in &fields {
            let (Some(name), Some(earlier)) = (field["name"].as_str(), field["aliases"].as_array())
            else {
                continue;
            };
            let earlier: Vec<String> = earlier
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            aliases.entry(name.to_owned()).or_insert(earlier);
        }
        self.columns.entry(table.to_owned()).or_insert_with(|| {
            fields
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        });
    }

    /// The columns of a schema registered for `table`, when nothing captured
    /// told of them yet: the state a first rename is compared with.
    pub(crate) fn registered(&mut self, table: &str, columns: impl FnOnce() -> Vec<String>) {
        self.columns.entry(table.to_owned()).or_insert_with(columns);
    }

    /// A captured statement on a table: its columns after it, and a rename.
    pub(crate) fn schema_change(&mut self, change: &SchemaChange) {
        let table = change.table_name();
        let Some(columns) = &change.command.columns else {
            // Dropped: a table created again under the name starts afresh.
            self.columns.remove(&table);
            self.aliases.remove(&table);
            return;
        };
        let after: Vec<String> = columns.iter().map(|c| avro_name(&c.name)).collect();
        if let (Some((index, _)), Some(before)) =
            (change.renamed_column(), self.columns.get(&table))
            && before.len() == after.len()
            && before
                .iter()
                .zip(&after)
                .enumerate()
                .all(|(i, (b, a))| (i == index) != (b == a))
        {
            let aliases = self.aliases.entry(table.clone()).or_default();
            let mut earlier = aliases.remove(&before[index]).unwrap_or_default();
            earlier.push(before[index].clone());
            earlier.retain(|name| *name != after[index]);
            // Aliases are keyed by the column's PostgreSQL name.
            if let Some((_, name)) = change.renamed_column() {
                aliases.insert(name.to_owned(), earlier);
            }
        }
        self.columns.insert(table, after);
    }

    /// The aliases of `table`'s columns.
    pub(crate) fn aliases(&self, table: &str) -> &Aliases {
        self.aliases.get(table).unwrap_or(&NO_ALIASES)
    }
}

/// The refusal, with what changed and the level that refused it.
fn incompatible(
    registry: &SchemaRegistry,
    subject: &str,
    schema: &str,
    table: &str,
    reasons: String,
) -> EncodeError {
    let changes = match registry.latest(subject) {
        Ok(Some(latest)) => describe_change(&latest, schema),
        _ => Vec::new(),
    };
    EncodeError::Incompatible {
        table: table.to_owned(),
        subject: subject.to_owned(),
        level: registry
            .compatibility(subject)
            .unwrap_or_else(|| "unknown".to_owned()),
        changes: if changes.is_empty() {
            "the schema changed".to_owned()
        } else {
            changes.join("; ")
        },
        reasons,
    }
}

/// What changed between two schemas of a table, column by column: the fields of
/// the row record (an envelope's `before`, or the record itself for a key).
pub(crate) fn describe_change(old: &str, new: &str) -> Vec<String> {
    let (Some(old), Some(new)) = (row_fields(old), row_fields(new)) else {
        return Vec::new();
    };
    let mut changes = Vec::new();
    for (name, old_type) in &old {
        match new.iter().find(|(n, _)| n == name) {
            None => changes.push(format!("column {name} dropped")),
            Some((_, new_type)) if new_type != old_type => changes.push(format!(
                "column {name} changed from {} to {}",
                type_text(old_type),
                type_text(new_type)
            )),
            Some(_) => {}
        }
    }
    for (name, new_type) in &new {
        if !old.iter().any(|(n, _)| n == name) {
            let optional = matches!(new_type, Json::Array(branches) if branches.first() == Some(&Json::from("null")));
            changes.push(format!(
                "column {name} added as {}{}",
                type_text(new_type),
                if optional {
                    ""
                } else {
                    " (required, without a default)"
                }
            ));
        }
    }
    changes
}

/// (name, type) of the row record's fields.
fn row_fields(schema: &str) -> Option<Vec<(String, Json)>> {
    Some(
        row_field_objects(schema)?
            .iter()
            .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["type"].clone())))
            .collect(),
    )
}

/// The row record's field definitions: an envelope's `before` record, or the
/// record itself (a key).
fn row_field_objects(schema: &str) -> Option<Vec<Json>> {
    let schema: Json = serde_json::from_str(schema).ok()?;
    let fields = schema.get("fields")?.as_array()?;
    let record = fields
        .iter()
        .find(|f| f["name"] == "before")
        .and_then(|before| before["type"].as_array())
        .and_then(|branches| branches.iter().find(|b| b.is_object()))
        .unwrap_or(&schema);
    record.get("fields")?.as_array().cloned()
}

/// A field type without its null branch, compactly.
fn type_text(ty: &Json) -> String {
    let ty = match ty {
        Json::Array(branches) if branches.len() == 2 && branches[0] == "null" => &branches[1],
        other => other,
    };
    match ty {
        Json::String(name) => name.clone(),
        Json::Object(object) => match (object.get("connect.name"), object.get("type")) {
            (Some(Json::String(name)), _) => name.clone(),
            (_, Some(Json::String(base))) => match object.get("logicalType") {
                Some(Json::String(logical)) => format!("{base} ({logical})"),
                _ => base.clone(),
            },
            _ => ty.to_string(),
        },
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(fields: &str) -> String {
        format!(
            r#"{{"type": "record", "name": "Envelope", "fields": [
                {{"name": "before", "type": ["null", {{"type": "record", "name": "Value", "fields": [{fields}]}}]}},
                {{"name": "after", "type": ["null", "Value"]}}]}}"#
        )
    }

    #[test]
    fn changes_name_the_columns() {
        let old = envelope(
            r#"{"name": "id", "type": "long"}, {"name": "v", "type": "int"},
               {"name": "note", "type": ["null", "string"], "default": null}"#,
        );
        let new = envelope(
            r#"{"name": "id", "type": "long"}, {"name": "v", "type": "long"},
               {"name": "remark", "type": ["null", "string"], "default": null},
               {"name": "qty", "type": "int"}"#,
        );
        assert_eq!(
            describe_change(&old, &new),
            [
                "column v changed from int to long",
                "column note dropped",
                "column remark added as string",
                "column qty added as int (required, without a default)",
            ]
        );
        // A key record is the row record itself.
        let key = |ty: &str| {
            format!(
                r#"{{"type": "record", "name": "Key", "fields": [{{"name": "id", "type": "{ty}"}}]}}"#
            )
        };
        assert_eq!(
            describe_change(&key("int"), &key("long")),
            ["column id changed from int to long"]
        );
        assert!(describe_change("not json", &key("long")).is_empty());
    }

    fn change(tag: &str, object_type: &str, position: Option<i32>, names: &[&str]) -> SchemaChange {
        use crate::contract::{DdlColumn, DdlCommand};
        SchemaChange {
            command: DdlCommand {
                tag: tag.into(),
                schema: "public".into(),
                table: "t".into(),
                identity: String::new(),
                object_type: object_type.into(),
                column_position: position,
                statement: String::new(),
                user: None,
                columns: Some(
                    names
                        .iter()
                        .enumerate()
                        .map(|(i, name)| DdlColumn {
                            name: (*name).into(),
                            type_expression: "integer".into(),
                            base: "int4".into(),
                            typmod: -1,
                            position: i32::try_from(i).expect("small") + 1,
                            not_null: true,
                            default: None,
                            identity: false,
                            generated: false,
                            comment: None,
                        })
                        .collect(),
                ),
                primary_key: None,
            },
            xid: 1,
            commit_lsn: weir_pgoutput::Lsn(1),
            lsn: weir_pgoutput::Lsn(1),
            commit_time_micros: 0,
        }
    }

    #[test]
    fn renames_become_aliases_that_follow_the_column() {
        let mut renames = Renames::default();
        renames.schema_change(&change("ALTER TABLE", "table", None, &["id", "v"]));
        renames.schema_change(&change(
            "ALTER TABLE",
            "table column",
            Some(2),
            &["id", "val"],
        ));
        assert_eq!(
            renames.aliases("public.t").get("val"),
            Some(&vec!["v".to_owned()])
        );
        // Renamed again: both earlier names.
        renames.schema_change(&change(
            "ALTER TABLE",
            "table column",
            Some(2),
            &["id", "value"],
        ));
        assert_eq!(
            renames.aliases("public.t").get("value"),
            Some(&vec!["v".to_owned(), "val".to_owned()])
        );
        // A column added in the same breath is no rename to trust: no alias.
        let mut renames = Renames::default();
        renames.schema_change(&change("ALTER TABLE", "table", None, &["id", "v"]));
        renames.schema_change(&change(
            "ALTER TABLE",
            "table column",
            Some(2),
            &["id", "w", "x"],
        ));
        assert!(renames.aliases("public.t").is_empty());
        // Without knowing the columns before, nothing is guessed.
        let mut renames = Renames::default();
        renames.schema_change(&change(
            "ALTER TABLE",
            "table column",
            Some(2),
            &["id", "w"],
        ));
        assert!(renames.aliases("public.t").is_empty());
    }
}
