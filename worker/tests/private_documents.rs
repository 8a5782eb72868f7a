//! Documents are personal data: the worker uploads them as `authenticated` assets, which
//! Cloudinary delivers to no one who holds only their `secure_url` (docs/contract.md §8).

use std::time::Duration;

use intake_testkit::form::{TestForm, jpeg, pdf};
use intake_testkit::stack::Stack;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documents_are_uploaded_as_authenticated_and_their_secure_url_opens_nothing() {
    let mut stack = Stack::start().await;
    stack.spawn_worker(2).await;
    let form = TestForm::valid()
        .file("payment_receipt", pdf(20_000), "receipt.pdf")
        .file("pastor_letter", jpeg(10_000), "letter.jpg");
    let id = stack.submit(&form).await;
    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");

    let assets = stack.cloudinary.assets();
    assert_eq!(assets.len(), 2);
    for asset in &assets {
        assert_eq!(asset.delivery_type, "authenticated", "{asset:?}");
        // `auto` files a PDF under `image`, as Cloudinary does; the admin signs for that.
        assert_eq!(asset.resource_type, "image", "{asset:?}");
    }
    assert_eq!(stack.cloudinary.refused_signatures(), 0);

    let urls: Vec<(String,)> = sqlx::query_as("SELECT secure_url FROM documents ORDER BY kind")
        .fetch_all(&stack.pool)
        .await
        .expect("document rows");
    assert_eq!(urls.len(), 2);
    for (url,) in &urls {
        assert!(url.contains("/authenticated/"), "{url}");
        let answer = stack.client.get(url).send().await.expect("fake reachable");
        assert_eq!(answer.status(), 401, "{url} is refused without a signature");
    }
    assert_eq!(stack.cloudinary.refused_deliveries(), 2);
}

/// The control for the test above: the fake does deliver a public `upload` asset at its
/// `secure_url`, so the refusal there is the delivery type's doing.
#[tokio::test]
async fn the_fake_delivers_a_public_upload_asset_to_anyone() {
    use intake_testkit::cloudinary::{API_KEY, API_SECRET, CLOUD_NAME, FakeCloudinary, signature};

    let fake = FakeCloudinary::start().await;
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .to_string();
    let params = [
        ("public_id", "control/receipt"),
        ("timestamp", timestamp.as_str()),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    let content = pdf(3_000);
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(content.clone()).file_name("receipt.pdf"),
        )
        .text("api_key", API_KEY)
        .text("public_id", "control/receipt")
        .text("timestamp", timestamp.clone())
        .text("signature", signature(&params, API_SECRET));
    let client = intake_testkit::http_client();
    let answer: serde_json::Value = client
        .post(format!("{}/v1_1/{CLOUD_NAME}/auto/upload", fake.api_base()))
        .multipart(form)
        .send()
        .await
        .expect("fake reachable")
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["type"], "upload", "{answer}");
    let url = answer["secure_url"].as_str().expect("secure_url");
    let delivered = client.get(url).send().await.expect("fake reachable");
    assert_eq!(delivered.status(), 200, "{url}");
    assert_eq!(delivered.bytes().await.expect("body").as_ref(), content);
}
