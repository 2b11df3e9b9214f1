//! Throwaway PostgreSQL clusters.
//!
//! Each [`PgCluster`] is a fresh `initdb` in its own temporary directory, served by a
//! `postgres` process listening on a free loopback port and a private unix socket. It
//! is stopped and its directory removed when the value is dropped, also when the test
//! panics. A test process killed outright cannot run `Drop`; the next cluster started
//! on the machine sweeps what it left behind (see [`sweep_stale_clusters`]).
//!
//! When the harness runs as root (as CI does), `initdb` and `postgres` run as the
//! `postgres` OS user, since PostgreSQL refuses to run as root.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::chown;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, getuid};
use tokio_postgres::NoTls;

use crate::error::HarnessError;
use crate::pg_install::PgInstall;
use crate::port::free_loopback_port;
use weir::Lsn;

/// Directory names the harness creates under the system temp dir start with this.
const CLUSTER_DIR_PREFIX: &str = "weir-pg-";
/// How long a starting server may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an immediate shutdown may take before the postmaster is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts to start on a fresh port when another process took ours first.
const PORT_ATTEMPTS: usize = 5;

/// The superuser's password. With the default `trust` authentication it is not
/// checked; with [`PgClusterBuilder::host_auth`] it is.
pub const SUPERUSER_PASSWORD: &str = "weir-test";

/// Settings for a cluster to start. Defaults suit logical replication tests.
#[derive(Debug, Clone)]
pub struct PgClusterBuilder {
    settings: Vec<(String, String)>,
    host_auth: String,
    tls: bool,
    install: Option<PgInstall>,
}

impl Default for PgClusterBuilder {
    fn default() -> Self {
        let settings = [
            ("wal_level", "logical"),
            ("max_replication_slots", "20"),
            ("max_wal_senders", "20"),
            // Durability is not under test here; speed is welcome.
            ("fsync", "off"),
            ("full_page_writes", "off"),
            ("shared_buffers", "64MB"),
            ("max_connections", "50"),
        ];
        Self {
            settings: settings
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            host_auth: "trust".to_owned(),
            tls: false,
            install: None,
        }
    }
}

