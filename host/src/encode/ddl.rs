//! The DDL topic's messages: one per captured statement and table (and per
//! TRUNCATE), in the pipeline's format family, keyed by table so a table's
//! changes stay in order on one partition.
//!
//! - `canal-json`: Canal's DDL FlatMessage, `{"isDdl": true, "sql": "ALTER TABLE …",
//!   "type": "ALTER", "data": null, …}`, the `type` as Canal names it (`CREATE`,
//!   `ALTER`, `ERASE` for a dropped table, `CINDEX`, `TRUNCATE`, `QUERY` for the rest).
//! - `debezium-json`, `json`, `avro`: a schema change event in the shape of
//!   Debezium's (its MySQL connector's `SchemaChangeValue`; the PostgreSQL one has
//!   none): `ddl`, `databaseName`, `schemaName`, `source`, and `tableChanges` with
//!   the table's columns and primary key as the statement left them. weir adds
//!   `commandTag` and `user`. Debezium keys these events by database; weir by
//!   table (`databaseName`, `schemaName`, `tableName`).

use serde_json::{Value as Json, json};

use super::EncodeError;
use super::avro::binary;
use super::avro::registry::SchemaRegistry;
use super::canal::sql_type;
use super::metadata::{register, wrap};
use crate::contract::{DdlColumn, SchemaChange};

/// How DDL messages are written.
#[derive(Debug)]
pub enum DdlFormat {
    /// Canal's FlatMessage with `isDdl: true`.
    Canal,
    /// A Debezium-style schema change event in JSON; with `schemas`, wrapped in
    /// `{"schema": …, "payload": …}`.
    Debezium {
        /// Connect's `schemas.enable`.
        schemas: bool,
    },
    /// The same event in Avro, schemas registered under `<topic>-key`/`-value`.
    Avro(Box<SchemaRegistry>),
}

/// Encodes schema changes into a key and a value.
#[derive(Debug)]
pub struct DdlEncoder {
    format: DdlFormat,
    /// The pipeline's name (`source.name`).
    name: String,
    /// The database (`databaseName`, Canal's `database`).
    database: String,
}

/// What Debezium's `tableChanges[].type` says of a command.
fn change_type(tag: &str) -> Option<&'static str> {
    match tag {
        "CREATE TABLE" | "CREATE TABLE AS" | "SELECT INTO" => Some("CREATE"),
        "DROP TABLE" => Some("DROP"),
        // A TRUNCATE changes no structure.
        "TRUNCATE" => None,
        _ => Some("ALTER"),
    }
}

/// Canal's `type` for a command.
fn canal_type(change: &SchemaChange) -> &'static str {
    match change.command.tag.as_str() {
        "CREATE TABLE" | "CREATE TABLE AS" | "SELECT INTO" => "CREATE",
        "DROP TABLE" => "ERASE",
        "CREATE INDEX" => "CINDEX",
        "TRUNCATE" => "TRUNCATE",
        "ALTER TABLE" if is_table_rename(&change.command.statement) => "RENAME",
        "ALTER TABLE" => "ALTER",
        _ => "QUERY",
    }
}

/// `ALTER TABLE … RENAME TO …` (not `RENAME COLUMN`, which Canal calls ALTER).
fn is_table_rename(statement: &str) -> bool {
    let words: Vec<String> = statement
        .split_whitespace()
        .map(str::to_ascii_uppercase)
        .collect();
    words.windows(2).any(|w| w[0] == "RENAME" && w[1] == "TO")
}

