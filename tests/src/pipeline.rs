//! Running a pipeline in the test process, as `weir run` would, from YAML text.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use weir::pipeline::{PipelineError, PipelineStats, RunSummary};

use crate::{plugin_dir, target_bin_path, unique_name};

/// With `WEIR_TEST_LOG` set (an `EnvFilter`, e.g. `weir=debug`), the
/// in-process pipelines log to the test's output: a test that fails shows what
/// weir did. Off by default: a suite's pipelines would interleave.
fn log_to_test_output() {
    let Ok(filter) = std::env::var("WEIR_TEST_LOG") else {
        return;
    };
    // Another test of the process may have installed it first.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_test_writer()
        .try_init();
}

/// A pipeline running on the test's (multi-threaded) tokio runtime.
#[derive(Debug)]
pub struct RunningPipeline {
    shutdown: CancellationToken,
    task: JoinHandle<Result<RunSummary, PipelineError>>,
    /// The run's counters.
    pub stats: Arc<PipelineStats>,
}

impl RunningPipeline {
    /// Parses `yaml` (no environment variables; plugin paths relative to the plugin
    /// build dir) and starts it.
    pub fn start(yaml: &str) -> anyhow::Result<Self> {
        log_to_test_output();
        let config = weir::config::from_text(yaml, &|_| None, &plugin_dir())?;
        let stats = Arc::new(PipelineStats::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(weir::pipeline::run(
            config,
            Arc::clone(&stats),
            shutdown.clone(),
        ));
        Ok(Self {
            shutdown,
            task,
            stats,
        })
    }

    /// Waits until the source streams (its slot exists): changes committed from now
    /// on are captured.
    pub async fn wait_streaming(&self, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.stats.sessions.load(Ordering::Relaxed) == 0 {
            if self.task.is_finished() {
                anyhow::bail!("the pipeline stopped before streaming");
            }
            if Instant::now() > deadline {
                anyhow::bail!("not streaming after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Waits until at least `count` messages were handed to the producer.
    pub async fn wait_for_messages(&self, count: u64, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let sent = self.stats.messages.load(Ordering::Relaxed);
            if sent >= count {
                return Ok(());
            }
            if self.task.is_finished() {
                anyhow::bail!("the pipeline stopped after {sent} of {count} messages");
            }
            if Instant::now() > deadline {
                anyhow::bail!("{sent} of {count} messages after {within:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether the pipeline has stopped by itself.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops it the way SIGTERM does and returns how it ended.
    pub async fn stop(mut self) -> anyhow::Result<RunSummary> {
        self.shutdown.cancel();
        (&mut self.task)
            .await
            .context("the pipeline task panicked")?
            .map_err(anyhow::Error::new)
    }

    /// Waits for it to stop by itself (a failure) and returns how it ended.
    pub async fn join(mut self, within: Duration) -> anyhow::Result<RunSummary> {
        tokio::time::timeout(within, &mut self.task)
            .await
            .context("the pipeline did not stop")?
            .context("the pipeline task panicked")?
            .map_err(anyhow::Error::new)
    }
}

/// A test that fails with pipelines still running must still end: the runtime
/// waits for their blocking worker threads, which stop only when asked.
impl Drop for RunningPipeline {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// `weir run` as a child process, so a test can `kill -9` it: dropping it does.
/// Its spec and its log (at `info`) are kept in a temporary directory whose path
/// is printed, for the test that fails.
#[derive(Debug)]
pub struct WeirProcess {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl WeirProcess {
    /// Writes `spec` to a file and starts `weir run` on it.
    pub fn start(spec: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(unique_name("weir-run"));
        std::fs::create_dir_all(&dir).context("creating the spec's directory")?;
        let path = dir.join("pipeline.yaml");
        std::fs::write(&path, spec).context("writing the spec")?;
        let log = dir.join("weir.log");
        let child = std::process::Command::new(target_bin_path("weir"))
            .arg("run")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).context("creating the log")?)
            .stdout(std::process::Stdio::null())
            .spawn()
            .context("starting weir run")?;
        eprintln!("weir run {} logs to {}", child.id(), log.display());
        Ok(Self { child, log })
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `within` for it to exit by itself.
    pub fn exited(&mut self, within: Duration) -> anyhow::Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().context("waiting for weir")? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(None)
    }
}

impl Drop for WeirProcess {
    fn drop(&mut self) {
        // SIGKILL: a kill -9.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
