//! The checkpoint tracker: the flush LSN reaches a transaction's end only once every
//! message of that transaction and of all earlier ones is acknowledged by Kafka.
//!
//! The pipeline reports three things: a message of transaction `commit_lsn` was handed
//! to the producer ([`CheckpointTracker::sent`]), the transaction has no more messages
//! ([`CheckpointTracker::committed`], from the source's commit marker), and a delivery
//! report ([`CheckpointTracker::delivered`] or [`CheckpointTracker::failed`], from the
//! producer's thread). The flush LSN is published on a watch channel that the source
//! reads when it sends its standby status. A failed delivery freezes it for good: the
//! pipeline must stop, and a restart resumes from the last confirmed position, so
//! nothing unacknowledged is ever confirmed.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, PoisonError};

use tokio::sync::watch;

use crate::Lsn;
use crate::contract::CommittedTransaction;

/// The tracker saw something that breaks the guarantee it keeps.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// A delivery failed after the producer's retries: the flush LSN stays where it is.
    #[error("delivery of a message of the transaction committed at {commit_lsn} failed: {error}")]
    DeliveryFailed {
        /// The transaction's commit LSN.
        commit_lsn: Lsn,
        /// The producer's error.
        error: String,
    },
    /// The Kafka cluster refuses the producer (credentials, certificates): nothing
    /// more will be delivered, so the flush LSN stays where it is.
    #[error("Kafka refuses the producer: {0}")]
    Refused(String),
    /// Messages were reported out of commit order, or after their transaction's
    /// commit marker: a bug in the caller, reported rather than confirmed wrongly.
    #[error("checkpoint bookkeeping out of order at {commit_lsn}: {what}")]
    OutOfOrder {
        /// The transaction concerned.
        commit_lsn: Lsn,
        /// What was wrong.
        what: &'static str,
    },
}

/// One transaction not yet confirmed.
#[derive(Debug)]
struct Pending {
    commit_lsn: Lsn,
    /// Messages handed to the producer and not yet acknowledged.
    in_flight: u64,
    /// `Some(end_lsn)` once the commit marker arrived: no more messages will come.
    end_lsn: Option<Lsn>,
}

#[derive(Debug)]
struct State {
    /// In commit order.
    pending: VecDeque<Pending>,
    flushed: Lsn,
    error: Option<CheckpointError>,
    /// Messages handed to the producer and not yet acknowledged, over all pending
    /// transactions: kept beside the list so [`CheckpointTracker::wait_idle`] and
    /// the gauge need not sum it.
    in_flight: u64,
    /// Messages no transaction waits for (heartbeats, snapshot progress), not yet
    /// acknowledged.
    untracked: u64,
    /// Threads in [`CheckpointTracker::wait_idle`]: a notification costs a system
    /// call, so the delivery thread makes one only when someone waits.
    waiting: usize,
    /// Exactly-once: the end of the last transaction a committed Kafka transaction
    /// holds. Acknowledged messages of an uncommitted Kafka transaction may still
    /// be aborted, so the flush LSN stops here until the next commit raises it.
    gate: Option<Lsn>,
}

/// Tracks deliveries per transaction. Shared by the pipeline and the producer's
/// delivery callbacks (`&self` methods, internally locked).
#[derive(Debug)]
pub struct CheckpointTracker {
    state: Mutex<State>,
    /// Signalled when nothing is in flight any more, or on the first error.
    idle: Condvar,
    publisher: watch::Sender<Lsn>,
}

