//! Makes sure every error answer is problem+json with the request id in it, including the
//! ones axum and tower produce on their own (404, 405, 408, 413, panics).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::problem::{PROBLEM_JSON, Problem};
use super::request_id::RequestId;

pub async fn render_problems(request: Request, next: Next) -> Response {
    let request_id = request.extensions().get::<RequestId>().map(|r| r.0.clone());
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let problem = match parts.extensions.remove::<Problem>() {
        Some(problem) => problem,
        None => {
            if status.is_server_error() {
                tracing::error!(
                    status = status.as_u16(),
                    "error answered without a problem body"
                );
            }
            Problem::for_status(status)
        }
    };
    drop(body);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(problem.body(request_id.as_deref())))
}
