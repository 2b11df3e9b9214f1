//! Every PostgreSQL type on weir's list round-trips through pgoutput into Arrow: for
//! inserts, updates and deletes, each Arrow value equals what PostgreSQL says about
//! the same row.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, IntervalMonthDayNanoType, Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
    UInt32Type,
};
use arrow::record_batch::RecordBatch;
use weir::batch::schema::{BEFORE, LEADING_METADATA_COLUMNS, UNCHANGED, metadata};
use weir::source::BatchLimits;
use weir::source::BatcherOutput;
use weir::source::replication::SESSION_SETTINGS;
use weir_tests::{PgCluster, ReplicationFixture, batch_messages, batch_outputs, read_transactions};

pub(crate) const SETUP: &str = "
    CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
    CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
    CREATE TYPE pair AS (a int, b text);
    CREATE TABLE everything (
        id int PRIMARY KEY,
        c_int2 smallint, c_int4 integer, c_int8 bigint,
        c_numeric numeric, c_numeric_p numeric(12,2), c_numeric_neg numeric(5,-2),
        c_real real, c_double double precision, c_money money,
        c_char char(5), c_varchar varchar(20), c_text text, c_bytea bytea, c_bool boolean,
        c_date date, c_time time, c_timetz timetz, c_ts timestamp, c_tstz timestamptz,
        c_interval interval, c_uuid uuid, c_json json, c_jsonb jsonb, c_xml xml,
        c_inet inet, c_cidr cidr, c_macaddr macaddr, c_macaddr8 macaddr8,
        c_bit bit(4), c_varbit varbit,
        c_point point, c_line line, c_lseg lseg, c_box box, c_path path, c_polygon polygon, c_circle circle,
        c_tsvector tsvector, c_tsquery tsquery,
        c_enum mood, c_domain positive_int, c_composite pair,
        c_int_array int[], c_text_array text[], c_matrix int[][], c_tstz_array timestamptz[],
        _underscored text
    );
    ALTER TABLE everything REPLICA IDENTITY FULL;
    CREATE SCHEMA snapshot;
";

pub(crate) const INSERT: &str = r#"
    INSERT INTO everything VALUES
    (1, 1, 2, 3, 1234567890.123456789, 129.90, 12300, 1.5, 0.1, 12.34,
     'ab', 'varchar', 'plain text', '\x01ab', true,
     '2026-11-21', '07:01:14.951387', '12:00:00+05:30', '2026-11-21 07:01:14.951387', '2026-01-01 00:00:00+05:30',
     '1 year 2 mons 3 days 04:05:06.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2]}', '{"b": {"c": null}}', '<x>1</x>',
     '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
     B'1010', B'10101',
     '(1,2)', '{1,-1,0}', '[(0,0),(1,1)]', '((0,0),(1,1))', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '<(0,0),5>',
     'a fat cat sat', 'fat & (cat | rat)',
     'happy', 7, ROW(1, 'one'),
     '{1,2,NULL}', '{"a b","c\"d",NULL,""}', '{{1,2},{3,4}}', '{"2026-01-01 00:00:00+00","infinity"}',
     'kept'),
    (2, -32768, -2147483648, -9223372036854775808, 'NaN', 'NaN', -99900, 'NaN', '-Infinity', -0.5,
     '', 'ünïcødé 🦀', E'quote '' newline \n tab \t backslash \\', '\x', false,
     '0044-03-15 BC', '24:00:00', '00:00:00-12', '0044-03-15 12:00:00 BC', 'infinity',
     '-1 year -2 mons +3 days -04:05:06.000001', '00000000-0000-0000-0000-000000000000', '[]', '{}', '<y/>',
     '::1', '::/0', '00:00:00:00:00:00', 'ff:ff:ff:ff:ff:ff:ff:ff',
     B'0000', B'',
     '(-1.5,1e+300)', '{0,1,0}', '[(0,0),(0,0)]', '((0,0),(0,0))', '((0,0))', '((0,0))', '<(0,0),0>',
     '', 'a',
     'sad', 1, ROW(NULL, NULL),
     '{}', '{}', '{{{1}}}', '{}',
     NULL),
    (3, 32767, 2147483647, 9223372036854775807, '-Infinity', 9999999999.99, 0, '3.4028235e38', '1e300', 0,
     'xyzzy', '', '', '\xdeadbeef', NULL,
     '-infinity', '00:00:00', '23:59:59.999999+14', '294276-12-31 23:59:59.999999', '-infinity',
     '0', NULL, 'null', 'null', NULL,
     NULL, NULL, NULL, NULL,
     NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL,
     NULL, NULL, NULL,
     NULL, NULL, NULL, NULL,
     NULL);
    INSERT INTO everything (id) VALUES (4);
