//! Webhook deliveries (docs/contract.md §16): one per event and endpoint, the state the
//! delivery jobs work from and the log organisers read. The dispatcher turns outbox events
//! into deliveries; a delivery job takes a lease on one, sends it, and records the attempt;
//! the sweep finds pending deliveries no job is coming for.

use std::time::Duration;

use serde_json::{Value, json};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::DbError;
use super::audit::{Entry, Outcome};
use super::outbox::EventType;
use super::webhooks::Actor;

/// Audit actions.
pub const RESEND: &str = "webhook_resend";
/// The worker disabling an endpoint that answered `410 Gone`.
pub const DISABLE: &str = "webhook_disable";
/// Why an endpoint that answered `410 Gone` is disabled (its `disabled_reason`, and the
/// audit row's reason).
pub const GONE_REASON: &str = "the endpoint answered 410 Gone";
/// Who the audit log names for what the workers do on their own.
pub const WORKER_ACTOR: &str = "intake-worker";

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Delivered,
    Failed,
}

impl State {
    pub const ALL: [State; 3] = [Self::Pending, Self::Delivered, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    /// The event's id: the `webhook-id` of every attempt.
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub registration_id: uuid::Uuid,
    pub state: State,
    pub attempts: u32,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

type DeliveryRow = (
    uuid::Uuid,
    uuid::Uuid,
    uuid::Uuid,
    String,
    uuid::Uuid,
    String,
    i32,
    Option<i32>,
    Option<String>,
    OffsetDateTime,
    OffsetDateTime,
    Option<OffsetDateTime>,
);

const COLUMNS: &str = "d.id, d.endpoint_id, d.event_id, o.type, o.registration_id, d.state,
     d.attempts, d.last_status, d.last_error, d.next_attempt_at, d.created_at, d.delivered_at";

fn delivery_of(row: DeliveryRow) -> Delivery {
    let (
        id,
        endpoint_id,
        event_id,
        event_type,
        registration_id,
        state,
        attempts,
        last_status,
        last_error,
        next_attempt_at,
        created_at,
        delivered_at,
    ) = row;
    // The column's CHECK admits only the three states.
    let state = State::parse(&state).unwrap_or(State::Failed);
    Delivery {
        id,
        endpoint_id,
        event_id,
        event_type,
        registration_id,
        state,
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error,
        next_attempt_at: (state == State::Pending).then_some(next_attempt_at),
        created_at,
        delivered_at,
    }
}

/// A dispatch in progress: up to a batch of outbox events taken, their deliveries created
/// and the events marked dispatched, in a transaction not yet committed. The caller queues
/// each delivery's job and then commits, so a dispatch whose jobs were not all queued (a
/// Redis error, a worker killed) is rolled back whole and done again: no delivery is ever
/// left without a job. A job may run before the commit and find no delivery yet: it is run
/// again (a job queued for a dispatch that rolled back gives up after a few tries).
pub struct Dispatch {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    /// The new deliveries, for their jobs (generation 0).
    pub deliveries: Vec<uuid::Uuid>,
    /// Events taken (some may go to no endpoint).
    pub events: usize,
}

impl Dispatch {
    pub async fn commit(self) -> Result<(), DbError> {
        self.tx.commit().await.map_err(DbError::from)
    }
}

/// Takes up to `limit` outbox events, oldest first, and creates one pending delivery for
/// each enabled endpoint that takes the event's type, marking the events dispatched; events
/// locked by another worker's dispatch are skipped, so workers share the work.
pub async fn dispatch(pool: &PgPool, limit: i64) -> Result<Dispatch, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let taken: Vec<(i64,)> = sqlx::query_as(
        "UPDATE outbox_events SET dispatched_at = now()
         WHERE id IN (SELECT id FROM outbox_events WHERE dispatched_at IS NULL
                      ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING id",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let ids: Vec<i64> = taken.into_iter().map(|(id,)| id).collect();
    let rows: Vec<(uuid::Uuid,)> = sqlx::query_as(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id)
         SELECT e.id, o.event_id FROM outbox_events o
         JOIN webhook_endpoints e
             ON e.enabled AND e.deleted_at IS NULL AND o.type = ANY (e.events)
         WHERE o.id = ANY ($1)
         ORDER BY o.id
         ON CONFLICT (endpoint_id, event_id) DO NOTHING
         RETURNING id",
    )
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await
    .map_err(DbError::from)?;
    Ok(Dispatch {
        tx,
        deliveries: rows.into_iter().map(|(id,)| id).collect(),
        events: ids.len(),
    })
}

/// A delivery a worker holds the lease of: everything one attempt needs. Its `Debug`
/// leaves out the URL (it may carry a token) and the secret.
#[derive(Clone)]
pub struct Sending {
    pub id: uuid::Uuid,
    pub endpoint_id: uuid::Uuid,
    pub url: String,
    /// The endpoint's signing secret (`whsec_…`).
    pub secret: String,
    pub event_id: uuid::Uuid,
    pub event_type: EventType,
    pub data: Value,
    pub event_created_at: OffsetDateTime,
    /// Attempts made before this one, in all and in the current retry window.
    pub attempts: u32,
    pub window_attempts: u32,
    pub window_started_at: OffsetDateTime,
    /// Proves the lease is this worker's when the attempt is recorded.
    pub lease_token: uuid::Uuid,
}

impl std::fmt::Debug for Sending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sending")
            .field("id", &self.id)
            .field("endpoint_id", &self.endpoint_id)
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

/// What taking a delivery found.
#[derive(Debug)]
pub enum Take {
    /// The lease is this worker's: send it.
    Send(Box<Sending>),
    /// Not due until then, `wait` from now by the database's clock (a worker whose clock
    /// differs waits that long, not until its own idea of `at`).
    NotDue { at: OffsetDateTime, wait: Duration },
    /// Its endpoint already has as many sends in flight as it may; it was put off this many
    /// times in a row before.
    EndpointBusy { deferrals: u32 },
    /// Another worker is sending it (or died sending it) until its lease ends, `wait` from
    /// now by the database's clock.
    Leased { wait: Duration },
    /// A newer job is meant to run it: this one has nothing to do.
    Stale,
    /// Delivered, failed, or its endpoint was disabled or deleted (it is failed now).
    Finished,
    /// No such delivery (yet: the dispatch that made it may not have committed).
    Unknown,
}

/// Takes the lease of a due, pending delivery for `lease`, for the job of `generation`,
/// unless its endpoint already has `endpoint_limit` sends in flight (one endpoint's slow
/// answers must not hold every worker). Rows are locked delivery first, then endpoint (as
/// everywhere here); the endpoint's row is locked before its leases are counted, in a
/// statement of its own, so the count sees every lease taken by whoever held the lock
/// before, and two workers cannot both take its last slot.
pub async fn take(
    pool: &PgPool,
    id: uuid::Uuid,
    generation: u32,
    lease: Duration,
    endpoint_limit: u32,
) -> Result<Take, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    type Row = (
        String,
        i32,
        OffsetDateTime,
        f64,
        Option<f64>,
        uuid::Uuid,
        i32,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT state, generation, next_attempt_at,
                extract(epoch FROM next_attempt_at - clock_timestamp())::float8,
                CASE WHEN leased_until > clock_timestamp()
                     THEN extract(epoch FROM leased_until - clock_timestamp())::float8 END,
                endpoint_id, deferrals
         FROM webhook_deliveries WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some((state, current, next_at, due_in, leased_for, endpoint_id, deferrals)) = row else {
        return Ok(Take::Unknown);
    };
    if state != State::Pending.as_str() {
        return Ok(Take::Finished);
    }
    if i64::from(current) != i64::from(generation) {
        return Ok(Take::Stale);
    }
    if let Some(left) = leased_for {
        return Ok(Take::Leased {
            wait: Duration::from_secs_f64(left.max(0.0)),
        });
    }
    if due_in > 0.0 {
        return Ok(Take::NotDue {
            at: next_at,
            wait: Duration::from_secs_f64(due_in),
        });
    }
    let endpoint: Option<(String, String, bool)> = sqlx::query_as(
        "SELECT url, secret, enabled AND deleted_at IS NULL
         FROM webhook_endpoints WHERE id = $1 FOR NO KEY UPDATE",
    )
    .bind(endpoint_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some((url, secret, enabled)) = endpoint else {
        return Ok(Take::Unknown);
    };
    if !enabled {
        fail_unsendable(&mut *tx, id, "the endpoint is disabled or deleted").await?;
        tx.commit().await.map_err(DbError::from)?;
        return Ok(Take::Finished);
    }
    let (in_flight,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM webhook_deliveries
         WHERE endpoint_id = $1 AND lease_token IS NOT NULL
           AND leased_until > clock_timestamp()",
    )
    .bind(endpoint_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    if in_flight >= i64::from(endpoint_limit) {
        return Ok(Take::EndpointBusy {
            deferrals: u32::try_from(deferrals).unwrap_or(0),
        });
    }
    type Leased = (
        uuid::Uuid,
        String,
        Value,
        OffsetDateTime,
        OffsetDateTime,
        i32,
        i32,
        uuid::Uuid,
    );
    // The lease runs from now, not from the transaction's start (which came before any
    // lock waits above).
    let leased: Leased = sqlx::query_as(
        "UPDATE webhook_deliveries d
             SET lease_token = gen_random_uuid(),
                 leased_until = clock_timestamp() + make_interval(secs => $2),
                 deferrals = 0,
                 window_started_at = CASE WHEN d.window_attempts = 0 THEN now()
                                          ELSE d.window_started_at END,
                 updated_at = now()
         FROM outbox_events o
         WHERE d.id = $1 AND o.event_id = d.event_id
         RETURNING o.event_id, o.type, o.data, o.created_at, d.window_started_at,
                   d.attempts, d.window_attempts, d.lease_token",
    )
    .bind(id)
    .bind(lease.as_secs_f64())
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let (
        event_id,
        kind,
        data,
        event_created_at,
        window_started_at,
        attempts,
        window_attempts,
        lease_token,
    ) = leased;
    // The column's CHECK admits only the four types; were another there, the delivery
    // could never be sent: failed, not left leased.
    let Some(event_type) = EventType::parse(&kind) else {
        tx.rollback().await.map_err(DbError::from)?;
        fail_unsendable(pool, id, "the event type is unknown").await?;
        return Ok(Take::Finished);
    };
    tx.commit().await.map_err(DbError::from)?;
    Ok(Take::Send(Box::new(Sending {
        id,
        endpoint_id,
        url,
        secret,
        event_id,
        event_type,
        data,
        event_created_at,
        attempts: u32::try_from(attempts).unwrap_or(0),
        window_attempts: u32::try_from(window_attempts).unwrap_or(0),
        window_started_at,
        lease_token,
    })))
}

/// Fails a delivery that can never be sent, without an attempt: no job, lease or retry
/// left for it.
async fn fail_unsendable(
    db: impl sqlx::PgExecutor<'_>,
    id: uuid::Uuid,
    why: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET state = 'failed', updated_at = now(),
             generation = generation + 1, lease_token = NULL, leased_until = NULL,
             last_error = $2
         WHERE id = $1",
    )
    .bind(id)
    .bind(why)
    .execute(db)
    .await?;
    Ok(())
}

/// Hands a pending delivery from the job of `generation` to a new job: the generation is
/// raised (so that job and any other of the old one end without doing anything), the next
/// attempt moved to `next_at` when given, and `deferred` counts a put-off. The new
/// generation, for the new job; `None` if the delivery moved on meanwhile.
pub async fn requeue(
    pool: &PgPool,
    id: uuid::Uuid,
    generation: u32,
    next_at: Option<OffsetDateTime>,
    deferred: bool,
) -> Result<Option<u32>, DbError> {
    let row: Option<(i32,)> = sqlx::query_as(
        "UPDATE webhook_deliveries SET generation = generation + 1,
             next_attempt_at = coalesce($3, next_attempt_at),
             deferrals = CASE WHEN $4 THEN deferrals + 1 ELSE deferrals END,
             updated_at = now()
         WHERE id = $1 AND generation = $2 AND state = 'pending'
         RETURNING generation",
    )
    .bind(id)
    .bind(i32::try_from(generation).unwrap_or(i32::MAX))
    .bind(next_at)
    .bind(deferred)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|(g,)| u32::try_from(g).ok()))
}

/// What became of one attempt, decided by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A 2xx answer.
    Delivered,
    /// Try again at this time.
    Retry(OffsetDateTime),
    /// The retry window is spent: failed for good.
    Failed,
    /// `410 Gone`: failed, and the endpoint disabled.
    Gone,
}

