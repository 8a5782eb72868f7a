//! Intake's admin service: what support staff need to put failed registrations right, and the
//! audit log that proves who did what. It listens on its own, private address
//! (`INTAKE_ADMIN_ADDR`, loopback by default), never on the public intake port; every call but
//! the health checks, `/metrics` and the page needs a bearer token from `INTAKE_ADMIN_TOKENS`
//! whose role allows it (`auth`).

pub mod app;
pub mod auth;
pub mod auth_failures;
pub mod cursor;
pub mod discard;
pub mod documents;
pub mod error;
pub mod redrive;
pub mod routes;
pub mod state;
pub mod tls;

pub use app::{AdminApp, StartupError};
