//! The catalogue of every body of spec §11: name, type code, limit, fields, a decoder and a fixed
//! example. Servers use it for documentation and routing tables; the tests and the published
//! vectors (`test-vectors/api.json`) use it to cover every body.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::*;
use crate::encoding::{ByteBuf, Bytes};
use crate::error::DecodeError;
use crate::ids::{AccountId, LinkId, NodeId, ShareId, UploadId};

/// One body of spec §11.
#[derive(Debug, Clone, Copy)]
pub struct BodyInfo {
    /// The structure's name.
    pub name: &'static str,
    /// Its type code.
    pub type_code: u64,
    /// Its size limit.
    pub max_len: usize,
    /// Its field names, in wire order.
    pub fields: &'static [&'static str],
    /// Decodes `bytes` as this body (limit and strict rules applied) and re-encodes the result.
    pub decode: fn(&[u8]) -> Result<Vec<u8>, DecodeError>,
    /// A fixed, valid example, encoded.
    pub example: fn() -> Vec<u8>,
}

macro_rules! catalogue {
    ($( $ty:ident => $ex:expr ),+ $(,)?) => {
        /// Every body of spec §11, in type-code order.
        pub static BODIES: &[BodyInfo] = &[$(
            BodyInfo {
                name: <$ty as Body>::NAME,
                type_code: <$ty as Body>::TYPE_CODE,
                max_len: <$ty as Body>::MAX_LEN,
                fields: <$ty as Body>::FIELDS,
                decode: |b| <$ty as Body>::from_bytes(b).map(|v| v.to_bytes()),
                example: || { let v: $ty = $ex; v.to_bytes() },
            }
        ),+];
    };
}

fn b(tag: u8, len: usize) -> ByteBuf {
    ByteBuf::from((0..len).map(|i| tag ^ (i as u8)).collect::<Vec<u8>>())
}
fn id(tag: u8) -> [u8; 16] {
    [tag; 16]
}
fn user(name: &str) -> Username {
    match Username::new(name) {
        Ok(u) => u,
        Err(_) => unreachable_example(),
    }
}
#[cold]
fn unreachable_example() -> ! {
    panic!("coffer-core: invalid catalogue example")
}
fn text(s: &str) -> String {
    s.into()
}
const T0: u64 = 1_790_000_000;

fn link_params(kind: LinkKind) -> LinkParams {
    LinkParams {
        link_id: LinkId::from_bytes(id(0x70)),
        node_id: NodeId::from_bytes(id(0x40)),
        kind,
        link_record: b(0x71, 120),
        owner_entry: b(0x72, 140),
        verifier_hash: (kind != LinkKind::Drop).then_some(Bytes([0x73; 32])),
        expires_at: Some(T0 + 7 * 86_400),
        max_downloads: Some(10),
    }
}

