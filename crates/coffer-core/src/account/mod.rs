//! Spec §6, "Account keys": the account master key and its password wrapping, the sealed account
//! secrets, identities and their chain, fingerprints, and the OPAQUE login; plus the account-side
//! rotations of spec §9.1 (password change), §9.4 (compromise recovery) and §9.5 (deletion).
//!
//! ```text
//! KEK                = HKDF-SHA-256(ikm = export_key, salt = "",
//!                                   info = "coffer/v1/account/kek" || 0x00 || account_id)
//! wrapped_master_key = seal_key(KEK, "coffer/v1/account/master-key",
//!                               encode([24, 1, account_id, master_key_generation]), master_key)
//! sealed_secrets     = seal(master_key, "coffer/v1/account/secrets",
//!                           encode([25, 1, account_id, master_key_generation, identity_generation]),
//!                           encode(AccountSecrets))
//! ```
//!
//! A client signs up with [`registration_start`] and [`register`] (whose
//! [`Registration::create_root`] makes the root folder; [`crate::api::RegisterFinishRequest::new`]
//! is the whole upload), logs in with [`login_start`],
//! [`login_finish`] and [`unlock`], changes its password with [`change_password`], recovers from
//! a compromise with [`recover`]. The server side is [`ServerSetup`],
//! [`server_registration_start`], [`server_registration_finish`], [`server_login_start`] and
//! [`server_login_finish`].

pub mod identity;
pub mod opaque;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::encoding::{decode, decode_bounded, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error, Result};
use crate::ids::{AccountId, NodeId};
use crate::metadata::{seal_metadata, Metadata};
use crate::primitives::{self, AgreementSecret, SecretKey, SigningKey};
use crate::seal::{self, SEALED_KEY_LEN, SEAL_OVERHEAD};
use crate::tree;

pub use identity::{
    create_identity, is_valid_user_name, parse_signed_identity, rotate_identity, verify_chain,
    verify_chain_generations, verify_pinned, Fingerprint, IdentityKeys, IdentityPin,
    IdentityRecord, SignedIdentity, VerifiedIdentity,
};
pub use opaque::{
    login_finish, login_finish_memo, login_start, registration_finish, registration_start,
    server_login_finish, server_login_start, server_registration_finish, server_registration_start,
    ClientLogin, ClientRegistration, ExportKey, KsfMemo, LoginFinish, OpaqueIdentities,
    ServerLoginState, ServerSetup, SessionKey,
};

/// Label of the key-encryption key derived from the OPAQUE export key.
pub const LABEL_KEK: &str = "coffer/v1/account/kek";
/// Label of the seal of the master key under the key-encryption key.
pub const LABEL_MASTER_KEY: &str = "coffer/v1/account/master-key";
/// Label of the seal of the account secrets under the master key.
pub const LABEL_SECRETS: &str = "coffer/v1/account/secrets";
/// Label of the account-deletion proof derived from a fresh session key (spec §9.5).
pub const LABEL_DELETE: &str = "coffer/v1/account/delete";
/// HKDF label of the key that seals the owner's link entries (spec §6.3, §10.10).
pub const LABEL_LINK_ENTRIES: &str = "coffer/v1/account/link-entries";

/// Maximum length of the sealed account secrets in a key bundle.
pub const MAX_SEALED_SECRETS_LEN: usize = 512;
/// Maximum encoded length of a [`KeyBundle`]; checked before parsing.
pub const MAX_KEY_BUNDLE_LEN: usize = 1024;
/// Length of an account-deletion proof.
pub const DELETION_PROOF_LEN: usize = 32;

crate::cbor_struct! {
    /// The plaintext of the sealed account secrets (spec §6.4). Never leaves the client
    /// unsealed; zeroized on drop.
    #[derive(Clone, PartialEq, Eq)]
    pub struct AccountSecretsRecord (type = 23, version = 1) {
        /// The account these secrets belong to.
        pub account_id: AccountId,
        /// The identity generation whose private keys these are.
        pub identity_generation: u64,
        /// The Ed25519 seed of that generation.
        pub signing_seed: Bytes<32>,
        /// The X25519 secret of that generation.
        pub agreement_secret: Bytes<32>,
        /// The node id of the account's root folder (spec §7).
        pub root_node_id: NodeId,
        /// The node key of the account's root folder (spec §7).
        pub root_node_key: Bytes<32>,
    }
}

