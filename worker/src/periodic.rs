//! The worker's background rounds (the duplicate index check, deferred failure records, the
//! queue gauges, the staging sweep, retries at start-up): waits between them that shutdown
//! cuts short.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Sleeps for `duration` unless shut down first; whether to go on.
pub async fn pause(token: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(duration) => true,
    }
}

/// Runs `round` at once and then every `interval` until shut down.
pub async fn every<F, Fut>(interval: Duration, token: &CancellationToken, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        round().await;
        if !pause(token, interval).await {
            return;
        }
    }
}
