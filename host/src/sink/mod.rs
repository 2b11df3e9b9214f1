//! Writing to Kafka. So far: the dead-letter topic of plugin stages.

pub mod dead_letter;

pub use dead_letter::{DeadLetterError, DeadLetterProducer};
