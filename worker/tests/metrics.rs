//! The worker's metrics fit for alerts (docs/contract.md §6): each email's outcome counted
//! once, by the run that decided it; and the queue-wide gauges reported by one worker
//! process at a time (0 from the others), so `sum()` and `max()` over workers are both right.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use intake_shared::job::{Purpose, RegistrationJob};
use intake_testkit::eventually;
use intake_testkit::form::TestForm;
use intake_testkit::smtp::SmtpBehaviour;
use intake_testkit::stack::Stack;
use intake_worker::queue_gauges::QueueGauges;

/// The value of one series in a Prometheus text answer, by its name and labels as rendered.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn email_outcomes(message: &str, outcome: &str) -> f64 {
    let text = intake_shared::telemetry::prometheus().render();
    let series =
        format!("intake_email_outcomes_total{{message=\"{message}\",outcome=\"{outcome}\"}}");
    sample(&text, &series).unwrap_or_else(|| panic!("{series} not exported:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_email_outcome_is_counted_once_by_the_run_that_decided_it() {
    let stack = Stack::start().await;
    let runtime = stack.runtime(1).await;
    intake_store::pg::migrate(&stack.pool)
        .await
        .expect("migrations");
    // Every series starts at 0, so an alert's rate is defined before the first email.
    for message in ["confirmation", "decision", "resend"] {
        for outcome in ["sent", "failed", "unknown", "suppressed"] {
            assert_eq!(email_outcomes(message, outcome), 0.0, "{message} {outcome}");
        }
    }
    stack.submit(&TestForm::valid()).await;
    let job = stack.queued_jobs().remove(0);
    let pipeline = runtime.pipeline();

    pipeline.run(&job, 1).await.expect("registration");
    assert_eq!(email_outcomes("confirmation", "sent"), 1.0);
    // The job again (its worker crashed after the email): the delivery is found sent, and
    // this run decided nothing.
    let _ = pipeline.run(&job, 2).await;
    assert_eq!(stack.smtp.messages().len(), 1);
    assert_eq!(email_outcomes("confirmation", "sent"), 1.0);

    let resend = |audit_id| {
        let mut resend: RegistrationJob = job.clone();
        resend.documents.clear();
        resend.purpose = Purpose::ResendEmail {
            actor: "alice".into(),
            reason: "captain lost it".into(),
            audit_id,
        };
        resend
    };
    pipeline.run(&resend(7), 1).await.expect("resend");
    pipeline
        .run(&resend(7), 2)
        .await
        .expect("the same resend again");
    assert_eq!(email_outcomes("resend", "sent"), 1.0);

    stack.smtp.set_behaviour(SmtpBehaviour::RejectPermanent);
    pipeline.run(&resend(8), 1).await.expect("a refused resend");
    assert_eq!(email_outcomes("resend", "failed"), 1.0);
    assert_eq!(email_outcomes("confirmation", "sent"), 1.0);
    assert_eq!(email_outcomes("confirmation", "failed"), 0.0);
}

/// The lease behind the queue-wide gauges: one holder at a time, renewed by it, free for
/// another once released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_lease_has_one_holder_at_a_time() {
    let stack = Stack::start().await;
    let redis =
        intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis url");
    let keys = stack.settings.keys();
    let queue = intake_shared::queue::worker_config(&keys, &stack.settings.queue);
    let gauges = |interval| QueueGauges::new(redis.clone(), &keys, queue.clone(), interval);
    let first = gauges(Duration::from_secs(10));
    let second = gauges(Duration::from_secs(10));
    assert!(first.hold().await.expect("redis"), "a free lease is taken");
    assert!(!second.hold().await.expect("redis"), "a held lease is not");
    assert!(first.hold().await.expect("redis"), "its holder renews it");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(keys.metrics_leader())
        .query_async(&mut redis.clone())
        .await
        .expect("redis");
    assert!(
        (20_000..=30_000).contains(&ttl),
        "three refreshes long: {ttl} ms"
    );
    second.release().await.expect("redis");
    assert!(
        !second.hold().await.expect("redis"),
        "only the holder frees it"
    );
    first.release().await.expect("redis");
    assert!(
        second.hold().await.expect("redis"),
        "a freed lease is taken"
    );
}

/// A real `intake-worker` process whose health and metrics address is known; killed when
/// dropped.
struct WorkerProcess {
    child: Child,
    metrics: String,
}

impl WorkerProcess {
    fn start(stack: &Stack) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_intake-worker"))
            .arg("--concurrency")
            .arg("2")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(stack.settings.worker_env())
            .env("INTAKE_WORKER_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("intake-worker starts");
        Self {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    /// Its `/metrics`, or `None` while it does not answer.
    async fn scrape(&self) -> Option<String> {
        let response = intake_testkit::http_client()
            .get(&self.metrics)
            .send()
            .await
            .ok()?;
        response.text().await.ok()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const QUEUE_GAUGES: [&str; 5] = [
    "intake_queue_depth",
    "intake_queue_oldest_waiting_seconds",
    "intake_queue_in_flight",
    "intake_workers_alive",
    "intake_failed_registrations",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_worker_process_at_a_time_reports_the_queue_wide_gauges() {
    let stack = Stack::start().await;
    let workers = [WorkerProcess::start(&stack), WorkerProcess::start(&stack)];

    // Both alive: one reports 2 workers, the other 0, for every queue-wide gauge.
    let (leader, follower) = eventually(
        "one worker reporting both workers alive, the other 0",
        Duration::from_secs(60),
        || async {
            let texts = [workers[0].scrape().await?, workers[1].scrape().await?];
            let alive = texts
                .iter()
                .map(|t| sample(t, "intake_workers_alive"))
                .collect::<Option<Vec<_>>>()?;
            match alive[..] {
                [2.0, 0.0] => Some((0, texts[1].clone())),
                [0.0, 2.0] => Some((1, texts[0].clone())),
                _ => None,
            }
        },
    )
    .await;
    for gauge in QUEUE_GAUGES {
        assert_eq!(sample(&follower, gauge), Some(0.0), "{gauge}:\n{follower}");
    }

    // The reporting one dies: within a few heartbeats the other reports, alone alive.
    let [first, second] = workers;
    let survivor = if leader == 0 {
        drop(first);
        second
    } else {
        drop(second);
        first
    };
    eventually(
        "the surviving worker to report itself alive",
        Duration::from_secs(30),
        || async {
            (sample(&survivor.scrape().await?, "intake_workers_alive")? == 1.0).then_some(())
        },
    )
    .await;
}
