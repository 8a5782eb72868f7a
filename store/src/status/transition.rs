//! The status model's transitions (docs/contract.md §10) as one pure function: given the
//! record as stored and who asks for which change, the record it becomes, or why the change
//! is refused. The repository applies the result with a compare-and-set, so the check and
//! the write are one atomic step.

use intake_shared::status::{EmailStatus, JobError, JobState, ReviewState, StatusRecord, Step};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The record as it is kept in Redis: what clients see, plus the run (the re-drive
/// generation) that owns it. Clients never see `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    #[serde(flatten)]
    pub record: StatusRecord,
    /// 0 for the first run; each re-drive adds one. Absent in records written before runs
    /// were counted, which are run 0.
    #[serde(default)]
    pub run: u32,
}

/// Who asks for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A worker running the job of this run.
    Run(u32),
    /// Support staff (re-drive, email resend).
    Support,
}

/// One change of a registration's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A worker starts attempt `attempt` at `step`.
    Start { attempt: u32, step: Step },
    /// The job moves on to `step`.
    Step(Step),
    /// The registration is saved with this team ID; the confirmation email is next.
    Saved { team_id: String },
    /// The registration is done.
    Complete { email: EmailStatus },
    /// The registration failed for good in attempt `attempt`.
    Fail { attempt: u32, error: JobError },
    /// Support runs a failed registration again (as the next run).
    Redrive,
    /// Support asked for the confirmation again; it is queued.
    EmailResendQueued,
    /// A resent confirmation ended.
    EmailResent { email: EmailStatus },
    /// An organiser decided on the saved team.
    Reviewed { state: ReviewState },
    /// Support drops a failed registration; its record goes.
    Discard,
}

/// Why a change is refused. Nothing is written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("no status record for this registration")]
    NotFound,
    #[error("the registration is already completed")]
    AlreadyCompleted,
    #[error("the registration already failed; only a re-drive runs it again")]
    AlreadyFailed,
    #[error("the registration is {0:?}, not failed")]
    NotFailed(JobState),
    #[error("the registration is {0:?}, not completed")]
    NotCompleted(JobState),
    #[error("run {run} was superseded by run {current} (a re-drive)")]
    Superseded { run: u32, current: u32 },
    #[error("the run has not started")]
    NotStarted,
    #[error("only support staff make this change")]
    SupportOnly,
    #[error("only a worker's run makes this change")]
    RunOnly,
}

/// The record `current` becomes under `change` asked by `actor` at `now`; a worker's change
/// to a registration with no record (it expired) starts one from `id`.
pub fn apply(
    id: intake_shared::domain::RegistrationId,
    current: Option<Stored>,
    actor: Actor,
    change: Change,
    now: OffsetDateTime,
) -> Result<Stored, TransitionError> {
    // A worker's change to a registration with no record (it expired, or Redis lost it)
    // starts a new one for that run, whatever the change: the run is the truth.
    let mut stored = match (current, actor) {
        (Some(stored), _) => stored,
        (None, Actor::Run(run)) => {
            let mut record = StatusRecord::queued(id, now);
            record.status = JobState::Processing;
            Stored { record, run }
        }
        (None, Actor::Support) => return Err(TransitionError::NotFound),
    };
    let state = stored.record.status;
    match actor {
        Actor::Run(run) => {
            if run < stored.run {
                return Err(TransitionError::Superseded {
                    run,
                    current: stored.run,
                });
            }
            match (state, &change) {
                (JobState::Completed, _) => return Err(TransitionError::AlreadyCompleted),
                (JobState::Failed, _) => return Err(TransitionError::AlreadyFailed),
                (
                    _,
                    Change::Redrive
                    | Change::EmailResendQueued
                    | Change::EmailResent { .. }
                    | Change::Reviewed { .. }
                    | Change::Discard,
                ) => {
                    return Err(TransitionError::SupportOnly);
                }
                // A run's steps follow its start; a record still `queued` has not started
                // (or was re-driven since).
                (JobState::Queued, Change::Start { .. } | Change::Fail { .. }) => {}
                (JobState::Queued, _) => return Err(TransitionError::NotStarted),
                (JobState::Processing, _) => {}
            }
            stored.run = run;
        }
        Actor::Support => match (&change, state) {
            (Change::Redrive, JobState::Failed) => {}
            (Change::Redrive, JobState::Completed) => {
                return Err(TransitionError::AlreadyCompleted);
            }
            (Change::Redrive, other) => return Err(TransitionError::NotFailed(other)),
            (Change::Discard, JobState::Failed) => {}
            (Change::Discard, JobState::Completed) => {
                return Err(TransitionError::AlreadyCompleted);
            }
            (Change::Discard, other) => return Err(TransitionError::NotFailed(other)),
            (Change::EmailResendQueued | Change::EmailResent { .. }, JobState::Completed) => {}
            (Change::EmailResendQueued | Change::EmailResent { .. }, other) => {
                return Err(TransitionError::NotCompleted(other));
            }
            // A saved team is reviewable while its confirmation is still being sent.
            (Change::Reviewed { .. }, JobState::Completed | JobState::Processing) => {}
            (Change::Reviewed { .. }, other) => return Err(TransitionError::NotCompleted(other)),
            (_, _) => return Err(TransitionError::RunOnly),
        },
    }
    Ok(apply_change(stored, change, now))
}

