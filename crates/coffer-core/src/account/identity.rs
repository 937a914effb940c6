//! Spec §6.5–§6.7, "Identity": signed identity records, their rotation chain, pinning and
//! fingerprints.
//!
//! ```text
//! IdentityRecord = [20, 1, user_name, generation, signing_key, agreement_key, created, previous]
//! SignedIdentity = [21, 1, record: bstr, self_signature, predecessor_signature / null]
//! self_signature        = Ed25519(record.signing_key, "coffer/v1/account/identity" || 0x00 || record)
//! predecessor_signature = Ed25519(signing key of generation n-1,
//!                                 "coffer/v1/account/identity-succession" || 0x00 || record)
//! previous              = SHA-256(encoding of the SignedIdentity of generation n-1)
//! ```

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::encoding::{decode, decode_bounded, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error, Result};
use crate::primitives::{
    self, AgreementPublic, AgreementSecret, SigningKey, VerifyingKey, SIGNATURE_LEN,
};

/// Label of the self signature of an identity record.
pub const LABEL_IDENTITY: &str = "coffer/v1/account/identity";
/// Label of the predecessor's signature over the record of the next generation.
pub const LABEL_IDENTITY_SUCCESSION: &str = "coffer/v1/account/identity-succession";
/// Label of the fingerprint derivation.
pub const LABEL_FINGERPRINT: &str = "coffer/v1/account/fingerprint";

/// Maximum length of a user name, in bytes of UTF-8.
pub const MAX_USER_NAME_LEN: usize = 255;
/// Maximum encoded length of a [`SignedIdentity`]; checked before parsing.
pub const MAX_SIGNED_IDENTITY_LEN: usize = 1024;
/// Maximum number of generations in a chain that a verifier processes.
pub const MAX_CHAIN_LEN: usize = 1024;
/// Number of five-digit groups in a fingerprint.
pub const FINGERPRINT_GROUPS: usize = 12;
/// Bytes of HKDF output a fingerprint is computed from (five per group).
pub const FINGERPRINT_BYTES: usize = 5 * FINGERPRINT_GROUPS;

crate::cbor_struct! {
    /// The public identity of an account at one generation (spec §6.5). Signed inside a
    /// [`SignedIdentity`], which carries its exact encoding.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct IdentityRecord (type = 20, version = 1) {
        /// The account's user name (UTF-8, 1 to 255 bytes, no control characters).
        pub user_name: String,
        /// The identity generation: 0 at registration, +1 at each compromise recovery.
        pub generation: u64,
        /// The Ed25519 public key of this generation.
        pub signing_key: Bytes<32>,
        /// The X25519 public key of this generation (HPKE recipient key, spec §8).
        pub agreement_key: Bytes<32>,
        /// Creation time, seconds since the Unix epoch.
        pub created: u64,
        /// SHA-256 of the encoded [`SignedIdentity`] of generation `generation - 1`; `None` at 0.
        pub previous: Option<Bytes<32>>,
    }
}

crate::cbor_struct! {
    /// An identity record with its signatures (spec §6.5).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedIdentity (type = 21, version = 1) {
        /// The exact encoding of the [`IdentityRecord`] that both signatures cover.
        pub record: ByteBuf,
        /// Signature by the record's own signing key, label [`LABEL_IDENTITY`].
        pub self_signature: Bytes<SIGNATURE_LEN>,
        /// Signature by the previous generation's signing key, label
        /// [`LABEL_IDENTITY_SUCCESSION`]; `None` at generation 0.
        pub predecessor_signature: Option<Bytes<SIGNATURE_LEN>>,
    }
}

crate::cbor_struct! {
    /// The input of the fingerprint derivation (spec §6.7); never transmitted.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct FingerprintInput (type = 22, version = 1) {
        /// The user name.
        pub user_name: String,
        /// The identity generation.
        pub generation: u64,
        /// The Ed25519 public key.
        pub signing_key: Bytes<32>,
        /// The X25519 public key.
        pub agreement_key: Bytes<32>,
    }
}

/// Whether `name` is a valid user name: 1 to [`MAX_USER_NAME_LEN`] bytes, no control character.
#[must_use]
pub fn is_valid_user_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_USER_NAME_LEN && !name.chars().any(char::is_control)
}

pub(crate) fn check_user_name(name: &str) -> Result<()> {
    if is_valid_user_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "user name must be 1 to 255 bytes of UTF-8 without control characters",
        ))
    }
}

/// The private keys of one identity generation. Zeroized on drop.
#[derive(Clone, Debug)]
pub struct IdentityKeys {
    /// The Ed25519 signing key.
    pub signing: SigningKey,
    /// The X25519 secret.
    pub agreement: AgreementSecret,
}

