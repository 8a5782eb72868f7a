//! Scenario 5: malformed and abusive requests sent byte for byte to the real api. Each must
//! get a 4xx problem+json; none a 5xx; no panic in the logs; nothing left in staging or
//! Redis. Then the abuse families of [`super::abuse`], against the whole system.

use std::time::Duration;

use intake_testkit::hostile::{self, Rng};

use crate::Size;
use crate::harness::{Binaries, Harness, Options};
use crate::report::Report;

pub async fn run(bins: Binaries, size: Size, logs: &std::path::Path) -> anyhow::Result<Report> {
    let n = match size {
        Size::Full => 10_000,
        Size::Ci => 600,
    };
    let seed = 0x1ad0_7e57_0000_0007;
    let mut report = Report::new("hostile", format!("{n} hostile requests (seed {seed:#x})"));
    // The api alone: nothing these requests send may reach a worker.
    let bins_again = bins.clone();
    let h = Harness::start(
        bins,
        Options {
            workers: 0,
            request_timeout_secs: 3,
            ..Options::default()
        },
        logs,
    )
    .await?;
    let mut rng = Rng::new(seed);
    let requests: Vec<_> = (0..n).map(|i| hostile::generate(&mut rng, i)).collect();
    let addr = h.api_addr;
    let hostile::Outcome {
        answers: kinds,
        wrong,
    } = hostile::send_all(addr, &requests, 32, Duration::from_secs(30)).await;
    report.check(
        "every request answered 4xx problem+json with a code and request id",
        wrong.is_empty(),
        format!(
            "{} of {n} did not: {:?}",
            wrong.len(),
            wrong.iter().take(5).collect::<Vec<_>>()
        ),
    );
    let families: std::collections::BTreeSet<&str> = kinds.keys().map(|(k, _)| *k).collect();
    report.figure(format!("{} families: {kinds:?}", families.len()));
    let api_log = std::fs::read_to_string(h.logs_dir().join("api.log")).unwrap_or_default();
    report.equal(
        "panics in the api's log",
        api_log.lines().filter(|l| l.contains("panicked")).count(),
        0,
    );
    // A 5xx would be logged at error level ("internal error", "handler panicked").
    report.equal(
        "errors in the api's log",
        api_log
            .lines()
            .filter(|l| l.contains("\"level\":\"ERROR\""))
            .count(),
        0,
    );
    report.equal("files left in staging", h.staged_files(), 0);
    report.equal("keys left in Redis", h.redis_keys(), Vec::<String>::new());
    drop(h);
    // The second part: abuse that needs the whole system (a registered team, the rate
    // limit, streams).
    super::abuse::run(bins_again, size, &logs.join("abuse"), &mut report).await?;
    Ok(report.finish())
}
