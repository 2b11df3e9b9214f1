//! The dependency rule, checked: each top-level module imports only the modules
//! below it (`docs/ARCHITECTURE.md` draws the stack). An import that runs back up
//! fails this test with the file and the line, before it grows into a cycle.

use std::collections::BTreeMap;
use std::path::Path;

/// Per module, the modules it may import. `clock`, `redact` and the crate root's
/// `Lsn` re-export are leaf utilities every module may use.
const ALLOWED: &[(&str, &[&str])] = &[
    ("contract", &[]),
    ("checkpoint", &["contract"]),
    ("metrics", &["contract", "checkpoint"]),
    ("batch", &["contract"]),
    ("encode", &["contract"]),
    ("route", &["contract", "encode"]),
    ("produce", &["contract", "checkpoint"]),
    ("plugin", &["contract", "batch"]),
    ("source", &["contract", "batch", "metrics"]),
    (
        "config",
        &["contract", "source", "plugin", "encode", "route", "produce"],
    ),
];

/// `pipeline` joins the stages, so it may import every module of [`ALLOWED`];
/// `cli` may import those and `pipeline`.
const ORCHESTRATORS: &[(&str, &[&str])] = &[("pipeline", &[]), ("cli", &["pipeline"])];

const UTILITIES: &[&str] = &["clock", "redact", "lsn", "Lsn", "VERSION"];

/// Every `crate::<module>` a file names, with its line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let after = &rest[at + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `weir_crate::…` or `some_crate::…` are other crates.
            let preceded = rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            if !preceded && !name.is_empty() {
                found.push((number + 1, name));
            }
            rest = after;
        }
    }
    found
}

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_the_modules_below_it() {
    let stages: Vec<&str> = ALLOWED.iter().map(|(module, _)| *module).collect();
    let mut allowed: BTreeMap<&str, Vec<&str>> = ALLOWED
        .iter()
        .map(|(module, uses)| (*module, uses.to_vec()))
        .collect();
    for (module, also) in ORCHESTRATORS {
        allowed.insert(module, [stages.as_slice(), also].concat());
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    visit(&src, &mut files);
    assert!(files.len() > 50, "found the sources in {}", src.display());
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap_or(file);
        let Some(module) = relative
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .filter(|_| relative.components().count() > 1)
        else {
            continue; // lib.rs, main.rs and the utilities at the top
        };
        let Some(may_use) = allowed.get(module) else {
            violations.push(format!(
                "{}: module `{module}` is not in the dependency table",
                relative.display()
            ));
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (line, used) in crate_paths(&text) {
            if used == module || UTILITIES.contains(&used.as_str()) {
                continue;
            }
            if !may_use.contains(&used.as_str()) {
                violations.push(format!(
                    "{}:{line}: `{module}` imports `crate::{used}`, which is not below it",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that run back up:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_finds_imports_and_skips_other_crates_and_comments() {
    let text = "use crate::sink::Router;\n// crate::plugin in a comment\nlet x = weir_crate::a; crate::batch::x();";
    assert_eq!(
        crate_paths(text),
        vec![(1, "sink".to_owned()), (3, "batch".to_owned())]
    );
}
