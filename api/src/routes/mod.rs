//! One module per endpoint.

pub mod events;
pub mod health;
pub mod metrics;
pub mod page;
pub mod status;
pub mod submit;