/// One attempt: the answer's status (when there was one) and what went wrong.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: Option<String>,
    pub verdict: Verdict,
}

/// An attempt as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    /// Attempts made so far, in all.
    pub attempts: u32,
    /// The generation of the job the next attempt needs (a `Retry`).
    pub generation: u32,
}

/// Records an attempt and releases the lease, if the lease is still the sender's (it may
/// have lapsed and been taken by another worker, whose record then counts: `None`); a
/// `Gone` verdict disables the endpoint in the same transaction, audited.
pub async fn record(
    pool: &PgPool,
    sending: &Sending,
    attempt: &Attempt,
) -> Result<Option<Recorded>, DbError> {
    let (state, next_at) = match &attempt.verdict {
        Verdict::Delivered => (State::Delivered, None),
        Verdict::Retry(at) => (State::Pending, Some(*at)),
        Verdict::Failed | Verdict::Gone => (State::Failed, None),
    };
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    let row: Option<(i32, i32)> = sqlx::query_as(
        "UPDATE webhook_deliveries SET
             attempts = attempts + 1, window_attempts = window_attempts + 1,
             generation = generation + 1,
             last_status = $3, last_error = $4,
             last_attempt_at = now(), lease_token = NULL, leased_until = NULL,
             updated_at = now(),
             state = $5, next_attempt_at = coalesce($6, next_attempt_at),
             delivered_at = CASE WHEN $5 = 'delivered' THEN now() END
         WHERE id = $1 AND lease_token = $2 AND state = 'pending'
         RETURNING attempts, generation",
    )
    .bind(sending.id)
    .bind(sending.lease_token)
    .bind(attempt.status.map(i32::from))
    .bind(attempt.error.as_deref())
    .bind(state.as_str())
    .bind(next_at)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some((attempts, generation)) = row else {
        return Ok(None);
    };
    if attempt.verdict == Verdict::Gone {
        let disabled: Option<(uuid::Uuid,)> = sqlx::query_as(
            "UPDATE webhook_endpoints SET enabled = false, updated_at = now(),
                 disabled_reason = $2
             WHERE id = $1 AND enabled RETURNING id",
        )
        .bind(sending.endpoint_id)
        .bind(GONE_REASON)
        .fetch_optional(&mut *tx)
        .await
        .map_err(DbError::from)?;
        if disabled.is_some() {
            Entry {
                actor: WORKER_ACTOR,
                action: DISABLE,
                registrations: &[],
                reason: Some(GONE_REASON),
                request_id: None,
            }
            .record(
                &mut *tx,
                Outcome::Succeeded,
                json!({ "webhook_id": sending.endpoint_id, "delivery_id": sending.id }),
            )
            .await?;
        }
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(Some(Recorded {
        attempts: u32::try_from(attempts).unwrap_or(0),
        generation: u32::try_from(generation).unwrap_or(0),
    }))
}

/// Pending deliveries due for longer than `grace` that no worker holds and no sweep took
/// within `grace`: their job was lost (Redis lost its data, a push failed after the
/// delivery's generation was raised, the job gave up on its own errors) or waits far
/// behind others. Each is handed to a new job (its generation raised, so the old job, if
/// it ever runs, does nothing); their ids and new generations, for those jobs.
pub async fn sweep(
    pool: &PgPool,
    grace: Duration,
    limit: i64,
) -> Result<Vec<(uuid::Uuid, u32)>, DbError> {
    super::retrying(|| async {
        let rows: Vec<(uuid::Uuid, i32)> = sqlx::query_as(
            "UPDATE webhook_deliveries SET swept_at = now(), generation = generation + 1
             WHERE id IN (
                 SELECT id FROM webhook_deliveries
                 WHERE state = 'pending'
                   AND next_attempt_at < now() - make_interval(secs => $1)
                   AND (leased_until IS NULL OR leased_until < now())
                   AND (swept_at IS NULL OR swept_at < now() - make_interval(secs => $1))
                 ORDER BY next_attempt_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)
             RETURNING id, generation",
        )
        .bind(grace.as_secs_f64())
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, generation)| (id, u32::try_from(generation).unwrap_or(0)))
            .collect())
    })
    .await
}

