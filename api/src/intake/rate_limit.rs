//! Per-client submission limits kept in Redis, so every api replica counts against the same
//! numbers. Fixed windows (a minute and an hour) checked and counted by one Lua script: a
//! request either counts against both windows or against neither. A fixed window lets a
//! client send up to twice the limit across a window boundary; for a public form that is
//! an acceptable price for one round trip and a `Reset` that a client can understand.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::{HeaderName, HeaderValue};
use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;

static CHECK_AND_COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[i]: the counter of window i; ARGV[2i-1]: its limit (0 = off), ARGV[2i]: its length in seconds.
-- Returns {allowed (1/0), count_i...} with the counts after this request.
local counts = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i - 1])
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if limit > 0 and count >= limit then
    local out = {0}
    for j = 1, #KEYS do out[j + 1] = tonumber(redis.call('GET', KEYS[j]) or '0') end
    return out
  end
  counts[i] = count
end
local out = {1}
for i = 1, #KEYS do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], tonumber(ARGV[2 * i])) end
  out[i + 1] = n
end
return out
"#,
    )
});

#[derive(Debug, Clone, Copy)]
struct Window {
    name: &'static str,
    length: u64,
    limit: u64,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    keys: RedisKeys,
    windows: Vec<Window>,
}

/// The outcome for one request, with what the `X-RateLimit-*` headers report: the window
/// closest to its limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitDecision {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    pub reset_after: Duration,
}

impl RateLimitDecision {
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![
            (
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from(self.limit),
            ),
            (
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(self.remaining),
            ),
            (
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(self.reset_after.as_secs().max(1)),
            ),
        ]
    }
}

impl RateLimiter {
    pub fn new(keys: RedisKeys, per_minute: u64, per_hour: u64) -> Self {
        let windows = [
            Window {
                name: "minute",
                length: 60,
                limit: per_minute,
            },
            Window {
                name: "hour",
                length: 3600,
                limit: per_hour,
            },
        ]
        .into_iter()
        .filter(|w| w.limit > 0)
        .collect();
        Self { keys, windows }
    }

    /// Checks and counts one submission; `None` when every limit is turned off.
    pub async fn check(
        &self,
        conn: &mut ConnectionManager,
        client: &str,
    ) -> Result<Option<RateLimitDecision>, redis::RedisError> {
        if self.windows.is_empty() {
            return Ok(None);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut invocation = CHECK_AND_COUNT.prepare_invoke();
        for w in &self.windows {
            invocation
                .key(self.keys.rate_limit(client, w.name, now / w.length))
                .arg(w.limit)
                .arg(w.length);
        }
        let result: Vec<u64> = invocation.invoke_async(conn).await?;
        let allowed = result.first().copied() == Some(1);
        let decision = self
            .windows
            .iter()
            .zip(result.iter().skip(1))
            .map(|(w, &count)| RateLimitDecision {
                allowed,
                limit: w.limit,
                remaining: w.limit.saturating_sub(count),
                reset_after: Duration::from_secs(w.length - now % w.length),
            })
            // When refused, report a window that is full; otherwise the one nearest its limit.
            .min_by_key(|d| (d.remaining, std::cmp::Reverse(d.reset_after)));
        Ok(decision)
    }
}
