//! `intakectl` against a running stack: its `--json` output parsed, its exit codes checked.

use std::time::Duration;

use intake_testkit::admin_stack::{AdminStack, TOKEN};
use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::TestForm;
use intake_testkit::stack::team;
use serde_json::Value;

const FINISH: Duration = Duration::from_secs(60);

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("JSON output ({e}): {}", self.stdout))
    }
}

async fn intakectl(url: &str, token: &str, args: &[&str]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_intakectl"))
        .args(args)
        .env("INTAKE_ADMIN_URL", url)
        .env("INTAKE_ADMIN_TOKEN", token)
        .output()
        .await
        .expect("intakectl runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

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

fn uuid_v4() -> String {
    // A syntactically valid id that names no registration.
    "0b6f2c1e-8d0e-4a5e-9b3c-7f1d2e3a4b5c".to_owned()
}
