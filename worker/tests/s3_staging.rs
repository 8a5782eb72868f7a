//! Staging in an S3-compatible bucket (moto), so api and workers can run on different hosts:
//! the api streams documents into the bucket, the worker reads them from it, completion and
//! the janitor remove them, and the local staging directory is never used.

use std::time::Duration;

use intake_testkit::cloudinary::Behaviour;
use intake_testkit::form::{TestForm, pdf, png};
use intake_testkit::s3::MotoServer;
use intake_testkit::stack::{Stack, team};
use intake_worker::janitor::Janitor;

const BUCKET: &str = "intake-staging";

async fn s3_stack(moto: &MotoServer) -> Stack {
    moto.create_bucket(BUCKET).await;
    let endpoint = moto.endpoint.clone();
    Stack::start_with(move |s| {
        s.staging.s3_bucket = Some(BUCKET.into());
        s.staging.s3_endpoint = Some(endpoint);
        s.staging.s3_prefix = format!("staging-{}", s.redis.prefix);
        s.staging.s3_access_key_id = Some("testing".into());
        s.staging.s3_secret_access_key = Some(secrecy::SecretString::from("testing"));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn documents_travel_through_the_bucket_and_are_removed_on_completion() {
    let moto = MotoServer::start().await;
    let mut stack = s3_stack(&moto).await;
    let prefix = stack.settings.staging.s3_prefix.clone();
    let form = TestForm::valid()
        .file("payment_receipt", pdf(200_000), "r.pdf")
        .file("pastor_letter", png(3 * 1024 * 1024), "l.png");
    let id = stack.submit(&form).await;
    let staged = moto.objects(BUCKET, &prefix).await;
    assert_eq!(staged.len(), 1, "one object for the submission: {staged:?}");
    let job = &stack.queued_jobs()[0];
    assert_eq!(
        staged[0].key,
        format!("{prefix}/{}", job.documents[0].staged_path)
    );
    assert_eq!(
        staged[0].size,
        200_000 + 3 * 1024 * 1024,
        "both documents in it"
    );
    assert!(
        !staged[0].etag.contains('-'),
        "stored with one PUT, not a multipart upload: {staged:?}"
    );
    assert_eq!(stack.staged_files(), 0, "nothing on the local disk");

    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let assets = stack.cloudinary.assets();
    assert_eq!(assets.len(), 2);
    assert!(
        assets.iter().any(|a| a.bytes == 3 * 1024 * 1024),
        "the 3 MiB file arrived whole"
    );
    assert!(
        moto.keys(BUCKET, &prefix).await.is_empty(),
        "staging emptied on completion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_over_one_put_is_one_object_uploaded_in_parts() {
    let moto = MotoServer::start().await;
    let mut stack = s3_stack(&moto).await;
    let prefix = stack.settings.staging.s3_prefix.clone();
    let form = TestForm::valid()
        .file("payment_receipt", png(4 * 1024 * 1024), "r.png")
        .file("pastor_letter", png(3 * 1024 * 1024), "l.png");
    let id = stack.submit(&form).await;
    let staged = moto.objects(BUCKET, &prefix).await;
    assert_eq!(staged.len(), 1, "{staged:?}");
    assert_eq!(staged[0].size, 7 * 1024 * 1024);
    assert!(
        staged[0].etag.ends_with("-2"),
        "7 MiB goes up as two parts of one object: {staged:?}"
    );
    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "completed", "{status}");
    let mut sizes: Vec<usize> = stack.cloudinary.assets().iter().map(|a| a.bytes).collect();
    sizes.sort();
    assert_eq!(
        sizes,
        [3 * 1024 * 1024, 4 * 1024 * 1024],
        "each document whole"
    );
    assert!(moto.keys(BUCKET, &prefix).await.is_empty());
}

/// An object cut short (its second document starts past its end, so S3 refuses that range)
/// fails the registration for good as one whose documents are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_short_object_fails_for_good_as_documents_expired() {
    let moto = MotoServer::start().await;
    let mut stack = s3_stack(&moto).await;
    let prefix = stack.settings.staging.s3_prefix.clone();
    let form = TestForm::valid()
        .file("payment_receipt", pdf(40_000), "r.pdf")
        .file("pastor_letter", png(30_000), "l.png");
    let id = stack.submit(&form).await;
    assert_eq!(moto.objects(BUCKET, &prefix).await.len(), 1);
    // The same object stored again, its first 20,000 bytes only.
    let upload = stack.queued_jobs()[0].documents[0].staged_path.clone();
    let store = intake_shared::staging::from_settings(&stack.settings.staging).expect("S3 store");
    let mut writer = store.create(&upload).await.expect("writer");
    writer.write(&pdf(40_000)[..20_000]).await.expect("written");
    writer.finish().await.expect("stored");
    assert_eq!(moto.objects(BUCKET, &prefix).await[0].size, 20_000);
    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "DOCUMENTS_EXPIRED", "{status}");
    assert_eq!(status["attempts"], 1, "no attempt can bring it back");
    assert!(stack.cloudinary.assets().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_requests_leave_nothing_in_the_bucket() {
    let moto = MotoServer::start().await;
    let stack = s3_stack(&moto).await;
    let prefix = stack.settings.staging.s3_prefix.clone();
    let bad =
        TestForm::valid()
            .set("captain_phone", "123")
            .file("pastor_letter", pdf(10_000), "l.pdf");
    let response = stack
        .client
        .post(format!("{}/v1/registrations", stack.api_base))
        .header("Idempotency-Key", "bad")
        .multipart(bad.to_form())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 400);
    assert!(moto.keys(BUCKET, &prefix).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failed_registrations_keep_their_staged_files_until_the_janitor_expires_them() {
    let moto = MotoServer::start().await;
    let mut stack = s3_stack(&moto).await;
    let prefix = stack.settings.staging.s3_prefix.clone();
    stack.cloudinary.set_default(Behaviour::Fail(400));
    stack.spawn_worker(2).await;
    let id = stack.submit(&team(1)).await;
    assert_eq!(
        stack.wait_final(&id, Duration::from_secs(60)).await["status"],
        "failed"
    );
    assert_eq!(moto.keys(BUCKET, &prefix).await.len(), 1);

    let janitor = Janitor {
        queue: intake_shared::queue::config(&stack.settings.keys(), &stack.settings.queue),
        staging: intake_shared::staging::from_settings(&stack.settings.staging)
            .expect("s3 staging"),
        keys: stack.settings.keys(),
        redis: intake_shared::redis_conn::connect_lazy(&stack.settings.redis.url)
            .expect("redis url"),
        retention: Duration::ZERO,
        orphan_grace: Duration::from_secs(3600),
    };
    let sweep = janitor.sweep().await.expect("sweep");
    assert_eq!(sweep.expired_removed, 1);
    assert!(moto.keys(BUCKET, &prefix).await.is_empty());
}
