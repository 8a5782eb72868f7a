//! Bearer tokens and the roles they carry. `INTAKE_ADMIN_TOKENS` is a comma-separated list of
//! `name:role:token` entries (or the older `name:token`, which means `support`); the name is
//! what the audit log records as the actor. Tokens are compared in constant time (as SHA-256
//! digests, so their lengths do not show either), and with no token configured every call is
//! refused.
//!
//! A handler states the least role it needs by the extractor it takes ([`Viewer`],
//! [`Support`], [`Organiser`]). The extractor runs before the handler body, so a call refused
//! for its role has done nothing, not even written an audit row. It also keeps the limit on
//! failed token attempts ([`crate::auth_failures`]): a client past it is refused `429`
//! whatever token it presents.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth_failures::Verdict;
use crate::error::AdminError;
use crate::state::AdminState;

/// What a token may do. Each role may do everything the roles below it may, so the derived
/// order is the permission order: `Viewer < Support < Organiser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads: registrations (masked), queue stats, the audit log.
    Viewer,
    /// Puts registrations right: re-drive, resend email, reveal personal data.
    Support,
    /// Runs the event: team review and exports, when they come.
    Organiser,
}

impl Role {
    /// The role's name in `INTAKE_ADMIN_TOKENS`, exactly (lower case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "viewer" => Some(Self::Viewer),
            "support" => Some(Self::Support),
            "organiser" => Some(Self::Organiser),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Support => "support",
            Self::Organiser => "organiser",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
struct Entry {
    name: String,
    role: Role,
    digest: [u8; 32],
}

#[derive(Clone)]
pub struct Tokens {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{}:{}", e.name, e.role))
            .collect();
        f.debug_struct("Tokens").field("entries", &entries).finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "INTAKE_ADMIN_TOKENS must be comma-separated name:role:token entries (role viewer, support or organiser) or name:token pairs (role support), with a non-empty name and a token of at least 32 characters"
)]
pub struct BadTokens;

const MIN_TOKEN_LEN: usize = 32;

/// One entry of `INTAKE_ADMIN_TOKENS`. The middle word is a role only when it is exactly one
/// of the role names; anything else belongs to a legacy token, so a `name:token` pair whose
/// token happens to contain `:` keeps working.
fn parse_entry(entry: &str) -> Result<(String, Role, &str), BadTokens> {
    let mut parts = entry.splitn(3, ':');
    let name = parts.next().unwrap_or_default();
    let second = parts.next().ok_or(BadTokens)?;
    let (role, token) = match (Role::from_name(second), parts.next()) {
        (Some(role), Some(token)) => (role, token),
        _ => {
            let (_, token) = entry.split_once(':').ok_or(BadTokens)?;
            (Role::Support, token)
        }
    };
    if name.is_empty() || token.len() < MIN_TOKEN_LEN {
        return Err(BadTokens);
    }
    Ok((name.to_owned(), role, token))
}

impl Tokens {
    pub fn parse(value: Option<&SecretString>) -> Result<Self, BadTokens> {
        let mut entries = Vec::new();
        if let Some(value) = value {
            for entry in value
                .expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
            {
                let (name, role, token) = parse_entry(entry)?;
                entries.push(Entry {
                    name,
                    role,
                    digest: Sha256::digest(token.as_bytes()).into(),
                });
            }
        }
        Ok(Self { entries })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Who presented this token, if it is one of ours. Every configured token is compared,
    /// so the time taken does not depend on which one matched.
    pub fn identify(&self, presented: &str) -> Option<Actor> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for entry in &self.entries {
            if bool::from(entry.digest.ct_eq(&digest)) {
                found = Some(Actor {
                    name: entry.name.clone(),
                    role: entry.role,
                });
            }
        }
        found
    }
}

/// The authenticated caller: the name of the token used (the audit log's actor) and its role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    pub role: Role,
}

impl Actor {
    /// For a check that depends on the request, such as `reveal=true`; a route's own
    /// requirement is its extractor's.
    pub fn require(&self, needed: Role) -> Result<(), AdminError> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(AdminError::Forbidden(needed))
        }
    }
}

