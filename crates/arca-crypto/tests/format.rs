//! Property and golden-vector tests of the stream format (docs/format.md).

use arca_crypto::*;
use proptest::prelude::*;

const S: usize = SEGMENT_SIZE as usize;
const T: usize = TAG_SIZE as usize;

fn seal_all(key: &DataKey, p: StreamParams, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut s = StreamSealer::new(key, p).unwrap();
    let mut out = Vec::new();
    for c in data.chunks(chunk.max(1)) {
        s.push(c, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    out
}

/// Opens a whole stored stream segment by segment.
fn open_all(key: &DataKey, p: StreamParams, plain_len: u64, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if stored.len() as u64 != encrypted_size(plain_len) {
        return Err(CryptoError::Malformed("size"));
    }
    let o = StreamOpener::new(key, p, plain_len)?;
    let mut out = Vec::new();
    for (i, seg) in stored.chunks(S + T).enumerate() {
        let mut buf = seg.to_vec();
        o.open(i as u64, &mut buf)?;
        out.extend_from_slice(&buf);
    }
    Ok(out)
}

/// The same with `open_into`: every segment's plaintext lands contiguously in
/// one output buffer, without the tags.
fn open_all_into(key: &DataKey, p: StreamParams, plain_len: u64, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let o = StreamOpener::new(key, p, plain_len)?;
    let mut out = vec![0u8; plain_len as usize + S];
    let mut at = 0;
    for (i, seg) in stored.chunks(S + T).enumerate() {
        at += o.open_into(i as u64, seg, &mut out[at..])?;
    }
    if at as u64 != plain_len {
        return Err(CryptoError::Malformed("size"));
    }
    out.truncate(at);
    Ok(out)
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8).collect()
}

fn suites() -> [Suite; 2] {
    [Suite::Aes256Gcm, Suite::Sm4Gcm]
}

#[test]
fn round_trip_at_boundaries() {
    for suite in suites() {
        let key = DataKey::generate(suite);
        for n in [0, 1, S - 1, S, S + 1, 2 * S, 3 * S + 17] {
            let p = StreamParams::random(suite, 3);
            let data = pattern(n);
            let stored = seal_all(&key, p, &data, 4000);
            assert_eq!(stored.len() as u64, encrypted_size(n as u64));
            assert_eq!(open_all(&key, p, n as u64, &stored).unwrap(), data, "{suite:?} {n}");
            assert_eq!(open_all_into(&key, p, n as u64, &stored).unwrap(), data, "into: {suite:?} {n}");
        }
    }
}

#[test]
fn truncation_at_a_segment_boundary_is_detected() {
    for suite in suites() {
        let key = DataKey::generate(suite);
        let p = StreamParams::random(suite, 0);
        let stored = seal_all(&key, p, &pattern(2 * S), S);
        // Drop the last segment and claim the object was one segment long.
        assert_eq!(open_all(&key, p, S as u64, &stored[..S + T]).unwrap_err(), CryptoError::Authentication);
        // Extend: a final segment cannot be opened as a middle one.
        let one = seal_all(&key, p, &pattern(S), S);
        let doubled = [one.clone(), one].concat();
        assert!(open_all(&key, p, 2 * S as u64, &doubled).is_err());
    }
}

#[test]
fn swapped_duplicated_and_spliced_segments_fail() {
    for suite in suites() {
        let key = DataKey::generate(suite);
        let p = StreamParams::random(suite, 1);
        let stored = seal_all(&key, p, &pattern(3 * S), S);
        let segs: Vec<&[u8]> = stored.chunks(S + T).collect();
        let swapped = [segs[1], segs[0], segs[2]].concat();
        assert!(open_all(&key, p, 3 * S as u64, &swapped).is_err());
        let duplicated = [segs[0], segs[0], segs[2]].concat();
        assert!(open_all(&key, p, 3 * S as u64, &duplicated).is_err());
        // The same bytes under another part number or salt do not open.
        let other_part = StreamParams { part_number: 2, ..p };
        assert!(open_all(&key, other_part, 3 * S as u64, &stored).is_err());
        let other_salt = StreamParams::random(suite, 1);
        assert!(open_all(&key, other_salt, 3 * S as u64, &stored).is_err());
        assert!(open_all(&DataKey::generate(suite), p, 3 * S as u64, &stored).is_err());
    }
}

#[test]
fn a_stream_key_of_the_wrong_suite_is_refused() {
    let key = DataKey::generate(Suite::Sm4Gcm);
    assert!(StreamSealer::new(&key, StreamParams::random(Suite::Aes256Gcm, 0)).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_size_and_chunking_round_trips(len in 0usize..(3 * S + 100), chunk in 1usize..70_000, sm4 in any::<bool>()) {
        let suite = if sm4 { Suite::Sm4Gcm } else { Suite::Aes256Gcm };
        let key = DataKey::generate(suite);
        let p = StreamParams::random(suite, 9);
        let data = pattern(len);
        let stored = seal_all(&key, p, &data, chunk);
        prop_assert_eq!(plain_size(stored.len() as u64), Some(len as u64));
        prop_assert_eq!(open_all(&key, p, len as u64, &stored).unwrap(), data);
    }

    #[test]
    fn any_flipped_bit_fails(len in 0usize..(2 * S + 10), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = DataKey::generate(Suite::Aes256Gcm);
        let p = StreamParams::random(Suite::Aes256Gcm, 0);
        let mut stored = seal_all(&key, p, &pattern(len), 1 << 15);
        let i = pos.index(stored.len());
        stored[i] ^= 1 << bit;
        prop_assert!(open_all(&key, p, len as u64, &stored).is_err());
        prop_assert!(open_all_into(&key, p, len as u64, &stored).is_err());
    }

    #[test]
    fn open_into_refuses_flips_and_short_outputs(len in 1usize..(2 * S + 10), pos in any::<prop::sample::Index>()) {
        let key = DataKey::generate(Suite::Sm4Gcm);
        let p = StreamParams::random(Suite::Sm4Gcm, 1);
        let mut stored = seal_all(&key, p, &pattern(len), 1 << 14);
        let o = StreamOpener::new(&key, p, len as u64).unwrap();
        let first = &stored[..stored.len().min(S + T)];
        let mut short = vec![0u8; first.len() - T - 1];
        prop_assert!(o.open_into(0, first, &mut short).is_err());
        let i = pos.index(stored.len());
        stored[i] ^= 0x10;
        prop_assert!(open_all_into(&key, p, len as u64, &stored).is_err());
    }

    #[test]
    fn any_truncation_fails(len in 1usize..(2 * S + 10), cut in any::<prop::sample::Index>()) {
        let key = DataKey::generate(Suite::Sm4Gcm);
        let p = StreamParams::random(Suite::Sm4Gcm, 0);
        let stored = seal_all(&key, p, &pattern(len), S);
        let keep = cut.index(stored.len());
        // Whatever plaintext length a reader believes, a cut stream never opens.
        let claimed = plain_size(keep as u64).unwrap_or(len as u64);
        prop_assert!(open_all(&key, p, claimed, &stored[..keep]).is_err());
    }

    #[test]
    fn opener_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..200), index in 0u64..4) {
        let key = DataKey::generate(Suite::Aes256Gcm);
        let o = StreamOpener::new(&key, StreamParams::random(Suite::Aes256Gcm, 0), 3 * SEGMENT_SIZE).unwrap();
        let mut buf = bytes;
        prop_assert!(o.open(index, &mut buf).is_err());
    }
}

