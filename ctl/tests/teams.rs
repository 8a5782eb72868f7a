//! The organisers' commands (docs/contract.md §15) against a running stack: teams, team,
//! approve, reject, export, each run as the real binary with the token of the role at hand.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::intakectl;
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::stack::team;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FINISH: Duration = Duration::from_secs(60);
/// Players on each test team (`TestForm::valid_for_team`): one export row each.
const PLAYERS: usize = 11;

/// Submits `team(n)` for each `n` and waits for each to be saved: their team IDs, in order.
async fn saved_teams(admin: &AdminStack, numbers: &[usize]) -> Vec<String> {
    let mut ids = Vec::new();
    for &n in numbers {
        ids.push(admin.stack.submit(&team(n)).await);
    }
    let mut team_ids = Vec::new();
    for id in &ids {
        let status = admin.stack.wait_final(id, FINISH).await;
        assert_eq!(status["status"], "completed", "{status}");
        team_ids.push(status["team_id"].as_str().expect("a team ID").to_owned());
    }
    team_ids
}

fn team_ids(listing: &Value) -> Vec<String> {
    listing["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|t| t["team_id"].as_str().expect("team_id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn teams_lists_and_searches_the_saved_teams() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1, 2, 3]).await;

    let all = intakectl(&admin.base, VIEWER_TOKEN, &["teams", "--json"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(all.json()["more"], false);
    let mut listed = team_ids(&all.json());
    listed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let first = &all.json()["items"][0];
    assert_eq!(first["review_state"], "pending");
    assert_eq!(first["payment_verified"], false);
    assert_eq!(first["players"], PLAYERS);

    // A team ID in any case, the start of a name in any case, a captain's phone.
    let by_id = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["teams", "--search", &ids[1].to_lowercase(), "--json"],
    )
    .await;
    assert_eq!(by_id.code, 0, "{}", by_id.stderr);
    assert_eq!(team_ids(&by_id.json()), [ids[1].clone()]);
    let by_name = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["teams", "--search", "team number 003", "--json"],
    )
    .await;
    assert_eq!(team_ids(&by_name.json()), [ids[2].clone()]);
    let by_phone = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["teams", "--search", "9800000001", "--json"],
    )
    .await;
    assert_eq!(team_ids(&by_phone.json()), [ids[0].clone()]);

    let approved = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["teams", "--state", "approved", "--json"],
    )
    .await;
    assert_eq!(approved.code, 0, "{}", approved.stderr);
    assert_eq!(team_ids(&approved.json()), Vec::<String>::new());

    let cut = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["teams", "--limit", "2", "--json"],
    )
    .await;
    assert_eq!(cut.code, 0, "{}", cut.stderr);
    assert_eq!(team_ids(&cut.json()).len(), 2);
    assert_eq!(cut.json()["more"], true);
    assert!(cut.stderr.contains("more teams exist"), "{}", cut.stderr);

    let table = intakectl(&admin.base, VIEWER_TOKEN, &["teams"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        ids.iter().all(|id| table.stdout.contains(id.as_str()))
            && table.stdout.contains("Team Number 002")
            && table.stdout.contains("3 team(s)"),
        "{}",
        table.stdout
    );

    let bad_state = intakectl(&admin.base, VIEWER_TOKEN, &["teams", "--state", "maybe"]).await;
    assert_eq!(bad_state.code, 2, "{}", bad_state.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn team_shows_masked_contacts_unless_revealed() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1]).await;
    let team_id = &ids[0];

    let masked = intakectl(&admin.base, VIEWER_TOKEN, &["team", team_id, "--json"]).await;
    assert_eq!(masked.code, 0, "{}", masked.stderr);
    let detail = masked.json();
    assert_eq!(detail["team_id"], team_id.as_str());
    assert_eq!(detail["captain"]["phone"], "98******01");
    assert_eq!(detail["captain"]["email"], "a***@example.org");
    assert_eq!(detail["personal_data"], "masked");
    assert_eq!(detail["players"].as_array().map(Vec::len), Some(PLAYERS));
    assert_eq!(detail["review"]["version"], 0);

    let table = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["team", &team_id.to_lowercase()],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("98******01")
            && !table.stdout.contains("9800000001")
            && table.stdout.contains("Team Number 001")
            && table.stdout.contains("pending"),
        "{}",
        table.stdout
    );

    let revealed = intakectl(
        &admin.base,
        TOKEN,
        &[
            "team",
            team_id,
            "--reveal",
            "--reason",
            "captain asked for a call",
            "--json",
        ],
    )
    .await;
    assert_eq!(revealed.code, 0, "{}", revealed.stderr);
    assert_eq!(revealed.json()["captain"]["phone"], "9800000001");
    assert_eq!(revealed.json()["personal_data"], "revealed");

    let no_reason = intakectl(&admin.base, TOKEN, &["team", team_id, "--reveal"]).await;
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    let viewer = intakectl(
        &admin.base,
        VIEWER_TOKEN,
        &["team", team_id, "--reveal", "--reason", "curious"],
    )
    .await;
    assert_eq!(viewer.code, 1, "{}", viewer.stderr);
    assert!(viewer.stderr.contains("role"), "{}", viewer.stderr);

    let unknown = intakectl(&admin.base, VIEWER_TOKEN, &["team", "ICCT-9999"]).await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("NOT_FOUND"), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approve_records_the_decision_with_the_current_version() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1]).await;
    let team_id = &ids[0];

    let approve = intakectl(
        &admin.base,
        ORGANISER_TOKEN,
        &[
            "approve",
            team_id,
            "--reason",
            "receipt matches the bank statement",
            "--payment-verified",
            "--json",
        ],
    )
    .await;
    assert_eq!(approve.code, 0, "{}", approve.stderr);
    let answer = approve.json();
    assert_eq!(answer["team_id"], team_id.as_str());
    assert_eq!(answer["review"]["state"], "approved");
    assert_eq!(answer["review"]["version"], 1);
    assert_eq!(answer["review"]["payment_verified"], true);
    assert_eq!(answer["decision_email"], "queued");

    let shown = intakectl(&admin.base, VIEWER_TOKEN, &["team", team_id, "--json"]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    let review = &shown.json()["review"];
    assert_eq!(review["state"], "approved");
    assert_eq!(review["version"], 1);
    assert_eq!(review["payment_verified"], true);
    let history = review["history"].as_array().cloned().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["actor"], "dave");
    assert_eq!(history[0]["reason"], "receipt matches the bank statement");

    // A second decision is made on the version the first one left.
    let reject = intakectl(
        &admin.base,
        ORGANISER_TOKEN,
        &["reject", team_id, "--reason", "entered twice"],
    )
    .await;
    assert_eq!(reject.code, 0, "{}", reject.stderr);
    assert!(
        reject.stdout.contains("rejected")
            && reject.stdout.contains("review version 2")
            && reject.stdout.contains("payment not verified")
            && reject.stdout.contains("decision email queued"),
        "{}",
        reject.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reject_needs_a_reason() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1]).await;
    let team_id = &ids[0];

    for args in [
        vec!["reject", team_id.as_str()],
        vec!["reject", team_id.as_str(), "--reason", "  "],
        vec!["approve", team_id.as_str(), "--payment-verified"],
    ] {
        let run = intakectl(&admin.base, ORGANISER_TOKEN, &args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("reason"), "{}", run.stderr);
    }
    let audit = admin.get_json("/admin/v1/audit").await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
    let team = admin.get_json(&format!("/admin/v1/teams/{team_id}")).await;
    assert_eq!(team["review"]["version"], 0);
}

