//! What the admin handlers reach: settings and the clients built from them once.

use std::sync::Arc;

use intake_shared::config::AdminSettings;
use intake_store::pg::PgPool;
use intake_store::status::StatusRepository;
use redis::aio::ConnectionManager;

use crate::auth::Tokens;
use crate::auth_failures::AuthFailures;
use crate::documents::Documents;

#[derive(Clone)]
pub struct AdminState(Arc<Inner>);

pub struct Inner {
    pub settings: AdminSettings,
    pub queue: apalis_redis::Config,
    pub redis: ConnectionManager,
    pub status: StatusRepository,
    pub pool: PgPool,
    pub staging: std::sync::Arc<dyn intake_shared::staging::StagingStore>,
    pub tokens: Tokens,
    /// Counts calls with a missing or wrong token per client, and refuses a client past the limit.
    pub auth_failures: AuthFailures,
    /// Makes the URLs that open documents (Cloudinary's private downloads or our own route).
    pub documents: Documents,
}

impl std::ops::Deref for AdminState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AdminState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    pub fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }
}