impl Drop for AccountSecretsRecord {
    fn drop(&mut self) {
        self.signing_seed.0.zeroize();
        self.agreement_secret.0.zeroize();
        self.root_node_key.0.zeroize();
    }
}

impl fmt::Debug for AccountSecretsRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountSecretsRecord(<redacted>)")
    }
}

crate::cbor_struct! {
    /// Associated data of the wrapped master key (spec §6.3).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MasterKeyContext (type = 24, version = 1) {
        /// The account.
        pub account_id: AccountId,
        /// The master key generation.
        pub master_key_generation: u64,
    }
}

crate::cbor_struct! {
    /// Associated data of the sealed account secrets (spec §6.4).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SecretsContext (type = 25, version = 1) {
        /// The account.
        pub account_id: AccountId,
        /// The generation of the master key that seals the secrets.
        pub master_key_generation: u64,
        /// The identity generation of the sealed private keys.
        pub identity_generation: u64,
    }
}

crate::cbor_struct! {
    /// What the server stores for an account besides its OPAQUE password file and returns after
    /// a successful login (spec §6.4). Contains no plaintext secret.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct KeyBundle (type = 26, version = 1) {
        /// The account.
        pub account_id: AccountId,
        /// The master key generation.
        pub master_key_generation: u64,
        /// The master key sealed under the key-encryption key (104 bytes).
        pub wrapped_master_key: Bytes<SEALED_KEY_LEN>,
        /// The identity generation of the sealed secrets.
        pub identity_generation: u64,
        /// The [`AccountSecretsRecord`] sealed under the master key.
        pub sealed_secrets: ByteBuf,
    }
}

crate::cbor_struct! {
    /// The context of an account-deletion proof (spec §9.5); never transmitted.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct DeletionContext (type = 27, version = 1) {
        /// The account to delete.
        pub account_id: AccountId,
        /// Its user name.
        pub user_name: String,
    }
}

/// The account master key (spec §6.3): 256 random bits and their generation.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey {
    /// The key.
    pub key: SecretKey,
    /// Its generation: 0 at registration, +1 at each compromise recovery.
    pub generation: u64,
}

impl MasterKey {
    /// Draws a fresh master key of `generation`.
    pub fn generate(generation: u64, rng: &mut impl CryptoRngCore) -> Self {
        MasterKey {
            key: SecretKey::generate(rng),
            generation,
        }
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(<redacted>, generation {})", self.generation)
    }
}

/// The account secrets (spec §6.4), typed. Zeroized on drop.
#[derive(Clone, Debug)]
pub struct AccountSecrets {
    /// The identity generation of the keys below.
    pub identity_generation: u64,
    /// The identity's private keys.
    pub identity: IdentityKeys,
    /// The root folder's node id.
    pub root_node_id: NodeId,
    /// The root folder's node key.
    pub root_node_key: SecretKey,
}

/// `KEK = HKDF-SHA-256(export_key, "", "coffer/v1/account/kek" || 0x00 || account_id)`.
#[must_use]
pub fn derive_kek(export_key: &ExportKey, account_id: &AccountId) -> SecretKey {
    primitives::derive_key(export_key.expose(), &[], LABEL_KEK, account_id.as_bytes())
}

/// The key that seals the account's owner link entries (spec §6.3, §10.10):
/// `HKDF-SHA-256(ikm = master_key, salt = "", info = "coffer/v1/account/link-entries" || 0x00 ||
/// account_id)`. It changes with the master key (compromise recovery re-seals the entries).
#[must_use]
pub fn link_entries_key(master_key: &MasterKey, account_id: &AccountId) -> SecretKey {
    primitives::derive_key(
        master_key.key.expose(),
        &[],
        LABEL_LINK_ENTRIES,
        account_id.as_bytes(),
    )
}

fn master_key_aad(account_id: &AccountId, generation: u64) -> Vec<u8> {
    encode(&MasterKeyContext {
        account_id: *account_id,
        master_key_generation: generation,
    })
}

fn secrets_aad(
    account_id: &AccountId,
    master_key_generation: u64,
    identity_generation: u64,
) -> Vec<u8> {
    encode(&SecretsContext {
        account_id: *account_id,
        master_key_generation,
        identity_generation,
    })
}

