//! `intake-worker migrate` (docs/contract.md §7): applies the migrations to a database and
//! exits, for deploys that migrate before they start workers.

#[tokio::test]
async fn migrate_prepares_a_fresh_database() {
    let db = intake_testkit::postgres::TestDatabase::create().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake-worker"))
        .arg("migrate")
        .env("INTAKE_DATABASE_URL", &db.url)
        .env("INTAKE_LOG_FORMAT", "json")
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    let pool = intake_store::pg::PgPool::connect(&db.url)
        .await
        .expect("db");
    let tables: i64 =
        intake_testkit::postgres::count_tables(&pool, &["teams", "audit_log", "team_claims"]).await;
    assert_eq!(tables, 3);
    pool.close().await;
}

#[tokio::test]
async fn migrate_with_an_unusable_database_url_fails_naming_it() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake-worker"))
        .arg("migrate")
        .env("INTAKE_DATABASE_URL", "not a url")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("INTAKE_DATABASE_URL"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Migrating reads the database settings alone: a worker setting it would refuse (no sender
/// for SMTP, no concurrency) does not stop a deploy from migrating first.
#[tokio::test]
async fn migrate_reads_only_the_database_settings() {
    let db = intake_testkit::postgres::TestDatabase::create().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake-worker"))
        .arg("migrate")
        .env("INTAKE_DATABASE_URL", &db.url)
        .env("INTAKE_WORKER_CONCURRENCY", "0")
        .env("INTAKE_SMTP_URL", "smtp://mail.example")
        .env("INTAKE_TEAM_ID_WIDTH", "0")
        .output()
        .await
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Running jobs needs the whole worker section set: the same environment is refused at
/// start-up, naming the first bad setting.
#[tokio::test]
async fn the_worker_refuses_to_start_naming_a_bad_setting() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intake-worker"))
        .env("INTAKE_WORKER_CONCURRENCY", "0")
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTAKE_WORKER_CONCURRENCY"), "{stderr}");
}
