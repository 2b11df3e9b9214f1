//! The replication client and the pgoutput decoder against a real PostgreSQL.

use std::time::Duration;

use weir::Lsn;
use weir::source::pgoutput::{OldTuple, PgOutputMessage, TupleValue};
use weir::source::replication::{
    PgOutputOptions, ReplicationConnection, ReplicationError, ReplicationStream,
    SQLSTATE_DUPLICATE_OBJECT, SQLSTATE_OBJECT_IN_USE, SlotSnapshot, StandbyStatus,
};
use weir_tests::{PgCluster, ReplicationFixture, read_transactions, unique_name};

const TIMEOUT: Duration = Duration::from_secs(30);

async fn self_connect(cluster: &PgCluster, database: &str) -> ReplicationConnection {
    let config: weir::source::PgConnectOptions = cluster.url(database).parse().expect("url");
    ReplicationConnection::connect(&config)
        .await
        .expect("replication connection")
}

/// The decoded messages of the next `commits` transactions (the harness's reader,
/// without the WAL positions).
async fn messages(stream: &mut ReplicationStream, commits: usize) -> Vec<PgOutputMessage> {
    read_transactions(stream, commits)
        .await
        .expect("stream")
        .into_iter()
        .map(|(_, message)| message)
        .collect()
}

/// A database with `table_sql`, a publication for all tables, and a slot.
async fn fixture(cluster: PgCluster, table_sql: &str) -> ReplicationFixture {
    ReplicationFixture::new(cluster, table_sql, "ALL TABLES")
        .await
        .expect("fixture")
}

fn tuple_texts(tuple: &weir::source::pgoutput::Tuple) -> Vec<Option<String>> {
    tuple
        .values()
        .map(|v| match v {
            TupleValue::Null => None,
            TupleValue::UnchangedToast => Some("<unchanged>".into()),
            TupleValue::Text(t) | TupleValue::Binary(t) => {
                Some(String::from_utf8_lossy(t).into_owned())
            }
        })
        .collect()
}

