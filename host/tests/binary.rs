//! The `weir` binary itself. Besides checking it, this file makes `cargo test`
//! build the binary (cargo builds a package's binaries for its integration tests),
//! with the same features as the rest of the suite: the integration tests in
//! `tests/tests/it/` spawn it, and a separate `cargo build -p weir` would resolve
//! features differently and compile wasmtime, arrow and librdkafka a second time.

use std::process::Command;

#[test]
fn the_binary_reports_its_version_and_its_exit_codes() {
    let version = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--version")
        .output()
        .expect("weir runs");
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("weir {}", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--help")
        .output()
        .expect("weir runs");
    let help = String::from_utf8_lossy(&help.stdout);
    for code in [
        "0 success",
        "1 the work failed",
        "2 bad usage or input",
        "130",
    ] {
        assert!(
            help.contains(code),
            "--help names exit code {code}:\n{help}"
        );
    }
    let unknown = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("--no-such-flag")
        .output()
        .expect("weir runs");
    assert_eq!(unknown.status.code(), Some(2), "bad usage exits 2");
}
