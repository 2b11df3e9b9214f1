//! `weir plugin new`: the generated projects build, pass their own tests and run
//! under `weir plugin test`, in Rust, C, Python, JavaScript, Go and Zig.

use std::path::Path;
use std::process::Command;

use weir_tests::{plugin_target_dir, target_bin_path};

fn weir(args: &[&str]) -> std::process::Output {
    Command::new(target_bin_path("weir"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("weir runs (built by cargo test --workspace)")
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn plugin_test(component: &Path, sample: &Path, config: &str) -> String {
    let output = weir(&[
        "plugin",
        "test",
        &component.to_string_lossy(),
        "--input",
        &sample.to_string_lossy(),
        "--config",
        config,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `weir plugin new NAME [--lang LANGUAGE] --dir DIR`, which must succeed; the project.
fn new_project(dir: &Path, name: &str, language: Option<&str>) -> std::path::PathBuf {
    let dir_text = dir.to_string_lossy();
    let mut args = vec!["plugin", "new", name];
    if let Some(language) = language {
        args.extend(["--lang", language]);
    }
    args.extend(["--dir", &dir_text]);
    let created = weir(&args);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    dir.join(name)
}

#[test]
fn a_new_rust_plugin_builds_tests_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = new_project(dir.path(), "keep-emails", None);
    let target = plugin_target_dir();
    run(
        Command::new("cargo")
            .args(["test", "--quiet"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target),
        "cargo test in the new project",
    );
    run(
        Command::new("cargo")
            .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
            .current_dir(&project)
            .env("CARGO_TARGET_DIR", &target),
        "building the component",
    );
    let component = target.join("wasm32-wasip2/release/keep_emails.wasm");
    let rows = plugin_test(
        &component,
        &project.join("sample.json"),
        r#"{"column": "customer_email"}"#,
    );
    // The sample has five rows, two without an e-mail address.
    assert_eq!(rows.lines().count(), 3, "{rows}");

    let again = weir(&[
        "plugin",
        "new",
        "keep-emails",
        "--dir",
        &dir.path().to_string_lossy(),
    ]);
    assert_eq!(again.status.code(), Some(2), "nothing is overwritten");
}

#[test]
fn a_new_c_plugin_builds_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = new_project(dir.path(), "lower", Some("c"));
    run(&mut Command::new(project.join("build.sh")), "build.sh");
    let rows = plugin_test(
        &project.join("lower.wasm"),
        &project.join("sample.json"),
        r#"{"columns": ["customer_email"]}"#,
    );
    assert_eq!(rows.lines().count(), 5);
    assert!(
        rows.contains("\"customer_email\":\"ann@example.org\""),
        "{rows}"
    );
}

/// A project of an SDK language: `weir plugin new`, its own tests (`./test.sh`: pytest,
/// node's test runner, `go test`, `zig test`), `./build.sh`, then `weir plugin test`
/// on its sample, which lowercases `customer_email` in both images. Prints how long
/// the whole way took (the first build on a machine includes the toolchains' caches).
fn a_new_plugin_in(language: &str) {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let name = format!("lower-{language}");
    let project = new_project(dir.path(), &name, Some(language));
    run(&mut Command::new(project.join("test.sh")), "test.sh");
    run(&mut Command::new(project.join("build.sh")), "build.sh");
    let rows = plugin_test(
        &project.join(format!("{name}.wasm")),
        &project.join("sample.json"),
        r#"{"columns": ["customer_email"]}"#,
    );
    let rows: Vec<serde_json::Value> = rows
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON row"))
        .collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["customer_email"], "ann@example.org");
    assert_eq!(rows[0]["status"], "paid", "other columns are untouched");
    assert_eq!(rows[3]["customer_email"], "cy@example.org");
    assert_eq!(rows[3]["_before"]["id"], 3, "the old image is carried");
    eprintln!(
        "{language}: from `weir plugin new` to a passing `weir plugin test` in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_new_python_plugin_builds_tests_and_runs() {
    a_new_plugin_in("python");
}

#[test]
fn a_new_javascript_plugin_builds_tests_and_runs() {
    a_new_plugin_in("js");
}

#[test]
fn a_new_go_plugin_builds_tests_and_runs() {
    a_new_plugin_in("go");
}

#[test]
fn a_new_zig_plugin_builds_tests_and_runs() {
    a_new_plugin_in("zig");
}
