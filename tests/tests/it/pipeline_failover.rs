//! PostgreSQL failovers and slot safety (issue 21), against a primary and a
//! physical standby the harness starts. A failover under a writer: the primary is
//! killed with SIGKILL, its standby promoted, and weir, given both hosts with
//! `target_session_attrs=read-write`, finds the new primary and continues from its
//! copy of the failover slot: every row the new primary holds reaches Kafka, none
//! it lacks does, and nothing is snapshotted again. Then what goes wrong: a
//! standby without rows weir sent, a standby without the slot, a slot invalidated
//! by `max_slot_wal_keep_size`; and decoding on a standby.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use weir::source::failover_check::failover_precheck;
use weir::source::precheck::{CheckStatus, Finding};
use weir::source::{PgConnectOptions, SlotFailover};
use weir_tests::{KafkaCluster, PgCluster, PgInstall, read_topic, unique_name};

const WAIT: Duration = Duration::from_secs(90);
/// Rows in the table before weir starts: its initial snapshot.
const INITIAL_ROWS: i64 = 2_000;
/// The standby's physical slot on the primary.
const STANDBY_SLOT: &str = "weir_standby";

/// `postgres://…@a,b/db?target_session_attrs=read-write` for the two clusters.
fn both_hosts(primary: &PgCluster, standby: &PgCluster, database: &str) -> String {
    format!(
        "postgres://postgres:{}@127.0.0.1:{},127.0.0.1:{}/{database}?target_session_attrs=read-write",
        weir_tests::pg::SUPERUSER_PASSWORD,
        primary.port(),
        standby.port()
    )
}

