//! The control plane against a real PostgreSQL: precheck findings, publications,
//! slots, primary keys.

use weir::source::TableSelector;
use weir::source::catalog::{
    CatalogError, PublicationState, SlotState, drop_slot, ensure_publication, ensure_slot,
    slot_info, table_catalog,
};
use weir::source::precheck::{CheckStatus, Finding, PrecheckInput, precheck, worst};
use weir::source::replication::{ReplicationConnection, SlotSnapshot};
use weir_tests::PgCluster;

fn selectors(names: &[&str]) -> Vec<TableSelector> {
    names.iter().map(|n| n.parse().expect("selector")).collect()
}

fn find<'a>(findings: &'a [Finding], check: &str, about: &str) -> &'a Finding {
    findings
        .iter()
        .find(|f| f.check == check && f.message.contains(about))
        .unwrap_or_else(|| panic!("no {check} finding about {about:?} in {findings:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ready_database_passes_every_check() {
    let cluster = PgCluster::builder()
        .setting("max_slot_wal_keep_size", "10GB")
        .start()
        .expect("cluster");
    let database = cluster.create_database("ready").await.expect("database");
    cluster
        .execute(&database, "CREATE TABLE orders (id int PRIMARY KEY); CREATE SCHEMA sales; CREATE TABLE sales.items (id int PRIMARY KEY)")
        .await
        .expect("tables");
    let client = cluster.connect(&database).await.expect("connect");
    let tables = selectors(&["public.orders", "sales.*"]);
    let findings = precheck(
        &client,
        &PrecheckInput {
            slot: "weir_ready",
            publication: "weir_ready",
            tables: &tables,
            ddl_capture: false,
        },
    )
    .await
    .expect("precheck");
    assert_eq!(worst(&findings), CheckStatus::Pass, "{findings:#?}");
    for check in [
        "wal_level",
        "encoding",
        "replication privilege",
        "replication slots",
        "wal senders",
        "slot",
        "wal limit",
        "publication",
    ] {
        assert!(findings.iter().any(|f| f.check == check), "{check} missing");
    }
    assert_eq!(findings.iter().filter(|f| f.check == "table").count(), 2);
}

/// What endangers a slot or leaves tables out gets its warning and fix: no WAL
/// limit, (PostgreSQL 18) an idle slot timeout, unlogged tables named or
/// matched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_dangers_and_unlogged_tables_are_named() {
    let mut builder = PgCluster::builder();
    let major = weir_tests::PgInstall::selected().expect("build").major;
    if major >= 18 {
        builder = builder.setting("idle_replication_slot_timeout", "1h");
    }
    let cluster = builder.start().expect("cluster");
    let database = cluster.create_database("dangers").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY);
             CREATE TABLE keep_a (id int PRIMARY KEY);
             CREATE UNLOGGED TABLE keep_b (id int PRIMARY KEY)",
        )
        .await
        .expect("tables");
    let client = cluster.connect(&database).await.expect("connect");
    let tables = selectors(&["public.scratch", "public.keep_*"]);
    let findings = precheck(
        &client,
        &PrecheckInput {
            slot: "weir_dangers",
            publication: "weir_dangers",
            tables: &tables,
            ddl_capture: false,
        },
    )
    .await
    .expect("precheck");
    let limit = find(&findings, "wal limit", "unlimited");
    assert_eq!(limit.status, CheckStatus::Warn);
    assert!(
        limit
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("max_slot_wal_keep_size")),
        "{limit:?}"
    );
    let named = find(&findings, "table", "public.scratch is UNLOGGED");
    assert_eq!(named.status, CheckStatus::Fail);
    assert!(
        named
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("SET LOGGED"))
    );
    let matched = find(&findings, "table", "keep_b");
    assert_eq!(matched.status, CheckStatus::Warn);
    assert!(!matched.message.contains("keep_a"), "{matched:?}");
    let idle = findings.iter().find(|f| f.check == "idle slot timeout");
    if major >= 18 {
        let idle = idle.expect("PostgreSQL 18 names its idle slot timeout");
        assert_eq!(idle.status, CheckStatus::Warn);
        assert!(
            idle.message.contains("1h") || idle.message.contains("60"),
            "{idle:?}"
        );
    } else {
        assert!(idle.is_none(), "{idle:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_wal_level_fails_with_the_fix_named() {
    let cluster = PgCluster::builder()
        .setting("wal_level", "replica")
        .start()
        .expect("cluster");
    let client = cluster.connect("postgres").await.expect("connect");
    let findings = precheck(
        &client,
        &PrecheckInput {
            slot: "s",
            publication: "p",
            tables: &[],
            ddl_capture: false,
        },
    )
    .await
    .expect("precheck");
    let wal = find(&findings, "wal_level", "replica");
    assert_eq!(wal.status, CheckStatus::Fail);
    assert_eq!(
        wal.fix.as_deref(),
        Some("ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL")
    );
    assert_eq!(worst(&findings), CheckStatus::Fail);
    assert!(wal.to_string().contains("[FAIL] wal_level"), "{wal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privileges_missing_tables_and_identity_get_their_fixes() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("app").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE ROLE app LOGIN;
             CREATE TABLE nopk (a int);
             CREATE TABLE secret (id int PRIMARY KEY);
             CREATE TABLE open (id int PRIMARY KEY);
             GRANT SELECT ON nopk, open TO app;",
        )
        .await
        .expect("setup");
    let url = cluster.url_as("app", "unused", &database);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect as app");
    tokio::spawn(connection);
    let tables = selectors(&[
        "public.nopk",
        "public.secret",
        "public.open",
        "public.missing",
        "empty.*",
    ]);
    let findings = precheck(
        &client,
        &PrecheckInput {
            slot: "s",
            publication: "p",
            tables: &tables,
            ddl_capture: false,
        },
    )
    .await
    .expect("precheck");

    let role = find(&findings, "replication privilege", "app");
    assert_eq!(
        (role.status, role.fix.as_deref()),
        (
            CheckStatus::Fail,
            Some("ALTER ROLE \"app\" WITH REPLICATION;")
        )
    );
    let publication = find(&findings, "publication", "may not create");
    assert_eq!(publication.status, CheckStatus::Fail);
    let secret = find(&findings, "table", "public.secret");
    assert_eq!(
        (secret.status, secret.fix.as_deref()),
        (
            CheckStatus::Fail,
            Some("GRANT SELECT ON \"public\".\"secret\" TO this role;")
        )
    );
    let nopk = find(&findings, "table", "public.nopk");
    assert_eq!(nopk.status, CheckStatus::Warn);
    assert!(nopk.fix.as_deref().is_some_and(|f| f.starts_with("ALTER TABLE \"public\".\"nopk\" REPLICA IDENTITY FULL")), "{nopk}");
    assert!(
        nopk.message.contains("duplicates") && nopk.message.contains("exactly_once"),
        "a table without a key is told what it means for duplicates: {nopk}"
    );
    assert_eq!(
        find(&findings, "table", "public.open").status,
        CheckStatus::Pass
    );
    assert_eq!(
        find(&findings, "table", "public.missing does not exist").status,
        CheckStatus::Fail
    );
    assert_eq!(
        find(&findings, "table", "empty.* matches no table").status,
        CheckStatus::Warn
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_slots_fail_unless_ours_exists() {
    let cluster = PgCluster::builder()
        .setting("max_replication_slots", "1")
        .start()
        .expect("cluster");
    let client = cluster.connect("postgres").await.expect("connect");
    client
        .batch_execute("SELECT pg_create_logical_replication_slot('other', 'pgoutput')")
        .await
        .expect("slot");
    let input = |slot| PrecheckInput {
        slot,
        publication: "p",
        tables: &[],
        ddl_capture: false,
    };
    let findings = precheck(&client, &input("weir")).await.expect("precheck");
    assert_eq!(
        find(&findings, "replication slots", "in use").status,
        CheckStatus::Fail
    );
    let findings = precheck(&client, &input("other")).await.expect("precheck");
    assert_eq!(
        find(&findings, "replication slots", "in use").status,
        CheckStatus::Pass
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_and_slots_are_created_once_then_reused() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("manage").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE TABLE orders (id int PRIMARY KEY);
             CREATE TABLE later (id int PRIMARY KEY);
             CREATE SCHEMA sales;
             CREATE TABLE sales.items (id int PRIMARY KEY);
             CREATE TABLE measurements (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
             CREATE TABLE measurements_2026 PARTITION OF measurements FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
        )
        .await
        .expect("tables");
    let client = cluster.connect(&database).await.expect("connect");

    let tables = selectors(&["public.orders", "public.measurements", "sales.*"]);
    assert_eq!(
        ensure_publication(&client, "weir_pub", &tables)
            .await
            .expect("create"),
        PublicationState::Created
    );
    let published: Vec<String> = client
        .query("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'weir_pub' ORDER BY 1", &[])
        .await
        .expect("published")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The partitioned table is published under its own name (publish_via_partition_root).
    assert_eq!(
        published,
        ["public.measurements", "public.orders", "sales.items"]
    );
    assert_eq!(
        ensure_publication(&client, "weir_pub", &tables)
            .await
            .expect("reuse"),
        PublicationState::Synced {
            added: vec![],
            removed: vec![]
        }
    );
    // weir created it, so it follows the selection (issue 20): a spec that
    // names other tables changes it, without a new slot.
    let other = selectors(&["public.orders", "public.later", "sales.*"]);
    assert_eq!(
        ensure_publication(&client, "weir_pub", &other)
            .await
            .expect("in step"),
        PublicationState::Synced {
            added: vec!["public.later".to_owned()],
            removed: vec!["public.measurements".to_owned()]
        }
    );
    // A publication weir did not create is left as it is.
    client
        .batch_execute("CREATE PUBLICATION theirs FOR TABLE orders")
        .await
        .expect("their publication");
    assert_eq!(
        ensure_publication(&client, "theirs", &other)
            .await
            .expect("reuse"),
        PublicationState::Existing {
            missing: vec!["public.later".to_owned(), "sales.items".to_owned()]
        }
    );

    let config: weir::source::PgConnectOptions = cluster.url(&database).parse().expect("url");
    let mut replication = ReplicationConnection::connect(&config)
        .await
        .expect("replication");
    let SlotState::Created(created) = ensure_slot(
        &client,
        &mut replication,
        "weir_slot",
        SlotSnapshot::Nothing,
        false,
    )
    .await
    .expect("create") else {
        panic!("created")
    };
    // From PostgreSQL 17 a slot created before failover was asked for is made a
    // failover slot when reused.
    let failover_slots = cluster.major_version().await.expect("version") >= 17;
    let SlotState::Existing(existing) = ensure_slot(
        &client,
        &mut replication,
        "weir_slot",
        SlotSnapshot::Nothing,
        failover_slots,
    )
    .await
    .expect("reuse") else {
        panic!("reused")
    };
    assert_eq!(existing.confirmed_flush_lsn, Some(created.consistent_point));
    assert_eq!(existing.plugin.as_deref(), Some("pgoutput"));
    let recorded = weir::source::catalog::slot_info(&client, "weir_slot")
        .await
        .expect("slot")
        .expect("exists");
    assert_eq!(recorded.failover, failover_slots.then_some(true));
    assert_eq!(recorded.synced, failover_slots.then_some(false));
    if failover_slots {
        let SlotState::Created(_) = ensure_slot(
            &client,
            &mut replication,
            "weir_failover_slot",
            SlotSnapshot::Nothing,
            true,
        )
        .await
        .expect("create a failover slot") else {
            panic!("created")
        };
        let created = weir::source::catalog::slot_info(&client, "weir_failover_slot")
            .await
            .expect("slot")
            .expect("exists");
        assert_eq!(created.failover, Some(true));
    }

    client
        .batch_execute("SELECT pg_create_logical_replication_slot('foreign', 'test_decoding')")
        .await
        .expect("foreign slot");
    let error = ensure_slot(
        &client,
        &mut replication,
        "foreign",
        SlotSnapshot::Nothing,
        false,
    )
    .await
    .expect_err("wrong plugin");
    assert!(
        matches!(error, CatalogError::SlotMismatch { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("test_decoding"), "{error}");
    // The precheck refuses the same slot for the same reason.
    let findings = precheck(
        &client,
        &PrecheckInput {
            slot: "foreign",
            publication: "weir_pub",
            tables: &[],
            ddl_capture: false,
        },
    )
    .await
    .expect("precheck");
    let slot_finding = find(&findings, "slot", "test_decoding");
    assert_eq!(slot_finding.status, CheckStatus::Fail);
    assert!(
        slot_finding
            .fix
            .as_deref()
            .is_some_and(|f| f.contains("pg_drop_replication_slot('foreign')"))
    );

    assert!(drop_slot(&client, "weir_slot").await.expect("drop"));
    assert!(!drop_slot(&client, "weir_slot").await.expect("drop again"));
    assert!(
        slot_info(&client, "weir_slot")
            .await
            .expect("info")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_gives_primary_keys_in_key_order_and_not_null_columns() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("keys").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE DOMAIN positive AS int CHECK (VALUE > 0); CREATE TYPE mood AS ENUM ('sad', 'ok'); \
             CREATE TABLE t (a int, b int NOT NULL, c int, d int, e positive, f mood, PRIMARY KEY (c, a)); \
             ALTER TABLE t DROP COLUMN d; CREATE TABLE nokey (x int)",
        )
        .await
        .expect("tables");
    let client = cluster.connect(&database).await.expect("connect");
    let oids: Vec<u32> = client
        .query(
            "SELECT oid FROM pg_class WHERE relname IN ('t', 'nokey') ORDER BY relname DESC",
            &[],
        )
        .await
        .expect("oids")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let facts = table_catalog(&client, &oids).await.expect("catalog");
    let keyed = &facts[&oids[0]];
    // `c` is the key's first column: int2vector subscripts start at 0, which once
    // made it look like no key column at all.
    assert_eq!(keyed.primary_key, ["c", "a"]);
    // Key columns are NOT NULL too.
    assert_eq!(keyed.not_null, ["a", "b", "c"]);
    // A domain column is carried as its base type (int4, OID 23).
    assert_eq!(keyed.domains, [("e".to_owned(), 23, -1)]);
    assert_eq!(
        keyed.enums,
        [("f".to_owned(), vec!["sad".to_owned(), "ok".to_owned()])]
    );
    let keyless = &facts[&oids[1]];
    assert!(keyless.primary_key.is_empty());
    assert!(keyless.not_null.is_empty());
}

/// Issue 20: DDL capture needs event triggers, which only a superuser creates.
/// A role without the right is told what to run; once a superuser ran it, the
/// check passes for that role too, and the trigger writes the DDL into the WAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_capture_names_the_sql_a_superuser_runs_once() {
    let cluster = PgCluster::start().expect("cluster");
    let database = cluster.create_database("ddl").await.expect("database");
    cluster
        .execute(
            &database,
            "CREATE ROLE app LOGIN REPLICATION; GRANT CREATE ON SCHEMA public TO app;",
        )
        .await
        .expect("role");
    let url = cluster.url_as("app", "unused", &database);
    let (app, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect as app");
    tokio::spawn(connection);
    let input = PrecheckInput {
        slot: "s",
        publication: "p",
        tables: &[],
        ddl_capture: true,
    };
    let findings = precheck(&app, &input).await.expect("precheck");
    if cluster.major_version().await.expect("version") < 14 {
        // pgoutput sends logical messages from PostgreSQL 14 on: the check says so.
        let ddl = find(&findings, "ddl capture", "PostgreSQL 14 and later");
        assert_eq!(ddl.status, CheckStatus::Fail);
        return;
    }
    let ddl = find(&findings, "ddl capture", "only a superuser");
    assert_eq!(ddl.status, CheckStatus::Fail);
    let fix = ddl.fix.clone().expect("the SQL to run");
    let sql = fix
        .split_once('\n')
        .map(|(_, sql)| sql.to_owned())
        .expect("SQL after the first line");
    // Installing as the app role fails with the message naming the way out.
    let refused = weir::source::ddl::ensure_ddl_capture(&app)
        .await
        .expect_err("app may not create event triggers");
    assert!(refused.to_string().contains("weir check"), "{refused}");

    cluster
        .execute(&database, &sql)
        .await
        .expect("the printed SQL runs");
    let findings = precheck(&app, &input).await.expect("precheck");
    let ddl = find(&findings, "ddl capture", "installed");
    assert_eq!(ddl.status, CheckStatus::Pass, "{ddl}");
    weir::source::ddl::ensure_ddl_capture(&app)
        .await
        .expect("already installed: nothing to do");

    // A DDL statement by the unprivileged role goes into the WAL as a message.
    app.batch_execute(
        "SELECT pg_create_logical_replication_slot('peek', 'test_decoding');
         CREATE TABLE t (id bigint PRIMARY KEY, v varchar(20));",
    )
    .await
    .expect("DDL as app");
    let client = cluster.connect(&database).await.expect("connect");
    let rows = client
        .query(
            "SELECT data FROM pg_logical_slot_get_changes('peek', NULL, NULL) WHERE data LIKE 'message:%'",
            &[],
        )
        .await
        .expect("changes");
    let messages: Vec<String> = rows.iter().map(|row| row.get(0)).collect();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains("prefix: weir_ddl")
            && messages[0].contains("\"tag\": \"CREATE TABLE\"")
            && messages[0].contains("character varying(20)")
            && messages[0].contains("\"primary_key\": [\"id\"]")
            && messages[0].contains("\"user\": \"app\""),
        "{messages:#?}"
    );
}
