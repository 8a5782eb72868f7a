//! The roster export (docs/contract.md §15): every player of the teams the listing's
//! filters match, as a CSV or XLSX download, contacts only when revealed (with a reason),
//! every export audited before a byte of it is sent.
//!
//! Memory stays bounded whatever the number of teams: rows come from Postgres as a stream
//! through a small channel. CSV is written a chunk at a time into the response body; XLSX
//! (a zip that cannot be sent before it is finished) is built by rust_xlsxwriter's
//! constant-memory worksheet into a temp file on a blocking thread and then sent from the
//! file.

use std::borrow::Cow;
use std::io::{Seek, Write};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use intake_shared::http::problem::Problem;
use intake_shared::http::request_id::RequestId;
use intake_store::pg::audit::{Entry, Outcome};
use intake_store::pg::export::{self, ExportRow};
use intake_store::pg::teams::TeamFilter;
use intake_store::pg::{DbError, PgPool};
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::mpsc;

use crate::auth::Organiser;
use crate::error::AdminError;
use crate::routes::actions::reason;
use crate::routes::teams::{TeamsQuery, filter};
use crate::state::AdminState;

/// The audit action of an export without contacts.
pub const EXPORT: &str = "export";
/// The audit action of an export with the captains' and vice-captains' contacts.
pub const EXPORT_PERSONAL_DATA: &str = "export_personal_data";

/// Rows fetched ahead of the writer: enough to keep Postgres and the writer both busy,
/// few enough (a few hundred bytes each) not to matter.
const ROWS_AHEAD: usize = 256;
/// A CSV body chunk is sent once it holds this much.
const CSV_CHUNK: usize = 16 * 1024;
/// Read size when sending the XLSX file.
const FILE_CHUNK: usize = 64 * 1024;

const COLUMNS: [&str; 8] = [
    "team_id",
    "team_name",
    "review_state",
    "payment_verified",
    "captain_name",
    "vice_captain_name",
    "player_name",
    "player_role",
];
const CONTACT_COLUMNS: [&str; 4] = [
    "captain_phone",
    "captain_email",
    "vice_captain_phone",
    "vice_captain_email",
];

#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// `csv` (the default) or `xlsx`.
    pub format: Option<String>,
    pub q: Option<String>,
    pub state: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    /// `true` adds the captains' and vice-captains' phones and emails (a reason, audited).
    #[serde(default)]
    pub reveal: bool,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Xlsx,
}

