//! A PostgreSQL connection in logical replication mode (`replication=database`).
//!
//! tokio-postgres cannot open one (it has no CopyBoth sub-protocol), so this speaks the
//! frontend/backend protocol itself, with postgres-protocol's message codecs and its
//! SCRAM and MD5 implementations.

use std::collections::HashMap;

use bytes::{Buf as _, BytesMut};
use fallible_iterator::FallibleIterator as _;
use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, SCRAM_SHA_256, ScramSha256};
use postgres_protocol::message::backend::{ErrorFields, Message};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_postgres::config::{Host, TargetSessionAttrs};

use crate::source::connect::{PgConnectOptions, TlsMode, mode_name};

use super::error::{ReplicationError, ServerError};

/// Read buffer growth step: large enough that a busy stream needs few reads.
const READ_CHUNK: usize = 64 * 1024;

/// Session settings that fix the text forms pgoutput sends, so decoding does not
/// depend on the server's or role's defaults: ISO dates, UTC, ISO 8601 intervals,
/// floats with all digits, hex bytea. Public so tests can compare against the same
/// forms from an ordinary session.
pub const SESSION_SETTINGS: [(&str, &str); 7] = [
    ("client_encoding", "UTF8"),
    ("DateStyle", "ISO, MDY"),
    ("TimeZone", "UTC"),
    ("IntervalStyle", "iso_8601"),
    ("extra_float_digits", "3"),
    ("bytea_output", "hex"),
    // `money` as `-$1,234.56` whatever the server's locale, so it parses.
    ("lc_monetary", "C"),
];

/// [`SESSION_SETTINGS`] as `SET` statements, for an ordinary session that reads
/// values in pgoutput's text forms (snapshots, TOAST look-ups).
pub fn session_settings_sql() -> String {
    SESSION_SETTINGS
        .iter()
        .map(|(name, value)| format!("SET {name} = '{value}'; "))
        .collect()
}

/// The byte stream under a connection (TCP or a unix socket; TLS later).
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Transport for T {}

/// What the server sent: a protocol message, or `CopyBothResponse`, which
/// postgres-protocol's parser does not know.
pub(crate) enum Backend {
    Message(Message),
    CopyBoth,
}

/// An authenticated replication-mode connection, ready for replication commands.
pub struct ReplicationConnection {
    transport: Box<dyn Transport>,
    read: BytesMut,
    write: BytesMut,
    parameters: HashMap<String, String>,
}

impl std::fmt::Debug for ReplicationConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationConnection")
            .field("parameters", &self.parameters)
            .finish_non_exhaustive()
    }
}

