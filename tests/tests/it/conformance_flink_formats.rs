//! `canal-json` and `maxwell-json` judged by their main consumer, Flink's `canal-json`
//! and `maxwell-json` formats: under PostgreSQL's default replica identity and under
//! `FULL`, with primary key changes, an unchanged TOASTed value, deletes, and the
//! types Flink reads differently from PostgreSQL's text (`TIMESTAMP_LTZ`, `BYTES`,
//! `ARRAY`, `DATE`), the changelog Flink yields, applied in order, is the table. For
//! `canal-json`, Canal's own client (`FlatMessage` from `canal.protocol`) applying the
//! messages by primary key ends with the table too, and so do Apache Paimon's Canal
//! parser, casting every value to the type it makes of `mysqlType`, and its Maxwell
//! parser. TOASTed values updates leave
//! unchanged are read back (`unchanged_toast: fetch`), so the default identity ends
//! with the table as `FULL` does.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use weir_tests::{
    FlinkFormat, KafkaCluster, PaimonFormat, PaimonTable, PgCluster, RunningPipeline,
    apply_changelog, canal_flat_message_table, dts_record_table, flink_read, oms_default_table,
    paimon_table, read_topic, shareplex_table, unique_name,
};

const WAIT: Duration = Duration::from_secs(60);

const COLUMNS: &str = "id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), note text,
    opened timestamptz, photo bytea, tags text[], counts int[], born date, active boolean";

const FLINK_ROW: &str = "ROW<id INT NOT NULL, owner STRING NOT NULL, balance DECIMAL(12, 2), \
    note STRING, opened TIMESTAMP_LTZ(6), photo BYTES, tags ARRAY<STRING>, counts ARRAY<INT>, \
    born DATE, active BOOLEAN>";

fn setup(table: &str) -> String {
    format!(
        "CREATE TABLE {table} ({COLUMNS});
         INSERT INTO {table} SELECT n, 'owner ' || n, n * 10.5, NULL,
             timestamptz '2026-11-21 10:00:00.25+01' + n * interval '1 hour',
             decode('00ff' || lpad(to_hex(n), 2, '0'), 'hex'), ARRAY['a', NULL, 'c ' || n],
             ARRAY[n, NULL], date '2026-11-21' + n, n % 2 = 0
           FROM generate_series(1, 5) n;"
    )
}

/// Inserts (two with a TOASTed note), updates leaving the note unchanged (before and
/// after one changing it, and before the row's delete), two key changes, deletes,
/// and a transaction mixing them.
fn changes(table: &str) -> String {
    format!(
        "INSERT INTO {table} (id, owner, note) SELECT 10, 'toast', string_agg(md5(g::text), '') FROM generate_series(1, 1000) g;
         UPDATE {table} SET balance = 2 WHERE id = 10;
         UPDATE {table} SET note = note || 'changed' WHERE id = 10;
         UPDATE {table} SET balance = 3 WHERE id = 10;
         INSERT INTO {table} (id, owner, note) SELECT 13, 'toast', string_agg(md5(g::text), '') FROM generate_series(1, 1000) g;
         UPDATE {table} SET balance = 4 WHERE id = 13;
         DELETE FROM {table} WHERE id = 13;
         UPDATE {table} SET id = 11 WHERE id = 1;
         UPDATE {table} SET owner = 'renamed', id = 12, tags = '{{}}' WHERE id = 2;
         DELETE FROM {table} WHERE id = 3;
         BEGIN; UPDATE {table} SET balance = balance + 1, opened = NULL WHERE id IN (4, 5); DELETE FROM {table} WHERE id = 4; COMMIT;"
    )
}

/// The table as Flink prints its fields (timestamps as microseconds, for comparing).
const TABLE_AS_FLINK: &str = "SELECT id::text, owner, balance::text, note,
    (extract(epoch FROM opened) * 1000000)::bigint::text,
    CASE WHEN photo IS NULL THEN NULL ELSE '\\x' || encode(photo, 'hex') END,
    CASE WHEN tags IS NULL THEN NULL ELSE array_to_json(tags)::text END,
    CASE WHEN counts IS NULL THEN NULL ELSE array_to_json(ARRAY(SELECT c::text FROM unnest(counts) c))::text END,
    (born - date '1970-01-01')::text, active::text
    FROM {table}";

/// Flink's `TIMESTAMP_LTZ` printed as a local date-time in UTC, to microseconds.
fn micros(printed: &str) -> String {
    let full = if printed.len() == 16 {
        format!("{printed}:00")
    } else {
        printed.to_owned()
    };
    let time = chrono::NaiveDateTime::parse_from_str(&full, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("{printed}: {e}"));
    time.and_utc().timestamp_micros().to_string()
}

