//! Spec §8, "Sharing to a user": shares, generations and grants.
//!
//! A share is a folder whose folder key (§7) is granted to members. The owner publishes a signed
//! [`ShareRecord`] naming the folder, the current generation (the folder's `key_generation`) and
//! the members with their permissions. Each member receives, per generation, a [`Grant`]: the
//! folder key of that generation encrypted with HPKE to the member's X25519 key, with every
//! binding (share, generation, both identities, permission) in the HPKE `info`, and signed by the
//! granter.

use alloc::string::String;
use alloc::vec::Vec;

use rand_core::CryptoRngCore;

use crate::encoding::{decode_bounded, encode, ByteBuf, Bytes};
use crate::error::{DecodeError, Error, Result};
use crate::ids::{NodeId, ShareId};
use crate::primitives::{
    hpke_open, hpke_seal, AgreementPublic, AgreementSecret, SecretKey, SigningKey, VerifyingKey,
    HPKE_ENC_LEN, KEY_LEN, SIGNATURE_LEN, TAG_LEN,
};
use crate::tree::{FolderKey, NodeRecord};

/// Label of the owner's signature over a share record.
pub const LABEL_SHARE_RECORD: &str = "coffer/v1/share/record";
/// Label of the granter's signature over a grant.
pub const LABEL_GRANT: &str = "coffer/v1/share/grant";

/// Permission: the member may read.
pub const PERMISSION_READ: u64 = 0;
/// Permission: the member may read and write (its records are acceptable authors, §7).
pub const PERMISSION_WRITE: u64 = 1;

/// Maximum length of a user name in bytes (UTF-8).
pub const MAX_USER_NAME_LEN: usize = 255;
/// Maximum number of members of a share.
pub const MAX_MEMBERS: usize = 1024;
/// Maximum encoded length of a [`SignedShare`].
pub const MAX_SIGNED_SHARE_LEN: usize = 512 * 1024;
/// Maximum encoded length of a [`SignedGrant`].
pub const MAX_SIGNED_GRANT_LEN: usize = 2048;
/// Length of a grant's HPKE ciphertext: a 32-byte key and a tag.
pub const GRANT_CIPHERTEXT_LEN: usize = KEY_LEN + TAG_LEN;

crate::cbor_struct! {
    /// The owner of a share.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ShareOwner {
        /// The owner's user name.
        pub user_name: String,
        /// The owner's Ed25519 identity key.
        pub ed25519: Bytes<32>,
    }
}

crate::cbor_struct! {
    /// A member of a share.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Member {
        /// The member's user name.
        pub user_name: String,
        /// The member's Ed25519 identity key.
        pub ed25519: Bytes<32>,
        /// The member's X25519 identity key, to which grants are encrypted.
        pub x25519: Bytes<32>,
        /// The generation of the member's identity (§6).
        pub identity_generation: u64,
        /// [`PERMISSION_READ`] or [`PERMISSION_WRITE`].
        pub permission: u64,
    }
}

crate::cbor_struct! {
    /// A share record (type 50).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ShareRecord (type = 50, version = 1) {
        /// The share.
        pub share_id: ShareId,
        /// The shared folder.
        pub folder_id: NodeId,
        /// The owner, who signs this record.
        pub owner: ShareOwner,
        /// The current generation: equal to the folder's `key_generation`.
        pub generation: u64,
        /// The members, unique by user name, none of them the owner.
        pub members: Vec<Member>,
    }
}

crate::cbor_struct! {
    /// A share record signed by its owner (type 51).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedShare (type = 51, version = 1) {
        /// The exact encoding of the [`ShareRecord`].
        pub record: ByteBuf,
        /// `Ed25519(owner, "coffer/v1/share/record" || 0x00 || record)`.
        pub signature: Bytes<SIGNATURE_LEN>,
    }
}

crate::cbor_struct! {
    /// The identity that issued a grant.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Granter {
        /// The granter's user name.
        pub user_name: String,
        /// The granter's identity generation.
        pub identity_generation: u64,
        /// The granter's Ed25519 identity key.
        pub ed25519: Bytes<32>,
    }
}

