//! A Coffer client for the suite: every protocol message is built by coffer-core (OPAQUE, node
//! records, content encryption, shares, links); this module only moves them over HTTP.

use std::time::{SystemTime, UNIX_EPOCH};

use coffer_core::account::{self, OpaqueIdentities, UnlockedAccount};
use coffer_core::api::SessionId;
use coffer_core::api::{self, ReauthPurpose};
use coffer_core::encoding::{encode, ByteBuf};
use coffer_core::ids::{AccountId, LinkId, NodeId, ShareId, UploadId};
use coffer_core::link::{self, LinkOptions, LinkTarget, LinkUrl, NodeKind};
use coffer_core::metadata::{seal_metadata, Metadata};
use coffer_core::primitives::{SecretKey, SigningKey};
use coffer_core::share::{self, GranterKeys, PinnedIdentity};
use coffer_core::tree::{self, FileContent, FolderKey, NewNode, NodeRecord, SealedMetadata};
use rand_core::{OsRng, RngCore};
use reqwest::Method;

use super::http::{Context as _, Http, Resp, R};
use crate::{ensure, fail};

/// The part size the suite uploads with: the smallest legal one (spec §11.9.1).
pub const PART: u64 = api::MIN_PART_SIZE;

/// The link origin put into link URLs (the fragment never reaches the server).
pub const LINK_ORIGIN: &str = "https://coffer.invalid";

/// Seconds since the Unix epoch by the suite's clock.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Random bytes from the OS.
pub fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

/// A fresh random password.
pub fn random_password() -> Vec<u8> {
    hex::encode(random_bytes(16)).into_bytes()
}

/// A random username with `prefix`: `cs-<prefix>-<16 hex digits>` (spec §11.6.1).
pub fn random_name(prefix: &str) -> String {
    format!("cs-{prefix}-{}", hex::encode(random_bytes(8)))
}

/// A node as the client knows it: its current record and key.
#[derive(Clone, Debug)]
pub struct Node {
    /// The node id.
    pub id: NodeId,
    /// The verified record.
    pub record: NodeRecord,
    /// The exact `SignedNode` bytes.
    pub signed: Vec<u8>,
    /// The node key.
    pub key: SecretKey,
    /// The server's node revision (§11.4.3).
    pub revision: u64,
    /// A file's content key.
    pub file_key: Option<SecretKey>,
}

impl Node {
    /// The folder key of a folder node.
    pub fn folder_key(&self) -> FolderKey {
        self.record.folder_key(self.key.clone())
    }
}

/// A logged-in user.
pub struct User {
    /// Username.
    pub name: String,
    /// Its password.
    pub password: Vec<u8>,
    /// Account id.
    pub account_id: AccountId,
    /// Session token (base64url).
    pub token: String,
    /// Session id.
    pub session_id: SessionId,
    /// The key bundle the login returned.
    pub key_bundle: Vec<u8>,
    /// The account's revision at login.
    pub account_revision: u64,
    /// The unlocked account.
    pub account: UnlockedAccount,
    /// The root folder.
    pub root: Node,
}

fn meta_folder(node: &NewNode, name: &str) -> R<SealedMetadata> {
    let m = Metadata::folder(name.into(), now()).ctx("folder metadata")?;
    Ok(SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    })
}

fn meta_file(node: &NewNode, name: &str, content: &[u8]) -> R<SealedMetadata> {
    let m = Metadata::file(name.into(), content, now(), None).ctx("file metadata")?;
    Ok(SealedMetadata {
        revision: 1,
        sealed: seal_metadata(&node.node_key, &node.node_id, 1, &m, &mut OsRng),
    })
}

/// The OPAQUE identities of `name` at this server.
pub fn ids<'a>(name: &'a str, server_identity: &'a str) -> OpaqueIdentities<'a> {
    OpaqueIdentities {
        user_name: name,
        server_identity,
    }
}

