//! Snapshot read speed: weir's table reader (binary COPY → ChangeBatches) next to
//! the raw `COPY (SELECT …) TO STDOUT (FORMAT binary)` drained to nothing, on the
//! same table in the same run; then the whole pipeline's snapshot
//! (`snapshot: initial_only`, JSON, into the test broker) on that table.
//!
//! `cargo bench -p weir-tests --bench snapshot`. `WEIR_BENCH_ROWS` (default
//! 1,000,000) rows of the 6-column bench table; `WEIR_BENCH_RUNS` (default 3)
//! repetitions, the median counts.

use std::time::Instant;

use futures_util::StreamExt as _;
use weir::Lsn;
use weir::batch::RowMeta;
use weir::source::SourceEvent;
use weir::source::snapshot::parallel::{plan, read_chunks, snapshot_connection};
use weir::source::snapshot::table::{describe, read};
use weir_tests::bench::{BENCH_TABLE, bench_insert, env_number, median};
use weir_tests::{KafkaCluster, PgCluster, RunningPipeline, unique_name};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = env_number("WEIR_BENCH_ROWS", 1_000_000);
    let runs = env_number("WEIR_BENCH_RUNS", 3).max(1);
    let cluster = PgCluster::builder()
        .setting("shared_buffers", "512MB")
        .start()?;
    let database = cluster.create_database("snapshot").await?;
    cluster.execute(&database, BENCH_TABLE).await?;
    cluster
        .execute(&database, &bench_insert(1, rows as u64))
        .await?;
    cluster.execute(&database, "VACUUM ANALYZE bench").await?;
    let client = cluster.connect(&database).await?;
    let table = describe(&client, "public", "bench").await?;
    let meta = RowMeta {
        op: b'r',
        lsn: Lsn(1),
        commit_lsn: Lsn(1),
        xid: 0,
        commit_time_micros: 0,
        seq: 0,
    };
    let (mut raw, mut ours) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let started = Instant::now();
        let stream = client
            .copy_out("COPY (SELECT * FROM bench) TO STDOUT (FORMAT binary)")
            .await?;
        let mut stream = std::pin::pin!(stream);
        let mut bytes = 0usize;
        while let Some(chunk) = stream.next().await {
            bytes += chunk?.len();
        }
        std::hint::black_box(bytes);
        raw.push(started.elapsed().as_secs_f64());

        let started = Instant::now();
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<arrow::record_batch::RecordBatch>(16);
        let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
        let read_rows = read(&client, &table, meta, 8192, &sender).await?;
        drop(sender);
        drain.await?;
        anyhow::ensure!(read_rows as usize == rows, "read {read_rows} of {rows}");
        ours.push(started.elapsed().as_secs_f64());
    }
    // Two connections on one exported snapshot, the table in 8 key ranges.
    let options: weir::source::PgConnectOptions = cluster.url(&database).parse()?;
    let holder = cluster.connect(&database).await?;
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await?;
    let snapshot: String = holder
        .query_one("SELECT pg_export_snapshot()", &[])
        .await?
        .get(0);
    let mut parallel = Vec::new();
    for _ in 0..runs {
        let mut clients = Vec::new();
        for _ in 0..2 {
            clients.push(std::sync::Arc::new(
                snapshot_connection(&options, &snapshot).await?,
            ));
        }
        let chunks = plan(&clients[0], &table, rows as u64 / 8, 100).await?;
        let started = Instant::now();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
        let reading = tokio::spawn({
            let table = table.clone();
            let chunks = chunks.into_iter().enumerate().collect();
            async move { read_chunks(clients, &table, chunks, meta, 8192, None, sender).await }
        });
        while let Some(SourceEvent::Batch(_) | SourceEvent::Snapshot(_)) = receiver.recv().await {}
        let read_rows = reading.await??;
        anyhow::ensure!(read_rows as usize == rows, "read {read_rows} of {rows}");
        parallel.push(started.elapsed().as_secs_f64());
    }
    let parallel = median(parallel);
    let (raw, ours) = (median(raw), median(ours));
    #[allow(clippy::cast_precision_loss)]
    let rate = |seconds: f64| rows as f64 / seconds;
    println!("snapshot of {rows} rows, 6 columns, median of {runs}");
    println!("| reader | seconds | rows/s | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| COPY (FORMAT binary) drained | {raw:.2} | {:.0} | 1.00 |",
        rate(raw)
    );
    println!(
        "| weir: COPY → ChangeBatches, one connection | {ours:.2} | {:.0} | {:.2} |",
        rate(ours),
        raw / ours
    );
    println!(
        "| weir: 2 connections, 8 key ranges, one snapshot | {parallel:.2} | {:.0} | {:.2} |",
        rate(parallel),
        raw / parallel
    );

    // The whole pipeline: the snapshot through the encoder and the producer into
    // the broker, until Kafka acknowledged every row.
    let broker = KafkaCluster::builder().heap_mb(1024).start()?;
    broker.create_topic("bench.rows", 6, 1, &[])?;
    broker.create_topic("weir.snapbench.state", 1, 1, &[])?;
    let mut piped = Vec::new();
    for _ in 0..runs {
        let spec = format!(
            "name: snapbench
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.bench]
    snapshot: initial_only
sink:
  kafka:
    brokers: {brokers}
    topic: bench.rows
    format: json
",
            url = cluster.url(&database),
            slot = unique_name("snapbench"),
            brokers = broker.bootstrap_servers(),
        );
        let started = Instant::now();
        let pipeline = RunningPipeline::start(&spec)?;
        let stats = std::sync::Arc::clone(&pipeline.stats);
        pipeline.join(std::time::Duration::from_secs(600)).await?;
        let sent = stats.messages.load(std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(sent as usize == rows, "sent {sent} of {rows}");
        piped.push(started.elapsed().as_secs_f64());
    }
    let piped = median(piped);
    println!(
        "| weir run, snapshot: initial_only, json, acknowledged by the broker | {piped:.2} | {:.0} | {:.2} |",
        rate(piped),
        raw / piped
    );
    Ok(())
}
