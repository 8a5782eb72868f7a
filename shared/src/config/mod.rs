//! Intake's settings, nested by concern (docs/contract.md §13). Sources, later ones winning:
//! built-in defaults, an optional TOML file named by `INTAKE_CONFIG`, then `INTAKE_*`
//! environment variables (and the conventional `CLOUDINARY_URL`). Every process of a
//! deployment may share one environment: each binary extracts only the sections it uses
//! ([`ApiSettings`], [`WorkerSettings`], [`AdminSettings`]) and validates only those, so the
//! api starts without any database, SMTP or Cloudinary setting. Names stay flat
//! (`INTAKE_DATABASE_LOCK_TIMEOUT_MS`), as operators already set them; in code a duration is
//! a `Duration`. Secrets are `SecretString`, so no log prints them.

mod binaries;
mod sections;

use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

pub use binaries::{AdminSettings, ApiSettings, WorkerSettings};
pub use sections::{
    AdminSection, ApiSection, CloudinarySettings, DatabaseSettings, LogFormat, MailSettings,
    QueueSettings, RedisSettings, ServeSettings, StagingSettings, TeamIdFormat, TelemetrySettings,
    WebhookSettings, WorkerSection,
};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("invalid setting {setting}: {reason}")]
    Invalid {
        setting: &'static str,
        reason: String,
    },
}

impl ConfigError {
    fn invalid(setting: &'static str, reason: &str) -> Self {
        Self::Invalid {
            setting,
            reason: reason.to_owned(),
        }
    }
}

/// One concern's settings: read from the flat names it declares (each field renamed to its
/// variable's name without `INTAKE_`), defaults for the rest, then checked.
pub trait Section: DeserializeOwned + Default {
    /// Refuses a value the section cannot work with, naming its variable.
    fn validate(&self) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Reads this section alone from the process environment (and the `INTAKE_CONFIG`
    /// file), for a command that needs nothing else (`intake-worker migrate`).
    fn load() -> Result<Self, ConfigError> {
        section(&figment())
    }
}

/// The layered sources, exposed so tests can add their own on top.
pub fn figment() -> Figment {
    let mut figment = Figment::new();
    if let Ok(path) = std::env::var("INTAKE_CONFIG") {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment
        .merge(Env::prefixed("INTAKE_").ignore(&["config"]))
        .merge(Env::raw().only(&["CLOUDINARY_URL"]))
}

/// Extracts one section and validates it. Every section reads from the same flat namespace
/// and ignores the names it does not declare, so a value that only another binary reads is
/// neither parsed nor checked here.
pub fn section<T: Section>(figment: &Figment) -> Result<T, ConfigError> {
    let section: T = figment.extract().map_err(Box::new)?;
    section.validate()?;
    Ok(section)
}

/// Reads a whole number of seconds (`INTAKE_…_SECS`) as a `Duration`.
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_secs)
}

/// Reads a whole number of milliseconds (`INTAKE_…_MS`) as a `Duration`.
fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    u64::deserialize(d).map(Duration::from_millis)
}

/// Accepts `"a, b"` (as environment variables give it) or a list (as TOML does).
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Either::deserialize(d)? {
        Either::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Either::Many(v) => v,
    })
}

/// Refuses a zero duration: for every timeout and interval here, 0 would mean "never" or
/// "busy loop", not "immediately".
fn at_least_one(setting: &'static str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        return Err(ConfigError::invalid(setting, "must be at least 1"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
