//! Cross-cutting request handling of the api; request ids, problem rendering and request
//! metrics are shared with the other services (`intake_shared::http`).

pub mod metrics;
