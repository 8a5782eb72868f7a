//! Scenario 6: many simultaneous requests with one idempotency key make one job; many
//! simultaneous registrations of one team (distinct keys) make one team row, the rest
//! failing `DUPLICATE_TEAM`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use intake_testkit::form::TestForm;

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let (same_key, same_team) = match size {
        Size::Full => (1000, 200),
        Size::Ci => (200, 50),
    };
    let mut report = Report::new(
        "contention",
        format!("{same_key} requests with one key; {same_team} registrations of one team"),
    );
    let h = Harness::start(
        bins,
        Options {
            workers: 3,
            concurrency: 16,
            ..Options::default()
        },
        logs,
    )
    .await?;

    // One key, many requests at once.
    let form = TestForm::valid_for_team("One Key Eleven").set("captain_phone", "9700000001");
    let answers =
        futures::future::join_all((0..same_key).map(|_| h.submit(&form, "contention-one-key")))
            .await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    let mut ids = BTreeSet::new();
    for answer in answers.iter().flatten() {
        *statuses.entry(answer.status).or_default() += 1;
        if let Some(id) = answer.id() {
            ids.insert(id);
        }
    }
    report.figure(format!("one key: answers {statuses:?}"));
    report.check(
        "one key: every answer is 202 (the same registration) or 409 in progress",
        answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|a| [202, 409].contains(&a.status))),
        format!("{statuses:?}"),
    );
    report.equal("one key: registrations named in the 202s", ids.len(), 1);
    let queue = h.queue().await?;
    report.check(
        "one key: at most one job queued",
        queue.waiting + queue.in_flight <= 1,
        format!("waiting {}, in flight {}", queue.waiting, queue.in_flight),
    );

    // One team, many keys.
    let team = TestForm::valid_for_team("Same Team Eleven").set("captain_phone", "9700000002");
    let answers = futures::future::join_all((0..same_team).map(|i| {
        let (h, team) = (&h, &team);
        async move { h.submit(team, &format!("contention-team-{i}")).await }
    }))
    .await;
    let team_ids: Vec<String> = answers.iter().flatten().filter_map(|a| a.id()).collect();
    // Those that arrive once the first claim reached the duplicate index are refused at the
    // door; the rest are accepted and refused by the workers' claim.
    let at_the_door = answers
        .iter()
        .flatten()
        .filter(|a| a.status == 409 && a.body["code"] == "DUPLICATE_TEAM")
        .count();
    report.figure(format!(
        "one team: {} accepted, {at_the_door} refused at the door",
        team_ids.len()
    ));
    report.equal(
        "one team: every submission accepted or refused 409 DUPLICATE_TEAM",
        team_ids.len() + at_the_door,
        same_team,
    );

    let all: Vec<String> = ids
        .iter()
        .cloned()
        .chain(team_ids.iter().cloned())
        .collect();
    let finals = h.wait_all_final(&all, Duration::from_secs(600)).await?;
    let completed = team_ids
        .iter()
        .filter(|id| finals[*id]["status"] == "completed")
        .count();
    let duplicates = team_ids
        .iter()
        .filter(|id| {
            finals[*id]["status"] == "failed" && finals[*id]["error"]["code"] == "DUPLICATE_TEAM"
        })
        .count();
    report.equal("one team: registrations completed", completed, 1);
    report.equal(
        "one team: the rest accepted failed DUPLICATE_TEAM",
        duplicates,
        team_ids.len() - 1,
    );
    report.check(
        "one key: its registration completed",
        ids.iter().all(|id| finals[id]["status"] == "completed"),
        "",
    );
    report.equal(
        "team rows (one per team)",
        h.count("SELECT count(*) FROM teams").await?,
        2,
    );
    report.equal("emails sent (one per team)", h.smtp.messages().len(), 2);
    report.equal("assets (one per team)", h.cloudinary.assets().len(), 2);
    report.equal(
        "team numbers given out (none to a duplicate)",
        h.count("SELECT coalesce(max(last_value), 0) FROM team_id_counters")
            .await?,
        2,
    );
    // A duplicate's staged files go when it fails (it could never be re-driven into
    // anything else); the completed ones' go with completion.
    report.equal("files left in staging", h.staged_files(), 0);
    Ok(report.finish())
}
