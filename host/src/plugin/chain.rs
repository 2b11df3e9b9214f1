//! The plugin chain: stages in pipeline order, each applied to the tables it selects,
//! with the stage's `on_error` policy deciding what a failure means.

use arrow::record_batch::RecordBatch;

use super::engine::PluginEngine;
use super::error::{CallError, PluginError};
use super::stage::{OnError, PluginStage, StageOutcome, StageSpec};

/// A batch that a stage could not process and whose policy is `dead_letter`.
#[derive(Debug)]
pub struct DeadLetter {
    /// The stage that failed.
    pub stage: String,
    /// Why.
    pub error: CallError,
    /// The batch as the failing stage received it.
    pub batch: RecordBatch,
}

/// What the chain made of one batch.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// The batch for the encoder; `None` when every row was filtered out, or the
    /// batch was skipped or dead-lettered.
    pub batch: Option<RecordBatch>,
    /// At most one: the chain stops at the stage that dead-lettered.
    pub dead_letter: Option<DeadLetter>,
    /// A stage failed under `skip`: its name and error.
    pub skipped: Option<(String, CallError)>,
}

/// A stage failed under `on_error: fail`: the pipeline must stop.
#[derive(Debug, thiserror::Error)]
#[error("plugin stage {stage} failed: {error}")]
pub struct ChainError {
    /// The stage's name.
    pub stage: String,
    /// Why.
    pub error: ChainFailure,
}

/// The two ways a stage can fail the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum ChainFailure {
    /// The call failed.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A replacement instance could not be created.
    #[error(transparent)]
    Instantiate(#[from] PluginError),
}

/// The pipeline's stages.
#[derive(Debug, Default)]
pub struct PluginChain {
    stages: Vec<PluginStage>,
}

impl PluginChain {
    /// Loads every stage; the first that fails to load names itself in the error.
    pub fn new(engine: &PluginEngine, specs: Vec<StageSpec>) -> Result<Self, PluginError> {
        let stages = specs
            .into_iter()
            .map(|spec| PluginStage::new(engine, spec))
            .collect::<Result<_, _>>()?;
        Ok(Self { stages })
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[PluginStage] {
        &self.stages
    }

    /// Runs `batch` through every stage that selects its table.
    pub fn process(&self, mut batch: RecordBatch) -> Result<ChainOutput, ChainError> {
        for stage in &self.stages {
            if batch.num_rows() == 0 {
                break;
            }
            if !stage.selects(batch.schema_ref()) {
                continue;
            }
            let outcome = stage.process(batch).map_err(|error| ChainError {
                stage: stage.name().to_owned(),
                error: error.into(),
            })?;
            batch = match outcome {
                StageOutcome::Passed(batch) => batch,
                StageOutcome::Failed { batch, error } => {
                    return self.failed(stage, batch, error);
                }
            };
        }
        Ok(ChainOutput {
            batch: (batch.num_rows() > 0).then_some(batch),
            ..ChainOutput::default()
        })
    }

    fn failed(
        &self,
        stage: &PluginStage,
        batch: RecordBatch,
        error: CallError,
    ) -> Result<ChainOutput, ChainError> {
        let name = stage.name().to_owned();
        match stage.spec().on_error {
            OnError::Fail => Err(ChainError {
                stage: name,
                error: error.into(),
            }),
            OnError::Skip => {
                tracing::warn!(stage = %name, rows = batch.num_rows(), %error, "plugin failed; batch skipped");
                Ok(ChainOutput {
                    skipped: Some((name, error)),
                    ..ChainOutput::default()
                })
            }
            OnError::DeadLetter => {
                tracing::warn!(stage = %name, rows = batch.num_rows(), %error, "plugin failed; batch dead-lettered");
                Ok(ChainOutput {
                    dead_letter: Some(DeadLetter {
                        stage: name,
                        error,
                        batch,
                    }),
                    ..ChainOutput::default()
                })
            }
        }
    }
}