impl PgClusterBuilder {
    /// Sets (or overrides) a `postgresql.conf` setting, e.g. `("wal_level", "replica")`.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != name);
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The authentication method for TCP connections (`trust` by default; `md5`,
    /// `scram-sha-256`, `password`, `reject`), for normal and replication connections
    /// alike. The unix socket stays `trust`.
    pub fn host_auth(mut self, method: &str) -> Self {
        method.clone_into(&mut self.host_auth);
        self
    }

    /// Serves TLS with a certificate for `localhost` signed by a throwaway CA (see
    /// [`PgCluster::tls_root_cert`]); plain connections stay allowed.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Runs this PostgreSQL build instead of the one `WEIR_TEST_PG` selects.
    pub fn install(mut self, install: PgInstall) -> Self {
        self.install = Some(install);
        self
    }

    /// Runs `initdb` and starts the server; returns once it accepts connections.
    pub fn start(self) -> Result<PgCluster, HarnessError> {
        sweep_stale_clusters();
        let install = match self.install.clone() {
            Some(install) => install,
            None => PgInstall::selected()?,
        };
        let owner = ServerUser::resolve()?;
        let dir = tempfile::Builder::new()
            .prefix(CLUSTER_DIR_PREFIX)
            .tempdir()
            .map_err(|e| HarnessError::io("create cluster dir", e))?;
        crate::stale::claim(dir.path())?;
        owner.chown(dir.path())?;

        let data = dir.path().join("data");
        let password_file = dir.path().join("superuser-password");
        fs::write(&password_file, SUPERUSER_PASSWORD)
            .map_err(|e| HarnessError::io("write the password file", e))?;
        owner.chown(&password_file)?;
        let mut initdb = install.command("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-E", "UTF8", "--locale=C.UTF-8", "-N"])
            .arg("--auth-local=trust")
            .arg(format!("--auth-host={}", self.host_auth))
            .arg(format!("--pwfile={}", password_file.display()))
            .stdin(Stdio::null());
        owner.apply(&mut initdb);
        let output = initdb
            .output()
            .map_err(|e| HarnessError::io("run initdb", e))?;
        if !output.status.success() {
            return Err(HarnessError::Command {
                what: "initdb",
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }

        let mut settings = self.settings.clone();
        let mut tls_root_cert = None;
        if self.tls {
            let certificates = crate::tls::generate_certificates(dir.path(), "localhost")?;
            owner.chown(&certificates.server_cert)?;
            owner.chown(&certificates.server_key)?;
            // PostgreSQL refuses a key others can read.
            fs::set_permissions(
                &certificates.server_key,
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            )
            .map_err(|e| HarnessError::io("restrict the server key", e))?;
            settings.push(("ssl".to_owned(), "on".to_owned()));
            settings.push((
                "ssl_cert_file".to_owned(),
                certificates.server_cert.display().to_string(),
            ));
            settings.push((
                "ssl_key_file".to_owned(),
                certificates.server_key.display().to_string(),
            ));
            tls_root_cert = Some(certificates.ca_cert);
        }
        let (port, server) = spawn_on_free_port(&install, dir.path(), &data, &settings, &owner)?;
        Ok(PgCluster {
            dir: Some(dir),
            port,
            server,
            tls_root_cert,
            settings,
            owner,
            install,
        })
    }
}

/// Copies a running cluster's data directory for a base backup, leaving out what
/// PostgreSQL's documentation says to leave out: the WAL (streamed instead), the
/// server's pid file, its replication slots and its runtime state.
fn copy_data_dir(from: &Path, to: &Path, owner: &ServerUser) -> Result<(), HarnessError> {
    const EMPTIED: [&str; 8] = [
        "pg_wal",
        "pg_replslot",
        "pg_dynshmem",
        "pg_notify",
        "pg_serial",
        "pg_snapshots",
        "pg_stat_tmp",
        "pg_subtrans",
    ];
    const LEFT_OUT: [&str; 3] = ["postmaster.pid", "postmaster.opts", "backup_label.old"];
    fn copy(from: &Path, to: &Path, top: bool, owner: &ServerUser) -> Result<(), HarnessError> {
        fs::create_dir_all(to).map_err(|e| HarnessError::io("create a backup directory", e))?;
        fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(|e| HarnessError::io("restrict a backup directory", e))?;
        owner.chown(to)?;
        let entries = fs::read_dir(from).map_err(|e| HarnessError::io("list the data dir", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| HarnessError::io("list the data dir", e))?;
            let name = entry.file_name();
            let name_text = name.to_string_lossy();
            if top && LEFT_OUT.contains(&name_text.as_ref()) {
                continue;
            }
            let target = to.join(&name);
            let kind = match entry.file_type() {
                Ok(kind) => kind,
                // Removed meanwhile (a temporary file).
                Err(_) => continue,
            };
            if kind.is_dir() {
                if top && EMPTIED.contains(&name_text.as_ref()) {
                    fs::create_dir_all(&target)
                        .map_err(|e| HarnessError::io("create a backup directory", e))?;
                    owner.chown(&target)?;
                } else {
                    copy(&entry.path(), &target, false, owner)?;
                }
            } else if kind.is_file() {
                match fs::copy(entry.path(), &target) {
                    Ok(_) => owner.chown(&target)?,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(HarnessError::io("copy the data dir", e)),
                }
            }
        }
        Ok(())
    }
    copy(from, to, true, owner)
}

/// Starts the server of `data` on a free port, trying another when a process took
/// the one chosen first.
fn spawn_on_free_port(
    install: &PgInstall,
    dir: &Path,
    data: &Path,
    settings: &[(String, String)],
    owner: &ServerUser,
) -> Result<(u16, Child), HarnessError> {
    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = free_loopback_port()?;
        match spawn_server(install, dir, data, port, settings, owner) {
            Ok(server) => return Ok((port, server)),
            Err(e @ HarnessError::PortTaken { .. }) => last_error = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or(HarnessError::Command {
        what: "postgres",
        detail: "no free port".to_owned(),
    }))
}

/// A running throwaway PostgreSQL cluster. Stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    dir: Option<tempfile::TempDir>,
    port: u16,
    server: Child,
    tls_root_cert: Option<PathBuf>,
    /// What the server was started with, to start it again.
    settings: Vec<(String, String)>,
    owner: ServerUser,
    install: PgInstall,
}

impl PgCluster {
    /// Starts a cluster with the default settings (`wal_level=logical`).
    pub fn start() -> Result<Self, HarnessError> {
        PgClusterBuilder::default().start()
    }

