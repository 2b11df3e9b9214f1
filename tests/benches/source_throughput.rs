//! Source throughput: a real slot decoded into ChangeBatches, next to the decode limit
//! (`pg_recvlogical` with pgoutput writing to /dev/null), same workload, same run.
//!
//! `cargo bench -p weir-tests --bench source_throughput`. The workload is one
//! transaction inserting `WEIR_BENCH_ROWS` (default 1,000,000) rows of a 6-column
//! table; each reader gets its own slot created before the workload, so all read
//! exactly the same WAL. `WEIR_BENCH_RUNS` (default 3) repetitions; the median counts.
//! A last line replays the payloads of one run through weir's decoder and batcher from
//! memory: weir's own share of the work, without the server.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir::Lsn;
use weir::source::pgoutput::{PgOutputDecoder, PgOutputMessage};
use weir::source::replication::{
    PgOutputOptions, ReplicationConnection, ReplicationEvent, StandbyStatus,
};
use weir::source::{BatchLimits, BatcherOutput, ChangeBatcher, PgConnectOptions};
use weir_tests::PgCluster;
use weir_tests::bench::{BENCH_TABLE as TABLE, env_number, median};

const PUBLICATION: &str = "bench_pub";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let rows = env_number("WEIR_BENCH_ROWS", 1_000_000);
    let runs = env_number("WEIR_BENCH_RUNS", 3).max(1);
    let cluster = PgCluster::builder()
        .setting("shared_buffers", "512MB")
        .setting("max_wal_size", "4GB")
        .start()?;
    let database = cluster.create_database("bench").await?;
    cluster.execute(&database, TABLE).await?;
    cluster
        .execute(
            &database,
            &format!("CREATE PUBLICATION {PUBLICATION} FOR TABLE bench"),
        )
        .await?;
    let slots: Vec<(String, String, String)> = (0..runs)
        .map(|run| {
            (
                format!("recvlogical_{run}"),
                format!("weir_{run}"),
                format!("binary_{run}"),
            )
        })
        .collect();
    for (recv, weir, binary) in &slots {
        for slot in [recv, weir, binary] {
            cluster
                .execute(
                    &database,
                    &format!("SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')"),
                )
                .await?;
        }
    }
    let start_lsn = cluster.current_wal_lsn().await?;
    cluster
        .execute(
            &database,
            &format!(
                "INSERT INTO bench SELECT g, g % 1000, md5(g::text), now(), g * 0.01, g % 2 = 0 \
                 FROM generate_series(1, {rows}) g"
            ),
        )
        .await?;
    let end_lsn = cluster.current_wal_lsn().await?;
    let wal_mb = (end_lsn.0 - start_lsn.0) as f64 / 1e6;
    println!("workload: {rows} rows in one transaction, {wal_mb:.0} MB of WAL; {runs} runs each");

    let mut recv_times = Vec::new();
    let mut binary_times = Vec::new();
    let mut weir_times = Vec::new();
    let mut captured = Vec::new();
    for (run, (recv_slot, weir_slot, binary_slot)) in slots.iter().enumerate() {
        recv_times.push(pg_recvlogical(
            &cluster, &database, recv_slot, end_lsn, false,
        )?);
        binary_times.push(pg_recvlogical(
            &cluster,
            &database,
            binary_slot,
            end_lsn,
            true,
        )?);
        // The last run also keeps the payloads, to replay weir's own work below.
        let capture = (run + 1 == slots.len()).then_some(&mut captured);
        let (seconds, decoded) = weir_source(&cluster, &database, weir_slot, capture).await?;
        anyhow::ensure!(
            decoded == rows,
            "weir decoded {decoded} rows, expected {rows}"
        );
        weir_times.push(seconds);
        if run == 0 {
            // Before any capture: the peak is the source's own (the server and
            // pg_recvlogical are other processes).
            if let Some(peak) = peak_rss_mb() {
                println!("peak RSS of the bench process after weir's first run: {peak:.0} MB");
            }
        }
    }
    let mut replay_times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let decoded = decode_and_batch(&captured)?;
        replay_times.push(started.elapsed().as_secs_f64());
        anyhow::ensure!(
            decoded == rows,
            "replay decoded {decoded} rows, expected {rows}"
        );
    }

    let recv = median(recv_times.clone());
    println!();
    println!("| reader | median s | rows/s | ratio to decode limit | runs (s) |");
    println!("|---|---:|---:|---:|---|");
    for (name, all) in [
        (
            "pg_recvlogical pgoutput → /dev/null (decode limit)",
            &recv_times,
        ),
        (
            "pg_recvlogical pgoutput binary=true → /dev/null",
            &binary_times,
        ),
        (
            "weir: replication → pgoutput decode → ChangeBatches",
            &weir_times,
        ),
        (
            "weir's own work: decode → ChangeBatches replayed from memory, 1 core",
            &replay_times,
        ),
    ] {
        let seconds = median(all.clone());
        let list: Vec<String> = all.iter().map(|s| format!("{s:.2}")).collect();
        println!(
            "| {name} | {seconds:.2} | {:.0} | {:.2}× | {} |",
            rows as f64 / seconds,
            recv / seconds,
            list.join(", ")
        );
    }
    Ok(())
}

