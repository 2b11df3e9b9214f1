//! Throwaway certificates for TLS tests, made with the `openssl` command.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::HarnessError;

/// A CA and a server certificate it signed.
#[derive(Debug, Clone)]
pub struct TestCertificates {
    /// The CA certificate (what clients pass as `sslrootcert`).
    pub ca_cert: PathBuf,
    /// The server certificate.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
}

/// Makes a CA in `dir` and a server certificate for the DNS name `server_name` only
/// (no IP address), so connecting by IP fails host name verification.
pub fn generate_certificates(
    dir: &Path,
    server_name: &str,
) -> Result<TestCertificates, HarnessError> {
    generate_certificates_with(dir, server_name, &format!("DNS:{server_name}"))
}

/// Makes a CA in `dir` and a server certificate named `common_name` valid for
/// `subject_alt_names` (openssl's syntax, e.g. `DNS:localhost,IP:127.0.0.1`).
pub fn generate_certificates_with(
    dir: &Path,
    common_name: &str,
    subject_alt_names: &str,
) -> Result<TestCertificates, HarnessError> {
    let path = |name: &str| dir.join(name);
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-days", "2", "-subj", "/CN=weir-test-ca"],
        ]
        .concat(),
        &[("-keyout", path("ca.key")), ("-out", path("ca.crt"))],
    )?;
    let subject = format!("/CN={common_name}");
    openssl(
        &[&["req"][..], &ec, &["-subj", &subject]].concat(),
        &[
            ("-keyout", path("server.key")),
            ("-out", path("server.csr")),
        ],
    )?;
    std::fs::write(
        path("server.ext"),
        format!("subjectAltName={subject_alt_names}\n"),
    )
    .map_err(|e| HarnessError::io("write the certificate extensions", e))?;
    openssl(
        &["x509", "-req", "-days", "2", "-CAcreateserial"],
        &[
            ("-in", path("server.csr")),
            ("-CA", path("ca.crt")),
            ("-CAkey", path("ca.key")),
            ("-extfile", path("server.ext")),
            ("-out", path("server.crt")),
        ],
    )?;
    Ok(TestCertificates {
        ca_cert: path("ca.crt"),
        server_cert: path("server.crt"),
        server_key: path("server.key"),
    })
}

fn openssl(args: &[&str], paths: &[(&str, PathBuf)]) -> Result<(), HarnessError> {
    let mut command = Command::new("openssl");
    command.args(args).stdin(Stdio::null());
    for (flag, path) in paths {
        command.arg(flag).arg(path);
    }
    let output = command
        .output()
        .map_err(|e| HarnessError::io("run openssl", e))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(HarnessError::Command {
            what: "openssl",
            detail: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}
