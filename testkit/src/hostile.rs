//! Hostile requests for the fault suite's hostile scenario: a seeded generator of raw HTTP/1.1
//! requests that are each wrong in some way (a broken multipart body, lying files, odd
//! text, abusive headers, slow bodies), and a raw client that sends them byte for byte,
//! so that what no well-behaved client library would send still reaches the server.
//!
//! Every request is refused by design: none carries a form that could pass validation,
//! so the server must answer each with a 4xx problem+json and keep nothing.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use intake_shared::domain::{DocumentKind, DocumentType};
use intake_shared::validation::RawForm;

use crate::form::{jpeg, pdf, png};

pub use crate::Rng;

/// How a request goes on the wire.
#[derive(Debug, Clone, Copy)]
pub enum Delivery {
    /// All at once.
    Whole,
    /// The head at once, then the body a few bytes at a time with a pause between, for
    /// longer than the server's request timeout.
    SlowBody { pause: Duration, chunk: usize },
}

#[derive(Debug, Clone)]
pub struct HostileRequest {
    /// Which family of abuse this request belongs to, for the report.
    pub kind: &'static str,
    pub bytes: Vec<u8>,
    pub delivery: Delivery,
}

/// The largest accepted document (5 MiB): a file of exactly this size is allowed, one byte
/// more is `FILE_TOO_LARGE`.
pub const DOCUMENT_LIMIT: usize = DocumentType::MAX_BYTES as usize;

/// Every field of the form (text, then documents), and two that are not.
fn fields() -> Vec<&'static str> {
    let mut fields = RawForm::FIELDS.to_vec();
    fields.extend(DocumentKind::ALL.map(DocumentKind::field));
    fields.extend(["bogus", ""]);
    fields
}

fn odd_values() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![b'A'; 70_000],
        "\u{202E}evil".as_bytes().to_vec(),
        "e\u{301}e\u{301}e\u{301}".as_bytes().to_vec(),
        b"nul\x00byte".to_vec(),
        b"../../etc/passwd".to_vec(),
        b"\r\n\r\n".to_vec(),
        b"\xff\xfe\xfa invalid utf-8".to_vec(),
        b"9999999999".to_vec(),
        b"[{\"name\":\"Aaa\",\"role\":\"batsman\"}]".to_vec(),
        b"{not json".to_vec(),
        "\u{0627}\u{0644}\u{0639}\u{0631}\u{0628}\u{064A}\u{0629}"
            .as_bytes()
            .to_vec(),
        "Z\u{0351}\u{0360}\u{0353}a\u{0352}\u{035D}"
            .as_bytes()
            .to_vec(),
    ]
}

/// Contents whose magic lies or that sit on the size limits.
fn lying_files(rng: &mut Rng) -> Vec<u8> {
    match rng.below(11) {
        0 => [
            &b"\x89PNG\r\n\x1a\n"[..],
            b"<html><script>alert(1)</script>",
        ]
        .concat(),
        1 => [&b"\xFF\xD8\xFF"[..], b"<svg onload=alert(1)>"].concat(),
        2 => [&b"%PDF-"[..], b"<?php system($_GET['c']); ?>"].concat(),
        // A real PNG head with a zip archive behind it (a polyglot).
        3 => [png(64), b"PK\x03\x04\x14\0\0\0\x08\0".to_vec()].concat(),
        4 => Vec::new(),
        5 => png(DOCUMENT_LIMIT),
        6 => pdf(DOCUMENT_LIMIT + 1),
        7 => jpeg(DOCUMENT_LIMIT - 1),
        8 => b"GIF89a\x01\0\x01\0\x80\0\0".to_vec(),
        9 => b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xff\xff".to_vec(),
        _ => {
            let size = 1 + rng.below(4096);
            rng.bytes(size)
        }
    }
}

const FILENAMES: [&str; 8] = [
    "a.png",
    "../../x",
    "..\\..\\windows\\system32",
    "con\x01trol.pdf",
    "",
    "\u{202E}gnp.exe",
    "nul\0byte.png",
    "/etc/passwd",
];