impl IdentityKeys {
    /// Draws fresh keys: the 32-byte Ed25519 seed first, then the 32-byte X25519 secret.
    pub fn generate(rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let signing = SigningKey::generate(rng);
        let agreement = AgreementSecret::generate(rng);
        IdentityKeys { signing, agreement }
    }
}

/// A fingerprint that people compare (spec §6.7): twelve groups of five decimal digits, derived
/// from the user name, the generation and both public keys of one identity generation.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u32; FINGERPRINT_GROUPS]);

impl Fingerprint {
    /// The fingerprint of the given identity generation.
    #[must_use]
    pub fn compute(
        user_name: &str,
        generation: u64,
        signing_key: &VerifyingKey,
        agreement_key: &AgreementPublic,
    ) -> Self {
        let input = FingerprintInput {
            user_name: user_name.into(),
            generation,
            signing_key: Bytes(signing_key.to_bytes()),
            agreement_key: Bytes(agreement_key.to_bytes()),
        };
        let mut okm = [0u8; FINGERPRINT_BYTES];
        primitives::hkdf(&encode(&input), &[], LABEL_FINGERPRINT, &[], &mut okm);
        let mut groups = [0u32; FINGERPRINT_GROUPS];
        for (g, chunk) in groups.iter_mut().zip(okm.chunks_exact(5)) {
            let mut v = 0u64;
            for b in chunk {
                v = (v << 8) | u64::from(*b);
            }
            // v < 2^40, so the remainder fits in u32.
            *g = (v % 100_000) as u32;
        }
        Fingerprint(groups)
    }

    /// The fingerprint with the given groups.
    ///
    /// # Errors
    /// [`DecodeError::InvalidText`] if a group is 100000 or more.
    pub fn from_groups(groups: [u32; FINGERPRINT_GROUPS]) -> Result<Self, DecodeError> {
        if groups.iter().any(|g| *g >= 100_000) {
            return Err(DecodeError::InvalidText);
        }
        Ok(Fingerprint(groups))
    }

    /// The twelve groups, each below 100000.
    #[must_use]
    pub fn groups(&self) -> &[u32; FINGERPRINT_GROUPS] {
        &self.0
    }

    /// Parses the text form. ASCII whitespace anywhere is ignored (people copy fingerprints across
    /// line breaks); what remains MUST be exactly 60 ASCII digits.
    ///
    /// # Errors
    /// [`DecodeError::InvalidText`] otherwise.
    pub fn parse(text: &str) -> Result<Self, DecodeError> {
        let mut groups = [0u32; FINGERPRINT_GROUPS];
        let mut n = 0usize;
        for c in text.bytes() {
            if c.is_ascii_whitespace() {
                continue;
            }
            if !c.is_ascii_digit() || n >= 5 * FINGERPRINT_GROUPS {
                return Err(DecodeError::InvalidText);
            }
            let g = &mut groups[n / 5];
            *g = *g * 10 + u32::from(c - b'0');
            n += 1;
        }
        if n != 5 * FINGERPRINT_GROUPS {
            return Err(DecodeError::InvalidText);
        }
        Ok(Fingerprint(groups))
    }
}

/// The canonical text form: the twelve groups, zero-padded to five digits, separated by single
/// spaces.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{g:05}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// One parsed and self-verified identity generation.
#[derive(Debug, Clone)]
struct Parsed {
    record: IdentityRecord,
    predecessor_signature: Option<Bytes<SIGNATURE_LEN>>,
    signing_key: VerifyingKey,
    agreement_key: AgreementPublic,
}

/// Parses one signed identity and checks everything that does not need its neighbours: strict
/// encodings (outer and inner), field validity, key validity, the self signature.
fn parse_signed(bytes: &[u8]) -> Result<Parsed> {
    let signed: SignedIdentity = decode_bounded(bytes, MAX_SIGNED_IDENTITY_LEN)?;
    let record: IdentityRecord = decode(&signed.record)?;
    if !is_valid_user_name(&record.user_name)
        || (record.generation == 0)
            != (record.previous.is_none() && signed.predecessor_signature.is_none())
        || record.previous.is_none() != signed.predecessor_signature.is_none()
    {
        return Err(DecodeError::InvalidValue.into());
    }
    let signing_key = VerifyingKey::from_bytes(&record.signing_key.0)?;
    let agreement_key = AgreementPublic::from_bytes(&record.agreement_key.0)?;
    signing_key.verify(LABEL_IDENTITY, &signed.record, &signed.self_signature.0)?;
    Ok(Parsed {
        record,
        predecessor_signature: signed.predecessor_signature,
        signing_key,
        agreement_key,
    })
}

