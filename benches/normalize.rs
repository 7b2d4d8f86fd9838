//! Normalize throughput per source, next to the floor any engine pays: a bare serde_json parse
//! of the same bytes into a borrowed struct of the fields a detector needs (`baseline`).
//!
//! Inputs are the real and handwritten records under `fixtures/events/<source>/` that normalize
//! as that source. Both benches run in the same process on the same bytes; compare them as a
//! ratio (`scripts/bench-ratio.sh normalize` prints it from criterion's estimates).
//!
//! `cargo bench --bench normalize`

use std::hint::black_box;
use std::path::Path;

use bumpalo::Bump;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sessionguard::event::{Normalizer, Source};
use sessionguard::source::file::{self, Item};

/// Records under fixtures/events that normalize as `source`.
fn records_of(source: Source) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events");
    let normalizer = Normalizer::default();
    let mut out = Vec::new();
    for path in file::expand_paths(&[root]).unwrap() {
        file::for_each_record(file::open(&path).unwrap(), &mut |item| {
            if let Item::Record { bytes, .. } = item {
                let scratch = Bump::new();
                if normalizer
                    .normalize(bytes, &scratch)
                    .is_ok_and(|e| e.source == source)
                {
                    out.push(bytes.to_vec());
                }
            }
        })
        .unwrap();
    }
    out
}

#[path = "support/baseline.rs"]
mod baseline;
use baseline::baseline;

fn bench_normalize(c: &mut Criterion) {
    let normalizer = Normalizer::default();
    for source in Source::ALL {
        let records = records_of(source);
        if records.is_empty() {
            eprintln!("no {source} fixtures normalize yet; skipping its group");
            continue;
        }
        // Measure both sides on the records the baseline reads as that source: a record in a
        // wrapper the baseline does not open (CloudTrail LookupEvents) would flatter it.
        let records: Vec<Vec<u8>> = records
            .into_iter()
            .filter(|r| baseline(source, r))
            .collect();
        let bytes: usize = records.iter().map(Vec::len).sum();
        let mut group = c.benchmark_group(format!("normalize/{source}"));
        group.throughput(Throughput::Elements(records.len() as u64));
        eprintln!(
            "{source}: {} records, {} bytes on average",
            records.len(),
            bytes / records.len().max(1)
        );
        group.bench_function("baseline_serde_typed", |b| {
            b.iter(|| {
                for r in &records {
                    black_box(baseline(source, r));
                }
            })
        });
        group.bench_function("sessionguard", |b| {
            let mut scratch = Bump::new();
            b.iter(|| {
                for r in &records {
                    scratch.reset();
                    let _ = black_box(normalizer.normalize(r, &scratch));
                }
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_normalize);
criterion_main!(benches);