crate::cbor_struct! {
    /// The identity a grant is for.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Recipient {
        /// The recipient's user name.
        pub user_name: String,
        /// The recipient's identity generation.
        pub identity_generation: u64,
        /// The recipient's X25519 identity key.
        pub x25519: Bytes<32>,
    }
}

crate::cbor_struct! {
    /// A grant (type 52): the folder key of one generation for one member.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Grant (type = 52, version = 1) {
        /// The share.
        pub share_id: ShareId,
        /// The generation of the granted folder key.
        pub generation: u64,
        /// Who grants.
        pub granter: Granter,
        /// To whom.
        pub recipient: Recipient,
        /// The recipient's permission.
        pub permission: u64,
        /// The HPKE encapsulated key.
        pub enc: Bytes<HPKE_ENC_LEN>,
        /// The HPKE ciphertext of the folder key (48 bytes).
        pub ciphertext: ByteBuf,
    }
}

crate::cbor_struct! {
    /// A grant signed by its granter (type 53).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct SignedGrant (type = 53, version = 1) {
        /// The exact encoding of the [`Grant`].
        pub grant: ByteBuf,
        /// `Ed25519(granter, "coffer/v1/share/grant" || 0x00 || grant)`.
        pub signature: Bytes<SIGNATURE_LEN>,
    }
}

crate::cbor_struct! {
    /// The HPKE `info` of a grant (type 54).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct GrantInfo (type = 54, version = 1) {
        /// The share.
        pub share_id: ShareId,
        /// The generation.
        pub generation: u64,
        /// The granter's Ed25519 key.
        pub granter_ed25519: Bytes<32>,
        /// The granter's identity generation.
        pub granter_identity_generation: u64,
        /// The recipient's X25519 key.
        pub recipient_x25519: Bytes<32>,
        /// The recipient's identity generation.
        pub recipient_identity_generation: u64,
        /// The recipient's permission.
        pub permission: u64,
    }
}

fn invalid() -> Error {
    Error::Decode(DecodeError::InvalidValue)
}

fn check_user_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_USER_NAME_LEN {
        return Err(invalid());
    }
    Ok(())
}

fn check_permission(p: u64) -> Result<()> {
    if p > PERMISSION_WRITE {
        return Err(invalid());
    }
    Ok(())
}

/// An identity the caller has pinned (§6): the values a grant or share record must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedIdentity {
    /// The user name.
    pub user_name: String,
    /// The identity generation.
    pub identity_generation: u64,
    /// The Ed25519 identity key.
    pub ed25519: VerifyingKey,
    /// The X25519 identity key.
    pub x25519: AgreementPublic,
}

impl PinnedIdentity {
    /// This identity as a share member with `permission`.
    #[must_use]
    pub fn as_member(&self, permission: u64) -> Member {
        Member {
            user_name: self.user_name.clone(),
            ed25519: Bytes(self.ed25519.to_bytes()),
            x25519: Bytes(self.x25519.to_bytes()),
            identity_generation: self.identity_generation,
            permission,
        }
    }
}

impl Member {
    /// The member's validated Ed25519 key.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`].
    pub fn ed25519_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(&self.ed25519.0)
    }

    /// The member's validated X25519 key.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`].
    pub fn x25519_key(&self) -> Result<AgreementPublic> {
        AgreementPublic::from_bytes(&self.x25519.0)
    }
}

impl ShareRecord {
    /// Checks the rules of spec §8.2 that the CDDL cannot express: user names of 1 to 255 bytes,
    /// at most [`MAX_MEMBERS`] members unique by user name and distinct from the owner,
    /// permissions in range, every key valid.
    ///
    /// # Errors
    /// [`DecodeError::InvalidValue`] or [`Error::InvalidPublicKey`].
    pub fn check_structure(&self) -> Result<()> {
        check_user_name(&self.owner.user_name)?;
        VerifyingKey::from_bytes(&self.owner.ed25519.0)?;
        if self.members.len() > MAX_MEMBERS {
            return Err(invalid());
        }
        let mut names = alloc::collections::BTreeSet::new();
        names.insert(self.owner.user_name.as_str());
        for m in &self.members {
            check_user_name(&m.user_name)?;
            check_permission(m.permission)?;
            if !names.insert(m.user_name.as_str()) {
                return Err(invalid());
            }
            m.ed25519_key()?;
            m.x25519_key()?;
        }
        Ok(())
    }

