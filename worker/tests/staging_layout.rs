//! The staging layout (docs/contract.md §11): each submission is one staged object holding
//! its documents one after another, found by the offsets its job carries; a job staged in
//! the layout before it (a directory per upload, a file per document, a SHA-256) still
//! completes; an object that is shorter or other than what the api received fails the
//! registration for good, as one whose documents are gone.

use std::time::Duration;

use intake_testkit::form::{TestForm, jpeg, pdf};
use intake_testkit::stack::{Stack, team};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn form() -> TestForm {
    TestForm::valid()
        .file("payment_receipt", pdf(40_000), "receipt.pdf")
        .file("pastor_letter", jpeg(30_000), "letter.jpg")
}

/// The staged object's name and its job's payload (the only job queued).
fn queued(stack: &Stack) -> (String, Value) {
    let jobs = stack.queued_jobs();
    assert_eq!(jobs.len(), 1, "one job queued");
    let job = serde_json::to_value(&jobs[0]).expect("job as JSON");
    let name = job["documents"][0]["staged_path"]
        .as_str()
        .expect("staged_path")
        .to_owned();
    (name, job)
}

/// Rewrites the queued job's payload in Redis (apalis keeps it under its own task id).
fn requeue(stack: &Stack, id: &str, job: &Value) {
    let queue = intake_shared::queue::config(&stack.settings.keys(), &stack.settings.queue);
    let mut conn = redis::Client::open(stack.settings.redis.url.as_str())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let payloads: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
        .arg(queue.job_data_hash())
        .query(&mut conn)
        .expect("job data");
    let task = payloads
        .iter()
        .find(|(_, payload)| {
            serde_json::from_slice::<Value>(payload).is_ok_and(|p| p["registration_id"] == id)
        })
        .map(|(task, _)| task.clone())
        .expect("the registration's task");
    let () = redis::cmd("HSET")
        .arg(queue.job_data_hash())
        .arg(task)
        .arg(serde_json::to_vec(job).expect("json"))
        .query(&mut conn)
        .expect("job rewritten");
}

/// What the documents table keeps of the registration, by kind.
async fn stored_sha256(stack: &Stack, id: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT kind, sha256 FROM documents WHERE registration_id = $1::uuid ORDER BY kind",
    )
    .bind(id)
    .fetch_all(&stack.pool)
    .await
    .expect("documents")
}

fn sha256(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submission_is_one_object_its_job_finds_each_document_in() {
    let mut stack = Stack::start().await;
    let id = stack.submit(&form()).await;
    let (name, job) = queued(&stack);
    let entries: Vec<_> = std::fs::read_dir(stack.staging.path())
        .expect("staging listed")
        .flatten()
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "one object, no directory, no partial file"
    );
    assert_eq!(entries[0].file_name().to_str(), Some(name.as_str()));
    assert!(entries[0].path().is_file());
    let object = std::fs::read(entries[0].path()).expect("object read");
    assert_eq!(object.len(), 70_000);
    for doc in job["documents"].as_array().expect("documents") {
        assert_eq!(doc["staged_path"], name.as_str(), "both in one object");
        let start = doc["offset"].as_u64().expect("offset") as usize;
        let end = start + doc["bytes"].as_u64().expect("bytes") as usize;
        let expected = match doc["kind"].as_str() {
            Some("payment_receipt") => pdf(40_000),
            _ => jpeg(30_000),
        };
        assert_eq!(object.get(start..end), Some(&expected[..]), "{doc}");
        assert_eq!(
            doc["blake3"].as_str(),
            Some(blake3::hash(&expected).to_hex().as_str())
        );
        assert!(
            doc.get("sha256").is_none(),
            "the api hashes once, with BLAKE3"
        );
    }

    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(
        stored_sha256(&stack, &id).await,
        [
            ("pastor_letter".to_owned(), sha256(&jpeg(30_000))),
            ("payment_receipt".to_owned(), sha256(&pdf(40_000))),
        ],
        "the documents table keeps the SHA-256 of each document"
    );
    assert_eq!(stack.staged_files(), 0, "the object goes with the save");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_staged_in_the_old_layout_still_completes() {
    let mut stack = Stack::start().await;
    let id = stack.submit(&form()).await;
    let (name, mut job) = queued(&stack);
    // What an api before the one-object layout staged and queued: a directory per upload,
    // a file per document, each document's SHA-256, no offsets.
    let object = stack.staging.path().join(&name);
    let content = std::fs::read(&object).expect("object read");
    std::fs::remove_file(&object).expect("object removed");
    std::fs::create_dir(&object).expect("upload directory");
    for doc in job["documents"].as_array_mut().expect("documents") {
        let start = doc["offset"].as_u64().expect("offset") as usize;
        let end = start + doc["bytes"].as_u64().expect("bytes") as usize;
        let bytes = &content[start..end];
        let field = doc["kind"].as_str().expect("kind").to_owned();
        std::fs::write(object.join(&field), bytes).expect("document file");
        let old = doc.as_object_mut().expect("document");
        old.remove("offset");
        old.remove("blake3");
        old.insert("staged_path".into(), format!("{name}/{field}").into());
        old.insert("sha256".into(), sha256(bytes).into());
    }
    requeue(&stack, &id, &job);

    stack.spawn_worker(2).await;
    let status = stack.wait_final(&id, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "completed", "{status}");
    assert_eq!(status["email_status"], "sent");
    assert_eq!(
        stored_sha256(&stack, &id).await,
        [
            ("pastor_letter".to_owned(), sha256(&jpeg(30_000))),
            ("payment_receipt".to_owned(), sha256(&pdf(40_000))),
        ]
    );
    assert_eq!(stack.cloudinary.assets().len(), 2);
    assert!(
        !object.exists(),
        "the old upload directory goes with the save"
    );
    assert_eq!(stack.staged_files(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_or_altered_object_fails_for_good_as_documents_expired() {
    let mut stack = Stack::start().await;
    let short = stack.submit(&form()).await;
    let (name, _) = queued(&stack);
    // A host crash with relaxed durability: the job survived, the object's tail did not.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(stack.staging.path().join(&name))
        .expect("object opened");
    file.set_len(50_000).expect("object cut short");
    drop(file);
    stack.spawn_worker(2).await;
    let status = stack.wait_final(&short, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "DOCUMENTS_EXPIRED", "{status}");
    assert_eq!(status["attempts"], 1, "no attempt can bring it back");
    assert_eq!(
        stack.cloudinary.assets().len(),
        0,
        "nothing of it was stored, not even its intact document"
    );

    stack.stop_workers().await;
    let altered = stack.submit(&team(2)).await;
    let jobs = stack.queued_jobs();
    let job = jobs
        .iter()
        .find(|j| j.registration_id.to_string() == altered)
        .expect("the second job");
    let path = stack.staging.path().join(&job.documents[0].staged_path);
    let mut bytes = std::fs::read(&path).expect("object read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).expect("object altered");
    stack.spawn_worker(2).await;
    let status = stack.wait_final(&altered, Duration::from_secs(30)).await;
    assert_eq!(status["status"], "failed", "{status}");
    assert_eq!(status["error"]["code"], "DOCUMENTS_EXPIRED", "{status}");
    assert_eq!(
        stack.count("SELECT count(*) FROM teams").await,
        0,
        "neither was saved"
    );
}