/// Seconds for `pg_recvlogical` to stream the slot to `end` into /dev/null, with values
/// in text (as weir reads them) or in binary form.
fn pg_recvlogical(
    cluster: &PgCluster,
    database: &str,
    slot: &str,
    end: Lsn,
    binary: bool,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let status = Command::new(cluster.install().client_tool("pg_recvlogical"))
        // The options weir uses on PostgreSQL 15, so both read the same stream.
        .args(["-o", &format!("binary={binary}")])
        .args(["-o", "streaming=on", "-o", "messages=true"])
        .args([
            "-d",
            &cluster.url(database),
            "--slot",
            slot,
            "--start",
            "-f",
            "/dev/null",
        ])
        .args([
            "-o",
            "proto_version=2",
            "-o",
            &format!("publication_names={PUBLICATION}"),
        ])
        .args(["--endpos", &end.to_string(), "--no-loop", "-s", "10"])
        .stdin(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "pg_recvlogical failed: {status}");
    Ok(started.elapsed().as_secs_f64())
}

/// Seconds for weir's source to turn the slot's transaction into ChangeBatches, and
/// the rows it produced. With `capture`, keeps every payload (a refcount, no copy).
async fn weir_source(
    cluster: &PgCluster,
    database: &str,
    slot: &str,
    mut capture: Option<&mut Vec<(Lsn, Bytes)>>,
) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let config: PgConnectOptions = cluster.url(database).parse()?;
    let connection = ReplicationConnection::connect(&config).await?;
    let options = PgOutputOptions::for_server(15, vec![PUBLICATION.to_owned()]);
    let mut stream = connection
        .start_logical_replication(slot, Lsn::ZERO, &options)
        .await?;
    let mut decoder = PgOutputDecoder::new();
    let mut batcher = ChangeBatcher::new(BatchLimits::default());
    let mut rows = 0;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(60), stream.recv()).await??;
        match event {
            ReplicationEvent::XLogData(data) => {
                if let Some(capture) = capture.as_mut() {
                    capture.push((data.wal_start, data.data.clone()));
                }
                let message = decoder.decode(data.data)?;
                batcher.push(&message, data.wal_start)?;
                if matches!(message, PgOutputMessage::Commit(_)) {
                    batcher.flush()?;
                }
                while let Some(output) = batcher.pop()? {
                    match output {
                        BatcherOutput::Batch(batch) => rows += batch.num_rows(),
                        BatcherOutput::Committed(commit) => {
                            stream
                                .send_status(StandbyStatus::at(commit.end_lsn))
                                .await?;
                            return Ok((started.elapsed().as_secs_f64(), rows));
                        }
                        BatcherOutput::SchemaChange(_) => {}
                    }
                }
            }
            ReplicationEvent::Keepalive(k) if k.reply_requested => {
                stream.send_status(StandbyStatus::at(Lsn::ZERO)).await?;
            }
            ReplicationEvent::Keepalive(_) => {}
            ReplicationEvent::End => anyhow::bail!("stream ended"),
        }
    }
}

/// Decodes and batches captured payloads; returns the rows batched.
fn decode_and_batch(payloads: &[(Lsn, Bytes)]) -> anyhow::Result<usize> {
    let mut decoder = PgOutputDecoder::new();
    let mut batcher = ChangeBatcher::new(BatchLimits::default());
    let mut rows = 0;
    let mut count = |output: BatcherOutput| {
        if let BatcherOutput::Batch(batch) = output {
            rows += batch.num_rows();
        }
    };
    for (lsn, payload) in payloads {
        let message = decoder.decode(payload.clone())?;
        batcher.push(&message, *lsn)?;
        while let Some(output) = batcher.pop()? {
            count(output);
        }
    }
    batcher.flush()?;
    while let Some(output) = batcher.pop()? {
        count(output);
    }
    Ok(rows)
}

/// The process's peak resident set size (`VmHWM`), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
