//! No document is reachable without a short-lived signed URL (docs/contract.md §8, §14, §15):
//! with Cloudinary a document's `url` is a private download URL that expires in five
//! minutes, with local media it is the admin's own route behind a `support` token, and a
//! `viewer` is shown no `url` at all.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use intake_testkit::admin_stack::{AdminStack, ORGANISER_TOKEN, TOKEN, VIEWER_TOKEN};
use intake_testkit::cloudinary::{API_SECRET, CLOUD_NAME, signature};
use intake_testkit::form::{TestForm, png};
use reqwest::Url;
use serde_json::Value;

const FINISH: Duration = Duration::from_secs(60);
const TEAM: &str = "/admin/v1/teams/ICCT-0001";

/// `TestForm::valid()` saved as ICCT-0001; its registration id.
async fn saved_team(admin: &AdminStack) -> String {
    let id = admin.stack.submit(&TestForm::valid()).await;
    let status = admin.stack.wait_final(&id, FINISH).await;
    assert_eq!(status["status"], "completed", "{status}");
    id
}

/// The bytes `TestForm::valid()` sends as its payment receipt.
fn receipt() -> Vec<u8> {
    png(2048)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn params(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param(params: &[(String, String)], name: &str) -> String {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} in {params:?}"))
}

/// `url` with these parameters replaced (added if absent).
fn with(url: &Url, changes: &[(&str, &str)]) -> Url {
    let mut pairs = params(url);
    for (name, value) in changes {
        pairs.retain(|(k, _)| k != name);
        pairs.push(((*name).to_owned(), (*value).to_owned()));
    }
    let mut changed = url.clone();
    changed.query_pairs_mut().clear().extend_pairs(pairs);
    changed
}

/// `url` with these parameters replaced and signed again with the API secret, as someone
/// holding the secret could: what the fake then refuses, it refuses for the parameter.
fn resigned(url: &Url, changes: &[(&str, &str)]) -> Url {
    let changed = with(url, changes);
    let unsigned: Vec<(String, String)> = params(&changed)
        .into_iter()
        .filter(|(k, _)| k != "signature")
        .collect();
    with(
        &changed,
        &[("signature", &signature(&unsigned, API_SECRET))],
    )
}

async fn status_of(admin: &AdminStack, url: &Url) -> u16 {
    admin
        .stack
        .client
        .get(url.clone())
        .send()
        .await
        .expect("fake reachable")
        .status()
        .as_u16()
}

fn document_url(detail: &Value) -> Url {
    let url = detail["documents"][0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("a document url: {detail}"));
    Url::parse(url).expect("an absolute URL")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_document_url_is_a_short_lived_signed_download() {
    let admin = AdminStack::start().await;
    saved_team(&admin).await;
    let asked_at = now();
    let detail = admin.get_json(TEAM).await;
    let document = &detail["documents"][0];
    assert_eq!(document["field"], "payment_receipt");
    assert_eq!(document["content_type"], "image/png");
    assert_eq!(document["bytes"], 2048);
    let url = document_url(&detail);
    assert!(
        url.as_str().starts_with(&format!(
            "{}/v1_1/{CLOUD_NAME}/image/download?",
            admin.stack.cloudinary.api_base()
        )),
        "{url}"
    );
    let query = params(&url);
    assert_eq!(param(&query, "type"), "authenticated");
    assert_eq!(param(&query, "format"), "png");
    let expires_at: u64 = param(&query, "expires_at").parse().expect("a number");
    let timestamp: u64 = param(&query, "timestamp").parse().expect("a number");
    assert_eq!(expires_at - timestamp, 300, "valid for five minutes");
    assert!(
        (asked_at..=now() + 1).contains(&timestamp),
        "made when asked: {timestamp}"
    );

    let answer = admin
        .stack
        .client
        .get(url.clone())
        .send()
        .await
        .expect("fake");
    assert_eq!(answer.status(), 200, "{url}");
    assert_eq!(answer.bytes().await.expect("body").as_ref(), receipt());

    let past = (now() - 60).to_string();
    assert_eq!(
        status_of(&admin, &with(&url, &[("expires_at", &past)])).await,
        401
    );
    assert_eq!(
        status_of(&admin, &resigned(&url, &[("expires_at", &past)])).await,
        401,
        "expired, even when properly signed"
    );
    let later = (now() + 120).to_string();
    assert_eq!(
        status_of(&admin, &resigned(&url, &[("expires_at", &later)])).await,
        200,
        "the control: re-signing alone is not what is refused"
    );
    let mut forged = param(&query, "signature");
    let last = if forged.ends_with('0') { "1" } else { "0" };
    forged.replace_range(forged.len() - 1.., last);
    assert_eq!(
        status_of(&admin, &with(&url, &[("signature", &forged)])).await,
        401
    );
    assert_eq!(
        status_of(&admin, &with(&url, &[("type", "upload")])).await,
        401,
        "the delivery type is signed"
    );

    // With Cloudinary the admin keeps no documents itself.
    let local = admin
        .get(&format!("{TEAM}/documents/payment_receipt"))
        .await;
    assert_eq!(local.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_sees_no_document_url() {
    let admin = AdminStack::start().await;
    let id = saved_team(&admin).await;
    let detail = admin.get_as(VIEWER_TOKEN, TEAM).await;
    assert_eq!(detail.status(), 200);
    let detail: Value = detail.json().await.expect("JSON");
    let document = detail["documents"][0].as_object().expect("a document");
    let mut keys: Vec<&str> = document.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["bytes", "content_type", "field"], "{detail}");

    let registration = admin
        .get_as(VIEWER_TOKEN, &format!("/admin/v1/registrations/{id}"))
        .await;
    assert_eq!(registration.status(), 200);
    let registration: Value = registration.json().await.expect("JSON");
    let document = registration["documents"][0]
        .as_object()
        .expect("a document");
    let mut keys: Vec<&str> = document.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["bytes", "content_type", "kind"], "{registration}");

    // The roles above support see it.
    let organiser: Value = admin
        .get_as(ORGANISER_TOKEN, TEAM)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(status_of(&admin, &document_url(&organiser)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_local_media_the_admin_serves_documents_behind_the_token() {
    let media = tempfile::tempdir().expect("media dir");
    let media_path = media.path().to_path_buf();
    let admin = AdminStack::start_with(move |s| {
        s.cloudinary.url = None;
        s.cloudinary.media_dir = media_path;
    })
    .await;
    saved_team(&admin).await;
    let detail = admin.get_json(TEAM).await;
    let path = format!("{TEAM}/documents/payment_receipt");
    assert_eq!(detail["documents"][0]["url"], path.as_str(), "{detail}");
    assert!(!detail.to_string().contains("file://"), "{detail}");

    let anonymous = admin
        .stack
        .client
        .get(format!("{}{path}", admin.base))
        .send()
        .await
        .expect("admin reachable");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(admin.get_as(VIEWER_TOKEN, &path).await.status(), 403);

    let served = admin.get_as(TOKEN, &path).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(served.bytes().await.expect("body").as_ref(), receipt());
    // The team ID in any case, as everywhere.
    let lower = admin
        .get("/admin/v1/teams/icct-0001/documents/payment_receipt")
        .await;
    assert_eq!(lower.status(), 200);

    for unknown in [
        format!("{TEAM}/documents/pastor_letter"),
        format!("{TEAM}/documents/passport"),
        "/admin/v1/teams/ICCT-0404/documents/payment_receipt".to_owned(),
    ] {
        let answer = admin.get(&unknown).await;
        assert_eq!(answer.status(), 404, "{unknown}");
        let body: Value = answer.json().await.expect("problem+json");
        assert_eq!(body["code"], "NOT_FOUND", "{unknown}");
    }
    // The token is checked before the team is looked for.
    let forbidden = admin
        .get_as(
            VIEWER_TOKEN,
            "/admin/v1/teams/ICCT-0404/documents/payment_receipt",
        )
        .await;
    assert_eq!(forbidden.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_support_view_shows_no_public_url() {
    let admin = AdminStack::start().await;
    let id = saved_team(&admin).await;
    let shown = admin
        .get_json(&format!("/admin/v1/registrations/{id}"))
        .await;
    let document = shown["documents"][0].as_object().expect("a document");
    let mut keys: Vec<&str> = document.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["bytes", "content_type", "kind", "url"], "{shown}");
    assert_eq!(document["kind"], "payment_receipt");
    let text = shown.to_string();
    for asset in admin.stack.cloudinary.assets() {
        assert!(
            !text.contains(&asset.secure_url) && !text.contains("/authenticated/"),
            "no stored secure_url: {text}"
        );
    }
    let url = document_url(&shown);
    assert!(url.path().ends_with("/image/download"), "{url}");
    let answer = admin
        .stack
        .client
        .get(url.clone())
        .send()
        .await
        .expect("fake");
    assert_eq!(answer.status(), 200, "{url}");
    assert_eq!(answer.bytes().await.expect("body").as_ref(), receipt());
}
