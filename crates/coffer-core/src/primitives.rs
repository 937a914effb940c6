//! Spec §2, "Primitives": the one v1 ciphersuite, behind types that keep dalek and RustCrypto out
//! of the public API.
//!
//! | use | primitive |
//! |---|---|
//! | key derivation | HKDF-SHA-256 (RFC 5869), `info = label \|\| 0x00 \|\| context` |
//! | digests and identifiers | SHA-256 (FIPS 180-4) |
//! | content digest | BLAKE3, 32-byte output |
//! | content chunks | ChaCha20-Poly1305 (RFC 8439) |
//! | sealed keys and records | XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha) |
//! | signatures | Ed25519 (RFC 8032) with the strict verification rule of spec §2.4 |
//! | encryption to a public key | HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305 |
//! | passwords | Argon2id v1.3 (RFC 9106) with bounded parameters; OPAQUE (RFC 9807) for login |

use alloc::vec::Vec;
use core::fmt;

use chacha20poly1305::aead::{Aead as _, KeyInit as _, Payload};
use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};

/// Length of every symmetric key in Coffer v1.
pub const KEY_LEN: usize = 32;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an AEAD tag (Poly1305).
pub const TAG_LEN: usize = 16;

/// A 256-bit symmetric secret (a master key, node key, file key, share generation key, ...).
///
/// Zeroized on drop; compared in constant time; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; KEY_LEN]);

impl SecretKey {
    /// Draws a fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut k = [0u8; KEY_LEN];
        rng.fill_bytes(&mut k);
        SecretKey(k)
    }

    /// Wraps existing key bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        SecretKey(bytes)
    }

    /// Wraps key bytes from a slice of exactly [`KEY_LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::DecryptionFailed`]-free: [`Error::Decode`] with `InvalidValue` on a wrong length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Decode(crate::DecodeError::InvalidValue))?;
        Ok(SecretKey(arr))
    }

    /// The key bytes. Handle with care: copies are not zeroized for you.
    #[must_use]
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}
impl Eq for SecretKey {}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Draws `N` random bytes.
pub(crate) fn random_array<const N: usize>(rng: &mut impl CryptoRngCore) -> [u8; N] {
    let mut out = [0u8; N];
    rng.fill_bytes(&mut out);
    out
}

/// Constant-time equality of two byte strings of public length.
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `HKDF-SHA-256(ikm, salt, info = label || 0x00 || context)` into `out` (spec §2.2).
///
/// `out` is at most 255 * 32 bytes; every use in Coffer asks for 32 or 64.
pub fn hkdf(ikm: &[u8], salt: &[u8], label: &str, context: &[u8], out: &mut [u8]) {
    let hk = hkdf::Hkdf::<sha2::Sha256>::new(Some(salt), ikm);
    if hk
        .expand_multi_info(&[label.as_bytes(), &[0u8], context], out)
        .is_err()
    {
        unreachable_hkdf();
    }
}

#[cold]
fn unreachable_hkdf() -> ! {
    panic!("coffer-core: HKDF output length out of range")
}

/// Derives a 32-byte key with [`hkdf()`].
#[must_use]
pub fn derive_key(ikm: &[u8], salt: &[u8], label: &str, context: &[u8]) -> SecretKey {
    let mut out = [0u8; KEY_LEN];
    hkdf(ikm, salt, label, context, &mut out);
    let key = SecretKey(out);
    out.zeroize();
    key
}

/// SHA-256 of `data`.
#[must_use]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Length of a content digest.
pub const CONTENT_DIGEST_LEN: usize = 32;

/// The content digest of spec §2.3 over a whole plaintext: BLAKE3 in its default hash mode with
/// the default 32-byte output, fed in pieces of any size (the result depends only on the bytes,
/// not on how they were split). Pieces of 16 KiB or more let the hash use every SIMD lane.
///
/// The state depends on the plaintext, so it is wiped when dropped.
#[derive(Clone, Default)]
pub struct ContentDigest(blake3::Hasher);

impl ContentDigest {
    /// A digest of nothing yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `data` to the input.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The digest of everything appended so far (the state is left as it is).
    #[must_use]
    pub fn finalize(&self) -> [u8; CONTENT_DIGEST_LEN] {
        self.0.finalize().into()
    }
}