/// One page of an endpoint's delivery log, newest first: those created before `before`
/// (a keyset cursor: time and id), in `state` when given.
pub async fn list(
    pool: &PgPool,
    endpoint_id: uuid::Uuid,
    state: Option<State>,
    before: Option<(OffsetDateTime, uuid::Uuid)>,
    limit: i64,
) -> Result<Vec<Delivery>, DbError> {
    super::retrying(|| async {
        let rows: Vec<DeliveryRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM webhook_deliveries d
             JOIN outbox_events o ON o.event_id = d.event_id
             WHERE d.endpoint_id = $1
               AND ($2::text IS NULL OR d.state = $2)
               AND ($3::timestamptz IS NULL OR (d.created_at, d.id) < ($3, $4))
             ORDER BY d.created_at DESC, d.id DESC LIMIT $5"
        ))
        .bind(endpoint_id)
        .bind(state.map(State::as_str))
        .bind(before.map(|(at, _)| at))
        .bind(before.map(|(_, id)| id))
        .bind(limit)
        .fetch_all(pool)
        .await?;
        Ok(rows.into_iter().map(delivery_of).collect())
    })
    .await
}

/// What asking for a re-send found.
#[derive(Debug)]
pub enum Resend {
    /// Pending again, due now, with a new retry window: push the job of `generation`.
    Queued { delivery: Delivery, generation: u32 },
    /// It is pending already: its next attempt is coming.
    AlreadyPending,
    /// The endpoint is disabled (or deleted): enable it first.
    EndpointDisabled,
    /// No such delivery of that endpoint.
    Unknown,
}