/// A pipeline of these tests: `tables` of the database at `url` into `topic` (a
/// template) as `format`, on a slot and publication of its own, without heartbeats,
/// one partition per topic; `source` and `sink` add option lines to each section.
struct Spec<'a> {
    url: &'a str,
    brokers: &'a str,
    tables: &'a str,
    topic: &'a str,
    format: &'a str,
    source: &'a [&'a str],
    sink: &'a [&'a str],
}

impl Spec<'_> {
    fn yaml(&self, name: &str) -> String {
        let slot = unique_name(name);
        let options = |lines: &[&str]| -> String {
            lines.iter().map(|line| format!("    {line}\n")).collect()
        };
        format!(
            "name: {name}
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [{tables}]
    heartbeat: off
{source}sink:
  kafka:
    brokers: {brokers}
    topic: \"{topic}\"
    format: {format}
{sink}    linger: 1ms
    create_topics: {{ partitions: 1, replication_factor: 1 }}
",
            url = self.url,
            tables = self.tables,
            source = options(self.source),
            brokers = self.brokers,
            topic = self.topic,
            format = self.format,
            sink = options(self.sink),
        )
    }
}

/// A Flink row in the forms `TABLE_AS_FLINK` selects.
fn normalised(mut row: Vec<Json>) -> Vec<Json> {
    if let Some(printed) = row[4].as_str() {
        row[4] = Json::from(micros(printed));
    }
    for array in [6, 7] {
        if !row[array].is_null() {
            row[array] = Json::from(row[array].to_string());
        }
    }
    row
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_reads_canal_json_under_both_replica_identities() {
    flink_reads_under_both_replica_identities("canal-json", FlinkFormat::Canal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_reads_maxwell_json_under_both_replica_identities() {
    flink_reads_under_both_replica_identities("maxwell-json", FlinkFormat::Maxwell).await;
}

/// weir writes `format` for the two tables and their changes; Flink reads each topic
/// with `flink_format`.
async fn flink_reads_under_both_replica_identities(format: &str, flink_format: FlinkFormat) {
    let pg = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::start(1).expect("kafka");
    let database = pg
        .create_database_with(
            "canal",
            &format!(
                "{}{}ALTER TABLE accounts_full REPLICA IDENTITY FULL;",
                setup("accounts"),
                setup("accounts_full")
            ),
        )
        .await
        .expect("database");
    let prefix = format.replace('-', "_");
    // The same stream with `timestamptz_form: utc`, for a Flink `TIMESTAMP` column.
    let utc_prefix = format!("{prefix}_utc");
    let start = |prefix: &str, sink: &[&str]| {
        RunningPipeline::start(
            &Spec {
                url: &pg.url(&database),
                brokers: kafka.bootstrap_servers(),
                tables: "public.accounts, public.accounts_full",
                topic: &format!("{prefix}.{{table}}"),
                format,
                source: &["unchanged_toast: fetch"],
                sink,
            }
            .yaml(prefix),
        )
        .expect("weir")
    };
    let weir = start(&prefix, &[]);
    let weir_utc = start(&utc_prefix, &["timestamptz_form: utc"]);
    weir.wait_streaming(WAIT).await.expect("weir streams");
    weir_utc.wait_streaming(WAIT).await.expect("weir streams");
    for table in ["accounts", "accounts_full"] {
        pg.execute_script(&database, &changes(table))
            .await
            .expect("changes");
    }
    // 5 snapshot reads, then one message per change.
    let expected_messages = 5 + 13;
    let client = pg.connect(&database).await.expect("connect");
    for table in ["accounts", "accounts_full"] {
        let topic = format!("{}.{table}", format.replace('-', "_"));
        let messages = messages_of(&kafka, &topic, expected_messages).await;
        if flink_format == FlinkFormat::Canal {
            canal_client_agrees(&client, table, &messages).await;
        }
        let changelog = flink_read(flink_format, FLINK_ROW, &messages)
            .unwrap_or_else(|e| panic!("Flink reads every message of {topic}: {e}"));
        assert_eq!(
            applied(changelog, &topic),
            table_as_flink(&client, table).await,
            "{topic}: Flink's changelog applied is the table"
        );

        // UTC without a zone: what a `TIMESTAMP` column reads, and `TIMESTAMP_LTZ`
        // refuses (as `TIMESTAMP` refuses the `Z`).
        let utc_topic = format!("{utc_prefix}.{table}");
        let utc_messages = messages_of(&kafka, &utc_topic, expected_messages).await;
        let timestamp_row = FLINK_ROW.replace("TIMESTAMP_LTZ(6)", "TIMESTAMP(6)");
        let changelog = flink_read(flink_format, &timestamp_row, &utc_messages)
            .unwrap_or_else(|e| panic!("Flink reads every message of {utc_topic}: {e}"));
        assert_eq!(
            applied(changelog, &utc_topic),
            table_as_flink(&client, table).await,
            "{utc_topic}: Flink's changelog applied is the table"
        );
        assert!(flink_read(flink_format, FLINK_ROW, &utc_messages).is_err());
        assert!(flink_read(flink_format, &timestamp_row, &messages).is_err());
    }
    weir.stop().await.expect("stops");
    weir_utc.stop().await.expect("stops");
}

/// The `count` message values of `topic`, once all are there.
async fn messages_of(kafka: &KafkaCluster, topic: &str, count: usize) -> Vec<Option<Vec<u8>>> {
    let deadline = std::time::Instant::now() + WAIT;
    let records = loop {
        let records = read_topic(kafka.bootstrap_servers(), topic, WAIT).expect("read");
        if records.len() >= count || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(records.len(), count, "{topic}");
    records.into_iter().map(|r| r.payload).collect()
}

/// Two schemas' tables of one name, in one topic: `canal-json`'s `database` is the
/// schema, so Flink's `canal-json.database.include` reads each table's changelog
/// alone, and each applied is its table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_tells_two_schemas_tables_apart_by_canal_database() {
    let pg = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::start(1).expect("kafka");
    let database = pg
        .create_database_with(
            "schemas",
            &format!(
                "CREATE SCHEMA sales; {}{}UPDATE sales.accounts SET owner = 'sales ' || id;",
                setup("public.accounts"),
                setup("sales.accounts"),
            ),
        )
        .await
        .expect("database");
    let weir = RunningPipeline::start(
        &Spec {
            url: &pg.url(&database),
            brokers: kafka.bootstrap_servers(),
            tables: "public.accounts, sales.accounts",
            topic: "two_schemas",
            format: "canal-json",
            source: &["unchanged_toast: fetch"],
            sink: &[],
        }
        .yaml("schemas"),
    )
    .expect("weir");
    weir.wait_streaming(WAIT).await.expect("weir streams");
    for table in ["public.accounts", "sales.accounts"] {
        pg.execute_script(&database, &changes(table))
            .await
            .expect("changes");
    }
    let messages = messages_of(&kafka, "two_schemas", 2 * (5 + 13)).await;
    let client = pg.connect(&database).await.expect("connect");
    for (schema, table) in [("public", "public.accounts"), ("sales", "sales.accounts")] {
        let changelog = weir_tests::flink_read_canal_of(schema, "accounts", FLINK_ROW, &messages)
            .unwrap_or_else(|e| panic!("Flink reads every message of {table}: {e}"));
        assert_eq!(
            applied(changelog, table),
            table_as_flink(&client, table).await,
            "{table}: Flink's changelog of database {schema} applied is the table"
        );
    }
    weir.stop().await.expect("stops");
}

/// Flink's changelog applied in order, by `id`, in the forms `TABLE_AS_FLINK` selects.
fn applied(changelog: Vec<weir_tests::FlinkRow>, topic: &str) -> BTreeMap<String, Vec<Json>> {
    apply_changelog(changelog, topic)
        .into_iter()
        .map(|(id, row)| (id, normalised(row)))
        .collect()
}

/// `table`'s rows by `id`, as Flink prints their fields.
async fn table_as_flink(
    client: &tokio_postgres::Client,
    table: &str,
) -> BTreeMap<String, Vec<Json>> {
    client
        .query(&TABLE_AS_FLINK.replace("{table}", table), &[])
        .await
        .expect("table")
        .iter()
        .map(|row| {
            let fields: Vec<Json> = (0..10)
                .map(|i| {
                    row.get::<_, Option<String>>(i)
                        .map_or(Json::Null, Json::from)
                })
                .collect();
            (fields[0].as_str().expect("id").to_owned(), fields)
        })
        .collect()
}

/// Canal's own client (`FlatMessage`, parsed as Canal's Kafka consumers parse it)
/// applying the messages by primary key ends with the table.
async fn canal_client_agrees(
    client: &tokio_postgres::Client,
    table: &str,
    messages: &[Option<Vec<u8>>],
) {
    let applied = canal_flat_message_table(messages)
        .unwrap_or_else(|e| panic!("Canal's client reads every message of {table}: {e}"));
    let columns = ["id", "owner", "balance", "note", "born", "active"];
    let query = format!(
        "SELECT id::text, owner, balance::text, note, born::text, active::text FROM {table} ORDER BY {table}.id"
    );
    let expected: Vec<Vec<Json>> = client
        .query(&query, &[])
        .await
        .expect("table")
        .iter()
        .map(|row| {
            (0..columns.len())
                .map(|i| {
                    row.get::<_, Option<String>>(i)
                        .map_or(Json::Null, Json::from)
                })
                .collect()
        })
        .collect();
    let got: Vec<Vec<Json>> = applied
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.get(*c).cloned().unwrap_or(Json::Null))
                .collect()
        })
        .collect();
    assert_eq!(
        got, expected,
        "{table}: Canal's client applied is not the table"
    );
}

