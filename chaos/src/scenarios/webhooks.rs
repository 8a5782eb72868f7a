//! Scenario 8: webhooks delivered while registrations flow and workers are SIGKILLed every
//! two seconds (until 10 s after the registrations are final), and the receivers misbehave:
//! one fails every other call, one answers slowly, one hangs until the kills stop and then
//! recovers. Every completed registration's
//! event must reach every receiver (at least once, with the same `webhook-id` on every
//! call), signed so that the reference verifier accepts every call, and every delivery must
//! end delivered; the registrations themselves must all complete as in the crash scenario.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use intake_shared::webhooks::SigningSecret;
use intake_testkit::webhook_receiver::{self, Behaviour, Receiver};

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::invariants::{self, Email};
use crate::load::{self, Pace};
use crate::report::Report;

/// How long workers go on being killed once the registrations are final, while deliveries
/// are retried.
const KILLS_AFTER_REGISTRATIONS: Duration = Duration::from_secs(10);

struct Endpoint {
    name: &'static str,
    receiver: Receiver,
    secret: String,
}

async fn add_endpoint(
    h: &Harness,
    name: &'static str,
    behaviour: Behaviour,
) -> anyhow::Result<Endpoint> {
    let receiver = Receiver::start(behaviour).await;
    let secret = SigningSecret::generate().expose();
    sqlx::query(
        "INSERT INTO webhook_endpoints (url, events, description, secret)
         VALUES ($1, ARRAY['registration.completed'], $2, $3)",
    )
    .bind(receiver.url())
    .bind(name)
    .bind(&secret)
    .execute(&h.pool)
    .await?;
    Ok(Endpoint {
        name,
        receiver,
        secret,
    })
}

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    // How long the deliveries may take once the kills stop: the slow receiver alone takes
    // a minute for 400 events at two at a time.
    let (n, rate, drain) = match size {
        Size::Full => (400, 20.0, Duration::from_secs(600)),
        Size::Ci => (30, 15.0, Duration::from_secs(120)),
    };
    let workers = 3;
    let mut report = Report::new(
        "webhooks",
        format!(
            "{n} submissions, 3 endpoints (half failing, slow, hanging then recovering), {workers} workers, one SIGKILLed every 2 s"
        ),
    );
    let h = Harness::start(
        bins,
        Options {
            workers,
            concurrency: 4,
            worker_env: vec![
                ("INTAKE_WEBHOOK_ALLOW_PRIVATE", "true".into()),
                ("INTAKE_WEBHOOK_TIMEOUT_MS", "1000".into()),
                ("INTAKE_WEBHOOK_RETRY_BASE_MS", "200".into()),
                ("INTAKE_WEBHOOK_RETRY_MAX_DELAY_SECS", "2".into()),
                ("INTAKE_WEBHOOK_DISPATCH_INTERVAL_MS", "100".into()),
                ("INTAKE_WEBHOOK_ENDPOINT_CONCURRENCY", "2".into()),
                ("INTAKE_WEBHOOK_SWEEP_GRACE_SECS", "5".into()),
            ],
            ..Options::default()
        },
        logs,
    )
    .await?;
    // The harness waits for the first tables; the workers' migrations go on past them.
    h.wait_until(
        "every migration applied",
        Duration::from_secs(60),
        || async {
            sqlx::query("SELECT 1 FROM webhook_deliveries LIMIT 1")
                .fetch_optional(&h.pool)
                .await
                .is_ok()
        },
    )
    .await?;
    let endpoints = [
        add_endpoint(&h, "half-failing", Behaviour::FailEveryOther).await?,
        add_endpoint(&h, "slow", Behaviour::Slow(Duration::from_millis(300))).await?,
        add_endpoint(&h, "hanging, then recovering", Behaviour::Hang).await?,
    ];
    let started = Instant::now();
    let done = AtomicBool::new(false);
    let work = async {
        let pace = Pace {
            concurrency: 8,
            per_second: Some(rate),
            give_up: Duration::from_secs(60),
        };
        let load = load::submit(&h, 0..n, pace, started).await;
        let ids: Vec<String> = load.accepted.values().cloned().collect();
        let finals = h.wait_all_final(&ids, Duration::from_secs(600)).await;
        let registered = started.elapsed();
        // Deliveries are cut by the kills for a while longer; then the hanging receiver
        // recovers, the kills stop, and every delivery must end.
        tokio::time::sleep(KILLS_AFTER_REGISTRATIONS).await;
        endpoints[2].receiver.set(Behaviour::Accept);
        done.store(true, Ordering::SeqCst);
        let everywhere = h
            .wait_until("every delivery ends", drain, || async {
                h.count("SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")
                    .await
                    .is_ok_and(|left| left == 0)
                    && h.count("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
                        .await
                        .is_ok_and(|left| left == 0)
            })
            .await;
        (load, finals, registered, everywhere, started.elapsed())
    };
    let kills = h.kill_workers_every(Duration::from_secs(2), &done);
    let ((load, finals, registered, everywhere, delivered_after), kills) =
        tokio::join!(work, kills);
    let finals = finals?;
    report.figure(format!("{kills} workers SIGKILLed and restarted"));
    report.figure(format!(
        "registrations final after {:.1} s, every delivery ended after {:.1} s",
        registered.as_secs_f64(),
        delivered_after.as_secs_f64()
    ));
    report.check(
        "workers were killed mid-run",
        kills >= 3,
        format!("{kills} kills"),
    );
    report.equal("submissions accepted", load.accepted.len(), n);
    invariants::completed_exactly_once(&h, &mut report, &load.accepted, &finals, Email::AtMostOnce)
        .await?;

    let rows: Vec<(uuid::Uuid,)> =
        sqlx::query_as("SELECT event_id FROM outbox_events WHERE type = 'registration.completed'")
            .fetch_all(&h.pool)
            .await?;
    let events: BTreeSet<String> = rows.into_iter().map(|(id,)| id.to_string()).collect();
    report.equal(
        "one registration.completed event per registration",
        events.len(),
        n,
    );
    report.check(
        "every delivery ended delivered",
        everywhere.is_ok(),
        format!(
            "{} deliveries not delivered",
            h.count("SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")
                .await
                .unwrap_or(-1)
        ),
    );
    for endpoint in &endpoints {
        let calls = endpoint.receiver.calls();
        let delivered: BTreeSet<String> = endpoint.receiver.delivered().into_keys().collect();
        let missing = events.difference(&delivered).count();
        report.check(
            format!("the {} receiver got every event", endpoint.name),
            missing == 0 && delivered.is_subset(&events),
            format!(
                "{} of {} events answered 2xx, {} calls",
                delivered.len(),
                events.len(),
                calls.len()
            ),
        );
        let verified = webhook_receiver::verify(&endpoint.secret, &calls);
        report.check(
            format!(
                "the reference verifier accepts every call to the {} receiver",
                endpoint.name
            ),
            verified.len() == calls.len() && verified.iter().all(|ok| *ok),
            format!(
                "{} of {} calls verified",
                verified.iter().filter(|ok| **ok).count(),
                calls.len()
            ),
        );
        let repeated = endpoint
            .receiver
            .delivered()
            .values()
            .filter(|answered| answered.len() > 1)
            .count();
        report.figure(format!(
            "{}: {} calls for {} events, {} events answered 2xx more than once (a kill between answer and record), most in flight at once {}",
            endpoint.name,
            calls.len(),
            events.len(),
            repeated,
            endpoint.receiver.most_in_flight()
        ));
    }
    let hanging = &endpoints[2].receiver;
    report.check(
        "the hanging receiver held at most its endpoint's share of sends",
        hanging.most_in_flight() <= 2,
        format!(
            "{} in flight at once (INTAKE_WEBHOOK_ENDPOINT_CONCURRENCY=2 across the workers)",
            hanging.most_in_flight()
        ),
    );
    invariants::privacy(&h, &mut report, 0..n, &finals);
    Ok(report.finish())
}
