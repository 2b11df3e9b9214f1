//! Where a batch of snapshot reads (`_op = r`) sits in its snapshot: what
//! Debezium's `source.snapshot` says of each read.
//!
//! Debezium marks the first and last row of each table and of the whole initial
//! snapshot, so a consumer knows when a table (or everything) has been read without
//! counting rows; re-snapshots while streaming say `incremental`. The source knows
//! where a batch sits; the encoders that write the field are told with the batch,
//! not through the Arrow contract, so plugins see the same columns as before.

/// An edge of the snapshot a row may sit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The first or last row of one table.
    Table,
    /// The first or last row of the whole snapshot.
    Snapshot,
}

/// What the reads of one batch are, for `source.snapshot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotMarks {
    /// Rows of a re-snapshot while streaming (`incremental`), not of the initial one.
    pub incremental: bool,
    /// The edge the batch's first row starts, if any.
    pub first: Option<Edge>,
    /// The edge the batch's last row ends, if any.
    pub last: Option<Edge>,
}

impl SnapshotMarks {
    /// Marks of rows read by a re-snapshot while streaming.
    pub const INCREMENTAL: SnapshotMarks = SnapshotMarks {
        incremental: true,
        first: None,
        last: None,
    };

    /// `source.snapshot` of the read at `row` of a batch of `rows` rows. One row
    /// on several edges takes the strongest, as Debezium orders them: the
    /// snapshot's last, its first, a table's last, a table's first.
    pub fn marker(&self, row: usize, rows: usize) -> &'static str {
        if self.incremental {
            return "incremental";
        }
        let last = (row + 1 == rows).then_some(self.last).flatten();
        let first = (row == 0).then_some(self.first).flatten();
        match (first, last) {
            (_, Some(Edge::Snapshot)) => "last",
            (Some(Edge::Snapshot), _) => "first",
            (_, Some(Edge::Table)) => "last_in_data_collection",
            (Some(Edge::Table), None) => "first_in_data_collection",
            (None, None) => "true",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_edge_names_a_row() {
        let one_table = SnapshotMarks {
            incremental: false,
            first: Some(Edge::Snapshot),
            last: Some(Edge::Table),
        };
        assert_eq!(one_table.marker(0, 3), "first");
        assert_eq!(one_table.marker(1, 3), "true");
        assert_eq!(one_table.marker(2, 3), "last_in_data_collection");
        // A one-row batch that starts the snapshot and ends a table is `first`.
        assert_eq!(one_table.marker(0, 1), "first");
        let ends = SnapshotMarks {
            incremental: false,
            first: Some(Edge::Table),
            last: Some(Edge::Snapshot),
        };
        assert_eq!(ends.marker(0, 1), "last");
        assert_eq!(ends.marker(0, 2), "first_in_data_collection");
        assert_eq!(SnapshotMarks::default().marker(0, 1), "true");
        assert_eq!(SnapshotMarks::INCREMENTAL.marker(0, 1), "incremental");
    }
}
