//! Exact limits on a request's URI and headers, checked before any handler runs. hyper
//! refuses a head over its read buffer ([`super::serve::MAX_HEAD_BYTES`]) on its own, but
//! where that bites depends on how the bytes arrived; these limits are lower and exact, so
//! the same request always gets the same answer.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::problem::Problem;
use crate::errors::ProblemCode;

/// Longest path and query a request may have.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most bytes all header names and values of a request may add up to.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Middleware: `414 URI_TOO_LONG` or `431 HEADERS_TOO_LARGE` for a request over the limits.
pub async fn limit_head(request: Request, next: Next) -> Response {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            ProblemCode::UriTooLong,
            format!("the request's URI is longer than {MAX_URI_BYTES} bytes"),
        )
        .into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ProblemCode::HeadersTooLarge,
            format!("the request's headers add up to more than {MAX_HEADER_BYTES} bytes"),
        )
        .into_response();
    }
    next.run(request).await
}
