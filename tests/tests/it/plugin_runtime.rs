//! The plugin runtime on real ChangeBatches from PostgreSQL: every shipped plugin,
//! the row adapter, limits (deadline, memory cap), the `on_error` policies and the
//! sandbox. Components come from `scripts/build-plugins.sh`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{Int32Type, Int64Type, UInt8Type};
use sha2::{Digest, Sha256};
use weir::batch::schema::{BEFORE, LEADING_METADATA_COLUMNS, metadata};
use weir::plugin::{
    CallError, DirGrant, Grants, Limits, OnError, PluginChain, PluginEngine, PluginError,
    PluginStage, StageSpec,
};
use weir_tests::{captured_batches, failed, passed, plugin_path, table_batch, text_column};

const SETUP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text, name text, notes text);
    ALTER TABLE customers REPLICA IDENTITY FULL;
    CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int, status text,
                         total numeric(10,2), region text, shard int, placed_at timestamptz);
";

/// Three transactions touching both tables: inserts with NULLs, updates (with a full
/// old image for customers), deletes (only the key for orders).
const CHANGES: [&str; 3] = [
    "INSERT INTO customers VALUES (1, 'Ann@Example.org', 'Ann', 'vip'), (2, NULL, 'Bob', NULL);
     INSERT INTO orders VALUES
       (10, 1, 'paid', 150.00, 'eu', 0, '2026-11-21 08:00:00+00'),
       (11, 1, 'paid', 99.99, 'us', 1, NULL),
       (12, 2, 'new', 500.00, NULL, NULL, '2026-11-21 09:00:00+00'),
       (13, 2, NULL, NULL, 'eu', 2, NULL)",
    "UPDATE customers SET email = 'bob@example.org' WHERE id = 2;
     UPDATE orders SET status = 'paid', total = 501.50 WHERE id = 12",
    "DELETE FROM orders WHERE id = 10; DELETE FROM customers WHERE id = 1",
];

/// The changes as weir's source batches them, concatenated per table.
struct Batches {
    customers: RecordBatch,
    orders: RecordBatch,
}

fn real_batches() -> Batches {
    let batches = captured_batches(SETUP, &CHANGES).expect("changes captured");
    let table = |name: &str| table_batch(&batches, name).expect("the table's batches");
    Batches {
        customers: table("customers"),
        orders: table("orders"),
    }
}

/// Asserts that `output` holds `input`'s columns unchanged, except those named.
fn assert_columns_kept(output: &RecordBatch, input: &RecordBatch, except: &[&str]) {
    for (index, field) in input.schema().fields().iter().enumerate() {
        if !except.contains(&field.name().as_str()) {
            assert_eq!(
                output.column(index),
                input.column(index),
                "column {}",
                field.name()
            );
            assert_eq!(
                output.schema().field(index),
                field.as_ref(),
                "field {}",
                field.name()
            );
        }
    }
}

fn engine() -> PluginEngine {
    PluginEngine::with_default_cache().expect("engine")
}

fn spec(plugin: &str, config: serde_json::Value) -> StageSpec {
    let mut spec = StageSpec::new(plugin, plugin_path(plugin));
    spec.config = config;
    spec
}

fn stage(engine: &PluginEngine, spec: StageSpec) -> PluginStage {
    PluginStage::new(engine, spec).unwrap_or_else(|e| panic!("{e} (run scripts/build-plugins.sh)"))
}

fn ids(batch: &RecordBatch) -> Vec<i64> {
    let column = batch.column_by_name("id").expect("id");
    match column.data_type() {
        arrow::datatypes::DataType::Int64 => column.as_primitive::<Int64Type>().values().to_vec(),
        _ => column
            .as_primitive::<Int32Type>()
            .values()
            .iter()
            .map(|v| i64::from(*v))
            .collect(),
    }
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    text_column(batch, column)
}

