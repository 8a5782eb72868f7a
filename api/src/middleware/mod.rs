//! Cross-cutting request handling: request ids, problem rendering, metrics.

pub mod metrics;
pub mod problems;
pub mod request_id;
