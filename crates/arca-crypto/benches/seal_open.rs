//! Throughput of the stream format against the raw AEAD primitive, in one run.
//! `cargo bench -p arca-crypto`; the ratio is the format's overhead.

use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use arca_crypto::*;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const LEN: usize = 4 * 1024 * 1024;

fn bench(c: &mut Criterion) {
    let data = vec![0x5Au8; LEN];
    for suite in [Suite::Aes256Gcm, Suite::Sm4Gcm] {
        let mut g = c.benchmark_group(format!("{suite:?}"));
        g.throughput(Throughput::Bytes(LEN as u64));
        if suite == Suite::Sm4Gcm {
            g.sample_size(10);
        }
        let key = DataKey::generate(suite);
        g.bench_function("raw-primitive-64KiB-segments", |b| {
            let k = key.expose().to_vec();
            b.iter(|| {
                let mut buf = Vec::with_capacity(LEN + 1024);
                for (i, seg) in data.chunks(SEGMENT_SIZE as usize).enumerate() {
                    let mut s = seg.to_vec();
                    let mut nonce = [0u8; 12];
                    nonce[8..].copy_from_slice(&(i as u32).to_be_bytes());
                    match suite {
                        Suite::Aes256Gcm => {
                            let lk = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &k).unwrap());
                            lk.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut s)
                                .unwrap();
                        }
                        Suite::Sm4Gcm => {
                            let c = AesGcm::<sm4::Sm4, U12>::new_from_slice(&k).unwrap();
                            let tag =
                                c.encrypt_inout_detached(&Array::from(nonce), &[], s.as_mut_slice().into()).unwrap();
                            s.extend_from_slice(&tag);
                        }
                    }
                    buf.extend_from_slice(&s);
                }
                black_box(buf)
            })
        });
        g.bench_function("format-seal", |b| {
            b.iter(|| {
                let mut s = StreamSealer::new(&key, StreamParams::random(suite, 0)).unwrap();
                let mut out = Vec::with_capacity(LEN + 1024);
                for chunk in data.chunks(256 * 1024) {
                    s.push(chunk, &mut out).unwrap();
                }
                s.finish(&mut out).unwrap();
                black_box(out)
            })
        });
        let p = StreamParams::random(suite, 0);
        let mut sealer = StreamSealer::new(&key, p).unwrap();
        let mut stored = Vec::new();
        sealer.push(&data, &mut stored).unwrap();
        sealer.finish(&mut stored).unwrap();
        g.bench_function("format-open", |b| {
            b.iter(|| {
                let o = StreamOpener::new(&key, p, LEN as u64).unwrap();
                let mut total = 0;
                for (i, seg) in stored.chunks((SEGMENT_SIZE + TAG_SIZE) as usize).enumerate() {
                    let mut buf = seg.to_vec();
                    o.open(i as u64, &mut buf).unwrap();
                    total += buf.len();
                }
                black_box(total)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
