//! rustls' crypto provider for every HTTPS client in Intake.

/// Installs ring as rustls' process-wide crypto provider. reqwest (ours and object_store's)
/// is built with `rustls-no-provider`, because its default provider, aws-lc, is the slowest
/// crate to build here; building a client with no provider installed panics, even for a
/// plain `http://` one. Call before building any client; a provider already installed is
/// kept, so calling again is harmless.
pub fn install_ring_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
