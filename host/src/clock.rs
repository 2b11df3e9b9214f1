//! The wall clock in the units weir's messages carry: Debezium's `ts_ms` and
//! PostgreSQL's microsecond timestamps. One place, so every stage reads it alike.

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix_millis() -> i64 {
    now_unix_micros() / 1000
}
