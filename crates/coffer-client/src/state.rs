//! Local state under the config directory: the session file and resumable-upload state.
//!
//! The config directory is `COFFER_CONFIG_DIR` when set, else the OS config directory
//! (`directories`: e.g. `~/.config/coffer` on Linux). Every file here is written atomically
//! (temporary file in the same directory, `fsync`, rename, directory `fsync`) with mode `0600`.
//!
//! ## What the session file holds, and why
//!
//! The session file (`session.json`) holds the session token, the account's master key and its
//! key bundle (whose sealed secrets the master key opens): enough to act without re-entering the
//! password, never the password itself nor anything derived from it alone. Anyone who can read
//! the file can act as the user until the session ends (logout, revocation, expiry) and can
//! decrypt the account's data; it is therefore `0600` in a `0700` directory, and `logout`
//! revokes the session on the server and deletes the file. Compromise recovery (`keys rotate`)
//! replaces the master key, so a stolen file stops opening anything new afterwards.
//!
//! ## Upload state
//!
//! An unfinished upload is recorded in `uploads/<key>.json`, `<key>` being SHA-256 of the local
//! path, size, modification time and remote parent, so repeating the same `coffer put` resumes
//! it. The record holds the file key, content salt and node key of the new file (so the content
//! re-encrypts byte-identically, spec §11.9.1) and a check of every part that was ever sent:
//! SHA-256 of the Poly1305 tags of the chunks covering it. Under the fixed file key and salt a
//! chunk's tag changes with its plaintext, so a resumed upload re-encrypts a part locally and
//! compares the check before sending it again (spec §11.9.1, resumption safety), and re-checks
//! the parts already stored. The record is deleted on finalize. Its `format` is
//! [`UPLOAD_STATE_FORMAT`]; state of another format (format 1 recorded SHA-256 of each part's
//! plaintext; format 2 kept every check in the record itself) is never resumed: `put` aborts
//! that upload and starts a new one.
//!
//! The record is written once, when the upload starts. The check of each part sent afterwards
//! is appended to its journal, `uploads/<key>.<upload-id>.sent` (one line `<index> <check>`),
//! and synced before the part is first sent ([`SentJournal::record`]): rewriting the whole
//! record for every part would cost O(parts²) over an upload of up to 10 000 parts. Loading
//! merges the journal of the record's upload; a last line cut short by a crash is ignored (its
//! part was never sent), any other damage refuses the state.
//!
//! State that no `put` will resume (a file edited after its upload was interrupted gets another
//! key) is deleted by the next `put` once it is older than any upload the server keeps
//! ([`ConfigDir::prune_uploads`]).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use coffer_core::account::{self, MasterKey, UnlockedAccount};
use coffer_core::api::SessionId;
use coffer_core::encoding::Bytes;
use coffer_core::ids::{AccountId, NodeId, UploadId};
use coffer_core::primitives::SecretKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::http::Bearer;

/// The environment variable naming the config directory.
pub const CONFIG_DIR_ENV: &str = "COFFER_CONFIG_DIR";
/// The session file's name in the config directory.
pub const SESSION_FILE: &str = "session.json";
/// The directory of upload state files in the config directory.
pub const UPLOADS_DIR: &str = "uploads";
/// The format of upload state this client writes and resumes (3: part checks are SHA-256 of
/// the chunk tags, those recorded after the start in the upload's journal; 2: the same checks,
/// all in the record; 1, or a missing field: SHA-256 of the part's plaintext).
pub const UPLOAD_STATE_FORMAT: u32 = 3;

/// The length of a part check in the upload state: SHA-256, lowercase hex.
const CHECK_HEX_LEN: usize = 64;

/// The client's config directory.
#[derive(Debug, Clone)]
pub struct ConfigDir {
    path: PathBuf,
}

