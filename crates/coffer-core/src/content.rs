//! Spec §4, "Content": file bodies in 64 KiB committed STREAM chunks.
//!
//! ```text
//! salt        = random(32)
//! okm         = HKDF-SHA-256(ikm = file_key, salt = salt, info = "coffer/v1/content/payload" || 0x00, L = 64)
//! payload_key = okm[0..32]
//! commitment  = okm[32..64]
//! header      = encode(ContentHeader { salt, commitment })          ; always 71 bytes
//! nonce_i     = uint88be(i) || (0x01 if chunk i is the last, else 0x00)
//! chunk_ct_i  = ChaCha20-Poly1305(payload_key, nonce_i, aad = header, chunk_i)
//! ciphertext  = header || chunk_ct_0 || chunk_ct_1 || ...
//! ```
//!
//! Plaintext is split into [`CHUNK_LEN`]-byte chunks; the last chunk may be short and is empty
//! only when the whole plaintext is. Every ciphertext length maps to at most one plaintext length
//! ([`plaintext_len`]), so lengths are checked before any cryptography, and chunk `i` of any
//! ciphertext starts at byte `HEADER_LEN + i * ENCRYPTED_CHUNK_LEN`, which gives random access
//! ([`ciphertext_range`], [`decrypt_range`]).
//!
//! ## Entry points
//!
//! - one shot: [`encrypt`] / [`decrypt`], or [`encrypt_into`] / [`decrypt_into`] with a caller's
//!   buffer; large inputs (at least [`PARALLEL_THRESHOLD`] bytes) run across all cores when the
//!   `parallel` feature is on, producing the same bytes as the sequential path;
//! - in place, without a second buffer: [`encrypt_in_place`] / [`decrypt_in_place`] (the fastest
//!   single-threaded path: the out-of-place functions must copy every chunk once);
//! - streaming with bounded memory: [`Encryptor`] and [`Decryptor`];
//! - whole chunks at known positions, in place: [`ContentSealer`] and [`ContentOpener`] (parallel
//!   uploads by part, downloads decrypted as they arrive without a copy per chunk);
//! - random access: [`ciphertext_range`] and [`decrypt_range`].
//!
//! ## Failure classes
//!
//! Decoding the header fails with [`Error::Decode`]. A ciphertext length that no plaintext
//! produces, a ciphertext that stops at a chunk boundary before its final chunk, and data after
//! the final chunk fail with [`Error::Truncated`]. Everything else, a failed key commitment or a
//! chunk that does not authenticate, fails with [`Error::DecryptionFailed`]. When several chunks
//! are bad, the error is the one of the first bad chunk in order, on every path.

use alloc::vec;
use alloc::vec::Vec;
use core::ops::Range;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize as _, Zeroizing};

use crate::encoding::{self, Bytes};
use crate::error::{Error, Result};
use crate::primitives::{self, SecretKey, TAG_LEN};

/// Plaintext bytes per chunk: 64 KiB.
pub const CHUNK_LEN: usize = 65_536;
/// Ciphertext bytes per full chunk: the chunk and its Poly1305 tag.
pub const ENCRYPTED_CHUNK_LEN: usize = CHUNK_LEN + TAG_LEN;
/// Length of the encoded [`ContentHeader`]: `0x84 0x01 0x01 0x58 0x20 salt 0x58 0x20 commitment`.
pub const HEADER_LEN: usize = 71;
/// Length of the header salt.
pub const SALT_LEN: usize = 32;
/// Length of the key commitment.
pub const COMMITMENT_LEN: usize = 32;
/// HKDF label of the payload key and commitment derivation.
pub const PAYLOAD_LABEL: &str = "coffer/v1/content/payload";
/// Plaintext (or ciphertext) size from which [`Parallelism::Auto`] uses every core.
pub const PARALLEL_THRESHOLD: usize = 1 << 20;

const CHUNK_LEN_U64: u64 = CHUNK_LEN as u64;
const ENCRYPTED_CHUNK_LEN_U64: u64 = ENCRYPTED_CHUNK_LEN as u64;
const HEADER_LEN_U64: u64 = HEADER_LEN as u64;
const TAG_LEN_U64: u64 = TAG_LEN as u64;

crate::cbor_struct! {
    /// The content header (spec §4.2): the first [`HEADER_LEN`] bytes of every content
    /// ciphertext, and the associated data of every chunk.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ContentHeader (type = 1, version = 1) {
        /// The per-encryption HKDF salt, `random(32)`.
        pub salt: Bytes<SALT_LEN>,
        /// The key commitment, `okm[32..64]`.
        pub commitment: Bytes<COMMITMENT_LEN>,
    }
}

/// Whether one-shot operations may use several threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// Use every core for inputs of at least [`PARALLEL_THRESHOLD`] bytes when the `parallel`
    /// feature is enabled; otherwise run on the calling thread.
    #[default]
    Auto,
    /// Always run on the calling thread.
    Sequential,
}

impl Parallelism {
    #[cfg(feature = "parallel")]
    fn use_threads(self, len: usize) -> bool {
        self == Parallelism::Auto && len >= PARALLEL_THRESHOLD
    }
}

/// The payload key and commitment derived from a file key and a salt.
struct PayloadKey {
    key: Zeroizing<[u8; 32]>,
    commitment: [u8; COMMITMENT_LEN],
}

fn derive(file_key: &SecretKey, salt: &[u8; SALT_LEN]) -> PayloadKey {
    let mut okm = Zeroizing::new([0u8; 64]);
    primitives::hkdf(file_key.expose(), salt, PAYLOAD_LABEL, &[], &mut okm[..]);
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&okm[..32]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    commitment.copy_from_slice(&okm[32..]);
    PayloadKey { key, commitment }
}

/// The payload key and the key commitment of spec §4.3 for `file_key` and `salt`.
///
/// Exposed for test vectors and interoperability checks; [`encrypt`] and [`decrypt`] derive them
/// internally.
#[must_use]
pub fn payload_key(file_key: &SecretKey, salt: &[u8; SALT_LEN]) -> (SecretKey, [u8; 32]) {
    let pk = derive(file_key, salt);
    (SecretKey::from_bytes(*pk.key), pk.commitment)
}

fn encode_header(header: &ContentHeader) -> [u8; HEADER_LEN] {
    let v = encoding::encode(header);
    let mut out = [0u8; HEADER_LEN];
    // The encoding of a ContentHeader always has HEADER_LEN bytes (tested).
    out.copy_from_slice(&v);
    out
}

/// Builds a fresh header: draws the salt and derives the keys.
fn new_header(
    file_key: &SecretKey,
    rng: &mut impl CryptoRngCore,
) -> (PayloadKey, [u8; HEADER_LEN]) {
    let salt: [u8; SALT_LEN] = primitives::random_array(rng);
    let pk = derive(file_key, &salt);
    let header = encode_header(&ContentHeader {
        salt: Bytes(salt),
        commitment: Bytes(pk.commitment),
    });
    (pk, header)
}

/// Parses the header bytes (exactly [`HEADER_LEN`] of them).
fn parse_header(bytes: &[u8]) -> Result<ContentHeader> {
    if bytes.len() != HEADER_LEN {
        return Err(Error::Truncated);
    }
    Ok(encoding::decode::<ContentHeader>(bytes)?)
}

/// Derives the payload key and checks the commitment in constant time.
fn open_header(file_key: &SecretKey, header: &ContentHeader) -> Result<PayloadKey> {
    let pk = derive(file_key, &header.salt.0);
    if primitives::ct_eq(&pk.commitment, &header.commitment.0) {
        Ok(pk)
    } else {
        Err(Error::DecryptionFailed)
    }
}

fn chunk_nonce(index: u64, last: bool) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[3..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    n
}

/// Encrypts chunk `index` in place and returns its tag.
fn seal_chunk(
    key: &PayloadKey,
    aad: &[u8],
    index: u64,
    last: bool,
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    primitives::chacha20poly1305_seal_in_place(&key.key, &chunk_nonce(index, last), aad, buf)
}

