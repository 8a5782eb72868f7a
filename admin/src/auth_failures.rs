//! Failed bearer-token attempts, counted per client in Redis so every admin replica shares the
//! numbers. A client (its peer address) that presented a missing or wrong token
//! `INTAKE_ADMIN_AUTH_FAILURES_PER_MINUTE` times in a minute has every call refused for the
//! rest of that minute, a good token included: otherwise guessing could go on, only slower.
//!
//! The minute is a fixed window that opens with the client's first failure (the counter's
//! expiry), so `Retry-After` is exact, a burst across a clock minute gets no second allowance,
//! and the counter leaves nothing behind.

use std::net::IpAddr;
use std::sync::LazyLock;
use std::time::Duration;

use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;

/// How long failures are remembered, from a client's first one.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Counts one failure, in one step with giving a new counter its expiry. A counter found
/// without one gets it too: a counter that never expired would lock its client out for good.
static COUNT_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: the client's counter; ARGV[1]: the window in milliseconds.
-- Returns {failures in the window, including this one; milliseconds until the window ends}.
local failures = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {failures, left}
"#,
    )
});

/// What a client's failures allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Under the limit: the call is answered as its token deserves.
    Allowed,
    /// The limit is reached: every call is refused until the window ends.
    Refused { retry_after: Duration },
}

#[derive(Debug, Clone)]
pub struct AuthFailures {
    keys: RedisKeys,
    per_minute: u64,
}

impl AuthFailures {
    /// `per_minute` is at least 1 (the setting refuses 0).
    pub fn new(keys: RedisKeys, per_minute: u64) -> Self {
        Self {
            keys,
            per_minute: per_minute.max(1),
        }
    }

    fn key(&self, client: IpAddr) -> String {
        // An IPv4 client reached over an IPv6 socket is the same client.
        self.keys
            .admin_auth_failures(&client.to_canonical().to_string())
    }

    /// Counts one call with a missing or wrong token. `Refused` once this call is beyond the
    /// limit: the calls up to it are answered `401`, the ones after it `429`.
    pub async fn count_failure(
        &self,
        conn: &mut ConnectionManager,
        client: IpAddr,
    ) -> Result<Verdict, redis::RedisError> {
        let (failures, left_ms): (u64, i64) = COUNT_FAILURE
            .key(self.key(client))
            .arg(millis(WINDOW))
            .invoke_async(conn)
            .await?;
        if failures == self.per_minute {
            tracing::warn!(
                client = %client.to_canonical(),
                limit = self.per_minute,
                "a client reached the limit of failed admin token attempts; its calls are refused until the window ends"
            );
        }
        Ok(self.verdict(failures.saturating_sub(1), left_ms))
    }

    /// Whether this client may make a call now (one with a good token: a failure is counted
    /// by [`Self::count_failure`] instead).
    pub async fn check(
        &self,
        conn: &mut ConnectionManager,
        client: IpAddr,
    ) -> Result<Verdict, redis::RedisError> {
        let key = self.key(client);
        let (failures, left_ms): (Option<u64>, i64) = redis::pipe()
            .atomic()
            .get(&key)
            .pttl(&key)
            .query_async(conn)
            .await?;
        Ok(self.verdict(failures.unwrap_or(0), left_ms))
    }

    /// The verdict for a call made after `earlier` failures in the window.
    fn verdict(&self, earlier: u64, left_ms: i64) -> Verdict {
        if earlier < self.per_minute {
            return Verdict::Allowed;
        }
        // A counter about to expire, or one without an expiry (never left so by
        // `COUNT_FAILURE`), still refuses for a moment rather than not at all.
        let left = u64::try_from(left_ms).unwrap_or(0).max(1);
        Verdict::Refused {
            retry_after: Duration::from_millis(left),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds to wait for `retry_after`, rounded up and at least 1, as `Retry-After` says it.
pub fn retry_after_secs(retry_after: Duration) -> u64 {
    let secs = retry_after.as_secs();
    let secs = if retry_after.subsec_nanos() > 0 {
        secs + 1
    } else {
        secs
    };
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_minute: u64) -> AuthFailures {
        AuthFailures::new(RedisKeys::new("unit"), per_minute)
    }

    #[test]
    fn the_calls_up_to_the_limit_are_allowed_and_the_next_refused() {
        let limiter = limiter(10);
        assert_eq!(limiter.verdict(0, -2), Verdict::Allowed);
        assert_eq!(limiter.verdict(9, 30_000), Verdict::Allowed);
        assert_eq!(
            limiter.verdict(10, 30_000),
            Verdict::Refused {
                retry_after: Duration::from_secs(30)
            }
        );
    }

    #[test]
    fn a_counter_without_time_left_still_refuses_for_a_moment() {
        assert_eq!(
            limiter(1).verdict(3, -1),
            Verdict::Refused {
                retry_after: Duration::from_millis(1)
            }
        );
    }

    #[test]
    fn retry_after_is_rounded_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(59)), 59);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }

    #[test]
    fn mapped_ipv4_clients_share_the_ipv4_counter() {
        let limiter = limiter(10);
        let v4: IpAddr = "192.0.2.7".parse().expect("literal");
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("literal");
        assert_eq!(limiter.key(v4), limiter.key(mapped));
        assert_eq!(limiter.key(v4), "unit:admin-auth-failures:192.0.2.7");
    }
}
