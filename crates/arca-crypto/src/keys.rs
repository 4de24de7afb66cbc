//! Data keys, their wrapping under master keys, and sealing of master key
//! material under the root key.

use aes_gcm::aead::array::Array;
use aes_gcm::aead::consts::U12;
use aes_gcm::{AeadInOut, AesGcm, KeyInit};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sm4::Sm4;
use zeroize::Zeroizing;

use crate::{CryptoError, Suite};

/// A plaintext data (or master) key. Zeroized on drop; `Debug` never shows it.
pub struct DataKey {
    suite: Suite,
    bytes: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({:?}, <redacted>)", self.suite)
    }
}

impl DataKey {
    /// A fresh random key for `suite`.
    pub fn generate(suite: Suite) -> Self {
        let mut bytes = Zeroizing::new(vec![0u8; suite.key_len()]);
        aws_lc_rs::rand::fill(&mut bytes).expect("system RNG");
        DataKey { suite, bytes }
    }

    /// A key from its bytes (which must have the suite's length).
    pub fn from_bytes(suite: Suite, bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != suite.key_len() {
            return Err(CryptoError::Malformed("key length"));
        }
        Ok(DataKey { suite, bytes: Zeroizing::new(bytes.to_vec()) })
    }

    /// The suite the key is for.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The raw key bytes. Callers must not log or persist them unwrapped.
    pub fn expose(&self) -> &[u8] {
        &self.bytes
    }
}

fn random_nonce() -> [u8; 12] {
    let mut n = [0u8; 12];
    aws_lc_rs::rand::fill(&mut n).expect("system RNG");
    n
}

/// nonce ‖ AEAD(key, nonce, aad, plaintext) with the key's suite.
fn seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let nonce = random_nonce();
    let mut buf = plaintext.to_vec();
    match key.suite {
        Suite::Aes256Gcm => {
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).expect("32-byte key"));
            k.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf).expect("seal");
        }
        Suite::Sm4Gcm => {
            let c = AesGcm::<Sm4, U12>::new_from_slice(key.expose()).expect("16-byte key");
            let tag = c.encrypt_inout_detached(&Array::from(nonce), aad, buf.as_mut_slice().into()).expect("seal");
            buf.extend_from_slice(&tag);
        }
    }
    let mut out = nonce.to_vec();
    out.extend_from_slice(&buf);
    zeroize::Zeroize::zeroize(&mut buf);
    out
}

fn open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < 12 + 16 {
        return Err(CryptoError::Authentication);
    }
    let nonce: [u8; 12] = sealed[..12].try_into().expect("12 bytes");
    let mut buf = Zeroizing::new(sealed[12..].to_vec());
    let tagless = buf.len() - 16;
    match key.suite {
        Suite::Aes256Gcm => {
            let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key.expose()).expect("32-byte key"));
            k.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut buf)
                .map_err(|_| CryptoError::Authentication)?;
        }
        Suite::Sm4Gcm => {
            let c = AesGcm::<Sm4, U12>::new_from_slice(key.expose()).expect("16-byte key");
            let (msg, tag) = buf.split_at_mut(tagless);
            let tag = Array::try_from(&*tag).map_err(|_| CryptoError::Authentication)?;
            c.decrypt_inout_detached(&Array::from(nonce), aad, msg.into(), &tag)
                .map_err(|_| CryptoError::Authentication)?;
        }
    }
    buf.truncate(tagless);
    Ok(buf)
}

/// Seals arbitrary bytes under a key of either suite: `nonce ‖ ciphertext ‖ tag`.
/// `aad` must carry a domain label of the caller's (the KMS uses its own).
pub fn aead_seal(key: &DataKey, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    seal(key, aad, plaintext)
}

/// Opens what [`aead_seal`] sealed with the same key and AAD.
pub fn aead_open(key: &DataKey, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open(key, aad, sealed)
}

fn datakey_aad(identity: &[u8]) -> Vec<u8> {
    [b"arca/v1/datakey".as_slice(), identity].concat()
}

