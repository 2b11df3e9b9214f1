//! The `weir` binary's operational commands against real peers: `validate`,
//! `check`, `slot list|drop`, and a second signal cutting a stop short.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use weir_tests::{
    KafkaCluster, PgCluster, SaslMechanism, plugin_dir, target_bin_path, unique_name,
};

fn weir(args: &[&str]) -> Output {
    Command::new(target_bin_path("weir"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("weir runs (built by cargo test --workspace)")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_spec(dir: &Path, url: &str, slot: &str, brokers: &str, extra: &str) -> String {
    let path = dir.join("pipeline.yaml");
    std::fs::write(
        &path,
        format!(
            "name: cli
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
{extra}sink:
  kafka:
    brokers: {brokers}
    topic: \"cli.{{table}}\"
    format: json
"
        ),
    )
    .expect("spec");
    path.to_string_lossy().into_owned()
}

#[test]
fn validate_loads_plugins_and_refuses_a_bad_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = plugin_dir();
    let good = format!(
        "plugins:\n  - name: filter\n    wasm: {}/sql-filter.wasm\n    config: {{ where: \"id > 1\" }}\n",
        plugins.display()
    );
    let spec = write_spec(
        dir.path(),
        "postgres://u@127.0.0.1:1/db",
        "s",
        "127.0.0.1:1",
        &good,
    );
    let output = weir(&["validate", &spec]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("valid (1 plugin stage(s) loaded)"));

    let bad = good.replace("id > 1", "id >");
    let spec = write_spec(
        dir.path(),
        "postgres://u@127.0.0.1:1/db",
        "s",
        "127.0.0.1:1",
        &bad,
    );
    let output = weir(&["validate", &spec]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("filter"),
        "{}",
        text(&output.stderr)
    );

    let missing = good.replace("sql-filter.wasm", "no-such-plugin.wasm");
    let spec = write_spec(
        dir.path(),
        "postgres://u@127.0.0.1:1/db",
        "s",
        "127.0.0.1:1",
        &missing,
    );
    let output = weir(&["validate", &spec]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("no-such-plugin.wasm"),
        "{}",
        text(&output.stderr)
    );
}

/// Exactly-once: `check` initialises the pipeline's transactional id as the
/// pipeline would, and says which ACL is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_tries_the_transactional_id_and_names_the_acl_to_grant() {
    let cluster = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::builder()
        .sasl(SaslMechanism::Plain)
        .acls()
        .user("weir", "weir-secret")
        .start()
        .expect("kafka");
    let database = cluster
        .create_database_with("check", "CREATE TABLE events (id bigint PRIMARY KEY)")
        .await
        .expect("database");
    kafka.create_topic("cli.events", 1, 1, &[]).expect("topic");
    kafka
        .allow(
            "User:weir",
            &["Write", "Describe"],
            &["--topic", "cli.", "--resource-pattern-type", "prefixed"],
        )
        .expect("acl");
    let dir = tempfile::tempdir().expect("tempdir");
    let slot = unique_name("slot");
    let mut properties = String::from("    properties:\n");
    for (key, value) in kafka.client_properties("weir", "weir-secret") {
        properties.push_str(&format!("      {key}: \"{value}\"\n"));
    }
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(
        &path,
        format!(
            "name: cli
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    snapshot: never
sink:
  kafka:
    brokers: {brokers}
    topic: \"cli.{{table}}\"
    exactly_once: true
{properties}",
            url = cluster.url(&database),
            brokers = kafka.bootstrap_servers(),
        ),
    )
    .expect("spec");
    let spec = path.to_string_lossy().into_owned();

    let report = text(&weir(&["check", &spec]).stdout);
    assert!(
        report.contains("[FAIL] kafka transactions (weir-cli)")
            && report.contains("TransactionalId"),
        "{report}"
    );
    kafka
        .allow(
            "User:weir",
            &["Write", "Describe"],
            &["--transactional-id", "weir-cli"],
        )
        .expect("acl");
    let report = text(&weir(&["check", &spec]).stdout);
    assert!(
        report.contains("[pass] kafka transactions (weir-cli)"),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_database_and_the_topics() {
    let cluster = PgCluster::start().expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "check",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    let dir = tempfile::tempdir().expect("tempdir");
    let slot = unique_name("slot");
    let spec = write_spec(
        dir.path(),
        &cluster.url(&database),
        &slot,
        broker.bootstrap_servers(),
        "",
    );

    // The topic is missing: check fails and says what to do.
    let output = weir(&["check", &spec]);
    let report = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{report}{}",
        text(&output.stderr)
    );
    assert!(report.contains("[pass] postgres wal_level"), "{report}");
    assert!(
        report.contains("[FAIL] kafka topic cli.events: missing"),
        "{report}"
    );
    assert!(
        report.contains("[pass] kafka topic weir.cli.state: missing; weir creates it"),
        "{report}"
    );

    // With the topic, and a test produce: everything passes.
    broker.create_topic("cli.events", 2, 1, &[]).expect("topic");
    broker
        .create_topic("weir.cli.state", 1, 1, &[])
        .expect("state topic");
    broker.create_topic("cli.check", 1, 1, &[]).expect("topic");
    let output = weir(&["check", &spec, "--test-topic", "cli.check"]);
    let report = text(&output.stdout);
    assert!(output.status.success(), "{report}{}", text(&output.stderr));
    assert!(
        report.contains("[pass] kafka topic cli.events: exists, 2 partitions"),
        "{report}"
    );
    assert!(
        report.contains("[pass] kafka topic weir.cli.state: exists, 1 partitions"),
        "{report}"
    );
    assert!(
        report.contains("[pass] kafka produce to cli.check"),
        "{report}"
    );
    assert!(!report.contains("FAIL"), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_are_listed_and_dropped_and_a_second_signal_cuts_a_stop_short() {
    let cluster = PgCluster::start().expect("postgres");
    let mut broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "slots",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    broker.create_topic("cli.events", 1, 1, &[]).expect("topic");
    broker
        .create_topic("weir.cli.state", 1, 1, &[])
        .expect("state topic");
    let dir = tempfile::tempdir().expect("tempdir");
    let slot = unique_name("slot");
    let url = cluster.url(&database);
    let port = weir_tests::free_loopback_port().expect("port");
    let spec = write_spec(dir.path(), &url, &slot, broker.bootstrap_servers(), "");
    let mut spec_text = std::fs::read_to_string(&spec).expect("spec");
    spec_text.push_str(&format!("metrics:\n  listen: 127.0.0.1:{port}\n"));
    std::fs::write(&spec, spec_text).expect("spec");
    let metrics = format!("127.0.0.1:{port}");
    let mut running = Command::new(target_bin_path("weir"))
        .args(["run", &spec])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("weir runs");
    cluster
        .wait_streaming(&slot, Duration::from_secs(60))
        .await
        .expect("weir streams");
    let table = text(&weir(&["slot", "list", "--url", &url]).stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&slot) && l.contains(" yes ")),
        "the slot is listed as active:\n{table}"
    );
    let refused = weir(&["slot", "drop", &slot, "--url", &url]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("in use"),
        "{}",
        text(&refused.stderr)
    );

    // One row delivered first, so weir knows the topic (it looks a topic up for its
    // first message) and the rows below wait for acknowledgements, not metadata.
    cluster
        .execute(&database, "INSERT INTO events VALUES (0, 'first')")
        .await
        .expect("a row");
    let first = cluster.wal_insert_lsn().await.expect("lsn");
    cluster
        .wait_confirmed(&slot, first, Duration::from_secs(60))
        .await
        .expect("the first row is delivered");

    // Kafka away, a transaction read: the first SIGTERM waits for Kafka, the second
    // exits at once and the slot is not confirmed past the unacknowledged data.
    broker.kill(1).expect("down");
    let before = cluster.current_wal_lsn().await.expect("lsn");
    cluster
        .execute(
            &database,
            "INSERT INTO events SELECT n, 'x' FROM generate_series(1, 10) n",
        )
        .await
        .expect("rows");
    // Weir has read the transaction and handed its rows to the producer before the
    // signals: otherwise the assertion on the slot below would pass for a weir
    // that did nothing.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let in_flight = weir_tests::http_get(&metrics, "/metrics")
            .ok()
            .and_then(|(_, body)| weir_tests::metric_sample(&body, "weir_messages_in_flight"));
        if in_flight == Some(10.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "weir never held the 10 rows unacknowledged ({in_flight:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(running.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("first signal");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        running.try_wait().expect("status").is_none(),
        "still draining"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("second signal");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = running.try_wait().expect("status") {
            break status;
        }
        assert!(Instant::now() < deadline, "a second signal exits at once");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(130));
    let slots = cluster.replication_slots().await.expect("slots");
    let confirmed = slots
        .iter()
        .find(|s| s.slot_name == slot)
        .and_then(|s| s.confirmed_flush_lsn)
        .expect("slot");
    assert!(
        confirmed <= before,
        "confirmed {confirmed} passed unacknowledged data at {before}"
    );

    let dropped = weir(&["slot", "drop", &slot, "--url", &url]);
    assert!(dropped.status.success(), "{}", text(&dropped.stderr));
    let listed = text(&weir(&["slot", "list", "--url", &url]).stdout);
    assert!(!listed.contains(&slot), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_process_runs_several_pipelines() {
    let cluster = PgCluster::start().expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with(
            "multi",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text);
             CREATE TABLE audit (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    broker.create_topic("cli.events", 1, 1, &[]).expect("topic");
    broker
        .create_topic("weir.cli.state", 1, 1, &[])
        .expect("state topic");
    broker.create_topic("cli.audit", 1, 1, &[]).expect("topic");
    let url = cluster.url(&database);
    let (first_dir, second_dir) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let first = write_spec(
        first_dir.path(),
        &url,
        &unique_name("a"),
        broker.bootstrap_servers(),
        "",
    );
    let second = write_spec(
        second_dir.path(),
        &url,
        &unique_name("b"),
        broker.bootstrap_servers(),
        "",
    );
    // write_spec names the table events: point the second spec at audit.
    let spec = std::fs::read_to_string(&second)
        .expect("spec")
        .replace("public.events", "public.audit");
    std::fs::write(&second, spec).expect("spec");

    let same_slot = weir(&["run", &first, &first]);
    assert_eq!(same_slot.status.code(), Some(2));
    assert!(text(&same_slot.stderr).contains("both use slot"));

    let mut running = Command::new(target_bin_path("weir"))
        .args(["run", &first, &second])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .expect("weir runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster
        .replication_slots()
        .await
        .expect("slots")
        .iter()
        .filter(|s| s.active)
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "both pipelines stream");
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster
        .execute(
            &database,
            "INSERT INTO events SELECT n, 'e' FROM generate_series(1, 7) n;
             INSERT INTO audit SELECT n, 'a' FROM generate_series(1, 3) n",
        )
        .await
        .expect("rows");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = weir_tests::read_topic(
            broker.bootstrap_servers(),
            "cli.events",
            Duration::from_secs(10),
        )
        .expect("events");
        let audit = weir_tests::read_topic(
            broker.bootstrap_servers(),
            "cli.audit",
            Duration::from_secs(10),
        )
        .expect("audit");
        if events.len() == 7 && audit.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} events, {} audit",
            events.len(),
            audit.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(running.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal");
    let status = running.wait().expect("exits");
    assert!(status.success(), "{status}");
}

/// The CPU time (user + system) of process `pid` so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .expect("fields")
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// Issue 15, item 5: idle clients that exhaust weir's file descriptors make
/// `accept` fail; the metrics endpoint backs off instead of spinning a core, and
/// answers again once they go.
#[test]
fn the_metrics_endpoint_backs_off_when_out_of_file_descriptors() {
    let dir = tempfile::tempdir().expect("dir");
    let closed = weir_tests::free_loopback_port().expect("port");
    let port = weir_tests::free_loopback_port().expect("port");
    let spec = write_spec(
        dir.path(),
        &format!("postgres://weir@127.0.0.1:{closed}/db"),
        "fds",
        &format!("127.0.0.1:{closed}"),
        "    snapshot: never\n",
    );
    let mut text = std::fs::read_to_string(&spec).expect("spec");
    text.push_str(&format!("metrics:\n  listen: 127.0.0.1:{port}\n"));
    std::fs::write(&spec, text).expect("spec");
    // prlimit execs weir with at most 128 open files.
    let mut child = Command::new("prlimit")
        .arg("--nofile=128:128")
        .arg(target_bin_path("weir"))
        .args(["run", &spec])
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("weir starts");
    let address = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while weir_tests::http_get(&address, "/metrics").is_err() {
        assert!(Instant::now() < deadline, "the endpoint never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    let idle: Vec<std::net::TcpStream> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(&address).ok())
        .collect();
    assert!(idle.len() > 128, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let before = cpu_time(child.id());
    std::thread::sleep(Duration::from_secs(3));
    let used = cpu_time(child.id()) - before;
    assert!(
        used < Duration::from_millis(1000),
        "weir used {used:?} of CPU in 3 s with its descriptors exhausted"
    );

    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((status, _)) = weir_tests::http_get(&address, "/metrics") {
            assert!(status.contains("200"), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the endpoint did not recover");
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Issue 15, item 6: `weir check` names the cause of a failure (not only
/// "connecting to PostgreSQL failed"), and checks the Schema Registry of an
/// Avro pipeline, without printing its password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_causes_and_checks_the_schema_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let closed = weir_tests::free_loopback_port().expect("port");
    let spec = write_spec(
        dir.path(),
        &format!("postgres://weir:pg-secret@127.0.0.1:{closed}/db"),
        "causes",
        &format!("127.0.0.1:{closed}"),
        "",
    );
    let output = weir(&["check", &spec]);
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(
        report.contains("[FAIL] postgres connection: connecting to PostgreSQL failed: ")
            && report.to_lowercase().contains("refused"),
        "{report}"
    );
    assert!(!report.contains("pg-secret"), "{report}");

    let cluster = PgCluster::start().expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster
        .create_database_with("causes", "CREATE TABLE events (id bigint PRIMARY KEY)")
        .await
        .expect("database");
    broker
        .create_topic("causes.events", 1, 1, &[])
        .expect("topic");
    let path = dir.path().join("avro.yaml");
    std::fs::write(
        &path,
        format!(
            "name: causes
source:
  postgres:
    url: {url}
    slot: causes
    publication: causes
    tables: [public.events]
    snapshot: never
sink:
  kafka:
    brokers: {brokers}
    topic: \"causes.{{table}}\"
    format: avro
    schema_registry: http://registry:reg-secret@127.0.0.1:{closed}
",
            url = cluster.url(&database),
            brokers = broker.bootstrap_servers(),
        ),
    )
    .expect("spec");
    let output = weir(&["check", &path.to_string_lossy()]);
    let report = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{report}");
    assert!(report.contains("[FAIL] schema registry: "), "{report}");
    assert!(!report.contains("reg-secret"), "{report}");
}

/// Snapshot requests are logical messages, which pgoutput sends from PostgreSQL 14
/// on: against 13, `weir snapshot` refuses instead of writing a request no
/// pipeline will ever see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_requests_are_refused_before_postgresql_14() {
    let cluster = PgCluster::builder()
        .install(weir_tests::PgInstall::major(13).expect("PostgreSQL 13 (scripts/setup.sh)"))
        .start()
        .expect("postgres 13");
    let database = cluster
        .create_database_with("old", "CREATE TABLE events (id bigint PRIMARY KEY)")
        .await
        .expect("database");
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = write_spec(
        dir.path(),
        &cluster.url(&database),
        &unique_name("slot"),
        "127.0.0.1:9",
        "    signals: true\n",
    );
    let refused = weir(&["snapshot", &spec, "public.events"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(
        text(&refused.stderr).contains("PostgreSQL 14"),
        "{}",
        text(&refused.stderr)
    );
}
