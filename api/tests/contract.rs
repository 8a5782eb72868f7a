//! The OpenAPI document against the running api: schemathesis (from PyPI; `scripts/test`
//! installs it and names it in `INTAKE_TEST_SCHEMATHESIS`) generates requests from
//! `/openapi.json` and runs every check it has on the answers: no server errors, only
//! documented status codes, content types, headers and bodies (the event stream's events
//! too), schema-valid requests accepted and schema-invalid ones refused, missing headers and
//! unsupported methods refused. Its stateful phase follows the submission's OpenAPI links to
//! the status and event-stream operations with the ids the api hands out.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use intake_shared::domain::TeamId;
use intake_shared::errors::JobFailureCode;
use intake_shared::job::RegistrationJob;
use intake_shared::status::{EmailStatus, Step};
use intake_store::status::{AttemptError, StatusRepository};
use support::{TestApp, spawn_app};

/// Every check, every phase; fixed seed and a bounded number of cases, so a run is the same
/// run each time and takes well under two minutes.
const SCHEMATHESIS_ARGS: &[&str] = &[
    "--checks",
    "all",
    "--phases",
    "examples,coverage,fuzzing,stateful",
    "--max-examples",
    "40",
    "--seed",
    "20261122",
    // An event stream that never ended would otherwise hold the run forever (its keep-alive
    // comments, every 15 s, keep a read timeout from firing).
    "--request-timeout",
    "10",
    "--no-color",
];

/// What the schema says but a generator cannot draw from it, taught to schemathesis: it
/// loads this file as its hooks (`SCHEMATHESIS_HOOKS`). It edits only schema-valid cases,
/// and keeps them schema-valid:
///
/// - a document's content is judged by its first bytes; the parts' `encoding` names the
///   three media types, but schemathesis fills a `format: binary` field with any bytes, so
///   a file that is not a PNG, JPEG or PDF is swapped for a small real one;
/// - no player twice (JSON Schema has no "unique by a key, ignoring case"), so a repeated
///   name gets another last letter;
/// - one `Idempotency-Key` per filled-in form: a key sent again with other content is
///   `422` by contract, so a case that would re-use a key for other content gets a fresh
///   key of the same length.
///
/// schemathesis re-validates a case a hook edited, but cannot validate a body holding files
/// and would take the edited body for an invalid one; the hook marks its edits as the case's
/// own (`Case._sync_validated_hashes`, schemathesis 4). If a later schemathesis renames it,
/// this test fails with "Schema-violating request accepted" on the edited cases.
const HOOKS: &str = r####""""Teaches schemathesis what the OpenAPI document states but JSON Schema cannot make a
generator produce: documents whose content is of the declared media types, players that are
not named twice, and an Idempotency-Key per filled-in form. Only positive (schema-valid)
cases are touched, and only in ways that keep them schema-valid; schemathesis revalidates
every case a `before_call` hook edits."""
import base64
import hashlib
import json
import string

import schemathesis
from schemathesis.transport.serialization import Binary

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffd9")
PDF = b"%PDF-1.4\n1 0 obj\n<</Type/Catalog>>\nendobj\ntrailer\n<</Root 1 0 R>>\n%%EOF\n"
DOCUMENTS = (PNG, JPEG, PDF)
DOCUMENT_FIELDS = ("payment_receipt", "pastor_letter")


def is_document(data):
    """What the api's sniffing accepts (api/src/intake/form.rs `sniff`)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data[12:16] == b"IHDR"
    if data.startswith(b"\xff\xd8\xff"):
        return len(data) > 3 and 0xC0 <= data[3] != 0xFF
    if data.startswith(b"%PDF-"):
        v = data[5:8]
        return len(v) == 3 and v[0:1].isdigit() and v[1:2] == b"." and v[2:3].isdigit()
    return False


def comparison_key(name):
    return " ".join(name.split()).lower()


