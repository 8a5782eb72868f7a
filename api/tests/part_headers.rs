//! A multipart part's header block is at most 16 KiB (docs/contract.md §2): over it the api
//! answers `400 MALFORMED_REQUEST` as soon as the limit is passed, without reading the rest,
//! and keeps nothing: no staged file, no claimed `Idempotency-Key`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use intake_api::intake::part_headers::MAX_PART_HEADER_BYTES;
use intake_shared::domain::IdempotencyKey;
use support::form::{TestForm, png};
use support::{TestApp, accepted, problem, spawn_app, spawn_app_with};

const BOUNDARY: &str = "IntakeTestBoundary7MA4YWxk";
const MIB: usize = 1024 * 1024;

/// The first part: a real document, which is staged before the bad part arrives.
fn receipt_part() -> Vec<u8> {
    let mut part = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"payment_receipt\"; filename=\"r.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    part.extend(png(4096));
    part.extend_from_slice(b"\r\n");
    part
}

/// A part whose header line runs on for a mebibyte, then the rest of a body.
fn body_with_a_mebibyte_header_line() -> Vec<u8> {
    let mut body = receipt_part();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"team_name\"; x=\"")
            .as_bytes(),
    );
    body.resize(body.len() + MIB, b'a');
    body.extend_from_slice(format!("\"\r\n\r\nRising Stars\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// `body` in `chunk`-byte pieces with `pause` before each, counting the bytes handed to
/// the connection; after `stall_after` bytes (if given) it never sends another.
fn trickle(
    body: Vec<u8>,
    chunk: usize,
    pause: Duration,
    stall_after: Option<usize>,
    sent: Arc<AtomicUsize>,
) -> reqwest::Body {
    let pieces: Vec<Vec<u8>> = body.chunks(chunk).map(<[u8]>::to_vec).collect();
    let stream = futures::stream::iter(pieces).then(move |piece| {
        let sent = sent.clone();
        async move {
            if stall_after.is_some_and(|limit| sent.load(Ordering::SeqCst) >= limit) {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(pause).await;
            sent.fetch_add(piece.len(), Ordering::SeqCst);
            Ok::<_, std::io::Error>(piece)
        }
    });
    reqwest::Body::wrap_stream(stream)
}

async fn post(app: &TestApp, key: &str, length: usize, body: reqwest::Body) -> reqwest::Response {
    app.client
        .post(app.url("/v1/registrations"))
        .header("Idempotency-Key", key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", length)
        .body(body)
        .send()
        .await
        .expect("an answer")
}

fn assert_nothing_left(app: &TestApp, key: &str) {
    assert!(app.staged_files().is_empty(), "{:?}", app.staged_files());
    let key = IdempotencyKey::parse(key).expect("a valid key");
    let claimed: bool =
        app.redis_command(redis::cmd("EXISTS").arg(app.settings.redis.keys().idempotency(&key)));
    assert!(!claimed, "the Idempotency-Key was not claimed");
    assert!(app.redis_keys().is_empty(), "{:?}", app.redis_keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_mebibyte_part_header_is_400_malformed_request_and_leaves_nothing() {
    let app = spawn_app_with(|s| s.api.request_timeout = Duration::from_secs(60)).await;
    let body = body_with_a_mebibyte_header_line();
    let length = body.len();
    let sent = Arc::new(AtomicUsize::new(0));
    // 1 KiB every 5 ms: the whole body would take over five seconds to send.
    let trickled = trickle(body, 1024, Duration::from_millis(5), None, sent.clone());
    let response = post(&app, "trickled-header", length, trickled).await;
    let sent_when_answered = sent.load(Ordering::SeqCst);

    let problem = problem(response, 400, "MALFORMED_REQUEST").await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&MAX_PART_HEADER_BYTES.to_string())),
        "{problem}"
    );
    assert!(
        sent_when_answered < length / 2,
        "answered after {sent_when_answered} of {length} bytes: the header was buffered"
    );
    assert_nothing_left(&app, "trickled-header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_part_header_is_answered_without_the_rest_of_the_body() {
    // The client sends 64 KiB of the header line and then nothing: the answer cannot wait
    // for the rest (the request timeout is far beyond the test's patience).
    let app = spawn_app_with(|s| s.api.request_timeout = Duration::from_secs(120)).await;
    let body = body_with_a_mebibyte_header_line();
    let length = body.len();
    let sent = Arc::new(AtomicUsize::new(0));
    let stalled = trickle(
        body,
        4096,
        Duration::from_millis(1),
        Some(64 * 1024),
        sent.clone(),
    );
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        post(&app, "stalled-header", length, stalled),
    )
    .await
    .expect("answered before the body was complete");
    problem(response, 400, "MALFORMED_REQUEST").await;
    assert!(sent.load(Ordering::SeqCst) <= 64 * 1024 + 4096);
    assert_nothing_left(&app, "stalled-header");
}

/// A valid form in raw multipart, the receipt's header block padded (with an extra header
/// line) to exactly `block` bytes, counted from the end of its boundary through the blank
/// line that ends it.
fn valid_body_with_receipt_headers_of(block: usize) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, content) in TestForm::valid().contents() {
        body.extend_from_slice(format!("--{BOUNDARY}").as_bytes());
        if name == "payment_receipt" {
            let disposition =
                "Content-Disposition: form-data; name=\"payment_receipt\"; filename=\"r.png\"";
            let fixed = format!("\r\n{disposition}\r\nX-Padding: \r\n\r\n").len();
            let padding = "p".repeat(block - fixed);
            body.extend_from_slice(
                format!("\r\n{disposition}\r\nX-Padding: {padding}\r\n\r\n").as_bytes(),
            );
        } else {
            body.extend_from_slice(
                format!("\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            );
        }
        body.extend(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

#[tokio::test]
async fn a_part_header_of_exactly_16_kib_is_accepted_and_one_byte_more_is_not() {
    let app = spawn_app().await;
    let at_limit = valid_body_with_receipt_headers_of(MAX_PART_HEADER_BYTES);
    let length = at_limit.len();
    accepted(post(&app, "at-the-limit", length, at_limit.into()).await).await;

    let over = valid_body_with_receipt_headers_of(MAX_PART_HEADER_BYTES + 1);
    let length = over.len();
    let response = post(&app, "one-byte-over", length, over.into()).await;
    problem(response, 400, "MALFORMED_REQUEST").await;
    let key = IdempotencyKey::parse("one-byte-over").expect("a valid key");
    let claimed: bool =
        app.redis_command(redis::cmd("EXISTS").arg(app.settings.redis.keys().idempotency(&key)));
    assert!(!claimed, "the refused request claimed no key");
}
