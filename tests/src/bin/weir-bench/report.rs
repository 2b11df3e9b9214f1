//! The report: a markdown section of docs/PERFORMANCE.md (between markers, the
//! rest of the file kept), the figures as JSON, and a chart drawn from them.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::latency::Latency;
use crate::readers::Measured;

const BEGIN: &str = "<!-- weir-bench:begin -->";
const END: &str = "<!-- weir-bench:end -->";

/// The goals the report checks.
const GOAL_DECODE_RATIO: f64 = 0.8;
const GOAL_NAIVE_RATIO: f64 = 1.5;
const GOAL_P99_MS: f64 = 50.0;
const GOAL_RSS_BYTES: u64 = 300 * 1024 * 1024;

/// One reader's figures on one workload.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ReaderResult {
    pub(crate) reader: &'static str,
    /// The median of the runs.
    pub(crate) seconds: f64,
    /// Every run's seconds, in order.
    pub(crate) runs: Vec<f64>,
    pub(crate) rows_per_second: f64,
    pub(crate) wal_megabytes_per_second: f64,
    pub(crate) ratio_to_decode: f64,
    pub(crate) peak_rss_megabytes: Option<f64>,
    /// The median of the runs' walsender CPU seconds.
    pub(crate) server_cpu_seconds: Option<f64>,
}

/// One workload's figures.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WorkloadResult {
    pub(crate) name: &'static str,
    pub(crate) title: String,
    pub(crate) rows: u64,
    pub(crate) wal_bytes: u64,
    pub(crate) readers: Vec<ReaderResult>,
}

