//! The initial snapshot end to end: a table with rows and concurrent writers,
//! read by `weir run` into Kafka, rebuilt from the topic by applying each key's
//! messages in order, and compared with the table afterwards; a weir killed
//! mid-snapshot resumes from the progress in its state topic.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use weir_tests::{
    KafkaCluster, PgCluster, Record, RunningPipeline, WeirProcess, read_topic,
    read_topic_committed, target_bin_path, unique_name,
};

const WAIT: Duration = Duration::from_secs(120);
const PARTITIONS: u32 = 3;
/// Rows of `accounts` before weir starts.
const ACCOUNTS: i64 = 30_000;
/// Rows of `tags` (a text key: read in ctid page ranges).
const TAGS: i64 = 2_000;

/// `(table, key) → row` as `column → text`.
type Rows = BTreeMap<(String, String), BTreeMap<String, String>>;

struct Fixture {
    cluster: PgCluster,
    broker: KafkaCluster,
    database: String,
    slot: String,
}

impl Fixture {
    async fn new() -> Self {
        let cluster = PgCluster::start().expect("cluster");
        let broker = KafkaCluster::start(1).expect("broker");
        let database = cluster
            .create_database_with(
                "snap",
                &format!(
                    "CREATE TABLE accounts (id bigint PRIMARY KEY, v int NOT NULL, body text);
                     INSERT INTO accounts SELECT n, n % 97, 'row ' || n FROM generate_series(1, {ACCOUNTS}) n;
                     CREATE TABLE tags (name text PRIMARY KEY, n int NOT NULL);
                     INSERT INTO tags SELECT 'tag' || n, n FROM generate_series(1, {TAGS}) n;
                     ANALYZE accounts; ANALYZE tags;"
                ),
            )
            .await
            .expect("database");
        for table in ["accounts", "tags"] {
            broker
                .create_topic(&format!("snap.{table}"), PARTITIONS, 1, &[])
                .expect("topic");
        }
        broker
            .create_topic("weir.snap.state", 1, 1, &[])
            .expect("state topic");
        Fixture {
            cluster,
            broker,
            database,
            slot: unique_name("snap"),
        }
    }

