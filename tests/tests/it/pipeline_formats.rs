//! End to end, per format: real PostgreSQL → the pipeline (as `weir run` runs it) →
//! a three-broker Kafka-protocol cluster, read back and checked row by row: values,
//! keys, partitions (against kafka-python's murmur2), headers, and the slot's
//! confirmed position after a clean stop.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use weir_tests::{
    KafkaCluster, Lsn, PgCluster, Record, RunningPipeline, SchemaRegistry, fastavro_decode,
    kafka_python_partitions, read_topic, read_topic_committed, unique_name,
};

const PARTITIONS: u32 = 4;
const WAIT: Duration = Duration::from_secs(60);

/// A shop database with one table, its topic, and a broker cluster.
struct Shop {
    cluster: PgCluster,
    broker: KafkaCluster,
    database: String,
    slot: String,
    topic: String,
}

impl Shop {
    async fn start() -> Shop {
        let cluster = PgCluster::start().expect("postgres");
        let broker = KafkaCluster::start(1).expect("broker");
        let database = cluster.create_database("shop").await.expect("database");
        cluster
            .execute(
                &database,
                "CREATE TABLE orders (
                     id bigint PRIMARY KEY,
                     customer text NOT NULL,
                     total numeric(10,2),
                     tags text[],
                     placed timestamptz NOT NULL DEFAULT '2026-11-21 10:00:00+00'
                 )",
            )
            .await
            .expect("table");
        let topic = format!("{database}.public.orders");
        broker
            .create_topic(&topic, PARTITIONS, 1, &[])
            .expect("topic");
        broker
            .create_topic("weir.shop.state", 1, 1, &[])
            .expect("state topic");
        Shop {
            cluster,
            broker,
            slot: unique_name("slot"),
            database,
            topic,
        }
    }

    /// A spec for this shop; `sink` adds lines under `sink.kafka`.
    fn spec(&self, sink: &str) -> String {
        format!(
            "name: shop
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.orders]
    heartbeat: off
sink:
  kafka:
    brokers: {brokers}
    linger_ms: 1
{sink}",
            url = self.cluster.url(&self.database),
            slot = self.slot,
            brokers = self.broker.bootstrap_servers(),
        )
    }

    /// 40 inserts in one transaction, 10 updates in two, 5 deletes in one.
    /// 40 inserts, 10 updates in two transactions, 5 deletes.
    const TRAFFIC: [&str; 4] = [
        "INSERT INTO orders (id, customer, total, tags)
           SELECT n, 'customer ' || n, n * 2.5, ARRAY['a', 'b' || n]
           FROM generate_series(1, 40) n",
        "UPDATE orders SET total = total + 100 WHERE id <= 5",
        "UPDATE orders SET total = total + 100 WHERE id BETWEEN 6 AND 10",
        "DELETE FROM orders WHERE id BETWEEN 31 AND 35",
    ];

    async fn traffic(&self) {
        self.execute_all(&Self::TRAFFIC).await;
    }

    async fn execute_all(&self, statements: &[&str]) {
        for statement in statements {
            self.cluster
                .execute(&self.database, statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
    }

    async fn confirmed_flush(&self) -> Option<Lsn> {
        self.cluster
            .replication_slots()
            .await
            .expect("slots")
            .into_iter()
            .find(|s| s.slot_name == self.slot)
            .and_then(|s| s.confirmed_flush_lsn)
    }

    fn records(&self) -> Vec<Record> {
        read_topic(self.broker.bootstrap_servers(), &self.topic, WAIT).expect("read back")
    }
}

/// Runs `sink` on the shop's traffic; returns the records and checks what every
/// format shares: partitions by kafka-python's murmur2 of the key, the headers, and
/// that a clean stop confirms exactly what Kafka holds (a restart sends nothing).
async fn run_traffic(shop: &Shop, sink: &str, expected_messages: u64) -> Vec<Record> {
    run_traffic_then(shop, sink, &[], expected_messages).await
}

/// [`run_traffic`], with `more` statements after the shop's traffic.
async fn run_traffic_then(
    shop: &Shop,
    sink: &str,
    more: &[&str],
    expected_messages: u64,
) -> Vec<Record> {
    let before = shop.cluster.current_wal_lsn().await.expect("lsn");
    let pipeline = RunningPipeline::start(&shop.spec(sink)).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    shop.traffic().await;
    shop.execute_all(more).await;
    pipeline
        .wait_for_messages(expected_messages, WAIT)
        .await
        .expect("messages");
    let summary = pipeline.stop().await.expect("clean stop");
    assert!(summary.flushed > before, "flushed {}", summary.flushed);
    assert_eq!(shop.confirmed_flush().await, Some(summary.flushed));

    let records = shop.records();
    assert_eq!(records.len() as u64, expected_messages);
    let keys: Vec<Vec<u8>> = records
        .iter()
        .map(|r| r.key.clone().expect("keyed"))
        .collect();
    let partitions = kafka_python_partitions(&keys, PARTITIONS);
    for (record, partition) in records.iter().zip(partitions) {
        assert_eq!(record.partition, partition, "key {:?}", record.key_text());
        let lsn = record.header_text("weir.lsn").expect("weir.lsn");
        assert!(lsn.parse::<Lsn>().is_ok_and(|lsn| lsn > before), "{lsn}");
        assert!(
            record
                .header_text("weir.xid")
                .is_some_and(|x| x.parse::<u32>().is_ok())
        );
        assert!(
            record
                .header_text("weir.op")
                .is_some_and(|op| ["c", "u", "d"].contains(&op.as_str()))
        );
    }

    // Restarted, the pipeline resumes after what it confirmed: nothing is sent
    // again. It must first be seen reading to the end of the WAL (its slot
    // confirms the end), or a pipeline that read nothing would pass the count.
    let again = RunningPipeline::start(&shop.spec(sink)).expect("restarts");
    again.wait_streaming(WAIT).await.expect("streaming again");
    let end = shop.cluster.current_wal_lsn().await.expect("lsn");
    let deadline = std::time::Instant::now() + WAIT;
    while shop
        .confirmed_flush()
        .await
        .is_none_or(|confirmed| confirmed < end)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted pipeline never read to {end}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = again
        .stats
        .messages
        .load(std::sync::atomic::Ordering::Relaxed);
    again.stop().await.expect("clean stop");
    assert_eq!(sent, 0, "a clean stop confirms what Kafka acknowledged");
    records
}

/// Debezium's `source` block of a streamed change of `public.orders`.
fn assert_source(source: &Json, database: &str) {
    assert_eq!(source["connector"], "postgresql");
    assert_eq!(source["name"], "shop");
    assert_eq!(source["db"], database);
    assert_eq!(source["schema"], "public");
    assert_eq!(source["table"], "orders");
    assert_eq!(source["snapshot"], "false");
    assert!(source["txId"].as_i64().is_some_and(|x| x > 0), "{source}");
    assert!(source["lsn"].as_i64().is_some_and(|x| x > 0), "{source}");
}

fn json(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).expect("JSON")
}