impl ConfigDir {
    /// The directory at `path`.
    #[must_use]
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ConfigDir { path: path.into() }
    }

    /// `COFFER_CONFIG_DIR`, else the OS config directory.
    ///
    /// # Errors
    /// [`Error::State`] when neither is available.
    pub fn from_env() -> Result<Self> {
        if let Some(p) = std::env::var_os(CONFIG_DIR_ENV) {
            if !p.is_empty() {
                return Ok(ConfigDir::new(PathBuf::from(p)));
            }
        }
        directories::ProjectDirs::from("", "", "coffer")
            .map(|d| ConfigDir::new(d.config_dir()))
            .ok_or_else(|| {
                Error::State(format!(
                    "no home directory: set {CONFIG_DIR_ENV} to a private directory"
                ))
            })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The session file's path.
    #[must_use]
    pub fn session_path(&self) -> PathBuf {
        self.path.join(SESSION_FILE)
    }

    /// Creates the directory (and `sub`) with mode `0700` if missing; returns the path.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn ensure(&self, sub: Option<&str>) -> Result<PathBuf> {
        let p = match sub {
            Some(s) => self.path.join(s),
            None => self.path.clone(),
        };
        let mut b = fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt as _;
            b.mode(0o700);
        }
        b.create(&p)
            .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
        Ok(p)
    }

    /// Loads the session, `None` when logged out.
    ///
    /// # Errors
    /// [`Error::State`] for a file that does not parse or whose keys do not open.
    pub fn load_session(&self) -> Result<Option<Session>> {
        let path = self.session_path();
        let bytes = match fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let file: SessionFile = serde_json::from_slice(&bytes).map_err(|e| {
            Error::State(format!(
                "{} is damaged ({e}); delete it and log in again",
                path.display()
            ))
        })?;
        file.into_session().map(Some)
    }

    /// Saves the session (atomically, `0600`).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save_session(&self, session: &Session) -> Result<()> {
        self.ensure(None)?;
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(&SessionFile::from_session(session))
                .map_err(|e| Error::State(e.to_string()))?,
        );
        write_private(&self.session_path(), &json)
    }

    /// Deletes the session file (no error when absent).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn delete_session(&self) -> Result<()> {
        remove_if_exists(&self.session_path())
    }

    /// The path of the upload state for `key`.
    #[must_use]
    pub fn upload_path(&self, key: &UploadKey) -> PathBuf {
        self.path
            .join(UPLOADS_DIR)
            .join(format!("{}.json", key.id()))
    }

    /// Loads the upload state for `key`, if one exists.
    ///
    /// # Errors
    /// [`Error::State`] for a damaged file.
    pub fn load_upload(&self, key: &UploadKey) -> Result<Option<UploadState>> {
        let path = self.upload_path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => Zeroizing::new(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let mut s: UploadState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::State(format!("{} is damaged ({e}); delete it", path.display())))?;
        if s.key != *key {
            return Err(Error::State(format!(
                "{} belongs to another upload; delete it",
                path.display()
            )));
        }
        if s.format == UPLOAD_STATE_FORMAT {
            let journal = self.sent_journal(&s)?.path;
            match fs::read(&journal) {
                Ok(bytes) => merge_sent_journal(&bytes, &mut s.sent).map_err(|e| {
                    Error::State(format!("{} is damaged ({e}); delete it", journal.display()))
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("reading {}", journal.display()), e)),
            }
        }
        Ok(Some(s))
    }

    /// Saves upload state (atomically, `0600`). Checks recorded with
    /// [`SentJournal::record`] since the last save stay in the journal.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn save_upload(&self, state: &UploadState) -> Result<()> {
        self.ensure(Some(UPLOADS_DIR))?;
        let json =
            Zeroizing::new(serde_json::to_vec(state).map_err(|e| Error::State(e.to_string()))?);
        write_private(&self.upload_path(&state.key), &json)
    }

    /// The journal of part checks of `state`'s upload (see the module docs).
    ///
    /// # Errors
    /// [`Error::State`] when the state's upload id is damaged.
    pub fn sent_journal(&self, state: &UploadState) -> Result<SentJournal> {
        // Parsed, so that the name holds nothing but the id's base64url.
        let upload_id = state.upload_id()?.to_b64();
        Ok(SentJournal {
            path: self
                .path
                .join(UPLOADS_DIR)
                .join(format!("{}.{upload_id}.sent", state.key.id())),
        })
    }

    /// Deletes upload state and its journals (no error when absent).
    ///
    /// # Errors
    /// [`Error::Io`].
    pub fn delete_upload(&self, key: &UploadKey) -> Result<()> {
        // The record first: a crash in between leaves a journal that no record names (each
        // journal is named by its upload), never a record without its journal.
        remove_if_exists(&self.upload_path(key))?;
        let prefix = format!("{}.", key.id());
        let dir = self.path.join(UPLOADS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".sent") {
                remove_if_exists(&entry.path())?;
            }
        }
        Ok(())
    }
}

