//! Spec §6.2, "Login": OPAQUE (RFC 9807) in Coffer's one configuration, behind byte-oriented
//! newtypes so that no opaque-ke type appears in the public API.
//!
//! | component | choice |
//! |---|---|
//! | OPRF | ristretto255-SHA512 (RFC 9497) |
//! | AKE | 3DH over ristretto255 with SHA-512 |
//! | KSF | Argon2id v1.3, m = 19456 KiB, t = 2, p = 1, salt = 16 zero bytes ([`KSF_PARAMS`]) |
//! | client identity | the user name (UTF-8 bytes) |
//! | server identity | the server identity string (its public origin) |
//! | context | `"coffer/v1/account/opaque"` |
//!
//! Every message is a byte string of fixed length (the `*_LEN` constants); every function checks
//! the length first and then requires the parsed message to re-serialize to exactly the input.
//! The server's state between its two login messages is a byte string
//! ([`ServerLoginState`]) that the caller keeps: nothing in this module stores anything.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use std::sync::Mutex;

use opaque_ke::argon2;
use opaque_ke::generic_array::{ArrayLength, GenericArray};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::error::{DecodeError, Error, Result};
use crate::primitives::{Argon2Params, RngAdapter};

/// The OPAQUE context string bound into every login transcript (spec §6.2).
pub const LABEL_OPAQUE_CONTEXT: &str = "coffer/v1/account/opaque";

/// The Argon2id parameters of the OPAQUE key-stretching function (spec §6.2): fixed for v1, never
/// negotiated.
pub const KSF_PARAMS: Argon2Params = Argon2Params {
    m_kib: 19 * 1024,
    t: 2,
    p: 1,
};

/// Length of the client's registration request.
pub const REGISTRATION_REQUEST_LEN: usize = 32;
/// Length of the server's registration response.
pub const REGISTRATION_RESPONSE_LEN: usize = 64;
/// Length of the client's registration upload, which is also the password file the server stores.
pub const REGISTRATION_UPLOAD_LEN: usize = 192;
/// Length of the client's credential request (KE1).
pub const CREDENTIAL_REQUEST_LEN: usize = 96;
/// Length of the server's credential response (KE2).
pub const CREDENTIAL_RESPONSE_LEN: usize = 320;
/// Length of the client's credential finalization (KE3).
pub const CREDENTIAL_FINALIZATION_LEN: usize = 64;
/// Length of the export key and of the session key.
pub const OPAQUE_KEY_LEN: usize = 64;
/// Length of a [`ServerLoginState`]: the session key and the expected client MAC.
pub const SERVER_LOGIN_STATE_LEN: usize = 128;
/// Length of a serialized [`ServerSetup`].
pub const SERVER_SETUP_LEN: usize = 128;

/// Coffer's OPAQUE ciphersuite.
struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = CofferKsf;
}

fn argon2id() -> core::result::Result<argon2::Argon2<'static>, opaque_ke::errors::InternalError> {
    let params = argon2::Params::new(KSF_PARAMS.m_kib, KSF_PARAMS.t, KSF_PARAMS.p, None)
        .map_err(|_| opaque_ke::errors::InternalError::KsfError)?;
    Ok(argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

/// The suite's key-stretching function: Argon2id with [`KSF_PARAMS`], optionally through a
/// [`KsfMemo`].
#[derive(Default)]
pub(crate) struct CofferKsf {
    memo: Option<Arc<KsfMemo>>,
}

impl opaque_ke::ksf::Ksf for CofferKsf {
    fn hash<L: ArrayLength<u8>>(
        &self,
        input: GenericArray<u8, L>,
    ) -> core::result::Result<GenericArray<u8, L>, opaque_ke::errors::InternalError> {
        if let Some(out) = self.memo.as_ref().and_then(|m| m.get(&input)) {
            if out.len() == input.len() {
                return Ok(GenericArray::clone_from_slice(&out));
            }
        }
        let out = opaque_ke::ksf::Ksf::hash(&argon2id()?, input.clone())?;
        if let Some(m) = &self.memo {
            m.put(&input, &out);
        }
        Ok(out)
    }
}

fn ksf() -> Result<CofferKsf> {
    argon2id().map_err(|_| Error::Internal("argon2 parameters"))?;
    Ok(CofferKsf::default())
}

/// A memo of the key-stretching function for a client that logs the *same* users in many times:
/// each distinct stretched input runs Argon2id once, later logins of that user reuse the result.
///
/// Meant for load generators and test clients (the server never runs the KSF, so its work is
/// unchanged). It keeps password-equivalent values in memory (zeroized on drop): a real client
/// has no use for it and must not keep one. Pass it to [`login_finish_memo`].
#[derive(Default)]
pub struct KsfMemo {
    entries: Mutex<Vec<MemoEntry>>,
}

/// A stretched input and its output.
type MemoEntry = (Zeroizing<Vec<u8>>, Zeroizing<Vec<u8>>);

impl fmt::Debug for KsfMemo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KsfMemo({} entries)", self.len())
    }
}

