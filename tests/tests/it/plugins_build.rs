//! The plugins in `plugins/` build into WebAssembly components that implement the
//! contract in `guest-sdk/wit/`. `scripts/build-plugins.sh` builds them (the test
//! command runs it first).

use wasmtime::component::Component;
use wasmtime::{Config, Engine};
use weir_tests::plugin_path;

/// Every plugin in `plugins/` (Rust crates, C, Python, JavaScript, Go and Zig
/// projects), by component name.
fn plugin_names() -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins"))
            .expect("plugins dir")
            .flatten()
            .filter(|entry| {
                let path = entry.path();
                [
                    "Cargo.toml",
                    "plugin.c",
                    "plugin.py",
                    "plugin.js",
                    "go.mod",
                    "plugin.zig",
                ]
                .iter()
                .any(|source| path.join(source).exists())
            })
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
    names.sort();
    names
}

#[test]
fn shipped_plugins_are_components_of_the_current_contract() {
    let engine = Engine::new(&Config::new()).expect("engine");
    let names = plugin_names();
    assert!(
        names.len() >= 6,
        "plugins/ holds the shipped plugins: {names:?}"
    );
    let version = weir_guest::WIT_PACKAGE
        .rsplit('@')
        .next()
        .expect("versioned");
    let contract = format!("@{version}");
    for name in &names {
        let path = plugin_path(name);
        let component = Component::from_file(&engine, &path).unwrap_or_else(|error| {
            panic!(
                "{}: {error:?} (run scripts/build-plugins.sh)",
                path.display()
            )
        });
        let ty = component.component_type();
        let exports: Vec<String> = ty.exports(&engine).map(|(n, _)| n.to_owned()).collect();
        let imports: Vec<String> = ty.imports(&engine).map(|(n, _)| n.to_owned()).collect();
        let worlds = ["batch", "row"]
            .iter()
            .filter(|world| exports.contains(&format!("weir:plugin/{world}@{version}")))
            .count();
        assert_eq!(
            worlds, 1,
            "{name} exports one world of the contract: {exports:?}"
        );
        // Unused imports are dropped by the component linker, so `host` may be absent;
        // what matters is that every import is one the host can satisfy.
        for import in &imports {
            let satisfiable = (import.starts_with("weir:plugin/") && import.ends_with(&contract))
                || import.starts_with("wasi:");
            assert!(satisfiable, "{name}: unexpected import {import}");
        }
    }
}