impl Format {
    fn parse(given: Option<&str>) -> Result<Self, AdminError> {
        match given {
            None | Some("csv") => Ok(Self::Csv),
            Some("xlsx") => Ok(Self::Xlsx),
            Some(other) => Err(AdminError::BadRequest(format!(
                "format must be csv or xlsx, not {other:?}"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// What can go wrong with an export. Before the first byte each is a problem+json answer;
/// after it the body is cut short (so the download fails rather than looking complete)
/// and the error is logged.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("reading the export's rows")]
    Rows(#[from] DbError),
    #[error("the task fetching the export's rows stopped before the last row")]
    FetcherGone,
    #[error("building the XLSX workbook")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("writing the export")]
    Io(#[from] std::io::Error),
    #[error("the XLSX builder stopped")]
    BuilderGone(#[from] tokio::task::JoinError),
}

impl IntoResponse for ExportError {
    fn into_response(self) -> Response {
        match self {
            Self::Admin(err) => err.into_response(),
            Self::Rows(err) => AdminError::Database(err).into_response(),
            _ => {
                tracing::error!(error = &self as &dyn std::error::Error, "export failed");
                Problem::for_status(StatusCode::INTERNAL_SERVER_ERROR).into_response()
            }
        }
    }
}

#[tracing::instrument(skip_all, fields(format = query.format.as_deref(), reveal = query.reveal))]
pub async fn export(
    State(state): State<AdminState>,
    Organiser(actor): Organiser,
    Extension(RequestId(request_id)): Extension<RequestId>,
    Query(query): Query<ExportQuery>,
) -> Result<Response, ExportError> {
    let format = Format::parse(query.format.as_deref())?;
    let reveal_reason = if query.reveal {
        Some(reason(query.reason.as_deref())?)
    } else {
        None
    };
    let filter = filter(&TeamsQuery {
        q: query.q.clone(),
        state: query.state.clone(),
        since: query.since.clone(),
        until: query.until.clone(),
        limit: None,
        cursor: None,
    })?;
    let audit = Audit {
        state: state.clone(),
        actor: actor.name,
        action: if query.reveal {
            EXPORT_PERSONAL_DATA
        } else {
            EXPORT
        },
        reason: reveal_reason,
        request_id,
    };

    let mut rows = Rows::fetch(state.pool.clone(), filter.clone(), query.reveal);
    // The first row (or the end) before anything is promised: a database that is down is
    // still a proper answer, and an audit row is written only for an export that runs.
    let first = rows.next().await?;
    audit.record(detail(format, query.reveal, &filter)).await?;

    let filename = filename(format);
    let (body, length) = match format {
        Format::Csv => (csv_body(rows, first, query.reveal, audit)?, None),
        Format::Xlsx => {
            let built = tokio::task::spawn_blocking(move || xlsx_file(rows, first, query.reveal))
                .await
                .map_err(ExportError::from)
                .and_then(|built| built);
            let file = match built {
                Ok(file) => file,
                Err(err) => {
                    audit.failed(&err).await;
                    return Err(err);
                }
            };
            let length = file.metadata()?.len();
            let stream = tokio_util::io::ReaderStream::with_capacity(
                tokio::fs::File::from_std(file),
                FILE_CHUNK,
            );
            (Body::from_stream(stream), Some(length))
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    // A roster (perhaps with contacts) is not for caches.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(length) = length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    Ok(response)
}

/// `teams-YYYYMMDD-HHMMSS.csv` (UTC).
fn filename(format: Format) -> String {
    let stamp = OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .unwrap_or_else(|_| "export".to_owned());
    format!("teams-{stamp}.{}", format.as_str())
}

/// The audit detail: the format and the filters as applied.
fn detail(format: Format, reveal: bool, filter: &TeamFilter) -> Value {
    let time = |t: Option<OffsetDateTime>| t.and_then(|t| t.format(&Rfc3339).ok());
    json!({
        "format": format.as_str(),
        "personal_data": if reveal { "revealed" } else { "masked" },
        "filters": {
            "q": filter.q,
            "state": filter.state.map(|s| s.as_str()),
            "since": time(filter.since),
            "until": time(filter.until),
        },
    })
}

/// The export's audit entry, owned, so the body can record a failure after the handler
/// has returned.
struct Audit {
    state: AdminState,
    actor: String,
    action: &'static str,
    reason: Option<String>,
    request_id: String,
}

impl Audit {
    fn entry(&self) -> Entry<'_> {
        Entry {
            actor: &self.actor,
            action: self.action,
            registrations: &[],
            reason: self.reason.as_deref(),
            request_id: Some(&self.request_id),
        }
    }

    async fn record(&self, detail: Value) -> Result<(), DbError> {
        self.entry()
            .record(&self.state.pool, Outcome::Succeeded, detail)
            .await
            .map(drop)
    }

    /// A second row for an export that broke after it was recorded (best effort).
    async fn failed(&self, err: &ExportError) {
        self.entry().record_failure(&self.state.pool, err).await;
    }
}

/// What the fetching task sends: rows, then the end or the error that ended them.
enum Fetched {
    Row(ExportRow),
    End,
    Failed(DbError),
}

/// The export's rows, fetched by a task of its own (the store's stream borrows the pool,
/// and the body must own what it reads) a bounded channel ahead of the writer. The end is
/// a message of its own, so a fetcher that vanished is an error, never a short roster.
struct Rows {
    rx: mpsc::Receiver<Fetched>,
}

impl Rows {
    fn fetch(pool: PgPool, filter: TeamFilter, reveal: bool) -> Self {
        let (tx, rx) = mpsc::channel(ROWS_AHEAD);
        tokio::spawn(async move {
            let mut rows = export::rows(&pool, &filter, reveal);
            let last = loop {
                let fetched = match rows.next().await {
                    Some(Ok(row)) => Fetched::Row(row),
                    Some(Err(err)) => break Fetched::Failed(err),
                    None => break Fetched::End,
                };
                // A closed channel: the download was abandoned; stop reading.
                if tx.send(fetched).await.is_err() {
                    return;
                }
            };
            let _ = tx.send(last).await;
        });
        Self { rx }
    }

    fn take(fetched: Option<Fetched>) -> Result<Option<ExportRow>, ExportError> {
        match fetched {
            Some(Fetched::Row(row)) => Ok(Some(row)),
            Some(Fetched::End) => Ok(None),
            Some(Fetched::Failed(err)) => Err(err.into()),
            None => Err(ExportError::FetcherGone),
        }
    }

    async fn next(&mut self) -> Result<Option<ExportRow>, ExportError> {
        Self::take(self.rx.recv().await)
    }

    /// [`Rows::next`] for the XLSX builder's blocking thread.
    fn blocking_next(&mut self) -> Result<Option<ExportRow>, ExportError> {
        Self::take(self.rx.blocking_recv())
    }
}

fn header_row(reveal: bool) -> impl Iterator<Item = &'static str> {
    let contacts: &[&str] = if reveal { &CONTACT_COLUMNS } else { &[] };
    COLUMNS.into_iter().chain(contacts.iter().copied())
}

/// One cell of a row: text, or the payment flag (a boolean cell in XLSX).
#[derive(Debug, Clone, Copy)]
enum Cell<'a> {
    Text(&'a str),
    Flag(bool),
}

/// The row's cells, in the header's order.
fn cells(row: &ExportRow) -> Vec<Cell<'_>> {
    let mut cells = vec![
        Cell::Text(&row.team_id),
        Cell::Text(&row.team_name),
        Cell::Text(row.review_state.as_str()),
        Cell::Flag(row.payment_verified),
        Cell::Text(&row.captain_name),
        Cell::Text(&row.vice_captain_name),
        Cell::Text(&row.player_name),
        Cell::Text(&row.player_role),
    ];
    if let Some(c) = &row.contacts {
        cells.extend(
            [
                &c.captain_phone,
                &c.captain_email,
                &c.vice_captain_phone,
                &c.vice_captain_email,
            ]
            .map(|v| Cell::Text(v)),
        );
    }
    cells
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, or a leading tab or
/// carriage return) gets a leading `'`, so opening the CSV runs nothing a team typed
/// (team names are free text). XLSX cells are typed strings and need no such guard.
fn csv_cell(cell: Cell<'_>) -> Cow<'_, [u8]> {
    match cell {
        Cell::Flag(true) => Cow::Borrowed(b"true"),
        Cell::Flag(false) => Cow::Borrowed(b"false"),
        Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            Cow::Owned(format!("'{text}").into_bytes())
        }
        Cell::Text(text) => Cow::Borrowed(text.as_bytes()),
    }
}

fn csv_error(err: csv::Error) -> ExportError {
    ExportError::Io(err.into())
}

/// A CSV writer appending to `buffer`, flushed after each record so `get_ref` shows all.
fn csv_writer(buffer: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::Writer::from_writer(buffer)
}

fn write_csv_row(writer: &mut csv::Writer<Vec<u8>>, row: &ExportRow) -> Result<(), ExportError> {
    writer
        .write_record(cells(row).into_iter().map(csv_cell))
        .map_err(csv_error)?;
    Ok(writer.flush()?)
}

fn into_bytes(writer: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, ExportError> {
    writer
        .into_inner()
        .map_err(|err| ExportError::Io(err.into_error()))
}

struct CsvBody {
    rows: Rows,
    /// What was written before the body started (the header, the first row).
    head: Vec<u8>,
    audit: Audit,
    done: bool,
}

impl CsvBody {
    /// The next chunk: rows written until it holds [`CSV_CHUNK`] bytes or the rows end.
    async fn chunk(&mut self) -> Result<Option<Vec<u8>>, ExportError> {
        let mut writer = csv_writer(std::mem::take(&mut self.head));
        while !self.done && writer.get_ref().len() < CSV_CHUNK {
            match self.rows.next().await? {
                Some(row) => write_csv_row(&mut writer, &row)?,
                None => self.done = true,
            }
        }
        let chunk = into_bytes(writer)?;
        Ok((!chunk.is_empty()).then_some(chunk))
    }
}

/// The CSV body: the header and the first row now, the rest as they come.
fn csv_body(
    rows: Rows,
    first: Option<ExportRow>,
    reveal: bool,
    audit: Audit,
) -> Result<Body, ExportError> {
    let mut writer = csv_writer(Vec::with_capacity(CSV_CHUNK + 1024));
    writer.write_record(header_row(reveal)).map_err(csv_error)?;
    if let Some(row) = &first {
        write_csv_row(&mut writer, row)?;
    }
    let body = CsvBody {
        rows,
        head: into_bytes(writer)?,
        audit,
        done: first.is_none(),
    };
    let stream = futures::stream::unfold(Some(body), |body| async move {
        let mut body = body?;
        match body.chunk().await {
            Ok(Some(chunk)) => Some((Ok(chunk), Some(body))),
            Ok(None) => None,
            Err(err) => {
                // The status line is long gone: log, audit, and cut the body short.
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    "export broke off mid-stream"
                );
                body.audit.failed(&err).await;
                Some((Err(std::io::Error::other(err)), None))
            }
        }
    });
    Ok(Body::from_stream(stream))
}

/// Builds the workbook in an anonymous temp file (gone when the file is closed), one row
/// at a time: the constant-memory worksheet writes each row out when the next begins.
fn xlsx_file(
    mut rows: Rows,
    first: Option<ExportRow>,
    reveal: bool,
) -> Result<std::fs::File, ExportError> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    let sheet = workbook.add_worksheet_with_constant_memory()?;
    sheet.set_name("Teams")?;
    for (col, name) in (0u16..).zip(header_row(reveal)) {
        sheet.write_string_with_format(0, col, name, &bold)?;
    }
    let mut next = first;
    let mut at: u32 = 1;
    while let Some(row) = next {
        for (col, cell) in (0u16..).zip(cells(&row)) {
            match cell {
                Cell::Text(text) => sheet.write_string(at, col, text)?,
                Cell::Flag(flag) => sheet.write_boolean(at, col, flag)?,
            };
        }
        at += 1;
        next = rows.blocking_next()?;
    }
    let mut file = tempfile::tempfile()?;
    {
        let mut out = std::io::BufWriter::new(&mut file);
        workbook.save_to_writer(&mut out)?;
        out.flush()?;
    }
    file.rewind()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::{Cell, csv_cell};

    #[test]
    fn a_csv_cell_a_spreadsheet_would_run_as_a_formula_is_quoted() {
        for (given, written) in [
            ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
            ("+91 team", "'+91 team"),
            ("-XI", "'-XI"),
            ("@home", "'@home"),
            ("Rising Stars = best", "Rising Stars = best"),
        ] {
            assert_eq!(csv_cell(Cell::Text(given)).as_ref(), written.as_bytes());
        }
        assert_eq!(csv_cell(Cell::Flag(true)).as_ref(), b"true");
    }
}
