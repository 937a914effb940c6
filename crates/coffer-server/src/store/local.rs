//! Local-directory blob store.
//!
//! Layout under the root directory (private to this module; no path leaves it):
//!
//! - `blobs/<key>`: assembled content blobs and drops;
//! - `parts/<upload-id hex>/<index>`: upload parts;
//! - `tmp/`: files being written. Every file is written here first, `fsync`ed, then renamed into
//!   place, and the destination directory is `fsync`ed, so a blob or part is either complete or
//!   absent after a crash. Whatever `tmp/` holds at startup is debris of an interrupted write and
//!   is removed by [`LocalBlobStore::open`].

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use sha2::{Digest as _, Sha256};
use tokio::fs;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use super::*;

/// Read buffer size for streaming blobs.
const READ_CHUNK: usize = 64 * 1024;

/// A blob store in a local directory.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

impl LocalBlobStore {
    /// Opens (creating if needed) a blob store rooted at `root`, removing leftover temporary
    /// files of interrupted writes.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the directories cannot be created or cleaned.
    pub async fn open(root: impl AsRef<Path>) -> StoreResult<Self> {
        let root = root.as_ref().to_path_buf();
        for sub in ["blobs", "parts", "tmp"] {
            fs::create_dir_all(root.join(sub))
                .await
                .map_err(StoreError::backend)?;
        }
        let store = LocalBlobStore { root };
        store.clean_tmp().await?;
        sync_dir(&store.root).await.map_err(StoreError::backend)?;
        Ok(store)
    }

    async fn clean_tmp(&self) -> StoreResult<()> {
        let tmp = self.root.join("tmp");
        let mut dir = fs::read_dir(&tmp).await.map_err(StoreError::backend)?;
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            let path = entry.path();
            let result = if entry
                .file_type()
                .await
                .map_err(StoreError::backend)?
                .is_dir()
            {
                fs::remove_dir_all(&path).await
            } else {
                fs::remove_file(&path).await
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::backend(e)),
            }
        }
        sync_dir(&tmp).await.map_err(StoreError::backend)
    }

    fn tmp_path(&self) -> PathBuf {
        let mut name = [0u8; 16];
        OsRng.fill_bytes(&mut name);
        self.root.join("tmp").join(hex::encode(name))
    }

    fn blob_path(&self, key: &str) -> StoreResult<PathBuf> {
        if valid_blob_key(key) {
            Ok(self.root.join("blobs").join(key))
        } else {
            Err(StoreError::Invalid("blob key"))
        }
    }

    fn parts_dir(&self, upload_id: &UploadId) -> PathBuf {
        self.root
            .join("parts")
            .join(hex::encode(upload_id.as_bytes()))
    }

    /// Renames a synced temporary file into `dest` and syncs the destination directory.
    async fn publish(&self, tmp: &Path, dest: &Path) -> StoreResult<()> {
        fs::rename(tmp, dest).await.map_err(StoreError::backend)?;
        if let Some(parent) = dest.parent() {
            sync_dir(parent).await.map_err(StoreError::backend)?;
        }
        Ok(())
    }
}

