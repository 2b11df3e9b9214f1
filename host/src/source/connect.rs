//! Connection settings for both planes, with libpq's TLS semantics.
//!
//! A `postgres://` URL (or libpq `key=value` string) as users write it for psql. weir
//! reads `sslmode` and `sslrootcert` itself, because tokio-postgres knows only
//! `disable`/`prefer`/`require`, and hands the rest to tokio-postgres:
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | no | no |
//! | `prefer` (default) | if the server offers TLS | no |
//! | `require` | yes | no; with `sslrootcert` like `verify-ca`, as in libpq |
//! | `verify-ca` | yes | chain against `sslrootcert` |
//! | `verify-full` | yes | chain, and the host name against the certificate |
//!
//! `sslrootcert` defaults to `~/.postgresql/root.crt`, as in libpq.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::OnceLock;

use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::Client;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsMode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, unverified.
    Prefer,
    /// TLS, unverified (verified against `sslrootcert` when given).
    Require,
    /// TLS with the certificate chain verified.
    VerifyCa,
    /// TLS with the chain and the host name verified.
    VerifyFull,
}

impl FromStr for TlsMode {
    type Err = ConnectOptionsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "disable" => TlsMode::Disable,
            "allow" | "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => {
                return Err(ConnectOptionsError(format!(
                    "sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// Connection settings that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid PostgreSQL connection settings: {0}")]
pub struct ConnectOptionsError(pub String);

/// Why a control-plane connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The settings are unusable (e.g. a missing root certificate).
    #[error(transparent)]
    Options(#[from] ConnectOptionsError),
    /// PostgreSQL could not be reached or refused the login.
    #[error("connecting to PostgreSQL failed")]
    Postgres(#[from] tokio_postgres::Error),
}

/// How to reach the database, from a URL or libpq key/value string.
#[derive(Debug, Clone)]
pub struct PgConnectOptions {
    /// Everything but TLS, as tokio-postgres reads it.
    pub config: tokio_postgres::Config,
    /// `sslmode`.
    pub tls_mode: TlsMode,
    /// `sslrootcert`: the CA certificates that sign the server's certificate.
    pub root_cert: Option<PathBuf>,
}

impl FromStr for PgConnectOptions {
    type Err = ConnectOptionsError;

    /// Parses `postgres://user:pass@host:port/db?sslmode=verify-full&sslrootcert=ca.pem`
    /// or `host=… user=… sslmode=…`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut tls_mode = TlsMode::Prefer;
        let mut root_cert = None;
        let mut take = |key: &str, value: &str| -> Result<bool, ConnectOptionsError> {
            match key {
                "sslmode" => tls_mode = value.parse()?,
                "sslrootcert" => root_cert = Some(PathBuf::from(value)),
                _ => return Ok(false),
            }
            Ok(true)
        };
        let rest = if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            match text.split_once('?') {
                Some((base, query)) => {
                    let mut kept = Vec::new();
                    for pair in query.split('&').filter(|p| !p.is_empty()) {
                        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                        if !take(key, value)? {
                            kept.push(pair);
                        }
                    }
                    if kept.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    }
                }
                None => text.to_owned(),
            }
        } else {
            let mut kept = Vec::new();
            for pair in text.split_whitespace() {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                if !take(key, value)? {
                    kept.push(pair);
                }
            }
            kept.join(" ")
        };
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| ConnectOptionsError(format!("{e}")))?;
        config.ssl_mode(match tls_mode {
            TlsMode::Disable => SslMode::Disable,
            TlsMode::Prefer => SslMode::Prefer,
            _ => SslMode::Require,
        });
        Ok(PgConnectOptions {
            config,
            tls_mode,
            root_cert,
        })
    }
}

impl PgConnectOptions {
    /// The port of the `index`th host: its own, the only one given, or 5432.
    pub fn host_port(&self, index: usize) -> u16 {
        match self.config.get_ports() {
            [] => 5432,
            [single] => *single,
            many => many.get(index).copied().unwrap_or(5432),
        }
    }

    /// `host:port` (or the socket path) of the `index`th host, as connected to
    /// and named in messages.
    pub fn host_address(&self, index: usize) -> String {
        let port = self.host_port(index);
        match self.config.get_hosts().get(index) {
            Some(Host::Tcp(name)) => format!("{name}:{port}"),
            Some(Host::Unix(dir)) => dir.join(format!(".s.PGSQL.{port}")).display().to_string(),
            None => String::new(),
        }
    }

    /// Whether the server's certificate chain is verified.
    pub fn verifies_chain(&self) -> bool {
        self.tls_mode >= TlsMode::VerifyCa
            || (self.tls_mode == TlsMode::Require && self.root_cert.is_some())
    }

    /// Whether the server's host name is verified against its certificate.
    pub fn verifies_host(&self) -> bool {
        self.tls_mode == TlsMode::VerifyFull
    }