    /// Settings to change before starting.
    pub fn builder() -> PgClusterBuilder {
        PgClusterBuilder::default()
    }

    /// The CA certificate that signed the server's, for clusters started with
    /// [`PgClusterBuilder::tls`].
    pub fn tls_root_cert(&self) -> Option<&Path> {
        self.tls_root_cert.as_deref()
    }

    /// The PostgreSQL build this cluster runs.
    pub fn install(&self) -> &PgInstall {
        &self.install
    }

    /// The server's major version (`server_version_num / 10000`).
    pub async fn major_version(&self) -> Result<u32, HarnessError> {
        let client = self.connect("postgres").await?;
        weir::source::catalog::server_major_version(&client)
            .await
            .map_err(|e| HarnessError::Command {
                what: "server_version_num",
                detail: e.to_string(),
            })
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The postmaster's process id.
    pub fn pid(&self) -> u32 {
        self.server.id()
    }

    /// The cluster's directory (data dir, socket and log inside).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }

    /// A connection URL for `database` as the superuser `postgres` (with its password).
    pub fn url(&self, database: &str) -> String {
        self.url_as("postgres", SUPERUSER_PASSWORD, database)
    }

    /// A connection URL for `database` as `user` with `password`.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The server log so far, for failure messages.
    pub fn server_log(&self) -> String {
        fs::read_to_string(self.dir().join(SERVER_LOG)).unwrap_or_default()
    }

    /// Connects to `database`; the connection task runs on the current tokio runtime.
    pub async fn connect(&self, database: &str) -> Result<tokio_postgres::Client, HarnessError> {
        let (client, connection) = tokio_postgres::connect(&self.url(database), NoTls)
            .await
            .map_err(HarnessError::Postgres)?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "Harness connection closed.");
            }
        });
        Ok(client)
    }

    /// Creates a database with a name unique to this process and returns the name.
    pub async fn create_database(&self, stem: &str) -> Result<String, HarnessError> {
        let name = crate::unique_name(stem);
        self.execute("postgres", &format!("CREATE DATABASE \"{name}\""))
            .await?;
        Ok(name)
    }

    /// [`PgCluster::create_database`], then `setup` (SQL statements) in it.
    pub async fn create_database_with(
        &self,
        stem: &str,
        setup: &str,
    ) -> Result<String, HarnessError> {
        let name = self.create_database(stem).await?;
        self.execute(&name, setup).await?;
        Ok(name)
    }

    /// Runs one or more SQL statements in `database` (simple query protocol).
    pub async fn execute(&self, database: &str, sql: &str) -> Result<(), HarnessError> {
        self.connect(database)
            .await?
            .batch_execute(sql)
            .await
            .map_err(HarnessError::Postgres)
    }

    /// Runs a SQL script statement by statement, as `psql -f` would: each statement
    /// commits on its own unless the script opens a transaction with `BEGIN`. (Sent as
    /// one simple query, a script would run as a single implicit transaction.)
    ///
    /// Statements end with `;` at the end of a line; `--` comment lines are skipped.
    pub async fn execute_script(&self, database: &str, script: &str) -> Result<(), HarnessError> {
        let client = self.connect(database).await?;
        for statement in split_sql_script(script) {
            client
                .batch_execute(&statement)
                .await
                .map_err(HarnessError::Postgres)?;
        }
        Ok(())
    }

    /// The rows of `pg_replication_slots`, ordered by slot name.
    pub async fn replication_slots(&self) -> Result<Vec<ReplicationSlot>, HarnessError> {
        let client = self.connect("postgres").await?;
        let rows = client
            .query(
                "SELECT slot_name::text, plugin::text, slot_type, database::text, active, \
                        active_pid, restart_lsn::text, confirmed_flush_lsn::text \
                 FROM pg_replication_slots ORDER BY slot_name",
                &[],
            )
            .await
            .map_err(HarnessError::Postgres)?;
        rows.iter()
            .map(|row| {
                let lsn = |i: usize| -> Result<Option<Lsn>, HarnessError> {
                    row.get::<_, Option<String>>(i)
                        .map(|text| text.parse().map_err(HarnessError::from))
                        .transpose()
                };
                Ok(ReplicationSlot {
                    slot_name: row.get(0),
                    plugin: row.get(1),
                    slot_type: row.get(2),
                    database: row.get(3),
                    active: row.get(4),
                    active_pid: row.get(5),
                    restart_lsn: lsn(6)?,
                    confirmed_flush_lsn: lsn(7)?,
                })
            })
            .collect()
    }

    /// The position slot `slot` has confirmed, if the slot exists and has one
    /// (one look; [`Self::slot_watcher`] for many).
    pub async fn confirmed_flush_lsn(&self, slot: &str) -> Result<Option<Lsn>, HarnessError> {
        self.slot_watcher(slot).await?.confirmed().await
    }

    /// A watcher of slot `slot`'s confirmed position over one connection: polling
    /// with a connection per look forks a backend each time, which on 2 cores
    /// takes CPU from the reader being watched.
    pub async fn slot_watcher(&self, slot: &str) -> Result<SlotWatcher, HarnessError> {
        let client = self.connect("postgres").await?;
        let statement = client
            .prepare(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots \
                 WHERE slot_name = $1",
            )
            .await
            .map_err(HarnessError::Postgres)?;
        Ok(SlotWatcher {
            client,
            statement,
            slot: slot.to_owned(),
        })
    }

    /// Waits until slot `slot` has confirmed `lsn` or later: a pipeline confirms only
    /// what Kafka acknowledged.
    pub async fn wait_confirmed(
        &self,
        slot: &str,
        lsn: Lsn,
        within: std::time::Duration,
    ) -> Result<(), HarnessError> {
        let watcher = self.slot_watcher(slot).await?;
        poll_until(
            || format!("waiting for slot {slot} to confirm {lsn}"),
            within,
            Duration::from_millis(20),
            || async { Ok(watcher.confirmed().await?.is_some_and(|c| c >= lsn)) },
        )
        .await
    }

    /// Waits until a walsender holding slot `slot` is streaming. `active` alone is
    /// not enough: a slot is also active while `CREATE_REPLICATION_SLOT` runs, and is
    /// released again before `START_REPLICATION` takes it.
    pub async fn wait_streaming(
        &self,
        slot: &str,
        within: std::time::Duration,
    ) -> Result<(), HarnessError> {
        let client = self.connect("postgres").await?;
        let statement = client
            .prepare(
                "SELECT 1 FROM pg_replication_slots s \
                 JOIN pg_stat_replication r ON r.pid = s.active_pid \
                 WHERE s.slot_name = $1 AND r.state = 'streaming'",
            )
            .await
            .map_err(HarnessError::Postgres)?;
        poll_until(
            || format!("waiting for slot {slot} to stream"),
            within,
            Duration::from_millis(50),
            || async {
                let row = client
                    .query_opt(&statement, &[&slot])
                    .await
                    .map_err(HarnessError::Postgres)?;
                Ok(row.is_some())
            },
        )
        .await
    }

    /// The server's current WAL write position (`pg_current_wal_lsn`). Under
    /// `synchronous_commit = off` it may still be before the last commit; see
    /// [`Self::wal_insert_lsn`].
    pub async fn current_wal_lsn(&self) -> Result<Lsn, HarnessError> {
        self.lsn_of("pg_current_wal_lsn()").await
    }

    /// The server's current WAL insert position: past every record written so
    /// far, whether or not the WAL writer has written it out yet.
    pub async fn wal_insert_lsn(&self) -> Result<Lsn, HarnessError> {
        self.lsn_of("pg_current_wal_insert_lsn()").await
    }

    async fn lsn_of(&self, function: &str) -> Result<Lsn, HarnessError> {
        let client = self.connect("postgres").await?;
        let row = client
            .query_one(&format!("SELECT {function}::text"), &[])
            .await
            .map_err(HarnessError::Postgres)?;
        Ok(row.get::<_, String>(0).parse()?)
    }

    /// Stops the server the way `pg_ctl stop -m fast` does (SIGINT: sessions are
    /// ended, walsenders finish their streams, a shutdown checkpoint is written),
    /// then starts it again on the same port and data directory. Returns how long
    /// the server was down.
    pub fn restart(&mut self) -> Result<Duration, HarnessError> {
        let stopped = Instant::now();
        let pid = i32::try_from(self.server.id()).map_err(|_| HarnessError::Command {
            what: "postgres",
            detail: "a process id out of range".to_owned(),
        })?;
        kill(Pid::from_raw(pid), Signal::SIGINT)
            .map_err(|e| HarnessError::io("signal postgres", e.into()))?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        while self
            .server
            .try_wait()
            .map_err(|e| HarnessError::io("wait for postgres", e))?
            .is_none()
        {
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    doing: "a fast shutdown".to_owned(),
                    after: STARTUP_TIMEOUT,
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let dir = self.dir().to_owned();
        self.server = spawn_server(
            &self.install,
            &dir,
            &dir.join("data"),
            self.port,
            &self.settings,
            &self.owner,
        )?;
        Ok(stopped.elapsed())
    }

    /// Starts a hot standby of this cluster, streaming from it through the physical
    /// slot `slot`, with `hot_standby_feedback` on and, from PostgreSQL 17,
    /// `sync_replication_slots` on, so it keeps copies of the primary's failover
    /// slots. Its `settings` are this cluster's plus `extra`.
    ///
    /// The base backup is PostgreSQL's low-level one (`pg_backup_start`, a file
    /// copy, `pg_backup_stop`): the builds the harness runs ship no
    /// `pg_basebackup`, and Debian's refuses newer servers.
    pub async fn start_standby(
        &self,
        slot: &str,
        extra: &[(&str, &str)],
    ) -> Result<PgCluster, HarnessError> {
        let dir = tempfile::Builder::new()
            .prefix(CLUSTER_DIR_PREFIX)
            .tempdir()
            .map_err(|e| HarnessError::io("create cluster dir", e))?;
        crate::stale::claim(dir.path())?;
        self.owner.chown(dir.path())?;
        let data = dir.path().join("data");
        let client = self.connect("postgres").await?;
        let sql = |e| HarnessError::Postgres(e);
        // Reserved now: the standby streams the WAL from the backup's start.
        client
            .execute(
                "SELECT pg_create_physical_replication_slot($1, true)",
                &[&slot],
            )
            .await
            .map_err(sql)?;
        let modern = self.major_version().await? >= 15;
        client
            .execute(
                if modern {
                    "SELECT pg_backup_start('weir standby', true)"
                } else {
                    "SELECT pg_start_backup('weir standby', true, false)"
                },
                &[],
            )
            .await
            .map_err(sql)?;
        copy_data_dir(&self.dir().join("data"), &data, &self.owner)?;
        let label: String = client
            .query_one(
                if modern {
                    "SELECT labelfile FROM pg_backup_stop(true)"
                } else {
                    "SELECT labelfile FROM pg_stop_backup(false, true)"
                },
                &[],
            )
            .await
            .map_err(sql)?
            .get(0);
        let label_path = data.join("backup_label");
        fs::write(&label_path, label).map_err(|e| HarnessError::io("write backup_label", e))?;
        self.owner.chown(&label_path)?;
        let signal = data.join("standby.signal");
        fs::write(&signal, "").map_err(|e| HarnessError::io("write standby.signal", e))?;
        self.owner.chown(&signal)?;
        let mut settings: Vec<(String, String)> = self
            .settings
            .iter()
            // The certificate files are the primary's; the copy in the backup
            // would do, but a standby here needs no TLS. The slots the primary
            // waits for are no slots of the standby's: promoted, it would hold
            // every logical reader back waiting for them.
            .filter(|(name, _)| !name.starts_with("ssl") && name != "synchronized_standby_slots")
            .cloned()
            .collect();
        let mut set = |name: &str, value: String| {
            settings.retain(|(k, _)| k != name);
            settings.push((name.to_owned(), value));
        };
        // Where to stream from goes in postgresql.auto.conf, as ALTER SYSTEM
        // writes it, so a test can change it the same way (a `-c` would
        // override it). dbname: the slot synchronisation worker connects to a
        // database.
        let auto_conf = data.join("postgresql.auto.conf");
        let mut conf = fs::read_to_string(&auto_conf).unwrap_or_default();
        conf.push_str(&format!(
            "primary_conninfo = 'host=127.0.0.1 port={} user=postgres dbname=postgres'\nprimary_slot_name = '{slot}'\n",
            self.port
        ));
        fs::write(&auto_conf, conf)
            .map_err(|e| HarnessError::io("write postgresql.auto.conf", e))?;
        self.owner.chown(&auto_conf)?;
        set("hot_standby_feedback", "on".to_owned());
        if self.install.major >= 17 {
            set("sync_replication_slots", "on".to_owned());
        }
        for (name, value) in extra {
            set(name, (*value).to_owned());
        }
        let (port, server) =
            spawn_on_free_port(&self.install, dir.path(), &data, &settings, &self.owner)?;
        Ok(PgCluster {
            dir: Some(dir),
            port,
            server,
            tls_root_cert: None,
            settings,
            owner: self.owner.clone(),
            install: self.install.clone(),
        })
    }

    /// Promotes a standby (`pg_promote`, waiting up to a minute).
    pub async fn promote(&self) -> Result<(), HarnessError> {
        let client = self.connect("postgres").await?;
        let row = client
            .query_one("SELECT pg_promote(true, 60)", &[])
            .await
            .map_err(HarnessError::Postgres)?;
        if row.get::<_, bool>(0) {
            Ok(())
        } else {
            Err(HarnessError::Timeout {
                doing: "promoting the standby".to_owned(),
                after: Duration::from_secs(60),
            })
        }
    }

    /// Kills the postmaster with SIGKILL, as a crashed machine would leave it: no
    /// shutdown checkpoint, no goodbye to clients or standbys. Its backends notice
    /// and exit on their own.
    pub fn crash(&mut self) -> Result<(), HarnessError> {
        self.server
            .kill()
            .map_err(|e| HarnessError::io("kill postgres", e))?;
        self.server
            .wait()
            .map_err(|e| HarnessError::io("wait for postgres", e))?;
        Ok(())
    }

    fn stop(&mut self) {
        let Ok(pid) = i32::try_from(self.server.id()) else {
            return;
        };
        // Immediate shutdown: the postmaster stops its children before it exits, so once
        // it is reaped nothing of the cluster runs any more. Nothing here needs a clean
        // checkpoint: the directory is deleted next.
        let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        loop {
            match self.server.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.server.kill();
                    let _ = self.server.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_owned();
            if let Err(error) = dir.close() {
                eprintln!("weir-tests: could not remove {}: {error}", path.display());
            }
        }
    }
}

