//! The snapshot reader against streaming: the same rows, read once through a slot
//! (pgoutput) and once through `COPY` under a snapshot, give identical Arrow
//! columns for every type, escapes and nulls included.

use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::compute::concat_batches;
use arrow::datatypes::UInt8Type;
use arrow::record_batch::RecordBatch;
use weir::Lsn;
use weir::batch::RowMeta;
use weir::source::BatchLimits;
use weir::source::snapshot::table::{describe, read};
use weir_tests::{PgCluster, ReplicationFixture, batch_messages, read_transactions, table_batch};

const SETUP: &str = "
    CREATE TYPE mood AS ENUM ('ok', 'meh');
    CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(10,2), exact numeric,
                        qty smallint, big bigint, ratio float8, small real, ok boolean,
                        at timestamptz, local timestamp, day date, clock time,
                        span interval, tags text[], counts int4[], data bytea, doc jsonb,
                        uid uuid, addr inet, feeling mood, twice int GENERATED ALWAYS AS (id * 2) STORED);
";

const ROWS: &str = "INSERT INTO items VALUES
    (1, 'Ann', 129.90, 1234567890.123456789, 3, 9007199254740993, 0.25, 1.5, true,
     '2026-11-21 08:00:00.25+00', '2026-11-21 08:00:00.000001', '2026-11-21', '13:14:15.5',
     '1 day 02:00:00', '{a,\"b c\",NULL,\"q\\\"uote\"}', '{1,NULL,3}', '\\x01ff00', '{\"k\": [1, 2]}',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '10.0.0.1/8', 'ok'),
    (2, E'tab\\there\\nnew line\\\\back', -0.01, 'NaN', NULL, NULL, 'NaN', '-Infinity', NULL,
     'infinity', '-infinity', '-infinity', NULL, '-3 mons -2 days', '{}', '{}', '', NULL, NULL, NULL, 'meh'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL)";