"#;

pub(crate) const UPDATE: &str = "
    UPDATE everything SET
        c_int4 = c_int4 / 2, c_text = coalesce(c_text, '') || ' (updated)', c_numeric_p = 1.25,
        c_tstz = '1999-12-31 23:59:59+00', c_interval = '-1 day', c_jsonb = '{\"updated\": true}',
        c_int_array = '{9}', c_bytea = '\\xff';
";

/// The latest finite timestamp weir writes (microseconds from 1970).
const LATEST_MICROS: i64 = i64::MAX - 1;

/// The SQL expression whose text a column's Arrow values are compared with, chosen by
/// the Arrow type weir picked.
fn expected_expression(column: &str, data_type: &DataType) -> String {
    let c = format!("\"{column}\"");
    // Whole seconds and the microseconds apart: `extract` gives a double before
    // PostgreSQL 14, which prints large values in exponent form and rounds them.
    let micros = |expression: &str| {
        format!(
            "CASE WHEN {c} IS NULL THEN NULL WHEN {c} = 'infinity' THEN 'inf' WHEN {c} = '-infinity' THEN '-inf' \
             ELSE least(round(extract(epoch from date_trunc('second', {expression}))::numeric * 1000000 \
                   + extract(microseconds from {expression})::numeric % 1000000), {LATEST_MICROS})::text END"
        )
    };
    match data_type {
        DataType::Date32 => format!(
            "CASE WHEN {c} IS NULL THEN NULL WHEN {c} = 'infinity' THEN 'inf' WHEN {c} = '-infinity' THEN '-inf' \
             ELSE ({c} - date '1970-01-01')::text END"
        ),
        DataType::Timestamp(..) => micros(&c),
        DataType::Time64(_) => format!("round(extract(epoch from {c}) * 1000000)::text"),
        DataType::Interval(_) => format!(
            "(extract(year from {c}) * 12 + extract(month from {c}))::text || ',' || extract(day from {c})::text || ',' || \
             ((extract(hour from {c}) * 3600 + extract(minute from {c}) * 60) * 1000000000 \
              + extract(microseconds from {c}) * 1000)::bigint::text"
        ),
        DataType::Binary => format!("encode({c}, 'hex')"),
        DataType::Boolean => format!("{c}::text"),
        // Multi-dimensional values as their elements in storage order.
        DataType::List(_) => format!(
            "CASE WHEN {c} IS NULL THEN NULL ELSE coalesce((SELECT json_agg(e ORDER BY n) \
             FROM unnest({c}) WITH ORDINALITY AS u(e, n)), '[]')::text END"
        ),
        // NaN has no decimal form: null.
        DataType::Decimal128(..) => {
            format!("CASE WHEN {c} IS NULL OR {c} = 'NaN' THEN NULL ELSE format('%s', {c}) END")
        }
        // The type's output function, as pgoutput uses it (`::text` would be a real
        // cast for some types, e.g. it trims char(n)'s padding).
        // `num_nulls`, not `IS NULL`: a composite of nulls `IS NULL` in SQL, yet it is a
        // value, and pgoutput sends it (as `(,)`).
        _ => format!("CASE WHEN num_nulls({c}) = 1 THEN NULL ELSE format('%s', {c}) END"),
    }
}

