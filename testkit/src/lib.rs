//! Real stand-ins for Intake's outside services, for tests: each is a real server on
//! loopback that speaks the real protocol and can be told to fail in the ways the real
//! service fails.

#[cfg(feature = "stack")]
pub mod admin_stack;
#[cfg(feature = "browser")]
pub mod browser;
pub mod cloudinary;
pub mod form;
pub mod hostile;
pub mod postgres;
pub mod private_redis;
pub mod proxy;
pub mod redis_keys;
pub mod s3;
#[cfg(feature = "stack")]
pub mod settings;
pub mod smtp;
#[cfg(feature = "stack")]
pub mod stack;
pub mod webhook_receiver;

use std::time::{Duration, Instant};

/// An HTTP client for tests. reqwest is built without a rustls crypto provider of its own
/// (its default, aws-lc, is the slowest crate to build here), and building a client with
/// none installed panics, even for plain `http://`; so ring is installed as the process
/// default first, as the programs do. Use this (or [`http_client_builder`]) instead of
/// `reqwest::Client::new()` or `reqwest::get` in tests.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

/// As [`http_client`], for a client with settings of its own (timeouts, pool sizes).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_tls_provider();
    reqwest::Client::builder()
}

/// Installs ring as rustls' process-wide crypto provider; one already installed is kept.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Polls `check` until it returns `Some`, failing the test after `timeout`. Tests wait for
/// things this way, never with a bare sleep.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    match within(timeout, check).await {
        Some(value) => value,
        None => panic!("timed out waiting for {what}"),
    }
}

/// As [`eventually`], but `None` after `timeout` instead of failing, for a test that has
/// more to say about what it found instead.
pub async fn within<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Files under `dir` at any depth (what a staging directory still holds).
pub fn files_under(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        files_under(&e.path())
                    } else {
                        1
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A small deterministic generator (xorshift): cheap, and a run (a hostile request, a fake's
/// random failure) can be replayed from its seed.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// Sends the stack's logs to the test's captured output (shown when it fails), at `RUST_LOG`
/// or else info with apalis' heartbeats and fetches at debug: a worker that stops polling
/// shows as heartbeats that end. Later calls in the same test binary do nothing.
pub fn log_stack_to_test_output() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,apalis_core=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

#[cfg(test)]
mod tests {
    /// reqwest panics when it builds a client with no rustls provider installed; the helper
    /// installs ring first (and a second client finds it installed).
    #[test]
    fn http_client_builds_with_ring() {
        let _first = super::http_client();
        let _second = super::http_client_builder()
            .timeout(std::time::Duration::from_secs(1))
            .build()
            .expect("a second client");
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
