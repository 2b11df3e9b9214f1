//! Streamed in-progress transactions (`streaming on`) against a real server: rows of
//! rolled-back transactions and subtransactions never come out, committed ones come out
//! in commit order with their commit position, id and time.

use arrow::array::AsArray;
use arrow::datatypes::{Int32Type, TimestampMicrosecondType, UInt32Type, UInt64Type};
use weir::source::pgoutput::PgOutputMessage;
use weir::source::{BatchLimits, BatcherOutput};
use weir_tests::{PgCluster, ReplicationFixture, batch_outputs, read_transactions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_transactions_come_out_at_commit_without_rolled_back_work() {
    // 64 kB of decoding memory makes the server stream any sizeable transaction.
    let cluster = PgCluster::builder()
        .setting("logical_decoding_work_mem", "64kB")
        .start()
        .expect("cluster");
    let fixture = ReplicationFixture::new(
        cluster,
        "CREATE TABLE t (id int PRIMARY KEY, pad text)",
        "TABLE t",
    )
    .await
    .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");

    // A large transaction that rolls back entirely.
    fixture
        .sql("BEGIN; INSERT INTO t SELECT g, repeat('a', 100) FROM generate_series(30001, 35000) g; ROLLBACK;")
        .await
        .expect("aborted transaction");

    // A large transaction, open while a small one commits, with a rolled-back savepoint.
    let big = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("connect");
    big.batch_execute(
        "BEGIN; INSERT INTO t SELECT g, repeat('b', 100) FROM generate_series(1, 3000) g",
    )
    .await
    .expect("first part");
    fixture
        .sql("INSERT INTO t VALUES (50000, 'small')")
        .await
        .expect("small transaction");
    big.batch_execute(
        "SAVEPOINT s1;
         INSERT INTO t SELECT g, repeat('c', 100) FROM generate_series(10001, 13000) g;
         ROLLBACK TO SAVEPOINT s1;
         INSERT INTO t SELECT g, repeat('d', 100) FROM generate_series(20001, 22000) g;
         COMMIT;",
    )
    .await
    .expect("rest");

    let messages = read_transactions(&mut stream, 2).await.expect("stream");
    let streamed_blocks = messages
        .iter()
        .filter(|(_, m)| matches!(m, PgOutputMessage::StreamStart(_)))
        .count();
    let stream_commit = if fixture.cluster.major_version().await.expect("version") >= 14 {
        assert!(
            streamed_blocks >= 2,
            "the server streamed: {streamed_blocks} blocks"
        );
        messages
            .iter()
            .find_map(|(_, m)| match m {
                PgOutputMessage::StreamCommit(commit) => Some(*commit),
                _ => None,
            })
            .expect("the large transaction committed as a stream")
    } else {
        // PostgreSQL 13 cannot stream: the large transaction arrives whole at its
        // commit, after the small one, and the same rows must come out.
        assert_eq!(streamed_blocks, 0);
        let commits: Vec<_> = messages
            .iter()
            .filter_map(|(_, m)| match m {
                PgOutputMessage::Commit(commit) => Some(*commit),
                _ => None,
            })
            .collect();
        let begins: Vec<_> = messages
            .iter()
            .filter_map(|(_, m)| match m {
                PgOutputMessage::Begin(begin) => Some(*begin),
                _ => None,
            })
            .collect();
        let (Some(commit), Some(begin)) = (commits.last(), begins.last()) else {
            panic!("two transactions: {commits:?}");
        };
        weir::source::pgoutput::Commit {
            xid: Some(begin.xid),
            ..*commit
        }
    };

    let limits = BatchLimits {
        max_rows: 1000,
        ..BatchLimits::default()
    };
    let outputs = batch_outputs(&messages, limits).expect("batches");
    let mut ids = Vec::new();
    let mut markers = Vec::new();
    for output in &outputs {
        match output {
            BatcherOutput::Batch(batch) => {
                assert!(batch.num_rows() <= 1000, "batches stay within the limit");
                let id = batch
                    .column_by_name("id")
                    .expect("id")
                    .as_primitive::<Int32Type>();
                ids.extend(id.values().iter().copied());
                if id.value(0) != 50000 {
                    let commit_lsn = batch
                        .column_by_name("_commit_lsn")
                        .expect("col")
                        .as_primitive::<UInt64Type>();
                    let xid = batch
                        .column_by_name("_xid")
                        .expect("col")
                        .as_primitive::<UInt32Type>();
                    let time = batch
                        .column_by_name("_commit_ts")
                        .expect("col")
                        .as_primitive::<TimestampMicrosecondType>();
                    assert!(
                        commit_lsn
                            .values()
                            .iter()
                            .all(|lsn| *lsn == stream_commit.commit_lsn.0)
                    );
                    assert!(xid.values().iter().all(|x| Some(*x) == stream_commit.xid));
                    assert!(
                        time.values()
                            .iter()
                            .all(|t| *t == stream_commit.commit_time_micros)
                    );
                }
            }
            BatcherOutput::Committed(commit) => markers.push((commit.xid, commit.rows)),
            BatcherOutput::SchemaChange(change) => panic!("no DDL capture here: {change:?}"),
        }
    }
    let expected: Vec<i32> = std::iter::once(50000)
        .chain(1..=3000)
        .chain(20001..=22000)
        .collect();
    assert_eq!(
        ids, expected,
        "the small transaction first, no rolled-back rows"
    );
    assert_eq!(markers.len(), 2);
    assert_eq!(markers[0].1, 1);
    assert_eq!(markers[1], (stream_commit.xid.expect("xid"), 5000));
}
