//! Metrics fit for alerts (docs/contract.md §6): the admin's own `/metrics` without a token,
//! HELP text on every metric each program exports, and a real Prometheus scraping the api,
//! a worker and the admin.
//!
//! The stack runs the three programs in this test process, so they share one recorder: each
//! `/metrics` shows every program's series (three `intake_build_info`, for one). Separate
//! processes each export their own; here each scrape job is checked for its own program's
//! series.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use intake_testkit::admin_stack::AdminStack;
use intake_testkit::stack::team;
use serde_json::Value;

const FINISH: Duration = Duration::from_secs(60);

/// Where Debian's `prometheus` package puts the server.
const PROMETHEUS: &str = "/usr/bin/prometheus";

async fn scrape(url: &str) -> String {
    let response = intake_testkit::http_client()
        .get(url)
        .send()
        .await
        .expect("metrics answer");
    assert_eq!(response.status(), 200, "GET {url}");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4",
        "GET {url}"
    );
    response.text().await.expect("text")
}

/// The `/metrics` URL of each program of the stack, by program.
fn metrics_urls(admin: &AdminStack) -> [(&'static str, String); 3] {
    [
        ("api", format!("{}/metrics", admin.stack.api_base)),
        ("worker", format!("http://{}/metrics", admin.worker_health)),
        ("admin", format!("{}/metrics", admin.base)),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_serves_metrics_without_a_token() {
    let admin = AdminStack::start().await;
    let queue = admin.get("/admin/v1/queue").await;
    assert_eq!(queue.status(), 200);
    // No bearer token: the address is private, like the health checks.
    let text = scrape(&format!("{}/metrics", admin.base)).await;
    let build_info = format!(
        "intake_build_info{{service=\"admin\",version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&build_info), "{text}");
    assert!(
        text.contains(
            "http_requests_total{route=\"/admin/v1/queue\",method=\"GET\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("http_request_duration_seconds_bucket{route=\"/admin/v1/queue\""),
        "{text}"
    );
}

/// Every `# TYPE` line of every program's `/metrics` has its `# HELP` line, after a
/// registration went all the way through (so the worker's series exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_metric_every_program_exports_has_help_text() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&team(1)).await;
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(admin.get("/admin/v1/queue").await.status(), 200);
    for (program, url) in metrics_urls(&admin) {
        let text = scrape(&url).await;
        let declared: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        for expected in [
            "intake_build_info",
            "http_requests_total",
            "intake_submissions_total",
            "intake_worker_jobs_total",
            "intake_email_outcomes_total",
            "intake_upload_breaker_open",
            "intake_workers_alive",
        ] {
            assert!(
                declared.contains(&expected),
                "{program}: {expected} missing:\n{text}"
            );
        }
        for name in declared {
            let help = format!("# HELP {name} ");
            let line = text.lines().find(|l| l.starts_with(&help));
            assert!(
                line.is_some_and(|l| l.len() > help.len() + 10),
                "{program}: {name} has no HELP text:\n{text}"
            );
        }
    }
}

/// Debian's Prometheus, run on a free loopback port with its storage in a temporary
/// directory, and killed when dropped.
struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts it with a scrape job per `(job, target)`, scraped every second.
    fn start(jobs: &[(&str, String)]) -> Self {
        assert!(
            Path::new(PROMETHEUS).exists(),
            "{PROMETHEUS} not found: scripts/test installs it (Debian's `prometheus` package; \
             by hand: apt-get update && apt-get install -y prometheus)"
        );
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
        for (job, target) in jobs {
            config.push_str(&format!(
                "  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ));
        }
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config).expect("prometheus.yml written");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{PROMETHEUS} does not start: {e}"));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.log")
    }

    /// Its log, for a failure message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn get(&self, path: &str, query: Option<&str>) -> Option<Value> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.base)).ok()?;
        if let Some(query) = query {
            url.query_pairs_mut().append_pair("query", query);
        }
        let response = intake_testkit::http_client().get(url).send().await.ok()?;
        if response.status() != 200 {
            return None;
        }
        response.json().await.ok()
    }

    /// The series of an instant query (an empty list until there are some).
    async fn query(&self, query: &str) -> Vec<Value> {
        self.get("/api/v1/query", Some(query))
            .await
            .and_then(|body| body["data"]["result"].as_array().cloned())
            .unwrap_or_default()
    }

    /// Polls `query` until some series satisfies `check`, failing with the log after a while.
    async fn wait_for(&self, query: &str, check: impl Fn(&Value) -> bool) -> Vec<Value> {
        let found = intake_testkit::within(Duration::from_secs(60), || async {
            let series = self.query(query).await;
            series.iter().any(&check).then_some(series)
        })
        .await;
        match found {
            Some(series) => series,
            None => panic!(
                "no series of {query} as expected; last answer {:?}\nprometheus log:\n{}",
                self.query(query).await,
                self.log()
            ),
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or_default()
}

fn value(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_scrapes_the_api_the_worker_and_the_admin() {
    let admin = AdminStack::start().await;
    let address = |base: &str| base.trim_start_matches("http://").to_owned();
    let jobs = [
        ("intake-api", address(&admin.stack.api_base)),
        ("intake-worker", admin.worker_health.to_string()),
        ("intake-admin", address(&admin.base)),
    ];
    let prometheus = Prometheus::start(&jobs);
    let id = admin.stack.submit(&team(1)).await;
    admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(admin.get("/admin/v1/queue").await.status(), 200);

    // Every target scraped and up.
    let up = intake_testkit::within(Duration::from_secs(60), || async {
        let targets = prometheus.get("/api/v1/targets", None).await?;
        let active = targets["data"]["activeTargets"].as_array()?.clone();
        (active.len() == jobs.len() && active.iter().all(|t| t["health"] == "up")).then_some(active)
    })
    .await;
    assert!(
        up.is_some(),
        "targets not all up: {:?}\nprometheus log:\n{}",
        prometheus.get("/api/v1/targets", None).await,
        prometheus.log()
    );

    // One build-info series per program, from its own job, at this version.
    let version = env!("CARGO_PKG_VERSION");
    let build_info = prometheus.wait_for("intake_build_info", |_| true).await;
    for (job, service) in [
        ("intake-api", "api"),
        ("intake-worker", "worker"),
        ("intake-admin", "admin"),
    ] {
        let own: Vec<&Value> = build_info
            .iter()
            .filter(|s| label(s, "job") == job && label(s, "service") == service)
            .collect();
        assert_eq!(own.len(), 1, "{job}: {build_info:?}");
        assert_eq!(label(own[0], "version"), version, "{own:?}");
        assert_eq!(value(own[0]), 1.0, "{own:?}");
    }

    // A real metric of each program.
    prometheus
        .wait_for(
            r#"http_requests_total{job="intake-api",route="/v1/registrations",method="POST",status="202"}"#,
            |s| value(s) >= 1.0,
        )
        .await;
    prometheus
        .wait_for(
            r#"http_requests_total{job="intake-admin",route="/admin/v1/queue",method="GET",status="200"}"#,
            |s| value(s) >= 1.0,
        )
        .await;
    prometheus
        .wait_for(r#"intake_workers_alive{job="intake-worker"}"#, |s| {
            value(s) >= 1.0
        })
        .await;
    prometheus
        .wait_for(
            r#"intake_email_outcomes_total{job="intake-worker",message="confirmation",outcome="sent"}"#,
            |s| value(s) >= 1.0,
        )
        .await;
}
