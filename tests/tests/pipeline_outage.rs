//! `weir run` as a process, through a broker outage: while Kafka is away weir waits
//! and the slot's `confirmed_flush_lsn` never passes data Kafka has not
//! acknowledged; when it returns every row arrives exactly once; SIGTERM stops weir
//! cleanly with everything confirmed.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{Broker, Lsn, PgCluster, read_topic, target_bin_path, unique_name};

const PARTITIONS: u32 = 3;

/// The slot's `confirmed_flush_lsn`, and whether a reader holds it.
async fn slot(cluster: &PgCluster, name: &str) -> Option<(Lsn, bool)> {
    cluster
        .replication_slots()
        .await
        .expect("slots")
        .into_iter()
        .find(|s| s.slot_name == name)
        .and_then(|s| Some((s.confirmed_flush_lsn?, s.active)))
}

async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ids(bootstrap: &str, topic: &str) -> Vec<i64> {
    read_topic(bootstrap, topic, Duration::from_secs(30))
        .expect("read back")
        .iter()
        .map(|r| {
            let value: serde_json::Value =
                serde_json::from_slice(r.payload.as_deref().expect("value")).expect("json");
            value["id"].as_i64().expect("id")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_run_rides_out_a_broker_outage_and_stops_cleanly() {
    let cluster = PgCluster::start().expect("postgres");
    let broker = Broker::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "outage",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    let slot_name = unique_name("slot");
    let topic = unique_name("events");
    broker.create_topic(&topic, PARTITIONS).expect("topic");
    broker
        .create_topic("weir.outage.state", 1)
        .expect("state topic");

    // The spec reads its connection settings from the environment.
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = dir.path().join("pipeline.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: outage
source:
  postgres:
    url: ${{PG_URL}}
    slot: {slot_name}
    publication: {slot_name}
    tables: [public.events]
sink:
  kafka:
    brokers: ${{BROKERS}}
    topic: {topic}
    format: json
    linger_ms: 1
"
        ),
    )
    .expect("spec");
    let log = std::fs::File::create(dir.path().join("weir.log")).expect("log");
    let mut weir = Command::new(target_bin_path("weir"))
        .arg("run")
        .arg(&spec)
        .env("PG_URL", cluster.url(&database))
        .env("BROKERS", broker.bootstrap_servers())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("weir runs (built by cargo test --workspace)");
    let log_text = || std::fs::read_to_string(dir.path().join("weir.log")).unwrap_or_default();

    wait_until(Duration::from_secs(60), "weir to hold the slot", || async {
        slot(&cluster, &slot_name)
            .await
            .is_some_and(|(_, active)| active)
    })
    .await;

    // Kafka up: the first transaction is delivered and confirmed.
    cluster
        .execute(
            &database,
            "INSERT INTO events SELECT n, 'first' FROM generate_series(1, 100) n",
        )
        .await
        .expect("first");
    let after_first = cluster.current_wal_lsn().await.expect("lsn");
    wait_until(
        Duration::from_secs(30),
        "the first transaction confirmed",
        || async {
            slot(&cluster, &slot_name)
                .await
                .is_some_and(|(lsn, _)| lsn >= after_first)
        },
    )
    .await;

    // Kafka away: the second transaction is read but not confirmed.
    broker.broker_down(1).expect("down");
    let before_second = cluster.current_wal_lsn().await.expect("lsn");
    cluster
        .execute(
            &database,
            "INSERT INTO events SELECT n, 'second' FROM generate_series(101, 200) n",
        )
        .await
        .expect("second");
    let after_second = cluster.current_wal_lsn().await.expect("lsn");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (confirmed, _) = slot(&cluster, &slot_name).await.expect("slot");
        assert!(
            confirmed <= before_second,
            "confirmed {confirmed} passed unacknowledged data (second transaction at {before_second})"
        );
    }
    assert!(
        weir.try_wait().expect("status").is_none(),
        "weir waits, it does not give up:\n{}",
        log_text()
    );

    // Kafka back: everything arrives, exactly once, and is confirmed.
    broker.broker_up(1).expect("up");
    wait_until(
        Duration::from_secs(60),
        "the second transaction confirmed",
        || async {
            slot(&cluster, &slot_name)
                .await
                .is_some_and(|(lsn, _)| lsn >= after_second)
        },
    )
    .await;
    let delivered = ids(broker.bootstrap_servers(), &topic);
    assert_eq!(delivered.len(), 200, "exactly once");
    assert_eq!(
        delivered.iter().copied().collect::<BTreeSet<_>>(),
        (1..=200).collect()
    );

    // SIGTERM: a clean stop, the slot released with everything confirmed.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(weir.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = weir.try_wait().expect("status") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "weir did not stop:\n{}",
            log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}:\n{}", log_text());
    assert!(log_text().contains("pipeline stopped"), "{}", log_text());
    let (confirmed, active) = slot(&cluster, &slot_name).await.expect("slot");
    assert!(!active);
    assert!(confirmed >= after_second);
}
