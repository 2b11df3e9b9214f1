//! Apache Kafka clusters for tests: real brokers, started from the jars
//! `scripts/fetch-kafka.sh` put in `~/.cache/weir/kafka/<version>`.
//!
//! A [`KafkaCluster`] is 1 or 3 KRaft nodes, each a combined broker and controller
//! (`process.roles=broker,controller`), on free loopback ports in a temporary
//! directory. Each node has three listeners:
//!
//! - `CLIENT`, what tests and weir connect to: plaintext, or TLS and/or SASL as the
//!   builder asks;
//! - `INTERNAL`, plaintext, between brokers and for the harness's own Java tools;
//! - `CONTROLLER`, plaintext, the KRaft quorum.
//!
//! With ACLs on, the principals of the plaintext listeners (`User:ANONYMOUS`) and the
//! admin user are super users; everyone else is denied what no ACL allows.
//!
//! Nodes can be stopped (SIGTERM, a controlled shutdown), killed (`kill -9`) and
//! started again on their log dirs. Dropping the cluster kills every node and
//! removes the directory, also when the test panicked; a test process killed outright
//! leaves its brokers to the next cluster's sweep (see [`crate::stale`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};

use crate::error::HarnessError;
use crate::port::free_loopback_port;

/// Directory names the harness creates under the system temp dir start with this.
const CLUSTER_DIR_PREFIX: &str = "weir-kafka-";
/// How long a cluster may take from `java` to every broker answering metadata.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a controlled shutdown may take before the node is killed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at the whole cluster when another process took one of its ports first.
const PORT_ATTEMPTS: usize = 3;

/// The admin user of SASL clusters: a super user when ACLs are on.
pub const ADMIN_USER: &str = "admin";
/// The admin user's password.
pub const ADMIN_PASSWORD: &str = "admin-secret";

/// `tests/kafka/version`: the Apache Kafka version the harness runs.
pub fn kafka_version() -> &'static str {
    include_str!("../kafka/version").trim()
}

/// Where the broker's jars are: `$WEIR_KAFKA_HOME`, else
/// `~/.cache/weir/kafka/<version>` (as `scripts/lib.sh` says).
pub fn kafka_home() -> PathBuf {
    if let Some(home) = std::env::var_os("WEIR_KAFKA_HOME") {
        return PathBuf::from(home);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/root"), PathBuf::from);
    home.join(".cache/weir/kafka").join(kafka_version())
}

/// A SASL mechanism for the client listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`: users and passwords in the broker's JAAS configuration.
    Plain,
    /// `SCRAM-SHA-512`: credentials stored in the cluster metadata at format time.
    ScramSha512,
}

impl SaslMechanism {
    /// The mechanism's name in Kafka and librdkafka settings.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "PLAIN",
            Self::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// What a cluster should look like. Defaults: one node, plaintext, no ACLs.
#[derive(Debug, Clone)]
pub struct KafkaClusterBuilder {
    nodes: u32,
    sasl: Option<SaslMechanism>,
    tls: bool,
    acls: bool,
    users: Vec<(String, String)>,
    settings: Vec<(String, String)>,
    heap_mb: u32,
}

impl Default for KafkaClusterBuilder {
    fn default() -> Self {
        Self {
            nodes: 1,
            sasl: None,
            tls: false,
            acls: false,
            users: Vec::new(),
            settings: Vec::new(),
            heap_mb: 512,
        }
    }
}

impl KafkaClusterBuilder {
    /// How many nodes (1 or 3 are what tests use; any count from 1 works).
    pub fn nodes(mut self, nodes: u32) -> Self {
        self.nodes = nodes.max(1);
        self
    }

    /// Clients authenticate with `mechanism`; the admin user ([`ADMIN_USER`]) always
    /// exists, others come from [`Self::user`].
    pub fn sasl(mut self, mechanism: SaslMechanism) -> Self {
        self.sasl = Some(mechanism);
        self
    }

