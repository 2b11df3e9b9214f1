//! `weir run PIPELINE.yaml`: runs a pipeline until SIGINT or SIGTERM.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{self, PipelineConfig, SpecError};
use crate::pipeline::{PipelineError, PipelineStats, RunSummary};

/// Exit code 1: the work failed (a pipeline failed while running, a check
/// found a failure, a plugin failed on its input).
pub const EXIT_FAILED: u8 = 1;
/// Exit code 2: bad usage or input (an unreadable or invalid spec, a plugin
/// that does not load); nothing was started.
pub const EXIT_USAGE: u8 = 2;

/// Why a command stopped with an error, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The spec is wrong: nothing was started (exit code 2).
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// The spec parses but something it names does not work (a plugin that does
    /// not load or refuses its config, two specs on one slot): nothing was
    /// started (exit code 2).
    #[error("{0:#}")]
    Invalid(anyhow::Error),
    /// The pipeline stopped with an error; its own exit code.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The work failed (exit code 1).
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl RunError {
    /// The process exit code this error means.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Spec(_) | RunError::Invalid(_) => EXIT_USAGE,
            RunError::Pipeline(error) => error.exit_code(),
            RunError::Failed(_) => EXIT_FAILED,
        }
    }
}

/// Reads the spec at `path` and runs it until `shutdown` is cancelled.
pub async fn run_file(
    path: &Path,
    stats: Arc<PipelineStats>,
    shutdown: CancellationToken,
) -> Result<RunSummary, RunError> {
    let config = config::load(path)?;
    Ok(crate::pipeline::run(config, stats, shutdown).await?)
}

/// `weir run SPEC…`: every spec is loaded (and checked) before any pipeline
/// starts, no two may share a slot, then all run side by side until SIGINT or
/// SIGTERM. One failing does not stop the others. Errors are printed as they end;
/// the result is the worst exit code.
pub async fn run_specs(paths: &[PathBuf]) -> u8 {
    let mut configs: Vec<(&Path, PipelineConfig)> = Vec::with_capacity(paths.len());
    let mut slots: HashMap<String, &Path> = HashMap::new();
    for path in paths {
        let config = match config::load(path) {
            Ok(config) => config,
            Err(error) => return report(path, &RunError::Spec(error)),
        };
        if let Some(other) = slots.insert(config.source.slot.clone(), path) {
            let error = RunError::Invalid(anyhow::anyhow!(
                "{} and {} both use slot {}: a slot has one reader",
                other.display(),
                path.display(),
                config.source.slot
            ));
            return report(path, &error);
        }
        configs.push((path, config));
    }
    let shutdown = CancellationToken::new();
    cancel_on_signal(shutdown.clone());
    let runs = configs.into_iter().map(|(path, config)| {
        let shutdown = shutdown.clone();
        async move {
            let result = crate::pipeline::run(config, Arc::default(), shutdown).await;
            (path, result)
        }
    });
    let mut worst = 0;
    for (path, result) in futures_util::future::join_all(runs).await {
        if let Err(error) = result {
            worst = worst.max(report(path, &RunError::Pipeline(error)));
        }
    }
    worst
}

/// Prints `error: SPEC: …` with every cause (credentials masked) and returns its
/// exit code.
pub fn report(spec: &Path, error: &RunError) -> u8 {
    eprintln!(
        "error: {}: {}",
        crate::redact::credentials(&spec.display().to_string()),
        crate::redact::error_chain(error)
    );
    error.exit_code()
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
