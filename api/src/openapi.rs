//! The OpenAPI 3.1 document of the public api, generated from the handlers' annotations and
//! the types they answer with; served at `/openapi.json` and rendered at `/docs`.

use utoipa::{OpenApi, ToSchema};

use intake_shared::errors::{FieldCode, FieldError, JobFailureCode, ProblemCode};
use intake_shared::http::problem::Problem;
use intake_shared::status::{EmailStatus, JobError, JobState, StatusRecord, Step};

use crate::routes;

/// The registration form, sent as `multipart/form-data` (docs/contract.md §2).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RegistrationForm {
    /// 3–80 characters, trimmed.
    #[schema(min_length = 3, max_length = 80)]
    team_name: String,
    /// 3–50 letters (any script), spaces, hyphens, apostrophes.
    #[schema(min_length = 3, max_length = 50)]
    captain_name: String,
    /// Exactly 10 digits.
    #[schema(pattern = "^[0-9]{10}$")]
    captain_phone: String,
    #[schema(format = Email, max_length = 254)]
    captain_email: String,
    #[schema(min_length = 3, max_length = 50)]
    vice_captain_name: String,
    #[schema(pattern = "^[0-9]{10}$")]
    vice_captain_phone: String,
    #[schema(format = Email, max_length = 254)]
    vice_captain_email: String,
    /// A JSON array of 11–15 `{"name", "role"}` objects, role one of batsman, bowler,
    /// all-rounder, wicket-keeper; no player twice.
    players: String,
    /// PNG, JPEG or PDF (judged by content), at most 5 MiB.
    #[schema(value_type = String, format = Binary)]
    payment_receipt: Vec<u8>,
    /// Optional; PNG, JPEG or PDF, at most 5 MiB.
    #[schema(value_type = Option<String>, format = Binary)]
    pastor_letter: Option<Vec<u8>>,
}

/// The `202` answer to an accepted submission.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcceptedBody {
    #[schema(format = Uuid)]
    id: String,
    /// Always `queued`.
    status: String,
    /// Where to poll: `/v1/registrations/{id}`.
    status_url: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Intake",
        description = "Queue-backed team registration: submit a form, then poll its status.",
        version = env!("CARGO_PKG_VERSION"),
    ),
    paths(
        routes::submit::submit,
        routes::status::status,
        routes::events::events,
        routes::health::live,
        routes::health::ready,
        routes::metrics::render,
    ),
    components(schemas(
        RegistrationForm, AcceptedBody, Problem, FieldError, FieldCode, ProblemCode,
        StatusRecord, JobState, Step, EmailStatus, JobError, JobFailureCode,
    )),
    tags((name = "registrations", description = "Submit a registration and follow it")),
)]
pub struct ApiDoc;

pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}
