//! Authenticated pagination cursors (spec §11.4.5).
//!
//! A cursor is `last-node-id (16 bytes) || tag (16 bytes)`, where `tag` is HMAC-SHA256 under the
//! server's cursor key (a [`ServerSecret`] kept in the metadata store, so cursors survive a
//! restart) of the label, the listed folder's id and the last node id, truncated to 16 bytes.
//! A client can neither forge a cursor nor move one to another folder, so it cannot probe node
//! ids; the tag is checked in constant time.

use coffer_core::ids::NodeId;
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

use crate::store::{MetadataStore, ServerSecret, StoreResult};

/// The name of the cursor key in the metadata store.
const SECRET_NAME: &str = "pagination-cursor-mac";
/// The MAC's domain-separation label.
const LABEL: &[u8] = b"coffer/v1/server/cursor";
/// Length of the key drawn for a new store.
const KEY_LEN: usize = 32;
/// Length of the truncated tag.
const TAG_LEN: usize = 16;
/// Length of a cursor.
pub(crate) const CURSOR_LEN: usize = 16 + TAG_LEN;

/// The key that authenticates cursors.
#[derive(Clone, Debug)]
pub struct CursorKey(ServerSecret);

impl CursorKey {
    /// Loads the key from the metadata store, creating it (from the OS RNG) on first use.
    ///
    /// # Errors
    /// The store's.
    pub async fn load(meta: &dyn MetadataStore) -> StoreResult<Self> {
        let mut fresh = vec![0u8; KEY_LEN];
        OsRng.fill_bytes(&mut fresh);
        Ok(CursorKey(
            meta.server_secret(SECRET_NAME, ServerSecret::new(fresh))
                .await?,
        ))
    }

    fn mac(&self, parent: NodeId, last: NodeId) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.0.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        m.update(LABEL);
        m.update(&[0]);
        m.update(parent.as_bytes());
        m.update(last.as_bytes());
        m
    }

    /// The cursor continuing a listing of `parent` after `last`.
    pub(crate) fn seal(&self, parent: NodeId, last: NodeId) -> Vec<u8> {
        let tag = self.mac(parent, last).finalize().into_bytes();
        let mut out = Vec::with_capacity(CURSOR_LEN);
        out.extend_from_slice(last.as_bytes());
        out.extend_from_slice(&tag[..TAG_LEN]);
        out
    }

    /// The node id a cursor of `parent` continues after, if the cursor is authentic.
    pub(crate) fn open(&self, parent: NodeId, cursor: &[u8]) -> Option<NodeId> {
        if cursor.len() != CURSOR_LEN {
            return None;
        }
        let (id, tag) = cursor.split_at(16);
        let last = NodeId::from_bytes(id.try_into().ok()?);
        self.mac(parent, last)
            .verify_truncated_left(tag)
            .ok()
            .map(|()| last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryMetadataStore;

    #[tokio::test]
    async fn cursors_verify_only_unaltered_and_for_their_folder() {
        let meta = MemoryMetadataStore::default();
        let key = CursorKey::load(&meta).await.expect("key");
        let same = CursorKey::load(&meta).await.expect("key");
        let (parent, other) = (NodeId::from_bytes([1; 16]), NodeId::from_bytes([2; 16]));
        let last = NodeId::from_bytes([9; 16]);
        let c = key.seal(parent, last);
        assert_eq!(c.len(), CURSOR_LEN);
        assert_eq!(key.open(parent, &c), Some(last));
        assert_eq!(
            same.open(parent, &c),
            Some(last),
            "the stored key is reused"
        );
        assert_eq!(key.open(other, &c), None, "bound to its folder");
        for i in 0..c.len() {
            let mut bad = c.clone();
            bad[i] ^= 0x01;
            assert_eq!(key.open(parent, &bad), None, "byte {i} altered");
        }
        assert_eq!(key.open(parent, &c[..CURSOR_LEN - 1]), None);
        assert_eq!(key.open(parent, last.as_bytes()), None, "a bare node id");
        let fresh = CursorKey::load(&MemoryMetadataStore::default())
            .await
            .expect("key");
        assert_eq!(fresh.open(parent, &c), None, "another server's key");
    }
}
