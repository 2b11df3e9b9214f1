//! Debezium as the oracle: its own PostgreSQL connector (embedded engine, Connect's
//! JSON converter) and weir read the same database through slots of their own, and
//! every event weir writes to Kafka is compared with Debezium's — key, value, the Connect
//! schemas of both, and the headers Debezium sets — for every type on weir's list and
//! every kind of change.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value as Json;
use weir_tests::{
    ConnectStandalone, DebeziumOracle, KafkaCluster, OracleEvent, PgCluster, Record,
    RunningPipeline, SUPERUSER_PASSWORD, apply_changelog, flink_debezium_read, read_topic,
    unique_name,
};

use crate::source_types;

const WAIT: Duration = Duration::from_secs(120);
const NAME: &str = "shop";
/// Debezium's heartbeat topic for [`NAME`] (`topic.heartbeat.prefix`, then the name).
const HEARTBEATS: &str = "__debezium-heartbeat.shop";

/// Tables beside `everything` (every type): primary key changes, unchanged TOAST,
/// deletes and truncates, under the default replica identity and under FULL.
const ACCOUNTS: &str = "
    CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), note text);
    CREATE TABLE accounts_full (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), note text);
    ALTER TABLE accounts_full REPLICA IDENTITY FULL;
    INSERT INTO accounts SELECT n, 'owner ' || n, n * 10.5, NULL FROM generate_series(1, 5) n;
    INSERT INTO accounts_full SELECT n, 'owner ' || n, n * 10.5, NULL FROM generate_series(1, 5) n;
    CREATE TABLE flags (id int PRIMARY KEY, one bit(1), nine bit(9), cash money NOT NULL,
                        at_ms timestamp(3), clock_ms time(3));
    INSERT INTO flags VALUES (1, B'1', B'100000001', '-1234.5', '2026-11-21 08:00:00.123', '13:14:15.5'),
                             (2, B'0', NULL, 0, NULL, NULL);
    CREATE TABLE toasty (id int PRIMARY KEY, n int, blob bytea, tags text[], counts int[]);
    INSERT INTO toasty VALUES (1, 0, '\\x00', '{a}', '{1}');
    CREATE EXTENSION hstore;
    CREATE TABLE extras (id int PRIMARY KEY, at_tz3 timestamptz(3), at_tz0 timestamptz(0), at_tz1 timestamptz(1),
                         at_ts6 timestamp(6), nums numeric[], decs numeric(6,2)[], ids uuid[],
                         days date[], docs jsonb[], stamps timestamp[], attrs hstore);
    INSERT INTO extras VALUES
        (1, '2026-11-21 08:00:00.123456+00', '2026-11-21 08:00:00.6+00', '2026-11-21 08:00:00.16+00', '2026-11-21 08:00:00.123456',
         '{1.5,-2,12345678901234567890.123}', '{1.25,NULL}', '{00000000-0000-0000-0000-000000000001}',
         '{2026-11-21,1999-12-31}', ARRAY['{\"a\": 1}'::jsonb, '[]'], '{\"2026-11-21 08:00:00.5\"}',
         'a=>1, \"b c\"=>NULL'),
        (2, NULL, NULL, NULL, NULL, '{}', '{}', '{}', '{}', '{}', '{}', '');
";

/// Values of types other than text left unchanged in TOAST under the default
/// replica identity: each gets Debezium's placeholder of its type.
const TOAST_CHANGES: &str = "
    INSERT INTO toasty SELECT 2, 0, decode(string_agg(md5(g::text), ''), 'hex'),
        array_agg(md5(g::text)), array_agg(('x' || substr(md5(g::text), 1, 8))::bit(32)::int)
        FROM generate_series(1, 3000) g;
    UPDATE toasty SET n = 1 WHERE id = 2;
";

/// Streamed changes to both account tables: an insert with a TOASTed value, an
/// update leaving it unchanged, a primary key change, a delete, and a TRUNCATE last.
fn account_changes(table: &str) -> String {
    format!(
        "INSERT INTO {table} SELECT 10, 'toast', 1, string_agg(md5(g::text), '') FROM generate_series(1, 1000) g;
         UPDATE {table} SET balance = 2 WHERE id = 10;
         UPDATE {table} SET id = 11 WHERE id = 1;
         UPDATE {table} SET owner = 'renamed', id = 12 WHERE id = 2;
         DELETE FROM {table} WHERE id = 3;
         BEGIN; UPDATE {table} SET balance = balance + 1 WHERE id IN (4, 5); DELETE FROM {table} WHERE id = 4; COMMIT;"
    )
}

