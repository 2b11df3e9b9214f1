//! Pipeline configuration: the YAML spec `weir run` reads, and its checked form.
//!
//! Three steps, each once: [`spec`] reads the YAML into typed values (a value of
//! the wrong form is refused with its line and field); [`build`] checks what the
//! values must also be (a zero interval, a rate that is not a positive number, a
//! topic Kafka refuses, formats that do not go together) while converting them
//! into the [`PipelineConfig`] the stages are made from; [`load`] reads the file
//! once and does both, adding the line of a refused field. Any refusal is a
//! [`SpecError`]: exit code 2, nothing started.

pub mod build;
pub mod spec;
pub mod values;
mod variables;

use std::path::Path;

pub use build::{FormatConfig, PipelineConfig, Throttle};
pub use spec::{PipelineSpec, SpecError};

/// Reads the spec at `path` and builds it; relative plugin paths resolve against
/// the file's directory.
pub fn load(path: &Path) -> Result<PipelineConfig, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
        path: path.to_owned(),
        source,
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    from_text(&text, &|name| std::env::var(name).ok(), base_dir)
}

/// Parses and builds a spec, reading `${VAR}` through `env`. Errors name the line
/// of the field and never quote a value from the environment.
pub fn from_text(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    base_dir: &Path,
) -> Result<PipelineConfig, SpecError> {
    let expanded = variables::expand(text, env)?;
    let spec = PipelineSpec::from_expanded(&expanded, text)?;
    PipelineConfig::build(&spec, base_dir).map_err(|error| match error {
        SpecError::Invalid { field, message, .. } => SpecError::Invalid {
            line: spec::locate(&expanded.text, &field),
            message: crate::redact::credentials(&expanded.redact(&message)).into_owned(),
            field,
        },
        other => other,
    })
}
