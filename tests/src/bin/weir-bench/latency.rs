//! Commit-to-acknowledgement latency at fixed rates: weir streams while rows are
//! committed on a timer; the delay is weir's `weir_commit_to_ack_seconds`
//! histogram, from PostgreSQL's commit timestamp to the producer's
//! acknowledgement.
//!
//! Beside it, weir and Debezium measured with one ruler: both write Debezium's
//! envelope to topics whose records carry the broker's append time
//! (`LogAppendTime`), and the delay is that time less `source.ts_ms`, the commit
//! time, per message. Milliseconds on both ends, as the fields are.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use weir_tests::bench::{BENCH_TABLE, histogram_quantile, paced_inserts, paced_inserts_after};
use weir_tests::{
    KafkaCluster, MessageCounter, PgCluster, free_loopback_port, http_get, read_topic, unique_name,
};

use crate::readers::{DebeziumRun, slot_active, start_debezium, start_weir};

/// Latency at one rate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Latency {
    pub(crate) rows_per_second: u64,
    pub(crate) rows_per_transaction: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// weir, commit to the broker's append.
    pub weir_appended: Quantiles,
    /// weir with exactly-once, commit to a `read_committed` consumer.
    pub weir_committed: Quantiles,
    /// Debezium on Kafka Connect, commit to the broker's append.
    pub debezium_appended: Quantiles,
}

/// Quantiles of per-message delays, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Quantiles {
    /// Of `delays` (milliseconds), sorted here.
    fn of(mut delays: Vec<f64>) -> anyhow::Result<Quantiles> {
        anyhow::ensure!(!delays.is_empty(), "no delays");
        delays.sort_by(f64::total_cmp);
        let at = |q: f64| {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                clippy::cast_precision_loss
            )]
            let index = ((delays.len() as f64 * q).ceil() as usize).clamp(1, delays.len()) - 1;
            delays[index]
        };
        Ok(Quantiles {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        })
    }

    /// Of the delays from `source.ts_ms` to the append time of every message of
    /// `topic` committed at `since_ms` or later.
    fn appended(brokers: &str, topic: &str, since_ms: i64) -> anyhow::Result<Quantiles> {
        let records = read_topic(brokers, topic, Duration::from_secs(60))?;
        let mut delays: Vec<f64> = Vec::with_capacity(records.len());
        for record in &records {
            let Some(payload) = record.payload.as_deref() else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_slice(payload)?;
            let committed = value["source"]["ts_ms"]
                .as_i64()
                .context("a message without source.ts_ms")?;
            if committed < since_ms {
                continue;
            }
            let appended = record
                .timestamp_ms
                .context("a record without a timestamp")?;
            #[allow(clippy::cast_precision_loss)]
            delays.push((appended - committed) as f64);
        }
        anyhow::ensure!(!delays.is_empty(), "no messages in {topic}");
        Quantiles::of(delays)
    }
}

/// The spec of a weir streaming `public.bench` in Debezium's envelope, with its
/// metrics served.
struct LatencySpec<'a> {
    name: &'a str,
    url: &'a str,
    slot: &'a str,
    brokers: &'a str,
    topic: &'a str,
    address: &'a str,
    exactly_once: bool,
}

impl LatencySpec<'_> {
    /// Writes it into `dir`; returns its path.
    fn write(&self, dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
        let path = dir.join("latency.yaml");
        std::fs::write(
            &path,
            format!(
                "name: {name}
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
    format: debezium-json
    tombstones: false
    exactly_once: {exactly_once}
metrics:
  listen: {address}
",
                name = self.name,
                url = self.url,
                slot = self.slot,
                brokers = self.brokers,
                topic = self.topic,
                exactly_once = self.exactly_once,
                address = self.address,
            ),
        )?;
        Ok(path)
    }
}

