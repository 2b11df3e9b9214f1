//! Topic checks and creation: every topic a message goes to is looked up once
//! (its partition count feeds the partitioner) and, when the pipeline says so,
//! created with the configured partitions and replication factor.
//!
//! A missing topic is an error unless creation is configured: silently relying on
//! the broker's `auto.create.topics.enable` gives topics with the broker's default
//! partition count, which then changes where keys land once someone fixes it.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::client::WatchedContext;

/// How missing topics are created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSettings {
    /// Partitions of a new topic.
    pub partitions: u32,
    /// Replication factor of a new topic.
    pub replication_factor: u16,
}

/// A topic could not be looked up or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The admin client could not be created (bad properties).
    #[error("creating the Kafka admin client: {0}")]
    Create(Box<KafkaError>),
    /// The metadata request failed (the broker is unreachable, or access denied).
    #[error("looking up topic {topic}: {error}")]
    Metadata {
        /// The topic.
        topic: String,
        /// Why.
        error: Box<KafkaError>,
    },
    /// The brokers stayed unreachable for the whole retry window.
    #[error(
        "Kafka unreachable for {after:?} (sink.kafka.retry_window) looking up topic {topic}: {error}"
    )]
    Unreachable {
        /// The topic.
        topic: String,
        /// How long weir retried.
        after: Duration,
        /// The last error.
        error: Box<KafkaError>,
    },
    /// The cluster refuses weir's client settings (credentials, certificates):
    /// retrying cannot help.
    #[error("looking up topic {topic}: Kafka refuses the connection: {reason}")]
    Refused {
        /// The topic.
        topic: String,
        /// librdkafka's words, and what to check.
        reason: String,
    },
    /// An ACL denies weir this topic.
    #[error(
        "Kafka denies access to topic {topic} ({code}): grant weir's principal Describe and Write on it (and Create on the cluster when sink.kafka.create_topics is set)"
    )]
    Denied {
        /// The topic.
        topic: String,
        /// The broker's error code.
        code: RDKafkaErrorCode,
    },
    /// The topic does not exist and creation is not configured.
    #[error("topic {0} does not exist: create it, or set sink.kafka.create_topics")]
    Missing(String),
    /// The pipeline was asked to stop while Kafka was unreachable, and it stayed
    /// so for the pipeline's `shutdown_timeout`.
    #[error(
        "stopped while Kafka was unreachable looking up topic {topic} (after shutdown_timeout, {waited:?}): {error}"
    )]
    Stopped {
        /// The topic looked up.
        topic: String,
        /// How long retrying went on after the stop request.
        waited: Duration,
        /// The last lookup's failure.
        error: Box<KafkaError>,
    },
    /// Creating the topic failed.
    #[error("creating topic {topic}: {error}")]
    Creation {
        /// The topic.
        topic: String,
        /// Why.
        error: String,
    },
}

/// Longest one metadata request may wait: an unreachable cluster makes it wait the
/// whole time, and the retry loop between attempts is where a stop is noticed.
const LOOKUP_ATTEMPT: Duration = Duration::from_secs(5);

/// Partition counts of the topics in use, looked up (and created) on first use.
pub struct TopicAdmin {
    admin: AdminClient<WatchedContext>,
    create: Option<TopicSettings>,
    counts: HashMap<String, u32>,
    timeout: Duration,
    /// How long unreachable brokers are retried; `None`: for ever.
    retry_window: Option<Duration>,
    /// A stop request, and how long retrying may go on after it.
    stop: Option<(tokio_util::sync::CancellationToken, Duration)>,
}

