//! One delivery job: one attempt of one delivery, and the job of the next attempt when the
//! answer calls for one. Everything is read from Postgres when the job runs, so a job that
//! runs twice, late, or after a crash finds the delivery as it stands: a delivered one is
//! left alone, one another worker is sending is left to it, one not yet due gets (at most
//! one) job for its time.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use intake_shared::config::WebhookSettings;
use intake_shared::queue::PushError;
use intake_shared::webhooks::DeliveryJob;
use intake_store::pg::deliveries::{self, Attempt, Sending, Take, Verdict};
use intake_store::pg::{DbError, PgPool};
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

use super::metrics::{self, Outcome};
use super::sender::{Answer, Sender};

/// What a delivery job or a dispatcher round can fail on (an endpoint's failure is not an
/// error: it is recorded as the attempt's outcome).
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("a delivery job could not be queued: {0}")]
    Queue(#[from] PushError),
    /// The job's delivery is not there (yet): its dispatch has not committed.
    #[error("delivery {0} not found (yet)")]
    NotYetVisible(uuid::Uuid),
}

/// Everything a delivery job needs, shared by all of a process's delivery jobs.
pub struct Deliverer {
    pub pool: PgPool,
    pub redis: ConnectionManager,
    /// The deliveries queue.
    pub queue: apalis_redis::Config,
    pub sender: Sender,
    pub settings: WebhookSettings,
}

impl Deliverer {
    /// Runs the job: an attempt when the delivery is due, its lease free and its endpoint
    /// not at its limit; otherwise, unless a newer job has replaced this one, hands the
    /// delivery to a new job for the right time.
    pub async fn run(&self, job: &DeliveryJob) -> Result<(), DeliverError> {
        // Long enough for the attempt and its record; a worker that died holding it is
        // presumed dead once it lapses.
        let lease = self.settings.timeout + Duration::from_secs(10);
        let taken = deliveries::take(
            &self.pool,
            job.delivery_id,
            job.generation,
            lease,
            self.settings.endpoint_concurrency,
        )
        .await?;
        match taken {
            Take::Send(sending) => self.attempt(&sending).await,
            // Run early (apalis schedules by the second, or this host's clock runs ahead of
            // the database's): again once the database says it is due.
            Take::NotDue { at, wait } => self.requeue(job, wait, Some(at), false).await,
            // Held by another worker, or by one that died mid-attempt (this job is then
            // its job, handed back by apalis): look again when the lease ends. The holder's
            // record, if it comes, replaces this with the next attempt's job.
            Take::Leased { wait } => self.requeue(job, wait, None, false).await,
            // Put off without an attempt, later each time in a row (from half a second up
            // to the attempt timeout), so a backlog behind a slow endpoint waits rather
            // than polls.
            Take::EndpointBusy { deferrals } => {
                metrics::count(Outcome::Deferred);
                let first = DEFER_FIRST.min(self.settings.timeout);
                let wait = backoff(first, self.settings.timeout, deferrals);
                let at = OffsetDateTime::now_utc() + wait;
                self.requeue(job, wait, Some(at), true).await
            }
            // Made by a dispatch not committed yet (it queues its jobs first): apalis runs
            // the job again a second later, and a few more times (a dispatch that rolled
            // back leaves jobs that give up).
            Take::Unknown => Err(DeliverError::NotYetVisible(job.delivery_id)),
            Take::Stale | Take::Finished => Ok(()),
        }
    }

    async fn attempt(&self, sending: &Sending) -> Result<(), DeliverError> {
        let answer = self.sender.send(sending).await;
        let (attempt, outcome) = judge(&answer, sending, &self.settings);
        let Some(recorded) = deliveries::record(&self.pool, sending, &attempt).await? else {
            // The lease lapsed and another worker took the delivery: its record counts.
            tracing::warn!(
                delivery_id = %sending.id,
                "attempt finished after its lease lapsed; not recorded"
            );
            return Ok(());
        };
        metrics::count(outcome);
        tracing::info!(
            delivery_id = %sending.id,
            endpoint_id = %sending.endpoint_id,
            event_id = %sending.event_id,
            event_type = sending.event_type.as_str(),
            attempt = recorded.attempts,
            status = attempt.status,
            error = attempt.error.as_deref(),
            outcome = ?outcome,
            "webhook attempt"
        );
        if let Verdict::Retry(at) = attempt.verdict {
            let next = DeliveryJob {
                delivery_id: sending.id,
                generation: recorded.generation,
            };
            let wait = (at - OffsetDateTime::now_utc())
                .try_into()
                .unwrap_or(Duration::ZERO);
            self.push(&next, wait).await?;
        }
        Ok(())
    }

    /// Hands the delivery from `job` to a new job due in `wait` (moving its next attempt
    /// to `next_at` when given); nothing when a newer job already has it.
    async fn requeue(
        &self,
        job: &DeliveryJob,
        wait: Duration,
        next_at: Option<OffsetDateTime>,
        deferred: bool,
    ) -> Result<(), DeliverError> {
        if let Some(generation) = deliveries::requeue(
            &self.pool,
            job.delivery_id,
            job.generation,
            next_at,
            deferred,
        )
        .await?
        {
            let next = DeliveryJob {
                delivery_id: job.delivery_id,
                generation,
            };
            self.push(&next, wait).await?;
        }
        Ok(())
    }

    /// Queues `job` to run in `wait`. Tried three times: the delivery's generation was
    /// raised already, so this job's own re-run would find itself stale, and only the
    /// sweep would recover a push lost here.
    async fn push(&self, job: &DeliveryJob, wait: Duration) -> Result<(), PushError> {
        // apalis schedules by the whole second (rounding down): a second more, so a job
        // never runs before its delivery is due.
        let run_at = SystemTime::now() + wait + Duration::from_secs(1);
        (|| intake_shared::queue::push_delivery(&self.redis, &self.queue, job, Some(run_at)))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_times(2),
            )
            .await
            .map(|_| ())
    }
}

