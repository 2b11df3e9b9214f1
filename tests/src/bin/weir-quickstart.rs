//! `weir-quickstart`: the README's first command, end to end on this machine.
//!
//! Starts a throwaway PostgreSQL cluster and a local Kafka-protocol broker, creates the
//! sample shop database (`examples/quickstart.sql`), starts weir's PostgreSQL source on
//! it, writes sample traffic (`examples/quickstart-traffic.sql`) and prints the
//! ChangeBatches the source produces. Everything it started is stopped and deleted
//! when it exits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use arrow::array::{ArrayRef, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::pretty_format_batches;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use weir::Lsn;
use weir::batch::schema::{BEFORE, COMMIT_LSN, LSN, OP, SEQ, UNCHANGED, XID, metadata};
use weir::source::{PostgresSource, PostgresSourceConfig, SourceEvent};
use weir_tests::{Broker, PgCluster};

const SCHEMA_SQL: &str = include_str!("../../../examples/quickstart.sql");
const TRAFFIC_SQL: &str = include_str!("../../../examples/quickstart-traffic.sql");
/// Transactions in the sample traffic.
const TRAFFIC_TRANSACTIONS: usize = 3;

fn step(text: &str) {
    println!("==> {text}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    step("starting a local PostgreSQL 15 cluster (wal_level=logical)");
    let cluster = PgCluster::start().context("starting PostgreSQL")?;
    println!("    {}", cluster.url("shop"));

    step("starting a local Kafka-protocol broker");
    let broker = Broker::start(1).context("starting the broker")?;
    println!("    bootstrap.servers={}", broker.bootstrap_servers());

    step("creating the sample shop database");
    cluster.execute("postgres", "CREATE DATABASE shop").await?;
    cluster
        .execute("shop", SCHEMA_SQL)
        .await
        .context("examples/quickstart.sql")?;

    step(
        "starting weir's PostgreSQL source (publication and slot weir_quickstart, tables public.*)",
    );
    let config = PostgresSourceConfig::new(
        cluster.url("shop").parse()?,
        "weir_quickstart",
        "weir_quickstart",
        vec!["public.*".parse()?],
    );
    let (events_tx, mut events) = mpsc::channel(16);
    let (flushed, flushed_rx) = watch::channel(Lsn::ZERO);
    let shutdown = CancellationToken::new();
    let source = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            PostgresSource::new(config)
                .run(events_tx, flushed_rx, shutdown)
                .await
        }
    });

    let mut committed = 0;
    let mut traffic_written = false;
    while committed < TRAFFIC_TRANSACTIONS {
        let event = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .context("waiting for the source")?
            .context("the source stopped")?;
        match event {
            SourceEvent::SessionStarted { start } => {
                println!("    streaming after {start}");
                step("writing sample traffic: 2 customers, 2 orders, 1 update, 1 delete");
                cluster
                    .execute_script("shop", TRAFFIC_SQL)
                    .await
                    .context("examples/quickstart-traffic.sql")?;
                traffic_written = true;
                step("the ChangeBatches weir's source produced:");
            }
            SourceEvent::Batch(batch) => print_batch(&batch)?,
            SourceEvent::Committed(commit) => {
                // The checkpoint tracker confirms a commit once Kafka acknowledged its
                // messages; the Kafka sink is not built yet, so this stands in for it.
                flushed.send_replace(commit.end_lsn);
                if traffic_written && commit.rows > 0 {
                    committed += 1;
                    println!(
                        "    transaction {} committed at {}: {} rows",
                        commit.xid, commit.commit_lsn, commit.rows
                    );
                }
            }
        }
    }
    println!();
    println!("    weir's Kafka sink is not built yet: once it is, these batches become messages");
    println!(
        "    on {} (see the README's status table).",
        broker.bootstrap_servers()
    );

    step("stopping weir, PostgreSQL and the broker");
    shutdown.cancel();
    while events.recv().await.is_some() {}
    source.await?.context("the source failed")?;
    drop(broker);
    drop(cluster);
    step("done");
    Ok(())
}

/// Prints a batch as a table: the change kind as a letter, WAL positions, the user
/// columns (the `_before` image and `_unchanged` list are left out for width).
fn print_batch(batch: &RecordBatch) -> anyhow::Result<()> {
    let schema = batch.schema();
    let meta = schema.metadata();
    println!(
        "    {}.{} (schema version {}), {} rows:",
        meta[metadata::SCHEMA],
        meta[metadata::TABLE],
        meta[metadata::SCHEMA_VERSION],
        batch.num_rows()
    );
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        match field.name().as_str() {
            BEFORE | UNCHANGED | XID | SEQ | LSN => {}
            OP => {
                let ops = column
                    .as_any()
                    .downcast_ref::<UInt8Array>()
                    .context("_op is UInt8")?;
                let letters: StringArray = ops
                    .iter()
                    .map(|op| op.map(|op| char::from(op).to_string()))
                    .collect();
                fields.push(Field::new(OP, DataType::Utf8, false));
                columns.push(Arc::new(letters));
            }
            COMMIT_LSN => {
                let lsns: StringArray = column
                    .as_any()
                    .downcast_ref::<arrow::array::UInt64Array>()
                    .context("_commit_lsn is UInt64")?
                    .iter()
                    .map(|lsn| lsn.map(|lsn| Lsn(lsn).to_string()))
                    .collect();
                fields.push(Field::new(COMMIT_LSN, DataType::Utf8, false));
                columns.push(Arc::new(lsns));
            }
            _ => {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
    }
    let shown = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    for line in pretty_format_batches(&[shown])?.to_string().lines() {
        println!("    {line}");
    }
    Ok(())
}
