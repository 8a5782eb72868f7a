//! Step 4: the confirmation email, to the captain with the vice-captain in Cc, as plain text
//! and HTML; and, as jobs of their own, the email of each review decision, to the same
//! people. Email is never fatal: the registration completes with `email_status` `sent` or
//! `failed`. Each message's delivery is recorded in Postgres (keyed by registration and
//! message) and marked `sending` before the message goes out: a run that finds it `sent`
//! does not send again; one that finds it `sending` waits for the run that is sending, or,
//! once that run's deadline has passed (it stopped), records the delivery `unknown` (shown
//! as `failed`) without sending, so a captain never gets one message twice; support can
//! resend the confirmation.

use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use intake_shared::domain::{Registration, RegistrationId, TeamId};
use intake_shared::job::RegistrationJob;
use intake_shared::status::{EmailStatus, ReviewState};
use intake_store::mail_cap::MailCap;
use intake_store::pg::PgPool;
use intake_store::pg::email_deliveries::{self, Delivery, Marked, MessageKey, Sender};
use intake_store::pg::teams::Decision;
use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use crate::backends::mail::{MailError, Mailer};
use crate::db;
use crate::error::StepError;
use crate::metrics::{EmailMessage, EmailOutcome, email_outcome};

#[derive(Clone)]
pub struct Notifier {
    mailer: Arc<dyn Mailer>,
    from: Mailbox,
    retry: ExponentialBuilder,
    /// The longest one run spends sending (every retry included); a delivery marked
    /// `sending` for longer than this (and a margin) belongs to a run that stopped.
    send_deadline: Duration,
    /// The per-recipient daily cap on confirmation and decision emails (none: uncapped).
    cap: Option<MailCap>,
}

/// Which of the captains a message goes to: a recipient over the day's cap is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recipients {
    pub captain: bool,
    pub vice_captain: bool,
}

impl Recipients {
    pub const BOTH: Self = Self {
        captain: true,
        vice_captain: true,
    };

    fn none(self) -> bool {
        !self.captain && !self.vice_captain
    }
}

/// Time allowed beyond the send deadline for the run to record how the send ended.
const RECORD_MARGIN: Duration = Duration::from_secs(10);

