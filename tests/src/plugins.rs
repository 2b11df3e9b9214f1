//! Where the built plugin components are, for tests and benchmarks.

use std::path::PathBuf;

/// Where `scripts/build-plugins.sh` collects components (keep in step with
/// scripts/lib.sh): `$WEIR_PLUGIN_DIR`, else `~/.cache/weir/plugins-target/components`.
pub fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/weir/plugins-target/components")
}

/// The component of plugin `name` (`sql-filter`, `c-lowercase`, …).
pub fn plugin_path(name: &str) -> PathBuf {
    plugin_dir().join(format!("{name}.wasm"))
}
