//! Throughput of the stream format against the raw AEAD primitive, in one run.
//! `cargo bench -p arca-crypto`; the ratio of the two is the format's overhead.

use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use arca_crypto::*;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

const LEN: usize = 4 * 1024 * 1024;
/// Input arrives in chunks of this size (what the upload pipeline hands over).
const CHUNK: usize = 256 * 1024;

/// The primitive alone: one key; each 64 KiB segment copied into a reused,
/// cache-resident buffer and sealed in place — the least any segmented
/// format must do. Returns the bytes produced.
fn raw_seal(suite: Suite, key: &[u8], data: &[u8]) -> usize {
    let aes = (suite == Suite::Aes256Gcm).then(|| LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap()));
    let sm4 = (suite == Suite::Sm4Gcm).then(|| AesGcm::<sm4::Sm4, U12>::new_from_slice(key).unwrap());
    let mut buf = Vec::with_capacity((SEGMENT_SIZE + TAG_SIZE) as usize);
    let mut produced = 0;
    for (i, seg) in data.chunks(SEGMENT_SIZE as usize).enumerate() {
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&(i as u32).to_be_bytes());
        buf.clear();
        buf.extend_from_slice(seg);
        if let Some(k) = &aes {
            let tag = k.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut buf);
            buf.extend_from_slice(tag.unwrap().as_ref());
        } else if let Some(c) = &sm4 {
            let tag = c.encrypt_inout_detached(&Array::from(nonce), &[], buf.as_mut_slice().into()).unwrap();
            buf.extend_from_slice(&tag);
        }
        produced += black_box(&buf).len();
    }
    produced
}

fn bench(c: &mut Criterion) {
    let data = vec![0x5Au8; LEN];
    for suite in [Suite::Aes256Gcm, Suite::Sm4Gcm] {
        let mut g = c.benchmark_group(format!("{suite:?}"));
        g.throughput(Throughput::Bytes(LEN as u64));
        if suite == Suite::Sm4Gcm {
            g.sample_size(10);
        }
        let key = DataKey::generate(suite);
        g.bench_function("raw-primitive", |b| b.iter(|| black_box(raw_seal(suite, key.expose(), &data))));
        // As the upload pipeline drives it: body chunks in, sealed bytes out
        // to the blob writer (here: counted), buffer drained after each push.
        for chunk in [CHUNK, 16 * 1024] {
            g.bench_function(format!("format-seal-{}KiB-chunks", chunk / 1024), |b| {
                b.iter(|| {
                    let mut s = StreamSealer::new(&key, StreamParams::random(suite, 0)).unwrap();
                    let mut sealed = Vec::with_capacity(CHUNK + 1024);
                    let mut written = 0;
                    for piece in data.chunks(chunk) {
                        s.push(piece, &mut sealed).unwrap();
                        written += black_box(&sealed).len();
                        sealed.clear();
                    }
                    s.finish(&mut sealed).unwrap();
                    black_box(written + sealed.len())
                })
            });
        }
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