impl CheckpointTracker {
    /// A tracker whose flush LSN starts at `start` (the slot's confirmed position).
    pub fn new(start: Lsn) -> Self {
        let (publisher, _) = watch::channel(start);
        Self {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                flushed: start,
                error: None,
                in_flight: 0,
                untracked: 0,
                waiting: 0,
                gate: None,
            }),
            idle: Condvar::new(),
            publisher,
        }
    }

    /// Exactly-once: from now on the flush LSN moves only up to what
    /// [`CheckpointTracker::release`] allows, and starts at `committed`, the end of
    /// the last transaction Kafka holds committed (from the state topic); what
    /// comes again before it is skipped.
    pub fn gate(&self, committed: Lsn) {
        let mut state = self.lock();
        state.gate = Some(committed);
        if committed > state.flushed {
            state.flushed = committed;
            self.publisher.send_replace(committed);
        }
    }

    /// Exactly-once: a Kafka transaction holding everything up to `committed` (the
    /// end of a PostgreSQL transaction) committed; the flush LSN may move there.
    pub fn release(&self, committed: Lsn) {
        let mut state = self.lock();
        if let Some(gate) = &mut state.gate {
            *gate = (*gate).max(committed);
        }
        self.advance(&mut state);
    }

    /// The flush LSN as it moves, for the source's standby status.
    pub fn subscribe(&self) -> watch::Receiver<Lsn> {
        self.publisher.subscribe()
    }

    /// The flush LSN now.
    pub fn flushed(&self) -> Lsn {
        self.lock().flushed
    }

    /// The error that froze the tracker, if any.
    pub fn error(&self) -> Option<CheckpointError> {
        self.lock().error.clone()
    }

    /// Messages still awaiting acknowledgement, over all transactions.
    pub fn in_flight(&self) -> u64 {
        self.lock().in_flight
    }

    /// Blocks until every message handed to the producer, tracked or not, is
    /// acknowledged, or a delivery failed. A snapshot chunk is recorded as done
    /// only after this returns `Ok`.
    pub fn wait_idle(&self) -> Result<(), CheckpointError> {
        let mut state = self.lock();
        loop {
            if let Some(error) = &state.error {
                return Err(error.clone());
            }
            if state.in_flight == 0 && state.untracked == 0 {
                return Ok(());
            }
            state.waiting += 1;
            state = self
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
    }

    /// A message no transaction waits for was handed to the producer.
    pub fn sent_untracked(&self) {
        self.lock().untracked += 1;
    }

    /// A message no transaction waits for was acknowledged, or failed (which only
    /// a warning reports: nothing is confirmed through it).
    pub fn settled_untracked(&self) {
        let mut state = self.lock();
        state.untracked = state.untracked.saturating_sub(1);
        self.notify_if_idle(&state);
    }

    /// `count` messages of the transaction committed at `commit_lsn` were handed to
    /// the producer. Transactions must be reported in commit order.
    pub fn sent(&self, commit_lsn: Lsn, count: u64) -> Result<(), CheckpointError> {
        let mut state = self.lock();
        // A commit record may start exactly where the last confirmed one ended (or
        // at a keepalive's end of WAL): only one that starts before it is confirmed.
        if commit_lsn < state.flushed {
            return Err(state.fail(CheckpointError::OutOfOrder {
                commit_lsn,
                what: "a message for a transaction already confirmed",
            }));
        }
        match state.pending.back_mut() {
            Some(last) if last.commit_lsn == commit_lsn => {
                if last.end_lsn.is_some() {
                    return Err(state.fail(CheckpointError::OutOfOrder {
                        commit_lsn,
                        what: "a message after the transaction's commit marker",
                    }));
                }
                last.in_flight += count;
            }
            Some(last) if last.commit_lsn > commit_lsn => {
                // An earlier transaction still open (its commit marker not yet
                // seen) may get more messages, such as its transaction metadata
                // event: nothing past it can be confirmed before they are acked.
                // Its first message may come after a later transaction's too: one
                // table's batch holds transactions 1 and 3, another's transaction 2.
                // It takes its place in commit order while every later one is open
                // (their markers, which come in commit order, cannot have passed it).
                match state
                    .pending
                    .binary_search_by_key(&commit_lsn, |p| p.commit_lsn)
                {
                    Ok(index) if state.pending[index].end_lsn.is_none() => {
                        state.pending[index].in_flight += count;
                    }
                    Err(index)
                        if state
                            .pending
                            .range(index..)
                            .all(|later| later.end_lsn.is_none()) =>
                    {
                        state.pending.insert(
                            index,
                            Pending {
                                commit_lsn,
                                in_flight: count,
                                end_lsn: None,
                            },
                        );
                    }
                    _ => {
                        return Err(state.fail(CheckpointError::OutOfOrder {
                            commit_lsn,
                            what: "a message of an earlier transaction after a later one's commit marker",
                        }));
                    }
                }
            }
            _ => state.pending.push_back(Pending {
                commit_lsn,
                in_flight: count,
                end_lsn: None,
            }),
        }
        state.in_flight += count;
        Ok(())
    }

    /// The source's commit marker: the transaction has no more messages. A
    /// transaction without messages (all rows filtered out) is confirmable at once,
    /// in its turn.
    pub fn committed(&self, transaction: &CommittedTransaction) -> Result<(), CheckpointError> {
        let mut state = self.lock();
        let commit_lsn = transaction.commit_lsn;
        if commit_lsn < state.flushed
            || (commit_lsn == state.flushed && transaction.end_lsn <= state.flushed)
        {
            // Replayed after a reconnect (or an idle marker repeated): confirmed.
            return Ok(());
        }
        // The marker nearly always ends the newest transaction: look there first,
        // and search the (commit-ordered) list only otherwise.
        let position = match state.pending.back() {
            Some(last) if last.commit_lsn == commit_lsn => Some(state.pending.len() - 1),
            _ => state
                .pending
                .binary_search_by_key(&commit_lsn, |p| p.commit_lsn)
                .ok(),
        };
        match position {
            Some(index) => state.pending[index].end_lsn = Some(transaction.end_lsn),
            None => {
                // A transaction without messages (its rows filtered out) whose
                // marker comes after a later transaction's messages (another
                // table's batch went first) takes its place while every later
                // one is open, as its first message would (see `sent`).
                let index = state.pending.partition_point(|p| p.commit_lsn < commit_lsn);
                if state
                    .pending
                    .range(index..)
                    .any(|later| later.end_lsn.is_some())
                {
                    return Err(state.fail(CheckpointError::OutOfOrder {
                        commit_lsn,
                        what: "a commit marker after a later transaction's commit marker",
                    }));
                }
                state.pending.insert(
                    index,
                    Pending {
                        commit_lsn,
                        in_flight: 0,
                        end_lsn: Some(transaction.end_lsn),
                    },
                );
            }
        }
        self.advance(&mut state);
        Ok(())
    }

    /// Kafka acknowledged one message of the transaction committed at `commit_lsn`.
    pub fn delivered(&self, commit_lsn: Lsn) {
        let mut state = self.lock();
        let Ok(index) = state
            .pending
            .binary_search_by_key(&commit_lsn, |p| p.commit_lsn)
        else {
            state.fail(CheckpointError::OutOfOrder {
                commit_lsn,
                what: "an acknowledgement for no pending transaction",
            });
            self.idle.notify_all();
            return;
        };
        let pending = &mut state.pending[index];
        if pending.in_flight == 0 {
            state.fail(CheckpointError::OutOfOrder {
                commit_lsn,
                what: "more acknowledgements than messages",
            });
            self.idle.notify_all();
            return;
        }
        pending.in_flight -= 1;
        state.in_flight -= 1;
        if index == 0 {
            self.advance(&mut state);
        }
        self.notify_if_idle(&state);
    }

    /// A message of the transaction committed at `commit_lsn` could not be delivered.
    /// The flush LSN never moves again.
    pub fn failed(&self, commit_lsn: Lsn, error: impl Into<String>) {
        let mut state = self.lock();
        state.fail(CheckpointError::DeliveryFailed {
            commit_lsn,
            error: error.into(),
        });
        self.idle.notify_all();
    }

    /// The cluster refuses the producer: no delivery will come, so the flush LSN never
    /// moves again and the pipeline stops.
    pub fn refused(&self, reason: impl Into<String>) {
        let mut state = self.lock();
        state.fail(CheckpointError::Refused(reason.into()));
        self.idle.notify_all();
    }

    fn notify_if_idle(&self, state: &State) {
        if state.waiting > 0 && state.in_flight == 0 && state.untracked == 0 {
            self.idle.notify_all();
        }
    }

    /// Confirms every leading transaction that is complete and fully acknowledged.
    fn advance(&self, state: &mut State) {
        if state.error.is_some() {
            return;
        }
        let before = state.flushed;
        while let Some(front) = state.pending.front() {
            match front.end_lsn {
                Some(end_lsn)
                    if front.in_flight == 0 && state.gate.is_none_or(|g| end_lsn <= g) =>
                {
                    state.flushed = state.flushed.max(end_lsn);
                    state.pending.pop_front();
                }
                _ => break,
            }
        }
        if state.flushed != before {
            self.publisher.send_replace(state.flushed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Records the first error (later ones are consequences) and returns it.
    fn fail(&mut self, error: CheckpointError) -> CheckpointError {
        if self.error.is_none() {
            tracing::error!(%error, flushed = %self.flushed, "checkpoint frozen");
            self.error = Some(error.clone());
        }
        error
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn txn(commit: u64, rows: u64) -> CommittedTransaction {
        CommittedTransaction {
            xid: u32::try_from(commit).unwrap_or(0),
            commit_lsn: Lsn(commit),
            end_lsn: Lsn(commit + 8),
            rows,
        }
    }

    #[test]
    fn a_transaction_is_confirmed_when_all_its_messages_are() {
        let tracker = CheckpointTracker::new(Lsn(10));
        let watch = tracker.subscribe();
        tracker.sent(Lsn(100), 2).expect("sent");
        tracker.committed(&txn(100, 2)).expect("committed");
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(10), "one message still in flight");
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(108), "the end of the commit record");
        assert_eq!(*watch.borrow(), Lsn(108));
    }

    #[test]
    fn a_gated_tracker_confirms_only_what_a_kafka_commit_released() {
        // Exactly-once: Kafka holds everything up to 50 committed (state topic).
        let tracker = CheckpointTracker::new(Lsn(10));
        let watch = tracker.subscribe();
        tracker.gate(Lsn(50));
        assert_eq!(tracker.flushed(), Lsn(50), "starts at the committed end");
        assert_eq!(*watch.borrow(), Lsn(50));
        for commit in [100, 200] {
            tracker.sent(Lsn(commit), 1).expect("sent");
            tracker.committed(&txn(commit, 1)).expect("committed");
            tracker.delivered(Lsn(commit));
        }
        assert_eq!(
            tracker.flushed(),
            Lsn(50),
            "acknowledged, but the Kafka transaction may still abort"
        );
        tracker.release(Lsn(108));
        assert_eq!(tracker.flushed(), Lsn(108), "the first one committed");
        tracker.release(Lsn(208));
        assert_eq!(tracker.flushed(), Lsn(208));
        // A lower release (an older record) never moves it back.
        tracker.release(Lsn(108));
        assert_eq!(tracker.flushed(), Lsn(208));
    }

    #[test]
    fn a_gate_below_the_start_keeps_the_start() {
        let tracker = CheckpointTracker::new(Lsn(300));
        tracker.gate(Lsn(200));
        assert_eq!(tracker.flushed(), Lsn(300));
    }

    #[test]
    fn later_transactions_wait_for_earlier_ones() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.sent(Lsn(200), 1).expect("sent");
        tracker.committed(&txn(100, 1)).expect("committed");
        tracker.committed(&txn(200, 1)).expect("committed");
        tracker.delivered(Lsn(200));
        assert_eq!(tracker.flushed(), Lsn(0), "200 is acked, 100 is not");
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(208), "both at once");
    }

    #[test]
    fn a_transaction_is_not_confirmed_before_its_commit_marker() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(0), "more messages may come");
        tracker.committed(&txn(100, 1)).expect("committed");
        assert_eq!(tracker.flushed(), Lsn(108));
    }

    #[test]
    fn filtered_out_transactions_pass_in_their_turn() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.committed(&txn(100, 1)).expect("committed");
        tracker.committed(&txn(200, 0)).expect("committed");
        assert_eq!(tracker.flushed(), Lsn(0), "200 waits for 100");
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(208));
        tracker.committed(&txn(300, 0)).expect("committed");
        assert_eq!(tracker.flushed(), Lsn(308));
    }

    #[test]
    fn a_commit_starting_where_the_flush_position_ends_is_not_confirmed_yet() {
        // T2's commit record ends at 208 and T1's starts there; then an idle
        // marker just before a keepalive's end of WAL at 300, where T3's commit
        // record starts.
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(200), 1).expect("sent");
        tracker.committed(&txn(200, 1)).expect("committed");
        tracker.delivered(Lsn(200));
        assert_eq!(tracker.flushed(), Lsn(208));
        tracker
            .sent(Lsn(208), 1)
            .expect("a commit at the flush position is new");
        tracker.committed(&txn(208, 1)).expect("committed");
        tracker.delivered(Lsn(208));
        assert_eq!(tracker.flushed(), Lsn(216));
        let marker = CommittedTransaction {
            xid: 0,
            commit_lsn: Lsn(299),
            end_lsn: Lsn(300),
            rows: 0,
        };
        tracker.committed(&marker).expect("marker");
        assert_eq!(tracker.flushed(), Lsn(300));
        tracker.sent(Lsn(300), 1).expect("T3 is new");
        tracker.committed(&txn(300, 1)).expect("committed");
        tracker.delivered(Lsn(300));
        assert_eq!(tracker.flushed(), Lsn(308));
        assert!(tracker.error().is_none());
        // A replay of T2 is confirmed already.
        assert!(tracker.committed(&txn(200, 1)).is_ok());
        assert_eq!(tracker.flushed(), Lsn(308));
    }

    #[test]
    fn a_failed_delivery_freezes_the_flush_lsn() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 2).expect("sent");
        tracker.committed(&txn(100, 2)).expect("committed");
        tracker.failed(Lsn(100), "broker down");
        tracker.delivered(Lsn(100));
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(0));
        assert!(matches!(
            tracker.error(),
            Some(CheckpointError::DeliveryFailed { .. })
        ));
        tracker.committed(&txn(200, 0)).expect("committed");
        assert_eq!(tracker.flushed(), Lsn(0), "frozen for good");
    }

    #[test]
    fn bookkeeping_errors_are_reported_not_confirmed() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(200), 1).expect("sent");
        tracker.committed(&txn(200, 1)).expect("committed");
        assert!(
            tracker.sent(Lsn(100), 1).is_err(),
            "an earlier transaction after a later one's commit marker"
        );
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.committed(&txn(100, 1)).expect("committed");
        assert!(
            tracker.sent(Lsn(100), 1).is_err(),
            "after the commit marker"
        );
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.delivered(Lsn(100));
        assert!(tracker.error().is_some(), "an ack for nothing");
    }

    #[test]
    fn an_earlier_transaction_may_start_after_a_later_open_one() {
        // Table A's batch holds transactions 100 and 300, table B's 200, and A's
        // batch went first.
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.sent(Lsn(300), 1).expect("sent");
        tracker.sent(Lsn(200), 1).expect("200 takes its place");
        tracker.committed(&txn(100, 1)).expect("committed");
        tracker.committed(&txn(200, 1)).expect("committed");
        tracker.committed(&txn(300, 1)).expect("committed");
        tracker.delivered(Lsn(100));
        tracker.delivered(Lsn(300));
        assert_eq!(tracker.flushed(), Lsn(108), "200 is not acknowledged yet");
        tracker.delivered(Lsn(200));
        assert_eq!(tracker.flushed(), Lsn(308));
    }

    #[test]
    fn an_earlier_transaction_without_messages_may_end_after_a_later_open_one() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(300), 1).expect("sent");
        // 200's rows were all filtered out: only its marker comes.
        tracker
            .committed(&txn(200, 0))
            .expect("200 takes its place");
        tracker.committed(&txn(300, 1)).expect("committed");
        assert_eq!(
            tracker.flushed(),
            Lsn(208),
            "200 is confirmable, 300 is not acked"
        );
        tracker.delivered(Lsn(300));
        assert_eq!(tracker.flushed(), Lsn(308));
        // A marker before one that is closed already is out of order.
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(300), 1).expect("sent");
        tracker.committed(&txn(300, 1)).expect("committed");
        assert!(tracker.committed(&txn(200, 0)).is_err());
    }

    #[test]
    fn an_open_earlier_transaction_may_get_more_messages() {
        let tracker = CheckpointTracker::new(Lsn(0));
        tracker.sent(Lsn(100), 1).expect("sent");
        tracker.sent(Lsn(200), 1).expect("sent");
        tracker.sent(Lsn(100), 2).expect("100 is still open");
        tracker.committed(&txn(100, 3)).expect("committed");
        tracker.delivered(Lsn(100));
        tracker.delivered(Lsn(100));
        assert_eq!(
            tracker.flushed(),
            Lsn(0),
            "one of 100's three messages unacked"
        );
        tracker.delivered(Lsn(100));
        assert_eq!(tracker.flushed(), Lsn(108));
        assert!(tracker.sent(Lsn(100), 1).is_err(), "100 is confirmed");
        tracker.committed(&txn(200, 1)).expect("committed");
        assert!(tracker.sent(Lsn(200), 1).is_err(), "200 is closed");
    }

    /// Many transactions, acknowledgements in a scrambled order: the flush LSN only
    /// ever names a transaction whose messages, and all earlier ones', are acked.
    #[test]
    fn scrambled_acknowledgements_never_confirm_too_early() {
        let tracker = CheckpointTracker::new(Lsn(0));
        let mut acks = Vec::new();
        for t in 1..=200u64 {
            let messages = t % 4; // some transactions have none
            tracker.sent(Lsn(t * 100), messages).expect("in order");
            for _ in 0..messages {
                acks.push(t * 100);
            }
            tracker
                .committed(&txn(t * 100, messages))
                .expect("committed");
        }
        // A deterministic shuffle (LCG), no extra crates.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        for i in (1..acks.len()).rev() {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let j = usize::try_from(seed >> 33).unwrap_or(0) % (i + 1);
            acks.swap(i, j);
        }
        let mut acked = std::collections::HashMap::<u64, u64>::new();
        for commit in acks {
            tracker.delivered(Lsn(commit));
            *acked.entry(commit).or_default() += 1;
            let flushed = tracker.flushed().0;
            for t in 1..=200u64 {
                if t * 100 + 8 <= flushed {
                    assert_eq!(
                        acked.get(&(t * 100)).copied().unwrap_or(0),
                        t % 4,
                        "txn {t} confirmed early"
                    );
                }
            }
        }
        assert_eq!(tracker.flushed(), Lsn(200 * 100 + 8));
        assert_eq!(tracker.in_flight(), 0);
        assert!(tracker.error().is_none());
    }

    #[test]
    fn wait_idle_returns_once_the_last_message_is_acknowledged() {
        let tracker = Arc::new(CheckpointTracker::new(Lsn(10)));
        tracker.sent(Lsn(100), 2).expect("sent");
        tracker.sent_untracked();
        let waiter = std::thread::spawn({
            let tracker = Arc::clone(&tracker);
            move || tracker.wait_idle()
        });
        tracker.delivered(Lsn(100));
        tracker.delivered(Lsn(100));
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "a heartbeat is still in flight");
        tracker.settled_untracked();
        assert_eq!(waiter.join().expect("joined"), Ok(()));
        assert_eq!(tracker.in_flight(), 0);
    }

    #[test]
    fn wait_idle_fails_when_a_delivery_fails() {
        let tracker = Arc::new(CheckpointTracker::new(Lsn(10)));
        tracker.sent(Lsn(100), 1).expect("sent");
        let waiter = std::thread::spawn({
            let tracker = Arc::clone(&tracker);
            move || tracker.wait_idle()
        });
        tracker.failed(Lsn(100), "broker gone");
        assert!(matches!(
            waiter.join().expect("joined"),
            Err(CheckpointError::DeliveryFailed { .. })
        ));
    }
}
