//! The admin API's endpoints, one module per concern.

pub mod actions;
pub mod deliveries;
pub mod export;
pub mod health;
pub mod page;
pub mod queue;
pub mod registrations;
pub mod stats;
pub mod teams;
pub mod webhooks;
