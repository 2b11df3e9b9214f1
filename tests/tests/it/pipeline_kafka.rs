//! weir against real Apache Kafka: topic creation and the compacted state topic,
//! SASL_SSL with SCRAM (good and bad credentials), ACLs that deny, a broker killed
//! with `kill -9` under load, and leader failover in a three-node cluster with
//! `acks=all` and `min.insync.replicas=2`.
//!
//! Every load test runs a writer from before weir starts until after the fault is
//! over, mixing one-row transactions with 500-row ones, and then checks that every
//! row the database holds arrived in Kafka (read back with kcat, an independent
//! client) and that the slot confirmed only what Kafka acknowledged.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use weir_tests::{
    KafkaCluster, Lsn, PgCluster, RunningPipeline, SaslMechanism, kcat_read_with, unique_name,
};

const STREAMING: Duration = Duration::from_secs(90);

/// A table written to from before weir starts until [`Writer::finish`]: mostly
/// one-row transactions, every tenth a 500-row one.
struct Writer {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<u64>,
    transactions: Arc<AtomicU64>,
}

impl Writer {
    fn start(url: String) -> Self {
        let stop = CancellationToken::new();
        let transactions = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let stop = stop.clone();
            let transactions = Arc::clone(&transactions);
            async move {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .expect("writer connects");
                tokio::spawn(connection);
                let mut n = 0u64;
                while !stop.is_cancelled() {
                    let rows = if n % 10 == 9 { 500 } else { 1 };
                    client
                        .batch_execute(&format!(
                            "INSERT INTO events (body) SELECT repeat('x', 40) FROM generate_series(1, {rows})"
                        ))
                        .await
                        .expect("insert");
                    n += 1;
                    transactions.store(n, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                n
            }
        });
        Self {
            stop,
            task,
            transactions,
        }
    }

    /// Waits until `more` further transactions committed.
    async fn wait_for(&self, more: u64) {
        let target = self.transactions.load(Ordering::Relaxed) + more;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.transactions.load(Ordering::Relaxed) < target {
            assert!(Instant::now() < deadline, "the writer stalled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn finish(self) -> u64 {
        self.stop.cancel();
        self.task.await.expect("writer")
    }
}

async fn events_database(cluster: &PgCluster, stem: &str, rows: u32) -> String {
    cluster
        .create_database_with(
            stem,
            &format!(
                "CREATE TABLE events (id bigserial PRIMARY KEY, body text);
                 INSERT INTO events (body) SELECT 'before' FROM generate_series(1, {rows});"
            ),
        )
        .await
        .expect("database")
}

async fn table_ids(cluster: &PgCluster, database: &str) -> BTreeSet<i64> {
    cluster
        .connect(database)
        .await
        .expect("connect")
        .query("SELECT id FROM events", &[])
        .await
        .expect("ids")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The `id` of every JSON message in `topic`, read with kcat; and how many messages.
fn topic_ids(kafka: &KafkaCluster, topic: &str) -> (BTreeSet<i64>, usize) {
    let records =
        kcat_read_with(kafka.bootstrap_servers(), &kafka.admin_properties(), topic).expect("kcat");
    let ids = records
        .iter()
        .filter_map(|r| r.payload.as_deref())
        .map(|payload| {
            let value: serde_json::Value = serde_json::from_str(payload).expect("json");
            value["id"].as_i64().expect("id")
        })
        .collect();
    (ids, records.len())
}

/// The YAML `properties:` block for `properties`, indented for `sink.kafka`.
fn properties_yaml(properties: &[(String, String)]) -> String {
    if properties.is_empty() {
        return String::new();
    }
    let mut yaml = "    properties:\n".to_owned();
    for (key, value) in properties {
        yaml.push_str(&format!("      {key}: \"{value}\"\n"));
    }
    yaml
}

struct Spec<'a> {
    name: &'a str,
    url: String,
    slot: &'a str,
    brokers: &'a str,
    topic: &'a str,
    snapshot: &'a str,
    extra_sink: String,
}

impl Spec<'_> {
    fn yaml(&self) -> String {
        format!(
            "name: {name}
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    snapshot: {snapshot}
    retry_window: 5m
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: json
    linger: 5ms
{extra}",
            name = self.name,
            url = self.url,
            slot = self.slot,
            snapshot = self.snapshot,
            brokers = self.brokers,
            topic = self.topic,
            extra = self.extra_sink,
        )
    }
}

/// A table with `rows` rows and a [`Writer`] on it, streamed by weir (snapshot
/// `initial`) into a 3-partition topic of `replication` replicas.
struct Loaded {
    cluster: PgCluster,
    database: String,
    slot: String,
    topic: String,
    writer: Writer,
    pipeline: RunningPipeline,
}

impl Loaded {
    async fn start(
        kafka: &KafkaCluster,
        name: &str,
        rows: u32,
        replication: u32,
        extra_sink: &str,
    ) -> Self {
        let cluster = PgCluster::start().expect("postgres");
        let database = events_database(&cluster, name, rows).await;
        let slot = unique_name("slot");
        let topic = unique_name("events");
        kafka
            .create_topic(&topic, 3, replication, &[])
            .expect("topic");
        let writer = Writer::start(cluster.url(&database));
        writer.wait_for(20).await;
        let pipeline = RunningPipeline::start(
            &Spec {
                name,
                url: cluster.url(&database),
                slot: &slot,
                brokers: kafka.bootstrap_servers(),
                topic: &topic,
                snapshot: "initial",
                extra_sink: extra_sink.to_owned(),
            }
            .yaml(),
        )
        .expect("pipeline");
        if let Err(waiting) = pipeline.wait_streaming(STREAMING).await {
            let ended = pipeline.join(Duration::from_secs(10)).await;
            panic!("{waiting}: {ended:?}");
        }
        writer.wait_for(200).await;
        Self {
            cluster,
            database,
            slot,
            topic,
            writer,
            pipeline,
        }
    }

