//! The staging directory: where uploaded documents wait for the worker. Every upload gets a
//! directory of its own with a server-chosen name; the client's filename is never a path.
//! An [`Upload`] removes its directory when dropped unless it was handed to the queue, so a
//! rejected, failed or abandoned request leaves nothing behind.

use std::path::{Path, PathBuf};

use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Staging {
    root: PathBuf,
}

impl Staging {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes sure the root exists; called once at start-up.
    pub async fn prepare(&self) -> std::io::Result<()> {
        tokio::fs::create_dir_all(&self.root).await
    }

    /// Starts a new upload in a fresh directory.
    pub async fn begin(&self) -> std::io::Result<Upload> {
        let name = Uuid::new_v4().simple().to_string();
        let dir = self.root.join(&name);
        tokio::fs::create_dir(&dir).await?;
        Ok(Upload {
            name,
            dir,
            keep: false,
        })
    }
}

/// One request's staged files.
#[derive(Debug)]
pub struct Upload {
    name: String,
    dir: PathBuf,
    keep: bool,
}

impl Upload {
    /// The upload's directory name, relative to the staging root.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Absolute path of a file in this upload.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Path of a file relative to the staging root, as the job refers to it.
    pub fn relative(&self, file: &str) -> String {
        format!("{}/{file}", self.name)
    }

    /// The files now belong to an enqueued job; the worker removes them when done.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if !self.keep
            && let Err(err) = std::fs::remove_dir_all(&self.dir)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(error = %err, dir = %self.dir.display(), "staged upload could not be removed");
        }
    }
}
