//! Scenario 4: the private Redis (append-only file on) killed mid-run and started again.
//! While it is down the api answers 503 with Retry-After and stages nothing; the client
//! retries with the same key; api and workers reconnect by themselves.

use std::time::{Duration, Instant};

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::invariants::{self, Email};
use crate::load::{self, Pace};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let (n, rate, kill_at, down_for) = match size {
        Size::Full => (600, 20.0, 10, 10),
        Size::Ci => (40, 10.0, 1, 3),
    };
    let (kill_at, down_for) = (Duration::from_secs(kill_at), Duration::from_secs(down_for));
    let mut report = Report::new(
        "redis",
        format!(
            "{n} submissions at {rate}/s, Redis killed for {} s and restarted from its AOF",
            down_for.as_secs()
        ),
    );
    let h = Harness::start(bins, Options::default(), logs).await?;
    let started = Instant::now();
    let pace = Pace {
        concurrency: 16,
        per_second: Some(rate),
        give_up: Duration::from_secs(120),
    };
    let outage = async {
        tokio::time::sleep_until((started + kill_at).into()).await;
        h.kill_redis();
        let (killed, killed_at) = (std::time::SystemTime::now(), started.elapsed());
        tokio::time::sleep(down_for).await;
        // A refused request removes what it staged within milliseconds; an upload begun
        // during the outage and still there a second later was left behind.
        let left = h.uploads_begun_between(
            killed + Duration::from_millis(500),
            std::time::SystemTime::now() - Duration::from_secs(1),
        );
        let restarted_at = started.elapsed();
        h.restart_redis();
        (left, killed_at, restarted_at)
    };
    let (load, (left_behind, killed_at, restarted_at)) =
        tokio::join!(load::submit(&h, 0..n, pace, started), outage);
    // Tries sent and answered while Redis was certainly down: a request sent just before the
    // restart but slow to read (a loaded machine) reaches Redis after it and is accepted.
    let window = |t: &load::Try| {
        t.at >= killed_at + Duration::from_millis(500)
            && t.answered + Duration::from_millis(500) < restarted_at
    };
    let during: Vec<_> = load.tries.iter().filter(|t| window(t)).collect();
    let improper: Vec<_> = during
        .iter()
        .filter(|t| !(t.status == 503 && t.retry_after))
        .collect();
    report.check(
        "while Redis is down the api answers 503 with Retry-After",
        !during.is_empty() && improper.is_empty(),
        format!(
            "{} of {} answers while down (Redis down from {killed_at:?} to {restarted_at:?}); \
             others: {:?}",
            during.len() - improper.len(),
            during.len(),
            improper.iter().take(5).collect::<Vec<_>>()
        ),
    );
    // A request that had claimed its key when Redis died could not release the claim: its
    // retries hear 409 (in progress, with Retry-After) until the claim's lock expires.
    let wrong: Vec<_> = load
        .tries
        .iter()
        .filter(|t| !(t.status == 202 || ([409, 503].contains(&t.status) && t.retry_after)))
        .collect();
    report.check(
        "no answer other than 202, or 503 / 409 with Retry-After",
        wrong.is_empty(),
        format!("{:?}", wrong.iter().take(5).collect::<Vec<_>>()),
    );
    report.equal(
        "uploads begun during the outage and left behind",
        left_behind,
        0,
    );
    let ids: Vec<String> = load.accepted.values().cloned().collect();
    let finals = h.wait_all_final(&ids, Duration::from_secs(900)).await?;
    report.figure(format!("answers: {:?}", load.answers()));
    report.equal("submissions accepted (0 lost)", load.accepted.len(), n);
    invariants::completed_exactly_once(
        &h,
        &mut report,
        &load.accepted,
        &finals,
        Email::ExactlyOnce,
    )
    .await?;
    invariants::privacy(&h, &mut report, 0..n, &finals);
    Ok(report.finish())
}
