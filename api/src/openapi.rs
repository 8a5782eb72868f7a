//! The OpenAPI 3.1 document of the public api, generated from the handlers' annotations and
//! the types they answer with; served at `/openapi.json` and rendered at `/docs`.
//!
//! The document is a contract in the strict sense: every rule the api enforces on a request
//! is stated as a schema keyword where JSON Schema can say it (lengths, patterns, formats,
//! the players' JSON, the documents' media types and sizes), so that a request the schema
//! allows is one the api accepts and one it forbids is one the api refuses
//! (`api/tests/contract.rs` holds schemathesis to both). What JSON Schema cannot say (no
//! player twice, lengths counted after trimming and Unicode NFC, a document's type judged by
//! its content) is said in the descriptions.

use utoipa::openapi::schema::{Object, Schema};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{OpenApi, ToSchema};

use intake_shared::errors::{FieldCode, FieldError, JobFailureCode, ProblemCode};
use intake_shared::http::problem::Problem;
use intake_shared::status::{EmailStatus, JobError, JobState, StatusRecord, Step};

use crate::routes;

/// Operation ids, stable: clients generate method names from them and the submission's
/// links name the two ways to follow a registration by them.
pub mod operation {
    pub const SUBMIT: &str = "submitRegistration";
    pub const STATUS: &str = "getRegistrationStatus";
    pub const EVENTS: &str = "streamRegistrationEvents";
    pub const LIVE: &str = "getLiveness";
    pub const READY: &str = "getReadiness";
    pub const METRICS: &str = "getMetrics";
}

/// The patterns of the form's fields: the rules of `intake_shared::domain` as ECMA-262
/// regular expressions (the dialect of JSON Schema's `pattern`, with `\p{…}` classes).
pub mod pattern {
    /// `IdempotencyKey`: visible ASCII, no spaces (`u8::is_ascii_graphic`); the length,
    /// 1–255, is `minLength`/`maxLength`.
    pub const IDEMPOTENCY_KEY: &str = r"^[\x21-\x7E]+$";

    /// `TeamName`: no control characters (`char::is_control`, Unicode `Cc`: U+0000–U+001F,
    /// U+007F–U+009F) and no bidirectional controls (U+200E, U+200F, U+202A–U+202E,
    /// U+2066–U+2069) anywhere, and no white space (`char::is_whitespace`: the `Cc` ones and
    /// `Z`: U+0020, U+00A0, U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000)
    /// at either end, which is where the api trims it. Spelled as code point ranges rather
    /// than `\p{Cc}`/`\p{Z}`, which generators (schemathesis) cannot draw from.
    pub const TEAM_NAME: &str = concat!(
        r"^[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u200E\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000]",
        r"(?:[^\x00-\x1F\x7F-\x9F\u200E\u200F\u202A-\u202E\u2066-\u2069]*",
        r"[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u200E\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000])?$",
    );

    /// `PersonName`: letters of any script, spaces, hyphens and apostrophes (`'` and `’`),
    /// at least one letter, no space at either end.
    pub const PERSON_NAME: &str = concat!(
        r"^(?:[\p{L}'\u2019\-][\p{L}'\u2019 \-]*)?\p{L}",
        r"(?:[\p{L}'\u2019 \-]*[\p{L}'\u2019\-])?$",
    );

    /// `Phone`: exactly ten ASCII digits.
    pub const PHONE: &str = r"^[0-9]{10}$";

    /// A player's name inside the players' JSON, where `minLength`/`maxLength` cannot reach:
    /// a letter, then 1–48 letters, spaces, hyphens or apostrophes, then no space: 3–50
    /// characters of `PersonName`. (Names that start with a hyphen or an apostrophe are
    /// valid too; a pattern that allowed them and still counted to 50 would be unreadable.)
    const PLAYER_NAME: &str = r"\p{L}[\p{L}'\u2019 \-]{1,48}[\p{L}'\u2019\-]";
    /// `Role`, as the JSON spells it.
    const ROLE: &str = "(?:batsman|bowler|all-rounder|wicket-keeper)";