impl KsfMemo {
    /// An empty memo.
    #[must_use]
    pub fn new() -> Arc<Self> {
        Arc::new(KsfMemo::default())
    }

    /// How many distinct inputs have been stretched.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether nothing has been stretched yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, input: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        let e = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        e.iter()
            .find(|(i, _)| crate::primitives::ct_eq(i, input))
            .map(|(_, o)| o.clone())
    }

    fn put(&self, input: &[u8], output: &[u8]) {
        let mut e = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !e.iter().any(|(i, _)| crate::primitives::ct_eq(i, input)) {
            e.push((
                Zeroizing::new(input.to_vec()),
                Zeroizing::new(output.to_vec()),
            ));
        }
    }
}

/// The OPAQUE identities of spec §6.2: who is logging in, to which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpaqueIdentities<'a> {
    /// The user name (the client identity and the credential identifier).
    pub user_name: &'a str,
    /// The server identity string (the server's public origin, e.g. `https://coffer.example`).
    pub server_identity: &'a str,
}

impl<'a> OpaqueIdentities<'a> {
    fn check(&self) -> Result<()> {
        super::identity::check_user_name(self.user_name)?;
        if self.server_identity.is_empty() || self.server_identity.len() > 255 {
            return Err(Error::InvalidArgument(
                "server identity must be 1 to 255 bytes",
            ));
        }
        Ok(())
    }

    fn opaque(&self) -> opaque_ke::Identifiers<'a> {
        opaque_ke::Identifiers {
            client: Some(self.user_name.as_bytes()),
            server: Some(self.server_identity.as_bytes()),
        }
    }
}

macro_rules! secret_bytes {
    ($(#[$meta:meta])* $name:ident, $len:expr) => {
        $(#[$meta])*
        #[derive(Clone)]
        pub struct $name(Zeroizing<[u8; $len]>);

        /// Constant-time comparison.
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                crate::primitives::ct_eq(&self.0[..], &other.0[..])
            }
        }
        impl Eq for $name {}

        impl $name {
            /// The key bytes. Handle with care.
            #[must_use]
            pub fn expose(&self) -> &[u8; $len] {
                &self.0
            }

            /// Wraps existing key bytes.
            #[must_use]
            pub fn from_bytes(bytes: [u8; $len]) -> Self {
                $name(Zeroizing::new(bytes))
            }

            fn from_slice(bytes: &[u8]) -> Result<Self> {
                let mut out = Zeroizing::new([0u8; $len]);
                if bytes.len() != $len {
                    return Err(Error::Internal("opaque key length"));
                }
                out.copy_from_slice(bytes);
                Ok($name(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_bytes!(
    /// The OPAQUE export key (64 bytes): known only to the client, the same at every login with
    /// the same registration, and the root of the key-encryption key of spec §6.3.
    ExportKey,
    OPAQUE_KEY_LEN
);
secret_bytes!(
    /// The OPAQUE session key (64 bytes) both sides share after a successful login; spec §11 uses
    /// it to authenticate the session, spec §9.5 to prove a fresh login.
    SessionKey,
    OPAQUE_KEY_LEN
);

/// The server's long-term OPAQUE secrets: the OPRF seed, the AKE key pair, and the key used to
/// fake records for unknown users. Generated once per server, kept secret, backed up.
#[derive(Clone)]
pub struct ServerSetup(opaque_ke::ServerSetup<Suite>);

impl ServerSetup {
    /// Generates a fresh server setup.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        ServerSetup(opaque_ke::ServerSetup::new(&mut RngAdapter(rng)))
    }

    /// The serialized setup ([`SERVER_SETUP_LEN`] bytes). Secret: handle with care.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.serialize().to_vec())
    }

    /// Parses a serialized setup.
    ///
    /// # Errors
    /// [`DecodeError::Malformed`] unless `bytes` is exactly a serialization of a valid setup.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != SERVER_SETUP_LEN {
            return Err(DecodeError::Malformed.into());
        }
        let setup = opaque_ke::ServerSetup::<Suite>::deserialize(bytes)
            .map_err(|_| Error::Decode(DecodeError::Malformed))?;
        if setup.serialize().as_slice() != bytes {
            return Err(DecodeError::NonCanonical.into());
        }
        Ok(ServerSetup(setup))
    }
}

impl fmt::Debug for ServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSetup(<redacted>)")
    }
}

