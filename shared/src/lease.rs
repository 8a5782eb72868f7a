//! A lease in Redis: a key one owner holds at a time, for a while, so one process of many
//! does a job at once (the staging sweep, rebuilding the duplicate index, reporting the
//! queue-wide gauges). Each [`Lease`] has a random owner of its own; it frees only what it
//! holds, so a lease that ran out and was taken by another process is never freed by the
//! first.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;
use redis::aio::ConnectionManager;

/// Renews the lease if `owner` holds it, else takes it if no one does; 1 if `owner` holds it
/// now.
///
/// KEYS: the lease. ARGV: owner, lease in milliseconds.
static HOLD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
"#,
    )
});

/// Frees the lease if `owner` still holds it.
///
/// KEYS: the lease. ARGV: owner.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});

/// One process' claim on a lease key.
#[derive(Clone)]
pub struct Lease {
    redis: ConnectionManager,
    key: String,
    owner: String,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("key", &self.key)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Lease {
    pub fn new(redis: ConnectionManager, key: impl Into<String>) -> Self {
        Self {
            redis,
            key: key.into(),
            owner: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Takes the lease for `ttl` if no one holds it (this owner included); whether it did.
    pub async fn take(&self, ttl: Duration) -> Result<bool, redis::RedisError> {
        let got: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.owner)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(got.is_some())
    }

    /// Renews the lease for `ttl` if this owner holds it, else takes it if it is free;
    /// whether this owner holds it now.
    pub async fn hold(&self, ttl: Duration) -> Result<bool, redis::RedisError> {
        let held: i64 = HOLD
            .key(&self.key)
            .arg(&self.owner)
            .arg(millis(ttl))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(held == 1)
    }

    /// Frees the lease if this owner still holds it, so another process need not wait for
    /// it to run out.
    pub async fn release(&self) -> Result<(), redis::RedisError> {
        let _: i64 = RELEASE
            .key(&self.key)
            .arg(&self.owner)
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }
}
