//! Intake's worker: takes registration jobs off the apalis-redis queue and runs each one to
//! completion (team ID, documents, Postgres, email), publishing its status at every step.
//! Start with `pipeline.rs`: it is the job, read top to bottom.

pub mod backends;
pub mod db;
pub mod error;
pub mod failure_events;
pub mod health;
pub mod janitor;
pub mod metrics;
pub mod periodic;
pub mod pipeline;
pub mod polling;
pub mod queue_gauges;
pub mod runtime;
pub mod steps;
pub mod team_index;
pub mod webhooks;

pub use runtime::{Runtime, StartupError};