fn apply_change(mut stored: Stored, change: Change, now: OffsetDateTime) -> Stored {
    let record = &mut stored.record;
    match change {
        Change::Start { attempt, step } => {
            record.status = JobState::Processing;
            record.attempts = attempt;
            record.error = None;
            record.step = Some(step);
        }
        Change::Step(step) => {
            record.status = JobState::Processing;
            record.step = Some(step);
        }
        Change::Saved { team_id } => {
            record.status = JobState::Processing;
            record.team_id = Some(team_id);
            record.step = Some(Step::SendingEmail);
            record.email_status = Some(EmailStatus::Pending);
            record.review_state = Some(ReviewState::Pending);
        }
        Change::Complete { email } => {
            record.status = JobState::Completed;
            record.step = None;
            record.email_status = Some(email);
            record.error = None;
        }
        Change::Fail { attempt, error } => {
            record.status = JobState::Failed;
            record.step = None;
            record.attempts = attempt.max(record.attempts);
            record.error = Some(error);
        }
        Change::Redrive => {
            record.status = JobState::Queued;
            record.step = None;
            record.error = None;
            record.attempts = 0;
            stored.run += 1;
        }
        Change::EmailResendQueued => record.email_status = Some(EmailStatus::Pending),
        Change::EmailResent { email } => record.email_status = Some(email),
        Change::Reviewed { state } => record.review_state = Some(state),
        // The record is deleted with its effects; nothing of it is kept.
        Change::Discard => {}
    }
    stored.record.updated_at = now;
    stored
}

#[cfg(test)]
mod tests {
    use super::*;
    use intake_shared::domain::RegistrationId;
    use intake_shared::errors::JobFailureCode;

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn stored(status: JobState, run: u32) -> Stored {
        let mut record = StatusRecord::queued(RegistrationId::new(), now());
        record.status = status;
        Stored { record, run }
    }

    fn change(current: Stored, actor: Actor, change: Change) -> Result<Stored, TransitionError> {
        apply(current.record.id, Some(current), actor, change, now())
    }

    fn start() -> Change {
        Change::Start {
            attempt: 1,
            step: Step::ClaimingTeam,
        }
    }

    fn fail() -> Change {
        Change::Fail {
            attempt: 3,
            error: JobError {
                code: JobFailureCode::UploadUnavailable,
                message: "down".into(),
            },
        }
    }

    #[test]
    fn a_review_sets_the_review_state_of_a_saved_registration_only() {
        let reviewed = |status| {
            change(
                stored(status, 0),
                Actor::Support,
                Change::Reviewed {
                    state: ReviewState::Approved,
                },
            )
        };
        let done = reviewed(JobState::Completed).expect("a completed one is reviewable");
        assert_eq!(done.record.review_state, Some(ReviewState::Approved));
        assert_eq!(done.record.status, JobState::Completed);
        assert!(
            reviewed(JobState::Processing).is_ok(),
            "saved, email pending"
        );
        assert_eq!(
            reviewed(JobState::Failed).map(drop),
            Err(TransitionError::NotCompleted(JobState::Failed))
        );
        assert_eq!(
            change(
                stored(JobState::Completed, 0),
                Actor::Run(0),
                Change::Reviewed {
                    state: ReviewState::Rejected
                }
            )
            .map(drop),
            Err(TransitionError::AlreadyCompleted)
        );
    }

    #[test]
    fn a_run_starts_from_queued_and_moves_through_its_steps_to_completed() {
        let started = change(stored(JobState::Queued, 0), Actor::Run(0), start()).expect("start");
        assert_eq!(started.record.status, JobState::Processing);
        assert_eq!(started.record.step, Some(Step::ClaimingTeam));
        let saving = change(started, Actor::Run(0), Change::Step(Step::Saving)).expect("saving");
        assert_eq!(saving.record.team_id, None, "no team ID before the save");
        let with_id = change(
            saving,
            Actor::Run(0),
            Change::Saved {
                team_id: "ICCT-0001".into(),
            },
        )
        .expect("saved");
        assert_eq!(with_id.record.team_id.as_deref(), Some("ICCT-0001"));
        assert_eq!(with_id.record.step, Some(Step::SendingEmail));
        assert_eq!(with_id.record.email_status, Some(EmailStatus::Pending));
        assert_eq!(with_id.record.review_state, Some(ReviewState::Pending));
        let done = change(
            with_id,
            Actor::Run(0),
            Change::Complete {
                email: EmailStatus::Sent,
            },
        )
        .expect("complete");
        assert_eq!(done.record.status, JobState::Completed);
        assert_eq!(done.record.step, None);
        assert_eq!(done.record.email_status, Some(EmailStatus::Sent));
    }

