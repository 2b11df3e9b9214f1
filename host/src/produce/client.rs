//! What weir's Kafka clients share: a context that tells a cluster refusing weir
//! (wrong credentials, an untrusted certificate, a fatal producer state) from a cluster
//! that is merely unreachable.
//!
//! librdkafka treats both alike: it logs the error and reconnects, for ever. For an
//! outage that is right, and weir waits. For a refusal it means a pipeline that never
//! makes progress and a log that fills with the same line, so weir stops instead,
//! naming the cause, as Kafka Connect fails a task whose producer cannot authenticate.

use std::sync::{Arc, Mutex, PoisonError};

use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// Why the cluster refuses this client, once it did. Shared between a client's
/// context (which records it from librdkafka's thread) and whoever waits on the
/// client.
#[derive(Debug, Clone, Default)]
pub struct Refusal(Arc<Mutex<Option<String>>>);

impl Refusal {
    /// The first refusal seen, as librdkafka worded it.
    pub fn get(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records `error` when it is a refusal; returns whether it was the first.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) -> bool {
        if !is_refusal(error, reason) {
            return false;
        }
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return false;
        }
        *slot = Some(describe(error, reason));
        true
    }
}

/// Whether `error` means the cluster will not take this client as configured, so
/// retrying cannot help.
pub fn is_refusal(error: &KafkaError, reason: &str) -> bool {
    match error.rdkafka_error_code() {
        Some(
            RDKafkaErrorCode::Authentication
            | RDKafkaErrorCode::SaslAuthenticationFailed
            | RDKafkaErrorCode::Fatal,
        ) => true,
        // A TLS handshake also fails when a broker restarts mid-handshake; only a
        // certificate the client does not trust is a refusal.
        Some(RDKafkaErrorCode::SSL) => {
            reason.contains("certificate verify failed") || reason.contains("verify failed")
        }
        _ => false,
    }
}

fn describe(error: &KafkaError, reason: &str) -> String {
    let hint = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::SSL) => {
            "check ssl.ca.location (the CA that signed the brokers' certificates) and that the bootstrap host names match them"
        }
        Some(RDKafkaErrorCode::Fatal) => "the idempotent producer cannot go on",
        _ => "check sasl.mechanism, sasl.username and sasl.password",
    };
    if reason.is_empty() {
        format!("{error} ({hint})")
    } else {
        format!("{reason} ({hint})")
    }
}

/// The context of weir's admin and auxiliary clients: records refusals, logs the
/// rest through `tracing`.
#[derive(Debug, Clone, Default)]
pub struct WatchedContext {
    refusal: Refusal,
}

impl WatchedContext {
    /// A context recording into `refusal`.
    pub fn new(refusal: Refusal) -> Self {
        Self { refusal }
    }

    /// Where this context records a refusal.
    pub fn refusal(&self) -> &Refusal {
        &self.refusal
    }
}

impl ClientContext for WatchedContext {
    fn error(&self, error: KafkaError, reason: &str) {
        let _first = report(&self.refusal, &error, reason);
    }
}

/// Records and logs one error callback: a refusal once at error level, anything else
/// (brokers down, a leader moving) at warn level. Returns the refusal when this was
/// the first.
pub(crate) fn report(refusal: &Refusal, error: &KafkaError, reason: &str) -> Option<String> {
    if !is_refusal(error, reason) {
        tracing::warn!(%error, reason, "Kafka client error");
        return None;
    }
    if !refusal.record(error, reason) {
        return None;
    }
    tracing::error!(%error, reason, "The Kafka cluster refuses weir's connection settings; stopping.");
    refusal.get()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_untrusted_certificates_are_refusals_outages_are_not() {
        let auth = KafkaError::Global(RDKafkaErrorCode::Authentication);
        assert!(is_refusal(
            &auth,
            "SASL authentication error: invalid credentials"
        ));
        let untrusted = KafkaError::Global(RDKafkaErrorCode::SSL);
        assert!(is_refusal(
            &untrusted,
            "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed"
        ));
        assert!(!is_refusal(
            &untrusted,
            "SSL handshake failed: Disconnected"
        ));
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        assert!(!is_refusal(&down, "1/1 brokers are down"));
        let transport = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(!is_refusal(&transport, "Connection refused"));
    }

    #[test]
    fn the_first_refusal_is_kept_with_a_hint() {
        let refusal = Refusal::default();
        let auth = KafkaError::Global(RDKafkaErrorCode::Authentication);
        assert!(refusal.record(&auth, "invalid credentials"));
        assert!(!refusal.record(&auth, "again"));
        let text = refusal.get().expect("recorded");
        assert!(text.starts_with("invalid credentials"), "{text}");
        assert!(text.contains("sasl.password"), "{text}");
    }
}
