//! Duplicates refused at the door (docs/contract.md §2): a team registered or in progress is
//! answered `409 DUPLICATE_TEAM` by the api from the duplicate index the workers keep, before
//! anything is staged, claimed or queued; the index is rebuilt from Postgres when Redis
//! loses it.

use std::time::Duration;

use intake_shared::domain::{Phone, TeamKey, TeamName};
use intake_testkit::form::{TestForm, png};
use intake_testkit::stack::{Stack, team};
use serde_json::Value;

const FINISH: Duration = Duration::from_secs(60);

fn redis(stack: &Stack) -> redis::Connection {
    redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .expect("redis")
}

fn keys_matching(stack: &Stack, what: &str) -> Vec<String> {
    intake_testkit::redis_keys::matching(
        &stack.settings.redis.url,
        &format!("{}:{what}", stack.settings.redis.prefix),
    )
}

async fn completed(stack: &Stack, form: &TestForm) -> String {
    let id = stack.submit(form).await;
    let status = stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    id
}

/// The answer to a duplicate: 409 problem+json with the contract's code, and nothing left.
async fn assert_refused_at_the_door(stack: &Stack, form: &TestForm) {
    let key = uuid::Uuid::new_v4().to_string();
    let response = stack.post_form(form, &key).await;
    assert_eq!(response.status(), 409);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = response.json().await.expect("problem");
    assert_eq!(problem["code"], "DUPLICATE_TEAM", "{problem}");
    assert_eq!(stack.staged_files(), 0, "nothing staged");
    assert!(
        keys_matching(stack, &format!("idem:{key}")).is_empty(),
        "the key is not claimed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registered_team_is_refused_at_the_door_and_leaves_nothing() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    completed(&stack, &TestForm::valid()).await;
    // Same team and captain phone, other capitals and spacing, a new key.
    let again = TestForm::valid().set("team_name", "rising   STARS xi");
    assert_refused_at_the_door(&stack, &again).await;
    assert_eq!(
        keys_matching(&stack, "status:*").len(),
        1,
        "no second record"
    );
    assert!(stack.queued_jobs().len() <= 1, "nothing queued for it");
    // Another captain's phone is another team.
    let other = TestForm::valid().set("captain_phone", "9000000001");
    completed(&stack, &other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_form_that_sends_its_documents_first_is_checked_once_read() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    completed(&stack, &TestForm::valid()).await;
    // `set` moves a field to the end: the document now comes before the team.
    let documents_first = TestForm::valid()
        .file("pastor_letter", png(4096), "letter.png")
        .set("team_name", "Rising Stars XI")
        .set("captain_phone", "9876543210");
    assert_refused_at_the_door(&stack, &documents_first).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_with_the_same_key_is_a_replay_not_a_duplicate() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let key = uuid::Uuid::new_v4().to_string();
    let id = stack.submit_with_key(&TestForm::valid(), &key).await;
    stack.wait_final(&id, FINISH).await;
    let response = stack.post_form(&TestForm::valid(), &key).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let body: Value = response.json().await.expect("body");
    assert_eq!(body["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_is_rebuilt_from_postgres_when_redis_loses_it() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    completed(&stack, &team(1)).await;
    completed(&stack, &team(2)).await;
    stack.forget_team_index();
    // A worker finds it missing and rebuilds it from the saved teams.
    let index = stack.settings.keys().team_index();
    intake_testkit::eventually("index rebuilt", Duration::from_secs(20), || async {
        let built: bool = redis::cmd("HEXISTS")
            .arg(&index)
            .arg("!built")
            .query(&mut redis(&stack))
            .expect("HEXISTS");
        built.then_some(())
    })
    .await;
    let entries: usize = redis::cmd("HLEN")
        .arg(&index)
        .query(&mut redis(&stack))
        .expect("HLEN");
    assert_eq!(entries, 3, "two teams and the mark");
    assert_refused_at_the_door(&stack, &team(1)).await;
    assert_refused_at_the_door(&stack, &team(2)).await;
    completed(&stack, &team(3)).await;
}

/// The index holds digests, never phone numbers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_index_keeps_no_phone_number() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    completed(&stack, &TestForm::valid()).await;
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(stack.settings.keys().team_index())
        .query(&mut redis(&stack))
        .expect("HKEYS");
    let expected = TeamKey::new(
        &TeamName::parse("Rising Stars XI").expect("name"),
        &Phone::parse("9876543210").expect("phone"),
    )
    .digest();
    assert!(fields.contains(&expected), "{fields:?}");
    assert!(fields.iter().all(|f| !f.contains("9876543210")));
}

/// The team key is folded in Rust exactly as the unique index on `teams` folds the name in
/// Postgres, so the claim, the index and the index's rebuild agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_team_key_folds_as_postgres_does() {
    let stack = Stack::start().await;
    for name in [
        "Rising Stars XI",
        "RISING   stars  xi",
        "Équipe  Étoile",
        "ÖZTÜRK Eleven",
        "Ναυτίλος ΧΙ",
        "a\u{00A0}b c",
        "em\u{2003}\u{2003}space",
    ] {
        let (folded,): (String,) =
            sqlx::query_as("SELECT lower(regexp_replace($1, '\\s+', ' ', 'g')) || E'\\n' || $2")
                .bind(name)
                .bind("9876543210")
                .fetch_one(&stack.pool)
                .await
                .expect("fold");
        let key = TeamKey::new(
            &TeamName::parse(name).expect("name"),
            &Phone::parse("9876543210").expect("phone"),
        );
        assert_eq!(key.as_str(), folded, "{name:?}");
    }
}
