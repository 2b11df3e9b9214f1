//! Issue 20: schema changes while a writer runs. weir's event trigger captures
//! the DDL into the WAL, the pipeline sends each statement to the DDL topic in
//! order, and every row reaches Kafka with the columns in force when it was
//! written; an incompatible Avro schema stops it; tables a pattern selects join
//! while it streams.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use serde_json::Value as Json;
use weir_tests::{
    KafkaCluster, PgCluster, Record, RunningPipeline, SchemaRegistry, fastavro_decode, read_topic,
    unique_name,
};

const WAIT: Duration = Duration::from_secs(90);

/// The DDL script, run while the writer inserts into `items`: (table, statement).
const SCRIPT: &[(&str, &str)] = &[
    (
        "items",
        "ALTER TABLE items ADD COLUMN extra text DEFAULT 'x'",
    ),
    ("items", "ALTER TABLE items ALTER COLUMN v TYPE bigint"),
    ("items", "ALTER TABLE items RENAME COLUMN note TO remark"),
    ("items", "ALTER TABLE items ALTER COLUMN remark TYPE text"),
    (
        "fresh",
        "CREATE TABLE fresh (id int PRIMARY KEY, s varchar(5) NOT NULL)",
    ),
    ("items", "ALTER TABLE items DROP COLUMN extra"),
    ("logs", "TRUNCATE logs"),
    ("fresh", "DROP TABLE fresh"),
];

struct Fixture {
    cluster: PgCluster,
    broker: KafkaCluster,
    database: String,
    slot: String,
}

impl Fixture {
    /// `None` before PostgreSQL 14, whose pgoutput sends no logical messages:
    /// DDL capture and the tables-added announcement cannot reach weir there
    /// (weir refuses `ddl: capture`; `source_control` tests that refusal).
    async fn start() -> Option<Fixture> {
        let cluster = PgCluster::start().expect("postgres");
        let major = cluster.major_version().await.expect("version");
        if major < 14 {
            eprintln!("skipped on PostgreSQL {major}: no logical messages in pgoutput");
            return None;
        }
        let broker = KafkaCluster::start(1).expect("broker");
        let database = cluster.create_database("ddl").await.expect("database");
        cluster
            .execute(
                &database,
                "CREATE TABLE items (id bigint PRIMARY KEY, v int NOT NULL, note varchar(10));
                 CREATE TABLE logs (id int PRIMARY KEY, line text);
                 INSERT INTO logs SELECT n, 'line ' || n FROM generate_series(1, 10) n;",
            )
            .await
            .expect("tables");
        Some(Fixture {
            cluster,
            broker,
            database,
            slot: unique_name("slot"),
        })
    }

