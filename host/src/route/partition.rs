//! Partitions as Kafka's Java producer picks them: murmur2 of the key bytes, made
//! positive, modulo the partition count. A consumer that co-partitions with topics
//! written by Java producers (Kafka Streams joins, Debezium's own topics) finds weir's
//! records where it expects them.

use std::fmt;
use std::str::FromStr;

/// Kafka's `Utils.murmur2`: MurmurHash2, seed `0x9747b28c`, as a 32-bit value.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut h = SEED ^ length;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(first) = tail.first() {
        h ^= u32::from(*first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// The partition Kafka's default partitioner gives `key` among `partitions`
/// (`Utils.toPositive(Utils.murmur2(key)) % partitions`).
pub fn partition_for_key(key: &[u8], partitions: u32) -> i32 {
    let positive = murmur2(key) & 0x7fff_ffff;
    i32::try_from(positive % partitions.max(1)).unwrap_or(0)
}

/// How a pipeline spreads a table's records over a topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionPolicy {
    /// By the record key (the primary key, or the configured key columns), as a Java
    /// producer would: all changes of one row stay in order on one partition.
    PrimaryKey,
    /// By a hash of the named columns' values.
    Columns(Vec<String>),
    /// By a hash of `database.schema.table`: a table's changes on one partition,
    /// in commit order.
    Table,
    /// By a hash of `database.schema`.
    Schema,
    /// Always this partition.
    Fixed(i32),
}

/// A `partition:` value that is none of the policies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid partition policy {0:?}: expected primary_key, table, schema, columns:a,b or a partition number"
)]
pub struct PartitionPolicyError(pub String);

impl FromStr for PartitionPolicy {
    type Err = PartitionPolicyError;

    /// `primary_key`, `table`, `schema`, `columns:a,b`, or a partition number.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || PartitionPolicyError(text.to_owned());
        Ok(match text.trim() {
            "primary_key" => PartitionPolicy::PrimaryKey,
            "table" => PartitionPolicy::Table,
            "schema" => PartitionPolicy::Schema,
            other => match other.strip_prefix("columns:") {
                Some(columns) => {
                    let columns: Vec<String> = columns
                        .split(',')
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if columns.is_empty() {
                        return Err(invalid());
                    }
                    PartitionPolicy::Columns(columns)
                }
                None => PartitionPolicy::Fixed(
                    other
                        .parse()
                        .ok()
                        .filter(|p: &i32| *p >= 0)
                        .ok_or_else(invalid)?,
                ),
            },
        })
    }
}

impl fmt::Display for PartitionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionPolicy::PrimaryKey => f.write_str("primary_key"),
            PartitionPolicy::Columns(columns) => write!(f, "columns:{}", columns.join(",")),
            PartitionPolicy::Table => f.write_str("table"),
            PartitionPolicy::Schema => f.write_str("schema"),
            PartitionPolicy::Fixed(partition) => write!(f, "{partition}"),
        }
    }
}

/// The partition of a table-wide policy, the same for every record of the table:
/// `Some` for `table`, `schema` and fixed, `None` for the per-record policies.
pub fn table_partition(
    policy: &PartitionPolicy,
    database: &str,
    schema: &str,
    table: &str,
    partitions: u32,
) -> Option<i32> {
    match policy {
        PartitionPolicy::Table => Some(partition_for_key(
            format!("{database}.{schema}.{table}").as_bytes(),
            partitions,
        )),
        PartitionPolicy::Schema => Some(partition_for_key(
            format!("{database}.{schema}").as_bytes(),
            partitions,
        )),
        PartitionPolicy::Fixed(partition) => Some(*partition),
        PartitionPolicy::PrimaryKey | PartitionPolicy::Columns(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's own `UtilsTest.testMurmur2`, also what kafka-python's
    /// `murmur2` returns for them.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (data, expected) in cases {
            assert_eq!(murmur2(data).cast_signed(), expected, "{data:?}");
        }
    }

    #[test]
    fn partitions_are_positive_and_in_range() {
        for key in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"abcd",
            b"\xff\xff\xff\xff\xff",
        ] {
            let partition = partition_for_key(key, 7);
            assert!((0..7).contains(&partition), "{key:?} -> {partition}");
        }
        // "21" hashes negative in Java: toPositive, then modulo.
        assert_eq!(
            partition_for_key(b"21", 10),
            ((-973_932_308i32) & 0x7fff_ffff) % 10
        );
    }

    #[test]
    fn policies_parse_and_print() {
        for text in ["primary_key", "table", "schema", "columns:region,id", "3"] {
            let policy: PartitionPolicy = text.parse().expect("valid");
            assert_eq!(policy.to_string(), text);
        }
        assert!("columns:".parse::<PartitionPolicy>().is_err());
        assert!("-1".parse::<PartitionPolicy>().is_err());
        assert!("by_key".parse::<PartitionPolicy>().is_err());
    }

    #[test]
    fn table_wide_policies_are_stable() {
        let table = table_partition(&PartitionPolicy::Table, "shop", "public", "orders", 12);
        assert_eq!(table, Some(partition_for_key(b"shop.public.orders", 12)));
        assert_eq!(
            table_partition(&PartitionPolicy::Fixed(4), "d", "s", "t", 12),
            Some(4)
        );
        assert_eq!(
            table_partition(&PartitionPolicy::PrimaryKey, "d", "s", "t", 12),
            None
        );
    }
}
