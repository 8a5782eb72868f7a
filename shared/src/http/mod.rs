//! What every Intake HTTP service shares: problem+json errors, request ids, request
//! metrics, and the security headers on every answer.

pub mod head_limits;
pub mod metrics;
pub mod problem;
mod render;
pub mod request_id;
pub mod serve;

use axum::http::{HeaderName, header};

pub use render::render_problems;

/// The security headers every answer carries (docs/contract.md §3), HSTS only behind HTTPS.
pub fn security_headers(hsts: bool) -> Vec<(HeaderName, &'static str)> {
    let mut headers = vec![
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    ];
    if hsts {
        headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ));
    }
    headers
}
