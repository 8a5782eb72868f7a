//! A directory on this host (the default): each submission one file, `{root}/{upload}`,
//! written in place; old-layout uploads are directories of one file per document.

use std::io::{Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;

use super::sync::GroupSync;
use super::{StagedUpload, StagedWriter, StagingError, StagingStore, is_name, is_plain};

/// Bytes a writer gathers before it writes them out. A typical submission (a photo and a
/// short PDF) is one or two such pieces, so it costs one or two trips to the blocking pool;
/// a larger one is written in pieces of at most this size, so a request holds no more than
/// this in memory.
const WRITE_CHUNK: usize = 128 * 1024;

pub struct LocalStaging {
    root: PathBuf,
    group_sync: GroupSync,
}

impl LocalStaging {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let synced = root.clone();
        Self {
            root,
            // syncfs(2) writes out every dirty file of the staging filesystem and the
            // directory entries naming them: one call covers every object of the window.
            group_sync: GroupSync::new(move || {
                let dir = std::fs::File::open(&synced)?;
                rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
            }),
        }
    }

    /// Joins a staged path under the root, refusing anything but plain names.
    fn path(&self, path: &str) -> Result<PathBuf, StagingError> {
        if !is_plain(path) {
            return Err(StagingError::NotFound);
        }
        Ok(self.root.join(path))
    }
}

struct LocalWriter {
    path: PathBuf,
    /// The open file, once the first piece was written.
    file: Option<std::fs::File>,
    /// Whether creating the file was attempted (it may exist even if that write failed, so
    /// an abort must remove it).
    touched: bool,
    pending: Vec<u8>,
}

impl LocalWriter {
    /// Writes what is pending on the blocking pool, creating the file on the first call.
    async fn flush_pending(&mut self) -> Result<(), StagingError> {
        let pending = std::mem::take(&mut self.pending);
        let (file, path) = (self.file.take(), self.path.clone());
        self.touched = true;
        let file = blocking(move || append(file, &path, &pending)).await?;
        self.file = Some(file);
        Ok(())
    }
}

/// Runs file work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StagingError> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??)
}

/// Writes `bytes` to the open file, or to a new one (creating the root if it went
/// missing). A new file must not exist yet: upload names are never reused.
fn append(
    file: Option<std::fs::File>,
    path: &Path,
    bytes: &[u8],
) -> std::io::Result<std::fs::File> {
    let create = || {
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(path)
    };
    let mut file = match file {
        Some(file) => file,
        None => match create() {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                create()?
            }
            other => other?,
        },
    };
    file.write_all(bytes)?;
    Ok(file)
}

impl StagedWriter for LocalWriter {
    fn write<'a>(&'a mut self, chunk: &'a [u8]) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            if !self.pending.is_empty() && self.pending.len() + chunk.len() > WRITE_CHUNK {
                self.flush_pending().await?;
            }
            self.pending.extend_from_slice(chunk);
            if self.pending.len() >= WRITE_CHUNK {
                self.flush_pending().await?;
            }
            Ok(())
        }
        .boxed()
    }

    fn finish(self: Box<Self>) -> BoxFuture<'static, Result<(), StagingError>> {
        let this = *self;
        async move {
            if this.file.is_some() && this.pending.is_empty() {
                return Ok(());
            }
            blocking(move || append(this.file, &this.path, &this.pending).map(drop)).await
        }
        .boxed()
    }

    fn abort(self: Box<Self>) -> BoxFuture<'static, ()> {
        let this = *self;
        async move {
            drop(this.file);
            if this.touched {
                let _ = tokio::fs::remove_file(&this.path).await;
            }
        }
        .boxed()
    }
}

/// Reads `range` of the file at `path`; `UnexpectedEof` if the file is shorter.
fn read_range(path: &Path, range: Range<u64>) -> std::io::Result<Vec<u8>> {
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|_| std::io::Error::other("range too large"))?;
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(range.start))?;
    let mut content = vec![0; len];
    file.read_exact(&mut content)?;
    Ok(content)
}

