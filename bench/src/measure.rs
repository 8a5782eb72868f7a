//! The benchmarks' measurements, each beside its ceiling.

use std::time::{Duration, Instant};

use futures::StreamExt;
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::{pdf, players, png};

use crate::report::{Row, Table};
use crate::system::System;

/// Seconds each closed-loop load runs (after a one-second warm-up): throughput settles
/// within a second or two.
const SECONDS: f64 = 5.0;
/// Seconds each fixed-rate load runs: its p99 needs the samples (4,000 at 500 req/s).
const RATE_SECONDS: f64 = 8.0;
const CONNECTIONS: usize = 32;
/// Cloudinary's answer time in the latency-bound worker runs.
const UPLOAD_LATENCY: Duration = Duration::from_millis(150);

/// A raw multipart body of a valid registration for team `n`, with documents of these sizes.
pub fn registration_body(n: usize, receipt: usize, letter: Option<usize>) -> (Vec<u8>, String) {
    let boundary = "intake-bench-boundary-7f3a9c";
    let mut body = Vec::new();
    let mut text = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text("team_name", &format!("Bench Team {n:06}"));
    text("captain_name", "Arjun Mehta");
    text("captain_phone", &format!("9{n:09}"));
    // Every team's own addresses, as in a real tournament: the daily email cap (five per
    // address) would otherwise leave most registrations' email unsent.
    text("captain_email", &format!("captain.{n:06}@example.org"));
    text("vice_captain_name", "Ravi Kumar");
    text("vice_captain_phone", "9123456780");
    text("vice_captain_email", &format!("vice.{n:06}@example.org"));
    text("players", &players(11).to_string());
    let mut file = |name: &str, filename: &str, mime: &str, bytes: Vec<u8>| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {mime}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    };
    file("payment_receipt", "receipt.png", "image/png", png(receipt));
    if let Some(size) = letter {
        file("pastor_letter", "letter.pdf", "application/pdf", pdf(size));
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

fn args(url: &str, extra: &[&str]) -> Vec<String> {
    let fixed_rate = extra.contains(&"--rate");
    let seconds = if fixed_rate { RATE_SECONDS } else { SECONDS };
    let mut all = vec![
        "--url".to_owned(),
        url.to_owned(),
        "--seconds".to_owned(),
        seconds.to_string(),
    ];
    all.extend(extra.iter().map(|s| s.to_string()));
    all
}

/// 1. Intake throughput and latency, and latency at a fixed 500 req/s.
pub async fn intake(system: &System, table: &mut Table) -> anyhow::Result<()> {
    let (body, content_type) = registration_body(1, 100 * 1024, Some(100 * 1024));
    let body_path = system.file("intake-body", &body)?;
    let body_arg = body_path.display().to_string();
    let connections = CONNECTIONS.to_string();
    let post = [
        "--body",
        &body_arg,
        "--content-type",
        &content_type,
        "--connections",
        &connections,
    ];

    let at_500 = [&post[..], &["--rate", "500"]].concat();

    let ceiling = system.ceiling("multipart").await?;
    let ceiling_url = ceiling.url("/v1/registrations");
    let bare = system.load(&args(&ceiling_url, &post)).await?;
    let bare_500 = system.load(&args(&ceiling_url, &at_500)).await?;
    drop(ceiling);
    // The rungs between: the same handler also hashing, then also staging.
    system.reset().await?;
    let hashing = system.ceiling("multipart-hash").await?;
    let hashed = system
        .load(&args(&hashing.url("/v1/registrations"), &post))
        .await?;
    drop(hashing);
    system.reset().await?;
    let staging = system.ceiling("multipart-stage").await?;
    let staging_url = staging.url("/v1/registrations");
    let staged = system.load(&args(&staging_url, &post)).await?;
    system.reset().await?;
    let staged_500 = system.load(&args(&staging_url, &at_500)).await?;
    drop(staging);
    system.reset().await?;
    let object = system.ceiling("multipart-object").await?;
    let one_object = system
        .load(&args(&object.url("/v1/registrations"), &post))
        .await?;
    drop(object);

    system.reset().await?;
    let api = system.api().await?;
    let url = api.url("/v1/registrations");
    let keyed = [&post[..], &["--key-prefix", "max"]].concat();
    let ours = system.load(&args(&url, &keyed)).await?;
    system.reset().await?;
    let keyed_500 = [&at_500[..], &["--key-prefix", "fixed"]].concat();
    let ours_500 = system.load(&args(&url, &keyed_500)).await?;
    system.reset().await?;
    drop(api);
    // The same with strict durability (each answer after its object's sync, syncs shared).
    let strict = system.api_with(&[("INTAKE_DURABILITY", "strict")]).await?;
    let url = strict.url("/v1/registrations");
    let keyed = [&post[..], &["--key-prefix", "strict-max"]].concat();
    let strict_max = system.load(&args(&url, &keyed)).await?;
    system.reset().await?;
    let keyed_500 = [&at_500[..], &["--key-prefix", "strict-fixed"]].concat();
    let strict_500 = system.load(&args(&url, &keyed_500)).await?;
    system.reset().await?;
    drop(strict);

    table.push(Row::ratio(
        "Intake: req/s (2 × 100 KB files, 32 connections)",
        ours.per_second,
        bare.per_second,
        "≥ 70 % of ceiling",
        0.70,
        &format!("{} errors, {} non-2xx", ours.errors, ours.unexpected),
    ));
    table.push(Row::ratio(
        "Ceiling's rung: bare handler + SHA-256 of each part (req/s)",
        hashed.per_second,
        bare.per_second,
        "—",
        0.0,
        "what hashing alone leaves of the ceiling",
    ));
    table.push(Row::ratio(
        "Ceiling's rung: bare handler + SHA-256 + each file staged to disk (req/s)",
        staged.per_second,
        bare.per_second,
        "—",
        0.0,
        "a directory per request, a file per document: how staging was done before one object per submission",
    ));
    table.push(Row::ratio(
        "Intake: req/s as a multiple of the rung above",
        ours.per_second,
        staged.per_second,
        "≥ 200 % of the rung",
        2.0,
        &format!(
            "{:.2} × the rung measured in this run",
            ours.per_second / staged.per_second.max(1e-9)
        ),
    ));
    table.push(Row::ratio(
        "Ceiling's rung: bare handler + one object per submission (req/s)",
        one_object.per_second,
        bare.per_second,
        "—",
        0.0,
        &format!(
            "the disk's part of the new design, no hashing; Intake's req/s is {:.0} % of this",
            100.0 * ours.per_second / one_object.per_second.max(1e-9)
        ),
    ));
    table.push(Row::ratio(
        "Intake, INTAKE_DURABILITY=strict: req/s (ratio to relaxed)",
        strict_max.per_second,
        ours.per_second,
        "—",
        0.0,
        &format!(
            "each answer after its object's syncfs, syncs shared; {} errors, {} non-2xx",
            strict_max.errors, strict_max.unexpected
        ),
    ));
    table.push(Row::latency(
        "Intake: p50 / p99 at max load",
        &ours,
        &bare,
        None,
    ));
    table.push(Row::latency(
        "Intake: p50 / p99 at 500 req/s",
        &ours_500,
        &bare_500,
        Some(10.0),
    ));
    table.push(Row::latency(
        "Intake, INTAKE_DURABILITY=strict: p50 / p99 at 500 req/s",
        &strict_500,
        &bare_500,
        None,
    ));
    table.push(Row::latency(
        "Ceiling's rung with staging: p50 / p99 at 500 req/s (diagnostic)",
        &staged_500,
        &bare_500,
        None,
    ));
    Ok(())
}

/// 2. Status polling.
pub async fn status(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system.reset().await?;
    let api = system.api().await?;
    let base = api.url("");
    let (body, content_type) = registration_body(2, 2048, None);
    let answer: serde_json::Value = system
        .client
        .post(format!("{base}/v1/registrations"))
        .header("idempotency-key", "status-bench")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?
        .json()
        .await?;
    let id = answer["id"].as_str().unwrap_or_default().to_owned();
    let connections = CONNECTIONS.to_string();
    let ours = system
        .load(&args(
            &format!("{base}/v1/registrations/{id}"),
            &["--connections", &connections],
        ))
        .await?;
    drop(api);
    let ceiling = system.ceiling("status").await?;
    let bare = system
        .load(&args(
            &ceiling.url(&format!("/v1/registrations/{id}")),
            &["--connections", &connections],
        ))
        .await?;
    table.push(Row::ratio(
        "Status: req/s (32 connections)",
        ours.per_second,
        bare.per_second,
        "≥ 60 % of ceiling",
        0.60,
        &format!("p99 {:.1} ms vs {:.1} ms", ours.p99_ms, bare.p99_ms),
    ));
    system.reset().await?;
    Ok(())
}

/// Queues `n` registrations (one 2 KB document each) through the api, with no worker running.
async fn queue(system: &System, n: usize) -> anyhow::Result<()> {
    system.reset().await?;
    let api = system.api().await?;
    let url = api.url("/v1/registrations");
    let failures = futures::stream::iter(0..n)
        .map(|i| {
            let url = url.clone();
            async move {
                let (body, content_type) = registration_body(i, 2048, None);
                system
                    .client
                    .post(&url)
                    .header("idempotency-key", format!("queue-{i}"))
                    .header("content-type", content_type)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16() != 202)
                    .unwrap_or(true)
            }
        })
        .buffer_unordered(32)
        .filter(|failed| futures::future::ready(*failed))
        .count()
        .await;
    anyhow::ensure!(failures == 0, "{failures} registrations not queued");
    Ok(())
}