#[test]
fn sql_filter_selects_rows_of_its_table_and_keeps_every_column() {
    let batches = real_batches();
    let engine = engine();
    let mut filter = spec(
        "sql-filter",
        serde_json::json!({"where": "status = 'paid' AND total > 100 AND _op <> 'd'"}),
    );
    filter.tables = vec!["public.orders".parse().expect("selector")];
    let chain = PluginChain::new(&engine, vec![filter]).expect("chain");

    let output = chain
        .process(batches.orders.clone())
        .expect("runs")
        .batch
        .expect("rows");
    // Insert of 10 (paid, 150) and the update of 12 (paid, 501.50); not 11 (99.99),
    // 13 (NULL status), the insert of 12 (new) or the delete of 10.
    let expected_mask: BooleanArray = (0..batches.orders.num_rows())
        .map(|row| {
            let op = batches
                .orders
                .column(0)
                .as_primitive::<UInt8Type>()
                .value(row);
            let id = ids(&batches.orders)[row];
            Some((op == b'c' && id == 10) || (op == b'u' && id == 12))
        })
        .collect();
    let expected = filter_record_batch(&batches.orders, &expected_mask).expect("filter");
    assert_eq!(output, expected, "same rows, every column and all metadata");
    assert_eq!(ids(&output), [10, 12]);

    // The stage selects orders only: customers pass untouched.
    let customers = chain
        .process(batches.customers.clone())
        .expect("runs")
        .batch
        .expect("rows");
    assert_eq!(customers, batches.customers);
}

