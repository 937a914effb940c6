//! Shared folders (spec §8, §11.10): add a member after verifying their identity, remove a
//! member (rotation), list, leave, and [`Client::incoming`]: the folders shared with this
//! account, which the path resolver shows as `/shared/OWNER/NAME`.
//!
//! (Being written by the "share" helper; only the signature the resolver needs is here.)

use crate::error::{Error, Result};
use crate::files::RemoteNode;
use crate::Client;

/// A folder another account shares with this one.
#[derive(Debug, Clone)]
pub struct IncomingShare {
    /// The owner's user name.
    pub owner: String,
    /// The folder's name (from its metadata).
    pub name: String,
    /// The shared folder's root, verified, with its key from this account's grant and a
    /// [`TreeScope`](crate::files::TreeScope) naming who may write in it.
    pub root: RemoteNode,
}

impl Client {
    /// The folders shared with this account, each verified (share record, grant, root node).
    ///
    /// # Errors
    /// [`Error::Integrity`] when a share record, grant or node does not verify.
    pub async fn incoming(&self) -> Result<Vec<IncomingShare>> {
        Err(Error::Unimplemented("shares::incoming"))
    }
}