/// The bearer token's actor, if it holds at least `needed`: `401` without a known token,
/// then `403` for too small a role.
pub fn authorise(tokens: &Tokens, headers: &HeaderMap, needed: Role) -> Result<Actor, AdminError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(AdminError::Unauthorized)?;
    let actor = tokens.identify(presented).ok_or(AdminError::Unauthorized)?;
    actor.require(needed)?;
    Ok(actor)
}

/// The client a failed attempt is counted against: the peer's address. Both of our server
/// loops hand every request its `ConnectInfo`; a request without one (a router driven by hand)
/// counts against one shared unknown client, so the limit never silently turns off.
fn client_of(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| {
            peer.ip()
        })
}

/// [`authorise`] with the limit on failed attempts around it: a missing or wrong token is
/// counted against the client (`401`, or `429` once past the limit), and a client past the
/// limit is refused `429` even with a good token.
///
/// Redis unreachable: a failed attempt is still `401` (uncounted) and a good token is let
/// through. The limit slows guessing of 32-character tokens; it is not worth locking every
/// member of staff out while Redis is down, and failing open here adds no way in.
pub async fn authenticate(
    state: &AdminState,
    parts: &Parts,
    needed: Role,
) -> Result<Actor, AdminError> {
    let client = client_of(parts);
    let mut redis = state.redis();
    let outcome = authorise(&state.tokens, &parts.headers, needed);
    let verdict = match &outcome {
        Err(AdminError::Unauthorized) => state
            .auth_failures
            .count_failure(&mut redis, client)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "failed admin token attempt not counted: Redis unavailable");
            }),
        _ => state
            .auth_failures
            .check(&mut redis, client)
            .await
            .map_err(|error| {
                tracing::warn!(%error, "failed admin token attempts not checked: Redis unavailable");
            }),
    };
    match verdict {
        Ok(Verdict::Refused { retry_after }) => {
            Err(AdminError::TooManyFailedTokens { retry_after })
        }
        Ok(Verdict::Allowed) | Err(()) => outcome,
    }
}

/// Defines an extractor that lets a call through only with a token of at least `$role`.
/// `Actor` itself is deliberately not an extractor, so every route has to choose one of these.
macro_rules! role_extractor {
    ($(#[$doc:meta])* $extractor:ident, $role:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $extractor(pub Actor);

        impl $extractor {
            pub const ROLE: Role = $role;
        }

        impl FromRequestParts<AdminState> for $extractor {
            type Rejection = AdminError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AdminState,
            ) -> Result<Self, Self::Rejection> {
                authenticate(state, parts, Self::ROLE).await.map(Self)
            }
        }
    };
}