/// Removes a temporary file when dropped unless disarmed (error paths, cancelled futures).
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    async fn put_part(
        &self,
        upload_id: UploadId,
        index: u64,
        mut body: ByteStream,
        max_len: u64,
    ) -> StoreResult<PartStored> {
        let tmp = self.tmp_path();
        let mut guard = TmpGuard(Some(tmp.clone()));
        let mut file = fs::File::create(&tmp).await.map_err(StoreError::backend)?;
        let mut hasher = Sha256::new();
        let mut length = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::backend)?;
            length += chunk.len() as u64;
            if length > max_len {
                return Err(StoreError::Invalid("part longer than allowed"));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(StoreError::backend)?;
        }
        file.flush().await.map_err(StoreError::backend)?;
        file.sync_all().await.map_err(StoreError::backend)?;
        drop(file);
        let dir = self.parts_dir(&upload_id);
        if fs::metadata(&dir).await.is_err() {
            fs::create_dir_all(&dir)
                .await
                .map_err(StoreError::backend)?;
            sync_dir(&self.root.join("parts"))
                .await
                .map_err(StoreError::backend)?;
        }
        self.publish(&tmp, &dir.join(index.to_string())).await?;
        guard.0 = None;
        Ok(PartStored {
            length,
            digest: hasher.finalize().into(),
        })
    }

    async fn list_parts(&self, upload_id: UploadId) -> StoreResult<Vec<(u64, u64)>> {
        let mut dir = match fs::read_dir(self.parts_dir(&upload_id)).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::backend(e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            let Some(index) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if index.to_string() != entry.file_name().to_string_lossy() {
                continue;
            }
            out.push((
                index,
                entry.metadata().await.map_err(StoreError::backend)?.len(),
            ));
        }
        out.sort_unstable();
        Ok(out)
    }

    async fn assemble(&self, upload_id: UploadId, part_count: u64, key: &str) -> StoreResult<u64> {
        let dest = self.blob_path(key)?;
        let dir = self.parts_dir(&upload_id);
        let tmp = self.tmp_path();
        let mut guard = TmpGuard(Some(tmp.clone()));
        let mut out = fs::File::create(&tmp).await.map_err(StoreError::backend)?;
        let mut length = 0u64;
        for i in 0..part_count {
            let mut part = match fs::File::open(dir.join(i.to_string())).await {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::UploadIncomplete)
                }
                Err(e) => return Err(StoreError::backend(e)),
            };
            length += tokio::io::copy(&mut part, &mut out)
                .await
                .map_err(StoreError::backend)?;
        }
        out.flush().await.map_err(StoreError::backend)?;
        out.sync_all().await.map_err(StoreError::backend)?;
        drop(out);
        self.publish(&tmp, &dest).await?;
        guard.0 = None;
        Ok(length)
    }

    async fn blob_length(&self, key: &str) -> StoreResult<Option<u64>> {
        match fs::metadata(self.blob_path(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobRead> {
        let mut file = fs::File::open(self.blob_path(key)?).await?;
        let length = file.metadata().await.map_err(StoreError::backend)?.len();
        let range = range.unwrap_or(0..length);
        if range.start >= range.end || range.end > length {
            return Err(StoreError::Invalid("range"));
        }
        file.seek(io::SeekFrom::Start(range.start))
            .await
            .map_err(StoreError::backend)?;
        let reader = file.take(range.end - range.start);
        Ok(BlobRead {
            length,
            stream: Box::pin(ReaderStream::with_capacity(reader, READ_CHUNK)),
        })
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<bool> {
        let path = self.blob_path(key)?;
        match fs::remove_file(&path).await {
            Ok(()) => {
                sync_dir(&self.root.join("blobs"))
                    .await
                    .map_err(StoreError::backend)?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn delete_parts(&self, upload_id: UploadId) -> StoreResult<()> {
        match fs::remove_dir_all(self.parts_dir(&upload_id)).await {
            Ok(()) => sync_dir(&self.root.join("parts"))
                .await
                .map_err(StoreError::backend),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::backend(e)),
        }
    }

    async fn list_blobs(&self) -> StoreResult<Vec<String>> {
        let mut dir = fs::read_dir(self.root.join("blobs"))
            .await
            .map_err(StoreError::backend)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            if let Some(name) = entry.file_name().to_str() {
                if valid_blob_key(name) {
                    out.push(name.to_owned());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    async fn list_uploads(&self) -> StoreResult<Vec<UploadId>> {
        let mut dir = fs::read_dir(self.root.join("parts"))
            .await
            .map_err(StoreError::backend)?;
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(bytes) = hex::decode(&name) else {
                continue;
            };
            let Ok(arr) = <[u8; 16]>::try_from(bytes.as_slice()) else {
                continue;
            };
            out.push(UploadId::from_bytes(arr));
        }
        out.sort();
        Ok(out)
    }
}
