//! Step 4: the confirmation email, to the captain with the vice-captain in Cc, as plain text
//! and HTML. It is never fatal: the registration completes with `email_status` `sent` or
//! `failed`. Each registration's delivery is recorded in Postgres and marked `sending` before
//! the message goes out: a run that finds it `sent` does not send again; one that finds it
//! `sending` waits for the run that is sending, or, once that run's deadline has passed (it
//! stopped), records the delivery `unknown` (shown as `failed`) without sending, so a
//! captain is never emailed twice; support can resend.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use intake_shared::domain::{Registration, RegistrationId, TeamId};
use intake_shared::job::RegistrationJob;
use intake_shared::status::EmailStatus;
use intake_store::pg::PgPool;
use intake_store::pg::email_deliveries::{self, Delivery, Marked, Sender};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use crate::backends::mail::{MailError, Mailer};
use crate::db;
use crate::error::StepError;

#[derive(Clone)]
pub struct Notifier {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    retry: ExponentialBuilder,
    /// The longest one run spends sending (every retry included); a delivery marked
    /// `sending` for longer than this (and a margin) belongs to a run that stopped.
    send_deadline: Duration,
}

/// Time allowed beyond the send deadline for the run to record how the send ended.
const RECORD_MARGIN: Duration = Duration::from_secs(10);

impl Notifier {
    pub fn new(mailer: Arc<dyn Mailer>, from: Mailbox) -> Self {
        Self {
            mailer,
            from,
            retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(8))
                .with_max_times(4)
                .with_jitter(),
            send_deadline: Duration::from_secs(60),
        }
    }

    /// Bounds one run's sending, retries included (the SMTP timeout times the attempts,
    /// plus the waits between them).
    pub fn with_send_deadline(mut self, deadline: Duration) -> Self {
        self.send_deadline = deadline;
        self
    }

    pub fn with_retry(mut self, retry: ExponentialBuilder) -> Self {
        self.retry = retry;
        self
    }

    pub fn mailer_name(&self) -> &'static str {
        self.mailer.name()
    }

    /// Sends the confirmation unless one was already accepted. Only a database failure is an
    /// error: without the record, the job cannot know whether it may send.
    pub async fn run(
        &self,
        pool: &PgPool,
        job: &RegistrationJob,
        team_id: &TeamId,
    ) -> Result<EmailStatus, StepError> {
        let sender = Sender::Registration;
        self.send(
            pool,
            job.registration_id,
            &job.registration,
            team_id,
            sender,
        )
        .await
    }

    /// Sends the confirmation again, whatever was sent before (support's "resend email",
    /// opened by audit entry `audit_id`); the same resend run twice sends once.
    pub async fn resend(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
        audit_id: i64,
    ) -> Result<EmailStatus, StepError> {
        let sender = Sender::Resend { audit_id };
        self.send(pool, id, registration, team_id, sender).await
    }

    async fn send(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
        sender: Sender,
    ) -> Result<EmailStatus, StepError> {
        let message_id = format!("<registration-{id}@intake>");
        match self.mark_sending(pool, id, &message_id, sender).await? {
            Previous::None => {}
            Previous::Ended(status) => {
                tracing::info!(
                    ?status,
                    "the confirmation email was already dealt with; not sending again"
                );
                return Ok(status);
            }
        }
        let outcome = match confirmation(&self.from, registration, team_id, &message_id) {
            Ok(message) => {
                let sending = (|| self.mailer.send(&message))
                    .retry(self.retry)
                    .when(MailError::is_transient)
                    .notify(|err, delay| {
                        tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), retry_in_ms = delay.as_millis() as u64, "email not delivered; retrying");
                    });
                tokio::time::timeout(self.send_deadline, sending)
                    .await
                    .unwrap_or(Err(MailError::OutcomeUnknown))
            }
            Err(err) => Err(MailError::Permanent(err)),
        };
        let (status, last_error) = match &outcome {
            Ok(()) => (EmailStatus::Sent, None),
            Err(MailError::OutcomeUnknown) => {
                tracing::warn!(
                    "sending the confirmation took longer than its deadline; not sending again"
                );
                self.record(pool, id, Delivery::Unknown, Some(UNKNOWN_OUTCOME))
                    .await?;
                return Ok(EmailStatus::Failed);
            }
            Err(err) => {
                tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), mailer = self.mailer.name(), "confirmation email failed");
                (
                    EmailStatus::Failed,
                    Some(intake_shared::mask::emails_in(&err.to_string())),
                )
            }
        };
        let delivery = if status == EmailStatus::Sent {
            Delivery::Sent
        } else {
            Delivery::Failed
        };
        self.record(pool, id, delivery, last_error.as_deref())
            .await?;
        Ok(status)
    }

    /// Marks the delivery `sending`, which only one run can do: from nothing, or from
    /// `failed` (the server refused it before; a re-driven job tries again); a support
    /// resend marks it whatever it was. Otherwise says how the delivery ended, waiting for
    /// a run that is sending right now, and settling a delivery left `sending` by a run
    /// that stopped as `unknown`: it is not sent again, so no one is emailed twice.
    async fn mark_sending(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        message_id: &str,
        sender: Sender,
    ) -> Result<Previous, StepError> {
        let lease = self.send_deadline + RECORD_MARGIN;
        loop {
            let marked = email_deliveries::mark_sending(pool, id, message_id, sender, lease)
                .await
                .map_err(|e| db::step_error(&e, "marking the email delivery"))?;
            match marked {
                Marked::Marked => return Ok(Previous::None),
                Marked::Found {
                    delivery: Delivery::Sent,
                    ..
                } => return Ok(Previous::Ended(EmailStatus::Sent)),
                Marked::Found {
                    delivery: Delivery::Sending,
                    stale: true,
                } => {
                    tracing::warn!(
                        "an earlier run stopped while sending the confirmation; not sending again"
                    );
                    self.record(pool, id, Delivery::Unknown, Some(UNKNOWN_OUTCOME))
                        .await?;
                    return Ok(Previous::Ended(EmailStatus::Failed));
                }
                // Another run is sending now (or stopped less than a lease ago): its outcome
                // decides.
                Marked::Found {
                    delivery: Delivery::Sending,
                    stale: false,
                } => tokio::time::sleep(Duration::from_millis(500)).await,
                Marked::Found { .. } => return Ok(Previous::Ended(EmailStatus::Failed)),
            }
        }
    }

    /// Records how the delivery ended.
    async fn record(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        delivery: Delivery,
        last_error: Option<&str>,
    ) -> Result<(), StepError> {
        email_deliveries::record(pool, id, delivery, last_error)
            .await
            .map_err(|e| db::step_error(&e, "recording the email delivery"))
    }
}

