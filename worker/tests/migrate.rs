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
        intake_testkit::postgres::count_tables(&pool, &["teams", "audit_log", "team_ids"]).await;
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