impl ConfigDir {
    /// Deletes the upload state (records and journals) last written before `before`: state of
    /// uploads the server has let lapse (at most `UPLOAD_MAX_TTL_SECS` after creation, spec
    /// §11.9.2), which no `put` will resume, such as that of a file edited after its upload was
    /// interrupted. It holds the keys of content that was never finished. Returns how many
    /// files were deleted.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be read or a file not deleted.
    pub fn prune_uploads(&self, before: std::time::SystemTime) -> Result<usize> {
        let dir = self.path.join(UPLOADS_DIR);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
        };
        let mut pruned = 0;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !(name.ends_with(".json") || name.ends_with(".sent")) {
                continue;
            }
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < before);
            if stale {
                remove_if_exists(&entry.path())?;
                pruned += 1;
            }
        }
        Ok(pruned)
    }
}

/// The journal of the part checks of one upload, appended as parts are first sent (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct SentJournal {
    path: PathBuf,
}

impl SentJournal {
    /// The journal's file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records durably that part `index` is sent with `check` (64 lowercase hex digits):
    /// appended and synced. Returns once the record survives a crash; only then may the part
    /// be sent.
    ///
    /// # Errors
    /// [`Error::Io`]; [`Error::State`] for a malformed check.
    pub fn record(&self, index: u64, check: &str) -> Result<()> {
        if !is_check(check) {
            return Err(Error::State("malformed part check".into()));
        }
        let path = &self.path;
        let ctx = |what: &str| format!("{what} {}", path.display());
        let mut opts = fs::OpenOptions::new();
        opts.append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        // Created here the first time: then the directory entry is synced too.
        let (mut file, created) = match opts.clone().create_new(true).open(path) {
            Ok(f) => (f, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (
                opts.open(path).map_err(|e| Error::io(ctx("opening"), e))?,
                false,
            ),
            Err(e) => return Err(Error::io(ctx("creating"), e)),
        };
        // One write of a whole line: a crash leaves at most this line cut short.
        file.write_all(format!("{index} {check}\n").as_bytes())
            .map_err(|e| Error::io(ctx("writing"), e))?;
        file.sync_data().map_err(|e| Error::io(ctx("syncing"), e))?;
        if created {
            if let Some(dir) = path.parent() {
                sync_dir(dir);
            }
        }
        Ok(())
    }
}

/// Whether `check` is a part check as recorded: [`CHECK_HEX_LEN`] lowercase hex digits.
fn is_check(check: &str) -> bool {
    check.len() == CHECK_HEX_LEN
        && check
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Adds the checks of a sent-parts journal to `sent`. Every line must be `<index> <check>`
/// with a check that agrees with one already known for that index; a last line without its
/// newline is a record cut short by a crash, before its part was sent, and is ignored.
fn merge_sent_journal(
    bytes: &[u8],
    sent: &mut BTreeMap<u64, String>,
) -> std::result::Result<(), String> {
    let complete = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(&bytes[..0], |end| &bytes[..end]);
    if complete.is_empty() {
        return Ok(());
    }
    for (n, line) in complete.split(|&b| b == b'\n').enumerate() {
        let bad = || format!("line {} is not `<index> <check>`", n + 1);
        let line = std::str::from_utf8(line).map_err(|_| bad())?;
        let (index, check) = line.split_once(' ').ok_or_else(bad)?;
        let index: u64 = index
            .parse()
            .ok()
            .filter(|i: &u64| i.to_string() == index)
            .ok_or_else(bad)?;
        if !is_check(check) {
            return Err(bad());
        }
        match sent.get(&index) {
            Some(known) if known != check => {
                return Err(format!("two different checks for part {index}"))
            }
            Some(_) => {}
            None => {
                sent.insert(index, check.to_owned());
            }
        }
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("deleting {}", path.display()), e)),
    }
}

