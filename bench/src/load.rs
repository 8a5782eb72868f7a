//! The load generator, run as its own process (`intake-bench load`) so its CPU is not the
//! server's: HTTP/1.1 over keep-alive connections with hyper's client, either closed-loop
//! (N connections, each sending as soon as its previous answer arrived) or open-loop at a
//! fixed rate, where latency is counted from when each request was due, not when it could
//! be sent (so a stalled server cannot hide its queueing).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// The URL every request goes to.
    #[arg(long)]
    pub url: String,
    /// POST this file as the body (GET when absent).
    #[arg(long)]
    pub body: Option<std::path::PathBuf>,
    /// The body's content type.
    #[arg(long, default_value = "application/octet-stream")]
    pub content_type: String,
    /// Send a distinct `Idempotency-Key` with each request, starting with this prefix.
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// Connections (closed loop) or the most requests in flight (fixed rate).
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Requests per second (open loop); closed loop when absent.
    #[arg(long)]
    pub rate: Option<u64>,
    /// How long to send, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Stop after this many requests in all (closed loop).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
}

/// What a load run measured; printed as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    pub requests: u64,
    pub errors: u64,
    /// Answers whose status was not the expected 2xx.
    pub unexpected: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

struct Shared {
    client: Client<HttpConnector, Full<Bytes>>,
    url: hyper::Uri,
    body: Option<Bytes>,
    content_type: String,
    key_prefix: Option<String>,
    next_key: AtomicU64,
}

impl Shared {
    /// Sends one request; `Ok(true)` for a 2xx.
    async fn send(&self) -> Result<bool, String> {
        let mut request = hyper::Request::builder().uri(self.url.clone());
        if let Some(prefix) = &self.key_prefix {
            let n = self.next_key.fetch_add(1, Ordering::Relaxed);
            request = request.header("idempotency-key", format!("{prefix}-{n}"));
        }
        let request = match &self.body {
            Some(body) => request
                .method("POST")
                .header("content-type", &self.content_type)
                .body(Full::new(body.clone())),
            None => request.method("GET").body(Full::new(Bytes::new())),
        }
        .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let ok = response.status().is_success();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(ok)
    }
}

pub async fn run(args: LoadArgs) -> anyhow::Result<LoadResult> {
    let body = match &args.body {
        Some(path) => Some(Bytes::from(std::fs::read(path)?)),
        None => None,
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.connections)
        .build(connector);
    let shared = Arc::new(Shared {
        client,
        url: args.url.parse()?,
        body,
        content_type: args.content_type.clone(),
        key_prefix: args.key_prefix.clone(),
        next_key: AtomicU64::new(0),
    });
    match args.rate {
        Some(rate) => fixed_rate(shared, &args, rate).await,
        None => closed_loop(shared, &args).await,
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

fn result(hist: &Histogram<u64>, errors: u64, unexpected: u64, seconds: f64) -> LoadResult {
    let ms = |us: u64| us as f64 / 1000.0;
    LoadResult {
        requests: hist.len(),
        errors,
        unexpected,
        seconds,
        per_second: hist.len() as f64 / seconds,
        p50_ms: ms(hist.value_at_quantile(0.50)),
        p99_ms: ms(hist.value_at_quantile(0.99)),
        max_ms: ms(hist.max()),
    }
}

async fn closed_loop(shared: Arc<Shared>, args: &LoadArgs) -> anyhow::Result<LoadResult> {
    let warmup = Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let remaining = Arc::new(AtomicU64::new(args.requests.unwrap_or(u64::MAX)));
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            let shared = shared.clone();
            let remaining = remaining.clone();
            tokio::spawn(async move {
                let mut hist = histogram();
                let (mut errors, mut unexpected) = (0u64, 0u64);
                loop {
                    let now = Instant::now();
                    if now > started + warmup + measure {
                        break;
                    }
                    if remaining
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_err()
                    {
                        break;
                    }
                    let outcome = shared.send().await;
                    let measuring = now >= started + warmup;
                    match outcome {
                        Ok(ok) if measuring => {
                            let _ = hist.record(now.elapsed().as_micros().max(1) as u64);
                            unexpected += u64::from(!ok);
                        }
                        Err(_) if measuring => errors += 1,
                        _ => {}
                    }
                }
                (hist, errors, unexpected)
            })
        })
        .collect();
    let mut hist = histogram();
    let (mut errors, mut unexpected) = (0, 0);
    for task in tasks {
        let (h, e, u) = task.await?;
        hist.add(h)?;
        errors += e;
        unexpected += u;
    }
    let seconds = (started.elapsed().saturating_sub(warmup))
        .as_secs_f64()
        .min(measure.as_secs_f64())
        .max(1e-3);
    Ok(result(&hist, errors, unexpected, seconds))
}

async fn fixed_rate(shared: Arc<Shared>, args: &LoadArgs, rate: u64) -> anyhow::Result<LoadResult> {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let warmup = Duration::from_secs_f64(args.warmup);
    let total = Duration::from_secs_f64(args.warmup + args.seconds);
    let limit = Arc::new(tokio::sync::Semaphore::new(args.connections));
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut due = started;
    while due < started + total {
        tokio::time::sleep_until(due.into()).await;
        let (shared, limit, tx) = (shared.clone(), limit.clone(), tx.clone());
        let measuring = due >= started + warmup;
        let scheduled = due;
        tokio::spawn(async move {
            let _permit = limit.acquire_owned().await;
            let outcome = shared.send().await;
            if measuring {
                let _ = tx.send((scheduled.elapsed(), outcome));
            }
        });
        due += interval;
    }
    drop(tx);
    let mut hist = histogram();
    let (mut errors, mut unexpected) = (0, 0);
    while let Some((latency, outcome)) = rx.recv().await {
        match outcome {
            Ok(ok) => {
                hist.record(latency.as_micros().max(1) as u64)?;
                unexpected += u64::from(!ok);
            }
            Err(_) => errors += 1,
        }
    }
    Ok(result(&hist, errors, unexpected, args.seconds))
}
