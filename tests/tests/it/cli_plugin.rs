//! `weir plugin test` as a user runs it: the binary, a shipped component, the
//! example sample in `examples/plugins/`.

use std::path::PathBuf;
use std::process::Command;

fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("WEIR_PLUGIN_DIR").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/weir/plugins-target/components")
        },
        PathBuf::from,
    );
    dir.join(format!("{name}.wasm"))
}

fn sample() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/plugins/orders.json"
    ))
}

fn weir(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(weir_tests::target_bin_path("weir"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("weir runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn prints_the_rows_that_pass() {
    let plugin = component("sql-filter");
    let (code, stdout, stderr) = weir(&[
        "plugin",
        "test",
        plugin.to_str().expect("utf-8 path"),
        "--input",
        sample().to_str().expect("utf-8 path"),
        "--config",
        r#"{"where": "status = 'paid' AND total > 100 AND _op <> 'd'"}"#,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let ids: Vec<i64> = rows
        .iter()
        .map(|row| row["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(ids, [1, 3]);
    assert_eq!(rows[1]["_op"], "u");
    assert_eq!(rows[1]["total"], "501.50");
    assert_eq!(rows[1]["_before"]["status"], "new");
    assert!(stderr.contains("5 rows in, 2 out (batch world"), "{stderr}");
}

#[test]
fn a_failing_plugin_exits_1_and_bad_input_exits_2() {
    let misbehave = component("misbehave");
    let sample = sample();
    let (code, _, stderr) = weir(&[
        "plugin",
        "test",
        misbehave.to_str().expect("utf-8 path"),
        "-i",
        sample.to_str().expect("utf-8 path"),
        "-c",
        r#"{"mode": "loop"}"#,
        "--timeout-ms",
        "100",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("deadline of 100ms"), "{stderr}");

    let filter = component("sql-filter");
    let (code, _, stderr) = weir(&[
        "plugin",
        "test",
        filter.to_str().expect("utf-8 path"),
        "-i",
        sample.to_str().expect("utf-8 path"),
        "-c",
        r#"{"where": "total >"}"#,
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid-config"), "{stderr}");

    let (code, _, stderr) = weir(&[
        "plugin",
        "test",
        "/nonexistent.wasm",
        "-i",
        sample.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent.wasm"), "{stderr}");
}