/// With no connection to make, a usage error cannot have made a call.
#[tokio::test]
async fn a_usage_error_makes_no_call() {
    let (base, requests) = scripted_admin().await;
    let run = intakectl(&base, ORGANISER_TOKEN, &["reject", "ICCT-0001"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(requests.lock().expect("requests").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_cannot_approve() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1]).await;
    let team_id = &ids[0];

    for token in [VIEWER_TOKEN, TOKEN] {
        let run = intakectl(
            &admin.base,
            token,
            &[
                "approve",
                team_id,
                "--reason",
                "looks fine",
                "--payment-verified",
            ],
        )
        .await;
        assert_eq!(run.code, 1, "{}", run.stderr);
        assert!(
            run.stderr.contains("role") && run.stderr.contains("organiser"),
            "names the role needed: {}",
            run.stderr
        );
    }
    let team = admin.get_json(&format!("/admin/v1/teams/{team_id}")).await;
    assert_eq!(team["review"]["state"], "pending");
    assert_eq!(team["review"]["version"], 0);
}

/// Someone decided between `approve`'s read and its decision: the service's `409` is shown,
/// and the decision is not sent again on the newer version.
#[tokio::test]
async fn a_decision_made_meanwhile_is_refused_not_retried() {
    let (base, requests) = scripted_admin().await;
    let run = intakectl(
        &base,
        ORGANISER_TOKEN,
        &["approve", "ICCT-0001", "--reason", "paid"],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("CONFLICT") && run.stderr.contains("review version is 1, not 0"),
        "the server's detail: {}",
        run.stderr
    );
    let requests = requests.lock().expect("requests").clone();
    assert_eq!(
        requests,
        [
            "GET /admin/v1/teams/ICCT-0001",
            "POST /admin/v1/teams/ICCT-0001/review {\"decision\":\"approved\",\"payment_verified\":false,\"reason\":\"paid\",\"version\":0}",
        ]
    );
}

/// Written last: the export endpoint is the newest part of the admin service.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_writes_a_csv_file() {
    let admin = AdminStack::start().await;
    let ids = saved_teams(&admin, &[1, 2]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("roster.csv");
    let csv_name = csv.to_str().expect("UTF-8 path");

    let run = intakectl(
        &admin.base,
        ORGANISER_TOKEN,
        &["export", "--format", "csv", "-o", csv_name],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let text = std::fs::read_to_string(&csv).expect("the CSV file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + ids.len() * PLAYERS, "{text}");
    for id in &ids {
        assert_eq!(
            lines.iter().filter(|l| l.contains(id.as_str())).count(),
            PLAYERS,
            "a row per player of {id}: {text}"
        );
    }
    assert!(
        run.stdout.contains(csv_name) && run.stdout.contains(&format!("({} bytes)", text.len())),
        "{}",
        run.stdout
    );
    assert!(!text.contains("9800000001"), "contacts only with --reveal");

    let xlsx = dir.path().join("roster.xlsx");
    let run = intakectl(
        &admin.base,
        ORGANISER_TOKEN,
        &[
            "export",
            "--format",
            "xlsx",
            "--output",
            xlsx.to_str().expect("UTF-8 path"),
            "--state",
            "pending",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = std::fs::read(&xlsx).expect("the XLSX file");
    assert!(bytes.starts_with(b"PK"), "a zip file");
    assert_eq!(run.json()["bytes"], bytes.len());

    // A role that may not export gets no file, not even an empty one.
    let refused = dir.path().join("refused.csv");
    let run = intakectl(
        &admin.base,
        TOKEN,
        &[
            "export",
            "--format",
            "csv",
            "-o",
            refused.to_str().expect("UTF-8 path"),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("role"), "{}", run.stderr);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["roster.csv", "roster.xlsx"], "no half files");
}

/// A stand-in for the admin service: every team is at review version 0, every decision is
/// refused as made on a stale version. It records each request line (with the body, for a
/// POST) so a test can tell what was called.
async fn scripted_admin() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let Some((line, body)) = read_request(&mut socket).await else {
                    return;
                };
                let (status, answer) = if line.starts_with("GET ") {
                    (
                        "200 OK",
                        r#"{"team_id":"ICCT-0001","review":{"state":"pending","payment_verified":false,"version":0,"history":[]}}"#,
                    )
                } else {
                    (
                        "409 Conflict",
                        r#"{"type":"about:blank","title":"Conflict","status":409,"code":"CONFLICT","detail":"the team's review version is 1, not 0"}"#,
                    )
                };
                let body = serde_json::from_slice::<Value>(&body)
                    .map(|b| format!(" {b}"))
                    .unwrap_or_default();
                seen.lock().expect("requests").push(format!("{line}{body}"));
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (base, requests)
}

/// The request's method and path, and its body (by its `content-length`).
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while data.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let request_line = head.lines().next()?;
    let line = request_line
        .rsplit_once(' ')
        .map_or(request_line, |(line, _)| line)
        .to_owned();
    Some((line, data[head_end..head_end + length].to_vec()))
}
