//! The PostgreSQL source stage end to end: confirmation only of what was flushed,
//! restarts without loss, standby takeover, idle progress, large transactions.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir::Lsn;
use weir::source::snapshot::SnapshotMode;
use weir::source::{
    BatchLimits, CommittedTransaction, PostgresSource, PostgresSourceConfig, RetryPolicy,
    SourceError, SourceEvent, SourceStats, TableSelector,
};
use weir_tests::{PgCluster, unique_name};

const TIMEOUT: Duration = Duration::from_secs(30);

struct Running {
    stats: Arc<SourceStats>,
    events: mpsc::Receiver<SourceEvent>,
    flushed: watch::Sender<Lsn>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), SourceError>>,
}

fn config(
    cluster: &PgCluster,
    database: &str,
    slot: &str,
    tables: &[&str],
) -> PostgresSourceConfig {
    let mut config = PostgresSourceConfig::new(
        cluster.url(database).parse().expect("url"),
        slot,
        slot,
        tables
            .iter()
            .map(|t| t.parse::<TableSelector>().expect("table"))
            .collect(),
    );
    config.heartbeat = None;
    // These tests are about streaming; the snapshot has its own.
    config.snapshot.mode = SnapshotMode::Never;
    config.retry = RetryPolicy {
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(500),
        window: Some(Duration::from_secs(60)),
    };
    config
}

fn spawn(config: PostgresSourceConfig, capacity: usize) -> Running {
    let (sender, events) = mpsc::channel(capacity);
    let (flushed, flushed_rx) = watch::channel(Lsn::ZERO);
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let source = PostgresSource::new(config);
    let stats = source.stats();
    let task = tokio::spawn(async move { source.run(sender, flushed_rx, token).await });
    Running {
        stats,
        events,
        flushed,
        shutdown,
        task,
    }
}

impl Running {
    async fn next(&mut self) -> SourceEvent {
        tokio::time::timeout(TIMEOUT, self.events.recv())
            .await
            .expect("an event before the timeout")
            .expect("source running")
    }

    /// Collects events until `commits` transactions with rows have committed; returns
    /// the ids of the rows (column `id`) and those commits.
    async fn transactions(&mut self, commits: usize) -> (Vec<i32>, Vec<CommittedTransaction>) {
        let (mut ids, mut done) = (Vec::new(), Vec::new());
        while done.len() < commits {
            match self.next().await {
                SourceEvent::Batch(batch) | SourceEvent::Reads { batch, .. } => {
                    let column = batch
                        .column_by_name("id")
                        .expect("id")
                        .as_primitive::<Int32Type>();
                    ids.extend(column.values().iter().copied());
                }
                SourceEvent::Committed(commit) if commit.rows > 0 => done.push(commit),
                SourceEvent::Committed(_)
                | SourceEvent::SessionStarted { .. }
                | SourceEvent::Snapshot(_)
                | SourceEvent::SchemaChange(_) => {}
            }
        }
        (ids, done)
    }

