//! Producing to Kafka: the producer that reports every acknowledgement to the
//! checkpoint tracker, the admin client that finds and creates topics, and the
//! reading of librdkafka's errors into causes a user can act on.

pub mod admin;
pub mod client;
pub mod producer;

pub use producer::{KafkaProducer, Latency, ProduceError, ProducerOptions, TransactionalOptions};