/// Golden vectors: fixed keys, salts and plaintexts; the stored bytes must
/// never change for format version 1. `ARCA_WRITE_VECTORS=1` regenerates
/// the file (only ever for a new format version).
#[derive(serde::Serialize, serde::Deserialize)]
struct Vector {
    suite: u8,
    key: String,
    salt: String,
    part_number: u32,
    plain_len: usize,
    stored_sha256: String,
    stored_head: String,
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b))
}

#[test]
fn golden_vectors() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/format-v1.json");
    let make = || -> Vec<Vector> {
        let mut v = Vec::new();
        for suite in suites() {
            let key: Vec<u8> = (0..suite.key_len() as u8).collect();
            for (i, len) in [0usize, 1, S - 1, S, S + 1, 2 * S + 5].into_iter().enumerate() {
                let salt: [u8; 16] = core::array::from_fn(|j| (j as u8).wrapping_mul(7).wrapping_add(i as u8));
                let p = StreamParams { suite, part_number: i as u32, salt };
                let stored = seal_all(&DataKey::from_bytes(suite, &key).unwrap(), p, &pattern(len), 1000);
                v.push(Vector {
                    suite: suite.id(),
                    key: hex::encode(&key),
                    salt: hex::encode(salt),
                    part_number: i as u32,
                    plain_len: len,
                    stored_sha256: sha256_hex(&stored),
                    stored_head: hex::encode(&stored[..stored.len().min(48)]),
                });
            }
        }
        v
    };
    if std::env::var_os("ARCA_WRITE_VECTORS").is_some() {
        std::fs::write(path, serde_json::to_string_pretty(&make()).unwrap()).unwrap();
    }
    let vectors: Vec<Vector> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(vectors.len(), 12);
    for v in &vectors {
        let suite = Suite::from_id(v.suite).unwrap();
        let key = DataKey::from_bytes(suite, &hex::decode(&v.key).unwrap()).unwrap();
        let salt: [u8; 16] = hex::decode(&v.salt).unwrap().try_into().unwrap();
        let p = StreamParams { suite, part_number: v.part_number, salt };
        let stored = seal_all(&key, p, &pattern(v.plain_len), 777);
        assert_eq!(sha256_hex(&stored), v.stored_sha256, "vector {:?} {}", suite, v.plain_len);
        assert_eq!(hex::encode(&stored[..stored.len().min(48)]), v.stored_head);
        assert_eq!(open_all(&key, p, v.plain_len as u64, &stored).unwrap(), pattern(v.plain_len));
    }
}

