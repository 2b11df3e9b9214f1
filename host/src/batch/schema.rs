//! A table's ChangeBatch schema, built from a pgoutput Relation message.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

use super::types::{ColumnKind, builtin_type_name};
use weir_pgoutput::{Oid, Relation, ReplicaIdentity};

// The column names and metadata keys are the contract every stage reads; the
// builders here are their one writer.
pub use crate::contract::columns::{
    BEFORE, COMMIT_LSN, COMMIT_TS, LEADING_METADATA_COLUMNS, LSN, OP, SEQ, UNCHANGED, XID,
    metadata, op, qualified_table_name,
};

/// One user column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSpec {
    /// The column's name in PostgreSQL.
    pub name: String,
    /// Its name in the batch: the PostgreSQL name, with one more `_` in front when it
    /// starts with `_`, so it can never collide with weir's columns.
    pub field_name: String,
    /// `pg_type.oid` of its type.
    pub type_oid: Oid,
    /// `atttypmod`, -1 when none.
    pub type_modifier: i32,
    /// Its type's name, for `weir.pg_type`.
    pub pg_type: String,
    /// What it becomes in Arrow.
    pub kind: ColumnKind,
    /// Part of the replica identity: the primary key's columns by default, every
    /// column under `REPLICA IDENTITY FULL`.
    pub is_key: bool,
    /// Declared `NOT NULL` (the catalog's `attnotnull`): encoders that declare
    /// schemas make such a column required, as Debezium does.
    pub not_null: bool,
    /// An enum type's labels, comma-separated (from the catalog).
    pub enum_labels: Option<String>,
}

/// What the catalog knows of a table that a pgoutput Relation message does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFacts {
    /// The primary key's columns (PostgreSQL names), in key order; empty when the
    /// table has none.
    pub primary_key: Vec<String>,
    /// The columns declared `NOT NULL` (PostgreSQL names).
    pub not_null: Vec<String>,
    /// Columns of a domain type: the domain's base type and its modifier. Such a
    /// column is carried as its base type (an `int4` domain as Int32), as Debezium
    /// writes it.
    pub domains: Vec<(String, Oid, i32)>,
    /// Columns of an enum type: its labels in order.
    pub enums: Vec<(String, Vec<String>)>,
}

/// A table as weir batches it: its columns and the Arrow schema of its ChangeBatches.
#[derive(Debug, Clone)]
pub struct TableSchema {
    /// The table's OID.
    pub relation_oid: Oid,
    /// Its schema (namespace).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// What updates and deletes send of the old row.
    pub replica_identity: ReplicaIdentity,
    /// Its user columns, in table order.
    pub columns: Vec<ColumnSpec>,
    /// The primary key's field names, in key order; empty when unknown.
    pub primary_key: Vec<String>,
    /// Starts at 1; incremented on every change of columns or Arrow types.
    pub version: u32,
    arrow: SchemaRef,
}

impl TableSchema {
    /// Builds the schema of a relation. `type_names` names non-builtin types (from
    /// pgoutput Type messages or the catalog); unnamed ones are called `oid:<n>`.
    ///
    /// `catalog` gives the primary key and the `NOT NULL` columns. Without a
    /// primary key from it, the replica identity columns stand in, except under
    /// `REPLICA IDENTITY FULL`, where every column is flagged and the key is unknown.
    pub fn from_relation(
        relation: &Relation,
        type_names: &HashMap<Oid, String>,
        catalog: Option<&CatalogFacts>,
        version: u32,
    ) -> Self {
        let not_null = |name: &str| catalog.is_some_and(|c| c.not_null.iter().any(|n| n == name));
        let base = |name: &str| {
            catalog.and_then(|c| {
                c.domains
                    .iter()
                    .find(|(column, _, _)| column == name)
                    .map(|&(_, oid, modifier)| (oid, modifier))
            })
        };
        let columns: Vec<ColumnSpec> = relation
            .columns
            .iter()
            .map(|column| {
                // A domain is carried as its base type; `type_oid` stays the
                // domain's, as the Relation message says.
                let (type_oid, type_modifier) =
                    base(&column.name).unwrap_or((column.type_oid, column.type_modifier));
                ColumnSpec {
                    name: column.name.clone(),
                    field_name: escape_column_name(&column.name),
                    type_oid: column.type_oid,
                    type_modifier: column.type_modifier,
                    pg_type: builtin_type_name(type_oid)
                        .map(str::to_owned)
                        .or_else(|| type_names.get(&type_oid).cloned())
                        .unwrap_or_else(|| format!("oid:{type_oid}")),
                    kind: ColumnKind::for_type(type_oid, type_modifier),
                    is_key: column.is_key,
                    not_null: not_null(&column.name),
                    enum_labels: catalog.and_then(|c| {
                        c.enums
                            .iter()
                            .find(|(name, _)| *name == column.name)
                            .map(|(_, labels)| labels.join(","))
                    }),
                }
            })
            .collect();
        let primary_key = match catalog.map(|c| c.primary_key.as_slice()) {
            Some(names) if !names.is_empty() => {
                names.iter().map(|name| escape_column_name(name)).collect()
            }
            _ if relation.replica_identity == ReplicaIdentity::Full => Vec::new(),
            _ => columns
                .iter()
                .filter(|c| c.is_key)
                .map(|c| c.field_name.clone())
                .collect(),
        };
        TableSchema {
            relation_oid: relation.oid,
            namespace: relation.namespace.clone(),
            name: relation.name.clone(),
            replica_identity: relation.replica_identity,
            columns,
            primary_key,
            version,
            arrow: Arc::new(Schema::empty()),
        }
        .with_arrow_schema()
    }

