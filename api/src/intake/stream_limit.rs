//! How many event streams each client holds open on this api process. A stream is a
//! connection and a task for as long as the client keeps it, so one client could otherwise
//! hold any number of them; past the cap it is told to poll. The count is per process, not
//! shared through Redis like the submission limit: a stream holds this process's resources,
//! and a count that is never written elsewhere cannot be left behind by a crash.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Counts open streams per client key (as `client::identity` gives it).
#[derive(Debug, Clone)]
pub struct StreamLimit {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    per_client: usize,
    open: Mutex<HashMap<String, usize>>,
}

impl StreamLimit {
    pub fn new(per_client: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                per_client,
                open: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn per_client(&self) -> usize {
        self.inner.per_client
    }

    /// A slot for one more stream of `client`, or `None` when it has all it may have. The
    /// slot is given back when the permit is dropped.
    pub fn acquire(&self, client: String) -> Option<StreamPermit> {
        let mut open = self.inner.lock();
        let count = open.entry(client.clone()).or_insert(0);
        if *count >= self.inner.per_client {
            return None;
        }
        *count += 1;
        Some(StreamPermit {
            limit: self.clone(),
            client,
        })
    }

    /// Streams `client` holds open now.
    pub fn open(&self, client: &str) -> usize {
        self.inner.lock().get(client).copied().unwrap_or(0)
    }
}

impl Inner {
    /// The counts stay consistent even if a holder of the lock panicked: every change under
    /// it is a single increment or decrement.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open stream of one client; dropping it (the stream ended, or its client went away
/// and the response body was dropped) frees the slot.
#[derive(Debug)]
pub struct StreamPermit {
    limit: StreamLimit,
    client: String,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limit.inner.lock();
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_cap_and_no_more() {
        let limit = StreamLimit::new(4);
        let permits: Vec<_> = (0..4)
            .map(|_| limit.acquire("1.2.3.4".into()).expect("within the cap"))
            .collect();
        assert!(limit.acquire("1.2.3.4".into()).is_none());
        assert_eq!(limit.open("1.2.3.4"), 4);
        drop(permits);
        assert_eq!(limit.open("1.2.3.4"), 0);
    }

    #[test]
    fn a_dropped_permit_frees_its_slot() {
        let limit = StreamLimit::new(1);
        let first = limit.acquire("a".into()).expect("first");
        assert!(limit.acquire("a".into()).is_none());
        drop(first);
        assert!(limit.acquire("a".into()).is_some());
    }

    #[test]
    fn clients_are_counted_apart_and_forgotten_at_zero() {
        let limit = StreamLimit::new(1);
        let a = limit.acquire("a".into()).expect("a");
        let b = limit.acquire("b".into()).expect("b is another client");
        drop((a, b));
        assert!(limit.inner.lock().is_empty(), "no entry left behind");
    }
}
