//! Each binary reads only its own settings (docs/contract.md §13): the real `intake-api`
//! starts and serves in an environment whose database, mail and Cloudinary settings the
//! worker would refuse, because it never reads them.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

/// Values only the worker (or the admin service) reads, each one it refuses.
const WORKER_ONLY: [(&str, &str); 6] = [
    ("INTAKE_DATABASE_URL", "not a url"),
    ("INTAKE_DATABASE_LOCK_TIMEOUT_MS", "0"),
    ("INTAKE_SMTP_URL", "smtp://mail.example"),
    ("INTAKE_CLOUDINARY_TIMEOUT_SECS", "never"),
    ("CLOUDINARY_URL", "not-cloudinary"),
    ("INTAKE_TEAM_ID_WIDTH", "0"),
];

#[tokio::test]
async fn the_api_starts_without_database_mail_or_cloudinary_settings() {
    let staging = tempfile::tempdir().expect("staging dir");
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let redis_url =
        std::env::var("INTAKE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut api = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake-api"))
        .env_clear()
        .env("INTAKE_API_ADDR", "127.0.0.1:0")
        .env("INTAKE_REDIS_URL", &redis_url)
        .env("INTAKE_REDIS_PREFIX", &prefix)
        .env("INTAKE_STAGING_DIR", staging.path())
        .env("INTAKE_LOG_FORMAT", "json")
        .envs(WORKER_ONLY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("intake-api starts");
    let stdout = api.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if entry["message"] == "intake-api listening" {
                return entry["addr"].as_str().map(str::to_owned);
            }
        }
        None
    })
    .await
    .ok()
    .flatten();
    let Some(addr) = addr else {
        let _ = api.kill().await;
        let output = api.wait_with_output().await.expect("api output");
        panic!(
            "the api did not start: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let live = intake_testkit::http_client()
        .get(format!("http://{addr}/health/live"))
        .send()
        .await
        .expect("api answers");
    assert_eq!(live.status(), 200);
    let _ = api.kill().await;
    intake_testkit::redis_keys::delete_matching(&redis_url, &format!("{prefix}:*"));
}
