//! TLS on both planes, as libpq's `sslmode` defines it, against a real server. The
//! server's own `pg_stat_ssl` says whether a session is encrypted.

use weir::source::PgConnectOptions;
use weir::source::connect::ConnectError;
use weir::source::replication::{ReplicationConnection, ReplicationError};
use weir_tests::{PgCluster, SUPERUSER_PASSWORD, generate_certificates, target_bin_path};

const SSL_OF_THIS_SESSION: &str = "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

fn options(cluster: &PgCluster, host: &str, params: &str) -> PgConnectOptions {
    format!(
        "postgres://postgres:{SUPERUSER_PASSWORD}@{host}:{}/postgres?{params}",
        cluster.port()
    )
    .parse()
    .expect("options")
}

/// Whether the replication session is encrypted, per the server.
async fn replication_ssl(options: &PgConnectOptions) -> Result<bool, ReplicationError> {
    let mut connection = ReplicationConnection::connect(options).await?;
    let rows = connection.simple_query(SSL_OF_THIS_SESSION).await?;
    Ok(rows[0][0].as_deref() == Some("true"))
}

/// Whether the control-plane session is encrypted, per the server.
async fn control_ssl(options: &PgConnectOptions) -> Result<bool, ConnectError> {
    let client = options.connect_control().await?;
    let row = client
        .query_one(SSL_OF_THIS_SESSION, &[])
        .await
        .map_err(ConnectError::Postgres)?;
    Ok(row.get::<_, String>(0) == "true")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_decides_encryption_and_verification_on_both_planes() {
    let cluster = PgCluster::builder().tls().start().expect("cluster");
    let ca = cluster
        .tls_root_cert()
        .expect("a TLS cluster has a CA")
        .display()
        .to_string();

    for (host, params, encrypted) in [
        ("127.0.0.1", "sslmode=disable".to_owned(), false),
        ("127.0.0.1", "sslmode=prefer".to_owned(), true),
        ("127.0.0.1", "sslmode=require".to_owned(), true),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={ca}"),
            true,
        ),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            true,
        ),
    ] {
        let options = options(&cluster, host, &params);
        assert_eq!(
            replication_ssl(&options).await.expect(&params),
            encrypted,
            "replication, {params}"
        );
        assert_eq!(
            control_ssl(&options).await.expect(&params),
            encrypted,
            "control, {params}"
        );
    }

    // The certificate names localhost only: verify-full by IP fails, verify-ca passes.
    let by_ip = options(
        &cluster,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let error = replication_ssl(&by_ip)
        .await
        .expect_err("host name mismatch");
    assert!(matches!(error, ReplicationError::Tls(_)), "{error}");
    assert!(
        control_ssl(&by_ip).await.is_err(),
        "control plane verifies the host too"
    );

    // A certificate from another CA is refused.
    let other = tempfile::tempdir().expect("dir");
    let other_ca = generate_certificates(other.path(), "localhost")
        .expect("other CA")
        .ca_cert;
    let wrong_ca = options(
        &cluster,
        "localhost",
        &format!("sslmode=verify-ca&sslrootcert={}", other_ca.display()),
    );
    let error = replication_ssl(&wrong_ca)
        .await
        .expect_err("untrusted chain");
    assert!(
        error.to_string().contains("certificate verify failed"),
        "{error}"
    );
    assert!(control_ssl(&wrong_ca).await.is_err());

    // Verification without a root certificate is a configuration error, named.
    let no_root = options(&cluster, "localhost", "sslmode=verify-full");
    let error = replication_ssl(&no_root).await.expect_err("no root cert");
    assert!(
        matches!(&error, ReplicationError::Config(message) if message.contains("sslrootcert")),
        "{error}"
    );
    let error = control_ssl(&no_root).await.expect_err("no root cert");
    assert!(
        matches!(&error, ConnectError::Options(message) if message.0.contains("sslrootcert")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_refuses_a_server_without_tls_and_prefer_falls_back() {
    let cluster = PgCluster::start().expect("cluster");
    let error = replication_ssl(&options(&cluster, "127.0.0.1", "sslmode=require"))
        .await
        .expect_err("no TLS on the server");
    assert!(
        matches!(&error, ReplicationError::Tls(message) if message.contains("does not accept TLS")),
        "{error}"
    );
    assert!(!error.is_retryable());
    let plain = replication_ssl(&options(&cluster, "127.0.0.1", "sslmode=prefer"))
        .await
        .expect("prefer");
    assert!(!plain);
}

/// `weir slot list` over `url` with OpenSSL's default store set to `system_store`.
fn list_slots_with_system_store(url: &str, system_store: &std::path::Path) -> std::process::Output {
    std::process::Command::new(target_bin_path("weir"))
        .args(["slot", "list", "--url", url])
        .env("SSL_CERT_FILE", system_store)
        .output()
        .expect("weir runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_trusts_the_root_certificate_alone() {
    let cluster = PgCluster::builder().tls().start().expect("cluster");
    let ca = cluster.tls_root_cert().expect("a TLS cluster has a CA");
    let other = tempfile::tempdir().expect("dir");
    let other_ca = generate_certificates(other.path(), "localhost")
        .expect("other CA")
        .ca_cert;
    let url = |root: &std::path::Path| {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@localhost:{}/postgres?sslmode=verify-ca&sslrootcert={}",
            cluster.port(),
            root.display()
        )
    };

    // The server's CA in the system store and another in sslrootcert: refused,
    // as libpq refuses it.
    let refused = list_slots_with_system_store(&url(&other_ca), ca);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("certificate verify failed"), "{stderr}");

    // The other way round: sslrootcert is what counts.
    let accepted = list_slots_with_system_store(&url(ca), &other_ca);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stderr)
    );
}
