//! `weir run` refusing bad specs before it connects to anything: exit code 2 and a
//! message naming the line and the field.

use std::process::Command;

fn run_spec(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("pipeline.yaml");
    std::fs::write(&path, text).expect("spec");
    let output = Command::new(weir_tests::target_bin_path("weir"))
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
    let output = Command::new(weir_tests::target_bin_path("weir"))
        .args(["run", "/nonexistent/pipeline.yaml"])
        .output()
        .expect("weir runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("reading /nonexistent/pipeline.yaml"));
}

fn repository_file(relative: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

#[test]
fn the_published_json_schema_is_current() {
    let output = Command::new(weir_tests::target_bin_path("weir"))
        .arg("schema")
        .output()
        .expect("weir runs");
    assert!(output.status.success());
    let published =
        std::fs::read_to_string(repository_file("docs/pipeline.schema.json")).expect("published");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        published,
        "regenerate with: weir schema > docs/pipeline.schema.json"
    );
}

/// An independent validator (Python's jsonschema) accepts the shipped example
/// and refuses a misspelt key and a wrong enum value.
#[test]
fn an_independent_validator_agrees_with_the_schema() {
    const CHECK: &str = r#"
import sys, json, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
example = yaml.safe_load(open(sys.argv[2]))
jsonschema.validate(example, schema)
bad = json.loads(json.dumps(example))
bad["sink"]["kafka"]["compresion"] = "zstd"
try:
    jsonschema.validate(bad, schema)
    sys.exit("a misspelt key passed")
except jsonschema.ValidationError:
    pass
bad = json.loads(json.dumps(example))
bad["sink"]["kafka"]["format"] = "protobuf"
try:
    jsonschema.validate(bad, schema)
    sys.exit("an unknown format passed")
except jsonschema.ValidationError:
    pass
print("ok")
"#;
    let output = Command::new("python3")
        .args(["-c", CHECK])
        .arg(repository_file("docs/pipeline.schema.json"))
        .arg(repository_file("examples/quickstart.yaml"))
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "jsonschema and pyyaml come from scripts/setup.sh: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The README's complete example is a valid spec (every key it shows exists and
/// every value means something).
#[test]
fn the_readme_example_is_a_valid_spec() {
    let readme = std::fs::read_to_string(repository_file("README.md")).expect("README");
    let start = readme
        .find("A complete pipeline")
        .and_then(|at| readme[at..].find("```yaml\n").map(|i| at + i + 8))
        .expect("the example");
    let end = start + readme[start..].find("```").expect("its end");
    let text = &readme[start..end];
    let config = weir::config::from_text(
        text,
        &|name| (name == "PGPASSWORD").then(|| "secret".to_owned()),
        std::path::Path::new("."),
    )
    .expect("the README example parses and means something");
    assert_eq!(config.stages.len(), 1);
    assert!(config.metrics_listen.is_some() && config.transaction_topic.is_some());
}