fn part_head(name: &str, filename: Option<&str>, content_type: Option<&str>) -> Vec<u8> {
    let mut head = format!("Content-Disposition: form-data; name=\"{name}\"");
    if let Some(filename) = filename {
        head.push_str(&format!("; filename=\"{filename}\""));
    }
    head.push_str("\r\n");
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// A multipart body of random parts (missing, duplicate, unknown and odd fields, lying
/// files), sometimes truncated or without its closing boundary.
fn multipart_body(rng: &mut Rng, boundary: &str) -> (Vec<u8>, &'static str) {
    let values = odd_values();
    let fields = fields();
    let mut body = Vec::new();
    let mut kind = "multipart-fields";
    for _ in 0..rng.below(15) {
        let name = *rng.pick(&fields);
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let file = name.ends_with("receipt") || name.ends_with("letter") || rng.below(5) == 0;
        if file {
            let filename = *rng.pick(&FILENAMES);
            let declared = *rng.pick(&["image/png", "text/html", "application/pdf"]);
            body.extend(part_head(name, Some(filename), Some(declared)));
            body.extend(lying_files(rng));
            kind = "lying-files";
        } else {
            body.extend(part_head(name, None, None));
            let value: &Vec<u8> = rng.pick(&values);
            body.extend_from_slice(value);
        }
        body.extend_from_slice(b"\r\n");
    }
    match rng.below(10) {
        0 => {
            let cut = rng.below(body.len() + 1);
            body.truncate(cut);
            kind = "truncated-multipart";
        }
        1 => kind = "unterminated-multipart",
        2 => {
            body.extend_from_slice(b"--not-the-boundary--\r\n");
            kind = "mis-bounded-multipart";
        }
        _ => body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes()),
    }
    (body, kind)
}