/// Wraps the master key under the key-encryption key derived from `export_key` (spec §6.3).
/// Returns the 104-byte sealed key.
#[must_use]
pub fn wrap_master_key(
    export_key: &ExportKey,
    account_id: &AccountId,
    master_key: &MasterKey,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let kek = derive_kek(export_key, account_id);
    seal::seal_key(
        &kek,
        LABEL_MASTER_KEY,
        &master_key_aad(account_id, master_key.generation),
        &master_key.key,
        rng,
    )
}

/// Unwraps the master key of `generation` (spec §6.3).
///
/// # Errors
/// [`Error::DecryptionFailed`] for a wrong export key (a wrong password), a wrong account id or
/// generation, any modified byte, or a length other than 104.
pub fn unwrap_master_key(
    export_key: &ExportKey,
    account_id: &AccountId,
    generation: u64,
    wrapped: &[u8],
) -> Result<MasterKey> {
    let kek = derive_kek(export_key, account_id);
    let key = seal::open_key(
        &kek,
        LABEL_MASTER_KEY,
        &master_key_aad(account_id, generation),
        wrapped,
    )?;
    Ok(MasterKey { key, generation })
}

/// Seals the account secrets under the master key (spec §6.4).
#[must_use]
pub fn seal_secrets(
    master_key: &MasterKey,
    account_id: &AccountId,
    secrets: &AccountSecrets,
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    let record = AccountSecretsRecord {
        account_id: *account_id,
        identity_generation: secrets.identity_generation,
        signing_seed: Bytes(*secrets.identity.signing.seed()),
        agreement_secret: Bytes(*secrets.identity.agreement.expose()),
        root_node_id: secrets.root_node_id,
        root_node_key: Bytes(*secrets.root_node_key.expose()),
    };
    let plaintext = Zeroizing::new(encode(&record));
    seal::seal(
        &master_key.key,
        LABEL_SECRETS,
        &secrets_aad(
            account_id,
            master_key.generation,
            secrets.identity_generation,
        ),
        &plaintext,
        rng,
    )
}

/// Opens the account secrets of `identity_generation` sealed under `master_key` (spec §6.4).
///
/// # Errors
/// [`Error::DecryptionFailed`] for a wrong key, binding or modified byte;
/// [`Error::Decode`] if the plaintext is not a valid [`AccountSecretsRecord`];
/// [`Error::Binding`] if it names another account or generation.
pub fn open_secrets(
    master_key: &MasterKey,
    account_id: &AccountId,
    identity_generation: u64,
    sealed: &[u8],
) -> Result<AccountSecrets> {
    if sealed.len() > MAX_SEALED_SECRETS_LEN {
        return Err(Error::DecryptionFailed);
    }
    let plaintext = seal::open(
        &master_key.key,
        LABEL_SECRETS,
        &secrets_aad(account_id, master_key.generation, identity_generation),
        sealed,
    )?;
    let record: AccountSecretsRecord = decode(&plaintext)?;
    if record.account_id != *account_id || record.identity_generation != identity_generation {
        return Err(Error::Binding(
            "account secrets of another account or generation",
        ));
    }
    Ok(AccountSecrets {
        identity_generation,
        identity: IdentityKeys {
            signing: SigningKey::from_seed(&record.signing_seed.0),
            agreement: AgreementSecret::from_bytes(record.agreement_secret.0),
        },
        root_node_id: record.root_node_id,
        root_node_key: SecretKey::from_bytes(record.root_node_key.0),
    })
}

/// An account opened on the client: the master key and the secrets it seals.
#[derive(Clone, Debug)]
pub struct UnlockedAccount {
    /// The account.
    pub account_id: AccountId,
    /// The master key.
    pub master_key: MasterKey,
    /// The account secrets.
    pub secrets: AccountSecrets,
}

impl UnlockedAccount {
    /// Checks that the verified current identity is this account's: same generation, same
    /// public keys as the sealed private keys.
    ///
    /// # Errors
    /// [`Error::Binding`] otherwise.
    pub fn check_identity(&self, identity: &VerifiedIdentity) -> Result<()> {
        let keys = &self.secrets.identity;
        if identity.generation != self.secrets.identity_generation
            || identity.signing_key != keys.signing.verifying_key()
            || identity.agreement_key != keys.agreement.public_key()
        {
            return Err(Error::Binding(
                "identity does not match the account secrets",
            ));
        }
        Ok(())
    }

