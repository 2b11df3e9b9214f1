//! The plugins in `plugins/` build into WebAssembly components that implement the
//! contract in `guest-sdk/wit/`. `scripts/build-plugins.sh` builds them (the test
//! command runs it first).

use std::path::PathBuf;

use wasmtime::component::Component;
use wasmtime::{Config, Engine};

/// Where `scripts/build-plugins.sh` collects components (keep in step with scripts/lib.sh).
fn plugin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WEIR_PLUGIN_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/weir/plugins-target/components")
}

#[test]
fn shipped_plugins_are_components_of_the_current_contract() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let manifests = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins"))
        .expect("plugins dir")
        .flatten()
        .filter(|entry| entry.path().join("Cargo.toml").exists())
        .count();
    assert!(manifests >= 1, "plugins/ holds at least one plugin crate");

    let path = plugin_dir().join("op-filter.wasm");
    let component = Component::from_file(&engine, &path).unwrap_or_else(|error| {
        panic!(
            "{}: {error:?} (run scripts/build-plugins.sh)",
            path.display()
        )
    });
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_owned()).collect();
    let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_owned()).collect();
    let version = weir_guest::WIT_PACKAGE
        .rsplit('@')
        .next()
        .expect("versioned");
    for export in ["lifecycle", "row"] {
        let name = format!("weir:plugin/{export}@{version}");
        assert!(exports.contains(&name), "{name} not in {exports:?}");
    }
    // Unused imports are dropped by the component linker, so `host` may be absent; what
    // matters is that every import is one the host can satisfy: the contract or WASI.
    let contract = format!("@{version}");
    for import in &imports {
        let satisfiable = (import.starts_with("weir:plugin/") && import.ends_with(&contract))
            || import.starts_with("wasi:");
        assert!(satisfiable, "unexpected import {import}");
    }
}
