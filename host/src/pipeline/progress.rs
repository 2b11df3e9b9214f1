//! Showing long work (the snapshot) to the person running weir: a progress bar
//! when stderr is a terminal, a progress line every few seconds otherwise (logs
//! collected by systemd, Kubernetes or CI have no use for a redrawn bar).
//!
//! The bar and the log lines share stderr; [`LogWriter`] hides the bar while a
//! line is written, so neither garbles the other.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing::info;

/// How often a progress line is logged when there is no bar.
const LINE_INTERVAL: Duration = Duration::from_secs(10);

static BARS_ENABLED: AtomicBool = AtomicBool::new(false);

fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// Draw progress bars on stderr from now on (the CLI calls this when stderr is a
/// terminal and logs are for people).
pub fn enable_bars() {
    BARS_ENABLED.store(true, Ordering::Relaxed);
}

/// A `tracing` writer for stderr that keeps progress bars intact.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    /// Writes one formatted event, with credentials masked
    /// ([`crate::redact::credentials`]): a URL in an error from a library is
    /// printed as that library wrote it.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let masked = crate::redact::credentials(&text);
        let bytes = if matches!(masked, std::borrow::Cow::Borrowed(_)) {
            buf
        } else {
            masked.as_bytes()
        };
        if BARS_ENABLED.load(Ordering::Relaxed) {
            bars().suspend(|| std::io::stderr().write_all(bytes))?;
        } else {
            std::io::stderr().write_all(bytes)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// Progress of a snapshot: rows done of rows expected.
#[derive(Debug)]
pub struct ProgressDisplay {
    bar: Option<ProgressBar>,
    started: Instant,
    last_line: Instant,
    /// Rows done when this run started (a resumed snapshot starts part way).
    started_rows: u64,
    rows: u64,
    expected: u64,
}

impl ProgressDisplay {
    /// A display starting at `rows` done of `expected` (a resumed snapshot starts
    /// part way).
    pub fn new(rows: u64, expected: u64) -> Self {
        let bar = BARS_ENABLED.load(Ordering::Relaxed).then(|| {
            let bar = bars().add(ProgressBar::new(expected.max(rows)));
            bar.set_style(
                ProgressStyle::with_template(
                    "snapshot [{bar:30}] {percent:>3}% {human_pos}/{human_len} rows, {per_sec}, ETA {eta} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_position(rows);
            bar
        });
        ProgressDisplay {
            bar,
            started: Instant::now(),
            last_line: Instant::now(),
            started_rows: rows,
            rows,
            expected,
        }
    }

    /// The table being read now.
    pub fn table(&mut self, table: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(table.to_owned());
        }
    }

    /// Totals changed: `rows` done of `expected`.
    pub fn update(&mut self, rows: u64, expected: u64) {
        self.rows = rows;
        self.expected = expected.max(rows);
        if let Some(bar) = &self.bar {
            bar.set_length(self.expected);
            bar.set_position(rows);
            return;
        }
        if self.last_line.elapsed() >= LINE_INTERVAL {
            self.last_line = Instant::now();
            self.line();
        }
    }

    /// The snapshot ended.
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        info!(
            rows = self.rows,
            seconds = format!("{elapsed:.1}"),
            "Snapshot complete."
        );
    }

    fn line(&self) {
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.rows.saturating_sub(self.started_rows) as f64 / elapsed;
        let percent = if self.expected > 0 {
            format!("{:.0}%", self.rows as f64 * 100.0 / self.expected as f64)
        } else {
            "?".to_owned()
        };
        let eta = if rate > 0.0 && self.expected > self.rows {
            format!("{:.0}s", (self.expected - self.rows) as f64 / rate)
        } else {
            "?".to_owned()
        };
        info!(
            rows = self.rows,
            expected = self.expected,
            percent,
            rows_per_second = rate as u64,
            eta,
            "Snapshot progress."
        );
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.abandon();
        }
    }
}
