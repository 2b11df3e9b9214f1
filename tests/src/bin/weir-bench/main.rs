//! `weir-bench`: the benchmark harness behind `scripts/bench.sh`.
//!
//! Starts a PostgreSQL cluster, an Apache Kafka broker and the test Schema Registry, runs
//! each workload once and reads its WAL with four readers (the decode limit, the
//! naive pipeline, weir with JSON, weir with two plugins and Avro) while the CPU
//! time of the walsender serving each is read, measures
//! commit-to-acknowledgement latency at fixed rates, and writes the report into
//! `docs/` (argument 1, default `docs`).
//!
//! `WEIR_BENCH_SCALE` (default 1) multiplies every workload's size;
//! `WEIR_BENCH_WORKLOADS` (comma-separated names) runs only those workloads;
//! `WEIR_BENCH_LATENCY_SECONDS` (default 10) is the time per latency rate;
//! `WEIR_BENCH_RUNS` (default 3) is how often each reader reads each workload (the
//! report gives the median).

mod latency;
mod readers;
mod report;
mod workloads;

use std::path::{Path, PathBuf};

use weir_tests::bench::env_number;
use weir_tests::{KafkaCluster, PgCluster, SchemaRegistry, plugin_dir, unique_name};

use report::{
    DEBEZIUM, DECODE, NAIVE, Report, WEIR_DEBEZIUM, WEIR_EXACTLY_ONCE, WEIR_FULL, WEIR_JSON,
    WorkloadResult,
};

