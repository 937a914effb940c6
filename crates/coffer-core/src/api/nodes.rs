//! Nodes and content uploads (spec §11.8, §11.9).

use alloc::vec::Vec;

use super::upload::{part_count, PartBitmap};
use super::{body, MAX_BULK_BODY, MAX_CURSOR_LEN, MAX_RECORD_BODY, MAX_SMALL_BODY};
use crate::encoding::ByteBuf;
use crate::error::DecodeError;
use crate::ids::{NodeId, UploadId};

body! {
    /// `POST /v1/nodes` request: a new node without content (a folder, or an empty record to be
    /// given content by an upload).
    pub struct NodeCreateRequest (type = 125, max = MAX_RECORD_BODY) {
        /// The node's first record, a `SignedNode` (§7).
        pub signed_node: ByteBuf,
    }
}

body! {
    /// `GET /v1/nodes/{node-id}`, `GET /v1/root` and link node responses.
    pub struct NodeResponse (type = 126, max = MAX_RECORD_BODY) {
        /// The node's current record, a `SignedNode` (§7), byte for byte as its author sent it.
        pub signed_node: ByteBuf,
    }
}

body! {
    /// `GET /v1/nodes/{node-id}/children` response: one page of a folder's children.
    pub struct NodeList (type = 127, max = MAX_BULK_BODY, check = check_node_list) {
        /// The folder.
        pub parent_id: NodeId,
        /// `SignedNode` records (§7) of children, in ascending node-id order.
        pub records: Vec<ByteBuf>,
        /// Pass as `cursor` to get the next page; null on the last page.
        pub next_cursor: Option<ByteBuf>,
    }
}

body! {
    /// `PUT /v1/nodes/{node-id}` request: rename, move or re-key (not content).
    pub struct NodeUpdateRequest (type = 128, max = MAX_RECORD_BODY) {
        /// The revision being replaced.
        pub expected_revision: u64,
        /// The new record, a `SignedNode` (§7) of revision `expected_revision + 1`.
        pub signed_node: ByteBuf,
    }
}

body! {
    /// `DELETE /v1/nodes/{node-id}` request.
    pub struct NodeDeleteRequest (type = 129, max = MAX_SMALL_BODY) {
        /// The node's current revision.
        pub expected_revision: u64,
    }
}

body! {
    /// Response to a node creation, update or upload finalization.
    pub struct NodeWritten (type = 130, max = MAX_SMALL_BODY) {
        /// The node.
        pub node_id: NodeId,
        /// Its revision now.
        pub revision: u64,
    }
}

body! {
    /// `DELETE /v1/nodes/{node-id}` response.
    pub struct NodeDeleted (type = 131, max = MAX_SMALL_BODY) {
        /// The node.
        pub node_id: NodeId,
        /// How many nodes were deleted, the node itself included.
        pub deleted_nodes: u64,
    }
}

body! {
    /// `POST /v1/uploads` request: start a resumable content upload.
    pub struct UploadCreateRequest (type = 135, max = MAX_SMALL_BODY) {
        /// The node the content belongs to (it may not exist yet).
        pub node_id: NodeId,
        /// The folder the node is in, or will be created in.
        pub parent_id: NodeId,
        /// The content revision the record will name (§7); greater than the node's current one.
        pub content_revision: u64,
        /// Exact ciphertext length (§4).
        pub total_length: u64,
        /// Length of every part but the last.
        pub part_size: u64,
    }
}

body! {
    /// State of an upload: the response to `POST /v1/uploads`, `GET /v1/uploads/{upload-id}` and
    /// their link-drop counterparts.
    pub struct UploadStatus (type = 136, max = MAX_SMALL_BODY, check = check_upload_status) {
        /// The upload.
        pub upload_id: UploadId,
        /// The node, or null for a drop.
        pub node_id: Option<NodeId>,
        /// The content revision (0 for a drop).
        pub content_revision: u64,
        /// Exact ciphertext length.
        pub total_length: u64,
        /// Length of every part but the last.
        pub part_size: u64,
        /// `ceil(total_length / part_size)`.
        pub part_count: u64,
        /// Bit `i` (bit `i % 8`, least significant first, of byte `i / 8`) is set iff part `i` is
        /// stored; exactly `ceil(part_count / 8)` bytes, unused bits zero.
        pub present: ByteBuf,
        /// When the upload lapses unless used.
        pub expires_at: u64,
    }
}

body! {
    /// `PUT /v1/uploads/{upload-id}/parts/{index}` response.
    pub struct PartStored (type = 137, max = MAX_SMALL_BODY) {
        /// The upload.
        pub upload_id: UploadId,
        /// The part.
        pub part_index: u64,
        /// Its length as stored.
        pub length: u64,
    }
}

body! {
    /// `POST /v1/uploads/{upload-id}/finalize` request.
    pub struct UploadFinalizeRequest (type = 138, max = MAX_RECORD_BODY) {
        /// The node's current revision, or null when the record creates the node.
        pub expected_revision: Option<u64>,
        /// The record that makes the content visible, a `SignedNode` (§7) naming this upload's
        /// node id, content revision and length.
        pub signed_node: ByteBuf,
    }
}

/// A cursor is 1 to 64 bytes.
fn check_node_list(b: &NodeList) -> Result<(), DecodeError> {
    match &b.next_cursor {
        Some(c) if c.is_empty() || c.len() > MAX_CURSOR_LEN => Err(DecodeError::InvalidValue),
        _ => Ok(()),
    }
}

/// The part count follows from the shape (spec §11.9.1), the bitmap has exactly its length with
/// unused bits zero, and only a drop (no node) has content revision 0.
fn check_upload_status(b: &UploadStatus) -> Result<(), DecodeError> {
    let count = part_count(b.total_length, b.part_size).map_err(|_| DecodeError::InvalidValue)?;
    if count != b.part_count
        || PartBitmap::from_bytes(&b.present, count).is_err()
        || b.node_id.is_none() != (b.content_revision == 0)
    {
        return Err(DecodeError::InvalidValue);
    }
    Ok(())
}
