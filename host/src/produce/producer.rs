//! The Kafka producer: rdkafka with idempotence on, every delivery report handed to
//! the [`CheckpointTracker`], so the flush LSN only moves past what Kafka has.
//!
//! By default a message is retried until it is delivered (`message.timeout.ms=0`),
//! as Kafka Connect does for source connectors: a broker that is down makes weir
//! wait (and, through the bounded queue, stop reading WAL) instead of losing data. A
//! delivery that fails for good (a finite timeout, an authorization error) freezes
//! the tracker and the pipeline stops.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;

use arrow::array::{AsArray, RecordBatch};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::client::Refusal;
use crate::Lsn;
use crate::checkpoint::CheckpointTracker;
use crate::contract::columns::{KEY, MetadataColumns, MissingColumn};
use crate::contract::{Destination, Messages};

/// Producing failed before Kafka was involved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// The producer could not be created (bad properties).
    #[error("creating the Kafka producer: {0}")]
    Create(Box<KafkaError>),
    /// librdkafka refused a message outright (too large, unknown partition …).
    #[error("producing to {topic}: {error}")]
    Enqueue {
        /// The topic.
        topic: String,
        /// Why.
        error: Box<KafkaError>,
    },
    /// librdkafka gave the producer up for good: with idempotence, the cluster
    /// refused it a producer id (an ACL without Write on any topic, say).
    #[error("producing to {topic}: the Kafka producer failed for good: {reason}")]
    Fatal {
        /// The topic.
        topic: String,
        /// librdkafka's reason.
        reason: String,
    },
    /// The batch lacks weir's metadata.
    #[error(transparent)]
    Batch(#[from] MissingColumn),
    /// The checkpoint bookkeeping refused the message.
    #[error(transparent)]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
    /// Another producer with the same `transactional.id` started (a second weir
    /// running the same pipeline, or a standby taking over): this one may write
    /// and confirm nothing more.
    #[error(
        "fenced: another producer started with transactional id {transactional_id:?} \
         (a second weir running this pipeline, or a standby that took over); this one \
         stops and confirms nothing after its last committed transaction"
    )]
    Fenced {
        /// The id both use.
        transactional_id: String,
    },
    /// A step of a Kafka transaction failed; what the transaction held is aborted
    /// (or never visible to `read_committed` readers).
    #[error("Kafka transaction of {transactional_id:?}: {what}: {error}")]
    Transaction {
        /// The transactional id.
        transactional_id: String,
        /// The step: initialising, beginning, committing, aborting.
        what: &'static str,
        /// Why.
        error: Box<KafkaError>,
    },
}

/// Producer settings; `properties` pass any librdkafka setting through (security,
/// SASL, tuning) and win over the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerOptions {
    /// `bootstrap.servers`.
    pub brokers: String,
    /// `compression.type`: `none`, `gzip`, `snappy`, `lz4`, `zstd`.
    pub compression: String,
    /// `acks`: `all`, `1`, `0`.
    pub acks: String,
    /// `linger.ms`.
    pub linger: Duration,
    /// `batch.size` in bytes.
    pub batch_bytes: usize,
    /// `message.timeout.ms`; zero retries for ever.
    pub delivery_timeout: Duration,
    /// Other librdkafka properties.
    pub properties: Vec<(String, String)>,
    /// Exactly-once: a transactional producer with these settings.
    pub transactional: Option<TransactionalOptions>,
}

/// A transactional producer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionalOptions {
    /// `transactional.id`: a producer starting with it fences every earlier one.
    pub id: String,
    /// `transaction.timeout.ms`: the broker aborts a transaction left open longer.
    /// It also bounds how long a message is retried (librdkafka's
    /// `message.timeout.ms` may not exceed it).
    pub timeout: Duration,
}

impl ProducerOptions {
    /// Defaults for `brokers`: lz4, acks=all, 5 ms linger, 1 MiB batches, retry for
    /// ever.
    pub fn new(brokers: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            compression: "lz4".into(),
            acks: "all".into(),
            linger: Duration::from_millis(5),
            batch_bytes: 1 << 20,
            delivery_timeout: Duration::ZERO,
            properties: Vec::new(),
            transactional: None,
        }
    }
}

