//! The transactional outbox (docs/contract.md §16): a registration's
//! `registration.completed` event is written by the statement that saves it, so it exists
//! exactly when the save committed: one for a saved registration, none for a duplicate the
//! save refused (which gets its `registration.failed` instead). A failure for good is written
//! with its event in one transaction, or, when Postgres cannot take it, later and once. An
//! event's data names the team, never its people's phones or emails.

use std::time::Duration;

use intake_shared::domain::RegistrationId;
use intake_store::pg::outbox::{self, EventType};
use intake_testkit::form::TestForm;
use intake_testkit::stack::Stack;
use intake_worker::failure_events::FailureEvents;

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_saved_registration_has_one_event_and_a_refused_duplicate_none() {
    let mut stack = Stack::start().await;
    // The duplicate below gets through the door and is refused by the workers' claim.
    stack.spawn_worker_past_the_door(2).await;

    let id = stack.submit(&TestForm::valid()).await;
    assert_eq!(stack.wait_final(&id, FINISH).await["status"], "completed");
    let registration = RegistrationId::parse(&id).expect("registration id");
    let events = outbox::of_registration(&stack.pool, registration)
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event_type, EventType::RegistrationCompleted);
    assert_eq!(event.data["registration_id"], id.as_str());
    assert_eq!(event.data["team_id"], "ICCT-0001");
    assert_eq!(event.data["team_name"], "Rising Stars XI");
    assert_eq!(event.data["players"], 11);
    assert!(
        event.data["submitted_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
        "{}",
        event.data
    );
    let text = event.data.to_string();
    assert!(
        !text.contains("9876543210") && !text.contains('@'),
        "no phone or email in an event: {text}"
    );

    let again = stack
        .submit(&TestForm::valid().set("team_name", "RISING  stars xi"))
        .await;
    let status = stack.wait_final(&again, FINISH).await;
    assert_eq!(status["error"]["code"], "DUPLICATE_TEAM", "{status}");
    let refused = RegistrationId::parse(&again).expect("registration id");
    let events = outbox::of_registration(&stack.pool, refused)
        .await
        .expect("events");
    let kinds: Vec<EventType> = events.iter().map(|e| e.event_type).collect();
    assert_eq!(
        kinds,
        [EventType::RegistrationFailed],
        "a save that did not commit has no completed event; the failure has its own"
    );
    assert_eq!(events[0].data["code"], "DUPLICATE_TEAM");
    // With no endpoint, the workers hand both events on to nobody.
    let start = std::time::Instant::now();
    while !outbox::undispatched(&stack.pool, 10)
        .await
        .expect("events")
        .is_empty()
    {
        assert!(start.elapsed() < FINISH, "events not handed on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(stack.count("SELECT count(*) FROM outbox_events").await, 2);
    assert_eq!(
        stack.count("SELECT count(*) FROM webhook_deliveries").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_for_good_is_recorded_with_its_event() {
    let mut stack = Stack::start().await;
    stack
        .cloudinary
        .set_default(intake_testkit::cloudinary::Behaviour::Fail(400));
    stack.spawn_worker(2).await;
    let id = stack.submit(&TestForm::valid()).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["error"]["code"], "DOCUMENT_REJECTED", "{status}");
    let registration = RegistrationId::parse(&id).expect("registration id");
    let events = outbox::of_registration(&stack.pool, registration)
        .await
        .expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].event_type, EventType::RegistrationFailed);
    assert_eq!(events[0].data["code"], "DOCUMENT_REJECTED");
    assert_eq!(events[0].data["run"], 0);
    assert_eq!(events[0].data["team_name"], "Rising Stars XI");
    assert_eq!(
        stack
            .count("SELECT count(*) FROM registration_failures WHERE run = 0")
            .await,
        1
    );
}

/// Postgres is often why a registration failed: its record then waits in Redis and is
/// written, event and all, once Postgres answers; once only.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failure_postgres_could_not_take_is_written_later_once() {
    let mut stack = Stack::start().await;
    // A worker applies the migrations.
    stack.spawn_worker(1).await;
    let redis = intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url).expect("redis");
    let keys = stack.settings.keys();
    let down = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_millis(200))
        .connect_lazy("postgres://postgres@127.0.0.1:1/intake")
        .expect("a pool that cannot connect");
    let failure = outbox::Failure {
        registration_id: RegistrationId::new(),
        run: 2,
        code: "DATABASE_UNAVAILABLE".into(),
        team_name: "Late Event XI".into(),
        failed_at: time::OffsetDateTime::now_utc(),
    };
    FailureEvents::new(down, redis.clone(), &keys)
        .record(&failure)
        .await;
    assert!(
        outbox::of_registration(&stack.pool, failure.registration_id)
            .await
            .expect("events")
            .is_empty()
    );

    let events = FailureEvents::new(stack.pool.clone(), redis, &keys);
    assert_eq!(events.record_deferred().await.expect("deferred read"), 1);
    assert_eq!(
        events.record_deferred().await.expect("deferred read"),
        0,
        "written once"
    );
    let written = outbox::of_registration(&stack.pool, failure.registration_id)
        .await
        .expect("events");
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].event_type, EventType::RegistrationFailed);
    assert_eq!(written[0].data["run"], 2);
    assert_eq!(written[0].data["code"], "DATABASE_UNAVAILABLE");
    // Recording the same failure again (a deferred copy and a direct write racing) adds
    // nothing.
    assert!(
        !outbox::record_failure(&stack.pool, &failure)
            .await
            .expect("recorded")
    );
}