/// Writes `bytes` to `path` atomically with mode `0600`: a temporary file in the same
/// directory, `fsync`, rename over `path`, `fsync` of the directory.
///
/// # Errors
/// [`Error::Io`]; nothing is left behind on failure.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::State(format!("{} has no parent directory", path.display())))?;
    let ctx = |what: &str| format!("{what} {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".coffer-")
        .tempfile_in(dir)
        .map_err(|e| Error::io(ctx("creating a temporary file for"), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io(ctx("setting permissions of"), e))?;
    }
    tmp.write_all(bytes)
        .map_err(|e| Error::io(ctx("writing"), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io(ctx("syncing"), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io(ctx("renaming into"), e.error))?;
    sync_dir(dir);
    Ok(())
}

/// Best-effort `fsync` of a directory after a rename.
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// What a logged-in client holds: the server, who it is, the bearer token and the account's
/// unwrapped keys.
#[derive(Clone, Debug)]
pub struct Session {
    /// The server's base URL the session belongs to.
    pub server: String,
    /// The user name.
    pub username: String,
    /// The session id (to tell the current session in `sessions list`).
    pub session_id: SessionId,
    /// The bearer token.
    pub token: Bearer,
    /// The unlocked account: master key, identity keys, root folder.
    pub account: UnlockedAccount,
    /// The key bundle the keys came from (its sealed secrets are re-opened from the file).
    pub key_bundle: Vec<u8>,
    /// The account revision last seen (optimistic concurrency of §11.6.7).
    pub account_revision: u64,
}

impl Session {
    /// The account id.
    #[must_use]
    pub fn account_id(&self) -> AccountId {
        self.account.account_id
    }
}

/// The session file's JSON form (local only, never on the wire).
#[derive(Serialize, Deserialize)]
struct SessionFile {
    version: u32,
    server: String,
    username: String,
    account_id: String,
    session_id: String,
    session_token: String,
    master_key: String,
    master_key_generation: u64,
    key_bundle: String,
    account_revision: u64,
}

impl Drop for SessionFile {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.session_token.zeroize();
        self.master_key.zeroize();
    }
}

impl SessionFile {
    fn from_session(s: &Session) -> Self {
        SessionFile {
            version: 1,
            server: s.server.clone(),
            username: s.username.clone(),
            account_id: s.account.account_id.to_b64(),
            session_id: hex::encode(s.session_id.0),
            session_token: s.token.expose().to_owned(),
            master_key: hex::encode(s.account.master_key.key.expose()),
            master_key_generation: s.account.master_key.generation,
            key_bundle: hex::encode(&s.key_bundle),
            account_revision: s.account_revision,
        }
    }

    fn into_session(self) -> Result<Session> {
        let bad = |what: &str| Error::State(format!("session file: bad {what}; log in again"));
        if self.version != 1 {
            return Err(bad("version"));
        }
        let account_id = AccountId::from_b64(&self.account_id).map_err(|_| bad("account id"))?;
        let session_id: SessionId = Bytes(
            hex::decode(&self.session_id)
                .ok()
                .and_then(|v| <[u8; 16]>::try_from(v).ok())
                .ok_or_else(|| bad("session id"))?,
        );
        let mk = Zeroizing::new(hex::decode(&self.master_key).map_err(|_| bad("master key"))?);
        let master_key = MasterKey {
            key: SecretKey::from_slice(&mk).map_err(|_| bad("master key"))?,
            generation: self.master_key_generation,
        };
        let key_bundle = hex::decode(&self.key_bundle).map_err(|_| bad("key bundle"))?;
        let bundle = account::parse_key_bundle(&key_bundle).map_err(|_| bad("key bundle"))?;
        if bundle.account_id != account_id || bundle.master_key_generation != master_key.generation
        {
            return Err(bad("key bundle"));
        }
        let secrets = account::open_secrets(
            &master_key,
            &account_id,
            bundle.identity_generation,
            &bundle.sealed_secrets,
        )
        .map_err(|_| bad("keys"))?;
        Ok(Session {
            server: self.server.clone(),
            username: self.username.clone(),
            session_id,
            token: Bearer::from_b64(self.session_token.clone()),
            account: UnlockedAccount {
                account_id,
                master_key,
                secrets,
            },
            key_bundle,
            account_revision: self.account_revision,
        })
    }
}

/// What identifies one resumable upload: the local file (canonical path, size, mtime) and the
/// remote parent folder and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadKey {
    /// The canonical local path.
    pub local_path: String,
    /// The file's size in bytes.
    pub size: u64,
    /// The file's modification time (nanoseconds since the epoch).
    pub mtime_ns: u128,
    /// The remote parent folder (base64url node id).
    pub parent: String,
    /// The remote file name.
    pub name: String,
}

