//! From decoded pgoutput messages to ChangeBatches.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;

pub use super::batch_limits::{
    BatchLimits, BatcherError, DEFAULT_MAX_BATCH_BYTES, DEFAULT_MAX_BATCH_ROWS,
};
use super::ddl::DDL_PREFIX;
use super::streamed::{Replay, StreamedTransactions};
use crate::batch::{CatalogFacts, ChangeBatchBuilder, RowMeta, TableSchema};
pub use crate::contract::CommittedTransaction;
use crate::contract::columns::op;
use crate::contract::{DdlCommand, SchemaChange, TableSelector};
use crate::lsn::Lsn;
use tracing::warn;
use weir_pgoutput::{
    LogicalMessage, Oid, PgOutputMessage, Relation, Truncate, Tuple, TupleWriter, Xid,
};

/// What the batcher emits, in order.
#[derive(Debug, Clone)]
pub enum BatcherOutput {
    /// A ChangeBatch of one table.
    Batch(RecordBatch),
    /// Every row of this transaction (and of all earlier ones) is in a batch emitted
    /// before this marker.
    Committed(CommittedTransaction),
    /// A schema change of a selected table (DDL capture, or a TRUNCATE), emitted
    /// before its transaction's marker.
    SchemaChange(Box<SchemaChange>),
}

/// Turns a replication session's pgoutput messages into ChangeBatches, one builder
/// per table, in commit order per table.
///
/// Feed every message with [`ChangeBatcher::push`] and collect what is finished with
/// [`ChangeBatcher::pop`] until it returns `None`: batches, each followed by markers
/// for the transactions it completed. A batch is cut when a table reaches its
/// [`BatchLimits`], when its schema changes (a Relation message with other columns, or
/// a value that widens a column), or on [`ChangeBatcher::flush`].
///
/// Small transactions share batches: a transaction's marker is held until no table
/// still has rows of it (or of an earlier one) pending, so callers cut by time with
/// `flush` to bound how long a commit waits.
///
/// Streamed in-progress transactions (`streaming on`) are held on local disk until
/// they commit (see the `streamed` module), then emitted like any other.
#[derive(Debug)]
pub struct ChangeBatcher {
    limits: BatchLimits,
    tables: HashMap<Oid, ChangeBatchBuilder>,
    /// Per table with pending rows: the commit LSN of its oldest pending row.
    oldest_pending: HashMap<Oid, Lsn>,
    type_names: HashMap<Oid, String>,
    catalog: HashMap<Oid, CatalogFacts>,
    /// `_op` codes left out (`skipped_operations`).
    skipped: Vec<u8>,
    truncates_skipped: u64,
    /// Tables whose skipped TRUNCATE was logged.
    truncate_warned: HashSet<Oid>,
    transaction: Option<Transaction>,
    /// Committed transactions whose rows are not all emitted yet, in commit order.
    commits: VecDeque<CommittedTransaction>,
    /// Streamed in-progress transactions, spilled to disk.
    streams: StreamedTransactions,
    ready: VecDeque<Pending>,
    /// DDL capture: the selected tables, whose schema changes are emitted;
    /// `None`: off (`weir_ddl` messages are ignored).
    ddl: Option<Vec<TableSelector>>,
    /// Schema changes of the open transaction, emitted at its commit.
    ddl_open: Vec<(DdlCommand, Lsn)>,
    /// Schema changes of streamed transactions, by top-level xid.
    ddl_streamed: HashMap<Xid, Vec<(DdlCommand, Lsn)>>,
}

/// What waits to be popped: an output, or a committed streamed transaction whose
/// batches are still on disk (read one at a time, so memory stays bounded).
#[derive(Debug)]
enum Pending {
    Output(BatcherOutput),
    Replay(Replay),
}

#[derive(Debug, Clone, Copy)]
struct Transaction {
    xid: u32,
    commit_lsn: Lsn,
    commit_time_micros: i64,
    seq: u32,
}

/// A change's identity: its table, the (sub)transaction it carries when streamed, and
/// its `_op`.
type ChangeKind = (Oid, Option<Xid>, u8);

impl ChangeBatcher {
    /// A batcher with these limits.
    pub fn new(limits: BatchLimits) -> Self {
        ChangeBatcher {
            limits,
            tables: HashMap::new(),
            oldest_pending: HashMap::new(),
            type_names: HashMap::new(),
            catalog: HashMap::new(),
            skipped: Vec::new(),
            truncates_skipped: 0,
            truncate_warned: HashSet::new(),
            transaction: None,
            commits: VecDeque::new(),
            streams: StreamedTransactions::new(limits),
            ready: VecDeque::new(),
            ddl: None,
            ddl_open: Vec::new(),
            ddl_streamed: HashMap::new(),
        }
    }