/// Topic settings that stamp each record with the broker's append time.
const APPEND_TIME: [(&str, &str); 1] = [("message.timestamp.type", "LogAppendTime")];

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
        broker.create_topic(&topic, 6, 1, &APPEND_TIME)?;
        let address = format!("127.0.0.1:{}", free_loopback_port()?);
        let dir = tempfile::tempdir()?;
        let spec = LatencySpec {
            name: "latency",
            url: &cluster.url(&database),
            slot: &slot,
            brokers: broker.bootstrap_servers(),
            topic: &topic,
            address: &address,
            exactly_once: false,
        }
        .write(dir.path())?;
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
        let weir_appended = Quantiles::appended(broker.bootstrap_servers(), &topic, 0)?;
        let weir_committed = exactly_once(
            cluster,
            broker,
            rows_per_second,
            rows_per_transaction,
            seconds,
        )
        .await?;
        let debezium_appended = debezium(
            cluster,
            broker,
            rows_per_second,
            rows_per_transaction,
            seconds,
        )
        .await?;
        let latency = Latency {
            rows_per_second,
            rows_per_transaction,
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            weir_appended,
            weir_committed,
            debezium_appended,
        };
        println!(
            "latency at {rows_per_second} rows/s: weir p50 ≤ {:.1} ms, p99 ≤ {:.1} ms; \
             to the broker's append: weir {weir_appended:?}, Debezium {debezium_appended:?}; \
             exactly-once to read_committed: {weir_committed:?}",
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

/// weir with `exactly_once: true` streaming rows committed at `rows_per_second`,
/// while a `read_committed` consumer polls the topic: the delays from commit to
/// receipt, when each message's Kafka transaction committed.
async fn exactly_once(
    cluster: &PgCluster,
    broker: &KafkaCluster,
    rows_per_second: u64,
    rows_per_transaction: u64,
    seconds: u64,
) -> anyhow::Result<Quantiles> {
    use rdkafka::consumer::{BaseConsumer, Consumer as _};

    let database = cluster.create_database_with("latency", BENCH_TABLE).await?;
    let slot = unique_name("eoslatency");
    let topic = unique_name("eoslatency");
    broker.create_topic(&topic, 6, 1, &[])?;
    let address = format!("127.0.0.1:{}", free_loopback_port()?);
    let dir = tempfile::tempdir()?;
    let spec = LatencySpec {
        name: &slot,
        url: &cluster.url(&database),
        slot: &slot,
        brokers: broker.bootstrap_servers(),
        topic: &topic,
        address: &address,
        exactly_once: true,
    }
    .write(dir.path())?;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", unique_name("eoslatency"))
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let weir = start_weir(&spec)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !slot_active(cluster, &slot).await? {
        anyhow::ensure!(Instant::now() < deadline, "weir not streaming");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = cluster.connect(&database).await?;
    client.batch_execute("SET synchronous_commit = on").await?;
    let expected = tokio::task::spawn(async move {
        paced_inserts(&client, rows_per_second, rows_per_transaction, seconds).await
    });
    // The consumer polls here while the inserts run, stamping each message as it
    // becomes visible.
    let mut delays = Vec::new();
    while !expected.is_finished() {
        poll_delays(&consumer, &mut delays)?;
    }
    let written = expected.await??;
    let deadline = Instant::now() + Duration::from_secs(120);
    while (delays.len() as u64) < written {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {written} read committed",
            delays.len()
        );
        poll_delays(&consumer, &mut delays)?;
    }
    let (_, text) = http_get(&address, "/metrics")?;
    println!(
        "exactly-once at {rows_per_second} rows/s: Kafka commits p50 ≤ {:.1} ms, p99 ≤ {:.1} ms",
        histogram_quantile(&text, "weir_kafka_commit_seconds", 0.5) * 1e3,
        histogram_quantile(&text, "weir_kafka_commit_seconds", 0.99) * 1e3,
    );
    weir.stop()?;
    cluster
        .execute(
            &database,
            &format!("SELECT pg_drop_replication_slot('{slot}')"),
        )
        .await?;
    Quantiles::of(delays)
}

/// One poll of `consumer`: each message's delay from `source.ts_ms` to now.
fn poll_delays(
    consumer: &rdkafka::consumer::BaseConsumer,
    delays: &mut Vec<f64>,
) -> anyhow::Result<()> {
    use rdkafka::message::Message as _;
    let Some(message) = consumer.poll(Duration::from_millis(20)) else {
        return Ok(());
    };
    let received = i64::try_from(crate::now_millis())?;
    let message = message?;
    if let Some(payload) = message.payload() {
        let value: serde_json::Value = serde_json::from_slice(payload)?;
        let committed = value["source"]["ts_ms"]
            .as_i64()
            .context("a message without source.ts_ms")?;
        #[allow(clippy::cast_precision_loss)]
        delays.push((received - committed) as f64);
    }
    Ok(())
}

/// Debezium on Kafka Connect streaming rows committed at `rows_per_second`:
/// the delays from commit to the broker's append.
async fn debezium(
    cluster: &PgCluster,
    broker: &KafkaCluster,
    rows_per_second: u64,
    rows_per_transaction: u64,
    seconds: u64,
) -> anyhow::Result<Quantiles> {
    let database = cluster.create_database_with("latency", BENCH_TABLE).await?;
    let slot = unique_name("dbzlatency");
    let prefix = unique_name("dbzlatency");
    let topic = format!("{prefix}.public.bench");
    broker.create_topic(&topic, 6, 1, &APPEND_TIME)?;
    let tables = ["public.bench".to_owned()];
    let run = DebeziumRun {
        cluster,
        database: &database,
        slot: &slot,
        publication: &slot,
        tables: &tables,
        prefix: &prefix,
        brokers: broker.bootstrap_servers(),
    };
    let mut connect = start_debezium(&run).await?;
    let client = cluster.connect(&database).await?;
    client.batch_execute("SET synchronous_commit = on").await?;
    let counter = MessageCounter::new(
        broker.bootstrap_servers(),
        std::slice::from_ref(&topic),
        Duration::from_secs(10),
    )?;
    // The JVM compiles its hot code in the first seconds: a first round at the
    // same rate warms it up, and only the second is measured (weir needs none).
    let mut written = 0;
    let mut measured_from = 0;
    for round in ["warm-up", "measured"] {
        if round == "measured" {
            measured_from = i64::try_from(crate::now_millis())?;
        }
        written += paced_inserts_after(
            &client,
            written,
            (rows_per_second, rows_per_transaction),
            seconds,
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while counter.count()? < i64::try_from(written)? {
            connect.check_running()?;
            anyhow::ensure!(
                Instant::now() < deadline,
                "Debezium wrote {} of {written} ({round})",
                counter.count()?
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    drop(connect);
    let quantiles = Quantiles::appended(broker.bootstrap_servers(), &topic, measured_from)?;
    // The killed worker's walsender lets the slot go once it notices.
    let deadline = Instant::now() + Duration::from_secs(30);
    while slot_active(cluster, &slot).await? {
        anyhow::ensure!(Instant::now() < deadline, "Debezium's slot stays active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster
        .execute(
            &database,
            &format!("SELECT pg_drop_replication_slot('{slot}')"),
        )
        .await?;
    Ok(quantiles)
}