/// Step 1 of registration: the start body and the client state.
pub fn registration_start(
    name: &str,
    password: &[u8],
) -> R<(account::ClientRegistration, api::RegisterStartRequest)> {
    let (state, request) =
        account::registration_start(password, &mut OsRng).ctx("registration start")?;
    Ok((
        state,
        api::RegisterStartRequest {
            username: api::Username::new(name).ctx("username")?,
            registration_request: ByteBuf::from(request),
        },
    ))
}

/// Step 2 of registration: the finish body (account, identity, root folder).
pub fn registration_finish(
    state: account::ClientRegistration,
    name: &str,
    password: &[u8],
    server_identity: &str,
    resp: &api::RegisterStartResponse,
) -> R<api::RegisterFinishRequest> {
    let time = now();
    let reg = account::register(
        state,
        password,
        &resp.registration_response,
        &ids(name, server_identity),
        resp.account_id,
        time,
        &mut OsRng,
    )
    .ctx("register (is --server-identity right?)")?;
    api::RegisterFinishRequest::new(&reg, time, &mut OsRng).ctx("root folder")
}

/// Registers `name` with `password` (both steps).
pub async fn register(http: &Http, sid: &str, name: &str, password: &[u8]) -> R<AccountId> {
    let (state, start) = registration_start(name, password)?;
    let resp: api::RegisterStartResponse = http
        .post("/v1/accounts/register/start", None, &start)
        .await?
        .ok(201)?;
    let finish = registration_finish(state, name, password, sid, &resp)?;
    let done: api::RegisterFinishResponse = http
        .post("/v1/accounts/register/finish", None, &finish)
        .await?
        .ok(201)?;
    ensure!(
        done.account_id == resp.account_id,
        "finish answered another account id"
    );
    Ok(done.account_id)
}

/// The response to a login attempt that ran both OPAQUE steps, before the account is unlocked.
pub struct LoginAttempt {
    /// The finish response (the status decides).
    pub resp: Resp,
    /// The client's OPAQUE result, when the server's response authenticated.
    pub finish: Option<account::LoginFinish>,
}

/// Runs both login steps; the finish is sent even when the client could not authenticate the
/// server (then with a finalization of zeros), so that the server's answer can be checked.
pub async fn login_attempt(http: &Http, sid: &str, name: &str, password: &[u8]) -> R<LoginAttempt> {
    let (state, request) = account::login_start(password, &mut OsRng).ctx("login start")?;
    let start = api::LoginStartRequest {
        username: api::Username::new(name).ctx("username")?,
        credential_request: ByteBuf::from(request),
    };
    let resp: api::LoginStartResponse = http
        .post("/v1/sessions/login/start", None, &start)
        .await?
        .ok(200)?;
    let finish = account::login_finish(
        state,
        password,
        &resp.credential_response,
        &ids(name, sid),
        &mut OsRng,
    )
    .ok();
    let finalization = finish
        .as_ref()
        .map_or_else(|| vec![0u8; 64], |f| f.finalization.clone());
    let req = api::LoginFinishRequest {
        login_id: resp.login_id,
        credential_finalization: ByteBuf::from(finalization),
        session_label: "coffer-conformance".into(),
    };
    let resp = http.post("/v1/sessions/login/finish", None, &req).await?;
    Ok(LoginAttempt { resp, finish })
}

