//! Issue 7's first scenario at CI size: registrations processed by three real worker
//! processes while one of them is SIGKILLed every two seconds and restarted. Every accepted
//! submission must complete, once: one team row and one team ID each, IDs distinct, one
//! asset per document, at most one email per registration, and nothing left staged.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use intake_testkit::stack::{Stack, team};

const REGISTRATIONS: usize = 60;
const WORKERS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn registrations_survive_workers_killed_every_two_seconds() {
    let stack = Stack::start_with(|s| s.job_max_attempts = 25).await;
    stack
        .cloudinary
        .set_default(intake_testkit::cloudinary::Behaviour::Slow(
            Duration::from_millis(800),
        ));
    let binary = env!("CARGO_BIN_EXE_intake-worker");
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("workers.log");
    let mut workers: Vec<_> = (0..WORKERS)
        .map(|_| stack.worker_process_logging(binary, 2, Some(&log)))
        .collect();

    let submissions = (0..REGISTRATIONS).map(|n| {
        let stack = &stack;
        async move { stack.submit(&team(n)).await }
    });
    let ids = futures::future::join_all(submissions).await;

    // Kill one worker every two seconds until everything is final (bounded).
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut victim = 0;
    let mut kills = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await; // the scenario's kill interval
        let mut finished = 0;
        for id in &ids {
            let status = stack.status(id).await;
            if matches!(status["status"].as_str(), Some("completed" | "failed")) {
                finished += 1;
            }
        }
        if finished == ids.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{finished}/{} finished before the deadline",
            ids.len()
        );
        let _ = workers[victim].kill();
        let _ = workers[victim].wait();
        workers[victim] = stack.worker_process_logging(binary, 2, Some(&log));
        kills += 1;
        victim = (victim + 1) % WORKERS;
    }
    assert!(
        kills >= 3,
        "the scenario killed workers mid-run ({kills} kills)"
    );
    for mut worker in workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }

    let mut team_ids = BTreeSet::new();
    for id in &ids {
        let status = stack.status(id).await;
        assert_eq!(status["status"], "completed", "{status}");
        team_ids.insert(status["team_id"].as_str().expect("team id").to_owned());
    }
    assert_eq!(team_ids.len(), REGISTRATIONS, "distinct team IDs");
    assert_eq!(
        stack.count("SELECT count(*) FROM teams").await,
        REGISTRATIONS as i64
    );
    assert_eq!(
        stack.count("SELECT count(*) FROM team_ids").await,
        REGISTRATIONS as i64,
        "no ID taken twice"
    );
    assert_eq!(
        stack.cloudinary.assets().len(),
        REGISTRATIONS,
        "one asset per document"
    );
    let mut emails: BTreeMap<String, usize> = BTreeMap::new();
    for mail in stack.smtp.messages() {
        let subject = mail
            .data
            .lines()
            .find(|l| l.starts_with("Subject:"))
            .unwrap_or_default()
            .to_owned();
        *emails.entry(subject).or_default() += 1;
    }
    assert_eq!(
        emails.len(),
        REGISTRATIONS,
        "every registration got its email"
    );
    let twice: Vec<_> = emails.iter().filter(|(_, n)| **n > 1).collect();
    // A worker killed between the server accepting a message and the delivery row being
    // written can send twice; count them so the figure is visible if it ever happens.
    assert!(twice.len() <= kills, "{twice:?}");
    assert_eq!(stack.staged_files(), 0);
    // Privacy: the workers' logs name registrations, never the people in them.
    let logged = std::fs::read_to_string(&log).expect("worker logs");
    assert!(
        logged.contains("registration completed"),
        "the logs were captured"
    );
    for n in 0..REGISTRATIONS {
        let phone = format!("98{n:08}");
        assert!(!logged.contains(&phone), "phone {phone} logged in clear");
    }
    for email in ["arjun@example.org", "ravi@example.org"] {
        assert!(!logged.contains(email), "{email} logged in clear");
    }
    eprintln!(
        "{REGISTRATIONS} registrations, {kills} workers killed, {} emails sent twice",
        twice.len()
    );
}