/// The request head for a submission with these extra header lines.
fn head(content_type: &str, length: Option<usize>, extra: &[String]) -> Vec<u8> {
    let mut head = String::from("POST /v1/registrations HTTP/1.1\r\nHost: intake.test\r\n");
    head.push_str(&format!("Content-Type: {content_type}\r\n"));
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    for line in extra {
        head.push_str(line);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    head.into_bytes()
}

fn key(rng: &mut Rng) -> String {
    format!("Idempotency-Key: hostile-{:016x}", rng.next_u64())
}

/// One hostile request; `i` varies the family so that every family is well represented.
pub fn generate(rng: &mut Rng, i: usize) -> HostileRequest {
    let boundary = format!("B{}x{}", rng.below(1000), i % 7);
    let multipart = format!("multipart/form-data; boundary={boundary}");
    let whole = |kind, bytes| HostileRequest {
        kind,
        bytes,
        delivery: Delivery::Whole,
    };
    match i % 20 {
        // Header abuse.
        0 => {
            let size = *rng.pick(&[17 * 1024, 40 * 1024, 200 * 1024]);
            let extra = [key(rng), format!("X-Padding: {}", "a".repeat(size))];
            whole("oversized-header", head(&multipart, Some(0), &extra))
        }
        1 => {
            let mut extra = vec![key(rng)];
            extra.extend((0..100).map(|n| format!("X-Many-{n}: {n}")));
            whole("too-many-headers", head(&multipart, Some(0), &extra))
        }
        2 => {
            let bad = *rng.pick(&[
                "X-Evil: a\x01b",
                "X-Evil: a\x00b",
                "X-Evil: a\x7fb",
                "Bad Name: x",
                "X-Evil: line\rbreak",
                ": no name",
            ]);
            whole(
                "control-bytes-in-header",
                head(&multipart, Some(0), &[key(rng), bad.to_owned()]),
            )
        }
        3 => {
            let line = *rng.pick(&[
                "GET /\x01 HTTP/1.1",
                "P@ST /v1/registrations HTTP/1.1",
                "POST /v1/registrations HTTP/9.9",
                "POST  HTTP/1.1",
            ]);
            let bytes = format!("{line}\r\nHost: intake.test\r\nConnection: close\r\n\r\n");
            whole("malformed-request-line", bytes.into_bytes())
        }
        4 => {
            let size = *rng.pick(&[9 * 1024, 40 * 1024]);
            let path = format!("/v1/registrations/{}", "a".repeat(size));
            let bytes =
                format!("GET {path} HTTP/1.1\r\nHost: intake.test\r\nConnection: close\r\n\r\n");
            whole("oversized-uri", bytes.into_bytes())
        }
        5 => {
            let value = *rng.pick(&[
                "Idempotency-Key: \u{202E}rtl",
                "Idempotency-Key: has space",
                "Idempotency-Key: \u{00e9}t\u{00e9}",
            ]);
            let (body, _) = multipart_body(rng, &boundary);
            let mut bytes = head(&multipart, Some(body.len()), &[value.to_owned()]);
            bytes.extend(body);
            whole("bad-idempotency-key", bytes)
        }
        6 => {
            let declared = DOCUMENT_LIMIT * 4;
            whole(
                "declared-length-over-cap",
                head(&multipart, Some(declared), &[key(rng)]),
            )
        }
        7 => {
            let content_type = *rng.pick(&[
                "text/plain",
                "application/json",
                "multipart/form-data",
                "multipart/form-data; boundary=\"\"",
                "multipart/mixed; boundary=x",
                "application/x-www-form-urlencoded",
            ]);
            let body = b"team_name=x&captain_phone=1".to_vec();
            let mut bytes = head(content_type, Some(body.len()), &[key(rng)]);
            bytes.extend(body);
            whole("wrong-content-type", bytes)
        }
        8 => {
            // A chunked body whose chunk sizes lie.
            let mut bytes = head(
                &multipart,
                None,
                &[key(rng), "Transfer-Encoding: chunked".into()],
            );
            bytes.extend_from_slice(b"zz\r\nnot hex\r\n0\r\n\r\n");
            whole("bad-chunked-encoding", bytes)
        }
        9 if i % 200 == 9 => {
            // Rare because each takes longer than the request timeout.
            let (body, _) = multipart_body(rng, &boundary);
            let mut bytes = head(&multipart, Some(body.len() + 64), &[key(rng)]);
            bytes.extend(body);
            HostileRequest {
                kind: "slow-loris-body",
                bytes,
                delivery: Delivery::SlowBody {
                    pause: Duration::from_millis(250),
                    chunk: 8,
                },
            }
        }
        10 => {
            // A valid file in a form whose text is odd Unicode throughout.
            let text = *rng.pick(&[
                "\u{202E}Stars",
                "Te\u{0000}am",
                "A\u{0301}\u{0301}\u{0301}\u{0301}",
                "\u{FEFF}",
                "\u{1F3CF}\u{1F3CF}",
            ]);
            let mut body = Vec::new();
            for name in RawForm::FIELDS {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                body.extend(part_head(name, None, None));
                body.extend_from_slice(text.as_bytes());
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            body.extend(part_head(
                "payment_receipt",
                Some("r.png"),
                Some("image/png"),
            ));
            body.extend(png(1024));
            body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
            let mut bytes = head(&multipart, Some(body.len()), &[key(rng)]);
            bytes.extend(body);
            whole("odd-unicode", bytes)
        }
        _ => {
            let (body, kind) = multipart_body(rng, &boundary);
            let mut extra = vec![key(rng)];
            if rng.below(10) == 0 {
                extra.push(key(rng)); // a duplicated header
            }
            let mut bytes = head(&multipart, Some(body.len()), &extra);
            bytes.extend(body);
            whole(kind, bytes)
        }
    }
}

/// What came back for one request.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum RawError {
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the connection closed without an answer")]
    NoAnswer,
    #[error("the answer is not HTTP: {0}")]
    NotHttp(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `request` on a new connection and reads the answer, writing and reading at the
/// same time (a server may answer, and close, before the whole request is written).
pub async fn send(
    addr: SocketAddr,
    request: &HostileRequest,
    timeout: Duration,
) -> Result<RawAnswer, RawError> {
    tokio::time::timeout(timeout, exchange(addr, request))
        .await
        .map_err(|_| RawError::Timeout(timeout))?
}

async fn exchange(addr: SocketAddr, request: &HostileRequest) -> Result<RawAnswer, RawError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    let bytes = request.bytes.clone();
    let delivery = request.delivery;
    let writer = tokio::spawn(async move {
        match delivery {
            Delivery::Whole => {
                let _ = write.write_all(&bytes).await;
            }
            Delivery::SlowBody { pause, chunk } => {
                let head_end = bytes
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(bytes.len(), |p| p + 4);
                if write.write_all(&bytes[..head_end]).await.is_err() {
                    return;
                }
                for piece in bytes[head_end..].chunks(chunk.max(1)) {
                    tokio::time::sleep(pause).await;
                    if write.write_all(piece).await.is_err() {
                        return;
                    }
                }
            }
        }
        // Hold the write side open until the answer is read: a client that half-closes
        // gets its connection closed by the server (as hyper does by default), and the
        // slow body stays short of its declared length.
        std::future::pending::<()>().await;
        drop(write);
    });
    let mut received = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let answer = loop {
        if let Some(answer) = parse(&received)? {
            break Ok(answer);
        }
        match read.read(&mut buf).await {
            Ok(0) => break parse(&received)?.ok_or(RawError::NoAnswer),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(error) => break parse(&received)?.ok_or(RawError::Io(error)),
        }
    };
    writer.abort();
    answer
}

/// A complete answer in `received`, if there is one yet.
fn parse(received: &[u8]) -> Result<Option<RawAnswer>, RawError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(received) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(RawError::NotHttp(error.to_string())),
    };
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    if received.len() < head_len + length {
        return Ok(None);
    }
    Ok(Some(RawAnswer {
        status: response.code.unwrap_or(0),
        content_type: header("content-type"),
        body: received[head_len..head_len + length].to_vec(),
    }))
}