/// Logs in, unlocks the account, verifies the identity chain and the root folder.
pub async fn login(http: &Http, sid: &str, name: &str, password: &[u8]) -> R<User> {
    let attempt = login_attempt(http, sid, name, password).await?;
    let fin = attempt
        .finish
        .ok_or_else(|| fail!("the server's OPAQUE response did not authenticate"))?;
    let done: api::LoginFinishResponse = attempt.resp.ok(200)?;
    let account = account::unlock(&fin.export_key, &done.account_id, &done.key_bundle)
        .ctx("unlocking the key bundle")?;
    let token = done.session_token.to_b64();
    // The identity chain must verify and end at the generation whose keys we hold.
    let chain: api::IdentityChain = http
        .get(&format!("/v1/identities/{}", done.account_id), None)
        .await?
        .ok(200)?;
    let id = account::verify_chain(&chain.generations).ctx("identity chain")?;
    ensure!(
        id.generation == account.secrets.identity_generation
            && id.signing_key == account.secrets.identity.signing.verifying_key()
            && id.user_name == name,
        "the identity chain does not end at the account's identity"
    );
    let r: api::NodeResponse = http.get("/v1/root", Some(&token)).await?.ok(200)?;
    let record = tree::verify_node(
        &r.signed_node,
        &tree::NodeExpectation {
            node_id: account.secrets.root_node_id,
            parent: None,
            key_generation: None,
        },
        &[account.secrets.identity.signing.verifying_key()],
    )
    .ctx("root folder record")?;
    let root = Node {
        id: record.node_id,
        record,
        signed: r.signed_node.to_vec(),
        key: account.secrets.root_node_key.clone(),
        revision: 0,
        file_key: None,
    };
    let mut user = User {
        name: name.into(),
        password: password.to_vec(),
        account_id: done.account_id,
        token,
        session_id: done.session_id,
        key_bundle: done.key_bundle.to_vec(),
        account_revision: done.account_revision,
        account,
        root,
    };
    user.root.revision = user.revision_of(http, user.root.id).await?;
    Ok(user)
}

/// The node revision in a node read's `ETag: "n<revision>"` (§11.8).
pub fn etag_revision(resp: &Resp) -> R<u64> {
    let tag = resp
        .header("etag")
        .ok_or_else(|| fail!("node response without ETag"))?;
    tag.trim_matches('"')
        .strip_prefix('n')
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail!("ETag {tag:?} is not \"n<revision>\""))
}

/// Decodes a `SignedNode`'s record and checks its signature (the author's key is checked by the
/// caller where it matters).
pub fn record_of(signed: &[u8]) -> R<NodeRecord> {
    tree::verify_node_signature(signed).ctx("node record")
}

/// Runs a re-authentication start (§11.6.6) with `password`; returns the server's response,
/// the client's OPAQUE finish (`None` if the password is wrong) and, for purposes that register
/// a new password, the registration state.
pub async fn reauth_start(
    http: &Http,
    sid: &str,
    user: &User,
    password: &[u8],
    purpose: ReauthPurpose,
    new_password: Option<&[u8]>,
) -> R<(
    api::ReauthStartResponse,
    Option<account::LoginFinish>,
    Option<account::ClientRegistration>,
)> {
    let path = match purpose {
        ReauthPurpose::PasswordChange => "/v1/account/password/start",
        ReauthPurpose::Recovery => "/v1/account/recover/start",
        ReauthPurpose::AccountDeletion => "/v1/account/delete/start",
    };
    let (login_state, credential_request) =
        account::login_start(password, &mut OsRng).ctx("login start")?;
    let (reg_state, registration_request) = match new_password {
        Some(p) => {
            let (s, r) = account::registration_start(p, &mut OsRng).ctx("registration start")?;
            (Some(s), Some(ByteBuf::from(r)))
        }
        None => (None, None),
    };
    let resp: api::ReauthStartResponse = http
        .post(
            path,
            user.t(),
            &api::ReauthStartRequest {
                purpose,
                credential_request: ByteBuf::from(credential_request),
                registration_request,
            },
        )
        .await?
        .ok(200)?;
    ensure!(
        resp.purpose == purpose,
        "the response names another purpose"
    );
    let finish = account::login_finish(
        login_state,
        password,
        &resp.credential_response,
        &ids(&user.name, sid),
        &mut OsRng,
    )
    .ok();
    Ok((resp, finish, reg_state))
}