    /// The member with `user_name`, if any.
    #[must_use]
    pub fn member(&self, user_name: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_name == user_name)
    }

    /// The acceptable authors of node records in the shared subtree (§7): the owner and every
    /// member with write permission.
    ///
    /// # Errors
    /// [`Error::InvalidPublicKey`] (never for a verified record).
    pub fn writers(&self) -> Result<Vec<VerifyingKey>> {
        let mut out = Vec::with_capacity(self.members.len() + 1);
        out.push(VerifyingKey::from_bytes(&self.owner.ed25519.0)?);
        for m in &self.members {
            if m.permission == PERMISSION_WRITE {
                out.push(m.ed25519_key()?);
            }
        }
        Ok(out)
    }

    /// Checks that `folder` is this share's folder at this share's generation.
    ///
    /// # Errors
    /// [`Error::Binding`] otherwise.
    pub fn check_folder(&self, folder: &NodeRecord) -> Result<()> {
        if folder.node_id != self.folder_id || !folder.is_folder() {
            return Err(Error::Binding("share folder id"));
        }
        if folder.key_generation != self.generation {
            return Err(Error::Binding("share generation"));
        }
        Ok(())
    }

    /// Signs this record with the owner's key.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if `owner` is not the record's owner key; as
    /// [`ShareRecord::check_structure`].
    pub fn sign(&self, owner: &SigningKey) -> Result<SignedShare> {
        self.check_structure()?;
        if owner.verifying_key().to_bytes() != self.owner.ed25519.0 {
            return Err(Error::InvalidArgument("signing key is not the share owner"));
        }
        let record = encode(self);
        let signature = Bytes(owner.sign(LABEL_SHARE_RECORD, &record));
        Ok(SignedShare {
            record: ByteBuf::from(record),
            signature,
        })
    }
}

/// Verifies a signed share record for `share_id` against the pinned `owner` key, rejecting a
/// generation older than `min_generation` (the newest the client has seen).
///
/// # Errors
/// [`Error::Decode`], [`Error::InvalidPublicKey`], [`Error::Binding`] (owner, share id,
/// generation rollback), [`Error::BadSignature`].
pub fn verify_share(
    signed: &[u8],
    share_id: ShareId,
    owner: &VerifyingKey,
    min_generation: u64,
) -> Result<ShareRecord> {
    let outer: SignedShare = decode_bounded(signed, MAX_SIGNED_SHARE_LEN)?;
    let record: ShareRecord = decode_bounded(&outer.record, MAX_SIGNED_SHARE_LEN)?;
    record.check_structure()?;
    if record.owner.ed25519.0 != owner.to_bytes() {
        return Err(Error::Binding("share owner"));
    }
    owner.verify(LABEL_SHARE_RECORD, &outer.record, &outer.signature.0)?;
    if record.share_id != share_id {
        return Err(Error::Binding("share id"));
    }
    if record.generation < min_generation {
        return Err(Error::Binding("share generation rollback"));
    }
    Ok(record)
}

impl Grant {
    /// The HPKE `info` of this grant: `encode(GrantInfo)`.
    #[must_use]
    pub fn info(&self) -> Vec<u8> {
        encode(&GrantInfo {
            share_id: self.share_id,
            generation: self.generation,
            granter_ed25519: self.granter.ed25519,
            granter_identity_generation: self.granter.identity_generation,
            recipient_x25519: self.recipient.x25519,
            recipient_identity_generation: self.recipient.identity_generation,
            permission: self.permission,
        })
    }

