//! Bearer tokens. `INTAKE_ADMIN_TOKENS` is a comma-separated list of `name:token` pairs; the
//! name is what the audit log records as the actor. Tokens are compared in constant time
//! (as SHA-256 digests, so their lengths do not show either), and with no token configured
//! every call is refused.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AdminError;
use crate::state::AdminState;

#[derive(Clone)]
pub struct Tokens {
    entries: Vec<(String, [u8; 32])>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Tokens").field("names", &names).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "INTAKE_ADMIN_TOKENS must be comma-separated name:token pairs with tokens of at least 16 characters"
)]
pub struct BadTokens;

impl Tokens {
    pub fn parse(value: Option<&SecretString>) -> Result<Self, BadTokens> {
        let mut entries = Vec::new();
        if let Some(value) = value {
            for pair in value
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let (name, token) = pair.split_once(':').ok_or(BadTokens)?;
                if name.is_empty() || token.len() < 16 {
                    return Err(BadTokens);
                }
                entries.push((name.to_owned(), Sha256::digest(token.as_bytes()).into()));
            }
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The name of the token presented, if it is one of ours. Every configured token is
    /// compared, so the time taken does not depend on which one matched.
    pub fn identify(&self, presented: &str) -> Option<String> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (name, expected) in &self.entries {
            if bool::from(expected.ct_eq(&digest)) {
                found = Some(name.clone());
            }
        }
        found
    }
}

/// The authenticated caller: the name of the token used.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl FromRequestParts<AdminState> for Actor {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let presented = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or(AdminError::Unauthorized)?;
        state
            .tokens
            .identify(presented)
            .map(Actor)
            .ok_or(AdminError::Unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_pairs() {
        let tokens = Tokens::parse(Some(&SecretString::from(
            "alice:aaaaaaaaaaaaaaaaaaaa, bob:bbbbbbbbbbbbbbbbbbbb",
        )))
        .expect("valid");
        assert_eq!(
            tokens.identify("bbbbbbbbbbbbbbbbbbbb").as_deref(),
            Some("bob")
        );
        assert_eq!(
            tokens.identify("aaaaaaaaaaaaaaaaaaaa").as_deref(),
            Some("alice")
        );
        assert_eq!(tokens.identify("nope"), None);
        assert!(!format!("{tokens:?}").contains("aaaa"));
    }

    #[test]
    fn short_or_nameless_tokens_are_refused() {
        assert!(Tokens::parse(Some(&SecretString::from("alice:short"))).is_err());
        assert!(Tokens::parse(Some(&SecretString::from("aaaaaaaaaaaaaaaaaaaa"))).is_err());
        assert!(Tokens::parse(None).expect("none is valid").is_empty());
    }
}
