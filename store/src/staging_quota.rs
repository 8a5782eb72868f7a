//! The staging quota (docs/contract.md §2, "Limits"): the bytes one client has staged that no
//! worker has taken yet, capped, so one address cannot fill the staging volume however many
//! keys it sends. It is a Redis hash per client, one field per upload (its bytes) and the
//! client's running total (`!total`, so every check is one field, however many uploads
//! wait). Taking an upload removes its field and its bytes from the total only if the field
//! is there, so it is idempotent however often a worker retries; the hash expires with the
//! staging retention if nothing ever takes what it counts.
//!
//! The api reserves an upload's bytes once they are staged ([`StagingQuota::reserve`], one
//! script that refuses what would go over the cap) and gives them back on every path that
//! ends without a queued job; the worker takes them when it starts the job
//! ([`StagingQuota::take`]).

use std::sync::LazyLock;
use std::time::Duration;

use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;

/// The field holding a client's total (an upload's name never starts with `!`).
const TOTAL: &str = "!total";

/// If `bytes` more stay within the cap, reserves them for the upload and adds them to the
/// client's total (once per upload however often it is asked).
///
/// KEYS: the client's hash. ARGV: upload, bytes, cap, expiry in milliseconds.
/// Returns the bytes reserved before this call, negated (less one) if it was refused.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local held = tonumber(redis.call('HGET', KEYS[1], '!total') or '0')
if held + tonumber(ARGV[2]) > tonumber(ARGV[3]) then
  return -held - 1
end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 1 then
  redis.call('HINCRBY', KEYS[1], '!total', ARGV[2])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return held
"#,
    )
});

/// Gives uploads' reservations back: each one found is removed and taken off the total; the
/// hash goes when nothing is left in it.
///
/// KEYS: the client's hash. ARGV: the uploads.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
for i = 1, #ARGV do
  local bytes = redis.call('HGET', KEYS[1], ARGV[i])
  if bytes then
    redis.call('HDEL', KEYS[1], ARGV[i])
    redis.call('HINCRBY', KEYS[1], '!total', -tonumber(bytes))
  end
end
if redis.call('HLEN', KEYS[1]) <= 1 then
  redis.call('DEL', KEYS[1])
end
return 0
"#,
    )
});

/// Whether a reservation was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    /// Over the cap: the client already has `held` bytes waiting.
    Refused {
        held: u64,
    },
}

#[derive(Clone)]
pub struct StagingQuota {
    conn: ConnectionManager,
    keys: RedisKeys,
    cap: u64,
    expiry: Duration,
}

impl std::fmt::Debug for StagingQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingQuota")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl StagingQuota {
    /// `cap` bytes per client (0: no cap); reservations expire after `expiry` (the staging
    /// retention) if no worker takes them.
    pub fn new(conn: ConnectionManager, keys: RedisKeys, cap: u64, expiry: Duration) -> Self {
        Self {
            conn,
            keys,
            cap,
            expiry,
        }
    }

    pub fn cap(&self) -> u64 {
        self.cap
    }

    /// The bytes `client` has waiting.
    pub async fn held(&self, client: &str) -> Result<u64, redis::RedisError> {
        let total: Option<u64> = redis::cmd("HGET")
            .arg(self.keys.staging_quota(client))
            .arg(TOTAL)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(total.unwrap_or(0))
    }

    /// Whether `client` has room left at all (checked before a body is read, so a client
    /// whose quota is full stages nothing more).
    pub async fn has_room(&self, client: &str) -> Result<bool, redis::RedisError> {
        if self.cap == 0 {
            return Ok(true);
        }
        Ok(self.held(client).await? < self.cap)
    }

    /// Reserves `bytes` of `client`'s quota for `upload`, unless that goes over the cap.
    pub async fn reserve(
        &self,
        client: &str,
        upload: &str,
        bytes: u64,
    ) -> Result<Reservation, redis::RedisError> {
        if self.cap == 0 {
            return Ok(Reservation::Reserved);
        }
        let expiry_ms = u64::try_from(self.expiry.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let held: i64 = RESERVE
            .key(self.keys.staging_quota(client))
            .arg(upload)
            .arg(bytes)
            .arg(self.cap)
            .arg(expiry_ms)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(if held < 0 {
            Reservation::Refused {
                held: held.unsigned_abs() - 1,
            }
        } else {
            Reservation::Reserved
        })
    }

    /// Gives `client`'s reservations for `uploads` back (the api: no job was queued; the
    /// worker: it took the job). Safe to repeat.
    pub async fn take(&self, client: &str, uploads: &[String]) -> Result<(), redis::RedisError> {
        if uploads.is_empty() {
            return Ok(());
        }
        let _: i64 = TAKE
            .key(self.keys.staging_quota(client))
            .arg(uploads)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