/// The delivery's state before this run.
enum Previous {
    /// Nothing was sent, or the last try was refused: this run sends.
    None,
    /// Sent, or given up as `unknown`: this run does not send.
    Ended(EmailStatus),
}

/// Why a delivery is recorded `unknown`.
pub const UNKNOWN_OUTCOME: &str = "sending stopped before the server answered; whether the message went out is unknown, so it was not sent again (resend from the support tools if it did not arrive)";

/// The confirmation message: team ID, team name and players, in text and HTML.
pub fn confirmation(
    from: &Mailbox,
    registration: &Registration,
    team_id: &TeamId,
    message_id: &str,
) -> Result<Message, String> {
    let mailbox = |name: &str, email: &str| -> Result<Mailbox, String> {
        email
            .parse()
            .map(|address| Mailbox::new(Some(name.to_owned()), address))
            .map_err(|e| format!("address not usable: {e}"))
    };
    let captain = mailbox(
        registration.captain.name.as_str(),
        registration.captain.email.as_str(),
    )?;
    let vice = mailbox(
        registration.vice_captain.name.as_str(),
        registration.vice_captain.email.as_str(),
    )?;
    let team = registration.team_name.as_str();
    let players_text: String = registration
        .players
        .iter()
        .enumerate()
        .map(|(i, p)| format!("  {:>2}. {} ({})\n", i + 1, p.name, p.role.as_str()))
        .collect();
    let text = format!(
        "Hello {captain_name},\n\n\
         Your team \"{team}\" is registered. Your team ID is {team_id}.\n\
         Please quote it in every message about your registration.\n\n\
         Captain: {captain_name}\nVice-captain: {vice_name}\n\nPlayers:\n{players_text}\n\
         Good luck!\n",
        captain_name = registration.captain.name,
        vice_name = registration.vice_captain.name,
    );
    let players_html: String = registration
        .players
        .iter()
        .map(|p| {
            format!(
                "<li>{} <small>({})</small></li>",
                escape(p.name.as_str()),
                p.role.as_str()
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html><body style=\"font-family: sans-serif\">\
         <p>Hello {captain_name},</p>\
         <p>Your team <strong>{team}</strong> is registered. Your team ID is \
         <strong style=\"font-size: 1.2em\">{team_id}</strong>.<br>\
         Please quote it in every message about your registration.</p>\
         <p>Captain: {captain_name}<br>Vice-captain: {vice_name}</p>\
         <p>Players:</p><ol>{players_html}</ol><p>Good luck!</p></body></html>",
        captain_name = escape(registration.captain.name.as_str()),
        vice_name = escape(registration.vice_captain.name.as_str()),
        team = escape(team),
        team_id = escape(team_id.as_str()),
    );
    Message::builder()
        .from(from.clone())
        .to(captain)
        .cc(vice)
        .subject(format!("Registration confirmed: {team} ({team_id})"))
        .message_id(Some(message_id.to_owned()))
        .multipart(MultiPart::alternative_plain_html(text, html))
        .map_err(|e| format!("message not buildable: {e}"))
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b>O'Brien & \"Co\"</b>"),
            "&lt;b&gt;O&#39;Brien &amp; &quot;Co&quot;&lt;/b&gt;"
        );
    }
}