impl UploadKey {
    /// The file-name-safe digest of the key.
    #[must_use]
    pub fn id(&self) -> String {
        let text = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(coffer_core::primitives::sha256(&text))
    }
}

/// The persisted state of an unfinished upload (see the module docs).
#[derive(Clone, Serialize, Deserialize)]
pub struct UploadState {
    /// The state format ([`UPLOAD_STATE_FORMAT`]; absent in format 1 files, read as 1).
    #[serde(default = "format_1")]
    pub format: u32,
    /// Which upload this is.
    pub key: UploadKey,
    /// The server's upload id (base64url).
    pub upload_id: String,
    /// The new file's node id (base64url).
    pub node_id: String,
    /// The new file's node key (hex).
    pub node_key: String,
    /// The file key (hex).
    pub file_key: String,
    /// The content header salt (hex).
    pub salt: String,
    /// The part size.
    pub part_size: u64,
    /// The ciphertext length.
    pub total_length: u64,
    /// The content revision the upload creates (1 for a new file).
    pub content_revision: u64,
    /// Whether the upload replaces the content of an existing file (else it creates the node).
    pub replaces_existing: bool,
    /// The check of every part ever sent, by part index (hex): SHA-256 of the tags of the
    /// sealed chunks covering the part (format 2).
    pub sent: BTreeMap<u64, String>,
}

/// The format of upload state files written before the field existed.
fn format_1() -> u32 {
    1
}

impl std::fmt::Debug for UploadState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadState")
            .field("key", &self.key)
            .field("upload_id", &self.upload_id)
            .field("parts_sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl Drop for UploadState {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.node_key.zeroize();
        self.file_key.zeroize();
    }
}

impl UploadState {
    /// The upload id.
    ///
    /// # Errors
    /// [`Error::State`] when damaged.
    pub fn upload_id(&self) -> Result<UploadId> {
        UploadId::from_b64(&self.upload_id).map_err(|_| Error::State("upload id".into()))
    }

    /// The node id.
    ///
    /// # Errors
    /// [`Error::State`] when damaged.
    pub fn node_id(&self) -> Result<NodeId> {
        NodeId::from_b64(&self.node_id).map_err(|_| Error::State("node id".into()))
    }

