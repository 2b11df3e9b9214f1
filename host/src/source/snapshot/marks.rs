//! Debezium's edge markers for the initial snapshot's reads (`first`,
//! `first_in_data_collection`, `last_in_data_collection`, `last`).
//!
//! Chunks of a table are read in parallel and a batch goes out as soon as it fills,
//! so when a batch is read nobody knows yet whether its last row ends its table or
//! the snapshot. The newest batch is therefore held back until the next batch (or
//! the snapshot's end) tells. Events that arrive meanwhile stay behind it: a
//! `ChunkRead` says every batch before it was sent, and the pipeline records the
//! chunk as done once Kafka acknowledged what it was sent, so a chunk must never
//! be reported ahead of its last batch. One batch is held at a time.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use super::initial::SnapshotEvent;
use super::table::SnapshotError;
use crate::contract::{Edge, SnapshotMarks};

/// The batch held back, and the table it belongs to.
struct Held {
    batch: RecordBatch,
    marks: SnapshotMarks,
    table: Arc<str>,
}

/// Marks the edges of the snapshot's reads on their way to `out`.
pub(super) struct EdgeMarker {
    held: Option<Held>,
    /// Events that came after the held batch, sent right after it.
    behind: Vec<SnapshotEvent>,
    /// The table whose batches come now.
    table: Arc<str>,
    /// The next batch holds the current table's first row.
    table_starts: bool,
    /// The next batch holds the snapshot's first row.
    snapshot_starts: bool,
}

impl EdgeMarker {
    /// `fresh`: nothing of this snapshot was read before (a resumed snapshot's
    /// first row is not the snapshot's first).
    pub(super) fn new(fresh: bool) -> Self {
        EdgeMarker {
            held: None,
            behind: Vec::new(),
            table: Arc::from(""),
            table_starts: false,
            snapshot_starts: fresh,
        }
    }

    /// The batches of `table` come next; `resumed`: some of its chunks were read
    /// before, so its first row in this run is not its first.
    pub(super) fn begin_table(&mut self, table: Arc<str>, resumed: bool) {
        self.table = table;
        self.table_starts = !resumed;
    }

    /// A batch of the current table: the held one goes out, this one is held.
    pub(super) async fn batch<T>(
        &mut self,
        batch: RecordBatch,
        out: &mpsc::Sender<T>,
    ) -> Result<(), SnapshotError>
    where
        T: From<SnapshotEvent> + From<(RecordBatch, SnapshotMarks)>,
    {
        // An empty batch writes nothing and has no edge row.
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ends_table = self
            .held
            .as_ref()
            .is_some_and(|held| held.table != self.table);
        self.release(ends_table.then_some(Edge::Table), out).await?;
        let first = if self.snapshot_starts {
            Some(Edge::Snapshot)
        } else {
            self.table_starts.then_some(Edge::Table)
        };
        self.snapshot_starts = false;
        self.table_starts = false;
        self.held = Some(Held {
            batch,
            marks: SnapshotMarks {
                incremental: false,
                first,
                last: None,
            },
            table: Arc::clone(&self.table),
        });
        Ok(())
    }

    /// A progress event: behind the held batch if there is one.
    pub(super) async fn event<T>(
        &mut self,
        event: SnapshotEvent,
        out: &mpsc::Sender<T>,
    ) -> Result<(), SnapshotError>
    where
        T: From<SnapshotEvent> + From<(RecordBatch, SnapshotMarks)>,
    {
        if self.held.is_some() {
            self.behind.push(event);
            Ok(())
        } else {
            send(out, event).await
        }
    }

    /// Every table was read: the held batch ends the snapshot.
    pub(super) async fn finish<T>(&mut self, out: &mpsc::Sender<T>) -> Result<(), SnapshotError>
    where
        T: From<SnapshotEvent> + From<(RecordBatch, SnapshotMarks)>,
    {
        self.release(Some(Edge::Snapshot), out).await
    }

