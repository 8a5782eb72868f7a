//! Saved registrations: the team with its team ID, its players and its documents, written in
//! one statement, and read back for the pipeline and the support tools. The unique key on
//! (team name, captain's phone) is what stops one team registering twice whatever the
//! timing; a second run of the *same* registration finds its own row instead.
//!
//! The team ID is taken in the same statement, from one counter row per prefix: a
//! registration that fails before or during its save takes no number (the statement rolls
//! back, the increment with it), so the saved teams are numbered 1…N in save order with no
//! holes, and a number is never given twice. Why a locked counter row and not a sequence: a
//! sequence hands out numbers outside transactions, so every rolled-back save would leave a
//! gap. The row lock serialises saves from the increment to the commit, and the increment
//! is the statement's first effect, so the serial part is the rest of one statement and its
//! commit: one round trip.

use intake_shared::config::TeamIdFormat;
use intake_shared::domain::{DocumentKind, DocumentType, Registration, RegistrationId, TeamId};
use intake_shared::job::RegistrationJob;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{DbError, retrying, violates};

const SAME_TEAM_CONSTRAINTS: [&str; 2] = [
    "teams_team_name_captain_phone_key",
    "teams_team_name_folded_captain_phone_key",
];

/// One document as the document store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDocument {
    pub kind: DocumentKind,
    pub public_id: String,
    pub secure_url: String,
    pub content_type: DocumentType,
    pub bytes: u64,
    pub sha256: String,
}

/// How a save ended: the registration is saved with this team ID, by this call or by an
/// earlier run of the same registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Inserted(TeamId),
    AlreadySaved(TeamId),
}

impl Saved {
    pub fn team_id(&self) -> &TeamId {
        match self {
            Self::Inserted(team_id) | Self::AlreadySaved(team_id) => team_id,
        }
    }
}

/// One save at a time in this process. Saves serialise on the counter row in any case;
/// queued here, a process has at most one statement waiting on that row's lock instead of
/// one per job, and every commit wakes one waiter instead of dozens that then queue again
/// (measured: 64 concurrent jobs allocated slower than 32 without this).
static NUMBERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error("the same team is already registered")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl SaveError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Db(err) if err.is_transient())
    }
}

/// Writes the registration with its next team ID, its players and its documents, retrying
/// transient failures.
pub async fn save(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    documents: &[StoredDocument],
) -> Result<Saved, SaveError> {
    use backon::Retryable;
    (|| save_once(pool, job, format, documents))
        .retry(super::retry_policy())
        .when(SaveError::is_transient)
        .await
}