    fn key_bundle(&self, export_key: &ExportKey, rng: &mut impl CryptoRngCore) -> Result<Vec<u8>> {
        let wrapped = wrap_master_key(export_key, &self.account_id, &self.master_key, rng);
        let sealed = seal_secrets(&self.master_key, &self.account_id, &self.secrets, rng);
        Ok(encode(&KeyBundle {
            account_id: self.account_id,
            master_key_generation: self.master_key.generation,
            wrapped_master_key: Bytes(to_sealed_key(&wrapped)?),
            identity_generation: self.secrets.identity_generation,
            sealed_secrets: ByteBuf::from(sealed),
        }))
    }
}

fn to_sealed_key(bytes: &[u8]) -> Result<[u8; SEALED_KEY_LEN]> {
    bytes
        .try_into()
        .map_err(|_| Error::Internal("sealed key length"))
}

/// Parses a key bundle strictly (spec §6.4).
///
/// # Errors
/// [`Error::Decode`] for any encoding fault or a sealed-secrets field outside
/// `SEAL_OVERHEAD..=MAX_SEALED_SECRETS_LEN`.
pub fn parse_key_bundle(bytes: &[u8]) -> Result<KeyBundle> {
    let bundle: KeyBundle = decode_bounded(bytes, MAX_KEY_BUNDLE_LEN)?;
    if bundle.sealed_secrets.len() < SEAL_OVERHEAD
        || bundle.sealed_secrets.len() > MAX_SEALED_SECRETS_LEN
    {
        return Err(DecodeError::InvalidValue.into());
    }
    Ok(bundle)
}

/// Opens the account after a login (spec §6.4): unwraps the master key with the export key and
/// opens the secrets.
///
/// # Errors
/// [`Error::Decode`] for a malformed bundle, [`Error::Binding`] for a bundle of another account,
/// [`Error::DecryptionFailed`] for a wrong export key or any tampering.
pub fn unlock(
    export_key: &ExportKey,
    account_id: &AccountId,
    key_bundle: &[u8],
) -> Result<UnlockedAccount> {
    let bundle = parse_key_bundle(key_bundle)?;
    if bundle.account_id != *account_id {
        return Err(Error::Binding("key bundle of another account"));
    }
    let master_key = unwrap_master_key(
        export_key,
        account_id,
        bundle.master_key_generation,
        &bundle.wrapped_master_key.0,
    )?;
    let secrets = open_secrets(
        &master_key,
        account_id,
        bundle.identity_generation,
        &bundle.sealed_secrets,
    )?;
    Ok(UnlockedAccount {
        account_id: *account_id,
        master_key,
        secrets,
    })
}

/// Everything a sign-up produces (spec §6.8).
#[derive(Debug)]
pub struct Registration {
    /// The OPAQUE registration upload: the server turns it into the password file with
    /// [`server_registration_finish`].
    pub registration_upload: Vec<u8>,
    /// The encoded [`KeyBundle`] the server stores.
    pub key_bundle: Vec<u8>,
    /// The encoded [`SignedIdentity`] of generation 0 the server publishes.
    pub signed_identity: Vec<u8>,
    /// The opened account, for the client to use at once.
    pub account: UnlockedAccount,
}

/// The `name` in the root folder's metadata (spec §7.6, "Create root").
pub const ROOT_FOLDER_NAME: &str = "root";

/// The metadata revision of a new node's first sealed metadata, the root's included (spec §5.4:
/// the counter starts at 0 and the creation seals once).
const INITIAL_METADATA_REVISION: u64 = 1;

