//! The HTTP/1.1 server loop of Intake's services, in place of `axum::serve`, which cannot be
//! configured. It bounds the request head (its size, its number of headers and the time it
//! may take to arrive), hands every request the peer's address as axum's `ConnectInfo`, and
//! answers a request that hyper refuses before routing (control bytes in a header, a head
//! over the limit, a malformed request line) with problem+json like every other error,
//! where hyper itself would write a bare status with an empty body.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::problem::{PROBLEM_JSON, Problem};
use super::security_headers;
use crate::errors::ProblemCode;

/// Largest request head (request line and headers) a service reads; a longer one is
/// answered `431 HEADERS_TOO_LARGE`. Also the most hyper buffers of a body per read.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most header fields a request may carry; more is `431 HEADERS_TOO_LARGE`.
pub const MAX_HEADERS: usize = 64;
/// How long a request head may take to arrive before the connection is closed (a
/// slow-loris head never becomes a request, so there is no one to answer).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// How a service serves: whether its answers carry HSTS, and how long shutdown waits for
/// open connections (an event stream never ends by itself).
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    pub hsts: bool,
    pub drain: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets the requests in
/// flight finish for at most `options.drain`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request)
        });
        let io = TokioIo::new(ProblemOnParseError::new(stream, options.hsts));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_secs = options.drain.as_secs(),
            "connections still open at the end of the drain were closed"
        );
    }
    Ok(())
}

/// The automatic answers hyper writes, before any handler runs, to a request head it
/// cannot accept. They are the only responses on our connections with these statuses and
/// an empty body: every answer of ours carries a problem+json body.
const AUTOMATIC: [(&[u8], StatusCode, ProblemCode, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        StatusCode::BAD_REQUEST,
        ProblemCode::MalformedRequest,
        "the request line or a header is not valid HTTP",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        ProblemCode::HeadersTooLarge,
        "the request's headers are larger than the limit",
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\n",
        StatusCode::URI_TOO_LONG,
        ProblemCode::UriTooLong,
        "the request's URI is longer than the limit",
    ),
];

/// A connection that replaces hyper's bare automatic error answer with a problem+json one.
/// Everything else passes through untouched.
struct ProblemOnParseError<S> {
    inner: S,
    hsts: bool,
    /// A replacement answer not yet fully written, and how much of it was.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> ProblemOnParseError<S> {
    fn new(inner: S, hsts: bool) -> Self {
        Self {
            inner,
            hsts,
            pending: None,
        }
    }
}

/// The problem+json answer that replaces `written` if it is one of hyper's automatic ones.
fn replacement(written: &[u8], hsts: bool) -> Option<Vec<u8>> {
    let (status_line, status, code, detail) = AUTOMATIC
        .iter()
        .find(|(line, ..)| written.starts_with(line))?;
    let head_end = written.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&written[..head_end]);
    let lower = head.to_ascii_lowercase();
    if !lower.contains("\r\ncontent-length: 0\r\n") && !lower.ends_with("\r\ncontent-length: 0")
        || lower.contains("\r\ncontent-type:")
    {
        return None;
    }
    let request_id = uuid::Uuid::new_v4().to_string();
    tracing::warn!(
        status = status.as_u16(),
        code = code.as_str(),
        %request_id,
        "request refused before routing"
    );
    let body = Problem::new(*status, *code, *detail).body(Some(&request_id));
    let mut answer = status_line.to_vec();
    let mut header = |name: &str, value: &str| {
        answer.extend_from_slice(name.as_bytes());
        answer.extend_from_slice(b": ");
        answer.extend_from_slice(value.as_bytes());
        answer.extend_from_slice(b"\r\n");
    };
    header("content-type", PROBLEM_JSON);
    header("content-length", &body.len().to_string());
    header("connection", "close");
    header("x-request-id", &request_id);
    for (name, value) in security_headers(hsts) {
        header(name.as_str(), value);
    }
    if let Some(date) = head.split("\r\n").find_map(|l| l.strip_prefix("date: ")) {
        header("date", date);
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&body);
    Some(answer)
}

impl<S: AsyncWrite + Unpin> ProblemOnParseError<S> {
    /// Writes what is left of a replacement answer; ready once it is all written.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((answer, done)) = &mut self.pending {
            if *done == answer.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &answer[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemOnParseError<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemOnParseError<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        if let Some(answer) = replacement(buf, this.hsts) {
            this.pending = Some((answer, 0));
            // hyper's answer counts as written; the replacement goes out on the next
            // write, flush or shutdown.
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_pending(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] =
        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Mon, 23 Nov 2026 16:00:00 GMT\r\n\r\n";

    #[test]
    fn hypers_bare_answer_becomes_problem_json() {
        let answer = replacement(HYPER_400, false).expect("replaced");
        let text = String::from_utf8(answer).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(head.contains("content-type: application/problem+json"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("x-content-type-options: nosniff"));
        assert!(head.contains("date: Mon, 23 Nov 2026 16:00:00 GMT"));
        let problem: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(problem["code"], "MALFORMED_REQUEST");
        assert_eq!(problem["status"], 400);
        assert!(problem["request_id"].is_string());
    }

    #[test]
    fn answers_with_a_body_pass_through() {
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/problem+json\r\ncontent-length: 0\r\n\r\n";
        assert!(replacement(ours, false).is_none());
        let with_body = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 12\r\n\r\n";
        assert!(replacement(with_body, false).is_none());
        assert!(
            replacement(b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n", false).is_none()
        );
        assert!(replacement(b"{\"HTTP/1.1 400 Bad Request", false).is_none());
    }
}
