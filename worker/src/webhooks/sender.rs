//! One attempt over HTTP, per the Standard Webhooks specification: a `POST` of
//! `{"type", "timestamp", "data"}` with `webhook-id`, `webhook-timestamp` and
//! `webhook-signature`. Redirects are not followed and no proxy is used. Unless private
//! targets are allowed, the client resolves names itself and hands the connector only
//! public addresses, so the address checked is the address connected to; a URL whose host
//! is an address is checked before anything is sent.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use intake_shared::webhook_targets;
use intake_shared::webhooks::SigningSecret;
use intake_store::pg::deliveries::Sending;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The endpoint answered with this status.
    Status(u16),
    /// No answer: a timeout, a refused or broken connection (what, in words).
    NoAnswer(String),
    /// The target is not one deliveries may reach (a private address, an unusable URL or
    /// secret): retrying will not change it.
    Refused(String),
}

/// The body every receiver gets.
#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: &'a serde_json::Value,
}

/// The HTTP client deliveries use.
#[derive(Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
}

impl Sender {
    pub fn new(timeout: Duration, allow_private: bool) -> Result<Self, reqwest::Error> {
        intake_shared::tls::install_ring_provider();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("Intake-Webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
            timeout,
        })
    }

    /// Sends one attempt of `sending`.
    pub async fn send(&self, sending: &Sending) -> Answer {
        let url = match reqwest::Url::parse(&sending.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => url,
            _ => return Answer::Refused("the endpoint's URL is not an http(s) URL".into()),
        };
        if !self.allow_private
            && let Some(ip) = webhook_targets::private_address_in(&url)
        {
            return Answer::Refused(format!("{ip} is a private, loopback or link-local address"));
        }
        let Ok(secret) = SigningSecret::parse(&sending.secret) else {
            return Answer::Refused("the endpoint's signing secret is unusable".into());
        };
        let body = match serde_json::to_vec(&Payload {
            kind: sending.event_type.as_str(),
            timestamp: sending
                .event_created_at
                .format(&Rfc3339)
                .unwrap_or_default(),
            data: &sending.data,
        }) {
            Ok(body) => body,
            Err(err) => return Answer::Refused(format!("the event could not be encoded: {err}")),
        };
        let id = sending.event_id.to_string();
        let timestamp = OffsetDateTime::now_utc().unix_timestamp();
        let signature = secret.sign(&id, timestamp, &body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => Answer::Status(response.status().as_u16()),
            Err(err) => self.no_answer(err),
        }
    }

    fn no_answer(&self, err: reqwest::Error) -> Answer {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(cause) = source {
            if let Some(refused) = cause.downcast_ref::<TargetRefused>() {
                return Answer::Refused(refused.to_string());
            }
            source = cause.source();
        }
        if err.is_timeout() {
            return Answer::NoAnswer(format!("no answer within {} ms", self.timeout.as_millis()));
        }
        // The innermost cause says what happened (refused, reset, unknown host); the URL,
        // which may carry a token, is never part of it.
        let err = err.without_url();
        let mut innermost: &dyn std::error::Error = &err;
        while let Some(cause) = innermost.source() {
            innermost = cause;
        }
        let kind = if err.is_connect() {
            "could not connect"
        } else {
            "the request failed"
        };
        Answer::NoAnswer(format!("{kind}: {innermost}"))
    }
}

/// A name that resolves to an address deliveries may not reach.
#[derive(Debug, thiserror::Error)]
#[error("{name} resolves to {ip}, a private, loopback or link-local address")]
pub struct TargetRefused {
    name: String,
    ip: IpAddr,
}

/// Resolves names and refuses any that has a non-public address among its addresses (a
/// name mixing public and private ones is refused whole, so no retry lands on the private
/// one).
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(bad) = addrs.iter().find(|a| !webhook_targets::is_public(a.ip())) {
                return Err(Box::new(TargetRefused {
                    name: host,
                    ip: bad.ip(),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
