//! `GET /v1/registrations/{id}/events`: status changes pushed as Server-Sent Events, and a
//! subscriber that comes back by itself when Redis drops its pub/sub connection (docs/contract.md §9).

mod support;

use std::time::Duration;

use futures::StreamExt;
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

/// Publishes a status change the way a worker does: the record, then the announcement.
fn publish(app: &support::TestApp, id: &str, change: impl FnOnce(&mut Value)) {
    let key = format!("{}:status:{id}", app.settings.redis_prefix);
    let raw: String = app.redis_command(redis::cmd("GET").arg(&key));
    let mut record: Value = serde_json::from_str(&raw).expect("status JSON");
    change(&mut record);
    let json = record.to_string();
    let _: () = app.redis_command(redis::cmd("SET").arg(&key).arg(&json));
    let channel = format!("{}:status-events:{id}", app.settings.redis_prefix);
    let _: i64 = app.redis_command(redis::cmd("PUBLISH").arg(channel).arg(&json));
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
async fn events_carry_each_status_change_and_end_when_final() {
    let app = spawn_app().await;
    let id = accepted(app.submit_new(TestForm::valid().to_form()).await).await;
    let mut events = open(&app, &id).await;
    assert_eq!(
        events.next().await.expect("first event")["status"],
        "queued"
    );

    publish(&app, &id, |r| {
        r["status"] = "processing".into();
        r["step"] = "allocating_id".into();
    });
    let processing = events.next().await.expect("processing");
    assert_eq!(processing["step"], "allocating_id");
    publish(&app, &id, |r| {
        r["team_id"] = "ICCT-0042".into();
        r["step"] = "uploading_files".into();
    });
    assert_eq!(
        events.next().await.expect("team id")["team_id"],
        "ICCT-0042"
    );
    publish(&app, &id, |r| {
        r["status"] = "completed".into();
        r["step"] = Value::Null;
        r["email_status"] = "sent".into();
    });
    assert_eq!(
        events.next().await.expect("completed")["status"],
        "completed"
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
    let app = spawn_app_with(|s| s.redis_url = url.clone()).await;
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

    publish(&app, &id, |r| {
        r["status"] = "processing".into();
        r["step"] = "saving".into();
    });
    let event = events.next().await.expect("event after resubscribing");
    assert_eq!(event["step"], "saving");
}
