//! The source as a library, as `docs/source.md` shows it: the example there is the
//! code between the markers below, run here against a real server.

use std::time::Duration;

use tokio_util::sync::CancellationToken as Shutdown;
use weir_tests::PgCluster;

// docs/source.md:begin
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use weir::Lsn;
use weir::source::{PostgresSource, PostgresSourceConfig, SourceEvent};

/// Streams `public.orders` until `shutdown`; returns the rows seen.
async fn stream(url: &str, shutdown: CancellationToken) -> anyhow::Result<usize> {
    let config = PostgresSourceConfig::new(
        url.parse()?,
        "weir_shop", // the slot, created when missing
        "weir_shop", // the publication, created when missing
        vec!["public.orders".parse()?],
    );
    let (events_tx, mut events) = mpsc::channel(16); // bounded: backpressure
    let (flushed, flushed_rx) = watch::channel(Lsn::ZERO);
    let source = PostgresSource::new(config);
    let task = tokio::spawn(async move { source.run(events_tx, flushed_rx, shutdown).await });
    let mut rows = 0;
    while let Some(event) = events.recv().await {
        match event {
            // Plugins, encoding and producing go here: changes, and the
            // snapshot's reads with where they sit in it (first, last, …).
            SourceEvent::Batch(batch) | SourceEvent::Reads { batch, .. } => {
                rows += batch.num_rows()
            }
            // Confirm a transaction only once Kafka acknowledged all of it: the
            // slot then lets the server recycle its WAL.
            SourceEvent::Committed(commit) => {
                flushed.send_replace(commit.end_lsn);
            }
            // A (re)connected session; the initial snapshot's progress; a
            // captured DDL statement (with `ddl_capture`).
            SourceEvent::SessionStarted { .. }
            | SourceEvent::Snapshot(_)
            | SourceEvent::SchemaChange(_) => {}
        }
    }
    task.await??;
    Ok(rows)
}
// docs/source.md:end

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_library_example_streams_and_confirms() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("shop").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE TABLE orders (id int PRIMARY KEY, total numeric);
             INSERT INTO orders VALUES (1, 9.5)",
        )
        .await
        .expect("table");
    let shutdown = Shutdown::new();
    let url = cluster.url(&database);
    let run = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { stream(&url, shutdown).await }
    });
    // The snapshot row, then three streamed ones; all confirmed before the stop.
    cluster
        .wait_confirmed("weir_shop", Lsn(1), Duration::from_secs(60))
        .await
        .expect("the slot is created and confirmed");
    cluster
        .execute(
            &database,
            "INSERT INTO orders VALUES (2, 1), (3, 2); INSERT INTO orders VALUES (4, 3)",
        )
        .await
        .expect("rows");
    let written = cluster.wal_insert_lsn().await.expect("lsn");
    cluster
        .wait_confirmed("weir_shop", written, Duration::from_secs(60))
        .await
        .expect("the example confirms what it received");
    shutdown.cancel();
    let rows = run.await.expect("joined").expect("streamed");
    assert_eq!(rows, 4, "one snapshot row and three streamed");
}

#[test]
fn docs_source_md_shows_this_example() {
    let this = include_str!("source_library.rs");
    let between = |text: &'static str, begin: &str, end: &str| -> &'static str {
        let start = text.find(begin).map(|at| at + begin.len()).expect("begin");
        let stop = start + text[start..].find(end).expect("end");
        text[start..stop].trim()
    };
    let example = between(this, "// docs/source.md:begin", "// docs/source.md:end");
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/source.md"))
        .expect("docs/source.md");
    let docs: &'static str = docs.leak();
    let shown = between(docs, "```rust\n", "```");
    assert_eq!(
        shown, example,
        "docs/source.md's example differs from the tested one"
    );
}
