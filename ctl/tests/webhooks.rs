//! `intakectl webhooks` (docs/contract.md §16) against a running admin service, as the real
//! binary: an organiser adds an endpoint (its secret printed once), lists, disables, enables
//! and deletes it; other roles and bad input are refused with the documented exit codes.

mod common;

use common::intakectl;
use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_adds_lists_disables_enables_and_deletes_an_endpoint() {
    let admin = AdminStack::start().await;
    let url = admin.base.as_str();
    let added = intakectl(
        url,
        ORGANISER_TOKEN,
        &[
            "webhooks",
            "add",
            "https://sheets.example.org/hook",
            "--event",
            "registration.completed",
            "--event",
            "team.approved",
            "--description",
            "roster sheet",
        ],
    )
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    assert!(
        added
            .stdout
            .contains("signing secret (shown this once): whsec_"),
        "{}",
        added.stdout
    );
    let listed = intakectl(url, ORGANISER_TOKEN, &["webhooks", "list", "--json"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let items = listed.json()["items"].as_array().cloned().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(
        items[0]["events"],
        serde_json::json!(["registration.completed", "team.approved"])
    );
    assert!(
        !listed.stdout.contains("whsec_"),
        "the secret is not listed"
    );
    let id = items[0]["id"].as_str().expect("id").to_owned();

    let disabled = intakectl(
        url,
        ORGANISER_TOKEN,
        &["webhooks", "disable", &id, "--json"],
    )
    .await;
    assert_eq!(disabled.code, 0, "{}", disabled.stderr);
    assert_eq!(disabled.json()["enabled"], false);
    let enabled = intakectl(url, ORGANISER_TOKEN, &["webhooks", "enable", &id]).await;
    assert_eq!(enabled.code, 0, "{}", enabled.stderr);
    assert!(enabled.stdout.contains("yes"), "{}", enabled.stdout);
    let table = intakectl(url, ORGANISER_TOKEN, &["webhooks", "list"]).await;
    assert!(
        table.stdout.contains("https://sheets.example.org/hook")
            && table.stdout.contains("1 endpoint(s)"),
        "{}",
        table.stdout
    );

    let deleted = intakectl(url, ORGANISER_TOKEN, &["webhooks", "delete", &id]).await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    let again = intakectl(url, ORGANISER_TOKEN, &["webhooks", "delete", &id]).await;
    assert_eq!(again.code, 1, "an unknown endpoint is refused");
    assert!(again.stderr.contains("NOT_FOUND"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn other_roles_and_bad_input_are_refused() {
    let admin = AdminStack::start().await;
    let url = admin.base.as_str();
    let support = intakectl(url, TOKEN, &["webhooks", "list"]).await;
    assert_eq!(support.code, 1, "{}", support.stderr);
    assert!(support.stderr.contains("FORBIDDEN"), "{}", support.stderr);
    let bad = intakectl(
        url,
        ORGANISER_TOKEN,
        &[
            "webhooks",
            "add",
            "ftp://example.org",
            "--event",
            "team.deleted",
        ],
    )
    .await;
    assert_eq!(
        bad.code, 2,
        "a refused body is a usage error: {}",
        bad.stderr
    );
    assert!(bad.stderr.contains("VALIDATION_FAILED"), "{}", bad.stderr);
    let no_event = intakectl(
        url,
        ORGANISER_TOKEN,
        &["webhooks", "add", "https://example.org"],
    )
    .await;
    assert_eq!(
        no_event.code, 2,
        "clap asks for --event: {}",
        no_event.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_organiser_reads_an_endpoints_deliveries_and_resends_a_failed_one() {
    use intake_testkit::webhook_receiver::{Behaviour, Receiver};
    let admin = AdminStack::start_with(|s| s.webhooks.retry_hours = 0.0005).await;
    let url = admin.base.as_str();
    let receiver = Receiver::start(Behaviour::Status(503)).await;
    let added = intakectl(
        url,
        ORGANISER_TOKEN,
        &[
            "webhooks",
            "add",
            &receiver.url(),
            "--event",
            "registration.completed",
            "--json",
        ],
    )
    .await;
    assert_eq!(added.code, 0, "{}", added.stderr);
    let endpoint = added.json()["id"].as_str().expect("id").to_owned();
    let id = admin.stack.submit(&intake_testkit::stack::team(1)).await;
    assert_eq!(
        admin
            .stack
            .wait_final(&id, std::time::Duration::from_secs(60))
            .await["status"],
        "completed"
    );
    let start = std::time::Instant::now();
    let failed = loop {
        let listed = intakectl(
            url,
            ORGANISER_TOKEN,
            &[
                "webhooks",
                "deliveries",
                &endpoint,
                "--state",
                "failed",
                "--json",
            ],
        )
        .await;
        assert_eq!(listed.code, 0, "{}", listed.stderr);
        if let Some(first) = listed.json()["items"].get(0).cloned() {
            break first;
        }
        assert!(start.elapsed().as_secs() < 60, "no failed delivery");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    let shown = intakectl(url, ORGANISER_TOKEN, &["webhooks", "deliveries", &endpoint]).await;
    assert_eq!(shown.code, 0, "{}", shown.stderr);
    assert!(
        shown.stdout.contains("registration.completed")
            && shown.stdout.contains("failed")
            && shown.stdout.contains("503: answered 503"),
        "{}",
        shown.stdout
    );

    receiver.set(Behaviour::Accept);
    let delivery = failed["id"].as_str().expect("id");
    let resent = intakectl(
        url,
        ORGANISER_TOKEN,
        &["webhooks", "resend", &endpoint, delivery],
    )
    .await;
    assert_eq!(resent.code, 0, "{}", resent.stderr);
    assert!(resent.stdout.contains("queued again"), "{}", resent.stdout);
    receiver
        .wait_delivered(1, std::time::Duration::from_secs(60))
        .await;
    assert!(
        receiver
            .delivered()
            .contains_key(failed["event_id"].as_str().unwrap_or_default())
    );

    let unknown = format!("{}0000", &delivery[..delivery.len() - 4]);
    let again = intakectl(
        url,
        ORGANISER_TOKEN,
        &["webhooks", "resend", &endpoint, &unknown],
    )
    .await;
    assert_eq!(again.code, 1, "an unknown delivery: {}", again.stdout);
    let support = intakectl(url, TOKEN, &["webhooks", "deliveries", &endpoint]).await;
    assert_eq!(support.code, 1, "{}", support.stdout);
    let bad = intakectl(
        url,
        ORGANISER_TOKEN,
        &["webhooks", "deliveries", &endpoint, "--limit", "0"],
    )
    .await;
    assert_eq!(bad.code, 2, "clap refuses it");
}
