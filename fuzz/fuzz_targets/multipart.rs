//! The api's multipart reader on arbitrary bodies: it never panics, every outcome is an
//! answer (fields, problems or an error), and a rejected upload leaves no file behind.
#![no_main]

use std::sync::{Arc, LazyLock};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart};
use axum::http::Request;
use intake_api::intake::form;
use intake_api::intake::staging::Staging;
use intake_shared::staging::{Durability, LocalStaging};
use libfuzzer_sys::fuzz_target;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
});
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("staging"));

fuzz_target!(|data: &[u8]| {
    RUNTIME.block_on(async {
        let staging = Staging::new(
            Arc::new(LocalStaging::new(DIR.path())),
            Durability::Relaxed,
        );
        let request = Request::post("/v1/registrations")
            .header("content-type", "multipart/form-data; boundary=FUZZ")
            .body(Body::from(data.to_vec()))
            .expect("request");
        let Ok(multipart) = Multipart::from_request(request, &()).await else {
            return;
        };
        let mut upload = staging.begin();
        let _ = form::read(multipart, &mut upload).await;
        upload.discard().await;
        let left = std::fs::read_dir(DIR.path())
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(left, 0, "a discarded upload left files");
    });
});