    /// The client listener speaks TLS with a certificate for `localhost` and
    /// `127.0.0.1`, signed by a throwaway CA ([`KafkaCluster::ca_cert`]).
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Turns on Kafka's `StandardAuthorizer`: what no ACL allows is denied.
    pub fn acls(mut self) -> Self {
        self.acls = true;
        self
    }

    /// A SASL user besides the admin.
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// The brokers' default `min.insync.replicas`.
    pub fn min_insync_replicas(self, replicas: u32) -> Self {
        self.setting("min.insync.replicas", &replicas.to_string())
    }

    /// Sets (or overrides) a broker setting, e.g. `("auto.create.topics.enable", "false")`.
    pub fn setting(mut self, name: &str, value: &str) -> Self {
        self.settings.retain(|(k, _)| k != name);
        self.settings.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The JVM heap of each node, in MiB (512 by default).
    pub fn heap_mb(mut self, heap_mb: u32) -> Self {
        self.heap_mb = heap_mb;
        self
    }

    /// Formats and starts every node; returns once each broker answers metadata
    /// requests on its client listener.
    pub fn start(self) -> Result<KafkaCluster, HarnessError> {
        sweep_stale_clusters();
        let libs = kafka_home().join("libs");
        if !libs
            .join(format!("kafka_2.13-{}.jar", kafka_version()))
            .is_file()
        {
            return Err(HarnessError::Command {
                what: "Apache Kafka",
                detail: format!(
                    "no Kafka {} jars in {} (run scripts/setup.sh or scripts/fetch-kafka.sh)",
                    kafka_version(),
                    libs.display()
                ),
            });
        }
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            match KafkaCluster::launch(&self, &libs) {
                Ok(cluster) => return Ok(cluster),
                Err(error @ HarnessError::PortTaken { .. }) => last_error = Some(error),
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or(HarnessError::Command {
            what: "Apache Kafka",
            detail: "no free ports".to_owned(),
        }))
    }
}

/// One node of a cluster.
#[derive(Debug)]
struct Node {
    id: u32,
    client_port: u16,
    internal_port: u16,
    config: PathBuf,
    dir: PathBuf,
    process: Option<Child>,
}

/// A running Apache Kafka cluster. Killed and deleted on drop.
#[derive(Debug)]
pub struct KafkaCluster {
    dir: Option<tempfile::TempDir>,
    libs: PathBuf,
    nodes: Vec<Node>,
    sasl: Option<SaslMechanism>,
    ca_cert: Option<PathBuf>,
    heap_mb: u32,
    started_in: Duration,
    bootstrap_servers: String,
}

impl KafkaCluster {
    /// A plaintext cluster of `nodes` nodes.
    pub fn start(nodes: u32) -> Result<Self, HarnessError> {
        KafkaClusterBuilder::default().nodes(nodes).start()
    }

    /// Settings to change before starting.
    pub fn builder() -> KafkaClusterBuilder {
        KafkaClusterBuilder::default()
    }

