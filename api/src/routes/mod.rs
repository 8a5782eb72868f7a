//! One module per endpoint.

pub mod health;
pub mod metrics;
pub mod status;
pub mod submit;
