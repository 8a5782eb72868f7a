//! `intakectl` against a running stack: its `--json` output parsed, its exit codes checked.

mod common;

use std::time::Duration;

use common::intakectl;
use intake_testkit::admin_stack::{AdminStack, TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use intake_testkit::stack::team;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const FINISH: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_show_redrive_and_queue() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let id = admin.failed_registration(&TestForm::valid()).await;

    let failed = intakectl(&admin.base, TOKEN, &["failed", "--json"]).await;
    assert_eq!(failed.code, 0, "{}", failed.stderr);
    let items = failed.json()["items"].as_array().cloned().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], id.as_str());
    assert_eq!(items[0]["error"]["code"], "DOCUMENT_REJECTED");

    let table = intakectl(
        &admin.base,
        TOKEN,
        &["failed", "--code", "DOCUMENT_REJECTED"],
    )
    .await;
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.contains(&id) && table.stdout.contains("1 failed registration"),
        "{}",
        table.stdout
    );

    let show = intakectl(&admin.base, TOKEN, &["show", &id, "--json"]).await;
    assert_eq!(show.code, 0);
    assert_eq!(show.json()["status"]["status"], "failed");
    assert_eq!(
        show.json()["registration"]["captain"]["phone"],
        "98******10"
    );

    let queue = intakectl(&admin.base, TOKEN, &["queue", "--json"]).await;
    assert_eq!(queue.code, 0);
    assert_eq!(queue.json()["failed"], 1);

    admin.stack.cloudinary.set_default(Behaviour::Normal);
    let redrive = intakectl(
        &admin.base,
        TOKEN,
        &["redrive", &id, "--reason", "fixed upstream", "--json"],
    )
    .await;
    assert_eq!(redrive.code, 0, "{}", redrive.stderr);
    assert_eq!(redrive.json()["requeued"], 1);
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed");

    // Now it is completed: a second re-drive is refused with exit code 1.
    let again = intakectl(&admin.base, TOKEN, &["redrive", &id, "--reason", "again"]).await;
    assert_eq!(again.code, 1);
    assert!(
        again.stdout.contains("ALREADY_COMPLETED") || again.stderr.contains("ALREADY_COMPLETED"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_all_failed_by_code() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let ids = [
        admin.failed_registration(&team(1)).await,
        admin.failed_registration(&team(2)).await,
        admin.failed_registration(&team(3)).await,
    ];
    admin.stack.cloudinary.set_default(Behaviour::Normal);
    let run = intakectl(
        &admin.base,
        TOKEN,
        &[
            "redrive",
            "--all-failed",
            "--code",
            "DOCUMENT_REJECTED",
            "--reason",
            "bulk fix",
            "--json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["requeued"], 3);
    for id in &ids {
        assert_eq!(
            admin.stack.wait_final(id, FINISH).await["status"],
            "completed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resend_email_sends_one_more() {
    let admin = AdminStack::start().await;
    let id = admin.stack.submit(&TestForm::valid()).await;
    admin.stack.wait_final(&id, FINISH).await;
    let run = intakectl(
        &admin.base,
        TOKEN,
        &["resend-email", &id, "--reason", "lost", "--json"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["email_status"], "pending");
    intake_testkit::eventually("the resent email", FINISH, || async {
        (admin.stack.smtp.messages().len() == 2).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exit_codes_say_what_went_wrong() {
    let admin = AdminStack::start().await;
    let unauthorised = intakectl(&admin.base, "not-a-real-token-at-all", &["queue"]).await;
    assert_eq!(unauthorised.code, 3, "{}", unauthorised.stderr);
    let unreachable = intakectl("http://127.0.0.1:1", TOKEN, &["queue"]).await;
    assert_eq!(unreachable.code, 4, "{}", unreachable.stderr);
    let no_reason = intakectl(&admin.base, TOKEN, &["redrive", "x"]).await;
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    let unknown = intakectl(
        &admin.base,
        TOKEN,
        &["redrive", &uuid_v4(), "--reason", "r"],
    )
    .await;
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_says_when_more_pages_exist() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    for n in 0..3 {
        admin.failed_registration(&team(n)).await;
    }

    let cut = intakectl(&admin.base, TOKEN, &["failed", "--limit", "2", "--json"]).await;
    assert_eq!(cut.code, 0, "{}", cut.stderr);
    assert_eq!(cut.json()["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(cut.json()["more"], true);
    assert!(
        cut.stderr
            .contains("more failed registrations exist; use --limit N or --all"),
        "{}",
        cut.stderr
    );

    let table = intakectl(&admin.base, TOKEN, &["failed", "--limit", "2"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("2 failed registration"),
        "{}",
        table.stdout
    );
    assert!(
        table.stderr.contains("more failed registrations exist"),
        "{}",
        table.stderr
    );

    let whole = intakectl(&admin.base, TOKEN, &["failed", "--limit", "3", "--json"]).await;
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    assert_eq!(whole.json()["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(whole.json()["more"], false);
    assert!(!whole.stderr.contains("more failed"), "{}", whole.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_all_follows_every_page() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    // One more than a page of the list endpoint (100) and than the default limit.
    let mut ids = Vec::new();
    for n in 0..101 {
        ids.push(admin.stack.submit(&team(n)).await);
    }
    for id in &ids {
        assert_eq!(admin.stack.wait_final(id, FINISH).await["status"], "failed");
    }

    let all = intakectl(&admin.base, TOKEN, &["failed", "--all", "--json"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert_eq!(all.json()["more"], false);
    let mut listed: Vec<String> = all.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    listed.dedup();
    ids.sort();
    assert_eq!(listed, ids, "every failed registration, once");

    let default = intakectl(&admin.base, TOKEN, &["failed", "--json"]).await;
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert_eq!(default.json()["items"].as_array().map(Vec::len), Some(100));
    assert_eq!(default.json()["more"], true);

    let both = intakectl(&admin.base, TOKEN, &["failed", "--all", "--limit", "5"]).await;
    assert_eq!(
        both.code, 2,
        "--all conflicts with --limit: {}",
        both.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_all_failed_uses_the_bulk_endpoint() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let ids = [
        admin.failed_registration(&team(1)).await,
        admin.failed_registration(&team(2)).await,
    ];
    admin.stack.cloudinary.set_default(Behaviour::Normal);

    let run = intakectl(
        &admin.base,
        TOKEN,
        &["redrive", "--all-failed", "--reason", "bulk fix"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("2 of 2 re-driven"), "{}", run.stdout);
    for id in &ids {
        assert!(
            run.stdout.contains(id.as_str()),
            "{id} in the outcomes: {}",
            run.stdout
        );
    }

    let audit = admin.get_json("/admin/v1/audit").await;
    let entries = audit["entries"].as_array().cloned().expect("entries");
    let bulk: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "redrive_bulk")
        .collect();
    assert_eq!(bulk.len(), 2, "requested, then its outcome: {audit}");
    for entry in &bulk {
        assert_eq!(entry["reason"], "bulk fix");
        for id in &ids {
            assert!(
                entry["registration_ids"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == id.as_str())),
                "{entry}"
            );
        }
    }
    assert!(bulk.iter().any(|e| e["outcome"] == "succeeded"), "{audit}");
    assert!(
        entries.iter().all(|e| e["action"] != "redrive"),
        "no one-by-one re-drives: {audit}"
    );
    for id in &ids {
        assert_eq!(
            admin.stack.wait_final(id, FINISH).await["status"],
            "completed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_all_failed_exits_1_when_one_is_not_requeued() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let expired = admin.failed_registration(&team(1)).await;
    for entry in std::fs::read_dir(admin.stack.staging.path()).expect("staging") {
        std::fs::remove_file(entry.expect("entry").path()).expect("remove");
    }
    let fine = admin.failed_registration(&team(2)).await;
    admin.stack.cloudinary.set_default(Behaviour::Normal);

    let run = intakectl(
        &admin.base,
        TOKEN,
        &["redrive", "--all-failed", "--reason", "retry", "--json"],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let answer = run.json();
    assert_eq!(answer["requested"], 2);
    assert_eq!(answer["requeued"], 1);
    assert_eq!(answer["more"], false);
    let outcome = |id: &str| {
        answer["results"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["id"] == id))
            .map(|r| r["outcome"].clone())
    };
    assert_eq!(outcome(&expired), Some("documents_expired".into()));
    assert_eq!(outcome(&fine), Some("requeued".into()));
    assert!(
        run.stderr.contains("1 of 2 could not be re-driven"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redrive_all_failed_dry_run_changes_nothing() {
    let admin = AdminStack::start().await;
    admin.stack.cloudinary.set_default(Behaviour::Fail(400));
    let mut ids = vec![
        admin.failed_registration(&team(1)).await,
        admin.failed_registration(&team(2)).await,
    ];
    admin.stack.cloudinary.set_default(Behaviour::Normal);

    // No --reason: nothing is done, so there is nothing to record.
    let dry = intakectl(
        &admin.base,
        TOKEN,
        &["redrive", "--all-failed", "--dry-run", "--json"],
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(dry.json()["more"], false);
    let mut listed: Vec<String> = dry.json()["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect();
    listed.sort();
    ids.sort();
    assert_eq!(listed, ids);

    let table = intakectl(
        &admin.base,
        TOKEN,
        &[
            "redrive",
            "--all-failed",
            "--dry-run",
            "--code",
            "DOCUMENT_REJECTED",
            "--reason",
            "checking first",
        ],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table
            .stdout
            .contains("2 failed registration(s) would be re-driven")
            && table.stdout.contains("nothing was re-driven"),
        "{}",
        table.stdout
    );

    let other_code = intakectl(
        &admin.base,
        TOKEN,
        &[
            "redrive",
            "--all-failed",
            "--dry-run",
            "--code",
            "DUPLICATE_TEAM",
            "--json",
        ],
    )
    .await;
    assert_eq!(other_code.code, 0, "{}", other_code.stderr);
    assert_eq!(other_code.json()["items"].as_array().map(Vec::len), Some(0));

    for id in &ids {
        assert_eq!(admin.stack.status(id).await["status"], "failed");
    }
    let stats = admin.get_json("/admin/v1/queue").await;
    assert_eq!(stats["waiting"], 0);
    assert_eq!(stats["failed"], 2);
    let audit = admin.get_json("/admin/v1/audit").await;
    assert_eq!(
        audit["entries"].as_array().map(Vec::len),
        Some(0),
        "{audit}"
    );
}

#[tokio::test]
async fn a_server_error_exits_1_not_unreachable() {
    let base = failing_admin().await;
    let run = intakectl(&base, TOKEN, &["queue"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("500") && run.stderr.contains("the database fell over"),
        "the status and the problem's detail: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
}

#[tokio::test]
async fn an_unresponsive_admin_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    // Accepts every connection and never answers on any.
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = std::time::Instant::now();
    let run = intakectl(&base, TOKEN, &["--timeout", "1", "queue"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(
        run.stderr.contains("no answer within 1 s"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "gave up after {:?}",
        started.elapsed()
    );
    silent.abort();
}

/// A stand-in for the admin service that answers every request with a `500` problem, as the
/// real one does when it fails.
async fn failing_admin() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                // Read the whole request head first: closing with it unread would reset
                // the connection, which the client would rightly call unreachable.
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = r#"{"type":"about:blank","title":"Internal Server Error","status":500,"code":"INTERNAL_ERROR","detail":"the database fell over"}"#;
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    base
}

fn uuid_v4() -> String {
    // A syntactically valid id that names no registration.
    "0b6f2c1e-8d0e-4a5e-9b3c-7f1d2e3a4b5c".to_owned()
}
