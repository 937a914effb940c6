//! Remote files (spec §7, §11.8, §11.9): path resolution from `/`, list, mkdir, move, remove,
//! upload (parallel encryption, resumable) and download (streaming, verified, byte ranges).
//!
//! Remote paths start at the account's root folder (`/`). Folders other accounts share with
//! this one appear as `/shared/OWNER/NAME` (from [`Client::incoming`](crate::Client::incoming)).
//! Every node record on the way is verified with `coffer_core::tree::verify_node` against the
//! place it was found (node id, parent, generation) and the identities allowed to write there;
//! names come from the node's authenticated metadata.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_core::ids::NodeId;
use coffer_core::metadata::{self, Metadata};
use coffer_core::primitives::{SecretKey, VerifyingKey};
use coffer_core::tree::NodeRecord;

use crate::error::{Error, Result};
use crate::Client;

/// The name of the virtual folder holding folders shared with this account.
pub const SHARED_DIR: &str = "shared";

/// A parsed remote path: the names from `/` down, each a valid node name (spec §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePath {
    names: Vec<String>,
}

impl RemotePath {
    /// Parses `text`: `/`-separated names, an optional leading `/` (paths are always from the
    /// root), empty segments and `.` ignored, `..` refused.
    ///
    /// # Errors
    /// [`Error::Usage`] for `..` or a name metadata refuses.
    pub fn parse(text: &str) -> Result<Self> {
        let mut names = Vec::new();
        for seg in text.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    return Err(Error::Usage(format!(
                        "remote path {text:?}: `..` is not supported; write the path from /"
                    )))
                }
                name => {
                    metadata::validate_name(name).map_err(|e| {
                        Error::Usage(format!("remote path {text:?}: bad name {name:?}: {e}"))
                    })?;
                    names.push(name.to_owned());
                }
            }
        }
        Ok(RemotePath { names })
    }

    /// The root, `/`.
    #[must_use]
    pub fn root() -> Self {
        RemotePath { names: Vec::new() }
    }

    /// The names from the root down.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether this is `/`.
    #[must_use]
    pub fn is_root(&self) -> bool {
        self.names.is_empty()
    }

    /// The parent path and the last name; `None` for `/`.
    #[must_use]
    pub fn split_last(&self) -> Option<(RemotePath, &str)> {
        let (last, rest) = self.names.split_last()?;
        Some((
            RemotePath {
                names: rest.to_vec(),
            },
            last.as_str(),
        ))
    }

    /// This path with `name` appended.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad name.
    pub fn join(&self, name: &str) -> Result<Self> {
        metadata::validate_name(name)
            .map_err(|e| Error::Usage(format!("bad name {name:?}: {e}")))?;
        let mut names = self.names.clone();
        names.push(name.to_owned());
        Ok(RemotePath { names })
    }
}

impl std::fmt::Display for RemotePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.names.is_empty() {
            return f.write_str("/");
        }
        for n in &self.names {
            write!(f, "/{n}")?;
        }
        Ok(())
    }
}

/// Which identities may author records in a tree, and how to reach its nodes.
#[derive(Debug, Clone)]
pub struct TreeScope {
    /// The Ed25519 keys whose node records are accepted in this tree: the owner's current
    /// identity and, in a shared folder, the members with write permission.
    pub authors: Vec<VerifyingKey>,
    /// For a folder shared with this account: the owner's user name.
    pub shared_by: Option<String>,
}

/// A verified node: its record, its key, its metadata, and the scope it was found in.
#[derive(Debug, Clone)]
pub struct RemoteNode {
    /// The node id.
    pub id: NodeId,
    /// The verified record.
    pub record: NodeRecord,
    /// The exact signed encoding the record came from.
    pub signed: Vec<u8>,
    /// The node key.
    pub key: SecretKey,
    /// The server's revision of the record (§11.4.3), from the `ETag`; 0 when unknown.
    pub revision: u64,
    /// The opened metadata.
    pub metadata: Metadata,
    /// Who may write in the tree this node belongs to.
    pub scope: Arc<TreeScope>,
}

impl RemoteNode {
    /// Whether this is a folder.
    #[must_use]
    pub fn is_folder(&self) -> bool {
        self.record.is_folder()
    }

    /// The node's name (from its metadata).
    #[must_use]
    pub fn name(&self) -> &str {
        self.metadata.name()
    }
}

/// What a remote path names.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// A node of the account's tree or of a folder shared with it.
    Node(Box<RemoteNode>),
    /// `/shared`: the virtual folder of folders shared with this account.
    SharedRoot,
    /// `/shared/OWNER`: the virtual folder of what `OWNER` shares with this account.
    SharedOwner(String),
}