role_extractor!(
    /// A caller with any role: reads.
    Viewer,
    Role::Viewer
);
role_extractor!(
    /// A caller with the support role or above: actions on registrations.
    Support,
    Role::Support
);
role_extractor!(
    /// A caller with the organiser role: team review and exports (no route needs it yet).
    Organiser,
    Role::Organiser
);

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn parse(value: &str) -> Result<Tokens, BadTokens> {
        Tokens::parse(Some(&SecretString::from(value)))
    }

    fn actor(name: &str, role: Role) -> Option<Actor> {
        Some(Actor {
            name: name.to_owned(),
            role,
        })
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("header"),
        );
        headers
    }

    #[test]
    fn names_come_from_the_pairs() {
        let tokens =
            parse("alice:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, bob:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
                .expect("valid");
        assert_eq!(
            tokens.identify("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
            actor("bob", Role::Support)
        );
        assert_eq!(
            tokens.identify("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            actor("alice", Role::Support)
        );
        assert_eq!(tokens.identify("nope"), None);
        assert!(!format!("{tokens:?}").contains("aaaa"));
    }

    #[test]
    fn three_part_entries_give_the_role() {
        let tokens = parse(
            "carol:viewer:vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv,sam:support:ssssssssssssssssssssssssssssssss,dave:organiser:oooooooooooooooooooooooooooooooo",
        )
        .expect("valid");
        assert_eq!(
            tokens.identify("vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"),
            actor("carol", Role::Viewer)
        );
        assert_eq!(
            tokens.identify("ssssssssssssssssssssssssssssssss"),
            actor("sam", Role::Support)
        );
        assert_eq!(
            tokens.identify("oooooooooooooooooooooooooooooooo"),
            actor("dave", Role::Organiser)
        );
    }

    #[test]
    fn a_legacy_name_token_pair_is_support() {
        let tokens = parse("alice:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").expect("valid");
        assert_eq!(
            tokens.identify("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            actor("alice", Role::Support)
        );
    }

    #[test]
    fn a_token_may_contain_colons() {
        let tokens =
            parse("carol:viewer:abc:defghijklmnopqrstuvwxyz0123456,alice:xyz:0123456789abcdef0123456789ab").expect("valid");
        assert_eq!(
            tokens.identify("abc:defghijklmnopqrstuvwxyz0123456"),
            actor("carol", Role::Viewer)
        );
        assert_eq!(
            tokens.identify("xyz:0123456789abcdef0123456789ab"),
            actor("alice", Role::Support)
        );
    }

    #[test]
    fn an_unknown_role_word_is_part_of_a_legacy_token() {
        for entry in [
            "alice:admin:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "alice:Viewer:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ] {
            let tokens = parse(entry).expect("valid");
            let (_, token) = entry.split_once(':').expect("colon");
            assert_eq!(tokens.identify(token), actor("alice", Role::Support));
            assert_eq!(tokens.identify("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), None);
        }
    }

    #[test]
    fn short_or_nameless_tokens_are_refused() {
        assert!(parse("alice:short").is_err());
        assert!(
            parse(&format!("alice:{}", "t".repeat(31))).is_err(),
            "31 is too short"
        );
        assert!(
            parse(&format!("alice:{}", "t".repeat(32))).is_ok(),
            "32 is enough"
        );
        assert!(parse("alice:viewer:short-token").is_err());
        // Only the role word and no token: a legacy token "viewer", too short.
        assert!(parse("alice:viewer").is_err());
        assert!(parse("alice:viewer:").is_err());
        assert!(parse(":viewer:vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv").is_err());
        assert!(parse(":aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(parse("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(Tokens::parse(None).expect("none is valid").is_empty());
    }

    #[test]
    fn the_refusal_names_both_forms() {
        let message = BadTokens.to_string();
        assert!(message.contains("name:role:token"), "{message}");
        assert!(message.contains("name:token"), "{message}");
    }

    #[test]
    fn roles_are_ordered_by_what_they_allow() {
        assert!(Role::Viewer < Role::Support && Role::Support < Role::Organiser);
        let support = Actor {
            name: "sam".into(),
            role: Role::Support,
        };
        assert!(support.require(Role::Viewer).is_ok());
        assert!(support.require(Role::Support).is_ok());
        assert!(matches!(
            support.require(Role::Organiser),
            Err(AdminError::Forbidden(Role::Organiser))
        ));
    }

    #[test]
    fn only_an_organiser_token_passes_the_organiser_extractor() {
        let tokens = parse(
            "carol:viewer:vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv,alice:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa,dave:organiser:oooooooooooooooooooooooooooooooo",
        )
        .expect("valid");
        let check = |token: &str| authorise(&tokens, &bearer(token), Organiser::ROLE);
        assert_eq!(
            check("oooooooooooooooooooooooooooooooo").ok(),
            actor("dave", Role::Organiser)
        );
        assert!(matches!(
            check("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            Err(AdminError::Forbidden(_))
        ));
        assert!(matches!(
            check("vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"),
            Err(AdminError::Forbidden(_))
        ));
        assert!(matches!(
            check("unknown-unknown-unknown"),
            Err(AdminError::Unauthorized)
        ));
        assert!(matches!(
            authorise(&tokens, &HeaderMap::new(), Viewer::ROLE),
            Err(AdminError::Unauthorized)
        ));
        assert!(
            authorise(
                &tokens,
                &bearer("vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"),
                Viewer::ROLE
            )
            .is_ok()
        );
        assert!(
            authorise(
                &tokens,
                &bearer("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
                Support::ROLE
            )
            .is_ok()
        );
    }
}
