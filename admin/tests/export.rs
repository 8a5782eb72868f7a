//! The roster export (docs/contract.md §15): one row per player of the teams the list's
//! filters match, as CSV or XLSX, contacts only when revealed with a reason, audited, and
//! only for organisers.

use std::io::Cursor;
use std::time::Duration;

use calamine::{Data, Reader, Xlsx};
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::form::players;
use intake_testkit::stack::team;
use serde_json::{Value, json};

const FINISH: Duration = Duration::from_secs(60);
const EXPORT: &str = "/admin/v1/teams/export";

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

/// `n` teams saved one after the other, so their IDs are ICCT-0001… in `team(0…n)` order.
async fn saved_teams(admin: &AdminStack, n: usize) {
    for i in 0..n {
        let id = admin.stack.submit(&team(i)).await;
        let status = admin.stack.wait_final(&id, FINISH).await;
        assert_eq!(status["status"], "completed", "{status}");
    }
}

/// An export as an organiser; asserts the download's headers.
async fn download(admin: &AdminStack, query: &str, extension: &str) -> Vec<u8> {
    let response = admin
        .get_as(ORGANISER_TOKEN, &format!("{EXPORT}?{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = match extension {
        "csv" => "text/csv; charset=utf-8",
        _ => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    };
    assert_eq!(header("content-type"), content_type);
    assert_eq!(header("cache-control"), "no-store");
    let disposition = header("content-disposition");
    let filename = disposition
        .strip_prefix("attachment; filename=\"teams-")
        .and_then(|rest| rest.strip_suffix(&format!(".{extension}\"")))
        .unwrap_or_else(|| panic!("a dated attachment: {disposition}"));
    assert!(
        filename.len() == 15
            && filename.as_bytes()[8] == b'-'
            && filename.bytes().filter(u8::is_ascii_digit).count() == 14,
        "teams-YYYYMMDD-HHMMSS: {disposition}"
    );
    response.bytes().await.expect("body").to_vec()
}

/// The CSV's header and records.
fn parse_csv(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(body);
    let header = reader
        .headers()
        .expect("a header row")
        .iter()
        .map(str::to_owned)
        .collect();
    let records = reader
        .records()
        .map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect())
        .collect();
    (header, records)
}

async fn csv_export(admin: &AdminStack, query: &str) -> (Vec<String>, Vec<Vec<String>>) {
    parse_csv(&download(admin, query, "csv").await)
}

/// Team IDs in the order the rows give them, each once.
fn team_ids(records: &[Vec<String>]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for record in records {
        if ids.last() != Some(&record[0]) {
            ids.push(record[0].clone());
        }
    }
    ids
}