/// One message ready to go, with the key its delivery is recorded under.
struct Outgoing {
    key: MessageKey,
    message_id: String,
    /// Whom it goes to; nobody means it is suppressed.
    recipients: Recipients,
    /// The message, or why it could not be built (recorded as a failed delivery).
    message: Result<Message, String>,
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
            send_deadline: Duration::from_secs(60),
            cap: None,
        }
    }

    /// Caps the confirmation and decision emails per recipient and day (support's resends
    /// are not capped).
    pub fn with_cap(mut self, cap: MailCap) -> Self {
        self.cap = Some(cap);
        self
    }

    /// Which captains may get `message` of registration `id` today. The cap guards against
    /// abuse, not delivery: if Redis cannot say, the message goes.
    async fn admitted(
        &self,
        id: RegistrationId,
        message: MessageKey,
        registration: &Registration,
    ) -> Recipients {
        let Some(cap) = &self.cap else {
            return Recipients::BOTH;
        };
        let name = format!("{id}:{message}");
        let admit = async |address: &str| match cap.admit(address, &name).await {
            Ok(admitted) => admitted,
            Err(err) => {
                tracing::warn!(error = %err, "email cap unreadable; sending");
                true
            }
        };
        let recipients = Recipients {
            captain: admit(registration.captain.email.as_str()).await,
            vice_captain: admit(registration.vice_captain.email.as_str()).await,
        };
        if recipients != Recipients::BOTH {
            tracing::info!(
                email = %message,
                captain = recipients.captain,
                vice_captain = recipients.vice_captain,
                per_day = cap.per_day(),
                "recipient over the daily email cap left out"
            );
        }
        recipients
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
        let recipients = self
            .admitted(
                job.registration_id,
                MessageKey::Confirmation,
                &job.registration,
            )
            .await;
        let outgoing =
            self.confirmation(job.registration_id, &job.registration, team_id, recipients);
        self.send(pool, job.registration_id, outgoing, Sender::Registration)
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
        let outgoing = self.confirmation(id, registration, team_id, Recipients::BOTH);
        self.send(pool, id, outgoing, Sender::Resend { audit_id })
            .await
    }

    /// Sends the email of review decision `decision` unless it was already accepted, under
    /// the same rules as the confirmation: once per decision, however often its job runs.
    pub async fn decision(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
        decision: &Decision,
    ) -> Result<EmailStatus, StepError> {
        let key = MessageKey::Decision {
            version: decision.version,
        };
        let message_id = format!("<decision-{id}-{}@intake>", decision.version);
        let recipients = self.admitted(id, key, registration).await;
        let message = decision_message(
            &self.from,
            registration,
            team_id,
            decision,
            &message_id,
            recipients,
        );
        let outgoing = Outgoing {
            key,
            message_id,
            recipients,
            message,
        };
        self.send(pool, id, outgoing, Sender::Registration).await
    }

    fn confirmation(
        &self,
        id: RegistrationId,
        registration: &Registration,
        team_id: &TeamId,
        recipients: Recipients,
    ) -> Outgoing {
        let message_id = format!("<registration-{id}@intake>");
        let message = confirmation(&self.from, registration, team_id, &message_id, recipients);
        Outgoing {
            key: MessageKey::Confirmation,
            message_id,
            recipients,
            message,
        }
    }

    /// Sends one message at most once: marks its delivery, sends with retries within the
    /// deadline, and records how it ended. The outcome is counted
    /// (`intake_email_outcomes_total`) once it is recorded, and only by the run that decided
    /// it, not by one that finds it decided already.
    async fn send(
        &self,
        pool: &PgPool,
        id: RegistrationId,
        outgoing: Outgoing,
        sender: Sender,
    ) -> Result<EmailStatus, StepError> {
        let Outgoing {
            key,
            message_id,
            recipients,
            message,
        } = outgoing;
        let counted = match (sender, key) {
            (Sender::Resend { .. }, _) => EmailMessage::Resend,
            (Sender::Registration, MessageKey::Decision { .. }) => EmailMessage::Decision,
            (Sender::Registration, MessageKey::Confirmation) => EmailMessage::Confirmation,
        };
        match self
            .mark_sending(pool, id, key, &message_id, sender)
            .await?
        {
            Previous::None => {}
            Previous::Abandoned => {
                email_outcome(counted, EmailOutcome::Unknown);
                return Ok(EmailStatus::Failed);
            }
            Previous::Ended(status) => {
                tracing::info!(
                    ?status,
                    email = %key,
                    "the email was already dealt with; not sending again"
                );
                return Ok(status);
            }
        }
        if recipients.none() {
            self.record(pool, id, key, Delivery::Suppressed, Some(SUPPRESSED))
                .await?;
            email_outcome(counted, EmailOutcome::Suppressed);
            return Ok(EmailStatus::Suppressed);
        }
        let outcome = match message {
            Ok(message) => {
                let sending = (|| self.mailer.send(&message))
                    .retry(self.retry)
                    .when(MailError::is_transient)
                    .notify(|err, delay| {
                        tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), email = %key, retry_in_ms = delay.as_millis() as u64, "email not delivered; retrying");
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
                    email = %key,
                    "sending the email took longer than its deadline; not sending again"
                );
                self.record(pool, id, key, Delivery::Unknown, Some(UNKNOWN_OUTCOME))
                    .await?;
                email_outcome(counted, EmailOutcome::Unknown);
                return Ok(EmailStatus::Failed);
            }
            Err(err) => {
                tracing::warn!(error = %intake_shared::mask::emails_in(&err.to_string()), email = %key, mailer = self.mailer.name(), "email failed");
                (
                    EmailStatus::Failed,
                    Some(intake_shared::mask::emails_in(&err.to_string())),
                )
            }
        };
        let (delivery, outcome) = if status == EmailStatus::Sent {
            (Delivery::Sent, EmailOutcome::Sent)
        } else {
            (Delivery::Failed, EmailOutcome::Failed)
        };
        self.record(pool, id, key, delivery, last_error.as_deref())
            .await?;
        email_outcome(counted, outcome);
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
        key: MessageKey,
        message_id: &str,
        sender: Sender,
    ) -> Result<Previous, StepError> {
        let lease = self.send_deadline + RECORD_MARGIN;
        loop {
            let marked = email_deliveries::mark_sending(pool, id, key, message_id, sender, lease)
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
                        email = %key,
                        "an earlier run stopped while sending the email; not sending again"
                    );
                    self.record(pool, id, key, Delivery::Unknown, Some(UNKNOWN_OUTCOME))
                        .await?;
                    return Ok(Previous::Abandoned);
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
        key: MessageKey,
        delivery: Delivery,
        last_error: Option<&str>,
    ) -> Result<(), StepError> {
        email_deliveries::record(pool, id, key, delivery, last_error)
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
    /// Left `sending` by a run that stopped: this run recorded it `unknown` (shown as
    /// `failed`) and does not send.
    Abandoned,
}

/// Why a delivery is recorded `unknown`.
pub const UNKNOWN_OUTCOME: &str = "sending stopped before the server answered; whether the message went out is unknown, so it was not sent again (resend from the support tools if it did not arrive)";

/// Why a delivery is recorded `suppressed`.
pub const SUPPRESSED: &str = "not sent: every recipient had already had the day's capped number of emails (support can resend it)";

/// A message from `from` to the registration's captain, with the vice-captain in Cc (each
/// as `recipients` allows: the one left is then the only addressee).
fn to_the_captains(
    from: &Mailbox,
    registration: &Registration,
    subject: String,
    message_id: &str,
    recipients: Recipients,
) -> Result<lettre::message::MessageBuilder, String> {
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
    let builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(message_id.to_owned()));
    Ok(match (recipients.captain, recipients.vice_captain) {
        (true, true) => builder.to(captain).cc(vice),
        (true, false) => builder.to(captain),
        (false, true) => builder.to(vice),
        (false, false) => return Err("no recipient left under the email cap".to_owned()),
    })
}