#[test]
fn mask_hashes_new_and_old_images_and_leaves_the_rest() {
    let batches = real_batches();
    let engine = engine();
    let mask = stage(
        &engine,
        spec(
            "mask",
            serde_json::json!({"columns": ["email"], "method": "sha256", "salt": "pepper"}),
        ),
    );
    let input = &batches.customers;
    let output = passed(mask.process(input.clone()).expect("runs"));
    let sha = |text: &str| {
        Sha256::digest(format!("pepper{text}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let expected: Vec<Option<String>> = strings(input, "email")
        .iter()
        .map(|v| v.as_deref().map(sha))
        .collect();
    assert_eq!(strings(&output, "email"), expected);
    assert!(
        expected.iter().any(Option::is_none),
        "a NULL email stays NULL"
    );

    let before_in = input.column_by_name(BEFORE).expect("before").as_struct();
    let before_out = output.column_by_name(BEFORE).expect("before").as_struct();
    let old_emails: Vec<Option<String>> = before_in
        .column_by_name("email")
        .expect("old email")
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(sha))
        .collect();
    let masked_old: Vec<Option<String>> = before_out
        .column_by_name("email")
        .expect("old email")
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect();
    assert_eq!(masked_old, old_emails);
    assert_eq!(
        before_out.nulls(),
        before_in.nulls(),
        "old images stay where they were"
    );

    // Everything else is the input, in the input's order, with its metadata.
    assert_eq!(output.schema().metadata(), input.schema().metadata());
    let names = |b: &RecordBatch| {
        b.schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&output), names(input));
    assert_columns_kept(&output, input, &["email", BEFORE]);
    assert_eq!(
        output
            .schema()
            .field_with_name("email")
            .expect("email")
            .metadata()
            .get(metadata::PG_TYPE),
        Some(&"text".to_owned())
    );
}

#[test]
fn project_and_route_reshape_and_address_rows() {
    let batches = real_batches();
    let engine = engine();
    let chain = PluginChain::new(
        &engine,
        vec![
            spec("project", serde_json::json!({"drop": ["notes"], "rename": {"name": "full_name"}})),
            spec(
                "route",
                serde_json::json!({"topic": "{schema}.{table}.{region}", "key": "{id}", "partition": "shard"}),
            ),
        ],
    )
    .expect("chain");

    // customers have no `region`: route fails on them, and `fail` says so.
    let error = chain
        .process(batches.customers.clone())
        .expect_err("no region column");
    assert!(error.to_string().contains("region"), "{error}");

    let orders = chain
        .process(batches.orders.clone())
        .expect("runs")
        .batch
        .expect("rows");
    assert_eq!(orders.num_rows(), batches.orders.num_rows());
    let topics = strings(&orders, "_topic");
    let regions = strings(&batches.orders, "region");
    for (topic, region) in topics.iter().zip(&regions) {
        assert_eq!(
            topic.as_deref(),
            Some(format!("public.orders.{}", region.clone().unwrap_or_default()).as_str())
        );
    }
    let keys: Vec<String> = orders
        .column_by_name("_key")
        .expect("key")
        .as_binary::<i32>()
        .iter()
        .map(|k| String::from_utf8(k.expect("key").to_vec()).expect("utf8"))
        .collect();
    let expected_keys: Vec<String> = ids(&batches.orders).iter().map(i64::to_string).collect();
    assert_eq!(keys, expected_keys);
    let partitions = orders.column_by_name("_partition").expect("partition");
    assert_eq!(
        partitions,
        batches.orders.column_by_name("shard").expect("shard")
    );
    // Metadata columns lead, unchanged.
    for index in 0..LEADING_METADATA_COLUMNS {
        assert_eq!(orders.column(index), batches.orders.column(index));
    }

    let project = stage(
        &engine,
        spec(
            "project",
            serde_json::json!({"drop": ["notes"], "rename": {"name": "full_name"}}),
        ),
    );
    let customers = passed(project.process(batches.customers.clone()).expect("runs"));
    let names: Vec<String> = customers
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert!(
        names.contains(&"full_name".to_owned()) && !names.contains(&"notes".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        strings(&customers, "full_name"),
        strings(&batches.customers, "name")
    );
    let arrow::datatypes::DataType::Struct(children) = customers
        .schema()
        .field_with_name(BEFORE)
        .expect("before")
        .data_type()
        .clone()
    else {
        panic!("_before is a struct");
    };
    let children: Vec<&str> = children.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(children, ["id", "email", "full_name"]);
}

#[test]
fn the_row_adapter_round_trips_every_column() {
    let batches = real_batches();
    let engine = engine();
    let identity = stage(&engine, spec("row-identity", serde_json::json!({})));
    assert_eq!(identity.world(), "row");
    for input in [&batches.customers, &batches.orders] {
        let output = passed(identity.process(input.clone()).expect("runs"));
        assert_eq!(output.schema(), input.schema());
        assert_columns_kept(&output, input, &[]);
    }
}

#[test]
fn op_filter_drops_deletes_across_tables() {
    let batches = real_batches();
    let engine = engine();
    let chain = PluginChain::new(
        &engine,
        vec![spec("op-filter", serde_json::json!({"skip": ["d"]}))],
    )
    .expect("chain");
    for input in [&batches.customers, &batches.orders] {
        let output = chain
            .process(input.clone())
            .expect("runs")
            .batch
            .expect("rows");
        let ops = output.column(0).as_primitive::<UInt8Type>();
        assert!(ops.values().iter().all(|op| *op != b'd'));
        let deletes = input
            .column(0)
            .as_primitive::<UInt8Type>()
            .values()
            .iter()
            .filter(|op| **op == b'd')
            .count();
        assert_eq!(output.num_rows(), input.num_rows() - deletes);
    }
}

fn limits(timeout: Duration, memory_bytes: usize) -> Limits {
    Limits {
        timeout,
        memory_bytes,
    }
}

#[test]
fn a_plugin_that_loops_is_stopped_at_its_deadline() {
    let batches = real_batches();
    let engine = engine();
    let mut looping = spec("misbehave", serde_json::json!({"mode": "loop"}));
    looping.limits = limits(Duration::from_millis(200), 64 << 20);
    let looping = stage(&engine, looping);
    let started = Instant::now();
    let error = failed(looping.process(batches.orders.clone()).expect("runs"));
    let elapsed = started.elapsed();
    assert_eq!(error, CallError::Timeout(Duration::from_millis(200)));
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(2),
        "{elapsed:?}"
    );
}

#[test]
fn a_plugin_that_allocates_without_bound_is_stopped_at_its_cap() {
    let batches = real_batches();
    let engine = engine();
    let mut hoarder = spec("misbehave", serde_json::json!({"mode": "alloc"}));
    hoarder.limits = limits(Duration::from_secs(10), 32 << 20);
    let hoarder = stage(&engine, hoarder);
    let error = failed(hoarder.process(batches.orders.clone()).expect("runs"));
    assert_eq!(error, CallError::MemoryCap(32 << 20));
}

#[test]
fn a_trap_follows_each_on_error_policy() {
    let batches = real_batches();
    let engine = engine();
    let with_policy = |on_error: OnError| {
        let mut trap = spec("misbehave", serde_json::json!({"mode": "trap-on-delete"}));
        trap.on_error = on_error;
        PluginChain::new(&engine, vec![trap]).expect("chain")
    };
    // orders holds a delete: the plugin traps on it.
    let fail = with_policy(OnError::Fail);
    let error = fail
        .process(batches.orders.clone())
        .expect_err("fails the pipeline");
    assert!(error.to_string().contains("trapped"), "{error}");
    // Issue 15, item 6: the guest's panic message is part of the error.
    assert!(
        format!("{error:#}").contains("misbehave: a delete"),
        "{error:#}"
    );

    let skip = with_policy(OnError::Skip);
    let output = skip.process(batches.orders.clone()).expect("skips");
    assert!(output.batch.is_none() && output.dead_letter.is_none());
    assert!(matches!(output.skipped, Some((_, CallError::Trap(_)))));

    let dead_letter = with_policy(OnError::DeadLetter);
    let output = dead_letter
        .process(batches.orders.clone())
        .expect("dead-letters");
    let letter = output.dead_letter.expect("a dead letter");
    assert_eq!(letter.batch, batches.orders, "the rows the stage received");
    assert!(matches!(letter.error, CallError::Trap(_)));
    assert!(output.batch.is_none());

    // The trapped instance was replaced: a batch without deletes passes.
    let no_deletes = {
        let ops = batches.orders.column(0).as_primitive::<UInt8Type>();
        let mask: BooleanArray = ops.iter().map(|op| Some(op != Some(b'd'))).collect();
        filter_record_batch(&batches.orders, &mask).expect("filter")
    };
    for chain in [&fail, &skip, &dead_letter] {
        let output = chain.process(no_deletes.clone()).expect("runs");
        assert_eq!(output.batch.as_ref(), Some(&no_deletes));
    }
}

#[test]
fn a_plugin_error_is_reported_and_the_instance_kept() {
    let batches = real_batches();
    let engine = engine();
    let erring = stage(
        &engine,
        spec("misbehave", serde_json::json!({"mode": "error"})),
    );
    for _ in 0..2 {
        let error = failed(erring.process(batches.orders.clone()).expect("runs"));
        assert_eq!(
            error,
            CallError::Reported {
                kind: "failed",
                message: "misbehave: error on purpose".into()
            }
        );
    }
}

fn probe(
    engine: &PluginEngine,
    batch: &RecordBatch,
    path: &str,
    var: &str,
    grants: Grants,
) -> String {
    let mut spec = spec(
        "misbehave",
        serde_json::json!({"mode": "probe", "path": path, "var": var}),
    );
    spec.grants = grants;
    let output = passed(stage(engine, spec).process(batch.clone()).expect("runs"));
    strings(&output, "probe")[0].clone().expect("probe text")
}

#[test]
fn a_plugin_cannot_read_files_the_environment_or_the_clock_unless_granted() {
    let batches = real_batches();
    let engine = engine();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secret.txt"), "s3cr3t").expect("write");
    let path = dir.path().join("secret.txt").to_string_lossy().into_owned();
    let var = "HOME";
    let home = std::env::var(var).expect("HOME is set");

    let denied = probe(&engine, &batches.orders, &path, var, Grants::default());
    assert!(denied.contains("file: denied"), "{denied}");
    assert!(!denied.contains("s3cr3t"), "{denied}");
    assert!(denied.contains("env: denied"), "{denied}");
    assert!(denied.contains("clock: 0"), "{denied}");
    let etc = probe(
        &engine,
        &batches.orders,
        "/etc/passwd",
        var,
        Grants::default(),
    );
    assert!(etc.contains("file: denied"), "{etc}");

    let granted = probe(
        &engine,
        &batches.orders,
        &path,
        var,
        Grants {
            env: vec![var.to_owned()],
            dirs: vec![DirGrant {
                host: dir.path().to_owned(),
                guest: None,
                writable: false,
            }],
            clock: true,
        },
    );
    assert!(granted.contains("file: read \"s3cr3t\""), "{granted}");
    assert!(granted.contains(&format!("env: {home}")), "{granted}");
    assert!(!granted.contains("clock: 0"), "{granted}");
}

#[test]
fn components_are_cached_by_content_and_bad_files_are_named() {
    let cache = tempfile::tempdir().expect("tempdir");
    let engine = PluginEngine::new(Some(cache.path().to_owned())).expect("engine");
    let spec = spec("op-filter", serde_json::json!({"keep": ["c"]}));
    let cold = Instant::now();
    stage(&engine, spec.clone());
    let cold = cold.elapsed();
    let cached: Vec<_> = std::fs::read_dir(cache.path())
        .expect("cache dir")
        .flatten()
        .collect();
    assert_eq!(cached.len(), 1, "one compiled artifact");
    let warm = Instant::now();
    let again = PluginEngine::new(Some(cache.path().to_owned())).expect("engine");
    stage(&again, spec.clone());
    let warm = warm.elapsed();
    assert!(
        warm < cold,
        "loading from the cache ({warm:?}) beats compiling ({cold:?})"
    );

    let not_wasm = cache.path().join("not.wasm");
    std::fs::write(&not_wasm, b"\0asm\x01\0\0\0").expect("write");
    let mut bad = spec.clone();
    bad.wasm = not_wasm;
    let error = PluginStage::new(&engine, bad).expect_err("a core module is not a component");
    assert!(matches!(error, PluginError::Compile { .. }), "{error}");

    let mut missing = spec.clone();
    missing.wasm = cache.path().join("missing.wasm");
    let error = PluginStage::new(&engine, missing).expect_err("missing");
    assert!(matches!(error, PluginError::Read { .. }), "{error}");

    let mut rejected = spec;
    rejected.config = serde_json::json!({"keep": ["upsert"]});
    let error = PluginStage::new(&engine, rejected).expect_err("bad config");
    let message = error.to_string();
    assert!(
        message.contains("invalid-config") && message.contains("upsert"),
        "{message}"
    );
}

#[test]
fn stages_keep_per_table_state_apart() {
    // Two tables with different schemas through one stage instance: each is prepared
    // once and keeps its own plan (sql-filter reads different columns of each).
    let engine = engine();
    let filter = stage(
        &engine,
        spec("sql-filter", serde_json::json!({"where": "id > 1"})),
    );
    let table = |name: &str, ids: Vec<i32>, extra: &str| {
        let schema = arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("_op", arrow::datatypes::DataType::UInt8, false),
            arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int32, false),
            arrow::datatypes::Field::new(extra, arrow::datatypes::DataType::Utf8, true),
        ])
        .with_metadata(HashMap::from([
            (metadata::SCHEMA.to_owned(), "public".to_owned()),
            (metadata::TABLE.to_owned(), name.to_owned()),
        ]));
        let rows = ids.len();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(arrow::array::UInt8Array::from(vec![b'c'; rows])),
                Arc::new(arrow::array::Int32Array::from(ids)),
                Arc::new(arrow::array::StringArray::from(vec![Some("x"); rows])),
            ],
        )
        .expect("batch")
    };
    for _ in 0..3 {
        let a = passed(
            filter
                .process(table("a", vec![1, 2, 3], "name"))
                .expect("runs"),
        );
        let b = passed(
            filter
                .process(table("b", vec![5, 0], "city"))
                .expect("runs"),
        );
        assert_eq!(ids(&a), [2, 3]);
        assert_eq!(ids(&b), [5]);
        assert_eq!(b.schema().field(2).name(), "city");
    }
}