    fn check_structure(&self) -> Result<()> {
        check_user_name(&self.granter.user_name)?;
        check_user_name(&self.recipient.user_name)?;
        check_permission(self.permission)?;
        if self.ciphertext.len() != GRANT_CIPHERTEXT_LEN {
            return Err(invalid());
        }
        Ok(())
    }
}

/// Server side (spec §11.15): decodes a signed grant strictly, checks its structure and its
/// signature under the granter key the grant names, and returns the grant. The server then checks
/// that this granter key is the caller's current identity key (§6) and reads `share_id`,
/// `generation` and `recipient`. Opening the key is [`open_grant`], a member's business.
///
/// # Errors
/// [`Error::Decode`] for malformed input; [`Error::InvalidPublicKey`] for an invalid granter key;
/// [`Error::BadSignature`].
pub fn verify_grant_signature(signed: &[u8]) -> Result<Grant> {
    let outer: SignedGrant = decode_bounded(signed, MAX_SIGNED_GRANT_LEN)?;
    let grant: Grant = decode_bounded(&outer.grant, MAX_SIGNED_GRANT_LEN)?;
    grant.check_structure()?;
    VerifyingKey::from_bytes(&grant.granter.ed25519.0)?.verify(
        LABEL_GRANT,
        &outer.grant,
        &outer.signature.0,
    )?;
    Ok(grant)
}

/// The granting identity: its signing key, user name and identity generation.
#[derive(Debug)]
pub struct GranterKeys<'a> {
    /// The granter's Ed25519 identity key.
    pub signing_key: &'a SigningKey,
    /// The granter's user name.
    pub user_name: &'a str,
    /// The granter's identity generation.
    pub identity_generation: u64,
}

/// Issues a grant of `folder_key` to `member` in `share`: HPKE-encrypts the key with
/// `info = encode(GrantInfo)` and empty `aad`, and signs the grant.
///
/// # Errors
/// [`Error::InvalidArgument`] if `folder_key` is not the share folder's key of the share's
/// generation or `member` is not listed in `share`; [`Error::InvalidPublicKey`] for an invalid member key; [`Error::NonContributory`]
/// from HPKE.
pub fn issue_grant(
    granter: &GranterKeys<'_>,
    share: &ShareRecord,
    member: &Member,
    folder_key: &FolderKey,
    rng: &mut impl CryptoRngCore,
) -> Result<SignedGrant> {
    if folder_key.folder_id != share.folder_id || folder_key.generation != share.generation {
        return Err(Error::InvalidArgument(
            "folder key is not the share's current key",
        ));
    }
    if share.member(&member.user_name) != Some(member) {
        return Err(Error::InvalidArgument("not a member of the share"));
    }
    check_user_name(granter.user_name)?;
    check_permission(member.permission)?;
    let recipient_key = member.x25519_key()?;
    let mut grant = Grant {
        share_id: share.share_id,
        generation: share.generation,
        granter: Granter {
            user_name: granter.user_name.into(),
            identity_generation: granter.identity_generation,
            ed25519: Bytes(granter.signing_key.verifying_key().to_bytes()),
        },
        recipient: Recipient {
            user_name: member.user_name.clone(),
            identity_generation: member.identity_generation,
            x25519: member.x25519,
        },
        permission: member.permission,
        enc: Bytes([0; HPKE_ENC_LEN]),
        ciphertext: ByteBuf::new(),
    };
    let info = grant.info();
    let (enc, ciphertext) = hpke_seal(&recipient_key, &info, &[], folder_key.key.expose(), rng)?;
    grant.enc = Bytes(enc);
    grant.ciphertext = ByteBuf::from(ciphertext);
    let bytes = encode(&grant);
    let signature = Bytes(granter.signing_key.sign(LABEL_GRANT, &bytes));
    Ok(SignedGrant {
        grant: ByteBuf::from(bytes),
        signature,
    })
}

/// What a recipient expects of a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantExpectation {
    /// The share.
    pub share_id: ShareId,
    /// The generation the recipient asked for.
    pub generation: u64,
    /// The granter, as pinned by the recipient (§6).
    pub granter: PinnedIdentity,
}

