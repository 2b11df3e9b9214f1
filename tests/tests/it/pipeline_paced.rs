//! Many small transactions at a steady pace through `weir run`, with
//! asynchronous commit: every row must arrive. This caught weir confirming a keepalive's end of WAL and then dropping
//! the transaction whose commit record started exactly there as "already
//! confirmed" (three rows in two thousand).

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use weir_tests::{KafkaCluster, PgCluster, read_topic, target_bin_path, unique_name};

const TRANSACTIONS: i64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_row_of_many_paced_transactions_arrives() {
    // Asynchronous commit lets the WAL writer flush an insert before its commit
    // record, so the server reads up to a commit record's start and, caught up,
    // sends a keepalive ending exactly there.
    let cluster = PgCluster::builder()
        .setting("synchronous_commit", "off")
        .start()
        .expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "paced",
            "CREATE TABLE ticks (id bigint PRIMARY KEY, at timestamptz)",
        )
        .await
        .expect("database");
    broker
        .create_topic("paced.ticks", 3, 1, &[])
        .expect("topic");
    let slot = unique_name("paced");
    let dir = tempfile::tempdir().expect("dir");
    let spec = dir.path().join("paced.yaml");
    std::fs::write(
        &spec,
        format!(
            "name: paced
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.ticks]
    snapshot: never
sink:
  kafka:
    brokers: {brokers}
    topic: paced.ticks
    format: json
",
            url = cluster.url(&database),
            brokers = broker.bootstrap_servers(),
        ),
    )
    .expect("spec");
    let mut weir = Command::new(target_bin_path("weir"))
        .arg("run")
        .arg(&spec)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("weir starts");
    cluster
        .wait_streaming(&slot, Duration::from_secs(60))
        .await
        .expect("weir streams");

    let client = cluster.connect(&database).await.expect("client");
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    for id in 1..=TRANSACTIONS {
        tick.tick().await;
        client
            .batch_execute(&format!("INSERT INTO ticks VALUES ({id}, now())"))
            .await
            .expect("insert");
    }
    // The insert position, not the write position: under synchronous_commit=off the
    // last commits may not be written yet, and waiting for less than them would
    // stop weir before it read them.
    let end = cluster.wal_insert_lsn().await.expect("lsn");
    cluster
        .wait_confirmed(&slot, end, Duration::from_secs(60))
        .await
        .expect("weir confirms the end");
    let _ = weir.kill();
    let _ = weir.wait();

    let ids: BTreeSet<i64> = read_topic(
        broker.bootstrap_servers(),
        "paced.ticks",
        Duration::from_secs(30),
    )
    .expect("read back")
    .iter()
    .filter_map(|r| r.payload.as_deref())
    .map(|p| {
        serde_json::from_slice::<serde_json::Value>(p).expect("json")["id"]
            .as_i64()
            .expect("id")
    })
    .collect();
    let missing: Vec<i64> = (1..=TRANSACTIONS).filter(|id| !ids.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "rows confirmed but never sent: {missing:?}"
    );
}
