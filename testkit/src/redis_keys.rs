//! Finding and removing the Redis keys a test made, by its prefix pattern.

/// Every key matching `pattern` (tests use a prefix of their own, so this is small).
pub fn matching(url: &str, pattern: &str) -> Vec<String> {
    redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .and_then(|mut conn| redis::cmd("KEYS").arg(pattern).query(&mut conn))
        .unwrap_or_default()
}

/// apalis-redis lists every queue it has seen in this one global key, outside any prefix.
const APALIS_QUEUE_LIST: &str = "core:apalis:queues:list";

/// Deletes every key matching `pattern` (a prefix followed by `*`), and the prefix's queues
/// from apalis' global queue list; a Redis that is gone has nothing left to delete.
pub fn delete_matching(url: &str, pattern: &str) {
    let Ok(mut conn) = redis::Client::open(url).and_then(|c| c.get_connection()) else {
        return;
    };
    let keys = matching(url, pattern);
    if !keys.is_empty() {
        let _: Result<(), _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
    }
    let prefix = pattern.trim_end_matches('*');
    let queues: Vec<String> = redis::cmd("ZRANGE")
        .arg(APALIS_QUEUE_LIST)
        .arg(0)
        .arg(-1)
        .query(&mut conn)
        .unwrap_or_default();
    let ours: Vec<&String> = queues.iter().filter(|q| q.starts_with(prefix)).collect();
    if !ours.is_empty() {
        let _: Result<(), _> = redis::cmd("ZREM")
            .arg(APALIS_QUEUE_LIST)
            .arg(ours)
            .query(&mut conn);
    }
}
