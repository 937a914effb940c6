//! Spec §3, "Key commitment": the committed seal, the one construction every sealed key and
//! sealed record in Coffer uses.
//!
//! ```text
//! nonce      = random(24)
//! okm        = HKDF-SHA-256(ikm = K, salt = nonce, info = label || 0x00, L = 64)
//! seal_key   = okm[0..32]
//! commitment = okm[32..64]
//! sealed     = nonce || commitment || XChaCha20-Poly1305(seal_key, nonce, aad, plaintext)
//! ```
//!
//! Opening checks the length first, recomputes `commitment` and compares it in constant time
//! before any decryption. ChaCha20-Poly1305 alone is not key-committing: an attacker can build one
//! ciphertext that authenticates under many keys (the partitioning-oracle attack) or under two
//! keys with two different plaintexts (the invisible-salamander attack). The commitment is a
//! 256-bit output of HKDF, which an attacker cannot make equal under two keys without breaking
//! HMAC-SHA-256's collision resistance, so a sealed value opens under at most one key.

use alloc::vec::Vec;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{Error, Result};
use crate::primitives::{self, SecretKey, KEY_LEN, TAG_LEN};

/// Length of the seal nonce.
pub const SEAL_NONCE_LEN: usize = 24;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// Bytes a seal adds to its plaintext: nonce, commitment and tag.
pub const SEAL_OVERHEAD: usize = SEAL_NONCE_LEN + COMMITMENT_LEN + TAG_LEN;
/// Length of a sealed 32-byte key (spec §3.2).
pub const SEALED_KEY_LEN: usize = SEAL_OVERHEAD + KEY_LEN;

struct SealKeys {
    key: Zeroizing<[u8; 32]>,
    commitment: [u8; COMMITMENT_LEN],
}

fn seal_keys(key: &SecretKey, nonce: &[u8; SEAL_NONCE_LEN], label: &str) -> SealKeys {
    let mut okm = [0u8; 64];
    primitives::hkdf(key.expose(), nonce, label, &[], &mut okm);
    let mut k = Zeroizing::new([0u8; 32]);
    k.copy_from_slice(&okm[..32]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&okm[32..]);
    okm.zeroize();
    SealKeys { key: k, commitment }
}

/// Seals `plaintext` under `key` for the use named by `label`, binding `aad`.
#[must_use]
pub fn seal(
    key: &SecretKey,
    label: &str,
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let nonce: [u8; SEAL_NONCE_LEN] = primitives::random_array(rng);
    let keys = seal_keys(key, &nonce, label);
    let ct = primitives::xchacha20poly1305_seal(&keys.key, &nonce, aad, plaintext);
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&keys.commitment);
    out.extend_from_slice(&ct);
    out
}

/// Opens a value sealed by [`seal`] with the same key, label and associated data.
///
/// # Errors
/// [`Error::DecryptionFailed`] for a short input, a commitment mismatch or a failed tag, without
/// saying which.
pub fn open(key: &SecretKey, label: &str, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(Error::DecryptionFailed);
    }
    let (nonce, rest) = sealed.split_at(SEAL_NONCE_LEN);
    let (commitment, ct) = rest.split_at(COMMITMENT_LEN);
    let nonce: [u8; SEAL_NONCE_LEN] = nonce.try_into().map_err(|_| Error::DecryptionFailed)?;
    let keys = seal_keys(key, &nonce, label);
    if !primitives::ct_eq(&keys.commitment, commitment) {
        return Err(Error::DecryptionFailed);
    }
    primitives::xchacha20poly1305_open(&keys.key, &nonce, aad, ct).map(Zeroizing::new)
}

/// Seals a 32-byte key; the result is exactly [`SEALED_KEY_LEN`] bytes.
#[must_use]
pub fn seal_key(
    wrapping_key: &SecretKey,
    label: &str,
    aad: &[u8],
    key: &SecretKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    seal(wrapping_key, label, aad, key.expose(), rng)
}

/// Opens a sealed 32-byte key, checking the exact length before any cryptography.
///
/// # Errors
/// [`Error::DecryptionFailed`] as for [`open`], and for any length other than
/// [`SEALED_KEY_LEN`].
pub fn open_key(
    wrapping_key: &SecretKey,
    label: &str,
    aad: &[u8],
    sealed: &[u8],
) -> Result<SecretKey> {
    if sealed.len() != SEALED_KEY_LEN {
        return Err(Error::DecryptionFailed);
    }
    let pt = open(wrapping_key, label, aad, sealed)?;
    SecretKey::from_slice(&pt).map_err(|_| Error::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng as _;

    #[test]
    fn seal_open_and_every_single_fault() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([1; 32]);
        let k = SecretKey::generate(&mut rng);
        let other = SecretKey::generate(&mut rng);
        let sealed = seal(&k, "coffer/v1/test", b"ctx", b"hello", &mut rng);
        assert_eq!(sealed.len(), SEAL_OVERHEAD + 5);
        assert_eq!(
            &open(&k, "coffer/v1/test", b"ctx", &sealed).expect("open")[..],
            b"hello"
        );
        assert_eq!(
            open(&other, "coffer/v1/test", b"ctx", &sealed),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            open(&k, "coffer/v1/tesT", b"ctx", &sealed),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            open(&k, "coffer/v1/test", b"ctX", &sealed),
            Err(Error::DecryptionFailed)
        );
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                open(&k, "coffer/v1/test", b"ctx", &bad),
                Err(Error::DecryptionFailed),
                "byte {i}"
            );
        }
        assert_eq!(
            open(&k, "coffer/v1/test", b"ctx", &sealed[..SEAL_OVERHEAD - 1]),
            Err(Error::DecryptionFailed)
        );
    }

    #[test]
    fn sealed_keys_have_exact_length() {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([2; 32]);
        let k = SecretKey::generate(&mut rng);
        let inner = SecretKey::generate(&mut rng);
        let sealed = seal_key(&k, "coffer/v1/test", b"", &inner, &mut rng);
        assert_eq!(sealed.len(), SEALED_KEY_LEN);
        assert_eq!(open_key(&k, "coffer/v1/test", b"", &sealed), Ok(inner));
        let long = seal(&k, "coffer/v1/test", b"", &[0u8; 33], &mut rng);
        assert_eq!(
            open_key(&k, "coffer/v1/test", b"", &long),
            Err(Error::DecryptionFailed)
        );
    }
}
