//! Cross-cutting request handling of the api; request ids and problem rendering are shared
//! with the other services (`intake_shared::http`).

pub mod metrics;
