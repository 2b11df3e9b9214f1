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
    /// What each stage that ran did, in order (for metrics).
    pub runs: Vec<StageRun>,
}

/// One stage's work on one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRun {
    /// The stage's index in the chain.
    pub stage: usize,
    /// Rows handed to the stage.
    pub rows_in: usize,
    /// Rows it passed on (0 when it failed).
    pub rows_out: usize,
    /// Time in the stage, instantiation and IPC included.
    pub elapsed: std::time::Duration,
    /// Whether the call failed (whatever `on_error` made of it).
    pub failed: bool,
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
        let mut runs = Vec::new();
        for (index, stage) in self.stages.iter().enumerate() {
            if batch.num_rows() == 0 {
                break;
            }
            if !stage.selects(batch.schema_ref()) {
                continue;
            }
            let rows_in = batch.num_rows();
            let started = std::time::Instant::now();
            let outcome = stage.process(batch).map_err(|error| ChainError {
                stage: stage.name().to_owned(),
                error: error.into(),
            })?;
            let mut run = StageRun {
                stage: index,
                rows_in,
                rows_out: 0,
                elapsed: started.elapsed(),
                failed: false,
            };
            batch = match outcome {
                StageOutcome::Passed(batch) => {
                    run.rows_out = batch.num_rows();
                    runs.push(run);
                    batch
                }
                StageOutcome::Failed { batch, error } => {
                    run.failed = true;
                    runs.push(run);
                    let mut output = self.failed(stage, batch, error)?;
                    output.runs = runs;
                    return Ok(output);
                }
            };
        }
        Ok(ChainOutput {
            batch: (batch.num_rows() > 0).then_some(batch),
            runs,
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
