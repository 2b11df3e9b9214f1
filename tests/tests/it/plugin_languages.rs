//! The shipped plugins written in Python (`contact-normalise`), JavaScript
//! (`json-nest`), Go (`lookup-enrich`) and Zig (`tokenise`) on real ChangeBatches,
//! their errors through each SDK, and all four chained in a pipeline that delivers to
//! Kafka under a writer that runs from before weir starts to the end.

use std::collections::BTreeMap;
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use serde_json::{Value as Json, json};
use weir::batch::schema::BEFORE;
use weir::plugin::{OnError, PluginEngine, PluginStage, StageSpec};
use weir_tests::{
    KafkaCluster, PgCluster, RunningPipeline, captured_batches, failed, passed, plugin_path,
    read_topic, table_batch, text_column, unique_name,
};

const SETUP: &str = "
    CREATE TABLE contacts (id int PRIMARY KEY, email text, phone text, country_code text,
                           country_name text, card text, profile jsonb);
    ALTER TABLE contacts REPLICA IDENTITY FULL;
";

const CHANGES: [&str; 3] = [
    "INSERT INTO contacts VALUES
       (1, ' Ann@Example.ORG ', '020 7946 0958', 'GB', NULL, '4111-1111-1111-1234', NULL),
       (2, 'not-an-address', '+1 (415) 555-2671', 'FR', NULL, '5500 0000 0000 0004', '{\"tier\": \"gold\"}'),
       (3, NULL, NULL, 'XX', NULL, NULL, NULL)",
    "UPDATE contacts SET email = 'ANN@example.org' WHERE id = 1",
    "DELETE FROM contacts WHERE id = 3",
];

const TOKEN_KEY: &str = "0123456789abcdef";

