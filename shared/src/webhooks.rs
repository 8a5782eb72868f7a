//! Webhook signatures as the Standard Webhooks specification defines them (docs/contract.md
//! §16): a signing secret is `whsec_` and the base64 of its key; a delivery's
//! `webhook-signature` is `v1,` and the base64 HMAC-SHA256, under that key, of
//! `{webhook-id}.{webhook-timestamp}.{body}`. Receivers verify it with any implementation of
//! the specification (the tests use its Python reference, `standardwebhooks`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret's text starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Bytes of key in a secret this service makes (the specification asks for 24 to 64).
const KEY_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a webhook secret starts with whsec_ followed by base64")]
    Malformed,
}

/// An endpoint's signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

impl SigningSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; KEY_BYTES];
        // Two v4 UUIDs are 244 bits from the operating system's generator; more than the
        // 192 the specification asks for at least.
        for (chunk, uuid) in key
            .chunks_mut(16)
            .zip([uuid::Uuid::new_v4(), uuid::Uuid::new_v4()])
        {
            chunk.copy_from_slice(uuid.as_bytes());
        }
        Self(key)
    }

    /// Reads `whsec_…` (as shown once at creation, and as stored).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::Malformed)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::Malformed)?;
        if key.is_empty() {
            return Err(SecretError::Malformed);
        }
        Ok(Self(key))
    }

    /// The secret's text, `whsec_` and the base64 of its key.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// The `webhook-signature` of one delivery attempt.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            // HMAC takes a key of any length; this arm is never taken.
            Err(_) => return String::new(),
        };
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The job on the deliveries queue: which delivery to attempt, and the generation of the
/// delivery this job was queued for (docs/contract.md §16): a job whose generation is no
/// longer the delivery's has been replaced and does nothing. Everything else (the event,
/// the endpoint, the attempts so far) is read from Postgres when it runs, so a job run
/// twice or after a crash finds the delivery as it stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeliveryJob {
    pub delivery_id: uuid::Uuid,
    #[serde(default)]
    pub generation: u32,
}

impl DeliveryJob {
    /// Its idempotency key: one per delivery and generation, so pushing it again (a push
    /// retried after an error) leaves one job.
    pub fn idempotency_key(&self) -> String {
        format!("delivery:{}:{}", self.delivery_id, self.generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example (its reference libraries' test vector).
    #[test]
    fn signs_the_specifications_example() {
        let secret =
            SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn a_generated_secret_reads_back_and_differs_from_the_next() {
        let secret = SigningSecret::generate();
        let text = secret.expose();
        assert!(text.starts_with("whsec_"), "{text}");
        assert_eq!(SigningSecret::parse(&text), Ok(secret.clone()));
        assert_ne!(SigningSecret::generate(), secret);
        assert_eq!(format!("{secret:?}"), "SigningSecret(…)", "never printed");
    }

    #[test]
    fn malformed_secrets_are_refused() {
        for bad in [
            "",
            "whsec_",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_not base64!",
        ] {
            assert_eq!(
                SigningSecret::parse(bad),
                Err(SecretError::Malformed),
                "{bad}"
            );
        }
    }
}