/// The newest audit entries with this action.
async fn audited(admin: &AdminStack, action: &str) -> Vec<Value> {
    let log = admin.get_json("/admin/v1/audit?limit=100").await;
    log["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("problem+json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_csv_export_has_one_row_per_player_and_no_contacts_unless_revealed() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 2).await;
    let (header, records) = csv_export(&admin, "format=csv").await;
    assert_eq!(header, COLUMNS);
    assert_eq!(records.len(), 22, "11 players per team");
    assert_eq!(
        team_ids(&records),
        ["ICCT-0002", "ICCT-0001"],
        "newest first"
    );
    let submitted: Vec<(String, String)> = players(11)
        .as_array()
        .expect("players")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("name").to_owned(),
                p["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect();
    for (team, rows) in records.chunks(11).enumerate() {
        let n = 1 - team;
        let exported: Vec<(String, String)> =
            rows.iter().map(|r| (r[6].clone(), r[7].clone())).collect();
        assert_eq!(exported, submitted, "players in their submitted order");
        for row in rows {
            assert_eq!(row.len(), COLUMNS.len());
            assert_eq!(row[1], format!("Team Number {n:03}"));
            assert_eq!(row[2..6], ["pending", "false", "Arjun Mehta", "Ravi Kumar"]);
        }
    }
    let contacts = [
        "9800000000",
        "9800000001",
        "9123456780",
        "arjun@example.org",
        "ravi@example.org",
    ];
    let body = String::from_utf8(download(&admin, "", "csv").await).expect("UTF-8");
    for contact in contacts {
        assert!(!body.contains(contact), "no {contact} unless revealed");
    }
    assert_eq!(
        parse_csv(body.as_bytes()).1,
        records,
        "CSV is the default format"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revealed_export_has_contacts_and_is_audited() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 1).await;
    let (header, records) = csv_export(
        &admin,
        "format=csv&state=pending&reveal=true&reason=kit%20delivery%20list",
    )
    .await;
    let mut expected = COLUMNS.to_vec();
    expected.extend(CONTACT_COLUMNS);
    assert_eq!(header, expected);
    assert_eq!(records.len(), 11);
    for row in &records {
        assert_eq!(
            row[8..],
            [
                "9800000000",
                "arjun@example.org",
                "9123456780",
                "ravi@example.org"
            ]
        );
    }
    let revealed = audited(&admin, "export_personal_data").await;
    assert_eq!(revealed.len(), 1, "{revealed:?}");
    let entry = &revealed[0];
    assert_eq!(entry["actor"], "dave");
    assert_eq!(entry["reason"], "kit delivery list");
    assert_eq!(entry["outcome"], "succeeded");
    assert_eq!(entry["detail"]["format"], "csv");
    assert_eq!(entry["detail"]["personal_data"], "revealed");
    assert_eq!(entry["detail"]["filters"]["state"], "pending");
    assert!(entry["request_id"].is_string());

    download(&admin, "format=xlsx", "xlsx").await;
    let plain = audited(&admin, "export").await;
    assert_eq!(plain.len(), 1, "an export without contacts is audited too");
    assert_eq!(plain[0]["detail"]["format"], "xlsx");
    assert_eq!(plain[0]["detail"]["personal_data"], "masked");
    assert!(plain[0]["reason"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_follows_the_list_filters() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 3).await;
    let decided = admin
        .post_as(
            ORGANISER_TOKEN,
            "/admin/v1/teams/ICCT-0001/review",
            json!({"decision": "approved", "reason": "ok", "payment_verified": true, "version": 0}),
        )
        .await;
    assert_eq!(decided.status(), 200);

    let (_, approved) = csv_export(&admin, "state=approved").await;
    assert_eq!(team_ids(&approved), ["ICCT-0001"]);
    assert_eq!(approved.len(), 11);
    assert!(
        approved
            .iter()
            .all(|r| r[2] == "approved" && r[3] == "true")
    );

    for filter in [
        "state=pending",
        "q=icct-0002",
        "q=%20%20TEAM%20%20number%2000",
        "q=9800000002",
        "q=RAVI%40example.org",
        "q=nobody%40example.org",
        "since=2000-01-01T00:00:00Z&until=2100-01-01T00:00:00Z",
        "until=2000-01-01T00:00:00Z",
    ] {
        let listed: Vec<String> =
            admin.get_json(&format!("/admin/v1/teams?{filter}")).await["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["team_id"].as_str().expect("team_id").to_owned())
                .collect();
        let (_, records) = csv_export(&admin, filter).await;
        assert_eq!(team_ids(&records), listed, "{filter}: the list's teams");
        assert_eq!(records.len(), listed.len() * 11, "{filter}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_xlsx_export_opens_as_a_workbook() {
    let admin = AdminStack::start().await;
    saved_teams(&admin, 2).await;
    let body = download(&admin, "format=xlsx&reveal=true&reason=print", "xlsx").await;
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(body)).expect("an XLSX workbook");
    let sheet = workbook.worksheet_range("Teams").expect("a Teams sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 1 + 22, "the header and 11 rows per team");
    let text = |cell: &Data| match cell {
        Data::String(s) => s.clone(),
        other => panic!("a text cell, not {other:?}"),
    };
    let header: Vec<String> = rows[0].iter().map(text).collect();
    let mut expected = COLUMNS.to_vec();
    expected.extend(CONTACT_COLUMNS);
    assert_eq!(header, expected);
    assert_eq!(text(&rows[1][0]), "ICCT-0002", "newest first");
    assert_eq!(text(&rows[12][0]), "ICCT-0001");
    assert_eq!(
        rows[1][3],
        Data::Bool(false),
        "payment_verified is a boolean"
    );
    assert_eq!(text(&rows[1][8]), "9800000001");
    let (csv_header, csv_rows) = csv_export(&admin, "reveal=true&reason=print").await;
    assert_eq!(csv_header, header);
    for (xlsx, csv) in rows[1..].iter().zip(&csv_rows) {
        let cells: Vec<String> = xlsx
            .iter()
            .map(|c| match c {
                Data::Bool(b) => b.to_string(),
                other => text(other),
            })
            .collect();
        assert_eq!(&cells, csv, "the same rows as the CSV");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_export_with_no_teams_has_the_header_row_only() {
    let admin = AdminStack::start().await;
    let body = download(&admin, "format=csv", "csv").await;
    assert_eq!(
        String::from_utf8(body).expect("UTF-8"),
        format!("{}\n", COLUMNS.join(","))
    );
    let body = download(&admin, "format=xlsx", "xlsx").await;
    let mut workbook: Xlsx<_> = Xlsx::new(Cursor::new(body)).expect("an XLSX workbook");
    let sheet = workbook.worksheet_range("Teams").expect("a Teams sheet");
    let rows: Vec<&[Data]> = sheet.rows().collect();
    assert_eq!(rows.len(), 1, "the header row only");
    assert_eq!(
        rows[0],
        COLUMNS.map(|c| Data::String(c.to_owned())).as_slice()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_or_support_token_cannot_export() {
    let admin = AdminStack::start().await;
    for token in [VIEWER_TOKEN, TOKEN] {
        for query in ["format=csv", "format=xlsx&reveal=true&reason=x"] {
            let body = problem(admin.get_as(token, &format!("{EXPORT}?{query}")).await, 403).await;
            assert_eq!(body["code"], "FORBIDDEN", "{body}");
            assert!(
                body["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("organiser")
            );
        }
    }
    assert!(audited(&admin, "export").await.is_empty());
    assert!(audited(&admin, "export_personal_data").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bad_format_is_refused_naming_it() {
    let admin = AdminStack::start().await;
    for (query, named) in [
        ("format=pdf", "format"),
        ("format=CSV%20", "format"),
        ("format=csv&state=maybe", "state"),
        ("format=csv&since=yesterday", "since"),
    ] {
        let body = problem(
            admin
                .get_as(ORGANISER_TOKEN, &format!("{EXPORT}?{query}"))
                .await,
            400,
        )
        .await;
        assert_eq!(body["code"], "VALIDATION_FAILED", "{query}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(named),
            "{query}: {body}"
        );
    }
    assert!(audited(&admin, "export").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reveal_without_a_reason_is_refused() {
    let admin = AdminStack::start().await;
    for query in [
        "format=csv&reveal=true",
        "format=xlsx&reveal=true&reason=%20%20",
    ] {
        let body = problem(
            admin
                .get_as(ORGANISER_TOKEN, &format!("{EXPORT}?{query}"))
                .await,
            400,
        )
        .await;
        assert_eq!(body["code"], "REASON_REQUIRED", "{query}: {body}");
    }
    assert!(audited(&admin, "export_personal_data").await.is_empty());
}