impl ReplicationConnection {
    /// Connects (with TLS as `sslmode` says) and authenticates (trust, password, MD5
    /// or SCRAM-SHA-256), trying the hosts in order as libpq does: a host that
    /// cannot be reached or refuses the login gives way to the next, and with
    /// `target_session_attrs=read-write` so does one in recovery (a standby), so a
    /// URL that names every member of a cluster finds its primary after a failover.
    ///
    /// # Errors
    ///
    /// [`ReplicationError::Config`] for unusable settings (e.g. `verify-ca` without a
    /// root certificate), otherwise the last host's failure: `Tls` when TLS is
    /// required and fails or is refused, `Connect` when it does not answer, `Server`
    /// for errors the server reports (bad password, no REPLICATION privilege, too
    /// many WAL senders), `ReadOnly` when it is a standby and a read-write server
    /// was asked for.
    pub async fn connect(options: &PgConnectOptions) -> Result<Self, ReplicationError> {
        let hosts = options.config.get_hosts();
        if hosts.is_empty() {
            return Err(ReplicationError::Config("no host given".to_owned()));
        }
        let read_write = options.config.get_target_session_attrs() == TargetSessionAttrs::ReadWrite;
        let mut last_error = None;
        for index in 0..hosts.len() {
            let address = options.host_address(index);
            let attempt = async {
                let transport = open_transport(options, index).await?;
                let mut connection = ReplicationConnection {
                    transport,
                    read: BytesMut::with_capacity(READ_CHUNK),
                    write: BytesMut::new(),
                    parameters: HashMap::new(),
                };
                connection.startup(&options.config).await?;
                if read_write && connection.in_recovery().await? {
                    return Err(ReplicationError::ReadOnly {
                        address: address.clone(),
                    });
                }
                Ok(connection)
            };
            match attempt.await {
                Ok(connection) => return Ok(connection),
                Err(error @ ReplicationError::Config(_)) => return Err(error),
                Err(error) => {
                    if hosts.len() > 1 {
                        tracing::debug!(%address, %error, "Trying the next host.");
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(ReplicationError::Config("no host given".to_owned())))
    }

    /// Whether the server is a standby: `SHOW transaction_read_only`, which libpq
    /// asks for `target_session_attrs=read-write` too (a replication-mode
    /// connection runs `SHOW` as a replication command on every version).
    async fn in_recovery(&mut self) -> Result<bool, ReplicationError> {
        let rows = self.simple_query("SHOW transaction_read_only").await?;
        Ok(rows
            .first()
            .and_then(|row| row.first())
            .and_then(Option::as_deref)
            == Some("on"))
    }

    /// A run-time parameter the server reported (e.g. `server_version`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).map(String::as_str)
    }

    /// The server's major version (e.g. 15), from `server_version`.
    pub fn server_major_version(&self) -> Option<u32> {
        let version = self.parameter("server_version")?;
        let major: String = version.chars().take_while(char::is_ascii_digit).collect();
        major.parse().ok()
    }

    async fn startup(&mut self, config: &tokio_postgres::Config) -> Result<(), ReplicationError> {
        let user = config
            .get_user()
            .ok_or_else(|| ReplicationError::Config("no user given".to_owned()))?;
        let database = config.get_dbname().unwrap_or(user);
        let application = config.get_application_name().unwrap_or("weir");
        let mut parameters = vec![
            ("user", user),
            ("database", database),
            ("replication", "database"),
            ("application_name", application),
        ];
        parameters.extend(SESSION_SETTINGS);
        frontend::startup_message(parameters, &mut self.write)?;
        self.flush().await?;

        let password = config.get_password();
        let mut scram: Option<ScramSha256> = None;
        loop {
            match self.next_message().await? {
                Message::ErrorResponse(body) => return Err(server_error(body.fields())?.into()),
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let password = password.ok_or(ReplicationError::PasswordRequired)?;
                    frontend::password_message(password, &mut self.write)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let password = password.ok_or(ReplicationError::PasswordRequired)?;
                    let hashed = md5_hash(user.as_bytes(), password, body.salt());
                    frontend::password_message(hashed.as_bytes(), &mut self.write)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl(body) => {
                    let password = password.ok_or(ReplicationError::PasswordRequired)?;
                    let mechanisms: Vec<String> = body
                        .mechanisms()
                        .map(|m| Ok(m.to_owned()))
                        .collect()
                        .map_err(ReplicationError::Io)?;
                    if !mechanisms.iter().any(|m| m == SCRAM_SHA_256) {
                        return Err(ReplicationError::UnsupportedAuthentication(format!(
                            "SASL mechanisms {mechanisms:?}"
                        )));
                    }
                    let state = ScramSha256::new(password, ChannelBinding::unsupported());
                    frontend::sasl_initial_response(
                        SCRAM_SHA_256,
                        state.message(),
                        &mut self.write,
                    )?;
                    self.flush().await?;
                    scram = Some(state);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let state = scram.as_mut().ok_or_else(|| {
                        ReplicationError::Protocol("SASL continue without SASL start".to_owned())
                    })?;
                    state
                        .update(body.data())
                        .map_err(ReplicationError::Authentication)?;
                    frontend::sasl_response(state.message(), &mut self.write)?;
                    self.flush().await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let state = scram.as_mut().ok_or_else(|| {
                        ReplicationError::Protocol("SASL final without SASL start".to_owned())
                    })?;
                    state
                        .finish(body.data())
                        .map_err(ReplicationError::Authentication)?;
                }
                Message::AuthenticationGss
                | Message::AuthenticationKerberosV5
                | Message::AuthenticationScmCredential
                | Message::AuthenticationSspi
                | Message::AuthenticationGssContinue(_) => {
                    return Err(ReplicationError::UnsupportedAuthentication(
                        "GSSAPI/SSPI/Kerberos".to_owned(),
                    ));
                }
                Message::ParameterStatus(body) => {
                    self.parameters
                        .insert(body.name()?.to_owned(), body.value()?.to_owned());
                }
                Message::BackendKeyData(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(()),
                other => return Err(unexpected("startup", &other)),
            }
        }
    }

    /// Runs a replication command or SQL statement with the simple query protocol and
    /// returns its result rows as text.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        self.send_query(sql).await?;
        let mut rows = Vec::new();
        // After an error the server still ends the query with ReadyForQuery; consume it
        // so the connection stays usable.
        let mut failure = None;
        loop {
            match self.next_message().await? {
                Message::ErrorResponse(body) => failure = Some(server_error(body.fields())?),
                Message::RowDescription(_)
                | Message::CommandComplete(_)
                | Message::EmptyQueryResponse
                | Message::NoticeResponse(_) => {}
                Message::ParameterStatus(body) => {
                    self.parameters
                        .insert(body.name()?.to_owned(), body.value()?.to_owned());
                }
                Message::DataRow(body) => {
                    let buffer = body.buffer();
                    let row = body
                        .ranges()
                        .map(|range| {
                            Ok(range
                                .and_then(|r| buffer.get(r))
                                .map(|v| String::from_utf8_lossy(v).into_owned()))
                        })
                        .collect()
                        .map_err(ReplicationError::Io)?;
                    rows.push(row);
                }
                Message::ReadyForQuery(_) => {
                    return match failure {
                        Some(error) => Err(error.into()),
                        None => Ok(rows),
                    };
                }
                other => return Err(unexpected("a query result", &other)),
            }
        }
    }

    pub(crate) async fn send_query(&mut self, sql: &str) -> Result<(), ReplicationError> {
        frontend::query(sql, &mut self.write)?;
        self.flush().await
    }

    pub(crate) async fn flush(&mut self) -> Result<(), ReplicationError> {
        self.transport.write_all(&self.write).await?;
        self.transport.flush().await?;
        self.write.clear();
        Ok(())
    }

    pub(crate) fn write_buffer(&mut self) -> &mut BytesMut {
        &mut self.write
    }

    /// The next protocol message; `CopyBothResponse` is a protocol error here.
    pub(crate) async fn next_message(&mut self) -> Result<Message, ReplicationError> {
        match self.next_backend().await? {
            Backend::Message(message) => Ok(message),
            Backend::CopyBoth => Err(ReplicationError::Protocol(
                "CopyBothResponse outside START_REPLICATION".to_owned(),
            )),
        }
    }

    /// The next backend message. Cancel-safe: bytes read before a cancellation stay in
    /// the buffer for the next call.
    pub(crate) async fn next_backend(&mut self) -> Result<Backend, ReplicationError> {
        loop {
            if self.read.len() >= 5 && self.read[0] == b'W' {
                let length =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                        as usize;
                if self.read.len() > length {
                    self.read.advance(1 + length);
                    return Ok(Backend::CopyBoth);
                }
            } else if let Some(message) = Message::parse(&mut self.read)? {
                return Ok(Backend::Message(message));
            }
            if self.read.capacity() - self.read.len() < READ_CHUNK / 4 {
                self.read.reserve(READ_CHUNK);
            }
            if self.transport.read_buf(&mut self.read).await? == 0 {
                return Err(ReplicationError::Closed);
            }
        }
    }
}

/// The byte stream to the `index`th host, TLS negotiated.
async fn open_transport(
    options: &PgConnectOptions,
    index: usize,
) -> Result<Box<dyn Transport>, ReplicationError> {
    let address = options.host_address(index);
    match options.config.get_hosts().get(index) {
        Some(Host::Tcp(name)) => match tokio::net::TcpStream::connect(&address).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                negotiate_tls(stream, name, options).await
            }
            Err(source) => Err(ReplicationError::Connect { address, source }),
        },
        // As in libpq, unix-domain sockets do not use TLS.
        Some(Host::Unix(_)) => match tokio::net::UnixStream::connect(&address).await {
            Ok(stream) => Ok(Box::new(stream)),
            Err(source) => Err(ReplicationError::Connect { address, source }),
        },
        None => Err(ReplicationError::Config("no host given".to_owned())),
    }
}