/// An identity whose whole chain verified (spec §6.6): the current generation's keys, and what is
/// needed to pin it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The user name.
    pub user_name: String,
    /// The current generation.
    pub generation: u64,
    /// The current Ed25519 public key.
    pub signing_key: VerifyingKey,
    /// The current X25519 public key.
    pub agreement_key: AgreementPublic,
    /// When the current generation was created.
    pub created: u64,
    /// The fingerprint of the current generation.
    pub fingerprint: Fingerprint,
    /// SHA-256 of the encoded current [`SignedIdentity`] (the `previous` of the next generation).
    pub head_hash: [u8; 32],
}

impl VerifiedIdentity {
    /// The pin to store for this identity once a person has compared its fingerprint, or on first
    /// use.
    #[must_use]
    pub fn pin(&self) -> IdentityPin {
        IdentityPin {
            user_name: self.user_name.clone(),
            generation: self.generation,
            fingerprint: self.fingerprint,
        }
    }
}

/// A pinned identity (spec §6.6): what a client remembers about a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityPin {
    /// The user name.
    pub user_name: String,
    /// The generation that was pinned.
    pub generation: u64,
    /// That generation's fingerprint.
    pub fingerprint: Fingerprint,
}

fn verify_chain_all<B: AsRef<[u8]>>(chain: &[B]) -> Result<Vec<Parsed>> {
    if chain.is_empty() {
        return Err(Error::InvalidArgument("empty identity chain"));
    }
    if chain.len() > MAX_CHAIN_LEN {
        return Err(Error::LimitExceeded {
            what: "identity chain length",
            limit: MAX_CHAIN_LEN as u64,
        });
    }
    let mut out: Vec<Parsed> = Vec::with_capacity(chain.len());
    for (i, bytes) in chain.iter().enumerate() {
        let bytes = bytes.as_ref();
        let p = parse_signed(bytes)?;
        if p.record.generation != i as u64 {
            return Err(Error::Binding("identity generation out of sequence"));
        }
        if let Some(prev) = out.last() {
            if p.record.user_name != prev.record.user_name {
                return Err(Error::Binding("user name changed within an identity chain"));
            }
            let prev_hash = primitives::sha256(chain[i - 1].as_ref());
            if p.record.previous.map(|h| h.0) != Some(prev_hash) {
                return Err(Error::Binding("identity previous hash mismatch"));
            }
            if p.record.created < prev.record.created {
                return Err(Error::Binding("identity created before its predecessor"));
            }
            if p.record.signing_key == prev.record.signing_key
                || p.record.agreement_key == prev.record.agreement_key
            {
                return Err(Error::Binding("identity keys reused across generations"));
            }
            let sig = p
                .predecessor_signature
                .ok_or(Error::Decode(DecodeError::InvalidValue))?;
            let record = encode(&p.record);
            prev.signing_key
                .verify(LABEL_IDENTITY_SUCCESSION, &record, &sig.0)?;
        }
        out.push(p);
    }
    Ok(out)
}

fn verified(p: &Parsed, bytes: &[u8]) -> VerifiedIdentity {
    VerifiedIdentity {
        user_name: p.record.user_name.clone(),
        generation: p.record.generation,
        signing_key: p.signing_key,
        agreement_key: p.agreement_key,
        created: p.record.created,
        fingerprint: Fingerprint::compute(
            &p.record.user_name,
            p.record.generation,
            &p.signing_key,
            &p.agreement_key,
        ),
        head_hash: primitives::sha256(bytes),
    }
}

/// Verifies an identity chain, generation 0 first (spec §6.6), and returns the current (last)
/// generation.
///
/// # Errors
/// [`Error::Decode`] for any encoding fault, [`Error::InvalidPublicKey`] for a weak or
/// non-canonical key, [`Error::BadSignature`] for a failed self or predecessor signature,
/// [`Error::Binding`] for a broken link (generation, user name, previous hash, time, reused
/// keys), [`Error::InvalidArgument`] for an empty chain, [`Error::LimitExceeded`] beyond
/// [`MAX_CHAIN_LEN`].
pub fn verify_chain<B: AsRef<[u8]>>(chain: &[B]) -> Result<VerifiedIdentity> {
    let all = verify_chain_all(chain)?;
    match (all.last(), chain.last()) {
        (Some(p), Some(b)) => Ok(verified(p, b.as_ref())),
        _ => Err(Error::InvalidArgument("empty identity chain")),
    }
}

/// Verifies an identity chain like [`verify_chain`] and returns every generation, generation 0
/// first, so that a caller can check a signature made by an older generation's key (spec §6.6).
///
/// # Errors
/// As [`verify_chain`].
pub fn verify_chain_generations<B: AsRef<[u8]>>(chain: &[B]) -> Result<Vec<VerifiedIdentity>> {
    let all = verify_chain_all(chain)?;
    Ok(all
        .iter()
        .zip(chain)
        .map(|(p, b)| verified(p, b.as_ref()))
        .collect())
}