impl StagingStore for LocalStaging {
    fn name(&self) -> &'static str {
        "local"
    }

    fn prepare(&self) -> BoxFuture<'_, Result<(), StagingError>> {
        async move { Ok(tokio::fs::create_dir_all(&self.root).await?) }.boxed()
    }

    fn create<'a>(
        &'a self,
        upload: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn StagedWriter>, StagingError>> {
        async move {
            // Nothing touches the disk until the first piece is written (or the object is
            // finished): a submission refused early leaves nothing to remove.
            if !is_name(upload) {
                return Err(StagingError::NotFound);
            }
            Ok(Box::new(LocalWriter {
                path: self.path(upload)?,
                file: None,
                touched: false,
                pending: Vec::new(),
            }) as Box<dyn StagedWriter>)
        }
        .boxed()
    }

    fn read<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move { Ok(Bytes::from(tokio::fs::read(self.path(path)?).await?)) }.boxed()
    }

    fn read_range<'a>(
        &'a self,
        path: &'a str,
        range: Range<u64>,
    ) -> BoxFuture<'a, Result<Bytes, StagingError>> {
        async move {
            let path = self.path(path)?;
            Ok(Bytes::from(
                blocking(move || read_range(&path, range)).await?,
            ))
        }
        .boxed()
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, StagingError>> {
        async move {
            match tokio::fs::metadata(self.path(path)?).await {
                Ok(meta) => Ok(meta.is_file()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(err) => Err(err.into()),
            }
        }
        .boxed()
    }

    fn remove_upload<'a>(&'a self, upload: &'a str) -> BoxFuture<'a, Result<(), StagingError>> {
        async move {
            let path = self.path(upload)?;
            blocking(move || remove(&path)).await
        }
        .boxed()
    }

    fn remove_upload_now(&self, upload: &str) -> bool {
        if let Ok(path) = self.path(upload)
            && let Err(err) = remove(&path)
        {
            tracing::error!(error = %err, path = %path.display(), "staged upload could not be removed");
        }
        true
    }

    fn uploads(&self) -> BoxFuture<'_, Result<Vec<StagedUpload>, StagingError>> {
        async move {
            let mut entries = tokio::fs::read_dir(&self.root).await?;
            let now = SystemTime::now();
            let mut uploads = Vec::new();
            while let Some(entry) = entries.next_entry().await? {
                let Ok(meta) = entry.metadata().await else {
                    continue;
                };
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                    continue;
                };
                if meta.is_dir() || meta.is_file() {
                    let age = meta
                        .modified()
                        .ok()
                        .and_then(|m| now.duration_since(m).ok())
                        .unwrap_or_default();
                    uploads.push(StagedUpload { name, age });
                }
            }
            Ok(uploads)
        }
        .boxed()
    }

    fn sync(&self) -> BoxFuture<'_, Result<(), StagingError>> {
        self.group_sync.sync().boxed()
    }
}

/// Removes an upload's object, or its old-layout directory; what is gone is not an error.
fn remove(path: &Path) -> std::io::Result<()> {
    let removed = match std::fs::remove_file(path) {
        // unlink(2) refuses a directory: an upload of the old layout.
        Err(err) if err.kind() == std::io::ErrorKind::IsADirectory || path.is_dir() => {
            std::fs::remove_dir_all(path)
        }
        other => other,
    };
    match removed {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalStaging) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LocalStaging::new(dir.path().join("staging"));
        (dir, store)
    }

    #[tokio::test]
    async fn a_submission_is_one_file_written_in_place_and_read_by_range() {
        let (_dir, store) = store();
        store.prepare().await.expect("prepared");
        let mut writer = store.create("abc").await.expect("writer");
        let big = vec![7u8; WRITE_CHUNK + 10];
        writer.write(b"first-").await.expect("write");
        writer.write(&big).await.expect("write");
        writer.write(b"-last").await.expect("write");
        writer.finish().await.expect("finished");
        let names: Vec<String> = std::fs::read_dir(&store.root)
            .expect("listed")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        assert_eq!(names, ["abc"], "one file, no partial file, no directory");
        assert_eq!(
            &store.read_range("abc", 0..6).await.expect("read")[..],
            b"first-"
        );
        let end = 6 + big.len() as u64;
        assert_eq!(
            &store.read_range("abc", end..end + 5).await.expect("read")[..],
            b"-last"
        );
        assert_eq!(
            store.read_range("abc", end..end + 6).await,
            Err(StagingError::Incomplete),
            "a range past the end is an incomplete object"
        );
        assert_eq!(
            store.read_range("gone", 0..1).await,
            Err(StagingError::NotFound)
        );
        store.sync().await.expect("synced");
        store.remove_upload("abc").await.expect("removed");
        store
            .remove_upload("abc")
            .await
            .expect("removing what is gone is fine");
        assert!(!store.exists("abc").await.expect("checked"));
    }

    #[tokio::test]
    async fn an_aborted_or_refused_submission_leaves_nothing() {
        let (_dir, store) = store();
        store.prepare().await.expect("prepared");
        let mut writer = store.create("abc").await.expect("writer");
        writer
            .write(&vec![1u8; WRITE_CHUNK * 2])
            .await
            .expect("write");
        writer.abort().await;
        let untouched = store.create("def").await.expect("writer");
        untouched.abort().await;
        assert_eq!(std::fs::read_dir(&store.root).expect("listed").count(), 0);
        assert!(store.create("../escape").await.is_err());
        assert!(store.create("a/b").await.is_err());
    }

    #[tokio::test]
    async fn old_layout_directories_are_listed_read_and_removed() {
        let (_dir, store) = store();
        let old = store.root.join("old");
        std::fs::create_dir_all(&old).expect("dir");
        std::fs::write(old.join("payment_receipt"), b"receipt").expect("file");
        assert_eq!(
            &store.read("old/payment_receipt").await.expect("read")[..],
            b"receipt"
        );
        assert!(store.exists("old/payment_receipt").await.expect("checked"));
        let listed: Vec<String> = store
            .uploads()
            .await
            .expect("listed")
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(listed, ["old"]);
        assert!(store.remove_upload_now("old"));
        assert!(!old.exists());
    }
}
