//! A schema change: what weir's event trigger wrote into the WAL for one table
//! and one DDL statement (`source.postgres.ddl: capture`), or a TRUNCATE, with
//! its place in the WAL. The source emits it in commit order; the DDL topic's
//! encoders read it.

use serde::Deserialize;
use weir_pgoutput::Lsn;

/// One DDL statement's effect on one table, as the event trigger describes it.
///
/// The trigger runs at the end of the command, so `columns` and `primary_key`
/// are the table as the statement left it; a dropped table has neither.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DdlCommand {
    /// The command tag: `CREATE TABLE`, `ALTER TABLE`, `DROP TABLE`,
    /// `CREATE INDEX`, `TRUNCATE`, …
    pub tag: String,
    /// The table's schema.
    pub schema: String,
    /// The table's name (after the statement: a renamed table has its new name).
    pub table: String,
    /// PostgreSQL's identity of the object the command touched (`public.t`, an
    /// index's `public.t_pkey`, …).
    #[serde(default)]
    pub identity: String,
    /// What kind of object the command touched (`table`, `table column` for a
    /// renamed column, `index`, …).
    #[serde(default)]
    pub object_type: String,
    /// The attribute number of the column the command touched, when it touched
    /// one by itself (a `RENAME COLUMN`).
    #[serde(default)]
    pub column_position: Option<i32>,
    /// The statement as the client sent it (`current_query()`: a client that
    /// sends several statements in one query string sends all of them).
    pub statement: String,
    /// The role that ran it (`session_user`); `None` for a TRUNCATE, whose
    /// pgoutput message does not say.
    #[serde(default)]
    pub user: Option<String>,
    /// The table's columns after the statement, in order; `None` when dropped.
    #[serde(default)]
    pub columns: Option<Vec<DdlColumn>>,
    /// The primary key's columns after the statement, in key order.
    #[serde(default)]
    pub primary_key: Option<Vec<String>>,
}

/// A column of a table after a DDL statement.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DdlColumn {
    /// Its name.
    pub name: String,
    /// `format_type()`: the type as written, `character varying(20)`, `numeric(10,2)`.
    #[serde(rename = "type")]
    pub type_expression: String,
    /// The type's name in `pg_type` (`varchar`, `numeric`, `_int4` for arrays).
    pub base: String,
    /// The type modifier (`atttypmod`, -1 for none).
    pub typmod: i32,
    /// Its attribute number (1-based; dropped columns leave gaps).
    pub position: i32,
    /// `NOT NULL`.
    pub not_null: bool,
    /// The default expression, when it has one.
    #[serde(default)]
    pub default: Option<String>,
    /// `GENERATED … AS IDENTITY`.
    #[serde(default)]
    pub identity: bool,
    /// `GENERATED ALWAYS AS (…) STORED`.
    #[serde(default)]
    pub generated: bool,
    /// `COMMENT ON COLUMN`.
    #[serde(default)]
    pub comment: Option<String>,
}

impl DdlColumn {
    /// The declared length: characters of `varchar(n)`/`char(n)`, digits of
    /// `numeric(p,s)`, bits of `bit(n)`, fractional digits of a time type.
    pub fn length(&self) -> Option<i32> {
        if self.typmod < 0 {
            return None;
        }
        match self.base.as_str() {
            "varchar" | "bpchar" => Some(self.typmod - 4),
            "numeric" => Some(((self.typmod - 4) >> 16) & 0xffff),
            "bit" | "varbit" | "time" | "timetz" | "timestamp" | "timestamptz" | "interval" => {
                Some(self.typmod)
            }
            _ => None,
        }
    }

    /// The declared scale of `numeric(p,s)`.
    pub fn scale(&self) -> Option<i32> {
        (self.base == "numeric" && self.typmod >= 4).then(|| (self.typmod - 4) & 0xffff)
    }

    /// Whether its value comes from a sequence: an identity column, or a
    /// `serial` (a `nextval(…)` default).
    pub fn auto_incremented(&self) -> bool {
        self.identity
            || self
                .default
                .as_deref()
                .is_some_and(|d| d.starts_with("nextval("))
    }
}

/// A schema change in its place in the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaChange {
    /// What changed.
    pub command: DdlCommand,
    /// The transaction that made it.
    pub xid: u32,
    /// That transaction's commit LSN: the change is confirmed with it.
    pub commit_lsn: Lsn,
    /// Where the change's own WAL record lies (the logical message, or the
    /// TRUNCATE), ordered with the transaction's rows.
    pub lsn: Lsn,
    /// The commit time, in microseconds since the Unix epoch.
    pub commit_time_micros: i64,
}

impl SchemaChange {
    /// `schema.table`.
    pub fn table_name(&self) -> String {
        format!("{}.{}", self.command.schema, self.command.table)
    }

    /// For `ALTER TABLE … RENAME COLUMN`: the renamed column's index among the
    /// table's columns after the statement, and its new name.
    pub fn renamed_column(&self) -> Option<(usize, &str)> {
        let command = &self.command;
        if command.tag != "ALTER TABLE" || command.object_type != "table column" {
            return None;
        }
        let position = command.column_position?;
        command
            .columns
            .as_ref()?
            .iter()
            .enumerate()
            .find(|(_, column)| column.position == position)
            .map(|(index, column)| (index, column.name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(base: &str, typmod: i32) -> DdlColumn {
        DdlColumn {
            name: "c".into(),
            type_expression: base.into(),
            base: base.into(),
            typmod,
            position: 1,
            not_null: false,
            default: None,
            identity: false,
            generated: false,
            comment: None,
        }
    }

    #[test]
    fn lengths_and_scales_come_from_the_type_modifier() {
        // varchar(20): typmod 24; numeric(10,2): ((10 << 16) | 2) + 4.
        assert_eq!(column("varchar", 24).length(), Some(20));
        assert_eq!(column("numeric", (10 << 16 | 2) + 4).length(), Some(10));
        assert_eq!(column("numeric", (10 << 16 | 2) + 4).scale(), Some(2));
        assert_eq!(column("numeric", -1).scale(), None);
        assert_eq!(column("timestamptz", 3).length(), Some(3));
        assert_eq!(column("text", -1).length(), None);
        assert_eq!(column("int4", -1).scale(), None);
    }

    #[test]
    fn the_trigger_message_parses() {
        let message = r#"{"tag": "ALTER TABLE", "object_type": "table", "schema": "public",
            "table": "t", "identity": "public.t", "statement": "alter table t add c int",
            "user": "app", "columns": [{"name": "id", "type": "integer", "base": "int4",
            "typmod": -1, "position": 1, "not_null": true, "default": "nextval('t_id_seq'::regclass)",
            "identity": false, "generated": false, "comment": null}], "primary_key": ["id"]}"#;
        let command: DdlCommand = serde_json::from_str(message).expect("parses");
        assert_eq!(command.tag, "ALTER TABLE");
        let columns = command.columns.expect("columns");
        assert!(columns[0].auto_incremented());
        assert_eq!(command.primary_key, Some(vec!["id".to_owned()]));
    }
}
