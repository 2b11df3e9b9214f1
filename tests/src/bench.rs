//! What the benchmarks share: the workload table, its row generator, the
//! environment knobs, and reading quantiles off weir's histograms.

/// The 6-column table every source and pipeline benchmark writes.
pub const BENCH_TABLE: &str = "CREATE TABLE bench (
    id bigint PRIMARY KEY, n integer, label text, at timestamptz, amount numeric(12,2), flag boolean)";

/// One transaction inserting rows `first..=last` into [`BENCH_TABLE`].
pub fn bench_insert(first: u64, last: u64) -> String {
    format!(
        "INSERT INTO bench SELECT n, n % 1000, 'label ' || n, now(), n * 1.25, n % 2 = 0
         FROM generate_series({first}, {last}) n"
    )
}

/// The number in environment variable `name`, or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (the upper one of an even count).
///
/// # Panics
///
/// On an empty list.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The upper bound of the bucket holding quantile `q` of histogram `name` in
/// Prometheus exposition text `text` (buckets are cumulative).
pub fn histogram_quantile(text: &str, name: &str, q: f64) -> f64 {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .filter_map(|rest| {
            let (bound, count) = rest.split_once("\"} ")?;
            Some((bound.parse().ok()?, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    buckets
        .iter()
        .find(|(_, count)| *count >= q * total)
        .map_or(f64::INFINITY, |(bound, _)| *bound)
}

/// Commits `rows_per_second` rows a second into [`BENCH_TABLE`] for `seconds`, in
/// transactions of `rows_per_transaction` rows on a steady timer (a late tick is
/// caught up at once). Returns the rows written.
pub async fn paced_inserts(
    client: &tokio_postgres::Client,
    rows_per_second: u64,
    rows_per_transaction: u64,
    seconds: u64,
) -> Result<u64, tokio_postgres::Error> {
    paced_inserts_after(client, 0, (rows_per_second, rows_per_transaction), seconds).await
}

/// [`paced_inserts`] of ids after `last_id`, for a second round into the same table.
pub async fn paced_inserts_after(
    client: &tokio_postgres::Client,
    last_id: u64,
    (rows_per_second, rows_per_transaction): (u64, u64),
    seconds: u64,
) -> Result<u64, tokio_postgres::Error> {
    let transactions_per_second = (rows_per_second / rows_per_transaction.max(1)).max(1);
    let mut tick = tokio::time::interval(std::time::Duration::from_micros(
        1_000_000 / transactions_per_second,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = transactions_per_second * seconds;
    for transaction in 0..total {
        tick.tick().await;
        let first = last_id + transaction * rows_per_transaction;
        client
            .batch_execute(&format!(
                "INSERT INTO bench SELECT n, 1, 'l', now(), 1.5, true \
                 FROM generate_series({}, {}) n",
                first + 1,
                first + rows_per_transaction
            ))
            .await?;
    }
    Ok(total * rows_per_transaction)
}
