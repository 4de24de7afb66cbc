//! Sealing and opening one stream (one extent), segment by segment.

use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::U12;
use aes_gcm::aead::inout::InOutBuf;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use sm4::Sm4;
use zeroize::Zeroizing;

use crate::{CryptoError, DataKey, FORMAT_VERSION, SEGMENT_SIZE, Suite, TAG_SIZE};

/// What identifies a stream within its object (stored in the extent's metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamParams {
    /// The AEAD suite.
    pub suite: Suite,
    /// Multipart part number, append extent index, or 0.
    pub part_number: u32,
    /// Random per-stream salt.
    pub salt: [u8; 16],
}

impl StreamParams {
    /// Parameters with a fresh random salt.
    pub fn random(suite: Suite, part_number: u32) -> Self {
        let mut salt = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt).expect("system RNG");
        StreamParams { suite, part_number, salt }
    }

    fn nonce(&self, index: u32) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..8].copy_from_slice(&self.salt[..8]);
        n[8..].copy_from_slice(&index.to_be_bytes());
        n
    }

    fn aad(&self, index: u32, last: bool) -> [u8; 15] {
        let mut a = [0u8; 15];
        a[..4].copy_from_slice(b"ARCA");
        a[4] = FORMAT_VERSION;
        a[5] = self.suite.id();
        a[6..10].copy_from_slice(&self.part_number.to_be_bytes());
        a[10..14].copy_from_slice(&index.to_be_bytes());
        a[14] = u8::from(last);
        a
    }
}

/// The per-stream AEAD key.
enum SegmentCipher {
    Aes(LessSafeKey),
    Sm4(Box<AesGcm<Sm4, U12>>),
}

struct KeyLen(usize);

impl hkdf::KeyType for KeyLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl SegmentCipher {
    fn new(key: &DataKey, p: &StreamParams) -> Result<Self, CryptoError> {
        if key.suite() != p.suite {
            return Err(CryptoError::Malformed("data key suite differs from stream suite"));
        }
        let len = p.suite.key_len();
        let mut info = [0u8; 19];
        info[..14].copy_from_slice(b"arca/v1/stream");
        info[14] = p.suite.id();
        info[15..].copy_from_slice(&p.part_number.to_be_bytes());
        let mut stream_key = Zeroizing::new(vec![0u8; len]);
        hkdf::Salt::new(hkdf::HKDF_SHA256, &p.salt)
            .extract(key.expose())
            .expand(&[&info], KeyLen(len))
            .and_then(|okm| okm.fill(&mut stream_key))
            .map_err(|_| CryptoError::Malformed("key derivation"))?;
        Ok(match p.suite {
            Suite::Aes256Gcm => SegmentCipher::Aes(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, &stream_key).map_err(|_| CryptoError::Malformed("key length"))?,
            )),
            Suite::Sm4Gcm => SegmentCipher::Sm4(Box::new(
                AesGcm::<Sm4, U12>::new_from_slice(&stream_key).map_err(|_| CryptoError::Malformed("key length"))?,
            )),
        })
    }

    /// Encrypts `out[start..]` in place and appends the tag to `out`.
    fn seal(&self, nonce: [u8; 12], aad: &[u8], out: &mut Vec<u8>, start: usize) {
        let msg = &mut out[start..];
        match self {
            SegmentCipher::Aes(k) => {
                let tag = k
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), msg)
                    .expect("AES-GCM seal of a segment cannot fail");
                out.extend_from_slice(tag.as_ref());
            }
            SegmentCipher::Sm4(c) => {
                let tag = c
                    .encrypt_inout_detached(&Array::from(nonce), aad, msg.into())
                    .expect("SM4-GCM seal of a segment cannot fail");
                out.extend_from_slice(&tag);
            }
        }
    }

    /// Decrypts `buf` (ciphertext ‖ tag) in place and drops the tag.
    fn open(&self, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> Result<usize, CryptoError> {
        let tagless = buf.len().checked_sub(TAG_SIZE as usize).ok_or(CryptoError::Authentication)?;
        match self {
            SegmentCipher::Aes(k) => {
                k.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), buf)
                    .map_err(|_| CryptoError::Authentication)?;
            }
            SegmentCipher::Sm4(c) => {
                let (msg, tag) = buf.split_at_mut(tagless);
                let tag = Array::try_from(&*tag).map_err(|_| CryptoError::Authentication)?;
                c.decrypt_inout_detached(&Array::from(nonce), aad, msg.into(), &tag)
                    .map_err(|_| CryptoError::Authentication)?;
            }
        }
        Ok(tagless)
    }

    /// Decrypts `sealed` (ciphertext ‖ tag) into `out[..n]` and returns `n`.
    /// On failure `out` may hold unauthenticated bytes: never use it then.
    fn open_into(&self, nonce: [u8; 12], aad: &[u8], sealed: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        let n = sealed.len().checked_sub(TAG_SIZE as usize).ok_or(CryptoError::Authentication)?;
        let (msg, tag) = sealed.split_at(n);
        let out = out.get_mut(..n).ok_or(CryptoError::Malformed("output shorter than the segment"))?;
        match self {
            SegmentCipher::Aes(k) => {
                k.open_separate_gather(Nonce::assume_unique_for_key(nonce), Aad::from(aad), msg, tag, out)
                    .map_err(|_| CryptoError::Authentication)?;
            }
            SegmentCipher::Sm4(c) => {
                let tag = Array::try_from(tag).map_err(|_| CryptoError::Authentication)?;
                let buf = InOutBuf::new(msg, out).map_err(|_| CryptoError::Malformed("buffer lengths"))?;
                c.decrypt_inout_detached(&Array::from(nonce), aad, buf, &tag)
                    .map_err(|_| CryptoError::Authentication)?;
            }
        }
        Ok(n)
    }
}

