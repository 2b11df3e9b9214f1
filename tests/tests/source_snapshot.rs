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
    let mut parts = Vec::new();
    let rows = tokio::time::timeout(
        Duration::from_secs(30),
        read(&client, &table, meta, 2, &mut |batch| parts.push(batch)),
    )
    .await
    .expect("in time")
    .expect("read");
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