const TYPED_SETUP: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'happy');
    CREATE TABLE typed (
        id int PRIMARY KEY, c_int2 smallint, c_int8 bigint, c_numeric numeric,
        c_numeric_p numeric(12,2), c_real real, c_double double precision, c_bool boolean,
        c_bytea bytea, c_date date, c_time time, c_ts timestamp, c_tstz timestamptz,
        c_interval interval, c_uuid uuid, c_jsonb jsonb, c_enum mood,
        c_ints int[], c_texts text[], c_floats float8[], c_bools boolean[]
    );
    ALTER TABLE typed REPLICA IDENTITY FULL;
";

const TYPED_ROWS: [&str; 3] = [
    r#"INSERT INTO typed VALUES
    (1, -32768, 9223372036854775807, 1234567890.123456789, 129.90, 1.5, 'NaN', true,
     '\x01ab', '2026-11-21', '07:01:14.951387', '2026-11-21 07:01:14.951387', '2026-01-01 00:00:00+05:30',
     '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', 'happy',
     '{1,2,NULL}', '{"a b","c\"d",NULL,"","\\"}', '{1.5,-Infinity,NaN}', '{t,f,NULL}'),
    (2, NULL, NULL, 'NaN', -0.01, '-Infinity', 1e300, false,
     '\x', '0044-03-15 BC', '24:00:00', '0044-03-15 12:00:00 BC', 'infinity',
     '-1 year -2 mons +3 days -04:05:06.000001', NULL, 'null', 'sad',
     '{}', '{}', '{}', '{}'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"#,
    "UPDATE typed SET c_int2 = 7, c_interval = '0' WHERE id = 2",
    "DELETE FROM typed WHERE id = 1",
];

#[test]
fn the_row_adapter_round_trips_every_mapped_type() {
    let batches = captured_batches(TYPED_SETUP, &TYPED_ROWS).expect("changes captured");
    let batch = table_batch(&batches, "typed").expect("the table's batches");
    assert_eq!(batch.num_rows(), 5);
    let engine = engine();
    let identity = stage(&engine, spec("row-identity", serde_json::json!({})));
    let output = passed(identity.process(batch.clone()).expect("runs"));
    assert_eq!(output.schema(), batch.schema());
    assert_columns_kept(&output, &batch, &[]);
}

#[test]
fn the_c_plugin_rewrites_its_columns_in_both_images() {
    let batches = real_batches();
    let engine = engine();
    let lowercase = stage(
        &engine,
        spec("c-lowercase", serde_json::json!({"columns": ["email"]})),
    );
    assert_eq!(lowercase.world(), "row");
    let input = &batches.customers;
    let output = passed(lowercase.process(input.clone()).expect("runs"));
    let lower = |values: Vec<Option<String>>| -> Vec<Option<String>> {
        values
            .into_iter()
            .map(|v| v.map(|v| v.to_ascii_lowercase()))
            .collect()
    };
    assert_eq!(strings(&output, "email"), lower(strings(input, "email")));
    assert!(
        strings(input, "email")
            .iter()
            .flatten()
            .any(|e| e.chars().any(char::is_uppercase))
    );
    let old = |batch: &RecordBatch| -> Vec<Option<String>> {
        batch
            .column_by_name(BEFORE)
            .expect("before")
            .as_struct()
            .column_by_name("email")
            .expect("email")
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_owned))
            .collect()
    };
    assert_eq!(old(&output), lower(old(input)));
    assert_eq!(output.schema(), input.schema());
    assert_columns_kept(&output, input, &["email", BEFORE]);
    // A table without the column is skipped without a call.
    assert_eq!(
        passed(lowercase.process(batches.orders.clone()).expect("runs")),
        batches.orders
    );

    let error = PluginStage::new(
        &engine,
        spec("c-lowercase", serde_json::json!({"cols": []})),
    )
    .expect_err("bad config");
    assert!(error.to_string().contains("invalid-config"), "{error}");
}