fn last_commit_end(messages: &[PgOutputMessage]) -> Lsn {
    messages
        .iter()
        .rev()
        .find_map(|m| match m {
            PgOutputMessage::Commit(c) | PgOutputMessage::StreamCommit(c) => Some(c.end_lsn),
            _ => None,
        })
        .expect("a commit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identifies_the_system_and_creates_slots() {
    let cluster = PgCluster::start().expect("cluster");
    let major = cluster.major_version().await.expect("version");
    let database = cluster.create_database("ident").await.expect("database");
    let mut connection = self_connect(&cluster, &database).await;
    let identity = connection.identify_system().await.expect("IDENTIFY_SYSTEM");
    assert_eq!(identity.database.as_deref(), Some(database.as_str()));
    assert_eq!(identity.timeline, 1);
    assert!(identity.xlog_position > Lsn::ZERO);
    assert_eq!(connection.server_major_version(), Some(major));

    let slot = unique_name("slot");
    let created = connection
        .create_logical_slot(&slot, false, SlotSnapshot::Export, false)
        .await
        .expect("slot");
    assert_eq!(created.slot_name, slot);
    assert_eq!(created.output_plugin.as_deref(), Some("pgoutput"));
    assert!(created.snapshot_name.is_some(), "an exported snapshot");
    let slots = cluster.replication_slots().await.expect("slots");
    assert_eq!(slots[0].confirmed_flush_lsn, Some(created.consistent_point));

    // A second slot of the same name is a server error, and the connection stays usable.
    let again = connection
        .create_logical_slot(&slot, false, SlotSnapshot::Nothing, false)
        .await
        .expect_err("duplicate");
    assert_eq!(
        again.server_error().map(|e| e.code.as_str()),
        Some(SQLSTATE_DUPLICATE_OBJECT)
    );
    connection.drop_slot(&slot, false).await.expect("drop");
    assert!(cluster.replication_slots().await.expect("slots").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_committed_changes_with_their_values() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture = fixture(
        cluster,
        "CREATE TABLE orders (id bigint PRIMARY KEY, status text, total numeric(12,2), note text)",
    )
    .await;
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql(
            "BEGIN;
             INSERT INTO orders VALUES (1, 'new', 129.90, NULL), (2, 'new', 42.00, 'gift');
             UPDATE orders SET status = 'paid' WHERE id = 1;
             UPDATE orders SET id = 3 WHERE id = 2;
             DELETE FROM orders WHERE id = 3;
             COMMIT;",
        )
        .await
        .expect("SQL runs");
    fixture.sql("TRUNCATE orders").await.expect("SQL runs");

    let messages = messages(&mut stream, 2).await;
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| match m {
            PgOutputMessage::Begin(_) => "begin",
            PgOutputMessage::Relation(_) => "relation",
            PgOutputMessage::Insert(_) => "insert",
            PgOutputMessage::Update(_) => "update",
            PgOutputMessage::Delete(_) => "delete",
            PgOutputMessage::Truncate(_) => "truncate",
            PgOutputMessage::Commit(_) => "commit",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "begin", "relation", "insert", "insert", "update", "update", "delete", "commit",
            // The server announces the relation again in each transaction that truncates.
            "begin", "relation", "truncate", "commit"
        ]
    );

    let PgOutputMessage::Relation(relation) = &messages[1] else {
        panic!()
    };
    assert_eq!(
        (relation.namespace.as_str(), relation.name.as_str()),
        ("public", "orders")
    );
    let columns: Vec<(&str, bool, u32)> = relation
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.is_key, c.type_oid))
        .collect();
    assert_eq!(
        columns,
        [
            ("id", true, 20),
            ("status", false, 25),
            ("total", false, 1700),
            ("note", false, 25)
        ]
    );

    let PgOutputMessage::Insert(first) = &messages[2] else {
        panic!()
    };
    assert_eq!(first.relation, relation.oid);
    assert_eq!(
        tuple_texts(&first.new),
        [
            Some("1".into()),
            Some("new".into()),
            Some("129.90".into()),
            None
        ]
    );
    // A plain update sends no old image; a key change sends the old key.
    let PgOutputMessage::Update(paid) = &messages[4] else {
        panic!()
    };
    assert!(paid.old.is_none());
    assert_eq!(tuple_texts(&paid.new)[1].as_deref(), Some("paid"));
    let PgOutputMessage::Update(rekeyed) = &messages[5] else {
        panic!()
    };
    let Some(OldTuple::Key(old_key)) = &rekeyed.old else {
        panic!("old key expected")
    };
    assert_eq!(tuple_texts(old_key), [Some("2".into()), None, None, None]);
    let PgOutputMessage::Delete(delete) = &messages[6] else {
        panic!()
    };
    assert_eq!(tuple_texts(delete.old.tuple())[0].as_deref(), Some("3"));
    let PgOutputMessage::Truncate(truncate) = &messages[10] else {
        panic!()
    };
    assert_eq!(truncate.relations, [relation.oid]);

    // Begin announces the commit LSN that Commit then confirms.
    let (PgOutputMessage::Begin(begin), PgOutputMessage::Commit(commit)) =
        (&messages[0], &messages[7])
    else {
        panic!()
    };
    assert_eq!(begin.final_lsn, commit.commit_lsn);
    assert!(commit.end_lsn > commit.commit_lsn);
    assert_eq!(begin.commit_time_micros, commit.commit_time_micros);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmed_position_is_only_what_was_flushed_and_restart_resumes_there() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture = fixture(cluster, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql("INSERT INTO t VALUES (1)")
        .await
        .expect("SQL runs");
    let first = messages(&mut stream, 1).await;
    let first_end = last_commit_end(&first);

    // Confirm the first transaction, then receive a second one without confirming it.
    stream
        .send_status(StandbyStatus {
            reply_requested: true,
            ..StandbyStatus::at(first_end)
        })
        .await
        .expect("status");
    fixture
        .sql("INSERT INTO t VALUES (2)")
        .await
        .expect("SQL runs");
    let second = messages(&mut stream, 1).await;
    assert!(last_commit_end(&second) > first_end);

    let slot = &fixture.cluster.replication_slots().await.expect("slots")[0];
    assert_eq!(
        slot.confirmed_flush_lsn,
        Some(first_end),
        "only the flushed position is confirmed"
    );

    // The reader dies without a word; a new one resumes after the confirmed position:
    // the unconfirmed second transaction comes again, the first does not.
    drop(stream);
    wait_until_inactive(&fixture).await;
    fixture
        .sql("INSERT INTO t VALUES (3)")
        .await
        .expect("SQL runs");
    let mut resumed = fixture.start().await.expect("stream");
    let again = messages(&mut resumed, 2).await;
    let ids: Vec<String> = again
        .iter()
        .filter_map(|m| match m {
            PgOutputMessage::Insert(insert) => tuple_texts(&insert.new)[0].clone(),
            _ => None,
        })
        .collect();
    assert_eq!(ids, ["2", "3"]);

    // A clean stop hands back a usable connection.
    let mut connection = resumed.stop().await.expect("stops");
    connection
        .identify_system()
        .await
        .expect("connection still usable");
}

