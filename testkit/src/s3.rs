//! An S3-compatible server for tests: moto in server mode (from PyPI; `scripts/test`
//! installs it and names it in `INTAKE_TEST_MOTO_SERVER`), on a free port, with a bucket.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct MotoServer {
    pub endpoint: String,
    child: Child,
}

impl MotoServer {
    pub async fn start() -> Self {
        let binary =
            std::env::var("INTAKE_TEST_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(&binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{binary} (moto server; scripts/test installs it) did not start: {e}")
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let probe = endpoint.clone();
        crate::eventually("moto to answer", Duration::from_secs(30), || {
            let probe = probe.clone();
            async move { crate::http_client().get(&probe).send().await.ok().map(drop) }
        })
        .await;
        Self { endpoint, child }
    }

    /// Creates a bucket (moto accepts unsigned requests).
    pub async fn create_bucket(&self, bucket: &str) {
        let response = crate::http_client()
            .put(format!("{}/{bucket}", self.endpoint))
            .send()
            .await
            .expect("moto reachable");
        assert!(
            response.status().is_success(),
            "bucket created: {}",
            response.status()
        );
    }

    /// Keys in a bucket under a prefix.
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.objects(bucket, prefix)
            .await
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    /// Objects in a bucket under a prefix, as the listing describes them.
    pub async fn objects(&self, bucket: &str, prefix: &str) -> Vec<S3Object> {
        let xml = crate::http_client()
            .get(format!(
                "{}/{bucket}?list-type=2&prefix={prefix}",
                self.endpoint
            ))
            .send()
            .await
            .expect("moto reachable")
            .text()
            .await
            .expect("listing");
        xml.split("<Contents>")
            .skip(1)
            .map(|entry| {
                let field = |name: &str| {
                    entry
                        .split(&format!("<{name}>"))
                        .nth(1)
                        .and_then(|rest| rest.split(&format!("</{name}>")).next())
                        .unwrap_or_default()
                        .to_owned()
                };
                S3Object {
                    key: field("Key"),
                    etag: field("ETag").replace("&#34;", "").replace(['"'], ""),
                    size: field("Size").parse().unwrap_or(0),
                }
            })
            .collect()
    }
}

/// One object of a bucket listing.
#[derive(Debug, Clone)]
pub struct S3Object {
    pub key: String,
    /// S3's ETag: a multipart upload's ends in `-{parts}`, a single PUT's has no `-`.
    pub etag: String,
    pub size: u64,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