impl std::fmt::Debug for TopicAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicAdmin")
            .field("create", &self.create)
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl TopicAdmin {
    /// An admin client for `brokers` with extra librdkafka `properties` (security).
    pub fn new(
        brokers: &str,
        properties: &[(String, String)],
        create: Option<TopicSettings>,
    ) -> Result<Self, TopicError> {
        let mut config = ClientConfig::new();
        // A metadata lookup must not create the topic as a side effect (with the
        // broker's default partition count): creation is decided here.
        config
            .set("bootstrap.servers", brokers)
            .set("allow.auto.create.topics", "false");
        for (key, value) in properties {
            // Producer-only settings would make the admin client refuse to start.
            if is_client_wide(key) {
                config.set(key, value);
            }
        }
        let admin = config
            .create_with_context(WatchedContext::default())
            .map_err(|e| TopicError::Create(Box::new(e)))?;
        Ok(Self {
            admin,
            create,
            counts: HashMap::new(),
            timeout: Duration::from_secs(30),
            retry_window: Some(Duration::from_secs(6 * 3600)),
            stop: None,
        })
    }

    /// Retrying gives up `grace` after `stop` is cancelled (the pipeline's
    /// `shutdown_timeout`): a stop must not wait out the whole retry window.
    pub fn with_stop(mut self, stop: tokio_util::sync::CancellationToken, grace: Duration) -> Self {
        self.stop = Some((stop, grace));
        self
    }

    /// Retry unreachable brokers for `window` (`None`: for ever) before failing.
    pub fn with_retry_window(mut self, window: Option<Duration>) -> Self {
        self.retry_window = window;
        self
    }

    /// The partition count of `topic`, creating the topic when it is missing and
    /// creation is configured. Blocks on the broker the first time per topic.
    pub fn partitions(&mut self, topic: &str) -> Result<u32, TopicError> {
        if let Some(count) = self.counts.get(topic) {
            return Ok(*count);
        }
        let count = match self.lookup_retrying(topic)? {
            Some(count) => count,
            None => {
                let settings = self
                    .create
                    .ok_or_else(|| TopicError::Missing(topic.to_owned()))?;
                // The count Kafka reports, not the one asked for: someone else may
                // have created the topic meanwhile, with another count, and keys must
                // go where that topic's partitioner puts them.
                let count = self.create(topic, settings)?;
                tracing::info!(topic, partitions = count, "created topic");
                count
            }
        };
        self.counts.insert(topic.to_owned(), count);
        Ok(count)
    }

    /// [`Self::lookup`], retrying transport failures with backoff within the
    /// retry window: a broker restart must not stop the pipeline.
    fn lookup_retrying(&self, topic: &str) -> Result<Option<u32>, TopicError> {
        let started = std::time::Instant::now();
        let mut backoff = Duration::from_millis(500);
        let mut stop_seen: Option<std::time::Instant> = None;
        loop {
            match self.lookup(topic) {
                Err(TopicError::Metadata { error, .. }) => {
                    if let Some(reason) = self.admin.inner().context().refusal().get() {
                        return Err(TopicError::Refused {
                            topic: topic.to_owned(),
                            reason,
                        });
                    }
                    let elapsed = started.elapsed();
                    if self.retry_window.is_some_and(|window| elapsed >= window) {
                        return Err(TopicError::Unreachable {
                            topic: topic.to_owned(),
                            after: elapsed,
                            error,
                        });
                    }
                    if let (Some(seen), Some((_, grace))) = (stop_seen, &self.stop)
                        && seen.elapsed() >= *grace
                    {
                        return Err(TopicError::Stopped {
                            topic: topic.to_owned(),
                            waited: seen.elapsed(),
                            error,
                        });
                    }
                    tracing::warn!(topic, %error, retry_in = ?backoff, "Kafka unreachable; retrying");
                    self.sleep_unless_stopped(backoff, &mut stop_seen);
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                other => return other,
            }
        }
    }

    /// Sleeps `wait` in steps of at most 100 ms, so that a stop request is seen
    /// soon; records when it was first seen and returns once its grace is over.
    fn sleep_unless_stopped(&self, wait: Duration, stop_seen: &mut Option<std::time::Instant>) {
        let deadline = std::time::Instant::now() + wait;
        loop {
            if let Some((stop, grace)) = &self.stop
                && stop.is_cancelled()
            {
                let seen = *stop_seen.get_or_insert_with(std::time::Instant::now);
                if seen.elapsed() >= *grace {
                    return;
                }
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
        }
    }

    fn lookup(&self, topic: &str) -> Result<Option<u32>, TopicError> {
        let metadata = self
            .admin
            .inner()
            .fetch_metadata(
                Some(topic),
                self.retry_window
                    .map_or(LOOKUP_ATTEMPT, |window| window.min(LOOKUP_ATTEMPT)),
            )
            .map_err(|e| TopicError::Metadata {
                topic: topic.to_owned(),
                error: Box::new(e),
            })?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        if let Some(code) = found.and_then(|t| t.error()).map(RDKafkaErrorCode::from)
            && matches!(
                code,
                RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed
            )
        {
            return Err(TopicError::Denied {
                topic: topic.to_owned(),
                code,
            });
        }
        Ok(match found {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                Some(u32::try_from(t.partitions().len()).unwrap_or(u32::MAX))
            }
            _ => None,
        })
    }

    /// Makes sure weir's own state topic `topic` exists: created when missing,
    /// whether or not data topics may be created, with one partition (its records
    /// must stay in order) and compaction (only the newest record matters).
    pub fn ensure_state_topic(&mut self, topic: &str) -> Result<(), TopicError> {
        if self.lookup_retrying(topic)?.is_some() {
            return Ok(());
        }
        // The broker's default replication factor unless the pipeline names one.
        let replication = self
            .create
            .map_or(-1, |settings| i32::from(settings.replication_factor));
        let new = NewTopic::new(topic, 1, TopicReplication::Fixed(replication))
            .set("cleanup.policy", "compact");
        tracing::info!(topic, timeout = ?self.timeout, "Creating the state topic (1 partition, compacted), where the snapshot's progress is kept.");
        self.create_new(topic, &new).map(drop).map_err(|error| match error {
            TopicError::Creation { topic, error } => TopicError::Creation {
                error: format!(
                    "{error} (if the brokers refuse CreateTopics, create it with 1 partition and cleanup.policy=compact, or name an existing one in sink.kafka.state_topic)"
                ),
                topic,
            },
            other => other,
        })?;
        tracing::info!(topic, "created the state topic");
        Ok(())
    }

    fn create(&self, topic: &str, settings: TopicSettings) -> Result<u32, TopicError> {
        let partitions = i32::try_from(settings.partitions).unwrap_or(i32::MAX);
        let new = NewTopic::new(
            topic,
            partitions,
            TopicReplication::Fixed(i32::from(settings.replication_factor)),
        );
        self.create_new(topic, &new)
    }

    /// Creates `topic` (an existing one is fine) and returns its partition count once
    /// the metadata shows it.
    fn create_new(&self, topic: &str, new: &NewTopic<'_>) -> Result<u32, TopicError> {
        let options = AdminOptions::new().operation_timeout(Some(self.timeout));
        let creation = self.admin.create_topics([new], &options);
        let results = futures_executor_block_on(creation).map_err(|e| TopicError::Creation {
            topic: topic.to_owned(),
            error: e.to_string(),
        })?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((
                    _,
                    code @ (RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::ClusterAuthorizationFailed),
                )) => {
                    return Err(TopicError::Denied {
                        topic: topic.to_owned(),
                        code,
                    });
                }
                Err((_, code)) => {
                    return Err(TopicError::Creation {
                        topic: topic.to_owned(),
                        error: code.to_string(),
                    });
                }
            }
        }
        // Metadata lags creation on some brokers: wait until the topic is visible.
        let deadline = std::time::Instant::now() + self.timeout;
        while std::time::Instant::now() < deadline {
            if let Some(count) = self.lookup(topic)? {
                return Ok(count);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(TopicError::Creation {
            topic: topic.to_owned(),
            error: "created, but not visible in metadata".to_owned(),
        })
    }
}

/// Whether a librdkafka property applies to every client (security, networking)
/// rather than only to producers.
pub(crate) fn is_client_wide(key: &str) -> bool {
    const PRODUCER_ONLY: &[&str] = &[
        "acks",
        "request.required.acks",
        "compression.type",
        "compression.codec",
        "linger.ms",
        "queue.buffering.max.ms",
        "batch.size",
        "batch.num.messages",
        "enable.idempotence",
        "message.timeout.ms",
        "delivery.timeout.ms",
        "queue.buffering.max.messages",
        "queue.buffering.max.kbytes",
        "transactional.id",
        "partitioner",
    ];
    !PRODUCER_ONLY.contains(&key)
}

/// The admin client's futures are driven by librdkafka's own thread; polling one to
/// completion needs no runtime, which keeps this callable from the pipeline's
/// blocking worker.
pub(crate) fn futures_executor_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};

    struct ThreadWaker(std::thread::Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut context) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