    /// Sends the held batch, its last row on edge `last`, and what came after it.
    async fn release<T>(
        &mut self,
        last: Option<Edge>,
        out: &mpsc::Sender<T>,
    ) -> Result<(), SnapshotError>
    where
        T: From<SnapshotEvent> + From<(RecordBatch, SnapshotMarks)>,
    {
        let Some(Held {
            batch, mut marks, ..
        }) = self.held.take()
        else {
            return Ok(());
        };
        marks.last = last;
        send(out, (batch, marks)).await?;
        for event in self.behind.drain(..) {
            send(out, event).await?;
        }
        Ok(())
    }
}

async fn send<T, E: Into<T>>(out: &mpsc::Sender<T>, event: E) -> Result<(), SnapshotError> {
    out.send(event.into())
        .await
        .map_err(|_| SnapshotError::Closed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::Int32Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::source::snapshot::parallel::ChunkRead;

    #[derive(Debug, PartialEq)]
    enum Out {
        Rows(usize, SnapshotMarks),
        Chunk(String, usize),
    }

    impl From<(RecordBatch, SnapshotMarks)> for Out {
        fn from((batch, marks): (RecordBatch, SnapshotMarks)) -> Self {
            Out::Rows(batch.num_rows(), marks)
        }
    }

    impl From<SnapshotEvent> for Out {
        fn from(event: SnapshotEvent) -> Self {
            match event {
                SnapshotEvent::ChunkRead(chunk) => Out::Chunk(chunk.table.to_string(), chunk.index),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn rows(n: i32) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from_iter_values(0..n))])
            .expect("batch")
    }

    fn chunk(table: &str, index: usize) -> SnapshotEvent {
        SnapshotEvent::ChunkRead(ChunkRead {
            table: table.into(),
            index,
            rows: 1,
        })
    }

    fn marks(first: Option<Edge>, last: Option<Edge>) -> SnapshotMarks {
        SnapshotMarks {
            incremental: false,
            first,
            last,
        }
    }

    #[tokio::test]
    async fn edges_are_marked_and_chunks_never_pass_their_batches() {
        let (out, mut received) = mpsc::channel::<Out>(64);
        let mut marker = EdgeMarker::new(true);
        marker.begin_table("a".into(), false);
        marker.batch(rows(2), &out).await.expect("send");
        marker.event(chunk("a", 0), &out).await.expect("send");
        marker.batch(rows(3), &out).await.expect("send");
        marker.event(chunk("a", 1), &out).await.expect("send");
        // An empty table, then one resumed halfway (no first row of its own).
        marker.begin_table("empty".into(), false);
        marker.event(chunk("empty", 0), &out).await.expect("send");
        marker.begin_table("b".into(), true);
        marker.batch(rows(1), &out).await.expect("send");
        marker.event(chunk("b", 3), &out).await.expect("send");
        marker.begin_table("c".into(), false);
        marker.batch(rows(4), &out).await.expect("send");
        marker.event(chunk("c", 0), &out).await.expect("send");
        marker.begin_table("empty at the end".into(), false);
        marker
            .event(chunk("empty at the end", 0), &out)
            .await
            .expect("send");
        marker.finish(&out).await.expect("send");
        drop(out);
        let mut seen = Vec::new();
        while let Some(item) = received.recv().await {
            seen.push(item);
        }
        let table = Some(Edge::Table);
        let snapshot = Some(Edge::Snapshot);
        assert_eq!(
            seen,
            vec![
                Out::Rows(2, marks(snapshot, None)),
                Out::Chunk("a".into(), 0),
                Out::Rows(3, marks(None, table)),
                Out::Chunk("a".into(), 1),
                Out::Chunk("empty".into(), 0),
                Out::Rows(1, marks(None, table)),
                Out::Chunk("b".into(), 3),
                Out::Rows(4, marks(table, snapshot)),
                Out::Chunk("c".into(), 0),
                Out::Chunk("empty at the end".into(), 0),
            ]
        );
    }

    #[tokio::test]
    async fn a_resumed_snapshot_has_no_first_row() {
        let (out, mut received) = mpsc::channel::<Out>(8);
        let mut marker = EdgeMarker::new(false);
        marker.begin_table("a".into(), false);
        marker.batch(rows(1), &out).await.expect("send");
        marker.finish(&out).await.expect("send");
        drop(out);
        let first = received.recv().await;
        assert_eq!(
            first,
            Some(Out::Rows(1, marks(Some(Edge::Table), Some(Edge::Snapshot))))
        );
    }
}
