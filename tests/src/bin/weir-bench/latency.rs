//! Commit-to-acknowledgement latency at fixed rates: weir streams while rows are
//! committed on a timer; the delay is weir's `weir_commit_to_ack_seconds`
//! histogram, from PostgreSQL's commit timestamp to the producer's
//! acknowledgement.

use std::time::{Duration, Instant};

use serde::Serialize;
use weir_tests::bench::{BENCH_TABLE, histogram_quantile, paced_inserts};
use weir_tests::{KafkaCluster, PgCluster, free_loopback_port, http_get, unique_name};

use crate::readers::start_weir;

/// Latency at one rate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) rows_per_second: u64,
    pub(crate) rows_per_transaction: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Measures at 1 k and 10 k rows/s for `seconds` each.
pub(crate) async fn measure(
    cluster: &PgCluster,
    broker: &KafkaCluster,
    seconds: u64,
) -> anyhow::Result<Vec<Latency>> {
    let mut out = Vec::new();
    for (rows_per_second, rows_per_transaction) in [(1_000u64, 1u64), (10_000, 10)] {
        let database = cluster.create_database_with("latency", BENCH_TABLE).await?;
        let slot = unique_name("latency");
        let topic = unique_name("latency");
        broker.create_topic(&topic, 6, 1, &[])?;
        let address = format!("127.0.0.1:{}", free_loopback_port()?);
        let dir = tempfile::tempdir()?;
        let spec = dir.path().join("latency.yaml");
        std::fs::write(
            &spec,
            format!(
                "name: latency
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.bench]
    snapshot: never
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: json
metrics:
  listen: {address}
",
                url = cluster.url(&database),
                brokers = broker.bootstrap_servers(),
            ),
        )?;
        let weir = start_weir(&spec)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while !http_get(&address, "/ready").is_ok_and(|(status, _)| status.contains("200")) {
            anyhow::ensure!(Instant::now() < deadline, "weir not ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let client = cluster.connect(&database).await?;
        // The cluster commits asynchronously for the workloads' sake; here the
        // WAL writer's 200 ms would dominate what is measured.
        client.batch_execute("SET synchronous_commit = on").await?;
        let written =
            paced_inserts(&client, rows_per_second, rows_per_transaction, seconds).await?;
        let rows = written;
        let deadline = Instant::now() + Duration::from_secs(120);
        let text = loop {
            let (_, text) = http_get(&address, "/metrics")?;
            let counted = text
                .lines()
                .find_map(|l| l.strip_prefix("weir_commit_to_ack_seconds_count "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            #[allow(clippy::cast_precision_loss)]
            if counted >= rows as f64 {
                break text;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{counted} of {rows} acknowledged"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        weir.stop()?;
        let quantile = |q| histogram_quantile(&text, "weir_commit_to_ack_seconds", q) * 1e3;
        let latency = Latency {
            rows_per_second,
            rows_per_transaction,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
        };
        println!(
            "latency at {rows_per_second} rows/s: p50 ≤ {:.1} ms, p99 ≤ {:.1} ms",
            latency.p50_ms, latency.p99_ms
        );
        out.push(latency);
        cluster
            .execute(
                &database,
                &format!("SELECT pg_drop_replication_slot('{slot}')"),
            )
            .await?;
    }
    Ok(out)
}
