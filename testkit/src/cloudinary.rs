//! A fake of Cloudinary's Upload API (docs/contract.md §8) that is strict where the real one is:
//! it checks the api key, the timestamp's age and the request signature, keeps assets by
//! `public_id` and honours `overwrite=false`. Tests can script failures: an error status
//! with Cloudinary's error body, a hang, a slow answer, a connection broken before or
//! after the asset is stored, or a random mix of these at a given rate.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use sha1::{Digest, Sha1};

pub const API_KEY: &str = "123456789012345";
pub const API_SECRET: &str = "testkit-secret-abcdef";
pub const CLOUD_NAME: &str = "intake-test";

/// How the fake answers an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    Normal,
    /// Answer this status with `{"error": {"message": …}}`.
    Fail(u16),
    /// Never answer (until the client gives up).
    Hang,
    /// Answer normally after a delay.
    Slow(Duration),
    /// Break the connection before storing anything.
    Reset,
    /// Store the asset, then break the connection: the client never learns it succeeded.
    LostAnswer,
    /// Fail this percentage of calls, each time at random with a 5xx, a broken connection
    /// (before or after storing) or a hang; answer the rest normally.
    Flaky(u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub public_id: String,
    pub version: u64,
    pub bytes: usize,
    pub format: String,
    pub secure_url: String,
    pub sha1: String,
}

#[derive(Default)]
struct Inner {
    assets: HashMap<String, Asset>,
    scripted: VecDeque<Behaviour>,
    default: Option<Behaviour>,
    upload_calls: usize,
    refused_signatures: usize,
    dice: Option<crate::Rng>,
}

#[derive(Clone)]
pub struct FakeCloudinary {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
    server: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeCloudinary {
    fn drop(&mut self) {
        if Arc::strong_count(&self.server) == 1 {
            self.server.abort();
        }
    }
}

impl FakeCloudinary {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = axum::Router::new()
            .route("/v1_1/{cloud}/{resource_type}/upload", post(upload))
            .layer(axum::extract::DefaultBodyLimit::max(20 * 1024 * 1024))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake cloudinary");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            inner,
            addr,
            server: Arc::new(server),
        }
    }

    /// `INTAKE_CLOUDINARY_API_BASE` for this fake.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `CLOUDINARY_URL` with the credentials this fake accepts.
    pub fn url(&self) -> String {
        format!("cloudinary://{API_KEY}:{API_SECRET}@{CLOUD_NAME}")
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues behaviours for the next uploads, in order; afterwards the default applies.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.lock().scripted.extend(behaviours);
    }

    /// Sets how every upload is answered once the script is used up.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.lock().default = Some(behaviour);
    }

    pub fn assets(&self) -> Vec<Asset> {
        let mut assets: Vec<Asset> = self.lock().assets.values().cloned().collect();
        assets.sort_by(|a, b| a.public_id.cmp(&b.public_id));
        assets
    }

    pub fn upload_calls(&self) -> usize {
        self.lock().upload_calls
    }

    /// Uploads refused for a wrong api key, stale timestamp or bad signature.
    pub fn refused_signatures(&self) -> usize {
        self.lock().refused_signatures
    }
}

fn error(status: u16, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({"error": {"message": message}})),
    )
        .into_response()
}

/// Cloudinary's signature: SHA-1 of the sorted `name=value` pairs joined by `&`, excluding
/// `file`, `cloud_name`, `resource_type` and `api_key`, with the secret appended.
pub fn signature(params: &[(String, String)], secret: &str) -> String {
    let mut signed: Vec<&(String, String)> = params
        .iter()
        .filter(|(k, _)| {
            ![
                "file",
                "cloud_name",
                "resource_type",
                "api_key",
                "signature",
            ]
            .contains(&k.as_str())
        })
        .collect();
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    let joined = signed
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    hex::encode(Sha1::digest(format!("{joined}{secret}").as_bytes()))
}