/// Readers per workload and run, each on a slot of its own.
const READERS: usize = 7;
use workloads::Workload;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let docs = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("docs"), PathBuf::from);
    let scale: f64 = std::env::var("WEIR_BENCH_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    let latency_seconds = env_number("WEIR_BENCH_LATENCY_SECONDS", 10) as u64;
    let runs = env_number("WEIR_BENCH_RUNS", 3).max(1);
    // PostgreSQL 15, Debian's: the one wal2json, a reader weir is compared with, is
    // packaged for.
    let cluster = PgCluster::builder()
        .install(weir_tests::PgInstall::major(15)?)
        .setting("shared_buffers", "512MB")
        .setting("max_wal_size", "8GB")
        // The workloads' many small transactions need not wait for the disk;
        // decoding reads the same WAL either way.
        .setting("synchronous_commit", "off")
        .setting("max_replication_slots", &(READERS * runs + 4).to_string())
        .setting("max_wal_senders", &(READERS * runs + 4).to_string())
        .start()?;
    let broker = KafkaCluster::builder().heap_mb(1024).start()?;
    let registry = SchemaRegistry::start()?;
    let mut workloads = Vec::new();
    // `WEIR_BENCH_WORKLOADS=inserts,mix` runs only those (`none`: latency only).
    let only: Option<Vec<String>> = std::env::var("WEIR_BENCH_WORKLOADS")
        .ok()
        .map(|v| v.split(',').map(str::to_owned).collect());
    for workload in workloads::all(scale) {
        if only
            .as_ref()
            .is_some_and(|names| !names.iter().any(|n| n == workload.name))
        {
            continue;
        }
        println!("==> {}", workload.title);
        let result = run(&cluster, &broker, &registry, &workload, runs).await?;
        for r in &result.readers {
            println!(
                "    {:<52} {:>7.2} s {:>10.0} rows/s {:>6.2}× decode  server CPU {:>5} s  runs {:.2?}",
                r.reader,
                r.seconds,
                r.rows_per_second,
                r.ratio_to_decode,
                r.server_cpu_seconds
                    .map_or_else(|| "–".to_owned(), |s| format!("{s:.2}")),
                r.runs
            );
        }
        workloads.push(result);
    }
    println!("==> commit-to-acknowledgement latency");
    let latency = latency::measure(&cluster, &broker, latency_seconds).await?;
    let report = Report {
        date: today(),
        machine: machine(),
        runs,
        workloads,
        latency,
    };
    println!("==> goals");
    for (goal, outcome) in report.goals() {
        println!("    {goal}: {outcome}");
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench_chart.py");
    report.write(&docs, &script)?;
    println!("==> wrote {}", docs.join("PERFORMANCE.md").display());
    Ok(())
}

/// Makes `workload`'s changes once, then reads them `runs` times with every
/// reader, the readers taking turns so drift in the machine's speed falls on all.
async fn run(
    cluster: &PgCluster,
    broker: &KafkaCluster,
    registry: &SchemaRegistry,
    workload: &Workload,
    runs: usize,
) -> anyhow::Result<WorkloadResult> {
    let database = cluster
        .create_database_with(workload.name, &workload.setup)
        .await?;
    let tables: Vec<String> = workload
        .tables
        .iter()
        .map(|t| format!("public.{t}"))
        .collect();
    let publication = "bench";
    cluster
        .execute(
            &database,
            &format!(
                "CREATE PUBLICATION {publication} FOR TABLE {}",
                tables.join(", ")
            ),
        )
        .await?;
    // A slot per reader and run: [run][reader].
    let slots: Vec<[String; READERS]> = (0..runs)
        .map(|_| {
            [
                "decode", "naive", "json", "full", "dbzjson", "debezium", "eos",
            ]
            .map(unique_name)
        })
        .collect();
    for run_slots in &slots {
        for (slot, plugin) in run_slots.iter().zip([
            "pgoutput", "wal2json", "pgoutput", "pgoutput", "pgoutput", "pgoutput", "pgoutput",
        ]) {
            cluster
                .execute(
                    &database,
                    &format!("SELECT pg_create_logical_replication_slot('{slot}', '{plugin}')"),
                )
                .await?;
        }
    }
    let naive_topic = format!("{}.naive", workload.name);
    broker.create_topic(&naive_topic, 6, 1, &[])?;
    let debezium_prefix = format!("{}-debezium", workload.name);
    for table in &workload.tables {
        for kind in ["json", "full", "dbzjson", "eos"] {
            broker.create_topic(&format!("{}.{kind}.{table}", workload.name), 6, 1, &[])?;
        }
        broker.create_topic(&format!("{debezium_prefix}.public.{table}"), 6, 1, &[])?;
    }

    let start = cluster.wal_insert_lsn().await?;
    for statement in &workload.changes {
        cluster.execute(&database, statement).await?;
    }
    // The insert position, not the write position: with `synchronous_commit = off`
    // the WAL writer may not have written the last commit yet, and a reader told
    // to stop at the write position stops before it (pg_recvlogical then reports
    // a 1 M-row transaction read in a fifth of the time it takes to decode).
    let end = cluster.wal_insert_lsn().await?;
    // A message past the end, so readers waiting for `end` get something after it
    // at once instead of waiting for a keepalive.
    cluster
        .execute(
            &database,
            "SELECT pg_logical_emit_message(false, 'weir-bench', 'end')",
        )
        .await?;

    let url = cluster.url(&database);
    let dir = tempfile::tempdir()?;
    // Both weir readers send uncompressed, as `kcat` does in the naive pipeline
    // (weir's default is lz4; docs/PERFORMANCE.md gives its cost).
    let spec = |slot: &str, kind: &str, extra: &str, sink: &str| {
        format!(
            "name: bench-{name}-{kind}
source:
  postgres:
    url: {url}
    slot: {slot}
    publication: {publication}
    tables: [{tables}]
    snapshot: never
{extra}sink:
  kafka:
    brokers: {brokers}
    topic: \"{name}.{kind}.{{table}}\"
    compression: none
{sink}",
            name = workload.name,
            tables = tables.join(", "),
            brokers = broker.bootstrap_servers(),
        )
    };
    let plugins = plugin_dir();
    let full_plugins = format!(
        "plugins:
  - name: filter
    wasm: {filter}
    config: {{ where: \"id IS NOT NULL\" }}
  - name: mask
    wasm: {mask}
    config: {{ columns: [label], method: sha256 }}
",
        filter = plugins.join("sql-filter.wasm").display(),
        mask = plugins.join("mask.wasm").display(),
    );
    let full_sink = format!(
        "    format: avro\n    schema_registry: {}\n",
        registry.url()
    );
    let mut measured: [Vec<readers::Measured>; READERS] = Default::default();
    for [decode, naive, json, full, dbzjson, debezium, eos] in &slots {
        measured[0].push(readers::decode_limit(cluster, &url, decode, publication, end).await?);
        measured[1].push(
            readers::naive(
                cluster,
                &url,
                naive,
                &workload.tables,
                end,
                broker.bootstrap_servers(),
                &naive_topic,
            )
            .await?,
        );
        let json_spec = dir.path().join("json.yaml");
        std::fs::write(&json_spec, spec(json, "json", "", "    format: json\n"))?;
        measured[2].push(readers::weir(cluster, &json_spec, json, end).await?);
        let full_spec = dir.path().join("full.yaml");
        std::fs::write(&full_spec, spec(full, "full", &full_plugins, &full_sink))?;
        measured[3].push(readers::weir(cluster, &full_spec, full, end).await?);
        // Debezium's envelope, as Debezium beside it writes it (no tombstones on
        // either side, so both write one message per change).
        let dbz_spec = dir.path().join("dbzjson.yaml");
        std::fs::write(
            &dbz_spec,
            spec(
                dbzjson,
                "dbzjson",
                "",
                "    format: debezium-json
    tombstones: false
",
            ),
        )?;
        measured[4].push(readers::weir(cluster, &dbz_spec, dbzjson, end).await?);
        // The same with exactly-once: the cost of Kafka transactions.
        let eos_spec = dir.path().join("eos.yaml");
        std::fs::write(
            &eos_spec,
            spec(
                eos,
                "eos",
                "",
                "    format: debezium-json
    tombstones: false
    exactly_once: true
",
            ),
        )?;
        measured[6].push(readers::weir(cluster, &eos_spec, eos, end).await?);
        measured[5].push(
            readers::debezium(
                &readers::DebeziumRun {
                    cluster,
                    database: &database,
                    slot: debezium,
                    publication,
                    tables: &tables,
                    prefix: &debezium_prefix,
                    brokers: broker.bootstrap_servers(),
                },
                workload.rows,
            )
            .await?,
        );
    }

    for slot in slots.iter().flatten() {
        cluster
            .execute(
                &database,
                &format!("SELECT pg_drop_replication_slot('{slot}')"),
            )
            .await?;
    }
    Ok(WorkloadResult::new(
        workload.name,
        workload.title.clone(),
        workload.rows,
        end.0.saturating_sub(start.0),
        &[
            DECODE,
            NAIVE,
            WEIR_JSON,
            WEIR_FULL,
            WEIR_DEBEZIUM,
            DEBEZIUM,
            WEIR_EXACTLY_ONCE,
        ]
        .into_iter()
        .zip(measured)
        .collect::<Vec<_>>(),
    ))
}

/// Milliseconds since 1970 by this machine's clock, which PostgreSQL and the
/// broker share.
fn now_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "today".to_owned(), |d| d.trim().to_owned())
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: u64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(kib / 1024 / 1024)
        })
        .unwrap_or(0);
    format!("{cores} cores, {memory} GiB")
}