impl Drop for ContentDigest {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for ContentDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContentDigest(..)")
    }
}

/// The content digest (spec §2.3) of the whole plaintext `data`: see [`ContentDigest`].
#[must_use]
pub fn content_digest(data: &[u8]) -> [u8; CONTENT_DIGEST_LEN] {
    ContentDigest::new().update(data).finalize()
}

/// ChaCha20-Poly1305 (RFC 8439) encryption with a 12-byte nonce; returns `ciphertext || tag`.
#[must_use]
pub fn chacha20poly1305_seal(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    match cipher.encrypt(nonce.into(), Payload { msg: pt, aad }) {
        Ok(ct) => ct,
        Err(_) => unreachable_aead(),
    }
}

/// ChaCha20-Poly1305 decryption of `ciphertext || tag`.
///
/// # Errors
/// [`Error::DecryptionFailed`] on any authentication failure.
pub fn chacha20poly1305_open(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>> {
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(nonce.into(), Payload { msg: ct, aad })
        .map_err(|_| Error::DecryptionFailed)
}

/// In-place ChaCha20-Poly1305 encryption of `buf`, returning the detached tag (the content
/// format's hot path: no allocation per chunk).
#[allow(dead_code)] // The §4 content hot path; unused until content lands.
pub(crate) fn chacha20poly1305_seal_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    use chacha20poly1305::AeadInPlace as _;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    match cipher.encrypt_in_place_detached(nonce.into(), aad, buf) {
        Ok(tag) => tag.into(),
        Err(_) => unreachable_aead(),
    }
}

/// In-place ChaCha20-Poly1305 decryption with a detached tag.
#[allow(dead_code)] // The §4 content hot path; unused until content lands.
pub(crate) fn chacha20poly1305_open_in_place(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<()> {
    use chacha20poly1305::AeadInPlace as _;
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
        .map_err(|_| Error::DecryptionFailed)
}

/// XChaCha20-Poly1305 encryption with a 24-byte nonce; returns `ciphertext || tag`.
#[must_use]
pub fn xchacha20poly1305_seal(key: &[u8; 32], nonce: &[u8; 24], aad: &[u8], pt: &[u8]) -> Vec<u8> {
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    match cipher.encrypt(nonce.into(), Payload { msg: pt, aad }) {
        Ok(ct) => ct,
        Err(_) => unreachable_aead(),
    }
}

/// XChaCha20-Poly1305 decryption of `ciphertext || tag`.
///
/// # Errors
/// [`Error::DecryptionFailed`] on any authentication failure.
pub fn xchacha20poly1305_open(
    key: &[u8; 32],
    nonce: &[u8; 24],
    aad: &[u8],
    ct: &[u8],
) -> Result<Vec<u8>> {
    let cipher = chacha20poly1305::XChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(nonce.into(), Payload { msg: ct, aad })
        .map_err(|_| Error::DecryptionFailed)
}

#[cold]
fn unreachable_aead() -> ! {
    // Encryption only fails for plaintexts beyond 2^38 bytes, which Coffer never builds.
    panic!("coffer-core: AEAD encryption failed")
}

// ---------------------------------------------------------------------------------------------
// Ed25519

/// The message an Ed25519 signature covers: `label || 0x00 || message` (spec §2.4).
fn signed_message(label: &str, message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(label.len() + 1 + message.len());
    m.extend_from_slice(label.as_bytes());
    m.push(0);
    m.extend_from_slice(message);
    m
}

/// An Ed25519 signing key (the 32-byte RFC 8032 seed). Zeroized on drop.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// Draws a fresh signing key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(random_array(rng));
        SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The signing key with the given RFC 8032 seed.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The RFC 8032 seed. Handle with care.
    #[must_use]
    pub fn seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    #[must_use]
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `label || 0x00 || message`.
    #[must_use]
    pub fn sign(&self, label: &str, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        use ed25519_dalek::Signer as _;
        self.0.sign(&signed_message(label, message)).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// A validated Ed25519 public key: canonical encoding, not of small order (spec §2.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// Parses and validates a public key.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] when the bytes do not decode to a point, decode
    /// non-canonically, or encode a point of small order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidPublicKey)?;
        if key.is_weak() || key.to_edwards().compress().to_bytes() != *bytes {
            return Err(Error::InvalidPublicKey);
        }
        Ok(VerifyingKey(key))
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies a signature over `label || 0x00 || message` with `verify_strict`: canonical `S`,
    /// canonical and not small-order `R`, cofactorless equation.
    ///
    /// # Errors
    /// [`Error::BadSignature`] if the signature does not verify.
    pub fn verify(
        &self,
        label: &str,
        message: &[u8],
        signature: &[u8; SIGNATURE_LEN],
    ) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(&signed_message(label, message), &sig)
            .map_err(|_| Error::BadSignature)
    }
}