/// Every type on weir's list (`source_types`' table), under `FULL` (`everything`) and
/// the default identity (`everything_default`): a snapshot, updates of every column,
/// a key change, an update leaving a TOASTed value out, deletes, and a TRUNCATE of
/// `everything` followed by new rows. What each consumer applies of the stream ends
/// equal to what it applies of a fresh snapshot of the tables, which weir reads
/// another way (`COPY` in binary, not pgoutput's text): Canal's client over
/// `canal-json` (the TRUNCATE included, as Canal's DDL message), DTS's subscribe SDK
/// over `dts-avro` (the TRUNCATE as its DDL record), a consumer of `shareplex-json`
/// written from DTS's field list (the TRUNCATE as its `TRUNCATE`), and one of
/// `oms-json` written from OMS's (the TRUNCATE as its `DDL`), Flink's
/// `canal-json` and `maxwell-json` over the table without the TRUNCATE (Flink has
/// no truncate to apply).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_and_a_truncate_reach_each_formats_consumers_whole() {
    let pg = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::start(1).expect("kafka");
    let major = pg.major_version().await.expect("version");
    let mut setup = crate::source_types::SETUP.to_owned();
    let mut insert = crate::source_types::INSERT.to_owned();
    if major < 15 {
        setup = setup.replace("numeric(5,-2)", "numeric(7,0)");
    }
    if major < 14 {
        insert = insert.replace(
            "9223372036854775807, '-Infinity',",
            "9223372036854775807, '-1e300',",
        );
    }
    let toasted = "INSERT INTO everything (id, c_int2, c_text) SELECT 10, 1, string_agg(md5(g::text), '') FROM generate_series(1, 1000) g;";
    let database = pg
        .create_database_with(
            "types",
            &format!(
                "{setup}{insert}{toasted}
                 CREATE TABLE everything_default (LIKE everything INCLUDING ALL);
                 INSERT INTO everything_default SELECT * FROM everything;"
            ),
        )
        .await
        .expect("database");
    // A pipeline's topics are `<prefix>.<table>`, its prefix named by the format,
    // the variant and the snapshot mode.
    let pipeline_of = |format: &str, variant: &str, snapshot: &str| {
        let prefix = format!("{}{variant}_{snapshot}", format.replace('-', "_"));
        let mut sink = vec!["skipped_operations: [none]"];
        if variant == "_utc" {
            sink.push("timestamptz_form: utc");
        }
        let spec = Spec {
            url: &pg.url(&database),
            brokers: kafka.bootstrap_servers(),
            tables: "public.everything, public.everything_default",
            topic: &format!("{prefix}.{{table}}"),
            format,
            source: &[&format!("snapshot: {snapshot}"), "unchanged_toast: fetch"],
            sink: &sink,
        }
        .yaml(&prefix);
        (prefix, spec)
    };
    let pipeline = |format: &str, snapshot: &str| pipeline_of(format, "", snapshot);
    let (canal, canal_spec) = pipeline("canal-json", "initial");
    // For Paimon, whose TIMESTAMP (from mysqlType `timestamp(6)`) takes no zone.
    let (canal_utc, canal_utc_spec) = pipeline_of("canal-json", "_utc", "initial");
    let (maxwell, maxwell_spec) = pipeline("maxwell-json", "initial");
    let (dts, dts_spec) = pipeline("dts-avro", "initial");
    let (shareplex, shareplex_spec) = pipeline("shareplex-json", "initial");
    let (oms, oms_spec) = pipeline("oms-json", "initial");
    let canal_weir = RunningPipeline::start(&canal_spec).expect("canal-json");
    let canal_utc_weir = RunningPipeline::start(&canal_utc_spec).expect("canal-json, utc");
    let maxwell_weir = RunningPipeline::start(&maxwell_spec).expect("maxwell-json");
    let dts_weir = RunningPipeline::start(&dts_spec).expect("dts-avro");
    let shareplex_weir = RunningPipeline::start(&shareplex_spec).expect("shareplex-json");
    let oms_weir = RunningPipeline::start(&oms_spec).expect("oms-json");
    canal_weir.wait_streaming(WAIT).await.expect("streams");
    canal_utc_weir.wait_streaming(WAIT).await.expect("streams");
    maxwell_weir.wait_streaming(WAIT).await.expect("streams");
    dts_weir.wait_streaming(WAIT).await.expect("streams");
    shareplex_weir.wait_streaming(WAIT).await.expect("streams");
    oms_weir.wait_streaming(WAIT).await.expect("streams");
    for table in ["everything", "everything_default"] {
        let changes = format!(
            "{update}
             UPDATE {table} SET id = 5 WHERE id = 1;
             UPDATE {table} SET c_int2 = 2 WHERE id = 10;
             DELETE FROM {table} WHERE id = 3;",
            update = crate::source_types::UPDATE.replace("everything", table),
        );
        pg.execute_script(&database, &changes)
            .await
            .expect("changes");
    }
    pg.execute_script(
        &database,
        &format!("TRUNCATE everything; {insert} UPDATE everything SET c_text = 'after the truncate' WHERE id = 2;"),
    )
    .await
    .expect("truncate and new rows");

    // The tables as they are now, read by a snapshot.
    for format in [
        "canal-json",
        "maxwell-json",
        "dts-avro",
        "shareplex-json",
        "oms-json",
    ] {
        let (_, spec) = pipeline(format, "initial_only");
        RunningPipeline::start(&spec)
            .expect("snapshot")
            .join(WAIT)
            .await
            .expect("the snapshot ends by itself");
    }
    let (_, spec) = pipeline_of("canal-json", "_utc", "initial_only");
    RunningPipeline::start(&spec)
        .expect("snapshot")
        .join(WAIT)
        .await
        .expect("the snapshot ends by itself");
    let client = pg.connect(&database).await.expect("connect");
    let row_type = all_text_row(&client, "everything").await;

    for table in ["everything", "everything_default"] {
        stream_converges_to_snapshot(&kafka, &canal, table, |messages| {
            canal_flat_message_table(messages).map_err(|e| format!("Canal's client: {e}"))
        })
        .await;
    }

    // Flink has no truncate to apply: the table without one.
    for (format, prefix) in [
        (FlinkFormat::Canal, &canal),
        (FlinkFormat::Maxwell, &maxwell),
    ] {
        stream_converges_to_snapshot(&kafka, prefix, "everything_default", |messages| {
            let changelog = flink_read(format, &row_type, messages)
                .map_err(|e| format!("Flink reads every message: {e}"))?;
            Ok(apply_changelog(changelog, prefix).into_iter().collect())
        })
        .await;
    }

    paimon_reads_every_type(&kafka, &canal_utc).await;
    paimon_reads_maxwell(&kafka, &maxwell).await;

    for table in ["everything", "everything_default"] {
        let expected = stream_converges_to_snapshot(&kafka, &dts, table, |messages| {
            dts_record_table(messages).map_err(|e| format!("DTS's SDK: {e}"))
        })
        .await;
        let object = format!("{database}.public.{table}");
        for (named, _) in &expected {
            assert_eq!(*named, object, "objectName is database.schema.table");
        }
        if table == "everything" {
            // The rows the TRUNCATE was followed by, as the SDK prints each class.
            let row = |id: &str| {
                &expected
                    .iter()
                    .find(|(_, row)| row["id"] == id)
                    .unwrap_or_else(|| panic!("row {id}"))
                    .1
            };
            for (column, text) in [
                ("c_int8", "3"),
                ("c_numeric_p", "129.90"),
                ("c_money", "12.34"),
                ("c_real", "1.5"),
                ("c_char", "ab   "),
                ("c_bytea", "01AB"),
                ("c_bool", "true"),
                ("c_date", "2026-11-21"),
                ("c_ts", "2026-11-21 07:01:14.951387"),
                ("c_tstz", "2025-12-31 18:30:00.0"),
                ("c_json", "{\"a\": [1, 2]}"),
                ("c_enum", "happy"),
                ("c_int_array", "{1,2,NULL}"),
            ] {
                assert_eq!(row("1")[column], text, "{column}");
            }
            assert_eq!(row("3")["c_date"], "-infinity");
            assert_eq!(row("3")["c_tstz"], "-infinity");
        }
    }

    for table in ["everything", "everything_default"] {
        stream_converges_to_snapshot(&kafka, &shareplex, table, |messages| {
            shareplex_table(messages, &["id"])
        })
        .await;
    }

    for table in ["everything", "everything_default"] {
        let expected = stream_converges_to_snapshot(&kafka, &oms, table, oms_default_table).await;
        for (named, _) in &expected {
            assert_eq!(
                *named,
                format!("{database}.public.{table}"),
                "db is database.schema"
            );
        }
    }
    canal_weir.stop().await.expect("stops");
    canal_utc_weir.stop().await.expect("stops");
    maxwell_weir.stop().await.expect("stops");
    dts_weir.stop().await.expect("stops");
    shareplex_weir.stop().await.expect("stops");
    oms_weir.stop().await.expect("stops");
}

