//! A worker whose Redis answers more slowly than its heartbeat interval still takes jobs.
//!
//! With apalis' own poll interval it stopped for good: every fetch outlasted the poll
//! interval and the heartbeat timer fired during it, so the worker was left with no armed
//! timer and slept until something outside woke it (`worker/src/polling.rs`). A loaded
//! machine gave the same now and then (the form-page test, the chaos contention scenario).

use std::net::SocketAddr;
use std::time::Duration;

use intake_testkit::proxy::TcpProxy;
use intake_testkit::stack::{Stack, team};

/// The Redis URL with its host and port replaced by `via`.
fn redis_url_via(url: &str, via: SocketAddr) -> String {
    let mut url = reqwest::Url::parse(url).expect("a Redis URL");
    url.set_ip_host(via.ip()).expect("a host");
    url.set_port(Some(via.port())).expect("a port");
    url.to_string()
}

async fn redis_addr(url: &str) -> SocketAddr {
    let url = reqwest::Url::parse(url).expect("a Redis URL");
    let host = url.host_str().expect("a host");
    let port = url.port().unwrap_or(6379);
    tokio::net::lookup_host((host, port))
        .await
        .expect("Redis resolves")
        .next()
        .expect("an address")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_redis_answers_slower_than_its_heartbeat_still_takes_jobs() {
    intake_testkit::log_stack_to_test_output();
    let mut stack = Stack::start().await;
    assert_eq!(stack.settings.queue.heartbeat, Duration::from_secs(1));
    let slow = TcpProxy::start(redis_addr(&stack.settings.redis.url).await).await;
    let via = redis_url_via(&stack.settings.redis.url, slow.addr);
    stack.spawn_worker_with(1, |s| s.redis.url = via).await;
    // Connected and polling at full speed first (a connection's handshake must fit in the
    // 1 s connection timeout); then Redis turns slow: 1.3 s, longer than the heartbeat
    // interval (1 s) and the poll interval, shorter than the response timeout (2 s), so
    // every call succeeds, late.
    tokio::time::sleep(Duration::from_secs(2)).await;
    slow.set_latency(Duration::from_millis(1300));
    // Idle through a few slow fetches and heartbeats before the job arrives, as in the
    // stall: an idle worker that never looks again.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let id = stack.submit(&team(1)).await;
    let status = stack.wait_final(&id, Duration::from_secs(90)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(stack.count("SELECT count(*) FROM teams").await, 1);
    stack.stop_workers().await;
}