impl DdlEncoder {
    /// An encoder for pipeline `name` reading `database`.
    pub fn new(format: DdlFormat, name: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            format,
            name: name.into(),
            database: database.into(),
        }
    }

    /// The key and value of `change` for `topic`.
    pub fn encode(
        &mut self,
        topic: &str,
        change: &SchemaChange,
    ) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
        match &mut self.format {
            DdlFormat::Canal => Ok(self.canal(change)),
            DdlFormat::Debezium { schemas } => {
                let schemas = *schemas;
                let key = self.key(change);
                let value = self.value(change);
                Ok(if schemas {
                    (
                        wrap(&key_connect_schema(), key),
                        wrap(&value_connect_schema(), value),
                    )
                } else {
                    (key.to_string().into_bytes(), value.to_string().into_bytes())
                })
            }
            DdlFormat::Avro(registry) => avro(registry, &self.name, &self.database, topic, change),
        }
    }

    fn canal(&self, change: &SchemaChange) -> (Vec<u8>, Vec<u8>) {
        let command = &change.command;
        // `database` is the schema, as in canal-json's row messages.
        let key = json!({"database": command.schema, "table": command.table});
        let value = json!({
            "data": null,
            "database": command.schema,
            "es": change.commit_time_micros.div_euclid(1000),
            "id": change.lsn.0,
            "isDdl": true,
            "mysqlType": null,
            "old": null,
            "pkNames": null,
            "sql": command.statement,
            "sqlType": null,
            "table": command.table,
            "ts": crate::clock::now_unix_millis(),
            "type": canal_type(change),
        });
        (key.to_string().into_bytes(), value.to_string().into_bytes())
    }

    fn key(&self, change: &SchemaChange) -> Json {
        json!({
            "databaseName": self.database,
            "schemaName": change.command.schema,
            "tableName": change.command.table,
        })
    }

    fn value(&self, change: &SchemaChange) -> Json {
        let command = &change.command;
        let table_changes: Vec<Json> = change_type(&command.tag)
            .map(|kind| {
                let table = command.columns.as_ref().map(|columns| {
                    json!({
                        "primaryKeyColumnNames": command.primary_key.clone().unwrap_or_default(),
                        "columns": columns.iter().map(column_json).collect::<Vec<_>>(),
                    })
                });
                json!({"type": kind, "id": table_id(change), "table": table})
            })
            .into_iter()
            .collect();
        json!({
            "source": {
                "version": format!("weir-{}", crate::VERSION),
                "connector": "postgresql",
                "name": self.name,
                "ts_ms": change.commit_time_micros.div_euclid(1000),
                "db": self.database,
                "schema": command.schema,
                "table": command.table,
                "txId": change.xid,
                "lsn": change.lsn.0,
            },
            "ts_ms": crate::clock::now_unix_millis(),
            "databaseName": self.database,
            "schemaName": command.schema,
            "ddl": command.statement,
            "commandTag": command.tag,
            "user": command.user,
            "tableChanges": table_changes,
        })
    }
}

/// The schema change event in Avro, field by field in [`value_avro_schema`]'s order.
fn avro(
    registry: &mut SchemaRegistry,
    name: &str,
    database: &str,
    topic: &str,
    change: &SchemaChange,
) -> Result<(Vec<u8>, Vec<u8>), EncodeError> {
    let key_id = register(registry, topic, "key", &key_avro_schema())?;
    let value_id = register(registry, topic, "value", &value_avro_schema())?;
    let command = &change.command;
    let mut key = Vec::new();
    binary::confluent_header(key_id, &mut key);
    for part in [database, &command.schema, &command.table] {
        binary::bytes(part.as_bytes(), &mut key);
    }
    let mut value = Vec::new();
    binary::confluent_header(value_id, &mut value);
    // source
    binary::bytes(format!("weir-{}", crate::VERSION).as_bytes(), &mut value);
    binary::bytes(b"postgresql", &mut value);
    binary::bytes(name.as_bytes(), &mut value);
    binary::long(change.commit_time_micros.div_euclid(1000), &mut value);
    binary::bytes(database.as_bytes(), &mut value);
    binary::bytes(command.schema.as_bytes(), &mut value);
    binary::bytes(command.table.as_bytes(), &mut value);
    binary::long(i64::from(change.xid), &mut value);
    binary::long(i64::try_from(change.lsn.0).unwrap_or(i64::MAX), &mut value);
    // the event
    binary::long(crate::clock::now_unix_millis(), &mut value);
    binary::bytes(database.as_bytes(), &mut value);
    binary::bytes(command.schema.as_bytes(), &mut value);
    binary::bytes(command.statement.as_bytes(), &mut value);
    binary::bytes(command.tag.as_bytes(), &mut value);
    optional_string(command.user.as_deref(), &mut value);
    match change_type(&command.tag) {
        None => binary::long(0, &mut value),
        Some(kind) => {
            binary::long(1, &mut value);
            binary::bytes(kind.as_bytes(), &mut value);
            binary::bytes(table_id(change).as_bytes(), &mut value);
            match &command.columns {
                None => binary::union_branch(0, &mut value),
                Some(columns) => {
                    binary::union_branch(1, &mut value);
                    let primary_key = command.primary_key.as_deref().unwrap_or_default();
                    array(primary_key, &mut value, |name, out| {
                        binary::bytes(name.as_bytes(), out);
                    });
                    array(columns, &mut value, column_avro);
                }
            }
            binary::long(0, &mut value);
        }
    }
    Ok((key, value))
}

