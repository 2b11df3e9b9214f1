//! `weir run` as a process, through a broker outage: while Kafka is away weir waits
//! and the slot's `confirmed_flush_lsn` never passes data Kafka has not
//! acknowledged; when it returns every row arrives exactly once; SIGTERM stops weir
//! cleanly with everything confirmed.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{KafkaCluster, Lsn, PgCluster, read_topic, target_bin_path, unique_name};

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
    let mut broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "outage",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    let slot_name = unique_name("slot");
    let topic = unique_name("events");
    broker
        .create_topic(&topic, PARTITIONS, 1, &[])
        .expect("topic");
    broker
        .create_topic("weir.outage.state", 1, 1, &[])
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
    broker.kill(1).expect("down");
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
    broker.start_node(1).expect("up");
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

/// Issue 15, item 2: a planned PostgreSQL restart (`pg_ctl stop -m fast`) under a
/// steady writer. weir reconnects within its retry window instead of stopping,
/// every committed row arrives, and few are sent twice: the walsender waits for
/// weir's confirmation of what it sent before it shuts down.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clean_postgres_restart_is_ridden_out_and_resends_little() {
    let mut cluster = PgCluster::start().expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "restart",
            "CREATE TABLE events (id bigserial PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    let slot_name = unique_name("slot");
    let topic = unique_name("events");
    broker
        .create_topic(&topic, PARTITIONS, 1, &[])
        .expect("topic");
    broker
        .create_topic("weir.restart.state", 1, 1, &[])
        .expect("state topic");
    let pipeline = weir_tests::RunningPipeline::start(&format!(
        "name: restart
source:
  postgres:
    url: {url}
    slot: {slot_name}
    publication: {slot_name}
    tables: [public.events]
    heartbeat: 1s
    retry_window: 2m
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: json
",
        url = cluster.url(&database),
        brokers = broker.bootstrap_servers(),
    ))
    .expect("starts");
    pipeline
        .wait_streaming(Duration::from_secs(60))
        .await
        .expect("streaming");

    // One small transaction after another, reconnecting while the server is away.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let url = cluster.url(&database);
        let stop = std::sync::Arc::clone(&stop);
        async move {
            let mut committed = 0_u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((client, connection)) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await
                else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                tokio::spawn(connection);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if client
                        .batch_execute("INSERT INTO events (body) VALUES ('row')")
                        .await
                        .is_err()
                    {
                        break;
                    }
                    committed += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            committed
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    let down = cluster.restart().expect("restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let committed = writer.await.expect("writer");
    assert!(
        !pipeline.is_finished(),
        "weir stopped on a routine restart (down {down:?})"
    );

    let client = cluster.connect(&database).await.expect("connect");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0);
    let rows = u64::try_from(rows).expect("count");
    assert!(
        rows >= committed && committed > 500,
        "{committed} committed, {rows} rows"
    );
    let mut seen = BTreeSet::new();
    let mut sent = 0;
    wait_until(Duration::from_secs(60), "every row in Kafka", || {
        let ids = ids(broker.bootstrap_servers(), &topic);
        sent = ids.len();
        seen = ids.into_iter().collect();
        std::future::ready(seen.len() as u64 == rows)
    })
    .await;
    let resent = sent - seen.len();
    eprintln!("{rows} rows, {resent} sent twice, server down {down:?}");
    assert!(
        (resent as u64) * 100 <= rows,
        "{resent} of {rows} rows sent twice after a clean restart"
    );
    assert_eq!(
        pipeline
            .stats
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    pipeline.stop().await.expect("clean stop");
}

/// Issue 15, item 6: a stop asked while weir retries a topic lookup against an
/// unreachable Kafka ends within `shutdown_timeout`, not the retry window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_kafka_is_unreachable_ends_within_the_shutdown_timeout() {
    let closed = weir_tests::free_loopback_port().expect("port");
    let pipeline = weir_tests::RunningPipeline::start(&format!(
        "name: unreachable
source:
  postgres:
    url: postgres://weir@127.0.0.1:{closed}/db
    slot: unreachable
    publication: unreachable
    tables: [public.events]
sink:
  kafka:
    brokers: 127.0.0.1:{closed}
    retry_window: 1h
shutdown_timeout: 2s
"
    ))
    .expect("starts");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!pipeline.is_finished(), "it waits for Kafka");
    let asked = Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(30), pipeline.stop())
        .await
        .expect("stopped within 30 s of the request");
    let took = asked.elapsed();
    assert!(ended.is_err(), "nothing was delivered: not a clean stop");
    assert!(
        took < Duration::from_secs(10),
        "the stop took {took:?} with a shutdown_timeout of 2 s"
    );
}
