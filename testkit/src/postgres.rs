//! A fresh Postgres database per test, created on the machine's server and dropped when the
//! test ends, so tests never see each other's rows.

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The server tests use: `INTAKE_TEST_DATABASE_URL`, or the local trust-auth default.
pub fn server_url() -> String {
    std::env::var("INTAKE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub async fn create() -> Self {
        let name = format!("intake_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&format!("{}/postgres", server_url()))
            .await
            .expect("test Postgres reachable (scripts/test starts it)");
        sqlx::query(&format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .expect("create test database");
        let _ = admin.close().await;
        Self {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }

    /// The URL of this database reached through another address (a proxy, say).
    pub fn url_via(&self, host_port: &str) -> String {
        format!("postgres://postgres@{host_port}/{}", self.name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = format!("{}/postgres", server_url());
        // Drop runs outside any async context we could borrow; a short-lived runtime on
        // its own thread does the one statement.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async move {
                    if let Ok(mut admin) = PgConnection::connect(&url).await {
                        let _ = sqlx::query(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .execute(&mut admin)
                        .await;
                        let _ = admin.close().await;
                    }
                });
            }
        })
        .join();
    }
}

/// How many of `tables` exist in the database `pool` reaches.
pub async fn count_tables(pool: &sqlx::PgPool, tables: &[&str]) -> i64 {
    let (count,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM information_schema.tables WHERE table_name = ANY($1)")
            .bind(tables)
            .fetch_one(pool)
            .await
            .expect("information_schema readable");
    count
}