/// One row of `pg_replication_slots`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationSlot {
    pub slot_name: String,
    pub plugin: Option<String>,
    pub slot_type: String,
    pub database: Option<String>,
    pub active: bool,
    pub active_pid: Option<i32>,
    pub restart_lsn: Option<Lsn>,
    pub confirmed_flush_lsn: Option<Lsn>,
}

/// Splits a script into statements at lines ending in `;`, dropping `--` comment lines.
fn split_sql_script(script: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in script.lines() {
        if line.trim_start().starts_with("--") {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if line.trim_end().ends_with(';') {
            statements.push(std::mem::take(&mut current));
        }
    }
    if !current.trim().is_empty() {
        statements.push(current);
    }
    statements
}

const SERVER_LOG: &str = "server.log";

fn spawn_server(
    install: &PgInstall,
    dir: &Path,
    data: &Path,
    port: u16,
    settings: &[(String, String)],
    owner: &ServerUser,
) -> Result<Child, HarnessError> {
    let log_path = dir.join(SERVER_LOG);
    // Appended to, so a restarted server's log follows the first one's.
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| HarnessError::io("create server log", e))?;
    owner.chown(&log_path)?;
    let log_err = log
        .try_clone()
        .map_err(|e| HarnessError::io("clone server log", e))?;

    let mut command = install.command("postgres");
    command
        .arg("-D")
        .arg(data)
        .args(["-c", &format!("port={port}")])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", &format!("unix_socket_directories={}", dir.display())])
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    for (name, value) in settings {
        command.args(["-c", &format!("{name}={value}")]);
    }
    owner.apply(&mut command);
    let mut child = command
        .spawn()
        .map_err(|e| HarnessError::io("spawn postgres", e))?;

    let deadline = Instant::now() + STARTUP_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut text = String::new();
            let _ = fs::File::open(&log_path).and_then(|mut f| f.read_to_string(&mut text));
            if text.contains("could not bind") || text.contains("Address already in use") {
                return Err(HarnessError::PortTaken { port });
            }
            return Err(HarnessError::Command {
                what: "postgres",
                detail: format!("exited with {status} during startup:\n{text}"),
            });
        }
        if accepts_connections(install, port) {
            return Ok(child);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HarnessError::Command {
                what: "postgres",
                detail: format!("not ready after {STARTUP_TIMEOUT:?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether the server on `port` completes a startup handshake: `pg_isready`, which
/// distinguishes "starting up" from "accepting connections".
fn accepts_connections(install: &PgInstall, port: u16) -> bool {
    Command::new(install.client_tool("pg_isready"))
        .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-t", "1"])
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The OS user the server runs as: ourselves, or `postgres` when we are root.
#[derive(Debug, Clone)]
struct ServerUser(Option<User>);

impl ServerUser {
    fn resolve() -> Result<Self, HarnessError> {
        if !getuid().is_root() {
            return Ok(Self(None));
        }
        match User::from_name("postgres") {
            Ok(Some(user)) => Ok(Self(Some(user))),
            _ => Err(HarnessError::Command {
                what: "initdb",
                detail: "running as root needs an OS user `postgres` (apt-get install postgresql)"
                    .to_owned(),
            }),
        }
    }

    fn apply(&self, command: &mut Command) {
        if let Some(user) = &self.0 {
            command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        }
    }

    fn chown(&self, path: &Path) -> Result<(), HarnessError> {
        match &self.0 {
            Some(user) => chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| HarnessError::io("chown cluster dir", e)),
            None => Ok(()),
        }
    }
}

/// Stops and deletes clusters whose test process died without dropping them; the
/// postmaster is named in `data/postmaster.pid`.
pub fn sweep_stale_clusters() {
    crate::stale::sweep(CLUSTER_DIR_PREFIX, |dir| {
        crate::stale::read_pid(&dir.join("data/postmaster.pid"))
            .into_iter()
            .collect()
    });
}

/// Runs `check` every `interval` until it holds; after `within`, a timeout naming
/// `doing`.
async fn poll_until<F, Fut>(
    doing: impl FnOnce() -> String,
    within: Duration,
    interval: Duration,
    mut check: F,
) -> Result<(), HarnessError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool, HarnessError>>,
{
    let deadline = Instant::now() + within;
    while !check().await? {
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                doing: doing(),
                after: within,
            });
        }
        tokio::time::sleep(interval).await;
    }
    Ok(())
}

/// Looks up one slot's confirmed position over a connection kept open.
pub struct SlotWatcher {
    client: tokio_postgres::Client,
    statement: tokio_postgres::Statement,
    slot: String,
}

impl SlotWatcher {
    /// The slot's confirmed position, if the slot exists and has one.
    pub async fn confirmed(&self) -> Result<Option<Lsn>, HarnessError> {
        let row = self
            .client
            .query_opt(&self.statement, &[&self.slot])
            .await
            .map_err(HarnessError::Postgres)?;
        row.and_then(|row| row.get::<_, Option<String>>(0))
            .map(|text| text.parse().map_err(HarnessError::from))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::split_sql_script;

    #[test]
    fn scripts_split_at_line_final_semicolons() {
        let script = "-- comment\nBEGIN;\nINSERT INTO t\n  VALUES ('a;b');\nCOMMIT;\nSELECT 1";
        let statements = split_sql_script(script);
        assert_eq!(
            statements,
            [
                "BEGIN;\n",
                "INSERT INTO t\n  VALUES ('a;b');\n",
                "COMMIT;\n",
                "SELECT 1\n"
            ]
        );
    }
}