struct Stand {
    pg: PgCluster,
    kafka: KafkaCluster,
    database: String,
}

impl Stand {
    async fn start() -> Stand {
        let pg = PgCluster::start().expect("postgres");
        let kafka = KafkaCluster::start(1).expect("kafka");
        let major = pg.major_version().await.expect("version");
        let mut setup = source_types::SETUP.to_owned();
        let mut insert = source_types::INSERT.to_owned();
        if major < 15 {
            setup = setup.replace("numeric(5,-2)", "numeric(7,0)");
        }
        if major < 14 {
            insert = insert.replace(
                "9223372036854775807, '-Infinity',",
                "9223372036854775807, '-1e300',",
            );
        }
        let database = pg
            .create_database_with("conformance", &format!("{setup}{insert}{ACCOUNTS}"))
            .await
            .expect("database");
        Stand {
            pg,
            kafka,
            database,
        }
    }

    /// Debezium on a slot of its own, with `more` connector properties.
    fn debezium(&self, more: &[(&str, String)]) -> DebeziumOracle {
        let slot = unique_name("dbz");
        let mut properties = vec![
            ("name", "oracle".to_owned()),
            ("database.hostname", "127.0.0.1".to_owned()),
            ("database.port", self.pg.port().to_string()),
            ("database.user", "postgres".to_owned()),
            ("database.password", SUPERUSER_PASSWORD.to_owned()),
            ("database.dbname", self.database.clone()),
            ("topic.prefix", NAME.to_owned()),
            ("plugin.name", "pgoutput".to_owned()),
            ("slot.name", slot.clone()),
            ("publication.name", slot),
            ("publication.autocreate.mode", "filtered".to_owned()),
            (
                "table.include.list",
                "public.everything,public.accounts,public.accounts_full,public.flags,public.toasty,public.extras"
                    .to_owned(),
            ),
            // TRUNCATE is compared too: neither side skips it here.
            ("skipped.operations", "none".to_owned()),
        ];
        properties.extend(more.iter().cloned());
        DebeziumOracle::start(&properties).expect("debezium")
    }

    /// weir on a slot of its own, writing transaction metadata and heartbeats to
    /// Debezium's topics for them.
    fn weir(&self) -> RunningPipeline {
        self.weir_named(
            NAME,
            "debezium-json\n    schemas_enable: true",
            &format!(
                "    skipped_operations: [none]
    transaction_topic: {NAME}.transaction
    heartbeat_topic: {HEARTBEATS}
    heartbeat_interval: 1s
"
            ),
        )
    }

    /// weir as `name` (its topics' prefix) writing `format` (with more lines under
    /// it), `sink` more lines under `sink.kafka`.
    fn weir_named(&self, name: &str, format: &str, sink: &str) -> RunningPipeline {
        let slot = unique_name("weir");
        RunningPipeline::start(&format!(
            "name: {name}
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.everything, public.accounts, public.accounts_full, public.flags, public.toasty, public.extras]
    heartbeat: off
sink:
  kafka:
    brokers: {brokers}
    topic: \"{name}.{{schema}}.{{table}}\"
    format: {format}
    linger: 1ms
    create_topics: {{ partitions: 1, replication_factor: 1 }}
{sink}",
            url = self.pg.url(&self.database),
            brokers = self.kafka.bootstrap_servers(),
        ))
        .expect("weir")
    }

    fn weir_topic(&self, topic: &str) -> Vec<Record> {
        read_topic(self.kafka.bootstrap_servers(), topic, WAIT).expect("read back")
    }
}

fn json(bytes: &Option<Vec<u8>>) -> Json {
    bytes.as_deref().map_or(Json::Null, |b| {
        serde_json::from_slice(b).expect("weir wrote JSON")
    })
}

