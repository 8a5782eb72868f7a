//! The roster export's rows (docs/contract.md §15): one per player of every team the teams
//! listing's filter matches, newest team first, players in their submitted order. Rows come
//! off one query as Postgres sends them, so an export of any size holds only a few in
//! memory; the caller writes them out as they come.

use std::sync::LazyLock;
use std::task::{Context, Poll};

use intake_shared::status::ReviewState;
use sqlx::PgPool;

use super::DbError;
use super::teams::{FILTER, TeamFilter, name_prefix};

/// The captain's and vice-captain's phones and emails, in an export that reveals them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportContacts {
    pub captain_phone: String,
    pub captain_email: String,
    pub vice_captain_phone: String,
    pub vice_captain_email: String,
}

/// One player of one team, with the team's columns repeated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    pub team_id: String,
    pub team_name: String,
    pub review_state: ReviewState,
    pub payment_verified: bool,
    pub captain_name: String,
    pub vice_captain_name: String,
    pub player_name: String,
    pub player_role: String,
    /// `Some` only when the export reveals contacts: otherwise Postgres never sends them.
    pub contacts: Option<ExportContacts>,
}

type Row = (
    String,
    String,
    String,
    bool,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn row(
    (
        team_id,
        team_name,
        state,
        payment_verified,
        captain_name,
        vice_captain_name,
        player_name,
        player_role,
        captain_phone,
        captain_email,
        vice_captain_phone,
        vice_captain_email,
    ): Row,
) -> ExportRow {
    let contacts = match (
        captain_phone,
        captain_email,
        vice_captain_phone,
        vice_captain_email,
    ) {
        (
            Some(captain_phone),
            Some(captain_email),
            Some(vice_captain_phone),
            Some(vice_captain_email),
        ) => Some(ExportContacts {
            captain_phone,
            captain_email,
            vice_captain_phone,
            vice_captain_email,
        }),
        _ => None,
    };
    ExportRow {
        team_id,
        team_name,
        // The column's CHECK allows only the three states.
        review_state: ReviewState::parse(&state).unwrap_or(ReviewState::Pending),
        payment_verified,
        captain_name,
        vice_captain_name,
        player_name,
        player_role,
        contacts,
    }
}

/// The listing's filter (`$1`…`$5`) and the reveal flag (`$6`). A static string because the
/// row stream borrows its SQL for as long as it runs.
static SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT t.team_id, t.team_name, t.review_state, t.payment_verified,
                t.captain_name, t.vice_captain_name, p.name, p.role,
                CASE WHEN $6 THEN t.captain_phone END, CASE WHEN $6 THEN t.captain_email END,
                CASE WHEN $6 THEN t.vice_captain_phone END,
                CASE WHEN $6 THEN t.vice_captain_email END
         FROM teams t JOIN players p ON p.registration_id = t.registration_id
         WHERE {FILTER}
         ORDER BY t.created_at DESC, t.registration_id DESC, p.position"
    )
});

type Next<'a> = dyn FnMut(&mut Context<'_>) -> Poll<Option<Result<ExportRow, DbError>>> + Send + 'a;

/// The rows of one export, as Postgres sends them. Not retried: a stream cannot resume
/// where it broke, so an error ends it and the caller decides what the rows so far are worth.
pub struct ExportRows<'a> {
    // sqlx's row stream, behind a closure: its type names `futures_core::Stream`, which this
    // crate does not depend on, and a trait object's methods need no import to be called.
    next: Box<Next<'a>>,
}

impl std::fmt::Debug for ExportRows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRows").finish_non_exhaustive()
    }
}

impl ExportRows<'_> {
    /// The next row; `None` after the last one (or after an error).
    pub async fn next(&mut self) -> Option<Result<ExportRow, DbError>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`ExportRows::next`] as a poll, for building a `Stream` on it.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<ExportRow, DbError>>> {
        (self.next)(cx)
    }
}

/// Every player of the teams matching `filter`, with the captain's and vice-captain's phone
/// and email only when `reveal`.
pub fn rows<'a>(pool: &'a PgPool, filter: &TeamFilter, reveal: bool) -> ExportRows<'a> {
    let q = filter
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .map(str::to_owned);
    let prefix = q.as_deref().map(name_prefix);
    let mut stream = sqlx::query_as::<_, Row>(SQL.as_str())
        .bind(q)
        .bind(prefix)
        .bind(filter.state.map(ReviewState::as_str))
        .bind(filter.since)
        .bind(filter.until)
        .bind(reveal)
        .fetch(pool);
    let mut ended = false;
    ExportRows {
        next: Box::new(move |cx| {
            if ended {
                return Poll::Ready(None);
            }
            let polled = stream.as_mut().poll_next(cx);
            let polled = polled.map(|item| item.map(|r| r.map(row).map_err(DbError::from)));
            ended = matches!(polled, Poll::Ready(None | Some(Err(_))));
            polled
        }),
    }
}
