//! The apalis-redis queue both processes use. The api pushes with this configuration and
//! the worker consumes with it; a difference between the two would silently strand jobs.

use crate::config::Settings;

/// apalis-redis settings for the registrations queue: the queue name from the configured
/// prefix, and the queue's own per-registration idempotency entries kept as long as the
/// api keeps `Idempotency-Key`s.
pub fn config(settings: &Settings) -> apalis_redis::Config {
    apalis_redis::Config::default()
        .queue(settings.keys().queue())
        .idempotency_ttl(Some(settings.idempotency_ttl()))
}
