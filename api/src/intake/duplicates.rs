//! Duplicates refused at the door (docs/contract.md §2): a team already registered or in
//! progress gets `409 DUPLICATE_TEAM` before the api stages its documents, from the
//! duplicate index the workers keep (`intake_store::team_index`). The form is checked as
//! soon as its team name and captain phone are read and valid, before the first document is
//! written; a form that sends its documents first is checked once it has been read, and its
//! staged files are removed. The index only ever refuses what Postgres would refuse: when it
//! cannot say (not built yet, Redis failing) the request goes on and the worker decides.

use intake_shared::domain::{IdempotencyKey, Phone, RegistrationId, TeamKey, TeamName};
use intake_shared::validation::RawForm;
use intake_store::team_index::{Lookup, TeamIndex};
use redis::aio::ConnectionManager;

use super::idempotency::Idempotency;

/// The team is held by another registration.
#[derive(Debug, thiserror::Error)]
#[error("the team is already registered or in progress ({holder})")]
pub struct Duplicate {
    pub holder: RegistrationId,
}

/// The request's `Idempotency-Key`: a team held by the registration the key is bound to
/// already is the request's own (its retry or replay, which the claim answers), no duplicate.
pub struct OwnKey<'a> {
    pub idempotency: &'a Idempotency,
    pub redis: ConnectionManager,
    pub key: &'a IdempotencyKey,
}

impl OwnKey<'_> {
    /// Whether the key is bound to `holder`. Only asked when the team is held, so a request
    /// for a free team costs no read of its key. When the record cannot be read, the answer
    /// is yes: the claim after the body reads it again and decides (503 or its outcome).
    async fn holds(&mut self, holder: RegistrationId) -> bool {
        match self.idempotency.bound_to(&mut self.redis, self.key).await {
            Ok(bound) => bound == Some(holder),
            Err(err) => {
                tracing::debug!(error = %err, "idempotency record unreadable; the claim decides");
                true
            }
        }
    }
}

/// One request's check: asks the index at most once per team key.
pub struct DuplicateCheck<'a> {
    index: &'a TeamIndex,
    own: OwnKey<'a>,
    checked: Option<TeamKey>,
}

impl<'a> DuplicateCheck<'a> {
    pub fn new(index: &'a TeamIndex, own: OwnKey<'a>) -> Self {
        Self {
            index,
            own,
            checked: None,
        }
    }

    /// Checks the team named by the fields read so far, once both are valid.
    pub async fn raw(&mut self, raw: &RawForm) -> Result<(), Duplicate> {
        let (Some(name), Some(phone)) = (&raw.team_name, &raw.captain_phone) else {
            return Ok(());
        };
        let (Ok(name), Ok(phone)) = (TeamName::parse(name), Phone::parse(phone)) else {
            return Ok(());
        };
        self.team(TeamKey::new(&name, &phone)).await
    }

    /// Checks `team` unless it was checked already.
    pub async fn team(&mut self, team: TeamKey) -> Result<(), Duplicate> {
        if self.checked.as_ref() == Some(&team) {
            return Ok(());
        }
        let lookup = self.index.lookup(&team).await;
        self.checked = Some(team);
        match lookup {
            Ok(Lookup::Held(holder)) if self.own.holds(holder).await => Ok(()),
            Ok(Lookup::Held(holder)) => Err(Duplicate { holder }),
            Ok(Lookup::Free | Lookup::Unknown) => Ok(()),
            Err(err) => {
                // Redis failing here fails the idempotency claim next; the worker's claim
                // in Postgres decides duplicates either way.
                tracing::debug!(error = %err, "duplicate index unreadable; the worker decides");
                Ok(())
            }
        }
    }
}