/// Re-derives one segment straight from docs/format.md with the raw
/// primitives, so the implementation and the written spec cannot drift apart.
#[test]
fn spec_derivation_matches_implementation() {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::hkdf;
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let data_key = [0x11u8; 32];
    let salt: [u8; 16] = core::array::from_fn(|i| i as u8 + 100);
    let part: u32 = 7;
    let plaintext = pattern(S + 10);

    let mut info = b"arca/v1/stream".to_vec();
    info.push(1);
    info.extend_from_slice(&part.to_be_bytes());
    let mut stream_key = [0u8; 32];
    hkdf::Salt::new(hkdf::HKDF_SHA256, &salt)
        .extract(&data_key)
        .expand(&[&info], Len(32))
        .unwrap()
        .fill(&mut stream_key)
        .unwrap();
    let expected_segment = |index: u32, last: bool, chunk: &[u8]| {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&salt[..8]);
        nonce[8..].copy_from_slice(&index.to_be_bytes());
        let mut aad = b"ARCA".to_vec();
        aad.extend_from_slice(&[1, 1]);
        aad.extend_from_slice(&part.to_be_bytes());
        aad.extend_from_slice(&index.to_be_bytes());
        aad.push(u8::from(last));
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &stream_key).unwrap());
        let mut buf = chunk.to_vec();
        k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(&aad), &mut buf).unwrap();
        buf
    };
    let expected = [expected_segment(0, false, &plaintext[..S]), expected_segment(1, true, &plaintext[S..])].concat();

    let key = DataKey::from_bytes(Suite::Aes256Gcm, &data_key).unwrap();
    let stored = seal_all(&key, StreamParams { suite: Suite::Aes256Gcm, part_number: part, salt }, &plaintext, 5000);
    assert_eq!(stored, expected);
}