/// Debezium's table id for PostgreSQL: `"schema"."table"`.
fn table_id(change: &SchemaChange) -> String {
    format!(
        "\"{}\".\"{}\"",
        change.command.schema.replace('"', "\"\""),
        change.command.table.replace('"', "\"\"")
    )
}

fn column_json(column: &DdlColumn) -> Json {
    json!({
        "name": column.name,
        "jdbcType": sql_type(&column.base),
        "typeName": column.base,
        "typeExpression": column.type_expression,
        "length": column.length(),
        "scale": column.scale(),
        "position": column.position,
        "optional": !column.not_null,
        "autoIncremented": column.auto_incremented(),
        "generated": column.generated,
        "comment": column.comment,
        "defaultValueExpression": column.default,
    })
}

fn column_avro(column: &DdlColumn, out: &mut Vec<u8>) {
    binary::bytes(column.name.as_bytes(), out);
    binary::long(i64::from(sql_type(&column.base)), out);
    binary::bytes(column.base.as_bytes(), out);
    binary::bytes(column.type_expression.as_bytes(), out);
    optional_int(column.length(), out);
    optional_int(column.scale(), out);
    binary::long(i64::from(column.position), out);
    binary::boolean(!column.not_null, out);
    binary::boolean(column.auto_incremented(), out);
    binary::boolean(column.generated, out);
    optional_string(column.comment.as_deref(), out);
    optional_string(column.default.as_deref(), out);
}

/// An Avro array in one block.
fn array<T>(items: &[T], out: &mut Vec<u8>, mut write: impl FnMut(&T, &mut Vec<u8>)) {
    if !items.is_empty() {
        binary::long(i64::try_from(items.len()).unwrap_or(i64::MAX), out);
        for item in items {
            write(item, out);
        }
    }
    binary::long(0, out);
}

fn optional_string(value: Option<&str>, out: &mut Vec<u8>) {
    match value {
        None => binary::union_branch(0, out),
        Some(text) => {
            binary::union_branch(1, out);
            binary::bytes(text.as_bytes(), out);
        }
    }
}

fn optional_int(value: Option<i32>, out: &mut Vec<u8>) {
    match value {
        None => binary::union_branch(0, out),
        Some(n) => {
            binary::union_branch(1, out);
            binary::long(i64::from(n), out);
        }
    }
}

const NAMESPACE: &str = "io.weir.ddl";

fn key_avro_schema() -> Json {
    json!({"type": "record", "name": "SchemaChangeKey", "namespace": NAMESPACE,
    "fields": [
        {"name": "databaseName", "type": "string"},
        {"name": "schemaName", "type": "string"},
        {"name": "tableName", "type": "string"},
    ]})
}