/// One entry of a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// The name.
    pub name: String,
    /// `"file"` or `"folder"`.
    pub kind: &'static str,
    /// Plaintext size in bytes (files).
    pub size: u64,
    /// Modification time (seconds since the epoch).
    pub mtime: u64,
}

/// Reports transfer progress (bytes of plaintext); the CLI draws a bar, the library is quiet.
pub trait Progress: Send + Sync {
    /// The total number of bytes, once known.
    fn set_total(&self, _total: u64) {}
    /// `n` more bytes done.
    fn advance(&self, _n: u64) {}
}

/// No progress reporting.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// What `put` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PutOutcome {
    /// The remote path written.
    pub path: String,
    /// Plaintext bytes.
    pub size: u64,
    /// Parts sent by this run (fewer than the total when resuming).
    pub parts_sent: u64,
    /// Parts in the upload.
    pub parts_total: u64,
    /// Whether this run continued an interrupted upload.
    pub resumed: bool,
}

impl Client {
    /// Resolves `path` from `/`, verifying every record on the way.
    ///
    /// # Errors
    /// [`Error::NotFound`] when a name does not exist; [`Error::Integrity`] for a record that
    /// does not verify.
    pub async fn resolve(&self, path: &RemotePath) -> Result<Resolved> {
        let _ = path;
        Err(Error::Unimplemented("resolve"))
    }

    /// Lists a folder (or describes a file).
    ///
    /// # Errors
    /// As [`Client::resolve`].
    pub async fn ls(&self, path: &RemotePath) -> Result<Vec<Entry>> {
        let _ = path;
        Err(Error::Unimplemented("ls"))
    }

    /// Creates the folder `path` (its parent must exist).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the name exists.
    pub async fn mkdir(&self, path: &RemotePath) -> Result<()> {
        let _ = path;
        Err(Error::Unimplemented("mkdir"))
    }

    /// Moves or renames `src` to `dst` (into `dst` when it is a folder).
    ///
    /// # Errors
    /// [`Error::Conflict`] when the target name exists.
    pub async fn mv(&self, src: &RemotePath, dst: &RemotePath) -> Result<RemotePath> {
        let _ = (src, dst);
        Err(Error::Unimplemented("mv"))
    }

    /// Removes a file or a folder with everything below it.
    ///
    /// # Errors
    /// [`Error::NotFound`].
    pub async fn rm(&self, path: &RemotePath) -> Result<()> {
        let _ = path;
        Err(Error::Unimplemented("rm"))
    }

    /// Uploads the local file `local` to `remote` (a folder: into it under the local name).
    /// Parts are encrypted in parallel; the upload state is persisted, so calling `put` again
    /// after an interruption resumes.
    ///
    /// # Errors
    /// [`Error::Io`] for the local file; [`Error::Conflict`] when the name exists.
    pub async fn put(
        &self,
        local: &Path,
        remote: &RemotePath,
        progress: &dyn Progress,
    ) -> Result<PutOutcome> {
        let _ = (local, remote, progress);
        Err(Error::Unimplemented("put"))
    }

    /// Downloads `remote` to `local` (a directory: into it under the remote name; `-`: standard
    /// output), the plaintext bytes `range` (`first..end`, `None` end: to the end of the file)
    /// only when given. Verified as it streams; written to a temporary file renamed into place
    /// only on success. Returns the bytes written and the local path.
    ///
    /// # Errors
    /// [`Error::Integrity`] when the content fails to authenticate (nothing is written).
    pub async fn get(
        &self,
        remote: &RemotePath,
        local: &Path,
        range: Option<(u64, Option<u64>)>,
        progress: &dyn Progress,
    ) -> Result<(u64, PathBuf)> {
        let _ = (remote, local, range, progress);
        Err(Error::Unimplemented("get"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_from_the_root() {
        let p = RemotePath::parse("/a/b/./c/").expect("parse");
        assert_eq!(p.names(), ["a", "b", "c"]);
        assert_eq!(p.to_string(), "/a/b/c");
        assert_eq!(
            RemotePath::parse("a//b").expect("parse").to_string(),
            "/a/b"
        );
        assert!(RemotePath::parse("/").expect("root").is_root());
        assert!(matches!(RemotePath::parse("/a/../b"), Err(Error::Usage(_))));
        let (parent, last) = p.split_last().expect("not root");
        assert_eq!(parent.to_string(), "/a/b");
        assert_eq!(last, "c");
    }
}