    fn spec(&self, format: &str) -> String {
        format!(
            "name: ddl
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.*]
    heartbeat: off
    snapshot: never
    ddl: capture
sink:
  kafka:
    brokers: {brokers}
    linger_ms: 1
    format: {format}
    skipped_operations: [none]
    create_topics: {{partitions: 2, replication_factor: 1}}
",
            url = self.cluster.url(&self.database),
            slot = self.slot,
            brokers = self.broker.bootstrap_servers(),
        )
    }

    /// The spec in `avro`, schemas registered with `registry`.
    fn avro_spec(&self, registry: &SchemaRegistry) -> String {
        format!(
            "{}    schema_registry: {}\n",
            self.spec("avro"),
            registry.url()
        )
    }

    fn read(&self, topic: &str) -> Vec<Record> {
        read_topic(self.broker.bootstrap_servers(), topic, WAIT).expect("read back")
    }

    /// What a topic holds now; nothing when it does not exist.
    fn read_now(&self, topic: &str) -> Vec<Record> {
        self.try_read_now(topic).unwrap_or_default()
    }

    fn try_read_now(&self, topic: &str) -> Result<Vec<Record>, weir_tests::HarnessError> {
        read_topic(
            self.broker.bootstrap_servers(),
            topic,
            Duration::from_secs(5),
        )
    }

    /// Waits until `topic` holds at least `count` records; a timeout names the
    /// last read's failure, if reading failed.
    async fn wait_for_records(&self, topic: &str, count: usize, pipeline: &RunningPipeline) {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let read = self.try_read_now(topic);
            if read.as_ref().is_ok_and(|records| records.len() >= count) {
                return;
            }
            assert!(!pipeline.is_finished(), "weir stopped");
            assert!(
                std::time::Instant::now() < deadline,
                "{topic} never held {count} records; last read: {:?}",
                read.map(|records| records.len())
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn execute(&self, sql: &str) {
        self.cluster
            .execute(&self.database, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn topic(&self, table: &str) -> String {
        format!("{}.public.{table}", self.database)
    }

    /// Runs the script under the writer; returns the ids the writer committed.
    /// `truncates`: the data messages the format writes for the TRUNCATE.
    async fn run(&self, format: &str, extra_sink: &str, truncates: u64) -> BTreeSet<i64> {
        let spec = format!("{}{extra_sink}", self.spec(format));
        let pipeline = RunningPipeline::start(&spec).expect("starts");
        pipeline.wait_streaming(WAIT).await.expect("streaming");

        // The writer: small transactions, every 25th a 300-row one, from before
        // the first statement to after the last.
        let stop = Arc::new(AtomicBool::new(false));
        let next_id = Arc::new(AtomicI64::new(1));
        let writer = {
            let client = self.cluster.connect(&self.database).await.expect("connect");
            let stop = Arc::clone(&stop);
            let next_id = Arc::clone(&next_id);
            tokio::spawn(async move {
                let mut written = BTreeSet::new();
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    round += 1;
                    let rows = if round.is_multiple_of(25) { 300 } else { 1 };
                    let first = next_id.fetch_add(rows, Ordering::Relaxed);
                    client
                        .execute(
                            "INSERT INTO items (id, v) SELECT n, n % 1000 FROM generate_series($1::bigint, $2::bigint) n",
                            &[&first, &(first + rows - 1)],
                        )
                        .await
                        .expect("insert");
                    written.extend(first..first + rows);
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                written
            })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (table, statement) in SCRIPT {
            self.cluster
                .execute(&self.database, statement)
                .await
                .expect("DDL");
            if *table == "fresh" && statement.starts_with("CREATE") {
                self.cluster
                    .execute(
                        &self.database,
                        "INSERT INTO fresh SELECT n, 's' || n FROM generate_series(1, 20) n",
                    )
                    .await
                    .expect("rows of the new table");
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let written = writer.await.expect("writer");
        // Rows of items and fresh, and the TRUNCATE of logs (the DDL topic's
        // messages are not counted: they are side messages, as heartbeats).
        let expected = written.len() as u64 + 20 + truncates;
        pipeline
            .wait_for_messages(expected, WAIT)
            .await
            .expect("every row and statement");
        // The count above includes a row of `fresh` both read by its incremental
        // snapshot and streamed: the topics themselves say when all is there.
        self.wait_for_records(&self.topic("fresh"), 20, &pipeline)
            .await;
        self.wait_for_records(&self.topic("items"), written.len(), &pipeline)
            .await;
        pipeline.stop().await.expect("clean stop");
        written
    }
}

fn json(bytes: &[u8]) -> Json {
    serde_json::from_slice(bytes).expect("JSON")
}

/// debezium-json with Connect schemas: the DDL topic holds each statement in
/// order, with the table as it left it; every row carries the columns (and
/// the column types) in force when it was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_under_a_writer_reaches_the_ddl_topic_in_order_and_rows_keep_their_schema() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let written = fixture
        .run("debezium-json", "    schemas_enable: true\n", 1)
        .await;

    // The DDL topic: every statement once, in order per table, and in all.
    let events: Vec<Json> = fixture
        .read("ddl.ddl")
        .iter()
        .map(|r| json(r.payload.as_deref().expect("value")))
        .collect();
    let mut by_lsn: Vec<&Json> = events.iter().map(|e| &e["payload"]).collect();
    by_lsn.sort_by_key(|e| e["source"]["lsn"].as_u64().expect("lsn"));
    let statements: Vec<(&str, &str)> = by_lsn
        .iter()
        .map(|e| {
            (
                e["source"]["table"].as_str().expect("table"),
                e["ddl"].as_str().expect("ddl"),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = SCRIPT
        .iter()
        .map(|(table, statement)| {
            if statement.starts_with("TRUNCATE") {
                (*table, "TRUNCATE TABLE \"public\".\"logs\"")
            } else {
                (*table, *statement)
            }
        })
        .collect();
    assert_eq!(statements, expected);
    let create = by_lsn
        .iter()
        .find(|e| e["commandTag"] == "CREATE TABLE")
        .expect("CREATE TABLE");
    let table = &create["tableChanges"][0]["table"];
    assert_eq!(create["tableChanges"][0]["type"], "CREATE");
    assert_eq!(table["primaryKeyColumnNames"], serde_json::json!(["id"]));
    assert_eq!(
        table["columns"][1]["typeExpression"],
        "character varying(5)"
    );
    assert_eq!(table["columns"][1]["length"], 5);
    assert_eq!(table["columns"][1]["optional"], false);
    let drop = by_lsn.last().expect("DROP TABLE");
    assert_eq!(drop["tableChanges"][0]["type"], "DROP");
    assert!(drop["tableChanges"][0]["table"].is_null());

    // The columns of items after each statement, by the statement's LSN.
    let mut versions: Vec<(u64, Vec<String>)> = vec![(0, names(&["id", "v", "note"]))];
    for event in by_lsn.iter().filter(|e| e["source"]["table"] == "items") {
        let columns = event["tableChanges"][0]["table"]["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect();
        versions.push((event["source"]["lsn"].as_u64().expect("lsn"), columns));
    }
    let widened_at = by_lsn
        .iter()
        .find(|e| e["ddl"] == SCRIPT[1].1)
        .and_then(|e| e["source"]["lsn"].as_u64())
        .expect("the type change");

    let mut seen = BTreeSet::new();
    let mut per_version: BTreeMap<usize, u64> = BTreeMap::new();
    for record in fixture.read(&fixture.topic("items")) {
        let Some(value) = record.payload.as_deref().map(json) else {
            continue;
        };
        let payload = &value["payload"];
        let lsn = payload["source"]["lsn"].as_u64().expect("lsn");
        let version = versions.partition_point(|(at, _)| *at < lsn) - 1;
        let fields: Vec<String> = payload["after"]
            .as_object()
            .expect("after")
            .keys()
            .cloned()
            .collect();
        assert_eq!(fields, versions[version].1, "row at {lsn}");
        let v_type = value["schema"]["fields"]
            .as_array()
            .and_then(|f| f.iter().find(|f| f["field"] == "after"))
            .and_then(|after| after["fields"].as_array())
            .and_then(|f| f.iter().find(|f| f["field"] == "v"))
            .map(|v| v["type"].clone())
            .expect("v's type");
        let expected_type = if lsn < widened_at { "int32" } else { "int64" };
        assert_eq!(v_type, expected_type, "row at {lsn}");
        *per_version.entry(version).or_default() += 1;
        assert!(seen.insert(payload["after"]["id"].as_i64().expect("id")));
    }
    assert_eq!(seen, written, "every row the writer committed, once");
    assert_eq!(
        per_version.len(),
        versions.len(),
        "rows under every version: {per_version:?}"
    );

    // The new table's rows, and the TRUNCATE in the data topic too.
    // Every row of the new table, once or twice: rows the stream carried before
    // its incremental snapshot's first chunk are read again (at-least-once, the
    // read carrying the same values).
    let fresh: BTreeSet<i64> = fixture
        .read(&fixture.topic("fresh"))
        .iter()
        .filter_map(|r| r.payload.as_deref().map(json))
        .map(|value| value["payload"]["after"]["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(fresh, (1..=20).collect());
    let logs = fixture.read(&fixture.topic("logs"));
    assert_eq!(logs.len(), 1);
    assert_eq!(
        json(logs[0].payload.as_deref().expect("value"))["payload"]["op"],
        "t"
    );
}

/// avro through a registry enforcing BACKWARD (the level most registries
/// run): the script's changes are all backward compatible (the rename by its
/// alias), so weir never stops; fastavro reads every row with the schema it was
/// written under, and the Avro DDL topic in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avro_under_a_writer_every_version_reads_with_fastavro() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let registry = SchemaRegistry::start_enforcing().expect("registry");
    let written = fixture
        .run(
            "avro",
            &format!("    schema_registry: {}\n", registry.url()),
            1,
        )
        .await;
    let framed = |topic: &str| -> Vec<_> {
        fixture
            .read(topic)
            .into_iter()
            .map(|r| (r.key, r.payload))
            .collect()
    };
    let ddl = fastavro_decode(registry.url(), &framed("ddl.ddl")).expect("fastavro reads DDL");
    let mut events: Vec<&Json> = ddl.iter().map(|m| &m["value"]["datum"]).collect();
    events.sort_by_key(|e| e["source"]["lsn"].as_u64().expect("lsn"));
    let tags: Vec<&str> = events
        .iter()
        .map(|e| e["commandTag"].as_str().expect("tag"))
        .collect();
    assert_eq!(
        tags,
        [
            "ALTER TABLE",
            "ALTER TABLE",
            "ALTER TABLE",
            "ALTER TABLE",
            "CREATE TABLE",
            "ALTER TABLE",
            "TRUNCATE",
            "DROP TABLE"
        ]
    );
    // items' columns after each of its statements, by LSN.
    let mut versions: Vec<(u64, Vec<String>)> = vec![(0, names(&["id", "v", "note"]))];
    for event in events.iter().filter(|e| e["source"]["table"] == "items") {
        let columns = event["tableChanges"][0]["table"]["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("name").to_owned())
            .collect();
        versions.push((event["source"]["lsn"].as_u64().expect("lsn"), columns));
    }

    let rows = fastavro_decode(registry.url(), &framed(&fixture.topic("items")))
        .expect("fastavro reads every version");
    let mut seen = BTreeSet::new();
    let mut schema_ids = BTreeSet::new();
    for row in &rows {
        let value = &row["value"]["datum"];
        let lsn = value["source"]["lsn"].as_u64().expect("lsn");
        let version = versions.partition_point(|(at, _)| *at < lsn) - 1;
        let fields: Vec<String> = value["after"]
            .as_object()
            .expect("after")
            .keys()
            .cloned()
            .collect();
        assert_eq!(fields, versions[version].1, "row at {lsn}");
        schema_ids.insert(row["value"]["schema_id"].as_u64().expect("schema id"));
        assert!(seen.insert(row["key"]["datum"]["id"].as_i64().expect("id")));
    }
    assert_eq!(seen, written, "every row the writer committed, once");
    // One value schema per version of items: the varchar→text change keeps
    // Avro's string, so it makes none.
    assert_eq!(schema_ids.len(), versions.len() - 1, "{schema_ids:?}");
    let subject = format!("{}-value", fixture.topic("items"));
    let registered = registry
        .get(&format!("/subjects/{subject}/versions"))
        .expect("versions");
    assert_eq!(registered, serde_json::json!([1, 2, 3, 4, 5]));
    let fresh = fastavro_decode(registry.url(), &framed(&fixture.topic("fresh")))
        .expect("fastavro reads fresh");
    let ids: BTreeSet<i64> = fresh
        .iter()
        .map(|m| m["value"]["datum"]["after"]["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (1..=20).collect(), "every row of fresh, at least once");
}

/// canal-json: Canal's DDL messages, `isDdl` with the statement and Canal's
/// type names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_canal_json_ddl_is_canal_ddl() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    fixture
        .run("canal-json", "    ddl_topic: canal.ddl\n", 0)
        .await;
    let mut events: Vec<Json> = fixture
        .read("canal.ddl")
        .iter()
        .map(|r| json(r.payload.as_deref().expect("value")))
        .collect();
    events.sort_by_key(|e| e["id"].as_u64().expect("id"));
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e["isDdl"], true);
            assert!(e["data"].is_null());
            (
                e["table"].as_str().expect("table"),
                e["type"].as_str().expect("type"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("items", "ALTER"),
            ("items", "ALTER"),
            ("items", "ALTER"),
            ("items", "ALTER"),
            ("fresh", "CREATE"),
            ("items", "ALTER"),
            ("logs", "TRUNCATE"),
            ("fresh", "ERASE"),
        ]
    );
    assert_eq!(events[0]["sql"], SCRIPT[0].1);
}

/// Avro under a registry that enforces FULL compatibility (Avro's own
/// SchemaCompatibility judging): a nullable column added goes through as the
/// subject's next version; `int` widened to `bigint` cannot be read by the old
/// schema, so weir stops before sending a row of it, naming the table, the
/// column and the level, with nothing confirmed past the change. Restarted with
/// `schema_change: new_subject`, the row goes out under `<subject>-v2`, and
/// fastavro reads every version through the registry, DDL topic included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_full_compatibility_an_incompatible_change_stops_weir_until_allowed() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let registry = SchemaRegistry::start_enforcing().expect("registry");
    registry
        .set_compatibility(None, "FULL")
        .expect("FULL by default");
    let spec = |extra: &str| format!("{}{extra}", fixture.avro_spec(&registry));
    let pipeline = RunningPipeline::start(&spec("")).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    fixture
        .execute("INSERT INTO items (id, v) SELECT n, n FROM generate_series(1, 10) n")
        .await;
    fixture
        .execute("ALTER TABLE items ADD COLUMN extra text")
        .await;
    fixture
        .execute("INSERT INTO items (id, v, extra) SELECT n, n, 'e' FROM generate_series(11, 20) n")
        .await;
    pipeline
        .wait_for_messages(20, WAIT)
        .await
        .expect("a compatible change goes through");
    fixture
        .execute("ALTER TABLE items ALTER COLUMN v TYPE bigint")
        .await;
    let before_row = fixture.cluster.current_wal_lsn().await.expect("lsn");
    fixture
        .execute("INSERT INTO items (id, v) VALUES (21, 5000000000)")
        .await;
    let error = pipeline
        .join(WAIT)
        .await
        .expect_err("an incompatible schema stops the pipeline");
    let message = format!("{error:#}");
    for part in [
        "table public.items",
        "column v changed from int to long",
        "compatibility level FULL",
        "schema_change: new_subject",
    ] {
        assert!(message.contains(part), "{part:?} not in: {message}");
    }
    let confirmed = fixture
        .cluster
        .confirmed_flush_lsn(&fixture.slot)
        .await
        .expect("slot")
        .expect("confirmed");
    assert!(
        confirmed <= before_row,
        "confirmed {confirmed} past the change at {before_row}"
    );
    let subject = format!("{}-value", fixture.topic("items"));
    assert_eq!(
        registry
            .get(&format!("/subjects/{subject}/versions"))
            .expect("versions"),
        serde_json::json!([1, 2])
    );

    let pipeline =
        RunningPipeline::start(&spec("    schema_change: new_subject\n")).expect("restarts");
    pipeline
        .wait_for_messages(1, WAIT)
        .await
        .expect("the row of the new schema");
    pipeline.stop().await.expect("clean stop");
    assert_eq!(
        registry
            .get(&format!("/subjects/{subject}-v2/versions"))
            .expect("the new subject"),
        serde_json::json!([1])
    );
    let framed = |topic: &str| -> Vec<_> {
        fixture
            .read(topic)
            .into_iter()
            .map(|r| (r.key, r.payload))
            .collect()
    };
    let rows = fastavro_decode(registry.url(), &framed(&fixture.topic("items")))
        .expect("fastavro reads every version");
    let ids: BTreeSet<i64> = rows
        .iter()
        .map(|m| m["key"]["datum"]["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, (1..=21).collect());
    // Two partitions: the row of the new schema is found by its key, not by
    // being read last.
    let widened = rows
        .iter()
        .find(|m| m["key"]["datum"]["id"] == 21)
        .expect("row 21");
    assert_eq!(widened["value"]["datum"]["after"]["v"], 5_000_000_000_i64);
    let ddl = fastavro_decode(registry.url(), &framed("ddl.ddl")).expect("fastavro reads DDL");
    let statements: Vec<&str> = ddl
        .iter()
        .map(|m| m["value"]["datum"]["ddl"].as_str().expect("ddl"))
        .collect();
    assert_eq!(
        statements,
        [
            "ALTER TABLE items ADD COLUMN extra text",
            "ALTER TABLE items ALTER COLUMN v TYPE bigint"
        ]
    );
    assert_eq!(
        ddl[0]["value"]["datum"]["tableChanges"][0]["table"]["columns"][2]["name"],
        "note"
    );
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Issue 20: a table created while streaming that matches a pattern joins the
/// publication weir created, its rows from before that are read with the
/// incremental snapshot while a writer keeps changing it, and the topic rebuilds
/// the table exactly; a table dropped meanwhile ends without stopping anything,
/// and a spec that names one more table takes it on restart, on the same slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_matching_a_pattern_join_while_streaming_with_their_rows() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    fixture
        .execute(
            "CREATE TABLE order_a (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO order_a SELECT n, 0 FROM generate_series(1, 500) n;
             CREATE TABLE misc (id int PRIMARY KEY);
             INSERT INTO misc SELECT generate_series(1, 100);",
        )
        .await;
    let spec = |tables: &str| {
        fixture
            .spec("debezium-json")
            .replace("tables: [public.*]", &format!("tables: [{tables}]"))
            .replace("snapshot: never", "snapshot: initial")
            .replace("ddl: capture", "table_discovery: 500ms")
    };
    let pipeline = RunningPipeline::start(&spec("public.order_*")).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");

    // order_b comes with 3 000 rows written before anything publishes it.
    fixture
        .execute(
            "BEGIN;
             CREATE TABLE order_b (id int PRIMARY KEY, v int NOT NULL);
             INSERT INTO order_b SELECT n, 0 FROM generate_series(1, 3000) n;
             COMMIT;
             CREATE TABLE other (id int PRIMARY KEY);
             INSERT INTO other VALUES (1);",
        )
        .await;
    // A writer changes both tables, old rows and new, until after the snapshot.
    let client = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("connect");
    for round in 1..=300 {
        let id = (round * 37) % 3500 + 1;
        let mut sql = format!(
            "INSERT INTO order_b VALUES ({id}, {round}) ON CONFLICT (id) DO UPDATE SET v = {round};
             DELETE FROM order_b WHERE id = {};",
            (round * 11) % 3000 + 1,
        );
        if round < 150 {
            sql.push_str(&format!(
                "UPDATE order_a SET v = {round} WHERE id = {};",
                round % 500 + 1
            ));
        }
        client.batch_execute(&sql).await.expect("writer");
        if round == 150 {
            client
                .batch_execute("DROP TABLE order_a")
                .await
                .expect("drop");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = client
        .query("SELECT id, v FROM order_b", &[])
        .await
        .expect("order_b")
        .iter()
        .map(|row| {
            (
                i64::from(row.get::<_, i32>(0)),
                i64::from(row.get::<_, i32>(1)),
            )
        })
        .collect::<BTreeMap<i64, i64>>();
    // Every row of order_b reached Kafka: the rebuilt table equals it.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let rebuilt = rebuild(&fixture.read_now(&fixture.topic("order_b")));
        if rebuilt == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && !pipeline.is_finished(),
            "order_b rebuilt from Kafka has {} rows, PostgreSQL {}",
            rebuilt.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pipeline
        .stop()
        .await
        .expect("a dropped table stops nothing");
    let reads = |topic: &str| {
        fixture
            .read(topic)
            .iter()
            .filter_map(|r| r.payload.as_deref().map(json))
            .filter(|v| v["op"] == "r")
            .count()
    };
    assert_eq!(reads(&fixture.topic("order_a")), 500, "initial snapshot");
    assert!(reads(&fixture.topic("order_b")) > 0, "order_b's rows read");
    assert!(
        fixture.read_now(&fixture.topic("other")).is_empty(),
        "a table the pattern does not match stays out"
    );

    // The spec names misc too: added on restart, snapshotted, same slot; the
    // initial snapshot is not taken again. A transaction writing misc before it
    // joins the publication and committing after the snapshot began is not
    // streamed (its changes come before the ALTER PUBLICATION in the WAL): the
    // snapshot waits for it rather than read the table without its changes.
    let open = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("connect");
    open.batch_execute("BEGIN; INSERT INTO misc VALUES (101); DELETE FROM misc WHERE id = 1;")
        .await
        .expect("open transaction");
    let pipeline = RunningPipeline::start(&spec("public.order_*, public.misc")).expect("restarts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    tokio::time::sleep(Duration::from_secs(3)).await;
    open.batch_execute("COMMIT").await.expect("commit");
    pipeline
        .wait_for_messages(100, WAIT)
        .await
        .expect("misc's rows");
    let expected: BTreeMap<i64, i64> = (2..=101).map(|id| (id, id)).collect();
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let rebuilt: BTreeMap<i64, i64> =
            rebuild_column(&fixture.read_now(&fixture.topic("misc")), "id");
        if rebuilt == expected {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && !pipeline.is_finished(),
            "misc rebuilt from Kafka: {} rows, first {:?}, last {:?}; PostgreSQL: 2..=101",
            rebuilt.len(),
            rebuilt.keys().next(),
            rebuilt.keys().next_back(),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pipeline.stop().await.expect("clean stop");
    assert_eq!(reads(&fixture.topic("misc")), 100);
    assert_eq!(
        reads(&fixture.topic("order_a")),
        500,
        "no second initial snapshot"
    );
    let slots = fixture.cluster.replication_slots().await.expect("slots");
    assert_eq!(slots.len(), 1, "{slots:?}");
}

/// A renamed NOT NULL column: its Avro field is required, so without its
/// earlier name as an alias the new schema could not read the old data and a
/// BACKWARD registry would refuse it. With the alias weir goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renamed_required_column_stays_backward_compatible_through_its_alias() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    let registry = SchemaRegistry::start_enforcing().expect("registry");
    let spec = fixture.avro_spec(&registry);
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    fixture
        .execute("INSERT INTO items (id, v) SELECT n, n FROM generate_series(1, 10) n")
        .await;
    pipeline.wait_for_messages(10, WAIT).await.expect("rows");
    fixture
        .execute("ALTER TABLE items RENAME COLUMN v TO val")
        .await;
    fixture
        .execute("INSERT INTO items (id, val) SELECT n, n FROM generate_series(11, 20) n")
        .await;
    pipeline
        .wait_for_messages(20, WAIT)
        .await
        .expect("the rows after the rename");
    pipeline.stop().await.expect("clean stop");

    let subject = format!("{}-value", fixture.topic("items"));
    assert_eq!(
        registry
            .get(&format!("/subjects/{subject}/versions"))
            .expect("versions"),
        serde_json::json!([1, 2])
    );
    let latest = registry.latest_schema(&subject).expect("latest");
    assert!(
        latest.contains(r#""name":"val","type":"int","aliases":["v"]"#),
        "{latest}"
    );
    // The same schema without the alias is what a BACKWARD registry refuses.
    let bare = latest.replace(r#","aliases":["v"]"#, "");
    let answer = registry
        .post(
            &format!("/compatibility/subjects/{subject}/versions/1?verbose=true"),
            &serde_json::json!({"schema": bare}),
        )
        .expect("asked");
    assert_eq!(answer["is_compatible"], false, "{answer}");
    let framed: Vec<_> = fixture
        .read(&fixture.topic("items"))
        .into_iter()
        .map(|r| (r.key, r.payload))
        .collect();
    let rows = fastavro_decode(registry.url(), &framed).expect("fastavro reads both");
    assert_eq!(rows.len(), 20);
    let last = rows
        .iter()
        .find(|m| m["key"]["datum"]["id"] == 20)
        .expect("row 20");
    assert_eq!(last["value"]["datum"]["after"]["val"], 20);
}

/// A table rebuilt from Debezium events applied in order: id → v.
/// Values PostgreSQL allows that a column's type cannot hold (a `NaN` in
/// `numeric(p,s)`, 2-D arrays and explicit bounds in an `int[]`, timestamps past
/// 294247 AD, an interval of 3 million hours) keep the column's type: under a
/// registry enforcing FULL compatibility the subject keeps one version and weir
/// goes on; fastavro reads the mapped values. (When such a value turned its column
/// to text, the array's new schema stopped weir here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_a_type_cannot_hold_keep_the_schema_under_full_compatibility() {
    let Some(fixture) = Fixture::start().await else {
        return;
    };
    fixture
        .execute(
            "CREATE TABLE odd (id int PRIMARY KEY, price numeric(10,2), grid int[],
                               at timestamp, atz timestamptz, span interval)",
        )
        .await;
    let registry = SchemaRegistry::start_enforcing().expect("registry");
    registry
        .set_compatibility(None, "FULL")
        .expect("FULL by default");
    let spec = fixture.avro_spec(&registry);
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    fixture
        .execute(
            "INSERT INTO odd VALUES (1, 1.5, '{1,2}', '2026-01-01 00:00', '2026-01-01 00:00+00', '1 hour')",
        )
        .await;
    pipeline.wait_for_messages(1, WAIT).await.expect("row 1");
    fixture
        .execute(
            "INSERT INTO odd VALUES
               (2, 'NaN', '{{1,2},{3,4}}', '294276-12-31 23:59:59.999999',
                '294276-12-31 23:59:59.999999+00', '-3000000 hours');
             INSERT INTO odd VALUES
               (3, 2.25, '[0:1]={7,8}', '2026-01-02 00:00', '2026-01-02 00:00+00', '2 hours')",
        )
        .await;
    // Counted on the topic itself: the pipeline's count includes other messages.
    let topic = fixture.topic("odd");
    fixture.wait_for_records(&topic, 3, &pipeline).await;
    pipeline.stop().await.expect("clean stop");

    assert_eq!(
        registry
            .get(&format!("/subjects/{topic}-value/versions"))
            .expect("versions"),
        serde_json::json!([1])
    );
    let framed: Vec<_> = fixture
        .read(&topic)
        .into_iter()
        .map(|r| (r.key, r.payload))
        .collect();
    let rows: BTreeMap<i64, Json> = fastavro_decode(registry.url(), &framed)
        .expect("fastavro reads them")
        .into_iter()
        .map(|m| {
            let after = m["value"]["datum"]["after"].clone();
            (after["id"].as_i64().expect("id"), after)
        })
        .collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[&1]["grid"], serde_json::json!([1, 2]));
    assert_eq!(rows[&2]["price"], Json::Null);
    assert_eq!(rows[&2]["grid"], serde_json::json!([1, 2, 3, 4]));
    assert_eq!(rows[&2]["at"], i64::MAX - 1);
    // ZonedTimestamp text past chrono's last year (262143) is the microsecond
    // count as text: the field stays a string.
    assert_eq!(rows[&2]["atz"], (i64::MAX - 1).to_string());
    assert_eq!(rows[&2]["span"], -3_000_000_i64 * 3_600_000_000);
    assert_eq!(rows[&3]["price"], serde_json::json!({"decimal": "2.25"}));
    assert_eq!(rows[&3]["grid"], serde_json::json!([7, 8]));
}

fn rebuild(records: &[Record]) -> BTreeMap<i64, i64> {
    rebuild_column(records, "v")
}

/// The table the records leave behind, as `id` → `column`.
fn rebuild_column(records: &[Record], column: &str) -> BTreeMap<i64, i64> {
    let mut table = BTreeMap::new();
    for record in records {
        let Some(value) = record.payload.as_deref().map(json) else {
            continue;
        };
        match value["op"].as_str() {
            Some("d") => {
                table.remove(&value["before"]["id"].as_i64().expect("id"));
            }
            Some(_) => {
                let after = &value["after"];
                table.insert(
                    after["id"].as_i64().expect("id"),
                    after[column].as_i64().expect("value"),
                );
            }
            None => {}
        }
    }
    table
}