/// What one drain measured.
struct Drained {
    /// Registrations saved per second, first save to last.
    rate: f64,
    /// Peak RSS of the first worker process, MiB.
    peak_mib: f64,
    /// CPU time of the whole machine per registration, ms (all processes: workers,
    /// Postgres, Redis, the fakes), while the queue drained.
    machine_cpu_ms: f64,
    /// CPU time of the worker processes per registration, ms.
    worker_cpu_ms: f64,
    /// CPU time of this process per registration, ms: the Cloudinary fake and the SMTP
    /// server, which a deployment does not run beside its workers.
    fakes_cpu_ms: f64,
    /// CPU time of Postgres' processes per registration, ms.
    postgres_cpu_ms: f64,
    /// CPU time of Redis per registration, ms.
    redis_cpu_ms: f64,
    /// The most Postgres sessions the workers held at once.
    peak_sessions: i64,
    /// What the workers' sessions were doing, sampled every 100 ms while the queue drained:
    /// share of the samples by state or wait event, largest first.
    waits: Vec<(String, f64)>,
}

/// Queues `n` registrations, then drains them with `workers` processes of `concurrency`,
/// email over SMTP.
async fn drain(
    system: &System,
    n: usize,
    workers: usize,
    concurrency: usize,
) -> anyhow::Result<Drained> {
    queue(system, n).await?;
    let busy_before = crate::system::machine_busy_seconds();
    let fakes_before = crate::system::process_cpu_seconds(std::process::id());
    let postgres_before = crate::system::processes_cpu_seconds("postgres");
    let redis_before = crate::system::processes_cpu_seconds("redis-server");
    let mut peak_sessions = 0;
    let mut waits: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    let processes: Vec<_> = (0..workers)
        .map(|_| system.worker(concurrency))
        .collect::<Result<_, _>>()?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (saved, _) = system.saved().await?;
        peak_sessions = peak_sessions.max(system.worker_sessions().await?);
        if saved > 0 {
            for (what, n) in system.worker_waits().await? {
                *waits.entry(what).or_insert(0) += n;
            }
        }
        if saved as usize >= n {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {saved} of {n} saved in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let busy = crate::system::machine_busy_seconds() - busy_before;
    let fakes = crate::system::process_cpu_seconds(std::process::id()) - fakes_before;
    let postgres = crate::system::cpu_spent(
        &postgres_before,
        &crate::system::processes_cpu_seconds("postgres"),
    );
    let redis = crate::system::cpu_spent(
        &redis_before,
        &crate::system::processes_cpu_seconds("redis-server"),
    );
    let worker_cpu: f64 = processes.iter().map(|p| p.cpu_seconds()).sum();
    let peak_mib = processes.first().map_or(0.0, |p| p.peak_rss_mib());
    drop(processes);
    let (saved, span) = system.saved().await?;
    Ok(Drained {
        rate: (saved as f64 - 1.0) / span.max(1e-3),
        peak_mib,
        machine_cpu_ms: busy * 1000.0 / n as f64,
        worker_cpu_ms: worker_cpu * 1000.0 / n as f64,
        fakes_cpu_ms: fakes * 1000.0 / n as f64,
        postgres_cpu_ms: postgres * 1000.0 / n as f64,
        redis_cpu_ms: redis * 1000.0 / n as f64,
        peak_sessions,
        waits: {
            let busy: i64 = waits
                .iter()
                .filter(|(what, _)| what.as_str() != "idle")
                .map(|(_, n)| n)
                .sum();
            let mut shares: Vec<(String, f64)> = waits
                .into_iter()
                .filter(|(what, _)| what.as_str() != "idle")
                .map(|(what, n)| (what, n as f64 / busy.max(1) as f64))
                .collect();
            shares.sort_by(|a, b| b.1.total_cmp(&a.1));
            shares
        },
    })
}

/// pgbench running the worker's two transactions (the claim on the team, then the
/// registration with its team ID, 11 players and a document, one statement as the worker
/// writes it) on the same database: the Postgres ceiling.
async fn pgbench(system: &System) -> anyhow::Result<f64> {
    let script = system.file(
        "worker.pgbench",
        br#"\set n random(1, 9000000000000000000)
BEGIN;
INSERT INTO team_claims (team_key, registration_id) VALUES ('pgbench ' || :n, lpad(to_hex(:n), 32, '0')::uuid) ON CONFLICT (team_key) DO UPDATE SET team_key = EXCLUDED.team_key RETURNING registration_id;
COMMIT;
WITH n AS (INSERT INTO team_id_counters AS c (prefix, last_value) VALUES ('PGB', 1) ON CONFLICT (prefix) DO UPDATE SET last_value = c.last_value + 1 RETURNING last_value), team AS (INSERT INTO teams (registration_id, team_id, team_name, captain_name, captain_phone, captain_email, vice_captain_name, vice_captain_phone, vice_captain_email, request_id, submitted_at) SELECT lpad(to_hex(:n), 32, '0')::uuid, 'PGB-' || lpad(n.last_value::text, greatest(4, length(n.last_value::text)), '0'), 'pgbench ' || :n, 'Arjun Mehta', '9876543210', 'arjun@example.org', 'Ravi Kumar', '9123456780', 'ravi@example.org', 'req', now() FROM n RETURNING registration_id), players AS (INSERT INTO players (registration_id, position, name, role) SELECT team.registration_id, p, 'Player ' || p, 'batsman' FROM team, generate_series(0, 10) AS p), documents AS (INSERT INTO documents (registration_id, kind, public_id, secure_url, content_type, bytes, sha256) SELECT team.registration_id, 'payment_receipt', 'pgb/' || :n, 'https://x/' || :n, 'image/png', 2048, 'x' FROM team) SELECT count(*) FROM team;
"#,
    )?;
    system.reset().await?;
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-c", "32", "-j", "2", "-T", "5", "-f"])
        .arg(&script)
        .arg(&system.db.url)
        .output()
        .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse::<f64>().ok());
    system.reset().await?;
    tps.ok_or_else(|| {
        anyhow::anyhow!(
            "pgbench gave no tps: {text} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// 3 and the worker half of 5: worker throughput and memory.
pub async fn workers(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system.cloudinary.set_default(Behaviour::Normal);
    let ceiling = pgbench(system).await?;
    // Concurrency 64: enough jobs in flight to keep Postgres busy.
    let instant = drain(system, 2000, 1, 64).await?.rate;
    table.push(Row::ratio(
        "Worker: registrations/s, one process, instant fakes, concurrency 64",
        instant,
        ceiling,
        "≥ 600/s",
        600.0 / ceiling.max(1.0),
        "ceiling: pgbench, the same two transactions, 32 clients",
    ));

    system
        .cloudinary
        .set_default(Behaviour::Slow(UPLOAD_LATENCY));
    let mut at_64 = None;
    for concurrency in [8usize, 32, 64] {
        let ideal = concurrency as f64 / UPLOAD_LATENCY.as_secs_f64();
        // About five seconds of work at the ideal rate.
        let n = ((ideal * 5.0) as usize).clamp(300, 2000);
        let drained = drain(system, n, 1, concurrency).await?;
        let rate = drained.rate;
        if concurrency == 64 {
            at_64 = Some(drained);
        }
        // The benchmarks set a target for concurrency 64 only.
        let (target, threshold) = if concurrency == 64 {
            ("≥ 80 % of ideal", 0.80)
        } else {
            ("—", 0.0)
        };
        table.push(Row::ratio(
            &format!("Worker: registrations/s, Cloudinary 150 ms, concurrency {concurrency}"),
            rate,
            ideal,
            target,
            threshold,
            &format!("ideal {concurrency} / 0.150 s; {n} registrations"),
        ));
    }
    if let Some(cpu) = &at_64 {
        // What the machine can do at all: its cores divided by the CPU each registration
        // costs across every process. Past that, concurrency only queues.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        table.push(Row::info(
            "Worker: CPU per registration at concurrency 64, Cloudinary 150 ms (diagnostic)",
            &format!(
                "{:.1} ms ({:.1} ms the worker, {:.1} ms the fakes)",
                cpu.machine_cpu_ms, cpu.worker_cpu_ms, cpu.fakes_cpu_ms
            ),
            &format!(
                "all processes (worker, Postgres, Redis, the fakes) while the queue drained: {cores:.0} cores are used up at {:.0}/s",
                cores * 1000.0 / cpu.machine_cpu_ms.max(1e-3)
            ),
        ));
    }
    table.push(Row::memory(
        "Worker: peak RSS at concurrency 64",
        at_64.as_ref().map_or(0.0, |d| d.peak_mib),
        96.0,
    ));
    system.cloudinary.set_default(Behaviour::Normal);
    Ok(())
}

/// 4: scale-out. The same 2,000 latency-bound registrations drained by 1, 2, 4 and 8 worker
/// processes of concurrency 32, each with the CPU a registration cost every process and the
/// Postgres sessions the workers held.
pub async fn scale_out(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system
        .cloudinary
        .set_default(Behaviour::Slow(UPLOAD_LATENCY));
    let max_connections = system.max_connections().await?;
    let mut previous: Option<f64> = None;
    let mut one = 0.0;
    for workers in [1usize, 2, 4, 8] {
        let drained = drain(system, 2000, workers, 32).await?;
        let rate = drained.rate;
        if workers == 1 {
            one = rate;
        }
        if let Some(before) = previous {
            // Adding a process must never make the drain slower (5 % is noise).
            table.push(Row::ratio(
                &format!(
                    "Scale-out: {workers} worker processes, concurrency 32, Cloudinary 150 ms"
                ),
                rate,
                before,
                if workers == 2 {
                    "≥ 1.8 × one"
                } else {
                    "≥ 95 % of one process fewer"
                },
                if workers == 2 { 1.8 } else { 0.95 },
                &format!(
                    "{:.2} × one process; {}",
                    rate / one.max(1e-9),
                    if workers == 2 {
                        "two should reach 1.8 × one where the machine has CPU left"
                    } else {
                        "ratio to one process fewer"
                    }
                ),
            ));
        } else {
            table.push(Row::info(
                "Scale-out: 1 worker process, concurrency 32, Cloudinary 150 ms",
                &format!("{rate:.0}/s"),
                "the base of the rows below",
            ));
        }
        table.push(Row::info(
            &format!("Scale-out: {workers} process(es), CPU per registration and Postgres sessions (diagnostic)"),
            &format!(
                "{:.1} ms ({:.1} workers, {:.1} Postgres, {:.1} Redis, {:.1} fakes); {} sessions; busy sessions: {}",
                drained.machine_cpu_ms,
                drained.worker_cpu_ms,
                drained.postgres_cpu_ms,
                drained.redis_cpu_ms,
                drained.fakes_cpu_ms,
                drained.peak_sessions,
                drained
                    .waits
                    .iter()
                    .take(4)
                    .map(|(what, share)| format!("{what} {:.0} %", share * 100.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            &format!(
                "the cores are used up at {:.0}/s; max_connections {max_connections}",
                std::thread::available_parallelism().map_or(1, |n| n.get()) as f64 * 1000.0
                    / drained.machine_cpu_ms.max(1e-3)
            ),
        ));
        previous = Some(rate);
    }
    system.cloudinary.set_default(Behaviour::Normal);
    Ok(())
}

/// 5. The api's peak memory while 100 clients upload 2 × 5 MiB at once.
pub async fn api_memory(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system.reset().await?;
    let (body, content_type) = registration_body(3, 5 * 1024 * 1024, Some(5 * 1024 * 1024));
    let body_path = system.file("big-body", &body)?;
    let api = system.api().await?;
    let idle = api.rss_mib();
    let url = api.url("/v1/registrations");
    let result = system
        .load(&[
            "--url".into(),
            url,
            "--body".into(),
            body_path.display().to_string(),
            "--content-type".into(),
            content_type,
            "--key-prefix".into(),
            "memory".into(),
            "--connections".into(),
            "100".into(),
            "--requests".into(),
            "100".into(),
            "--warmup".into(),
            "0".into(),
            "--seconds".into(),
            "120".into(),
        ])
        .await?;
    let peak = api.peak_rss_mib();
    table.push(Row::memory(
        &format!(
            "Api: peak RSS, 100 clients × 2 × 5 MiB at once ({} accepted, idle {idle:.0} MiB)",
            result.requests - result.unexpected - result.errors
        ),
        peak,
        64.0,
    ));
    drop(api);
    system.reset().await?;
    Ok(())
}

/// Figure 6, submit → `completed`, one at a time, instant fakes, one worker, email over SMTP.
pub async fn end_to_end(system: &System, table: &mut Table) -> anyhow::Result<()> {
    system.reset().await?;
    system.cloudinary.set_default(Behaviour::Normal);
    let api = system.api().await?;
    let worker = system.worker(32)?;
    let base = api.url("");
    let mut latencies = Vec::new();
    for i in 0..220 {
        let (body, content_type) = registration_body(100_000 + i, 2048, None);
        let started = Instant::now();
        let answer: serde_json::Value = system
            .client
            .post(format!("{base}/v1/registrations"))
            .header("idempotency-key", format!("e2e-{i}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?
            .json()
            .await?;
        let id = answer["id"].as_str().unwrap_or_default().to_owned();
        let mut events = system
            .client
            .get(format!("{base}/v1/registrations/{id}/events"))
            .send()
            .await?
            .bytes_stream();
        let mut seen = String::new();
        while let Some(chunk) = events.next().await {
            seen.push_str(&String::from_utf8_lossy(&chunk?));
            if seen.contains("\"status\":\"completed\"") || seen.contains("\"status\":\"failed\"") {
                break;
            }
        }
        anyhow::ensure!(
            seen.contains("\"status\":\"completed\""),
            "registration {i} did not complete"
        );
        if i >= 20 {
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(worker);
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    table.push(Row::plain(
        "End to end: submit → completed, p50 / p99 (one at a time, instant fakes, email over SMTP)",
        &format!("{:.1} / {:.1} ms", at(0.50), at(0.99)),
        "p50 ≤ 50 ms",
        at(0.50) <= 50.0,
        "200 registrations, 20 ms apart, followed over the event stream",
    ));
    drop(api);
    system.reset().await?;
    Ok(())
}