/// Makes a delivered or failed delivery pending again (the same event, so the same
/// `webhook-id`), with a new retry window and the backoff from its start, audited.
pub async fn resend(
    pool: &PgPool,
    endpoint_id: uuid::Uuid,
    id: uuid::Uuid,
    actor: &Actor<'_>,
) -> Result<Resend, DbError> {
    let mut tx = pool.begin().await.map_err(DbError::from)?;
    // The delivery's row first, as `take` and `record` lock them.
    let row: Option<(String, i32)> = sqlx::query_as(
        "SELECT state, generation FROM webhook_deliveries
         WHERE id = $1 AND endpoint_id = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(endpoint_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let Some((state, generation)) = row else {
        return Ok(Resend::Unknown);
    };
    let (enabled,): (bool,) = sqlx::query_as(
        "SELECT enabled AND deleted_at IS NULL FROM webhook_endpoints WHERE id = $1",
    )
    .bind(endpoint_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    if !enabled {
        return Ok(Resend::EndpointDisabled);
    }
    if state == State::Pending.as_str() {
        return Ok(Resend::AlreadyPending);
    }
    let row: DeliveryRow = sqlx::query_as(&format!(
        "UPDATE webhook_deliveries d SET state = 'pending', next_attempt_at = now(),
             window_started_at = now(), window_attempts = 0, deferrals = 0,
             generation = d.generation + 1, swept_at = NULL, delivered_at = NULL,
             lease_token = NULL, leased_until = NULL, updated_at = now()
         FROM outbox_events o
         WHERE d.id = $1 AND o.event_id = d.event_id
         RETURNING {COLUMNS}"
    ))
    .bind(id)
    .fetch_one(&mut *tx)
    .await
    .map_err(DbError::from)?;
    let delivery = delivery_of(row);
    Entry {
        actor: actor.name,
        action: RESEND,
        registrations: &[],
        reason: None,
        request_id: actor.request_id,
    }
    .record(
        &mut *tx,
        Outcome::Succeeded,
        json!({
            "webhook_id": endpoint_id,
            "delivery_id": id,
            "event_id": delivery.event_id,
            "previous_state": state,
        }),
    )
    .await?;
    tx.commit().await.map_err(DbError::from)?;
    // The row is locked: the update raised its generation by one.
    Ok(Resend::Queued {
        delivery,
        generation: u32::try_from(generation).map_or(0, |g| g + 1),
    })
}

/// What the delivery gauges show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backlog {
    /// Age of the oldest event not yet delivered everywhere it goes (not dispatched, or a
    /// delivery of it still pending); zero when there is none.
    pub oldest_undelivered: Duration,
    pub pending: i64,
    /// Endpoints disabled (by a person or by a `410`), not deleted.
    pub endpoints_disabled: i64,
}

pub async fn backlog(pool: &PgPool) -> Result<Backlog, DbError> {
    super::retrying(|| async {
        let (age, pending, disabled): (f64, i64, i64) = sqlx::query_as(
            "SELECT coalesce(extract(epoch FROM now() - least(
                     (SELECT min(created_at) FROM outbox_events WHERE dispatched_at IS NULL),
                     (SELECT min(o.created_at) FROM webhook_deliveries d
                      JOIN outbox_events o ON o.event_id = d.event_id
                      WHERE d.state = 'pending')))::float8, 0),
                 (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),
                 (SELECT count(*) FROM webhook_endpoints
                  WHERE NOT enabled AND deleted_at IS NULL)",
        )
        .fetch_one(pool)
        .await?;
        Ok(Backlog {
            oldest_undelivered: Duration::from_secs_f64(age.max(0.0)),
            pending,
            endpoints_disabled: disabled,
        })
    })
    .await
}