/// Verifies `chain` and accepts it only if it extends the pinned identity: same user name, the
/// pinned generation present in the chain with the pinned fingerprint (spec §6.6). A chain that
/// stops before the pinned generation (a rollback) or forks from it is refused.
///
/// # Errors
/// As [`verify_chain`], and [`Error::Binding`] `("identity changed without a valid rotation
/// chain")` when the chain does not extend the pin.
pub fn verify_pinned<B: AsRef<[u8]>>(pin: &IdentityPin, chain: &[B]) -> Result<VerifiedIdentity> {
    const REFUSED: Error = Error::Binding("identity changed without a valid rotation chain");
    let head = verify_chain(chain)?;
    if head.user_name != pin.user_name {
        return Err(REFUSED);
    }
    let idx = usize::try_from(pin.generation).map_err(|_| REFUSED)?;
    let at_pin = chain.get(idx).ok_or(REFUSED)?;
    // Already verified above; re-parsing only recovers that generation's keys.
    let p = parse_signed(at_pin.as_ref())?;
    let fp = Fingerprint::compute(
        &p.record.user_name,
        p.record.generation,
        &p.signing_key,
        &p.agreement_key,
    );
    if fp != pin.fingerprint {
        return Err(REFUSED);
    }
    Ok(head)
}

fn sign_record(
    record: &IdentityRecord,
    keys: &IdentityKeys,
    predecessor: Option<&SigningKey>,
) -> Vec<u8> {
    let bytes = encode(record);
    let self_signature = Bytes(keys.signing.sign(LABEL_IDENTITY, &bytes));
    let predecessor_signature =
        predecessor.map(|k| Bytes(k.sign(LABEL_IDENTITY_SUCCESSION, &bytes)));
    encode(&SignedIdentity {
        record: ByteBuf::from(bytes),
        self_signature,
        predecessor_signature,
    })
}

/// Creates the self-signed identity of generation 0 (spec §6.5).
///
/// # Errors
/// [`Error::InvalidArgument`] for an invalid user name.
pub fn create_identity(keys: &IdentityKeys, user_name: &str, created: u64) -> Result<Vec<u8>> {
    check_user_name(user_name)?;
    let record = IdentityRecord {
        user_name: user_name.into(),
        generation: 0,
        signing_key: Bytes(keys.signing.verifying_key().to_bytes()),
        agreement_key: Bytes(keys.agreement.public_key().to_bytes()),
        created,
        previous: None,
    };
    Ok(sign_record(&record, keys, None))
}

/// Creates the next generation after `current` (the encoded [`SignedIdentity`] whose signing key
/// is `current_key`), signed by the new keys and by `current_key` (spec §6.5, §9.4).
///
/// # Errors
/// Those of parsing `current`; [`Error::Binding`] if `current_key` is not `current`'s signing key,
/// if `created` is before `current`'s, or if the new keys equal the current ones;
/// [`Error::LimitExceeded`] if the generation would overflow.
pub fn rotate_identity(
    current: &[u8],
    current_key: &SigningKey,
    new_keys: &IdentityKeys,
    created: u64,
) -> Result<Vec<u8>> {
    let cur = parse_signed(current)?;
    if cur.signing_key != current_key.verifying_key() {
        return Err(Error::Binding("signing key is not the current identity's"));
    }
    if created < cur.record.created {
        return Err(Error::Binding("identity created before its predecessor"));
    }
    let generation = cur
        .record
        .generation
        .checked_add(1)
        .ok_or(Error::LimitExceeded {
            what: "identity generation",
            limit: u64::MAX,
        })?;
    let record = IdentityRecord {
        user_name: cur.record.user_name.clone(),
        generation,
        signing_key: Bytes(new_keys.signing.verifying_key().to_bytes()),
        agreement_key: Bytes(new_keys.agreement.public_key().to_bytes()),
        created,
        previous: Some(Bytes(primitives::sha256(current))),
    };
    if record.signing_key == cur.record.signing_key
        || record.agreement_key == cur.record.agreement_key
    {
        return Err(Error::Binding("identity keys reused across generations"));
    }
    Ok(sign_record(&record, new_keys, Some(current_key)))
}

/// Parses one signed identity and checks it on its own (encodings, keys, self signature), without
/// its chain. Returns the record.
///
/// # Errors
/// As the per-record checks of [`verify_chain`].
pub fn parse_signed_identity(bytes: &[u8]) -> Result<IdentityRecord> {
    parse_signed(bytes).map(|p| p.record)
}