    /// A key field decoded.
    ///
    /// # Errors
    /// [`Error::State`] when damaged.
    pub fn secret(hex_text: &str) -> Result<SecretKey> {
        let b = Zeroizing::new(hex::decode(hex_text).map_err(|_| Error::State("key".into()))?);
        SecretKey::from_slice(&b).map_err(|_| Error::State("key".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::account::{AccountSecrets, IdentityKeys, KeyBundle};
    use coffer_core::encoding::{encode, ByteBuf};
    use rand_core::OsRng;

    fn session() -> Session {
        let account_id = AccountId::generate(&mut OsRng);
        let master_key = MasterKey::generate(0, &mut OsRng);
        let secrets = AccountSecrets {
            identity_generation: 0,
            identity: IdentityKeys::generate(&mut OsRng),
            root_node_id: NodeId::generate(&mut OsRng),
            root_node_key: SecretKey::generate(&mut OsRng),
        };
        let sealed = account::seal_secrets(&master_key, &account_id, &secrets, &mut OsRng);
        let key_bundle = encode(&KeyBundle {
            account_id,
            master_key_generation: 0,
            wrapped_master_key: Bytes([7; coffer_core::seal::SEALED_KEY_LEN]),
            identity_generation: 0,
            sealed_secrets: ByteBuf::from(sealed),
        });
        Session {
            server: "http://127.0.0.1:8080".into(),
            username: "alice".into(),
            session_id: Bytes([1; 16]),
            token: Bearer::from_b64("A".repeat(43)),
            account: UnlockedAccount {
                account_id,
                master_key,
                secrets,
            },
            key_bundle,
            account_revision: 3,
        }
    }

    #[test]
    fn session_round_trips_privately() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ConfigDir::new(dir.path().join("coffer"));
        assert!(config.load_session().expect("load").is_none());
        let s = session();
        config.save_session(&s).expect("save");
        let back = config.load_session().expect("load").expect("saved");
        assert_eq!(back.username, "alice");
        assert_eq!(back.account_id(), s.account_id());
        assert_eq!(back.session_id, s.session_id);
        assert_eq!(back.token.expose(), s.token.expose());
        assert_eq!(back.account_revision, 3);
        assert_eq!(back.account.master_key, s.account.master_key);
        assert_eq!(
            back.account.secrets.identity.signing.verifying_key(),
            s.account.secrets.identity.signing.verifying_key()
        );
        assert_eq!(
            back.account.secrets.root_node_key,
            s.account.secrets.root_node_key
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(config.session_path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let dmode = fs::metadata(config.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(dmode & 0o777, 0o700);
        }
        // Nothing but the session file is left (no temporary files).
        let names: Vec<_> = fs::read_dir(config.path())
            .expect("dir")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(SESSION_FILE)]);
        // Debug output never shows the token or keys.
        let dbg = format!("{back:?}");
        assert!(!dbg.contains(&"A".repeat(43)));
        assert!(!dbg.contains(&hex::encode(back.account.master_key.key.expose())));
        config.delete_session().expect("delete");
        assert!(config.load_session().expect("load").is_none());
        config.delete_session().expect("idempotent");
    }

    #[test]
    fn a_damaged_or_mismatched_session_file_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ConfigDir::new(dir.path());
        fs::write(config.session_path(), b"{ not json").expect("write");
        assert!(matches!(config.load_session(), Err(Error::State(_))));
        // A master key that does not open the sealed secrets.
        let s = session();
        config.save_session(&s).expect("save");
        let text = fs::read_to_string(config.session_path()).expect("read");
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["master_key"] = serde_json::Value::String(hex::encode([9u8; 32]));
        fs::write(config.session_path(), v.to_string()).expect("write");
        assert!(matches!(config.load_session(), Err(Error::State(_))));
    }

    /// Upload state of a file `name` in upload `[id; 16]`, with part 2 sent with `check2`.
    fn upload_state(name: &str, id: u8, check2: String) -> UploadState {
        UploadState {
            format: UPLOAD_STATE_FORMAT,
            key: UploadKey {
                local_path: format!("/tmp/{name}"),
                size: 10,
                mtime_ns: 5,
                parent: "p".into(),
                name: name.into(),
            },
            upload_id: UploadId::from_bytes([id; 16]).to_b64(),
            node_id: "n".into(),
            node_key: "00".repeat(32),
            file_key: "11".repeat(32),
            salt: "22".repeat(32),
            part_size: 1,
            total_length: 20,
            content_revision: 1,
            replaces_existing: false,
            sent: BTreeMap::from([(2, check2)]),
        }
    }

    #[test]
    fn upload_state_round_trips_and_is_keyed() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ConfigDir::new(dir.path());
        let st = upload_state("a.bin", 7, "ab".repeat(32));
        let key = st.key.clone();
        assert!(config.load_upload(&key).expect("load").is_none());
        config.save_upload(&st).expect("save");
        let back = config.load_upload(&key).expect("load").expect("saved");
        assert_eq!(back.sent.get(&2), st.sent.get(&2));
        assert_eq!(back.file_key, st.file_key);
        assert!(!format!("{back:?}").contains(&st.file_key));
        // Another size, time, parent or name is another upload.
        let other = UploadKey {
            mtime_ns: 6,
            ..key.clone()
        };
        assert_ne!(other.id(), key.id());
        assert!(config.load_upload(&other).expect("load").is_none());
        assert_eq!(back.format, UPLOAD_STATE_FORMAT);
        // A file of the first format (no `format` field) loads as format 1, which `put`
        // never resumes.
        let path = config.upload_path(&key);
        let mut v: serde_json::Value =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
        v.as_object_mut().expect("object").remove("format");
        fs::write(&path, v.to_string()).expect("write");
        let old = config.load_upload(&key).expect("load").expect("saved");
        assert_eq!(old.format, 1);
        assert_ne!(old.format, UPLOAD_STATE_FORMAT);
        config.delete_upload(&key).expect("delete");
        assert!(config.load_upload(&key).expect("load").is_none());
    }