/// The same rendering of an Arrow value.
fn rendered(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    let infinite_or = |value: i64, max: i64, min: i64| match value {
        v if v == max => "inf".to_owned(),
        v if v == min => "-inf".to_owned(),
        v => v.to_string(),
    };
    Some(match array.data_type() {
        DataType::Boolean => array.as_boolean().value(row).to_string(),
        DataType::Int16 => array.as_primitive::<Int16Type>().value(row).to_string(),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).to_string(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).to_string(),
        DataType::UInt32 => array.as_primitive::<UInt32Type>().value(row).to_string(),
        DataType::Float32 => float_text(f64::from(array.as_primitive::<Float32Type>().value(row))),
        DataType::Float64 => float_text(array.as_primitive::<Float64Type>().value(row)),
        DataType::Decimal128(..) => array.as_primitive::<Decimal128Type>().value_as_string(row),
        DataType::Date32 => {
            let days = i64::from(array.as_primitive::<Date32Type>().value(row));
            infinite_or(days, i64::from(i32::MAX), i64::from(i32::MIN))
        }
        DataType::Time64(TimeUnit::Microsecond) => array
            .as_primitive::<Time64MicrosecondType>()
            .value(row)
            .to_string(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => infinite_or(
            array.as_primitive::<TimestampMicrosecondType>().value(row),
            i64::MAX,
            i64::MIN,
        ),
        DataType::Interval(_) => {
            let v = array.as_primitive::<IntervalMonthDayNanoType>().value(row);
            format!("{},{},{}", v.months, v.days, v.nanoseconds)
        }
        DataType::Binary => array
            .as_binary::<i32>()
            .value(row)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        DataType::Utf8 => array.as_string::<i32>().value(row).to_owned(),
        DataType::List(_) => {
            let elements = array.as_list::<i32>().value(row);
            let json: Vec<serde_json::Value> = (0..elements.len())
                .map(|i| match rendered(elements.as_ref(), i) {
                    None => serde_json::Value::Null,
                    Some(text) => match elements.data_type() {
                        DataType::Utf8 => serde_json::Value::String(text),
                        _ => serde_json::from_str(&text).expect("a JSON number or boolean"),
                    },
                })
                .collect();
            serde_json::Value::Array(json).to_string()
        }
        other => panic!("unexpected Arrow type {other}"),
    })
}

/// Floats are compared as numbers (PostgreSQL's text and Rust's differ in spelling).
fn float_text(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{value:e}")
    }
}

/// PostgreSQL's float text, parsed at the column's own width.
fn normalise_float(text: &str, data_type: &DataType) -> String {
    let value = match data_type {
        DataType::Float32 => text.parse::<f32>().map(f64::from),
        _ => text.parse::<f64>(),
    };
    value.map_or_else(|_| text.to_owned(), float_text)
}

/// A copy of the table's rows at one moment, in a schema the publication ignores.
async fn snapshot_state(fixture: &ReplicationFixture, name: &str) {
    fixture
        .sql(&format!(
            "CREATE TABLE snapshot.{name} AS SELECT * FROM everything"
        ))
        .await
        .expect("snapshot");
}

/// Expected text per (id, field name) of a snapshot table, for the batch's Arrow types.
async fn expected_rows(
    fixture: &ReplicationFixture,
    state: &str,
    batch: &RecordBatch,
) -> HashMap<i32, HashMap<String, Option<String>>> {
    let schema = batch.schema();
    let user_fields: Vec<_> = schema
        .fields()
        .iter()
        .skip(LEADING_METADATA_COLUMNS)
        .filter(|f| f.name() != BEFORE && f.name() != UNCHANGED)
        .cloned()
        .collect();
    let select: Vec<String> = user_fields
        .iter()
        .map(|field| {
            let column = field
                .metadata()
                .get(metadata::COLUMN_NAME)
                .unwrap_or(field.name());
            expected_expression(column, field.data_type())
        })
        .collect();
    let client = fixture
        .cluster
        .connect(&fixture.database)
        .await
        .expect("connect");
    for (name, value) in SESSION_SETTINGS {
        client
            .batch_execute(&format!("SET \"{name}\" = '{value}'"))
            .await
            .expect("SET");
    }
    let rows = client
        .query(
            &format!("SELECT id, {} FROM snapshot.{state}", select.join(", ")),
            &[],
        )
        .await
        .expect("expected values");
    rows.iter()
        .map(|row| {
            let values = user_fields
                .iter()
                .enumerate()
                .map(|(i, field)| (field.name().clone(), row.get::<_, Option<String>>(i + 1)))
                .collect();
            (row.get::<_, i32>(0), values)
        })
        .collect()
}

