//! Domain types that can only hold valid values ("parse, don't validate"). Each `parse`
//! applies one rule of docs/contract.md §2 and says precisely what is wrong; serde goes through
//! the same parsers, so a job payload read back from Redis is checked again.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::errors::{FieldCode, Invalid};

/// Normalises user text before any rule applies: trimmed and in NFC, so that "José" typed
/// with a combining accent counts the same characters as the precomposed form.
fn normalise(raw: &str) -> String {
    raw.trim().nfc().collect()
}

fn check_length(value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let len = value.chars().count();
    if len == 0 {
        Err(Invalid::new(FieldCode::Required, "is required"))
    } else if len < min {
        Err(Invalid::new(
            FieldCode::TooShort,
            format!("must be at least {min} characters"),
        ))
    } else if len > max {
        Err(Invalid::new(
            FieldCode::TooLong,
            format!("must be at most {max} characters"),
        ))
    } else {
        Ok(())
    }
}

/// Bidirectional overrides and isolates let text display differently from what it is
/// ("Trojan Source"); no team or person needs them in a name.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value).map_err(|e| e.message)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

/// A team's name: 3–80 characters once trimmed, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamName(String);
string_newtype!(TeamName);

impl TeamName {
    pub const MIN: usize = 3;
    pub const MAX: usize = 80;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = normalise(raw);
        check_length(&value, Self::MIN, Self::MAX)?;
        if value.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(Invalid::new(
                FieldCode::InvalidCharacters,
                "must not contain control characters",
            ));
        }
        Ok(Self(value))
    }
}

/// What makes two registrations the same team (docs/contract.md §2): the team name folded
/// as the unique index on `teams` folds it (each run of white space one space, lower case)
/// and the captain's phone. The claim in Postgres and the duplicate index in Redis are both
/// keyed by it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TeamKey(String);

impl TeamKey {
    pub fn new(team_name: &TeamName, captain_phone: &Phone) -> Self {
        let mut key = String::with_capacity(team_name.as_str().len() + 11);
        let mut in_space = false;
        for c in team_name.as_str().chars() {
            // Postgres' `\s` (the C.UTF-8 locale's spaces): Unicode's, less the no-break ones.
            if c.is_whitespace() && !matches!(c, '\u{A0}' | '\u{2007}' | '\u{202F}') {
                if !in_space {
                    key.push(' ');
                }
                in_space = true;
            } else {
                in_space = false;
                key.extend(c.to_lowercase());
            }
        }
        key.push('\n');
        key.push_str(captain_phone.as_str());
        Self(key)
    }

    /// A key as read back from `team_claims`.
    pub fn from_claim(stored: String) -> Self {
        Self(stored)
    }

    /// The key as stored in `team_claims`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key's SHA-256 in hex: what the Redis index holds, so Redis keeps no phone number.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

impl fmt::Debug for TeamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key holds a phone number: only its digest's first characters are shown.
        write!(f, "TeamKey({}…)", &self.digest()[..12])
    }
}

impl Registration {
    /// The team this registration is for.
    pub fn team_key(&self) -> TeamKey {
        TeamKey::new(&self.team_name, &self.captain.phone)
    }
}

/// A person's name: 3–50 characters of letters (any script), spaces, hyphens and apostrophes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PersonName(String);
string_newtype!(PersonName);

impl PersonName {
    pub const MIN: usize = 3;
    pub const MAX: usize = 50;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = normalise(raw);
        check_length(&value, Self::MIN, Self::MAX)?;
        let mut previous: Option<char> = None;
        for c in value.chars() {
            let allowed = c.is_alphabetic()
                || matches!(c, ' ' | '-' | '\'' | '\u{2019}')
                // A combining mark is part of the letter before it (scripts such as
                // Devanagari need them even after NFC), never a character on its own.
                || (unicode_normalization::char::is_combining_mark(c)
                    && previous.is_some_and(|p| p.is_alphabetic()
                        || unicode_normalization::char::is_combining_mark(p)));
            if !allowed {
                return Err(Invalid::new(
                    FieldCode::InvalidCharacters,
                    "may contain only letters, spaces, hyphens and apostrophes",
                ));
            }
            previous = Some(c);
        }
        if !value.chars().any(char::is_alphabetic) {
            return Err(Invalid::new(
                FieldCode::InvalidCharacters,
                "must contain letters",
            ));
        }
        Ok(Self(value))
    }

    /// The form used to decide whether two players are the same person.
    pub fn comparison_key(&self) -> String {
        self.0
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }
}

/// A phone number: exactly 10 digits.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);
string_newtype!(Phone);

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", crate::mask::phone(&self.0))
    }
}

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(Invalid::new(FieldCode::Required, "is required"));
        }
        if value.len() != 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                FieldCode::InvalidPhone,
                "must be exactly 10 digits",
            ));
        }
        Ok(Self(value.to_owned()))
    }
}

/// An email address: valid per RFC 5322 with a dotted domain name, at most 254 characters.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);
string_newtype!(Email);

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", crate::mask::email(&self.0))
    }
}

