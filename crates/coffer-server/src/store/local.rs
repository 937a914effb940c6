//! Local-directory blob store.
//!
//! Layout under the root directory (private to this module; no path leaves it):
//!
//! - `parts/<upload-id hex>/<index>`: upload parts, one file each;
//! - `blobs/<key>/<index>`: an assembled content blob or drop, as a directory holding its parts
//!   `0..n` in order (hard links to the part files; the blob is their concatenation). A plain file
//!   `blobs/<key>` (the layout of earlier versions) is read as a one-part blob;
//! - `tmp/`: files and directories being written or deleted. Every part is written here first,
//!   `fsync`ed, then renamed into place, and the destination directory is `fsync`ed, so a part is
//!   either complete or absent after a crash. Whatever `tmp/` holds at startup is debris of an
//!   interrupted write or deletion and is removed by [`LocalBlobStore::open`].
//!
//! Assembling an upload costs no copy: the parts are already durable, so [`BlobStore::assemble`]
//! hard-links them into a fresh directory under `tmp/`, `fsync`s it and renames it into
//! `blobs/`: the blob appears complete or not at all, and the parts stay in place for a retry.
//! A part written again later is a new file renamed over the old name, so the linked inode of
//! an assembled blob never changes. Deleting a blob renames its directory into `tmp/` first, so
//! a crash never leaves a truncated blob behind.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use tokio::fs;
use tokio::io::AsyncSeekExt;

use super::*;

/// Bytes read from a blob file per hand-off to the response: large enough that the blocking
/// reader wakes the connection's task rarely (a 64 KiB `tokio::fs` read cost a thread round
/// trip per 64 KiB), small enough to keep a download's buffers well under a MiB.
const READ_CHUNK: usize = 256 * 1024;

/// The piece size of a download while [`LARGE_READS`] has room: each hand-off between the
/// blocking reader and the connection costs two thread wake-ups, and 1 MiB pieces cut the
/// server's CPU per GiB served by about a third against 256 KiB ones (0.68-0.82 s against
/// 1.03-1.10 s, four alternating runs of a 1 GiB download on tmpfs).
const LARGE_READ_CHUNK: usize = 1024 * 1024;

/// Large pieces held at once across every download (a piece is held from its read until the
/// response has sent it; each download reads one piece ahead): at most 64 MiB. Downloads beyond
/// that read [`READ_CHUNK`] pieces, so memory stays bounded however many run.
static LARGE_READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LARGE_READ_PERMITS);

/// [`LARGE_READS`]'s permits, one per large piece.
const LARGE_READ_PERMITS: usize = (64 << 20) / LARGE_READ_CHUNK;

/// A large piece and its share of [`LARGE_READS`], returned when the response drops the bytes.
struct LargePiece {
    buf: Vec<u8>,
    _permit: tokio::sync::SemaphorePermit<'static>,
}

impl AsRef<[u8]> for LargePiece {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

/// The size of the next piece of a download with `left` bytes to go, and the permit of a
/// large one.
fn piece_len(left: u64) -> (usize, Option<tokio::sync::SemaphorePermit<'static>>) {
    if left > READ_CHUNK as u64 {
        if let Ok(permit) = LARGE_READS.try_acquire() {
            let n = usize::try_from(left.min(LARGE_READ_CHUNK as u64)).unwrap_or(LARGE_READ_CHUNK);
            return (n, Some(permit));
        }
    }
    (
        usize::try_from(left.min(READ_CHUNK as u64)).unwrap_or(READ_CHUNK),
        None,
    )
}

/// Body bytes gathered before a blocking task writes them (one hand-off per batch instead of
/// one per network read: thread wake-ups cost more CPU than the writes). A part upload holds at
/// most two batches: one being written, one being gathered. 2 MiB: against 1 MiB, 6-12% less
/// server CPU and 5-9% less wall time for a 1 GiB put (three alternating pairs on tmpfs); 4 MiB
/// gained little more for twice the memory per part in flight.
const WRITE_BATCH: usize = 2 * 1024 * 1024;

/// Writes `batch` to the part file on a blocking thread (one hand-off and one `writev` per
/// batch instead of one per network read), while the connection receives the next batch.
fn spawn_write(
    mut file: std::fs::File,
    batch: Vec<bytes::Bytes>,
) -> tokio::task::JoinHandle<io::Result<std::fs::File>> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut slices: Vec<io::IoSlice<'_>> = batch.iter().map(|b| io::IoSlice::new(b)).collect();
        let mut left = &mut slices[..];
        while !left.is_empty() {
            let n = file.write_vectored(left)?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            io::IoSlice::advance_slices(&mut left, n);
        }
        Ok(file)
    })
}

