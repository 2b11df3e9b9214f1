//! Replication commands: IDENTIFY_SYSTEM, slots, START_REPLICATION.

use postgres_protocol::message::backend::Message;

use super::connection::{Backend, ReplicationConnection, server_error, unexpected};
use super::error::ReplicationError;
use super::stream::ReplicationStream;
use crate::contract::sql::{quote_identifier, quote_literal};
use crate::lsn::Lsn;

/// What `IDENTIFY_SYSTEM` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemIdentity {
    /// The cluster's unique system identifier.
    pub system_id: String,
    /// The current timeline.
    pub timeline: u32,
    /// The current WAL flush position.
    pub xlog_position: Lsn,
    /// The database this connection is bound to.
    pub database: Option<String>,
}

/// What a new slot does with the snapshot it was created at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotSnapshot {
    /// Export it by name (for `SET TRANSACTION SNAPSHOT` on other connections, which is
    /// how the initial snapshot reads exactly the data before the slot's start). The
    /// snapshot lives until the next command on this connection.
    Export,
    /// Use it in this connection's current transaction.
    Use,
    /// No snapshot.
    Nothing,
}

/// A slot that `CREATE_REPLICATION_SLOT` made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedSlot {
    /// The slot's name, as created.
    pub slot_name: String,
    /// Streaming from the slot starts here: changes committed after this point.
    pub consistent_point: Lsn,
    /// The exported snapshot's name, with [`SlotSnapshot::Export`].
    pub snapshot_name: Option<String>,
    /// The output plugin (`pgoutput`).
    pub output_plugin: Option<String>,
}

/// `pgoutput` options for `START_REPLICATION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOutputOptions {
    /// The publications whose tables and operations the stream carries.
    pub publication_names: Vec<String>,
    /// 1, or 2 for streaming of in-progress transactions (PostgreSQL 14+).
    pub proto_version: u32,
    /// Stream large in-progress transactions instead of spilling them on the server
    /// until commit (needs `proto_version` 2+).
    pub streaming: bool,
    /// Deliver `pg_logical_emit_message` messages (PostgreSQL 14+).
    pub messages: bool,
    /// Send values in binary form (PostgreSQL 14+).
    pub binary: bool,
}

impl PgOutputOptions {
    /// What a server of this major version offers: protocol 2 with streaming of
    /// in-progress transactions and logical messages from PostgreSQL 14, protocol
    /// 1 before. The source turns streaming off unless the spec asks for it
    /// (`stream_in_progress`).
    ///
    /// With streaming, a large transaction arrives in blocks while it runs instead of
    /// piling up on the server until its commit; weir holds those rows on its own disk
    /// until the commit (they may still roll back, and only committed data reaches
    /// Kafka), so its memory stays bounded by the batch limits either way.
    pub fn for_server(major_version: u32, publication_names: Vec<String>) -> Self {
        let modern = major_version >= 14;
        PgOutputOptions {
            publication_names,
            proto_version: if modern { 2 } else { 1 },
            streaming: modern,
            messages: modern,
            binary: false,
        }
    }

    fn to_sql(&self) -> String {
        let publications = self
            .publication_names
            .iter()
            .map(|name| quote_identifier(name))
            .collect::<Vec<_>>()
            .join(",");
        let mut options = vec![
            format!("\"proto_version\" '{}'", self.proto_version),
            format!("\"publication_names\" {}", quote_literal(&publications)),
        ];
        if self.messages {
            options.push("\"messages\" 'true'".to_owned());
        }
        if self.streaming {
            options.push("\"streaming\" 'on'".to_owned());
        }
        if self.binary {
            options.push("\"binary\" 'true'".to_owned());
        }
        options.join(", ")
    }
}