impl Registration {
    /// Creates the account's root folder (spec §6.8 step 5, §7.6 "Create root"): folder metadata
    /// (§5) named [`ROOT_FOLDER_NAME`] with `mtime = time`, sealed under `root_node_key` for
    /// `root_node_id` at metadata revision 1, in a record with no parent, `kind = 0`, all
    /// generations 0 and `time = time`, authored and signed by identity generation 0.
    ///
    /// Randomness: the metadata seal nonce (24 bytes), nothing else. The server accepts the
    /// result as the registration's `root-node` (§11.6.2); [`crate::api::RegisterFinishRequest::new`]
    /// builds the whole request around it.
    ///
    /// # Errors
    /// As [`tree::create_root`] (never, for a registration made by [`register`] or
    /// [`new_account`]).
    pub fn create_root(
        &self,
        time: u64,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(tree::NodeRecord, tree::SignedNode)> {
        let secrets = &self.account.secrets;
        let root = tree::NewNode {
            node_id: secrets.root_node_id,
            node_key: secrets.root_node_key.clone(),
        };
        let metadata = Metadata::folder(ROOT_FOLDER_NAME.into(), time)?;
        let sealed = tree::SealedMetadata {
            revision: INITIAL_METADATA_REVISION,
            sealed: seal_metadata(
                &root.node_key,
                &root.node_id,
                INITIAL_METADATA_REVISION,
                &metadata,
                rng,
            ),
        };
        tree::create_root(&secrets.identity.signing, &root, sealed, time)
    }
}

/// Client sign-up (spec §6.8): finishes the OPAQUE registration started with
/// [`registration_start`] and creates the master key (generation 0), the identity keys and
/// record (generation 0), the root folder's id and key, the key bundle.
///
/// Randomness is drawn in this order: OPAQUE (envelope nonce), master key (32), Ed25519 seed (32),
/// X25519 secret (32), root node id (16), root node key (32), the master-key seal nonce (24), the
/// secrets seal nonce (24).
///
/// # Errors
/// Those of [`registration_finish`]; [`Error::InvalidArgument`] for an invalid user name.
#[allow(clippy::too_many_arguments)]
pub fn register(
    state: ClientRegistration,
    password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    account_id: AccountId,
    created: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Registration> {
    let (registration_upload, export_key) =
        registration_finish(state, password, response, ids, rng)?;
    let account = new_account(&export_key, ids.user_name, account_id, created, rng)?;
    Ok(Registration {
        registration_upload,
        ..account
    })
}

/// The account part of [`register`] (spec §6.8), after the OPAQUE registration: draws the master
/// key (generation 0), the identity keys, the root folder's id and key, signs the identity record
/// of generation 0 for `user_name` and wraps the key bundle under `export_key`. The returned
/// `registration_upload` is empty: the caller pairs it with the upload of the registration that
/// produced `export_key`.
///
/// [`register`] is this after [`registration_finish`]; a load generator calls it directly to
/// build many accounts' records without one Argon2id per account.
///
/// # Errors
/// [`Error::InvalidArgument`] for an invalid user name.
pub fn new_account(
    export_key: &ExportKey,
    user_name: &str,
    account_id: AccountId,
    created: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Registration> {
    let master_key = MasterKey::generate(0, rng);
    let identity = IdentityKeys::generate(rng);
    let root_node_id = NodeId::generate(rng);
    let root_node_key = SecretKey::generate(rng);
    let signed_identity = create_identity(&identity, user_name, created)?;
    let account = UnlockedAccount {
        account_id,
        master_key,
        secrets: AccountSecrets {
            identity_generation: 0,
            identity,
            root_node_id,
            root_node_key,
        },
    };
    let key_bundle = account.key_bundle(export_key, rng)?;
    Ok(Registration {
        registration_upload: Vec::new(),
        key_bundle,
        signed_identity,
        account,
    })
}

/// What a password change produces (spec §9.1): the server replaces its password file and the key
/// bundle atomically.
#[derive(Debug)]
pub struct PasswordChange {
    /// The new OPAQUE registration upload.
    pub registration_upload: Vec<u8>,
    /// The new key bundle: the same master key and the same sealed secrets (byte for byte), with
    /// the master key re-wrapped under the new export key.
    pub key_bundle: Vec<u8>,
}

/// Client password change (spec §9.1): finishes a new OPAQUE registration (started with
/// [`registration_start`] on the new password) and re-wraps the same master key under the new
/// export key. `current_bundle` is the key bundle the client unlocked `account` from.
///
/// # Errors
/// Those of [`registration_finish`] and [`parse_key_bundle`]; [`Error::Binding`] if
/// `current_bundle` does not belong to `account`.
pub fn change_password(
    state: ClientRegistration,
    new_password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    account: &UnlockedAccount,
    current_bundle: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<PasswordChange> {
    let bundle = parse_key_bundle(current_bundle)?;
    if bundle.account_id != account.account_id
        || bundle.master_key_generation != account.master_key.generation
        || bundle.identity_generation != account.secrets.identity_generation
    {
        return Err(Error::Binding("key bundle does not belong to the account"));
    }
    let (registration_upload, export_key) =
        registration_finish(state, new_password, response, ids, rng)?;
    let wrapped = wrap_master_key(&export_key, &account.account_id, &account.master_key, rng);
    let key_bundle = encode(&KeyBundle {
        wrapped_master_key: Bytes(to_sealed_key(&wrapped)?),
        ..bundle
    });
    Ok(PasswordChange {
        registration_upload,
        key_bundle,
    })
}

/// What a compromise recovery produces (spec §9.4).
#[derive(Debug)]
pub struct Recovery {
    /// The new OPAQUE registration upload.
    pub registration_upload: Vec<u8>,
    /// The new key bundle (master key generation + 1, identity generation + 1).
    pub key_bundle: Vec<u8>,
    /// The encoded [`SignedIdentity`] of the new generation, signed by the old one.
    pub signed_identity: Vec<u8>,
    /// The new account state. Its root node key is fresh: the tree is re-keyed under it
    /// (spec §7, §9.2).
    pub account: UnlockedAccount,
}

/// Client compromise recovery (spec §9.4): finishes a new OPAQUE registration (started with
/// [`registration_start`] on the new password), draws a new master key (generation + 1), new
/// identity keys and a new root node key, signs the new identity generation with the old one,
/// and reseals everything. `current_identity` is the account's current encoded
/// [`SignedIdentity`].
///
/// Randomness is drawn in this order: OPAQUE (envelope nonce), master key (32), Ed25519 seed
/// (32), X25519 secret (32), root node key (32), the two seal nonces (24 each).
///
/// # Errors
/// Those of [`registration_finish`] and of parsing `current_identity`; [`Error::Binding`] if
/// `current_identity` is not the account's current identity; [`Error::LimitExceeded`] if a
/// generation would overflow.
#[allow(clippy::too_many_arguments)]
pub fn recover(
    state: ClientRegistration,
    new_password: &[u8],
    response: &[u8],
    ids: &OpaqueIdentities<'_>,
    account: &UnlockedAccount,
    current_identity: &[u8],
    created: u64,
    rng: &mut impl CryptoRngCore,
) -> Result<Recovery> {
    let current = parse_signed_identity(current_identity)?;
    let keys = &account.secrets.identity;
    if current.generation != account.secrets.identity_generation
        || current.signing_key.0 != keys.signing.verifying_key().to_bytes()
        || current.agreement_key.0 != keys.agreement.public_key().to_bytes()
        || current.user_name != ids.user_name
    {
        return Err(Error::Binding(
            "identity does not match the account secrets",
        ));
    }
    let overflow = Error::LimitExceeded {
        what: "master key generation",
        limit: u64::MAX,
    };
    let master_generation = account
        .master_key
        .generation
        .checked_add(1)
        .ok_or(overflow.clone())?;
    let identity_generation = account
        .secrets
        .identity_generation
        .checked_add(1)
        .ok_or(overflow)?;
    let (registration_upload, export_key) =
        registration_finish(state, new_password, response, ids, rng)?;
    let master_key = MasterKey::generate(master_generation, rng);
    let identity = IdentityKeys::generate(rng);
    let root_node_key = SecretKey::generate(rng);
    let signed_identity = rotate_identity(current_identity, &keys.signing, &identity, created)?;
    let new_account = UnlockedAccount {
        account_id: account.account_id,
        master_key,
        secrets: AccountSecrets {
            identity_generation,
            identity,
            root_node_id: account.secrets.root_node_id,
            root_node_key,
        },
    };
    let key_bundle = new_account.key_bundle(&export_key, rng)?;
    Ok(Recovery {
        registration_upload,
        key_bundle,
        signed_identity,
        account: new_account,
    })
}

/// Server, sign-up (spec §6.8 step 5): checks the key bundle and the generation-0 identity a
/// client uploads for `account_id` and `user_name`. The OPAQUE upload is checked by
/// [`server_registration_finish`].
///
/// # Errors
/// Decoding errors of either structure; [`Error::Binding`] for another account, user name or a
/// generation other than 0; the errors of [`verify_chain`].
pub fn check_new_account(
    account_id: &AccountId,
    user_name: &str,
    key_bundle: &[u8],
    signed_identity: &[u8],
) -> Result<VerifiedIdentity> {
    let bundle = parse_key_bundle(key_bundle)?;
    if bundle.account_id != *account_id
        || bundle.master_key_generation != 0
        || bundle.identity_generation != 0
    {
        return Err(Error::Binding(
            "key bundle is not a new bundle of this account",
        ));
    }
    let identity = verify_chain(&[signed_identity])?;
    if identity.user_name != user_name {
        return Err(Error::Binding("identity of another user name"));
    }
    Ok(identity)
}

/// Server, password change (spec §9.1 step 4): accepts `new_bundle` only if it differs from
/// `stored_bundle` in nothing but the wrapped master key.
///
/// # Errors
/// Decoding errors; [`Error::Binding`] if anything else changed.
pub fn check_password_change(stored_bundle: &[u8], new_bundle: &[u8]) -> Result<()> {
    let old = parse_key_bundle(stored_bundle)?;
    let new = parse_key_bundle(new_bundle)?;
    if old.account_id != new.account_id
        || old.master_key_generation != new.master_key_generation
        || old.identity_generation != new.identity_generation
        || old.sealed_secrets != new.sealed_secrets
    {
        return Err(Error::Binding(
            "a password change may replace only the wrapped master key",
        ));
    }
    Ok(())
}

/// Server, compromise recovery (spec §9.4 step 5): checks that `new_signed_identity` extends the
/// stored chain by exactly one generation and that `new_bundle` is the next bundle of the same
/// account (both generations + 1). Returns the new head of the chain.
///
/// # Errors
/// Decoding errors; the errors of [`verify_chain`] on the extended chain; [`Error::Binding`] for a
/// bundle of another account or with other generations; [`Error::LimitExceeded`] when a
/// generation would overflow.
pub fn check_recovery<B: AsRef<[u8]>>(
    stored_chain: &[B],
    stored_bundle: &[u8],
    new_bundle: &[u8],
    new_signed_identity: &[u8],
) -> Result<VerifiedIdentity> {
    let old = parse_key_bundle(stored_bundle)?;
    let new = parse_key_bundle(new_bundle)?;
    let mut chain: Vec<&[u8]> = stored_chain.iter().map(AsRef::as_ref).collect();
    let current = verify_chain(&chain)?;
    chain.push(new_signed_identity);
    let head = verify_chain(&chain)?;
    let overflow = Error::LimitExceeded {
        what: "master key generation",
        limit: u64::MAX,
    };
    if new.account_id != old.account_id
        || old.identity_generation != current.generation
        || new.master_key_generation != old.master_key_generation.checked_add(1).ok_or(overflow)?
        || new.identity_generation != head.generation
    {
        return Err(Error::Binding(
            "key bundle is not the next bundle of this account",
        ));
    }
    Ok(head)
}

fn deletion_value(session_key: &SessionKey, account_id: &AccountId, user_name: &str) -> SecretKey {
    let ctx = encode(&DeletionContext {
        account_id: *account_id,
        user_name: user_name.into(),
    });
    primitives::derive_key(session_key.expose(), &[], LABEL_DELETE, &ctx)
}

/// The account-deletion proof (spec §9.5): a value only the two ends of a fresh OPAQUE login can
/// compute, bound to the account.
#[must_use]
pub fn deletion_proof(
    session_key: &SessionKey,
    account_id: &AccountId,
    user_name: &str,
) -> [u8; DELETION_PROOF_LEN] {
    *deletion_value(session_key, account_id, user_name).expose()
}

/// Server: checks an account-deletion proof in constant time (spec §9.5).
///
/// # Errors
/// [`Error::AuthenticationFailed`] unless `proof` is the proof for this session and account.
pub fn verify_deletion_proof(
    session_key: &SessionKey,
    account_id: &AccountId,
    user_name: &str,
    proof: &[u8],
) -> Result<()> {
    let expected = deletion_value(session_key, account_id, user_name);
    if primitives::ct_eq(expected.expose(), proof) {
        Ok(())
    } else {
        Err(Error::AuthenticationFailed)
    }
}

#[cfg(test)]
mod tests;