/// Per id, the sequence of (op, value) in offset order.
fn by_id(records: &[Record], id_of_key: impl Fn(&Json) -> i64) -> BTreeMap<i64, Vec<Option<Json>>> {
    let mut out: BTreeMap<i64, Vec<Option<Json>>> = BTreeMap::new();
    for record in records {
        let key = json(record.key.as_deref().expect("key"));
        out.entry(id_of_key(&key))
            .or_default()
            .push(record.payload.as_deref().map(json));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_json_end_to_end() {
    let shop = Shop::start().await;
    // 40 creates, 10 updates, 5 deletes each followed by a tombstone.
    let records = run_traffic(&shop, "    format: debezium-json\n    decimal_handling_mode: string\n    partition: primary_key\n", 60).await;
    let per_id = by_id(&records, |key| key["id"].as_i64().expect("id"));
    assert_eq!(per_id.len(), 40);
    for (id, events) in &per_id {
        let create = events[0].as_ref().expect("create");
        assert_eq!(create["op"], "c");
        assert_eq!(create["before"], Json::Null);
        assert_eq!(create["after"]["id"], *id);
        assert_eq!(create["after"]["customer"], format!("customer {id}"));
        assert_eq!(create["after"]["total"], format!("{:.2}", *id as f64 * 2.5));
        assert_eq!(
            create["after"]["tags"],
            serde_json::json!(["a", format!("b{id}")])
        );
        assert_eq!(create["after"]["placed"], "2026-11-21T10:00:00.000000Z");
        assert_source(&create["source"], &shop.database);
        match id {
            1..=10 => {
                let update = events[1].as_ref().expect("update");
                assert_eq!(update["op"], "u");
                assert_eq!(
                    update["after"]["total"],
                    format!("{:.2}", *id as f64 * 2.5 + 100.0)
                );
                assert_eq!(events.len(), 2);
            }
            31..=35 => {
                let delete = events[1].as_ref().expect("delete");
                assert_eq!(delete["op"], "d");
                assert_eq!(delete["after"], Json::Null);
                assert_eq!(delete["before"]["id"], *id);
                assert_eq!(events[2], None, "a tombstone follows the delete");
                assert_eq!(events.len(), 3);
            }
            _ => assert_eq!(events.len(), 1),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canal_json_end_to_end() {
    let shop = Shop::start().await;
    let records = run_traffic(&shop, "    format: canal-json\n", 55).await;
    let per_id = by_id(&records, |key| {
        key["id"]
            .as_str()
            .expect("text id")
            .parse()
            .expect("number")
    });
    assert_eq!(per_id.len(), 40);
    for (id, events) in &per_id {
        let insert = events[0].as_ref().expect("insert");
        assert_eq!(insert["type"], "INSERT");
        assert_eq!(insert["database"], "public", "the schema");
        assert_eq!(insert["table"], "orders");
        assert_eq!(insert["pkNames"], serde_json::json!(["id"]));
        assert_eq!(insert["isDdl"], false);
        assert_eq!(insert["mysqlType"]["total"], "decimal(10,2)");
        assert_eq!(insert["data"][0]["id"], id.to_string());
        assert_eq!(
            insert["data"][0]["total"],
            format!("{:.2}", *id as f64 * 2.5)
        );
        match id {
            1..=10 => assert_eq!(events[1].as_ref().expect("update")["type"], "UPDATE"),
            31..=35 => assert_eq!(events[1].as_ref().expect("delete")["type"], "DELETE"),
            _ => assert_eq!(events.len(), 1),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_end_to_end_through_a_plugin() {
    let shop = Shop::start().await;
    // sql-filter keeps ids up to 20: 20 inserts and 10 updates; the deletes of
    // 31..35 are filtered out.
    let sink = "    format: json\n    decimal_handling_mode: double\n";
    let spec_plugins = "plugins:\n  - name: small\n    wasm: sql-filter.wasm\n    config: { where: \"id <= 20\" }\n";
    let before = shop.cluster.current_wal_lsn().await.expect("lsn");
    let spec = shop
        .spec(sink)
        .replace("sink:\n", &format!("{spec_plugins}sink:\n"));
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    shop.traffic().await;
    pipeline
        .wait_for_messages(30, WAIT)
        .await
        .expect("messages");
    // The filtered-out deletes still move the slot: wait for their commit.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let summary = pipeline.stop().await.expect("clean stop");
    assert!(summary.flushed > before);
    let records = shop.records();
    assert_eq!(records.len(), 30);
    for record in &records {
        let value = json(record.payload.as_deref().expect("value"));
        let id = value["id"].as_i64().expect("id");
        assert!(id <= 20, "{value}");
        assert_eq!(
            value["_op"],
            if value["total"].as_f64() > Some(100.0) {
                "u"
            } else {
                "c"
            }
        );
        assert!(
            value["_commit_lsn"]
                .as_u64()
                .is_some_and(|lsn| lsn > before.0)
        );
    }
    let deletes_end = shop.cluster.current_wal_lsn().await.expect("lsn");
    assert!(
        shop.confirmed_flush()
            .await
            .is_some_and(|c| c <= deletes_end && c == summary.flushed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_end_to_end_read_by_fastavro() {
    let shop = Shop::start().await;
    let registry = SchemaRegistry::start().expect("registry");
    let transactions_topic = format!("{}.transaction", shop.database);
    shop.broker
        .create_topic(&transactions_topic, 1, 1, &[])
        .expect("topic");
    let sink = format!(
        "    format: avro\n    schema_registry: {}\n    transaction_topic: {transactions_topic}\n",
        registry.url()
    );
    // The shop's traffic, then a new column: a second value schema version.
    let more = [
        "ALTER TABLE orders ADD COLUMN note text",
        "INSERT INTO orders (id, customer, total, note) VALUES (41, 'late', 0.5, 'hello')",
    ];
    let records = run_traffic_then(&shop, &sink, &more, 61).await;
    let messages: Vec<_> = records
        .iter()
        .map(|r| (r.key.clone(), r.payload.clone()))
        .collect();
    let decoded = fastavro_decode(registry.url(), &messages).expect("fastavro reads every message");
    assert_eq!(decoded.len(), 61);

    let mut per_id: BTreeMap<i64, Vec<&Json>> = BTreeMap::new();
    let mut value_schema_ids = std::collections::BTreeSet::new();
    for message in &decoded {
        let key = &message["key"]["datum"];
        per_id
            .entry(key["id"].as_i64().expect("key id"))
            .or_default()
            .push(&message["value"]);
        if let Some(id) = message["value"]["schema_id"].as_u64() {
            value_schema_ids.insert(id);
        }
    }
    assert_eq!(per_id.len(), 41);
    assert_eq!(
        value_schema_ids.len(),
        2,
        "the new column registered a new version"
    );
    for (id, events) in &per_id {
        let create = &events[0]["datum"];
        assert_eq!(create["op"], "c");
        assert_eq!(create["before"], Json::Null);
        let after = &create["after"];
        assert_eq!(after["id"], *id);
        if *id == 41 {
            assert_eq!(after["note"], "hello");
            assert_eq!(after["total"]["decimal"], "0.50");
            continue;
        }
        assert_eq!(after["customer"], format!("customer {id}"));
        assert_eq!(
            after["total"]["decimal"],
            format!("{:.2}", *id as f64 * 2.5)
        );
        assert_eq!(after["tags"], serde_json::json!(["a", format!("b{id}")]));
        assert_eq!(after["placed"], "2026-11-21T10:00:00.000000Z");
        assert_source(&create["source"], &shop.database);
        match id {
            1..=10 => {
                let update = &events[1]["datum"];
                assert_eq!(update["op"], "u");
                assert_eq!(
                    update["after"]["total"]["decimal"],
                    format!("{:.2}", *id as f64 * 2.5 + 100.0)
                );
                assert_eq!(events.len(), 2);
            }
            31..=35 => {
                let delete = &events[1]["datum"];
                assert_eq!(delete["op"], "d");
                assert_eq!(delete["after"], Json::Null);
                assert_eq!(delete["before"]["id"], *id);
                assert_eq!(*events[2], Json::Null, "a tombstone follows the delete");
                assert_eq!(events.len(), 3);
            }
            _ => assert_eq!(events.len(), 1),
        }
    }

    // The registry holds both subjects under Kafka's default naming.
    let subjects = registry_get(registry.url(), "/subjects");
    for suffix in ["key", "value"] {
        let subject = format!("{}-{suffix}", shop.topic);
        assert!(
            subjects
                .as_array()
                .is_some_and(|s| s.contains(&Json::from(subject.clone()))),
            "{subjects}"
        );
    }
    let versions = registry_get(
        registry.url(),
        &format!("/subjects/{}-value/versions", shop.topic),
    );
    assert_eq!(versions, serde_json::json!([1, 2]));

    // Transaction metadata in Avro too: BEGIN/END pairs whose END counts the events
    // that carry the same id in their transaction block.
    let metadata: Vec<_> = read_topic(shop.broker.bootstrap_servers(), &transactions_topic, WAIT)
        .expect("transaction topic")
        .into_iter()
        .map(|r| (r.key, r.payload))
        .collect();
    let metadata = fastavro_decode(registry.url(), &metadata).expect("fastavro reads them");
    assert_eq!(metadata.len(), 10, "five transactions");
    for pair in metadata.chunks(2) {
        let (begin, end) = (&pair[0]["value"]["datum"], &pair[1]["value"]["datum"]);
        assert_eq!(
            (begin["status"].as_str(), end["status"].as_str()),
            (Some("BEGIN"), Some("END"))
        );
        let id = end["id"].as_str().expect("id");
        let events = decoded
            .iter()
            .filter(|m| m["value"]["datum"]["transaction"]["id"] == id)
            .count();
        assert_eq!(end["event_count"], events as u64);
        assert_eq!(
            end["data_collections"][0]["data_collection"],
            "public.orders"
        );
    }
}

/// A GET against the registry, with Python's HTTP client.
fn registry_get(base: &str, path: &str) -> Json {
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())",
            &format!("{base}{path}"),
        ])
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_metadata_and_heartbeats() {
    transaction_metadata_case(false).await;
}

/// With exactly-once, BEGIN/END and heartbeats commit in the pipeline's Kafka
/// transactions: `read_committed` consumers see them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_exactly_once_transaction_metadata_and_heartbeats_commit_with_the_rows() {
    transaction_metadata_case(true).await;
}

async fn transaction_metadata_case(exactly_once: bool) {
    let shop = Shop::start().await;
    let read = |topic: &str| {
        if exactly_once {
            read_topic_committed(shop.broker.bootstrap_servers(), topic, WAIT)
        } else {
            read_topic(shop.broker.bootstrap_servers(), topic, WAIT)
        }
    };
    let transactions_topic = format!("{}.transaction", shop.database);
    let heartbeats_topic = format!("__debezium-heartbeat.{}", shop.database);
    shop.broker
        .create_topic(&transactions_topic, 1, 1, &[])
        .expect("topic");
    shop.broker
        .create_topic(&heartbeats_topic, 1, 1, &[])
        .expect("topic");
    let mut sink = format!(
        "    format: debezium-json\n    transaction_topic: {transactions_topic}\n    heartbeat_topic: {heartbeats_topic}\n    heartbeat_interval: 200ms\n"
    );
    if exactly_once {
        sink.push_str("    exactly_once: true\n");
    }
    let records = run_traffic(&shop, &sink, 60).await;

    // Data events: the transaction block numbers them within their transaction.
    let mut events_per_transaction: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for record in &records {
        let Some(value) = record.payload.as_deref().map(json) else {
            continue;
        };
        let block = &value["transaction"];
        let id = block["id"].as_str().expect("transaction id").to_owned();
        assert_eq!(
            block["total_order"], block["data_collection_order"],
            "one table"
        );
        events_per_transaction
            .entry(id)
            .or_default()
            .push(block["total_order"].as_u64().expect("order"));
    }
    assert_eq!(events_per_transaction.len(), 4);
    for orders in events_per_transaction.values() {
        let mut sorted = orders.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=orders.len() as u64).collect::<Vec<_>>());
    }

    // BEGIN and END per transaction; END counts the events.
    let metadata = read(&transactions_topic).expect("transaction topic");
    assert_eq!(metadata.len(), 8);
    for pair in metadata.chunks(2) {
        let begin = json(pair[0].payload.as_deref().expect("begin"));
        let end = json(pair[1].payload.as_deref().expect("end"));
        assert_eq!(begin["status"], "BEGIN");
        assert_eq!(begin["event_count"], Json::Null);
        assert_eq!(end["status"], "END");
        assert_eq!(begin["id"], end["id"]);
        assert_eq!(
            json(pair[0].key.as_deref().expect("key")),
            serde_json::json!({"id": begin["id"]})
        );
        let id = end["id"].as_str().expect("id");
        let count = events_per_transaction[id].len() as u64;
        assert_eq!(end["event_count"], count);
        assert_eq!(
            end["data_collections"],
            serde_json::json!([{"data_collection": "public.orders", "event_count": count}])
        );
    }

    let heartbeats = read(&heartbeats_topic).expect("heartbeat topic");
    assert!(!heartbeats.is_empty());
    assert_eq!(
        json(heartbeats[0].key.as_deref().expect("key")),
        serde_json::json!({"serverName": "shop"})
    );
    assert!(json(heartbeats[0].payload.as_deref().expect("value"))["ts_ms"].is_i64());
}

/// (op, id) of a `json` record.
fn op_and_id(record: &Record) -> (String, i64) {
    let row = json(record.payload.as_deref().expect("row"));
    (
        row["_op"].as_str().expect("op").to_owned(),
        row["id"].as_i64().expect("id"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_dead_letters_its_batch_and_the_pipeline_goes_on() {
    dead_letters_case(false).await;
}

/// With exactly-once, dead letters go in the pipeline's Kafka transactions: a
/// `read_committed` consumer of the dead-letter topic sees them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_exactly_once_dead_letters_commit_in_the_pipeline_transactions() {
    dead_letters_case(true).await;
}

async fn dead_letters_case(exactly_once: bool) {
    let shop = Shop::start().await;
    let dead_letters = format!("{}.dlq", shop.database);
    shop.broker
        .create_topic(&dead_letters, 1, 1, &[])
        .expect("topic");
    let plugins = "plugins:\n  - name: no-deletes\n    wasm: misbehave.wasm\n    config: { mode: trap-on-delete }\n    on_error: dead_letter\n";
    let mut sink = format!("    format: json\n    dead_letter_topic: {dead_letters}\n");
    if exactly_once {
        sink.push_str("    exactly_once: true\n");
    }
    let spec = shop
        .spec(&sink)
        .replace("sink:\n", &format!("{plugins}sink:\n"));
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    shop.traffic().await;
    let after_traffic = shop.cluster.current_wal_lsn().await.expect("lsn");
    // 55 changes: the batch holding the deletes traps and goes to the dead-letter
    // topic whole (the source may have batched updates with it).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let sent = pipeline
            .stats
            .messages
            .load(std::sync::atomic::Ordering::Relaxed);
        let dead = pipeline
            .stats
            .dead_lettered
            .load(std::sync::atomic::Ordering::Relaxed);
        if sent + dead >= 55 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sent} sent, {dead} dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let summary = pipeline.stop().await.expect("clean stop");
    assert!(
        summary.flushed >= after_traffic,
        "the dead-lettered transaction is confirmed"
    );
    let delivered: Vec<_> = shop.records().iter().map(op_and_id).collect();
    let letters = if exactly_once {
        read_topic_committed(shop.broker.bootstrap_servers(), &dead_letters, WAIT)
    } else {
        read_topic(shop.broker.bootstrap_servers(), &dead_letters, WAIT)
    }
    .expect("dlq");
    let mut everything = delivered.clone();
    for letter in &letters {
        assert_eq!(
            letter.header_text("weir.dlq.stage").as_deref(),
            Some("no-deletes")
        );
        assert_eq!(
            letter.header_text("weir.dlq.error.kind").as_deref(),
            Some("trap")
        );
        let row = json(letter.payload.as_deref().expect("row"));
        let op = letter.header_text("weir.op").expect("op");
        everything.push((op, row["id"].as_i64().expect("id")));
    }
    assert!(
        delivered.iter().all(|(op, _)| op != "d"),
        "no delete got past the plugin"
    );
    assert_eq!(
        letters
            .iter()
            .filter(|l| l.header_text("weir.op").as_deref() == Some("d"))
            .count(),
        5
    );
    everything.sort();
    everything.dedup();
    assert_eq!(
        everything.len(),
        55,
        "every change delivered or dead-lettered, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_plugin_under_fail_stops_the_pipeline_before_its_transaction() {
    let shop = Shop::start().await;
    let plugins = "plugins:\n  - name: no-deletes\n    wasm: misbehave.wasm\n    config: { mode: trap-on-delete }\n";
    let spec = shop
        .spec("    format: json\n")
        .replace("sink:\n", &format!("{plugins}sink:\n"));
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    // The inserts and updates are delivered before the deletes come: a batch
    // holding both (they can share one when the machine is slow) fails whole.
    let (before_deletes, deletes) = Shop::TRAFFIC.split_at(3);
    shop.execute_all(before_deletes).await;
    pipeline
        .wait_for_messages(50, WAIT)
        .await
        .expect("inserts and updates");
    shop.execute_all(deletes).await;
    let error = pipeline.join(WAIT).await.expect_err("the pipeline fails");
    let message = format!("{error:#}");
    assert!(message.contains("no-deletes"), "{message}");
    // What came before the failing batch was delivered; the failing batch's
    // transactions are not confirmed, so a fixed pipeline gets them again.
    let first: Vec<_> = shop.records().iter().map(op_and_id).collect();
    assert!(first.len() >= 40 && first.iter().all(|(op, _)| op != "d"));
    let confirmed = shop.confirmed_flush().await.expect("slot");
    let deletes_end = shop.cluster.current_wal_lsn().await.expect("lsn");
    assert!(
        confirmed < deletes_end,
        "confirmed {confirmed}, deletes end {deletes_end}"
    );
    let again = RunningPipeline::start(&shop.spec("    format: json\n")).expect("restarts");
    again
        .wait_for_messages(55 - first.len() as u64, WAIT)
        .await
        .expect("the rest, again");
    again.stop().await.expect("clean stop");
    let mut everything: Vec<_> = shop.records().iter().map(op_and_id).collect();
    assert_eq!(everything.iter().filter(|(op, _)| op == "d").count(), 5);
    everything.sort();
    everything.dedup();
    assert_eq!(everything.len(), 55, "nothing lost");
}

/// The value of the sample `name` (with its labels, as exposed) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    weir_tests::metric_sample(text, name).unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_was_written() {
    let shop = Shop::start().await;
    let port = weir_tests::free_loopback_port().expect("port");
    let address = format!("127.0.0.1:{port}");
    // Streaming only: the snapshot's progress records would add produce latencies.
    let spec = shop
        .spec("    format: json\n")
        .replace("heartbeat: off\n", "heartbeat: off\n    snapshot: never\n")
        .replace(
            "sink:\n",
            "plugins:\n  - name: small\n    wasm: sql-filter.wasm\n    config: { where: \"id <= 20\" }\nsink:\n",
        )
        + &format!("metrics:\n  listen: {address}\n");
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    let (status, _) = get(&address, "/ready");
    assert_eq!(status, "HTTP/1.1 200 OK");
    shop.traffic().await;
    pipeline
        .wait_for_messages(30, WAIT)
        .await
        .expect("messages");
    // The deletes' transaction passes through without messages; let it land.
    let deadline = std::time::Instant::now() + WAIT;
    let text = loop {
        let (status, text) = get(&address, "/metrics");
        assert_eq!(status, "HTTP/1.1 200 OK");
        if sample(&text, "weir_transactions_total") >= 4.0
            && sample(&text, "weir_messages_in_flight") == 0.0
        {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let table = "table=\"public.orders\"";
    assert_eq!(
        sample(
            &text,
            &format!("weir_rows_in_total{{stage=\"source\",{table}}}")
        ),
        55.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("weir_rows_in_total{{stage=\"small\",{table}}}")
        ),
        55.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("weir_rows_out_total{{stage=\"small\",{table}}}")
        ),
        30.0
    );
    assert_eq!(
        sample(
            &text,
            &format!("weir_rows_out_total{{stage=\"sink\",{table}}}")
        ),
        30.0
    );
    assert_eq!(sample(&text, "weir_produce_latency_seconds_count"), 30.0);
    assert_eq!(sample(&text, "weir_commit_to_ack_seconds_count"), 30.0);
    assert_eq!(sample(&text, "weir_transactions_total"), 4.0);
    assert!(sample(&text, &format!("weir_sink_bytes_total{{{table}}}")) > 30.0 * 50.0);
    assert!(sample(&text, "weir_plugin_seconds_total{stage=\"small\"}") > 0.0);
    assert!(sample(&text, "weir_flush_lsn") > 0.0);
    assert_eq!(sample(&text, "weir_up"), 1.0);
    let (status, _) = get(&address, "/health");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _) = get(&address, "/nothing");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    pipeline.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_row_throttle_holds_the_rate() {
    let shop = Shop::start().await;
    const RATE: u64 = 3000;
    const ROWS: u64 = 15_000;
    let pipeline = RunningPipeline::start(&shop.spec(&format!(
        "    format: json\n    max_rows_per_second: {RATE}\n"
    )))
    .expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    shop.cluster
        .execute(
            &shop.database,
            &format!(
                "INSERT INTO orders (id, customer) SELECT n, 'c' || n FROM generate_series(1, {ROWS}) n"
            ),
        )
        .await
        .expect("rows");
    let started = std::time::Instant::now();
    pipeline
        .wait_for_messages(ROWS, WAIT)
        .await
        .expect("messages");
    let seconds = started.elapsed().as_secs_f64();
    pipeline.stop().await.expect("clean stop");
    let rate = ROWS as f64 / seconds;
    // The limit is never exceeded (a busy machine only slows weir down); that the
    // rate is held exactly is `throttle.rs`'s test, on a simulated clock. The lower
    // bound only tells a throttle that stalls.
    assert!(
        (RATE as f64 * 0.5..=RATE as f64 * 1.2).contains(&rate),
        "{rate:.0} rows/s against a limit of {RATE} ({seconds:.2} s)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_away_past_the_retry_window_fails_clearly_and_confirms_nothing_more() {
    let mut shop = Shop::start().await;
    let pipeline = RunningPipeline::start(&shop.spec("    format: json\n    retry_window: 3s\n"))
        .expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    let before = shop.cluster.current_wal_lsn().await.expect("lsn");
    shop.broker.kill(1).expect("the broker goes away");
    shop.traffic().await;
    let error = pipeline
        .join(WAIT)
        .await
        .expect_err("the pipeline gives up");
    let message = format!("{error:#}");
    assert!(message.contains("sink.kafka.retry_window"), "{message}");
    let confirmed = shop.confirmed_flush().await.expect("slot");
    assert!(confirmed <= before, "confirmed {confirmed} past {before}");
}

fn get(address: &str, path: &str) -> (String, String) {
    weir_tests::http_get(address, path).expect("an HTTP response")
}

/// By default a TRUNCATE is left out, as with Debezium's `skipped.operations`: no
/// message, a count in `weir_truncates_skipped_total`, and the changes around it
/// delivered. With `skipped_operations: [none]` it is Debezium's `op: "t"` event
/// (compared with Debezium's own in `conformance_debezium`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncate_is_left_out_and_counted_by_default() {
    let shop = Shop::start().await;
    let port = weir_tests::free_loopback_port().expect("port");
    let address = format!("127.0.0.1:{port}");
    let spec = shop
        .spec("")
        .replace("heartbeat: off\n", "heartbeat: off\n    snapshot: never\n")
        + &format!("metrics:\n  listen: {address}\n");
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    for statement in [
        "INSERT INTO orders (id, customer) VALUES (1, 'a')",
        "TRUNCATE orders",
        "INSERT INTO orders (id, customer) VALUES (2, 'b')",
        "TRUNCATE orders",
    ] {
        shop.cluster
            .execute(&shop.database, statement)
            .await
            .expect("statement");
    }
    pipeline.wait_for_messages(2, WAIT).await.expect("messages");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let (_, text) = get(&address, "/metrics");
        if sample(&text, "weir_truncates_skipped_total") == 2.0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    pipeline.stop().await.expect("stops");
    let records = shop.records();
    let ops: Vec<Json> = records
        .iter()
        .map(|r| {
            serde_json::from_slice::<Json>(r.payload.as_deref().expect("no tombstones"))
                .expect("json")["op"]
                .clone()
        })
        .collect();
    assert_eq!(
        ops,
        ["c", "c"],
        "the two inserts and nothing for the truncates"
    );
}
