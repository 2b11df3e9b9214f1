//! Where each message goes: the topic (template, per-table override, or a
//! plugin's `_topic`) and the partition, as Kafka's Java producer would choose it.

pub mod partition;
mod router;

pub use partition::{PartitionPolicy, murmur2, partition_for_key};
pub use router::{LookupError, RouteError, Router};
