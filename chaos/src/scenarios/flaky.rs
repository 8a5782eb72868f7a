//! Scenario 2: Cloudinary fails 30 % of calls (5xx, broken connections before and after
//! storing, hangs past the client's timeout) and SMTP 20 % (451, 550, dropped connections).

use std::time::{Duration, Instant};

use intake_testkit::cloudinary::Behaviour;
use intake_testkit::smtp::SmtpBehaviour;

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::invariants::{self, Email};
use crate::load::{self, Pace};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let n = match size {
        Size::Full => 1000,
        Size::Ci => 40,
    };
    let mut report = Report::new(
        "flaky",
        format!("{n} submissions, Cloudinary failing 30 %, SMTP 20 %"),
    );
    let h = Harness::start(
        bins,
        Options {
            workers: 3,
            concurrency: 16,
            cloudinary_timeout_secs: 2,
            ..Options::default()
        },
        logs,
    )
    .await?;
    h.cloudinary.set_default(Behaviour::Flaky(30));
    h.smtp.set_behaviour(SmtpBehaviour::Flaky(20));
    let started = Instant::now();
    let pace = Pace {
        concurrency: 16,
        per_second: None,
        give_up: Duration::from_secs(60),
    };
    let load = load::submit(&h, 0..n, pace, started).await;
    let ids: Vec<String> = load.accepted.values().cloned().collect();
    let finals = h.wait_all_final(&ids, Duration::from_secs(900)).await?;
    report.figure(format!(
        "Cloudinary calls {} for {} assets; SMTP messages received {}",
        h.cloudinary.upload_calls(),
        h.cloudinary.assets().len(),
        h.smtp.messages().len()
    ));
    report.equal("submissions accepted", load.accepted.len(), n);
    invariants::completed_exactly_once(&h, &mut report, &load.accepted, &finals, Email::AtMostOnce)
        .await?;
    invariants::privacy(&h, &mut report, 0..n, &finals);
    Ok(report.finish())
}
