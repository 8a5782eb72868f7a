//! A bound on what the multipart parser holds in memory. multer (under axum's `Multipart`)
//! keeps everything before the first boundary, and each part's header block, in one buffer
//! until the delimiter or the blank line turns up, and searches that whole buffer again
//! whenever more arrives: a client that trickles a header line megabytes long costs memory
//! and quadratic CPU. This guard sits between the request body and the parser, follows the
//! body's structure as it streams past, and ends the body with an error as soon as a header
//! block (or the preamble) grows over [`MAX_PART_HEADER_BYTES`]; the request is then answered
//! `400 MALFORMED_REQUEST` and nothing more of it is read.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream, Bytes};
use axum::extract::Request;
use axum::http::header;
use futures::Stream;
use futures::StreamExt;

use crate::problem::ApiError;

/// The most bytes one part's header block may take: from the end of its boundary (the rest
/// of the delimiter line, the header lines, the blank line that ends them, included) is
/// at most this. The same bound holds for anything before the first boundary, which
/// multer buffers alike and which no form-submitting client sends. A real part's headers
/// (`Content-Disposition` with a file name, `Content-Type`) take a few hundred bytes; 16 KiB
/// is also what a whole request head may hold (docs/contract.md §3).
pub const MAX_PART_HEADER_BYTES: usize = 16 * 1024;

/// The refusal the guard ends the body with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a multipart part's header block is over {MAX_PART_HEADER_BYTES} bytes")]
pub struct PartHeadersTooLarge;

/// Puts the guard on `request`'s body. The parser sees the guard's refusal only as a broken
/// body; the returned [`Verdict`] tells the handler that it was the guard.
pub fn guard(request: Request) -> (Request, Verdict) {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(boundary);
    let tripped = Arc::new(AtomicBool::new(false));
    let verdict = Verdict(tripped.clone());
    let request = request.map(|body| {
        Body::from_stream(Guarded {
            inner: body.into_data_stream(),
            scanner: Scanner::new(boundary.as_deref()),
            tripped,
            ended: false,
        })
    });
    (request, verdict)
}

/// Whether the guard refused the body it watched.
#[derive(Debug, Clone)]
pub struct Verdict(Arc<AtomicBool>);

impl Verdict {
    pub fn refused(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The answer for a body whose reading failed with `err`: the guard's own when the
    /// failure was its refusal (the parser reports it as a malformed body).
    pub fn explain(&self, err: ApiError) -> ApiError {
        if self.refused() {
            ApiError::PartHeadersTooLarge
        } else {
            err
        }
    }
}

/// The body as it streams to the parser, each chunk checked before it is passed on.
struct Guarded {
    inner: BodyDataStream,
    scanner: Scanner,
    tripped: Arc<AtomicBool>,
    ended: bool,
}

impl Stream for Guarded {
    type Item = Result<Bytes, Box<dyn std::error::Error + Send + Sync>>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let chunk = match self.inner.poll_next_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.ended = true;
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(Box::new(err)))),
            Poll::Ready(Some(Ok(chunk))) => chunk,
        };
        match self.scanner.feed(&chunk) {
            Ok(()) => Poll::Ready(Some(Ok(chunk))),
            Err(refusal) => {
                // Nothing more is read: the stream ends here, with the refusal.
                self.ended = true;
                self.tripped.store(true, Ordering::Release);
                tracing::info!(
                    limit = MAX_PART_HEADER_BYTES,
                    "multipart header block too large"
                );
                Poll::Ready(Some(Err(Box::new(refusal))))
            }
        }
    }
}

/// The boundary multer will split the body on: multer's own reading of the Content-Type
/// (the one axum's `Multipart` uses). `None` when there is none; the guard then takes the
/// whole body for preamble, which is refused past the limit.
pub fn boundary(content_type: &str) -> Option<String> {
    multer::parse_boundary(content_type).ok()
}