/// What Paimon's parser for `format` makes of `everything_default`'s topic under
/// `prefix`, once it converges to what it makes of the snapshot: the snapshot's rows,
/// and its reading of the stream (types and refusals included).
async fn paimon_converges(
    kafka: &KafkaCluster,
    prefix: &str,
    format: PaimonFormat,
) -> (Vec<serde_json::Map<String, Json>>, PaimonTable) {
    let table = "everything_default";
    let expected = stream_converges_to_snapshot(kafka, prefix, table, |messages| {
        paimon_table(format, messages)
            .map(|table| table.rows)
            .map_err(|e| format!("Paimon's {format:?} parser: {e}"))
    })
    .await;
    let paimon = paimon_table(
        format,
        &messages_in_now(kafka, &format!("{prefix}.{table}")),
    )
    .expect("Paimon reads the stream");
    (expected, paimon)
}

/// Paimon's Canal parser over `canal-json` with `timestamptz_form: utc` (prefix
/// `prefix`): its table converges to what it makes of the snapshot; each column gets
/// the Paimon type its PostgreSQL type promises through `mysqlType`; the only values
/// Paimon's cast refuses are those its types cannot hold (years before 1 AD,
/// `infinity`, `24:00:00`); values read back as written. Paimon applies no DDL, so
/// the table without the TRUNCATE.
async fn paimon_reads_every_type(kafka: &KafkaCluster, prefix: &str) {
    let (expected, paimon) = paimon_converges(kafka, prefix, PaimonFormat::Canal).await;
    for (column, paimon_type) in [
        ("id", "INT"),
        ("c_int2", "SMALLINT"),
        ("c_int8", "BIGINT"),
        ("c_numeric_p", "DECIMAL(12, 2)"),
        ("c_numeric", "STRING"),
        ("c_money", "DECIMAL(19, 2)"),
        ("c_real", "FLOAT"),
        ("c_double", "DOUBLE"),
        ("c_bool", "BOOLEAN"),
        ("c_char", "CHAR(5)"),
        ("c_varchar", "VARCHAR(20)"),
        ("c_text", "STRING"),
        ("c_bytea", "BYTES"),
        ("c_date", "DATE"),
        ("c_time", "TIME(0)"),
        ("c_ts", "TIMESTAMP(6)"),
        ("c_tstz", "TIMESTAMP(6)"),
        ("c_uuid", "CHAR(36)"),
        ("c_json", "STRING"),
        ("c_int_array", "STRING"),
    ] {
        assert_eq!(
            paimon.types.get(column).map(String::as_str),
            Some(paimon_type),
            "{column}: {:?}",
            paimon.types
        );
    }
    for refusal in &paimon.refused {
        let beyond = refusal.value.ends_with("infinity")
            || refusal.value.starts_with('-')
            || refusal.value == "24:00:00";
        assert!(
            beyond && ["c_date", "c_ts", "c_tstz", "c_time"].contains(&refusal.column.as_str()),
            "Paimon refused a value its type holds: {refusal:?}"
        );
    }
    let row = |id: &str| {
        expected
            .iter()
            .find(|row| row["id"] == id)
            .unwrap_or_else(|| panic!("row {id}"))
    };
    for (column, value) in [
        ("c_numeric_p", "1.25"),
        ("c_money", "12.34"),
        ("c_real", "1.5"),
        ("c_bool", "true"),
        ("c_char", "ab   "),
        ("c_date", "2026-11-21"),
        // Paimon's TIME holds milliseconds.
        ("c_time", "07:01:14.951"),
        ("c_ts", "2026-11-21T07:01:14.951387"),
        // '1999-12-31 23:59:59+00' as UTC's wall clock, whatever the reader's zone.
        ("c_tstz", "1999-12-31T23:59:59"),
        // Paimon keeps a BYTES value's text as its bytes: base64's `/w==` of \xff.
        ("c_bytea", "2f773d3d"),
    ] {
        assert_eq!(row("5")[column], value, "{column}");
    }
    assert_eq!(row("2")["c_money"], "-0.50");
}

