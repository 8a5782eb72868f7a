//! One test per rule of the form (docs/contract.md §2), against the real api and Redis. Every
//! rejection must also leave nothing behind: no staged file and no Redis key.

mod support;

use support::form::{TestForm, jpeg, pdf, players, png};
use support::{accepted, field_error, spawn_app};

const MIB5: usize = 5 * 1024 * 1024;

async fn rejects(form: TestForm, field: &str, code: &str) {
    let app = spawn_app().await;
    field_error(app.submit_new(form.to_form()).await, field, code).await;
    assert!(
        app.staged_files().is_empty(),
        "staged files left: {:?}",
        app.staged_files()
    );
    assert!(
        app.redis_keys().is_empty(),
        "redis keys left: {:?}",
        app.redis_keys()
    );
}

async fn accepts(form: TestForm) -> serde_json::Value {
    let app = spawn_app().await;
    let id = accepted(app.submit_new(form.to_form()).await).await;
    let jobs = app.queued_payloads();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["registration_id"], id);
    jobs[0].clone()
}

fn chars(n: usize) -> String {
    "abcdefghij".chars().cycle().take(n).collect()
}

// team_name

#[tokio::test]
async fn rejects_team_name_of_two_characters() {
    rejects(
        TestForm::valid().set("team_name", "AB"),
        "team_name",
        "TOO_SHORT",
    )
    .await;
}

#[tokio::test]
async fn accepts_team_name_of_three_characters() {
    accepts(TestForm::valid().set("team_name", "ABC")).await;
}

#[tokio::test]
async fn accepts_team_name_of_eighty_characters() {
    accepts(TestForm::valid().set("team_name", &chars(80))).await;
}

#[tokio::test]
async fn rejects_team_name_of_eighty_one_characters() {
    rejects(
        TestForm::valid().set("team_name", &chars(81)),
        "team_name",
        "TOO_LONG",
    )
    .await;
}

#[tokio::test]
async fn team_name_is_trimmed_before_counting() {
    rejects(
        TestForm::valid().set("team_name", "   AB   "),
        "team_name",
        "TOO_SHORT",
    )
    .await;
    let job = accepts(TestForm::valid().set("team_name", "  Rising Stars  ")).await;
    assert_eq!(job["registration"]["team_name"], "Rising Stars");
}

#[tokio::test]
async fn rejects_missing_team_name() {
    rejects(
        TestForm::valid().remove("team_name"),
        "team_name",
        "REQUIRED",
    )
    .await;
}

#[tokio::test]
async fn rejects_team_name_with_control_characters() {
    rejects(
        TestForm::valid().set("team_name", "Stars\u{0007}XI"),
        "team_name",
        "INVALID_CHARACTERS",
    )
    .await;
}

// captain_name and vice_captain_name

#[tokio::test]
async fn rejects_captain_name_of_two_characters() {
    rejects(
        TestForm::valid().set("captain_name", "Al"),
        "captain_name",
        "TOO_SHORT",
    )
    .await;
}

#[tokio::test]
async fn accepts_captain_name_of_three_characters() {
    accepts(TestForm::valid().set("captain_name", "Ali")).await;
}

#[tokio::test]
async fn accepts_captain_name_of_fifty_characters() {
    accepts(TestForm::valid().set("captain_name", &chars(50))).await;
}

#[tokio::test]
async fn rejects_captain_name_of_fifty_one_characters() {
    rejects(
        TestForm::valid().set("captain_name", &chars(51)),
        "captain_name",
        "TOO_LONG",
    )
    .await;
}

#[tokio::test]
async fn rejects_captain_name_with_digits() {
    rejects(
        TestForm::valid().set("captain_name", "Arjun 2"),
        "captain_name",
        "INVALID_CHARACTERS",
    )
    .await;
}

#[tokio::test]
async fn accepts_names_in_any_script_with_hyphens_and_apostrophes() {
    let job = accepts(
        TestForm::valid()
            .set("captain_name", "Zoë O'Brien-Ångström")
            .set("vice_captain_name", "राहुल शर्मा"),
    )
    .await;
    assert_eq!(job["registration"]["vice_captain"]["name"], "राहुल शर्मा");
}

#[tokio::test]
async fn rejects_vice_captain_name_of_two_characters() {
    rejects(
        TestForm::valid().set("vice_captain_name", "Bo"),
        "vice_captain_name",
        "TOO_SHORT",
    )
    .await;
}

#[tokio::test]
async fn rejects_missing_vice_captain_name() {
    rejects(
        TestForm::valid().remove("vice_captain_name"),
        "vice_captain_name",
        "REQUIRED",
    )
    .await;
}

// phones

#[tokio::test]
async fn rejects_phone_with_nine_digits() {
    rejects(
        TestForm::valid().set("captain_phone", "987654321"),
        "captain_phone",
        "INVALID_PHONE",
    )
    .await;
}

#[tokio::test]
async fn accepts_phone_with_ten_digits() {
    let job = accepts(TestForm::valid().set("captain_phone", "0123456789")).await;
    assert_eq!(job["registration"]["captain"]["phone"], "0123456789");
}

