//! The CPU time of the walsender serving a reader's slot, for the benchmark
//! harness.
//!
//! When a reader shares its cores with PostgreSQL, the walsender decoding and
//! sending the slot's changes is often the busiest process. Its CPU time for a
//! reader's stream is the least time any reader of that stream can take there, so
//! the report gives it next to the reader's time.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::PgCluster;

/// How often the walsender's CPU time is read. A walsender that exits with its
/// reader (`pg_recvlogical` at its end position) is read up to this long before.
const INTERVAL: Duration = Duration::from_millis(25);

/// Samples the CPU time of whichever walsender holds a slot until
/// [`ServerCpu::finish`].
pub struct ServerCpu {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<Option<f64>>>,
}

impl ServerCpu {
    /// Starts watching slot `slot`.
    pub async fn watch(cluster: &PgCluster, slot: &str) -> anyhow::Result<Self> {
        let client = cluster.connect("postgres").await?;
        let statement = client
            .prepare("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1")
            .await?;
        let slot = slot.to_owned();
        let (stop, mut stopped) = oneshot::channel();
        let task = tokio::spawn(async move {
            // A reader that reconnects is served by a new walsender: each one's
            // last reading counts.
            let mut by_pid: HashMap<i32, u64> = HashMap::new();
            loop {
                // The last reading is taken after the stop, while a walsender whose
                // reader is still connected (weir's) still runs.
                let last = tokio::select! {
                    _ = &mut stopped => true,
                    () = tokio::time::sleep(INTERVAL) => false,
                };
                let row = client.query_opt(&statement, &[&slot]).await?;
                if let Some(pid) = row.and_then(|row| row.get::<_, Option<i32>>(0))
                    && let Some(nanos) = cpu_nanos(pid)
                {
                    by_pid.insert(pid, nanos);
                }
                if last {
                    break;
                }
            }
            #[allow(clippy::cast_precision_loss)]
            let seconds = (!by_pid.is_empty()).then(|| by_pid.values().sum::<u64>() as f64 / 1e9);
            Ok(seconds)
        });
        Ok(Self { stop, task })
    }

    /// Takes a last reading and returns the walsenders' CPU seconds, or `None` when
    /// no walsender was seen (or the kernel has no `schedstat`).
    pub async fn finish(self) -> anyhow::Result<Option<f64>> {
        // The task may have failed already; its error comes from the join.
        let _ = self.stop.send(());
        self.task.await?
    }
}

/// Time process `pid` has spent on a CPU, in nanoseconds (the first field of
/// `/proc/PID/schedstat`).
fn cpu_nanos(pid: i32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
