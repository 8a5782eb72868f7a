//! The Redis connection every Intake process uses: connected lazily, so a process starts
//! (and reports not ready) while Redis is down; failing a command fast instead of queueing
//! it behind a dead connection; and reconnecting by itself when Redis is back.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub fn connect_lazy(url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_lazy_with_config(client, config)
}

/// Whether Redis answers a PING within two seconds.
pub async fn reachable(conn: &ConnectionManager) -> bool {
    let mut conn = conn.clone();
    matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            redis::cmd("PING").query_async::<String>(&mut conn)
        )
        .await,
        Ok(Ok(_))
    )
}
