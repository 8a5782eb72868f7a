//! What it takes to accept a submission: reading the multipart form into staging, the
//! idempotency claim, the per-client rate limit and the hand-off to the queue.

pub mod client;
pub mod duplicates;
pub mod enqueue;
pub mod form;
pub mod idempotency;
pub mod part_headers;
pub mod rate_limit;
pub mod staging;
pub mod status_events;
pub mod stream_limit;
