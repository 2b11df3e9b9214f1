//! The source's own work per row, without the server: pgoutput decoding, and
//! decoding plus batching into ChangeBatches, on payloads captured once from a real
//! slot (one transaction of 50,000 inserts into a 6-column table, then 5,000
//! updates and 5,000 deletes in their own transactions).
//!
//! `cargo bench -p weir-tests --bench source_decode`. Criterion reports rows/s; the
//! server-side limit (PostgreSQL's own decoding) is in the source_throughput bench.

use std::hint::black_box;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use weir::Lsn;
use weir::source::pgoutput::{PgOutputDecoder, PgOutputMessage};
use weir::source::replication::{ReplicationEvent, StandbyStatus};
use weir::source::{BatchLimits, ChangeBatcher};
use weir_tests::ReplicationFixture;
use weir_tests::bench::{BENCH_TABLE as TABLE, bench_insert};

const ROWS: u64 = 60_000;

/// Raw pgoutput payloads with their WAL positions, up to the third commit.
fn capture() -> Vec<(Lsn, Bytes)> {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let cluster = weir_tests::PgCluster::start().expect("postgres");
        let fixture = ReplicationFixture::new(cluster, TABLE, "TABLE bench")
            .await
            .expect("fixture");
        fixture
            .sql(&bench_insert(1, 50_000))
            .await
            .expect("inserts");
        fixture
            .sql("UPDATE bench SET n = n + 1 WHERE id <= 5000")
            .await
            .expect("updates");
        fixture
            .sql("DELETE FROM bench WHERE id > 45000")
            .await
            .expect("deletes");
        let mut stream = fixture.start().await.expect("stream");
        let mut payloads = Vec::new();
        let mut commits = 0;
        while commits < 3 {
            let event = tokio::time::timeout(Duration::from_secs(60), stream.recv())
                .await
                .expect("in time")
                .expect("an event");
            match event {
                ReplicationEvent::XLogData(data) => {
                    if data.data.first() == Some(&b'C') {
                        commits += 1;
                    }
                    payloads.push((data.wal_start, data.data));
                }
                ReplicationEvent::Keepalive(keepalive) if keepalive.reply_requested => {
                    stream
                        .send_status(StandbyStatus::at(Lsn::ZERO))
                        .await
                        .expect("status");
                }
                _ => {}
            }
        }
        payloads
    })
}

fn benches(c: &mut Criterion) {
    let payloads = capture();
    let mut group = c.benchmark_group("source, 60k changes");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(20);
    group.bench_function("decode pgoutput", |b| {
        b.iter(|| {
            let mut decoder = PgOutputDecoder::new();
            let mut decoded = 0usize;
            for (_, payload) in &payloads {
                let message = decoder.decode(payload.clone()).expect("decodes");
                decoded += usize::from(matches!(
                    message,
                    PgOutputMessage::Insert(_)
                        | PgOutputMessage::Update(_)
                        | PgOutputMessage::Delete(_)
                ));
            }
            black_box(decoded)
        })
    });
    group.bench_function("decode and batch into ChangeBatches", |b| {
        b.iter(|| {
            let mut decoder = PgOutputDecoder::new();
            let mut batcher = ChangeBatcher::new(BatchLimits::default());
            let mut rows = 0usize;
            for (lsn, payload) in &payloads {
                let message = decoder.decode(payload.clone()).expect("decodes");
                batcher.push(&message, *lsn).expect("batches");
                while let Some(output) = batcher.pop().expect("pops") {
                    if let weir::source::BatcherOutput::Batch(batch) = output {
                        rows += batch.num_rows();
                    }
                }
            }
            batcher.flush().expect("flushes");
            while let Some(output) = batcher.pop().expect("pops") {
                if let weir::source::BatcherOutput::Batch(batch) = output {
                    rows += batch.num_rows();
                }
            }
            assert_eq!(rows as u64, ROWS);
            black_box(rows)
        })
    });
    group.finish();
}

criterion_group!(source_decode, benches);
criterion_main!(source_decode);
