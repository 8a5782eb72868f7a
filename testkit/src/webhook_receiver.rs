//! A webhook receiver on loopback for tests: a real HTTP server that records every call it
//! gets (the three Standard Webhooks headers and the raw body) and answers the way it is
//! told: always 204, 500 on every other call, never (it hangs), or a fixed status such as
//! `410`. [`verify`] hands what it recorded to the specification's reference verifier.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 204 to every call.
    Accept,
    /// 500 to the first call, 204 to the second, and so on.
    FailEveryOther,
    /// Never answers (the sender's timeout ends the call).
    Hang,
    /// This status to every call (`410` disables the endpoint).
    Status(u16),
    /// 204, after this long.
    Slow(Duration),
}

/// One call as received.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// When it arrived (Unix seconds): the reference verifier judges the timestamp's
    /// freshness as of then, as the receiver would have.
    pub received_at: f64,
    /// What it was answered (none for a call left hanging).
    pub answered: Option<u16>,
}

impl Call {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

struct Inner {
    behaviour: Mutex<Behaviour>,
    calls: Mutex<Vec<Call>>,
    count: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
}

pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start(behaviour: Behaviour) -> Self {
        let inner = Arc::new(Inner {
            behaviour: Mutex::new(behaviour),
            calls: Mutex::new(Vec::new()),
            count: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            most_in_flight: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("receiver listens");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, inner, task }
    }

    /// The endpoint URL to register.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set(&self, behaviour: Behaviour) {
        *lock(&self.inner.behaviour) = behaviour;
    }

    /// Every call so far (answered or not), in the order they came.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.inner.calls).clone()
    }

    /// The calls answered 2xx, by `webhook-id`.
    pub fn delivered(&self) -> BTreeMap<String, Vec<Call>> {
        let mut by_id: BTreeMap<String, Vec<Call>> = BTreeMap::new();
        for call in self.calls() {
            if call.answered.is_some_and(|s| (200..300).contains(&s)) {
                by_id.entry(call.id.clone()).or_default().push(call);
            }
        }
        by_id
    }

    /// The most calls it had in flight at once.
    pub fn most_in_flight(&self) -> usize {
        self.inner.most_in_flight.load(Ordering::SeqCst)
    }

    /// Waits until `n` distinct events were answered 2xx; panics after `timeout`.
    pub async fn wait_delivered(&self, n: usize, timeout: Duration) {
        let start = Instant::now();
        while self.delivered().len() < n {
            assert!(
                start.elapsed() < timeout,
                "{} of {n} events delivered after {timeout:?}; calls: {}",
                self.delivered().len(),
                self.calls().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct InFlight<'a>(&'a Inner);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = inner.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    inner.most_in_flight.fetch_max(now, Ordering::SeqCst);
    let _guard = InFlight(&inner);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let n = inner.count.fetch_add(1, Ordering::SeqCst);
    let behaviour = *lock(&inner.behaviour);
    let answer = match behaviour {
        Behaviour::Accept | Behaviour::Slow(_) => Some(204),
        Behaviour::FailEveryOther => Some(if n % 2 == 0 { 500 } else { 204 }),
        Behaviour::Hang => None,
        Behaviour::Status(status) => Some(status),
    };
    let index = {
        let mut calls = lock(&inner.calls);
        calls.push(Call {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body: String::from_utf8_lossy(&body).into_owned(),
            received_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            answered: None,
        });
        calls.len() - 1
    };
    match behaviour {
        Behaviour::Hang => std::future::pending::<()>().await,
        Behaviour::Slow(wait) => tokio::time::sleep(wait).await,
        _ => {}
    }
    let status = answer.unwrap_or(204);
    // Recorded as answered only once the answer is on its way (a sender killed while the
    // receiver waits never gets it).
    lock(&inner.calls)[index].answered = Some(status);
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The Standard Webhooks reference implementation (PyPI `standardwebhooks`, installed by
/// `scripts/test` and named in `INTAKE_TEST_STANDARDWEBHOOKS_PYTHON`): for each call,
/// whether it verifies under `secret`, its timestamp's freshness judged as of when it
/// arrived (the library's clock is set to that moment for each call), so a long test's
/// early calls are judged as their receiver would have judged them.
pub fn verify(secret: &str, calls: &[Call]) -> Vec<bool> {
    const VERIFY: &str = r#"
import json, sys
from datetime import datetime
import standardwebhooks.webhooks as library
from standardwebhooks.webhooks import Webhook

class ArrivalClock(datetime):
    moment = 0.0
    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(cls.moment, tz=tz)

library.datetime = ArrivalClock
cases = json.load(sys.stdin)
for case in cases["calls"]:
    ArrivalClock.moment = case["received_at"]
    headers = {"webhook-id": case["id"], "webhook-timestamp": case["timestamp"],
               "webhook-signature": case["signature"]}
    try:
        Webhook(cases["secret"]).verify(case["body"].encode(), headers)
        print("ok")
    except Exception as err:
        print("refused", type(err).__name__)
"#;
    let python = std::env::var("INTAKE_TEST_STANDARDWEBHOOKS_PYTHON").unwrap_or_else(|_| {
        format!(
            "{}/.cache/intake/standardwebhooks-venv/bin/python",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    let cases = serde_json::json!({
        "secret": secret,
        "calls": calls.iter().map(|c| serde_json::json!({
            "id": c.id, "timestamp": c.timestamp, "signature": c.signature, "body": c.body,
            "received_at": c.received_at,
        })).collect::<Vec<_>>(),
    });
    let mut child = Command::new(&python)
        .args(["-c", VERIFY])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python} (standardwebhooks; scripts/test installs it): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&serde_json::to_vec(&cases).expect("json"))
        .expect("calls written");
    let out = child.wait_with_output().expect("verifier ran");
    assert!(out.status.success(), "the verifier failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| line == "ok")
        .collect()
}