/// Whether an answer is what every hostile request must get: a 4xx with a problem+json
/// body that names a code and the request id. `Err` says what is wrong with it.
pub fn check(answer: &RawAnswer) -> Result<(), String> {
    if !(400..500).contains(&answer.status) {
        return Err(format!("status {}", answer.status));
    }
    if answer.content_type.as_deref() != Some("application/problem+json") {
        return Err(format!("content type {:?}", answer.content_type));
    }
    let problem: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|e| format!("body is not JSON: {e}"))?;
    if !problem["code"].is_string() || !problem["request_id"].is_string() {
        return Err(format!("problem without code or request id: {problem}"));
    }
    Ok(())
}

/// What a batch of hostile requests got back.
#[derive(Debug, Default)]
pub struct Outcome {
    /// How many requests of each family got each status.
    pub answers: std::collections::BTreeMap<(&'static str, u16), usize>,
    /// The requests whose answer was not a 4xx problem+json, and why.
    pub wrong: Vec<String>,
}

/// Sends `requests`, `concurrency` at a time, and sorts the answers by [`check`].
pub async fn send_all(
    addr: SocketAddr,
    requests: &[HostileRequest],
    concurrency: usize,
    timeout: Duration,
) -> Outcome {
    use futures::StreamExt;
    let answers: Vec<_> = futures::stream::iter(requests.iter().enumerate())
        .map(|(i, request)| async move { (i, request.kind, send(addr, request, timeout).await) })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut outcome = Outcome::default();
    for (i, kind, answer) in answers {
        match answer
            .map_err(|e| e.to_string())
            .and_then(|a| check(&a).map(|()| a))
        {
            Ok(answer) => *outcome.answers.entry((kind, answer.status)).or_default() += 1,
            Err(e) => outcome.wrong.push(format!("request {i} ({kind}): {e}")),
        }
    }
    outcome
}
