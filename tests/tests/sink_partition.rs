//! weir's partitioner against an independent implementation of Kafka's default
//! partitioner: kafka-python's (`scripts/setup.sh` installs it).

use std::io::Write;
use std::process::{Command, Stdio};

use weir::sink::partition_for_key;

const PYTHON: &str = r#"
import sys
from kafka.partitioner.default import DefaultPartitioner

class Cluster:
    """Just enough cluster metadata for the partitioner: one topic, all up."""
    def __init__(self, partitions):
        self.ids = set(range(partitions))
    def topics(self):
        return {"t"}
    def partitions_for_topic(self, topic):
        return self.ids
    def available_partitions_for_topic(self, topic):
        return self.ids

cluster = Cluster(int(sys.argv[1]))
partitioner = DefaultPartitioner()
for line in sys.stdin:
    key = bytes.fromhex(line.strip())
    print(partitioner.partition("t", key, key, None, None, cluster))
"#;

fn keys() -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = (0..500)
        .map(|id| format!("{{\"id\":{id}}}").into_bytes())
        .collect();
    keys.extend(
        (0..200u32).map(|n| n.to_le_bytes()[..usize::try_from(n % 5).unwrap_or(0)].to_vec()),
    );
    keys.extend((0..200u32).map(|n| {
        (0..n % 37)
            .map(|i| u8::try_from((i * 31 + n) % 256).unwrap_or(0))
            .collect()
    }));
    keys.push("ünïcødé 🦀".as_bytes().to_vec());
    keys
}

#[test]
fn partitions_match_kafka_python() {
    for partitions in [1u32, 3, 12, 100] {
        let keys = keys();
        let mut child = Command::new("python3")
            .args(["-c", PYTHON, &partitions.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        {
            let mut stdin = child.stdin.take().expect("stdin");
            for key in &keys {
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                writeln!(stdin, "{hex}").expect("write");
            }
        }
        let output = child.wait_with_output().expect("python3 finishes");
        assert!(
            output.status.success(),
            "kafka-python missing? run scripts/setup.sh"
        );
        let theirs: Vec<i32> = String::from_utf8(output.stdout)
            .expect("utf-8")
            .lines()
            .map(|line| line.parse().expect("a partition"))
            .collect();
        let ours: Vec<i32> = keys
            .iter()
            .map(|key| partition_for_key(key, partitions))
            .collect();
        assert_eq!(ours, theirs, "{partitions} partitions");
    }
}