/// Whether this registration's rows are already in Postgres.
pub async fn is_saved(pool: &PgPool, id: RegistrationId) -> Result<bool, DbError> {
    retrying(|| async {
        Ok(
            sqlx::query("SELECT 1 FROM teams WHERE registration_id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?
                .is_some(),
        )
    })
    .await
}

/// The team ID of a saved registration; `None` if it is not saved.
pub async fn team_id_of(pool: &PgPool, id: RegistrationId) -> Result<Option<TeamId>, DbError> {
    retrying(|| async {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT team_id FROM teams WHERE registration_id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await?;
        Ok(row.map(|(t,)| TeamId::from_stored(t)))
    })
    .await
}

async fn save_once(
    pool: &PgPool,
    job: &RegistrationJob,
    format: &TeamIdFormat,
    documents: &[StoredDocument],
) -> Result<Saved, SaveError> {
    // The pipeline looked for the rows just before uploading; a twin run that saved since
    // is recognised by the primary key below.
    //
    // One statement, so one round trip and an implicit transaction: the team, its players,
    // its documents and its `registration.completed` event (pg::outbox) are written together
    // or not at all (a constraint failing anywhere in it rolls all of it back).
    let id = job.registration_id;
    let r = &job.registration;
    let positions: Vec<i16> = (0..r.players.len())
        .map(|i| i16::try_from(i).unwrap_or(i16::MAX))
        .collect();
    let names: Vec<&str> = r.players.iter().map(|p| p.name.as_str()).collect();
    let roles: Vec<&str> = r.players.iter().map(|p| p.role.as_str()).collect();
    let kinds: Vec<&str> = documents.iter().map(|d| d.kind.field()).collect();
    let public_ids: Vec<&str> = documents.iter().map(|d| d.public_id.as_str()).collect();
    let urls: Vec<&str> = documents.iter().map(|d| d.secure_url.as_str()).collect();
    let content_types: Vec<&str> = documents.iter().map(|d| d.content_type.mime()).collect();
    let sizes: Vec<i64> = documents
        .iter()
        .map(|d| i64::try_from(d.bytes).unwrap_or(i64::MAX))
        .collect();
    let hashes: Vec<&str> = documents.iter().map(|d| d.sha256.as_str()).collect();
    // The ID is formatted as `TeamId::format` does: padded to `width`, never cut.
    let turn = NUMBERING.lock().await;
    let inserted: Result<(String,), sqlx::Error> = sqlx::query_as(
        "WITH n AS (
             INSERT INTO team_id_counters AS c (prefix, last_value) VALUES ($2, 1)
             ON CONFLICT (prefix) DO UPDATE SET last_value = c.last_value + 1
             RETURNING last_value),
         team AS (
             INSERT INTO teams (registration_id, team_id, team_name,
                 captain_name, captain_phone, captain_email,
                 vice_captain_name, vice_captain_phone, vice_captain_email,
                 request_id, submitted_at)
             SELECT $1, $2 || '-' || lpad(n.last_value::text,
                        greatest($21, length(n.last_value::text)), '0'),
                 $3, $4, $5, $6, $7, $8, $9, $10, $11
             FROM n
             RETURNING registration_id, team_id),
         players AS (
             INSERT INTO players (registration_id, position, name, role)
             SELECT team.registration_id, p.*
             FROM team, UNNEST($12::smallint[], $13::text[], $14::text[]) AS p),
         documents AS (
             INSERT INTO documents (registration_id, kind, public_id, secure_url,
                 content_type, bytes, sha256)
             SELECT team.registration_id, d.*
             FROM team, UNNEST($15::text[], $16::text[], $17::text[], $18::text[],
                 $19::bigint[], $20::text[]) AS d),
         event AS (
             INSERT INTO outbox_events (type, registration_id, data)
             SELECT 'registration.completed', team.registration_id,
                 jsonb_build_object('registration_id', team.registration_id,
                     'team_id', team.team_id, 'team_name', $3::text,
                     'players', cardinality($12::smallint[]),
                     'submitted_at', $22::text)
             FROM team)
         SELECT team_id FROM team",
    )
    .bind(id.as_uuid())
    .bind(&format.prefix)
    .bind(r.team_name.as_str())
    .bind(r.captain.name.as_str())
    .bind(r.captain.phone.as_str())
    .bind(r.captain.email.as_str())
    .bind(r.vice_captain.name.as_str())
    .bind(r.vice_captain.phone.as_str())
    .bind(r.vice_captain.email.as_str())
    .bind(&job.request_id)
    .bind(job.submitted_at)
    .bind(&positions)
    .bind(&names)
    .bind(&roles)
    .bind(&kinds)
    .bind(&public_ids)
    .bind(&urls)
    .bind(&content_types)
    .bind(&sizes)
    .bind(&hashes)
    .bind(i32::try_from(format.width).unwrap_or(i32::MAX))
    .bind(super::outbox::wire_time(job.submitted_at))
    .fetch_one(pool)
    .await;
    drop(turn);
    match inserted {
        Ok((team_id,)) => Ok(Saved::Inserted(TeamId::from_stored(team_id))),
        Err(err) if violates(&err, "teams_pkey") => {
            // Another run of this registration committed between our check and insert;
            // this statement's increment rolled back with it.
            let team_id = team_id_of(pool, id)
                .await?
                .ok_or(DbError::Unexpected(sqlx::Error::RowNotFound))?;
            Ok(Saved::AlreadySaved(team_id))
        }
        Err(err) if SAME_TEAM_CONSTRAINTS.iter().any(|c| violates(&err, c)) => {
            Err(SaveError::Duplicate)
        }
        Err(err) => Err(SaveError::Db(err.into())),
    }
}

/// A registration as saved, read back for support tools.
#[derive(Debug, Clone)]
pub struct SavedRegistration {
    pub team_id: TeamId,
    pub registration: Registration,
    pub documents: Vec<SavedDocument>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct SavedDocument {
    pub kind: String,
    pub public_id: String,
    pub secure_url: String,
    pub content_type: String,
    pub bytes: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("the stored registration {id} does not pass validation: {message}")]
    Invalid { id: RegistrationId, message: String },
}

type TeamRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    OffsetDateTime,
);

/// Reads a saved registration with its players and documents; `None` if it is not saved.
pub async fn load(
    pool: &PgPool,
    id: RegistrationId,
) -> Result<Option<SavedRegistration>, LoadError> {
    use intake_shared::domain::{Contact, Email, PersonName, Phone, Player, Role, TeamName};

    let row: Option<TeamRow> = sqlx::query_as(
        "SELECT team_id, team_name, captain_name, captain_phone, captain_email,
                vice_captain_name, vice_captain_phone, vice_captain_email, created_at
         FROM teams WHERE registration_id = $1",
    )
    .bind(id.as_uuid())
    .fetch_optional(pool)
    .await
    .map_err(DbError::from)?;
    let Some((team_id, team_name, c_name, c_phone, c_email, v_name, v_phone, v_email, created_at)) =
        row
    else {
        return Ok(None);
    };
    let players: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, role FROM players WHERE registration_id = $1 ORDER BY position",
    )
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(DbError::from)?;
    let documents: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "SELECT kind, public_id, secure_url, content_type, bytes FROM documents
         WHERE registration_id = $1 ORDER BY kind",
    )
    .bind(id.as_uuid())
    .fetch_all(pool)
    .await
    .map_err(DbError::from)?;
    let invalid = |e: intake_shared::errors::Invalid| LoadError::Invalid {
        id,
        message: e.message,
    };
    let contact = |name: &str, phone: &str, email: &str| -> Result<Contact, LoadError> {
        Ok(Contact {
            name: PersonName::parse(name).map_err(invalid)?,
            phone: Phone::parse(phone).map_err(invalid)?,
            email: Email::parse(email).map_err(invalid)?,
        })
    };
    let registration = Registration {
        team_name: TeamName::parse(&team_name).map_err(invalid)?,
        captain: contact(&c_name, &c_phone, &c_email)?,
        vice_captain: contact(&v_name, &v_phone, &v_email)?,
        players: players
            .iter()
            .map(|(name, role)| {
                Ok(Player {
                    name: PersonName::parse(name).map_err(invalid)?,
                    role: Role::parse(role).map_err(invalid)?,
                })
            })
            .collect::<Result<_, LoadError>>()?,
    };
    Ok(Some(SavedRegistration {
        team_id: TeamId::from_stored(team_id),
        registration,
        documents: documents
            .into_iter()
            .map(
                |(kind, public_id, secure_url, content_type, bytes)| SavedDocument {
                    kind,
                    public_id,
                    secure_url,
                    content_type,
                    bytes,
                },
            )
            .collect(),
        created_at,
    }))
}

/// One completed registration in a support listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedItem {
    pub id: uuid::Uuid,
    pub team_id: String,
    pub team_name: String,
    pub created_at: OffsetDateTime,
    /// How its confirmation email's delivery stands (`email_deliveries.status`).
    pub email: Option<String>,
}

/// Completed registrations, newest first, created within `[since, until]`, after the
/// keyset `after` (`created_at`, `registration_id`) of the previous page; `limit` rows.
pub async fn completed_page(
    pool: &PgPool,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: Option<(OffsetDateTime, uuid::Uuid)>,
    limit: usize,
) -> Result<Vec<CompletedItem>, DbError> {
    let rows: Vec<(uuid::Uuid, String, String, OffsetDateTime, Option<String>)> = sqlx::query_as(
        "SELECT t.registration_id, t.team_id, t.team_name, t.created_at, e.status
             FROM teams t LEFT JOIN email_deliveries e
                 ON e.registration_id = t.registration_id AND e.message = 'confirmation'
             WHERE ($1::timestamptz IS NULL OR t.created_at >= $1)
               AND ($2::timestamptz IS NULL OR t.created_at <= $2)
               AND ($3::timestamptz IS NULL OR (t.created_at, t.registration_id) < ($3, $4))
             ORDER BY t.created_at DESC, t.registration_id DESC
             LIMIT $5",
    )
    .bind(since)
    .bind(until)
    .bind(after.map(|c| c.0))
    .bind(after.map(|c| c.1))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, team_id, team_name, created_at, email)| CompletedItem {
                id,
                team_id,
                team_name,
                created_at,
                email,
            },
        )
        .collect())
}
