//! Saved teams as the organisers see them (docs/contract.md §15): found by ID, name, phone or
//! email, listed newest first a page at a time, reviewed. A review is one transaction: the
//! decision is accepted only against the version the organiser saw (optimistic
//! concurrency), and the team's row, its review history and the audit log change together.

use intake_shared::domain::RegistrationId;
use intake_shared::status::ReviewState;
use serde_json::Value;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::audit::{Entry, Outcome};
use super::outbox::EventType;
use super::{DbError, retrying};

/// The audit action of a review decision.
pub const REVIEW: &str = "review";

/// What narrows a listing of teams. `q` matches a team ID exactly (any case), the start of
/// a team name (any case, runs of spaces as one), or a captain's or vice-captain's phone or
/// email exactly.
#[derive(Debug, Clone, Default)]
pub struct TeamFilter {
    pub q: Option<String>,
    pub state: Option<ReviewState>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
}

/// Where the previous page ended: its last team's `created_at` and registration id.
pub type TeamCursor = (OffsetDateTime, uuid::Uuid);

/// One team in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamItem {
    pub registration_id: RegistrationId,
    pub team_id: String,
    pub team_name: String,
    pub review_state: ReviewState,
    pub payment_verified: bool,
    pub players: i64,
    pub created_at: OffsetDateTime,
}

impl TeamItem {
    pub fn cursor(&self) -> TeamCursor {
        (self.created_at, self.registration_id.as_uuid())
    }
}

type ItemRow = (
    uuid::Uuid,
    String,
    String,
    String,
    bool,
    i64,
    OffsetDateTime,
);

fn item(
    (id, team_id, team_name, state, payment_verified, players, created_at): ItemRow,
) -> TeamItem {
    TeamItem {
        registration_id: RegistrationId::from_uuid(id),
        team_id,
        team_name,
        // The column's CHECK allows only the three states.
        review_state: ReviewState::parse(&state).unwrap_or(ReviewState::Pending),
        payment_verified,
        players,
        created_at,
    }
}

/// `q` as the prefix pattern of a folded team name: lower case, runs of whitespace as one
/// space, LIKE's wildcards escaped.
pub(super) fn name_prefix(q: &str) -> String {
    let folded = q
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let mut pattern = String::with_capacity(folded.len() + 1);
    for c in folded.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

const ITEM_COLUMNS: &str = "t.registration_id, t.team_id, t.team_name, t.review_state,
    t.payment_verified,
    (SELECT count(*) FROM players p WHERE p.registration_id = t.registration_id),
    t.created_at";

/// The filter as SQL conditions on `teams t`, binding `$1`…`$6`.
pub(super) const FILTER: &str = "($1::text IS NULL
        OR lower(t.team_id) = lower($1)
        OR lower(regexp_replace(t.team_name, '\\s+', ' ', 'g')) LIKE $2
        OR t.captain_phone = $1 OR t.vice_captain_phone = $1
        OR lower(t.captain_email) = lower($1) OR lower(t.vice_captain_email) = lower($1))
    AND ($3::text IS NULL OR t.review_state = $3)
    AND ($4::timestamptz IS NULL OR t.created_at >= $4)
    AND ($5::timestamptz IS NULL OR t.created_at <= $5)";

/// Teams matching `filter`, newest first, after `after`; at most `limit`.
pub async fn list(
    pool: &PgPool,
    filter: &TeamFilter,
    after: Option<TeamCursor>,
    limit: usize,
) -> Result<Vec<TeamItem>, DbError> {
    let q = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let prefix = q.map(name_prefix);
    let state = filter.state.map(ReviewState::as_str);
    retrying(|| async {
        let rows: Vec<ItemRow> = sqlx::query_as(&format!(
            "SELECT {ITEM_COLUMNS} FROM teams t
             WHERE {FILTER}
               AND ($6::timestamptz IS NULL OR (t.created_at, t.registration_id) < ($6, $7))
             ORDER BY t.created_at DESC, t.registration_id DESC
             LIMIT $8"
        ))
        .bind(q)
        .bind(prefix.as_deref())
        .bind(state)
        .bind(filter.since)
        .bind(filter.until)
        .bind(after.map(|c| c.0))
        .bind(after.map(|c| c.1))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(item).collect())
    })
    .await
}