impl VerifyingKey {
    /// Verifies an RFC 8032 Ed25519 signature over `message` exactly as given, under the same
    /// strict rules as [`VerifyingKey::verify`] but without Coffer's `label || 0x00` prefix.
    ///
    /// For interoperability testing against external vectors (RFC 8032, Wycheproof) only: every
    /// signature in the protocol is verified with [`VerifyingKey::verify`] and a label.
    ///
    /// # Errors
    /// [`Error::BadSignature`] if the signature does not verify.
    pub fn verify_message(&self, message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VerifyingKey({:?})",
            crate::encoding::Bytes(self.to_bytes())
        )
    }
}

// ---------------------------------------------------------------------------------------------
// X25519 and HPKE

type HpkeKem = hpke::kem::X25519HkdfSha256;
type HpkeKdf = hpke::kdf::HkdfSha256;
type HpkeAead = hpke::aead::ChaCha20Poly1305;

/// An X25519 secret key (32 bytes, clamped when used). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct AgreementSecret([u8; 32]);

impl AgreementSecret {
    /// Draws a fresh secret from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        AgreementSecret(random_array(rng))
    }

    /// Wraps existing secret bytes.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        AgreementSecret(bytes)
    }

    /// The secret bytes. Handle with care.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// The public key `X25519(secret, 9)`.
    #[must_use]
    pub fn public_key(&self) -> AgreementPublic {
        let secret = x25519_dalek::StaticSecret::from(self.0);
        AgreementPublic(x25519_dalek::PublicKey::from(&secret).to_bytes())
    }
}

impl fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgreementSecret(<redacted>)")
    }
}

/// A validated X25519 public key: canonical, on the curve, not of small order (spec §2.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementPublic([u8; 32]);

impl AgreementPublic {
    /// Parses and validates a public key.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] for a non-canonical u-coordinate, a point on the twist, or a
    /// point of small order (whose shared secrets would be all-zero or predictable).
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let point = curve25519_dalek::montgomery::MontgomeryPoint(*bytes);
        let ok = match point.to_edwards(0) {
            Some(ed) => !ed.is_small_order() && ed.to_montgomery().to_bytes() == *bytes,
            None => false,
        };
        if ok {
            Ok(AgreementPublic(*bytes))
        } else {
            Err(Error::InvalidPublicKey)
        }
    }

    /// The 32-byte encoding.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl fmt::Debug for AgreementPublic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementPublic({:?})", crate::encoding::Bytes(self.0))
    }
}

/// Length of an HPKE encapsulated key (`enc`) for DHKEM(X25519).
pub const HPKE_ENC_LEN: usize = 32;

