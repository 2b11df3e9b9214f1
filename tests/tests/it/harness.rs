//! Self-tests of the harness: the peers it starts are real, and nothing outlives them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use weir_tests::{
    Broker, PgCluster, ReplicationFixture, ServerCpu, kcat_read, produce, read_topic,
    read_transactions, unique_name,
};

const TIMEOUT: Duration = Duration::from_secs(30);

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

/// The postmaster and every process it started (backends, checkpointer, walwriter…).
fn process_tree(root: u32) -> BTreeSet<u32> {
    let mut tree = BTreeSet::from([root]);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return tree;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(root) {
            tree.insert(pid);
        }
    }
    tree
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_has_logical_wal_and_replication_helpers() {
    let cluster = PgCluster::start().expect("cluster starts");
    let client = cluster.connect("postgres").await.expect("connects");
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .expect("SHOW")
        .get(0);
    assert_eq!(wal_level, "logical");

    let database = cluster.create_database("harness").await.expect("database");
    let slot = unique_name("slot");
    // Separate calls: several statements in one simple query share a transaction, and a
    // slot cannot be created in a transaction that has written.
    for sql in [
        "CREATE TABLE t (id int PRIMARY KEY)".to_owned(),
        format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
        "INSERT INTO t VALUES (1)".to_owned(),
    ] {
        cluster.execute(&database, &sql).await.expect("SQL runs");
    }

    let slots = cluster.replication_slots().await.expect("slots");
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!(slots[0].slot_name, slot);
    assert_eq!(slots[0].plugin.as_deref(), Some("pgoutput"));
    assert_eq!(slots[0].database.as_deref(), Some(database.as_str()));
    assert!(!slots[0].active);
    let confirmed = slots[0]
        .confirmed_flush_lsn
        .expect("logical slot has a confirmed LSN");
    let current = cluster.current_wal_lsn().await.expect("current LSN");
    assert!(
        current > confirmed,
        "the insert wrote WAL past the slot: {current} > {confirmed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_cpu_reads_the_walsender_serving_a_slot() {
    let cluster = PgCluster::start().expect("cluster starts");
    let fixture = ReplicationFixture::new(
        cluster,
        "CREATE TABLE t (id int PRIMARY KEY, body text)",
        "TABLE t",
    )
    .await
    .expect("fixture");

    let unread = ServerCpu::watch(&fixture.cluster, &fixture.slot)
        .await
        .expect("watch");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        unread.finish().await.expect("finish"),
        None,
        "no walsender holds the slot"
    );

    fixture
        .sql("INSERT INTO t SELECT n, repeat('x', 200) FROM generate_series(1, 100000) n")
        .await
        .expect("rows");
    let cpu = ServerCpu::watch(&fixture.cluster, &fixture.slot)
        .await
        .expect("watch");
    let mut stream = fixture.start().await.expect("stream");
    let messages = read_transactions(&mut stream, 1).await.expect("read");
    assert!(messages.len() > 100_000, "{} messages", messages.len());
    let seconds = cpu.finish().await.expect("finish").expect("a walsender");
    // Decoding 100 000 rows takes the server tens of milliseconds at the least,
    // and no more CPU than the whole test has had.
    assert!(seconds > 0.01, "{seconds} s");
    assert!(seconds < 60.0, "{seconds} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_settings_can_be_overridden() {
    let cluster = PgCluster::builder()
        .setting("wal_level", "replica")
        .start()
        .expect("cluster starts");
    let client = cluster.connect("postgres").await.expect("connects");
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .expect("SHOW")
        .get(0);
    assert_eq!(wal_level, "replica");
}

#[test]
fn message_through_the_broker_is_read_back_by_kcat_and_by_our_client() {
    let broker = Broker::start(3).expect("broker starts");
    let topic = unique_name("harness");
    broker.create_topic(&topic, 3).expect("topic");

    let messages: Vec<(String, String)> = (0..30)
        .map(|i| (format!("key-{i}"), format!("{{\"n\":{i}}}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = messages
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    produce(broker.bootstrap_servers(), &topic, &borrowed, TIMEOUT).expect("produced");

    let ours = read_topic(broker.bootstrap_servers(), &topic, TIMEOUT).expect("read back");
    let theirs = kcat_read(broker.bootstrap_servers(), &topic).expect("kcat reads");
    assert_eq!(ours.len(), 30);
    assert_eq!(theirs.len(), 30);
    let partitions: BTreeSet<i32> = ours.iter().map(|r| r.partition).collect();
    assert_eq!(partitions.len(), 3, "30 keys spread over all 3 partitions");
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!((a.partition, a.offset), (b.partition, b.offset));
        assert_eq!(a.key_text(), b.key);
        assert_eq!(a.payload_text(), b.payload);
    }
    let sent: BTreeSet<(String, String)> = messages.into_iter().collect();
    let got: BTreeSet<(String, String)> = theirs
        .into_iter()
        .map(|r| (r.key.unwrap_or_default(), r.payload.unwrap_or_default()))
        .collect();
    assert_eq!(sent, got);
}

/// librdkafka's mock cluster keeps 5 MiB per partition and drops the oldest
/// messages silently. Issue 15's "snapshot lost under a busy table" was that: a
/// heavy writer pushed the snapshot's rows out of the test broker. Reading such
/// a partition is an error, never a shorter topic.
#[test]
fn a_partition_the_broker_truncated_is_refused_not_read_short() {
    let broker = Broker::start(1).expect("broker starts");
    let topic = unique_name("truncated");
    broker.create_topic(&topic, 1).expect("topic");
    // Six messages of 900 kB (incompressible enough: no compression by default)
    // are more than the mock's 5 MiB.
    let payloads: Vec<String> = (0..6)
        .map(|i| {
            (0..900_000)
                .map(|j| char::from(b'a' + u8::try_from((i * 7 + j * 13) % 26).unwrap_or(0)))
                .collect()
        })
        .collect();
    let messages: Vec<(&str, &str)> = payloads.iter().map(|p| ("k", p.as_str())).collect();
    produce(broker.bootstrap_servers(), &topic, &messages, TIMEOUT).expect("produced");
    match read_topic(broker.bootstrap_servers(), &topic, TIMEOUT) {
        Err(weir_tests::HarnessError::Truncated { low, .. }) => assert!(low > 0),
        other => panic!(
            "expected a truncated partition, got {:?}",
            other.map(|r| r.len())
        ),
    }
}

#[test]
fn message_produced_by_kcat_is_read_back_with_headers() {
    let broker = Broker::start(1).expect("broker starts");
    let topic = unique_name("kcat_in");
    broker.create_topic(&topic, 1).expect("topic");
    let mut kcat = Command::new("kcat")
        .args([
            "-b",
            broker.bootstrap_servers(),
            "-P",
            "-t",
            &topic,
            "-K",
            ":",
            "-H",
            "origin=kcat",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat runs");
    {
        use std::io::Write as _;
        let mut stdin = kcat.stdin.take().expect("stdin");
        stdin.write_all(b"k1:hello\nk2:world\n").expect("write");
    }
    assert!(kcat.wait().expect("kcat exits").success());

    let records = read_topic(broker.bootstrap_servers(), &topic, TIMEOUT).expect("read back");
    let texts: Vec<(Option<String>, Option<String>)> = records
        .iter()
        .map(|r| (r.key_text(), r.payload_text()))
        .collect();
    assert_eq!(
        texts,
        [
            (Some("k1".into()), Some("hello".into())),
            (Some("k2".into()), Some("world".into()))
        ]
    );
    assert_eq!(
        records[0].headers,
        [("origin".to_owned(), Some(b"kcat".to_vec()))]
    );
}

#[test]
fn broker_answers_control_commands() {
    let broker = Broker::start(2).expect("broker starts");
    broker.broker_down(2).expect("down");
    broker.broker_up(2).expect("up");
    let error = broker.broker_down(9).expect_err("no broker 9");
    assert!(error.to_string().contains("down 9"), "{error}");
}

#[test]
fn teardown_leaves_no_process_and_no_directory() {
    let cluster = PgCluster::start().expect("cluster starts");
    let broker = Broker::start(1).expect("broker starts");
    let pg_processes = process_tree(cluster.pid());
    assert!(
        pg_processes.len() > 1,
        "postmaster has children: {pg_processes:?}"
    );
    let dir = cluster.dir().to_owned();
    let broker_pid = broker.pid();
    assert!(dir.exists() && alive(broker_pid));

    drop(cluster);
    drop(broker);

    for pid in &pg_processes {
        assert!(!alive(*pid), "postgres process {pid} outlived its cluster");
    }
    assert!(!alive(broker_pid), "broker outlived its handle");
    assert!(!dir.exists(), "{} outlived its cluster", dir.display());
}

#[test]
fn teardown_also_runs_when_the_test_panics() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let cluster = PgCluster::start().expect("cluster starts");
        let _ = sender.send((process_tree(cluster.pid()), cluster.dir().to_owned()));
        panic!("a failing test");
    });
    assert!(outcome.is_err());
    let (processes, dir) = receiver.recv().expect("cluster had started");
    for pid in &processes {
        assert!(
            !alive(*pid),
            "postgres process {pid} outlived a panicking test"
        );
    }
    assert!(!Path::new(&dir).exists());
}

#[test]
fn clusters_of_dead_test_processes_are_swept() {
    // A cluster dir whose harness process is gone, as a SIGKILLed test leaves it.
    let dead = Command::new("true").spawn().expect("spawn");
    let dead_pid = dead.id();
    let _ = { dead }.wait();
    let stale = tempfile::Builder::new()
        .prefix("weir-pg-")
        .tempdir()
        .expect("dir")
        .keep();
    std::fs::write(stale.join("harness.pid"), dead_pid.to_string()).expect("pid file");
    // One of a live process (ours) must survive the sweep.
    let live = tempfile::Builder::new()
        .prefix("weir-pg-")
        .tempdir()
        .expect("dir");
    std::fs::write(
        live.path().join("harness.pid"),
        std::process::id().to_string(),
    )
    .expect("pid file");

    weir_tests::sweep_stale_clusters();

    assert!(!stale.exists(), "stale cluster dir was swept");
    assert!(
        live.path().exists(),
        "a live process's cluster dir is left alone"
    );
}