/// The client's state between [`registration_start`] and [`registration_finish`].
pub struct ClientRegistration(opaque_ke::ClientRegistration<Suite>);

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientRegistration(<redacted>)")
    }
}

/// The client's state between [`login_start`] and [`login_finish`].
pub struct ClientLogin(opaque_ke::ClientLogin<Suite>);

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLogin(<redacted>)")
    }
}

/// The server's state between [`server_login_start`] and [`server_login_finish`], as bytes the
/// caller keeps (in memory or in its session store) for the duration of one login. Secret.
#[derive(Clone)]
pub struct ServerLoginState(Zeroizing<Vec<u8>>);

impl ServerLoginState {
    /// The state bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wraps state bytes kept by the caller.
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Self {
        ServerLoginState(Zeroizing::new(bytes.to_vec()))
    }
}

impl fmt::Debug for ServerLoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerLoginState(<redacted>)")
    }
}

/// What the client obtains from a successful login.
#[derive(Debug)]
pub struct LoginFinish {
    /// The credential finalization (KE3) to send to the server.
    pub finalization: Vec<u8>,
    /// The session key shared with the server.
    pub session_key: SessionKey,
    /// The export key: the input of the key-encryption key (spec §6.3).
    pub export_key: ExportKey,
}

/// Parses a peer's message of fixed length `len`: length first, then the group encodings, then
/// the requirement that it re-serializes to exactly the input.
fn parse_message<T, S: AsRef<[u8]>>(
    bytes: &[u8],
    len: usize,
    parse: impl FnOnce(&[u8]) -> core::result::Result<T, opaque_ke::errors::ProtocolError>,
    serialize: impl FnOnce(&T) -> S,
) -> Result<T> {
    if bytes.len() != len {
        return Err(DecodeError::Malformed.into());
    }
    let msg = parse(bytes).map_err(|_| Error::AuthenticationFailed)?;
    if serialize(&msg).as_ref() != bytes {
        return Err(Error::AuthenticationFailed);
    }
    Ok(msg)
}

fn protocol_error(e: opaque_ke::errors::ProtocolError) -> Error {
    use opaque_ke::errors::{InternalError, ProtocolError};
    match e {
        ProtocolError::LibraryError(InternalError::KsfError) => Error::Internal("argon2id"),
        _ => Error::AuthenticationFailed,
    }
}