impl ReplicationConnection {
    /// `TIMELINE_HISTORY tli`: the server's history file of timeline `timeline`,
    /// whose lines give the position at which each earlier timeline ended.
    pub async fn timeline_history(&mut self, timeline: u32) -> Result<String, ReplicationError> {
        let rows = self
            .simple_query(&format!("TIMELINE_HISTORY {timeline}"))
            .await?;
        let row = single_row(&rows, "TIMELINE_HISTORY", 2)?;
        Ok(field(row, 1, "content")?.to_owned())
    }

    /// `IDENTIFY_SYSTEM`.
    pub async fn identify_system(&mut self) -> Result<SystemIdentity, ReplicationError> {
        let rows = self.simple_query("IDENTIFY_SYSTEM").await?;
        let row = single_row(&rows, "IDENTIFY_SYSTEM", 4)?;
        Ok(SystemIdentity {
            system_id: field(row, 0, "systemid")?.to_owned(),
            timeline: field(row, 1, "timeline")?.parse().map_err(|_| {
                ReplicationError::Protocol("IDENTIFY_SYSTEM: bad timeline".to_owned())
            })?,
            xlog_position: parse_lsn(field(row, 2, "xlogpos")?)?,
            database: row.get(3).cloned().flatten(),
        })
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] LOGICAL pgoutput …`; with
    /// `failover` (PostgreSQL 17+) a slot that standbys with
    /// `sync_replication_slots` keep a copy of, so it survives a promotion.
    ///
    /// # Errors
    ///
    /// `Server` with SQLSTATE 42710 when the slot exists already; a syntax error
    /// for `failover` before PostgreSQL 17.
    pub async fn create_logical_slot(
        &mut self,
        name: &str,
        temporary: bool,
        snapshot: SlotSnapshot,
        failover: bool,
    ) -> Result<CreatedSlot, ReplicationError> {
        validate_slot_name(name)?;
        let temporary = if temporary { " TEMPORARY" } else { "" };
        let sql = if failover {
            // The option list, PostgreSQL 15+ (FAILOVER itself 17+).
            let snapshot = match snapshot {
                SlotSnapshot::Export => "export",
                SlotSnapshot::Use => "use",
                SlotSnapshot::Nothing => "nothing",
            };
            format!(
                "CREATE_REPLICATION_SLOT {}{temporary} LOGICAL pgoutput (SNAPSHOT '{snapshot}', FAILOVER true)",
                quote_identifier(name)
            )
        } else {
            // The pre-15 spelling of the snapshot option, which later versions
            // still understand.
            let snapshot = match snapshot {
                SlotSnapshot::Export => "EXPORT_SNAPSHOT",
                SlotSnapshot::Use => "USE_SNAPSHOT",
                SlotSnapshot::Nothing => "NOEXPORT_SNAPSHOT",
            };
            format!(
                "CREATE_REPLICATION_SLOT {}{temporary} LOGICAL pgoutput {snapshot}",
                quote_identifier(name)
            )
        };
        let rows = self.simple_query(&sql).await?;
        let row = single_row(&rows, "CREATE_REPLICATION_SLOT", 4)?;
        Ok(CreatedSlot {
            slot_name: field(row, 0, "slot_name")?.to_owned(),
            consistent_point: parse_lsn(field(row, 1, "consistent_point")?)?,
            snapshot_name: row.get(2).cloned().flatten(),
            output_plugin: row.get(3).cloned().flatten(),
        })
    }

    /// `ALTER_REPLICATION_SLOT name (FAILOVER true|false)` (PostgreSQL 17+), for a
    /// slot created before failover was asked for.
    ///
    /// # Errors
    ///
    /// `Server` with SQLSTATE 55006 while another process reads the slot.
    pub async fn set_slot_failover(
        &mut self,
        name: &str,
        failover: bool,
    ) -> Result<(), ReplicationError> {
        validate_slot_name(name)?;
        self.simple_query(&format!(
            "ALTER_REPLICATION_SLOT {} (FAILOVER {failover})",
            quote_identifier(name)
        ))
        .await
        .map(drop)
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`: with `wait`, waits for an active reader
    /// to let go instead of failing with SQLSTATE 55006.
    pub async fn drop_slot(&mut self, name: &str, wait: bool) -> Result<(), ReplicationError> {
        validate_slot_name(name)?;
        let wait = if wait { " WAIT" } else { "" };
        self.simple_query(&format!(
            "DROP_REPLICATION_SLOT {}{wait}",
            quote_identifier(name)
        ))
        .await
        .map(drop)
    }

