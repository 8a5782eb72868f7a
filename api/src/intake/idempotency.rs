//! `Idempotency-Key` handling after the IETF draft (draft-ietf-httpapi-idempotency-key-header).
//! A key is claimed atomically by one Lua script and bound to the request's fingerprint and
//! to the registration id it will get; the claim holds a short lock while the request is
//! being accepted. Replays of a finished claim get the same answer, a different payload is
//! refused, and a claim whose lock ran out (the api died mid-request) is taken over by the
//! next retry *with the same registration id*, which is what keeps the job single: the
//! queue refuses a second job for one registration id.

use std::sync::LazyLock;
use std::time::Duration;

use intake_shared::domain::{IdempotencyKey, RegistrationId};
use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;

/// How long a claim blocks other requests with the same key while it is being accepted.
/// Accepting takes a few Redis round trips after the body was read, so this is generous.
pub const IN_PROGRESS_LOCK: Duration = Duration::from_secs(15);

static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: the record. ARGV: fingerprint, new id, token, lock ms, ttl ms, the current
-- fingerprints' prefix.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local r = redis.call('HMGET', KEYS[1], 'fp', 'id', 'state', 'lock_until')
if not r[1] then
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'id', ARGV[2], 'state', 'in_progress',
             'token', ARGV[3], 'lock_until', now + tonumber(ARGV[4]))
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'claimed', ARGV[2], 'fresh'}
end
-- A fingerprint without the current prefix (ARGV[6]) was made before BLAKE3 and cannot be
-- compared: the key's owner is taken to be retrying its own form (docs/decisions.md).
if r[1] ~= ARGV[1] and string.sub(r[1], 1, #ARGV[6]) == ARGV[6] then return {'mismatch'} end
if r[3] == 'done' then return {'replay', r[2]} end
local lock_until = tonumber(r[4]) or 0
if lock_until > now then return {'in_progress', r[2], tostring(lock_until - now)} end
redis.call('HSET', KEYS[1], 'token', ARGV[3], 'lock_until', now + tonumber(ARGV[4]))
return {'claimed', r[2], 'takeover'}
"#,
    )
});

static COMPLETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: the record. ARGV: id, ttl ms.
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'lock_until', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"#,
    )
});

static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
-- KEYS[1]: the record. ARGV: token, 'fresh' or 'takeover'.
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 'state') == 'done' then return 0 end
if ARGV[2] == 'fresh' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'lock_until', 0)
end
return 1
"#,
    )
});

/// How a claim was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimKind {
    /// The key was new: undoing the claim deletes it.
    Fresh,
    /// An abandoned claim was taken over: undoing it leaves it as it was found.
    Takeover,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOutcome {
    Claimed(Claim),
    /// The same request was accepted before: answer as then.
    Replay(RegistrationId),
    /// The key was used for different content.
    Mismatch,
    /// Another request with this key is being accepted right now.
    InProgress {
        retry_after: Duration,
    },
}

/// A held claim; it must end in [`Idempotency::complete`] or [`Idempotency::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: RegistrationId,
    pub kind: ClaimKind,
    record: String,
    token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error("idempotency record holds an unreadable id")]
    Corrupt,
}

#[derive(Debug, Clone)]
pub struct Idempotency {
    keys: RedisKeys,
    ttl: Duration,
}

impl Idempotency {
    pub fn new(keys: RedisKeys, ttl: Duration) -> Self {
        Self { keys, ttl }
    }

    /// The registration id a key is bound to, if it was claimed before (a retry or replay of
    /// that registration), without claiming anything.
    pub async fn bound_to(
        &self,
        conn: &mut ConnectionManager,
        key: &IdempotencyKey,
    ) -> Result<Option<RegistrationId>, IdempotencyError> {
        let id: Option<String> = redis::cmd("HGET")
            .arg(self.keys.idempotency(key))
            .arg("id")
            .query_async(conn)
            .await?;
        id.map(|id| RegistrationId::parse(&id).ok_or(IdempotencyError::Corrupt))
            .transpose()
    }

    pub async fn claim(
        &self,
        conn: &mut ConnectionManager,
        key: &IdempotencyKey,
        fingerprint: &str,
    ) -> Result<ClaimOutcome, IdempotencyError> {
        let record = self.keys.idempotency(key);
        let token = uuid::Uuid::new_v4().to_string();
        let new_id = RegistrationId::new();
        let reply: Vec<String> = CLAIM
            .key(&record)
            .arg(fingerprint)
            .arg(new_id.to_string())
            .arg(&token)
            .arg(IN_PROGRESS_LOCK.as_millis() as u64)
            .arg(self.ttl.as_millis() as u64)
            .arg(super::form::FINGERPRINT_PREFIX)
            .invoke_async(conn)
            .await?;
        let id = |i: usize| {
            reply
                .get(i)
                .and_then(|s| RegistrationId::parse(s))
                .ok_or(IdempotencyError::Corrupt)
        };
        Ok(match reply.first().map(String::as_str) {
            Some("claimed") => ClaimOutcome::Claimed(Claim {
                id: id(1)?,
                kind: if reply.get(2).map(String::as_str) == Some("fresh") {
                    ClaimKind::Fresh
                } else {
                    ClaimKind::Takeover
                },
                record,
                token,
            }),
            Some("replay") => ClaimOutcome::Replay(id(1)?),
            Some("mismatch") => ClaimOutcome::Mismatch,
            Some("in_progress") => ClaimOutcome::InProgress {
                retry_after: Duration::from_millis(
                    reply.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000),
                ),
            },
            _ => return Err(IdempotencyError::Corrupt),
        })
    }

    /// Marks the claim done: from now on the key replays this registration.
    pub async fn complete(
        &self,
        conn: &mut ConnectionManager,
        claim: &Claim,
    ) -> Result<(), redis::RedisError> {
        let _: i64 = COMPLETE
            .key(&claim.record)
            .arg(claim.id.to_string())
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(conn)
            .await?;
        Ok(())
    }

    /// Gives the claim up because the request failed before its job was enqueued. `undo`
    /// says how: [`ClaimKind::Fresh`] deletes the record, [`ClaimKind::Takeover`] only
    /// releases its lock and keeps the key bound to its registration id.
    pub async fn release(
        &self,
        conn: &mut ConnectionManager,
        claim: &Claim,
        undo: ClaimKind,
    ) -> Result<(), redis::RedisError> {
        let kind = match undo {
            ClaimKind::Fresh => "fresh",
            ClaimKind::Takeover => "takeover",
        };
        let _: i64 = RELEASE
            .key(&claim.record)
            .arg(&claim.token)
            .arg(kind)
            .invoke_async(conn)
            .await?;
        Ok(())
    }
}