impl Email {
    pub const MAX: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let value = raw.trim();
        if value.is_empty() {
            return Err(Invalid::new(FieldCode::Required, "is required"));
        }
        if value.chars().count() > Self::MAX {
            return Err(Invalid::new(
                FieldCode::TooLong,
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        let invalid = || Invalid::new(FieldCode::InvalidEmail, "must be a valid email address");
        let parsed: email_address::EmailAddress = value.parse().map_err(|_| invalid())?;
        // Addresses such as `user@localhost` or `user@[10.0.0.1]` are valid RFC 5322 but
        // never reach a team captain; a mail server on the internet needs a dotted name.
        let domain = parsed.domain();
        if domain.starts_with('[')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || value.chars().any(char::is_whitespace)
        {
            return Err(invalid());
        }
        Ok(Self(value.to_owned()))
    }
}

/// What a player does in the team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Batsman,
    Bowler,
    AllRounder,
    WicketKeeper,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::Batsman,
        Role::Bowler,
        Role::AllRounder,
        Role::WicketKeeper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Batsman => "batsman",
            Role::Bowler => "bowler",
            Role::AllRounder => "all-rounder",
            Role::WicketKeeper => "wicket-keeper",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    FieldCode::InvalidRole,
                    "must be one of batsman, bowler, all-rounder, wicket-keeper",
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Player {
    pub name: PersonName,
    pub role: Role,
}

/// A captain or vice-captain: the people the team can be reached through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: PersonName,
    pub phone: Phone,
    pub email: Email,
}

/// A registration that passed every rule of docs/contract.md §2 (files aside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    pub team_name: TeamName,
    pub captain: Contact,
    pub vice_captain: Contact,
    pub players: Vec<Player>,
}

impl Registration {
    pub const MIN_PLAYERS: usize = 11;
    pub const MAX_PLAYERS: usize = 15;
}

/// The id of one accepted submission; the job, its status and its Postgres rows share it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RegistrationId(Uuid);

impl RegistrationId {
    pub fn new() -> Self {
        Self(Uuid::new_v4())
    }

    /// Accepts only the canonical hyphenated form, so one registration has one URL.
    pub fn parse(raw: &str) -> Option<Self> {
        if raw.len() != 36 {
            return None;
        }
        Uuid::try_parse(raw).ok().map(Self)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// An id read back from our own storage.
    pub fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }
}

impl Default for RegistrationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RegistrationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A team's public ID, `{prefix}-{n}` with `n` zero-padded (`ICCT-0007`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TeamId(String);

impl TeamId {
    /// The `n`th ID of a prefix; numbers wider than `width` keep all their digits.
    pub fn format(prefix: &str, width: usize, n: u64) -> Self {
        Self(format!("{prefix}-{n:0width$}"))
    }

    /// Wraps an ID read back from storage, where it was written by [`TeamId::format`].
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The client's `Idempotency-Key`: 1–255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);
string_newtype!(IdempotencyKey);

impl IdempotencyKey {
    pub const MAX: usize = 255;

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > Self::MAX || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                FieldCode::InvalidCharacters,
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// The documents a registration carries, by form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentKind {
    PaymentReceipt,
    PastorLetter,
}

impl DocumentKind {
    pub const ALL: [DocumentKind; 2] = [DocumentKind::PaymentReceipt, DocumentKind::PastorLetter];

    pub fn field(self) -> &'static str {
        match self {
            DocumentKind::PaymentReceipt => "payment_receipt",
            DocumentKind::PastorLetter => "pastor_letter",
        }
    }

    pub fn from_field(field: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.field() == field)
    }

    pub fn required(self) -> bool {
        matches!(self, DocumentKind::PaymentReceipt)
    }
}

/// A document's type, as judged from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DocumentType {
    Png,
    Jpeg,
    Pdf,
}

impl DocumentType {
    /// Maximum size of one document: 5 MiB.
    pub const MAX_BYTES: u64 = 5 * 1024 * 1024;

    pub fn from_mime(mime: &str) -> Option<Self> {
        match mime {
            "image/png" => Some(Self::Png),
            "image/jpeg" => Some(Self::Jpeg),
            "application/pdf" => Some(Self::Pdf),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Pdf => "pdf",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_ids_are_zero_padded_to_the_width() {
        assert_eq!(TeamId::format("ICCT", 4, 7).as_str(), "ICCT-0007");
        assert_eq!(TeamId::format("ICCT", 4, 12345).as_str(), "ICCT-12345");
    }

    #[test]
    fn debug_output_masks_phones_and_emails() {
        let contact = Contact {
            name: PersonName::parse("Arjun Mehta").expect("valid"),
            phone: Phone::parse("9876543210").expect("valid"),
            email: Email::parse("arjun@example.org").expect("valid"),
        };
        let debug = format!("{contact:?}");
        assert!(!debug.contains("9876543210"), "{debug}");
        assert!(!debug.contains("arjun@example.org"), "{debug}");
        assert!(
            debug.contains("98******10") && debug.contains("a***@example.org"),
            "{debug}"
        );
    }
}