/// A captain or vice-captain as stored (the caller masks them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContact {
    pub name: String,
    pub phone: String,
    pub email: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlayer {
    pub name: String,
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDocument {
    pub field: String,
    pub public_id: String,
    pub secure_url: String,
    pub content_type: String,
    pub bytes: i64,
}

/// One decision in a team's review history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub version: i32,
    pub decision: ReviewState,
    pub payment_verified: bool,
    pub reason: String,
    pub actor: String,
    pub at: OffsetDateTime,
}

type DecisionRow = (i32, String, bool, String, String, OffsetDateTime);

/// A `team_reviews` row: `version, decision, payment_verified, reason, actor, at`.
fn decision_of((version, decision, payment_verified, reason, actor, at): DecisionRow) -> Decision {
    Decision {
        version,
        // The column's CHECK allows only the two decisions.
        decision: ReviewState::parse(&decision).unwrap_or(ReviewState::Pending),
        payment_verified,
        reason,
        actor,
        at,
    }
}

/// Where a team's review stands: its state, the version a new decision must name, and
/// every decision so far, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    pub state: ReviewState,
    pub payment_verified: bool,
    pub version: i32,
    pub history: Vec<Decision>,
}

/// A team with everything the organisers' detail view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamDetail {
    pub item: TeamItem,
    pub captain: StoredContact,
    pub vice_captain: StoredContact,
    pub players: Vec<StoredPlayer>,
    pub documents: Vec<TeamDocument>,
    /// How the confirmation email's delivery stands (`email_deliveries.status`).
    pub email_status: Option<String>,
    pub review: Review,
}

/// The item's columns, then the captains' contacts.
type DetailRow = (
    uuid::Uuid,
    String,
    String,
    String,
    bool,
    i64,
    OffsetDateTime,
    String,
    String,
    String,
    String,
    String,
    String,
);

/// The team with this ID (any case); `None` if there is none.
pub async fn find(pool: &PgPool, team_id: &str) -> Result<Option<TeamDetail>, DbError> {
    retrying(|| async { Ok(find_once(pool, team_id).await?) }).await
}

async fn find_once(pool: &PgPool, team_id: &str) -> Result<Option<TeamDetail>, sqlx::Error> {
    let row: Option<DetailRow> = sqlx::query_as(&format!(
        "SELECT {ITEM_COLUMNS}, t.captain_name, t.captain_phone, t.captain_email,
                t.vice_captain_name, t.vice_captain_phone, t.vice_captain_email
         FROM teams t WHERE lower(t.team_id) = lower($1)"
    ))
    .bind(team_id)
    .fetch_optional(pool)
    .await?;
    let Some((
        rid,
        tid,
        name,
        state,
        paid,
        count,
        at,
        c_name,
        c_phone,
        c_email,
        v_name,
        v_phone,
        v_email,
    )) = row
    else {
        return Ok(None);
    };
    let item = item((rid, tid, name, state, paid, count, at));
    let id = item.registration_id.as_uuid();
    let players: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, role FROM players WHERE registration_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let documents: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT kind, public_id, secure_url, content_type, bytes FROM documents
         WHERE registration_id = $1 ORDER BY kind",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    let email_status: Option<(String,)> = sqlx::query_as(
        "SELECT status FROM email_deliveries
             WHERE registration_id = $1 AND message = 'confirmation'",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(Some(TeamDetail {
        review: review_of(pool, id).await?,
        item,
        captain: StoredContact {
            name: c_name,
            phone: c_phone,
            email: c_email,
        },
        vice_captain: StoredContact {
            name: v_name,
            phone: v_phone,
            email: v_email,
        },
        players: players
            .into_iter()
            .map(|(name, role)| StoredPlayer { name, role })
            .collect(),
        documents: documents
            .into_iter()
            .map(
                |(field, public_id, secure_url, content_type, bytes)| TeamDocument {
                    field,
                    public_id,
                    secure_url,
                    content_type,
                    bytes,
                },
            )
            .collect(),
        email_status: email_status.map(|(s,)| s),
    }))
}