    fn launch(builder: &KafkaClusterBuilder, libs: &Path) -> Result<Self, HarnessError> {
        let started = Instant::now();
        let dir = tempfile::Builder::new()
            .prefix(CLUSTER_DIR_PREFIX)
            .tempdir()
            .map_err(|e| HarnessError::io("create cluster dir", e))?;
        crate::stale::claim(dir.path())?;
        let ports = Ports::pick(builder.nodes)?;
        let certificates = if builder.tls {
            Some(crate::tls::generate_certificates_with(
                dir.path(),
                "localhost",
                "DNS:localhost,IP:127.0.0.1",
            )?)
        } else {
            None
        };
        let mut pem_keystore = None;
        if let Some(certificates) = &certificates {
            // Kafka reads a PEM keystore: the private key, then the certificate.
            let mut pem = read(&certificates.server_key)?;
            pem.push_str(&read(&certificates.server_cert)?);
            let path = dir.path().join("server-keystore.pem");
            fs::write(&path, pem).map_err(|e| HarnessError::io("write the keystore", e))?;
            pem_keystore = Some(path);
        }
        fs::write(dir.path().join("log4j2.properties"), LOG4J_CONFIG)
            .map_err(|e| HarnessError::io("write the log4j configuration", e))?;

        let voters = (1..=builder.nodes)
            .map(|id| format!("{id}@127.0.0.1:{}", ports.controller(id)))
            .collect::<Vec<_>>()
            .join(",");
        let mut nodes = Vec::new();
        for id in 1..=builder.nodes {
            let node_dir = dir.path().join(format!("node-{id}"));
            fs::create_dir_all(node_dir.join("data"))
                .map_err(|e| HarnessError::io("create a node dir", e))?;
            let config = node_dir.join("server.properties");
            let text = node_config(
                builder,
                id,
                &ports,
                &voters,
                &node_dir,
                pem_keystore.as_deref(),
            );
            fs::write(&config, text).map_err(|e| HarnessError::io("write server.properties", e))?;
            nodes.push(Node {
                id,
                client_port: ports.client(id),
                internal_port: ports.internal(id),
                config,
                dir: node_dir,
                process: None,
            });
        }
        let host = client_host(builder.tls);
        let bootstrap_servers = nodes
            .iter()
            .map(|n| format!("{host}:{}", n.client_port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Self {
            bootstrap_servers,
            dir: Some(dir),
            libs: libs.to_owned(),
            nodes,
            sasl: builder.sasl,
            ca_cert: certificates.map(|c| c.ca_cert),
            heap_mb: builder.heap_mb,
            started_in: Duration::ZERO,
        };
        cluster.format(builder)?;
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index)?;
        }
        cluster.wait_ready(started + STARTUP_TIMEOUT)?;
        cluster.started_in = started.elapsed();
        Ok(cluster)
    }

    /// Formats every node's log dir with one cluster id, in parallel (each is a JVM).
    fn format(&self, builder: &KafkaClusterBuilder) -> Result<(), HarnessError> {
        let cluster_id = random_cluster_id()?;
        let mut scram = Vec::new();
        if builder.sasl == Some(SaslMechanism::ScramSha512) {
            let users = std::iter::once((ADMIN_USER, ADMIN_PASSWORD))
                .chain(builder.users.iter().map(|(u, p)| (u.as_str(), p.as_str())));
            for (user, password) in users {
                scram.push("--add-scram".to_owned());
                scram.push(format!("SCRAM-SHA-512=[name={user},password={password}]"));
            }
        }
        let mut children = Vec::new();
        for node in &self.nodes {
            let child = self
                .java(&[], "kafka.tools.StorageTool")
                // `=`: an id may begin with `-`, which would read as an option.
                .args(["format", "--ignore-formatted"])
                .arg(format!("--cluster-id={cluster_id}"))
                .arg("-c")
                .arg(&node.config)
                .args(&scram)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| {
                    HarnessError::io("run Kafka's storage tool (is java installed?)", e)
                })?;
            children.push(child);
        }
        for child in children {
            let output = child
                .wait_with_output()
                .map_err(|e| HarnessError::io("wait for Kafka's storage tool", e))?;
            if !output.status.success() {
                return Err(HarnessError::Command {
                    what: "kafka-storage format",
                    detail: format!(
                        "{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    ),
                });
            }
        }
        Ok(())
    }

