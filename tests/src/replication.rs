//! A published table, a slot and a replication stream on a test cluster.

use std::time::Duration;

use arrow::record_batch::RecordBatch;
use weir::Lsn;
use weir::source::pgoutput::{PgOutputDecoder, PgOutputMessage};
use weir::source::replication::{
    PgOutputOptions, ReplicationConnection, ReplicationEvent, ReplicationStream, SlotSnapshot,
    StandbyStatus,
};
use weir::source::{BatchLimits, BatcherOutput, ChangeBatcher, PgConnectOptions};

use crate::{HarnessError, PgCluster, unique_name};

/// How long to wait for the next replication message.
const RECV_TIMEOUT: Duration = Duration::from_secs(30);

/// A database on a cluster with a publication and a logical slot (pgoutput).
#[derive(Debug)]
pub struct ReplicationFixture {
    pub cluster: PgCluster,
    pub database: String,
    pub slot: String,
    pub publication: String,
}

impl ReplicationFixture {
    /// Creates a database, runs `setup_sql` in it (tables, types), publishes
    /// `publication_target` (`ALL TABLES`, or `TABLE a, b`) and creates a slot.
    pub async fn new(
        cluster: PgCluster,
        setup_sql: &str,
        publication_target: &str,
    ) -> Result<Self, HarnessError> {
        let database = cluster.create_database("repl").await?;
        cluster.execute(&database, setup_sql).await?;
        let publication = unique_name("pub");
        cluster
            .execute(
                &database,
                &format!("CREATE PUBLICATION {publication} FOR {publication_target}"),
            )
            .await?;
        let slot = unique_name("slot");
        let fixture = ReplicationFixture {
            cluster,
            database,
            slot,
            publication,
        };
        fixture
            .connect()
            .await?
            .create_logical_slot(&fixture.slot, false, SlotSnapshot::Nothing, false)
            .await
            .map_err(|e| HarnessError::Replication(format!("create slot: {e}")))?;
        Ok(fixture)
    }

    /// A replication connection to the fixture's database.
    pub async fn connect(&self) -> Result<ReplicationConnection, HarnessError> {
        let config: PgConnectOptions = self
            .cluster
            .url(&self.database)
            .parse()
            .map_err(|e| HarnessError::Replication(format!("{e}")))?;
        ReplicationConnection::connect(&config)
            .await
            .map_err(|e| HarnessError::Replication(format!("replication connection: {e}")))
    }

    /// Starts streaming the slot with weir's default options, adjusted by `adjust`.
    pub async fn start_with(
        &self,
        adjust: impl FnOnce(&mut PgOutputOptions),
    ) -> Result<ReplicationStream, HarnessError> {
        let connection = self.connect().await?;
        let mut options = PgOutputOptions::for_server(
            connection.server_major_version().unwrap_or(15),
            vec![self.publication.clone()],
        );
        adjust(&mut options);
        connection
            .start_logical_replication(&self.slot, Lsn::ZERO, &options)
            .await
            .map_err(|e| HarnessError::Replication(format!("start replication: {e}")))
    }

    /// Starts streaming with weir's default options.
    pub async fn start(&self) -> Result<ReplicationStream, HarnessError> {
        self.start_with(|_| {}).await
    }

    /// Runs SQL in the fixture's database.
    pub async fn sql(&self, sql: &str) -> Result<(), HarnessError> {
        self.cluster.execute(&self.database, sql).await
    }
}

/// Reads and decodes messages until `commits` transactions have committed, answering
/// keepalives without confirming anything. Returns each message with its WAL start.
pub async fn read_transactions(
    stream: &mut ReplicationStream,
    commits: usize,
) -> Result<Vec<(Lsn, PgOutputMessage)>, HarnessError> {
    let mut decoder = PgOutputDecoder::new();
    let mut messages = Vec::new();
    let mut seen = 0;
    while seen < commits {
        let event = tokio::time::timeout(RECV_TIMEOUT, stream.recv())
            .await
            .map_err(|_| HarnessError::Timeout {
                doing: format!("waiting for commit {} of {commits}", seen + 1),
                after: RECV_TIMEOUT,
            })?
            .map_err(|e| HarnessError::Replication(format!("replication stream: {e}")))?;
        match event {
            // Skipped as weir's source skips them (PostgreSQL 13 and 14 send one
            // for a replayed transaction whose origin they cannot name).
            ReplicationEvent::XLogData(data) if data.data.is_empty() => {}
            ReplicationEvent::XLogData(data) => {
                let message = decoder
                    .decode(data.data)
                    .map_err(|e| HarnessError::Replication(format!("decode: {e}")))?;
                if matches!(
                    message,
                    PgOutputMessage::Commit(_) | PgOutputMessage::StreamCommit(_)
                ) {
                    seen += 1;
                }
                messages.push((data.wal_start, message));
            }
            ReplicationEvent::Keepalive(keepalive) if keepalive.reply_requested => {
                stream
                    .send_status(StandbyStatus::at(Lsn::ZERO))
                    .await
                    .map_err(|e| HarnessError::Replication(format!("status: {e}")))?;
            }
            ReplicationEvent::Keepalive(_) => {}
            ReplicationEvent::End => {
                return Err(HarnessError::Replication("stream ended".to_owned()));
            }
        }
    }
    Ok(messages)
}