/// An organiser's decision on a team.
#[derive(Debug, Clone)]
pub struct NewDecision<'a> {
    /// `Approved` or `Rejected`; `Pending` is not a decision.
    pub decision: ReviewState,
    pub reason: &'a str,
    pub payment_verified: bool,
    /// The review version the organiser saw.
    pub version: i32,
    pub actor: &'a str,
    pub request_id: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no team has this ID")]
    NotFound,
    #[error("the review changed since version {given}; it is at version {current}")]
    Stale { given: i32, current: i32 },
    #[error("a review decision is approved or rejected, not pending")]
    NotADecision,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// What a decision did: the team's registration and its review as it now stands (the new
/// version is the decision's own).
#[derive(Debug, Clone)]
pub struct Reviewed {
    pub registration_id: RegistrationId,
    pub team_id: String,
    pub review: Review,
}

/// Records a decision, if `decision.version` is still the team's review version: the team's
/// state, its history and the audit log change in one transaction.
pub async fn review(
    pool: &PgPool,
    team_id: &str,
    decision: &NewDecision<'_>,
) -> Result<Reviewed, ReviewError> {
    if decision.decision == ReviewState::Pending {
        return Err(ReviewError::NotADecision);
    }
    let (id, team_id) = match review_once(pool, team_id, decision).await {
        Ok(written) => written,
        Err(ReviewOnce::Refused(err)) => return Err(err),
        Err(ReviewOnce::Db(err)) => return Err(ReviewError::Db(err.into())),
    };
    let review = retrying(|| async { Ok(review_of(pool, id).await?) }).await?;
    Ok(Reviewed {
        registration_id: RegistrationId::from_uuid(id),
        team_id,
        review,
    })
}

/// Where the registration's review stands, with every decision so far, oldest first.
async fn review_of(pool: &PgPool, id: uuid::Uuid) -> Result<Review, sqlx::Error> {
    let (state, payment_verified, version): (String, bool, i32) = sqlx::query_as(
        "SELECT review_state, payment_verified, review_version FROM teams
         WHERE registration_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    let history: Vec<DecisionRow> = sqlx::query_as(
        "SELECT version, decision, payment_verified, reason, actor, at FROM team_reviews
         WHERE registration_id = $1 ORDER BY version",
    )
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(Review {
        // The column's CHECK allows only the three states.
        state: ReviewState::parse(&state).unwrap_or(ReviewState::Pending),
        payment_verified,
        version,
        history: history.into_iter().map(decision_of).collect(),
    })
}

enum ReviewOnce {
    Refused(ReviewError),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for ReviewOnce {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err)
    }
}

impl From<DbError> for ReviewOnce {
    fn from(err: DbError) -> Self {
        Self::Refused(ReviewError::Db(err))
    }
}