    /// A `java` command with the broker's classpath and the harness's logging.
    fn java(&self, jvm_options: &[String], main_class: &str) -> Command {
        let mut command = Command::new("java");
        command
            .args(jvm_options)
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()))
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir().join("log4j2.properties").display()
            ))
            .arg("-Djava.awt.headless=true")
            .arg(main_class);
        command
    }

    fn spawn(&mut self, index: usize) -> Result<(), HarnessError> {
        let node = &self.nodes[index];
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("server.log"))
            .map_err(|e| HarnessError::io("create a broker log", e))?;
        let log_err = log
            .try_clone()
            .map_err(|e| HarnessError::io("clone a broker log", e))?;
        let jvm_options = [
            format!("-Xms{}m", self.heap_mb / 2),
            format!("-Xmx{}m", self.heap_mb),
            // A serial collector and two JIT threads keep three brokers from starving
            // the code under test on a 2-core machine.
            "-XX:+UseSerialGC".to_owned(),
            "-XX:CICompilerCount=2".to_owned(),
        ];
        let mut command = self.java(&jvm_options, "kafka.Kafka");
        command
            .arg(&node.config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command
            .spawn()
            .map_err(|e| HarnessError::io("start a Kafka broker (is java installed?)", e))?;
        fs::write(node.dir.join("broker.pid"), child.id().to_string())
            .map_err(|e| HarnessError::io("write the broker pid", e))?;
        self.nodes[index].process = Some(child);
        Ok(())
    }

    /// Waits until every running node answers a metadata request that lists all the
    /// running nodes.
    fn wait_ready(&mut self, deadline: Instant) -> Result<(), HarnessError> {
        let running: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.process.is_some())
            .map(|n| n.id)
            .collect();
        for id in &running {
            let node = self.node(*id)?;
            let consumer: BaseConsumer = self
                .client_config_at(&format!("127.0.0.1:{}", node.client_port))
                .create()
                .map_err(HarnessError::Kafka)?;
            loop {
                self.check_alive(*id)?;
                let ready = consumer
                    .fetch_metadata(None, Duration::from_millis(500))
                    .is_ok_and(|metadata| {
                        running.iter().all(|id| {
                            metadata
                                .brokers()
                                .iter()
                                .any(|b| i64::from(b.id()) == i64::from(*id))
                        })
                    });
                if ready {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(HarnessError::Command {
                        what: "Apache Kafka",
                        detail: format!(
                            "node {id} not ready after {STARTUP_TIMEOUT:?}; its log ends:\n{}",
                            tail(&self.server_log(*id), 4000)
                        ),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Fails when node `id` exited (a port taken, a bad setting), with its log.
    fn check_alive(&mut self, id: u32) -> Result<(), HarnessError> {
        let index = self.index(id)?;
        let Some(process) = self.nodes[index].process.as_mut() else {
            return Ok(());
        };
        if let Ok(Some(status)) = process.try_wait() {
            self.nodes[index].process = None;
            let log = self.server_log(id);
            if log.contains("Address already in use") {
                return Err(HarnessError::PortTaken {
                    port: self.nodes[index].client_port,
                });
            }
            return Err(HarnessError::Command {
                what: "Apache Kafka",
                detail: format!(
                    "node {id} exited with {status} while starting; its log ends:\n{}",
                    tail(&log, 4000)
                ),
            });
        }
        Ok(())
    }

    /// How long [`KafkaClusterBuilder::start`] took, formatting included.
    pub fn started_in(&self) -> Duration {
        self.started_in
    }

    /// The `bootstrap.servers` list of the client listeners.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The plaintext inter-broker listeners (no TLS, no SASL; a super user under
    /// ACLs): for the harness's own tools, not for the code under test.
    pub fn internal_bootstrap_servers(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.internal_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The CA that signed the brokers' certificate, for TLS clusters.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.ca_cert.as_deref()
    }

    /// The librdkafka settings a client needs besides `bootstrap.servers` to connect
    /// to the client listener as `user`/`password` (ignored without SASL).
    pub fn client_properties(&self, user: &str, password: &str) -> Vec<(String, String)> {
        let protocol = security_protocol(self.sasl.is_some(), self.ca_cert.is_some());
        let mut properties = vec![("security.protocol".to_owned(), protocol.to_owned())];
        if let Some(mechanism) = self.sasl {
            properties.push(("sasl.mechanism".to_owned(), mechanism.name().to_owned()));
            properties.push(("sasl.username".to_owned(), user.to_owned()));
            properties.push(("sasl.password".to_owned(), password.to_owned()));
        }
        if let Some(ca) = &self.ca_cert {
            properties.push(("ssl.ca.location".to_owned(), ca.display().to_string()));
        }
        properties
    }

    /// [`Self::client_properties`] of the admin user.
    pub fn admin_properties(&self) -> Vec<(String, String)> {
        self.client_properties(ADMIN_USER, ADMIN_PASSWORD)
    }

    /// A librdkafka configuration for the admin user against `bootstrap`.
    fn client_config_at(&self, bootstrap: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap);
        for (key, value) in self.admin_properties() {
            config.set(key, value);
        }
        config
    }

    /// Creates `topic` with `partitions` partitions, `replication_factor` replicas
    /// and topic settings `configs`, as the admin user.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: u32,
        replication_factor: u32,
        configs: &[(&str, &str)],
    ) -> Result<(), HarnessError> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config_at(self.bootstrap_servers())
            .create()
            .map_err(HarnessError::Kafka)?;
        let count = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        let mut new_topic = NewTopic::new(
            topic,
            count(partitions),
            TopicReplication::Fixed(count(replication_factor)),
        );
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results =
            block_on(admin.create_topics(&[new_topic], &options)).map_err(HarnessError::Kafka)?;
        for result in results {
            if let Err((name, code)) = result {
                return Err(HarnessError::Broker(format!("create topic {name}: {code}")));
            }
        }
        Ok(())
    }

    /// The settings of `topic` as the brokers report them (`DescribeConfigs`),
    /// defaults included.
    pub fn topic_configs(&self, topic: &str) -> Result<Vec<(String, String)>, HarnessError> {
        let admin: AdminClient<DefaultClientContext> = self
            .client_config_at(self.bootstrap_servers())
            .create()
            .map_err(HarnessError::Kafka)?;
        let results = block_on(
            admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &AdminOptions::new()),
        )
        .map_err(HarnessError::Kafka)?;
        let mut configs = Vec::new();
        for result in results {
            let resource =
                result.map_err(|code| HarnessError::Broker(format!("describe {topic}: {code}")))?;
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    configs.push((entry.name, value));
                }
            }
        }
        Ok(configs)
    }

    /// Each partition of `topic` with its leader and replicas, as the metadata says.
    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionInfo>, HarnessError> {
        let consumer: BaseConsumer = self
            .client_config_at(self.bootstrap_servers())
            .create()
            .map_err(HarnessError::Kafka)?;
        // A topic created a moment ago may not be in the metadata of the broker
        // asked yet: ask again for a while before calling it unknown.
        let deadline = Instant::now() + Duration::from_secs(10);
        let metadata = loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), Duration::from_secs(10))
                .map_err(HarnessError::Kafka)?;
            let error = metadata
                .topics()
                .iter()
                .find(|t| t.name() == topic)
                .and_then(|t| t.error())
                .map(rdkafka::error::RDKafkaErrorCode::from);
            let settling = matches!(
                error,
                Some(
                    rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition
                        | rdkafka::error::RDKafkaErrorCode::LeaderNotAvailable
                )
            );
            if !settling || Instant::now() >= deadline {
                break metadata;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let topic_metadata = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .ok_or_else(|| HarnessError::Broker(format!("no metadata for {topic}")))?;
        if let Some(error) = topic_metadata.error() {
            return Err(HarnessError::Broker(format!("{topic}: {error:?}")));
        }
        Ok(topic_metadata
            .partitions()
            .iter()
            .map(|p| PartitionInfo {
                partition: p.id(),
                leader: p.leader(),
                replicas: p.replicas().to_vec(),
                in_sync: p.isr().to_vec(),
            })
            .collect())
    }

    /// Lets `principal` (e.g. `User:weir`) do `operations` (Kafka's names: `Read`,
    /// `Write`, `Describe`, `Create`, `DescribeConfigs`, `All` …) on `resource`, one of
    /// `--topic NAME`, `--group NAME`, `--cluster`, `--transactional-id NAME`, with
    /// `--resource-pattern-type prefixed` when the name is a prefix.
    pub fn allow(
        &self,
        principal: &str,
        operations: &[&str],
        resource: &[&str],
    ) -> Result<(), HarnessError> {
        let mut args = vec![
            "--bootstrap-server".to_owned(),
            self.internal_bootstrap_servers(),
            "--add".to_owned(),
            "--allow-principal".to_owned(),
            principal.to_owned(),
        ];
        for operation in operations {
            args.push("--operation".to_owned());
            args.push((*operation).to_owned());
        }
        args.extend(resource.iter().map(|r| (*r).to_owned()));
        self.run_tool("org.apache.kafka.tools.AclCommand", &args)
            .map(drop)
    }

    /// Runs one of Kafka's command-line tools (a main class from the broker's
    /// classpath) and returns what it printed.
    pub fn run_tool(&self, main_class: &str, args: &[String]) -> Result<String, HarnessError> {
        let output = self
            .java(&[], main_class)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| HarnessError::io("run a Kafka tool", e))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(HarnessError::Command {
                what: "Kafka tool",
                detail: format!(
                    "{main_class} {}: {stdout}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr)
                ),
            })
        }
    }

    /// The node ids, `1..=n`.
    pub fn node_ids(&self) -> Vec<u32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// Node `id`'s process id, while it runs.
    pub fn pid(&self, id: u32) -> Option<u32> {
        self.node(id).ok()?.process.as_ref().map(Child::id)
    }

    /// Node `id`'s log so far (all its runs).
    pub fn server_log(&self, id: u32) -> String {
        self.node(id)
            .map(|n| fs::read_to_string(n.dir.join("server.log")).unwrap_or_default())
            .unwrap_or_default()
    }

    /// Stops node `id` the way an operator does (SIGTERM: a controlled shutdown that
    /// moves its leaderships away first), keeping its log dir. Returns how long the
    /// shutdown took.
    pub fn stop(&mut self, id: u32) -> Result<Duration, HarnessError> {
        self.signal_and_reap(id, Signal::SIGTERM, SHUTDOWN_TIMEOUT)
    }

    /// Kills node `id` outright (`kill -9`), keeping its log dir.
    pub fn kill(&mut self, id: u32) -> Result<(), HarnessError> {
        self.signal_and_reap(id, Signal::SIGKILL, SHUTDOWN_TIMEOUT)
            .map(drop)
    }

    /// Starts a stopped or killed node `id` again on its log dir; returns once the
    /// cluster's running brokers all see it.
    pub fn start_node(&mut self, id: u32) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let index = self.index(id)?;
        if self.nodes[index].process.is_some() {
            return Err(HarnessError::Broker(format!("node {id} is running")));
        }
        self.spawn(index)?;
        self.wait_ready(started + STARTUP_TIMEOUT)?;
        Ok(started.elapsed())
    }

    /// [`Self::stop`], then [`Self::start_node`].
    pub fn restart(&mut self, id: u32) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        self.stop(id)?;
        self.start_node(id)?;
        Ok(started.elapsed())
    }

    fn signal_and_reap(
        &mut self,
        id: u32,
        signal: Signal,
        within: Duration,
    ) -> Result<Duration, HarnessError> {
        let started = Instant::now();
        let index = self.index(id)?;
        let Some(mut process) = self.nodes[index].process.take() else {
            return Err(HarnessError::Broker(format!("node {id} is not running")));
        };
        if let Ok(pid) = i32::try_from(process.id()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let deadline = Instant::now() + within;
        loop {
            match process.try_wait() {
                Ok(Some(_)) | Err(_) => return Ok(started.elapsed()),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = process.kill();
                    let _ = process.wait();
                    return Err(HarnessError::Timeout {
                        doing: format!("stopping Kafka node {id} with {signal}"),
                        after: within,
                    });
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn index(&self, id: u32) -> Result<usize, HarnessError> {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .ok_or_else(|| HarnessError::Broker(format!("no node {id}")))
    }

    fn node(&self, id: u32) -> Result<&Node, HarnessError> {
        self.index(id).map(|index| &self.nodes[index])
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().map_or(Path::new(""), |d| d.path())
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        // Nothing here needs a clean shutdown: the directory goes next.
        for node in &mut self.nodes {
            if let Some(mut process) = node.process.take() {
                let _ = process.kill();
                let _ = process.wait();
            }
        }
        if let Some(dir) = self.dir.take() {
            let path = dir.path().to_owned();
            if let Err(error) = dir.close() {
                eprintln!("weir-tests: could not remove {}: {error}", path.display());
            }
        }
    }
}

/// One partition's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    pub partition: i32,
    /// The leader's node id; -1 while there is none.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub in_sync: Vec<i32>,
}

/// Kills and deletes clusters whose test process died without dropping them; each
/// node's `broker.pid` names its JVM.
pub fn sweep_stale_clusters() {
    crate::stale::sweep(CLUSTER_DIR_PREFIX, |dir| {
        let Ok(entries) = fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| crate::stale::read_pid(&entry.path().join("broker.pid")))
            .collect()
    });
}

/// Three free loopback ports a node: client, internal, controller.
struct Ports(Vec<u16>);

impl Ports {
    fn pick(nodes: u32) -> Result<Self, HarnessError> {
        let mut ports = Vec::new();
        while ports.len() < 3 * nodes as usize {
            let port = free_loopback_port()?;
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
        Ok(Self(ports))
    }

    fn client(&self, id: u32) -> u16 {
        self.0[3 * (id as usize - 1)]
    }

    fn internal(&self, id: u32) -> u16 {
        self.0[3 * (id as usize - 1) + 1]
    }

    fn controller(&self, id: u32) -> u16 {
        self.0[3 * (id as usize - 1) + 2]
    }
}

/// The client listener's `security.protocol`.
fn security_protocol(sasl: bool, tls: bool) -> &'static str {
    match (sasl, tls) {
        (false, false) => "PLAINTEXT",
        (false, true) => "SSL",
        (true, false) => "SASL_PLAINTEXT",
        (true, true) => "SASL_SSL",
    }
}

/// The host clients name a broker by: with TLS the certificate's name, `localhost`.
fn client_host(tls: bool) -> &'static str {
    if tls { "localhost" } else { "127.0.0.1" }
}