    /// The players' JSON: an array of 11–15 `{"name", "role"}` objects (compact JSON; the
    /// api accepts any JSON spelling of the same array).
    pub fn players() -> String {
        let player = format!(r#"\{{"name":"{PLAYER_NAME}","role":"{ROLE}"\}}"#);
        format!(r"^\[{player}(?:,{player}){{10,14}}\]$")
    }
}

/// The most a document may weigh: 5 MiB (`DocumentType::MAX_BYTES`). The schema attributes
/// below need it as a literal, `5242880`; this fails the build if the two part.
const DOCUMENT_MAX_BYTES: u64 = intake_shared::domain::DocumentType::MAX_BYTES;
const _: () = assert!(DOCUMENT_MAX_BYTES == 5_242_880);
/// The media types a document may have, as the parts' `encoding` lists them; the api judges
/// a document by its first bytes, not by the part's `Content-Type`.
pub const DOCUMENT_TYPES: &str = "image/png, image/jpeg, application/pdf";

/// The registration form, sent as `multipart/form-data` (docs/contract.md §2). Every text
/// field is trimmed and put in Unicode NFC before its rules apply; lengths count characters.
/// A field the form does not have, or a field given twice, is refused.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct RegistrationForm {
    /// 3–80 characters, no control characters.
    #[schema(
        min_length = 3,
        max_length = 80,
        pattern = r"^[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u200E\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000](?:[^\x00-\x1F\x7F-\x9F\u200E\u200F\u202A-\u202E\u2066-\u2069]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u200E\u200F\u2028-\u202F\u205F\u2066-\u2069\u3000])?$"
    )]
    team_name: String,
    /// 3–50 letters (any script), spaces, hyphens and apostrophes, at least one letter.
    #[schema(
        min_length = 3,
        max_length = 50,
        pattern = r"^(?:[\p{L}'\u2019\-][\p{L}'\u2019 \-]*)?\p{L}(?:[\p{L}'\u2019 \-]*[\p{L}'\u2019\-])?$"
    )]
    captain_name: String,
    /// Exactly 10 digits.
    #[schema(min_length = 10, max_length = 10, pattern = r"^[0-9]{10}$")]
    captain_phone: String,
    /// An email address with a dotted domain name (no `localhost`, no `[IP]`), at most 254
    /// characters.
    #[schema(format = Email, max_length = 254)]
    captain_email: String,
    /// As `captain_name`.
    #[schema(
        min_length = 3,
        max_length = 50,
        pattern = r"^(?:[\p{L}'\u2019\-][\p{L}'\u2019 \-]*)?\p{L}(?:[\p{L}'\u2019 \-]*[\p{L}'\u2019\-])?$"
    )]
    vice_captain_name: String,
    /// As `captain_phone`.
    #[schema(min_length = 10, max_length = 10, pattern = r"^[0-9]{10}$")]
    vice_captain_phone: String,
    /// As `captain_email`.
    #[schema(format = Email, max_length = 254)]
    vice_captain_email: String,
    /// The players as JSON text: an array of 11–15 objects `{"name": …, "role": …}` (see
    /// the `Player` schema): `name` as `captain_name`, `role` one of `batsman`, `bowler`,
    /// `all-rounder`, `wicket-keeper`, no other keys, and no player twice (names compared
    /// ignoring case and repeated spaces). At most 64 KiB.
    players: String,
    /// PNG, JPEG or PDF, judged by the file's content (not its name or `Content-Type`); at
    /// most 5 MiB (5242880 bytes).
    #[schema(value_type = String, format = Binary, min_length = 1, max_length = 5242880)]
    payment_receipt: Vec<u8>,
    /// Optional; PNG, JPEG or PDF, judged by content, at most 5 MiB. An empty file part
    /// (a file input left empty) counts as no letter.
    #[schema(value_type = String, required = false, format = Binary, max_length = 5242880)]
    pastor_letter: Option<Vec<u8>>,
}

/// One entry of the `players` JSON of [`RegistrationForm`].
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct Player {
    /// As the form's `captain_name`; no two players with the same name (ignoring case and
    /// repeated spaces).
    #[schema(
        min_length = 3,
        max_length = 50,
        pattern = r"^(?:[\p{L}'\u2019\-][\p{L}'\u2019 \-]*)?\p{L}(?:[\p{L}'\u2019 \-]*[\p{L}'\u2019\-])?$"
    )]
    name: String,
    #[schema(inline)]
    role: Role,
}

/// What a player does in the team.
#[derive(ToSchema)]
#[serde(rename_all = "kebab-case")]
#[allow(dead_code)]
pub enum Role {
    Batsman,
    Bowler,
    AllRounder,
    WicketKeeper,
}

/// The `202` answer to an accepted submission. `status` is always `queued`, even when the
/// registration has moved on since (a replay).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct AcceptedBody {
    /// The registration id: the `{id}` of the status and event-stream operations.
    #[schema(format = Uuid)]
    id: String,
    #[schema(inline)]
    status: AcceptedStatus,
    /// Where to poll: `/v1/registrations/{id}`, as the `Location` header.
    #[schema(
        pattern = r"^/v1/registrations/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    status_url: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum AcceptedStatus {
    Queued,
}