/// Deletes the user's account with a fresh OPAQUE proof (§11.6.9); returns the finish response.
pub async fn delete_account(http: &Http, sid: &str, user: &User) -> R<Resp> {
    let (resp, finish, _) = reauth_start(
        http,
        sid,
        user,
        &user.password,
        ReauthPurpose::AccountDeletion,
        None,
    )
    .await?;
    let fin = finish.ok_or_else(|| fail!("the re-authentication response did not verify"))?;
    http.post(
        "/v1/account/delete/finish",
        user.t(),
        &api::AccountDeleteFinishRequest {
            reauth_id: resp.reauth_id,
            credential_finalization: ByteBuf::from(fin.finalization),
            account_id: user.account_id,
        },
    )
    .await
}

/// A link the owner created.
pub struct MadeLink {
    /// Its URL (holding the secret).
    pub url: LinkUrl,
    /// Its id.
    pub id: LinkId,
    /// The parameters it was created with.
    pub params: api::LinkParams,
}

impl MadeLink {
    /// `/v1/l/{link-id}`.
    pub fn path(&self) -> String {
        format!("/v1/l/{}", self.id)
    }
}

impl User {
    /// The bearer token.
    pub fn t(&self) -> Option<&str> {
        Some(&self.token)
    }

    /// The identity signing key.
    pub fn signing(&self) -> &SigningKey {
        &self.account.secrets.identity.signing
    }

    /// The pinned identity others share to.
    pub fn pinned(&self) -> PinnedIdentity {
        PinnedIdentity {
            user_name: self.name.clone(),
            identity_generation: self.account.secrets.identity_generation,
            ed25519: self.account.secrets.identity.signing.verifying_key(),
            x25519: self.account.secrets.identity.agreement.public_key(),
        }
    }

