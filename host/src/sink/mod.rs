//! Writing to Kafka: partitioning as Kafka's Java producer does, and the dead-letter
//! topic of plugin stages.

pub mod admin;
pub mod client;
pub mod dead_letter;
pub mod partition;
pub mod producer;
pub mod route;

pub use dead_letter::{DeadLetterError, DeadLetterProducer};
pub use partition::{PartitionPolicy, murmur2, partition_for_key};
pub use producer::{KafkaProducer, Latency, ProduceError, ProducerOptions};
pub use route::{Destination, RouteError, Router, TopicTemplate};