/// Client, registration step 1: blinds the password. Returns the state to keep and the
/// registration request to send ([`REGISTRATION_REQUEST_LEN`] bytes).
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty password.
pub fn registration_start(
    password: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<(ClientRegistration, Vec<u8>)> {
    if password.is_empty() {
        return Err(Error::InvalidArgument("empty password"));
    }
    let r = opaque_ke::ClientRegistration::<Suite>::start(&mut RngAdapter(rng), password)
        .map_err(protocol_error)?;
    Ok((ClientRegistration(r.state), r.message.serialize().to_vec()))
}

/// Server, registration step: evaluates the OPRF on the blinded password under the user's OPRF
/// key (derived from the server's seed and the user name). Returns the registration response.
///
/// # Errors
/// [`Error::Decode`] for a request of the wrong length, [`Error::AuthenticationFailed`] for one
/// that does not encode a valid group element, [`Error::InvalidArgument`] for an invalid user
/// name or server identity.
pub fn server_registration_start(
    setup: &ServerSetup,
    request: &[u8],
    ids: &OpaqueIdentities<'_>,
) -> Result<Vec<u8>> {
    ids.check()?;
    let msg = parse_message(
        request,
        REGISTRATION_REQUEST_LEN,
        opaque_ke::RegistrationRequest::<Suite>::deserialize,
        opaque_ke::RegistrationRequest::serialize,
    )?;
    let r = opaque_ke::ServerRegistration::<Suite>::start(&setup.0, msg, ids.user_name.as_bytes())
        .map_err(protocol_error)?;
    Ok(r.message.serialize().to_vec())
}

/// Client, registration step 2: finishes the OPRF, stretches with Argon2id, builds the envelope.
/// Returns the registration upload ([`REGISTRATION_UPLOAD_LEN`] bytes) and the export key.
///
/// # Errors
/// [`Error::Decode`] for a response of the wrong length, [`Error::AuthenticationFailed`] for an
/// invalid or reflected response.
pub fn registration_finish(
    state: ClientRegistration,
    password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<(Vec<u8>, ExportKey)> {
    ids.check()?;
    let msg = parse_message(
        response,
        REGISTRATION_RESPONSE_LEN,
        opaque_ke::RegistrationResponse::<Suite>::deserialize,
        opaque_ke::RegistrationResponse::serialize,
    )?;
    let ksf = ksf()?;
    let r = state
        .0
        .finish(
            &mut RngAdapter(rng),
            password,
            msg,
            opaque_ke::ClientRegistrationFinishParameters::new(ids.opaque(), Some(&ksf)),
        )
        .map_err(protocol_error)?;
    let export_key = ExportKey::from_slice(&r.export_key)?;
    Ok((r.message.serialize().to_vec(), export_key))
}

/// Server, registration end: validates the upload and returns the password file to store for
/// the user ([`REGISTRATION_UPLOAD_LEN`] bytes; it is the upload itself, once validated).
///
/// # Errors
/// [`Error::Decode`] for the wrong length, [`Error::AuthenticationFailed`] for an upload whose
/// public key does not decode.
pub fn server_registration_finish(upload: &[u8]) -> Result<Vec<u8>> {
    let msg = parse_message(
        upload,
        REGISTRATION_UPLOAD_LEN,
        opaque_ke::RegistrationUpload::<Suite>::deserialize,
        opaque_ke::RegistrationUpload::serialize,
    )?;
    Ok(opaque_ke::ServerRegistration::<Suite>::finish(msg)
        .serialize()
        .to_vec())
}

/// Client, login step 1 (KE1). Returns the state to keep and the credential request to send
/// ([`CREDENTIAL_REQUEST_LEN`] bytes).
///
/// # Errors
/// [`Error::InvalidArgument`] for an empty password.
pub fn login_start(
    password: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<(ClientLogin, Vec<u8>)> {
    if password.is_empty() {
        return Err(Error::InvalidArgument("empty password"));
    }
    let r = opaque_ke::ClientLogin::<Suite>::start(&mut RngAdapter(rng), password)
        .map_err(protocol_error)?;
    Ok((ClientLogin(r.state), r.message.serialize().to_vec()))
}

/// Server, login step (KE2). `password_file` is the stored file of the user, or `None` when the
/// user name is unknown: the server then answers from a fake record (RFC 9807 §10.9) with a
/// response of the same length and distribution, and the login fails at the client's MAC check
/// exactly as with a wrong password. Returns the state to keep and the credential response.
///
/// # Errors
/// [`Error::Decode`] for inputs of the wrong length, [`Error::AuthenticationFailed`] for a
/// request that does not decode, [`Error::Decode`] for a corrupt password file.
pub fn server_login_start(
    setup: &ServerSetup,
    password_file: Option<&[u8]>,
    request: &[u8],
    ids: &OpaqueIdentities<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<(ServerLoginState, Vec<u8>)> {
    ids.check()?;
    let file = match password_file {
        Some(bytes) => {
            if bytes.len() != REGISTRATION_UPLOAD_LEN {
                return Err(DecodeError::Malformed.into());
            }
            let file = opaque_ke::ServerRegistration::<Suite>::deserialize(bytes)
                .map_err(|_| Error::Decode(DecodeError::Malformed))?;
            if file.serialize().as_slice() != bytes {
                return Err(DecodeError::NonCanonical.into());
            }
            Some(file)
        }
        None => None,
    };
    let msg = parse_message(
        request,
        CREDENTIAL_REQUEST_LEN,
        opaque_ke::CredentialRequest::<Suite>::deserialize,
        opaque_ke::CredentialRequest::serialize,
    )?;
    let params = opaque_ke::ServerLoginParameters {
        context: Some(LABEL_OPAQUE_CONTEXT.as_bytes()),
        identifiers: ids.opaque(),
    };
    let r = opaque_ke::ServerLogin::<Suite>::start(
        &mut RngAdapter(rng),
        &setup.0,
        file,
        msg,
        ids.user_name.as_bytes(),
        params,
    )
    .map_err(protocol_error)?;
    Ok((
        ServerLoginState(Zeroizing::new(r.state.serialize().to_vec())),
        r.message.serialize().to_vec(),
    ))
}

/// Client, login step 2 (KE3): unmasks and opens the envelope, authenticates the server, and
/// derives the session and export keys.
///
/// # Errors
/// [`Error::AuthenticationFailed`] for a wrong password, an unknown user, a wrong server identity
/// or a tampered response; [`Error::Decode`] for a response of the wrong length.
pub fn login_finish(
    state: ClientLogin,
    password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    rng: &mut impl CryptoRngCore,
) -> Result<LoginFinish> {
    login_finish_with(state, password, response, ids, ksf()?, rng)
}

/// [`login_finish`] through a [`KsfMemo`]: the same messages and keys, with Argon2id run once
/// per distinct user and password of the memo (load generation; see [`KsfMemo`]).
///
/// # Errors
/// As [`login_finish`].
pub fn login_finish_memo(
    state: ClientLogin,
    password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    memo: &Arc<KsfMemo>,
    rng: &mut impl CryptoRngCore,
) -> Result<LoginFinish> {
    let mut ksf = ksf()?;
    ksf.memo = Some(Arc::clone(memo));
    login_finish_with(state, password, response, ids, ksf, rng)
}

fn login_finish_with(
    state: ClientLogin,
    password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    ksf: CofferKsf,
    rng: &mut impl CryptoRngCore,
) -> Result<LoginFinish> {
    ids.check()?;
    let msg = parse_message(
        response,
        CREDENTIAL_RESPONSE_LEN,
        opaque_ke::CredentialResponse::<Suite>::deserialize,
        opaque_ke::CredentialResponse::serialize,
    )?;
    let r = state
        .0
        .finish(
            &mut RngAdapter(rng),
            password,
            msg,
            opaque_ke::ClientLoginFinishParameters::new(
                Some(LABEL_OPAQUE_CONTEXT.as_bytes()),
                ids.opaque(),
                Some(&ksf),
            ),
        )
        .map_err(protocol_error)?;
    Ok(LoginFinish {
        finalization: r.message.serialize().to_vec(),
        session_key: SessionKey::from_slice(&r.session_key)?,
        export_key: ExportKey::from_slice(&r.export_key)?,
    })
}

/// Server, login end: checks the client's finalization (its MAC over the whole transcript, which
/// already binds both identities and the context) and returns the session key.
///
/// The state is the server's own secret: it holds the session key and the expected MAC, and is
/// not authenticated by this function; the caller keeps it confidential and unmodified.
///
/// # Errors
/// [`Error::AuthenticationFailed`] for a wrong password (the client could not produce the MAC),
/// a tampered finalization or a state of the wrong length; [`Error::Decode`] for a finalization
/// of the wrong length.
pub fn server_login_finish(state: &ServerLoginState, finalization: &[u8]) -> Result<SessionKey> {
    if state.as_bytes().len() != SERVER_LOGIN_STATE_LEN {
        return Err(Error::AuthenticationFailed);
    }
    let server = opaque_ke::ServerLogin::<Suite>::deserialize(state.as_bytes())
        .map_err(|_| Error::AuthenticationFailed)?;
    if server.serialize().as_slice() != state.as_bytes() {
        return Err(Error::AuthenticationFailed);
    }
    let msg = parse_message(
        finalization,
        CREDENTIAL_FINALIZATION_LEN,
        opaque_ke::CredentialFinalization::<Suite>::deserialize,
        opaque_ke::CredentialFinalization::serialize,
    )?;
    let params = opaque_ke::ServerLoginParameters {
        context: Some(LABEL_OPAQUE_CONTEXT.as_bytes()),
        identifiers: opaque_ke::Identifiers::default(),
    };
    let r = server.finish(msg, params).map_err(protocol_error)?;
    SessionKey::from_slice(&r.session_key)
}
