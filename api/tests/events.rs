//! `GET /v1/registrations/{id}/events`: status changes pushed as Server-Sent Events, and a
//! subscriber that comes back by itself when Redis drops its pub/sub connection (docs/contract.md §9).

mod support;

use std::time::Duration;

use futures::StreamExt;
use intake_shared::domain::TeamId;
use intake_shared::job::RegistrationJob;
use intake_shared::status::{EmailStatus, Step};
use intake_store::status::StatusRepository;
use intake_testkit::form::TestForm;
use intake_testkit::private_redis::PrivateRedis;
use serde_json::Value;
use support::{accepted, problem, spawn_app, spawn_app_with};

/// Reads `event: status` payloads from an SSE response as they arrive.
struct EventReader {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl EventReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next status event, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: status") {
                    let data: String = block
                        .lines()
                        .filter_map(|l| {
                            l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:"))
                        })
                        .collect();
                    return serde_json::from_str(&data).ok();
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event within 10 s")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
        }
    }
}

/// The store's status repository over the app's Redis, as the workers use it: every
/// change below is a real transition, published by the store.
fn repository(app: &support::TestApp) -> StatusRepository {
    let conn = intake_shared::redis_conn::connect_lazy(&app.settings.redis.url).expect("redis");
    StatusRepository::new(conn, app.settings.redis.keys(), Duration::from_secs(60))
}

/// The job the api queued (the only one).
fn queued_job(app: &support::TestApp) -> RegistrationJob {
    let payloads = app.queued_payloads();
    assert_eq!(payloads.len(), 1, "one queued job");
    serde_json::from_value(payloads[0].clone()).expect("a registration job")
}

async fn open(app: &support::TestApp, id: &str) -> EventReader {
    let response = app.get(&format!("/v1/registrations/{id}/events")).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream")),
        "{:?}",
        response.headers()
    );
    EventReader::new(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_status_transition_reaches_the_event_stream_which_ends_when_final() {
    let app = spawn_app().await;
    let id = accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let mut events = open(&app, &id).await;
    assert_eq!(
        events.next().await.expect("first event")["status"],
        "queued"
    );

    let status = repository(&app);
    let job = queued_job(&app);
    status
        .start(&job, 1, Step::ClaimingTeam)
        .await
        .expect("start");
    let processing = events.next().await.expect("processing");
    assert_eq!(processing["status"], "processing");
    assert_eq!(processing["step"], "claiming_team");
    status
        .step(&job, Step::UploadingFiles)
        .await
        .expect("uploading");
    let uploading = events.next().await.expect("uploading");
    assert_eq!(uploading["step"], "uploading_files");
    assert_eq!(uploading["team_id"], serde_json::Value::Null);
    status.step(&job, Step::Saving).await.expect("saving");
    assert_eq!(events.next().await.expect("saving")["step"], "saving");
    let team_id = TeamId::from_stored("ICCT-0042".to_owned());
    status.saved(&job, &team_id).await.expect("saved");
    let sending = events.next().await.expect("saved");
    assert_eq!(sending["team_id"], "ICCT-0042");
    assert_eq!(sending["step"], "sending_email");
    assert_eq!(sending["email_status"], "pending");
    status
        .complete(&job, &[], EmailStatus::Sent)
        .await
        .expect("complete");
    let completed = events.next().await.expect("completed");
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["email_status"], "sent");
    assert!(
        completed.get("run").is_none(),
        "clients never see the run: {completed}"
    );
    assert!(
        events.next().await.is_none(),
        "the stream ends after the final status"
    );
}

#[tokio::test]
async fn events_for_unknown_registrations_are_404() {
    let app = spawn_app().await;
    let response = app
        .get(&format!(
            "/v1/registrations/{}/events",
            uuid::Uuid::new_v4()
        ))
        .await;
    problem(response, 404, "NOT_FOUND").await;
    problem(
        app.get("/v1/registrations/nope/events").await,
        404,
        "NOT_FOUND",
    )
    .await;
}

fn pattern_subscriptions(url: &str) -> i64 {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut c| redis::cmd("PUBSUB").arg("NUMPAT").query(&mut c))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_resubscribes_after_redis_drops_its_connection() {
    let redis = PrivateRedis::start();
    let url = redis.url();
    let app = spawn_app_with(|s| s.redis.url = url.clone()).await;
    let id = accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let mut events = open(&app, &id).await;
    assert_eq!(
        events.next().await.expect("first event")["status"],
        "queued"
    );
    intake_testkit::eventually("pattern subscription", Duration::from_secs(10), || async {
        (pattern_subscriptions(&url) == 1).then_some(())
    })
    .await;

    // Redis drops every pub/sub connection (as a restart or a failover would).
    let killed: i64 = app.redis_command(redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"));
    assert_eq!(killed, 1);
    intake_testkit::eventually("resubscription", Duration::from_secs(10), || async {
        (pattern_subscriptions(&url) == 1).then_some(())
    })
    .await;

    repository(&app)
        .start(&queued_job(&app), 1, Step::Saving)
        .await
        .expect("start");
    let event = events.next().await.expect("event after resubscribing");
    assert_eq!(event["step"], "saving");
}