fn configs() -> [(&'static str, Json); 4] {
    [
        (
            "contact-normalise",
            json!({"email": ["email"], "phone": ["phone"], "default_country_code": "44"}),
        ),
        (
            "lookup-enrich",
            json!({"key": "country_code", "target": "country_name",
                   "lookup": {"GB": "United Kingdom", "FR": "France"}}),
        ),
        (
            "tokenise",
            json!({"columns": ["card"], "key": TOKEN_KEY, "keep_last": 4}),
        ),
        (
            "json-nest",
            json!({"target": "profile",
                   "fields": {"contact.email": "email", "contact.phone": "phone", "country": "country_name"}}),
        ),
    ]
}

fn spec(plugin: &str, config: Json) -> StageSpec {
    let mut spec = StageSpec::new(plugin, plugin_path(plugin));
    spec.config = config;
    spec
}

fn contacts() -> RecordBatch {
    let batches = captured_batches(SETUP, &CHANGES).expect("changes captured");
    table_batch(&batches, "contacts").expect("the table's batches")
}

fn old_strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    let before = batch
        .column_by_name(BEFORE)
        .expect("before")
        .as_struct()
        .column_by_name(column)
        .unwrap_or_else(|| panic!("_before.{column}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect::<Vec<_>>();
    let valid = batch.column_by_name(BEFORE).expect("before");
    before
        .into_iter()
        .enumerate()
        .map(|(i, v)| if valid.is_valid(i) { v } else { None })
        .collect()
}

fn s(text: &str) -> Option<String> {
    Some(text.to_owned())
}

/// A token keeps the value's shape: digits for digits, the separators, the last four.
fn assert_token_of(token: &str, value: &str) {
    assert_ne!(token, value);
    assert_eq!(token.len(), value.len(), "{token} / {value}");
    for (t, v) in token.chars().zip(value.chars()) {
        if v.is_ascii_digit() {
            assert!(t.is_ascii_digit(), "{token} / {value}");
        } else {
            assert_eq!(t, v, "{token} / {value}");
        }
    }
    assert_eq!(token[token.len() - 4..], value[value.len() - 4..]);
}

#[test]
fn each_language_plugin_rewrites_real_batches_in_both_images() {
    let input = contacts();
    // Rows: inserts 1, 2, 3; the update of 1; the delete of 3.
    assert_eq!(input.num_rows(), 5);
    let engine = PluginEngine::with_default_cache().expect("engine");
    let [normalise, enrich, tokenise, nest] = configs().map(|(name, config)| {
        PluginStage::new(&engine, spec(name, config))
            .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/build-plugins.sh)"))
    });

    let normalised = passed(normalise.process(input.clone()).expect("python runs"));
    assert_eq!(
        text_column(&normalised, "email"),
        [s("ann@example.org"), None, None, s("ann@example.org"), None]
    );
    assert_eq!(
        text_column(&normalised, "phone")[..3],
        [s("+442079460958"), s("+14155552671"), None]
    );
    assert_eq!(
        old_strings(&normalised, "email")[3],
        s("ann@example.org"),
        "the old image is normalised like the new one"
    );
    assert_eq!(
        text_column(&normalised, "card"),
        text_column(&input, "card")
    );

    let enriched = passed(enrich.process(normalised.clone()).expect("go runs"));
    assert_eq!(
        text_column(&enriched, "country_name"),
        [
            s("United Kingdom"),
            s("France"),
            None,
            s("United Kingdom"),
            None
        ]
    );

    let tokenised = passed(tokenise.process(enriched.clone()).expect("zig runs"));
    let cards = text_column(&tokenised, "card");
    assert_token_of(cards[0].as_deref().expect("card"), "4111-1111-1111-1234");
    assert_token_of(cards[1].as_deref().expect("card"), "5500 0000 0000 0004");
    assert_eq!(cards[0], cards[3], "equal values get equal tokens");
    assert_eq!(
        old_strings(&tokenised, "card")[3],
        cards[0],
        "the old image gets the same token"
    );
    assert_eq!(cards[2], None);

    let nested = passed(nest.process(tokenised.clone()).expect("javascript runs"));
    let profiles: Vec<Option<Json>> = text_column(&nested, "profile")
        .into_iter()
        .map(|p| p.map(|p| serde_json::from_str(&p).expect("JSON")))
        .collect();
    assert_eq!(
        profiles[0],
        Some(
            json!({"contact": {"email": "ann@example.org", "phone": "+442079460958"},
                    "country": "United Kingdom"})
        )
    );
    assert_eq!(
        profiles[1],
        Some(json!({"tier": "gold", "contact": {"phone": "+14155552671"}, "country": "France"}))
    );
    assert_eq!(profiles[2], None, "nothing to nest leaves the target alone");
    // Every column the plugins did not touch is the input's.
    for column in ["id", "country_code"] {
        assert_eq!(
            nested.column_by_name(column),
            input.column_by_name(column),
            "{column}"
        );
    }
    assert_eq!(nested.schema(), input.schema());
}

#[test]
fn each_sdk_maps_its_errors_to_the_contract() {
    let engine = PluginEngine::with_default_cache().expect("engine");
    // Bad config: an invalid-config error naming what is wrong, from every language.
    for (name, config, message) in [
        (
            "contact-normalise",
            json!({"email": ["e"], "invalid": "drop"}),
            "invalid must be one of",
        ),
        (
            "json-nest",
            json!({"fields": {"a": "b"}}),
            "target must name a column",
        ),
        (
            "lookup-enrich",
            json!({"key": "a", "target": "a", "lookup": {"x": "y"}}),
            "must be different columns",
        ),
        (
            "tokenise",
            json!({"columns": ["card"], "key": "short"}),
            "at least 16 characters",
        ),
    ] {
        let error = PluginStage::new(&engine, spec(name, config)).expect_err("bad config");
        let text = format!("{error:#}");
        assert!(
            text.contains("invalid-config") && text.contains(message),
            "{name}: {text}"
        );
    }

    // Bad input: an invalid-input error, to which the stage's on_error applies.
    let input = contacts();
    let mut strict = spec(
        "contact-normalise",
        json!({"email": ["email"], "invalid": "fail"}),
    );
    strict.on_error = OnError::Skip;
    let stage = PluginStage::new(&engine, strict).expect("stage");
    let text = failed(stage.process(input.clone()).expect("runs")).to_string();
    assert!(
        text.contains("invalid-input") && text.contains("not-an-address"),
        "{text}"
    );
    // A column of the wrong type (Zig) is invalid input too.
    let tokenise = PluginStage::new(
        &engine,
        spec("tokenise", json!({"columns": ["id"], "key": TOKEN_KEY})),
    )
    .expect("stage");
    let text = failed(tokenise.process(input).expect("runs")).to_string();
    assert!(
        text.contains("invalid-input") && text.contains("not text"),
        "{text}"
    );
}

const WAIT: Duration = Duration::from_secs(120);

/// What the chain makes of row `n` (see `row_values`): e-mail, phone, country name,
/// profile. Every seventh address is invalid and becomes null; DE is not in the lookup.
fn expected(n: i64) -> (Option<String>, String, Option<&'static str>, Json) {
    let email = (n % 7 != 0).then(|| format!("user{n}@example.com"));
    let phone = format!("+44207946{:04}", n % 10_000);
    let country = match n % 3 {
        0 => Some("United Kingdom"),
        1 => Some("France"),
        _ => None,
    };
    let mut profile = if n % 5 == 0 {
        json!({"tier": "gold"})
    } else {
        json!({})
    };
    let mut contact = serde_json::Map::new();
    if let Some(email) = &email {
        contact.insert("email".into(), json!(email));
    }
    contact.insert("phone".into(), json!(phone));
    profile["contact"] = Json::Object(contact);
    if let Some(country) = country {
        profile["country"] = json!(country);
    }
    (email, phone, country, profile)
}

const CARDS: [&str; 2] = ["4111-1111-1111-1234", "5500 0000 0000 0004"];

/// The SQL values of row `n`, as a writer inserts them.
fn row_values(n: i64) -> String {
    let email = if n % 7 == 0 {
        format!("'bad{n}'")
    } else {
        format!("'  User{n}@Example.COM '")
    };
    let profile = if n % 5 == 0 {
        "'{\"tier\": \"gold\"}'"
    } else {
        "NULL"
    };
    format!(
        "({n}, {email}, '020 7946 {:04}', '{}', NULL, '{}', {profile})",
        n % 10_000,
        ["GB", "FR", "DE"][usize::try_from(n % 3).expect("small")],
        CARDS[usize::try_from(n % 2).expect("small")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_languages_chained_deliver_every_row_to_kafka_under_a_writer() {
    let cluster = PgCluster::start().expect("postgres");
    let broker = KafkaCluster::start(1).expect("broker");
    let database = cluster.create_database("crm").await.expect("database");
    cluster.execute(&database, SETUP).await.expect("table");
    let topic = format!("{database}.public.contacts");
    broker.create_topic(&topic, 3, 1, &[]).expect("topic");
    broker
        .create_topic("weir.crm.state", 1, 1, &[])
        .expect("state topic");

    // The writer runs from before weir starts until the end: small transactions
    // before and while weir starts (their rows come from the snapshot or the stream),
    // then, once weir streams, one of 3000 rows, more small ones and updates.
    const SMALL: i64 = 600;
    const BIG: i64 = 3000;
    const UPDATED: i64 = 50;
    let (streaming_tx, streaming_rx) = tokio::sync::oneshot::channel::<()>();
    let writer = {
        let url = cluster.url(&database);
        tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("writer connects");
            tokio::spawn(connection);
            let insert = |ids: std::ops::RangeInclusive<i64>| {
                let rows: Vec<String> = ids.map(row_values).collect();
                format!("INSERT INTO contacts VALUES {}", rows.join(", "))
            };
            let mut streaming = Some(streaming_rx);
            let mut n = 1;
            while n <= SMALL {
                let last = (n + n % 9).min(SMALL);
                client
                    .batch_execute(&insert(n..=last))
                    .await
                    .expect("small insert");
                n = last + 1;
                if n > SMALL / 2
                    && let Some(signal) = streaming.take()
                {
                    signal.await.expect("weir streams");
                    client
                        .batch_execute(&insert(SMALL + 1..=SMALL + BIG))
                        .await
                        .expect("big insert");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Updates change the address: the chain runs on them too.
            client
                .batch_execute(&format!(
                    "UPDATE contacts SET email = upper(email) WHERE id <= {UPDATED}"
                ))
                .await
                .expect("update");
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;

    let stages: String = configs()
        .iter()
        .map(|(name, config)| {
            format!("  - name: {name}\n    wasm: {name}.wasm\n    config: {config}\n")
        })
        .collect();
    let spec = format!(
        "name: crm
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {slot}
    tables: [public.contacts]
    heartbeat: off
plugins:
{stages}sink:
  kafka:
    brokers: {brokers}
    linger_ms: 5
    format: json
",
        url = cluster.url(&database),
        slot = unique_name("slot"),
        brokers = broker.bootstrap_servers(),
    );
    let pipeline = RunningPipeline::start(&spec).expect("starts");
    pipeline.wait_streaming(WAIT).await.expect("streaming");
    streaming_tx.send(()).expect("the writer waits");
    writer.await.expect("the writer finished");
    let total = SMALL + BIG;
    // Rows inserted before the slot existed come from the snapshot, the rest from the
    // stream; a row may come from both (at least once), never from neither. Read
    // until every row and every update is there.
    pipeline
        .wait_for_messages(u64::try_from(total + UPDATED).expect("count"), WAIT)
        .await
        .expect("messages");
    let deadline = std::time::Instant::now() + WAIT;
    let records = loop {
        let records = read_topic(broker.bootstrap_servers(), &topic, WAIT).expect("read back");
        let mut ids = std::collections::BTreeSet::new();
        let mut updates = 0;
        for record in &records {
            let value: Json =
                serde_json::from_slice(record.payload.as_deref().expect("value")).expect("JSON");
            ids.insert(value["id"].as_i64().expect("id"));
            updates += usize::from(value["_op"] == "u");
        }
        let complete = ids.len() == usize::try_from(total).expect("count")
            && updates >= usize::try_from(UPDATED).expect("count");
        if complete || std::time::Instant::now() > deadline {
            break records;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    pipeline.stop().await.expect("clean stop");

    let mut latest: BTreeMap<i64, Json> = BTreeMap::new();
    let mut updates = 0;
    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    for record in &records {
        let value: Json =
            serde_json::from_slice(record.payload.as_deref().expect("value")).expect("JSON");
        let id = value["id"].as_i64().expect("id");
        let (email, phone, country, profile) = expected(id);
        assert_eq!(value["email"].as_str(), email.as_deref(), "{value}");
        assert_eq!(value["phone"].as_str(), Some(phone.as_str()), "{value}");
        assert_eq!(value["country_name"].as_str(), country, "{value}");
        // json and jsonb columns travel as embedded JSON or as text, by format.
        let nested: Json = match &value["profile"] {
            Json::String(text) => serde_json::from_str(text).expect("JSON"),
            other => other.clone(),
        };
        assert_eq!(nested, profile, "{value}");
        let card = CARDS[usize::try_from(id % 2).expect("small")];
        let token = value["card"].as_str().expect("card").to_owned();
        assert_token_of(&token, card);
        assert_eq!(
            tokens
                .entry(card.to_owned())
                .or_insert_with(|| token.clone()),
            &token,
            "one token per card"
        );
        updates += usize::from(value["_op"] == "u");
        latest.insert(id, value);
    }
    assert!(updates >= 50, "{updates} updates delivered");
    let missing: Vec<i64> = (1..=total).filter(|id| !latest.contains_key(id)).collect();
    assert!(missing.is_empty(), "rows never delivered: {missing:?}");
}

/// Thousands of calls, big and small, through each language's runtime: its garbage
/// collector must run (Go's collects between calls, never inside `cabi_realloc`,
/// where reading the clock would trap) and memory must stay bounded by the cap.
#[test]
fn each_language_plugin_survives_many_calls() {
    let engine = PluginEngine::with_default_cache().expect("engine");
    let big = weir_tests::orders_batch(4096);
    let small = weir_tests::orders_batch(1);
    let plugins = [
        (
            "lookup-enrich",
            json!({"key": "region", "target": "status",
                   "lookup": {"eu": "Europe", "us": "United States", "ap": "Asia Pacific"}}),
        ),
        ("contact-normalise", json!({"email": ["email"]})),
        ("tokenise", json!({"columns": ["email"], "key": TOKEN_KEY})),
        (
            "json-nest",
            json!({"target": "status", "fields": {"where.region": "region"}, "merge": false}),
        ),
    ];
    for (name, config) in plugins {
        let stage = PluginStage::new(&engine, spec(name, config)).expect("stage");
        let started = std::time::Instant::now();
        for call in 0..2000 {
            let rows = passed(stage.process(small.clone()).expect("runs")).num_rows();
            assert_eq!(rows, 1, "{name}: call {call}");
        }
        for _ in 0..40 {
            assert_eq!(
                passed(stage.process(big.clone()).expect("runs")).num_rows(),
                4096
            );
        }
        eprintln!(
            "{name}: 2000 one-row calls and 40 of 4096 rows in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
}
