//! Step 4: the confirmation email, to the captain with the vice-captain in Cc, as plain text
//! and HTML. It is never fatal: the registration completes with `email_status` `sent` or
//! `failed`. Each registration's delivery is recorded in Postgres, and a run that finds an
//! accepted delivery does not send again. (A crash between the server accepting the message
//! and the record being written can still send twice; the fixed Message-ID lets mail systems
//! recognise the repeat.)

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use intake_shared::domain::{Registration, RegistrationId, TeamId};
use intake_shared::job::RegistrationJob;
use intake_shared::status::EmailStatus;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};
use sqlx::PgPool;

use crate::backends::mail::{MailError, Mailer};
use crate::db;
use crate::error::StepError;

#[derive(Clone)]
pub struct Notifier {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    retry: ExponentialBuilder,
}

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
        }
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
        self.send(pool, job.registration_id, &job.registration, team_id, false)
            .await
    }

    /// Sends the confirmation again, whatever was sent before (support's "resend email").
    pub async fn resend(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
    ) -> Result<EmailStatus, StepError> {
        self.send(pool, id, registration, team_id, true).await
    }

    async fn send(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
        again: bool,
    ) -> Result<EmailStatus, StepError> {
        let previous: Option<(String,)> = (|| async {
            sqlx::query_as("SELECT status FROM email_deliveries WHERE registration_id = $1")
                .bind(id.as_uuid())
                .fetch_optional(pool)
                .await
        })
        .retry(db::retry_policy())
        .when(db::is_transient)
        .await
        .map_err(|e| db::step_error(&e, "reading the email delivery"))?;
        if !again && previous.as_ref().is_some_and(|(s,)| s == "sent") {
            tracing::info!("confirmation email was already accepted; not sending again");
            return Ok(EmailStatus::Sent);
        }
        let message_id = format!("<registration-{id}@intake>");
        let outcome = match confirmation(&self.from, registration, team_id, &message_id) {
            Ok(message) => (|| self.mailer.send(&message))
                .retry(self.retry)
                .when(MailError::is_transient)
                .notify(|err, delay| {
                    tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), retry_in_ms = delay.as_millis() as u64, "email not delivered; retrying");
                })
                .await,
            Err(err) => Err(MailError::Permanent(err)),
        };
        let (status, last_error) = match &outcome {
            Ok(()) => (EmailStatus::Sent, None),
            Err(err) => {
                tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), mailer = self.mailer.name(), "confirmation email failed");
                (
                    EmailStatus::Failed,
                    Some(intake_shared::mask::emails_in(&err.to_string())),
                )
            }
        };
        (|| async {
            sqlx::query(
                "INSERT INTO email_deliveries (registration_id, status, message_id, attempts, last_error)
                 VALUES ($1, $2, $3, 1, $4)
                 ON CONFLICT (registration_id) DO UPDATE
                 SET status = EXCLUDED.status, attempts = email_deliveries.attempts + 1,
                     last_error = EXCLUDED.last_error, updated_at = now()",
            )
            .bind(id.as_uuid())
            .bind(if status == EmailStatus::Sent { "sent" } else { "failed" })
            .bind(&message_id)
            .bind(last_error.as_deref())
            .execute(pool)
            .await
        })
        .retry(db::retry_policy())
        .when(db::is_transient)
        .await
        .map_err(|e| db::step_error(&e, "recording the email delivery"))?;
        Ok(status)
    }
}

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