/// Every difference between two JSON values, as `path: debezium … weir …` lines.
fn differences(path: &str, debezium: &Json, weir: &Json, out: &mut Vec<String>) {
    match (debezium, weir) {
        (Json::Object(d), Json::Object(w)) => {
            for (key, value) in d {
                let path = format!("{path}.{key}");
                match w.get(key) {
                    Some(other) => differences(&path, value, other, out),
                    None => out.push(format!("{path}: debezium {value} weir (absent)")),
                }
            }
            for (key, value) in w {
                if !d.contains_key(key) {
                    out.push(format!("{path}.{key}: debezium (absent) weir {value}"));
                }
            }
        }
        // Connect and Avro schema fields: matched by name.
        (Json::Array(d), Json::Array(w)) if path.ends_with(".fields") => {
            let name = |v: &Json| {
                v.get("field")
                    .or_else(|| v.get("name"))
                    .and_then(Json::as_str)
                    .map(str::to_owned)
            };
            for field in d {
                let other = w.iter().find(|o| name(o) == name(field));
                let path = format!("{path}[{}]", name(field).unwrap_or_default());
                match other {
                    Some(other) => differences(&path, field, other, out),
                    None => out.push(format!("{path}: debezium {field} weir (absent)")),
                }
            }
            for field in w {
                if !d.iter().any(|o| name(o) == name(field)) {
                    out.push(format!(
                        "{path}[{}]: debezium (absent) weir {field}",
                        name(field).unwrap_or_default()
                    ));
                }
            }
        }
        (Json::Array(d), Json::Array(w)) if d.len() == w.len() => {
            for (i, (a, b)) in d.iter().zip(w).enumerate() {
                differences(&format!("{path}[{i}]"), a, b, out);
            }
        }
        _ if debezium != weir => out.push(format!("{path}: debezium {debezium} weir {weir}")),
        _ => {}
    }
}

