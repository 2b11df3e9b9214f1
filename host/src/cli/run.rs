//! `weir run PIPELINE.yaml`: runs a pipeline until SIGINT or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::pipeline::{PipelineConfig, PipelineSpec, PipelineStats, RunSummary, SpecError};

/// Why `weir run` stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec is wrong: nothing was started (exit code 2).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The spec parses but something it names does not work (a plugin that does
    /// not load or refuses its config): nothing was started (exit code 2).
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    /// The pipeline failed while running (exit code 1).
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

/// Reads the spec at `path` and runs it until `shutdown` is cancelled.
pub async fn run_file(
    path: &Path,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> Result<RunSummary, RunError> {
    let spec = PipelineSpec::from_file(path)?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    let config = PipelineConfig::from_spec(&spec, base_dir)?;
    crate::pipeline::run(config, stats, shutdown)
        .await
        .map_err(RunError::Failed)
}

/// Exit code of a second signal: the shell's convention for SIGINT.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Cancels `shutdown` on the first SIGINT or SIGTERM; a second one exits the
/// process at once with [`EXIT_INTERRUPTED`], confirming nothing more: what was
/// read after the last confirmed position comes again on the next start.
pub fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut signal = async move || {
            #[cfg(unix)]
            let terminated = async {
                match terminate.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated => {}
            }
        };
        signal().await;
        tracing::info!(
            "stopping: delivering what was read and confirming it (a second signal exits at once)"
        );
        shutdown.cancel();
        signal().await;
        tracing::warn!("second signal: exiting without confirming what is in flight");
        std::process::exit(EXIT_INTERRUPTED);
    });
}
