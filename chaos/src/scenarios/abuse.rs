//! Scenario 5, second part: the public form under abuse, as an attacker who read the code
//! would try it, against the real api, a real worker, Redis and Postgres. A duplicate flood
//! (one team registered, then sent again and again with new keys from many addresses),
//! forged proxy headers and rotation through one IPv6 /64 against the rate limit, trickled
//! oversized part headers, and an event-stream flood. Each must be refused as the contract
//! says, leave nothing behind, and cost the api no unbounded memory.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use intake_testkit::form::TestForm;
use serde_json::Value;

use crate::Size;
use crate::harness::{Binaries, Harness, Options, PREFIX, registration};
use crate::report::Report;

/// Submissions per client and minute in this part of the run.
const PER_MINUTE: usize = 10;
/// Event streams one client may hold (the default).
const STREAMS: usize = 4;

pub async fn run(
    bins: Binaries,
    size: Size,
    logs: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    let (flood, trickled) = match size {
        Size::Full => (2_000, 32),
        Size::Ci => (200, 16),
    };
    let h = Harness::start(
        bins,
        Options {
            workers: 1,
            concurrency: 4,
            request_timeout_secs: 20,
            api_env: vec![
                ("INTAKE_TRUSTED_PROXY_HEADER", "x-forwarded-for".into()),
                ("INTAKE_RATE_LIMIT_PER_MINUTE", PER_MINUTE.to_string()),
                ("INTAKE_RATE_LIMIT_PER_HOUR", "0".into()),
                ("INTAKE_EVENT_STREAMS_PER_CLIENT", STREAMS.to_string()),
            ],
            ..Options::default()
        },
        logs,
    )
    .await?;

    duplicate_flood(&h, flood, report).await?;
    forged_addresses(&h, report).await?;
    trickled_part_headers(&h, trickled, report).await?;
    event_stream_flood(&h, report).await?;

    let api_log = std::fs::read_to_string(h.logs_dir().join("api.log")).unwrap_or_default();
    report.equal(
        "abuse: panics or errors in the api's log",
        api_log
            .lines()
            .filter(|l| l.contains("panicked") || l.contains("\"level\":\"ERROR\""))
            .count(),
        0,
    );
    Ok(())
}