/// One event of `GET /v1/registrations/{id}/events` (each event of the `text/event-stream`,
/// as its `event:` and `data:` lines read): `event: status` with the status record as JSON,
/// or, last on a stream that reached its maximum age, `event: timeout` with the last record
/// sent again (poll the status URL after it). Keep-alive comments carry no event.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StatusEvent {
    #[schema(inline)]
    event: StatusEventName,
    /// The status record (`StatusRecord`) as JSON text.
    #[schema(content_media_type = "application/json")]
    data: String,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum StatusEventName {
    Status,
    /// The server ended the stream at its maximum age; the status may not be final.
    Timeout,
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
        RegistrationForm, Player, AcceptedBody, StatusEvent, Problem, FieldError, FieldCode, ProblemCode,
        StatusRecord, JobState, Step, EmailStatus, JobError, JobFailureCode,
    )),
    tags((name = "registrations", description = "Submit a registration and follow it")),
)]
pub struct ApiDoc;

/// The document: what the annotations generate, plus what they cannot spell.
pub fn contract() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    // The players' pattern is built from its parts rather than written out in the attribute.
    if let Some(players) = property(&mut doc, "RegistrationForm", "players") {
        players.pattern = Some(pattern::players());
    }
    // `contentSchema` has no attribute: an event's data is a status record.
    if let Some(data) = property(&mut doc, "StatusEvent", "data") {
        data.content_schema = Some(Box::new(RefOr::Ref(Ref::from_schema_name("StatusRecord"))));
    }
    doc
}

/// An object property of a component schema.
fn property<'d>(
    doc: &'d mut utoipa::openapi::OpenApi,
    component: &str,
    name: &str,
) -> Option<&'d mut Object> {
    let schema = doc.components.as_mut()?.schemas.get_mut(component)?;
    let RefOr::T(Schema::Object(object)) = schema else {
        return None;
    };
    match object.properties.get_mut(name)? {
        RefOr::T(Schema::Object(property)) => Some(property),
        _ => None,
    }
}

pub async fn document() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(contract())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json() -> serde_json::Value {
        serde_json::to_value(contract()).expect("the document serialises")
    }

    #[test]
    fn the_field_patterns_are_the_module_constants() {
        let doc = json();
        let form = &doc["components"]["schemas"]["RegistrationForm"]["properties"];
        assert_eq!(form["team_name"]["pattern"], pattern::TEAM_NAME);
        assert_eq!(form["captain_name"]["pattern"], pattern::PERSON_NAME);
        assert_eq!(form["vice_captain_name"]["pattern"], pattern::PERSON_NAME);
        assert_eq!(form["captain_phone"]["pattern"], pattern::PHONE);
        assert_eq!(form["players"]["pattern"], pattern::players());
        let player = &doc["components"]["schemas"]["Player"]["properties"];
        assert_eq!(player["name"]["pattern"], pattern::PERSON_NAME);
        let submit = &doc["paths"]["/v1/registrations"]["post"];
        let key = &submit["parameters"][0];
        assert_eq!(key["name"], "Idempotency-Key");
        assert_eq!(key["schema"]["pattern"], pattern::IDEMPOTENCY_KEY);
    }

    #[test]
    fn documents_are_limited_to_the_domain_size_and_types() {
        let doc = json();
        let form = &doc["components"]["schemas"]["RegistrationForm"]["properties"];
        for field in ["payment_receipt", "pastor_letter"] {
            assert_eq!(form[field]["maxLength"], DOCUMENT_MAX_BYTES, "{field}");
            let encoding = &doc["paths"]["/v1/registrations"]["post"]["requestBody"]["content"]["multipart/form-data"]
                ["encoding"][field];
            assert_eq!(encoding["contentType"], DOCUMENT_TYPES, "{field}");
        }
    }

    #[test]
    fn an_event_carries_a_status_record() {
        let doc = json();
        let data = &doc["components"]["schemas"]["StatusEvent"]["properties"]["data"];
        assert_eq!(data["contentMediaType"], "application/json");
        assert_eq!(
            data["contentSchema"]["$ref"],
            "#/components/schemas/StatusRecord"
        );
    }

    #[test]
    fn the_submission_links_to_both_ways_of_following_it() {
        let doc = json();
        let links = &doc["paths"]["/v1/registrations"]["post"]["responses"]["202"]["links"];
        for (name, id) in [("status", operation::STATUS), ("events", operation::EVENTS)] {
            assert_eq!(links[name]["operationId"], id, "{name}");
            assert_eq!(
                links[name]["parameters"]["id"], "$response.body#/id",
                "{name}"
            );
        }
    }

    #[test]
    fn every_operation_has_its_stable_id() {
        let doc = json();
        for (path, method, id) in [
            ("/v1/registrations", "post", operation::SUBMIT),
            ("/v1/registrations/{id}", "get", operation::STATUS),
            ("/v1/registrations/{id}/events", "get", operation::EVENTS),
            ("/health/live", "get", operation::LIVE),
            ("/health/ready", "get", operation::READY),
            ("/metrics", "get", operation::METRICS),
        ] {
            assert_eq!(
                doc["paths"][path][method]["operationId"], id,
                "{method} {path}"
            );
        }
    }
}