#[tokio::test]
async fn rejects_phone_with_eleven_digits() {
    rejects(
        TestForm::valid().set("captain_phone", "98765432101"),
        "captain_phone",
        "INVALID_PHONE",
    )
    .await;
}

#[tokio::test]
async fn rejects_phone_with_letters() {
    rejects(
        TestForm::valid().set("captain_phone", "98765abcde"),
        "captain_phone",
        "INVALID_PHONE",
    )
    .await;
}

#[tokio::test]
async fn rejects_vice_captain_phone_with_nine_digits() {
    rejects(
        TestForm::valid().set("vice_captain_phone", "912345678"),
        "vice_captain_phone",
        "INVALID_PHONE",
    )
    .await;
}

// emails

#[tokio::test]
async fn rejects_invalid_captain_email() {
    rejects(
        TestForm::valid().set("captain_email", "not-an-email"),
        "captain_email",
        "INVALID_EMAIL",
    )
    .await;
}

#[tokio::test]
async fn rejects_invalid_vice_captain_email() {
    rejects(
        TestForm::valid().set("vice_captain_email", "ravi@"),
        "vice_captain_email",
        "INVALID_EMAIL",
    )
    .await;
}

fn email_of_length(n: usize) -> String {
    // 64-character local part, then dotted labels of at most 63 characters.
    let local = "a".repeat(64);
    let mut domain_len = n - 65 - 4; // "@" and ".org"
    let mut labels = Vec::new();
    while domain_len > 0 {
        let label = domain_len.min(63);
        labels.push("b".repeat(label));
        domain_len -= label;
        domain_len = domain_len.saturating_sub(1); // the dot between labels
    }
    let email = format!("{local}@{}.org", labels.join("."));
    assert_eq!(email.len(), n);
    email
}

#[tokio::test]
async fn accepts_email_of_254_characters() {
    accepts(TestForm::valid().set("captain_email", &email_of_length(254))).await;
}

#[tokio::test]
async fn rejects_email_of_255_characters() {
    rejects(
        TestForm::valid().set("captain_email", &email_of_length(255)),
        "captain_email",
        "TOO_LONG",
    )
    .await;
}

// players

#[tokio::test]
async fn rejects_ten_players() {
    rejects(
        TestForm::valid().set("players", &players(10).to_string()),
        "players",
        "TOO_FEW_PLAYERS",
    )
    .await;
}

#[tokio::test]
async fn accepts_eleven_players() {
    let job = accepts(TestForm::valid().set("players", &players(11).to_string())).await;
    assert_eq!(
        job["registration"]["players"].as_array().map(Vec::len),
        Some(11)
    );
}

#[tokio::test]
async fn accepts_fifteen_players() {
    let job = accepts(TestForm::valid().set("players", &players(15).to_string())).await;
    assert_eq!(
        job["registration"]["players"].as_array().map(Vec::len),
        Some(15)
    );
}

#[tokio::test]
async fn rejects_sixteen_players() {
    rejects(
        TestForm::valid().set("players", &players(16).to_string()),
        "players",
        "TOO_MANY_PLAYERS",
    )
    .await;
}

#[tokio::test]
async fn rejects_duplicate_player() {
    let mut list = players(12);
    list[11]["name"] = list[3]["name"].clone();
    rejects(
        TestForm::valid().set("players", &list.to_string()),
        "players[11].name",
        "DUPLICATE_PLAYER",
    )
    .await;
}

#[tokio::test]
async fn duplicate_player_ignores_case_and_spacing() {
    let mut list = players(12);
    let upper = list[3]["name"]
        .as_str()
        .map(|s| format!("  {}  ", s.to_uppercase()));
    list[11]["name"] = serde_json::json!(upper);
    rejects(
        TestForm::valid().set("players", &list.to_string()),
        "players[11].name",
        "DUPLICATE_PLAYER",
    )
    .await;
}

#[tokio::test]
async fn rejects_bad_role() {
    let mut list = players(11);
    list[0]["role"] = "goalkeeper".into();
    rejects(
        TestForm::valid().set("players", &list.to_string()),
        "players[0].role",
        "INVALID_ROLE",
    )
    .await;
}

#[tokio::test]
async fn rejects_bad_player_name() {
    let mut list = players(11);
    list[4]["name"] = "X1".into();
    rejects(
        TestForm::valid().set("players", &list.to_string()),
        "players[4].name",
        "TOO_SHORT",
    )
    .await;
}

#[tokio::test]
async fn rejects_players_that_are_not_json() {
    rejects(
        TestForm::valid().set("players", "[{name: Arjun"),
        "players",
        "INVALID_JSON",
    )
    .await;
}

