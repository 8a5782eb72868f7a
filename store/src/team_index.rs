//! The duplicate index (docs/contract.md §2, "Duplicates"): which teams are registered or in
//! progress, so the api refuses a second registration of a team at the door (`409
//! DUPLICATE_TEAM`) before it stages a byte. It is one Redis hash: a field per team (its
//! [`TeamKey`] digest, so Redis keeps no phone number) naming the registration that holds
//! the team, and a `!built` field once the index is complete.
//!
//! Workers keep it: a registration that claims its team adds its entry; one that fails for
//! good, or is discarded, removes its own (never another's). Postgres stays the authority:
//! the worker's claim still refuses a duplicate the index let through. When the index is
//! missing (Redis restarted without persistence, or a new deployment) the api lets every
//! team through until a worker has rebuilt it from the saved teams ([`TeamIndex::rebuild`]);
//! an entry missing lets a duplicate reach the worker, which refuses it, while an entry
//! present for a team that may register would refuse it wrongly, so the rebuild writes only
//! teams that are saved, which keep their claim for good.

use std::sync::LazyLock;

use intake_shared::domain::{RegistrationId, TeamKey};
use intake_shared::keys::RedisKeys;
use redis::Script;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

/// The field that says the index is complete (a digest is hex, so it cannot collide).
const BUILT: &str = "!built";

/// How many entries one rebuild command writes.
const REBUILD_BATCH: usize = 500;

/// Removes an entry only if it names the registration given.
///
/// KEYS: the index. ARGV: digest, registration id.
static FORGET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
"#,
    )
});

/// What the index says of a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// The index is not built: nothing can be said (let the worker decide).
    Unknown,
    /// No registration holds the team.
    Free,
    /// This registration holds the team (saved, or in progress).
    Held(RegistrationId),
}

#[derive(Clone)]
pub struct TeamIndex {
    conn: ConnectionManager,
    keys: RedisKeys,
}

impl std::fmt::Debug for TeamIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeamIndex")
            .field("key", &self.keys.team_index())
            .finish_non_exhaustive()
    }
}

impl TeamIndex {
    pub fn new(conn: ConnectionManager, keys: RedisKeys) -> Self {
        Self { conn, keys }
    }

    /// Who holds `team`, if the index can say.
    pub async fn lookup(&self, team: &TeamKey) -> Result<Lookup, redis::RedisError> {
        let (built, holder): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.keys.team_index())
            .arg(BUILT)
            .arg(team.digest())
            .query_async(&mut self.conn.clone())
            .await?;
        if built.is_none() {
            return Ok(Lookup::Unknown);
        }
        // An entry that is not a registration id was not written here: as no entry.
        Ok(match holder.as_deref().and_then(RegistrationId::parse) {
            Some(id) => Lookup::Held(id),
            None => Lookup::Free,
        })
    }

    /// Registration `id` holds `team` (it has claimed it in Postgres).
    pub async fn hold(&self, team: &TeamKey, id: RegistrationId) -> Result<(), redis::RedisError> {
        redis::cmd("HSET")
            .arg(self.keys.team_index())
            .arg(team.digest())
            .arg(id.to_string())
            .query_async(&mut self.conn.clone())
            .await
    }

    /// Registration `id` no longer holds `team` (it failed for good or was discarded); an
    /// entry naming another registration stays. Whether an entry went.
    pub async fn forget(
        &self,
        team: &TeamKey,
        id: RegistrationId,
    ) -> Result<bool, redis::RedisError> {
        let removed: i64 = FORGET
            .key(self.keys.team_index())
            .arg(team.digest())
            .arg(id.to_string())
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(removed == 1)
    }

    /// Whether the index is complete.
    pub async fn is_built(&self) -> Result<bool, redis::RedisError> {
        redis::cmd("HEXISTS")
            .arg(self.keys.team_index())
            .arg(BUILT)
            .query_async(&mut self.conn.clone())
            .await
    }

    /// The lease one worker takes while it rebuilds the index, so workers do not all
    /// rebuild at once.
    pub fn rebuild_lease(&self) -> intake_shared::lease::Lease {
        intake_shared::lease::Lease::new(self.conn.clone(), self.keys.team_index_lock())
    }

    /// Writes the saved teams' claims (`team_claims` keys and holders) into the index, then
    /// marks it complete. Entries workers add meanwhile stay. How many entries were written.
    pub async fn rebuild(
        &self,
        saved: Vec<(String, RegistrationId)>,
    ) -> Result<usize, redis::RedisError> {
        let mut conn = self.conn.clone();
        let key = self.keys.team_index();
        let written = saved.len();
        let mut entries = saved.into_iter().peekable();
        while entries.peek().is_some() {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(&key);
            for (team, id) in entries.by_ref().take(REBUILD_BATCH) {
                cmd.arg(TeamKey::from_claim(team).digest())
                    .arg(id.to_string());
            }
            let () = cmd.query_async(&mut conn).await?;
        }
        let () = redis::cmd("HSET")
            .arg(&key)
            .arg(BUILT)
            .arg(OffsetDateTime::now_utc().unix_timestamp())
            .query_async(&mut conn)
            .await?;
        Ok(written)
    }
}
