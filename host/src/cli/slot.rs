//! `weir slot list` and `weir slot drop`: the replication slots of a database, the
//! WAL each holds back, and removing one a pipeline no longer needs.

use std::io::Write;

use anyhow::Context as _;

use crate::source::PgConnectOptions;
use crate::source::catalog::{SlotInfo, drop_slot, list_slots};

/// Every slot of the server `url` points at.
pub async fn slots(url: &str) -> anyhow::Result<Vec<SlotInfo>> {
    let options: PgConnectOptions = url.parse().context("the connection URL")?;
    let client = options.connect_control().await.context("connecting")?;
    list_slots(&client).await.context("listing slots")
}

/// Prints `slots` as a table.
pub fn print_slots(slots: &[SlotInfo], out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<32} {:<9} {:<10} {:<16} {:<7} {:>14} {:>16}",
        "slot", "plugin", "database", "confirmed", "active", "retained", "wal_status"
    )?;
    for slot in slots {
        let retained = slot
            .retained_wal_bytes
            .map_or_else(|| "-".to_owned(), human_bytes);
        writeln!(
            out,
            "{:<32} {:<9} {:<10} {:<16} {:<7} {:>14} {:>16}",
            slot.name,
            slot.plugin.as_deref().unwrap_or("-"),
            slot.database.as_deref().unwrap_or("-"),
            slot.confirmed_flush_lsn
                .map_or_else(|| "-".to_owned(), |lsn| lsn.to_string()),
            if slot.active { "yes" } else { "no" },
            retained,
            slot.wal_status.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// Drops slot `name` unless a reader holds it. Returns whether it existed.
pub async fn drop(url: &str, name: &str) -> anyhow::Result<bool> {
    let options: PgConnectOptions = url.parse().context("the connection URL")?;
    let client = options.connect_control().await.context("connecting")?;
    let slots = list_slots(&client).await.context("listing slots")?;
    match slots.iter().find(|s| s.name == name) {
        None => Ok(false),
        Some(slot) if slot.active => anyhow::bail!(
            "slot {name} is in use by process {}: stop that pipeline first",
            slot.active_pid
                .map_or_else(|| "?".to_owned(), |p| p.to_string())
        ),
        Some(_) => drop_slot(&client, name).await.context("dropping the slot"),
    }
}

fn human_bytes(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