async fn wait_until_inactive(fixture: &ReplicationFixture) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while fixture.cluster.replication_slots().await.expect("slots")[0].active {
        assert!(tokio::time::Instant::now() < deadline, "slot still active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_in_use_is_a_retryable_server_error() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture = fixture(cluster, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let _active = fixture.start().await.expect("stream");
    let connection = fixture.connect().await.expect("connect");
    let options = PgOutputOptions::for_server(
        fixture.cluster.major_version().await.expect("version"),
        vec![fixture.publication.clone()],
    );
    let error = connection
        .start_logical_replication(&fixture.slot, Lsn::ZERO, &options)
        .await
        .expect_err("slot is busy");
    assert_eq!(
        error.server_error().map(|e| e.code.as_str()),
        Some(SQLSTATE_OBJECT_IN_USE)
    );
    assert!(error.is_retryable());
    assert!(error.to_string().contains("is active for PID"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_transactions_stream_before_they_commit() {
    // A small logical_decoding_work_mem makes the server stream the transaction in
    // blocks (protocol 2) instead of spilling it to disk until commit.
    let cluster = PgCluster::builder()
        .setting("logical_decoding_work_mem", "64kB")
        .start()
        .expect("cluster");
    let major = cluster.major_version().await.expect("version");
    let fixture = fixture(cluster, "CREATE TABLE t (id int PRIMARY KEY, pad text)").await;
    if major < 14 {
        // No streaming before PostgreSQL 14: weir does not ask for it, and the
        // transaction arrives whole at its commit.
        assert!(!PgOutputOptions::for_server(major, vec![]).streaming);
        let mut stream = fixture.start().await.expect("stream");
        fixture
            .sql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
            .await
            .expect("SQL runs");
        let messages = messages(&mut stream, 1).await;
        assert!(matches!(messages.first(), Some(PgOutputMessage::Begin(_))));
        assert!(matches!(messages.last(), Some(PgOutputMessage::Commit(_))));
        let inserts = messages
            .iter()
            .filter(|m| matches!(m, PgOutputMessage::Insert(_)))
            .count();
        assert_eq!(inserts, 5000);
        return;
    }
    let mut stream = fixture
        .start_with(|options| options.streaming = true)
        .await
        .expect("stream");
    fixture
        .sql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g")
        .await
        .expect("SQL runs");
    let messages = messages(&mut stream, 1).await;

    let starts = messages
        .iter()
        .filter(|m| matches!(m, PgOutputMessage::StreamStart(_)))
        .count();
    assert!(starts >= 2, "streamed in several blocks, got {starts}");
    let PgOutputMessage::StreamCommit(commit) = messages.last().expect("messages") else {
        panic!("ends with a stream commit")
    };
    let xid = commit.xid.expect("stream commit names its transaction");
    let inserts: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            PgOutputMessage::Insert(insert) => Some(insert),
            _ => None,
        })
        .collect();
    assert_eq!(inserts.len(), 5000);
    assert!(inserts.iter().all(|insert| insert.xid == Some(xid)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logical_messages_arrive() {
    let cluster = PgCluster::start().expect("cluster");
    let major = cluster.major_version().await.expect("version");
    let fixture = fixture(cluster, "CREATE TABLE t (id int PRIMARY KEY)").await;
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql("BEGIN; SELECT pg_logical_emit_message(true, 'weir', 'hello'); INSERT INTO t VALUES (1); COMMIT;")
        .await
        .expect("SQL runs");
    let messages = messages(&mut stream, 1).await;
    if major < 14 {
        // pgoutput learned `messages` in PostgreSQL 14; before, they are not sent
        // and the rows around them still are.
        assert!(
            !messages
                .iter()
                .any(|m| matches!(m, PgOutputMessage::Message(_)))
        );
        assert!(
            messages
                .iter()
                .any(|m| matches!(m, PgOutputMessage::Insert(_)))
        );
        return;
    }
    let message = messages
        .iter()
        .find_map(|m| match m {
            PgOutputMessage::Message(message) => Some(message),
            _ => None,
        })
        .expect("a logical message");
    assert!(message.transactional);
    assert_eq!(
        (message.prefix.as_str(), message.content.as_ref()),
        ("weir", &b"hello"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_with_md5_and_scram_and_rejects_bad_passwords() {
    let cluster = PgCluster::builder()
        .host_auth("md5")
        .start()
        .expect("cluster");
    // With method md5 the server challenges MD5-stored passwords with MD5 and
    // SCRAM-stored ones with SCRAM: one role of each exercises both.
    cluster
        .execute(
            "postgres",
            "SET password_encryption = 'md5';
             CREATE ROLE md5_user LOGIN REPLICATION PASSWORD 'md5-secret';
             SET password_encryption = 'scram-sha-256';
             CREATE ROLE scram_user LOGIN REPLICATION PASSWORD 'scram-secret';",
        )
        .await
        .expect("roles");
    for (user, password) in [("md5_user", "md5-secret"), ("scram_user", "scram-secret")] {
        let config: weir::source::PgConnectOptions = cluster
            .url_as(user, password, "postgres")
            .parse()
            .expect("url");
        let mut connection = ReplicationConnection::connect(&config)
            .await
            .unwrap_or_else(|e| panic!("{user}: {e}"));
        connection.identify_system().await.expect("usable");

        let wrong: weir::source::PgConnectOptions = cluster
            .url_as(user, "wrong", "postgres")
            .parse()
            .expect("url");
        let error = ReplicationConnection::connect(&wrong)
            .await
            .expect_err("bad password");
        assert_eq!(
            error.server_error().map(|e| e.code.as_str()),
            Some("28P01"),
            "{user}: {error}"
        );
        assert!(!error.is_retryable());
    }

    let no_password: weir::source::PgConnectOptions = format!(
        "host=127.0.0.1 port={} user=md5_user dbname=postgres",
        cluster.port()
    )
    .parse()
    .expect("config");
    let error = ReplicationConnection::connect(&no_password)
        .await
        .expect_err("needs a password");
    assert!(
        matches!(error, ReplicationError::PasswordRequired),
        "{error}"
    );
}