    /// The spec; `source` and `sink` add lines under `source.postgres` and
    /// `sink.kafka`.
    fn spec(&self, source: &str, sink: &str) -> String {
        format!(
            "name: snap
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.accounts, public.tags]
    heartbeat: off
    snapshot_workers: 2
    snapshot_chunk_rows: 1000
{source}sink:
  kafka:
    brokers: {brokers}
    topic: \"snap.{{table}}\"
    format: debezium-json
    linger: 5ms
{sink}",
            url = self.cluster.url(&self.database),
            slot = self.slot,
            brokers = self.broker.bootstrap_servers(),
        )
    }

    /// Starts inserting, updating and deleting in small transactions until
    /// [`Writer::stop`].
    fn writer(&self) -> Writer {
        let url = self.cluster.url(&self.database);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("writer connects");
            tokio::spawn(connection);
            let mut done = 0;
            while !flag.load(Ordering::Relaxed) {
                let i = i64::try_from(done).unwrap_or(0);
                let sql = format!(
                    "BEGIN;
                     INSERT INTO accounts VALUES ({new}, {i}, 'new {i}');
                     UPDATE accounts SET v = v + 1, body = 'updated {i}' WHERE id = {update};
                     DELETE FROM accounts WHERE id = {delete};
                     UPDATE tags SET n = n + 1000 WHERE name = 'tag{tag}';
                     COMMIT;",
                    new = 1_000_000 + i,
                    update = (i * 7919) % ACCOUNTS + 1,
                    delete = (i * 104_729 + 13) % ACCOUNTS + 1,
                    tag = (i * 31) % TAGS + 1,
                );
                client.batch_execute(&sql).await.expect("writes");
                done += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            done
        });
        Writer { stop, task }
    }

    /// The tables as they are now.
    async fn tables(&self) -> Rows {
        let client = self.cluster.connect(&self.database).await.expect("connect");
        let mut rows = Rows::new();
        for row in client
            .query("SELECT id, v, body FROM accounts", &[])
            .await
            .expect("accounts")
        {
            let id: i64 = row.get(0);
            let v: i32 = row.get(1);
            let body: Option<String> = row.get(2);
            rows.insert(
                ("accounts".into(), id.to_string()),
                BTreeMap::from([
                    ("id".into(), id.to_string()),
                    ("v".into(), v.to_string()),
                    ("body".into(), body.unwrap_or_default()),
                ]),
            );
        }
        for row in client
            .query("SELECT name, n FROM tags", &[])
            .await
            .expect("tags")
        {
            let name: String = row.get(0);
            let n: i32 = row.get(1);
            rows.insert(
                ("tags".into(), name.clone()),
                BTreeMap::from([("name".into(), name), ("n".into(), n.to_string())]),
            );
        }
        rows
    }

    fn records(&self, table: &str) -> Vec<Record> {
        read_topic(
            self.broker.bootstrap_servers(),
            &format!("snap.{table}"),
            WAIT,
        )
        .expect("read back")
    }

    /// The tables rebuilt from Kafka, and the count of snapshot reads (`op = r`).
    fn rebuilt(&self) -> (Rows, u64) {
        let mut rows = Rows::new();
        let mut reads = 0;
        for (table, key_column) in [("accounts", "id"), ("tags", "name")] {
            // Records come sorted by (partition, offset); a key lives in one
            // partition, so each key's messages are in order.
            for record in self.records(table) {
                let Some(payload) = record.payload.as_deref() else {
                    continue; // a tombstone follows its delete
                };
                let value: Json = serde_json::from_slice(payload).expect("json value");
                let op = value["op"].as_str().expect("op");
                let image = if op == "d" {
                    &value["before"]
                } else {
                    &value["after"]
                };
                let key = text(&image[key_column]);
                if op == "r" {
                    reads += 1;
                }
                if op == "d" {
                    rows.remove(&(table.to_owned(), key));
                } else {
                    let columns = image
                        .as_object()
                        .expect("an image")
                        .iter()
                        .map(|(name, value)| (name.clone(), text(value)))
                        .collect();
                    rows.insert((table.to_owned(), key), columns);
                }
            }
        }
        (rows, reads)
    }

    /// The messages of one key of `accounts` or `tags`, one line each: partition,
    /// offset, op, LSN, snapshot marker, image.
    fn history(&self, table: &str, key: &str) -> String {
        let key_column = if table == "tags" { "name" } else { "id" };
        let mut lines = String::new();
        for record in self.records(table) {
            let Some(value) = record
                .payload
                .as_deref()
                .and_then(|p| serde_json::from_slice::<Json>(p).ok())
            else {
                continue;
            };
            let image = if value["op"] == "d" {
                &value["before"]
            } else {
                &value["after"]
            };
            if text(&image[key_column]) == key {
                lines.push_str(&format!(
                    "  p{} @{} op={} lsn={} snapshot={} {}\n",
                    record.partition,
                    record.offset,
                    value["op"],
                    value["source"]["lsn"],
                    value["source"]["snapshot"],
                    image
                ));
            }
        }
        lines
    }

    /// How many snapshot reads of each table carry each edge marker of
    /// `source.snapshot` (every other read says `true`).
    fn snapshot_markers(&self) -> BTreeMap<(String, String), u64> {
        let mut markers = BTreeMap::new();
        for table in ["accounts", "tags"] {
            for record in self.records(table) {
                let Some(payload) = record.payload.as_deref() else {
                    continue;
                };
                let value: Json = serde_json::from_slice(payload).expect("json value");
                let marker = text(&value["source"]["snapshot"]);
                if value["op"] == "r" && marker != "true" {
                    *markers.entry((table.to_owned(), marker)).or_default() += 1;
                }
            }
        }
        markers
    }

    /// Waits until the tables rebuilt from Kafka equal the tables; returns the
    /// snapshot reads counted.
    async fn assert_rebuilt_equal(&self) -> u64 {
        let expected = self.tables().await;
        let deadline = Instant::now() + WAIT;
        loop {
            let (rebuilt, reads) = self.rebuilt();
            if rebuilt == expected {
                return reads;
            }
            if Instant::now() > deadline {
                let missing: Vec<_> = expected
                    .keys()
                    .filter(|k| !rebuilt.contains_key(*k))
                    .take(5)
                    .collect();
                let extra: Vec<_> = rebuilt
                    .keys()
                    .filter(|k| !expected.contains_key(*k))
                    .take(5)
                    .collect();
                let different: Vec<_> = expected
                    .iter()
                    .filter(|(k, v)| rebuilt.get(*k).is_some_and(|r| r != *v))
                    .take(5)
                    .collect();
                // The messages of the first wrong key, for the diagnosis.
                let history = different
                    .first()
                    .map(|((table, key), _)| self.history(table, key))
                    .unwrap_or_default();
                panic!(
                    "rebuilt {} rows, table has {}; missing {missing:?}, extra {extra:?}, different {different:?}\nmessages of the first different key:\n{history}",
                    rebuilt.len(),
                    expected.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// While `writer` keeps writing: waits until every snapshot row is in Kafka
    /// and no key's last message is a read older than the table's row.
    async fn assert_rebuilt_equal_while(&self, writer: &Writer) {
        let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
        let deadline = Instant::now() + WAIT;
        while self.rebuilt().1 < snapshot_rows {
            assert!(Instant::now() < deadline, "the snapshot did not arrive");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(!writer.task.is_finished(), "the writer stopped");
    }

    /// The snapshot's progress record in the state topic.
    fn progress(&self) -> Option<Json> {
        self.state_record("snapshot")
    }

    /// The record of the snapshots taken while streaming.
    fn incremental(&self) -> Option<Json> {
        self.state_record("incremental")
    }

    /// The newest state record of this slot under `<kind>:<slot>`.
    fn state_record(&self, kind: &str) -> Option<Json> {
        let key = format!("{kind}:{}", self.slot);
        read_topic(self.broker.bootstrap_servers(), "weir.snap.state", WAIT)
            .expect("state topic")
            .into_iter()
            .rev()
            .filter(|r| r.key.as_deref() == Some(key.as_bytes()))
            .find_map(|r| r.payload)
            .map(|payload| serde_json::from_slice(&payload).expect("progress json"))
    }
}

fn text(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

/// Chunks marked done and their rows, over all tables of a progress record.
fn done(progress: &Json) -> (usize, u64) {
    let tables = progress["tables"].as_object().expect("tables");
    tables.values().fold((0, 0), |(chunks, rows), table| {
        let done = table["done"]
            .as_array()
            .expect("done")
            .iter()
            .filter(|d| d.as_bool() == Some(true))
            .count();
        (chunks + done, rows + table["rows"].as_u64().unwrap_or(0))
    })
}

/// A running [`Fixture::writer`].
struct Writer {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u64>,
}

impl Writer {
    /// Stops the writes; returns the transactions committed.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("writer")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_and_streaming_rebuild_the_tables_exactly_under_concurrent_writes() {
    let fixture = Fixture::new().await;
    let writer = fixture.writer();
    // Throttled, so the snapshot takes a few seconds of concurrent writes; the
    // rate it keeps is checked below.
    let rate = 10_000;
    let pipeline = RunningPipeline::start(
        &fixture.spec("", &format!("    snapshot_max_rows_per_second: {rate}\n")),
    )
    .expect("starts");

    // Snapshot messages are all sent before streaming starts: time them.
    let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
    let mut first_sent = None;
    let deadline = Instant::now() + WAIT;
    while pipeline.stats.sessions.load(Ordering::Relaxed) == 0 {
        let sent = pipeline.stats.messages.load(Ordering::Relaxed);
        if sent > 0 && first_sent.is_none() {
            first_sent = Some((Instant::now(), sent));
        }
        assert!(
            Instant::now() < deadline,
            "not streaming after the snapshot"
        );
        assert!(!pipeline.is_finished(), "the pipeline stopped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (started, sent_at_start) = first_sent.expect("snapshot messages");
    let seconds = started.elapsed().as_secs_f64();
    #[allow(clippy::cast_precision_loss)]
    let measured = (snapshot_rows - sent_at_start) as f64 / seconds;
    // Never over the limit; held exactly is `throttle.rs`'s test (simulated clock).
    assert!(
        (0.5 * f64::from(rate)..=1.2 * f64::from(rate)).contains(&measured),
        "snapshot rate {measured:.0} rows/s, limit {rate}"
    );

    // Writes keep coming while streaming catches up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let transactions = writer.stop().await;
    assert!(
        transactions > 50,
        "only {transactions} concurrent transactions"
    );

    let reads = fixture.assert_rebuilt_equal().await;
    assert_eq!(reads, snapshot_rows, "every existing row read once");
    // Thirty chunks of `accounts` read by two connections, then `tags`: one row
    // of each edge, as Debezium marks them.
    let edge = |table: &str, marker: &str| ((table.to_owned(), marker.to_owned()), 1);
    assert_eq!(
        fixture.snapshot_markers(),
        BTreeMap::from([
            edge("accounts", "first"),
            edge("accounts", "last_in_data_collection"),
            edge("tags", "first_in_data_collection"),
            edge("tags", "last"),
        ])
    );
    let progress = fixture.progress().expect("progress recorded");
    assert_eq!(progress["complete"], Json::Bool(true), "{progress}");
    assert_eq!(done(&progress).1, snapshot_rows);
    pipeline.stop().await.expect("clean stop");

    // A restart finds the snapshot finished: it streams, and reads nothing again.
    let again = RunningPipeline::start(&fixture.spec("", "")).expect("starts");
    again.wait_streaming(WAIT).await.expect("streaming");
    fixture
        .cluster
        .execute(&fixture.database, "UPDATE accounts SET v = -1 WHERE id = 2")
        .await
        .expect("update");
    let reads_after = fixture.assert_rebuilt_equal().await;
    assert_eq!(reads_after, snapshot_rows, "no second snapshot");
    again.stop().await.expect("clean stop");
}

/// A weir killed after creating the slot and before recording any chunk: the
/// snapshot was recorded as due before the slot existed, so the next start takes
/// it, instead of finding an existing slot with nothing recorded (which takes no
/// snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_weir_killed_right_after_creating_the_slot_takes_the_snapshot_on_restart() {
    let fixture = Fixture::new().await;
    // Exactly-once: the snapshot's records commit with its first chunk; one row
    // a second: the first batch waits, so none is committed.
    let spec = |sink: &str| {
        fixture
            .spec("", &format!("    exactly_once: true\n{sink}"))
            .replace("snapshot_workers: 2", "snapshot_workers: 1")
    };
    let stalled =
        WeirProcess::start(&spec("    snapshot_max_rows_per_second: 1\n")).expect("weir starts");
    let deadline = Instant::now() + WAIT;
    loop {
        let slots = fixture.cluster.replication_slots().await.expect("slots");
        if slots.iter().any(|slot| slot.slot_name == fixture.slot) {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    drop(stalled);
    let again = RunningPipeline::start(&spec("")).expect("starts");
    let reads = fixture.assert_rebuilt_equal().await;
    assert_eq!(reads, u64::try_from(ACCOUNTS + TAGS).expect("rows"));
    again.stop().await.expect("clean stop");
}

/// Exactly-once, stopped cleanly in the middle of a chunk: the half-sent chunk is
/// aborted, not committed, so `read_committed` readers get every snapshot row
/// once after the restart reads it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_exactly_once_a_stop_mid_chunk_leaves_no_snapshot_row_twice() {
    let fixture = Fixture::new().await;
    let spec = |sink: &str| {
        fixture
            .spec("", &format!("    exactly_once: true\n{sink}"))
            .replace("snapshot_workers: 2", "snapshot_workers: 1")
    };
    let first =
        RunningPipeline::start(&spec("    snapshot_max_rows_per_second: 5000\n")).expect("starts");
    let deadline = Instant::now() + WAIT;
    while fixture.progress().is_none_or(|p| done(&p).0 < 2) {
        assert!(Instant::now() < deadline, "no chunk was recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Half a chunk (1 000 rows at 5 000 rows/s) later.
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.stop().await.expect("clean stop");
    let again = RunningPipeline::start(&spec("")).expect("restarts");
    fixture.assert_rebuilt_equal().await;
    let mut reads = BTreeMap::new();
    for table in ["accounts", "tags"] {
        let records = read_topic_committed(
            fixture.broker.bootstrap_servers(),
            &format!("snap.{table}"),
            WAIT,
        )
        .expect("read committed");
        for record in records {
            let Some(payload) = record.payload.as_deref() else {
                continue;
            };
            let value: Json = serde_json::from_slice(payload).expect("json");
            if value["op"] == "r" {
                *reads.entry((table, record.key)).or_insert(0u32) += 1;
            }
        }
    }
    eprintln!(
        "{} snapshot rows read committed, {} reads",
        reads.len(),
        reads.values().sum::<u32>()
    );
    let twice: Vec<_> = reads.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "snapshot rows read committed twice: {twice:?}"
    );
    assert_eq!(reads.len() as i64, ACCOUNTS + TAGS);
    again.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_snapshot_resumes_from_its_recorded_progress_and_ends_exact() {
    let fixture = Fixture::new().await;
    let writer = fixture.writer();
    let spec = fixture.spec("", "    snapshot_max_rows_per_second: 8000\n");
    let first = WeirProcess::start(&spec).expect("weir starts");

    // Kill it (SIGKILL: no drain, no goodbye) once several chunks are recorded.
    let deadline = Instant::now() + WAIT;
    let at_kill = loop {
        if let Some(progress) = fixture.progress()
            && done(&progress).0 >= 10
        {
            break progress;
        }
        assert!(Instant::now() < deadline, "no chunk recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    drop(first);
    let progress = fixture.progress().expect("progress");
    assert_eq!(
        progress["complete"],
        Json::Bool(false),
        "killed mid-snapshot"
    );
    let (chunks_done, rows_done) = done(&progress);
    assert!(chunks_done >= done(&at_kill).0);

    let second = WeirProcess::start(&fixture.spec("", "")).expect("weir starts");
    let deadline = Instant::now() + WAIT;
    while fixture
        .progress()
        .is_none_or(|p| p["complete"] != Json::Bool(true))
    {
        assert!(Instant::now() < deadline, "the snapshot did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    writer.stop().await;

    let reads = fixture.assert_rebuilt_equal().await;
    let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
    // Resumed, not restarted: the chunks recorded done were not read again. A
    // restart from scratch would read at least every row plus those done before.
    assert!(
        reads < snapshot_rows + rows_done,
        "{reads} snapshot reads: the {rows_done} rows recorded done were read again; at the kill: {progress}"
    );
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn weir_snapshot_rereads_tables_while_streaming_and_streamed_changes_win() {
    let fixture = Fixture::new().await;
    // Streaming only: the existing rows reach Kafka through `weir snapshot` alone.
    let spec = fixture.spec("    snapshot: never\n    signals: true\n", "");
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    let writer = fixture.writer();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, &spec).expect("spec");
    let output = Command::new(target_bin_path("weir"))
        .arg("snapshot")
        .arg(&path)
        .args(["public.accounts", "public.tags"])
        .output()
        .expect("weir snapshot runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let refused = Command::new(target_bin_path("weir"))
        .arg("snapshot")
        .arg(&path)
        .arg("public.unknown")
        .output()
        .expect("weir snapshot runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not among the tables"));

    // The writers go on while the chunks are read.
    let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
    let deadline = Instant::now() + WAIT;
    while pipeline.stats.rows_in.load(Ordering::Relaxed) < snapshot_rows {
        assert!(Instant::now() < deadline, "the tables were not read");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let transactions = writer.stop().await;
    assert!(
        transactions > 50,
        "only {transactions} concurrent transactions"
    );

    let reads = fixture.assert_rebuilt_equal().await;
    // Rows changed while their chunk was in flight went out as streamed changes
    // instead of reads; every other row was read once.
    assert!(
        reads <= snapshot_rows + transactions && reads > snapshot_rows / 2,
        "{reads} snapshot reads, {transactions} transactions; {}",
        duplicates(&fixture)
    );
    // Debezium's mark for reads of a snapshot taken while streaming.
    let markers = fixture.snapshot_markers();
    assert!(
        markers.keys().all(|(_, marker)| marker == "incremental"),
        "{markers:?}"
    );
    assert_eq!(markers.values().sum::<u64>(), reads, "{markers:?}");
    pipeline.stop().await.expect("clean stop");
}

/// Issue 20: `weir snapshot` while streaming, killed (SIGKILL) part way. The slot
/// moved past the request long before the tables were read, so only the state
/// topic's record of the acknowledged chunks lets the next weir finish them, after
/// those chunks rather than from the start. With `snapshot: never` the rows the
/// writer leaves alone reach Kafka through this snapshot alone: the rebuilt tables
/// equal PostgreSQL's only if it finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_taken_while_streaming_and_killed_is_finished_after_its_acknowledged_chunks() {
    let fixture = Fixture::new().await;
    let source = "    snapshot: never\n    signals: true\n";
    let spec = fixture.spec(source, "    snapshot_max_rows_per_second: 4000\n");
    let first = WeirProcess::start(&spec).expect("weir starts");
    let deadline = Instant::now() + WAIT;
    while !fixture
        .cluster
        .replication_slots()
        .await
        .expect("slots")
        .iter()
        .any(|slot| slot.slot_name == fixture.slot && slot.active)
    {
        assert!(Instant::now() < deadline, "weir did not start streaming");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let writer = fixture.writer();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, &spec).expect("spec");
    let output = Command::new(target_bin_path("weir"))
        .arg("snapshot")
        .arg(&path)
        .args(["public.accounts", "public.tags"])
        .output()
        .expect("weir snapshot runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Killed once three chunks of accounts are recorded acknowledged: more than
    // the record can trail by (a second of reads and a chunk in flight).
    let deadline = Instant::now() + WAIT;
    loop {
        if fixture
            .incremental()
            .is_some_and(|record| record["tables"][0]["rows"].as_u64() >= Some(12_000))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no chunk recorded: {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(first);
    let at_kill = fixture.incremental().expect("record");
    let tables = at_kill["tables"].as_array().expect("tables");
    assert!(!tables.is_empty(), "killed part way: {at_kill}");
    let rows_done: u64 = tables
        .iter()
        .map(|t| t["rows"].as_u64().expect("rows"))
        .sum();

    let second = WeirProcess::start(&fixture.spec(source, "")).expect("weir restarts");
    let deadline = Instant::now() + WAIT;
    while fixture
        .incremental()
        .is_none_or(|record| record["tables"].as_array().is_none_or(|t| !t.is_empty()))
    {
        assert!(
            Instant::now() < deadline,
            "the snapshot was not finished: {}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let transactions = writer.stop().await;
    let reads = fixture.assert_rebuilt_equal().await;
    let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
    eprintln!(
        "{reads} reads of {snapshot_rows} rows; {rows_done} recorded done at the kill; {transactions} transactions"
    );
    // Started over, the restart would read every row again on top of those
    // recorded; resumed, it reads the rest (and a chunk at most again).
    assert!(
        rows_done > 0 && reads < snapshot_rows + rows_done,
        "{reads} reads of {snapshot_rows} rows, {rows_done} recorded done at the kill, {transactions} transactions"
    );
    drop(second);
}

fn duplicates(fixture: &Fixture) -> String {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for record in fixture.records("accounts") {
        let Some(payload) = record.payload.as_deref() else {
            continue;
        };
        let value: Json = serde_json::from_slice(payload).expect("json");
        if value["op"] == "r" {
            seen.entry(text(&value["after"]["id"]))
                .or_default()
                .push(text(&value["source"]["lsn"]));
        }
    }
    let dups: Vec<_> = seen.iter().filter(|(_, v)| v.len() > 1).take(5).collect();
    format!(
        "{} keys read twice, e.g. {dups:?}",
        seen.values().filter(|v| v.len() > 1).count()
    )
}

/// Rows of `busy` in [`a_snapshot_of_a_table_hammered_by_updates_reaches_kafka_whole`].
const BUSY_ROWS: i64 = 100_000;

/// Issue 15, item 0: a table updated without pause, from before weir creates its
/// slot until after the snapshot, still arrives whole: one `r` per row read, and
/// the table rebuilt from the topic equals the table. Runs on Apache Kafka, which
/// keeps every message (the mock broker dropped the oldest past 5 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_snapshot_of_a_table_hammered_by_updates_reaches_kafka_whole() {
    let cluster = PgCluster::start().expect("cluster");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "busy",
            &format!(
                "CREATE TABLE busy (id int PRIMARY KEY, v int NOT NULL);
                 INSERT INTO busy SELECT n, 0 FROM generate_series(1, {BUSY_ROWS}) n;
                 ANALYZE busy;"
            ),
        )
        .await
        .expect("database");
    broker
        .create_topic("busy.busy", PARTITIONS, 1, &[])
        .expect("topic");
    broker
        .create_topic("weir.busy.state", 1, 1, &[])
        .expect("state topic");
    let slot = unique_name("busy");

    // The writer: 50 random keys per autocommit statement, without pause, from
    // before the slot exists until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let url = cluster.url(&database);
        let stop = Arc::clone(&stop);
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("writer connects");
            tokio::spawn(connection);
            let mut n: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                client
                    .batch_execute(&format!(
                        "UPDATE busy SET v = {n} WHERE id IN \
                         (SELECT 1 + (random() * {max})::int FROM generate_series(1, 50))",
                        max = BUSY_ROWS - 1
                    ))
                    .await
                    .expect("update");
            }
            n
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;

    let spec = format!(
        "name: busy
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.busy]
sink:
  kafka:
    brokers: {brokers}
    topic: \"busy.{{table}}\"
    format: debezium-json
",
        url = cluster.url(&database),
        brokers = broker.bootstrap_servers(),
    );
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    // Ten seconds of updates after the slot exists: several hundred thousand
    // messages, far past what the mock broker kept (5 MiB a partition) when this
    // test had to stop after two.
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    let statements = writer.await.expect("writer");
    assert!(statements > 500, "only {statements} update statements");

    let client = cluster.connect(&database).await.expect("connect");
    let expected: BTreeMap<i64, i64> = client
        .query("SELECT id, v FROM busy", &[])
        .await
        .expect("rows")
        .iter()
        .map(|row| {
            (
                i64::from(row.get::<_, i32>(0)),
                i64::from(row.get::<_, i32>(1)),
            )
        })
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let mut rebuilt = BTreeMap::new();
        let mut reads = 0;
        for record in read_topic(broker.bootstrap_servers(), "busy.busy", WAIT).expect("read") {
            let Some(payload) = record.payload.as_deref() else {
                continue;
            };
            let value: Json = serde_json::from_slice(payload).expect("json");
            if value["op"] == "r" {
                reads += 1;
            }
            let after = &value["after"];
            rebuilt.insert(
                after["id"].as_i64().expect("id"),
                after["v"].as_i64().expect("v"),
            );
        }
        if rebuilt == expected {
            assert_eq!(reads, BUSY_ROWS, "every existing row read once");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{reads} snapshot reads; rebuilt {} of {} keys, {} differ",
            rebuilt.len(),
            expected.len(),
            expected
                .iter()
                .filter(|(k, v)| rebuilt.get(*k).is_some_and(|r| r != *v))
                .count()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    pipeline.stop().await.expect("clean stop");
}

/// Issue 15, item 6: snapshot requests are opt-in. With `signals` off (the
/// default) `weir snapshot` is refused, and a `weir_signal` message any role
/// emits is ignored: the change committed after it arrives, and no row is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshot_requests_are_refused_unless_the_spec_accepts_them() {
    let fixture = Fixture::new().await;
    let spec = fixture.spec("    snapshot: never\n", "");
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");

    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, &spec).expect("spec");
    let refused = Command::new(target_bin_path("weir"))
        .arg("snapshot")
        .arg(&path)
        .arg("public.accounts")
        .output()
        .expect("weir snapshot runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("source.postgres.signals"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A role with no business asking writes the request by hand.
    let request = serde_json::json!({"slot": fixture.slot, "tables": ["public.accounts"]});
    fixture
        .cluster
        .execute(
            &fixture.database,
            &format!(
                "SELECT pg_logical_emit_message(true, 'weir_signal', '{request}');
                 UPDATE accounts SET v = -7 WHERE id = 3;"
            ),
        )
        .await
        .expect("signal and update");
    let deadline = Instant::now() + WAIT;
    loop {
        let records = fixture.records("accounts");
        let updated = records.iter().any(|r| {
            r.payload_text()
                .is_some_and(|p| p.contains("\"op\":\"u\"") && p.contains("\"v\":-7"))
        });
        if updated {
            let reads = records
                .iter()
                .filter(|r| r.payload_text().is_some_and(|p| p.contains("\"op\":\"r\"")))
                .count();
            assert_eq!(reads, 0, "a refused request read rows");
            break;
        }
        assert!(Instant::now() < deadline, "the update did not arrive");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pipeline.stop().await.expect("clean stop");
}

/// Issue 15, item 1: two weirs started together on a new slot, under a writer
/// that updates without pause. Only the one that owns the slot snapshots and
/// streams; the other waits, then takes over when the first stops, and the
/// tables rebuilt from Kafka equal the tables: no snapshot row lands after a
/// newer update of its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_weirs_started_together_never_interleave_a_snapshot_with_streaming() {
    let fixture = Fixture::new().await;
    let writer = fixture.writer();
    let spec = fixture.spec("", "    snapshot_max_rows_per_second: 15000\n");
    let first = RunningPipeline::start(&spec).expect("first starts");
    let second = RunningPipeline::start(&spec).expect("second starts");

    // One of them snapshots and streams; the other must not stream meanwhile.
    let deadline = Instant::now() + WAIT;
    let (active, standby) = loop {
        let first_streams = first.stats.sessions.load(Ordering::Relaxed) > 0;
        let second_streams = second.stats.sessions.load(Ordering::Relaxed) > 0;
        assert!(
            !(first_streams && second_streams),
            "both weirs stream the slot"
        );
        if first_streams {
            break (first, second);
        }
        if second_streams {
            break (second, first);
        }
        assert!(Instant::now() < deadline, "neither streams");
        assert!(
            !first.is_finished() && !second.is_finished(),
            "a weir stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        standby.stats.rows_in.load(Ordering::Relaxed),
        0,
        "the standby read rows while the other owned the slot"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(standby.stats.sessions.load(Ordering::Relaxed), 0);
    fixture.assert_rebuilt_equal_while(&writer).await;

    // The active one stops; the standby takes over, and reads no row again.
    active.stop().await.expect("clean stop");
    standby
        .wait_streaming(WAIT)
        .await
        .expect("the standby takes over");
    tokio::time::sleep(Duration::from_secs(1)).await;
    writer.stop().await;
    let reads = fixture.assert_rebuilt_equal().await;
    let snapshot_rows = u64::try_from(ACCOUNTS + TAGS).expect("rows");
    assert_eq!(reads, snapshot_rows, "every row read once, by one weir");
    standby.stop().await.expect("clean stop");
}