/// Fields that differ between any two runs (wall clocks, the connector's version).
fn mask_volatile(value: &mut Json, snapshot: bool) {
    let Some(object) = value.as_object_mut() else {
        return;
    };
    for field in ["ts_ms", "ts_us", "ts_ns"] {
        if object.contains_key(field) {
            object.insert(field.to_owned(), Json::from("(clock)"));
        }
    }
    if let Some(source) = object.get_mut("source").and_then(Json::as_object_mut) {
        source.insert("version".to_owned(), Json::from("(version)"));
        if snapshot {
            // Each reader's snapshot is its own: its own slot position and time.
            for field in ["ts_ms", "ts_us", "ts_ns", "lsn", "sequence", "txId"] {
                if source.contains_key(field) {
                    source.insert(field.to_owned(), Json::from("(snapshot)"));
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_writes_what_debezium_writes() {
    let stand = Stand::start().await;
    let weir = stand.weir();
    let mut debezium = stand.debezium(&[
        ("provide.transaction.metadata", "true".to_owned()),
        ("heartbeat.interval.ms", "1000".to_owned()),
    ]);
    if let Err(error) = weir.wait_streaming(WAIT).await {
        panic!("weir: {error}: {:?}", weir.join(WAIT).await);
    }
    // Both slots exist before either snapshot is read, so the changes below reach
    // both as streamed changes once Debezium's snapshot is out.
    let snapshot_rows = 4 + 5 + 5 + 2 + 1 + 2;
    debezium
        .wait_until("reading the snapshot", WAIT, |events| {
            events.iter().filter(|e| op(e) == Some("r")).count() >= snapshot_rows
        })
        .expect("debezium snapshot");
    // Last, a TRUNCATE: Debezium's `op: "t"` event, with no key.
    let changes = format!(
        "{}{}{TOAST_CHANGES}UPDATE extras SET at_tz0 = at_tz0 + interval '1 second';TRUNCATE accounts;",
        account_changes("accounts"),
        account_changes("accounts_full")
    );
    stand
        .pg
        .execute_script(&stand.database, &changes)
        .await
        .expect("changes");
    // Debezium's last data event: the TRUNCATE, then its transaction's END; and a
    // heartbeat at some point.
    let transaction_topic = format!("{NAME}.transaction");
    debezium
        .wait_until("streaming the changes", WAIT, |events| {
            let truncated = events.iter().any(|e| op(e) == Some("t"));
            let last_status = events
                .iter()
                .filter(|e| e.topic == transaction_topic)
                .rev()
                .find_map(|e| e.value.get("status").and_then(Json::as_str));
            truncated && last_status == Some("END") && events.iter().any(|e| e.topic == HEARTBEATS)
        })
        .expect("debezium changes");
    // weir's topics hold as many messages as Debezium wrote events; heartbeats go
    // by the clock, so at least one.
    let expected: BTreeMap<String, usize> =
        debezium
            .events()
            .expect("events")
            .iter()
            .fold(BTreeMap::new(), |mut counts, e| {
                let count = counts.entry(e.topic.clone()).or_default();
                *count = if e.topic == HEARTBEATS { 1 } else { *count + 1 };
                counts
            });
    let deadline = std::time::Instant::now() + WAIT;
    for (topic, count) in &expected {
        while stand.weir_topic(topic).len() < *count {
            if weir.is_finished() || std::time::Instant::now() > deadline {
                panic!("weir did not deliver {topic}: {:?}", weir.join(WAIT).await);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut by_topic: BTreeMap<String, Vec<OracleEvent>> = BTreeMap::new();
    for event in debezium.events().expect("events") {
        by_topic.entry(event.topic.clone()).or_default().push(event);
    }
    let mut tally = Tally::new(KNOWN);
    for (topic, events) in &by_topic {
        let mut records = stand.weir_topic(topic);
        let mut events = events.as_slice();
        if topic == HEARTBEATS {
            // Each side's first heartbeat: their number depends on the clock.
            records.truncate(1);
            events = &events[..1];
        }
        assert_eq!(
            records.len(),
            events.len(),
            "{topic}: weir wrote {} messages where Debezium wrote {} events",
            records.len(),
            events.len()
        );
        for (index, (event, record)) in events.iter().zip(&records).enumerate() {
            let op = op(event)
                .or_else(|| event.value.get("status").and_then(Json::as_str))
                .unwrap_or(if topic == HEARTBEATS {
                    "heartbeat"
                } else {
                    "tombstone"
                });
            // The transaction topic's paths start `metadata.`, apart from the tables'.
            let root = if *topic == transaction_topic {
                "metadata."
            } else {
                ""
            };
            for difference in compare(event, record, root) {
                tally.note(&format!("{topic}#{index} ({op})"), difference);
            }
        }
    }
    weir.stop().await.expect("weir stops cleanly");
    tally.assert_settled("KNOWN");
    check_documented_table();
}

/// A data event's `op`.
fn op(event: &OracleEvent) -> Option<&str> {
    event.value.get("op").and_then(Json::as_str)
}

/// The differences a comparison found, against the list that explains them.
struct Tally {
    known: &'static [Known],
    seen: Vec<bool>,
    unexplained: Vec<String>,
}

impl Tally {
    fn new(known: &'static [Known]) -> Self {
        Tally {
            known,
            seen: vec![false; known.len()],
            unexplained: Vec::new(),
        }
    }

    /// `difference`, found at `place`: explained by an entry, or not.
    fn note(&mut self, place: &str, difference: String) {
        match self
            .known
            .iter()
            .position(|known| known.covers(&difference))
        {
            Some(known) => self.seen[known] = true,
            None => self.unexplained.push(format!("{place} {difference}")),
        }
    }

    /// Fails on a difference no entry of `list` explains, and on an entry no
    /// difference needed.
    fn assert_settled(self, list: &str) {
        assert!(
            self.unexplained.is_empty(),
            "differences from Debezium not in {list} (fix them, or add them with a reason):\n{}",
            self.unexplained.join("\n")
        );
        let stale: Vec<&str> = self
            .known
            .iter()
            .zip(&self.seen)
            .filter(|(_, seen)| !**seen)
            .map(|(known, _)| known.what)
            .collect();
        assert!(
            stale.is_empty(),
            "{list} differences no longer seen (remove them): {stale:?}"
        );
    }
}

/// Every difference between Debezium's event and weir's message: key, value (clock
/// fields masked), both Connect schemas, and the headers Debezium set; paths start
/// with `root`.
fn compare(event: &OracleEvent, record: &Record, root: &str) -> Vec<String> {
    let mut found = Vec::new();
    let differences = |path: &str, debezium: &Json, weir: &Json, found: &mut Vec<String>| {
        differences(&format!("{root}{path}"), debezium, weir, found)
    };
    let weir_key = json(&record.key);
    let weir_value = json(&record.payload);
    let part = |value: &Json, name: &str| value.get(name).cloned().unwrap_or(Json::Null);
    differences("key", &event.key, &part(&weir_key, "payload"), &mut found);
    differences(
        "key_schema",
        &part(&event.key_schema, "schema"),
        &part(&weir_key, "schema"),
        &mut found,
    );
    let snapshot = event.value.get("op").and_then(Json::as_str) == Some("r");
    let mut debezium = event.value.clone();
    let mut weir = part(&weir_value, "payload");
    mask_volatile(&mut debezium, snapshot);
    mask_volatile(&mut weir, snapshot);
    differences("value", &debezium, &weir, &mut found);
    differences(
        "value_schema",
        &part(&event.value_schema, "schema"),
        &part(&weir_value, "schema"),
        &mut found,
    );
    for (name, value) in &event.headers {
        let weir_header = record.header_text(name);
        if weir_header.as_ref() != value.as_ref() {
            found.push(format!(
                "header {name}: debezium {value:?} weir {weir_header:?}"
            ));
        }
    }
    found
}

/// A difference from Debezium kept on purpose (or not fixed yet), with its reason:
/// the table in docs/pipeline.md is generated from these.
struct Known {
    /// Where: differences' paths, `*` matching any text (`value*.c_money*`).
    paths: &'static [&'static str],
    /// The column or field, as the table names it.
    what: &'static str,
    debezium: &'static str,
    weir: &'static str,
    why: &'static str,
}

impl Known {
    fn covers(&self, difference: &str) -> bool {
        let path = difference.split(": ").next().unwrap_or(difference);
        self.paths.iter().any(|pattern| glob(pattern, path))
    }
}

/// `pattern` with `*` matching any run of characters, against all of `text`.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(text) = text.strip_prefix(head) else {
                return false;
            };
            (0..=text.len()).any(|i| text.is_char_boundary(i) && glob(rest, &text[i..]))
        }
    }
}

const KNOWN: &[Known] = &[
    Known {
        paths: &[
            "metadata.key.id",
            "metadata.value.id",
            "value.transaction.id",
        ],
        what: "transaction `id` (metadata topic and `transaction` block)",
        debezium: "`<xid>:<LSN of the message>`: `BEGIN`, each event and `END` of one transaction carry different ids",
        weir: "`<xid>:<commit LSN>`, the same on `BEGIN`, every event and `END`",
        why: "a consumer gathers a transaction's events by `id`; with Debezium's it must cut the id at `:`, which works on weir's too",
    },
    Known {
        paths: &["header __debezium.context.*"],
        what: "headers `__debezium.context.*`",
        debezium: "connector name, logical name, task id and run id on every message",
        weir: "`weir.lsn`, `weir.xid`, `weir.op` instead",
        why: "Debezium 3's extended headers name the connector task; weir's name the change's position",
    },
    Known {
        paths: &["value.source.sequence"],
        what: "`source.sequence[0]`",
        debezium: "the end of the previous commit it read (`null` right after it starts)",
        weir: "the transaction's own commit LSN",
        why: "both order events (with `sequence[1]`, the change's LSN); weir's does not depend on where reading began",
    },
    Known {
        paths: &[
            "value*c_box*",
            "value*c_circle*",
            "value*c_line*",
            "value*c_lseg*",
            "value*c_path*",
            "value*c_polygon*",
            "value*c_composite*",
            "value*c_tsquery*",
        ],
        what: "`box`, `circle`, `line`, `lseg`, `path`, `polygon`, composite types, `tsquery`",
        debezium: "left out (`include.unknown.datatypes` is off by default)",
        weir: "the PostgreSQL text form as a string",
        why: "weir does not drop data it can carry",
    },
    Known {
        paths: &["value*c_matrix*"],
        what: "multi-dimensional arrays",
        debezium: "an array of nulls: the values are lost",
        weir: "the elements in storage order, as `unnest` gives them (`{{1,2},{3,4}}` as `[1,2,3,4]`); the column stays an array",
        why: "Debezium cannot carry them; weir keeps the values, and a column's type never changes mid-stream (PostgreSQL does not fix an array column's dimensions)",
    },
    Known {
        paths: &["value*c_tstz_array*", "value*days*", "value*stamps*"],
        what: "arrays of `date`, `timestamp`, `timestamptz` (and `time`, `interval`)",
        debezium: "typed arrays (`io.debezium.time.Date` elements, …)",
        weir: "the PostgreSQL text form (`{2026-11-21,1999-12-31}`)",
        why: "weir's lists hold the element types plugins read and write (booleans, numbers, text, and numeric, uuid and json elements as text); date and time elements are not among them yet",
    },
    Known {
        paths: &["value*c_ts*"],
        what: "`timestamp` past 294247 AD",
        debezium: "an overflowed number (294276-12-31 becomes -9223372036853775810)",
        weir: "the latest instant 64 bits of microseconds hold, 294247-01-10T04:00:54.775806Z (one before `infinity`)",
        why: "microseconds from 1970 do not fit 64 bits past 294247 AD; the column keeps its type rather than turning to text mid-stream",
    },
    Known {
        paths: &["value.after.c_date"],
        what: "`date` BC and `-infinity`",
        debezium: "0044-03-15 BC as 44 AD's day count; `-infinity` as -625821272",
        weir: "the proleptic Gregorian day count (-735160); `-infinity` as -2147483648",
        why: "Debezium's day count drops the era; weir's is the date PostgreSQL holds",
    },
    Known {
        paths: &["value*c_numeric_neg*"],
        what: "`numeric` with a negative scale (`numeric(5,-2)`)",
        debezium: "a `Decimal` of scale 2046 and garbage bytes",
        weir: "a string of the value",
        why: "Debezium misreads the type modifier (PostgreSQL 15+); Connect's Decimal needs a scale of zero or more",
    },
];

/// The Avro schemas weir registers are the ones Debezium's records map to through
/// an Avro converter (Apicurio's `AvroData`, which keeps Confluent's conventions:
/// `connect.name`, `connect.parameters`, `connect.default`): key and value of every
/// table, every type of the list included. A difference fails unless it is the
/// schema side of a [`KNOWN`] value difference or in [`KNOWN_AVRO`].
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weir_registers_the_avro_schemas_debezium_would() {
    let stand = Stand::start().await;
    let registry = weir_tests::SchemaRegistry::start().expect("registry");
    let weir = stand.weir_named(
        NAME,
        &format!("avro\n    schema_registry: {}", registry.url()),
        &format!(
            "    transaction_topic: {NAME}.transaction
    heartbeat_topic: {HEARTBEATS}
    heartbeat_interval: 1s
"
        ),
    );
    let mut debezium = stand.debezium(&[
        ("provide.transaction.metadata", "true".to_owned()),
        ("heartbeat.interval.ms", "1000".to_owned()),
    ]);
    // weir streams once every snapshot row is acknowledged: each table's schemas
    // are registered by then.
    if let Err(error) = weir.wait_streaming(WAIT).await {
        panic!("weir: {error}: {:?}", weir.join(WAIT).await);
    }
    let snapshot_rows = 4 + 5 + 5 + 2 + 1 + 2;
    debezium
        .wait_until("reading the snapshot", WAIT, |events| {
            events.iter().filter(|e| op(e) == Some("r")).count() >= snapshot_rows
        })
        .expect("debezium snapshot");
    // One streamed transaction, for the transaction topic's schemas; and a heartbeat.
    stand
        .pg
        .execute_script(
            &stand.database,
            "UPDATE accounts SET note = 'x' WHERE id = 5;",
        )
        .await
        .expect("change");
    let transaction_topic = format!("{NAME}.transaction");
    debezium
        .wait_until("a transaction and a heartbeat", WAIT, |events| {
            [transaction_topic.as_str(), HEARTBEATS]
                .iter()
                .all(|topic| events.iter().any(|e| e.topic == *topic))
        })
        .expect("debezium's transaction metadata");
    let mut first_of_topic: BTreeMap<String, OracleEvent> = BTreeMap::new();
    for event in debezium.events().expect("events") {
        first_of_topic.entry(event.topic.clone()).or_insert(event);
    }
    assert_eq!(first_of_topic.len(), 8, "{:?}", first_of_topic.keys());
    let mut tally = Tally::new(KNOWN_AVRO);
    for (topic, event) in &first_of_topic {
        for (part, expected) in [
            ("key", &event.avro_key_schema),
            ("value", &event.avro_value_schema),
        ] {
            let expected: Json = serde_json::from_str(expected.as_deref().expect("a schema"))
                .expect("Debezium's Avro schema");
            let subject = format!("{topic}-{part}");
            let deadline = std::time::Instant::now() + WAIT;
            // The side topics' subjects come once weir sent a message there.
            let registered = loop {
                match registry.latest_schema(&subject) {
                    Ok(schema) => break schema,
                    Err(error) if std::time::Instant::now() > deadline => {
                        panic!("weir registered no {subject}: {error}")
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            };
            let registered: Json = serde_json::from_str(&registered).expect("weir's schema");
            let mut found = Vec::new();
            differences(part, &expected, &registered, &mut found);
            for difference in found {
                if KNOWN.iter().any(|known| known.covers(&difference)) {
                    continue;
                }
                tally.note(&format!("{topic} avro"), difference);
            }
        }
    }
    weir.stop().await.expect("weir stops cleanly");
    tally.assert_settled("KNOWN_AVRO");
    check_documented_table();
}

/// Differences between the Avro schemas weir registers and Debezium's that no value
/// difference of [`KNOWN`] explains: none left.
const KNOWN_AVRO: &[Known] = &[];

/// The table of [`KNOWN`] and [`KNOWN_AVRO`] as docs/pipeline.md shows it, between
/// markers; `WEIR_BLESS=1` writes it there.
fn check_documented_table() {
    let mut table = String::from("| Field | Debezium | weir | Why |\n|---|---|---|---|\n");
    for known in KNOWN.iter().chain(KNOWN_AVRO) {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            known.what, known.debezium, known.weir, known.why
        ));
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/pipeline.md");
    let doc = std::fs::read_to_string(&path).expect("docs/pipeline.md");
    let (begin, end) = ("<!-- conformance:begin -->\n", "<!-- conformance:end -->");
    let start = doc
        .find(begin)
        .expect("docs/pipeline.md has the conformance markers")
        + begin.len();
    let stop = doc
        .find(end)
        .expect("docs/pipeline.md has the conformance markers");
    if doc[start..stop] == table {
        return;
    }
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::write(&path, format!("{}{table}{}", &doc[..start], &doc[stop..]))
            .expect("write docs");
    } else {
        panic!(
            "docs/pipeline.md's conformance table is not the suite's; run with WEIR_BLESS=1 to write it:\n{table}"
        );
    }
}

/// Flink's `debezium-json` format (schemas included and not) reads every message
/// weir writes for the account changes — primary key changes, deletes with their
/// tombstones, a TOASTed value left unchanged — and the changelog it yields, applied
/// in order, is the table. (Flink refuses updates without an old image, so the table
/// has `REPLICA IDENTITY FULL`, and decimals are strings, as Flink's documentation
/// asks of Debezium: Flink's format cannot read Connect's `Decimal` bytes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flink_reads_weirs_changelog_into_the_table() {
    let stand = Stand::start().await;
    let decimals = "    decimal_handling_mode: string\n";
    let with_schemas = stand.weir_named(
        "flinkschemas",
        "debezium-json\n    schemas_enable: true",
        decimals,
    );
    let without = stand.weir_named(
        "flinkplain",
        "debezium-json\n    schemas_enable: false",
        decimals,
    );
    for pipeline in [&with_schemas, &without] {
        pipeline.wait_streaming(WAIT).await.expect("weir streams");
    }
    stand
        .pg
        .execute_script(&stand.database, &account_changes("accounts_full"))
        .await
        .expect("changes");
    let table: BTreeMap<String, Vec<Json>> = stand
        .pg
        .connect(&stand.database)
        .await
        .expect("connect")
        .query(
            "SELECT id::text, owner, balance::text, note FROM accounts_full",
            &[],
        )
        .await
        .expect("table")
        .iter()
        .map(|row| {
            let id: String = row.get(0);
            let fields = (0..4).map(|i| {
                row.get::<_, Option<String>>(i)
                    .map_or(Json::Null, Json::from)
            });
            (id, fields.collect())
        })
        .collect();
    // 5 snapshot reads, then an insert, an update, two key changes (3 messages
    // each), a delete and its tombstone, two updates, a delete and its tombstone.
    let expected_messages = 5 + 14;
    for (prefix, schemas) in [("flinkschemas", true), ("flinkplain", false)] {
        let topic = format!("{prefix}.public.accounts_full");
        let deadline = std::time::Instant::now() + WAIT;
        let records = loop {
            let records = stand.weir_topic(&topic);
            if records.len() >= expected_messages || std::time::Instant::now() > deadline {
                break records;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(records.len(), expected_messages, "{topic}");
        let messages: Vec<Option<Vec<u8>>> = records.into_iter().map(|r| r.payload).collect();
        let changelog = flink_debezium_read(
            "ROW<id INT NOT NULL, owner STRING NOT NULL, balance DECIMAL(12, 2), note STRING>",
            schemas,
            &messages,
        )
        .expect("Flink reads every message");
        let applied = apply_changelog(changelog, &topic);
        assert_eq!(
            applied, table,
            "{topic}: Flink's changelog applied is not the table"
        );
    }
    with_schemas.stop().await.expect("stops");
    without.stop().await.expect("stops");
}

/// Kafka Connect (standalone) with Debezium's JDBC sink, upserting with deletes on,
/// replicates weir's topic into a second database: after primary key changes,
/// deletes with their tombstones and an unchanged TOASTed value under
/// `REPLICA IDENTITY FULL`, the copy equals the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debeziums_jdbc_sink_replicates_weirs_topics() {
    let stand = Stand::start().await;
    let target = stand
        .pg
        .create_database("target")
        .await
        .expect("target database");
    let weir = stand.weir_named("sink", "debezium-json\n    schemas_enable: true", "");
    weir.wait_streaming(WAIT).await.expect("weir streams");
    stand
        .pg
        .execute_script(&stand.database, &account_changes("accounts_full"))
        .await
        .expect("changes");
    let mut connect = ConnectStandalone::start(
        &[
            (
                "bootstrap.servers",
                stand.kafka.bootstrap_servers().to_owned(),
            ),
            (
                "key.converter",
                "org.apache.kafka.connect.json.JsonConverter".to_owned(),
            ),
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter".to_owned(),
            ),
            ("key.converter.schemas.enable", "true".to_owned()),
            ("value.converter.schemas.enable", "true".to_owned()),
            ("offset.flush.interval.ms", "1000".to_owned()),
        ],
        &[
            ("name", "weir-jdbc-sink".to_owned()),
            (
                "connector.class",
                "io.debezium.connector.jdbc.JdbcSinkConnector".to_owned(),
            ),
            ("tasks.max", "1".to_owned()),
            ("topics", "sink.public.accounts_full".to_owned()),
            (
                "connection.url",
                format!("jdbc:postgresql://127.0.0.1:{}/{target}", stand.pg.port()),
            ),
            ("connection.username", "postgres".to_owned()),
            ("connection.password", SUPERUSER_PASSWORD.to_owned()),
            ("insert.mode", "upsert".to_owned()),
            ("delete.enabled", "true".to_owned()),
            ("primary.key.mode", "record_key".to_owned()),
            ("schema.evolution", "basic".to_owned()),
            ("collection.name.format", "copy".to_owned()),
        ],
    )
    .expect("Kafka Connect");
    let query = "SELECT id::text, owner, balance::text, note FROM {table} ORDER BY id";
    let rows = |database: String, table: &'static str| {
        let pg = &stand.pg;
        async move {
            let client = pg.connect(&database).await.expect("connect");
            client
                .query(&query.replace("{table}", table), &[])
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|row| {
                            (0..4)
                                .map(|i| row.get::<_, Option<String>>(i))
                                .collect::<Vec<_>>()
                        })
                        .collect::<Vec<_>>()
                })
        }
    };
    let source = rows(stand.database.clone(), "accounts_full")
        .await
        .expect("source rows");
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        connect.check_running().expect("Kafka Connect runs");
        let copy = rows(target.clone(), "copy").await;
        if copy.as_ref().is_ok_and(|copy| *copy == source) {
            break;
        }
        if std::time::Instant::now() > deadline {
            panic!(
                "the sink's copy is not the table after {WAIT:?}:\ncopy {copy:?}\nsource {source:?}\n{}",
                connect.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    weir.stop().await.expect("weir stops");
}