    async fn session_started(&mut self) -> Lsn {
        loop {
            if let SourceEvent::SessionStarted { start } = self.next().await {
                return start;
            }
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let mut events = self.events;
        let drain = tokio::spawn(async move { while events.recv().await.is_some() {} });
        tokio::time::timeout(TIMEOUT, self.task)
            .await
            .expect("stops in time")
            .expect("task")
            .expect("clean stop");
        let _ = drain.await;
    }
}

/// A fresh cluster with a database holding `tables_sql`, and a slot name for the test.
async fn setup(tables_sql: &str) -> (PgCluster, String, String) {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("stage").await.expect("database");
    cluster
        .execute(&database, tables_sql)
        .await
        .expect("tables");
    (cluster, database, unique_name("slot"))
}

async fn confirmed(cluster: &PgCluster, slot: &str) -> Option<Lsn> {
    cluster
        .replication_slots()
        .await
        .expect("slots")
        .into_iter()
        .find(|s| s.slot_name == slot)
        .and_then(|s| s.confirmed_flush_lsn)
}

async fn wait_for_confirmed(cluster: &PgCluster, slot: &str, at_least: Lsn) -> Lsn {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(lsn) = confirmed(cluster, slot).await
            && lsn >= at_least
        {
            return lsn;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slot never confirmed {at_least}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn insert_each(cluster: &PgCluster, database: &str, ids: std::ops::RangeInclusive<i32>) {
    let client = cluster.connect(database).await.expect("connect");
    for id in ids {
        client
            .execute("INSERT INTO t VALUES ($1)", &[&id])
            .await
            .expect("insert");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_was_flushed_is_confirmed() {
    let (cluster, database, slot) = setup("CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut source = spawn(config(&cluster, &database, &slot, &["public.t"]), 16);
    let start = source.session_started().await;

    insert_each(&cluster, &database, 1..=3).await;
    let (ids, commits) = source.transactions(3).await;
    assert_eq!(ids, [1, 2, 3]);
    assert!(commits.windows(2).all(|w| w[0].end_lsn < w[1].end_lsn));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        confirmed(&cluster, &slot).await,
        Some(start),
        "nothing flushed, nothing confirmed"
    );

    source.flushed.send(commits[0].end_lsn).expect("flush");
    assert_eq!(
        wait_for_confirmed(&cluster, &slot, commits[0].end_lsn).await,
        commits[0].end_lsn
    );
    // Unconfirmed WAL shows as lag; the newest commit is seconds old at most.
    let stats = Arc::clone(&source.stats);
    let (end_before, confirmed_before) = (
        stats.server_wal_end.load(Ordering::Relaxed),
        stats.confirmed_lsn.load(Ordering::Relaxed),
    );
    let lag_before = end_before.saturating_sub(confirmed_before);
    assert!(
        lag_before >= commits[2].end_lsn.0 - commits[0].end_lsn.0,
        "lag {lag_before}"
    );
    assert!(stats.lag_seconds().is_some_and(|s| s < 30.0));
    source.flushed.send(commits[2].end_lsn).expect("flush");
    assert_eq!(
        wait_for_confirmed(&cluster, &slot, commits[2].end_lsn).await,
        commits[2].end_lsn
    );
    // The counter follows the status update the server has just applied.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while stats.confirmed_lsn.load(Ordering::Relaxed) != commits[2].end_lsn.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "confirmed_lsn never caught up"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Confirming shrinks the lag, whatever WAL the server wrote meanwhile.
    let end_after = stats.server_wal_end.load(Ordering::Relaxed);
    let lag_after = end_after.saturating_sub(stats.confirmed_lsn.load(Ordering::Relaxed));
    assert!(
        lag_after.saturating_sub(end_after - end_before) < lag_before,
        "confirming reduces the lag: {lag_after} after, {lag_before} before"
    );
    assert_eq!(source.stats.rows.load(Ordering::Relaxed), 3);
    source.stop().await;
    // The publication and slot the source created stay for the next run.
    assert_eq!(confirmed(&cluster, &slot).await, Some(commits[2].end_lsn));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_reader_restarts_without_loss() {
    let (cluster, database, slot) = setup("CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut first = spawn(config(&cluster, &database, &slot, &["public.t"]), 64);
    first.session_started().await;
    insert_each(&cluster, &database, 1..=10).await;
    let (ids, commits) = first.transactions(10).await;
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    first.flushed.send(commits[4].end_lsn).expect("flush");
    wait_for_confirmed(&cluster, &slot, commits[4].end_lsn).await;

    // Killed: no goodbye, no final status.
    first.task.abort();
    let _ = first.task.await;
    insert_each(&cluster, &database, 11..=15).await;

    let mut second = spawn(config(&cluster, &database, &slot, &["public.t"]), 64);
    second.session_started().await;
    let (ids, _) = second.transactions(10).await;
    // Confirmed transactions do not come again; unconfirmed ones (6..=10) do; nothing
    // committed while no reader ran is lost.
    assert_eq!(ids, (6..=15).collect::<Vec<_>>());
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_when_the_active_reader_stops() {
    let (cluster, database, slot) = setup("CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut active = spawn(config(&cluster, &database, &slot, &["public.t"]), 16);
    active.session_started().await;

    let mut standby = spawn(config(&cluster, &database, &slot, &["public.t"]), 16);
    let waited = tokio::time::timeout(Duration::from_secs(2), standby.events.recv()).await;
    assert!(
        waited.is_err(),
        "the standby waits while the slot is in use: {waited:?}"
    );

    insert_each(&cluster, &database, 1..=1).await;
    let (ids, commits) = active.transactions(1).await;
    assert_eq!(ids, [1]);
    active.flushed.send(commits[0].end_lsn).expect("flush");
    wait_for_confirmed(&cluster, &slot, commits[0].end_lsn).await;
    active.stop().await;

    let start = standby.session_started().await;
    assert_eq!(
        start, commits[0].end_lsn,
        "the standby resumes where the active one confirmed"
    );
    insert_each(&cluster, &database, 2..=2).await;
    let (ids, _) = standby.transactions(1).await;
    assert_eq!(ids, [2]);
    standby.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_publication_still_advances_the_slot() {
    let (cluster, database, slot) =
        setup("CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE busy (id int)").await;
    let mut config = config(&cluster, &database, &slot, &["public.t"]);
    config.heartbeat = Some(Duration::from_millis(200));
    let mut source = spawn(config, 16);
    source.session_started().await;

    // Only an unpublished table is written. The checkpoint stand-in confirms every
    // commit marker, as the tracker would once Kafka acknowledged earlier messages.
    cluster
        .execute(
            &database,
            "INSERT INTO busy SELECT generate_series(1, 1000)",
        )
        .await
        .expect("writes");
    let target = cluster.current_wal_lsn().await.expect("lsn");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut heartbeats = 0;
    loop {
        if let SourceEvent::Committed(commit) = source.next().await {
            assert_eq!(
                commit.rows, 0,
                "no rows of the published table were written"
            );
            heartbeats += 1;
            source.flushed.send(commit.end_lsn).expect("flush");
            if commit.end_lsn >= target {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never passed {target}"
        );
    }
    assert!(wait_for_confirmed(&cluster, &slot, target).await >= target);
    assert!(heartbeats >= 1);
    source.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transactions_and_rows_pass_in_bounded_batches() {
    large_transactions_pass(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transactions_streamed_in_progress_pass_in_bounded_batches() {
    large_transactions_pass(true).await;
}

/// A 200 000-row transaction and a 100 MB row, with the server holding large
/// transactions until their commit (`stream_in_progress` off) or streaming them
/// while they run; the server's own statistics tell which it did.
async fn large_transactions_pass(stream_in_progress: bool) {
    // 1 MB of decoding memory: the 200 000-row transaction outgrows it.
    let cluster = PgCluster::builder()
        .setting("logical_decoding_work_mem", "1MB")
        .start()
        .expect("cluster");
    let database = cluster.create_database("stage").await.expect("database");
    cluster
        .execute(&database, "CREATE TABLE t (id int PRIMARY KEY, body text)")
        .await
        .expect("tables");
    let slot = unique_name("slot");
    let mut config = config(&cluster, &database, &slot, &["public.t"]);
    config.stream_in_progress = stream_in_progress;
    config.batch = BatchLimits {
        max_rows: 4096,
        max_bytes: 8 << 20,
    };
    // A channel of 2: the test reads slowly, so the source must wait, not buffer.
    let mut source = spawn(config, 2);
    source.session_started().await;
    cluster
        .execute(
            &database,
            "INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200000) g",
        )
        .await
        .expect("big transaction");
    cluster
        .execute(
            &database,
            "INSERT INTO t VALUES (0, repeat('x', 100 * 1024 * 1024))",
        )
        .await
        .expect("100 MB row");

    let mut rows = 0;
    let mut largest_batch = 0;
    let mut commits = Vec::new();
    while commits.len() < 2 {
        match source.next().await {
            SourceEvent::Batch(batch) => {
                rows += batch.num_rows();
                largest_batch = largest_batch.max(batch.num_rows());
                tokio::time::sleep(Duration::from_millis(1)).await;
                if batch.num_rows() == 1 {
                    let body = batch
                        .column_by_name("body")
                        .expect("body")
                        .as_string::<i32>();
                    assert_eq!(body.value(0).len(), 100 * 1024 * 1024);
                }
            }
            SourceEvent::Committed(commit) if commit.rows > 0 => commits.push(commit),
            _ => {}
        }
    }
    assert_eq!(rows, 200_001);
    assert_eq!(commits[0].rows, 200_000);
    assert!(
        largest_batch <= 4096,
        "batches stay within the row limit: {largest_batch}"
    );
    source.stop().await;

    if cluster.major_version().await.expect("version") < 14 {
        // Neither streaming nor pg_stat_replication_slots before PostgreSQL 14: the
        // server held the transaction until its commit, and the bound above held.
        return;
    }
    let client = cluster.connect(&database).await.expect("connect");
    let stats = client
        .query_one(
            "SELECT stream_txns, spill_txns FROM pg_stat_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await
        .expect("slot statistics");
    let (streamed, spilled): (i64, i64) = (stats.get(0), stats.get(1));
    if stream_in_progress {
        assert!(streamed >= 1, "the server streamed: {streamed} streamed");
    } else {
        assert_eq!(streamed, 0, "the server did not stream");
        assert!(
            spilled >= 1,
            "the server held the transaction: {spilled} spilled"
        );
    }
}

/// A transaction replayed under a replication origin (as a subscriber or another
/// CDC tool applies changes) passes like any other. PostgreSQL 13 and 14 send an
/// empty pgoutput message for it, which stopped the source once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_replayed_under_a_replication_origin_passes() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("origin").await.expect("database");
    cluster
        .execute(&database, "CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .expect("table");
    let slot = unique_name("slot");
    let mut source = spawn(config(&cluster, &database, &slot, &["public.t"]), 16);
    source.session_started().await;
    cluster
        .execute(&database, &weir_tests::replayed_insert_sql("t", 7))
        .await
        .expect("replayed");
    cluster
        .execute(&database, "INSERT INTO t VALUES (8)")
        .await
        .expect("plain");
    let (ids, commits) = source.transactions(2).await;
    assert_eq!(ids, [7, 8]);
    assert_eq!(commits.len(), 2);
    assert!(!source.task.is_finished(), "the source goes on");
    source.shutdown.cancel();
}