#[test]
fn dead_letters_reach_their_topic_with_the_error_in_headers() {
    let batches = real_batches();
    let engine = engine();
    let mut trap = spec("misbehave", serde_json::json!({"mode": "trap"}));
    trap.on_error = OnError::DeadLetter;
    let chain = PluginChain::new(&engine, vec![trap]).expect("chain");
    let letter = chain
        .process(batches.customers.clone())
        .expect("dead-letters")
        .dead_letter
        .expect("a dead letter");

    let broker = weir_tests::KafkaCluster::start(1).expect("broker");
    broker.create_topic("weir.dlq", 1, 1, &[]).expect("topic");
    let producer = weir::pipeline::dead_letter::DeadLetterProducer::new(
        broker.bootstrap_servers(),
        "weir.dlq",
        &[],
    )
    .expect("producer");
    let sent = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(producer.send(&letter))
        .expect("acknowledged");
    assert_eq!(sent, batches.customers.num_rows());

    let records = weir_tests::read_topic(
        broker.bootstrap_servers(),
        "weir.dlq",
        Duration::from_secs(30),
    )
    .expect("read");
    assert_eq!(records.len(), sent);
    let expected = weir::plugin::rows_as_json(&batches.customers).expect("json");
    for (record, row) in records.iter().zip(&expected) {
        let value: serde_json::Value =
            serde_json::from_str(&record.payload_text().expect("payload")).expect("JSON");
        assert_eq!(value, serde_json::Value::Object(row.clone()));
        let header = |name: &str| record.header_text(name);
        assert_eq!(header("weir.dlq.stage").as_deref(), Some("misbehave"));
        assert_eq!(header("weir.dlq.error.kind").as_deref(), Some("trap"));
        assert!(header("weir.dlq.error").is_some_and(|e| e.contains("trapped")));
        assert_eq!(header("weir.table").as_deref(), Some("public.customers"));
        assert_eq!(header("weir.op").as_deref(), row["_op"].as_str());
    }
    // An independent client reads the same rows.
    let kcat = weir_tests::kcat_read(broker.bootstrap_servers(), "weir.dlq").expect("kcat");
    let kcat_values: Vec<serde_json::Value> = kcat
        .iter()
        .map(|r| serde_json::from_str(r.payload.as_deref().expect("payload")).expect("JSON"))
        .collect();
    let ours: Vec<serde_json::Value> = expected
        .into_iter()
        .map(serde_json::Value::Object)
        .collect();
    assert_eq!(kcat_values, ours);
}
