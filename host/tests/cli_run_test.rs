//! `weir run` refusing bad specs before it connects to anything: exit code 2 and a
//! message naming the line and the field.

use std::process::Command;

fn run_spec(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, text).expect("spec");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("run")
        .arg(&path)
        .env("RUST_LOG", "warn")
        .env_remove("WEIR_TEST_UNSET")
        .output()
        .expect("weir runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

const SPEC: &str = "name: shop
source:
  postgres:
    url: postgres://weir@127.0.0.1:1/shop
    slot: weir_shop
    publication: weir_shop
    tables: [public.orders]
sink:
  kafka:
    brokers: 127.0.0.1:1
";

#[test]
fn an_unknown_key_names_its_line() {
    let (code, stderr) =
        run_spec(&SPEC.replace("    brokers:", "    compresion: zstd\n    brokers:"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("compresion") && stderr.contains("line 10"),
        "{stderr}"
    );
}

#[test]
fn a_missing_variable_names_its_line() {
    let (code, stderr) = run_spec(&SPEC.replace("127.0.0.1:1/shop", "${WEIR_TEST_UNSET}/shop"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("line 4: environment variable WEIR_TEST_UNSET is not set"),
        "{stderr}"
    );
}

#[test]
fn a_bad_policy_names_its_field() {
    let (code, stderr) = run_spec(&format!("{SPEC}    partition: by_magic\n"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("sink.kafka.partition"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "/nonexistent/pipeline.yaml"])
        .output()
        .expect("weir runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("reading /nonexistent/pipeline.yaml"));
}
