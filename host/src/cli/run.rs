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

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
pub fn cancel_on_signal(shutdown: CancellationToken) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {}
            _ = terminate => {}
        }
        tracing::info!("stopping: waiting for Kafka to acknowledge what was sent");
        shutdown.cancel();
    });
}