/// The recipient's own identity: user name, identity generation and X25519 secret.
#[derive(Debug)]
pub struct RecipientKeys<'a> {
    /// The recipient's user name.
    pub user_name: &'a str,
    /// The recipient's identity generation.
    pub identity_generation: u64,
    /// The recipient's X25519 identity secret.
    pub secret: &'a AgreementSecret,
}

/// Verifies and opens a signed grant: the granter is the pinned one, the signature verifies,
/// share id, generation and recipient are as expected, and the HPKE ciphertext opens.
///
/// # Errors
/// [`Error::Decode`] for malformed input; [`Error::Binding`] for a granter, share, generation or
/// recipient mismatch; [`Error::BadSignature`]; [`Error::DecryptionFailed`].
pub fn open_grant(
    signed: &[u8],
    expected: &GrantExpectation,
    me: &RecipientKeys<'_>,
) -> Result<(Grant, SecretKey)> {
    let outer: SignedGrant = decode_bounded(signed, MAX_SIGNED_GRANT_LEN)?;
    let grant: Grant = decode_bounded(&outer.grant, MAX_SIGNED_GRANT_LEN)?;
    grant.check_structure()?;
    let pinned = &expected.granter;
    if grant.granter.ed25519.0 != pinned.ed25519.to_bytes()
        || grant.granter.identity_generation != pinned.identity_generation
        || grant.granter.user_name != pinned.user_name
    {
        return Err(Error::Binding("granter"));
    }
    pinned
        .ed25519
        .verify(LABEL_GRANT, &outer.grant, &outer.signature.0)?;
    if grant.share_id != expected.share_id {
        return Err(Error::Binding("share id"));
    }
    if grant.generation != expected.generation {
        return Err(Error::Binding("grant generation"));
    }
    if grant.recipient.x25519.0 != me.secret.public_key().to_bytes()
        || grant.recipient.identity_generation != me.identity_generation
        || grant.recipient.user_name != me.user_name
    {
        return Err(Error::Binding("recipient"));
    }
    let pt = zeroize::Zeroizing::new(hpke_open(
        me.secret,
        &grant.enc.0,
        &grant.info(),
        &[],
        &grant.ciphertext,
    )?);
    let key = SecretKey::from_slice(&pt).map_err(|_| Error::DecryptionFailed)?;
    Ok((grant, key))
}