def distinct_players(raw):
    """The same JSON with any repeated name changed in its last letter until it is unique."""
    try:
        players = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(players, list):
        return raw
    seen = set()
    changed = False
    for player in players:
        if not isinstance(player, dict) or not isinstance(player.get("name"), str):
            continue
        name = player["name"]
        letters = iter(string.ascii_lowercase * 4)
        while comparison_key(name) in seen:
            name = name[:-1] + next(letters)
            changed = True
        seen.add(comparison_key(name))
        player["name"] = name
    return json.dumps(players, ensure_ascii=False, separators=(",", ":")) if changed else raw


# Keys already sent with a body, so a positive case never re-uses a key for other content
# (the api answers that `422`, as the contract says).
KEYS = {}
FRESH = iter(range(10**9))


def fresh_key(length):
    while True:
        key = f"k{next(FRESH)}-".ljust(length, "x")[:length] if length >= 4 else None
        if key is None:
            key = "".join(chr(0x21 + (next(FRESH) + i * 7) % 94) for i in range(length))
        if key not in KEYS:
            return key


def fingerprint(body):
    h = hashlib.sha256()
    for name in sorted(body):
        value = body[name]
        data = value.data if isinstance(value, Binary) else value
        h.update(name.encode() + b"=" + (data if isinstance(data, bytes) else repr(data).encode()))
    return h.hexdigest()


@schemathesis.hook
def before_call(context, case, kwargs):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return
    if case.operation.path != "/v1/registrations" or not isinstance(case.body, dict):
        return
    body = case.body
    edited = False
    for field in DOCUMENT_FIELDS:
        value = body.get(field)
        data = value.data if isinstance(value, Binary) else value
        if isinstance(data, bytes) and data and not is_document(data):
            body[field] = Binary(DOCUMENTS[hashlib.sha256(data).digest()[0] % len(DOCUMENTS)])
            edited = True
    if isinstance(body.get("players"), str):
        players = distinct_players(body["players"])
        edited = edited or players != body["players"]
        body["players"] = players
    if edited:
        # Every edit above keeps the body schema-valid. schemathesis would revalidate an edited
        # body, but it cannot validate one that holds files and would call it invalid; take the
        # edited body as the case's own instead.
        case._sync_validated_hashes()
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str):
        print_ = fingerprint(body)
        if KEYS.setdefault(key, print_) != print_:
            key = fresh_key(len(key))
            KEYS[key] = print_
            headers["Idempotency-Key"] = key