/// HPKE base-mode single-shot encryption to `recipient` (RFC 9180 §6.1, spec §2.5).
///
/// The ephemeral key pair is `DeriveKeyPair(ikmE)` with 32 bytes of `ikmE` drawn from `rng`, so
/// an RNG that yields a test vector's `ikmE` reproduces the vector.
///
/// # Errors
/// [`Error::NonContributory`] if the key exchange yields the all-zero shared secret.
pub fn hpke_seal(
    recipient: &AgreementPublic,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<([u8; HPKE_ENC_LEN], Vec<u8>)> {
    use hpke::{Deserializable as _, Serializable as _};
    let pk = <HpkeKem as hpke::Kem>::PublicKey::from_bytes(&recipient.0)
        .map_err(|_| Error::InvalidPublicKey)?;
    let mut rng = RngAdapter(rng);
    let (enc, ct) = hpke::single_shot_seal::<HpkeAead, HpkeKdf, HpkeKem, _>(
        &hpke::OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        &mut rng,
    )
    .map_err(|_| Error::NonContributory)?;
    let mut enc_bytes = [0u8; HPKE_ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok((enc_bytes, ct))
}

/// HPKE base-mode single-shot decryption (RFC 9180 §6.1).
///
/// # Errors
/// [`Error::DecryptionFailed`] on any failure, including an all-zero shared secret: the caller
/// learns nothing about which step failed.
pub fn hpke_open(
    secret: &AgreementSecret,
    enc: &[u8; HPKE_ENC_LEN],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Vec<u8>> {
    use hpke::Deserializable as _;
    let sk = <HpkeKem as hpke::Kem>::PrivateKey::from_bytes(&secret.0)
        .map_err(|_| Error::DecryptionFailed)?;
    let encapped = <HpkeKem as hpke::Kem>::EncappedKey::from_bytes(enc)
        .map_err(|_| Error::DecryptionFailed)?;
    hpke::single_shot_open::<HpkeAead, HpkeKdf, HpkeKem>(
        &hpke::OpModeR::Base,
        &sk,
        &encapped,
        info,
        ciphertext,
        aad,
    )
    .map_err(|_| Error::DecryptionFailed)
}

/// Adapts `&mut impl CryptoRngCore` to the `RngCore + CryptoRng` bounds of the hpke and
/// opaque-ke crates (crate-visible for the OPAQUE wrapper of spec §6).
pub(crate) struct RngAdapter<'a, R: CryptoRngCore>(pub(crate) &'a mut R);

impl<R: CryptoRngCore> rand_core::RngCore for RngAdapter<'_, R> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> core::result::Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}
impl<R: CryptoRngCore> rand_core::CryptoRng for RngAdapter<'_, R> {}

// ---------------------------------------------------------------------------------------------
// Argon2id

/// Argon2id cost parameters as carried in Coffer structures (spec §2.6).
///
/// Parameters read from untrusted input are checked against [`Argon2Params::MIN`] and
/// [`Argon2Params::MAX`] *before* any work is done: a floor so a malicious server cannot weaken a
/// password-derived key, a ceiling so it cannot make a client spend unbounded memory or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Argon2Params {
    /// The floor: OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane).
    pub const MIN: Argon2Params = Argon2Params {
        m_kib: 19 * 1024,
        t: 2,
        p: 1,
    };
    /// The ceiling: 1 GiB, 16 passes, 16 lanes.
    pub const MAX: Argon2Params = Argon2Params {
        m_kib: 1024 * 1024,
        t: 16,
        p: 16,
    };
    /// The default for new structures: RFC 9106's second recommended option (64 MiB, 3 passes,
    /// 4 lanes).
    pub const DEFAULT: Argon2Params = Argon2Params {
        m_kib: 64 * 1024,
        t: 3,
        p: 4,
    };

    /// Checks the parameters against the floor and the ceiling.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] naming the first parameter out of range.
    pub fn check(&self) -> Result<()> {
        let (min, max) = (Self::MIN, Self::MAX);
        if !(min.m_kib..=max.m_kib).contains(&self.m_kib) {
            return Err(Error::LimitExceeded {
                what: "argon2id memory (KiB)",
                limit: u64::from(max.m_kib),
            });
        }
        if !(min.t..=max.t).contains(&self.t) {
            return Err(Error::LimitExceeded {
                what: "argon2id passes",
                limit: u64::from(max.t),
            });
        }
        if !(min.p..=max.p).contains(&self.p) {
            return Err(Error::LimitExceeded {
                what: "argon2id lanes",
                limit: u64::from(max.p),
            });
        }
        if self.m_kib < 8 * self.p {
            return Err(Error::LimitExceeded {
                what: "argon2id memory per lane",
                limit: 8,
            });
        }
        Ok(())
    }

    /// Argon2id v1.3 of `password` with `salt` into a 32-byte key, after [`Argon2Params::check`].
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] when the parameters are out of bounds; nothing is computed then.
    pub fn derive(&self, password: &[u8], salt: &[u8]) -> Result<SecretKey> {
        self.check()?;
        let params = argon2::Params::new(self.m_kib, self.t, self.p, Some(KEY_LEN))
            .map_err(|_| Error::Internal("argon2 parameters"))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = [0u8; KEY_LEN];
        argon
            .hash_password_into(password, salt, &mut out)
            .map_err(|_| Error::InvalidArgument("argon2id salt must be 8 to 2^32-1 bytes"))?;
        let key = SecretKey(out);
        out.zeroize();
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng as _;

    fn rng() -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([7; 32])
    }

    #[test]
    fn signatures_are_context_bound_and_strict() {
        let sk = SigningKey::generate(&mut rng());
        let vk = sk.verifying_key();
        let sig = sk.sign("coffer/v1/test", b"msg");
        assert!(vk.verify("coffer/v1/test", b"msg", &sig).is_ok());
        assert_eq!(
            vk.verify("coffer/v1/other", b"msg", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            vk.verify("coffer/v1/test", b"msG", &sig),
            Err(Error::BadSignature)
        );
        // S + L is a non-canonical encoding of the same S: rejected.
        let mut malleated = sig;
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for i in 0..32 {
            let s = u16::from(malleated[32 + i]) + u16::from(l[i]) + carry;
            malleated[32 + i] = s as u8;
            carry = s >> 8;
        }
        assert_eq!(
            vk.verify("coffer/v1/test", b"msg", &malleated),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn weak_and_noncanonical_public_keys_are_rejected() {
        // The identity point (small order) and a non-canonical encoding of y = 1 (p + 1).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(
            VerifyingKey::from_bytes(&identity),
            Err(Error::InvalidPublicKey)
        );
        let mut p_plus_1 = [0xffu8; 32];
        p_plus_1[0] = 0xee;
        p_plus_1[31] = 0x7f;
        assert_eq!(
            VerifyingKey::from_bytes(&p_plus_1),
            Err(Error::InvalidPublicKey)
        );
        assert_eq!(
            AgreementPublic::from_bytes(&[0u8; 32]),
            Err(Error::InvalidPublicKey)
        );
        let mut one = [0u8; 32];
        one[0] = 1;
        assert_eq!(
            AgreementPublic::from_bytes(&one),
            Err(Error::InvalidPublicKey)
        );
        let good = AgreementSecret::generate(&mut rng()).public_key();
        assert_eq!(AgreementPublic::from_bytes(&good.to_bytes()), Ok(good));
    }

    #[test]
    fn hpke_round_trip_and_binding() {
        let mut r = rng();
        let sk = AgreementSecret::generate(&mut r);
        let pk = sk.public_key();
        let (enc, ct) = hpke_seal(&pk, b"info", b"aad", b"secret", &mut r).expect("seal");
        assert_eq!(
            hpke_open(&sk, &enc, b"info", b"aad", &ct).expect("open"),
            b"secret"
        );
        assert_eq!(
            hpke_open(&sk, &enc, b"infO", b"aad", &ct),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            hpke_open(&sk, &enc, b"info", b"aaD", &ct),
            Err(Error::DecryptionFailed)
        );
        assert_eq!(
            hpke_open(&sk, &[0u8; 32], b"info", b"aad", &ct),
            Err(Error::DecryptionFailed)
        );
    }

    #[test]
    fn argon2_bounds_are_checked_before_work() {
        let too_big = Argon2Params {
            m_kib: Argon2Params::MAX.m_kib + 1,
            ..Argon2Params::MIN
        };
        assert!(matches!(
            too_big.derive(b"pw", b"saltsalt"),
            Err(Error::LimitExceeded { .. })
        ));
        let too_small = Argon2Params {
            t: 1,
            ..Argon2Params::MIN
        };
        assert!(matches!(
            too_small.check(),
            Err(Error::LimitExceeded { .. })
        ));
        assert!(Argon2Params::DEFAULT.check().is_ok());
    }
}