    #[test]
    fn a_retried_attempt_restarts_a_processing_record() {
        let again = change(
            stored(JobState::Processing, 0),
            Actor::Run(0),
            Change::Start {
                attempt: 2,
                step: Step::ClaimingTeam,
            },
        )
        .expect("restart");
        assert_eq!(again.record.attempts, 2);
    }

    #[test]
    fn a_worker_cannot_touch_a_completed_registration() {
        for c in [start(), Change::Step(Step::Saving), fail()] {
            assert_eq!(
                change(stored(JobState::Completed, 0), Actor::Run(0), c),
                Err(TransitionError::AlreadyCompleted)
            );
        }
    }

    #[test]
    fn a_worker_cannot_restart_a_failed_registration_of_its_own_run() {
        assert_eq!(
            change(stored(JobState::Failed, 0), Actor::Run(0), start()),
            Err(TransitionError::AlreadyFailed)
        );
    }

    #[test]
    fn a_late_write_from_a_superseded_run_is_refused() {
        for c in [
            start(),
            fail(),
            Change::Complete {
                email: EmailStatus::Sent,
            },
        ] {
            assert_eq!(
                change(stored(JobState::Processing, 1), Actor::Run(0), c),
                Err(TransitionError::Superseded { run: 0, current: 1 })
            );
        }
    }

    #[test]
    fn steps_before_start_are_refused() {
        assert_eq!(
            change(
                stored(JobState::Queued, 0),
                Actor::Run(0),
                Change::Step(Step::Saving)
            ),
            Err(TransitionError::NotStarted)
        );
    }

    #[test]
    fn a_redrive_moves_failed_to_queued_as_the_next_run() {
        let mut failed =
            change(stored(JobState::Processing, 0), Actor::Run(0), fail()).expect("fail");
        failed.record.team_id = Some("ICCT-0002".into());
        let queued = change(failed, Actor::Support, Change::Redrive).expect("redrive");
        assert_eq!(queued.record.status, JobState::Queued);
        assert_eq!(queued.run, 1);
        assert_eq!(queued.record.attempts, 0);
        assert_eq!(queued.record.error, None);
        assert_eq!(queued.record.team_id.as_deref(), Some("ICCT-0002"));
    }

    #[test]
    fn only_a_failed_registration_is_redriven() {
        assert_eq!(
            change(
                stored(JobState::Completed, 0),
                Actor::Support,
                Change::Redrive
            ),
            Err(TransitionError::AlreadyCompleted)
        );
        for state in [JobState::Queued, JobState::Processing] {
            assert_eq!(
                change(stored(state, 0), Actor::Support, Change::Redrive),
                Err(TransitionError::NotFailed(state))
            );
        }
        assert_eq!(
            apply(
                RegistrationId::new(),
                None,
                Actor::Support,
                Change::Redrive,
                now()
            ),
            Err(TransitionError::NotFound)
        );
    }

    #[test]
    fn only_a_completed_registration_has_its_email_resent() {
        let resent = change(
            stored(JobState::Completed, 0),
            Actor::Support,
            Change::EmailResendQueued,
        )
        .expect("resend");
        assert_eq!(resent.record.email_status, Some(EmailStatus::Pending));
        assert_eq!(
            change(
                stored(JobState::Failed, 0),
                Actor::Support,
                Change::EmailResendQueued
            ),
            Err(TransitionError::NotCompleted(JobState::Failed))
        );
    }

    #[test]
    fn a_worker_write_to_an_expired_record_starts_it_again() {
        let id = RegistrationId::new();
        let started = apply(id, None, Actor::Run(2), start(), now()).expect("start");
        assert_eq!(started.run, 2);
        assert_eq!(started.record.id, id);
        let done = apply(
            id,
            None,
            Actor::Run(0),
            Change::Complete {
                email: EmailStatus::Sent,
            },
            now(),
        )
        .expect("a later step too");
        assert_eq!(done.record.status, JobState::Completed);
    }

    #[test]
    fn the_stored_form_keeps_the_run_and_the_public_form_drops_it() {
        let mut s = stored(JobState::Queued, 3);
        s.record.team_id = Some("ICCT-0009".into());
        let json = serde_json::to_string(&s).expect("encode");
        let back: Stored = serde_json::from_str(&json).expect("decode");
        assert_eq!(back, s);
        let public: StatusRecord = serde_json::from_str(&json).expect("public");
        assert_eq!(public, s.record);
        let old: Stored = serde_json::from_str(&serde_json::to_string(&s.record).expect("encode"))
            .expect("decode a record without a run");
        assert_eq!(old.run, 0);
    }
}