    /// Stops the writer, waits until the slot confirmed everything it wrote, stops
    /// the pipeline, and checks that every row of the table arrived.
    async fn finish(self, kafka: &KafkaCluster) {
        let transactions = self.writer.finish().await;
        let end = self.cluster.wal_insert_lsn().await.expect("lsn");
        let finished = self.pipeline.is_finished();
        self.cluster
            .wait_confirmed(&self.slot, end, Duration::from_secs(180))
            .await
            .unwrap_or_else(|e| panic!("{e}; pipeline finished: {finished}"));
        let summary = self.pipeline.stop().await.expect("a clean stop");
        eprintln!("{transactions} writer transactions; {summary:?}");
        let expected = table_ids(&self.cluster, &self.database).await;
        let (delivered, messages) = topic_ids(kafka, &self.topic);
        let missing: Vec<_> = expected.difference(&delivered).take(10).collect();
        assert!(
            missing.is_empty(),
            "{} of {} rows missing from Kafka, e.g. {missing:?}",
            expected.difference(&delivered).count(),
            expected.len()
        );
        eprintln!(
            "{} rows, {messages} messages ({} sent again after the fault)",
            expected.len(),
            messages - delivered.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_weir_creates_have_the_partitions_and_replicas_asked_for_and_the_state_topic_is_compacted()
 {
    let kafka = KafkaCluster::start(3).expect("kafka");
    let cluster = PgCluster::start().expect("postgres");
    let database = events_database(&cluster, "create", 1000).await;
    let slot = unique_name("slot");
    let topic = unique_name("events");
    let pipeline = RunningPipeline::start(
        &Spec {
            name: "create",
            url: cluster.url(&database),
            slot: &slot,
            brokers: kafka.bootstrap_servers(),
            topic: &topic,
            snapshot: "initial",
            extra_sink: "    create_topics: { partitions: 4, replication_factor: 3 }\n".to_owned(),
        }
        .yaml(),
    )
    .expect("pipeline");
    pipeline.wait_streaming(STREAMING).await.expect("streaming");
    pipeline
        .wait_for_messages(1000, Duration::from_secs(60))
        .await
        .expect("the snapshot");
    let partitions = kafka.partitions(&topic).expect("data topic");
    assert_eq!(partitions.len(), 4);
    assert!(
        partitions.iter().all(|p| p.replicas.len() == 3),
        "{partitions:?}"
    );

    let state = kafka.partitions("weir.create.state").expect("state topic");
    assert_eq!(state.len(), 1, "the state topic keeps its records in order");
    assert_eq!(state[0].replicas.len(), 3, "{state:?}");
    let configs = kafka.topic_configs("weir.create.state").expect("configs");
    assert!(
        configs.contains(&("cleanup.policy".to_owned(), "compact".to_owned())),
        "{configs:?}"
    );
    pipeline.stop().await.expect("stop");
    let (ids, _) = topic_ids(&kafka, &topic);
    assert_eq!(ids.len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sasl_ssl_with_scram_delivers_with_good_credentials_and_stops_with_the_cause_on_bad_ones() {
    let kafka = KafkaCluster::builder()
        .sasl(SaslMechanism::ScramSha512)
        .tls()
        .user("weir", "weir-secret")
        .start()
        .expect("kafka");
    let cluster = PgCluster::start().expect("postgres");
    let database = events_database(&cluster, "scram", 0).await;
    let topic = unique_name("events");
    kafka.create_topic(&topic, 3, 1, &[]).expect("topic");

    let slot = unique_name("slot");
    let spec = |password: &str| {
        Spec {
            name: "scram",
            url: cluster.url(&database),
            slot: &slot,
            brokers: kafka.bootstrap_servers(),
            topic: &topic,
            snapshot: "never",
            extra_sink: properties_yaml(&kafka.client_properties("weir", password)),
        }
        .yaml()
    };

    // A wrong password: weir stops, naming the cause, and does not retry for ever.
    let started = Instant::now();
    let refused = RunningPipeline::start(&spec("wrong-secret")).expect("pipeline");
    let error = refused
        .join(Duration::from_secs(60))
        .await
        .expect_err("a wrong password stops weir");
    let text = format!("{error:#}");
    eprintln!("refused after {:?}: {text}", started.elapsed());
    assert!(
        text.contains("Authentication failed") || text.contains("invalid credentials"),
        "{text}"
    );
    assert!(
        text.contains("sasl.password"),
        "the hint names the setting: {text}"
    );
    assert!(
        !text.contains("wrong-secret"),
        "the password stays secret: {text}"
    );

    // The right one: rows arrive.
    let pipeline = RunningPipeline::start(&spec("weir-secret")).expect("pipeline");
    pipeline.wait_streaming(STREAMING).await.expect("streaming");
    cluster
        .execute(
            &database,
            "INSERT INTO events (body) SELECT 'x' FROM generate_series(1, 300)",
        )
        .await
        .expect("rows");
    let end = cluster.wal_insert_lsn().await.expect("lsn");
    cluster
        .wait_confirmed(&slot, end, Duration::from_secs(60))
        .await
        .expect("confirmed");
    pipeline.stop().await.expect("stop");
    assert_eq!(topic_ids(&kafka, &topic).0.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_acl_that_denies_the_topic_stops_weir_with_the_cause_and_confirms_nothing() {
    let kafka = KafkaCluster::builder()
        .sasl(SaslMechanism::Plain)
        .acls()
        .user("weir", "weir-secret")
        .start()
        .expect("kafka");
    let cluster = PgCluster::start().expect("postgres");
    let database = events_database(&cluster, "acl", 0).await;
    let topic = unique_name("events");
    kafka.create_topic(&topic, 3, 1, &[]).expect("topic");
    let weir = kafka.client_properties("weir", "weir-secret");
    let spec = |slot: &str| {
        Spec {
            name: "acl",
            url: cluster.url(&database),
            slot,
            brokers: kafka.bootstrap_servers(),
            topic: &topic,
            snapshot: "never",
            extra_sink: properties_yaml(&weir),
        }
        .yaml()
    };

    // No ACL at all: the topic is looked up for the first row, the lookup is
    // denied, and the error says what to grant.
    let slot = unique_name("slot");
    let denied = RunningPipeline::start(&spec(&slot)).expect("pipeline");
    denied.wait_streaming(STREAMING).await.expect("streaming");
    cluster
        .execute(&database, "INSERT INTO events (body) VALUES ('first')")
        .await
        .expect("a row");
    let error = denied
        .join(Duration::from_secs(60))
        .await
        .expect_err("denied");
    let text = format!("{error:#}");
    eprintln!("no ACL: {text}");
    assert!(text.contains("denies access to topic"), "{text}");
    assert!(text.contains("Describe and Write"), "{text}");

    // Describe but not Write: the lookup passes, the first delivery is refused, and
    // nothing is confirmed to PostgreSQL.
    kafka
        .allow("User:weir", &["Describe"], &["--topic", &topic])
        .expect("acl");
    let pipeline = RunningPipeline::start(&spec(&slot)).expect("pipeline");
    pipeline.wait_streaming(STREAMING).await.expect("streaming");
    let before = cluster
        .confirmed_flush_lsn(&slot)
        .await
        .expect("slot")
        .unwrap_or(Lsn::ZERO);
    let before_insert = cluster.wal_insert_lsn().await.expect("lsn");
    cluster
        .execute(
            &database,
            "INSERT INTO events (body) SELECT 'x' FROM generate_series(1, 10)",
        )
        .await
        .expect("rows");
    let error = pipeline
        .join(Duration::from_secs(60))
        .await
        .expect_err("the write is denied");
    let text = format!("{error:#}");
    eprintln!("Describe only: {text}");
    assert!(
        text.contains("Authorization") || text.contains("authorization"),
        "{text}"
    );
    let after = cluster
        .confirmed_flush_lsn(&slot)
        .await
        .expect("slot")
        .unwrap_or(Lsn::ZERO);
    assert!(
        after <= before.max(before_insert),
        "confirmed {after} past the denied rows (written after {before_insert})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_killed_with_sigkill_under_load_loses_no_committed_row() {
    let mut kafka = KafkaCluster::start(1).expect("kafka");
    let loaded = Loaded::start(&kafka, "kill", 20_000, 1, "").await;
    kafka.kill(1).expect("kill -9");
    loaded.writer.wait_for(100).await;
    assert!(!loaded.pipeline.is_finished(), "weir waits for the broker");
    let back = kafka.start_node(1).expect("restart");
    eprintln!("the broker was back in {back:?}");
    loaded.writer.wait_for(200).await;
    loaded.finish(&kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_leader_killed_in_a_three_node_cluster_with_min_insync_two_loses_no_committed_row() {
    let mut kafka = KafkaCluster::builder()
        .nodes(3)
        .min_insync_replicas(2)
        .start()
        .expect("kafka");
    let loaded = Loaded::start(&kafka, "failover", 5_000, 3, "    acks: all\n").await;
    let leader = kafka.partitions(&loaded.topic).expect("partitions")[0].leader;
    let leader = u32::try_from(leader).expect("partition 0 has a leader");
    kafka.kill(leader).expect("kill -9 the leader");
    loaded.writer.wait_for(300).await;
    assert!(
        !loaded.pipeline.is_finished(),
        "two in-sync replicas remain: weir goes on"
    );
    // The controller notices the dead broker when its session times out.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = kafka.partitions(&loaded.topic).expect("partitions")[0].leader;
        if now >= 0 && now != i32::try_from(leader).expect("id") {
            break;
        }
        assert!(Instant::now() < deadline, "no new leader for partition 0");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    loaded.writer.wait_for(100).await;
    kafka.start_node(leader).expect("the old leader returns");
    loaded.writer.wait_for(100).await;
    loaded.finish(&kafka).await;
}