catalogue! {
    RegisterStartRequest => RegisterStartRequest { username: user("alice"), registration_request: b(0x10, 32) },
    RegisterStartResponse => RegisterStartResponse { account_id: AccountId::from_bytes(id(0xa1)), registration_response: b(0x11, 64), expires_at: T0 + 300 },
    RegisterFinishRequest => RegisterFinishRequest {
        account_id: AccountId::from_bytes(id(0xa1)), registration_upload: b(0x12, 192),
        key_bundle: b(0x13, 280),
        signed_identity: b(0x15, 180), root_node: b(0x16, 300),
    },
    RegisterFinishResponse => RegisterFinishResponse { account_id: AccountId::from_bytes(id(0xa1)), account_revision: 0 },
    LoginStartRequest => LoginStartRequest { username: user("alice"), credential_request: b(0x17, 96) },
    LoginStartResponse => LoginStartResponse { login_id: Bytes(id(0xb1)), credential_response: b(0x18, 320), expires_at: T0 + 300 },
    LoginFinishRequest => LoginFinishRequest { login_id: Bytes(id(0xb1)), credential_finalization: b(0x19, 64), session_label: text("laptop") },
    LoginFinishResponse => LoginFinishResponse {
        account_id: AccountId::from_bytes(id(0xa1)), session_id: Bytes(id(0xc1)),
        session_token: SessionToken::from_bytes([0x5a; 32]), session_expires_at: T0 + 90 * 86_400,
        account_revision: 3, key_bundle: b(0x13, 280),
        identity_generation: 0, root_node_id: NodeId::from_bytes(id(0x40)),
    },
    SessionList => SessionList { sessions: vec![
        SessionInfo { session_id: Bytes(id(0xc1)), label: text("laptop"), created_at: T0, last_used_at: T0 + 3600, expires_at: T0 + 90 * 86_400, current: true },
        SessionInfo { session_id: Bytes(id(0xc2)), label: text(""), created_at: T0 - 86_400, last_used_at: T0 - 3600, expires_at: T0 + 89 * 86_400, current: false },
    ] },
    SessionsRevoked => SessionsRevoked { revoked: 2 },
    ReauthStartRequest => ReauthStartRequest { purpose: ReauthPurpose::PasswordChange, credential_request: b(0x17, 96), registration_request: Some(b(0x10, 32)) },
    ReauthStartResponse => ReauthStartResponse { reauth_id: Bytes(id(0xb2)), purpose: ReauthPurpose::PasswordChange, credential_response: b(0x18, 320), registration_response: Some(b(0x11, 64)), expires_at: T0 + 300 },
    PasswordChangeFinishRequest => PasswordChangeFinishRequest {
        reauth_id: Bytes(id(0xb2)), credential_finalization: b(0x19, 64), expected_account_revision: 3,
        registration_upload: b(0x12, 192), key_bundle: b(0x1a, 280),
    },
    RecoveryFinishRequest => RecoveryFinishRequest {
        reauth_id: Bytes(id(0xb3)), credential_finalization: b(0x19, 64), expected_account_revision: 4,
        registration_upload: b(0x12, 192), key_bundle: b(0x1b, 280),
        signed_identity: b(0x1d, 250), signed_nodes: vec![b(0x1e, 300), b(0x1f, 320)], rotations: vec![b(0x65, 900)],
        links: vec![LinkReplacement { old_link_id: LinkId::from_bytes(id(0x6f)), link: link_params(LinkKind::Folder) }],
    },
    AccountDeleteFinishRequest => AccountDeleteFinishRequest { reauth_id: Bytes(id(0xb4)), credential_finalization: b(0x19, 64), account_id: AccountId::from_bytes(id(0xa1)) },
    AccountUpdated => AccountUpdated { account_revision: 4, identity_generation: 0, sessions_revoked: 1 },
    AccountInfo => AccountInfo {
        account_id: AccountId::from_bytes(id(0xa1)), username: user("alice"), account_revision: 4, identity_generation: 1,
        root_node_id: NodeId::from_bytes(id(0x40)), created_at: T0, storage_used: 123_456_789, storage_quota: None,
    },
    UserLookupResponse => UserLookupResponse { account_id: AccountId::from_bytes(id(0xa2)), username: user("bob.smith"), identity_generation: 2 },
    IdentityAppendRequest => IdentityAppendRequest { expected_generation: 0, signed_identity: b(0x1d, 250) },
    IdentityChain => IdentityChain { account_id: AccountId::from_bytes(id(0xa1)), generations: vec![b(0x15, 180), b(0x1d, 250)] },
    NodeCreateRequest => NodeCreateRequest { signed_node: b(0x41, 300) },
    NodeResponse => NodeResponse { signed_node: b(0x41, 300) },
    NodeList => NodeList { parent_id: NodeId::from_bytes(id(0x40)), records: vec![b(0x42, 280), b(0x43, 310)], next_cursor: Some(b(0x44, 16)) },
    NodeUpdateRequest => NodeUpdateRequest { expected_revision: 7, signed_node: b(0x45, 300) },
    NodeDeleteRequest => NodeDeleteRequest { expected_revision: 8 },
    NodeWritten => NodeWritten { node_id: NodeId::from_bytes(id(0x46)), revision: 8 },
    NodeDeleted => NodeDeleted { node_id: NodeId::from_bytes(id(0x46)), deleted_nodes: 12 },
    UploadCreateRequest => UploadCreateRequest {
        node_id: NodeId::from_bytes(id(0x46)), parent_id: NodeId::from_bytes(id(0x40)), content_revision: 1,
        total_length: 20_000_000, part_size: DEFAULT_PART_SIZE,
    },
    UploadStatus => UploadStatus {
        upload_id: UploadId::from_bytes(id(0x50)), node_id: Some(NodeId::from_bytes(id(0x46))), content_revision: 1,
        total_length: 20_000_000, part_size: DEFAULT_PART_SIZE, part_count: 3,
        present: ByteBuf::from(vec![0b0000_0101]), expires_at: T0 + 86_400,
    },
    PartStored => PartStored { upload_id: UploadId::from_bytes(id(0x50)), part_index: 1, length: DEFAULT_PART_SIZE },
    UploadFinalizeRequest => UploadFinalizeRequest { expected_revision: None, signed_node: b(0x47, 320) },
    ShareCreateRequest => ShareCreateRequest {
        share_id: ShareId::from_bytes(id(0x60)), root_node_id: NodeId::from_bytes(id(0x48)), signed_share: b(0x61, 260),
        grants: vec![GrantEntry { member: AccountId::from_bytes(id(0xa2)), grant: b(0x62, 200) }],
        node_records: vec![b(0x67, 310)],
    },
    ShareResponse => ShareResponse { share_id: ShareId::from_bytes(id(0x60)), revision: 2, signed_share: b(0x63, 300), departed: vec![AccountId::from_bytes(id(0xa3))] },
    ShareList => ShareList {
        owned: vec![ShareEntry { share_id: ShareId::from_bytes(id(0x60)), revision: 2, signed_share: b(0x63, 300) }],
        member_of: vec![],
    },
    MemberAddRequest => MemberAddRequest { expected_revision: 1, signed_share: b(0x63, 300), grant: GrantEntry { member: AccountId::from_bytes(id(0xa3)), grant: b(0x64, 200) } },
    MemberRemoveRequest => MemberRemoveRequest { expected_revision: 2, rotation_bundle: b(0x65, 900) },
    ShareUpdated => ShareUpdated { share_id: ShareId::from_bytes(id(0x60)), revision: 3, generation: 1 },
    MyGrants => MyGrants { share_id: ShareId::from_bytes(id(0x60)), grants: vec![
        GenerationGrant { generation: 0, grant: b(0x62, 200) }, GenerationGrant { generation: 1, grant: b(0x66, 200) },
    ] },
    ShareDeleteRequest => ShareDeleteRequest { expected_revision: 3, node_records: vec![b(0x68, 310)] },
    LinkCreateRequest => LinkCreateRequest { link: link_params(LinkKind::File) },
    LinkCreated => LinkCreated { link_id: LinkId::from_bytes(id(0x70)), created_at: T0 },
    LinkList => LinkList { links: vec![LinkEntry {
        link_id: LinkId::from_bytes(id(0x70)), node_id: NodeId::from_bytes(id(0x40)), kind: LinkKind::Folder, created_at: T0,
        expires_at: None, max_downloads: Some(5), downloads: 2, password: true, link_record: b(0x71, 120), owner_entry: b(0x72, 140),
    }] },
    LinkRotateRequest => LinkRotateRequest { link: link_params(LinkKind::Drop) },
    LinkResolved => LinkResolved {
        link_id: LinkId::from_bytes(id(0x70)), kind: LinkKind::File, password: None, link_record: Some(b(0x71, 120)), node: Some(b(0x41, 300)),
        expires_at: Some(T0 + 7 * 86_400), downloads_remaining: Some(8),
    },
    LinkUnlockRequest => LinkUnlockRequest { verifier: LinkVerifier::from_bytes([0x75; 32]) },
    LinkUnlocked => LinkUnlocked { access_token: LinkAccessToken::from_bytes([0x76; 32]), expires_at: T0 + 3600 },
    DropCreateRequest => DropCreateRequest { drop_envelope: b(0x78, 180), total_length: 70_000, part_size: MIN_PART_SIZE },
    DropList => DropList { drops: vec![DropInfo {
        drop_id: UploadId::from_bytes(id(0x52)), link_id: LinkId::from_bytes(id(0x70)), created_at: T0, total_length: 70_000, drop_envelope: b(0x78, 180), link_record: b(0x71, 120),
    }] },
    LinkResealRequest => LinkResealRequest { link_record: b(0x79, 120) },
}