fn value_avro_schema() -> Json {
    let optional =
        |name: &str, ty: &str| json!({"name": name, "type": ["null", ty], "default": null});
    let field = |name: &str, ty: &str| json!({"name": name, "type": ty});
    json!({"type": "record", "name": "SchemaChangeValue", "namespace": NAMESPACE,
    "fields": [
        {"name": "source", "type": {"type": "record", "name": "Source", "fields": [
            field("version", "string"), field("connector", "string"),
            field("name", "string"), field("ts_ms", "long"), field("db", "string"),
            field("schema", "string"), field("table", "string"),
            field("txId", "long"), field("lsn", "long"),
        ]}},
        field("ts_ms", "long"),
        field("databaseName", "string"),
        field("schemaName", "string"),
        field("ddl", "string"),
        field("commandTag", "string"),
        optional("user", "string"),
        {"name": "tableChanges", "type": {"type": "array", "items": {
            "type": "record", "name": "Change", "fields": [
                field("type", "string"),
                field("id", "string"),
                {"name": "table", "type": ["null", {"type": "record", "name": "Table",
                    "fields": [
                        {"name": "primaryKeyColumnNames",
                         "type": {"type": "array", "items": "string"}},
                        {"name": "columns", "type": {"type": "array", "items": {
                            "type": "record", "name": "Column", "fields": [
                                field("name", "string"), field("jdbcType", "int"),
                                field("typeName", "string"),
                                field("typeExpression", "string"),
                                optional("length", "int"), optional("scale", "int"),
                                field("position", "int"), field("optional", "boolean"),
                                field("autoIncremented", "boolean"),
                                field("generated", "boolean"),
                                optional("comment", "string"),
                                optional("defaultValueExpression", "string"),
                            ]}}},
                    ]}], "default": null},
            ]}}},
    ]})
}

fn key_connect_schema() -> Json {
    let string = |field: &str| json!({"type": "string", "optional": false, "field": field});
    json!({"type": "struct", "optional": false, "name": "io.weir.ddl.SchemaChangeKey",
        "fields": [string("databaseName"), string("schemaName"), string("tableName")]})
}