/// The part file once the write in progress, if any, is done.
async fn written(
    part: Option<std::fs::File>,
    writing: Option<tokio::task::JoinHandle<io::Result<std::fs::File>>>,
) -> StoreResult<std::fs::File> {
    match (writing, part) {
        (Some(h), _) => h
            .await
            .map_err(|e| StoreError::backend(io::Error::other(e)))?
            .map_err(StoreError::backend),
        (None, Some(p)) => Ok(p),
        (None, None) => Err(StoreError::backend(io::Error::other("part file lost"))),
    }
}

/// Reads the next piece of `file` (`n` bytes, see [`piece_len`]) on a blocking thread; returns
/// the file for the next read.
fn read_piece(
    file: std::fs::File,
    n: usize,
    permit: Option<tokio::sync::SemaphorePermit<'static>>,
) -> tokio::task::JoinHandle<io::Result<(std::fs::File, bytes::Bytes)>> {
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut buf = Vec::with_capacity(n);
        let mut file = file;
        (&mut file).take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file shorter than listed",
            ));
        }
        let piece = match permit {
            Some(permit) => bytes::Bytes::from_owner(LargePiece {
                buf,
                _permit: permit,
            }),
            None => bytes::Bytes::from(buf),
        };
        Ok((file, piece))
    })
}

/// The bytes of `files` (each positioned at its range's start, with the range's length), in
/// order, read one piece ahead of the consumer.
fn blob_stream(files: Vec<(std::fs::File, u64)>) -> ByteStream {
    type Ahead = tokio::task::JoinHandle<io::Result<(std::fs::File, bytes::Bytes)>>;
    struct State {
        files: std::vec::IntoIter<(std::fs::File, u64)>,
        /// The read in progress, and how much of its file is left after it.
        ahead: Option<(Ahead, u64)>,
    }
    fn start(file: std::fs::File, left: u64) -> (Ahead, u64) {
        let (n, permit) = piece_len(left);
        (read_piece(file, n, permit), left - n as u64)
    }
    let mut files = files.into_iter();
    let ahead = files.next().map(|(f, left)| start(f, left));
    let state = State { files, ahead };
    Box::pin(futures_util::stream::unfold(state, |mut st| async move {
        let (handle, left) = st.ahead.take()?;
        let (file, piece) = match handle.await.map_err(io::Error::other) {
            Ok(Ok(x)) => x,
            Ok(Err(e)) | Err(e) => return Some((Err(e), st)),
        };
        st.ahead = if left > 0 {
            Some(start(file, left))
        } else {
            st.files.next().map(|(f, left)| start(f, left))
        };
        Some((Ok(piece), st))
    }))
}

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

    /// Renames the synced blob directory `tmp` to `dest`, replacing an earlier assembly of the
    /// same key (a retried finalize: a directory cannot be renamed over a non-empty one, so the
    /// earlier one is discarded first), and syncs `blobs/`.
    async fn publish_blob(&self, tmp: &Path, dest: &Path) -> StoreResult<()> {
        match fs::symlink_metadata(dest).await {
            Ok(_) => {
                self.discard_blob(dest).await?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::backend(e)),
        }
        self.publish(tmp, dest).await
    }

    /// Moves a blob out of `blobs/` into `tmp/` in one rename (so that it is complete or gone,
    /// even after a crash), syncs `blobs/`, then removes it. `false` if there was none.
    async fn discard_blob(&self, path: &Path) -> StoreResult<bool> {
        let aside = self.tmp_path();
        match fs::rename(path, &aside).await {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(StoreError::backend(e)),
        }
        sync_dir(&self.root.join("blobs"))
            .await
            .map_err(StoreError::backend)?;
        // Left in `tmp/` on failure: removed at the next start.
        let removed = if fs::symlink_metadata(&aside)
            .await
            .map_err(StoreError::backend)?
            .is_dir()
        {
            fs::remove_dir_all(&aside).await
        } else {
            fs::remove_file(&aside).await
        };
        if let Err(e) = removed {
            tracing::warn!(error = %e, "discarded blob not removed until the next start");
        }
        Ok(true)
    }

    /// The files of blob `key` in order, with their lengths, or `None` if there is no such blob.
    async fn blob_files(&self, key: &str) -> StoreResult<Option<Vec<(PathBuf, u64)>>> {
        let path = self.blob_path(key)?;
        let meta = match fs::symlink_metadata(&path).await {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::backend(e)),
        };
        if !meta.is_dir() {
            return Ok(Some(vec![(path, meta.len())]));
        }
        let mut dir = match fs::read_dir(&path).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::backend(e)),
        };
        let mut parts = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            let Some(index) = part_index(&entry.file_name()) else {
                return Err(corrupt_blob());
            };
            let len = entry.metadata().await.map_err(StoreError::backend)?.len();
            parts.push((index, entry.path(), len));
        }
        parts.sort_unstable_by_key(|p| p.0);
        if parts.iter().enumerate().any(|(i, p)| p.0 != i as u64) {
            return Err(corrupt_blob());
        }
        Ok(Some(parts.into_iter().map(|(_, p, l)| (p, l)).collect()))
    }
}

