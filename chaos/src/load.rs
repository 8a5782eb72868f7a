//! Load through the HTTP API as a careful client sends it: each registration with its own
//! idempotency key, retried with the same key after a 503 or a broken connection, until it
//! is accepted.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::harness::{self, Harness};
use crate::invariants::Accepted;

/// One answer the api gave (or a connection that failed, as status 0), and when.
#[derive(Debug, Clone, Copy)]
pub struct Try {
    /// When the request was sent, on the run's clock.
    pub at: Duration,
    /// When its answer (or the failure) came back.
    pub answered: Duration,
    pub status: u16,
    pub retry_after: bool,
}

#[derive(Debug, Default)]
pub struct Load {
    pub accepted: Accepted,
    /// Every try of every registration, in no particular order.
    pub tries: Vec<Try>,
    /// Registrations refused for good (a 4xx other than 409/429), with the answer.
    pub refused: Vec<(usize, u16, String)>,
}

impl Load {
    pub fn answers(&self) -> BTreeMap<u16, usize> {
        let mut answers = BTreeMap::new();
        for t in &self.tries {
            *answers.entry(t.status).or_default() += 1;
        }
        answers
    }
}

/// How submissions are paced.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Submissions in flight at once.
    pub concurrency: usize,
    /// Submissions started per second (None: as fast as `concurrency` allows).
    pub per_second: Option<f64>,
    /// How long one registration keeps being retried before the client gives up.
    pub give_up: Duration,
}

/// Submits registrations `numbers` with keys `chaos-{n}`; `started` is the run's clock.
pub async fn submit(h: &Harness, numbers: Range<usize>, pace: Pace, started: Instant) -> Load {
    let first = numbers.start;
    let results: Vec<(usize, Vec<Try>, Outcome)> = futures::stream::iter(numbers)
        .map(|n| async move {
            if let Some(rate) = pace.per_second {
                let due = started + Duration::from_secs_f64((n - first) as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            let (tries, outcome) = submit_one(h, n, pace.give_up, started).await;
            (n, tries, outcome)
        })
        .buffer_unordered(pace.concurrency.max(1))
        .collect()
        .await;
    let mut load = Load::default();
    for (n, tries, outcome) in results {
        load.tries.extend(tries);
        match outcome {
            Ok(id) => {
                load.accepted.insert(n, id);
            }
            Err((status, body)) => load.refused.push((n, status, body)),
        }
    }
    load
}

/// The id a 202 named, or the answer that refused the registration for good.
type Outcome = Result<String, (u16, String)>;

async fn submit_one(
    h: &Harness,
    n: usize,
    give_up: Duration,
    started: Instant,
) -> (Vec<Try>, Outcome) {
    let form = harness::registration(n);
    let key = format!("chaos-{n}");
    let deadline = Instant::now() + give_up;
    let mut tries = Vec::new();
    loop {
        let at = started.elapsed();
        let (status, retry_after, outcome) = match h.submit(&form, &key).await {
            Ok(answer) => match (answer.status, answer.id()) {
                (202, Some(id)) => (202, false, Some(Ok(id))),
                (status @ (409 | 429 | 503), _) => (status, answer.retry_after, None),
                (status, _) if status >= 500 => (status, answer.retry_after, None),
                (status, _) => (
                    status,
                    answer.retry_after,
                    Some(Err((status, answer.body.to_string()))),
                ),
            },
            Err(_) => (0, false, None),
        };
        tries.push(Try {
            at,
            answered: started.elapsed(),
            status,
            retry_after,
        });
        if let Some(outcome) = outcome {
            return (tries, outcome);
        }
        if Instant::now() > deadline {
            return (tries, Err((status, "the client gave up retrying".into())));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