fn value_connect_schema() -> Json {
    let field = |ty: &str, optional: bool, name: &str| json!({"type": ty, "optional": optional, "field": name});
    json!({"type": "struct", "optional": false, "name": "io.weir.ddl.SchemaChangeValue",
    "fields": [
        {"type": "struct", "optional": false, "field": "source",
         "name": "io.weir.ddl.Source", "fields": [
            field("string", false, "version"), field("string", false, "connector"),
            field("string", false, "name"), field("int64", false, "ts_ms"),
            field("string", false, "db"), field("string", false, "schema"),
            field("string", false, "table"), field("int64", false, "txId"),
            field("int64", false, "lsn"),
        ]},
        field("int64", false, "ts_ms"),
        field("string", false, "databaseName"),
        field("string", false, "schemaName"),
        field("string", false, "ddl"),
        field("string", false, "commandTag"),
        field("string", true, "user"),
        {"type": "array", "optional": false, "field": "tableChanges", "items": {
            "type": "struct", "optional": false, "name": "io.weir.ddl.Change", "fields": [
                field("string", false, "type"),
                field("string", false, "id"),
                {"type": "struct", "optional": true, "field": "table",
                 "name": "io.weir.ddl.Table", "fields": [
                    {"type": "array", "optional": false, "field": "primaryKeyColumnNames",
                     "items": {"type": "string", "optional": false}},
                    {"type": "array", "optional": false, "field": "columns", "items": {
                        "type": "struct", "optional": false, "name": "io.weir.ddl.Column",
                        "fields": [
                            field("string", false, "name"), field("int32", false, "jdbcType"),
                            field("string", false, "typeName"),
                            field("string", false, "typeExpression"),
                            field("int32", true, "length"), field("int32", true, "scale"),
                            field("int32", false, "position"),
                            field("boolean", false, "optional"),
                            field("boolean", false, "autoIncremented"),
                            field("boolean", false, "generated"),
                            field("string", true, "comment"),
                            field("string", true, "defaultValueExpression"),
                        ]}},
                ]},
            ]}},
    ]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::DdlCommand;
    use weir_pgoutput::Lsn;

    fn change(tag: &str, statement: &str) -> SchemaChange {
        SchemaChange {
            command: DdlCommand {
                tag: tag.into(),
                schema: "public".into(),
                table: "orders".into(),
                identity: "public.orders".into(),
                object_type: "table".into(),
                column_position: None,
                statement: statement.into(),
                user: Some("app".into()),
                columns: Some(vec![DdlColumn {
                    name: "id".into(),
                    type_expression: "bigint".into(),
                    base: "int8".into(),
                    typmod: -1,
                    position: 1,
                    not_null: true,
                    default: None,
                    identity: true,
                    generated: false,
                    comment: None,
                }]),
                primary_key: Some(vec!["id".into()]),
            },
            xid: 7,
            commit_lsn: Lsn(100),
            lsn: Lsn(90),
            commit_time_micros: 1_700_000_000_123_456,
        }
    }

    fn parse(bytes: &[u8]) -> Json {
        serde_json::from_slice(bytes).expect("JSON")
    }

    #[test]
    fn canal_names_the_kind_of_change_as_canal_does() {
        let mut encoder = DdlEncoder::new(DdlFormat::Canal, "shop", "shopdb");
        for (tag, statement, kind) in [
            ("ALTER TABLE", "alter table orders add note text", "ALTER"),
            ("ALTER TABLE", "ALTER TABLE orders RENAME TO o2", "RENAME"),
            (
                "ALTER TABLE",
                "alter table orders rename note to n",
                "ALTER",
            ),
            ("CREATE TABLE", "create table orders (id int)", "CREATE"),
            ("DROP TABLE", "drop table orders", "ERASE"),
            ("CREATE INDEX", "create index on orders (id)", "CINDEX"),
            (
                "TRUNCATE",
                "TRUNCATE TABLE \"public\".\"orders\"",
                "TRUNCATE",
            ),
            ("COMMENT", "comment on table orders is 'x'", "QUERY"),
        ] {
            let (key, value) = encoder
                .encode("t", &change(tag, statement))
                .expect("encodes");
            let value = parse(&value);
            assert_eq!(value["type"], kind, "{statement}");
            assert_eq!(value["isDdl"], true);
            assert_eq!(value["sql"], statement);
            assert_eq!(value["database"], "public");
            assert_eq!(value["table"], "orders");
            assert_eq!(value["es"], 1_700_000_000_123_i64);
            assert!(value["data"].is_null());
            assert_eq!(
                parse(&key),
                json!({"database": "public", "table": "orders"})
            );
        }
    }

    #[test]
    fn debezium_events_carry_the_table_as_the_statement_left_it() {
        let mut encoder = DdlEncoder::new(DdlFormat::Debezium { schemas: false }, "shop", "db");
        let (key, value) = encoder
            .encode("t", &change("ALTER TABLE", "alter table orders add x int"))
            .expect("encodes");
        assert_eq!(
            parse(&key),
            json!({"databaseName": "db", "schemaName": "public", "tableName": "orders"})
        );
        let value = parse(&value);
        assert_eq!(value["ddl"], "alter table orders add x int");
        assert_eq!(value["source"]["lsn"], 90);
        assert_eq!(value["source"]["txId"], 7);
        let change = &value["tableChanges"][0];
        assert_eq!(change["type"], "ALTER");
        assert_eq!(change["id"], "\"public\".\"orders\"");
        assert_eq!(change["table"]["primaryKeyColumnNames"], json!(["id"]));
        let column = &change["table"]["columns"][0];
        assert_eq!(column["jdbcType"], -5);
        assert_eq!(column["autoIncremented"], true);
        assert_eq!(column["optional"], false);

        let mut truncate = self::change("TRUNCATE", "TRUNCATE TABLE x");
        truncate.command.columns = None;
        let (_, value) = encoder.encode("t", &truncate).expect("encodes");
        assert_eq!(parse(&value)["tableChanges"], json!([]));
    }

    #[test]
    fn with_schemas_every_payload_field_is_declared() {
        let mut encoder = DdlEncoder::new(DdlFormat::Debezium { schemas: true }, "shop", "db");
        let (key, value) = encoder
            .encode("t", &change("DROP TABLE", "drop table orders"))
            .expect("encodes");
        for message in [parse(&key), parse(&value)] {
            let declared: Vec<&str> = message["schema"]["fields"]
                .as_array()
                .expect("fields")
                .iter()
                .map(|f| f["field"].as_str().expect("name"))
                .collect();
            let present: Vec<&str> = message["payload"]
                .as_object()
                .expect("payload")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(declared, present);
        }
    }
}
