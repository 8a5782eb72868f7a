//! Intake's public api: accepts registrations, stages their documents and queues them for
//! the worker. It needs only Redis; Postgres, Cloudinary and SMTP are the worker's business.

pub mod app;
pub mod intake;
pub mod middleware;
pub mod openapi;
pub mod problem;
pub mod routes;
pub mod state;

pub use app::{Application, StartupError};
