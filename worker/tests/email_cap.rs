//! The email cap (docs/contract.md §4): at most `INTAKE_MAIL_CAP_PER_RECIPIENT_PER_DAY`
//! confirmation and decision emails per recipient address per day. A recipient over it is
//! left out; with every recipient over it the registration still completes, with
//! `email_status: "suppressed"`, and support can still resend.

use std::time::Duration;

use intake_testkit::admin_stack::AdminStack;
use intake_testkit::stack::team;
use serde_json::json;

const FINISH: Duration = Duration::from_secs(60);

async fn start(cap: u32) -> AdminStack {
    AdminStack::start_with(|s| s.mail.mail_cap_per_recipient_per_day = cap).await
}

/// Registers team `n` (every test team has the same captain and vice-captain addresses)
/// and waits for it; the final status.
async fn register(admin: &AdminStack, form: &intake_testkit::form::TestForm) -> serde_json::Value {
    let id = admin.stack.submit(form).await;
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn past_the_cap_a_registration_completes_with_email_suppressed() {
    let admin = start(2).await;
    for n in 0..2 {
        assert_eq!(register(&admin, &team(n)).await["email_status"], "sent");
    }
    let third = register(&admin, &team(2)).await;
    assert_eq!(third["email_status"], "suppressed", "{third}");
    assert_eq!(admin.stack.smtp.messages().len(), 2, "no third message");
    let id = third["id"].as_str().expect("id").to_owned();
    let (delivery,): (String,) =
        sqlx::query_as("SELECT status FROM email_deliveries WHERE registration_id = $1::uuid")
            .bind(&id)
            .fetch_one(&admin.stack.pool)
            .await
            .expect("delivery row");
    assert_eq!(delivery, "suppressed");

    // Support can still resend it: resends are not capped.
    let response = admin
        .post(
            &format!("/admin/v1/registrations/{id}/resend-email"),
            json!({"reason": "captain asked for it"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let status = intake_testkit::eventually("the resend to end", FINISH, || async {
        let status = admin.stack.status(&id).await;
        (status["email_status"] == "sent").then_some(status)
    })
    .await;
    assert_eq!(status["email_status"], "sent");
    assert_eq!(admin.stack.smtp.messages().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_recipient_over_the_cap_is_left_out_and_the_other_still_gets_it() {
    let admin = start(1).await;
    register(&admin, &team(0)).await;
    // The captain has had their one email today; this vice-captain has had none.
    let form = team(1).set("vice_captain_email", "meera@example.org");
    let status = register(&admin, &form).await;
    assert_eq!(status["email_status"], "sent", "{status}");
    let mails = admin.stack.smtp.messages();
    assert_eq!(mails.len(), 2);
    assert_eq!(mails[1].to, vec!["meera@example.org".to_owned()]);
    assert!(
        !mails[1].data.contains("arjun@example.org"),
        "the capped captain is not addressed"
    );
}

/// A message asked for again (a job run twice) is admitted again and counted once; another
/// message past the cap is not; the cap is per address (case does not make another).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_message_asked_for_twice_counts_once() {
    let admin = start(1).await;
    let conn =
        intake_shared::redis_conn::connect_lazy(&admin.stack.settings.redis.url).expect("redis");
    let cap = intake_store::mail_cap::MailCap::new(conn, admin.stack.settings.keys(), 1);
    let admit = |message: &'static str, address: &'static str| {
        let cap = cap.clone();
        async move { cap.admit(address, message).await.expect("redis") }
    };
    assert!(admit("r1:confirmation", "kim@example.org").await);
    assert!(
        admit("r1:confirmation", "kim@example.org").await,
        "the same message again"
    );
    assert!(
        !admit("r2:confirmation", "KIM@example.org ").await,
        "over the cap of one"
    );
    assert!(
        admit("r2:confirmation", "lee@example.org").await,
        "another address"
    );
    let days = intake_testkit::redis_keys::matching(
        &admin.stack.settings.redis.url,
        &format!("{}:mail-cap:*", admin.stack.settings.redis.prefix),
    );
    assert_eq!(days.len(), 2);
    assert!(
        days.iter().all(|k| !k.contains("example.org")),
        "addresses kept as digests"
    );
}