    #[test]
    fn sent_journal_adds_checks_and_refuses_damage() {
        let dir = tempfile::tempdir().expect("dir");
        let config = ConfigDir::new(dir.path());
        let check = |c: char| c.to_string().repeat(CHECK_HEX_LEN);
        let st = upload_state("b.bin", 8, check('a'));
        let key = st.key.clone();
        config.save_upload(&st).expect("save");
        let journal = config.sent_journal(&st).expect("journal");
        let sent_after = |config: &ConfigDir| {
            config.load_upload(&key).map(|s| {
                s.expect("saved")
                    .sent
                    .clone()
                    .into_iter()
                    .collect::<Vec<_>>()
            })
        };
        // Checks recorded after the save are loaded with the record's.
        journal.record(5, &check('b')).expect("record");
        journal.record(7, &check('c')).expect("record");
        journal
            .record(2, &check('a'))
            .expect("the same check again");
        assert_eq!(
            sent_after(&config).expect("load"),
            vec![(2, check('a')), (5, check('b')), (7, check('c'))]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(journal.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Only well-formed checks are recorded.
        for bad in [
            "",
            "ab",
            &check('g'),
            &check('A'),
            &format!("{} x", check('a')),
        ] {
            assert!(
                matches!(journal.record(9, bad), Err(Error::State(_))),
                "{bad:?}"
            );
        }
        // A last line cut short by a crash: its part was never sent.
        let intact = fs::read(journal.path()).expect("read");
        let mut torn = intact.clone();
        torn.extend_from_slice(format!("9 {}", &check('d')[..20]).as_bytes());
        fs::write(journal.path(), &torn).expect("write");
        assert_eq!(sent_after(&config).expect("load").len(), 3);
        // Any other damage refuses the state.
        let damaged = [
            format!("2 {}\n", check('e')),  // another check for a part
            format!("x {}\n", check('e')),  // not an index
            format!("05 {}\n", check('e')), // not the index's own spelling
            format!("6 {}\n", check('G')),  // not a check
            format!("6  {}\n", check('e')), // not one space
            "\n".to_string(),               // an empty line
        ];
        for d in &damaged {
            let mut bytes = intact.clone();
            bytes.extend_from_slice(d.as_bytes());
            fs::write(journal.path(), &bytes).expect("write");
            assert!(matches!(sent_after(&config), Err(Error::State(_))), "{d:?}");
        }
        fs::write(journal.path(), &intact).expect("write");
        // The journal of another upload under the same key is not this one's.
        let mut other = st.clone();
        other.upload_id = UploadId::from_bytes([9; 16]).to_b64();
        let stale = config.sent_journal(&other).expect("journal");
        stale.record(3, &check('f')).expect("record");
        assert_eq!(sent_after(&config).expect("load").len(), 3);
        // Deleting the upload deletes the record and every journal of its key.
        config.delete_upload(&key).expect("delete");
        assert!(config.load_upload(&key).expect("load").is_none());
        assert!(!journal.path().exists());
        assert!(!stale.path().exists());
        // State last written before the cut-off is pruned, newer state kept.
        config.save_upload(&st).expect("save");
        journal.record(1, &check('a')).expect("record");
        let stale_record = config.upload_path(&key);
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 86_400);
        for p in [&stale_record, journal.path()] {
            fs::File::options()
                .write(true)
                .open(p)
                .expect("open")
                .set_modified(old)
                .expect("age");
        }
        let mut fresh = st.clone();
        fresh.key.mtime_ns = 6;
        config.save_upload(&fresh).expect("save");
        let cut = std::time::SystemTime::now() - std::time::Duration::from_secs(7 * 86_400);
        assert_eq!(config.prune_uploads(cut).expect("prune"), 2);
        assert!(!stale_record.exists() && !journal.path().exists());
        assert!(config.load_upload(&fresh.key).expect("load").is_some());
        assert_eq!(config.prune_uploads(cut).expect("prune"), 0);
        config.delete_upload(&fresh.key).expect("delete");
        // Format 2 kept every check in the record: no journal is read for it (`put` never
        // resumes it).
        let mut v2 = st.clone();
        v2.format = 2;
        v2.upload_id = "not an id".into();
        config.save_upload(&v2).expect("save");
        assert_eq!(
            config
                .load_upload(&key)
                .expect("load")
                .expect("saved")
                .format,
            2
        );
    }
}