/// Paimon's Maxwell parser over `maxwell-json` (prefix `prefix`): it keys its table
/// by `primary_key_columns` (the judge fails on a record without a key), and its
/// table converges to what it makes of the snapshot. Maxwell carries no types, so
/// every column is a STRING holding the value's text.
async fn paimon_reads_maxwell(kafka: &KafkaCluster, prefix: &str) {
    let (expected, paimon) = paimon_converges(kafka, prefix, PaimonFormat::Maxwell).await;
    assert!(paimon.refused.is_empty(), "{:?}", paimon.refused);
    assert!(
        paimon.types.len() > 40 && paimon.types.values().all(|t| t == "STRING"),
        "{:?}",
        paimon.types
    );
    let row = expected.iter().find(|row| row["id"] == "5").expect("row 5");
    for (column, value) in [
        ("c_int8", "3"),
        ("c_numeric_p", "1.25"),
        ("c_numeric", "1234567890.123456789"),
        ("c_money", "12.34"),
        ("c_tstz", "1999-12-31 23:59:59Z"),
        ("c_bytea", "/w=="),
    ] {
        assert_eq!(row[column], value, "{column}");
    }
}

/// What `read` (a consumer applying messages) makes of `table`'s stream topic
/// (`<prefix>.<table>`, `prefix` ending in `_initial`) converges to what it makes of
/// the same table's `initial_only` snapshot topic; returns the latter.
async fn stream_converges_to_snapshot<T: PartialEq + std::fmt::Debug>(
    kafka: &KafkaCluster,
    prefix: &str,
    table: &str,
    read: impl Fn(&[Option<Vec<u8>>]) -> Result<Vec<T>, String>,
) -> Vec<T> {
    let snapshot_topic = format!("{prefix}_only.{table}");
    let expected = read(&messages_in_now(kafka, &snapshot_topic))
        .unwrap_or_else(|e| panic!("{snapshot_topic}: {e}"));
    assert!(expected.len() >= 4, "{snapshot_topic}: {expected:?}");
    let topic = format!("{prefix}.{table}");
    converges(&topic, &expected, || {
        read(&messages_in_now(kafka, &topic)).unwrap_or_else(|e| panic!("{topic}: {e}"))
    })
    .await;
    expected
}