/// Where in the body the scanner is, following multer's reading of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first boundary: multer takes the first `--boundary` anywhere in it.
    Preamble,
    /// Just after a boundary; `dashes` is how much of a closing `--` has been seen.
    AfterBoundary {
        dashes: u8,
    },
    /// The rest of the delimiter line (transport padding), up to its CRLF.
    DelimiterLine,
    /// The part's header lines, up to the blank line.
    Headers,
    /// The part's content, up to the next `\r\n--boundary`.
    Content,
    /// After the closing delimiter: multer reads no further.
    Epilogue,
    Refused,
}

/// Follows a multipart body chunk by chunk and counts the bytes of each header block.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// `--boundary`, which opens the body.
    first: Matcher,
    /// `\r\n--boundary`, which ends a part's content.
    delimiter: Matcher,
    line_end: Matcher,
    blank_line: Matcher,
    /// Bytes seen before the first boundary.
    preamble: usize,
    /// Bytes of the current header block so far.
    block: usize,
}

impl Scanner {
    /// A scanner for a body split on `boundary`; with none, everything is preamble.
    pub fn new(boundary: Option<&str>) -> Self {
        // A boundary multer could not have read makes a pattern that cannot occur (a header
        // value holds no CR), so the body stays preamble, bounded.
        let boundary = boundary.unwrap_or("\r");
        let first = [b"--", boundary.as_bytes()].concat();
        let delimiter = [b"\r\n--", boundary.as_bytes()].concat();
        Self {
            state: State::Preamble,
            first: Matcher::new(&first),
            delimiter: Matcher::new(&delimiter),
            line_end: Matcher::new(b"\r\n"),
            blank_line: Matcher::new(b"\r\n\r\n"),
            preamble: 0,
            block: 0,
        }
    }

    /// Follows the next chunk of the body; an error once a header block (or the preamble)
    /// is over [`MAX_PART_HEADER_BYTES`], and for every chunk after that.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), PartHeadersTooLarge> {
        let mut rest = chunk;
        while !rest.is_empty() {
            match self.state {
                State::Refused => return Err(PartHeadersTooLarge),
                State::Epilogue => return Ok(()),
                State::Preamble => match self.first.feed(rest) {
                    Some(n) => {
                        self.preamble += n;
                        let before = self.preamble.saturating_sub(self.first.len());
                        self.check(before)?;
                        rest = rest.get(n..).unwrap_or_default();
                        self.boundary_found();
                    }
                    None => {
                        self.preamble += rest.len();
                        let before = self.preamble.saturating_sub(self.first.matched);
                        self.check(before)?;
                        rest = &[];
                    }
                },
                State::AfterBoundary { dashes } => {
                    if rest.first() == Some(&b'-') {
                        self.block += 1;
                        self.check(self.block)?;
                        rest = rest.get(1..).unwrap_or_default();
                        self.state = if dashes == 1 {
                            State::Epilogue
                        } else {
                            State::AfterBoundary { dashes: 1 }
                        };
                    } else {
                        // Not a closing `--`: the delimiter line goes on, and this byte with it.
                        self.state = State::DelimiterLine;
                    }
                }
                State::DelimiterLine => {
                    rest = self.count_until(rest, Which::LineEnd, State::Headers)?;
                }
                State::Headers => {
                    rest = self.count_until(rest, Which::BlankLine, State::Content)?;
                }
                State::Content => match self.delimiter.feed(rest) {
                    Some(n) => {
                        rest = rest.get(n..).unwrap_or_default();
                        self.boundary_found();
                    }
                    None => rest = &[],
                },
            }
        }
        if self.state == State::Refused {
            return Err(PartHeadersTooLarge);
        }
        Ok(())
    }

    fn boundary_found(&mut self) {
        self.state = State::AfterBoundary { dashes: 0 };
        self.block = 0;
    }

    /// Counts `rest` into the header block until `which` completes (then moves to `next`);
    /// returns what is left of `rest`.
    fn count_until<'a>(
        &mut self,
        rest: &'a [u8],
        which: Which,
        next: State,
    ) -> Result<&'a [u8], PartHeadersTooLarge> {
        let matcher = match which {
            Which::LineEnd => &mut self.line_end,
            Which::BlankLine => &mut self.blank_line,
        };
        match matcher.feed(rest) {
            Some(n) => {
                self.block += n;
                self.check(self.block)?;
                self.state = next;
                Ok(rest.get(n..).unwrap_or_default())
            }
            None => {
                self.block += rest.len();
                self.check(self.block)?;
                Ok(&[])
            }
        }
    }

    fn check(&mut self, bytes: usize) -> Result<(), PartHeadersTooLarge> {
        if bytes > MAX_PART_HEADER_BYTES {
            self.state = State::Refused;
            return Err(PartHeadersTooLarge);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy)]
