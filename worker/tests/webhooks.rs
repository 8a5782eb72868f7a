//! Webhook delivery (docs/contract.md §16) against real receivers on loopback: every event
//! reaches every endpoint that takes its type, signed so that the Standard Webhooks
//! reference verifier accepts it; a receiver that fails half its calls still gets every
//! event, with the same `webhook-id` on each retry; a hanging receiver holds neither the
//! registrations nor another endpoint's deliveries; `410 Gone` disables its endpoint; a
//! delivery is failed when its retry window ends and delivered again on re-send; private
//! targets are refused unless allowed; workers killed mid-delivery lose nothing.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use intake_shared::webhooks::{DeliveryJob, SigningSecret};
use intake_store::pg::deliveries::{self, Delivery, Resend, State};
use intake_store::pg::webhooks::{self, Actor, NewEndpoint};
use intake_testkit::stack::{Stack, team};
use intake_testkit::webhook_receiver::{self, Behaviour, Receiver};

const FINISH: Duration = Duration::from_secs(60);

const ALL: [&str; 4] = [
    "registration.completed",
    "registration.failed",
    "team.approved",
    "team.rejected",
];

/// Waits for the worker's migrations (endpoints are made before the first registration).
async fn migrated(stack: &Stack) {
    let start = Instant::now();
    while stack
        .count("SELECT count(*) FROM information_schema.tables WHERE table_name = 'webhook_deliveries'")
        .await
        == 0
    {
        assert!(start.elapsed() < FINISH, "migrations did not run");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An endpoint at `url` taking `events`; its id and signing secret.
async fn endpoint(stack: &Stack, url: &str, events: &[&str]) -> (uuid::Uuid, String) {
    migrated(stack).await;
    let secret = SigningSecret::generate();
    let events: Vec<String> = events.iter().map(|e| (*e).to_owned()).collect();
    let created = webhooks::create(
        &stack.pool,
        &NewEndpoint {
            url,
            events: &events,
            description: "test receiver",
        },
        &secret,
        &Actor {
            name: "organiser",
            request_id: None,
        },
    )
    .await
    .expect("endpoint created");
    (created.id, secret.expose())
}

async fn delivery_log(stack: &Stack, endpoint: uuid::Uuid) -> Vec<Delivery> {
    deliveries::list(&stack.pool, endpoint, None, None, 200)
        .await
        .expect("delivery log")
}

/// Waits until `check` holds for the endpoint's delivery log.
async fn wait_log(
    stack: &Stack,
    endpoint: uuid::Uuid,
    what: &str,
    check: impl Fn(&[Delivery]) -> bool,
) -> Vec<Delivery> {
    let start = Instant::now();
    loop {
        let log = delivery_log(stack, endpoint).await;
        if check(&log) {
            return log;
        }
        assert!(start.elapsed() < FINISH, "{what}: {log:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether the reference verifier accepts every one of `calls` (and there are some).
fn all_verified(secret: &str, calls: &[webhook_receiver::Call]) -> bool {
    let verdicts = webhook_receiver::verify(secret, calls);
    !calls.is_empty() && verdicts.len() == calls.len() && verdicts.iter().all(|ok| *ok)
}

/// Submits `n` teams and waits until each is completed; their registration ids.
async fn register(stack: &Stack, from: usize, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in from..from + n {
        ids.push(stack.submit(&team(i)).await);
    }
    for id in &ids {
        assert_eq!(stack.wait_final(id, FINISH).await["status"], "completed");
    }
    ids
}

/// The value of one series this process exports (nextest runs each test in a process of
/// its own, so the counts are this test's).
fn metric(series: &str) -> Option<f64> {
    let text = intake_shared::telemetry::prometheus().render();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Waits until `series` reads `check` (the backlog gauges refresh every 5 s).
async fn wait_metric(series: &str, check: impl Fn(f64) -> bool) {
    let start = Instant::now();
    loop {
        if metric(series).is_some_and(&check) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{series} is {:?}",
            metric(series)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn event_ids(stack: &Stack) -> BTreeSet<String> {
    let rows: Vec<(uuid::Uuid,)> = sqlx::query_as("SELECT event_id FROM outbox_events")
        .fetch_all(&stack.pool)
        .await
        .expect("events");
    rows.into_iter().map(|(id,)| id.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_reach_the_endpoints_that_take_them_signed_for_the_reference_verifier() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(4).await;
    let everything = Receiver::start(Behaviour::Accept).await;
    let decisions = Receiver::start(Behaviour::Accept).await;
    let (all_id, all_secret) = endpoint(&stack, &everything.url(), &ALL).await;
    let (decisions_id, _) = endpoint(
        &stack,
        &decisions.url(),
        &["team.approved", "team.rejected"],
    )
    .await;

    let ids = register(&stack, 1, 3).await;
    everything.wait_delivered(3, FINISH).await;
    let calls = everything.calls();
    assert_eq!(calls.len(), 3, "one call per event, none repeated");
    assert!(
        all_verified(&all_secret, &calls),
        "the reference verifier accepts every call"
    );
    let wrong = SigningSecret::generate().expose();
    let verdicts = webhook_receiver::verify(&wrong, &calls);
    assert!(
        verdicts.len() == calls.len() && verdicts.iter().all(|ok| !ok),
        "and refuses them under another endpoint's secret"
    );
    assert_eq!(
        calls.iter().map(|c| c.id.clone()).collect::<BTreeSet<_>>(),
        event_ids(&stack).await,
        "webhook-id is the event's id"
    );
    for call in &calls {
        let body = call.json();
        assert_eq!(body["type"], "registration.completed", "{body}");
        assert!(
            ids.contains(
                &body["data"]["registration_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            )
        );
        assert!(
            body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{body}"
        );
        assert!(
            !call.body.contains('@'),
            "no email in a webhook: {}",
            call.body
        );
    }
    let delivered = wait_log(&stack, all_id, "three delivered", |log| {
        log.len() == 3 && log.iter().all(|d| d.state == State::Delivered)
    })
    .await;
    for delivery in &delivered {
        assert_eq!(delivery.attempts, 1);
        assert_eq!(delivery.last_status, Some(204));
        assert!(delivery.delivered_at.is_some() && delivery.next_attempt_at.is_none());
    }
    assert!(decisions.calls().is_empty(), "no decision, no call");
    assert!(delivery_log(&stack, decisions_id).await.is_empty());
    assert_eq!(
        stack
            .count("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_failing_half_its_calls_gets_every_event_with_one_id_across_retries() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(4).await;
    let flaky = Receiver::start(Behaviour::FailEveryOther).await;
    let (id, secret) = endpoint(&stack, &flaky.url(), &ALL).await;

    register(&stack, 1, 6).await;
    flaky.wait_delivered(6, FINISH).await;
    let events = event_ids(&stack).await;
    let delivered = flaky.delivered();
    assert_eq!(
        delivered.keys().cloned().collect::<BTreeSet<_>>(),
        events,
        "every event delivered"
    );
    let calls = flaky.calls();
    assert!(calls.len() > 6, "some were retried: {} calls", calls.len());
    // Each retry carries its event's id: every id called is an event's, and the bodies of
    // one id are the same bytes.
    for call in &calls {
        assert!(events.contains(&call.id), "{}", call.id);
        let first = calls.iter().find(|c| c.id == call.id).expect("itself");
        assert_eq!(first.body, call.body, "one event, one body");
    }
    assert!(all_verified(&secret, &calls));
    let log = wait_log(&stack, id, "all six delivered", |log| {
        log.len() == 6 && log.iter().all(|d| d.state == State::Delivered)
    })
    .await;
    let attempts: u32 = log.iter().map(|d| d.attempts).sum();
    assert_eq!(attempts as usize, calls.len(), "the log counts every call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_receiver_holds_neither_registrations_nor_other_endpoints() {
    let mut stack = Stack::start_with(|s| {
        s.webhooks.timeout = Duration::from_secs(1);
        s.webhooks.endpoint_concurrency = 2;
        s.webhooks.concurrency = 4;
    })
    .await;
    stack.spawn_worker(4).await;
    let hanging = Receiver::start(Behaviour::Hang).await;
    let healthy = Receiver::start(Behaviour::Accept).await;
    let (hanging_id, _) = endpoint(&stack, &hanging.url(), &ALL).await;
    let (healthy_id, _) = endpoint(&stack, &healthy.url(), &ALL).await;

    let started = Instant::now();
    register(&stack, 1, 8).await;
    let registered = started.elapsed();
    healthy.wait_delivered(8, Duration::from_secs(20)).await;
    assert!(
        registered < Duration::from_secs(30),
        "registrations took {registered:?}"
    );
    // The hanging endpoint never held more than its share of the delivery slots.
    assert!(
        hanging.most_in_flight() <= 2,
        "{} calls in flight at once",
        hanging.most_in_flight()
    );
    let log = wait_log(&stack, hanging_id, "timeouts recorded", |log| {
        log.len() == 8 && log.iter().any(|d| d.attempts > 0)
    })
    .await;
    assert!(log.iter().all(|d| d.state == State::Pending), "{log:#?}");
    let timed_out = log.iter().find(|d| d.attempts > 0).expect("an attempt");
    assert_eq!(timed_out.last_status, None);
    assert!(
        timed_out
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("no answer within 1000 ms")),
        "{timed_out:?}"
    );
    assert!(timed_out.next_attempt_at.is_some());
    wait_metric("intake_webhook_deliveries_pending", |v| v == 8.0).await;
    wait_metric("intake_webhook_oldest_undelivered_seconds", |v| v > 0.0).await;
    assert_eq!(
        metric(r#"intake_webhook_deliveries_total{outcome="delivered"}"#),
        Some(8.0)
    );
    assert!(
        metric(r#"intake_webhook_deliveries_total{outcome="retried"}"#).is_some_and(|v| v >= 1.0)
    );
    assert!(
        delivery_log(&stack, healthy_id)
            .await
            .iter()
            .all(|d| d.state == State::Delivered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gone_disables_the_endpoint_and_later_events_skip_it() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let gone = Receiver::start(Behaviour::Status(410)).await;
    let (id, _) = endpoint(&stack, &gone.url(), &ALL).await;

    register(&stack, 1, 1).await;
    let log = wait_log(&stack, id, "the delivery failed", |log| {
        log.len() == 1 && log[0].state == State::Failed
    })
    .await;
    assert_eq!(log[0].attempts, 1, "410 is not retried");
    assert_eq!(log[0].last_status, Some(410));
    let endpoint = webhooks::get(&stack.pool, id)
        .await
        .expect("read")
        .expect("still there");
    assert!(!endpoint.enabled);
    assert_eq!(
        endpoint.disabled_reason.as_deref(),
        Some("the endpoint answered 410 Gone")
    );
    assert_eq!(
        stack
            .count("SELECT count(*) FROM audit_log WHERE action = 'webhook_disable' AND actor = 'intake-worker'")
            .await,
        1
    );

    register(&stack, 2, 1).await;
    // Handed on (dispatched), but not to a disabled endpoint.
    let start = Instant::now();
    while stack
        .count("SELECT count(*) FROM outbox_events WHERE dispatched_at IS NULL")
        .await
        > 0
    {
        assert!(
            start.elapsed() < FINISH,
            "the second event was not handed on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivery_log(&stack, id).await.len(), 1);
    assert_eq!(gone.calls().len(), 1);
    assert_eq!(
        deliveries::resend(
            &stack.pool,
            id,
            log[0].id,
            &Actor {
                name: "organiser",
                request_id: None
            }
        )
        .await
        .map(|r| matches!(r, Resend::EndpointDisabled))
        .ok(),
        Some(true),
        "a disabled endpoint's delivery is not re-sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_end_with_the_window_and_a_resend_delivers_the_same_event() {
    let mut stack = Stack::start_with(|s| {
        // 1.8 s of retries, 200 ms apart at first.
        s.webhooks.retry_hours = 0.0005;
    })
    .await;
    stack.spawn_worker(2).await;
    let failing = Receiver::start(Behaviour::Status(503)).await;
    let (id, secret) = endpoint(&stack, &failing.url(), &ALL).await;

    register(&stack, 1, 1).await;
    let log = wait_log(&stack, id, "failed after its window", |log| {
        log.len() == 1 && log[0].state == State::Failed
    })
    .await;
    let failed = &log[0];
    assert!(failed.attempts >= 2, "{failed:?}");
    assert_eq!(failed.last_status, Some(503));
    assert!(
        failed
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("retries ended")),
        "{failed:?}"
    );
    let tried = failing.calls().len();
    assert_eq!(tried as u32, failed.attempts);

    failing.set(Behaviour::Accept);
    let Resend::Queued {
        delivery: pending,
        generation,
    } = deliveries::resend(
        &stack.pool,
        id,
        failed.id,
        &Actor {
            name: "organiser",
            request_id: None,
        },
    )
    .await
    .expect("resend")
    else {
        panic!("a failed delivery is re-sent");
    };
    assert_eq!(pending.state, State::Pending);
    let queue =
        intake_shared::queue::deliveries_config(&stack.settings.keys(), &stack.settings.queue);
    let redis = intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis");
    let job = DeliveryJob {
        delivery_id: pending.id,
        generation,
    };
    intake_shared::queue::push_delivery(&redis, &queue, &job, None)
        .await
        .expect("job pushed");
    failing.wait_delivered(1, FINISH).await;
    let calls = failing.calls();
    assert!(
        calls.iter().all(|c| c.id == failed.event_id.to_string()),
        "one event, one webhook-id, before and after the re-send"
    );
    assert!(all_verified(&secret, &calls));
    let log = wait_log(&stack, id, "delivered on re-send", |log| {
        log[0].state == State::Delivered
    })
    .await;
    assert_eq!(log[0].attempts, failed.attempts + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_targets_are_refused_unless_allowed() {
    let mut stack = Stack::start_with(|s| s.webhooks.allow_private = false).await;
    stack.spawn_worker(2).await;
    let receiver = Receiver::start(Behaviour::Accept).await;
    let (by_address, _) = endpoint(&stack, &receiver.url(), &ALL).await;
    let by_name = format!("http://localhost:{}/hook", receiver.port());
    let (by_name, _) = endpoint(&stack, &by_name, &ALL).await;

    register(&stack, 1, 1).await;
    for (id, why) in [
        (
            by_address,
            "127.0.0.1 is a private, loopback or link-local address",
        ),
        (by_name, "localhost resolves to"),
    ] {
        let log = wait_log(&stack, id, "refused", |log| {
            log.len() == 1 && log[0].state == State::Failed
        })
        .await;
        assert_eq!(log[0].attempts, 1, "a refused target is not retried");
        assert_eq!(log[0].last_status, None);
        let error = log[0].last_error.as_deref().unwrap_or_default();
        assert!(
            error.starts_with("refused: ") && error.contains(why),
            "{error}"
        );
    }
    assert!(receiver.calls().is_empty(), "nothing reached the receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_killed_mid_delivery_lose_no_event() {
    let stack = Stack::start_with(|s| {
        s.webhooks.timeout = Duration::from_secs(5);
        s.webhooks.endpoint_concurrency = 8;
    })
    .await;
    // The receiver answers after 1.5 s, so deliveries are in flight when the worker dies.
    let slow = Receiver::start(Behaviour::Slow(Duration::from_millis(1500))).await;
    let binary = env!("CARGO_BIN_EXE_intake-worker");
    let mut doomed = stack.worker_process(binary, 4);
    let (id, secret) = endpoint(&stack, &slow.url(), &ALL).await;
    // The registrations complete first (a kill mid-registration is crashes.rs' subject):
    // their events' deliveries are what the kill cuts.
    register(&stack, 1, 6).await;
    // Killed once calls are in flight (received, not yet answered).
    let start = Instant::now();
    while !slow.calls().iter().any(|c| c.answered.is_none()) {
        assert!(start.elapsed() < FINISH, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill().expect("SIGKILL");
    let _ = doomed.wait();
    let cut_short = slow.calls().iter().filter(|c| c.answered.is_none()).count();
    assert!(cut_short > 0);

    let mut successor = stack.worker_process(binary, 4);
    let events = event_ids(&stack).await;
    assert_eq!(events.len(), 6);
    slow.wait_delivered(6, Duration::from_secs(90)).await;
    successor.kill().expect("stopped");
    let _ = successor.wait();
    assert_eq!(
        slow.delivered().keys().cloned().collect::<BTreeSet<_>>(),
        events,
        "every event delivered at least once"
    );
    let calls = slow.calls();
    assert!(calls.iter().all(|c| events.contains(&c.id)));
    assert!(all_verified(&secret, &calls));
    // The calls the kill cut short were made again, under the same id.
    let cut: Vec<_> = calls.iter().filter(|c| c.answered.is_none()).collect();
    for call in cut {
        assert!(
            slow.delivered().contains_key(&call.id),
            "{} was cut short and never delivered",
            call.id
        );
    }
    assert!(
        delivery_log(&stack, id)
            .await
            .iter()
            .all(|d| d.state == State::Delivered)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delivery_failed_by_a_disabled_endpoint_is_resent_at_once_when_enabled_again() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let receiver = Receiver::start(Behaviour::Status(503)).await;
    let (id, secret) = endpoint(&stack, &receiver.url(), &ALL).await;
    let organiser = Actor {
        name: "organiser",
        request_id: None,
    };
    register(&stack, 1, 1).await;
    wait_log(&stack, id, "a first attempt", |log| {
        log.len() == 1 && log[0].attempts >= 1
    })
    .await;
    let off = webhooks::Change {
        enabled: Some(false),
        ..Default::default()
    };
    webhooks::update(&stack.pool, id, &off, &organiser)
        .await
        .expect("disabled");
    let failed = wait_log(&stack, id, "failed once disabled", |log| {
        log[0].state == State::Failed
    })
    .await;
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("the endpoint is disabled or deleted")
    );

    receiver.set(Behaviour::Accept);
    let on = webhooks::Change {
        enabled: Some(true),
        ..Default::default()
    };
    webhooks::update(&stack.pool, id, &on, &organiser)
        .await
        .expect("enabled");
    let Resend::Queued {
        delivery,
        generation,
    } = deliveries::resend(&stack.pool, id, failed[0].id, &organiser)
        .await
        .expect("resend")
    else {
        panic!("re-sent once enabled");
    };
    let queue =
        intake_shared::queue::deliveries_config(&stack.settings.keys(), &stack.settings.queue);
    let redis = intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis");
    let job = DeliveryJob {
        delivery_id: delivery.id,
        generation,
    };
    assert_eq!(
        intake_shared::queue::push_delivery(&redis, &queue, &job, None)
            .await
            .expect("pushed"),
        intake_shared::queue::Pushed::New,
        "a re-send is a job of its own, never mistaken for an earlier one"
    );
    // Well within the sweep's grace (120 s): the re-send's own job delivers it.
    receiver.wait_delivered(1, Duration::from_secs(10)).await;
    let log = wait_log(&stack, id, "delivered", |log| {
        log[0].state == State::Delivered
    })
    .await;
    assert!(log[0].attempts >= 2);
    assert!(all_verified(&secret, &receiver.calls()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pending_delivery_whose_job_was_lost_is_swept_into_a_new_one() {
    let mut stack = Stack::start_with(|s| s.webhooks.sweep_grace = Duration::from_secs(1)).await;
    stack.spawn_worker(2).await;
    let first = Receiver::start(Behaviour::Accept).await;
    endpoint(&stack, &first.url(), &ALL).await;
    register(&stack, 1, 1).await;
    first.wait_delivered(1, FINISH).await;

    // A second endpoint, and a pending delivery of the event to it that no job was ever
    // queued for (as when Redis lost the queue, or the push after the dispatch failed).
    let second = Receiver::start(Behaviour::Accept).await;
    let (id, secret) = endpoint(&stack, &second.url(), &ALL).await;
    sqlx::query(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, next_attempt_at, generation)
         SELECT $1, event_id, now() - interval '5 seconds', 7 FROM outbox_events",
    )
    .bind(id)
    .execute(&stack.pool)
    .await
    .expect("a delivery without a job");
    second.wait_delivered(1, Duration::from_secs(20)).await;
    let log = wait_log(&stack, id, "delivered by the sweep's job", |log| {
        log.len() == 1 && log[0].state == State::Delivered
    })
    .await;
    assert_eq!(log[0].attempts, 1);
    assert_eq!(second.calls().len(), 1, "one job, one call");
    assert!(all_verified(&secret, &second.calls()));
    assert_eq!(
        stack
            .count("SELECT count(*) FROM webhook_deliveries WHERE swept_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_that_runs_before_its_delivery_is_committed_runs_again() {
    // The sweep cannot be what delivers it here.
    let mut stack = Stack::start_with(|s| s.webhooks.sweep_grace = Duration::from_secs(600)).await;
    stack.spawn_worker(2).await;
    let first = Receiver::start(Behaviour::Accept).await;
    endpoint(&stack, &first.url(), &ALL).await;
    register(&stack, 1, 1).await;
    first.wait_delivered(1, FINISH).await;

    // A dispatch queues its jobs before it commits: the job of a delivery that is not
    // there yet runs, finds nothing, and must run again once it is.
    let later = Receiver::start(Behaviour::Accept).await;
    let (id, secret) = endpoint(&stack, &later.url(), &ALL).await;
    let delivery = uuid::Uuid::new_v4();
    let queue =
        intake_shared::queue::deliveries_config(&stack.settings.keys(), &stack.settings.queue);
    let redis = intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis");
    let job = DeliveryJob {
        delivery_id: delivery,
        generation: 0,
    };
    intake_shared::queue::push_delivery(&redis, &queue, &job, None)
        .await
        .expect("pushed");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(later.calls().is_empty());
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, endpoint_id, event_id)
         SELECT $1, $2, event_id FROM outbox_events",
    )
    .bind(delivery)
    .bind(id)
    .execute(&stack.pool)
    .await
    .expect("the delivery, committed late");
    later.wait_delivered(1, Duration::from_secs(15)).await;
    assert!(all_verified(&secret, &later.calls()));
    let log = wait_log(&stack, id, "delivered", |log| {
        log.len() == 1 && log[0].state == State::Delivered
    })
    .await;
    assert_eq!(log[0].attempts, 1);
}
