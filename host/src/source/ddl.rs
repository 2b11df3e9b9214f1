//! DDL capture (`source.postgres.ddl: capture`).
//!
//! pgoutput carries no DDL: a column added shows only as a new Relation message
//! before the table's next change, and a dropped table not at all. An event
//! trigger fills the gap: at the end of every DDL command it writes one logical
//! message per table the command touched (prefix [`DDL_PREFIX`], JSON: the
//! command tag, the statement, the user, the table's columns and key as the
//! command left them). The message is transactional, so it reaches weir with
//! its transaction's commit, ordered with the rows it affects, and never for a
//! rolled-back statement.
//!
//! One trigger serves every weir pipeline of the database: each one keeps the
//! messages of the tables it selects. Event triggers need a superuser (or a
//! managed service's equivalent, `rds_superuser`); weir installs them when it
//! may, and otherwise says what to run.

use tokio_postgres::Client;
use tracing::info;

use super::catalog::CatalogError;

/// Prefix of the event trigger's logical messages.
pub const DDL_PREFIX: &str = "weir_ddl";

/// The function the triggers call. Its body carries a version marker, so a
/// weir whose capture changed replaces it.
pub const CAPTURE_FUNCTION: &str = "public.weir_capture_ddl";
/// The trigger on `ddl_command_end` (CREATE, ALTER, …).
pub const COMMAND_END_TRIGGER: &str = "weir_ddl_command_end";
/// The trigger on `sql_drop` (DROP TABLE).
pub const SQL_DROP_TRIGGER: &str = "weir_ddl_sql_drop";
const VERSION_MARKER: &str = "weir ddl capture v2";

/// The SQL that installs DDL capture: what weir runs when it may, and what a
/// superuser runs for it otherwise (`weir check` prints it).
pub fn install_sql() -> String {
    format!(
        r#"CREATE OR REPLACE FUNCTION {CAPTURE_FUNCTION}() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $weir$
-- {VERSION_MARKER}: one transactional logical message per table a DDL command touched.
DECLARE
  command record;
  relation oid;
  seen oid[] := '{{}}';
BEGIN
  IF TG_EVENT = 'sql_drop' THEN
    FOR command IN SELECT * FROM pg_event_trigger_dropped_objects()
        WHERE object_type = 'table' AND original AND NOT is_temporary LOOP
      PERFORM pg_logical_emit_message(true, '{DDL_PREFIX}', jsonb_build_object(
        'tag', TG_TAG, 'schema', command.schema_name, 'table', command.object_name,
        'identity', command.object_identity, 'statement', current_query(),
        'user', session_user::text)::text);
    END LOOP;
    RETURN;
  END IF;
  FOR command IN SELECT * FROM pg_event_trigger_ddl_commands()
      WHERE classid = 'pg_class'::regclass AND NOT in_extension LOOP
    SELECT CASE c.relkind WHEN 'i' THEN i.indrelid WHEN 'I' THEN i.indrelid ELSE c.oid END
      INTO relation
      FROM pg_class c LEFT JOIN pg_index i ON i.indexrelid = c.oid
      WHERE c.oid = command.objid;
    CONTINUE WHEN relation IS NULL OR relation = ANY(seen);
    seen := seen || relation;
    PERFORM pg_logical_emit_message(true, '{DDL_PREFIX}', jsonb_build_object(
      'tag', TG_TAG, 'schema', n.nspname, 'table', c.relname,
      'identity', command.object_identity, 'statement', current_query(),
      'user', session_user::text, 'object_type', command.object_type,
      'column_position', nullif(command.objsubid, 0),
      'columns', (SELECT coalesce(jsonb_agg(jsonb_build_object(
          'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
          'base', t.typname, 'typmod', a.atttypmod, 'position', a.attnum,
          'not_null', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid),
          'identity', a.attidentity <> '', 'generated', a.attgenerated <> '',
          'comment', col_description(c.oid, a.attnum)) ORDER BY a.attnum), '[]')
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'primary_key', (SELECT coalesce(jsonb_agg(a.attname ORDER BY k.ord), '[]')
        FROM pg_index i CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary))::text)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.oid = relation AND c.relkind IN ('r', 'p') AND c.relpersistence = 'p';
  END LOOP;
END
$weir$;
DROP EVENT TRIGGER IF EXISTS {COMMAND_END_TRIGGER};
CREATE EVENT TRIGGER {COMMAND_END_TRIGGER} ON ddl_command_end EXECUTE FUNCTION {CAPTURE_FUNCTION}();
DROP EVENT TRIGGER IF EXISTS {SQL_DROP_TRIGGER};
CREATE EVENT TRIGGER {SQL_DROP_TRIGGER} ON sql_drop EXECUTE FUNCTION {CAPTURE_FUNCTION}();
"#
    )
}

/// The SQL that removes DDL capture (for every pipeline of the database).
pub fn uninstall_sql() -> String {
    format!(
        "DROP EVENT TRIGGER IF EXISTS {COMMAND_END_TRIGGER};\n\
         DROP EVENT TRIGGER IF EXISTS {SQL_DROP_TRIGGER};\n\
         DROP FUNCTION IF EXISTS {CAPTURE_FUNCTION}();\n"
    )
}

/// Whether this database's DDL capture is installed, enabled and current.
pub async fn ddl_capture_installed(client: &Client) -> Result<bool, CatalogError> {
    let row = client
        .query_one(
            "SELECT \
               (SELECT count(*) FROM pg_event_trigger \
                 WHERE evtname IN ($1, $2) AND evtenabled <> 'D' \
                   AND evtfoid = to_regprocedure($3 || '()')), \
               coalesce((SELECT prosrc LIKE '%' || $4 || '%' FROM pg_proc \
                 WHERE oid = to_regprocedure($3 || '()')), false)",
            &[
                &COMMAND_END_TRIGGER,
                &SQL_DROP_TRIGGER,
                &CAPTURE_FUNCTION,
                &VERSION_MARKER,
            ],
        )
        .await?;
    let triggers: i64 = row.get(0);
    let current: bool = row.get(1);
    Ok(triggers == 2 && current)
}

/// Installs DDL capture unless it is installed and current.
///
/// # Errors
///
/// [`CatalogError::DdlCapture`] when this role may not create event triggers,
/// naming what to run instead; [`CatalogError::Query`] for other failures.
pub async fn ensure_ddl_capture(client: &Client) -> Result<(), CatalogError> {
    if ddl_capture_installed(client).await? {
        return Ok(());
    }
    let sql = format!("BEGIN;\n{}COMMIT;", install_sql());
    if let Err(error) = client.batch_execute(&sql).await {
        // The failed transaction is still open on this connection.
        let _ = client.batch_execute("ROLLBACK").await;
        if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) {
            return Err(CatalogError::DdlCapture(format!(
                "source.postgres.ddl is capture, but this role may not create event triggers \
                 ({}). A superuser (on RDS and Aurora rds_superuser, on Cloud SQL \
                 cloudsqlsuperuser) installs them once for the database: `weir check` \
                 prints the SQL. Without them, schema changes reach Kafka only as new \
                 schema versions on the tables' next changes, and no DDL topic is written",
                error
                    .as_db_error()
                    .map_or_else(|| error.to_string(), |e| e.message().to_owned())
            )));
        }
        return Err(error.into());
    }
    info!(
        function = CAPTURE_FUNCTION,
        "Installed DDL capture (event triggers {COMMAND_END_TRIGGER}, {SQL_DROP_TRIGGER})."
    );
    Ok(())
}
