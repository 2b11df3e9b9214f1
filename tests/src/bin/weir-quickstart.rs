//! `weir-quickstart`: the README's first command, end to end on this machine.
//!
//! Starts a throwaway PostgreSQL cluster and a local Kafka-protocol broker, creates the
//! sample shop database (`examples/quickstart.sql`), writes sample traffic
//! (`examples/quickstart-traffic.sql`) and shows the resulting change stream. Everything
//! it started is stopped and deleted when it exits.

use std::time::Duration;

use anyhow::Context as _;
use weir_tests::{Broker, PgCluster};

const SCHEMA_SQL: &str = include_str!("../../../examples/quickstart.sql");
const TRAFFIC_SQL: &str = include_str!("../../../examples/quickstart-traffic.sql");
const SLOT: &str = "weir_quickstart";

fn step(text: &str) {
    println!("==> {text}");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    step("starting a local PostgreSQL 15 cluster (wal_level=logical)");
    let cluster = PgCluster::start().context("starting PostgreSQL")?;
    println!("    {}", cluster.url("shop"));

    step("starting a local Kafka-protocol broker");
    let broker = Broker::start(1).context("starting the broker")?;
    println!("    bootstrap.servers={}", broker.bootstrap_servers());

    step("creating the sample shop database");
    cluster
        .execute("postgres", "CREATE DATABASE shop")
        .await
        .context("creating database shop")?;
    cluster
        .execute("shop", SCHEMA_SQL)
        .await
        .context("examples/quickstart.sql")?;
    cluster
        .execute(
            "shop",
            &format!("SELECT pg_create_logical_replication_slot('{SLOT}', 'wal2json')"),
        )
        .await
        .context("creating the replication slot (is postgresql-15-wal2json installed?)")?;

    step("writing sample traffic: 2 customers, 2 orders, 1 update, 1 delete");
    cluster
        .execute_script("shop", TRAFFIC_SQL)
        .await
        .context("examples/quickstart-traffic.sql")?;

    // weir's PostgreSQL source and Kafka sink are not built yet (issues 3 and 5): until
    // they are, the quickstart shows the change stream they will carry, as wal2json, an
    // independent decoder, reads it from the slot.
    step("the committed changes, as a logical replication slot carries them:");
    let client = cluster.connect("shop").await?;
    let rows = client
        .query(
            "SELECT data FROM pg_logical_slot_get_changes($1, NULL, NULL, \
             'format-version', '2', 'include-timestamp', '1')",
            &[&SLOT],
        )
        .await
        .context("reading the slot")?;
    for row in &rows {
        println!("    {}", row.get::<_, String>(0));
    }
    client
        .execute("SELECT pg_drop_replication_slot($1)", &[&SLOT])
        .await
        .context("dropping the slot")?;

    step("stopping PostgreSQL and the broker");
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(broker);
    drop(cluster);
    step("done");
    Ok(())
}