/// Sends `form` with a new key as the client the proxy saw at `address`.
async fn submit_as(h: &Harness, form: &TestForm, address: &str) -> anyhow::Result<(u16, Value)> {
    let response = h
        .client
        .post(h.url("/v1/registrations"))
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .header("x-forwarded-for", address)
        .multipart(form.to_form())
        .send()
        .await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// One team registered, then the same team (name in other capitals) over and over with new
/// keys and from `n` addresses: every one `409 DUPLICATE_TEAM`, nothing staged, no failed
/// record (with its personal data) left in Redis.
async fn duplicate_flood(h: &Harness, n: usize, report: &mut Report) -> anyhow::Result<()> {
    let (status, body) = submit_as(h, &registration(1), "192.0.2.1").await?;
    anyhow::ensure!(status == 202, "the first registration was refused: {body}");
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    h.wait_until(
        "the first registration completes",
        Duration::from_secs(60),
        || async {
            h.status(&id)
                .await
                .is_ok_and(|s| s["status"] == "completed")
        },
    )
    .await?;
    let again = registration(1).set("team_name", "CHAOS   team 00001");
    let answers: Vec<(u16, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let again = &again;
            async move {
                let address = format!("10.{}.{}.{}", i / 65_536, (i / 256) % 256, i % 256);
                match submit_as(h, again, &address).await {
                    Ok((status, body)) => (status, body["code"].as_str().unwrap_or("").to_owned()),
                    Err(err) => (0, err.to_string()),
                }
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut tally: BTreeMap<(u16, String), usize> = BTreeMap::new();
    for answer in answers {
        *tally.entry(answer).or_default() += 1;
    }
    report.figure(format!("duplicate flood of {n}: {tally:?}"));
    report.equal(
        "duplicate flood: every copy refused 409 DUPLICATE_TEAM",
        tally.get(&(409, "DUPLICATE_TEAM".to_owned())).copied(),
        Some(n),
    );
    report.equal("duplicate flood: files in staging", h.staged_files(), 0);
    let failed: Vec<String> = h
        .redis_keys()
        .into_iter()
        .filter(|k| {
            k == &format!("{PREFIX}:failed")
                || k.starts_with(&format!("{PREFIX}:failed-job:"))
                || k.starts_with(&format!("{PREFIX}:attempts:"))
        })
        .collect();
    report.equal(
        "duplicate flood: failed records in Redis",
        failed,
        Vec::<String>::new(),
    );
    report.equal(
        "duplicate flood: status records in Redis",
        h.redis_keys()
            .iter()
            .filter(|k| k.starts_with(&format!("{PREFIX}:status:")))
            .count(),
        1,
    );
    report.equal(
        "duplicate flood: teams saved",
        h.count("SELECT count(*) FROM teams").await?,
        1,
    );
    Ok(())
}

/// How many of the submissions (one per header set, in order) got past the rate limit, and
/// how many got no answer at all (a connection lost: neither past nor refused, as far as
/// the client can tell).
async fn admitted(h: &Harness, headers: Vec<Vec<String>>) -> (usize, usize) {
    // An invalid form: the limit counts every submission, and nothing is queued.
    let form = TestForm::valid_for_team("x");
    let (mut passed, mut lost) = (0, 0);
    for lines in headers {
        let mut request = h
            .client
            .post(h.url("/v1/registrations"))
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .multipart(form.to_form());
        for line in lines {
            request = request.header("x-forwarded-for", line);
        }
        match request.send().await {
            Ok(answer) if answer.status().as_u16() != 429 => passed += 1,
            Ok(_) => {}
            Err(_) => lost += 1,
        }
    }
    (passed, lost)
}

/// The rate limit holds against a client that forges the proxy header's first entries (in
/// one line, or in a line of its own before the proxy's) and against one that rotates
/// through the addresses of its IPv6 /64.
async fn forged_addresses(h: &Harness, report: &mut Report) -> anyhow::Result<()> {
    let tries = 3 * PER_MINUTE;
    let one_line = (0..tries)
        .map(|i| vec![format!("10.99.{i}.1, 198.51.100.21")])
        .collect();
    let two_lines = (0..tries)
        .map(|i| vec![format!("10.98.{i}.1"), "198.51.100.22".to_owned()])
        .collect();
    let rotation = (0..tries)
        .map(|i| vec![format!("2001:db8:42:7::{:x}", i + 1)])
        .collect();
    for (family, headers) in [
        ("forged first entry", one_line),
        ("forged header line", two_lines),
        ("IPv6 /64 rotation", rotation),
    ] {
        let (passed, lost) = admitted(h, headers).await;
        report.check(
            format!("rate limit, {family}: of {tries}, at most {PER_MINUTE} past the limit"),
            passed <= PER_MINUTE && passed + lost >= PER_MINUTE,
            format!("{passed} past, {lost} without an answer"),
        );
    }
    let (neighbour, lost) = admitted(h, vec![vec!["2001:db8:42:8::1".to_owned()]]).await;
    report.check(
        "rate limit: the next /64 has its own limit",
        neighbour + lost == 1 && neighbour == 1,
        format!("{neighbour} past, {lost} without an answer"),
    );
    Ok(())
}

const BOUNDARY: &str = "ChaosBoundary0123456789";

/// `n` bodies at once, each a part whose header line runs on for 4 MiB, sent 1 KiB every 5
/// ms: each answered `400 MALFORMED_REQUEST` after its first 16 KiB of header, the rest
/// never read; the api's peak memory barely moves.
async fn trickled_part_headers(h: &Harness, n: usize, report: &mut Report) -> anyhow::Result<()> {
    const HEADER: usize = 4 * 1024 * 1024;
    let before = h.api_memory_kib();
    let sent = Arc::new(AtomicUsize::new(0));
    let answers: Vec<(u16, String)> = futures::stream::iter(0..n)
        .map(|i| {
            let sent = sent.clone();
            async move {
                let mut body = format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"team_name\"; x=\""
                )
                .into_bytes();
                body.resize(body.len() + HEADER, b'a');
                body.extend_from_slice(format!("\"\r\n\r\nx\r\n--{BOUNDARY}--\r\n").as_bytes());
                let length = body.len();
                let pieces: Vec<Vec<u8>> = body.chunks(1024).map(<[u8]>::to_vec).collect();
                let stream = futures::stream::iter(pieces).then(move |piece| {
                    let sent = sent.clone();
                    async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        sent.fetch_add(piece.len(), Ordering::Relaxed);
                        Ok::<_, std::io::Error>(piece)
                    }
                });
                let response = h
                    .client
                    .post(h.url("/v1/registrations"))
                    .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
                    .header("x-forwarded-for", format!("172.16.0.{}", i + 1))
                    .header(
                        "content-type",
                        format!("multipart/form-data; boundary={BOUNDARY}"),
                    )
                    .header("content-length", length)
                    .body(reqwest::Body::wrap_stream(stream))
                    .send()
                    .await;
                match response {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        (status, body["code"].as_str().unwrap_or("").to_owned())
                    }
                    Err(err) => (0, err.to_string()),
                }
            }
        })
        .buffer_unordered(n)
        .collect()
        .await;
    let after = h.api_memory_kib();
    let refused = answers
        .iter()
        .filter(|(status, code)| *status == 400 && code == "MALFORMED_REQUEST")
        .count();
    report.equal(
        format!("trickled part headers: of {n}, answered 400 MALFORMED_REQUEST"),
        refused,
        n,
    );
    let sent = sent.load(Ordering::Relaxed);
    report.figure(format!(
        "trickled part headers: {n} × 4 MiB offered, {} KiB sent before the answers; api memory (RSS, peak) before {before:?} KiB, after {after:?} KiB",
        sent / 1024
    ));
    report.check(
        "trickled part headers: the clients sent a small part of what they offered",
        sent < n * HEADER / 8,
        format!("{sent} of {} bytes", n * HEADER),
    );
    if let (Some((_, peak_before)), Some((_, peak_after))) = (before, after) {
        // Buffered, the headers alone would add n × 4 MiB.
        report.check(
            "trickled part headers: the api's peak memory grew by less than 16 MiB",
            peak_after.saturating_sub(peak_before) < 16 * 1024,
            format!("{peak_before} KiB → {peak_after} KiB"),
        );
    }
    report.equal(
        "trickled part headers: files in staging",
        h.staged_files(),
        0,
    );
    Ok(())
}

/// One client opens streams on a registration still queued (the worker is stopped): the
/// first four are served, every further one `429`.
async fn event_stream_flood(h: &Harness, report: &mut Report) -> anyhow::Result<()> {
    h.kill_workers();
    let (status, body) = submit_as(h, &registration(2), "192.0.2.2").await?;
    anyhow::ensure!(status == 202, "the queued registration was refused: {body}");
    let id = body["id"].as_str().unwrap_or_default().to_owned();
    let tries = 3 * STREAMS;
    let mut open = Vec::new();
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for _ in 0..tries {
        let response = h
            .client
            .get(h.url(&format!("/v1/registrations/{id}/events")))
            .header("x-forwarded-for", "203.0.113.99")
            .send()
            .await?;
        *statuses.entry(response.status().as_u16()).or_default() += 1;
        if response.status() == 200 {
            open.push(response);
        }
    }
    report.figure(format!("event-stream flood of {tries}: {statuses:?}"));
    report.equal(
        format!("event-stream flood: streams served of {tries}"),
        statuses.get(&200).copied(),
        Some(STREAMS),
    );
    report.equal(
        "event-stream flood: refused 429",
        statuses.get(&429).copied(),
        Some(tries - STREAMS),
    );
    drop(open);
    Ok(())
}
