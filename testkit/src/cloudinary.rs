//! A fake of Cloudinary's Upload API (docs/contract.md §8) that is strict where the real one is:
//! it checks the api key, the timestamp's age and the request signature, keeps assets by
//! `public_id` with their delivery `type` and honours `overwrite=false`. Tests can script
//! failures: an error status with Cloudinary's error body, a hang, a slow answer, a connection
//! broken before or after the asset is stored, or a random mix of these at a given rate.
//!
//! It also delivers what it holds, as the real one does: an `upload` asset to anyone at its
//! delivery path (the `secure_url` it answered, pointing at the fake itself), an
//! `authenticated` one never there (the fake makes no signed delivery URLs), and any asset
//! through the private download endpoint, whose signature and `expires_at` it checks.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
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
    /// `image` (what `auto` makes of PNG, JPEG and PDF, as Cloudinary does) or `raw`.
    pub resource_type: String,
    /// Cloudinary's `type`: `upload` (public) unless the upload asked for `authenticated` or
    /// `private`.
    pub delivery_type: String,
    pub secure_url: String,
    pub sha1: String,
}

#[derive(Default)]
struct Inner {
    /// `http://{addr}`: where the delivery URLs the fake answers point.
    base: String,
    assets: HashMap<String, Asset>,
    /// Each asset's content, by `public_id`, for delivery and download.
    contents: HashMap<String, bytes::Bytes>,
    scripted: VecDeque<Behaviour>,
    default: Option<Behaviour>,
    upload_calls: usize,
    refused_signatures: usize,
    refused_deliveries: usize,
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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake cloudinary");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Mutex::new(Inner {
            base: format!("http://{addr}"),
            ..Inner::default()
        }));
        let app = axum::Router::new()
            .route("/v1_1/{cloud}/{resource_type}/upload", post(upload))
            .route("/v1_1/{cloud}/{resource_type}/download", get(download))
            .route(
                "/{cloud}/{resource_type}/{delivery_type}/{*path}",
                get(deliver),
            )
            .layer(axum::extract::DefaultBodyLimit::max(20 * 1024 * 1024))
            .with_state(inner.clone());
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

    /// Deliveries and downloads refused: an unsigned `authenticated` delivery, or a private
    /// download with a wrong api key, a bad signature or an `expires_at` in the past.
    pub fn refused_deliveries(&self) -> usize {
        self.lock().refused_deliveries
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
    let now = now_secs();
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
    let delivery_type = param("type").unwrap_or_else(|| "upload".to_owned());
    if !["upload", "authenticated", "private"].contains(&delivery_type.as_str()) {
        return error(400, "Invalid type");
    }
    // `auto` files PNG, JPEG and PDF alike under `image`, as Cloudinary does.
    let resource_type = if resource_type == "auto" {
        "image".to_owned()
    } else {
        resource_type
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
            "{}/{CLOUD_NAME}/{resource_type}/{delivery_type}/v{now}/{public_id}.{format}",
            inner.base
        ),
        resource_type,
        delivery_type,
        sha1: hex::encode(Sha1::digest(&file)),
        public_id: public_id.clone(),
    };
    let body = asset_json(&asset, false);
    inner.assets.insert(public_id.clone(), asset);
    inner.contents.insert(public_id, bytes::Bytes::from(file));
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
        "resource_type": asset.resource_type,
        "type": asset.delivery_type,
        "existing": existing,
    })
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

fn refuse_delivery(inner: &Mutex<Inner>, status: u16, message: &str) -> Response {
    inner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .refused_deliveries += 1;
    error(status, message)
}

fn content_type(format: &str) -> &'static str {
    match format {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// The asset's bytes, if one is held under this id with this resource type, delivery type
/// and format.
fn content_of(
    inner: &Inner,
    public_id: &str,
    resource_type: &str,
    delivery_type: &str,
    format: &str,
) -> Option<Response> {
    let asset = inner.assets.get(public_id)?;
    if asset.resource_type != resource_type
        || asset.delivery_type != delivery_type
        || asset.format != format
    {
        return None;
    }
    let bytes = inner.contents.get(public_id)?.clone();
    Some(([(header::CONTENT_TYPE, content_type(format))], bytes).into_response())
}

/// The CDN: `/{cloud}/{resource_type}/{type}/[s--signature--/]v{version}/{public_id}.{format}`.
/// An `upload` asset is anyone's; an `authenticated` or `private` one is refused, signed or
/// not (the fake makes no signed delivery URLs, so none is valid).
async fn deliver(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((cloud, resource_type, delivery_type, path)): Path<(String, String, String, String)>,
) -> Response {
    if cloud != CLOUD_NAME {
        return error(404, "Resource not found");
    }
    if delivery_type != "upload" {
        return refuse_delivery(&inner, 401, "Authenticated delivery needs a signed URL");
    }
    // The version segment is optional, as on the real CDN.
    let path = match path.split_once('/') {
        Some((version, rest))
            if version
                .strip_prefix('v')
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())) =>
        {
            rest
        }
        _ => path.as_str(),
    };
    let Some((public_id, format)) = path.rsplit_once('.') else {
        return error(404, "Resource not found");
    };
    let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    content_of(&inner, public_id, &resource_type, "upload", format)
        .unwrap_or_else(|| error(404, "Resource not found"))
}

/// The private download API (`private_download_url` in Cloudinary's SDKs): any asset, to
/// whoever holds a URL signed with the API secret whose `expires_at` (an hour after its
/// `timestamp` when absent, as Cloudinary) has not passed.
async fn download(
    State(inner): State<Arc<Mutex<Inner>>>,
    Path((cloud, resource_type)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if cloud != CLOUD_NAME {
        return error(404, "Unknown cloud");
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if param("api_key") != Some(API_KEY) {
        return refuse_delivery(&inner, 401, "Invalid api_key");
    }
    if param("signature") != Some(signature(&query, API_SECRET).as_str()) {
        return refuse_delivery(&inner, 401, "Invalid Signature");
    }
    let expires_at = match (param("expires_at"), param("timestamp")) {
        (Some(at), _) => at.parse::<u64>().ok(),
        (None, Some(ts)) => ts.parse::<u64>().ok().map(|ts| ts + 3600),
        (None, None) => None,
    };
    if expires_at.is_none_or(|at| at <= now_secs()) {
        return refuse_delivery(&inner, 401, "The URL has expired");
    }
    let (Some(public_id), Some(format)) = (param("public_id"), param("format")) else {
        return error(400, "Missing required parameter - public_id or format");
    };
    let delivery_type = param("type").unwrap_or("upload");
    let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
    content_of(&inner, public_id, &resource_type, delivery_type, format)
        .unwrap_or_else(|| error(404, "Resource not found"))
}