    /// The OpenSSL connector for this mode. A verifying one trusts `sslrootcert`
    /// alone, as libpq does, not the system's certificate store; it is built for
    /// each connection, so a replaced root certificate counts at the next one. The
    /// non-verifying one reads no file of the user's and is built once: OpenSSL
    /// loads its default store into every new connector, about 50 ms.
    ///
    /// # Errors
    ///
    /// When verification is asked for and the root certificate cannot be loaded.
    pub fn tls_connector(&self) -> Result<SslConnector, ConnectOptionsError> {
        static UNVERIFIED: OnceLock<SslConnector> = OnceLock::new();
        if !self.verifies_chain()
            && let Some(connector) = UNVERIFIED.get()
        {
            return Ok(connector.clone());
        }
        let mut builder = SslConnector::builder(SslMethod::tls_client()).map_err(tls_setup)?;
        if self.verifies_chain() {
            // The builder starts from OpenSSL's default store: replaced by an
            // empty one, so only the root certificate below is trusted.
            builder.set_cert_store(X509StoreBuilder::new().map_err(tls_setup)?.build());
            let root = self
                .root_cert
                .clone()
                .or_else(default_root_cert)
                .ok_or_else(|| {
                    ConnectOptionsError(format!(
                        "sslmode={} needs sslrootcert (or ~/.postgresql/root.crt)",
                        mode_name(self.tls_mode)
                    ))
                })?;
            builder.set_ca_file(&root).map_err(|e| {
                ConnectOptionsError(format!("cannot load sslrootcert {}: {e}", root.display()))
            })?;
            builder.set_verify(SslVerifyMode::PEER);
            Ok(builder.build())
        } else {
            builder.set_verify(SslVerifyMode::NONE);
            Ok(UNVERIFIED.get_or_init(|| builder.build()).clone())
        }
    }

    /// Connects an ordinary (control-plane) session with these settings; its driver
    /// runs on the current tokio runtime.
    pub async fn connect_control(&self) -> Result<Client, ConnectError> {
        let client = if self.tls_mode == TlsMode::Disable {
            let (client, driver) = self.config.connect(tokio_postgres::NoTls).await?;
            spawn_driver(driver);
            client
        } else {
            let tls = LazyTls {
                // A verifying connector is built now: settings it cannot use (no
                // root certificate) fail as settings, not as a connection error
                // that would be retried.
                connector: if self.verifies_chain() {
                    Some(self.tls_connector()?)
                } else {
                    None
                },
                options: self.clone(),
            };
            let (client, driver) = self.config.connect(tls).await?;
            spawn_driver(driver);
            client
        };
        Ok(client)
    }
}

/// TLS for a control connection. An unverifying connector is built only once the
/// server has agreed to TLS: under `prefer` a server without TLS costs nothing.
#[derive(Clone)]
struct LazyTls {
    options: PgConnectOptions,
    /// Built already (the verifying modes).
    connector: Option<SslConnector>,
}

impl<S> MakeTlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_openssl::TlsStream<S>;
    type TlsConnect = LazyTlsConnect;
    type Error = ConnectOptionsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyTlsConnect, ConnectOptionsError> {
        Ok(LazyTlsConnect {
            tls: self.clone(),
            domain: domain.to_owned(),
        })
    }
}

/// [`LazyTls`] for one host.
struct LazyTlsConnect {
    tls: LazyTls,
    domain: String,
}

type TlsFuture<S> = Pin<
    Box<
        dyn Future<
                Output = Result<
                    postgres_openssl::TlsStream<S>,
                    Box<dyn std::error::Error + Send + Sync>,
                >,
            > + Send,
    >,
>;

impl<S> TlsConnect<S> for LazyTlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = postgres_openssl::TlsStream<S>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = TlsFuture<S>;

    fn connect(self, stream: S) -> TlsFuture<S> {
        let LazyTls { options, connector } = self.tls;
        let connector = match connector {
            Some(connector) => Ok(connector),
            None => options.tls_connector(),
        };
        let configured = connector.and_then(|connector| {
            let mut configuration = connector.configure().map_err(tls_setup)?;
            configuration.set_verify_hostname(options.verifies_host());
            Ok(postgres_openssl::TlsConnector::new(
                configuration,
                &self.domain,
            ))
        });
        match configured {
            Ok(connector) => connector.connect(stream),
            Err(error) => Box::pin(std::future::ready(Err(error.into()))),
        }
    }
}

fn tls_setup(error: openssl::error::ErrorStack) -> ConnectOptionsError {
    ConnectOptionsError(format!("TLS setup: {error}"))
}

fn spawn_driver<F>(driver: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = driver.await {
            tracing::debug!(%error, "Control connection closed.");
        }
    });
}

fn default_root_cert() -> Option<PathBuf> {
    let path = PathBuf::from(std::env::var_os("HOME")?).join(".postgresql/root.crt");
    path.exists().then_some(path)
}

pub(crate) fn mode_name(mode: TlsMode) -> &'static str {
    match mode {
        TlsMode::Disable => "disable",
        TlsMode::Prefer => "prefer",
        TlsMode::Require => "require",
        TlsMode::VerifyCa => "verify-ca",
        TlsMode::VerifyFull => "verify-full",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_settings_are_taken_out_of_urls_and_key_values() {
        let url: PgConnectOptions = "postgres://u:p@db:5433/shop?sslmode=verify-full&sslrootcert=/ca.pem&application_name=x"
            .parse()
            .expect("valid");
        assert_eq!(url.tls_mode, TlsMode::VerifyFull);
        assert_eq!(url.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(url.config.get_application_name(), Some("x"));
        assert_eq!(url.config.get_dbname(), Some("shop"));
        assert!(url.verifies_chain() && url.verifies_host());

        let kv: PgConnectOptions = "host=db user=u sslmode=require".parse().expect("valid");
        assert_eq!(kv.tls_mode, TlsMode::Require);
        assert!(!kv.verifies_chain());
        assert_eq!(kv.config.get_user(), Some("u"));

        let default: PgConnectOptions = "postgres://u@db/shop".parse().expect("valid");
        assert_eq!(default.tls_mode, TlsMode::Prefer);

        let bad = "postgres://u@db/shop?sslmode=always"
            .parse::<PgConnectOptions>()
            .expect_err("bad mode");
        assert!(bad.to_string().contains("always"), "{bad}");
    }
}
