//! Where the built plugin components are, and what plugin stages answered, for tests
//! and benchmarks.

use std::path::PathBuf;

use arrow::array::{AsArray, RecordBatch};
use weir::plugin::{CallError, StageOutcome};

/// Where `scripts/build-plugins.sh` collects components (keep in step with
/// scripts/lib.sh): `$WEIR_PLUGIN_DIR`, else `~/.cache/weir/plugins-target/components`.
pub fn plugin_dir() -> PathBuf {
    std::env::var_os("WEIR_PLUGIN_DIR")
        .map_or_else(|| plugin_target_dir().join("components"), PathBuf::from)
}

/// The wasm plugins' own target dir (keep in step with scripts/lib.sh):
/// `$WEIR_PLUGIN_TARGET_DIR`, else `~/.cache/weir/plugins-target`.
pub fn plugin_target_dir() -> PathBuf {
    std::env::var_os("WEIR_PLUGIN_TARGET_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/weir/plugins-target")
        },
        PathBuf::from,
    )
}

/// The batch a stage passed on; panics with the plugin's error when it failed.
pub fn passed(outcome: StageOutcome) -> RecordBatch {
    match outcome {
        StageOutcome::Passed(batch) => batch,
        StageOutcome::Failed { error, .. } => panic!("plugin failed: {error}"),
    }
}

/// The error of a stage that failed; panics when it passed.
pub fn failed(outcome: StageOutcome) -> CallError {
    match outcome {
        StageOutcome::Passed(_) => panic!("the plugin was expected to fail"),
        StageOutcome::Failed { error, .. } => error,
    }
}

/// The values of text column `column`.
pub fn text_column(batch: &RecordBatch, column: &str) -> Vec<Option<String>> {
    batch
        .column_by_name(column)
        .unwrap_or_else(|| panic!("column {column}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_owned))
        .collect()
}

/// The component of plugin `name` (`sql-filter`, `c-lowercase`, …).
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_dir().join(format!("{name}.wasm"))
}