    /// The granter keys of this user.
    pub fn granter(&self) -> GranterKeys<'_> {
        GranterKeys {
            signing_key: self.signing(),
            user_name: &self.name,
            identity_generation: self.account.secrets.identity_generation,
        }
    }

    /// The node revision the server reports.
    pub async fn revision_of(&self, http: &Http, id: NodeId) -> R<u64> {
        let r = http.get(&format!("/v1/nodes/{id}"), self.t()).await?;
        r.status_is(200)?;
        etag_revision(&r)
    }

    /// Builds a folder record under `parent` (not sent).
    pub fn folder_record(&self, parent: &Node, name: &str) -> R<Node> {
        let node = NewNode::generate(&mut OsRng);
        let (record, signed) = tree::create_folder(
            self.signing(),
            &parent.folder_key(),
            &node,
            meta_folder(&node, name)?,
            now(),
            &mut OsRng,
        )
        .ctx("folder record")?;
        Ok(Node {
            id: node.node_id,
            record,
            signed: encode(&signed),
            key: node.node_key,
            revision: 0,
            file_key: None,
        })
    }

    /// Creates a folder under `parent`.
    pub async fn mkdir(&self, http: &Http, parent: &Node, name: &str) -> R<Node> {
        let mut n = self.folder_record(parent, name)?;
        let w: api::NodeWritten = http
            .post(
                "/v1/nodes",
                self.t(),
                &api::NodeCreateRequest {
                    signed_node: ByteBuf::from(n.signed.clone()),
                },
            )
            .await?
            .ok(201)?;
        ensure!(w.node_id == n.id, "NodeWritten names another node");
        n.revision = w.revision;
        Ok(n)
    }

    /// Builds a file record and its ciphertext under `parent` (not sent).
    pub fn file_record(&self, parent: &Node, name: &str, plaintext: &[u8]) -> R<(Node, Vec<u8>)> {
        self.file_record_as(NewNode::generate(&mut OsRng), parent, name, plaintext)
    }

    /// Builds a file record of the given node id and key and its ciphertext (not sent).
    pub fn file_record_as(
        &self,
        node: NewNode,
        parent: &Node,
        name: &str,
        plaintext: &[u8],
    ) -> R<(Node, Vec<u8>)> {
        let file_key = SecretKey::generate(&mut OsRng);
        let ciphertext = coffer_core::content::encrypt(&file_key, plaintext, &mut OsRng);
        let (record, signed) = tree::create_file(
            self.signing(),
            &parent.folder_key(),
            &node,
            meta_file(&node, name, plaintext)?,
            &FileContent {
                file_key: file_key.clone(),
                content_revision: 1,
                ciphertext_length: ciphertext.len() as u64,
            },
            now(),
            &mut OsRng,
        )
        .ctx("file record")?;
        Ok((
            Node {
                id: node.node_id,
                record,
                signed: encode(&signed),
                key: node.node_key,
                revision: 0,
                file_key: Some(file_key),
            },
            ciphertext,
        ))
    }

    /// Creates an upload for a new file node.
    pub async fn upload_create(
        &self,
        http: &Http,
        node: &Node,
        parent: NodeId,
        total_length: u64,
    ) -> R<api::UploadStatus> {
        http.post(
            "/v1/uploads",
            self.t(),
            &api::UploadCreateRequest {
                node_id: node.id,
                parent_id: parent,
                content_revision: 1,
                total_length,
                part_size: PART,
            },
        )
        .await?
        .ok(201)
    }

    /// Uploads part `index` of `ciphertext` and checks the `PartStored` answer.
    pub async fn put_part(
        &self,
        http: &Http,
        upload: UploadId,
        index: usize,
        ciphertext: &[u8],
    ) -> R<()> {
        let part = ciphertext
            .chunks(PART as usize)
            .nth(index)
            .ok_or_else(|| fail!("no part {index}"))?;
        let s: api::PartStored = http
            .put_part(
                &format!("/v1/uploads/{upload}/parts/{index}"),
                self.t(),
                part.to_vec(),
            )
            .await?
            .ok(200)?;
        ensure!(
            s.upload_id == upload && s.part_index == index as u64,
            "PartStored names another part"
        );
        ensure!(s.length == part.len() as u64, "PartStored length differs");
        Ok(())
    }

    /// Finalizes a new-node upload.
    pub async fn finalize(&self, http: &Http, upload: UploadId, signed: &[u8]) -> R<Resp> {
        http.post(
            &format!("/v1/uploads/{upload}/finalize"),
            self.t(),
            &api::UploadFinalizeRequest {
                expected_revision: None,
                signed_node: ByteBuf::from(signed.to_vec()),
            },
        )
        .await
    }

    /// Uploads a new file with `plaintext` into `parent`.
    pub async fn upload_file(
        &self,
        http: &Http,
        parent: &Node,
        name: &str,
        plaintext: &[u8],
    ) -> R<Node> {
        let (mut node, ct) = self.file_record(parent, name, plaintext)?;
        let st = self
            .upload_create(http, &node, parent.id, ct.len() as u64)
            .await?;
        for i in 0..ct.chunks(PART as usize).count() {
            self.put_part(http, st.upload_id, i, &ct).await?;
        }
        let w: api::NodeWritten = self
            .finalize(http, st.upload_id, &node.signed)
            .await?
            .ok(201)?;
        node.revision = w.revision;
        Ok(node)
    }

    /// Downloads and decrypts a file.
    pub async fn download(&self, http: &Http, node: &Node) -> R<Vec<u8>> {
        let r = http
            .get(&format!("/v1/nodes/{}/content", node.id), self.t())
            .await?;
        r.status_is(200)?;
        let key = node.file_key.as_ref().ok_or_else(|| fail!("not a file"))?;
        coffer_core::content::decrypt(key, &r.body).ctx("content does not decrypt")
    }

    /// A renamed copy of `node` (new metadata revision), not sent.
    pub fn renamed(&self, node: &Node, name: &str) -> R<Node> {
        let rev = node.record.metadata_revision + 1;
        let m = Metadata::folder(name.into(), now()).ctx("metadata")?;
        let sealed = seal_metadata(&node.key, &node.id, rev, &m, &mut OsRng);
        let (record, signed) = tree::update_metadata(
            self.signing(),
            &node.record,
            SealedMetadata {
                revision: rev,
                sealed,
            },
            now(),
        )
        .ctx("update metadata")?;
        Ok(Node {
            record,
            signed: encode(&signed),
            ..node.clone()
        })
    }

    /// Shares `folder` with `members`.
    pub async fn share(
        &self,
        http: &Http,
        folder: &Node,
        members: &[(&User, u64)],
    ) -> R<(ShareId, share::ShareRecord)> {
        let share_id = ShareId::generate(&mut OsRng);
        let ms = members
            .iter()
            .map(|(u, p)| u.pinned().as_member(*p))
            .collect();
        let (record, signed, grants) = share::create_share(
            &self.granter(),
            share_id,
            &folder.folder_key(),
            ms,
            &mut OsRng,
        )
        .ctx("create share")?;
        let body = api::ShareCreateRequest {
            share_id,
            root_node_id: folder.id,
            signed_share: ByteBuf::from(encode(&signed)),
            grants: members
                .iter()
                .zip(grants)
                .map(|((u, _), g)| api::GrantEntry {
                    member: u.account_id,
                    grant: ByteBuf::from(encode(&g)),
                })
                .collect(),
            node_records: Vec::new(),
        };
        let up: api::ShareUpdated = http.post("/v1/shares", self.t(), &body).await?.ok(201)?;
        ensure!(up.share_id == share_id, "ShareUpdated names another share");
        ensure!(
            up.revision == 0,
            "a new share has revision {}, not 0",
            up.revision
        );
        Ok((share_id, record))
    }

    /// Builds a link to `node` and its `LinkParams` (not sent).
    pub fn link_params(&self, node: &Node, options: &LinkOptions<'_>) -> R<MadeLink> {
        let folder = node.record.is_folder();
        let target = LinkTarget {
            node_id: node.id,
            node_kind: if folder {
                NodeKind::Folder
            } else {
                NodeKind::File
            },
            generation: node.record.key_generation,
            node_key: node.key.clone(),
        };
        let created = link::create_link(&mut OsRng, LINK_ORIGIN, &target, options, now())
            .ctx("create link")?;
        let id = created.url.link_id();
        let owner_key = account::link_entries_key(&self.account.master_key, &self.account_id);
        let owner_entry = link::seal_owner_entry(&owner_key, &created.owner_entry, &mut OsRng);
        let kind = if options.upload_only {
            api::LinkKind::Drop
        } else if folder {
            api::LinkKind::Folder
        } else {
            api::LinkKind::File
        };
        let params = api::LinkParams {
            link_id: id,
            node_id: node.id,
            kind,
            link_record: ByteBuf::from(created.record),
            owner_entry: ByteBuf::from(owner_entry),
            verifier_hash: created.verifier_hash.map(coffer_core::encoding::Bytes),
            expires_at: options.expires_at,
            max_downloads: options.max_downloads,
        };
        Ok(MadeLink {
            url: created.url,
            id,
            params,
        })
    }

    /// Creates a link to `node`.
    pub async fn make_link(
        &self,
        http: &Http,
        node: &Node,
        options: &LinkOptions<'_>,
    ) -> R<MadeLink> {
        let l = self.link_params(node, options)?;
        let c: api::LinkCreated = http
            .post(
                "/v1/links",
                self.t(),
                &api::LinkCreateRequest {
                    link: l.params.clone(),
                },
            )
            .await?
            .ok(201)?;
        ensure!(c.link_id == l.id, "LinkCreated names another link");
        Ok(l)
    }

    /// `DELETE` with a CBOR body.
    pub async fn delete_with<B: api::Body>(&self, http: &Http, path: &str, body: &B) -> R<Resp> {
        http.cbor(Method::DELETE, path, self.t(), body).await
    }
}
