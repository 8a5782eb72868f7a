//! HTTPS served by the admin itself (docs/contract.md §13, §14): with `INTAKE_ADMIN_TLS_CERT`
//! and `INTAKE_ADMIN_TLS_KEY` it speaks TLS on `INTAKE_ADMIN_ADDR` and nothing else; one of
//! them without the other, or files it cannot use, stop it at start-up with one line naming
//! the variable.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intake_admin::AdminApp;
use intake_testkit::admin_stack::{AdminStack, TOKEN};
use intake_testkit::settings::StackSettings;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A self-signed certificate for `localhost` and `127.0.0.1`, written as PEM files.
struct TestCertificate {
    dir: TempDir,
    pem: String,
}

impl TestCertificate {
    fn new() -> Self {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
                .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("temp dir");
        let pem = certified.cert.pem();
        std::fs::write(dir.path().join("admin.crt"), &pem).expect("certificate written");
        std::fs::write(
            dir.path().join("admin.key"),
            certified.signing_key.serialize_pem(),
        )
        .expect("key written");
        Self { dir, pem }
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("admin.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("admin.key")
    }

    /// A client that trusts this certificate and nothing else.
    fn client(&self) -> reqwest::Client {
        let certificate =
            reqwest::Certificate::from_pem(self.pem.as_bytes()).expect("PEM certificate");
        intake_testkit::http_client_builder()
            .tls_certs_only([certificate])
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTPS client")
    }
}

/// Settings for the admin alone, on loopback port 0, with Redis under a prefix of its own and
/// no database call made.
fn admin_alone(staging: &Path) -> StackSettings {
    let mut settings = StackSettings::default();
    settings.redis.url =
        std::env::var("INTAKE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    settings.redis.prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    settings.admin.addr = "127.0.0.1:0".parse().expect("literal");
    settings.admin.tokens = Some(format!("alice:{TOKEN}").into());
    settings.staging.dir = staging.to_path_buf();
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_certificate_and_key_the_admin_serves_https() {
    let certificate = TestCertificate::new();
    let (cert, key) = (certificate.cert(), certificate.key());
    let admin = AdminStack::start_with(move |s| {
        s.admin.tls_cert = Some(cert);
        s.admin.tls_key = Some(key);
    })
    .await;
    let base = admin.base.replacen("http://", "https://", 1);
    let client = certificate.client();

    let ready = client
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("JSON");
    assert_eq!(ready["status"], "ready", "{ready}");

    let queue = client
        .get(format!("{base}/admin/v1/queue"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(queue.status(), 200);
    assert_eq!(queue.version(), reqwest::Version::HTTP_11);
    let queue: Value = queue.json().await.expect("JSON");
    assert_eq!(queue["waiting"], 0, "{queue}");

    // Behind TLS the client is still its peer address: a failed attempt is counted for it.
    let refused = client
        .get(format!("{base}/admin/v1/queue"))
        .bearer_auth("wrong-token-0123456789-abcdefghijklmnop")
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(refused.status(), 401);
    let counter = admin.stack.settings.keys().admin_auth_failures("127.0.0.1");
    let counted = intake_testkit::redis_keys::matching(&admin.stack.settings.redis.url, &counter);
    assert_eq!(counted, vec![counter]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_no_answer() {
    let certificate = TestCertificate::new();
    let staging = tempfile::tempdir().expect("staging dir");
    let mut settings = admin_alone(staging.path());
    settings.admin.tls_cert = Some(certificate.cert());
    settings.admin.tls_key = Some(certificate.key());
    let app = AdminApp::build(settings.admin())
        .await
        .expect("admin builds");
    assert!(app.serves_tls());
    let addr = app.local_addr();
    let server = tokio::spawn(app.run_until(std::future::pending()));

    let plain = intake_testkit::http_client()
        .get(format!("http://{addr}/health/live"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("request written");
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut received))
        .await
        .expect("the connection is closed");
    assert!(
        !received.starts_with(b"HTTP/"),
        "an HTTP answer over plain HTTP: {:?}",
        String::from_utf8_lossy(&received)
    );

    // The same port does answer over TLS.
    let live = certificate
        .client()
        .get(format!("https://{addr}/health/live"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(live.status(), 200);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_shutdown_stops_listening_and_returns() {
    let certificate = TestCertificate::new();
    let staging = tempfile::tempdir().expect("staging dir");
    let mut settings = admin_alone(staging.path());
    settings.admin.tls_cert = Some(certificate.cert());
    settings.admin.tls_key = Some(certificate.key());
    settings.serve.shutdown_deadline = Duration::from_secs(5);
    let app = AdminApp::build(settings.admin())
        .await
        .expect("admin builds");
    let addr = app.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let client = certificate.client();
    let live = client
        .get(format!("https://{addr}/health/live"))
        .send()
        .await
        .expect("an HTTPS answer");
    assert_eq!(live.status(), 200);

    stop.send(()).expect("server running");
    let ended = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("run_until returns within the drain")
        .expect("server task");
    assert!(ended.is_ok(), "{ended:?}");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
}

#[tokio::test]
async fn a_certificate_without_its_key_is_refused_at_start_up() {
    let certificate = TestCertificate::new();
    let staging = tempfile::tempdir().expect("staging dir");
    let mut settings = admin_alone(staging.path());
    settings.admin.tls_cert = Some(certificate.cert());
    let refusal = AdminApp::build(settings.admin())
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(refusal.contains("INTAKE_ADMIN_TLS_KEY"), "{refusal}");
    assert!(!refusal.contains('\n'), "one line: {refusal}");
}

/// The binary, from the environment operators set: it stops before listening, and says why.
#[test]
fn the_binary_refuses_a_certificate_without_its_key() {
    let certificate = TestCertificate::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_intake-admin"))
        .env("INTAKE_ADMIN_ADDR", "127.0.0.1:0")
        .env("INTAKE_ADMIN_TLS_CERT", certificate.cert())
        .env_remove("INTAKE_ADMIN_TLS_KEY")
        .env_remove("INTAKE_CONFIG")
        .env("INTAKE_LOG_FORMAT", "json")
        .output()
        .expect("intake-admin runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("INTAKE_ADMIN_TLS_KEY"), "{stderr}");
}

#[tokio::test]
async fn files_that_are_not_a_certificate_and_key_are_refused_naming_the_variable() {
    let certificate = TestCertificate::new();
    let staging = tempfile::tempdir().expect("staging dir");
    let junk = certificate.dir.path().join("junk.pem");
    std::fs::File::create(&junk)
        .and_then(|mut f| f.write_all(b"not PEM at all\n"))
        .expect("junk written");
    let missing = certificate.dir.path().join("missing.pem");
    let other = rcgen::KeyPair::generate().expect("a key");
    let other_key = certificate.dir.path().join("other.key");
    std::fs::write(&other_key, other.serialize_pem()).expect("other key written");

    for (cert, key, variable) in [
        (junk.clone(), certificate.key(), "INTAKE_ADMIN_TLS_CERT"),
        (missing.clone(), certificate.key(), "INTAKE_ADMIN_TLS_CERT"),
        (certificate.cert(), junk.clone(), "INTAKE_ADMIN_TLS_KEY"),
        (certificate.cert(), missing.clone(), "INTAKE_ADMIN_TLS_KEY"),
        // A key that is not the certificate's.
        (
            certificate.cert(),
            other_key.clone(),
            "INTAKE_ADMIN_TLS_KEY",
        ),
    ] {
        let mut settings = admin_alone(staging.path());
        settings.admin.tls_cert = Some(cert.clone());
        settings.admin.tls_key = Some(key.clone());
        let refusal = AdminApp::build(settings.admin())
            .await
            .err()
            .unwrap_or_else(|| panic!("{cert:?} with {key:?} accepted"))
            .to_string();
        assert!(refusal.contains(variable), "{refusal}");
        assert!(!refusal.contains('\n'), "one line: {refusal}");
    }
}

/// The warning that the admin speaks plain HTTP beyond loopback is not given when it speaks
/// TLS, and is when it does not.
#[tokio::test]
async fn the_plain_http_warning_is_only_for_plain_http() {
    let certificate = TestCertificate::new();
    let staging = tempfile::tempdir().expect("staging dir");
    let warned = |tls: bool| {
        let mut settings = admin_alone(staging.path());
        settings.admin.addr = "0.0.0.0:0".parse().expect("literal");
        if tls {
            settings.admin.tls_cert = Some(certificate.cert());
            settings.admin.tls_key = Some(certificate.key());
        }
        async move {
            let logs = Logs::default();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(logs.clone())
                .with_ansi(false)
                .finish();
            let guard = tracing::subscriber::set_default(subscriber);
            let app = AdminApp::build(settings.admin())
                .await
                .expect("admin builds");
            drop(guard);
            drop(app);
            logs.text().contains("without TLS")
        }
    };
    assert!(warned(false).await, "plain HTTP on 0.0.0.0 is warned about");
    assert!(!warned(true).await, "HTTPS on 0.0.0.0 is not");
}

/// Log lines written by a test's subscriber.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}
