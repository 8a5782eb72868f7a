//! The OpenAPI document against the running api: schemathesis (from PyPI; `scripts/test`
//! installs it and names it in `INTAKE_TEST_SCHEMATHESIS`) generates requests from
//! `/openapi.json` and checks every answer against it: no server errors, only documented
//! status codes, content types, headers and bodies.

mod support;

use support::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_openapi_contract() {
    let app = spawn_app().await;
    let schemathesis =
        std::env::var("INTAKE_TEST_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".into());
    let url = app.url("/openapi.json");
    // schemathesis keeps a cache in its working directory; keep it out of the repository.
    let workdir = tempfile::tempdir().expect("working directory");
    let output = tokio::process::Command::new(&schemathesis)
        .current_dir(workdir.path())
        .args(["run", &url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
        ])
        .args(["--max-examples", "40", "--seed", "20261122"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .unwrap_or_else(|e| panic!("{schemathesis} (scripts/test installs it) did not run: {e}"));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found contract failures:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(report.contains("passed"), "{report}");
    assert!(
        app.staged_files().is_empty(),
        "generated requests leave nothing staged"
    );
}

#[tokio::test]
async fn openapi_document_covers_every_public_endpoint() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/v1/registrations",
        "/v1/registrations/{id}",
        "/v1/registrations/{id}/events",
        "/health/live",
        "/health/ready",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    let submit = &doc["paths"]["/v1/registrations"]["post"];
    for status in ["202", "400", "409", "413", "415", "422", "429", "503"] {
        assert!(
            submit["responses"][status].is_object(),
            "{status} documented"
        );
    }
    assert!(submit["responses"]["400"]["content"]["application/problem+json"].is_object());
    assert!(submit["requestBody"]["content"]["multipart/form-data"].is_object());
}

#[tokio::test]
async fn form_and_docs_pages_are_served_from_the_binary() {
    let app = spawn_app().await;
    for (path, kind) in [
        ("/", "text/html"),
        ("/form.js", "text/javascript"),
        ("/form.css", "text/css"),
        ("/docs", "text/html"),
        ("/docs.js", "text/javascript"),
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .expect("ascii")
            .to_owned();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("https://"),
            "{path} loads nothing from other origins"
        );
    }
}