/// The confirmation message: team ID, team name and players, in text and HTML.
pub fn confirmation(
    from: &Mailbox,
    registration: &Registration,
    team_id: &TeamId,
    message_id: &str,
    recipients: Recipients,
) -> Result<Message, String> {
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
    to_the_captains(
        from,
        registration,
        format!("Registration confirmed: {team_id}"),
        message_id,
        recipients,
    )?
    .multipart(MultiPart::alternative_plain_html(text, html))
    .map_err(|e| format!("message not buildable: {e}"))
}

/// The message telling the captains an organiser's decision: approved or not accepted in
/// the subject, with the team ID only (the team name is free text a sender chose, so it
/// stays out of the Subject, as in the confirmation), the organiser's reason and the payment
/// check in the body, in text and HTML.
pub fn decision_message(
    from: &Mailbox,
    registration: &Registration,
    team_id: &TeamId,
    decision: &Decision,
    message_id: &str,
    recipients: Recipients,
) -> Result<Message, String> {
    let team = registration.team_name.as_str();
    let (subject, outcome) = match decision.decision {
        ReviewState::Approved => ("Registration approved", "has been approved"),
        ReviewState::Rejected => ("Registration not accepted", "has not been accepted"),
        ReviewState::Pending => return Err("a pending review is not a decision".to_owned()),
    };
    let payment = if decision.payment_verified {
        "Your payment receipt has been verified."
    } else {
        "Your payment receipt has not been verified."
    };
    let reason = decision.reason.trim();
    let text = format!(
        "Hello {captain_name},\n\n\
         The registration of your team \"{team}\" ({team_id}) {outcome}.\n\
         {payment}\n\n\
         The organisers' note:\n{reason}\n\n\
         Please quote your team ID {team_id} in every message about your registration.\n",
        captain_name = registration.captain.name,
    );
    let reason_html = escape(reason).replace('\n', "<br>");
    let html = format!(
        "<!doctype html><html><body style=\"font-family: sans-serif\">\
         <p>Hello {captain_name},</p>\
         <p>The registration of your team <strong>{team}</strong> \
         (<strong>{team_id}</strong>) {outcome}.<br>{payment}</p>\
         <p>The organisers' note:</p><blockquote>{reason_html}</blockquote>\
         <p>Please quote your team ID {team_id} in every message about your registration.</p>\
         </body></html>",
        captain_name = escape(registration.captain.name.as_str()),
        team = escape(team),
        team_id = escape(team_id.as_str()),
    );
    to_the_captains(
        from,
        registration,
        format!("{subject}: {team_id}"),
        message_id,
        recipients,
    )?
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
    use super::*;

    fn registration() -> Registration {
        let players: Vec<_> = (0..11)
            .map(|n| serde_json::json!({"name": format!("Player {}", char::from(b'a' + n)), "role": "bowler"}))
            .collect();
        serde_json::from_value(serde_json::json!({
            "team_name": "Rising Stars XI",
            "captain": {"name": "Arjun Mehta", "phone": "9876543210", "email": "arjun@example.org"},
            "vice_captain": {"name": "Ravi Kumar", "phone": "9123456780", "email": "ravi@example.org"},
            "players": players,
        }))
        .expect("a valid registration")
    }

    fn decision(state: ReviewState, reason: &str) -> Decision {
        Decision {
            version: 2,
            decision: state,
            payment_verified: false,
            reason: reason.to_owned(),
            actor: "olga".to_owned(),
            at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn formatted(state: ReviewState, reason: &str) -> Result<String, String> {
        let from: Mailbox = "Intake <intake@example.org>".parse().expect("address");
        decision_message(
            &from,
            &registration(),
            &TeamId::from_stored("ICCT-0007".to_owned()),
            &decision(state, reason),
            "<decision-x-2@intake>",
            Recipients::BOTH,
        )
        // Quoted-printable soft line breaks removed, so text can be looked for whole.
        .map(|m| String::from_utf8_lossy(&m.formatted()).replace("=\r\n", ""))
    }

    #[test]
    fn a_rejection_says_not_accepted_and_keeps_the_reason_out_of_the_subject() {
        let mail = formatted(ReviewState::Rejected, "Receipt <unreadable>").expect("built");
        assert!(
            mail.contains("Subject: Registration not accepted: ICCT-0007"),
            "{mail}"
        );
        assert!(mail.contains("Message-ID: <decision-x-2@intake>"), "{mail}");
        assert!(
            mail.contains("Receipt <unreadable>"),
            "the text body has the reason"
        );
        assert!(
            mail.contains("Receipt &lt;unreadable&gt;"),
            "the HTML body escapes it"
        );
        let subject = mail
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .expect("subject");
        assert!(!subject.contains("Receipt"));
    }

    #[test]
    fn a_pending_review_is_not_a_message() {
        assert!(formatted(ReviewState::Pending, "").is_err());
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b>O'Brien & \"Co\"</b>"),
            "&lt;b&gt;O&#39;Brien &amp; &quot;Co&quot;&lt;/b&gt;"
        );
    }
}
