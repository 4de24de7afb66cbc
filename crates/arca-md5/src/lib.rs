//! MD5, the ETag of every PUT and the slowest step of one: OSS clients check
//! it, so a PUT cannot go faster than MD5 over its body. This uses AWS-LC's
//! assembly MD5 (already linked for the ciphers), about 25 % faster than the
//! pure-Rust `md-5` crate on x86-64, behind a safe, three-method API.
//!
//! This is the workspace's only `unsafe` code: three FFI calls on a context
//! this type owns.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

use aws_lc_sys::{MD5_CTX, MD5_Final, MD5_Init, MD5_Update};

/// An MD5 computation in progress.
pub struct Md5 {
    ctx: MD5_CTX,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A fresh computation.
    pub fn new() -> Self {
        let mut ctx = MD5_CTX { h: [0; 4], Nl: 0, Nh: 0, data: [0; 64], num: 0 };
        // SAFETY: `ctx` is a valid, exclusively borrowed MD5_CTX; MD5_Init
        // only writes to it and always succeeds (returns 1).
        unsafe { MD5_Init(&mut ctx) };
        Md5 { ctx }
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: `self.ctx` was initialized by MD5_Init; `data` is valid for
        // `data.len()` bytes of reads for the duration of the call.
        unsafe { MD5_Update(&mut self.ctx, data.as_ptr().cast(), data.len()) };
    }

    /// The digest.
    pub fn finalize(mut self) -> [u8; 16] {
        let mut out = [0u8; 16];
        // SAFETY: `out` has the 16 bytes MD5_Final writes; `self.ctx` is an
        // initialized context, consumed here.
        unsafe { MD5_Final(out.as_mut_ptr(), &mut self.ctx) };
        out
    }

    /// MD5 of one buffer.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Md5::new();
        h.update(data);
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5_reference::Digest as _;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn rfc1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(hex(Md5::digest(input.as_bytes())), want, "MD5({input:?})");
        }
    }

    #[test]
    fn any_split_matches_the_reference_implementation() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let want: [u8; 16] = md5_reference::Md5::digest(&data).into();
        for split in [0, 1, 63, 64, 65, 127, 128, 4095, 9_999, 10_000] {
            let mut h = Md5::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finalize(), want, "split at {split}");
        }
    }
}