/// How long creating a transactional producer waits for the cluster to fence its
/// predecessors.
const INIT_TIMEOUT: Duration = Duration::from_secs(60);

/// The least time one commit attempt is given.
const COMMIT_ATTEMPT: Duration = Duration::from_secs(10);

/// The retry window a producer can have: a transactional one retries no longer
/// than its transaction may stay open (librdkafka refuses more, or endless).
fn delivery_timeout(options: &ProducerOptions) -> Duration {
    match &options.transactional {
        Some(transactional)
            if options.delivery_timeout.is_zero()
                || options.delivery_timeout > transactional.timeout =>
        {
            transactional.timeout
        }
        _ => options.delivery_timeout,
    }
}

/// Whether the cluster said another producer took this transactional id over.
fn is_fencing(code: Option<RDKafkaErrorCode>) -> bool {
    matches!(
        code,
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    )
}

/// Most kilobytes librdkafka queues before `send` waits (`queue.buffering.max.kbytes`).
const QUEUE_KBYTES: usize = 64 * 1024;

/// The opaque of messages no transaction waits for; no commit is at LSN 0.
const UNTRACKED: Lsn = Lsn(0);

/// Delivery reports to the tracker; the opaque is the message's commit LSN and
/// when it was queued.
struct Deliveries {
    tracker: Arc<CheckpointTracker>,
    latency: Option<Latency>,
    refusal: Refusal,
}

/// Where acknowledgement latencies are recorded.
#[derive(Debug, Clone)]
pub struct Latency {
    /// From handing a message to the producer to Kafka's acknowledgement.
    pub produce: Histogram,
    /// From the transaction's commit in PostgreSQL to Kafka's acknowledgement.
    pub commit_to_ack: Histogram,
}

/// What travels with each message to its delivery report.
struct Opaque {
    commit_lsn: u64,
    queued: Instant,
    /// The commit time, microseconds since the Unix epoch (0: none).
    commit_micros: i64,
}

impl ClientContext for Deliveries {
    /// A cluster that refuses the producer fails the tracker, so the pipeline stops
    /// instead of queueing for ever.
    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(refusal) = super::client::report(&self.refusal, &error, reason) {
            self.tracker.refused(refusal);
        }
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = Box<Opaque>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let commit_lsn = Lsn(opaque.commit_lsn);
        if let Some(latency) = &self.latency {
            latency
                .produce
                .observe(opaque.queued.elapsed().as_secs_f64());
            if opaque.commit_micros > 0 {
                let now = crate::clock::now_unix_micros();
                #[allow(clippy::cast_precision_loss)]
                let seconds = (now - opaque.commit_micros).max(0) as f64 / 1e6;
                latency.commit_to_ack.observe(seconds);
            }
        }
        if commit_lsn == UNTRACKED {
            if let Err((error, _)) = result {
                tracing::warn!(%error, "an untracked message (a heartbeat) was not delivered");
            }
            self.tracker.settled_untracked();
            return;
        }
        match result {
            Ok(_) => self.tracker.delivered(commit_lsn),
            Err((error, _)) => {
                tracing::error!(%error, %commit_lsn, "delivery failed");
                self.tracker.failed(commit_lsn, error.to_string());
            }
        }
    }
}

/// An LSN's `X/Y` text on the stack: the `weir.lsn` header of every message
/// without a `String` each.
#[derive(Default)]
struct LsnText([u8; 17]);

impl LsnText {
    fn format(&mut self, lsn: Lsn) -> &[u8] {
        use std::io::Write as _;
        // 17 bytes hold the longest form, `FFFFFFFF/FFFFFFFF`.
        let remaining = {
            let mut rest = &mut self.0[..];
            let _ = write!(rest, "{lsn}");
            rest.len()
        };
        let written = self.0.len() - remaining;
        &self.0[..written]
    }
}

/// Sends encoded batches and reports deliveries to a [`CheckpointTracker`].
pub struct KafkaProducer {
    producer: ThreadedProducer<Deliveries>,
    tracker: Arc<CheckpointTracker>,
    /// Exactly-once: the transactional id and when the open Kafka transaction
    /// began (`None`: none is open; the next message begins one).
    transaction: Option<(String, Mutex<Option<Instant>>)>,
}

