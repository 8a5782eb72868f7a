//! Scenario 3: every connection between the workers and Postgres cut mid-run (through the
//! harness's proxy; the machine's Postgres keeps running), then restored.

use std::time::{Duration, Instant};

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::invariants::{self, Email};
use crate::load::{self, Pace};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let (n, rate, cut_at, cut_for) = match size {
        Size::Full => (900, 15.0, 15, 30),
        Size::Ci => (60, 10.0, 1, 5),
    };
    let (cut_at, cut_for) = (Duration::from_secs(cut_at), Duration::from_secs(cut_for));
    let mut report = Report::new(
        "postgres",
        format!(
            "{n} submissions at {rate}/s, workers cut from Postgres for {} s",
            cut_for.as_secs()
        ),
    );
    let h = Harness::start(bins, Options::default(), logs).await?;
    let started = Instant::now();
    let pace = Pace {
        concurrency: 16,
        per_second: Some(rate),
        give_up: Duration::from_secs(60),
    };
    let outage = async {
        tokio::time::sleep_until((started + cut_at).into()).await;
        h.pg_proxy.cut();
        let rows_at_cut = h.count("SELECT count(*) FROM teams").await.unwrap_or(-1);
        tokio::time::sleep(cut_for).await;
        let rows_at_restore = h.count("SELECT count(*) FROM teams").await.unwrap_or(-1);
        h.pg_proxy.restore();
        (rows_at_cut, rows_at_restore)
    };
    let (load, (rows_at_cut, rows_at_restore)) =
        tokio::join!(load::submit(&h, 0..n, pace, started), outage);
    let during: Vec<_> = load
        .tries
        .iter()
        .filter(|t| t.at >= cut_at && t.at < cut_at + cut_for)
        .collect();
    let not_accepted: Vec<_> = load.tries.iter().filter(|t| t.status != 202).collect();
    report.check(
        "intake answered 202 the whole time",
        not_accepted.is_empty() && !during.is_empty(),
        format!(
            "{} submissions, {} of them during the cut; {} answers other than 202",
            load.tries.len(),
            during.len(),
            not_accepted.len()
        ),
    );
    report.check(
        "no registration was saved during the cut",
        rows_at_cut == rows_at_restore,
        format!("{rows_at_cut} team rows when cut, {rows_at_restore} when restored"),
    );
    let ids: Vec<String> = load.accepted.values().cloned().collect();
    let finals = h.wait_all_final(&ids, Duration::from_secs(900)).await?;
    report.figure(format!(
        "all final {:.1} s after the cut ended",
        (started.elapsed().saturating_sub(cut_at + cut_for)).as_secs_f64()
    ));
    report.equal("submissions accepted", load.accepted.len(), n);
    invariants::completed_exactly_once(&h, &mut report, &load.accepted, &finals, Email::AtMostOnce)
        .await?;
    invariants::privacy(&h, &mut report, 0..n, &finals);
    Ok(report.finish())
}