/// Writes the decision; returns the team's registration id and its ID as stored.
async fn review_once(
    pool: &PgPool,
    team_id: &str,
    decision: &NewDecision<'_>,
) -> Result<(uuid::Uuid, String), ReviewOnce> {
    let mut tx = pool.begin().await?;
    let updated: Option<(uuid::Uuid, String, i32)> = sqlx::query_as(
        "UPDATE teams SET review_state = $2, payment_verified = $3,
                review_version = review_version + 1
         WHERE lower(team_id) = lower($1) AND review_version = $4
         RETURNING registration_id, team_id, review_version",
    )
    .bind(team_id)
    .bind(decision.decision.as_str())
    .bind(decision.payment_verified)
    .bind(decision.version)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((id, stored_id, version)) = updated else {
        let current: Option<(i32,)> =
            sqlx::query_as("SELECT review_version FROM teams WHERE lower(team_id) = lower($1)")
                .bind(team_id)
                .fetch_optional(&mut *tx)
                .await?;
        tx.rollback().await?;
        return Err(ReviewOnce::Refused(match current {
            None => ReviewError::NotFound,
            Some((current,)) => ReviewError::Stale {
                given: decision.version,
                current,
            },
        }));
    };
    sqlx::query(
        "INSERT INTO team_reviews (registration_id, version, decision, payment_verified, reason, actor)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id)
    .bind(version)
    .bind(decision.decision.as_str())
    .bind(decision.payment_verified)
    .bind(decision.reason)
    .bind(decision.actor)
    .execute(&mut *tx)
    .await?;
    let registrations = [RegistrationId::from_uuid(id)];
    let entry = Entry {
        actor: decision.actor,
        action: REVIEW,
        registrations: &registrations,
        reason: Some(decision.reason),
        request_id: decision.request_id,
    };
    let detail: Value = serde_json::json!({
        "team_id": stored_id,
        "decision": decision.decision.as_str(),
        "payment_verified": decision.payment_verified,
        "version": version,
    });
    entry.record(&mut *tx, Outcome::Succeeded, detail).await?;
    // Other systems hear of the decision exactly when it commits (pg::outbox).
    let event = match decision.decision {
        ReviewState::Rejected => EventType::TeamRejected,
        _ => EventType::TeamApproved,
    };
    sqlx::query("INSERT INTO outbox_events (type, registration_id, data) VALUES ($1, $2, $3)")
        .bind(event.as_str())
        .bind(id)
        .bind(serde_json::json!({
            "registration_id": id,
            "team_id": stored_id,
            "decision": decision.decision.as_str(),
            "payment_verified": decision.payment_verified,
            "version": version,
        }))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok((id, stored_id))
}

/// How many saved teams stand in each review state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateCounts {
    pub pending: i64,
    pub approved: i64,
    pub rejected: i64,
}

impl StateCounts {
    pub fn total(&self) -> i64 {
        self.pending + self.approved + self.rejected
    }
}

pub async fn counts_by_state(pool: &PgPool) -> Result<StateCounts, DbError> {
    retrying(|| async {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT review_state, count(*) FROM teams GROUP BY review_state")
                .fetch_all(pool)
                .await?;
        let mut counts = StateCounts::default();
        for (state, n) in rows {
            match ReviewState::parse(&state) {
                Some(ReviewState::Pending) => counts.pending = n,
                Some(ReviewState::Approved) => counts.approved = n,
                Some(ReviewState::Rejected) => counts.rejected = n,
                None => {}
            }
        }
        Ok(counts)
    })
    .await
}

/// Teams saved on each UTC day from `since` on, oldest first; days without one are absent.
pub async fn saved_per_day(
    pool: &PgPool,
    since: OffsetDateTime,
) -> Result<Vec<(time::Date, i64)>, DbError> {
    retrying(|| async {
        Ok(sqlx::query_as(
            "SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*) FROM teams
             WHERE created_at >= $1 GROUP BY day ORDER BY day",
        )
        .bind(since)
        .fetch_all(pool)
        .await?)
    })
    .await
}

/// Decision `version` of the registration's review; `None` if there is no such decision.
pub async fn decision(
    pool: &PgPool,
    id: RegistrationId,
    version: i32,
) -> Result<Option<Decision>, DbError> {
    retrying(|| async {
        let row: Option<DecisionRow> = sqlx::query_as(
            "SELECT version, decision, payment_verified, reason, actor, at FROM team_reviews
             WHERE registration_id = $1 AND version = $2",
        )
        .bind(id.as_uuid())
        .bind(version)
        .fetch_optional(pool)
        .await?;
        Ok(row.map(decision_of))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::name_prefix;

    #[test]
    fn a_name_prefix_is_folded_and_its_wildcards_escaped() {
        assert_eq!(name_prefix("  Rising   STARS "), "rising stars%");
        assert_eq!(name_prefix("100%_a\\b"), "100\\%\\_a\\\\b%");
    }
}