/// Asks the server for TLS (SSLRequest) unless `sslmode=disable`, and upgrades the
/// stream when it agrees.
async fn negotiate_tls(
    mut stream: tokio::net::TcpStream,
    host: &str,
    options: &PgConnectOptions,
) -> Result<Box<dyn Transport>, ReplicationError> {
    if options.tls_mode == TlsMode::Disable {
        return Ok(Box::new(stream));
    }
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    stream.write_all(&request).await?;
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {
            let tls = |e: openssl::error::ErrorStack| ReplicationError::Tls(e.to_string());
            let connector = options
                .tls_connector()
                .map_err(|e| ReplicationError::Config(e.to_string()))?;
            let mut configuration = connector.configure().map_err(tls)?;
            configuration.set_verify_hostname(options.verifies_host());
            let ssl = configuration.into_ssl(host).map_err(tls)?;
            let mut secured = tokio_openssl::SslStream::new(ssl, stream).map_err(tls)?;
            std::pin::Pin::new(&mut secured)
                .connect()
                .await
                .map_err(|e| ReplicationError::Tls(e.to_string()))?;
            Ok(Box::new(secured))
        }
        b'N' if options.tls_mode == TlsMode::Prefer => Ok(Box::new(stream)),
        b'N' => Err(ReplicationError::Tls(format!(
            "the server does not accept TLS, and sslmode={} requires it",
            mode_name(options.tls_mode)
        ))),
        other => Err(ReplicationError::Protocol(format!(
            "unexpected answer {other:#04x} to SSLRequest"
        ))),
    }
}

pub(crate) fn server_error(mut fields: ErrorFields<'_>) -> Result<ServerError, ReplicationError> {
    let mut error = ServerError::default();
    while let Some(field) = fields.next()? {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'S' => error.severity = value,
            b'C' => error.code = value,
            b'M' => error.message = value,
            b'D' => error.detail = Some(value),
            b'H' => error.hint = Some(value),
            _ => {}
        }
    }
    Ok(error)
}

pub(crate) fn unexpected(during: &str, message: &Message) -> ReplicationError {
    let name = match message {
        Message::CopyData(_) => "CopyData",
        Message::CopyDone => "CopyDone",
        Message::CopyInResponse(_) => "CopyInResponse",
        Message::CopyOutResponse(_) => "CopyOutResponse",
        Message::DataRow(_) => "DataRow",
        Message::RowDescription(_) => "RowDescription",
        Message::CommandComplete(_) => "CommandComplete",
        Message::ReadyForQuery(_) => "ReadyForQuery",
        _ => "another message",
    };
    ReplicationError::Protocol(format!("{name} during {during}"))
}