fn assert_image(
    batch: &RecordBatch,
    row: usize,
    columns: &[std::sync::Arc<dyn Array>],
    names: &[String],
    expected: &HashMap<String, Option<String>>,
    what: &str,
) {
    for (array, name) in columns.iter().zip(names) {
        let got = rendered(array.as_ref(), row);
        let mut want = expected
            .get(name)
            .unwrap_or_else(|| panic!("no expectation for {name}"))
            .clone();
        if matches!(array.data_type(), DataType::List(_)) {
            // Compare as JSON values: spelling of numbers may differ, values may not.
            let json = |t: &String| serde_json::from_str::<serde_json::Value>(t).expect("JSON");
            assert_eq!(
                got.as_ref().map(json),
                want.as_ref().map(json),
                "{what}, column {name}, row {row}"
            );
            continue;
        }
        if matches!(array.data_type(), DataType::Float32 | DataType::Float64) {
            want = want.map(|t| normalise_float(&t, array.data_type()));
        }
        assert_eq!(
            got,
            want,
            "{what}, column {name}, row {row} of a batch with schema version {:?}",
            batch.schema().metadata().get(metadata::SCHEMA_VERSION)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_round_trips_through_inserts_updates_and_deletes() {
    let cluster = PgCluster::start().expect("cluster");
    // A negative numeric scale is new in PostgreSQL 15; before it the column keeps
    // the same values with scale 0.
    let major = cluster.major_version().await.expect("version");
    let setup = if major >= 15 {
        SETUP.to_owned()
    } else {
        SETUP.replace("numeric(5,-2)", "numeric(7,0)")
    };
    // numeric learned infinities in PostgreSQL 14; before, row 3 keeps the extreme
    // of what numeric can hold instead.
    let insert = if major >= 14 {
        INSERT.to_owned()
    } else {
        INSERT.replace(
            "9223372036854775807, '-Infinity',",
            "9223372036854775807, '-1e300',",
        )
    };
    let fixture = ReplicationFixture::new(cluster, &setup, "TABLE everything")
        .await
        .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");

    fixture.sql(&insert).await.expect("insert");
    snapshot_state(&fixture, "inserted").await;
    fixture.sql(UPDATE).await.expect("update");
    snapshot_state(&fixture, "updated").await;
    fixture.sql("DELETE FROM everything").await.expect("delete");

    // Three transactions reach the stream: the inserts (one script, one transaction),
    // the update and the delete. The snapshot copies are not published, and
    // PostgreSQL 15 skips the empty transactions they leave; before 15 they come as
    // a BEGIN and a COMMIT each, between the three.
    let transactions = if major >= 15 { 3 } else { 5 };
    let messages = read_transactions(&mut stream, transactions)
        .await
        .expect("stream");
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(rows, 12, "4 inserts, 4 updates, 4 deletes");

    // Values PostgreSQL allows that a column's Arrow type cannot hold keep the
    // column's type (issue 20): the NaN in numeric(12,2) (row 2) is null, the 2-D and
    // 3-D arrays in int[][] (rows 1, 2) are their elements, and PostgreSQL's largest
    // timestamp (row 3), past 64 bits of microseconds from 1970, is the latest finite
    // one. One schema version, one batch.
    let versions: Vec<(String, String, String)> = batches
        .iter()
        .map(|b| {
            let schema = b.schema();
            let kind = |name: &str| {
                schema
                    .field_with_name(name)
                    .expect("column")
                    .data_type()
                    .to_string()
            };
            (
                schema.metadata()[metadata::SCHEMA_VERSION].clone(),
                kind("c_numeric_p"),
                kind("c_ts"),
            )
        })
        .collect();
    let expected_versions = [("1", "Decimal128(12, 2)", "Timestamp(µs)")]
        .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(versions, expected_versions);
    let sizes: Vec<usize> = batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(sizes, [12]);
    for batch in &batches {
        let schema = batch.schema();
        let kind = |name: &str| {
            schema
                .field_with_name(name)
                .expect("column")
                .data_type()
                .to_string()
        };
        assert_eq!(kind("c_int_array"), "List(Int32)");
        assert_eq!(kind("c_text_array"), "List(Utf8)");
        assert_eq!(
            kind("c_matrix"),
            "List(Int32)",
            "multi-dimensional arrays keep the column a list"
        );
        assert_eq!(kind("c_tstz_array"), "Utf8");
    }

    let mut checked = HashMap::new();
    for batch in &batches {
        let schema = batch.schema();
        let inserted = expected_rows(&fixture, "inserted", batch).await;
        let updated = expected_rows(&fixture, "updated", batch).await;
        let first_user = LEADING_METADATA_COLUMNS;
        let last_user = schema.fields().len() - 2;
        let names: Vec<String> = schema.fields()[first_user..last_user]
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let user_columns: Vec<_> = batch.columns()[first_user..last_user].to_vec();
        let before = batch.column_by_name(BEFORE).expect("_before").as_struct();
        let ids = batch
            .column_by_name("id")
            .expect("id")
            .as_primitive::<Int32Type>();
        let ops = batch
            .column_by_name("_op")
            .expect("_op")
            .as_primitive::<arrow::datatypes::UInt8Type>();
        for row in 0..batch.num_rows() {
            let id = ids.value(row);
            match ops.value(row) {
                b'c' => {
                    assert_image(batch, row, &user_columns, &names, &inserted[&id], "insert");
                    assert!(before.is_null(row), "an insert has no before image");
                }
                b'u' => {
                    assert_image(
                        batch,
                        row,
                        &user_columns,
                        &names,
                        &updated[&id],
                        "update, new image",
                    );
                    assert_image(
                        batch,
                        row,
                        before.columns(),
                        &names,
                        &inserted[&id],
                        "update, before image",
                    );
                }
                b'd' => {
                    assert_image(
                        batch,
                        row,
                        &user_columns,
                        &names,
                        &updated[&id],
                        "delete, old row",
                    );
                    assert_image(
                        batch,
                        row,
                        before.columns(),
                        &names,
                        &updated[&id],
                        "delete, before image",
                    );
                }
                other => panic!("unexpected op {other}"),
            }
            *checked.entry(ops.value(row)).or_insert(0) += 1;
        }
        // Escaped column names keep the original in metadata.
        let escaped = schema
            .field_with_name("__underscored")
            .expect("escaped column");
        assert_eq!(escaped.metadata()[metadata::COLUMN_NAME], "_underscored");
        assert_eq!(
            schema.field_with_name("c_enum").expect("enum").metadata()[metadata::PG_TYPE],
            "public.mood"
        );
        // Under REPLICA IDENTITY FULL every column is flagged as identity; the primary
        // key comes from the catalog, which this test does not consult.
        assert_eq!(schema.metadata()[metadata::REPLICA_IDENTITY], "full");
        assert_eq!(schema.metadata()[metadata::PRIMARY_KEY], "");
    }
    assert_eq!(checked, HashMap::from([(b'c', 4), (b'u', 4), (b'd', 4)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_toast_values_are_listed_not_lost() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture = ReplicationFixture::new(
        cluster,
        "CREATE TABLE docs (id int PRIMARY KEY, title text, body text)",
        "TABLE docs",
    )
    .await
    .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    // ~32 kB of poorly compressible text is stored out of line (TOAST).
    fixture
        .sql("INSERT INTO docs SELECT 1, 'draft', string_agg(md5(g::text), '') FROM generate_series(1, 1000) g")
        .await
        .expect("insert");
    fixture
        .sql("UPDATE docs SET title = 'final'")
        .await
        .expect("update");

    let messages = read_transactions(&mut stream, 2).await.expect("stream");
    let batches = batch_messages(&messages, BatchLimits::default()).expect("batches");
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 2);
    let body = batch
        .column_by_name("body")
        .expect("body")
        .as_string::<i32>();
    assert_eq!(
        body.value(0).len(),
        32_000,
        "the insert carries the whole value"
    );
    assert!(
        body.is_null(1),
        "the update did not send the unchanged value"
    );
    let unchanged = batch
        .column_by_name(UNCHANGED)
        .expect("_unchanged")
        .as_list::<i32>();
    assert!(unchanged.is_null(0));
    let listed = unchanged.value(1);
    assert_eq!(
        listed
            .as_primitive::<arrow::datatypes::UInt16Type>()
            .values()
            .to_vec(),
        [2],
        "column 2 is body"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_cut_by_rows_and_carry_transaction_metadata() {
    let cluster = PgCluster::start().expect("cluster");
    let fixture =
        ReplicationFixture::new(cluster, "CREATE TABLE t (id int PRIMARY KEY)", "TABLE t")
            .await
            .expect("fixture");
    let mut stream = fixture.start().await.expect("stream");
    fixture
        .sql("INSERT INTO t SELECT generate_series(1, 2500)")
        .await
        .expect("insert");
    fixture
        .sql("INSERT INTO t VALUES (0)")
        .await
        .expect("insert");

    let messages = read_transactions(&mut stream, 2).await.expect("stream");
    let limits = BatchLimits {
        max_rows: 1000,
        ..BatchLimits::default()
    };
    let outputs = batch_outputs(&messages, limits).expect("batches");
    // The first transaction's last 500 rows share a batch with the second one's row,
    // so both commit markers follow that batch, which the final flush cut.
    let shape: Vec<String> = outputs
        .iter()
        .map(|output| match output {
            BatcherOutput::Batch(batch) => format!("batch {}", batch.num_rows()),
            BatcherOutput::Committed(commit) => format!("commit {} rows", commit.rows),
            BatcherOutput::SchemaChange(change) => format!("ddl {}", change.command.tag),
        })
        .collect();
    assert_eq!(
        shape,
        [
            "batch 1000",
            "batch 1000",
            "batch 501",
            "commit 2500 rows",
            "commit 1 rows"
        ]
    );
    let batches: Vec<RecordBatch> = outputs
        .iter()
        .filter_map(|output| match output {
            BatcherOutput::Batch(batch) => Some(batch.clone()),
            BatcherOutput::Committed(_) | BatcherOutput::SchemaChange(_) => None,
        })
        .collect();
    assert_eq!(batches[0].schema().metadata()[metadata::PRIMARY_KEY], "id");
    assert_eq!(
        batches[0].schema().metadata()[metadata::REPLICA_IDENTITY],
        "default"
    );

    let commits: Vec<(u64, u64)> = messages
        .iter()
        .filter_map(|(_, m)| match m {
            weir::source::pgoutput::PgOutputMessage::Begin(b) => {
                Some((b.final_lsn.0, u64::from(b.xid)))
            }
            _ => None,
        })
        .collect();
    let mut rows = 0;
    for batch in &batches {
        let commit_lsn = batch
            .column_by_name("_commit_lsn")
            .expect("col")
            .as_primitive::<arrow::datatypes::UInt64Type>();
        let xid = batch
            .column_by_name("_xid")
            .expect("col")
            .as_primitive::<UInt32Type>();
        let seq = batch
            .column_by_name("_seq")
            .expect("col")
            .as_primitive::<UInt32Type>();
        let lsn = batch
            .column_by_name("_lsn")
            .expect("col")
            .as_primitive::<arrow::datatypes::UInt64Type>();
        for row in 0..batch.num_rows() {
            let transaction = usize::from(rows >= 2500);
            assert_eq!(
                (commit_lsn.value(row), u64::from(xid.value(row))),
                commits[transaction]
            );
            let expected_seq = if transaction == 0 { rows } else { rows - 2500 };
            assert_eq!(seq.value(row) as usize, expected_seq);
            assert!(lsn.value(row) <= commit_lsn.value(row));
            rows += 1;
        }
    }
}