/// Decrypts chunk `index` in place. On failure `buf` holds no plaintext.
///
/// A chunk that does not authenticate with the expected last-chunk flag but does with the other
/// one is a genuine chunk at a position where the stream was cut or extended:
/// [`Error::Truncated`]. Anything else is [`Error::DecryptionFailed`].
fn open_chunk(
    key: &PayloadKey,
    aad: &[u8],
    index: u64,
    last: bool,
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<()> {
    let try_open = |flag: bool, buf: &mut [u8]| {
        primitives::chacha20poly1305_open_in_place(
            &key.key,
            &chunk_nonce(index, flag),
            aad,
            buf,
            tag,
        )
    };
    // ChaCha20-Poly1305 verifies the tag before decrypting: on failure `buf` is untouched.
    if try_open(last, buf).is_ok() {
        return Ok(());
    }
    if try_open(!last, buf).is_ok() {
        buf.zeroize();
        return Err(Error::Truncated);
    }
    Err(Error::DecryptionFailed)
}

/// Number of chunks of a plaintext of `len` bytes: `max(1, ceil(len / CHUNK_LEN))`.
fn chunk_count(len: u64) -> u64 {
    if len == 0 {
        1
    } else {
        len.div_ceil(CHUNK_LEN_U64)
    }
}

/// The ciphertext length of a plaintext of `plaintext_len` bytes:
/// `HEADER_LEN + plaintext_len + TAG_LEN * max(1, ceil(plaintext_len / CHUNK_LEN))`.
///
/// # Errors
/// [`Error::InvalidArgument`] if the result does not fit in a `u64`.
pub fn ciphertext_len(plaintext_len: u64) -> Result<u64> {
    chunk_count(plaintext_len)
        .checked_mul(TAG_LEN_U64)
        .and_then(|t| t.checked_add(plaintext_len))
        .and_then(|t| t.checked_add(HEADER_LEN_U64))
        .ok_or(Error::InvalidArgument("content too large"))
}

/// The plaintext length of a ciphertext of `ciphertext_len` bytes (spec §4.5).
///
/// # Errors
/// [`Error::Truncated`] if no plaintext encrypts to that length: shorter than a header and one
/// tag, or ending in a partial chunk of at most [`TAG_LEN`] bytes after a full chunk.
pub fn plaintext_len(ciphertext_len: u64) -> Result<u64> {
    let body = ciphertext_len
        .checked_sub(HEADER_LEN_U64)
        .ok_or(Error::Truncated)?;
    let full = body / ENCRYPTED_CHUNK_LEN_U64;
    let rem = body % ENCRYPTED_CHUNK_LEN_U64;
    if rem == 0 {
        if full == 0 {
            return Err(Error::Truncated);
        }
        Ok(full * CHUNK_LEN_U64)
    } else if rem > TAG_LEN_U64 || (full == 0 && rem == TAG_LEN_U64) {
        Ok(full * CHUNK_LEN_U64 + (rem - TAG_LEN_U64))
    } else {
        Err(Error::Truncated)
    }
}

fn to_usize(n: u64) -> Result<usize> {
    usize::try_from(n).map_err(|_| Error::LimitExceeded {
        what: "content length",
        limit: usize::MAX as u64,
    })
}

// ---------------------------------------------------------------------------------------------
// One shot

/// Encrypts `plaintext` under `file_key`, drawing the 32-byte salt from `rng`.
///
/// Inputs of at least [`PARALLEL_THRESHOLD`] bytes are encrypted on every core when the
/// `parallel` feature is on; the output is the same either way.
///
/// # Panics
/// Only if the ciphertext cannot be allocated, as any `Vec` allocation.
#[must_use]
pub fn encrypt(file_key: &SecretKey, plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
    let len = ciphertext_len(plaintext.len() as u64)
        .and_then(to_usize)
        .unwrap_or(usize::MAX);
    let mut out = vec![0u8; len];
    let (pk, header) = new_header(file_key, rng);
    encrypt_body(&pk, &header, plaintext, &mut out, Parallelism::Auto);
    out
}

/// Encrypts `plaintext` into `out`, which must be exactly [`ciphertext_len`] bytes long.
///
/// # Errors
/// [`Error::InvalidArgument`] if `out` has the wrong length (nothing is drawn from `rng`).
pub fn encrypt_into(
    file_key: &SecretKey,
    plaintext: &[u8],
    out: &mut [u8],
    parallelism: Parallelism,
    rng: &mut impl CryptoRngCore,
) -> Result<()> {
    if ciphertext_len(plaintext.len() as u64)? != out.len() as u64 {
        return Err(Error::InvalidArgument("output buffer length"));
    }
    let (pk, header) = new_header(file_key, rng);
    encrypt_body(&pk, &header, plaintext, out, parallelism);
    Ok(())
}

/// Writes header and chunks into `out` (of exactly the ciphertext length).
fn encrypt_body(
    pk: &PayloadKey,
    header: &[u8; HEADER_LEN],
    plaintext: &[u8],
    out: &mut [u8],
    parallelism: Parallelism,
) {
    let (head, body) = out.split_at_mut(HEADER_LEN);
    head.copy_from_slice(header);
    if plaintext.is_empty() {
        let tag = seal_chunk(pk, header, 0, true, &mut []);
        body.copy_from_slice(&tag);
        return;
    }
    let last = chunk_count(plaintext.len() as u64) - 1;
    let one = |i: usize, pt: &[u8], ct: &mut [u8]| {
        let (b, t) = ct.split_at_mut(pt.len());
        b.copy_from_slice(pt);
        let i = i as u64;
        let tag = seal_chunk(pk, header, i, i == last, b);
        t.copy_from_slice(&tag);
    };
    #[cfg(feature = "parallel")]
    if parallelism.use_threads(plaintext.len()) {
        use rayon::prelude::*;
        plaintext
            .par_chunks(CHUNK_LEN)
            .zip(body.par_chunks_mut(ENCRYPTED_CHUNK_LEN))
            .enumerate()
            .with_min_len(2)
            .for_each(|(i, (pt, ct))| one(i, pt, ct));
        return;
    }
    let _ = parallelism;
    for (i, (pt, ct)) in plaintext
        .chunks(CHUNK_LEN)
        .zip(body.chunks_mut(ENCRYPTED_CHUNK_LEN))
        .enumerate()
    {
        one(i, pt, ct);
    }
}

/// Checks header and length, then derives and checks the commitment (spec §4.6 steps 1–4).
fn open_prefix(file_key: &SecretKey, ciphertext: &[u8]) -> Result<(PayloadKey, u64)> {
    if ciphertext.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    let header = parse_header(&ciphertext[..HEADER_LEN])?;
    let pt_len = plaintext_len(ciphertext.len() as u64)?;
    let pk = open_header(file_key, &header)?;
    Ok((pk, pt_len))
}

/// Decrypts a whole content ciphertext.
///
/// Inputs of at least [`PARALLEL_THRESHOLD`] bytes are decrypted on every core when the
/// `parallel` feature is on. The plaintext is returned as a plain `Vec` (file bodies are the
/// caller's data, often large); on failure every partially decrypted byte is zeroized before
/// the error is returned.
///
/// # Errors
/// [`Error::Truncated`], [`Error::Decode`] or [`Error::DecryptionFailed`] as described in the
/// module documentation.
pub fn decrypt(file_key: &SecretKey, ciphertext: &[u8]) -> Result<Vec<u8>> {
    let (pk, pt_len) = open_prefix(file_key, ciphertext)?;
    let mut out = vec![0u8; to_usize(pt_len)?];
    decrypt_body(&pk, ciphertext, &mut out, Parallelism::Auto)?;
    Ok(out)
}

/// Decrypts a whole content ciphertext into `out`, which must be exactly [`plaintext_len`] bytes.
/// On failure `out` is zeroized.
///
/// # Errors
/// As [`decrypt`], and [`Error::InvalidArgument`] if `out` has the wrong length.
pub fn decrypt_into(
    file_key: &SecretKey,
    ciphertext: &[u8],
    out: &mut [u8],
    parallelism: Parallelism,
) -> Result<()> {
    let (pk, pt_len) = open_prefix(file_key, ciphertext)?;
    if pt_len != out.len() as u64 {
        return Err(Error::InvalidArgument("output buffer length"));
    }
    decrypt_body(&pk, ciphertext, out, parallelism)
}

fn decrypt_one(
    pk: &PayloadKey,
    aad: &[u8],
    i: u64,
    last: bool,
    ct: &[u8],
    out: &mut [u8],
) -> Result<()> {
    let (body, tag) = ct.split_at(ct.len() - TAG_LEN);
    let tag: &[u8; TAG_LEN] = tag.try_into().map_err(|_| Error::Internal("tag length"))?;
    out.copy_from_slice(body);
    open_chunk(pk, aad, i, last, out, tag)
}

/// Decrypts every chunk of a length-checked ciphertext into `out`.
fn decrypt_body(
    pk: &PayloadKey,
    ciphertext: &[u8],
    out: &mut [u8],
    parallelism: Parallelism,
) -> Result<()> {
    let (header, body) = ciphertext.split_at(HEADER_LEN);
    let last = chunk_count(out.len() as u64) - 1;
    let result = if out.is_empty() {
        decrypt_one(pk, header, 0, true, body, &mut [])
    } else {
        decrypt_chunks(pk, header, body, out, last, parallelism)
    };
    if result.is_err() {
        out.zeroize();
    }
    result
}

fn decrypt_chunks(
    pk: &PayloadKey,
    header: &[u8],
    body: &[u8],
    out: &mut [u8],
    last: u64,
    parallelism: Parallelism,
) -> Result<()> {
    #[cfg(feature = "parallel")]
    if parallelism.use_threads(out.len()) {
        use rayon::prelude::*;
        // `find_map_first` reports the first failing chunk in order, like the sequential path.
        let failure = out
            .par_chunks_mut(CHUNK_LEN)
            .zip(body.par_chunks(ENCRYPTED_CHUNK_LEN))
            .enumerate()
            .with_min_len(2)
            .find_map_first(|(i, (o, c))| {
                let i = i as u64;
                decrypt_one(pk, header, i, i == last, c, o).err()
            });
        return failure.map_or(Ok(()), Err);
    }
    let _ = parallelism;
    for (i, (o, c)) in out
        .chunks_mut(CHUNK_LEN)
        .zip(body.chunks(ENCRYPTED_CHUNK_LEN))
        .enumerate()
    {
        let i = i as u64;
        decrypt_one(pk, header, i, i == last, c, o)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// In place

/// Encrypts the plaintext in `buf` in place: on return `buf` holds the ciphertext.
///
/// This is the zero-copy path: each chunk is moved to its ciphertext position while it is in
/// cache and encrypted there, so no second buffer is touched. Reserve
/// [`ciphertext_len`] bytes of capacity beforehand to avoid a reallocation. With
/// [`Parallelism::Auto`] and a large input, all chunks are moved first and then encrypted on every
/// core. The output equals [`encrypt`]'s for the same salt.
///
/// # Errors
/// [`Error::InvalidArgument`] if the ciphertext length overflows (nothing is drawn from `rng`).
pub fn encrypt_in_place(
    file_key: &SecretKey,
    buf: &mut Vec<u8>,
    parallelism: Parallelism,
    rng: &mut impl CryptoRngCore,
) -> Result<()> {
    let n = buf.len();
    let ct_len = to_usize(ciphertext_len(n as u64)?)?;
    let (pk, header) = new_header(file_key, rng);
    buf.resize(ct_len, 0);
    let m = chunk_count(n as u64);
    let last = m - 1;
    // Chunk i moves from i * CHUNK_LEN to HEADER_LEN + i * ENCRYPTED_CHUNK_LEN, a higher address:
    // moving the chunks from the last to the first never overwrites a chunk not yet moved.
    let locate = |i: u64| {
        let i = i as usize;
        let src = i * CHUNK_LEN;
        let len = CHUNK_LEN.min(n - src);
        (src, HEADER_LEN + i * ENCRYPTED_CHUNK_LEN, len)
    };
    #[cfg(feature = "parallel")]
    if parallelism.use_threads(n) {
        use rayon::prelude::*;
        for i in (0..m).rev() {
            let (src, dst, len) = locate(i);
            buf.copy_within(src..src + len, dst);
        }
        buf[..HEADER_LEN].copy_from_slice(&header);
        buf[HEADER_LEN..]
            .par_chunks_mut(ENCRYPTED_CHUNK_LEN)
            .enumerate()
            .with_min_len(2)
            .for_each(|(i, c)| {
                let (b, t) = c.split_at_mut(c.len() - TAG_LEN);
                let i = i as u64;
                let tag = seal_chunk(&pk, &header, i, i == last, b);
                t.copy_from_slice(&tag);
            });
        return Ok(());
    }
    let _ = parallelism;
    for i in (0..m).rev() {
        let (src, dst, len) = locate(i);
        buf.copy_within(src..src + len, dst);
        let tag = seal_chunk(&pk, &header, i, i == last, &mut buf[dst..dst + len]);
        buf[dst + len..dst + len + TAG_LEN].copy_from_slice(&tag);
    }
    buf[..HEADER_LEN].copy_from_slice(&header);
    Ok(())
}

/// Decrypts the ciphertext in `buf` in place: on success `buf` holds the plaintext.
///
/// Each chunk is authenticated and decrypted where it lies, then moved to its plaintext position
/// while in cache. On failure `buf` is zeroized and emptied (the ciphertext is lost), so no
/// unauthenticated or partial plaintext remains.
///
/// # Errors
/// As [`decrypt`].
pub fn decrypt_in_place(
    file_key: &SecretKey,
    buf: &mut Vec<u8>,
    parallelism: Parallelism,
) -> Result<()> {
    let result = open_prefix(file_key, buf).and_then(|(pk, pt_len)| {
        let pt_len = to_usize(pt_len)?;
        decrypt_in_place_inner(&pk, buf, pt_len, parallelism)?;
        Ok(pt_len)
    });
    match result {
        Ok(pt_len) => {
            buf.truncate(pt_len);
            Ok(())
        }
        Err(e) => {
            buf.zeroize();
            Err(e)
        }
    }
}

fn decrypt_in_place_inner(
    pk: &PayloadKey,
    buf: &mut [u8],
    pt_len: usize,
    parallelism: Parallelism,
) -> Result<()> {
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(&buf[..HEADER_LEN]);
    let m = chunk_count(pt_len as u64);
    let last = m - 1;
    let open_at = |i: u64, c: &mut [u8]| {
        let (b, t) = c.split_at_mut(c.len() - TAG_LEN);
        let tag: [u8; TAG_LEN] = (&*t)
            .try_into()
            .map_err(|_| Error::Internal("tag length"))?;
        open_chunk(pk, &header, i, i == last, b, &tag)
    };
    // Chunk i moves from HEADER_LEN + i * ENCRYPTED_CHUNK_LEN down to i * CHUNK_LEN: moving
    // chunks in order never overwrites a chunk not yet moved.
    let locate = |i: u64| {
        let i = i as usize;
        let len = CHUNK_LEN.min(pt_len - i * CHUNK_LEN);
        (HEADER_LEN + i * ENCRYPTED_CHUNK_LEN, i * CHUNK_LEN, len)
    };
    #[cfg(feature = "parallel")]
    if parallelism.use_threads(pt_len) {
        use rayon::prelude::*;
        let failure = buf[HEADER_LEN..]
            .par_chunks_mut(ENCRYPTED_CHUNK_LEN)
            .enumerate()
            .with_min_len(2)
            .find_map_first(|(i, c)| open_at(i as u64, c).err());
        if let Some(e) = failure {
            return Err(e);
        }
        for i in 0..m {
            let (src, dst, len) = locate(i);
            buf.copy_within(src..src + len, dst);
        }
        return Ok(());
    }
    let _ = parallelism;
    for i in 0..m {
        let (src, dst, len) = locate(i);
        open_at(i, &mut buf[src..src + len + TAG_LEN])?;
        buf.copy_within(src..src + len, dst);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Streaming

/// Streaming encryption with bounded memory (one chunk of buffer).
///
/// Push plaintext with [`Encryptor::update`] and end with [`Encryptor::finish`]; ciphertext is
/// appended to the caller's `Vec`. The concatenated output equals [`encrypt`]'s for the same
/// plaintext and salt, however the input is split. A full chunk is encrypted as soon as the
/// first byte after it arrives (only then is it known not to be the last one).
pub struct Encryptor {
    key: PayloadKey,
    header: [u8; HEADER_LEN],
    header_sent: bool,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
}

impl core::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Encryptor")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// Starts encrypting under `file_key`, drawing the salt from `rng`.
    pub fn new(file_key: &SecretKey, rng: &mut impl CryptoRngCore) -> Self {
        let (key, header) = new_header(file_key, rng);
        Encryptor {
            key,
            header,
            header_sent: false,
            buf: Zeroizing::new(Vec::with_capacity(CHUNK_LEN)),
            index: 0,
        }
    }

    /// The encoded header (the first [`HEADER_LEN`] bytes of the output).
    #[must_use]
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    fn send_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_sent {
            out.extend_from_slice(&self.header);
            self.header_sent = true;
        }
    }

    /// Encrypts `plain` as the non-final chunk `self.index`, appending it to `out`.
    fn emit(&mut self, plain: Option<&[u8]>, out: &mut Vec<u8>) {
        let start = out.len();
        match plain {
            Some(p) => out.extend_from_slice(p),
            None => out.extend_from_slice(&self.buf),
        }
        let tag = seal_chunk(
            &self.key,
            &self.header,
            self.index,
            false,
            &mut out[start..],
        );
        out.extend_from_slice(&tag);
        self.index += 1;
    }

    /// Pushes plaintext; appends whatever ciphertext is ready to `out`.
    pub fn update(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        self.send_header(out);
        while !input.is_empty() {
            if self.buf.len() == CHUNK_LEN {
                // A full buffered chunk with more input behind it: not the last one.
                self.emit(None, out);
                self.buf.zeroize();
            }
            if self.buf.is_empty() && input.len() > CHUNK_LEN {
                // Fast path: a full chunk with more input behind it, straight from the input.
                let (chunk, rest) = input.split_at(CHUNK_LEN);
                self.emit(Some(chunk), out);
                input = rest;
                continue;
            }
            let take = (CHUNK_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
    }

    /// Encrypts the buffered data as the final chunk and appends it to `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) {
        self.send_header(out);
        let start = out.len();
        out.extend_from_slice(&self.buf);
        let tag = seal_chunk(&self.key, &self.header, self.index, true, &mut out[start..]);
        out.extend_from_slice(&tag);
    }
}

/// Random-access encryption under a fixed header (spec §4, §11.9.1).
///
/// Given the file key, the header salt and the plaintext length, any run of whole chunks can be
/// encrypted on its own, in any order and on any thread, and the result is byte-identical to the
/// same chunks of [`encrypt`]'s output for that salt. This is what a resumable, parallel upload
/// needs: each part is encrypted from its own plaintext chunks, and a re-sent part is the same
/// ciphertext (the caller MUST make sure the plaintext it re-encrypts is unchanged, spec
/// §11.9.1, or nonces are reused).
pub struct ContentSealer {
    key: PayloadKey,
    header: [u8; HEADER_LEN],
    plaintext_len: u64,
}

impl core::fmt::Debug for ContentSealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ContentSealer")
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl ContentSealer {
    /// Draws a fresh header salt.
    pub fn new_salt(rng: &mut impl CryptoRngCore) -> [u8; SALT_LEN] {
        primitives::random_array(rng)
    }

    /// A sealer for a plaintext of `plaintext_len` bytes under `file_key` and `salt`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the ciphertext length overflows.
    pub fn new(file_key: &SecretKey, salt: &[u8; SALT_LEN], plaintext_len: u64) -> Result<Self> {
        ciphertext_len(plaintext_len)?;
        let pk = derive(file_key, salt);
        let header = encode_header(&ContentHeader {
            salt: Bytes(*salt),
            commitment: Bytes(pk.commitment),
        });
        Ok(ContentSealer {
            key: pk,
            header,
            plaintext_len,
        })
    }

    /// The encoded header: ciphertext bytes `0..HEADER_LEN`.
    #[must_use]
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// The whole ciphertext's length.
    #[must_use]
    pub fn ciphertext_len(&self) -> u64 {
        // Checked in `new`.
        ciphertext_len(self.plaintext_len).unwrap_or(u64::MAX)
    }

    /// The number of chunks: `max(1, ceil(plaintext_len / CHUNK_LEN))`.
    #[must_use]
    pub fn chunk_count(&self) -> u64 {
        chunk_count(self.plaintext_len)
    }

    /// Encrypts in place the plaintext of chunks `first_chunk..` held in `buf`: on return `buf`
    /// holds their ciphertext (each chunk followed by its tag), which starts at ciphertext offset
    /// `HEADER_LEN + first_chunk * ENCRYPTED_CHUNK_LEN`. `buf` must start at plaintext offset
    /// `first_chunk * CHUNK_LEN` and hold whole chunks: every one `CHUNK_LEN` bytes except the
    /// file's final chunk, which must be complete too (an empty file's single chunk is empty).
    ///
    /// This moves each chunk to its ciphertext position first; a reader that can place the
    /// plaintext there itself saves that copy with [`ContentSealer::seal_chunks_in_layout`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the chunks are not whole or lie outside the plaintext.
    pub fn seal_chunks_in_place(&self, first_chunk: u64, buf: &mut Vec<u8>) -> Result<()> {
        let start = first_chunk
            .checked_mul(CHUNK_LEN_U64)
            .ok_or(Error::InvalidArgument("chunk index"))?;
        if first_chunk >= chunk_count(self.plaintext_len) {
            return Err(Error::InvalidArgument("chunk index past the end"));
        }
        let n = buf.len() as u64;
        let remaining = self.plaintext_len - start;
        let m = if n == 0 { 1 } else { n.div_ceil(CHUNK_LEN_U64) };
        let whole = n == remaining.min(m * CHUNK_LEN_U64);
        if !whole || (n == 0 && remaining != 0) {
            return Err(Error::InvalidArgument("not whole chunks of the plaintext"));
        }
        let n = buf.len();
        let m = to_usize(m)?;
        buf.resize(n + m * TAG_LEN, 0);
        for j in (0..m).rev() {
            let src = j * CHUNK_LEN;
            let len = CHUNK_LEN.min(n - src);
            buf.copy_within(src..src + len, j * ENCRYPTED_CHUNK_LEN);
        }
        self.seal_chunks_in_layout(first_chunk, buf)
    }

    /// Encrypts in place chunks `first_chunk..` laid out as their ciphertext will be: `buf`
    /// stands for ciphertext offsets `HEADER_LEN + first_chunk * ENCRYPTED_CHUNK_LEN` onwards
    /// and holds whole chunks (each [`ENCRYPTED_CHUNK_LEN`] bytes but the file's final one, which
    /// must be complete too), each being the chunk's plaintext followed by [`TAG_LEN`] bytes of
    /// room for its tag (their contents do not matter). On return `buf` holds the chunks'
    /// ciphertext, byte-identical to the same range of [`encrypt`]'s output for this salt.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `buf` is not whole chunks of this content's ciphertext
    /// (`buf` is left as it was).
    pub fn seal_chunks_in_layout(&self, first_chunk: u64, buf: &mut [u8]) -> Result<()> {
        let last_of_file = run_check(
            first_chunk,
            buf.len(),
            self.ciphertext_len(),
            chunk_count(self.plaintext_len),
        )?;
        for (i, chunk) in (first_chunk..).zip(buf.chunks_mut(ENCRYPTED_CHUNK_LEN)) {
            // Every chunk of a checked run holds at least its tag.
            let (body, tag) = chunk
                .split_last_chunk_mut::<TAG_LEN>()
                .ok_or(Error::Internal("chunk shorter than its tag"))?;
            *tag = seal_chunk(&self.key, &self.header, i, i == last_of_file, body);
        }
        Ok(())
    }
}

/// Checks that `n` bytes from ciphertext offset `HEADER_LEN + first_chunk * ENCRYPTED_CHUNK_LEN`
/// are whole chunks of a ciphertext of `ciphertext_len` bytes and `total` chunks (each
/// [`ENCRYPTED_CHUNK_LEN`] bytes but the final one, which must be complete too). Returns the
/// index of the file's final chunk.
fn run_check(first_chunk: u64, n: usize, ciphertext_len: u64, total: u64) -> Result<u64> {
    let n = n as u64;
    let m = n.div_ceil(ENCRYPTED_CHUNK_LEN_U64);
    let start = first_chunk
        .checked_mul(ENCRYPTED_CHUNK_LEN_U64)
        .and_then(|s| s.checked_add(HEADER_LEN_U64))
        .ok_or(Error::InvalidArgument("chunk index"))?;
    let end = first_chunk
        .checked_add(m)
        .and_then(|e| e.checked_mul(ENCRYPTED_CHUNK_LEN_U64))
        .and_then(|e| e.checked_add(HEADER_LEN_U64))
        .ok_or(Error::InvalidArgument("chunk index"))?
        .min(ciphertext_len);
    if n == 0 || first_chunk >= total || start.checked_add(n) != Some(end) {
        return Err(Error::InvalidArgument("not whole chunks of the ciphertext"));
    }
    Ok(total - 1)
}

/// Decryption of whole chunks in place, at positions the caller knows: the reading counterpart
/// of [`ContentSealer`], for a reader that knows the ciphertext's length from an authenticated
/// record (spec §4.8) and receives the ciphertext in pieces.
///
/// [`ContentOpener::new`] checks the header's key commitment; every call to
/// [`ContentOpener::open_chunks_in_place`] then authenticates and decrypts a run of whole chunks
/// where they lie, with no second buffer and no copy beyond moving each plaintext chunk down over
/// its tag. The last chunk of the file is recognised from the ciphertext length, so a caller who
/// streams the whole content MUST also check that it received exactly that many bytes: a
/// ciphertext cut at a chunk boundary is otherwise only noticed because the final chunk never
/// arrives.
pub struct ContentOpener {
    key: PayloadKey,
    header: [u8; HEADER_LEN],
    ciphertext_len: u64,
    plaintext_len: u64,
}

impl core::fmt::Debug for ContentOpener {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ContentOpener")
            .field("ciphertext_len", &self.ciphertext_len)
            .finish_non_exhaustive()
    }
}

impl ContentOpener {
    /// An opener for the content of `ciphertext_len` bytes whose first [`HEADER_LEN`] bytes are
    /// `header`, under `file_key`.
    ///
    /// # Errors
    /// [`Error::Truncated`] for an impossible `ciphertext_len` or a header that is not
    /// [`HEADER_LEN`] bytes; [`Error::Decode`] for a bad header; [`Error::DecryptionFailed`] when
    /// the key commitment fails.
    pub fn new(file_key: &SecretKey, header: &[u8], ciphertext_len: u64) -> Result<Self> {
        let plaintext_len = plaintext_len(ciphertext_len)?;
        let key = open_header(file_key, &parse_header(header)?)?;
        let mut h = [0u8; HEADER_LEN];
        h.copy_from_slice(header);
        Ok(ContentOpener {
            key,
            header: h,
            ciphertext_len,
            plaintext_len,
        })
    }

    /// The plaintext's length.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Authenticates and decrypts in place the ciphertext of chunks `first_chunk..` held in
    /// `buf`, which starts at ciphertext offset `HEADER_LEN + first_chunk * ENCRYPTED_CHUNK_LEN`
    /// and holds whole chunks (each [`ENCRYPTED_CHUNK_LEN`] bytes but the file's final one,
    /// which must be complete too). On success `buf` holds their plaintext, which starts at
    /// plaintext offset `first_chunk * CHUNK_LEN`. Chunks are opened in order; on failure `buf`
    /// is zeroized and emptied, so no plaintext of the run is released.
    ///
    /// This moves each chunk's plaintext down over the tags before it; a writer that can take
    /// the plaintext where it lies (a vectored write) saves that copy with
    /// [`ContentOpener::open_chunks_in_layout`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `buf` is not whole chunks of this ciphertext (`buf` is left
    /// as it was); [`Error::DecryptionFailed`] or [`Error::Truncated`] for a chunk that does not
    /// authenticate at its position.
    pub fn open_chunks_in_place(&self, first_chunk: u64, buf: &mut Vec<u8>) -> Result<()> {
        if let Err(e) = self.open_chunks_in_layout(first_chunk, buf) {
            if !matches!(e, Error::InvalidArgument(_)) {
                buf.clear();
            }
            return Err(e);
        }
        let mut out = 0usize;
        let mut pos = 0usize;
        while pos < buf.len() {
            let body_len = ENCRYPTED_CHUNK_LEN.min(buf.len() - pos) - TAG_LEN;
            buf.copy_within(pos..pos + body_len, out);
            out += body_len;
            pos += body_len + TAG_LEN;
        }
        buf.truncate(out);
        Ok(())
    }

    /// Authenticates and decrypts in place the chunks `first_chunk..` held in `buf`, laid out
    /// as for [`ContentOpener::open_chunks_in_place`], without moving anything: on success each
    /// chunk's plaintext is where its ciphertext was, followed by its (now meaningless) tag.
    /// Chunks are opened in order; on failure all of `buf` is zeroized, so no plaintext of the
    /// run is released.
    ///
    /// # Errors
    /// As [`ContentOpener::open_chunks_in_place`].
    pub fn open_chunks_in_layout(&self, first_chunk: u64, buf: &mut [u8]) -> Result<()> {
        let last_of_file = run_check(
            first_chunk,
            buf.len(),
            self.ciphertext_len,
            chunk_count(self.plaintext_len),
        )?;
        let opened = (first_chunk..)
            .zip(buf.chunks_mut(ENCRYPTED_CHUNK_LEN))
            .try_for_each(|(i, chunk)| {
                let (body, tag) = chunk
                    .split_last_chunk_mut::<TAG_LEN>()
                    .ok_or(Error::Internal("chunk shorter than its tag"))?;
                open_chunk(&self.key, &self.header, i, i == last_of_file, body, tag)
            });
        if opened.is_err() {
            buf.zeroize();
        }
        opened
    }
}

/// Streaming decryption with bounded memory (one encrypted chunk of buffer).
///
/// Push ciphertext with [`Decryptor::update`] and end with [`Decryptor::finish`]; plaintext is
/// appended to the caller's `Vec`. Release rule (spec §4.7): the plaintext of a chunk is appended
/// only after that chunk authenticated, and a full-length chunk is authenticated as non-final only
/// once the first byte after it has arrived; the last chunk is authenticated (as final) by
/// [`Decryptor::finish`], which therefore is what detects truncation. Plaintext appended before an
/// error is authentic but may be incomplete: a caller MUST treat the content as valid only after
/// `finish` succeeded.
///
/// After an error the decryptor is poisoned: every later call returns the same error.
pub struct Decryptor {
    /// Held until the header has arrived, then dropped (zeroized).
    file_key: Option<SecretKey>,
    header: [u8; HEADER_LEN],
    header_len: usize,
    key: Option<PayloadKey>,
    buf: Zeroizing<Vec<u8>>,
    index: u64,
    failed: Option<Error>,
}

impl core::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decryptor")
            .field("index", &self.index)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// Starts decrypting under `file_key`.
    #[must_use]
    pub fn new(file_key: &SecretKey) -> Self {
        Decryptor {
            file_key: Some(file_key.clone()),
            header: [0u8; HEADER_LEN],
            header_len: 0,
            key: None,
            buf: Zeroizing::new(Vec::with_capacity(ENCRYPTED_CHUNK_LEN)),
            index: 0,
            failed: None,
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = Some(e.clone());
        e
    }

    /// Decrypts the buffered chunk as chunk `self.index` with flag `last`, appending it to `out`.
    fn release(&mut self, last: bool, out: &mut Vec<u8>) -> Result<()> {
        let key = self.key.as_ref().ok_or(Error::Internal("no payload key"))?;
        let n = self.buf.len() - TAG_LEN;
        let (body, tag) = self.buf.split_at_mut(n);
        let tag: [u8; TAG_LEN] = (&*tag)
            .try_into()
            .map_err(|_| Error::Internal("tag length"))?;
        open_chunk(key, &self.header, self.index, last, body, &tag)?;
        out.extend_from_slice(body);
        self.buf.zeroize();
        self.buf.clear();
        self.index += 1;
        Ok(())
    }

    /// Pushes ciphertext; appends the plaintext of every chunk that authenticated to `out`.
    ///
    /// # Errors
    /// [`Error::Decode`] for a bad header, [`Error::DecryptionFailed`] for a failed commitment or
    /// chunk, [`Error::Truncated`] for a final chunk followed by more data.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.update_inner(input, out).map_err(|e| self.fail(e))
    }

    fn update_inner(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if self.key.is_none() {
            let take = (HEADER_LEN - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            input = &input[take..];
            if self.header_len < HEADER_LEN {
                return Ok(());
            }
            let header = parse_header(&self.header)?;
            let file_key = self
                .file_key
                .take()
                .ok_or(Error::Internal("file key already used"))?;
            self.key = Some(open_header(&file_key, &header)?);
        }
        while !input.is_empty() {
            if self.buf.len() == ENCRYPTED_CHUNK_LEN {
                self.release(false, out)?;
            }
            let take = (ENCRYPTED_CHUNK_LEN - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
        }
        Ok(())
    }

    /// Ends the stream: authenticates the buffered data as the final chunk and appends its
    /// plaintext to `out`.
    ///
    /// # Errors
    /// [`Error::Truncated`] if the stream ended inside the header, without a final chunk, or with a
    /// final partial chunk of at most [`TAG_LEN`] bytes after a full one; the errors of
    /// [`Decryptor::update`] otherwise.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.key.is_none() {
            return Err(Error::Truncated);
        }
        let n = self.buf.len();
        if n < TAG_LEN || (n == TAG_LEN && self.index > 0) {
            return Err(Error::Truncated);
        }
        self.release(true, out)
    }
}

// ---------------------------------------------------------------------------------------------
// Random access

/// The chunks that cover a plaintext range.
struct RangePlan {
    first_chunk: u64,
    last_chunk_of_file: u64,
    ciphertext: Range<u64>,
}

fn plan(ciphertext_len: u64, plaintext: &Range<u64>) -> Result<RangePlan> {
    let pt_len = plaintext_len(ciphertext_len)?;
    if plaintext.start >= plaintext.end {
        return Err(Error::InvalidArgument("empty plaintext range"));
    }
    if plaintext.end > pt_len {
        return Err(Error::InvalidArgument("plaintext range past the end"));
    }
    let first = plaintext.start / CHUNK_LEN_U64;
    let last = (plaintext.end - 1) / CHUNK_LEN_U64;
    let start = HEADER_LEN_U64 + first * ENCRYPTED_CHUNK_LEN_U64;
    // Saturating: `ciphertext_len` comes from a peer and may be close to u64::MAX.
    let end = (last + 1)
        .saturating_mul(ENCRYPTED_CHUNK_LEN_U64)
        .saturating_add(HEADER_LEN_U64)
        .min(ciphertext_len);
    Ok(RangePlan {
        first_chunk: first,
        last_chunk_of_file: chunk_count(pt_len) - 1,
        ciphertext: start..end,
    })
}

/// The ciphertext byte range holding exactly the chunks that cover the non-empty plaintext
/// range `plaintext` of a content ciphertext of `ciphertext_len` bytes (spec §4.8).
///
/// To read the range, fetch the header (bytes `0..HEADER_LEN`) and this range, and pass both to
/// [`decrypt_range`].
///
/// # Errors
/// [`Error::Truncated`] if `ciphertext_len` is not a possible ciphertext length;
/// [`Error::InvalidArgument`] if the range is empty or ends past the plaintext.
pub fn ciphertext_range(ciphertext_len: u64, plaintext: Range<u64>) -> Result<Range<u64>> {
    Ok(plan(ciphertext_len, &plaintext)?.ciphertext)
}

/// Decrypts the plaintext bytes `plaintext` of a content ciphertext of `ciphertext_len` bytes,
/// given its header and the bytes `chunks` = `ciphertext[ciphertext_range(ciphertext_len,
/// plaintext)]`. Only those chunks are decrypted; the last chunk of the file is recognised from
/// `ciphertext_len`.
///
/// `ciphertext_len` comes from the server: a caller SHOULD check it against
/// `ciphertext_len(size)` for the size in the node's authenticated metadata (spec §4.8).
///
/// # Errors
/// [`Error::InvalidArgument`] for a bad range; [`Error::Truncated`] for an impossible
/// `ciphertext_len`, a header that is not [`HEADER_LEN`] bytes, or `chunks` of the wrong length;
/// [`Error::Decode`] for a bad header; [`Error::DecryptionFailed`] for a failed commitment or chunk.
pub fn decrypt_range(
    file_key: &SecretKey,
    header: &[u8],
    ciphertext_len: u64,
    plaintext: Range<u64>,
    chunks: &[u8],
) -> Result<Vec<u8>> {
    let plan = plan(ciphertext_len, &plaintext)?;
    let header_value = parse_header(header)?;
    let pk = open_header(file_key, &header_value)?;
    if chunks.len() as u64 != plan.ciphertext.end - plan.ciphertext.start {
        return Err(Error::Truncated);
    }
    let mut out = Vec::with_capacity(to_usize(plaintext.end - plaintext.start)?);
    let mut scratch = Zeroizing::new(vec![0u8; CHUNK_LEN]);
    let mut pos = plan.first_chunk * CHUNK_LEN_U64;
    for (j, c) in chunks.chunks(ENCRYPTED_CHUNK_LEN).enumerate() {
        let i = plan.first_chunk + j as u64;
        let n = c.len() - TAG_LEN;
        let buf = &mut scratch[..n];
        if let Err(e) = decrypt_one(&pk, header, i, i == plan.last_chunk_of_file, c, buf) {
            out.zeroize();
            return Err(e);
        }
        // Bytes of this chunk inside the requested range.
        let from = plaintext.start.saturating_sub(pos);
        let to = (plaintext.end - pos).min(n as u64);
        out.extend_from_slice(&buf[to_usize(from)?..to_usize(to)?]);
        pos += n as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng as _;

    fn rng(seed: u8) -> rand_chacha::ChaCha20Rng {
        rand_chacha::ChaCha20Rng::from_seed([seed; 32])
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    fn key(seed: u8) -> SecretKey {
        SecretKey::generate(&mut rng(seed))
    }

    #[test]
    fn sealer_matches_one_shot_encryption_for_any_split() {
        let k = key(7);
        for len in [
            0usize,
            1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            5 * CHUNK_LEN - 3,
            8 * CHUNK_LEN,
        ] {
            let pt = pattern(len);
            let whole = encrypt(&k, &pt, &mut rng(9));
            let salt = ContentSealer::new_salt(&mut rng(9));
            let sealer = ContentSealer::new(&k, &salt, len as u64).expect("sealer");
            assert_eq!(sealer.ciphertext_len(), whole.len() as u64);
            let mut out = sealer.header().to_vec();
            // Runs of 3 chunks, encrypted in reverse order and placed by offset.
            let count = sealer.chunk_count();
            let mut pieces = Vec::new();
            let mut first = 0u64;
            while first < count {
                let end = (first + 3).min(count);
                let a = (first as usize) * CHUNK_LEN;
                let b = ((end as usize) * CHUNK_LEN).min(len);
                pieces.push((first, pt[a..b].to_vec()));
                first = end;
            }
            let mut sealed: Vec<(u64, Vec<u8>)> = pieces
                .into_iter()
                .rev()
                .map(|(f, mut buf)| {
                    sealer.seal_chunks_in_place(f, &mut buf).expect("seal");
                    (f, buf)
                })
                .collect();
            sealed.sort_by_key(|(f, _)| *f);
            for (_, b) in sealed {
                out.extend_from_slice(&b);
            }
            assert_eq!(out, whole, "len {len}");
            assert_eq!(decrypt(&k, &out).expect("decrypts"), pt);
        }
    }

    #[test]
    fn sealing_in_layout_matches_one_shot_encryption() {
        let k = key(7);
        for len in [
            0usize,
            1,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            7 * CHUNK_LEN + 5,
            9 * CHUNK_LEN,
        ] {
            let pt = pattern(len);
            let salt = ContentSealer::new_salt(&mut rng(3));
            let sealer = ContentSealer::new(&k, &salt, len as u64).expect("sealer");
            let whole = encrypt(&k, &pt, &mut rng(3));
            let body = &whole[HEADER_LEN..];
            for per_run in [1usize, 3, 16] {
                for (j, expected) in body.chunks(per_run * ENCRYPTED_CHUNK_LEN).enumerate() {
                    // The plaintext at each chunk's ciphertext position, junk where tags go.
                    let mut buf = vec![0xa5u8; expected.len()];
                    let first = j * per_run;
                    for (c, slot) in buf.chunks_mut(ENCRYPTED_CHUNK_LEN).enumerate() {
                        let a = (first + c) * CHUNK_LEN;
                        let body_len = slot.len() - TAG_LEN;
                        slot[..body_len].copy_from_slice(&pt[a..a + body_len]);
                    }
                    sealer
                        .seal_chunks_in_layout(first as u64, &mut buf)
                        .expect("seals");
                    assert_eq!(buf, expected, "len {len}, run {j} of {per_run} chunks");
                }
            }
        }
        // Runs that are not whole chunks of the ciphertext are refused and left alone.
        let sealer =
            ContentSealer::new(&k, &[1; SALT_LEN], 3 * CHUNK_LEN as u64 + 10).expect("sealer");
        for (first, n) in [
            (0u64, ENCRYPTED_CHUNK_LEN - 1),
            (0, ENCRYPTED_CHUNK_LEN + 1),
            (0, 0),
            (3, 10 + TAG_LEN - 1),
            (3, 10 + TAG_LEN + 1),
            (4, TAG_LEN),
            (u64::MAX, ENCRYPTED_CHUNK_LEN),
        ] {
            let mut buf = vec![7u8; n];
            assert!(
                matches!(
                    sealer.seal_chunks_in_layout(first, &mut buf),
                    Err(Error::InvalidArgument(_))
                ),
                "first {first}, {n} bytes"
            );
            assert!(buf.iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn sealer_refuses_partial_or_outside_chunks() {
        let k = key(3);
        let salt = ContentSealer::new_salt(&mut rng(1));
        let sealer = ContentSealer::new(&k, &salt, 3 * CHUNK_LEN as u64 + 10).expect("sealer");
        let mut short = vec![0u8; CHUNK_LEN - 1];
        assert!(sealer.seal_chunks_in_place(0, &mut short).is_err());
        let mut past = vec![0u8; 10];
        assert!(sealer.seal_chunks_in_place(4, &mut past).is_err());
        let mut tail_short = vec![0u8; 9];
        assert!(sealer.seal_chunks_in_place(3, &mut tail_short).is_err());
        let mut tail = vec![0u8; 10];
        sealer
            .seal_chunks_in_place(3, &mut tail)
            .expect("final chunk");
        assert_eq!(tail.len(), 10 + TAG_LEN);
        let mut empty = Vec::new();
        assert!(sealer.seal_chunks_in_place(0, &mut empty).is_err());
    }

    #[test]
    fn opener_matches_one_shot_decryption_for_any_split() {
        let k = key(4);
        for len in [0usize, 1, CHUNK_LEN, 5 * CHUNK_LEN + 3] {
            let pt = pattern(len);
            let ct = encrypt(&k, &pt, &mut rng(9));
            let opener = ContentOpener::new(&k, &ct[..HEADER_LEN], ct.len() as u64).expect("new");
            assert_eq!(opener.plaintext_len(), len as u64);
            for per_run in [1usize, 2, 4] {
                let mut out = Vec::new();
                let body = &ct[HEADER_LEN..];
                for (j, run) in body.chunks(per_run * ENCRYPTED_CHUNK_LEN).enumerate() {
                    let first = (j * per_run) as u64;
                    let mut buf = run.to_vec();
                    opener.open_chunks_in_place(first, &mut buf).expect("opens");
                    out.extend_from_slice(&buf);
                    // In layout: each chunk's plaintext where its ciphertext was.
                    let mut laid = run.to_vec();
                    opener
                        .open_chunks_in_layout(first, &mut laid)
                        .expect("opens in layout");
                    let bodies: Vec<u8> = laid
                        .chunks(ENCRYPTED_CHUNK_LEN)
                        .flat_map(|c| &c[..c.len() - TAG_LEN])
                        .copied()
                        .collect();
                    assert_eq!(bodies, buf, "len {len}, run {j} of {per_run} chunks");
                }
                assert_eq!(out, pt, "len {len}, {per_run} chunks per run");
            }
        }
    }

    #[test]
    fn opening_in_layout_releases_nothing_on_failure() {
        let k = key(8);
        // A chunk that fails, after one that opened, leaves no plaintext of the run.
        let pt = pattern(3 * CHUNK_LEN);
        let ct = encrypt(&k, &pt, &mut rng(4));
        let opener = ContentOpener::new(&k, &ct[..HEADER_LEN], ct.len() as u64).expect("new");
        let mut run = ct[HEADER_LEN..].to_vec();
        run[2 * ENCRYPTED_CHUNK_LEN + 3] ^= 0x80;
        assert!(matches!(
            opener.open_chunks_in_layout(0, &mut run),
            Err(Error::DecryptionFailed)
        ));
        assert!(run.iter().all(|&b| b == 0));
        let mut partial = ct[HEADER_LEN..HEADER_LEN + 100].to_vec();
        assert!(matches!(
            opener.open_chunks_in_layout(0, &mut partial),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(partial, ct[HEADER_LEN..HEADER_LEN + 100]);
    }

    #[test]
    fn opener_refuses_bad_runs_and_tampering() {
        let k = key(5);
        let pt = pattern(3 * CHUNK_LEN + 10);
        let ct = encrypt(&k, &pt, &mut rng(2));
        let n = ct.len() as u64;
        assert!(matches!(
            ContentOpener::new(&key(6), &ct[..HEADER_LEN], n),
            Err(Error::DecryptionFailed)
        ));
        assert!(matches!(
            // A final chunk of only a tag after full ones: no plaintext has this length.
            ContentOpener::new(&k, &ct[..HEADER_LEN], n - 10),
            Err(Error::Truncated)
        ));
        let opener = ContentOpener::new(&k, &ct[..HEADER_LEN], n).expect("new");
        let chunk = |i: usize| ct[HEADER_LEN + i * ENCRYPTED_CHUNK_LEN..].iter();
        // Partial chunks, runs past the end and empty runs are refused and left alone.
        let mut partial: Vec<u8> = chunk(0).take(ENCRYPTED_CHUNK_LEN - 1).copied().collect();
        assert!(matches!(
            opener.open_chunks_in_place(0, &mut partial),
            Err(Error::InvalidArgument(_))
        ));
        assert_eq!(partial.len(), ENCRYPTED_CHUNK_LEN - 1);
        let mut tail: Vec<u8> = chunk(3).copied().collect();
        assert!(opener.open_chunks_in_place(4, &mut tail).is_err());
        assert!(opener.open_chunks_in_place(3, &mut Vec::new()).is_err());
        let mut tail_short = tail[..tail.len() - 1].to_vec();
        assert!(opener.open_chunks_in_place(3, &mut tail_short).is_err());
        opener
            .open_chunks_in_place(3, &mut tail)
            .expect("final chunk");
        assert_eq!(tail, pt[3 * CHUNK_LEN..]);
        // A chunk at another position, or a flipped bit, fails and releases nothing.
        let mut moved: Vec<u8> = chunk(1).take(ENCRYPTED_CHUNK_LEN).copied().collect();
        assert!(matches!(
            opener.open_chunks_in_place(2, &mut moved),
            Err(Error::DecryptionFailed)
        ));
        assert!(moved.is_empty());
        let mut two: Vec<u8> = chunk(0).take(2 * ENCRYPTED_CHUNK_LEN).copied().collect();
        two[ENCRYPTED_CHUNK_LEN + 7] ^= 1;
        assert!(opener.open_chunks_in_place(0, &mut two).is_err());
        assert!(two.is_empty());
        // A full chunk presented as the file's last (the content cut at a chunk boundary).
        let short = HEADER_LEN + 2 * ENCRYPTED_CHUNK_LEN;
        let cut = ContentOpener::new(&k, &ct[..HEADER_LEN], short as u64).expect("new");
        let mut last: Vec<u8> = chunk(1).take(ENCRYPTED_CHUNK_LEN).copied().collect();
        assert!(matches!(
            cut.open_chunks_in_place(1, &mut last),
            Err(Error::Truncated)
        ));
        assert!(!format!("{opener:?}").contains("key"));
    }

    /// Builds a ciphertext from explicit chunks: `(index, last, plaintext)`, for fault tests.
    fn forge(file_key: &SecretKey, salt_seed: u8, chunks: &[(u64, bool, &[u8])]) -> Vec<u8> {
        let (pk, header) = new_header(file_key, &mut rng(salt_seed));
        let mut out = header.to_vec();
        for (i, last, pt) in chunks {
            let mut b = pt.to_vec();
            let tag = seal_chunk(&pk, &header, *i, *last, &mut b);
            out.extend_from_slice(&b);
            out.extend_from_slice(&tag);
        }
        out
    }

    /// Ciphertext chunk `i` of `ct` (header excluded).
    fn chunk(ct: &[u8], i: usize) -> &[u8] {
        let s = HEADER_LEN + i * ENCRYPTED_CHUNK_LEN;
        &ct[s..(s + ENCRYPTED_CHUNK_LEN).min(ct.len())]
    }

    /// Decrypts one-shot (both parallelism settings) and streaming (in 3 uneven pieces), and
    /// requires all to agree.
    fn decrypt_all_ways(k: &SecretKey, ct: &[u8]) -> Result<Vec<u8>> {
        let one = decrypt(k, ct);
        let n = plaintext_len(ct.len() as u64).map_or(0, |n| n as usize);
        let mut seq = vec![0u8; n];
        let seq_r = decrypt_into(k, ct, &mut seq, Parallelism::Sequential).map(|()| seq);
        let mut d = Decryptor::new(k);
        let mut streamed = Vec::new();
        let a = ct.len() / 3;
        let b = ct.len() * 2 / 3 + 1;
        let stream_r = d
            .update(&ct[..a], &mut streamed)
            .and_then(|()| d.update(&ct[a..b.min(ct.len())], &mut streamed))
            .and_then(|()| d.update(&ct[b.min(ct.len())..], &mut streamed))
            .and_then(|()| d.finish(&mut streamed))
            .map(|()| streamed);
        let mut inplace = ct.to_vec();
        let inplace_r =
            decrypt_in_place(k, &mut inplace, Parallelism::Sequential).map(|()| inplace);
        assert_eq!(one, inplace_r, "out of place vs in place");
        assert_eq!(one, seq_r, "parallel vs sequential");
        assert_eq!(one, stream_r, "one-shot vs streaming");
        one
    }

    #[test]
    fn header_is_71_bytes_and_exact() {
        let h = ContentHeader {
            salt: Bytes([0xaa; 32]),
            commitment: Bytes([0xbb; 32]),
        };
        let enc = encoding::encode(&h);
        assert_eq!(enc.len(), HEADER_LEN);
        assert_eq!(&enc[..5], &[0x84, 0x01, 0x01, 0x58, 0x20]);
        assert_eq!(&enc[37..39], &[0x58, 0x20]);
    }

    #[test]
    fn lengths() {
        for n in [
            0u64, 1, 65_535, 65_536, 65_537, 131_072, 131_077, 10_000_000,
        ] {
            let c = ciphertext_len(n).expect("len");
            assert_eq!(plaintext_len(c), Ok(n), "{n}");
        }
        assert_eq!(ciphertext_len(0), Ok(87));
        assert_eq!(ciphertext_len(65_536), Ok(71 + 65_552));
        assert_eq!(ciphertext_len(65_537), Ok(71 + 65_552 + 17));
        // Impossible lengths.
        for c in [
            0u64,
            70,
            71,
            86,
            71 + 65_552 + 1,
            71 + 65_552 + 16,
            71 + 2 * 65_552 + 16,
        ] {
            assert_eq!(plaintext_len(c), Err(Error::Truncated), "{c}");
        }
        assert!(ciphertext_len(u64::MAX).is_err());
    }

    #[test]
    fn round_trip_boundaries() {
        let k = key(1);
        for n in [
            0usize,
            1,
            65_535,
            65_536,
            65_537,
            3 * 65_536,
            3 * 65_536 + 7,
        ] {
            let pt = pattern(n);
            let ct = encrypt(&k, &pt, &mut rng(2));
            assert_eq!(ct.len() as u64, ciphertext_len(n as u64).expect("len"));
            assert_eq!(decrypt_all_ways(&k, &ct).expect("decrypt"), pt, "{n}");
        }
    }

    #[test]
    fn parallel_equals_sequential() {
        let k = key(3);
        for n in [PARALLEL_THRESHOLD, 5 * CHUNK_LEN * 4 + 12_345] {
            let pt = pattern(n);
            let mut a = vec![0u8; ciphertext_len(n as u64).expect("len") as usize];
            let mut b = a.clone();
            encrypt_into(&k, &pt, &mut a, Parallelism::Auto, &mut rng(4)).expect("enc");
            encrypt_into(&k, &pt, &mut b, Parallelism::Sequential, &mut rng(4)).expect("enc");
            assert_eq!(a, b);
            assert_eq!(encrypt(&k, &pt, &mut rng(4)), a);
            let mut out = vec![0u8; n];
            decrypt_into(&k, &a, &mut out, Parallelism::Auto).expect("dec");
            assert_eq!(out, pt);
            // The first bad chunk decides the error on both paths.
            let mut bad = a.clone();
            let last = bad.len() - 1;
            bad[last] ^= 1; // final chunk
            bad[HEADER_LEN + 3 * ENCRYPTED_CHUNK_LEN] ^= 1; // chunk 3
            let mut o = vec![0u8; n];
            assert_eq!(
                decrypt_into(&k, &bad, &mut o, Parallelism::Auto),
                Err(Error::DecryptionFailed)
            );
            assert!(o.iter().all(|b| *b == 0), "plaintext zeroized on failure");
        }
    }

    #[test]
    fn first_failing_chunk_decides_on_every_path() {
        let k = key(14);
        let full = pattern(CHUNK_LEN);
        let n = 24u64; // 1.5 MiB: above the parallel threshold
                       // Chunk 2 flagged final (-> Truncated) and chunk 10 corrupted (-> DecryptionFailed),
                       // and the reverse; the lower index decides.
        for (final_at, corrupt_at, want) in [
            (2u64, 10usize, Error::Truncated),
            (10, 2, Error::DecryptionFailed),
        ] {
            let chunks: Vec<(u64, bool, &[u8])> = (0..n)
                .map(|i| (i, i == final_at || i == n - 1, &full[..]))
                .collect();
            let mut ct = forge(&k, 15, &chunks);
            ct[HEADER_LEN + corrupt_at * ENCRYPTED_CHUNK_LEN + 9] ^= 0x20;
            assert!(ct.len() >= PARALLEL_THRESHOLD);
            assert_eq!(decrypt_all_ways(&k, &ct), Err(want.clone()));
            let mut out = vec![0u8; (n as usize) * CHUNK_LEN];
            assert_eq!(
                decrypt_into(&k, &ct, &mut out, Parallelism::Auto),
                Err(want)
            );
        }
    }

    #[test]
    fn truncation_at_every_chunk_boundary() {
        let k = key(16);
        let pt = pattern(5 * CHUNK_LEN + 3);
        let ct = encrypt(&k, &pt, &mut rng(17));
        for i in 1..=5 {
            let cut = &ct[..HEADER_LEN + i * ENCRYPTED_CHUNK_LEN];
            assert_eq!(
                decrypt_all_ways(&k, cut),
                Err(Error::Truncated),
                "boundary {i}"
            );
        }
        // And the header-only prefix.
        assert_eq!(
            decrypt_all_ways(&k, &ct[..HEADER_LEN]),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn in_place_equals_out_of_place() {
        let k = key(40);
        for n in [
            0usize,
            1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            3 * CHUNK_LEN + 5,
            PARALLEL_THRESHOLD + 77,
        ] {
            let pt = pattern(n);
            let ct = encrypt(&k, &pt, &mut rng(41));
            for p in [Parallelism::Sequential, Parallelism::Auto] {
                let mut buf = pt.clone();
                encrypt_in_place(&k, &mut buf, p, &mut rng(41)).expect("encrypt");
                assert_eq!(buf, ct, "{n} {p:?}");
                decrypt_in_place(&k, &mut buf, p).expect("decrypt");
                assert_eq!(buf, pt, "{n} {p:?}");
                // A fault empties the buffer.
                let mut bad = ct.clone();
                let pos = bad.len() / 2;
                bad[pos] ^= 1;
                assert!(decrypt_in_place(&k, &mut bad, p).is_err());
                assert!(bad.is_empty());
            }
        }
    }

    #[test]
    fn streaming_encryptor_matches_one_shot() {
        let k = key(5);
        let pt = pattern(3 * CHUNK_LEN + 100);
        let ct = encrypt(&k, &pt, &mut rng(6));
        for step in [
            1usize,
            7,
            4096,
            CHUNK_LEN - 1,
            CHUNK_LEN,
            CHUNK_LEN + 1,
            1 << 20,
        ] {
            let mut e = Encryptor::new(&k, &mut rng(6));
            let mut out = Vec::new();
            for piece in pt.chunks(step) {
                e.update(piece, &mut out);
            }
            e.finish(&mut out);
            assert_eq!(out, ct, "step {step}");
        }
        // Empty plaintext: finish alone; full chunk exactly: no empty final chunk.
        for n in [0usize, CHUNK_LEN, 2 * CHUNK_LEN] {
            let pt = pattern(n);
            let mut e = Encryptor::new(&k, &mut rng(6));
            let mut out = Vec::new();
            e.update(&pt, &mut out);
            e.finish(&mut out);
            assert_eq!(out, encrypt(&k, &pt, &mut rng(6)), "{n}");
        }
    }

    #[test]
    fn streaming_decryptor_releases_only_authenticated_chunks() {
        let k = key(7);
        let pt = pattern(2 * CHUNK_LEN + 10);
        let ct = encrypt(&k, &pt, &mut rng(8));
        let mut d = Decryptor::new(&k);
        let mut out = Vec::new();
        // Header and exactly one full chunk: nothing released yet (it might be the last).
        d.update(&ct[..HEADER_LEN + ENCRYPTED_CHUNK_LEN], &mut out)
            .expect("update");
        assert!(out.is_empty());
        // One more byte proves chunk 0 is not the last: released.
        d.update(&ct[HEADER_LEN + ENCRYPTED_CHUNK_LEN..][..1], &mut out)
            .expect("update");
        assert_eq!(out, &pt[..CHUNK_LEN]);
        d.update(&ct[HEADER_LEN + ENCRYPTED_CHUNK_LEN + 1..], &mut out)
            .expect("update");
        assert_eq!(out.len(), 2 * CHUNK_LEN);
        d.finish(&mut out).expect("finish");
        assert_eq!(out, pt);

        // A tampered chunk is never released, and the decryptor stays failed.
        let mut bad = ct.clone();
        bad[HEADER_LEN + 5] ^= 1;
        let mut d = Decryptor::new(&k);
        let mut out = Vec::new();
        assert_eq!(d.update(&bad, &mut out), Err(Error::DecryptionFailed));
        assert!(out.is_empty());
        assert_eq!(d.update(&[], &mut out), Err(Error::DecryptionFailed));
        assert_eq!(d.finish(&mut out), Err(Error::DecryptionFailed));

        // Ends inside the header.
        let mut d = Decryptor::new(&k);
        d.update(&ct[..HEADER_LEN - 1], &mut Vec::new())
            .expect("update");
        assert_eq!(d.finish(&mut Vec::new()), Err(Error::Truncated));
    }

    #[test]
    fn every_single_fault_is_rejected() {
        let k = key(9);
        let other = key(10);
        let pt3 = pattern(2 * CHUNK_LEN + 5);
        let ct3 = encrypt(&k, &pt3, &mut rng(11));
        let full = pattern(CHUNK_LEN);
        let ct_full = encrypt(&k, &full, &mut rng(11));
        let small = encrypt(&k, b"hello", &mut rng(11));
        let h = &ct3[..HEADER_LEN];
        let cat = |parts: &[&[u8]]| parts.concat();
        let cases: Vec<(&str, Vec<u8>, &SecretKey, Error)> = vec![
            ("wrong key", ct3.clone(), &other, Error::DecryptionFailed),
            (
                "short header",
                small[..HEADER_LEN - 1].to_vec(),
                &k,
                Error::Truncated,
            ),
            (
                "header only",
                small[..HEADER_LEN].to_vec(),
                &k,
                Error::Truncated,
            ),
            // Truncation at a chunk boundary: the last remaining chunk is not final.
            (
                "truncated at boundary 1",
                ct3[..HEADER_LEN + ENCRYPTED_CHUNK_LEN].to_vec(),
                &k,
                Error::Truncated,
            ),
            (
                "truncated at boundary 2",
                ct3[..HEADER_LEN + 2 * ENCRYPTED_CHUNK_LEN].to_vec(),
                &k,
                Error::Truncated,
            ),
            (
                "truncated mid-chunk, long remainder",
                ct3[..HEADER_LEN + ENCRYPTED_CHUNK_LEN + 100].to_vec(),
                &k,
                Error::DecryptionFailed,
            ),
            (
                "truncated mid-chunk, short remainder",
                ct3[..HEADER_LEN + ENCRYPTED_CHUNK_LEN + 16].to_vec(),
                &k,
                Error::Truncated,
            ),
            (
                "reordered",
                cat(&[h, chunk(&ct3, 1), chunk(&ct3, 0), chunk(&ct3, 2)]),
                &k,
                Error::DecryptionFailed,
            ),
            (
                "dropped chunk",
                cat(&[h, chunk(&ct3, 0), chunk(&ct3, 2)]),
                &k,
                Error::DecryptionFailed,
            ),
            (
                "duplicated chunk",
                cat(&[
                    h,
                    chunk(&ct3, 0),
                    chunk(&ct3, 0),
                    chunk(&ct3, 1),
                    chunk(&ct3, 2),
                ]),
                &k,
                Error::DecryptionFailed,
            ),
            (
                "appended genuine chunk after a full final chunk",
                {
                    let mut c = ct_full.clone();
                    c.extend_from_slice(&forge(&k, 11, &[(1, true, b"more")])[HEADER_LEN..]);
                    c
                },
                &k,
                Error::Truncated,
            ),
            (
                "trailing byte after a full final chunk",
                cat(&[&ct_full, &[0]]),
                &k,
                Error::Truncated,
            ),
            (
                "trailing byte after a short final chunk",
                cat(&[&small, &[0]]),
                &k,
                Error::DecryptionFailed,
            ),
            (
                "empty final chunk after a full chunk",
                forge(&k, 11, &[(0, false, &full), (1, true, b"")]),
                &k,
                Error::Truncated,
            ),
            (
                "final chunk with flag 0",
                forge(&k, 11, &[(0, false, b"hello")]),
                &k,
                Error::Truncated,
            ),
            (
                "empty content flagged 0",
                forge(&k, 11, &[(0, false, b"")]),
                &k,
                Error::Truncated,
            ),
            (
                "two final chunks",
                forge(&k, 11, &[(0, true, &full), (1, true, b"x")]),
                &k,
                Error::Truncated,
            ),
            (
                "chunk index skipped",
                forge(&k, 11, &[(0, false, &full), (2, true, b"x")]),
                &k,
                Error::DecryptionFailed,
            ),
        ];
        for (what, ct, key, want) in cases {
            assert_eq!(decrypt_all_ways(key, &ct), Err(want), "{what}");
        }
        // Header faults.
        let mut bad = small.clone();
        bad[1] = 0x02;
        assert_eq!(
            decrypt(&k, &bad),
            Err(Error::Decode(crate::DecodeError::WrongType))
        );
        let mut bad = small.clone();
        bad[2] = 0x02;
        assert_eq!(
            decrypt(&k, &bad),
            Err(Error::Decode(crate::DecodeError::UnknownVersion))
        );
        let mut bad = small.clone();
        bad[0] = 0x9f; // indefinite-length array
        assert_eq!(
            decrypt(&k, &bad),
            Err(Error::Decode(crate::DecodeError::NonCanonical))
        );
        for pos in [5, 36, 39, 70] {
            let mut bad = small.clone();
            bad[pos] ^= 0x01;
            assert_eq!(
                decrypt_all_ways(&k, &bad),
                Err(Error::DecryptionFailed),
                "{pos}"
            );
        }
    }

    #[test]
    fn random_access_bounds() {
        let k = key(12);
        let pt = pattern(2 * CHUNK_LEN + 5);
        let ct = encrypt(&k, &pt, &mut rng(13));
        let n = ct.len() as u64;
        let len = pt.len() as u64;
        assert_eq!(ciphertext_range(n, 0..1), Ok(71..71 + 65_552));
        assert_eq!(ciphertext_range(n, 65_535..65_537), Ok(71..71 + 2 * 65_552));
        assert_eq!(ciphertext_range(n, len - 1..len), Ok(71 + 2 * 65_552..n));
        for bad in [
            0..0,
            5..5,
            Range { start: 6, end: 5 },
            0..len + 1,
            len..len + 1,
        ] {
            assert!(
                matches!(
                    ciphertext_range(n, bad.clone()),
                    Err(Error::InvalidArgument(_))
                ),
                "{bad:?}"
            );
            assert!(matches!(
                decrypt_range(&k, &ct[..HEADER_LEN], n, bad, &[]),
                Err(Error::InvalidArgument(_))
            ));
        }
        assert_eq!(ciphertext_range(n + 1, 0..1), Ok(71..71 + 65_552));
        assert_eq!(
            ciphertext_range(71 + 65_552 + 3, 0..1),
            Err(Error::Truncated)
        );
        // Wrong slice length.
        let r = ciphertext_range(n, 0..1).expect("range");
        assert_eq!(
            decrypt_range(
                &k,
                &ct[..HEADER_LEN],
                n,
                0..1,
                &ct[r.start as usize..r.end as usize - 1]
            ),
            Err(Error::Truncated)
        );
        // A server claiming a shorter file at a chunk boundary: the claimed last chunk is not final.
        let short = (HEADER_LEN + ENCRYPTED_CHUNK_LEN) as u64;
        assert_eq!(
            decrypt_range(
                &k,
                &ct[..HEADER_LEN],
                short,
                0..1,
                &ct[HEADER_LEN..short as usize]
            ),
            Err(Error::Truncated)
        );
        // Wrong key.
        assert_eq!(
            decrypt_range(
                &key(99),
                &ct[..HEADER_LEN],
                n,
                0..1,
                &ct[r.start as usize..r.end as usize]
            ),
            Err(Error::DecryptionFailed)
        );
    }

    fn arb_split() -> impl Strategy<Value = Vec<usize>> {
        proptest::collection::vec(0usize..70_000, 0..6)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn prop_round_trip_and_streaming(len in 0usize..200_000, splits in arb_split(), seed in any::<u8>()) {
            let k = key(seed);
            let pt = pattern(len);
            let ct = encrypt(&k, &pt, &mut rng(seed.wrapping_add(1)));
            // Streaming encryption with arbitrary split points equals one-shot.
            let mut e = Encryptor::new(&k, &mut rng(seed.wrapping_add(1)));
            let mut out = Vec::new();
            let mut rest: &[u8] = &pt;
            for s in &splits {
                let (a, b) = rest.split_at((*s).min(rest.len()));
                e.update(a, &mut out);
                rest = b;
            }
            e.update(rest, &mut out);
            e.finish(&mut out);
            prop_assert_eq!(&out, &ct);
            let mut inplace = pt.clone();
            encrypt_in_place(&k, &mut inplace, Parallelism::Sequential, &mut rng(seed.wrapping_add(1)))
                .expect("encrypt_in_place");
            prop_assert_eq!(&inplace, &ct);
            // Streaming decryption with arbitrary split points equals one-shot.
            let mut d = Decryptor::new(&k);
            let mut plain = Vec::new();
            let mut rest: &[u8] = &ct;
            for s in &splits {
                let (a, b) = rest.split_at((*s).min(rest.len()));
                d.update(a, &mut plain).expect("update");
                rest = b;
            }
            d.update(rest, &mut plain).expect("update");
            d.finish(&mut plain).expect("finish");
            prop_assert_eq!(&plain, &pt);
            prop_assert_eq!(decrypt(&k, &ct).expect("decrypt"), pt);
        }

        #[test]
        fn prop_any_byte_change_rejected(len in 0usize..140_000, pos in any::<prop::sample::Index>(), x in 1u8..=255) {
            let k = key(20);
            let pt = pattern(len);
            let mut ct = encrypt(&k, &pt, &mut rng(21));
            let i = pos.index(ct.len());
            ct[i] ^= x;
            prop_assert!(decrypt_all_ways(&k, &ct).is_err());
        }

        #[test]
        fn prop_random_access(len in 1usize..300_000, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
            let k = key(30);
            let pt = pattern(len);
            let ct = encrypt(&k, &pt, &mut rng(31));
            let (x, y) = (a.index(len), b.index(len));
            let (start, end) = (x.min(y), x.max(y) + 1);
            let n = ct.len() as u64;
            let r = ciphertext_range(n, start as u64..end as u64).expect("range");
            // Exactly the covering chunks.
            prop_assert_eq!(r.start, (HEADER_LEN + start / CHUNK_LEN * ENCRYPTED_CHUNK_LEN) as u64);
            prop_assert_eq!(r.end, ((HEADER_LEN + ((end - 1) / CHUNK_LEN + 1) * ENCRYPTED_CHUNK_LEN) as u64).min(n));
            let got = decrypt_range(&k, &ct[..HEADER_LEN], n, start as u64..end as u64, &ct[r.start as usize..r.end as usize])
                .expect("decrypt_range");
            prop_assert_eq!(&got[..], &pt[start..end]);
        }
    }
}
