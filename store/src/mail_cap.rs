//! The email cap (docs/contract.md §4, `email_status`): at most so many confirmation and
//! decision emails per recipient address per UTC day, so the public form cannot be used to
//! mail one address again and again from the organisers' domain. Each recipient's day is a
//! Redis set of the messages admitted for it (`{registration}:{message}`), so asking again for
//! a message already admitted (a retried job) admits it again without counting it twice.
//! Support's resends are not capped. The address is kept as a digest only.

use std::sync::LazyLock;
use std::time::Duration;

use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// How long a day's set is kept (past the day's end, whatever the clock skew).
const KEEP: Duration = Duration::from_secs(2 * 24 * 3600);

/// Admits a message for a recipient unless the recipient's day is full.
///
/// KEYS: the recipient's day. ARGV: message, cap, expiry in seconds. Returns 1 if admitted.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 1 end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"#,
    )
});

#[derive(Clone)]
pub struct MailCap {
    conn: ConnectionManager,
    keys: RedisKeys,
    per_day: u32,
}

impl std::fmt::Debug for MailCap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailCap")
            .field("per_day", &self.per_day)
            .finish_non_exhaustive()
    }
}

impl MailCap {
    /// At most `per_day` capped messages per recipient per UTC day; 0 turns the cap off.
    pub fn new(conn: ConnectionManager, keys: RedisKeys, per_day: u32) -> Self {
        Self {
            conn,
            keys,
            per_day,
        }
    }

    pub fn per_day(&self) -> u32 {
        self.per_day
    }

    /// Whether `message` (unique per registration and message) may go to `address` today.
    pub async fn admit(&self, address: &str, message: &str) -> Result<bool, redis::RedisError> {
        if self.per_day == 0 {
            return Ok(true);
        }
        let digest = hex::encode(Sha256::digest(address.trim().to_lowercase().as_bytes()));
        let day = OffsetDateTime::now_utc().date().to_string();
        let admitted: i64 = ADMIT
            .key(self.keys.mail_cap(&day, &digest))
            .arg(message)
            .arg(self.per_day)
            .arg(KEEP.as_secs())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(admitted == 1)
    }
}