/// The user columns of `batch` (everything but weir's metadata and old image).
fn user_columns(batch: &RecordBatch) -> Vec<(String, std::sync::Arc<dyn Array>)> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(field, _)| !field.name().starts_with('_'))
        .map(|(field, column)| (field.name().clone(), std::sync::Arc::clone(column)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_rows_equal_streamed_rows_for_every_type() {
    let cluster = PgCluster::start().expect("postgres");
    let fixture = ReplicationFixture::new(cluster, SETUP, "TABLE items")
        .await
        .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    fixture.sql(ROWS).await.expect("rows");
    let messages = read_transactions(&mut stream, 1).await.expect("streamed");
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    let streamed = table_batch(&batches, "items").expect("streamed items");

    let client = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("client");
    let table = describe(&client, "public", "items")
        .await
        .expect("described");
    assert_eq!(table.schema.primary_key, ["id"]);
    let meta = RowMeta {
        op: b'r',
        lsn: Lsn(0x100),
        commit_lsn: Lsn(0x100),
        xid: 0,
        commit_time_micros: 0,
        seq: 0,
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<RecordBatch>(1);
    let collector = tokio::spawn(async move {
        let mut parts = Vec::new();
        while let Some(batch) = receiver.recv().await {
            parts.push(batch);
        }
        parts
    });
    let rows = tokio::time::timeout(
        Duration::from_secs(30),
        read(&client, &table, meta, 2, &sender),
    )
    .await
    .expect("in time")
    .expect("read");
    drop(sender);
    let parts = collector.await.expect("collected");
    assert_eq!(rows, 3);
    assert!(parts.len() >= 2, "rows_per_batch cuts batches");
    let snapshot = concat_batches(&parts[parts.len() - 1].schema(), &parts).expect("one schema");

    let ops = snapshot
        .column_by_name("_op")
        .expect("_op")
        .as_primitive::<UInt8Type>();
    assert!(ops.values().iter().all(|op| *op == b'r'));
    let (ours, theirs) = (user_columns(&snapshot), user_columns(&streamed));
    assert_eq!(
        ours.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        theirs.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "the same columns, generated ones left out"
    );
    for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
        assert_eq!(a.data_type(), b.data_type(), "{name}");
        assert_eq!(a.to_data(), b.to_data(), "{name}");
    }
}

/// A batch's changes in row order: the kind, the row's id (the old id for a
/// delete that carries an old image) and its value.
fn changes(batch: &RecordBatch) -> Vec<(u8, i64, String)> {
    let ops = batch
        .column_by_name("_op")
        .expect("_op")
        .as_primitive::<UInt8Type>();
    let ids = batch
        .column_by_name("id")
        .expect("id")
        .as_primitive::<arrow::datatypes::Int64Type>();
    let values = batch.column_by_name("val").expect("val").as_string::<i32>();
    let old_ids = batch
        .column_by_name("_before")
        .and_then(|c| c.as_struct_opt().cloned())
        .map(|before| {
            let ids = before
                .column_by_name("id")
                .expect("old id")
                .as_primitive::<arrow::datatypes::Int64Type>()
                .clone();
            (before, ids)
        });
    (0..batch.num_rows())
        .map(|row| {
            let op = ops.value(row);
            let id = match &old_ids {
                Some((before, old)) if op == b'd' && before.is_valid(row) => old.value(row),
                _ => ids.value(row),
            };
            (op, id, values.value(row).to_owned())
        })
        .collect()
}

/// Applies a batch's changes to `state` (id → value), in row order.
fn apply(state: &mut std::collections::BTreeMap<i64, String>, batch: &RecordBatch) {
    for (op, id, value) in changes(batch) {
        if op == b'd' {
            state.remove(&id);
        } else {
            state.insert(id, value);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_snapshot_and_the_stream_after_it_rebuild_the_table_exactly() {
    use std::sync::Arc;
    use weir::source::PgConnectOptions;
    use weir::source::SourceEvent;
    use weir::source::replication::{PgOutputOptions, SlotSnapshot};
    use weir::source::snapshot::SnapshotEvent;
    use weir::source::snapshot::parallel::{plan, read_chunks, snapshot_connection};

    let cluster = PgCluster::start().expect("postgres");
    let fixture = ReplicationFixture::new(
        cluster,
        "CREATE TABLE t (id bigint PRIMARY KEY, val text NOT NULL);
         INSERT INTO t SELECT n, 'v' || n FROM generate_series(1, 20000) n;",
        "TABLE t",
    )
    .await
    .expect("fixture");

    // Writes before, during and after the snapshot's creation and reading.
    let writer = {
        let cluster_url = fixture.cluster.url(&fixture.database);
        tokio::spawn(async move {
            let (client, driver) = tokio_postgres::connect(&cluster_url, tokio_postgres::NoTls)
                .await
                .expect("writer connects");
            tokio::spawn(driver);
            let mut transactions = 0u64;
            for round in 0..300i64 {
                client
                    .batch_execute(&format!(
                        "BEGIN;
                         UPDATE t SET val = 'u{round}' WHERE id % 300 = {round};
                         DELETE FROM t WHERE id = {};
                         INSERT INTO t VALUES ({}, 'new{round}');
                         COMMIT;",
                        round * 7 + 1,
                        100_000 + round
                    ))
                    .await
                    .expect("write");
                transactions += 1;
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            transactions
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The slot, exporting its snapshot; the connection stays idle while it is used.
    let mut replication = fixture.connect().await.expect("replication connection");
    let created = replication
        .create_logical_slot("snap", false, SlotSnapshot::Export, false)
        .await
        .expect("slot");
    let snapshot = created.snapshot_name.clone().expect("an exported snapshot");
    let options: PgConnectOptions = fixture
        .cluster
        .url(&fixture.database)
        .parse()
        .expect("options");
    let mut clients = Vec::new();
    for _ in 0..2 {
        clients.push(Arc::new(
            snapshot_connection(&options, &snapshot)
                .await
                .expect("imports"),
        ));
    }
    let table = describe(&clients[0], "public", "t")
        .await
        .expect("described");
    let chunks = plan(&clients[0], &table, 20_000 / 6, 100)
        .await
        .expect("chunks");
    assert!(chunks.len() >= 6, "{chunks:?}");
    let planned = chunks.len();
    let meta = RowMeta {
        op: b'r',
        lsn: created.consistent_point,
        commit_lsn: created.consistent_point,
        xid: 0,
        commit_time_micros: 0,
        seq: 0,
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    let reading = tokio::spawn({
        let table = table.clone();
        let chunks = chunks.into_iter().enumerate().collect();
        async move { read_chunks(clients, &table, chunks, meta, 1000, None, sender).await }
    });
    let mut state = std::collections::BTreeMap::new();
    let mut chunks_read = 0;
    while let Some(event) = receiver.recv().await {
        match event {
            SourceEvent::Batch(batch) => apply(&mut state, &batch),
            SourceEvent::Snapshot(SnapshotEvent::ChunkRead(_)) => chunks_read += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(chunks_read, planned);
    reading.await.expect("joined").expect("read");

    // Streaming from the consistent point brings every later change.
    let transactions_done = writer.await.expect("writer");
    let after_writes = fixture.cluster.current_wal_lsn().await.expect("lsn");
    let stream_options = PgOutputOptions::for_server(
        fixture.cluster.major_version().await.expect("version"),
        vec![fixture.publication.clone()],
    );
    let mut stream = replication
        .start_logical_replication("snap", Lsn::ZERO, &stream_options)
        .await
        .expect("stream");
    // The writer's transactions committed after the consistent point: read until
    // the stream passes the end of the last one.
    let mut messages = Vec::new();
    loop {
        let mut more = read_transactions(&mut stream, 1)
            .await
            .expect("a transaction");
        let last = more.last().map(|(lsn, _)| *lsn).unwrap_or(Lsn::ZERO);
        messages.append(&mut more);
        if last >= after_writes || messages.len() > 100_000 {
            break;
        }
    }
    assert!(transactions_done > 0);
    // The snapshot is exactly the table at the consistent point: rows the stream
    // inserts are not in it, rows the stream deletes are.
    let snapshot_ids: std::collections::BTreeSet<i64> = state.keys().copied().collect();
    let (mut inserted, mut deleted) = (0, 0);
    for batch in batch_messages(&messages, BatchLimits::default()).expect("batches") {
        for (op, id, _) in changes(&batch) {
            match op {
                b'c' => {
                    inserted += 1;
                    assert!(
                        !snapshot_ids.contains(&id),
                        "the snapshot saw a later insert of {id}"
                    );
                }
                b'd' if id < 100_000 => {
                    deleted += 1;
                    assert!(
                        snapshot_ids.contains(&id),
                        "the snapshot missed {id}, deleted later"
                    );
                }
                _ => {}
            }
        }
        apply(&mut state, &batch);
    }
    assert!(
        inserted > 0 && deleted > 0,
        "writes happened after the consistent point"
    );

    let client = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("client");
    let rows = client
        .query("SELECT id, val FROM t ORDER BY id", &[])
        .await
        .expect("table");
    let table_now: std::collections::BTreeMap<i64, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(state.len(), table_now.len());
    assert!(
        state == table_now,
        "the snapshot plus the stream rebuild the table"
    );
}
