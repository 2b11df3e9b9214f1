//! End to end: rows/s from a committed PostgreSQL transaction to messages Kafka has
//! acknowledged, through the whole pipeline (source → encoder → router → producer →
//! checkpoint), per format.
//!
//! `cargo bench -p weir-tests --bench pipeline`. For each format a fresh pipeline
//! (its own slot) starts streaming, one transaction inserts `WEIR_BENCH_ROWS`
//! (default 200,000) rows of a 6-column table, and the clock runs from the insert's
//! commit until the slot's confirmed position passes it, which happens only after
//! Kafka acknowledged every message. The broker is the local test broker (librdkafka's
//! in-memory mock cluster, one broker, 6 partitions) on the same 2 cores, so the
//! figure is weir and broker together; a real cluster takes the broker's share off
//! this machine.
//!
//! Then commit-to-acknowledgement latency at 1 k and 10 k rows/s (see [`latency`]).

use std::time::{Duration, Instant};

use weir_tests::bench::{
    BENCH_TABLE as TABLE, bench_insert, env_number, histogram_quantile, paced_inserts,
};
use weir_tests::{KafkaCluster, PgCluster, RunningPipeline, SchemaRegistry, unique_name};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = env_number("WEIR_BENCH_ROWS", 200_000);
    let cluster = PgCluster::builder()
        .setting("shared_buffers", "512MB")
        .setting("max_wal_size", "4GB")
        .start()?;
    let broker = KafkaCluster::builder().heap_mb(1024).start()?;
    let registry = SchemaRegistry::start()?;
    let database = cluster.create_database("bench").await?;
    cluster.execute(&database, TABLE).await?;
    let formats = [
        ("json", String::new()),
        ("debezium-json", String::new()),
        ("canal-json", String::new()),
        ("avro", format!("    schema_registry: {}\n", registry.url())),
    ];
    println!("end to end, {rows} rows in one transaction, 6 columns, one broker with 6 partitions");
    println!("| format | seconds | rows/s |");
    println!("|---|---|---|");
    for (format, extra) in formats {
        let (pipeline, slot) = start_pipeline(
            &cluster,
            &broker,
            &database,
            &format!("    format: {format}\n{extra}"),
        )
        .await?;
        cluster.execute(&database, "TRUNCATE bench").await?;
        let started = Instant::now();
        cluster
            .execute(&database, &bench_insert(1, rows as u64))
            .await?;
        let committed = cluster.current_wal_lsn().await?;
        let inserted = started.elapsed();
        cluster
            .wait_confirmed(&slot, committed, Duration::from_secs(600))
            .await?;
        // The clock starts at the commit: the INSERT itself is PostgreSQL's work.
        let seconds = (started.elapsed() - inserted).as_secs_f64();
        #[allow(clippy::cast_precision_loss)]
        let rate = rows as f64 / seconds;
        println!("| {format} | {seconds:.2} | {rate:.0} |");
        stop_pipeline(pipeline, &cluster, &database, &slot).await?;
    }
    latency(&cluster, &broker, &database).await
}

/// Commit-to-acknowledgement latency at fixed rates: transactions committed on a
/// timer for `WEIR_BENCH_LATENCY_SECONDS` (default 10), the delay taken from
/// weir's `weir_commit_to_ack_seconds` histogram (PostgreSQL's commit timestamp to
/// the producer's acknowledgement; buckets 25% apart, so quantiles are bucket
/// bounds).
async fn latency(cluster: &PgCluster, broker: &KafkaCluster, database: &str) -> anyhow::Result<()> {
    let seconds = env_number("WEIR_BENCH_LATENCY_SECONDS", 10) as u64;
    println!();
    println!("commit-to-acknowledgement latency, json, one broker ({seconds} s per rate)");
    println!("| rate | transactions/s | rows per transaction | p50 | p99 |");
    println!("|---|---|---|---|---|");
    for (rows_per_second, rows_per_transaction) in [(1_000u64, 1u64), (10_000, 10)] {
        let (pipeline, slot) =
            start_pipeline(cluster, broker, database, "    format: json\n").await?;
        cluster.execute(database, "TRUNCATE bench").await?;
        let client = cluster.connect(database).await?;
        let written =
            paced_inserts(&client, rows_per_second, rows_per_transaction, seconds).await?;
        pipeline
            .wait_for_messages(written, Duration::from_secs(120))
            .await?;
        let text = pipeline.stats.metrics.render();
        let quantile = |q| histogram_quantile(&text, "weir_commit_to_ack_seconds", q);
        let (p50, p99) = (quantile(0.5), quantile(0.99));
        println!(
            "| {rows_per_second} rows/s | {} | {rows_per_transaction} | ≤ {:.1} ms | ≤ {:.1} ms |",
            rows_per_second / rows_per_transaction,
            p50 * 1e3,
            p99 * 1e3
        );
        stop_pipeline(pipeline, cluster, database, &slot).await?;
    }
    Ok(())
}

/// Starts a pipeline on `public.bench` with its own slot and a fresh 6-partition
/// topic, `sink` adding lines under `sink.kafka`; returns it once it streams, with
/// its slot.
async fn start_pipeline(
    cluster: &PgCluster,
    broker: &KafkaCluster,
    database: &str,
    sink: &str,
) -> anyhow::Result<(RunningPipeline, String)> {
    let slot = unique_name("bench");
    let topic = unique_name("bench");
    broker.create_topic(&topic, 6, 1, &[])?;
    let spec = format!(
        "name: bench
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.bench]
    heartbeat: off
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
{sink}",
        url = cluster.url(database),
        brokers = broker.bootstrap_servers(),
    );
    let pipeline = RunningPipeline::start(&spec)?;
    pipeline.wait_streaming(Duration::from_secs(60)).await?;
    Ok((pipeline, slot))
}

/// Stops `pipeline` and drops its slot, so the next run starts clean.
async fn stop_pipeline(
    pipeline: RunningPipeline,
    cluster: &PgCluster,
    database: &str,
    slot: &str,
) -> anyhow::Result<()> {
    pipeline.stop().await?;
    cluster
        .execute(
            database,
            &format!("SELECT pg_drop_replication_slot('{slot}')"),
        )
        .await?;
    Ok(())
}
