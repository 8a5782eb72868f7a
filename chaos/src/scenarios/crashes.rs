//! Scenario 1: workers SIGKILLed every two seconds and restarted while registrations flow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use intake_testkit::cloudinary::Behaviour;

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::invariants::{self, Email};
use crate::load::{self, Pace};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let (n, concurrency, upload_delay, rate) = match size {
        Size::Full => (1000, 4, 400, 25.0),
        Size::Ci => (40, 2, 800, 20.0),
    };
    let workers = 3;
    let mut report = Report::new(
        "crashes",
        format!("{n} submissions, {workers} workers, one SIGKILLed every 2 s"),
    );
    let h = Harness::start(
        bins,
        Options {
            workers,
            concurrency,
            ..Options::default()
        },
        logs,
    )
    .await?;
    // Slow uploads keep jobs in flight when the kills land.
    h.cloudinary
        .set_default(Behaviour::Slow(Duration::from_millis(upload_delay)));
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let work = async {
        let pace = Pace {
            concurrency: 16,
            per_second: Some(rate),
            give_up: Duration::from_secs(60),
        };
        let load = load::submit(&h, 0..n, pace, started).await;
        let ids: Vec<String> = load.accepted.values().cloned().collect();
        let finals = h.wait_all_final(&ids, Duration::from_secs(900)).await;
        done.store(true, Ordering::SeqCst);
        (load, finals)
    };
    let kills = h.kill_workers_every(Duration::from_secs(2), &done);
    let ((load, finals), kills) = tokio::join!(work, kills);
    let finals = finals?;
    report.figure(format!("{kills} workers SIGKILLed and restarted"));
    report.figure(format!("answers: {:?}", load.answers()));
    report.check(
        "workers were killed mid-run",
        kills >= 3,
        format!("{kills} kills"),
    );
    report.equal("submissions accepted", load.accepted.len(), n);
    invariants::completed_exactly_once(&h, &mut report, &load.accepted, &finals, Email::AtMostOnce)
        .await?;
    // A killed worker's Postgres sessions end with it (the server sees the connection close);
    // sessions left open would add up, kill after kill, to Postgres' connection limit.
    let live = h.worker_sessions().await?;
    h.kill_workers();
    let ended = h
        .wait_until(
            "the killed workers' sessions end",
            Duration::from_secs(10),
            || async { h.worker_sessions().await.is_ok_and(|n| n == 0) },
        )
        .await;
    report.check(
        "killed workers leave no Postgres session open",
        live > 0 && ended.is_ok(),
        format!(
            "{live} worker sessions before, {} after all workers were killed",
            h.worker_sessions().await.unwrap_or(-1)
        ),
    );
    invariants::privacy(&h, &mut report, 0..n, &finals);
    Ok(report.finish())
}
