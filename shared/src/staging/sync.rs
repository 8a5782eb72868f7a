//! Group commit for strict durability (`INTAKE_DURABILITY=strict`): a request whose staged
//! object must be on stable storage before the api answers asks for a sync, and one sync
//! covers every request that asked while the one before it ran. Under load each request
//! waits for at most two syncs, and the number of syncs per second stays near the disk's
//! sync rate however many requests there are.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};

use super::StagingError;

type Waiter = oneshot::Sender<Result<(), StagingError>>;
type SyncFn = dyn Fn() -> std::io::Result<()> + Send + Sync;

/// Shares one sync among every caller that asked while the previous one ran.
pub struct GroupSync {
    sync: Arc<SyncFn>,
    /// Started by the first request, on the runtime that made it.
    requests: OnceLock<mpsc::UnboundedSender<Waiter>>,
    syncs: Arc<AtomicU64>,
}

impl GroupSync {
    /// `sync` makes everything written so far durable (it runs on the blocking pool).
    pub fn new(sync: impl Fn() -> std::io::Result<()> + Send + Sync + 'static) -> Self {
        Self {
            sync: Arc::new(sync),
            requests: OnceLock::new(),
            syncs: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many syncs have run.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Relaxed)
    }

    /// Asks for a sync that starts after this call: whatever the caller wrote before it is
    /// durable when the future resolves. The request is made now, not when the future is
    /// first polled.
    pub fn sync(&self) -> impl Future<Output = Result<(), StagingError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let sent = self.requests.get_or_init(|| self.start()).send(tx);
        async move {
            if sent.is_err() {
                return Err(StagingError::Unavailable("the syncer stopped".into()));
            }
            rx.await
                .unwrap_or_else(|_| Err(StagingError::Unavailable("the syncer stopped".into())))
        }
    }

    fn start(&self) -> mpsc::UnboundedSender<Waiter> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Waiter>();
        let (sync, syncs) = (self.sync.clone(), self.syncs.clone());
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut waiters = vec![first];
                while let Ok(waiter) = rx.try_recv() {
                    waiters.push(waiter);
                }
                let sync = sync.clone();
                let result = match tokio::task::spawn_blocking(move || sync()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(err)) => Err(StagingError::Unavailable(format!("sync failed: {err}"))),
                    Err(err) => Err(StagingError::Unavailable(format!("sync failed: {err}"))),
                };
                syncs.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("intake_staging_syncs_total").increment(1);
                metrics::counter!("intake_staging_synced_requests_total")
                    .increment(waiters.len() as u64);
                if let Err(err) = &result {
                    tracing::error!(error = %err, "staged objects could not be synced");
                }
                for waiter in waiters {
                    let _ = waiter.send(result.clone());
                }
            }
        });
        tx
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::mpsc as std_mpsc;

    use super::*;

    /// A sync that reports when it starts and waits to be let go.
    fn gated() -> (GroupSync, std_mpsc::Receiver<()>, std_mpsc::Sender<()>) {
        let (started_tx, started) = std_mpsc::channel();
        let (release, release_rx) = std_mpsc::channel::<()>();
        let gate = Mutex::new(release_rx);
        let sync = GroupSync::new(move || {
            let _ = started_tx.send(());
            gate.lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .recv()
                .map_err(std::io::Error::other)
        });
        (sync, started, release)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_made_during_a_sync_share_the_next_one() {
        let (sync, started, release) = gated();
        let first = tokio::spawn(sync.sync());
        started.recv().expect("the first sync starts");
        let waiting: Vec<_> = (0..10).map(|_| tokio::spawn(sync.sync())).collect();
        release.send(()).expect("release the first");
        first
            .await
            .expect("joined")
            .expect("the first sync succeeds");
        started.recv().expect("the second sync starts");
        release.send(()).expect("release the second");
        for waiter in waiting {
            waiter.await.expect("joined").expect("synced");
        }
        assert_eq!(sync.syncs(), 2, "ten requests made during a sync share one");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_every_request_it_covered() {
        let sync = GroupSync::new(|| Err(std::io::Error::other("disk gone")));
        let (a, b) = (sync.sync(), sync.sync());
        for result in [a.await, b.await] {
            assert!(
                matches!(&result, Err(StagingError::Unavailable(m)) if m.contains("disk gone")),
                "{result:?}"
            );
        }
    }
}
