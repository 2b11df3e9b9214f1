//! A Kafka-protocol broker process for tests.
//!
//! [`Broker`] runs the `weir-dev-broker` binary (librdkafka's mock cluster behind real
//! loopback TCP listeners) as a child process and drives it over a line protocol on
//! its stdin: create topics, take brokers down and up. The child exits when its stdin
//! closes, so a test process that dies, however it dies, takes its broker with it.
//!
//! The mock keeps at most 100 000 message sets or 5 MiB per partition and drops the
//! oldest silently (`rdkafka_mock.c`): a test that produces more than that loses its
//! first messages in the broker, not in weir. [`crate::read_topic`] refuses such a
//! partition. Tests of delivery use [`crate::KafkaCluster`] (Apache Kafka) instead;
//! this broker stays for faults a real one cannot be made to show on demand.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::HarnessError;

const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `weir-dev-broker` binary: `$WEIR_DEV_BROKER`, else beside the running test's
/// target dir (`target/<profile>/weir-dev-broker`), where `cargo test` builds it.
pub fn dev_broker_path() -> PathBuf {
    if let Some(path) = std::env::var_os("WEIR_DEV_BROKER") {
        return PathBuf::from(path);
    }
    target_bin_path("weir-dev-broker")
}

/// A binary of this workspace, next to the running test executable's `deps/` dir.
pub fn target_bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A running broker process. Stopped on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    control: Mutex<Control>,
    bootstrap_servers: String,
}

#[derive(Debug)]
struct Control {
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Broker {
    /// Starts a cluster of `brokers` mock brokers.
    pub fn start(brokers: u32) -> Result<Self, HarnessError> {
        let path = dev_broker_path();
        let mut child = Command::new(&path)
            .args(["--brokers", &brokers.to_string(), "--control", "stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| HarnessError::io("spawn weir-dev-broker (is it built?)", e))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(HarnessError::Broker("no stdio pipes".to_owned()));
        };
        let mut control = Control {
            stdin,
            stdout: BufReader::new(stdout),
        };
        let bootstrap_servers = match control.read_line() {
            Ok(line) if !line.is_empty() => line,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HarnessError::Broker(format!(
                    "{} printed no bootstrap address: {other:?}",
                    path.display()
                )));
            }
        };
        Ok(Self {
            child,
            control: Mutex::new(control),
            bootstrap_servers,
        })
    }

    /// The `bootstrap.servers` list, e.g. `127.0.0.1:40117,127.0.0.1:35641`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The broker process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    pub fn create_topic(&self, topic: &str, partitions: u32) -> Result<(), HarnessError> {
        self.command(&format!("topic {topic} {partitions} 1"))
    }

    /// Takes broker `id` (1-based) down: its listener closes until [`Broker::broker_up`].
    pub fn broker_down(&self, id: u32) -> Result<(), HarnessError> {
        self.command(&format!("down {id}"))
    }

    /// Brings broker `id` back up.
    pub fn broker_up(&self, id: u32) -> Result<(), HarnessError> {
        self.command(&format!("up {id}"))
    }

    fn command(&self, line: &str) -> Result<(), HarnessError> {
        let mut control = self
            .control
            .lock()
            .map_err(|_| HarnessError::Broker("control lock poisoned".to_owned()))?;
        writeln!(control.stdin, "{line}").map_err(|e| HarnessError::io("write to broker", e))?;
        control
            .stdin
            .flush()
            .map_err(|e| HarnessError::io("write to broker", e))?;
        match control.read_line()?.as_str() {
            "ok" => Ok(()),
            reply => Err(HarnessError::Broker(format!("`{line}`: {reply}"))),
        }
    }
}

impl Control {
    fn read_line(&mut self) -> Result<String, HarnessError> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| HarnessError::io("read from broker", e))?;
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Closing stdin asks the broker to exit; kill it if it does not.
        if let Ok(mut control) = self.control.lock() {
            let _ = writeln!(control.stdin, "quit");
        }
        let deadline = Instant::now() + EXIT_TIMEOUT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }
}
