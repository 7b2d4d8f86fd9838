//! Where records come from. Each source yields record bytes with their origin and reports
//! framing failures as rejects, so a broken file costs only the records it breaks: JSON files
//! in every framing ([`file`]), Parquet files as JSON rows (`parquet`, with the `parquet`
//! feature), Kafka partitions (`crate::kafka`).

pub mod file;
#[cfg(feature = "parquet")]
pub mod parquet;

/// Where a record was read from: a file line or a Kafka offset. Names are interned in
/// [`OriginNames`], so an origin is 16 bytes and copying one costs nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    File {
        file: u32,
        line: u64,
    },
    Kafka {
        topic: u32,
        partition: i32,
        offset: i64,
    },
}

impl Origin {
    /// A total order on origins of one input: file then line, or topic, partition, then
    /// offset, packed into 16 bytes. Only origins of the same file or partition are
    /// meaningfully compared; across inputs the order is arbitrary but fixed.
    pub fn sort_key(self) -> (u64, i64) {
        match self {
            Origin::File { file, line } => (u64::from(file), line as i64),
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => (
                1 << 63 | u64::from(topic) << 32 | u64::from(partition as u32),
                offset,
            ),
        }
    }
}

/// The file and topic names origins refer to.
#[derive(Debug, Default)]
pub struct OriginNames {
    names: Vec<Box<str>>,
}

impl OriginNames {
    /// The id of `name`, adding it on first use.
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(i) = self.names.iter().position(|n| &**n == name) {
            return i as u32;
        }
        self.names.push(name.into());
        (self.names.len() - 1) as u32
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("?", |n| n)
    }
}

#[cfg(test)]
mod tests {
    use super::Origin;

    #[test]
    fn sort_key_orders_lines_of_a_file_and_offsets_of_a_partition() {
        let line = |file, line| Origin::File { file, line }.sort_key();
        let in_topic = |topic, partition, offset| {
            Origin::Kafka {
                topic,
                partition,
                offset,
            }
            .sort_key()
        };
        let offset = |partition, offset| in_topic(0, partition, offset);
        assert!(line(0, 1) < line(0, 2));
        assert!(line(0, 9) < line(1, 1), "file, then line");
        assert!(offset(0, 1) < offset(0, 2));
        assert_ne!(offset(0, 5), offset(1, 5), "partitions are apart");
        assert_ne!(in_topic(0, 0, 5), in_topic(1, 0, 5), "topics are apart");
        assert_ne!(line(0, 5), offset(0, 5), "files and partitions are apart");
    }
}