#[tokio::test]
async fn rejects_players_that_are_not_an_array() {
    rejects(
        TestForm::valid().set("players", r#"{"name":"Arjun Mehta"}"#),
        "players",
        "INVALID_JSON",
    )
    .await;
}

#[tokio::test]
async fn rejects_missing_players() {
    rejects(TestForm::valid().remove("players"), "players", "REQUIRED").await;
}

// unknown and duplicate fields

#[tokio::test]
async fn rejects_unknown_field() {
    rejects(
        TestForm::valid().set("coach_name", "Someone"),
        "coach_name",
        "UNKNOWN_FIELD",
    )
    .await;
}

#[tokio::test]
async fn rejects_field_given_twice() {
    rejects(
        TestForm::valid().add("team_name", "Other Team"),
        "team_name",
        "DUPLICATE_FIELD",
    )
    .await;
}

// files

#[tokio::test]
async fn rejects_missing_payment_receipt() {
    rejects(
        TestForm::valid().remove("payment_receipt"),
        "payment_receipt",
        "REQUIRED",
    )
    .await;
}

#[tokio::test]
async fn rejects_empty_payment_receipt() {
    rejects(
        TestForm::valid().file("payment_receipt", Vec::new(), "receipt.png"),
        "payment_receipt",
        "REQUIRED",
    )
    .await;
}

#[tokio::test]
async fn accepts_file_of_exactly_five_mib() {
    let job = accepts(TestForm::valid().file("payment_receipt", png(MIB5), "big.png")).await;
    assert_eq!(job["documents"][0]["bytes"], MIB5);
}

#[tokio::test]
async fn rejects_file_of_five_mib_and_one_byte() {
    rejects(
        TestForm::valid().file("payment_receipt", png(MIB5 + 1), "big.png"),
        "payment_receipt",
        "FILE_TOO_LARGE",
    )
    .await;
}

#[tokio::test]
async fn accepts_png_by_content() {
    let job = accepts(TestForm::valid().file("payment_receipt", png(4096), "scan")).await;
    assert_eq!(job["documents"][0]["content_type"], "png");
}

#[tokio::test]
async fn accepts_jpeg_by_content() {
    let job = accepts(TestForm::valid().file("payment_receipt", jpeg(4096), "scan.bin")).await;
    assert_eq!(job["documents"][0]["content_type"], "jpeg");
}

#[tokio::test]
async fn accepts_pdf_by_content() {
    let job = accepts(TestForm::valid().file("payment_receipt", pdf(4096), "scan.txt")).await;
    assert_eq!(job["documents"][0]["content_type"], "pdf");
}

#[tokio::test]
async fn rejects_png_that_is_really_text() {
    let form = TestForm::valid().file_typed(
        "payment_receipt",
        b"I am not a picture, just text pretending.".to_vec(),
        "receipt.png",
        "image/png",
    );
    rejects(form, "payment_receipt", "INVALID_MIME_TYPE").await;
}

#[tokio::test]
async fn accepts_pdf_renamed_exe_as_pdf() {
    let form = TestForm::valid().file_typed(
        "payment_receipt",
        pdf(4096),
        "setup.exe",
        "application/x-msdownload",
    );
    let job = accepts(form).await;
    assert_eq!(job["documents"][0]["content_type"], "pdf");
    // One staged object per submission, named by the server: the client's filename is
    // nowhere in it, and the document starts at its beginning.
    let path = job["documents"][0]["staged_path"]
        .as_str()
        .expect("staged_path");
    assert!(
        !path.is_empty() && path.bytes().all(|b| b.is_ascii_hexdigit()),
        "{path}"
    );
    assert_eq!(job["documents"][0]["offset"], 0);
    assert_eq!(job["documents"][0]["bytes"], 4096);
    assert!(
        job["documents"][0]["blake3"]
            .as_str()
            .is_some_and(|h| h.len() == 64)
    );
}

#[tokio::test]
async fn pastor_letter_is_optional_and_checked_when_given() {
    let job = accepts(TestForm::valid().file("pastor_letter", jpeg(1000), "letter.jpg")).await;
    assert_eq!(job["documents"].as_array().map(Vec::len), Some(2));
    rejects(
        TestForm::valid().file("pastor_letter", b"<html>hi</html>".to_vec(), "letter.pdf"),
        "pastor_letter",
        "INVALID_MIME_TYPE",
    )
    .await;
}

// all at once

#[tokio::test]
async fn reports_every_invalid_field_at_once() {
    let app = spawn_app().await;
    let form = TestForm::valid()
        .set("team_name", "A")
        .set("captain_phone", "123")
        .set("vice_captain_email", "nope")
        .set("players", &players(3).to_string())
        .set("surprise", "x")
        .file("payment_receipt", b"plain text".to_vec(), "r.png");
    let body = field_error(
        app.submit_new(form.to_form()).await,
        "team_name",
        "TOO_SHORT",
    )
    .await;
    let errors = body["errors"].as_array().expect("errors");
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    for expected in [
        "team_name",
        "captain_phone",
        "vice_captain_email",
        "players",
        "surprise",
        "payment_receipt",
    ] {
        assert!(fields.contains(&expected), "{expected} missing from {body}");
    }
    assert_eq!(body["detail"], "6 fields are invalid");
    assert!(app.staged_files().is_empty());
    assert!(app.redis_keys().is_empty());
}
