//! Finding and removing the Redis keys a test made, by its prefix pattern.

/// Every key matching `pattern` (tests use a prefix of their own, so this is small).
pub fn matching(url: &str, pattern: &str) -> Vec<String> {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut conn| redis::cmd("KEYS").arg(pattern).query(&mut conn))
        .unwrap_or_default()
}

/// Deletes every key matching `pattern`; a Redis that is gone has nothing left to delete.
pub fn delete_matching(url: &str, pattern: &str) {
    let keys = matching(url, pattern);
    if keys.is_empty() {
        return;
    }
    if let Ok(mut conn) = redis::Client::open(url).and_then(|c| c.get_connection()) {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
    }
}