impl WorkloadResult {
    /// Figures of `measured` readers (each with its runs) over `rows` changes and
    /// `wal_bytes` of WAL; the first reader is the decode limit. A reader's time
    /// is the median of its runs, its peak RSS the largest.
    pub(crate) fn new(
        name: &'static str,
        title: String,
        rows: u64,
        wal_bytes: u64,
        measured: &[(&'static str, Vec<Measured>)],
    ) -> Self {
        let decode = measured.first().map_or(1.0, |(_, runs)| median(runs));
        #[allow(clippy::cast_precision_loss)]
        let readers = measured
            .iter()
            .map(|(reader, runs)| {
                let seconds = median(runs);
                ReaderResult {
                    reader,
                    seconds,
                    runs: runs.iter().map(|m| m.seconds).collect(),
                    rows_per_second: rows as f64 / seconds,
                    wal_megabytes_per_second: wal_bytes as f64 / 1e6 / seconds,
                    ratio_to_decode: decode / seconds,
                    peak_rss_megabytes: runs
                        .iter()
                        .filter_map(|m| m.peak_rss)
                        .max()
                        .map(|b| b as f64 / 1024.0 / 1024.0),
                    server_cpu_seconds: median_server_cpu(runs),
                }
            })
            .collect();
        WorkloadResult {
            name,
            title,
            rows,
            wal_bytes,
            readers,
        }
    }

    fn reader(&self, name: &str) -> Option<&ReaderResult> {
        self.readers.iter().find(|r| r.reader == name)
    }
}

/// The median of the runs' seconds (the upper middle one of an even count).
fn median(runs: &[Measured]) -> f64 {
    if runs.is_empty() {
        return f64::NAN;
    }
    weir_tests::bench::median(runs.iter().map(|m| m.seconds).collect())
}

/// The median of the runs' walsender CPU seconds, over the runs that have one.
fn median_server_cpu(runs: &[Measured]) -> Option<f64> {
    let seconds: Vec<f64> = runs.iter().filter_map(|m| m.server_cpu).collect();
    (!seconds.is_empty()).then(|| weir_tests::bench::median(seconds))
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) date: String,
    pub(crate) machine: String,
    /// Runs per reader and workload.
    pub(crate) runs: usize,
    pub(crate) workloads: Vec<WorkloadResult>,
    pub(crate) latency: Vec<Latency>,
}

impl Report {
    /// The markdown section.
    pub(crate) fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "## Benchmark harness: `scripts/bench.sh`\n\n\
             Run {}, {}. Each workload's changes are made once; then the readers read \
             the same WAL in turns, each run from a slot of its own, {} each (the \
             table gives the median): \
             `pg_recvlogical` with pgoutput to /dev/null (the decode limit: PostgreSQL's \
             own decoding), `pg_recvlogical` with wal2json piped into `kcat -P` (the naive \
             pipeline, one message per row), weir with JSON and no plugin, weir with \
             `sql-filter` and `mask` and Avro (Schema Registry), and, side by side, weir \
             writing Debezium's envelope (`debezium-json`) and Debezium 3.6.0's PostgreSQL \
             connector on Kafka Connect 4.3 (standalone worker, the JVM's defaults with a \
             1 GiB heap, `JsonConverter` with schemas off, 5 ms linger, no compression; \
             neither writes tombstones here, so both write one message per change), and \
             last weir writing the same envelope with `exactly_once: true` (Kafka \
             transactions committed every 100 ms: the cost of exactly-once). Time \
             runs until the reader is done (weir: until the slot's confirmed position \
             passes the last change, which happens only after Kafka acknowledged it, or \
             with exactly-once after the Kafka transaction holding it committed; \
             Debezium: from the moment its slot turns active, so the JVM's start is not \
             counted, until the topics' high watermarks hold every change). Peak RSS is \
             weir's process, or the Connect worker's JVM. WAL MB/s is the workload's \
             WAL over the time. Server CPU is the CPU time of the walsender decoding and \
             sending the slot to the reader (from `/proc/PID/schedstat`, median of the \
             runs): on two shared cores no reader of that stream can be faster than the \
             server is at producing it. Both weir readers run with weir's defaults (large \
             transactions held by the server until commit) except `compression: none`, \
             as `kcat` sends. The broker is Apache Kafka {} (one KRaft node, broker and \
             controller in one JVM with a 1 GiB heap, 6-partition topics) on the same 2 \
             cores, and PostgreSQL is Debian's 15.\n\n\
             ![rows per second per workload and reader](bench/throughput.png)\n",
            self.date,
            self.machine,
            match self.runs {
                1 => "one run".to_owned(),
                runs => format!("{runs} runs"),
            },
            weir_tests::kafka_version()
        );
        for workload in &self.workloads {
            let _ = writeln!(
                out,
                "### {}\n\n{} row changes, {:.1} MB of WAL.\n\n\
                 | reader | median s | rows/s | WAL MB/s | × decode limit | server CPU s | peak RSS | runs (s) |\n\
                 |---|---:|---:|---:|---:|---:|---:|---|",
                workload.title,
                workload.rows,
                workload.wal_bytes as f64 / 1e6
            );
            for r in &workload.readers {
                let _ = writeln!(
                    out,
                    "| {} | {:.2} | {:.0} | {:.1} | {:.2} | {} | {} | {} |",
                    r.reader.replace('|', "\\|"),
                    r.seconds,
                    r.rows_per_second,
                    r.wal_megabytes_per_second,
                    r.ratio_to_decode,
                    r.server_cpu_seconds
                        .map_or_else(|| "–".to_owned(), |s| format!("{s:.2}")),
                    r.peak_rss_megabytes
                        .map_or_else(|| "–".to_owned(), |mb| format!("{mb:.0} MB")),
                    r.runs
                        .iter()
                        .map(|s| format!("{s:.2}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "### Commit-to-acknowledgement latency\n\n\
             Rows are committed on a timer (`synchronous_commit = on`) while weir \
             (`debezium-json`) streams them; then, on a slot of its own, Debezium on Kafka \
             Connect as above, after a first round at the same rate that warms its JVM \
             up (only the second is measured). *weir's histogram*: from PostgreSQL's commit timestamp to \
             the producer's acknowledgement, weir's `weir_commit_to_ack_seconds` (buckets \
             25% apart, so quantiles are bucket bounds). *To the broker's append*: both \
             readers measured with one ruler, per message, the broker's append time \
             (`LogAppendTime` topics) less `source.ts_ms`, both in milliseconds. \
             *Exactly-once*: weir again, with `exactly_once: true` (100 ms \
             `transaction_interval`), from the commit to the moment a `read_committed` \
             consumer polling the topic receives the message, when its Kafka \
             transaction committed.\n\n\
             | rate | rows per transaction | weir's histogram p50 / p99 | weir to append p50 / p99 / max | weir exactly-once, to read_committed p50 / p99 / max | Debezium to append p50 / p99 / max |\n\
             |---|---:|---:|---:|---:|---:|"
        );
        for l in &self.latency {
            let appended = |q: &crate::latency::Quantiles| {
                format!("{:.0} / {:.0} / {:.0} ms", q.p50_ms, q.p99_ms, q.max_ms)
            };
            let _ = writeln!(
                out,
                "| {} rows/s | {} | ≤ {:.1} / ≤ {:.1} ms | {} | {} | {} |",
                l.rows_per_second,
                l.rows_per_transaction,
                l.p50_ms,
                l.p99_ms,
                appended(&l.weir_appended),
                appended(&l.weir_committed),
                appended(&l.debezium_appended)
            );
        }
        let _ = writeln!(
            out,
            "\n### Goals\n\nRatios are cut, not rounded, to two decimals, so that none \
             shows its threshold without reaching it.\n\n| goal | result |\n|---|---|"
        );
        for line in self.goals() {
            let _ = writeln!(out, "| {} | {} |", line.0, line.1);
        }
        out
    }

    /// (goal, outcome) lines.
    pub(crate) fn goals(&self) -> Vec<(String, String)> {
        let mut lines = Vec::new();
        for w in &self.workloads {
            let (Some(full), Some(naive)) = (w.reader(WEIR_FULL), w.reader(NAIVE)) else {
                continue;
            };
            let naive_ratio = naive.seconds / full.seconds;
            // What the naive ratio would be if weir took exactly the server's time.
            let server_bound = full.server_cpu_seconds.map_or_else(String::new, |cpu| {
                format!(" (the server alone: {:.2}×)", cut(naive.seconds / cpu))
            });
            lines.push((
                format!("{}: weir (2 plugins, Avro) ≥ {GOAL_DECODE_RATIO}× decode limit, ≥ {GOAL_NAIVE_RATIO}× naive", w.name),
                format!(
                    "{:.2}× and {:.2}×{server_bound}: {}",
                    cut(full.ratio_to_decode),
                    cut(naive_ratio),
                    verdict(full.ratio_to_decode >= GOAL_DECODE_RATIO && naive_ratio >= GOAL_NAIVE_RATIO)
                ),
            ));
            let peak = w
                .readers
                .iter()
                .filter(|r| r.reader.starts_with("weir"))
                .filter_map(|r| r.peak_rss_megabytes)
                .fold(0.0, f64::max);
            #[allow(clippy::cast_precision_loss)]
            let rss_goal = GOAL_RSS_BYTES as f64 / 1024.0 / 1024.0;
            lines.push((
                format!("{}: weir peak RSS ≤ {rss_goal:.0} MB", w.name),
                format!("{peak:.0} MB: {}", verdict(peak <= rss_goal)),
            ));
        }
        for l in &self.latency {
            lines.push((
                format!(
                    "p99 commit-to-ack ≤ {GOAL_P99_MS} ms at {} rows/s",
                    l.rows_per_second
                ),
                format!("≤ {:.1} ms: {}", l.p99_ms, verdict(l.p99_ms <= GOAL_P99_MS)),
            ));
        }
        lines
    }

    /// Writes `results.json`, the chart and the section of `PERFORMANCE.md` in
    /// `docs`.
    pub(crate) fn write(&self, docs: &Path, chart_script: &Path) -> anyhow::Result<()> {
        let dir = docs.join("bench");
        std::fs::create_dir_all(&dir)?;
        let json = dir.join("results.json");
        std::fs::write(&json, serde_json::to_string_pretty(self)?)?;
        if !self.workloads.is_empty() {
            let status = std::process::Command::new("python3")
                .arg(chart_script)
                .arg(&json)
                .arg(dir.join("throughput.png"))
                .status()
                .context("drawing the chart")?;
            anyhow::ensure!(status.success(), "the chart script failed: {status}");
        }
        let path = docs.join("PERFORMANCE.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Performance\n".into());
        let section = format!("{BEGIN}\n{}{END}", self.markdown());
        let updated = match (text.find(BEGIN), text.find(END)) {
            (Some(start), Some(end)) if end > start => {
                format!("{}{section}{}", &text[..start], &text[end + END.len()..])
            }
            // First run: after the title and its introduction, before the first
            // section.
            _ => match text.find("\n## ") {
                Some(at) => format!("{}\n{section}\n{}", &text[..at], &text[at..]),
                None => format!("{text}\n{section}\n"),
            },
        };
        std::fs::write(&path, updated)?;
        Ok(())
    }
}

/// Reader names, as in the report.
pub(crate) const DECODE: &str = "pg_recvlogical pgoutput → /dev/null (decode limit)";
pub(crate) const NAIVE: &str = "pg_recvlogical wal2json | kcat (naive)";
pub(crate) const WEIR_JSON: &str = "weir, JSON, no plugin";
pub(crate) const WEIR_FULL: &str = "weir, sql-filter + mask, Avro";
pub(crate) const WEIR_DEBEZIUM: &str = "weir, debezium-json, no plugin";
pub(crate) const WEIR_EXACTLY_ONCE: &str = "weir, debezium-json, exactly-once";
pub(crate) const DEBEZIUM: &str = "Debezium 3.6 on Kafka Connect, JSON";

/// `ratio` cut to two decimals: 1.4976 shows as 1.49, not as the 1.50 it misses.
fn cut(ratio: f64) -> f64 {
    (ratio * 100.0).floor() / 100.0
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}
