//! Event streams are bounded (docs/contract.md §4): a client holds at most
//! `INTAKE_EVENT_STREAMS_PER_CLIENT` open on one api process (one more is `429 RATE_LIMITED`
//! with `Retry-After`, and a slot frees when a stream closes), and a stream ends by itself
//! after `INTAKE_EVENT_STREAM_MAX_AGE_SECS` with a last `event: timeout`.

mod support;

use std::time::Duration;

use futures::StreamExt;
use intake_testkit::eventually;
use serde_json::Value;
use support::form::TestForm;
use support::{TestApp, accepted, problem, spawn_app, spawn_app_with};

/// One server-sent event: its name and its data.
#[derive(Debug)]
struct Sse {
    event: String,
    data: String,
}

/// Reads the events of a stream as they arrive, ignoring keep-alive comments.
struct Events {
    stream: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl Events {
    fn new(response: reqwest::Response) -> Self {
        Self {
            stream: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, or `None` once the server has ended the stream.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = None;
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(name) = line.strip_prefix("event:") {
                        event = Some(name.trim().to_owned());
                    } else if let Some(value) = line.strip_prefix("data:") {
                        data.push_str(value.strip_prefix(' ').unwrap_or(value));
                    }
                }
                match event {
                    Some(event) => return Some(Sse { event, data }),
                    None => continue,
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("an event or the end within 10 s")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("stream chunk")));
        }
    }
}

fn events_path(id: &str) -> String {
    format!("/v1/registrations/{id}/events")
}

async fn open_as(app: &TestApp, id: &str, forwarded_for: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(&events_path(id)));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("request sent")
}

/// A stream that must be granted: `200`, `text/event-stream`.
async fn open(app: &TestApp, id: &str) -> reqwest::Response {
    let response = open_as(app, id, None).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/event-stream"))
    );
    response
}

/// A refused stream: `429 RATE_LIMITED` problem+json with a `Retry-After` in seconds.
async fn refused(response: reqwest::Response) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(
        retry_after.is_some_and(|s| s >= 1),
        "{:?}",
        response.headers()
    );
    problem(response, 429, "RATE_LIMITED").await;
}

async fn registration(app: &TestApp) -> String {
    accepted(app.submit_new(TestForm::valid().to_form()).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holds_four_streams_the_fifth_is_429_and_a_closed_one_frees_a_slot() {
    let app = spawn_app().await;
    assert_eq!(app.settings.api.event_streams_per_client, 4, "the default");
    let id = registration(&app).await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        streams.push(open(&app, &id).await);
    }
    refused(open_as(&app, &id, None).await).await;

    // The client closes one stream (its connection with it): a new one is accepted.
    drop(streams.pop());
    let again = eventually(
        "a slot freed by the closed stream",
        Duration::from_secs(40),
        || {
            let app = &app;
            let id = &id;
            async move {
                let response = open_as(app, id, None).await;
                (response.status() == 200).then_some(response)
            }
        },
    )
    .await;
    let mut first = Events::new(again);
    let event = first.next().await.expect("the first event");
    assert_eq!(event.event, "status");
    // And the cap holds again.
    refused(open_as(&app, &id, None).await).await;
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_counted_per_client_as_the_rate_limit_tells_clients_apart() {
    let app = spawn_app_with(|s| {
        s.api.event_streams_per_client = 1;
        s.api.trusted_proxy_header = Some("x-forwarded-for".into());
    })
    .await;
    let id = registration(&app).await;
    let a = open_as(&app, &id, Some("203.0.113.7")).await;
    assert_eq!(a.status(), 200);
    refused(open_as(&app, &id, Some("198.51.100.1, 203.0.113.7")).await).await;
    let b = open_as(&app, &id, Some("203.0.113.8")).await;
    assert_eq!(b.status(), 200, "another client has its own slots");
    // IPv6 clients share their /64, as for the rate limit.
    let v6 = open_as(&app, &id, Some("2001:db8:1:2::1")).await;
    assert_eq!(v6.status(), 200);
    refused(open_as(&app, &id, Some("2001:db8:1:2::ffff")).await).await;
    drop((a, b, v6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_ends_on_its_own_at_its_max_age_with_a_timeout_event() {
    let app = spawn_app_with(|s| {
        s.api.event_stream_max_age = Duration::from_secs(1);
        s.api.event_streams_per_client = 1;
    })
    .await;
    let id = registration(&app).await;
    let mut events = Events::new(open(&app, &id).await);
    let first = events.next().await.expect("the first event");
    assert_eq!(first.event, "status");
    let record: Value = serde_json::from_str(&first.data).expect("a status record");
    assert_eq!(record["status"], "queued");

    // The registration stays queued (no worker runs here): only the age ends the stream.
    let last = events.next().await.expect("the timeout event");
    assert_eq!(last.event, "timeout");
    assert_eq!(last.data, first.data, "the last record sent, again");
    assert!(events.next().await.is_none(), "the server ended the stream");

    // Its slot is free again: the client's one stream may be opened anew.
    let again = eventually("the ended stream's slot", Duration::from_secs(10), || {
        let app = &app;
        let id = &id;
        async move {
            let response = open_as(app, id, None).await;
            (response.status() == 200).then_some(response)
        }
    })
    .await;
    drop(again);
}

#[tokio::test]
async fn the_openapi_document_tells_of_the_cap_and_the_timeout_event() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/openapi.json")
        .await
        .json()
        .await
        .expect("the document");
    let refused = &doc["paths"]["/v1/registrations/{id}/events"]["get"]["responses"]["429"];
    assert!(
        refused["content"]["application/problem+json"].is_object(),
        "{refused}"
    );
    assert!(refused["headers"]["Retry-After"].is_object(), "{refused}");
    let names = &doc["components"]["schemas"]["StatusEvent"]["properties"]["event"]["enum"];
    assert!(
        names
            .as_array()
            .is_some_and(|n| n.contains(&Value::from("timeout"))),
        "{names}"
    );
}
