//! Encoders: rows/s per format on 8192-row ChangeBatches (`orders`: 6 metadata and 5
//! user columns, inserts, updates and deletes), one core. Avro registers its schemas
//! with the test registry on the first batch; later batches only look them up.
//!
//! `cargo bench -p weir-tests --bench encode`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;

use weir::contract::{TopicNames, TopicTemplate};
use weir::encode::{
    AvroEncoder, DebeziumJsonEncoder, DebeziumOptions, DecimalMode, Encoder, JsonEncoder, Messages,
    SchemaRegistry, SnapshotMarks, ValueOptions,
};
use weir_tests::orders_batch;

const ROWS: usize = 8192;

fn benches(c: &mut Criterion) {
    let batch = orders_batch(ROWS);
    let registry = weir_tests::SchemaRegistry::start().expect("the test schema registry");
    let mut group = c.benchmark_group("encode 8192 rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut messages = Messages::default();
    let formats: Vec<(&str, Box<dyn Encoder>)> = vec![
        ("json", Box::new(JsonEncoder::default())),
        (
            "json, decimals as strings",
            Box::new(JsonEncoder::new(ValueOptions {
                decimal: DecimalMode::String,
                ..ValueOptions::default()
            })),
        ),
        (
            "canal-json",
            Box::new(weir::encode::CanalJsonEncoder::default()),
        ),
        (
            "canal-json, timestamptz_form utc",
            Box::new(weir::encode::CanalJsonEncoder::new(
                weir::encode::TimestamptzForm::Utc,
            )),
        ),
        (
            "maxwell-json",
            Box::new(weir::encode::MaxwellJsonEncoder::default()),
        ),
        (
            "dts-avro",
            Box::new(weir::encode::DtsAvroEncoder::new("shop")),
        ),
        (
            "shareplex-json",
            Box::new(weir::encode::SharePlexJsonEncoder::default()),
        ),
        (
            "oms-json",
            Box::new(weir::encode::OmsJsonEncoder::new(
                "shop",
                weir::encode::TimestamptzForm::default(),
            )),
        ),
        (
            "debezium-json",
            Box::new(DebeziumJsonEncoder::new(DebeziumOptions::new(
                "shop", "shop",
            ))),
        ),
        (
            "avro (schemas registered once, then cached)",
            Box::new(AvroEncoder::new(
                DebeziumOptions::new("shop", "shop"),
                TopicNames::new(
                    "shop",
                    TopicTemplate::new("{database}.{schema}.{table}").expect("template"),
                    HashMap::new(),
                ),
                SchemaRegistry::new(registry.url()).expect("registry URL"),
            )),
        ),
    ];
    for (name, mut encoder) in formats {
        group.bench_function(name, |b| {
            b.iter(|| {
                messages.clear();
                encoder
                    .encode(&batch, SnapshotMarks::default(), &mut messages)
                    .expect("encodes");
                black_box(messages.len())
            })
        });
    }
    group.finish();
}

criterion_group!(encode, benches);
criterion_main!(encode);
