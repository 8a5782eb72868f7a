//! Everything the api and the worker must agree on: the registration's domain types and
//! their validation, the job payload, the status model, Redis key names, error codes and
//! configuration. Keeping these in one crate is what stops the two processes drifting apart.

pub mod cloudinary;
pub mod config;
pub mod domain;
pub mod errors;
pub mod http;
pub mod job;
pub mod keys;
pub mod lease;
pub mod mask;
pub mod queue;
pub mod redis_conn;
pub mod signals;
pub mod staging;
pub mod status;
pub mod telemetry;
pub mod tls;
pub mod validation;
pub mod webhook_targets;
pub mod webhooks;
