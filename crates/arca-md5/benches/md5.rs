//! MD5 throughput: this crate (AWS-LC's assembly) against the pure-Rust
//! `md-5` crate, in one run, on the 256 KiB chunks the upload pipeline hashes.
//! `cargo bench -p arca-md5`; compare with `openssl speed -bytes 16384 md5`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use md5_reference::Digest as _;
use std::hint::black_box;

const LEN: usize = 16 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

fn md5(c: &mut Criterion) {
    let data: Vec<u8> = (0..LEN).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect();
    let mut g = c.benchmark_group("md5");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("arca-md5 (AWS-LC)", |b| {
        b.iter(|| {
            let mut h = arca_md5::Md5::new();
            data.chunks(CHUNK).for_each(|c| h.update(c));
            black_box(h.finalize())
        })
    });
    g.bench_function("md-5 crate", |b| {
        b.iter(|| {
            let mut h = md5_reference::Md5::new();
            data.chunks(CHUNK).for_each(|c| h.update(c));
            black_box(h.finalize())
        })
    });
    g.finish();
}

criterion_group!(benches, md5);
criterion_main!(benches);
