//! One module per scenario of the fault suite, each a separate run with its own system.

pub mod abuse;
pub mod contention;
pub mod crashes;
pub mod flaky;
pub mod hostile;
pub mod postgres;
pub mod redis;
pub mod webhooks;