impl std::fmt::Debug for KafkaProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaProducer").finish_non_exhaustive()
    }
}

impl KafkaProducer {
    /// A producer reporting to `tracker`.
    pub fn new(
        options: &ProducerOptions,
        tracker: Arc<CheckpointTracker>,
    ) -> Result<Self, ProduceError> {
        Self::with_latency(options, tracker, None)
    }

    /// A producer reporting to `tracker`, and each acknowledgement's latencies to
    /// `latency`.
    pub fn with_latency(
        options: &ProducerOptions,
        tracker: Arc<CheckpointTracker>,
        latency: Option<Latency>,
    ) -> Result<Self, ProduceError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &options.brokers)
            .set("enable.idempotence", "true")
            .set("acks", &options.acks)
            .set("compression.type", &options.compression)
            .set("linger.ms", options.linger.as_millis().to_string())
            .set("batch.size", options.batch_bytes.to_string())
            // librdkafka's default queue may hold up to 1 GiB before `send`
            // waits; 64 MiB is several batches in flight and a bound weir can
            // state (properties may raise it).
            .set("queue.buffering.max.kbytes", QUEUE_KBYTES.to_string())
            .set(
                "message.timeout.ms",
                delivery_timeout(options).as_millis().to_string(),
            );
        if let Some(transactional) = &options.transactional {
            config.set("transactional.id", &transactional.id).set(
                "transaction.timeout.ms",
                transactional.timeout.as_millis().to_string(),
            );
        }
        for (key, value) in &options.properties {
            config.set(key, value);
        }
        let producer = config
            .create_with_context(Deliveries {
                tracker: Arc::clone(&tracker),
                latency,
                refusal: Refusal::default(),
            })
            .map_err(|e| ProduceError::Create(Box::new(e)))?;
        let mut producer = Self {
            producer,
            tracker,
            transaction: None,
        };
        if let Some(transactional) = &options.transactional {
            producer.transaction = Some((transactional.id.clone(), Mutex::new(None)));
            // Fences every earlier producer with this id and aborts what it left
            // open, so nothing it wrote after its last commit is ever read.
            producer
                .producer
                .init_transactions(INIT_TIMEOUT)
                .map_err(|error| producer.transaction_error("initialising", error))?;
        }
        Ok(producer)
    }

    /// Whether this producer writes in Kafka transactions.
    pub fn is_transactional(&self) -> bool {
        self.transaction.is_some()
    }

    /// Begins a Kafka transaction if none is open: every message goes into one.
    fn ensure_transaction(&self) -> Result<(), ProduceError> {
        let Some((_, began)) = &self.transaction else {
            return Ok(());
        };
        let mut began = began.lock().unwrap_or_else(PoisonError::into_inner);
        if began.is_none() {
            self.producer
                .begin_transaction()
                .map_err(|error| self.transaction_error("beginning", error))?;
            *began = Some(Instant::now());
        }
        Ok(())
    }

    /// The fencing error, when another producer with this transactional id took
    /// over (librdkafka then gives this one up for good).
    pub fn fenced(&self) -> Option<ProduceError> {
        let (id, _) = self.transaction.as_ref()?;
        let fatal = self.producer.client().fatal_error().map(|(code, _)| code);
        is_fencing(fatal).then(|| ProduceError::Fenced {
            transactional_id: id.clone(),
        })
    }

    /// How long the open Kafka transaction has been open (`None`: none is).
    pub fn transaction_age(&self) -> Option<Duration> {
        let (_, began) = self.transaction.as_ref()?;
        began
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|began| began.elapsed())
    }

    /// Commits the open Kafka transaction, after every message in it was
    /// delivered; `Ok(false)` when none was open. A commit that times out or hits a
    /// retriable error is tried again (Kafka allows it) until `timeout` passes.
    pub fn commit_transaction(&self, timeout: Duration) -> Result<bool, ProduceError> {
        let Some((_, began)) = &self.transaction else {
            return Ok(false);
        };
        let mut began = began.lock().unwrap_or_else(PoisonError::into_inner);
        if began.is_none() {
            return Ok(false);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.producer.commit_transaction(left.max(COMMIT_ATTEMPT)) {
                Ok(()) => {
                    *began = None;
                    return Ok(true);
                }
                Err(KafkaError::Transaction(error))
                    if error.is_retriable() && Instant::now() < deadline =>
                {
                    tracing::warn!(%error, "committing the Kafka transaction; retrying");
                }
                Err(error) => {
                    let failed = self.transaction_error("committing", error);
                    if matches!(failed, ProduceError::Transaction { .. }) {
                        // Abortable: what it held is dropped; the caller stops and a
                        // restart resumes from the last committed position.
                        if let Err(abort) = self.producer.abort_transaction(COMMIT_ATTEMPT) {
                            tracing::warn!(error = %abort, "aborting the failed Kafka transaction");
                        }
                        *began = None;
                    }
                    return Err(failed);
                }
            }
        }
    }

    /// Aborts the open Kafka transaction, if one is open: `read_committed`
    /// readers never see what it held. Flush first, so nothing queued is purged.
    pub fn abort_transaction(&self, timeout: Duration) -> Result<(), ProduceError> {
        let Some((_, began)) = &self.transaction else {
            return Ok(());
        };
        let mut began = began.lock().unwrap_or_else(PoisonError::into_inner);
        if began.is_none() {
            return Ok(());
        }
        self.producer
            .abort_transaction(timeout)
            .map_err(|error| self.transaction_error("aborting", error))?;
        *began = None;
        Ok(())
    }

    /// A transaction step's error: fencing named as such (the cluster says so in
    /// one of three ways), anything else with the step.
    fn transaction_error(&self, what: &'static str, error: KafkaError) -> ProduceError {
        let transactional_id = self
            .transaction
            .as_ref()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        let fatal = self.producer.client().fatal_error().map(|(code, _)| code);
        if is_fencing(error.rdkafka_error_code()) || is_fencing(fatal) {
            return ProduceError::Fenced { transactional_id };
        }
        ProduceError::Transaction {
            transactional_id,
            what,
            error: Box::new(error),
        }
    }

    /// Sends every message of `batch` to its destination, with the headers
    /// `weir.lsn`, `weir.xid` and `weir.op` (and the format's, when it set one). Returns once all are queued; deliveries
    /// reach the tracker as Kafka acknowledges them. A full queue waits (that is the
    /// backpressure), it does not fail.
    pub fn send(
        &self,
        batch: &RecordBatch,
        messages: &Messages,
        destinations: &[Destination],
    ) -> Result<(), ProduceError> {
        let MetadataColumns {
            ops,
            lsns,
            commit_lsns,
            xids,
            commit_ts,
            ..
        } = MetadataColumns::of(batch)?;
        let plugin_keys = batch
            .column_by_name(KEY)
            .and_then(|c| c.as_binary_opt::<i32>());
        if !messages.is_empty() {
            self.ensure_transaction()?;
        }
        // Tell the tracker before anything is queued (an acknowledgement may arrive
        // at once), one call per run of a transaction's messages.
        let mut run: Option<(u64, u64)> = None;
        for message in messages.iter() {
            let commit_lsn = commit_lsns.value(message.row);
            run = match run {
                Some((lsn, count)) if lsn == commit_lsn => Some((lsn, count + 1)),
                Some((lsn, count)) => {
                    self.tracker.sent(Lsn(lsn), count)?;
                    Some((commit_lsn, 1))
                }
                None => Some((commit_lsn, 1)),
            };
        }
        if let Some((lsn, count)) = run {
            self.tracker.sent(Lsn(lsn), count)?;
        }
        for (message, destination) in messages.iter().zip(destinations) {
            let row = message.row;
            let commit_lsn = commit_lsns.value(row);
            let mut lsn = LsnText::default();
            let lsn = lsn.format(Lsn(lsns.value(row)));
            let mut xid = itoa::Buffer::new();
            let xid = xid.format(xids.value(row));
            let op = [ops.value(row)];
            let format_header = messages.header(message);
            let mut headers =
                OwnedHeaders::new_with_capacity(3 + usize::from(format_header.is_some()))
                    .insert(Header {
                        key: "weir.lsn",
                        value: Some(lsn),
                    })
                    .insert(Header {
                        key: "weir.xid",
                        value: Some(xid.as_bytes()),
                    })
                    .insert(Header {
                        key: "weir.op",
                        value: Some(&op[..]),
                    });
            if let Some((key, value)) = format_header {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let key = match plugin_keys {
                Some(keys) if arrow::array::Array::is_valid(keys, row) => Some(keys.value(row)),
                _ => messages.key(message),
            };
            let opaque = Box::new(Opaque {
                commit_lsn,
                queued: Instant::now(),
                commit_micros: commit_ts.value(row),
            });
            let mut record: BaseRecord<'_, [u8], [u8], Box<Opaque>> =
                BaseRecord::with_opaque_to(&destination.topic, opaque).headers(headers);
            if let Some(key) = key {
                record = record.key(key);
            }
            if let Some(value) = messages.value(message) {
                record = record.payload(value);
            }
            if let Some(partition) = destination.partition {
                record = record.partition(partition);
            }
            if let Err(error) = self.enqueue(record) {
                // The message never left: take it back from the tracker's count by
                // failing the transaction (the pipeline stops).
                self.tracker.failed(Lsn(commit_lsn), error.to_string());
                return Err(self.enqueue_error(&destination.topic, error));
            }
        }
        Ok(())
    }

    /// Sends one message outside any batch: a transaction metadata event, counted
    /// under `commit_lsn` like the transaction's rows, or with `commit_lsn` `None` a
    /// message no checkpoint waits for (a heartbeat).
    pub fn send_one(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: &[u8],
        value: &[u8],
        commit_lsn: Option<Lsn>,
    ) -> Result<(), ProduceError> {
        self.send_message(topic, partition, Some(key), value, None, commit_lsn)
    }

    /// [`KafkaProducer::send_one`] with any key and headers: a dead letter sent
    /// in the open Kafka transaction.
    pub fn send_message(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        headers: Option<OwnedHeaders>,
        commit_lsn: Option<Lsn>,
    ) -> Result<(), ProduceError> {
        self.ensure_transaction()?;
        match commit_lsn {
            Some(lsn) => self.tracker.sent(lsn, 1)?,
            None => self.tracker.sent_untracked(),
        }
        let opaque = Box::new(Opaque {
            commit_lsn: commit_lsn.unwrap_or(UNTRACKED).0,
            queued: Instant::now(),
            commit_micros: 0,
        });
        let mut record: BaseRecord<'_, [u8], [u8], Box<Opaque>> =
            BaseRecord::with_opaque_to(topic, opaque).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        self.enqueue(record).map_err(|error| {
            match commit_lsn {
                Some(lsn) => self.tracker.failed(lsn, error.to_string()),
                None => self.tracker.settled_untracked(),
            }
            self.enqueue_error(topic, error)
        })
    }

    /// Hands `record` to librdkafka, waiting while its queue is full: that wait is
    /// the backpressure, not a failure.
    fn enqueue(
        &self,
        mut record: BaseRecord<'_, [u8], [u8], Box<Opaque>>,
    ) -> Result<(), KafkaError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, _)) => return Err(error),
            }
        }
    }

    /// Why a message was refused: the producer's fatal error when it has one,
    /// since librdkafka's "Fatal" for the message names no cause.
    fn enqueue_error(&self, topic: &str, error: KafkaError) -> ProduceError {
        if let Some(fenced) = self.fenced() {
            return fenced;
        }
        match self.fatal_error() {
            Some(reason) => ProduceError::Fatal {
                topic: topic.to_owned(),
                reason,
            },
            None => ProduceError::Enqueue {
                topic: topic.to_owned(),
                error: Box::new(error),
            },
        }
    }

    /// Waits up to `timeout` for every queued message to be delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }

    /// Why librdkafka gave this producer up for good (a fatal error: with
    /// idempotence, e.g. the cluster refusing it a producer id), if it did. Its
    /// queued messages then fail as "purged", which names no cause.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(code, reason)| format!("{reason} ({code})"))
    }

    /// Messages queued and not yet acknowledged.
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }
}
