//! `weir-dev-broker`: a Kafka-protocol broker for development and tests.
//!
//! It runs librdkafka's mock cluster: real Kafka protocol over loopback TCP, with
//! several brokers, idempotent and transactional producers, consumer groups and
//! in-memory storage. Any Kafka client can use it (rdkafka, kcat, kafka-python with
//! `api_version=(1, 0, 0)`). It is not a production broker: data lives in memory and
//! is gone when the process exits.
//!
//! The first line on stdout is the bootstrap address list. With `--control stdin` it
//! then reads commands, one per line, answering `ok` or `error: <why>`:
//!
//! ```text
//! topic NAME PARTITIONS [REPLICATION_FACTOR]   create a topic
//! down BROKER_ID                               close a broker's listener (1-based id)
//! up BROKER_ID                                 reopen it
//! quit                                         exit (so does end of input)
//! ```
//!
//! Without `--control`, it runs until SIGINT or SIGTERM.

use std::io::{BufRead as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "A Kafka-protocol broker (librdkafka's mock cluster) on loopback"
)]
struct Args {
    /// Number of brokers in the cluster.
    #[arg(long, default_value_t = 1)]
    brokers: u32,
    /// A topic to create at startup, as NAME or NAME:PARTITIONS. Repeatable.
    #[arg(long = "topic", value_name = "NAME[:PARTITIONS]")]
    topics: Vec<String>,
    /// Also write the bootstrap address list to this file (for scripts).
    #[arg(long, value_name = "PATH")]
    bootstrap_file: Option<PathBuf>,
    /// Where to read control commands from.
    #[arg(long, value_enum, default_value_t = ControlSource::None)]
    control: ControlSource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ControlSource {
    /// No commands: run until SIGINT or SIGTERM.
    None,
    /// Commands on stdin; exit at end of input.
    Stdin,
}

/// Partitions of a topic created with `--topic NAME` and no count.
const DEFAULT_PARTITIONS: i32 = 4;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let broker_count = i32::try_from(args.brokers).context("--brokers is too large")?;
    if broker_count < 1 {
        bail!("--brokers must be at least 1");
    }
    let cluster = MockCluster::new(broker_count).context("starting the mock cluster")?;
    for spec in &args.topics {
        let (name, partitions) = match spec.split_once(':') {
            Some((name, count)) => (
                name,
                count
                    .parse()
                    .with_context(|| format!("--topic {spec}: partitions must be a number"))?,
            ),
            None => (spec.as_str(), DEFAULT_PARTITIONS),
        };
        cluster
            .create_topic(name, partitions, 1)
            .with_context(|| format!("creating topic {name}"))?;
    }

    let bootstrap = cluster.bootstrap_servers();
    if let Some(path) = &args.bootstrap_file {
        std::fs::write(path, format!("{bootstrap}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{bootstrap}")?;
    stdout.flush()?;

    match args.control {
        ControlSource::Stdin => serve_stdin(&cluster, &mut stdout),
        ControlSource::None => wait_for_signal(),
    }
}

fn serve_stdin(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    out: &mut impl std::io::Write,
) -> anyhow::Result<()> {
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading stdin")?;
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.as_slice() == ["quit"] {
            break;
        }
        let reply = match run_command(cluster, &words) {
            Ok(()) => "ok".to_owned(),
            Err(error) => format!("error: {error:#}"),
        };
        writeln!(out, "{reply}")?;
        out.flush()?;
    }
    Ok(())
}

fn run_command(
    cluster: &MockCluster<'static, DefaultProducerContext>,
    words: &[&str],
) -> anyhow::Result<()> {
    let number = |text: &str, what: &str| -> anyhow::Result<i32> {
        text.parse()
            .with_context(|| format!("{what} must be a number, not {text:?}"))
    };
    match words {
        ["topic", name, partitions] => {
            Ok(cluster.create_topic(name, number(partitions, "partitions")?, 1)?)
        }
        ["topic", name, partitions, factor] => Ok(cluster.create_topic(
            name,
            number(partitions, "partitions")?,
            number(factor, "replication factor")?,
        )?),
        ["down", id] => Ok(cluster.broker_down(number(id, "broker id")?)?),
        ["up", id] => Ok(cluster.broker_up(number(id, "broker id")?)?),
        [] => bail!("empty command"),
        other => bail!(
            "unknown command {:?} (topic, down, up, quit)",
            other.join(" ")
        ),
    }
}

fn wait_for_signal() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal runtime")?;
    runtime.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT"),
            _ = term.recv() => Ok(()),
        }
    })
}