"####;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_contract() {
    let app = spawn_app().await;
    let schemathesis =
        std::env::var("INTAKE_TEST_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let url = app.url("/openapi.json");
    // schemathesis keeps a cache in its working directory; keep it out of the repository.
    let workdir = tempfile::tempdir().expect("working directory");
    let hooks = workdir.path().join("intake_hooks.py");
    std::fs::write(&hooks, HOOKS).expect("hooks file written");
    let finished = Arc::new(AtomicUsize::new(0));
    let worker = tokio::spawn(finish_registrations(&app, finished.clone()));

    let run = tokio::process::Command::new(&schemathesis)
        .current_dir(workdir.path())
        .args(["run", &url])
        .args(SCHEMATHESIS_ARGS)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("schemathesis finishes within 5 minutes")
        .unwrap_or_else(|e| panic!("{schemathesis} (scripts/test installs it) did not run: {e}"));
    worker.abort();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found contract failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");

    // The links worked: registrations were accepted, and both ways of following one were
    // reached with real ids.
    assert!(
        finished.load(Ordering::SeqCst) > 0,
        "no registration accepted:\n{report}"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for route in ["/v1/registrations/{id}", "/v1/registrations/{id}/events"] {
        let served = format!(r#"http_requests_total{{route="{route}",method="GET",status="200"}}"#);
        assert!(
            metrics.contains(&served),
            "GET {route} never answered 200:\n{report}"
        );
    }

    // A refused request leaves nothing staged; an accepted one leaves its documents, for the
    // worker, exactly those its queued job names.
    let named: BTreeSet<PathBuf> = app
        .queued_payloads()
        .iter()
        .flat_map(|job| job["documents"].as_array().cloned().unwrap_or_default())
        .map(|doc| {
            app.staging_dir()
                .join(doc["staged_path"].as_str().expect("staged_path"))
        })
        .collect();
    let staged: BTreeSet<PathBuf> = app.staged_files().into_iter().collect();
    assert_eq!(staged, named, "only queued jobs' documents are left staged");
}

/// Stands in for the worker, which the api's tests do not run: every registration the api
/// queues is run through the status transitions a worker makes (through the store's status
/// repository, which announces each), so the event streams the stateful phase opens end, as
/// they do after the final status, and the status operation answers a finished record too.
/// Every third one fails, so both shapes of a final record are checked against the schema.
fn finish_registrations(
    app: &TestApp,
    finished: Arc<AtomicUsize>,
) -> impl Future<Output = ()> + use<> {
    let queue = intake_shared::queue::config(&app.settings.redis.keys(), &app.settings.queue);
    let conn = intake_shared::redis_conn::connect_lazy(&app.settings.redis.url).expect("Redis URL");
    let status = StatusRepository::new(
        conn.clone(),
        app.settings.redis.keys(),
        Duration::from_secs(60),
    );
    async move {
        let mut seen = std::collections::HashSet::new();
        loop {
            let payloads: Vec<Vec<u8>> = redis::cmd("HVALS")
                .arg(queue.job_data_hash())
                .query_async(&mut conn.clone())
                .await
                .expect("the queue's job data");
            for payload in payloads {
                let Ok(job) = serde_json::from_slice::<RegistrationJob>(&payload) else {
                    continue;
                };
                if !seen.insert(job.registration_id) {
                    continue;
                }
                let n = finished.fetch_add(1, Ordering::SeqCst) + 1;
                status
                    .start(&job, 1, Step::ClaimingTeam)
                    .await
                    .expect("start");
                if n.is_multiple_of(3) {
                    let failure = AttemptError {
                        attempt: 1,
                        code: JobFailureCode::DuplicateTeam,
                        message: "this team is already registered".into(),
                        transient: false,
                        at: time::OffsetDateTime::now_utc(),
                    };
                    status.fail(&job, 1, &failure).await.expect("fail");
                } else {
                    let team_id = TeamId::format("ICCT", 4, n as u64);
                    status.saved(&job, &team_id).await.expect("saved");
                    status
                        .complete(&job, &[], EmailStatus::Sent)
                        .await
                        .expect("complete");
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

#[tokio::test]
async fn openapi_document_covers_every_public_endpoint() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/registrations",
        "/v1/registrations/{id}",
        "/v1/registrations/{id}/events",
        "/health/live",
        "/health/ready",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let submit = &doc["paths"]["/v1/registrations"]["post"];
    for status in ["202", "400", "409", "413", "415", "422", "429", "503"] {
        assert!(
            submit["responses"][status].is_object(),
            "{status} documented"
        );
    }
    assert!(submit["responses"]["400"]["content"]["application/problem+json"].is_object());
    assert!(submit["requestBody"]["content"]["multipart/form-data"].is_object());
    let key = &submit["parameters"][0];
    assert_eq!(key["name"], "Idempotency-Key");
    assert_eq!(key["schema"]["minLength"], 1);
    assert_eq!(key["schema"]["maxLength"], 255);
    assert_eq!(key["schema"]["pattern"], r"^[\x21-\x7E]+$");
    // The submission's answer leads to both ways of following the registration.
    let links = &submit["responses"]["202"]["links"];
    for (link, path) in [
        ("status", "/v1/registrations/{id}"),
        ("events", "/v1/registrations/{id}/events"),
    ] {
        assert_eq!(
            links[link]["operationId"], doc["paths"][path]["get"]["operationId"],
            "{link}"
        );
        assert_eq!(links[link]["parameters"]["id"], "$response.body#/id");
    }
}

#[tokio::test]
async fn form_and_docs_pages_are_served_from_the_binary() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/form.js", "text/javascript"),
        ("/form.css", "text/css"),
        ("/docs", "text/html"),
        ("/docs.js", "text/javascript"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("https://"),
            "{path} loads nothing from other origins"
        );
    }
}