/// Wraps `data_key` under a master key version, bound to the object identity.
pub fn wrap_data_key(master: &DataKey, identity: &[u8], data_key: &DataKey) -> Vec<u8> {
    seal(master, &datakey_aad(identity), data_key.expose())
}

/// Unwraps a data key for `suite`; fails for any other identity or master key.
pub fn unwrap_data_key(
    master: &DataKey,
    identity: &[u8],
    wrapped: &[u8],
    suite: Suite,
) -> Result<DataKey, CryptoError> {
    let bytes = open(master, &datakey_aad(identity), wrapped)?;
    DataKey::from_bytes(suite, &bytes)
}

fn root_aad(label: &[u8]) -> Vec<u8> {
    [b"arca/v1/masterkey".as_slice(), label].concat()
}

/// Seals key material at rest under the 32-byte root key (AES-256-GCM);
/// `label` (key id and version) is bound as AAD.
pub fn seal_with_root(root: &DataKey, label: &[u8], material: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if root.suite != Suite::Aes256Gcm {
        return Err(CryptoError::Malformed("the root key is an AES-256 key"));
    }
    Ok(seal(root, &root_aad(label), material))
}

/// Opens material sealed by [`seal_with_root`] under the same label.
pub fn unseal_with_root(root: &DataKey, label: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open(root, &root_aad(label), sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_binds_identity_and_master() {
        for suite in [Suite::Aes256Gcm, Suite::Sm4Gcm] {
            let master = DataKey::generate(suite);
            let dk = DataKey::generate(suite);
            let w = wrap_data_key(&master, b"acct\0bkt\0key\0v1", &dk);
            let back = unwrap_data_key(&master, b"acct\0bkt\0key\0v1", &w, suite).unwrap();
            assert_eq!(back.expose(), dk.expose());
            assert_eq!(
                unwrap_data_key(&master, b"acct\0bkt\0other\0v1", &w, suite).unwrap_err(),
                CryptoError::Authentication
            );
            assert!(unwrap_data_key(&DataKey::generate(suite), b"acct\0bkt\0key\0v1", &w, suite).is_err());
            let mut bad = w.clone();
            bad[20] ^= 1;
            assert!(unwrap_data_key(&master, b"acct\0bkt\0key\0v1", &bad, suite).is_err());
            assert!(
                !w.windows(dk.expose().len()).any(|win| win == dk.expose()),
                "wrapped form must not contain the key"
            );
        }
    }

    #[test]
    fn root_sealing_round_trip_and_label_binding() {
        let root = DataKey::generate(Suite::Aes256Gcm);
        let s = seal_with_root(&root, b"svc/1", b"material").unwrap();
        assert_eq!(&unseal_with_root(&root, b"svc/1", &s).unwrap()[..], b"material");
        assert!(unseal_with_root(&root, b"svc/2", &s).is_err());
        assert!(seal_with_root(&DataKey::generate(Suite::Sm4Gcm), b"x", b"y").is_err());
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let k = DataKey::from_bytes(Suite::Sm4Gcm, &[0xAB; 16]).unwrap();
        let d = format!("{k:?}");
        assert!(!d.contains("171") && !d.to_lowercase().contains("ab, ") && d.contains("redacted"));
    }

    #[test]
    fn sm4_gcm_rfc8998_vector() {
        let key = hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap();
        let nonce: [u8; 12] = hex::decode("00001234567800000000ABCD").unwrap().try_into().unwrap();
        let aad = hex::decode("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2").unwrap();
        let pt = hex::decode("AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDDEEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA").unwrap();
        let c = AesGcm::<Sm4, U12>::new_from_slice(&key).unwrap();
        let mut buf = pt.clone();
        let tag = c.encrypt_inout_detached(&Array::from(nonce), &aad, buf.as_mut_slice().into()).unwrap();
        assert_eq!(
            hex::encode_upper(&buf),
            "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
        );
        assert_eq!(hex::encode_upper(tag), "83DE3541E4C2B58177E065A9BF7B62EC");
    }
}