enum Which {
    LineEnd,
    BlankLine,
}

/// Finds a byte string in a stream of chunks (Knuth–Morris–Pratt). `matched`, how much of
/// the pattern the input so far ends with, is the carry between chunks: a match split
/// across chunks is found, and no byte is looked at twice.
#[derive(Debug)]
struct Matcher {
    pattern: Box<[u8]>,
    /// For each prefix length `k + 1`, the length of its longest proper prefix that is
    /// also its suffix: where matching resumes after a mismatch.
    fallback: Box<[usize]>,
    matched: usize,
}

impl Matcher {
    fn new(pattern: &[u8]) -> Self {
        let mut fallback = vec![0; pattern.len()];
        let mut k = 0;
        for i in 1..pattern.len() {
            while k > 0 && pattern.get(i) != pattern.get(k) {
                k = fallback.get(k - 1).copied().unwrap_or(0);
            }
            if pattern.get(i) == pattern.get(k) {
                k += 1;
            }
            if let Some(slot) = fallback.get_mut(i) {
                *slot = k;
            }
        }
        Self {
            pattern: pattern.into(),
            fallback: fallback.into(),
            matched: 0,
        }
    }

    fn len(&self) -> usize {
        self.pattern.len()
    }

    /// Feeds `input` until the pattern completes: `Some(n)` when it ends with `input[n - 1]`
    /// (and the matcher starts afresh), `None` when all of `input` was used without that.
    fn feed(&mut self, input: &[u8]) -> Option<usize> {
        let first = *self.pattern.first()?;
        let mut i = 0;
        while i < input.len() {
            if self.matched == 0 {
                // Outside a partial match only the pattern's first byte can start one
                // (memchr: the scan runs over every byte of every document).
                i += memchr::memchr(first, input.get(i..)?)?;
            }
            let byte = *input.get(i)?;
            while self.matched > 0 && self.pattern.get(self.matched) != Some(&byte) {
                self.matched = self.fallback.get(self.matched - 1).copied().unwrap_or(0);
            }
            if self.pattern.get(self.matched) == Some(&byte) {
                self.matched += 1;
            }
            i += 1;
            if self.matched == self.pattern.len() {
                self.matched = 0;
                return Some(i);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: &str = "XyZ";

    /// A part whose header block (from the end of its boundary through the blank line) is
    /// exactly `size` bytes: `\r\n`, a `Content-Disposition` line padded to fit, `\r\n\r\n`.
    fn part(size: usize) -> Vec<u8> {
        let line = "Content-Disposition: form-data; name=\"team_name\"; x=\"";
        let fixed = 2 + line.len() + 1 + 4;
        assert!(size >= fixed);
        let mut part = format!("--{B}\r\n{line}").into_bytes();
        part.resize(part.len() + size - fixed, b'a');
        part.extend_from_slice(b"\"\r\n\r\nRising Stars\r\n");
        part
    }

    fn body(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut body = parts.concat();
        body.extend_from_slice(format!("--{B}--\r\n").as_bytes());
        body
    }

    fn scan_in(body: &[u8], chunk: usize) -> Result<(), PartHeadersTooLarge> {
        let mut scanner = Scanner::new(Some(B));
        body.chunks(chunk.max(1))
            .try_for_each(|piece| scanner.feed(piece))
    }

    /// Every way of cutting `body` into chunks of one size, from 1 byte to all at once.
    fn scan(body: &[u8]) -> Result<(), PartHeadersTooLarge> {
        let whole = scan_in(body, body.len());
        for chunk in [1, 2, 3, 5, 7, 64, 4096, 16 * 1024 + 1] {
            assert_eq!(scan_in(body, chunk), whole, "chunks of {chunk}");
        }
        whole
    }

    #[test]
    fn a_header_block_at_the_limit_passes() {
        let body = body(&[part(MAX_PART_HEADER_BYTES), part(200)]);
        assert_eq!(scan(&body), Ok(()));
    }

    #[test]
    fn a_header_block_one_byte_over_the_limit_fails() {
        let body = body(&[part(200), part(MAX_PART_HEADER_BYTES + 1)]);
        assert_eq!(scan(&body), Err(PartHeadersTooLarge));
    }

    #[test]
    fn it_fails_as_soon_as_the_block_is_over_without_its_end() {
        let mut scanner = Scanner::new(Some(B));
        let head = format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"; x=\"");
        assert_eq!(scanner.feed(head.as_bytes()), Ok(()));
        let mut sent = head.len() - (2 + B.len());
        let line = [b'a'; 1000];
        let refused = loop {
            match scanner.feed(&line) {
                Ok(()) => sent += line.len(),
                Err(refusal) => break refusal,
            }
            assert!(sent <= MAX_PART_HEADER_BYTES, "still reading at {sent}");
        };
        assert_eq!(refused, PartHeadersTooLarge);
        assert_eq!(scanner.feed(b"\r\n\r\n"), Err(PartHeadersTooLarge));
    }

    #[test]
    fn every_part_has_its_own_limit() {
        let parts: Vec<_> = (0..5).map(|_| part(MAX_PART_HEADER_BYTES)).collect();
        assert_eq!(scan(&body(&parts)), Ok(()));
    }

    #[test]
    fn a_delimiter_split_across_chunks_is_found() {
        // Were the second delimiter missed, the next part's 10 KiB headers would count as
        // content and the third part's as part of the second's: each alone fits.
        let body = body(&[part(10_000), part(10_000), part(10_000)]);
        let delimiter = format!("\r\n--{B}");
        let at = body
            .windows(delimiter.len())
            .position(|w| w == delimiter.as_bytes())
            .expect("a second delimiter");
        for cut in at..=at + delimiter.len() {
            let mut scanner = Scanner::new(Some(B));
            let (a, b) = body.split_at(cut);
            assert_eq!(scanner.feed(a).and_then(|()| scanner.feed(b)), Ok(()));
        }
        // The same bodies with one block over the limit fail however they are cut.
        let over = body_with_big_second_part();
        for cut in 0..120 {
            let mut scanner = Scanner::new(Some(B));
            let (a, b) = over.split_at(at + cut - 60);
            assert_eq!(
                scanner.feed(a).and_then(|()| scanner.feed(b)),
                Err(PartHeadersTooLarge),
                "cut at {cut}"
            );
        }
    }

    fn body_with_big_second_part() -> Vec<u8> {
        body(&[part(10_000), part(MAX_PART_HEADER_BYTES + 1), part(10_000)])
    }

    #[test]
    fn a_blank_line_split_across_chunks_ends_the_block() {
        // Two blocks of 9 000 bytes: if the first blank line were missed, the count would
        // run on into the second part and pass the limit.
        let body = body(&[part(9_000), part(9_000)]);
        assert_eq!(scan(&body), Ok(()));
    }

    #[test]
    fn a_preamble_before_the_first_delimiter_is_skipped_and_bounded() {
        let mut with_preamble = b"This is a preamble; multer ignores it.\r\n".to_vec();
        with_preamble.extend(body(&[part(MAX_PART_HEADER_BYTES)]));
        assert_eq!(scan(&with_preamble), Ok(()));

        let mut at_limit = vec![b'p'; MAX_PART_HEADER_BYTES];
        at_limit.extend(body(&[part(300)]));
        assert_eq!(scan(&at_limit), Ok(()));

        let mut over = vec![b'p'; MAX_PART_HEADER_BYTES + 1];
        over.extend(body(&[part(300)]));
        assert_eq!(scan(&over), Err(PartHeadersTooLarge));
    }

    #[test]
    fn the_first_boundary_is_found_where_multer_finds_it_without_a_crlf() {
        // multer takes the first `--boundary` anywhere: what follows is a header block.
        let mut body = format!("junk--{B}\r\nContent-Disposition: form-data; x=\"").into_bytes();
        body.resize(body.len() + MAX_PART_HEADER_BYTES, b'a');
        assert_eq!(scan(&body), Err(PartHeadersTooLarge));
    }

    #[test]
    fn boundary_like_text_without_a_crlf_in_content_is_content() {
        // A document holding `--XyZ` (not at a line start) followed by more than 16 KiB
        // without a blank line: content, not a header block.
        let mut content = format!("--{B}\r\nContent-Disposition: form-data; name=\"payment_receipt\"; filename=\"a.pdf\"\r\n\r\n%PDF-1.7\nx--{B}\r\nnot a header ").into_bytes();
        content.resize(content.len() + 3 * MAX_PART_HEADER_BYTES, b'z');
        content.extend_from_slice(format!(" --{B}-- \n--{B}").as_bytes());
        content.resize(content.len() + 3 * MAX_PART_HEADER_BYTES, b'y');
        content.extend_from_slice(b"\r\n");
        let body = body(&[content]);
        assert_eq!(scan(&body), Ok(()));
    }

    #[test]
    fn after_the_closing_delimiter_nothing_is_counted() {
        let mut body = body(&[part(100)]);
        body.resize(body.len() + 4 * MAX_PART_HEADER_BYTES, b'e');
        assert_eq!(scan(&body), Ok(()));
    }

    #[test]
    fn transport_padding_and_the_delimiter_line_count_towards_the_block() {
        let mut body = format!("--{B}").into_bytes();
        body.resize(body.len() + MAX_PART_HEADER_BYTES, b' ');
        body.extend_from_slice(b"\r\n\r\n");
        assert_eq!(scan(&body), Err(PartHeadersTooLarge));
    }

    #[test]
    fn a_part_without_headers_starts_its_block_after_the_delimiter_line() {
        // As multer reads it, `--XyZ\r\n\r\n` does not end the headers: the blank line is
        // looked for after the delimiter line's CRLF, so what follows is still headers.
        let mut body = format!("--{B}\r\n\r\n").into_bytes();
        body.resize(body.len() + MAX_PART_HEADER_BYTES, b'h');
        assert_eq!(scan(&body), Err(PartHeadersTooLarge));
        let empty = format!("--{B}\r\n\r\n\r\nvalue\r\n--{B}--\r\n");
        assert_eq!(scan(empty.as_bytes()), Ok(()));
    }

    #[test]
    fn without_a_boundary_the_body_is_preamble() {
        let mut scanner = Scanner::new(None);
        assert_eq!(scanner.feed(&[b'a'; MAX_PART_HEADER_BYTES]), Ok(()));
        assert_eq!(scanner.feed(b"a"), Err(PartHeadersTooLarge));
    }

    #[test]
    fn overlapping_partial_matches_are_not_lost() {
        let mut m = Matcher::new(b"\r\n\r\n");
        assert_eq!(m.feed(b"ab\r\n\r"), None);
        assert_eq!(m.feed(b"\r\n\r\nzz"), Some(4));
        let mut m = Matcher::new(b"\r\n--XyZ");
        assert_eq!(m.feed(b"\r\n-\r\n--X"), None);
        assert_eq!(m.feed(b"yZ--"), Some(2));
        let mut m = Matcher::new(b"aab");
        assert_eq!(m.feed(b"aaab"), Some(4));
    }

    #[test]
    fn the_boundary_is_read_as_multer_reads_it() {
        for (content_type, boundary_read) in [
            ("multipart/form-data; boundary=XyZ", Some("XyZ")),
            ("multipart/form-data;boundary=XyZ", Some("XyZ")),
            ("multipart/form-data;   BOUNDARY=XyZ", Some("XyZ")),
            (
                "multipart/form-data; charset=utf-8; boundary=----WebKitFormBoundary7MA4YWxk",
                Some("----WebKitFormBoundary7MA4YWxk"),
            ),
            ("multipart/form-data; boundary=\"a b:c\"", Some("a b:c")),
            ("multipart/form-data; boundary=\"a\\\"; x=y", Some("a\\")),
            ("multipart/form-data; boundary=\"a\"  ; x=y", Some("a")),
            (
                "multipart/form-data; boundary=first; boundary=second",
                Some("first"),
            ),
            (
                "multipart/form-data; x=\"boundary=no\"; boundary=yes",
                Some("yes"),
            ),
            ("multipart/form-data; boundary=", Some("")),
            ("multipart/form-data", None),
            ("multipart/form-data; boundary", None),
            ("multipart/form-data; boundary=\"\"", None),
            ("multipart/form-data; boundary=\"open", None),
            ("multipart/form-data; boundary=a b", None),
            ("multipart/form-data; boundary=;", None),
        ] {
            assert_eq!(
                boundary(content_type).as_deref(),
                boundary_read,
                "{content_type}"
            );
        }
    }

    /// The reading above is multer's own: a body split on the boundary we read is parsed
    /// by axum's `Multipart` into its one field.
    #[tokio::test]
    async fn multer_splits_on_the_boundary_we_read() {
        use axum::extract::{FromRequest, Multipart};
        for content_type in [
            "multipart/form-data; boundary=XyZ",
            "multipart/form-data;   BOUNDARY=XyZ",
            "multipart/form-data; charset=utf-8; boundary=----WebKit7MA4",
            "multipart/form-data; boundary=\"a b:c\"",
            "multipart/form-data; boundary=\"a\\\"; x=y",
            "multipart/form-data; boundary=first; boundary=second",
            "multipart/form-data; x=\"boundary=no\"; boundary=yes",
        ] {
            let read = boundary(content_type).expect("a boundary");
            let body = format!(
                "--{read}\r\nContent-Disposition: form-data; name=\"team\"\r\n\r\nStars\r\n--{read}--\r\n"
            );
            let request = Request::post("/")
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .expect("request");
            let (request, verdict) = guard(request);
            let mut multipart = Multipart::from_request(request, &())
                .await
                .expect("multipart");
            let field = multipart
                .next_field()
                .await
                .expect("parsed")
                .expect("a field");
            assert_eq!(field.name(), Some("team"), "{content_type}");
            assert_eq!(field.text().await.expect("text"), "Stars");
            assert!(!verdict.refused());
        }
    }

    #[tokio::test]
    async fn the_guard_ends_the_body_and_says_so() {
        use axum::extract::{FromRequest, Multipart};
        let mut body =
            format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"; x=\"").into_bytes();
        body.resize(body.len() + 1024 * 1024, b'a');
        let request = Request::post("/")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={B}"),
            )
            .body(Body::from(body))
            .expect("request");
        let (request, verdict) = guard(request);
        let mut multipart = Multipart::from_request(request, &())
            .await
            .expect("multipart");
        assert!(multipart.next_field().await.is_err());
        assert!(verdict.refused());
        assert!(matches!(
            verdict.explain(ApiError::PayloadTooLarge),
            ApiError::PartHeadersTooLarge
        ));
    }
}