/// Batches decoded messages with weir's [`ChangeBatcher`] and returns its outputs
/// (batches and commit markers) in order, after a final flush.
pub fn batch_outputs(
    messages: &[(Lsn, PgOutputMessage)],
    limits: BatchLimits,
) -> Result<Vec<BatcherOutput>, HarnessError> {
    let mut batcher = ChangeBatcher::new(limits);
    let mut outputs = Vec::new();
    for (lsn, message) in messages {
        batcher
            .push(message, *lsn)
            .map_err(|e| HarnessError::Replication(format!("batch: {e}")))?;
        while let Some(output) = batcher
            .pop()
            .map_err(|e| HarnessError::Replication(format!("batch: {e}")))?
        {
            outputs.push(output);
        }
    }
    batcher
        .flush()
        .map_err(|e| HarnessError::Replication(format!("batch: {e}")))?;
    while let Some(output) = batcher
        .pop()
        .map_err(|e| HarnessError::Replication(format!("batch: {e}")))?
    {
        outputs.push(output);
    }
    Ok(outputs)
}

/// The batches of [`batch_outputs`], without the commit markers.
pub fn batch_messages(
    messages: &[(Lsn, PgOutputMessage)],
    limits: BatchLimits,
) -> Result<Vec<RecordBatch>, HarnessError> {
    Ok(batch_outputs(messages, limits)?
        .into_iter()
        .filter_map(|output| match output {
            BatcherOutput::Batch(batch) => Some(batch),
            BatcherOutput::Committed(_) | BatcherOutput::SchemaChange(_) => None,
        })
        .collect())
}

/// The batches of one table (by `weir.table`), concatenated; `None` when there are
/// none. Tests compare a table's changes as one batch.
pub fn table_batch(batches: &[RecordBatch], table: &str) -> Option<RecordBatch> {
    let parts: Vec<RecordBatch> = batches
        .iter()
        .filter(|b| {
            b.schema()
                .metadata()
                .get(weir::batch::schema::metadata::TABLE)
                .map(String::as_str)
                == Some(table)
        })
        .cloned()
        .collect();
    let first = parts.first()?;
    arrow::compute::concat_batches(&first.schema(), &parts).ok()
}

/// Publishes the tables `setup` creates on a fresh cluster, runs each entry of
/// `transactions` as one transaction (an entry may hold several statements), and
/// returns weir's ChangeBatches of them (the batcher's output after a final flush).
///
/// Blocking, on a runtime of its own: tests that hand the batches to plugins call
/// those from a plain thread, as the pipeline does.
pub fn captured_batches(
    setup: &str,
    transactions: &[&str],
) -> Result<Vec<RecordBatch>, HarnessError> {
    let runtime =
        tokio::runtime::Runtime::new().map_err(|e| HarnessError::io("start a runtime", e))?;
    runtime.block_on(async {
        let cluster = PgCluster::start()?;
        let fixture = ReplicationFixture::new(cluster, setup, "ALL TABLES").await?;
        let mut stream = fixture.start().await?;
        for sql in transactions {
            fixture.sql(&format!("BEGIN; {sql}; COMMIT")).await?;
        }
        let messages = read_transactions(&mut stream, transactions.len()).await?;
        batch_messages(&messages, BatchLimits::default())
    })
}

/// SQL that inserts `id` into `table` as a subscriber applying another server's
/// change would: in one session, under the replication origin `upstream` (created
/// here), with the origin's commit position set.
pub fn replayed_insert_sql(table: &str, id: i64) -> String {
    format!(
        "SELECT pg_replication_origin_create('upstream');
         SELECT pg_replication_origin_session_setup('upstream');
         BEGIN;
         SELECT pg_replication_origin_xact_setup('0/1000', now());
         INSERT INTO {table} VALUES ({id});
         COMMIT;"
    )
}