/// What an answer means for the delivery: 2xx delivered, `410` gone, a refused target
/// failed at once, anything else retried after the backoff (by the attempts made in the
/// retry window) unless that would end past the window.
pub fn judge(answer: &Answer, sending: &Sending, settings: &WebhookSettings) -> (Attempt, Outcome) {
    let made = sending.window_attempts + 1;
    let (status, error) = match answer {
        Answer::Status(code) if (200..300).contains(code) => {
            return (
                Attempt {
                    status: Some(*code),
                    error: None,
                    verdict: Verdict::Delivered,
                },
                Outcome::Delivered,
            );
        }
        Answer::Status(410) => {
            return (
                Attempt {
                    status: Some(410),
                    error: Some("410 Gone: the endpoint is disabled".into()),
                    verdict: Verdict::Gone,
                },
                Outcome::Gone,
            );
        }
        Answer::Refused(why) => {
            return (
                Attempt {
                    status: None,
                    error: Some(format!("refused: {why}")),
                    verdict: Verdict::Failed,
                },
                Outcome::Refused,
            );
        }
        Answer::Status(code) => (Some(*code), format!("answered {code}")),
        Answer::NoAnswer(what) => (None, what.clone()),
    };
    let at = OffsetDateTime::now_utc() + retry_delay(settings, made);
    if at > sending.window_started_at + settings.retry_window() {
        return (
            Attempt {
                status,
                error: Some(format!("{error}; retries ended after {made} attempts")),
                verdict: Verdict::Failed,
            },
            Outcome::Failed,
        );
    }
    (
        Attempt {
            status,
            error: Some(error),
            verdict: Verdict::Retry(at),
        },
        Outcome::Retried,
    )
}

/// The wait after the `made`-th failed attempt: the base doubled for each attempt before,
/// capped, plus up to as much again at random (so a recovering endpoint is not hit by every
/// delivery at once).
pub fn retry_delay(settings: &WebhookSettings, made: u32) -> Duration {
    backoff(
        settings.retry_base,
        settings.retry_max_delay,
        made.saturating_sub(1),
    )
}

/// The first wait of a delivery put off because its endpoint is full (at most the attempt
/// timeout); each put-off in a row doubles it, up to the timeout.
const DEFER_FIRST: Duration = Duration::from_millis(500);

/// The `n`-th wait (from 0) of an exponential backoff: `first` doubled `n` times, at most
/// `max`, plus up to as much again at random.
fn backoff(first: Duration, max: Duration, n: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(n as usize)
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> WebhookSettings {
        WebhookSettings {
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(3600),
            retry_hours: 24.0,
            ..WebhookSettings::default()
        }
    }

    /// A delivery whose retry window started then, with `made` attempts in it.
    fn sending(window_started_at: OffsetDateTime, made: u32) -> Sending {
        Sending {
            id: uuid::Uuid::new_v4(),
            endpoint_id: uuid::Uuid::new_v4(),
            url: "https://example.com/hook".into(),
            secret: String::new(),
            event_id: uuid::Uuid::new_v4(),
            event_type: intake_store::pg::outbox::EventType::TeamApproved,
            data: serde_json::json!({}),
            event_created_at: window_started_at,
            attempts: made,
            window_attempts: made,
            window_started_at,
            lease_token: uuid::Uuid::new_v4(),
        }
    }

    #[test]
    fn waits_double_from_the_base_with_up_to_as_much_again_and_stop_at_the_cap() {
        let s = settings();
        for (made, base) in [(1, 5), (2, 10), (3, 20), (4, 40), (11, 3600), (40, 3600)] {
            let wait = retry_delay(&s, made);
            let base = Duration::from_secs(base);
            assert!(
                wait >= base && wait <= base * 2,
                "attempt {made}: {wait:?} not within {base:?}..{:?}",
                base * 2
            );
        }
    }

    #[test]
    fn each_answer_gets_its_verdict() {
        let s = settings();
        let now = OffsetDateTime::now_utc();
        let d = sending(now, 0);
        assert_eq!(
            judge(&Answer::Status(204), &d, &s).0.verdict,
            Verdict::Delivered
        );
        assert_eq!(judge(&Answer::Status(410), &d, &s).0.verdict, Verdict::Gone);
        let refused = judge(&Answer::Refused("10.0.0.1 is private".into()), &d, &s);
        assert_eq!(refused.0.verdict, Verdict::Failed);
        assert_eq!(refused.1, Outcome::Refused);
        let (retry, outcome) = judge(&Answer::Status(503), &d, &s);
        assert!(matches!(retry.verdict, Verdict::Retry(at) if at > now));
        assert_eq!(retry.status, Some(503));
        assert_eq!(outcome, Outcome::Retried);
        let hung = judge(
            &Answer::NoAnswer("no answer within 10000 ms".into()),
            &sending(now, 1),
            &s,
        );
        assert!(matches!(hung.0.verdict, Verdict::Retry(_)));
        assert_eq!(hung.0.status, None);
    }

    #[test]
    fn a_retry_past_the_window_fails_the_delivery() {
        let s = settings();
        let started =
            OffsetDateTime::now_utc() - time::Duration::hours(23) - time::Duration::minutes(59);
        let (attempt, outcome) = judge(&Answer::Status(500), &sending(started, 11), &s);
        assert_eq!(attempt.verdict, Verdict::Failed);
        assert_eq!(outcome, Outcome::Failed);
        assert!(
            attempt
                .error
                .as_deref()
                .is_some_and(|e| e.contains("12 attempts"))
        );
    }
}
