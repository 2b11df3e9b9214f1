//! What differs between PostgreSQL 13 and 18 in what pgoutput sends, against the
//! server `WEIR_TEST_PG` selects (`scripts/test-postgres.sh` runs it on each):
//! prepared transactions (weir does not ask for two-phase decoding, so they arrive
//! once, at `COMMIT PREPARED`), transactions replayed under a replication origin
//! (an `Origin` message inside the transaction), and stored generated columns, which
//! a publication can carry from PostgreSQL 18 on.

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Int32Type;
use weir::source::BatchLimits;
use weir::source::pgoutput::{PgOutputMessage, TupleValue};
use weir_tests::{PgCluster, ReplicationFixture, batch_messages, read_transactions};

fn inserted_ids(messages: &[(weir::Lsn, PgOutputMessage)]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|(_, m)| match m {
            PgOutputMessage::Insert(insert) => insert.new.values().next().map(|v| match v {
                TupleValue::Text(t) | TupleValue::Binary(t) => {
                    String::from_utf8_lossy(t).into_owned()
                }
                other => format!("{other:?}"),
            }),
            _ => None,
        })
        .collect()
}

fn ids_of(batches: &[RecordBatch]) -> Vec<i32> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("id")
                .expect("id")
                .as_primitive::<Int32Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_transactions_arrive_once_at_commit_and_rolled_back_ones_never() {
    let cluster = PgCluster::builder()
        .setting("max_prepared_transactions", "10")
        .start()
        .expect("cluster");
    let fixture =
        ReplicationFixture::new(cluster, "CREATE TABLE t (id int PRIMARY KEY)", "ALL TABLES")
            .await
            .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql("BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'kept';")
        .await
        .expect("prepare");
    fixture
        .sql("BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'dropped';")
        .await
        .expect("prepare");
    // One statement a query: neither may run inside a transaction block.
    fixture
        .sql("ROLLBACK PREPARED 'dropped'")
        .await
        .expect("roll back");
    fixture.sql("COMMIT PREPARED 'kept'").await.expect("commit");
    fixture
        .sql("INSERT INTO t VALUES (3)")
        .await
        .expect("plain");
    let messages = read_transactions(&mut stream, 2).await.expect("stream");
    assert_eq!(inserted_ids(&messages), ["1", "3"]);
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    assert_eq!(ids_of(&batches), [1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_replayed_under_a_replication_origin_names_it_and_arrives() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture =
        ReplicationFixture::new(cluster, "CREATE TABLE t (id int PRIMARY KEY)", "ALL TABLES")
            .await
            .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql(&weir_tests::replayed_insert_sql("t", 7))
        .await
        .expect("replayed");
    let messages = read_transactions(&mut stream, 1).await.expect("stream");
    let origin = messages.iter().find_map(|(_, m)| match m {
        PgOutputMessage::Origin(origin) => Some(origin.name.clone()),
        _ => None,
    });
    if fixture.cluster.major_version().await.expect("version") >= 15 {
        assert_eq!(origin.as_deref(), Some("upstream"));
    } else {
        // 13 and 14 send an empty message instead (skipped, as weir skips it).
        assert_eq!(origin, None);
    }
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    assert_eq!(ids_of(&batches), [7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_generated_columns_come_when_the_server_and_the_publication_send_them() {
    let cluster = PgCluster::start().expect("cluster");
    let major = cluster.major_version().await.expect("version");
    // `publish_generated_columns` is new in PostgreSQL 18; before, pgoutput never
    // sends a generated column.
    let target = if major >= 18 {
        "TABLE t WITH (publish_generated_columns = stored)"
    } else {
        "TABLE t"
    };
    let fixture = ReplicationFixture::new(
        cluster,
        "CREATE TABLE t (id int PRIMARY KEY, a int, doubled int GENERATED ALWAYS AS (a * 2) STORED)",
        target,
    )
    .await
    .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql("INSERT INTO t (id, a) VALUES (1, 21)")
        .await
        .expect("insert");
    let messages = read_transactions(&mut stream, 1).await.expect("stream");
    let columns: Vec<String> = messages
        .iter()
        .find_map(|(_, m)| match m {
            PgOutputMessage::Relation(relation) => {
                Some(relation.columns.iter().map(|c| c.name.clone()).collect())
            }
            _ => None,
        })
        .expect("a Relation message");
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    let batch = batches.first().expect("a batch");
    if major >= 18 {
        assert_eq!(columns, ["id", "a", "doubled"]);
        let doubled = batch
            .column_by_name("doubled")
            .expect("the generated column")
            .as_primitive::<Int32Type>();
        assert_eq!(doubled.value(0), 42);
    } else {
        assert_eq!(columns, ["id", "a"]);
        assert!(batch.column_by_name("doubled").is_none());
    }
}
