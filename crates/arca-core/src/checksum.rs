//! Integrity values computed in the single pass over an object's bytes:
//! MD5 (the ETag and Content-MD5) and CRC-64/XZ (`x-oss-hash-crc64ecma`).

use arca_md5::Md5;
use crc_fast::{CrcAlgorithm, Digest as Crc};

/// CRC-64/XZ of `data` (the checksum OSS calls crc64ecma).
pub fn crc64(data: &[u8]) -> u64 {
    crc_fast::checksum(CrcAlgorithm::Crc64Xz, data)
}

/// CRC of `A ‖ B` from `crc(A)`, `crc(B)` and `len(B)`, without the data.
pub fn crc64_combine(crc_a: u64, crc_b: u64, len_b: u64) -> u64 {
    if len_b == 0 {
        return crc_a;
    }
    crc_fast::checksum_combine(CrcAlgorithm::Crc64Xz, crc_a, crc_b, len_b)
}

/// Feeds MD5 and CRC-64 together.
pub struct Hashes {
    md5: Md5,
    crc: Crc,
    len: u64,
}

impl Default for Hashes {
    fn default() -> Self {
        Hashes { md5: Md5::new(), crc: Crc::new(CrcAlgorithm::Crc64Xz), len: 0 }
    }
}

impl Hashes {
    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.crc.update(data);
        self.len += data.len() as u64;
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The MD5 digest and the CRC-64.
    pub fn finish(self) -> ([u8; 16], u64) {
        (self.md5.finalize(), self.crc.finalize())
    }
}

/// MD5 and CRC-64 of a large body: MD5 (the slowest step of a PUT, and
/// sequential) runs on a thread of its own, fed the same chunks, while the
/// caller's thread does CRC-64, sealing and writing. Still one pass over the
/// data: each chunk is hashed once by each.
pub struct SplitHashes {
    md5: std::sync::mpsc::SyncSender<bytes::Bytes>,
    worker: std::thread::JoinHandle<[u8; 16]>,
    crc: Crc,
    len: u64,
}

impl SplitHashes {
    /// Starts the MD5 thread.
    pub fn start() -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<bytes::Bytes>(4);
        let worker = std::thread::Builder::new().name("arca-md5".into()).spawn(move || {
            let mut md5 = Md5::new();
            for chunk in rx {
                md5.update(&chunk);
            }
            md5.finalize()
        })?;
        Ok(SplitHashes { md5: tx, worker, crc: Crc::new(CrcAlgorithm::Crc64Xz), len: 0 })
    }

    /// Adds a chunk (shared with the MD5 thread, not copied).
    pub fn update(&mut self, chunk: &bytes::Bytes) -> std::io::Result<()> {
        self.md5.send(chunk.clone()).map_err(|_| std::io::Error::other("the MD5 thread stopped"))?;
        self.crc.update(chunk);
        self.len += chunk.len() as u64;
        Ok(())
    }

    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no bytes were seen.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Waits for the MD5 thread; the MD5 digest and the CRC-64.
    pub fn finish(self) -> std::io::Result<([u8; 16], u64)> {
        drop(self.md5);
        let md5 = self.worker.join().map_err(|_| std::io::Error::other("the MD5 thread panicked"))?;
        Ok((md5, self.crc.finalize()))
    }
}

/// MD5 of a small buffer (XML bodies with `Content-MD5`).
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data)
}

/// Upper-case hex, as OSS writes MD5-based ETags.
pub fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// The ETag of a multipart object: MD5 of the concatenated binary part MD5s,
/// then `-<part count>`.
pub fn multipart_etag(part_md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in part_md5s {
        h.update(m);
    }
    format!("{}-{}", upper_hex(&h.finalize()), part_md5s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_values() {
        assert_eq!(crc64(b""), 0);
        assert_eq!(crc64(b"123456789"), 11051210869376104954);
        assert_eq!(crc64(b"hello"), 11177612005948864433);
    }

    #[test]
    fn combine_equals_whole() {
        let (a, b) = (b"hello, ".as_slice(), b"world and more".as_slice());
        let whole = [a, b].concat();
        assert_eq!(crc64_combine(crc64(a), crc64(b), b.len() as u64), crc64(&whole));
        assert_eq!(crc64_combine(crc64(a), crc64(b""), 0), crc64(a));
        assert_eq!(crc64_combine(crc64(b""), crc64(b), b.len() as u64), crc64(b));
    }

    #[test]
    fn hashes_match_reference() {
        let mut h = Hashes::default();
        h.update(b"hel");
        h.update(b"lo");
        let (md5, crc) = h.finish();
        assert_eq!(upper_hex(&md5), "5D41402ABC4B2A76B9719D911017C592");
        assert_eq!(crc, 11177612005948864433);
    }
}

#[cfg(test)]
mod split_tests {
    use super::*;

    #[test]
    fn split_hashes_equal_inline_hashes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        let mut inline = Hashes::default();
        let mut split = SplitHashes::start().unwrap();
        for chunk in data.chunks(70_001) {
            inline.update(chunk);
            split.update(&bytes::Bytes::copy_from_slice(chunk)).unwrap();
        }
        assert_eq!(split.len(), inline.len());
        assert_eq!(split.finish().unwrap(), inline.finish());
        assert_eq!(SplitHashes::start().unwrap().finish().unwrap(), Hashes::default().finish());
    }
}