    /// Emits schema changes of tables `tables` selects: the event trigger's
    /// `weir_ddl` messages, and TRUNCATEs.
    pub fn capture_ddl(&mut self, tables: Vec<TableSelector>) {
        self.ddl = Some(tables);
    }

    /// Takes one message; `wal_start` is its position from the enclosing XLogData.
    ///
    /// # Errors
    ///
    /// [`BatcherError`] for changes that cannot be placed; the batcher stays usable
    /// but the change is not recorded, so the caller should stop the stream.
    pub fn push(&mut self, message: &PgOutputMessage, wal_start: Lsn) -> Result<(), BatcherError> {
        match message {
            PgOutputMessage::Begin(begin) => {
                self.transaction = Some(Transaction {
                    xid: begin.xid,
                    commit_lsn: begin.final_lsn,
                    commit_time_micros: begin.commit_time_micros,
                    seq: 0,
                });
            }
            PgOutputMessage::Commit(commit) => {
                if let Some(transaction) = self.transaction.take() {
                    let changes = std::mem::take(&mut self.ddl_open);
                    self.schema_changes(changes, transaction.xid, commit);
                    self.commits.push_back(CommittedTransaction {
                        xid: transaction.xid,
                        commit_lsn: commit.commit_lsn,
                        end_lsn: commit.end_lsn,
                        rows: u64::from(transaction.seq),
                    });
                    self.release_commits();
                }
            }
            PgOutputMessage::Relation(relation) => self.relation(relation)?,
            PgOutputMessage::Type(ty) => {
                let name = if ty.namespace == "pg_catalog" || ty.namespace.is_empty() {
                    ty.name.clone()
                } else {
                    format!("{}.{}", ty.namespace, ty.name)
                };
                self.type_names.insert(ty.oid, name);
            }
            PgOutputMessage::Insert(insert) => {
                let kind = (insert.relation, insert.xid, op::INSERT);
                self.change(kind, wal_start, &insert.new, None)?;
            }
            PgOutputMessage::Update(update) => {
                let before = update.old.as_ref().map(|old| old.tuple());
                let kind = (update.relation, update.xid, op::UPDATE);
                self.change(kind, wal_start, &update.new, before)?;
            }
            PgOutputMessage::Delete(delete) => {
                let old = delete.old.tuple();
                let kind = (delete.relation, delete.xid, op::DELETE);
                self.change(kind, wal_start, old, Some(old))?;
            }
            PgOutputMessage::StreamStart(start) => self.streams.start(start.xid),
            PgOutputMessage::StreamStop => self.streams.stop(),
            PgOutputMessage::StreamAbort(abort) => {
                if abort.xid == abort.subxid {
                    self.ddl_streamed.remove(&abort.xid);
                }
                self.streams.abort(abort.xid, abort.subxid);
            }
            PgOutputMessage::StreamCommit(commit) => {
                // Rows of earlier transactions leave first, so per-key order holds.
                self.flush()?;
                let xid = commit.xid.unwrap_or_default();
                if let Some(changes) = self.ddl_streamed.remove(&xid) {
                    self.schema_changes(changes, xid, commit);
                }
                if let Some((replay, rows)) = self.streams.commit(commit)? {
                    self.ready.push_back(Pending::Replay(replay));
                    self.commits.push_back(CommittedTransaction {
                        xid: commit.xid.unwrap_or_default(),
                        commit_lsn: commit.commit_lsn,
                        end_lsn: commit.end_lsn,
                        rows,
                    });
                    self.release_commits();
                }
            }
            PgOutputMessage::Truncate(truncate) => self.truncate(truncate, wal_start)?,
            PgOutputMessage::Message(message) if message.prefix == DDL_PREFIX => {
                self.ddl_message(message);
            }
            // Other logical messages and origins carry no rows.
            PgOutputMessage::Message(_) | PgOutputMessage::Origin(_) => {}
        }
        Ok(())
    }

    /// The event trigger's message: kept for its transaction's commit when DDL
    /// capture is on and its table is selected.
    fn ddl_message(&mut self, message: &LogicalMessage) {
        if self.ddl.is_none() || !message.transactional {
            return;
        }
        match serde_json::from_slice::<DdlCommand>(&message.content) {
            Ok(command) => self.hold_schema_change(command, message.lsn, message.xid),
            // Not the trigger's (someone else emitted this prefix), or a newer
            // trigger's form: skipped, never a stop.
            Err(error) => warn!(
                lsn = %message.lsn,
                %error,
                "A {DDL_PREFIX} message that is not a DDL capture record was skipped."
            ),
        }
    }

