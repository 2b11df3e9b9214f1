//! The workloads: each a database of its own, tables set up before the slots are
//! created (their rows are not part of the stream), then the changes to stream.

use weir_tests::bench::{BENCH_TABLE, bench_insert};

/// One workload.
pub(crate) struct Workload {
    /// Short name, for tables, topics and the chart.
    pub(crate) name: &'static str,
    /// What it is, for the report.
    pub(crate) title: String,
    /// Tables, seed rows and procedures, before the slots exist.
    pub(crate) setup: String,
    /// The published tables.
    pub(crate) tables: Vec<&'static str>,
    /// The statements that make the changes (each its own transaction, or a
    /// procedure that commits as it goes).
    pub(crate) changes: Vec<String>,
    /// Row changes the statements make.
    pub(crate) rows: u64,
}

/// Every workload, sizes multiplied by `scale` (1.0: the sizes the issue names).
pub(crate) fn all(scale: f64) -> Vec<Workload> {
    let scaled = |n: f64| ((n * scale).round() as u64).max(10);
    let inserts = scaled(1_000_000.0);
    let single = scaled(100_000.0);
    let mix = scaled(100_000.0);
    let wide = scaled(200_000.0);
    let toast = scaled(2_000.0);
    vec![
        Workload {
            name: "inserts",
            title: format!("{inserts} inserts in one transaction"),
            setup: BENCH_TABLE.to_owned(),
            tables: vec!["bench"],
            changes: vec![bench_insert(1, inserts)],
            rows: inserts,
        },
        Workload {
            name: "single",
            title: format!("{single} single-row transactions"),
            setup: format!(
                "{BENCH_TABLE};
                 CREATE PROCEDURE single_rows(total int) LANGUAGE plpgsql AS $$
                 BEGIN
                     FOR i IN 1..total LOOP
                         INSERT INTO bench VALUES (i, i % 1000, 'label ' || i, now(), i * 1.25, i % 2 = 0);
                         COMMIT;
                     END LOOP;
                 END $$"
            ),
            tables: vec!["bench"],
            changes: vec![format!("CALL single_rows({single})")],
            rows: single,
        },
        Workload {
            name: "mix",
            title: format!(
                "pgbench-style mix: {mix} transactions of an update, an insert and every 4th a delete"
            ),
            setup: "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, label text);
                 INSERT INTO accounts SELECT n, 0, 'account ' || n FROM generate_series(1, 100000) n;
                 CREATE TABLE history (id bigserial PRIMARY KEY, account int NOT NULL, delta int NOT NULL,
                                       label text, at timestamptz NOT NULL DEFAULT now());
                 CREATE PROCEDURE mix(total int) LANGUAGE plpgsql AS $$
                 BEGIN
                     FOR i IN 1..total LOOP
                         UPDATE accounts SET balance = balance + i % 100 WHERE id = (i * 7919) % 100000 + 1;
                         INSERT INTO history (account, delta, label) VALUES ((i * 7919) % 100000 + 1, i % 100, 'tx ' || i);
                         IF i % 4 = 0 THEN
                             DELETE FROM history WHERE id = i - 2;
                         END IF;
                         COMMIT;
                     END LOOP;
                 END $$"
                .to_owned(),
            tables: vec!["accounts", "history"],
            changes: vec![format!("CALL mix({mix})")],
            rows: mix * 2 + mix / 4,
        },
        Workload {
            name: "wide",
            title: format!("{wide} rows of 2 KB (incompressible text, stored inline)"),
            // 59 MD5s: 1,888 characters, under the 2 KB TOAST threshold.
            setup: "CREATE TABLE wide (id bigint PRIMARY KEY, label text, payload text)".to_owned(),
            tables: vec!["wide"],
            changes: vec![format!(
                "INSERT INTO wide SELECT n, 'wide ' || n,
                     (SELECT string_agg(md5(n::text || ':' || j), '') FROM generate_series(1, 59) j)
                 FROM generate_series(1, {wide}) n"
            )],
            rows: wide,
        },
        Workload {
            name: "toast",
            title: format!("{toast} rows with a 100 KB TOASTed value"),
            setup: "CREATE TABLE blobs (id bigint PRIMARY KEY, label text, payload text);
                 ALTER TABLE blobs ALTER COLUMN payload SET STORAGE EXTERNAL"
                .to_owned(),
            tables: vec!["blobs"],
            changes: vec![format!(
                "INSERT INTO blobs SELECT n, 'blob ' || n,
                     (SELECT string_agg(md5(n::text || ':' || j), '') FROM generate_series(1, 3200) j)
                 FROM generate_series(1, {toast}) n"
            )],
            rows: toast,
        },
    ]
}