    /// The same table with column `index` carried as text from now on: a new schema
    /// version. Used when a value's text is in no form the column's parser knows.
    pub fn with_text_column(&self, index: usize) -> Self {
        let mut widened = self.clone();
        if let Some(column) = widened.columns.get_mut(index) {
            column.kind = ColumnKind::Text;
        }
        widened.version += 1;
        widened.with_arrow_schema()
    }

    /// Whether `relation` describes exactly these columns (names, types, key flags):
    /// pgoutput re-sends unchanged Relation messages, which need no new version.
    pub fn matches(&self, relation: &Relation) -> bool {
        self.namespace == relation.namespace
            && self.name == relation.name
            && self.replica_identity == relation.replica_identity
            && self.columns.len() == relation.columns.len()
            && self
                .columns
                .iter()
                .zip(&relation.columns)
                .all(|(ours, theirs)| {
                    ours.name == theirs.name
                        && ours.type_oid == theirs.type_oid
                        && ours.type_modifier == theirs.type_modifier
                        && ours.is_key == theirs.is_key
                })
    }

    /// The Arrow schema of this table's ChangeBatches.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    fn with_arrow_schema(mut self) -> Self {
        self.arrow = Arc::new(arrow_schema(&self));
        self
    }
}

/// `_x` becomes `__x`: weir's columns start with one `_` and user columns never do
/// after escaping, yet the original name is recoverable (drop one leading `_`).
pub fn escape_column_name(name: &str) -> String {
    if name.starts_with('_') {
        format!("_{name}")
    } else {
        name.to_owned()
    }
}

fn user_fields(columns: &[ColumnSpec]) -> Vec<Field> {
    columns
        .iter()
        .map(|column| {
            let mut metadata = HashMap::from([
                (metadata::PG_TYPE.to_owned(), column.pg_type.clone()),
                (
                    metadata::PG_TYPE_OID.to_owned(),
                    column.type_oid.to_string(),
                ),
            ]);
            if column.field_name != column.name {
                metadata.insert(metadata::COLUMN_NAME.to_owned(), column.name.clone());
            }
            if column.not_null {
                metadata.insert(metadata::NOT_NULL.to_owned(), "true".to_owned());
            }
            if let Some(labels) = &column.enum_labels {
                metadata.insert(metadata::PG_ENUM_LABELS.to_owned(), labels.clone());
            }
            if column.type_modifier >= 0 {
                metadata.insert(
                    metadata::PG_TYPMOD.to_owned(),
                    column.type_modifier.to_string(),
                );
            }
            Field::new(&column.field_name, column.kind.data_type(), true).with_metadata(metadata)
        })
        .collect()
}

fn arrow_schema(table: &TableSchema) -> Schema {
    let user = user_fields(&table.columns);
    let mut fields = vec![
        Field::new(OP, DataType::UInt8, false),
        Field::new(LSN, DataType::UInt64, false),
        Field::new(COMMIT_LSN, DataType::UInt64, false),
        Field::new(XID, DataType::UInt32, false),
        Field::new(
            COMMIT_TS,
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new(SEQ, DataType::UInt32, false),
    ];
    fields.extend(user.iter().cloned());
    fields.push(Field::new(
        BEFORE,
        DataType::Struct(Fields::from(user)),
        true,
    ));
    fields.push(Field::new(
        UNCHANGED,
        DataType::List(Arc::new(Field::new_list_field(DataType::UInt16, false))),
        true,
    ));
    let replica_identity = match table.replica_identity {
        ReplicaIdentity::Default => "default",
        ReplicaIdentity::Full => "full",
        ReplicaIdentity::Index => "index",
        ReplicaIdentity::Nothing => "nothing",
    };
    Schema::new(fields).with_metadata(HashMap::from([
        (metadata::SCHEMA.to_owned(), table.namespace.clone()),
        (metadata::TABLE.to_owned(), table.name.clone()),
        (
            metadata::RELATION_OID.to_owned(),
            table.relation_oid.to_string(),
        ),
        (
            metadata::PRIMARY_KEY.to_owned(),
            table.primary_key.join(","),
        ),
        (
            metadata::REPLICA_IDENTITY.to_owned(),
            replica_identity.to_owned(),
        ),
        (
            metadata::SCHEMA_VERSION.to_owned(),
            table.version.to_string(),
        ),
    ]))
}