    /// Holds a schema change of a selected table until its transaction commits.
    fn hold_schema_change(&mut self, command: DdlCommand, lsn: Lsn, xid: Option<Xid>) {
        let Some(tables) = &self.ddl else {
            return;
        };
        if !tables
            .iter()
            .any(|t| t.matches(&command.schema, &command.table))
        {
            return;
        }
        match xid.filter(|_| self.streams.in_block()) {
            Some(xid) => self
                .ddl_streamed
                .entry(xid)
                .or_default()
                .push((command, lsn)),
            None => self.ddl_open.push((command, lsn)),
        }
    }

    /// Emits a committed transaction's schema changes, ahead of its marker.
    fn schema_changes(
        &mut self,
        changes: Vec<(DdlCommand, Lsn)>,
        xid: Xid,
        commit: &weir_pgoutput::Commit,
    ) {
        for (command, lsn) in changes {
            self.ready
                .push_back(Pending::Output(BatcherOutput::SchemaChange(Box::new(
                    SchemaChange {
                        command,
                        xid,
                        commit_lsn: commit.commit_lsn,
                        lsn,
                        commit_time_micros: commit.commit_time_micros,
                    },
                ))));
        }
    }

    /// Leaves out changes of these kinds (`_op` codes), as Debezium's
    /// `skipped.operations`: a skipped TRUNCATE is logged once per table and counted.
    pub fn skip_operations(&mut self, operations: Vec<u8>) {
        self.skipped = operations;
    }

    /// TRUNCATEs left out since the last call.
    pub fn take_truncates_skipped(&mut self) -> u64 {
        std::mem::take(&mut self.truncates_skipped)
    }

    /// A TRUNCATE: one row per table, every column null, unless truncates are
    /// skipped.
    fn truncate(&mut self, truncate: &Truncate, wal_start: Lsn) -> Result<(), BatcherError> {
        for &relation in &truncate.relations {
            let Some(builder) = self.tables.get(&relation) else {
                return Err(BatcherError::UnknownRelation(relation));
            };
            let table = Arc::clone(builder.table());
            if self.ddl.is_some() {
                let command = truncate_command(&table.namespace, &table.name, truncate);
                self.hold_schema_change(command, wal_start, truncate.xid);
            }
            if self.skipped.contains(&op::TRUNCATE) {
                self.truncates_skipped += 1;
                if self.truncate_warned.insert(relation) {
                    warn!(
                        table = %format!("{}.{}", table.namespace, table.name),
                        "TRUNCATE left out: sink.kafka.skipped_operations holds `t` (the default, as Debezium's skipped.operations); consumers keep the table's rows. Counted in weir_truncates_skipped_total; logged once per table."
                    );
                }
                continue;
            }
            let mut nulls = TupleWriter::default();
            for _ in 0..table.columns.len() {
                nulls.null();
            }
            let nulls = nulls.finish();
            self.change(
                (relation, truncate.xid, op::TRUNCATE),
                wal_start,
                &nulls,
                None,
            )?;
        }
        Ok(())
    }

    /// Tells the batcher what the catalog knows of a table (its primary key, for
    /// `weir.primary_key`, and its `NOT NULL` columns). Applies from the table's next
    /// Relation message; without it the replica identity columns stand in for the key.
    pub fn set_catalog(&mut self, relation: Oid, facts: CatalogFacts) {
        self.catalog.insert(relation, facts);
    }

    /// The next finished output. Call it until `None` after every push.
    ///
    /// # Errors
    ///
    /// [`BatcherError::Spill`] when a streamed transaction cannot be read back.
    pub fn pop(&mut self) -> Result<Option<BatcherOutput>, BatcherError> {
        loop {
            let replayed = match self.ready.front_mut() {
                None => return Ok(None),
                Some(Pending::Replay(replay)) => replay.next_batch()?,
                Some(Pending::Output(_)) => None,
            };
            if let Some(batch) = replayed {
                return Ok(Some(BatcherOutput::Batch(batch)));
            }
            // An output, or a replay that has nothing left.
            if let Some(Pending::Output(output)) = self.ready.pop_front() {
                return Ok(Some(output));
            }
        }
    }

    /// Cuts every table's pending rows into batches (for time-based cuts and shutdown).
    pub fn flush(&mut self) -> Result<(), BatcherError> {
        // Oldest rows first, so batches leave in the order their first
        // transactions committed (the map's own order is arbitrary).
        let mut pending: Vec<(Lsn, Oid)> = self
            .oldest_pending
            .iter()
            .map(|(relation, oldest)| (*oldest, *relation))
            .collect();
        pending.sort_unstable();
        for (_, relation) in pending {
            self.cut(relation)?;
        }
        self.release_commits();
        Ok(())
    }

    /// Whether nothing is open, pending or waiting to be popped: no transaction (plain
    /// or streamed) in progress and no commit marker held. Pending rows imply one of
    /// those (they belong to the open transaction or to a commit whose marker waits for
    /// them), so then the WAL up to the stream's position holds nothing for us.
    pub fn is_idle(&self) -> bool {
        self.transaction.is_none()
            && !self.streams.any_open()
            && self.commits.is_empty()
            && self.ready.is_empty()
    }