    /// `START_REPLICATION SLOT name LOGICAL start (options)`: the connection becomes a
    /// stream. The server resumes from the slot's `confirmed_flush_lsn` when `start` is
    /// older than it.
    ///
    /// # Errors
    ///
    /// `Server` with SQLSTATE 55006 when another process reads the slot.
    pub async fn start_logical_replication(
        mut self,
        slot: &str,
        start: Lsn,
        options: &PgOutputOptions,
    ) -> Result<ReplicationStream, ReplicationError> {
        validate_slot_name(slot)?;
        let sql = format!(
            "START_REPLICATION SLOT {} LOGICAL {start} ({})",
            quote_identifier(slot),
            options.to_sql()
        );
        self.send_query(&sql).await?;
        loop {
            match self.next_backend().await? {
                Backend::CopyBoth => return Ok(ReplicationStream::new(self)),
                Backend::Message(Message::ErrorResponse(body)) => {
                    let error = server_error(body.fields())?;
                    // Consume the ReadyForQuery that follows the error.
                    let _ = self.next_message().await;
                    return Err(error.into());
                }
                Backend::Message(Message::NoticeResponse(_)) => {}
                Backend::Message(other) => return Err(unexpected("START_REPLICATION", &other)),
            }
        }
    }
}

/// PostgreSQL's rule for slot names: lower-case letters, digits and `_`, at most 63.
fn validate_slot_name(name: &str) -> Result<(), ReplicationError> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(ReplicationError::Config(format!(
            "invalid slot name {name:?}: use 1 to 63 lower-case letters, digits and underscores"
        )))
    }
}

fn single_row<'a>(
    rows: &'a [Vec<Option<String>>],
    command: &str,
    columns: usize,
) -> Result<&'a [Option<String>], ReplicationError> {
    match rows {
        [row] if row.len() >= columns => Ok(row),
        _ => Err(ReplicationError::Protocol(format!(
            "{command} returned {} rows, expected one of {columns} columns",
            rows.len()
        ))),
    }
}

fn field<'a>(
    row: &'a [Option<String>],
    index: usize,
    name: &str,
) -> Result<&'a str, ReplicationError> {
    row.get(index)
        .and_then(Option::as_deref)
        .ok_or_else(|| ReplicationError::Protocol(format!("missing {name}")))
}

fn parse_lsn(text: &str) -> Result<Lsn, ReplicationError> {
    text.parse()
        .map_err(|e| ReplicationError::Protocol(format!("{e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_render_as_start_replication_expects() {
        let options = PgOutputOptions::for_server(15, vec!["shop".into(), "we\"ird".into()]);
        assert_eq!(
            options.to_sql(),
            "\"proto_version\" '2', \"publication_names\" '\"shop\",\"we\"\"ird\"', \"messages\" 'true', \"streaming\" 'on'"
        );
        let old = PgOutputOptions::for_server(13, vec!["p".into()]);
        assert_eq!(
            old.to_sql(),
            "\"proto_version\" '1', \"publication_names\" '\"p\"'"
        );
    }

    #[test]
    fn slot_names_follow_postgres_rules() {
        assert!(validate_slot_name("weir_shop_1").is_ok());
        for bad in ["", "Upper", "dash-ed", "semi;colon", &"x".repeat(64)] {
            assert!(validate_slot_name(bad).is_err(), "{bad:?}");
        }
    }
}