/// Seals a stream incrementally: push plaintext as it arrives, take sealed
/// segments out, finish at the end. Holds at most one segment of plaintext.
pub struct StreamSealer {
    cipher: SegmentCipher,
    params: StreamParams,
    pending: Vec<u8>,
    index: u32,
}

impl StreamSealer {
    /// A sealer for one stream under `key`.
    pub fn new(key: &DataKey, params: StreamParams) -> Result<Self, CryptoError> {
        Ok(StreamSealer {
            cipher: SegmentCipher::new(key, &params)?,
            params,
            pending: Vec::with_capacity(PENDING_CAPACITY),
            index: 0,
        })
    }

    /// Seals `plaintext` as the next segment onto `out` (one copy: into `out`,
    /// then encrypted in place).
    fn seal_segment(&mut self, plaintext: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let index = self.index;
        let start = out.len();
        out.extend_from_slice(plaintext);
        self.cipher.seal(self.params.nonce(index), &self.params.aad(index, last), out, start);
        self.index = index.checked_add(1).ok_or(CryptoError::Malformed("stream too long"))?;
        Ok(())
    }

    /// Seals the held-back segment onto `out`. When `out` is empty (the
    /// upload pipeline drains it after every push) the segment is sealed in
    /// place and the buffers are swapped: no copy at all.
    fn seal_pending(&mut self, last: bool, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if out.is_empty() {
            let index = self.index;
            self.cipher.seal(self.params.nonce(index), &self.params.aad(index, last), &mut self.pending, 0);
            self.index = index.checked_add(1).ok_or(CryptoError::Malformed("stream too long"))?;
            std::mem::swap(out, &mut self.pending);
            self.pending.reserve(PENDING_CAPACITY);
        } else {
            let pending = std::mem::take(&mut self.pending);
            let r = self.seal_segment(&pending, last, out);
            self.pending = pending;
            r?;
        }
        self.pending.clear();
        Ok(())
    }

    /// Adds plaintext; appends every segment that is now known not to be the
    /// last to `out`. A full segment is sealed only once more data proves it
    /// is not the last, so at most one segment is held back.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let seg = SEGMENT_SIZE as usize;
        if data.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() {
            let n = (seg - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..n]);
            data = &data[n..];
            if data.is_empty() {
                return Ok(());
            }
            self.seal_pending(false, out)?;
        }
        // Whole segments straight from the input while more data follows them.
        while data.len() > seg {
            self.seal_segment(&data[..seg], false, out)?;
            data = &data[seg..];
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// Seals what is left as the final segment (empty for an empty stream).
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        self.seal_pending(true, out)
    }
}

/// Room for one segment and its tag, so sealing in place never reallocates.
const PENDING_CAPACITY: usize = (SEGMENT_SIZE + TAG_SIZE) as usize;

impl Drop for StreamSealer {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.pending);
    }
}

/// Opens segments of a stored stream whose plaintext size is known.
pub struct StreamOpener {
    cipher: SegmentCipher,
    params: StreamParams,
    last_index: u64,
}

impl StreamOpener {
    /// An opener for a stream of `plain_len` plaintext bytes.
    pub fn new(key: &DataKey, params: StreamParams, plain_len: u64) -> Result<Self, CryptoError> {
        let last_index = crate::segment_count(plain_len) - 1;
        if last_index > u64::from(u32::MAX) {
            return Err(CryptoError::Malformed("stream too long"));
        }
        Ok(StreamOpener { cipher: SegmentCipher::new(key, &params)?, params, last_index })
    }

    /// Opens segment `index` from its stored bytes (ciphertext ‖ tag), in
    /// place; `buf` then holds the plaintext.
    pub fn open(&self, index: u64, buf: &mut Vec<u8>) -> Result<(), CryptoError> {
        let n = self.open_in_place(index, buf)?;
        buf.truncate(n);
        Ok(())
    }

    /// Opens segment `index` in place in `buf` (ciphertext ‖ tag) and returns
    /// the plaintext length: `buf[..n]` is the plaintext afterwards.
    pub fn open_in_place(&self, index: u64, buf: &mut [u8]) -> Result<usize, CryptoError> {
        if index > self.last_index {
            return Err(CryptoError::Malformed("segment index past the end"));
        }
        let i = index as u32;
        self.cipher.open(self.params.nonce(i), &self.params.aad(i, index == self.last_index), buf)
    }

    /// Opens segment `index` from its stored bytes `sealed` (ciphertext ‖
    /// tag) into the front of `out` and returns the plaintext length. Saves
    /// the copy an in-place open needs when the plaintext must end up
    /// elsewhere (contiguous, without the tags). On an error `out` may hold
    /// unauthenticated bytes and must not be used.
    pub fn open_into(&self, index: u64, sealed: &[u8], out: &mut [u8]) -> Result<usize, CryptoError> {
        if index > self.last_index {
            return Err(CryptoError::Malformed("segment index past the end"));
        }
        let i = index as u32;
        self.cipher.open_into(self.params.nonce(i), &self.params.aad(i, index == self.last_index), sealed, out)
    }

    /// Index of the final segment.
    pub fn last_index(&self) -> u64 {
        self.last_index
    }
}