/// Inserts until `stop`: single-row transactions, and every 40th one 500 rows.
/// Reconnects through `url` while no primary answers. Returns the ids of
/// transactions whose commit PostgreSQL acknowledged.
async fn write_until(url: String, stop: Arc<AtomicBool>) -> BTreeSet<i64> {
    let mut committed = BTreeSet::new();
    let mut next = INITIAL_ROWS + 1;
    let mut transactions = 0_u64;
    while !stop.load(Ordering::Relaxed) {
        let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await
        else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(connection);
        while !stop.load(Ordering::Relaxed) {
            transactions += 1;
            let size = if transactions.is_multiple_of(40) {
                500
            } else {
                1
            };
            let ids = next..next + size;
            next += size;
            let sql = format!(
                "INSERT INTO events SELECT g, 'row ' || g FROM generate_series({}, {}) g",
                ids.start,
                ids.end - 1
            );
            if client.batch_execute(&sql).await.is_err() {
                break;
            }
            committed.extend(ids);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    committed
}

/// `weir check`'s failover findings for `slot`, connected to the primary.
async fn failover_findings(primary: &PgCluster, url: &str, slot: &str) -> Vec<Finding> {
    let client = primary.connect("postgres").await.expect("primary");
    let options: PgConnectOptions = url.parse().expect("url");
    failover_precheck(&client, &options, slot, SlotFailover::Auto)
        .await
        .expect("precheck")
}

/// Every change message of `topic` as (op, id); with `committed`, as a
/// `read_committed` consumer reads them.
fn changes_read(bootstrap: &str, topic: &str, committed: bool) -> Vec<(String, i64)> {
    let read = if committed {
        weir_tests::read_topic_committed
    } else {
        read_topic
    };
    read(bootstrap, topic, Duration::from_secs(30))
        .expect("read back")
        .iter()
        .filter_map(|record| {
            let value: Json = serde_json::from_slice(record.payload.as_deref()?).ok()?;
            Some((
                value["op"].as_str()?.to_owned(),
                value["after"]["id"].as_i64()?,
            ))
        })
        .collect()
}

/// Every change message of `topic` as (op, id).
fn changes(bootstrap: &str, topic: &str) -> Vec<(String, i64)> {
    changes_read(bootstrap, topic, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_primary_fails_over_to_its_standby_with_every_row_and_no_new_snapshot() {
    fail_over_under_a_writer(false).await;
}

/// The same under `exactly_once`: a `read_committed` consumer sees every row of
/// the new primary once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_exactly_once_a_failover_delivers_every_row_once() {
    if let Some(duplicates) = fail_over_under_a_writer(true).await {
        assert_eq!(duplicates, 0, "rows read twice under exactly-once");
    }
}

/// Kills the primary under a writer, promotes the standby and checks Kafka
/// against the new primary; returns the rows sent twice (`None` when skipped).
async fn fail_over_under_a_writer(exactly_once: bool) -> Option<usize> {
    let install = PgInstall::selected().expect("postgres build");
    if install.major < 17 {
        eprintln!(
            "skipped: failover slots need PostgreSQL 17+, this is {}",
            install.major
        );
        return None;
    }
    // The logical walsender sends nothing the standby has not received, so
    // nothing reaches Kafka that a promoted standby could lack.
    let mut primary = PgCluster::builder()
        .setting("synchronized_standby_slots", STANDBY_SLOT)
        .start()
        .expect("primary");
    let database = primary
        .create_database_with(
            "failover",
            &format!(
                "CREATE TABLE events (id bigint PRIMARY KEY, body text);
                 INSERT INTO events SELECT g, 'row ' || g FROM generate_series(1, {INITIAL_ROWS}) g"
            ),
        )
        .await
        .expect("database");
    let standby = primary
        .start_standby(STANDBY_SLOT, &[])
        .await
        .expect("standby");
    let broker = KafkaCluster::start(1).expect("broker");
    let slot = unique_name("slot");
    let topic = unique_name("events");
    broker.create_topic(&topic, 3, 1, &[]).expect("topic");
    let url = both_hosts(&primary, &standby, &database);
    let pipeline = weir_tests::RunningPipeline::start(&format!(
        "name: failover
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    heartbeat: 1s
    retry_window: 5m
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: debezium-json
{transactions}",
        brokers = broker.bootstrap_servers(),
        transactions = if exactly_once {
            "    exactly_once: true\n"
        } else {
            ""
        },
    ))
    .expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_until(url.clone(), Arc::clone(&stop)));

    // The standby's copy of weir's slot: synchronised, and persistent (a copy
    // stays temporary until the standby has the WAL its position needs).
    let watcher = standby.connect("postgres").await.expect("standby");
    let deadline = Instant::now() + WAIT;
    loop {
        let row = watcher
            .query_opt(
                "SELECT synced AND NOT temporary, confirmed_flush_lsn::text
                 FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .expect("standby slots");
        if let Some(row) = row
            && row.get::<_, bool>(0)
        {
            eprintln!(
                "standby has the slot at {}",
                row.get::<_, Option<String>>(1).unwrap_or_default()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never synchronised the failover slot:\n{}",
            standby.server_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(watcher);
    // The precheck sees the same: a failover slot, copied by the standby named in
    // the URL, and nothing for a promoted standby to lack.
    let findings = failover_findings(&primary, &url, &slot).await;
    assert!(
        findings.iter().all(|f| f.status == CheckStatus::Pass),
        "{findings:#?}"
    );
    assert!(
        findings
            .iter()
            .any(|f| f.message.contains("keeps a synchronised copy")),
        "{findings:#?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;

    primary.crash().expect("kill -9 the primary");
    let crashed = Instant::now();
    // weir_source_streaming says so while weir reconnects (WeirNotStreaming).
    let streaming = |pipeline: &weir_tests::RunningPipeline| {
        pipeline.stats.metrics.render().lines().find_map(|line| {
            line.strip_prefix("weir_source_streaming ")
                .map(str::to_owned)
        })
    };
    while streaming(&pipeline).as_deref() != Some("0") {
        assert!(
            crashed.elapsed() < Duration::from_secs(10),
            "still streaming after the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    standby.promote().await.expect("promote");
    eprintln!("promoted {:?} after the kill", crashed.elapsed());
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let committed = writer.await.expect("writer");
    assert!(!pipeline.is_finished(), "weir stopped at the failover");

    // What the new primary holds is the truth; a commit acknowledged just
    // before the kill may be missing from it (asynchronous replication).
    let client = standby.connect(&database).await.expect("new primary");
    let truth: BTreeSet<i64> = client
        .query("SELECT id FROM events", &[])
        .await
        .expect("ids")
        .iter()
        .map(|row| row.get(0))
        .collect();
    let lost_by_postgres = committed.difference(&truth).count();
    assert!(
        truth.len() > INITIAL_ROWS as usize + 1_000,
        "the writer wrote {} rows",
        truth.len()
    );

    let deadline = Instant::now() + WAIT;
    let seen = loop {
        let seen = changes_read(broker.bootstrap_servers(), &topic, exactly_once);
        let ids: BTreeSet<i64> = seen.iter().map(|(_, id)| *id).collect();
        if ids.is_superset(&truth) || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let sessions = pipeline.stats.sessions.load(Ordering::Relaxed);
    assert_eq!(streaming(&pipeline).as_deref(), Some("1"));
    pipeline.stop().await.expect("clean stop");

    let mut count = BTreeMap::<i64, usize>::new();
    for (_, id) in &seen {
        *count.entry(*id).or_default() += 1;
    }
    let ids: BTreeSet<i64> = count.keys().copied().collect();
    let missing: Vec<_> = truth.difference(&ids).take(10).collect();
    let phantom: Vec<_> = ids.difference(&truth).take(10).collect();
    let duplicates: usize = count.values().map(|n| n - 1).sum();
    let snapshot_reads = seen.iter().filter(|(op, _)| op == "r").count();
    eprintln!(
        "exactly_once {exactly_once}: {} rows on the new primary, {lost_by_postgres} acknowledged commits it lacks, \
         {} messages, {duplicates} sent twice, {snapshot_reads} snapshot reads, \
         {sessions} sessions",
        truth.len(),
        seen.len()
    );
    assert!(missing.is_empty(), "rows never sent: {missing:?}…");
    assert!(
        phantom.is_empty(),
        "rows in Kafka the new primary does not have: {phantom:?}…"
    );
    assert_eq!(
        snapshot_reads, INITIAL_ROWS as usize,
        "the snapshot was taken again"
    );
    assert!(sessions >= 2, "weir streamed in {sessions} session(s) only");
    Some(duplicates)
}

/// The precheck names what keeps a standby from taking weir's slot over, with the
/// fix for each: no `synchronized_standby_slots` on the primary, and a standby
/// without `sync_replication_slots` and `hot_standby_feedback`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_precheck_names_what_a_standby_lacks_to_take_the_slot_over() {
    let install = PgInstall::selected().expect("postgres build");
    if install.major < 17 {
        eprintln!("skipped: failover slots need PostgreSQL 17+");
        return;
    }
    let primary = PgCluster::start().expect("primary");
    let standby = primary
        .start_standby(
            STANDBY_SLOT,
            &[
                ("sync_replication_slots", "off"),
                ("hot_standby_feedback", "off"),
            ],
        )
        .await
        .expect("standby");
    let url = both_hosts(&primary, &standby, "postgres");
    let findings = failover_findings(&primary, &url, "weir_slot").await;
    let warned = |text: &str| {
        findings
            .iter()
            .find(|f| f.status == CheckStatus::Warn && f.message.contains(text))
            .unwrap_or_else(|| panic!("no warning about {text}: {findings:#?}"))
    };
    let unsynchronised = warned("synchronized_standby_slots is empty");
    assert!(
        unsynchronised
            .fix
            .as_deref()
            .is_some_and(|fix| fix.contains(&format!("'{STANDBY_SLOT}'"))),
        "{unsynchronised:?}"
    );
    warned("sends no hot_standby_feedback");
    let standby_finding = warned("sync_replication_slots is off");
    assert!(
        standby_finding
            .message
            .contains("hot_standby_feedback is off"),
        "{standby_finding:?}"
    );
    let fix = standby_finding.fix.as_deref().unwrap_or_default();
    assert!(
        fix.contains("ALTER SYSTEM SET sync_replication_slots = on")
            && fix.contains("ALTER SYSTEM SET hot_standby_feedback = on"),
        "{fix}"
    );

    // `slot_failover: on` before 17 is refused; `off` passes with what it means.
    let client = primary.connect("postgres").await.expect("primary");
    let options: PgConnectOptions = url.parse().expect("url");
    let off = failover_precheck(&client, &options, "weir_slot", SlotFailover::Off)
        .await
        .expect("precheck");
    assert_eq!(off.len(), 1, "{off:#?}");
    assert!(off[0].message.contains("stays on the primary"), "{off:?}");
}

/// Without `synchronized_standby_slots` a standby can be promoted without changes
/// weir already sent to Kafka. weir notices by the new timeline's history and
/// stops, naming where the timelines part and how far it had sent, instead of
/// streaming on as if Kafka matched the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_promoted_without_rows_weir_sent_stops_weir_naming_them() {
    let mut primary = PgCluster::start().expect("primary");
    let database = primary
        .create_database_with(
            "diverge",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    let standby = primary
        .start_standby(STANDBY_SLOT, &[])
        .await
        .expect("standby");
    let broker = KafkaCluster::start(1).expect("broker");
    let slot = unique_name("slot");
    let topic = unique_name("events");
    broker.create_topic(&topic, 1, 1, &[]).expect("topic");
    let pipeline = weir_tests::RunningPipeline::start(&format!(
        "name: diverge
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    heartbeat: 1s
    retry_window: 5m
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: json
",
        url = both_hosts(&primary, &standby, &database),
        brokers = broker.bootstrap_servers(),
    ))
    .expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    primary
        .execute(
            &database,
            "INSERT INTO events SELECT g, 'before' FROM generate_series(1, 10) g",
        )
        .await
        .expect("rows both have");
    pipeline.wait_for_messages(10, WAIT).await.expect("10 rows");
    let replayed = standby.connect(&database).await.expect("standby");
    let deadline = Instant::now() + WAIT;
    while replayed
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get::<_, i64>(0)
        < 10
    {
        assert!(Instant::now() < deadline, "the standby never replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The standby stops receiving; the primary commits 100 rows weir sends on.
    for statement in [
        "ALTER SYSTEM SET primary_conninfo = ''",
        "SELECT pg_reload_conf()",
    ] {
        replayed
            .batch_execute(statement)
            .await
            .expect("cut the standby off");
    }
    let deadline = Instant::now() + WAIT;
    while replayed
        .query_opt("SELECT 1 FROM pg_stat_wal_receiver", &[])
        .await
        .expect("wal receiver")
        .is_some()
    {
        assert!(Instant::now() < deadline, "the WAL receiver never stopped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    primary
        .execute(
            &database,
            "INSERT INTO events SELECT g, 'lost' FROM generate_series(11, 110) g",
        )
        .await
        .expect("rows only the primary has");
    pipeline.wait_for_messages(110, WAIT).await.expect("sent");
    primary.crash().expect("kill -9 the primary");
    drop(replayed);
    standby.promote().await.expect("promote");

    let message = match pipeline.join(WAIT).await {
        Err(error) => format!("{error:#}"),
        Ok(_) => "a clean stop".to_owned(),
    };
    assert!(
        message.contains("timeline 2") && message.contains("leaves timeline 1"),
        "{message}\nprimary:\n{}\nstandby:\n{}",
        primary.server_log(),
        standby.server_log()
    );
    let client = standby.connect(&database).await.expect("new primary");
    let rows: i64 = client
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows, 10, "the promoted standby lacks the 100 rows");
    eprintln!("{message}");
}

/// A standby promoted without a copy of weir's slot (here: no
/// `sync_replication_slots`, as on every version before 17): under
/// `snapshot: initial` weir stops, naming the slot and its last position, rather
/// than create the slot afresh and skip what was committed meanwhile; under
/// `when_needed` it creates the slot again, takes a new snapshot and goes on, and
/// Kafka ends up with every row of the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_promoted_without_the_slot_stops_weir_or_is_snapshotted_when_needed() {
    let stopped = promote_a_standby_without_the_slot("initial").await;
    let message = stopped.expect_err("weir stops under snapshot: initial");
    assert!(
        message.contains("is gone from the server") && message.contains("when_needed"),
        "{message}"
    );
    promote_a_standby_without_the_slot("when_needed")
        .await
        .expect("weir goes on under snapshot: when_needed");
}

/// Streams through a failover to a standby that has no copy of the slot; `Err`
/// with weir's error when it stopped, `Ok` once Kafka holds every row of the
/// new primary.
async fn promote_a_standby_without_the_slot(snapshot: &str) -> Result<(), String> {
    let mut primary = PgCluster::start().expect("primary");
    let database = primary
        .create_database_with(
            "noslot",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text)",
        )
        .await
        .expect("database");
    // Before 17 no standby copies logical slots anyway.
    let no_copy: &[(&str, &str)] = if primary.install().major >= 17 {
        &[("sync_replication_slots", "off")]
    } else {
        &[]
    };
    let standby = primary
        .start_standby(STANDBY_SLOT, no_copy)
        .await
        .expect("standby");
    let broker = KafkaCluster::start(1).expect("broker");
    let slot = unique_name("slot");
    let topic = unique_name("events");
    broker.create_topic(&topic, 1, 1, &[]).expect("topic");
    let pipeline = weir_tests::RunningPipeline::start(&format!(
        "name: noslot
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    heartbeat: 1s
    retry_window: 5m
    snapshot: {snapshot}
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: debezium-json
",
        url = both_hosts(&primary, &standby, &database),
        brokers = broker.bootstrap_servers(),
    ))
    .expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    primary
        .execute(
            &database,
            "INSERT INTO events SELECT g, 'before' FROM generate_series(1, 100) g",
        )
        .await
        .expect("rows");
    pipeline.wait_for_messages(100, WAIT).await.expect("sent");
    let replica = standby.connect(&database).await.expect("standby");
    let deadline = Instant::now() + WAIT;
    while replica
        .query_one("SELECT count(*) FROM events", &[])
        .await
        .expect("count")
        .get::<_, i64>(0)
        < 100
    {
        assert!(Instant::now() < deadline, "the standby never replayed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(replica);
    primary.crash().expect("kill -9 the primary");
    standby.promote().await.expect("promote");
    let promoted = standby.connect(&database).await.expect("new primary");
    promoted
        .batch_execute("INSERT INTO events SELECT g, 'after' FROM generate_series(101, 150) g")
        .await
        .expect("rows after the failover");

    let deadline = Instant::now() + WAIT;
    loop {
        if pipeline.is_finished() {
            let error = pipeline
                .join(WAIT)
                .await
                .expect_err("stopped with an error");
            return Err(format!("{error:#}"));
        }
        let ids: BTreeSet<i64> = changes(broker.bootstrap_servers(), &topic)
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        if ids == (1..=150).collect() {
            pipeline.stop().await.expect("clean stop");
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "neither stopped nor caught up: {} ids in Kafka",
            ids.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The table Debezium events after the first `skip` leave behind: id → body.
fn rebuild(bootstrap: &str, topic: &str, skip: usize) -> BTreeMap<i64, String> {
    let mut table = BTreeMap::new();
    let records = read_topic(bootstrap, topic, Duration::from_secs(30)).expect("read back");
    for record in records.into_iter().skip(skip) {
        let Some(value) = record
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_slice::<Json>(p).ok())
        else {
            continue;
        };
        match value["op"].as_str() {
            Some("d") => {
                table.remove(&value["before"]["id"].as_i64().expect("id"));
            }
            Some(_) => {
                table.insert(
                    value["after"]["id"].as_i64().expect("id"),
                    value["after"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
            None => {}
        }
    }
    table
}

/// `max_slot_wal_keep_size` invalidates weir's slot while weir is stopped and
/// the table changes. On start under `snapshot: initial` weir refuses the slot,
/// naming why; under `when_needed` it drops it, creates it again and takes a new
/// snapshot, after which the table rebuilt from Kafka equals PostgreSQL's.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slot_invalidated_while_weir_was_stopped_is_refused_or_snapshotted_again_when_needed() {
    let cluster = PgCluster::builder()
        .setting("max_slot_wal_keep_size", "1MB")
        .start()
        .expect("postgres");
    let database = cluster
        .create_database_with(
            "invalid",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text);
             INSERT INTO events SELECT g, 'first' FROM generate_series(1, 500) g",
        )
        .await
        .expect("database");
    let broker = KafkaCluster::start(1).expect("broker");
    let slot = unique_name("slot");
    let topic = unique_name("events");
    broker.create_topic(&topic, 1, 1, &[]).expect("topic");
    let spec = |snapshot: &str| {
        format!(
            "name: invalid
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.events]
    snapshot: {snapshot}
sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: debezium-json
",
            url = cluster.url(&database),
            brokers = broker.bootstrap_servers(),
        )
    };
    let first = weir_tests::RunningPipeline::start(&spec("initial")).expect("starts");
    first.wait_for_messages(500, WAIT).await.expect("snapshot");
    // The slot's WAL against the limit, for alerts (looked at as the session
    // starts, then every 15 s).
    let sample = |metrics: &str, name: &str| -> Option<i64> {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&format!("{name} ")))
            .and_then(|value| value.parse().ok())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let metrics = first.stats.metrics.render();
        if sample(&metrics, "weir_slot_wal_limit_bytes") == Some(1 << 20) {
            break metrics;
        }
        assert!(Instant::now() < deadline, "no slot limit in\n{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let safe = sample(&metrics, "weir_slot_safe_wal_bytes").expect("safe bytes");
    assert_ne!(safe, -1, "a limit is in force: {metrics}");
    assert!(sample(&metrics, "weir_slot_retained_wal_bytes").is_some_and(|b| b > 0));
    first.stop().await.expect("clean stop");

    // Changes weir will never stream, and WAL past the slot's limit.
    let client = cluster.connect(&database).await.expect("connect");
    client
        .batch_execute(
            "UPDATE events SET body = 'second' WHERE id % 3 = 0;
             DELETE FROM events WHERE id % 7 = 0;
             INSERT INTO events SELECT g, 'late' FROM generate_series(501, 600) g",
        )
        .await
        .expect("changes");
    let deadline = Instant::now() + WAIT;
    loop {
        client
            .batch_execute(
                "CREATE TEMP TABLE IF NOT EXISTS filler (b text);
                 INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 2000);
                 SELECT pg_switch_wal(); CHECKPOINT;",
            )
            .await
            .expect("WAL");
        let status: Option<String> = client
            .query_one(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .expect("slot")
            .get(0);
        if status.as_deref() == Some("lost") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot stayed {status:?}");
    }

    let refused = weir_tests::RunningPipeline::start(&spec("initial")).expect("starts");
    let error = refused
        .join(WAIT)
        .await
        .expect_err("an invalidated slot is refused");
    let message = weir::redact::error_chain(error.as_ref());
    assert!(
        message.contains(&slot)
            && (message.contains("invalidated by the server") || message.contains("lost WAL")),
        "{message}"
    );

    // The new snapshot reads the table as it is; rows deleted meanwhile get no
    // event (as with Debezium), so the table is rebuilt from what follows.
    let before = read_topic(broker.bootstrap_servers(), &topic, Duration::from_secs(30))
        .expect("read back")
        .len();
    let again = weir_tests::RunningPipeline::start(&spec("when_needed")).expect("starts");
    let expected: BTreeMap<i64, String> = client
        .query("SELECT id, body FROM events", &[])
        .await
        .expect("rows")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let deadline = Instant::now() + WAIT;
    while rebuild(broker.bootstrap_servers(), &topic, before) != expected {
        assert!(!again.is_finished(), "weir stopped under when_needed");
        assert!(Instant::now() < deadline, "Kafka never matched the table");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    again.stop().await.expect("clean stop");
}

/// Decoding on a hot standby (PostgreSQL 16+): weir reads its initial snapshot and
/// the stream from the standby while a writer commits on the primary from before
/// weir starts to the end, and Kafka ends with every row of the table. What a
/// standby cannot do is refused with the fix: a publication only the primary could
/// create, snapshot requests. Before 16 a standby is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pipeline_reads_a_standby_with_its_snapshot_and_stream() {
    let primary = PgCluster::start().expect("primary");
    let database = primary
        .create_database_with(
            "onstandby",
            "CREATE TABLE events (id bigint PRIMARY KEY, body text);
             INSERT INTO events SELECT g, 'row ' || g FROM generate_series(1, 3000) g;
             CREATE PUBLICATION on_standby FOR TABLE events",
        )
        .await
        .expect("database");
    let standby = primary
        .start_standby(STANDBY_SLOT, &[])
        .await
        .expect("standby");
    let broker = KafkaCluster::start(1).expect("broker");
    let topic = unique_name("events");
    broker.create_topic(&topic, 1, 1, &[]).expect("topic");
    let spec = |publication: &str, extra: &str| {
        format!(
            "name: onstandby
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {publication}
    tables: [public.events]
    retry_window: 1m
{extra}sink:
  kafka:
    brokers: {brokers}
    topic: {topic}
    format: debezium-json
",
            url = standby.url(&database),
            slot = unique_name("slot"),
            brokers = broker.bootstrap_servers(),
        )
    };
    let refused = |spec: String| async move {
        let pipeline = weir_tests::RunningPipeline::start(&spec).expect("starts");
        let error = pipeline.join(WAIT).await.expect_err("refused");
        weir::redact::error_chain(error.as_ref())
    };
    if primary.install().major < 16 {
        let message = refused(spec("on_standby", "")).await;
        assert!(message.contains("PostgreSQL 16"), "{message}");
        return;
    }
    let message = refused(spec("missing", "")).await;
    assert!(message.contains("create it on the primary"), "{message}");
    let message = refused(spec("on_standby", "    signals: true\n")).await;
    assert!(message.contains("signals: false"), "{message}");

    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let url = primary.url(&database);
        let stop = Arc::clone(&stop);
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("writer");
            tokio::spawn(connection);
            let mut id = 3000_i64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                client
                    .batch_execute(&format!(
                        "INSERT INTO events VALUES ({id}, 'new'); UPDATE events SET body = 'changed' WHERE id = {}",
                        id - 2999
                    ))
                    .await
                    .expect("write");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pipeline = weir_tests::RunningPipeline::start(&spec("on_standby", "")).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");

    let client = primary.connect(&database).await.expect("primary");
    let expected: BTreeMap<i64, String> = client
        .query("SELECT id, body FROM events", &[])
        .await
        .expect("rows")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let deadline = Instant::now() + WAIT;
    loop {
        let rebuilt = rebuild(broker.bootstrap_servers(), &topic, 0);
        if rebuilt == expected {
            break;
        }
        assert!(!pipeline.is_finished(), "weir stopped on the standby");
        assert!(
            Instant::now() < deadline,
            "Kafka never matched the table: {} of {} rows",
            rebuilt.len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let slot_on_standby = standby
        .connect("postgres")
        .await
        .expect("standby")
        .query_one(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_type = 'logical'",
            &[],
        )
        .await
        .expect("slots")
        .get::<_, i64>(0);
    assert_eq!(slot_on_standby, 1, "the slot lives on the standby");
    eprintln!("{} rows read from the standby", expected.len());
    pipeline.stop().await.expect("clean stop");
}

/// A replication connection given a standby first finds the primary behind it
/// when `target_session_attrs=read-write` asks for one, and takes the standby
/// otherwise, as libpq does; a URL whose hosts are all standbys names the last
/// one and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_connections_skip_standbys_for_read_write() {
    use weir::source::replication::{ReplicationConnection, ReplicationError};
    let primary = PgCluster::start().expect("primary");
    let standby = primary
        .start_standby(STANDBY_SLOT, &[])
        .await
        .expect("standby");
    let url = |first: &PgCluster, second: &PgCluster, attrs: &str| {
        format!(
            "postgres://postgres:{}@127.0.0.1:{},127.0.0.1:{}/postgres{attrs}",
            weir_tests::pg::SUPERUSER_PASSWORD,
            first.port(),
            second.port()
        )
    };
    let read_only = |url: String| async move {
        let options: PgConnectOptions = url.parse().expect("url");
        let mut connection = ReplicationConnection::connect(&options)
            .await
            .expect("connects");
        connection
            .simple_query("SHOW transaction_read_only")
            .await
            .expect("show")[0][0]
            .clone()
    };
    assert_eq!(
        read_only(url(&standby, &primary, "?target_session_attrs=read-write")).await,
        Some("off".to_owned()),
        "read-write skips the standby"
    );
    assert_eq!(
        read_only(url(&standby, &primary, "")).await,
        Some("on".to_owned()),
        "without it the first host answers"
    );
    let options: PgConnectOptions = url(&standby, &standby, "?target_session_attrs=read-write")
        .parse()
        .expect("url");
    let error = ReplicationConnection::connect(&options)
        .await
        .expect_err("no primary");
    assert!(
        matches!(error, ReplicationError::ReadOnly { .. }) && error.is_retryable(),
        "{error}"
    );
    assert!(
        error.to_string().contains(&standby.port().to_string()),
        "{error}"
    );
}