    /// How a relation's rows are batched, once its Relation message came.
    pub fn table(&self, relation: Oid) -> Option<&Arc<TableSchema>> {
        self.tables.get(&relation).map(ChangeBatchBuilder::table)
    }

    /// Rows appended but not yet cut into a batch, over all tables.
    pub fn pending_rows(&self) -> usize {
        self.tables.values().map(ChangeBatchBuilder::len).sum()
    }

    /// Finishes a table's pending rows as a batch.
    fn cut(&mut self, relation: Oid) -> Result<(), BatcherError> {
        if let Some(builder) = self.tables.get_mut(&relation)
            && let Some(batch) = builder.finish()?
        {
            self.ready
                .push_back(Pending::Output(BatcherOutput::Batch(batch)));
        }
        self.oldest_pending.remove(&relation);
        Ok(())
    }

    /// Emits markers for committed transactions no table holds rows of any more.
    fn release_commits(&mut self) {
        let oldest = self.oldest_pending.values().min().copied();
        while let Some(commit) = self.commits.front() {
            if oldest.is_some_and(|oldest| oldest <= commit.commit_lsn) {
                break;
            }
            let commit = *commit;
            self.commits.pop_front();
            self.ready
                .push_back(Pending::Output(BatcherOutput::Committed(commit)));
        }
    }

    fn relation(&mut self, relation: &Relation) -> Result<(), BatcherError> {
        let version = match self.tables.get(&relation.oid) {
            Some(builder) if builder.table().matches(relation) => return Ok(()),
            Some(builder) => {
                let version = builder.table().version + 1;
                self.cut(relation.oid)?;
                self.release_commits();
                version
            }
            None => 1,
        };
        let schema = Arc::new(TableSchema::from_relation(
            relation,
            &self.type_names,
            self.catalog.get(&relation.oid),
            version,
        ));
        let builder =
            ChangeBatchBuilder::new(schema, self.limits.max_rows.min(DEFAULT_MAX_BATCH_ROWS))?;
        self.tables.insert(relation.oid, builder);
        Ok(())
    }

    fn change(
        &mut self,
        (relation, xid, op): ChangeKind,
        lsn: Lsn,
        image: &Tuple,
        before: Option<&Tuple>,
    ) -> Result<(), BatcherError> {
        if op != op::TRUNCATE && self.skipped.contains(&op) {
            return Ok(());
        }
        if self.streams.in_block() {
            let schema = self
                .tables
                .get(&relation)
                .map(|builder| Arc::clone(builder.table()))
                .ok_or(BatcherError::UnknownRelation(relation))?;
            return self.streams.change(&schema, op, lsn, xid, image, before);
        }
        let transaction = self
            .transaction
            .as_mut()
            .ok_or(BatcherError::OutsideTransaction(relation))?;
        let builder = self
            .tables
            .get_mut(&relation)
            .ok_or(BatcherError::UnknownRelation(relation))?;
        let meta = RowMeta {
            op,
            lsn,
            commit_lsn: transaction.commit_lsn,
            xid: transaction.xid,
            commit_time_micros: transaction.commit_time_micros,
            seq: transaction.seq,
        };
        builder.append(&meta, image, before)?;
        transaction.seq += 1;
        let mut widened = false;
        while let Some(batch) = builder.take_ready() {
            self.ready
                .push_back(Pending::Output(BatcherOutput::Batch(batch)));
            widened = true;
        }
        let full =
            builder.len() >= self.limits.max_rows || builder.byte_size() >= self.limits.max_bytes;
        if widened {
            // The rows before the widened one left in a batch; this row starts anew.
            self.oldest_pending.insert(relation, meta.commit_lsn);
        } else {
            self.oldest_pending
                .entry(relation)
                .or_insert(meta.commit_lsn);
        }
        if full {
            self.cut(relation)?;
            self.release_commits();
        }
        Ok(())
    }
}

/// A TRUNCATE as a schema change. pgoutput does not carry the statement, so it
/// is written out, one table at a time, with the options that applied.
fn truncate_command(schema: &str, table: &str, truncate: &Truncate) -> DdlCommand {
    let mut statement = crate::contract::sql::truncate_statement(schema, table);
    if truncate.restart_identity {
        statement.push_str(" RESTART IDENTITY");
    }
    if truncate.cascade {
        statement.push_str(" CASCADE");
    }
    DdlCommand {
        tag: "TRUNCATE".to_owned(),
        schema: schema.to_owned(),
        table: table.to_owned(),
        identity: format!("{schema}.{table}"),
        object_type: "table".to_owned(),
        column_position: None,
        statement,
        user: None,
        columns: None,
        primary_key: None,
    }
}
