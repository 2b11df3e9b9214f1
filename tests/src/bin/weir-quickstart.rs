//! `weir-quickstart`: the README's first command, end to end on this machine.
//!
//! Starts a throwaway PostgreSQL cluster and a local Apache Kafka broker, creates the
//! sample shop database (`examples/quickstart.sql`), runs `weir run
//! examples/quickstart.yaml` as a separate process, writes sample traffic
//! (`examples/quickstart-traffic.sql`) and prints the messages weir produced, read
//! back from Kafka. Then stops weir with SIGTERM and shows the position it
//! confirmed. Everything it started is stopped and deleted when it exits.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use weir_tests::{KafkaCluster, PgCluster, kafka_version, plugin_dir, read_topic, target_bin_path};

const SCHEMA_SQL: &str = include_str!("../../../examples/quickstart.sql");
const TRAFFIC_SQL: &str = include_str!("../../../examples/quickstart-traffic.sql");
/// The snapshot's one existing customer, then what the sample traffic makes: 2
/// customers, 2 orders, 1 update, 1 delete and its tombstone.
const EXPECTED_MESSAGES: usize = 8;
/// Where weir keeps the snapshot's progress (`weir.<pipeline name>.state`).
const STATE_TOPIC: &str = "weir.quickstart.state";
const TOPICS: [&str; 2] = ["shop.public.customers", "shop.public.orders"];

fn step(text: &str) {
    println!("==> {text}");
}

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart.yaml")
}

/// Stops weir with SIGTERM when dropped, if still running.
struct Weir(Child);

impl Drop for Weir {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    step("starting a local PostgreSQL 15 cluster (wal_level=logical)");
    let cluster = PgCluster::start().context("starting PostgreSQL")?;
    println!("    {}", cluster.url("shop"));

    step(&format!(
        "starting a local Apache Kafka {} broker (KRaft) and the pipeline's topics",
        kafka_version()
    ));
    let broker = KafkaCluster::start(1).context("starting the broker")?;
    println!(
        "    bootstrap.servers={} (started in {:.1} s)",
        broker.bootstrap_servers(),
        broker.started_in().as_secs_f64()
    );

    step("creating the sample shop database");
    cluster.execute("postgres", "CREATE DATABASE shop").await?;
    cluster
        .execute("shop", SCHEMA_SQL)
        .await
        .context("examples/quickstart.sql")?;

    for topic in TOPICS {
        broker.create_topic(topic, 3, 1, &[])?;
    }
    broker.create_topic(STATE_TOPIC, 1, 1, &[("cleanup.policy", "compact")])?;
    println!(
        "    topics {} with 3 partitions each, and weir's state topic {STATE_TOPIC}",
        TOPICS.join(", ")
    );

    step("weir run examples/quickstart.yaml");
    for line in std::fs::read_to_string(spec_path())?.lines() {
        if !line.starts_with('#') {
            println!("    | {line}");
        }
    }
    let mut weir = Weir(
        Command::new(target_bin_path("weir"))
            .arg("run")
            .arg(spec_path())
            .env("PG_URL", cluster.url("shop"))
            .env("BROKERS", broker.bootstrap_servers())
            .env("WEIR_PLUGIN_DIR", plugin_dir())
            .env("RUST_LOG", "warn")
            .spawn()
            .context("starting weir (built by scripts/quickstart.sh)")?,
    );
    wait_for_slot(&cluster, &mut weir.0, true).await?;

    step("writing sample traffic: 2 customers, 2 orders, 1 update, 1 delete");
    cluster
        .execute_script("shop", TRAFFIC_SQL)
        .await
        .context("examples/quickstart-traffic.sql")?;

    step("the messages weir produced, read back from Kafka:");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut records = Vec::new();
    while Instant::now() < deadline {
        records = TOPICS
            .iter()
            .map(|topic| {
                read_topic(broker.bootstrap_servers(), topic, Duration::from_secs(10))
                    .map(|r| r.into_iter().map(move |r| (*topic, r)))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|all| all.into_iter().flatten().collect::<Vec<_>>())
            .unwrap_or_default();
        if records.len() >= EXPECTED_MESSAGES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for (topic, record) in &records {
        println!(
            "\n    {topic} partition {} offset {}  key {}",
            record.partition,
            record.offset,
            record.key_text().unwrap_or_else(|| "null".into())
        );
        match record.payload.as_deref() {
            Some(payload) => {
                let value: serde_json::Value = serde_json::from_slice(payload)?;
                let shown = serde_json::json!({
                    "op": value["op"],
                    "before": value["before"],
                    "after": value["after"],
                    "source": {
                        "table": value["source"]["table"],
                        "lsn": value["source"]["lsn"],
                        "txId": value["source"]["txId"],
                    },
                });
                println!("    {shown}");
            }
            None => println!("    (tombstone)"),
        }
    }
    anyhow::ensure!(
        records.len() == EXPECTED_MESSAGES,
        "expected {EXPECTED_MESSAGES} messages, read {}",
        records.len()
    );

    step("stopping weir (SIGTERM): it waits for Kafka's acknowledgements, then confirms");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(weir.0.id())?),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = weir.0.wait()?;
    anyhow::ensure!(status.success(), "weir exited with {status}");
    wait_for_slot(&cluster, &mut weir.0, false).await?;
    let slot = cluster
        .replication_slots()
        .await?
        .into_iter()
        .find(|s| s.slot_name == "weir_quickstart")
        .context("the slot")?;
    println!(
        "    slot weir_quickstart confirmed up to {}",
        slot.confirmed_flush_lsn
            .map_or_else(|| "nothing".into(), |lsn| lsn.to_string())
    );

    step("stopping PostgreSQL and the broker");
    drop(broker);
    drop(cluster);
    step("done");
    Ok(())
}

/// Waits until weir holds the slot (`active`), or has released it.
async fn wait_for_slot(cluster: &PgCluster, weir: &mut Child, active: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let slots = cluster.replication_slots().await?;
        if slots
            .iter()
            .any(|s| s.slot_name == "weir_quickstart" && s.active == active)
        {
            return Ok(());
        }
        if active && let Some(status) = weir.try_wait()? {
            anyhow::bail!("weir exited early: {status}");
        }
        anyhow::ensure!(Instant::now() < deadline, "weir did not start streaming");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