/// Flink's `ROW<…>` of `table`'s columns, every one a `STRING` (the id `NOT NULL`):
/// Flink keeps each JSON value's text, and arrays' JSON.
async fn all_text_row(client: &tokio_postgres::Client, table: &str) -> String {
    let columns: Vec<String> = client
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )
        .await
        .expect("columns")
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            let not_null = if name == "id" { " NOT NULL" } else { "" };
            format!("`{name}` STRING{not_null}")
        })
        .collect();
    format!("ROW<{}>", columns.join(", "))
}

/// The message values of `topic` so far.
fn messages_in_now(kafka: &KafkaCluster, topic: &str) -> Vec<Option<Vec<u8>>> {
    read_topic(kafka.bootstrap_servers(), topic, Duration::from_secs(5))
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.payload)
        .collect()
}

/// Waits until `applied()` (a consumer's table after the topic's messages so far)
/// equals `expected`; fails with the last difference.
async fn converges<T: PartialEq + std::fmt::Debug>(
    topic: &str,
    expected: &T,
    applied: impl Fn() -> T,
) {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let got = applied();
        if &got == expected {
            return;
        }
        if std::time::Instant::now() > deadline {
            if let Ok(dir) = std::env::var("WEIR_TEST_DUMP") {
                let _ = std::fs::write(format!("{dir}/{topic}.got"), format!("{got:#?}"));
                let _ = std::fs::write(format!("{dir}/{topic}.expected"), format!("{expected:#?}"));
            }
            assert_eq!(&got, expected, "{topic}: applied is not the snapshot");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `dts-avro`, `shareplex-json` and `oms-json` without `unchanged_toast: fetch`,
/// under the default identity: what PostgreSQL did not send (an unchanged TOASTed
/// note, the old row's non-key columns) is DTS's `NONE`, or left out of SharePlex's
/// `data` and OMS's structs, so
/// a consumer keeps the value it has. Applied, the messages end with the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dts_shareplex_and_oms_consumers_keep_the_values_postgres_did_not_send() {
    let pg = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::start(1).expect("kafka");
    let database = pg
        .create_database_with("dts", &setup("accounts"))
        .await
        .expect("database");
    let start = |format: &str| {
        RunningPipeline::start(
            &Spec {
                url: &pg.url(&database),
                brokers: kafka.bootstrap_servers(),
                tables: "public.accounts",
                topic: &format!("{}.accounts", format.replace('-', "_")),
                format,
                source: &[],
                sink: &[],
            }
            .yaml("dts"),
        )
        .expect("weir")
    };
    let dts = start("dts-avro");
    let shareplex = start("shareplex-json");
    let oms = start("oms-json");
    dts.wait_streaming(WAIT).await.expect("weir streams");
    shareplex.wait_streaming(WAIT).await.expect("weir streams");
    oms.wait_streaming(WAIT).await.expect("weir streams");
    pg.execute_script(&database, &changes("accounts"))
        .await
        .expect("changes");
    let client = pg.connect(&database).await.expect("connect");
    let columns = ["id", "owner", "balance", "note"];
    let rows: Vec<serde_json::Map<String, Json>> = client
        .query(
            "SELECT id::text, owner, balance::text, note FROM accounts ORDER BY accounts.id",
            &[],
        )
        .await
        .expect("table")
        .iter()
        .map(|row| {
            let mut object = serde_json::Map::new();
            for (i, column) in columns.into_iter().enumerate() {
                let value: Option<String> = row.get(i);
                object.insert(column.to_owned(), value.map_or(Json::Null, Json::from));
            }
            object
        })
        .collect();
    let kept = |row: serde_json::Map<String, Json>| -> serde_json::Map<String, Json> {
        row.into_iter()
            .filter(|(column, _)| columns.contains(&column.as_str()))
            .collect()
    };

    let object = format!("{database}.public.accounts");
    let expected: Vec<weir_tests::NamedRow> = rows
        .iter()
        .map(|row| (object.clone(), row.clone()))
        .collect();
    converges("dts_avro.accounts", &expected, || {
        let messages = messages_in_now(&kafka, "dts_avro.accounts");
        dts_record_table(&messages)
            .unwrap_or_else(|e| panic!("DTS's SDK reads dts_avro.accounts: {e}"))
            .into_iter()
            .map(|(table, row)| (table, kept(row)))
            .collect::<Vec<_>>()
    })
    .await;
    converges("shareplex_json.accounts", &rows, || {
        let messages = messages_in_now(&kafka, "shareplex_json.accounts");
        shareplex_table(&messages, &["id"])
            .unwrap_or_else(|e| panic!("shareplex_json.accounts applies: {e}"))
            .into_iter()
            .map(kept)
            .collect::<Vec<_>>()
    })
    .await;
    converges("oms_json.accounts", &expected, || {
        let messages = messages_in_now(&kafka, "oms_json.accounts");
        oms_default_table(&messages)
            .unwrap_or_else(|e| panic!("oms_json.accounts applies: {e}"))
            .into_iter()
            .map(|(table, row)| (table, kept(row)))
            .collect::<Vec<_>>()
    })
    .await;
    dts.stop().await.expect("stops");
    shareplex.stop().await.expect("stops");
    oms.stop().await.expect("stops");
}

/// `unchanged_toast: fetch` under a writer that runs from before weir starts to the
/// end: updates that leave a TOASTed note out, updates that change it, deletes and
/// re-inserts of the same keys, single statements and multi-row transactions, all
/// racing the look-ups. Canal's client, applying the stream, ends with the table
/// (the default identity: every unchanged note came from a look-up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_toast_values_converge_under_a_concurrent_writer() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    const ROWS: i32 = 40;
    let pg = PgCluster::start().expect("postgres");
    let kafka = KafkaCluster::start(1).expect("kafka");
    let note = |seed: &str| {
        format!("(SELECT string_agg(md5({seed} || g::text), '') FROM generate_series(1, 600) g)")
    };
    let database = pg
        .create_database_with(
            "toasty",
            &format!(
                "CREATE TABLE docs (id int PRIMARY KEY, n int NOT NULL, note text);
                 INSERT INTO docs SELECT i, 0, {} FROM generate_series(1, {ROWS}) i;",
                note("i::text")
            ),
        )
        .await
        .expect("database");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn({
        let url = pg.url(&database);
        let stop = Arc::clone(&stop);
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("writer connects");
            tokio::spawn(connection);
            let mut round: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let id = 1 + round * 7 % i64::from(ROWS);
                let statement = match round % 6 {
                    // The note left out: the look-up's job.
                    0..=2 => format!("UPDATE docs SET n = n + 1 WHERE id = {id}"),
                    3 => format!(
                        "UPDATE docs SET note = {}, n = n + 1 WHERE id = {id}",
                        note(&format!("'{round}'"))
                    ),
                    4 => format!(
                        "BEGIN; UPDATE docs SET n = n + 1 WHERE id % 5 = {m}; \
                         UPDATE docs SET note = {} WHERE id = {id}; \
                         UPDATE docs SET n = n + 1 WHERE id = {id}; COMMIT;",
                        note(&format!("'t{round}'")),
                        m = round % 5
                    ),
                    _ => format!(
                        "BEGIN; DELETE FROM docs WHERE id = {id}; \
                         INSERT INTO docs VALUES ({id}, 0, {}); COMMIT;",
                        note(&format!("'r{round}'"))
                    ),
                };
                client.batch_execute(&statement).await.expect("writes");
            }
            round
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let weir = RunningPipeline::start(
        &Spec {
            url: &pg.url(&database),
            brokers: kafka.bootstrap_servers(),
            tables: "public.docs",
            topic: "toasty.docs",
            format: "canal-json",
            source: &["unchanged_toast: fetch"],
            sink: &[],
        }
        .yaml("toasty"),
    )
    .expect("weir");
    weir.wait_streaming(WAIT).await.expect("weir streams");
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = writer.await.expect("writer");
    assert!(rounds > 100, "the writer wrote {rounds} rounds");

    let client = pg.connect(&database).await.expect("connect");
    let expected: Vec<serde_json::Map<String, Json>> = client
        .query(
            "SELECT id::text, n::text, note FROM docs ORDER BY docs.id",
            &[],
        )
        .await
        .expect("table")
        .iter()
        .map(|row| {
            ["id", "n", "note"]
                .into_iter()
                .enumerate()
                .map(|(i, column)| (column.to_owned(), Json::from(row.get::<_, String>(i))))
                .collect()
        })
        .collect();
    converges("toasty.docs", &expected, || {
        canal_flat_message_table(&messages_in_now(&kafka, "toasty.docs"))
            .unwrap_or_else(|e| panic!("Canal's client reads toasty.docs: {e}"))
    })
    .await;
    weir.stop().await.expect("stops");
}
