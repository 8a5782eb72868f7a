//! The local mailer: each message written as an `.eml` file in the outbox directory, named by
//! its Message-ID so a message written twice is one file. It is the default when SMTP is not
//! configured; any mail client opens the files.

use std::path::PathBuf;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::mail::{MailError, Mailer};

pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    async fn write(&self, message: &lettre::Message) -> Result<(), MailError> {
        let unavailable = |e: std::io::Error| MailError::Transient(format!("outbox: {e}"));
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(unavailable)?;
        let id = message
            .headers()
            .get_raw("Message-ID")
            .map(|v| v.trim_matches(['<', '>', ' ']).replace(['/', '\\'], "_"))
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let target = self.dir.join(format!("{id}.eml"));
        let partial = self
            .dir
            .join(format!(".{id}.{}.part", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&partial, message.formatted())
            .await
            .map_err(unavailable)?;
        tokio::fs::rename(&partial, &target)
            .await
            .map_err(unavailable)
    }
}

impl Mailer for Outbox {
    fn name(&self) -> &'static str {
        "outbox"
    }

    fn send<'a>(&'a self, message: &'a lettre::Message) -> BoxFuture<'a, Result<(), MailError>> {
        self.write(message).boxed()
    }
}