async fn upload(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((cloud, resource_type)): Path<(String, String)>,
    mut multipart: Multipart,
) -> Response {
    let behaviour = {
        let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.upload_calls += 1;
        let behaviour = inner
            .scripted
            .pop_front()
            .or_else(|| inner.default.clone())
            .unwrap_or(Behaviour::Normal);
        match behaviour {
            Behaviour::Flaky(percent) => {
                let dice = inner.dice.get_or_insert_with(|| crate::Rng::new(0xC10D));
                if dice.below(100) < usize::from(percent) {
                    match dice.below(6) {
                        0 => Behaviour::Fail(500),
                        1 => Behaviour::Fail(502),
                        2 => Behaviour::Fail(503),
                        3 => Behaviour::Reset,
                        4 => Behaviour::LostAnswer,
                        _ => Behaviour::Hang,
                    }
                } else {
                    Behaviour::Normal
                }
            }
            other => other,
        }
    };
    match behaviour {
        Behaviour::Fail(status) => return error(status, "scripted failure"),
        Behaviour::Hang => {
            std::future::pending::<()>().await;
        }
        Behaviour::Slow(delay) => tokio::time::sleep(delay).await,
        Behaviour::Reset => return broken_connection(),
        Behaviour::Normal | Behaviour::LostAnswer | Behaviour::Flaky(_) => {}
    }
    if cloud != CLOUD_NAME {
        return error(404, "Unknown cloud");
    }
    if !["auto", "image", "raw"].contains(&resource_type.as_str()) {
        return error(400, "Invalid resource type");
    }
    let mut params: Vec<(String, String)> = Vec::new();
    let mut file: Option<Vec<u8>> = None;
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                match field.bytes().await {
                    Ok(bytes) if name == "file" => file = Some(bytes.to_vec()),
                    Ok(bytes) => params.push((name, String::from_utf8_lossy(&bytes).into_owned())),
                    Err(_) => return error(400, "Malformed multipart"),
                }
            }
            Ok(None) => break,
            Err(_) => return error(400, "Malformed multipart"),
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let refuse = |status: u16, message: &str| {
        inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .refused_signatures += 1;
        error(status, message)
    };
    if param("api_key").as_deref() != Some(API_KEY) {
        return refuse(401, "Invalid api_key");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    match param("timestamp").and_then(|t| t.parse::<u64>().ok()) {
        Some(ts) if ts + 3600 >= now && ts <= now + 3600 => {}
        _ => return refuse(400, "Stale request - reported time is older than 1 hour"),
    }
    if param("signature").as_deref() != Some(signature(&params, API_SECRET).as_str()) {
        return refuse(401, "Invalid Signature");
    }
    let Some(file) = file else {
        return error(400, "Missing required parameter - file");
    };
    let format = match file.as_slice() {
        [0x89, b'P', b'N', b'G', ..] => "png",
        [0xFF, 0xD8, 0xFF, ..] => "jpg",
        [b'%', b'P', b'D', b'F', ..] => "pdf",
        _ => return error(400, "Invalid image file"),
    };
    let public_id = param("public_id").unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let overwrite = param("overwrite").as_deref() != Some("false");
    let mut inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = inner.assets.get(&public_id)
        && !overwrite
    {
        return Json(asset_json(existing, true)).into_response();
    }
    let asset = Asset {
        version: now,
        bytes: file.len(),
        format: format.to_owned(),
        secure_url: format!(
            "https://res.cloudinary.com/{CLOUD_NAME}/image/upload/v{now}/{public_id}.{format}"
        ),
        sha1: hex::encode(Sha1::digest(&file)),
        public_id: public_id.clone(),
    };
    let body = asset_json(&asset, false);
    inner.assets.insert(public_id, asset);
    if behaviour == Behaviour::LostAnswer {
        return broken_connection();
    }
    Json(body).into_response()
}

/// An answer whose body fails at once: hyper abandons the connection, and the client sees
/// it closed before a complete answer, as when a connection is reset.
fn broken_connection() -> Response {
    let failing = futures::stream::once(async {
        Err::<bytes::Bytes, std::io::Error>(std::io::Error::other("connection reset by the fake"))
    });
    Response::new(axum::body::Body::from_stream(failing))
}

fn asset_json(asset: &Asset, existing: bool) -> serde_json::Value {
    json!({
        "public_id": asset.public_id,
        "version": asset.version,
        "secure_url": asset.secure_url,
        "url": asset.secure_url.replacen("https://", "http://", 1),
        "bytes": asset.bytes,
        "format": asset.format,
        "resource_type": "image",
        "type": "upload",
        "existing": existing,
    })
}