/// The index a part file's name spells (canonical decimal), or `None`.
fn part_index(name: &std::ffi::OsStr) -> Option<u64> {
    let name = name.to_str()?;
    let index = name.parse::<u64>().ok()?;
    (index.to_string() == name).then_some(index)
}

fn corrupt_blob() -> StoreError {
    StoreError::backend(io::Error::other("blob directory does not hold parts 0..n"))
}

/// Removes a temporary file or directory when dropped unless disarmed (error paths, cancelled futures).
struct TmpGuard(Option<PathBuf>);

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(&p).or_else(|_| std::fs::remove_file(&p));
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
        let file = fs::File::create(&tmp)
            .await
            .map_err(StoreError::backend)?
            .into_std()
            .await;
        let mut part = Some(file);
        let mut writing = None;
        let mut length = 0u64;
        let mut batch = Vec::new();
        let mut batched = 0usize;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(StoreError::backend)?;
            length += chunk.len() as u64;
            if length > max_len {
                return Err(StoreError::Invalid("part longer than allowed"));
            }
            batched += chunk.len();
            batch.push(chunk);
            if batched >= WRITE_BATCH {
                batched = 0;
                let p = written(part.take(), writing.take()).await?;
                writing = Some(spawn_write(p, std::mem::take(&mut batch)));
            }
        }
        let p = written(part.take(), writing.take()).await?;
        let file = written(None, Some(spawn_write(p, batch))).await?;
        let file = fs::File::from_std(file);
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
        Ok(PartStored { length })
    }

    async fn list_parts(&self, upload_id: UploadId) -> StoreResult<Vec<(u64, u64)>> {
        let mut dir = match fs::read_dir(self.parts_dir(&upload_id)).await {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::backend(e)),
        };
        let mut out = Vec::new();
        while let Some(entry) = dir.next_entry().await.map_err(StoreError::backend)? {
            let Some(index) = part_index(&entry.file_name()) else {
                continue;
            };
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
        fs::create_dir(&tmp).await.map_err(StoreError::backend)?;
        let mut guard = TmpGuard(Some(tmp.clone()));
        let mut length = 0u64;
        for i in 0..part_count {
            // The parts were synced when stored; linking copies no data.
            let link = tmp.join(i.to_string());
            match fs::hard_link(dir.join(i.to_string()), &link).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(StoreError::UploadIncomplete)
                }
                Err(e) => return Err(StoreError::backend(e)),
            }
            length += fs::metadata(&link)
                .await
                .map_err(StoreError::backend)?
                .len();
        }
        sync_dir(&tmp).await.map_err(StoreError::backend)?;
        self.publish_blob(&tmp, &dest).await?;
        guard.0 = None;
        Ok(length)
    }

    async fn blob_length(&self, key: &str) -> StoreResult<Option<u64>> {
        Ok(self
            .blob_files(key)
            .await?
            .map(|files| files.iter().map(|f| f.1).sum()))
    }

    async fn read(&self, key: &str, range: Option<Range<u64>>) -> StoreResult<BlobRead> {
        let files = self.blob_files(key).await?.ok_or(StoreError::NotFound)?;
        let length: u64 = files.iter().map(|f| f.1).sum();
        let range = range.unwrap_or(0..length);
        if range.start >= range.end || range.end > length {
            return Err(StoreError::Invalid("range"));
        }
        // Every file the range touches is opened now, so that a download survives the blob's
        // deletion (replaced content) while it streams.
        let mut opened = Vec::new();
        let mut start = 0u64;
        for (path, len) in files {
            let end = start + len;
            if end > range.start && start < range.end {
                let mut file = fs::File::open(&path).await?;
                let from = range.start.max(start) - start;
                let to = range.end.min(end) - start;
                if from > 0 {
                    file.seek(io::SeekFrom::Start(from))
                        .await
                        .map_err(StoreError::backend)?;
                }
                opened.push((file.into_std().await, to - from));
            }
            start = end;
        }
        Ok(BlobRead {
            length,
            stream: blob_stream(opened),
        })
    }

    async fn delete_blob(&self, key: &str) -> StoreResult<bool> {
        let path = self.blob_path(key)?;
        self.discard_blob(&path).await
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    async fn drain(mut read: BlobRead) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(chunk) = read.stream.next().await {
            out.extend_from_slice(&chunk.expect("chunk"));
        }
        out
    }

    async fn two_parts(store: &LocalBlobStore) -> UploadId {
        let uid = UploadId::from_bytes([7; 16]);
        store
            .put_part(uid, 0, bytes_stream(vec![1u8; 1000]), 1000)
            .await
            .expect("put");
        store
            .put_part(uid, 1, bytes_stream(vec![2u8; 500]), 1000)
            .await
            .expect("put");
        uid
    }

    /// Assembling links the part files into the blob: no byte is copied.
    #[tokio::test]
    async fn assemble_links_parts_without_copying() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        let uid = two_parts(&store).await;
        assert_eq!(store.assemble(uid, 2, "k-1").await.expect("assemble"), 1500);
        for i in 0..2u64 {
            let part = std::fs::metadata(store.parts_dir(&uid).join(i.to_string())).expect("part");
            let blob = std::fs::metadata(dir.path().join("blobs/k-1").join(i.to_string()))
                .expect("blob part");
            assert_eq!((part.dev(), part.ino()), (blob.dev(), blob.ino()));
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp"))
                .expect("tmp")
                .count(),
            0,
            "nothing left in tmp/"
        );
    }

    /// Blobs of several MiB read back exactly, whole and in ranges that cross parts and pieces,
    /// in large pieces while the budget has room and in small ones once it is used up; every
    /// large piece returns its permit when the reader drops it.
    #[tokio::test]
    async fn large_reads_are_exact_and_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        let uid = UploadId::from_bytes([9; 16]);
        let part =
            |i: u8, len: usize| -> Vec<u8> { (0..len).map(|j| (j % 251) as u8 ^ i).collect() };
        let (a, b) = (
            part(1, 3 * LARGE_READ_CHUNK + 12_345),
            part(2, LARGE_READ_CHUNK + 7),
        );
        store
            .put_part(uid, 0, bytes_stream(a.clone()), a.len() as u64)
            .await
            .expect("put");
        store
            .put_part(uid, 1, bytes_stream(b.clone()), b.len() as u64)
            .await
            .expect("put");
        store.assemble(uid, 2, "big").await.expect("assemble");
        let whole = [a, b].concat();
        /// Reads ranges and the whole blob; the largest piece seen.
        async fn check(store: &LocalBlobStore, whole: &[u8]) -> usize {
            let total = whole.len() as u64;
            for r in [0..total, 5..3_000_000, 3_100_000..total - 1] {
                let read = store.read("big", Some(r.clone())).await.expect("read");
                let got = drain(read).await;
                let (from, to) = (usize::try_from(r.start), usize::try_from(r.end));
                assert!(
                    got == whole[from.expect("fits")..to.expect("fits")],
                    "range {r:?}"
                );
            }
            let mut read = store.read("big", None).await.expect("read");
            let mut got = Vec::new();
            let mut largest = 0;
            while let Some(piece) = read.stream.next().await {
                let piece = piece.expect("piece");
                largest = largest.max(piece.len());
                got.extend_from_slice(&piece);
            }
            assert!(got == whole, "whole blob");
            largest
        }
        // While the budget has room, the pieces are large (no other test reads large blobs).
        assert_eq!(check(&store, &whole).await, LARGE_READ_CHUNK);
        // With the whole budget taken, every piece is a small one, and the bytes are the same.
        // Taking the whole budget also shows that every permit came back.
        let all = u32::try_from(LARGE_READ_PERMITS).expect("permits");
        let whole_budget = || async {
            tokio::time::timeout(
                std::time::Duration::from_secs(10),
                LARGE_READS.acquire_many(all),
            )
            .await
            .expect("every permit returned")
            .expect("budget")
        };
        let held = whole_budget().await;
        assert_eq!(check(&store, &whole).await, READ_CHUNK);
        drop(held);
        drop(whole_budget().await);
    }

    /// A download that started keeps streaming the whole blob when the blob is deleted.
    #[tokio::test]
    async fn read_survives_deletion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        let uid = two_parts(&store).await;
        store.assemble(uid, 2, "k-1").await.expect("assemble");
        store.delete_parts(uid).await.expect("parts");
        let read = store.read("k-1", Some(900..1200)).await.expect("read");
        assert!(store.delete_blob("k-1").await.expect("delete"));
        let mut want = vec![1u8; 100];
        want.extend_from_slice(&[2u8; 200]);
        assert_eq!(drain(read).await, want);
        assert!(matches!(
            store.read("k-1", None).await,
            Err(StoreError::NotFound)
        ));
    }

    /// A blob stored as one file (the layout of earlier versions) is listed, read and deleted.
    #[tokio::test]
    async fn single_file_blob_is_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        std::fs::write(dir.path().join("blobs/k-old"), b"old layout").expect("write");
        assert_eq!(store.list_blobs().await.expect("list"), vec!["k-old"]);
        assert_eq!(store.blob_length("k-old").await.expect("len"), Some(10));
        assert_eq!(
            drain(store.read("k-old", Some(4..10)).await.expect("read")).await,
            b"layout"
        );
        assert!(store.delete_blob("k-old").await.expect("delete"));
        assert_eq!(
            store.list_blobs().await.expect("list"),
            Vec::<String>::new()
        );
    }

    /// A blob directory that does not hold parts `0..n` is an error, never a short read.
    #[tokio::test]
    async fn gap_in_blob_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        let uid = two_parts(&store).await;
        store.assemble(uid, 2, "k-1").await.expect("assemble");
        std::fs::remove_file(dir.path().join("blobs/k-1/0")).expect("remove");
        assert!(matches!(
            store.read("k-1", None).await,
            Err(StoreError::Backend(_))
        ));
        assert!(store.blob_length("k-1").await.is_err());
    }

    /// An assembly interrupted before its rename leaves only `tmp/` debris, removed at startup.
    #[tokio::test]
    async fn interrupted_assembly_is_cleaned_at_startup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalBlobStore::open(dir.path()).await.expect("open");
        let uid = two_parts(&store).await;
        let debris = store.tmp_path();
        std::fs::create_dir(&debris).expect("mkdir");
        std::fs::hard_link(store.parts_dir(&uid).join("0"), debris.join("0")).expect("link");
        drop(store);
        let store = LocalBlobStore::open(dir.path()).await.expect("reopen");
        assert!(!debris.exists());
        assert_eq!(
            store.list_parts(uid).await.expect("parts"),
            vec![(0, 1000), (1, 500)]
        );
        assert_eq!(
            store.list_blobs().await.expect("list"),
            Vec::<String>::new()
        );
    }
}
