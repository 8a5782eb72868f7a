//! The invariants every scenario ends with, checked from outside: the status answers,
//! Postgres rows, the Cloudinary fake's assets, the SMTP server's messages, the staging
//! directory, the queue's figures in Redis, and the logs.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::harness::{self, Harness};
use crate::report::Report;

/// What the run accepted: registration `n` → the id its 202 named.
pub type Accepted = BTreeMap<usize, String>;

/// How strict the email invariant is for a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Email {
    /// Every registration's email went out exactly once (healthy SMTP, no worker stopped
    /// mid-send).
    ExactlyOnce,
    /// Each registration's delivery is `sent` and received exactly once, or `failed` (the
    /// server refused it, or a worker stopped mid-send and it was not sent again); no one
    /// is emailed twice.
    AtMostOnce,
}

/// Every accepted registration completed, once: one team row and one team ID each, IDs
/// distinct, one asset per document, emails as `email` says, nothing left staged or
/// queued. `finals` holds each registration's last status answer.
pub async fn completed_exactly_once(
    h: &Harness,
    report: &mut Report,
    accepted: &Accepted,
    finals: &BTreeMap<String, Value>,
    email: Email,
) -> anyhow::Result<()> {
    let n = accepted.len() as i64;
    let not_completed: Vec<&Value> = finals
        .values()
        .filter(|s| s["status"] != "completed")
        .collect();
    report.check(
        "every accepted submission ends completed",
        not_completed.is_empty() && finals.len() == accepted.len(),
        format!(
            "{} of {} completed{}",
            finals.len() - not_completed.len(),
            accepted.len(),
            not_completed
                .first()
                .map(|s| format!("; e.g. {s}"))
                .unwrap_or_default()
        ),
    );
    let team_ids: BTreeSet<&str> = finals
        .values()
        .filter_map(|s| s["team_id"].as_str())
        .collect();
    report.equal(
        "distinct team IDs in the status answers",
        team_ids.len() as i64,
        n,
    );
    report.equal("team rows", h.count("SELECT count(*) FROM teams").await?, n);
    report.equal(
        "team numbers given out (none twice, none burnt)",
        h.count("SELECT coalesce(max(last_value), 0) FROM team_id_counters")
            .await?,
        n,
    );
    let documents: usize = accepted.keys().map(|n| harness::documents(*n)).sum();
    report.equal(
        "document rows",
        h.count("SELECT count(*) FROM documents").await?,
        documents as i64,
    );
    report.equal(
        "assets at Cloudinary (one per document)",
        h.cloudinary.assets().len(),
        documents,
    );
    check_emails(h, report, accepted, email).await?;
    report.equal("files left in staging", h.staged_files(), 0);
    let queue = h.queue().await?;
    report.check(
        "queue drained",
        queue.waiting == 0 && queue.in_flight == 0 && queue.failed == 0,
        format!(
            "waiting {}, in flight {}, failed {}",
            queue.waiting, queue.in_flight, queue.failed
        ),
    );
    Ok(())
}

async fn check_emails(
    h: &Harness,
    report: &mut Report,
    accepted: &Accepted,
    email: Email,
) -> anyhow::Result<()> {
    // Each registration's captain has an address of their own; the vice-captain's (in Cc)
    // is the same on every test form, so messages are counted by captain.
    let mut received: BTreeMap<String, usize> = BTreeMap::new();
    for mail in h.smtp.messages() {
        for to in mail
            .to
            .into_iter()
            .filter(|to| to.ends_with("@chaos.example"))
        {
            *received.entry(to).or_default() += 1;
        }
    }
    let twice: Vec<(&String, &usize)> = received.iter().filter(|(_, n)| **n > 1).collect();
    report.check(
        "no registration emailed twice",
        twice.is_empty(),
        format!(
            "{} messages; twice: {:?}",
            received.values().sum::<usize>(),
            twice.iter().take(3).collect::<Vec<_>>()
        ),
    );
    let deliveries: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(
        "SELECT registration_id::text, status FROM email_deliveries WHERE message = 'confirmation'",
    )
    .fetch_all(&h.pool)
    .await?
    .into_iter()
    .collect();
    let sent = deliveries.values().filter(|s| *s == "sent").count();
    let failed = deliveries.values().filter(|s| *s == "failed").count();
    // A delivery whose sending was cut off before its outcome was recorded (a worker
    // killed, or Postgres gone): shown as failed, never sent again.
    let unknown = deliveries.values().filter(|s| *s == "unknown").count();
    report.equal(
        "every registration has email_status sent or failed",
        sent + failed + unknown,
        accepted.len(),
    );
    let sent_not_received = accepted
        .iter()
        .filter(|(n, id)| {
            deliveries.get(*id).is_some_and(|s| s == "sent")
                && !received.contains_key(&harness::email(**n))
        })
        .count();
    report.equal(
        "deliveries recorded sent but not received",
        sent_not_received,
        0,
    );
    let emailed = accepted
        .keys()
        .filter(|n| received.contains_key(&harness::email(**n)))
        .count();
    report.figure(format!(
        "email deliveries: {sent} sent, {failed} failed, {unknown} unknown (sending cut off before its outcome was recorded); {emailed} captains received one"
    ));
    if email == Email::ExactlyOnce {
        report.equal("registrations emailed", emailed, accepted.len());
    }
    Ok(())
}

/// Personal data of registration `n` that must never be logged or shown in a status.
fn personal_data(n: usize) -> [String; 2] {
    [harness::phone(n), harness::email(n)]
}

/// Constant personal data every test form carries.
const FIXED_PERSONAL_DATA: [&str; 3] = ["9123456780", "ravi@example.org", "Arjun Mehta"];

/// The logs of every process of the run name no test phone number or email in clear, and
/// no process panicked; the status answers carry no personal data either.
pub fn privacy(
    h: &Harness,
    report: &mut Report,
    numbers: impl Iterator<Item = usize> + Clone,
    finals: &BTreeMap<String, Value>,
) {
    let mut logs = String::new();
    let mut lines = 0usize;
    for name in ["api.log", "workers.log"] {
        if let Ok(text) = std::fs::read_to_string(h.logs_dir().join(name)) {
            lines += text.lines().count();
            logs.push_str(&text);
        }
    }
    let mut found: Vec<String> = numbers
        .clone()
        .flat_map(personal_data)
        .filter(|item| logs.contains(item.as_str()))
        .collect();
    found.extend(
        FIXED_PERSONAL_DATA[..2]
            .iter()
            .filter(|item| logs.contains(**item))
            .map(|s| s.to_string()),
    );
    report.check(
        "logs name no phone number or email in clear",
        found.is_empty() && lines > 0,
        format!(
            "{lines} log lines searched; found {:?}",
            found.iter().take(5).collect::<Vec<_>>()
        ),
    );
    let panics = logs.lines().filter(|l| l.contains("panicked")).count();
    report.equal("panics in the logs", panics, 0);
    let statuses = serde_json::to_string(finals).unwrap_or_default();
    let shown: Vec<String> = numbers
        .flat_map(personal_data)
        .chain(FIXED_PERSONAL_DATA.iter().map(|s| s.to_string()))
        .filter(|item| statuses.contains(item.as_str()))
        .collect();
    report.check(
        "status answers carry no personal data",
        shown.is_empty(),
        format!(
            "{} status answers; found {:?}",
            finals.len(),
            shown.iter().take(5).collect::<Vec<_>>()
        ),
    );
}
