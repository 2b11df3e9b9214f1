//! What a resumed snapshot may read. A snapshot interrupted by a crash resumes
//! under a new, later MVCC snapshot, while streaming still starts at the slot's
//! consistent point: a row written in between would be read by the snapshot and
//! streamed as well (twice for a table without a key; for a keyed one, a read of
//! the new value followed by the older updates). So the resumed chunks read only
//! row versions the first snapshot already saw: those whose inserting
//! transaction (`xmin`) was visible to it. Everything newer arrives by streaming.
//!
//! The first snapshot is kept as PostgreSQL prints it (`pg_current_snapshot()`,
//! `xmin:xmax:xip,…`, 64-bit transaction ids), and rows' `xmin` are 32-bit: they
//! compare modulo 2^32, as PostgreSQL compares them. Known limits: a row whose
//! `xmin` is more than 2^31 transactions older than the first snapshot (a frozen
//! row untouched since) reads as newer and is left to streaming, which never
//! sends it; and rows of a subtransaction of a transaction open at the first
//! snapshot count as visible (PostgreSQL does not list subtransactions), so such
//! a row may come twice. Both need transactions open across or billions of
//! transactions around a crash in the middle of a snapshot.

use std::fmt::Write as _;

/// The visibility of a first snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSnapshot {
    xmin: u64,
    xmax: u64,
    in_progress: Vec<u64>,
}

/// A `pg_snapshot` text that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a PostgreSQL snapshot (xmin:xmax:xip,…): {0:?}")]
pub struct SnapshotTextError(pub String);

impl std::str::FromStr for FirstSnapshot {
    type Err = SnapshotTextError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || SnapshotTextError(text.to_owned());
        let mut parts = text.trim().splitn(3, ':');
        let number = |part: Option<&str>| -> Result<u64, SnapshotTextError> {
            part.and_then(|p| p.parse().ok()).ok_or_else(invalid)
        };
        let xmin = number(parts.next())?;
        let xmax = number(parts.next())?;
        let in_progress = match parts.next() {
            Some("") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|x| x.parse().map_err(|_| invalid()))
                .collect::<Result<_, _>>()?,
            None => return Err(invalid()),
        };
        Ok(FirstSnapshot {
            xmin,
            xmax,
            in_progress,
        })
    }
}

impl FirstSnapshot {
    /// Whether a transaction with this (32-bit) id had committed for this
    /// snapshot: before `xmin`, or before `xmax` and not in progress. Ids compare
    /// modulo 2^32, as PostgreSQL compares them; 0–2 are the special ids.
    pub fn sees(&self, xid: u32) -> bool {
        const WRAP: u64 = 1 << 32;
        // `a` precedes `b`: (a - b) mod 2^32 is a negative 32-bit number.
        let precedes = |b: u64| (u64::from(xid) + WRAP - b % WRAP) % WRAP >= WRAP / 2;
        xid < 3
            || precedes(self.xmin)
            || (precedes(self.xmax)
                && !self
                    .in_progress
                    .iter()
                    .any(|id| id % WRAP == u64::from(xid)))
    }

    /// The SQL condition on a row that holds when its version was visible to the
    /// first snapshot. Built from numbers only.
    pub fn condition(&self) -> String {
        const WRAP: u64 = 1 << 32;
        let xid = "xmin::text::int8";
        // `a` precedes `b` as PostgreSQL compares 32-bit ids: (a - b) mod 2^32 is
        // a negative 32-bit number.
        let precedes = |b: u64| format!("(({xid} - {b} + {WRAP}) % {WRAP}) >= {}", WRAP / 2);
        let mut sql = format!(
            "({xid} < 3 OR {} OR ({}",
            precedes(self.xmin % WRAP),
            precedes(self.xmax % WRAP)
        );
        if !self.in_progress.is_empty() {
            sql.push_str(&format!(" AND {xid} NOT IN ("));
            for (i, id) in self.in_progress.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                let _ = write!(sql, "{}", id % WRAP);
            }
            sql.push(')');
        }
        sql.push_str("))");
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_parse_as_postgres_prints_them() {
        let snapshot: FirstSnapshot = "740:745:741,743".parse().expect("snapshot");
        assert_eq!(snapshot.in_progress, [741, 743]);
        let idle: FirstSnapshot = "750:750:".parse().expect("snapshot");
        assert!(idle.in_progress.is_empty());
        for bad in ["", "1:2", "a:b:", "1:2:x", "1:2:3,"] {
            assert!(bad.parse::<FirstSnapshot>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_snapshot_sees_what_committed_before_it_and_not_what_ran() {
        let snapshot: FirstSnapshot = "740:745:741,743".parse().expect("snapshot");
        for (xid, seen) in [
            (2, true),
            (739, true),
            (740, true),
            (741, false),
            (742, true),
            (743, false),
            (744, true),
            (745, false),
            (900, false),
        ] {
            assert_eq!(snapshot.sees(xid), seen, "{xid}");
        }
        // Around the wrap of 32-bit ids: 4294967295 precedes 100 (epoch 1).
        let wrapped: FirstSnapshot = "4294967396:4294967400:".parse().expect("snapshot");
        assert!(wrapped.sees(4_294_967_295));
        assert!(wrapped.sees(99));
        assert!(!wrapped.sees(104));
    }

    #[test]
    fn the_condition_names_only_numbers_and_wraps_64_bit_ids() {
        let snapshot: FirstSnapshot = "4294967396:4294967400:4294967397"
            .parse()
            .expect("snapshot");
        let sql = snapshot.condition();
        assert!(sql.contains("- 100 + 4294967296"), "{sql}");
        assert!(sql.contains("NOT IN (101)"), "{sql}");
        assert!(
            sql.chars()
                .all(|c| c.is_ascii_alphanumeric() || " ():,-+%<>=_.".contains(c)),
            "{sql}"
        );
    }
}