/// `server.properties` of node `id`.
fn node_config(
    builder: &KafkaClusterBuilder,
    id: u32,
    ports: &Ports,
    voters: &str,
    node_dir: &Path,
    pem_keystore: Option<&Path>,
) -> String {
    let nodes = builder.nodes;
    let protocol = security_protocol(builder.sasl.is_some(), builder.tls);
    let advertised_host = client_host(builder.tls);
    let mut settings: Vec<(String, String)> = vec![
        ("process.roles".into(), "broker,controller".into()),
        ("node.id".into(), id.to_string()),
        ("controller.quorum.voters".into(), voters.to_owned()),
        (
            "listeners".into(),
            format!(
                "CLIENT://127.0.0.1:{},INTERNAL://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                ports.client(id),
                ports.internal(id),
                ports.controller(id)
            ),
        ),
        (
            "advertised.listeners".into(),
            format!(
                "CLIENT://{advertised_host}:{},INTERNAL://127.0.0.1:{}",
                ports.client(id),
                ports.internal(id)
            ),
        ),
        (
            "listener.security.protocol.map".into(),
            format!("CLIENT:{protocol},INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        ),
        ("inter.broker.listener.name".into(), "INTERNAL".into()),
        ("controller.listener.names".into(), "CONTROLLER".into()),
        (
            "log.dirs".into(),
            node_dir.join("data").display().to_string(),
        ),
        ("num.partitions".into(), "1".into()),
        (
            "default.replication.factor".into(),
            nodes.min(3).to_string(),
        ),
        (
            "offsets.topic.replication.factor".into(),
            nodes.min(3).to_string(),
        ),
        ("offsets.topic.num.partitions".into(), "5".into()),
        (
            "transaction.state.log.replication.factor".into(),
            nodes.min(3).to_string(),
        ),
        (
            "transaction.state.log.min.isr".into(),
            nodes.min(2).to_string(),
        ),
        ("transaction.state.log.num.partitions".into(), "5".into()),
        (
            "share.coordinator.state.topic.replication.factor".into(),
            nodes.min(3).to_string(),
        ),
        (
            "share.coordinator.state.topic.min.isr".into(),
            nodes.min(2).to_string(),
        ),
        ("group.initial.rebalance.delay.ms".into(), "0".into()),
        // Tests wait on replicas catching up after a kill; the defaults (30 s)
        // make a node that died count as in sync for too long.
        ("replica.lag.time.max.ms".into(), "10000".into()),
        ("controlled.shutdown.enable".into(), "true".into()),
    ];
    if let Some(mechanism) = builder.sasl {
        settings.push(("sasl.enabled.mechanisms".into(), mechanism.name().into()));
        let jaas = match mechanism {
            SaslMechanism::Plain => {
                let mut users = format!("user_{ADMIN_USER}=\"{ADMIN_PASSWORD}\"");
                for (user, password) in &builder.users {
                    users.push_str(&format!(" user_{user}=\"{password}\""));
                }
                format!("org.apache.kafka.common.security.plain.PlainLoginModule required {users};")
            }
            SaslMechanism::ScramSha512 => {
                "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned()
            }
        };
        settings.push((
            format!(
                "listener.name.client.{}.sasl.jaas.config",
                mechanism.name().to_lowercase()
            ),
            jaas,
        ));
    }
    if let Some(keystore) = pem_keystore {
        settings.push(("ssl.keystore.type".into(), "PEM".into()));
        settings.push((
            "ssl.keystore.location".into(),
            keystore.display().to_string(),
        ));
    }
    if builder.acls {
        settings.push((
            "authorizer.class.name".into(),
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
        ));
        settings.push((
            "super.users".into(),
            format!("User:ANONYMOUS;User:{ADMIN_USER}"),
        ));
        settings.push(("allow.everyone.if.no.acl.found".into(), "false".into()));
    }
    for (key, value) in &builder.settings {
        settings.retain(|(k, _)| k != key);
        settings.push((key.clone(), value.clone()));
    }
    settings
        .iter()
        .map(|(key, value)| format!("{key}={}\n", value.replace('\\', "\\\\")))
        .collect()
}

/// Broker logs: INFO to the node's `server.log` (stdout is redirected there), quieter
/// for the chattiest loggers.
const LOG4J_CONFIG: &str = "\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = info
";

/// A KRaft cluster id: 16 random bytes, base64url without padding (22 characters).
fn random_cluster_id() -> Result<String, HarnessError> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| HarnessError::io("read /dev/urandom", e))?;
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::with_capacity(22);
    let mut bits = 0u32;
    let mut pending = 0u32;
    for byte in bytes {
        pending = (pending << 8) | u32::from(byte);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            id.push(char::from(ALPHABET[((pending >> bits) & 63) as usize]));
        }
    }
    if bits > 0 {
        id.push(char::from(
            ALPHABET[((pending << (6 - bits)) & 63) as usize],
        ));
    }
    Ok(id)
}

fn read(path: &Path) -> Result<String, HarnessError> {
    fs::read_to_string(path).map_err(|e| HarnessError::io("read a certificate", e))
}

fn tail(text: &str, bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Runs `future` to completion on a runtime of its own in a scoped thread, so that
/// the harness's blocking API works inside and outside async tests alike. (rdkafka's
/// admin futures are completed by librdkafka's own threads.)
fn block_on<F>(future: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(future))
            })
            .join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    .unwrap_or_else(|error| panic!("a tokio runtime for the Kafka admin client: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_are_22_base64url_characters() {
        let id = random_cluster_id().expect("id");
        assert_eq!(id.len(), 22, "{id}");
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{id}"
        );
        assert_ne!(id, random_cluster_id().expect("id"));
    }
}
