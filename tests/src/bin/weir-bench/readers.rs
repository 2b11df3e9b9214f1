//! The readers each workload's WAL is read by, one after the other, each from a
//! slot of its own created before the changes were made.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use weir_tests::{
    ConnectStandalone, JvmTuning, Lsn, MessageCounter, PgCluster, ServerCpu, target_bin_path,
};

/// How long any reader may take.
const LIMIT: Duration = Duration::from_secs(1800);

/// What one reader took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) seconds: f64,
    /// Peak resident memory of weir's process (`VmHWM`), in bytes.
    pub(crate) peak_rss: Option<u64>,
    /// CPU seconds of the walsender serving the reader ([`ServerCpu`]).
    pub(crate) server_cpu: Option<f64>,
}

/// Times `read`, a reader process that runs until it is done, while the walsender
/// serving `slot` is watched.
async fn blocking_reader(
    cluster: &PgCluster,
    slot: &str,
    read: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<Measured> {
    let cpu = ServerCpu::watch(cluster, slot).await?;
    let started = Instant::now();
    tokio::task::block_in_place(read)?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(Measured {
        seconds,
        peak_rss: None,
        server_cpu: cpu.finish().await?,
    })
}

/// `pg_recvlogical` with pgoutput to /dev/null: the usual measure of PostgreSQL's
/// decoding. (The walsender's own cost depends on how its reader reads; the
/// server CPU column of docs/PERFORMANCE.md shows by how much.)
pub(crate) async fn decode_limit(
    cluster: &PgCluster,
    url: &str,
    slot: &str,
    publication: &str,
    end: Lsn,
) -> anyhow::Result<Measured> {
    blocking_reader(cluster, slot, || {
        let status = Command::new(cluster.install().client_tool("pg_recvlogical"))
            .args([
                "-d",
                url,
                "-S",
                slot,
                "--start",
                "--no-loop",
                "-f",
                "/dev/null",
            ])
            .args([
                "-o",
                "proto_version=1",
                "-o",
                "messages=true",
                "-o",
                &format!("publication_names={publication}"),
            ])
            .arg(format!("--endpos={end}"))
            .stderr(Stdio::inherit())
            .status()
            .context("running pg_recvlogical")?;
        anyhow::ensure!(
            status.success(),
            "pg_recvlogical (pgoutput) failed: {status}"
        );
        Ok(())
    })
    .await
}

/// `pg_recvlogical` with wal2json (one JSON document per row) piped into
/// `kcat -P`: the naive pipeline, one Kafka message per row, until kcat has the
/// broker's acknowledgements.
pub(crate) async fn naive(
    cluster: &PgCluster,
    url: &str,
    slot: &str,
    tables: &[&str],
    end: Lsn,
    brokers: &str,
    topic: &str,
) -> anyhow::Result<Measured> {
    let add_tables: Vec<String> = tables.iter().map(|t| format!("public.{t}")).collect();
    let script = format!(
        "set -o pipefail; '{recvlogical}' -d '{url}' -S '{slot}' --start --no-loop -f - \
         --endpos={end} -o format-version=2 -o include-transaction=false \
         -o add-tables='{tables}' | kcat -P -b '{brokers}' -t '{topic}' -X linger.ms=5",
        recvlogical = cluster.install().client_tool("pg_recvlogical").display(),
        tables = add_tables.join(","),
    );
    blocking_reader(cluster, slot, || {
        let status = Command::new("bash")
            .args(["-c", &script])
            .stderr(Stdio::inherit())
            .status()
            .context("running pg_recvlogical | kcat")?;
        anyhow::ensure!(status.success(), "pg_recvlogical | kcat failed: {status}");
        Ok(())
    })
    .await
}

/// `weir run SPEC` (the release binary) until the slot's confirmed position passes
/// `end`, which happens only once Kafka acknowledged every message before it.
pub(crate) async fn weir(
    cluster: &PgCluster,
    spec: &Path,
    slot: &str,
    end: Lsn,
) -> anyhow::Result<Measured> {
    let watcher = cluster.slot_watcher(slot).await?;
    let cpu = ServerCpu::watch(cluster, slot).await?;
    let started = Instant::now();
    let mut child = start_weir(spec)?;
    let pid = child.0.id();
    let mut peak_rss = 0;
    let result = loop {
        if let Some(status) = child.0.try_wait()? {
            break Err(anyhow::anyhow!("weir exited early: {status}"));
        }
        peak_rss = peak_rss.max(vm_hwm(pid).unwrap_or(0));
        let confirmed = watcher.confirmed().await?;
        if confirmed.is_some_and(|c| c >= end) {
            break Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > LIMIT {
            break Err(anyhow::anyhow!("weir did not finish in {LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    peak_rss = peak_rss.max(vm_hwm(pid).unwrap_or(0));
    let server_cpu = cpu.finish().await?;
    child.stop()?;
    Ok(Measured {
        seconds: result?,
        peak_rss: Some(peak_rss),
        server_cpu,
    })
}

/// A `weir run` child process, killed if the harness stops first.
pub(crate) struct Weir(pub(crate) Child);

impl Weir {
    /// SIGTERM, then wait for the clean stop.
    pub(crate) fn stop(mut self) -> anyhow::Result<()> {
        let pid = i32::try_from(self.0.id()).context("pid")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )?;
        self.0.wait()?;
        Ok(())
    }
}

impl Drop for Weir {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts `weir run SPEC` (the binary next to this harness).
pub(crate) fn start_weir(spec: &Path) -> anyhow::Result<Weir> {
    Command::new(target_bin_path("weir"))
        .arg("run")
        .arg(spec)
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit())
        .spawn()
        .map(Weir)
        .context("starting weir (built by scripts/bench.sh)")
}

/// The peak resident set size of process `pid`, in bytes.
pub(crate) fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Where Debezium reads from and writes to.
pub(crate) struct DebeziumRun<'a> {
    pub(crate) cluster: &'a PgCluster,
    pub(crate) database: &'a str,
    /// Its slot: created by Debezium when missing.
    pub(crate) slot: &'a str,
    /// Its publication: created by Debezium when missing.
    pub(crate) publication: &'a str,
    /// `schema.table` names.
    pub(crate) tables: &'a [String],
    /// Its `topic.prefix`: topics `<prefix>.<schema>.<table>`, which exist.
    pub(crate) prefix: &'a str,
    pub(crate) brokers: &'a str,
}

/// Starts Debezium 3.6's PostgreSQL connector as most run it: on Kafka Connect
/// (standalone, the JVM's production defaults, 1 GiB of heap), Connect's
/// `JsonConverter` with schemas off, producing to `run.brokers` uncompressed with
/// a 5 ms linger, streaming only, no tombstones. Returns once its slot is active:
/// the JVM's start-up (seconds) is not what is measured.
pub(crate) async fn start_debezium(run: &DebeziumRun<'_>) -> anyhow::Result<ConnectStandalone> {
    let json = "org.apache.kafka.connect.json.JsonConverter";
    let worker = [
        ("bootstrap.servers", run.brokers.to_owned()),
        ("key.converter", json.to_owned()),
        ("value.converter", json.to_owned()),
        ("key.converter.schemas.enable", "false".to_owned()),
        ("value.converter.schemas.enable", "false".to_owned()),
        ("offset.flush.interval.ms", "1000".to_owned()),
        ("producer.compression.type", "none".to_owned()),
        ("producer.linger.ms", "5".to_owned()),
    ];
    let connector = [
        ("name", format!("{}-source", run.prefix)),
        (
            "connector.class",
            "io.debezium.connector.postgresql.PostgresConnector".to_owned(),
        ),
        ("tasks.max", "1".to_owned()),
        ("database.hostname", "127.0.0.1".to_owned()),
        ("database.port", run.cluster.port().to_string()),
        ("database.user", "postgres".to_owned()),
        (
            "database.password",
            weir_tests::SUPERUSER_PASSWORD.to_owned(),
        ),
        ("database.dbname", run.database.to_owned()),
        ("topic.prefix", run.prefix.to_owned()),
        ("plugin.name", "pgoutput".to_owned()),
        ("slot.name", run.slot.to_owned()),
        ("publication.name", run.publication.to_owned()),
        ("publication.autocreate.mode", "filtered".to_owned()),
        ("snapshot.mode", "no_data".to_owned()),
        ("table.include.list", run.tables.join(",")),
        ("tombstones.on.delete", "false".to_owned()),
    ];
    let mut connect =
        ConnectStandalone::start_tuned(&worker, &connector, (1024, JvmTuning::Production))?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !slot_active(run.cluster, run.slot).await? {
        connect.check_running()?;
        anyhow::ensure!(
            Instant::now() < deadline,
            "Debezium did not open its slot: {}",
            connect.log()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(connect)
}

/// Whether a walsender serves `slot`.
pub(crate) async fn slot_active(cluster: &PgCluster, slot: &str) -> anyhow::Result<bool> {
    let slots = cluster.replication_slots().await?;
    Ok(slots.iter().any(|s| s.slot_name == slot && s.active))
}

/// Debezium ([`start_debezium`]) until the topics' high watermarks hold the
/// workload's `messages` (one per change): the brokers count only what they
/// acknowledged.
pub(crate) async fn debezium(run: &DebeziumRun<'_>, messages: u64) -> anyhow::Result<Measured> {
    let topics: Vec<String> = run
        .tables
        .iter()
        .map(|table| format!("{}.{table}", run.prefix))
        .collect();
    let counter = MessageCounter::new(run.brokers, &topics, Duration::from_secs(10))?;
    let expected = i64::try_from(messages)?;
    let mut connect = start_debezium(run).await?;
    let pid = connect.pid();
    let cpu = ServerCpu::watch(run.cluster, run.slot).await?;
    let started = Instant::now();
    let mut peak_rss = 0;
    let result = loop {
        if let Err(error) = connect.check_running() {
            break Err(error.into());
        }
        peak_rss = peak_rss.max(vm_hwm(pid).unwrap_or(0));
        if counter.count()? >= expected {
            break Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > LIMIT {
            break Err(anyhow::anyhow!("Debezium did not finish in {LIMIT:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    peak_rss = peak_rss.max(vm_hwm(pid).unwrap_or(0));
    let server_cpu = cpu.finish().await?;
    drop(connect);
    // The killed worker's walsender lets the slot go once it notices.
    let deadline = Instant::now() + Duration::from_secs(30);
    while slot_active(run.cluster, run.slot).await? {
        anyhow::ensure!(Instant::now() < deadline, "Debezium's slot stays active");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Measured {
        seconds: result?,
        peak_rss: Some(peak_rss),
        server_cpu,
    })
}