/// Creates a share of `folder` (whose current key is `folder_key`) with `members`, and issues a
/// grant to each. Returns the record, its signed form and the grants in member order.
///
/// # Errors
/// As [`ShareRecord::sign`] and [`issue_grant`].
pub fn create_share(
    owner: &GranterKeys<'_>,
    share_id: ShareId,
    folder_key: &FolderKey,
    members: Vec<Member>,
    rng: &mut impl CryptoRngCore,
) -> Result<(ShareRecord, SignedShare, Vec<SignedGrant>)> {
    let record = ShareRecord {
        share_id,
        folder_id: folder_key.folder_id,
        owner: ShareOwner {
            user_name: owner.user_name.into(),
            ed25519: Bytes(owner.signing_key.verifying_key().to_bytes()),
        },
        generation: folder_key.generation,
        members,
    };
    let signed = record.sign(owner.signing_key)?;
    let grants = record
        .members
        .iter()
        .map(|m| issue_grant(owner, &record, m, folder_key, rng))
        .collect::<Result<Vec<_>>>()?;
    Ok((record, signed, grants))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::rand_core::SeedableRng as _;

    pub(crate) struct User {
        pub(crate) name: String,
        pub(crate) sign: SigningKey,
        pub(crate) agree: AgreementSecret,
    }

    impl User {
        pub(crate) fn new(name: &str, rng: &mut impl CryptoRngCore) -> Self {
            User {
                name: name.into(),
                sign: SigningKey::generate(rng),
                agree: AgreementSecret::generate(rng),
            }
        }
        pub(crate) fn pinned(&self) -> PinnedIdentity {
            PinnedIdentity {
                user_name: self.name.clone(),
                identity_generation: 0,
                ed25519: self.sign.verifying_key(),
                x25519: self.agree.public_key(),
            }
        }
        pub(crate) fn granter(&self) -> GranterKeys<'_> {
            GranterKeys {
                signing_key: &self.sign,
                user_name: &self.name,
                identity_generation: 0,
            }
        }
        pub(crate) fn recipient(&self) -> RecipientKeys<'_> {
            RecipientKeys {
                user_name: &self.name,
                identity_generation: 0,
                secret: &self.agree,
            }
        }
    }

    struct Fixture {
        owner: User,
        b: User,
        c: User,
        share: ShareRecord,
        signed: Vec<u8>,
        grant_b: Vec<u8>,
        key: FolderKey,
    }

    fn fixture() -> Fixture {
        let mut rng = rand_chacha::ChaCha20Rng::from_seed([11; 32]);
        let owner = User::new("alice", &mut rng);
        let b = User::new("bob", &mut rng);
        let c = User::new("carol", &mut rng);
        let key = FolderKey {
            folder_id: NodeId::generate(&mut rng),
            generation: 0,
            key: SecretKey::generate(&mut rng),
        };
        let share_id = ShareId::generate(&mut rng);
        let (share, signed, grants) = create_share(
            &owner.granter(),
            share_id,
            &key,
            vec![b.pinned().as_member(PERMISSION_WRITE)],
            &mut rng,
        )
        .expect("share");
        Fixture {
            owner,
            b,
            c,
            share,
            signed: encode(&signed),
            grant_b: encode(&grants[0]),
            key,
        }
    }

    fn expect_for(f: &Fixture) -> GrantExpectation {
        GrantExpectation {
            share_id: f.share.share_id,
            generation: 0,
            granter: f.owner.pinned(),
        }
    }

    #[test]
    fn grant_opens_for_recipient_only() {
        let f = fixture();
        let (grant, key) = open_grant(&f.grant_b, &expect_for(&f), &f.b.recipient()).expect("open");
        assert_eq!(key, f.key.key);
        assert_eq!(grant.permission, PERMISSION_WRITE);
        // Carol, even claiming to be bob, cannot open it.
        let carol_as_bob = RecipientKeys {
            user_name: "bob",
            identity_generation: 0,
            secret: &f.c.agree,
        };
        assert_eq!(
            open_grant(&f.grant_b, &expect_for(&f), &f.c.recipient()).map(|_| ()),
            Err(Error::Binding("recipient"))
        );
        assert_eq!(
            open_grant(&f.grant_b, &expect_for(&f), &carol_as_bob).map(|_| ()),
            Err(Error::Binding("recipient"))
        );
        let mut e = expect_for(&f);
        e.generation = 1;
        assert_eq!(
            open_grant(&f.grant_b, &e, &f.b.recipient()).map(|_| ()),
            Err(Error::Binding("grant generation"))
        );
        let mut e = expect_for(&f);
        e.granter = f.c.pinned();
        assert_eq!(
            open_grant(&f.grant_b, &e, &f.b.recipient()).map(|_| ()),
            Err(Error::Binding("granter"))
        );
        let mut e = expect_for(&f);
        e.share_id = ShareId::from_bytes([0; 16]);
        assert_eq!(
            open_grant(&f.grant_b, &e, &f.b.recipient()).map(|_| ()),
            Err(Error::Binding("share id"))
        );
    }

    #[test]
    fn server_verifies_grant_signature() {
        let f = fixture();
        let g = verify_grant_signature(&f.grant_b).expect("valid grant");
        assert_eq!(g.share_id, f.share.share_id);
        assert_eq!(g.recipient.user_name, "bob");
        assert_eq!(g.granter.ed25519.0, f.owner.sign.verifying_key().to_bytes());
        let mut outer: SignedGrant = crate::encoding::decode(&f.grant_b).expect("outer");
        outer.signature.0[0] ^= 1;
        assert_eq!(
            verify_grant_signature(&encode(&outer)).map(|_| ()),
            Err(Error::BadSignature)
        );
        let mut bad = f.grant_b.clone();
        bad.push(0);
        assert!(matches!(
            verify_grant_signature(&bad),
            Err(Error::Decode(_))
        ));
    }

    /// Re-signs a grant whose info fields were altered: the signature passes, HPKE must not.
    #[test]
    fn altered_info_fields_fail_decryption() {
        let f = fixture();
        let outer: SignedGrant = crate::encoding::decode(&f.grant_b).expect("outer");
        let grant: Grant = crate::encoding::decode(&outer.grant).expect("grant");
        let alters: Vec<fn(&mut Grant)> = vec![
            |g| g.permission = PERMISSION_READ,
            |g| g.share_id = ShareId::from_bytes([7; 16]),
            |g| g.generation = 1,
            |g| g.granter.identity_generation = 1,
            |g| g.recipient.identity_generation = 1,
        ];
        for (i, alter) in alters.into_iter().enumerate() {
            let mut g = grant.clone();
            alter(&mut g);
            let bytes = encode(&g);
            let sig = Bytes(f.owner.sign.sign(LABEL_GRANT, &bytes));
            let signed = encode(&SignedGrant {
                grant: ByteBuf::from(bytes),
                signature: sig,
            });
            let mut e = expect_for(&f);
            e.share_id = g.share_id;
            e.generation = g.generation;
            e.granter.identity_generation = g.granter.identity_generation;
            let me = RecipientKeys {
                user_name: "bob",
                identity_generation: g.recipient.identity_generation,
                secret: &f.b.agree,
            };
            assert_eq!(
                open_grant(&signed, &e, &me).map(|_| ()),
                Err(Error::DecryptionFailed),
                "alteration {i}"
            );
        }
    }

    #[test]
    fn share_record_verifies_and_binds() {
        let f = fixture();
        let owner = f.owner.sign.verifying_key();
        let rec = verify_share(&f.signed, f.share.share_id, &owner, 0).expect("verify");
        assert_eq!(rec, f.share);
        assert_eq!(rec.writers().expect("writers").len(), 2);
        assert_eq!(
            verify_share(&f.signed, f.share.share_id, &owner, 1).map(|_| ()),
            Err(Error::Binding("share generation rollback"))
        );
        assert_eq!(
            verify_share(&f.signed, f.share.share_id, &f.b.sign.verifying_key(), 0).map(|_| ()),
            Err(Error::Binding("share owner"))
        );
        assert_eq!(
            verify_share(&f.signed, ShareId::from_bytes([1; 16]), &owner, 0).map(|_| ()),
            Err(Error::Binding("share id"))
        );
        // Structure: duplicate member, owner as member, bad permission.
        let mut r = f.share.clone();
        r.members.push(r.members[0].clone());
        assert!(r.sign(&f.owner.sign).is_err());
        let mut r = f.share.clone();
        r.members[0].user_name = "alice".into();
        assert!(r.sign(&f.owner.sign).is_err());
        let mut r = f.share.clone();
        r.members[0].permission = 2;
        assert!(r.sign(&f.owner.sign).is_err());
        let mut r = f.share.clone();
        r.members[0].user_name = String::new();
        assert!(r.sign(&f.owner.sign).is_err());
        assert!(f.share.sign(&f.b.sign).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn any_single_byte_change_in_a_grant_is_rejected(idx in any::<prop::sample::Index>(), delta in 1u8..=255) {
            let f = fixture();
            let mut bad = f.grant_b.clone();
            let i = idx.index(bad.len());
            bad[i] = bad[i].wrapping_add(delta);
            prop_assert!(open_grant(&bad, &expect_for(&f), &f.b.recipient()).is_err());
        }

        #[test]
        fn any_single_byte_change_in_a_share_record_is_rejected(idx in any::<prop::sample::Index>(), delta in 1u8..=255) {
            let f = fixture();
            let mut bad = f.signed.clone();
            let i = idx.index(bad.len());
            bad[i] = bad[i].wrapping_add(delta);
            prop_assert!(verify_share(&bad, f.share.share_id, &f.owner.sign.verifying_key(), 0).is_err());
        }
    }
}
