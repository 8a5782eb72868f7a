//! HTTPS served by the admin itself, when `INTAKE_ADMIN_TLS_CERT` and `INTAKE_ADMIN_TLS_KEY`
//! name a PEM certificate chain and its key: both read once at start-up, and a server loop
//! (axum-server's, with rustls on ring, the provider every Intake process uses) that keeps
//! the plain loop's limits on request heads and its graceful shutdown. Without them the admin
//! speaks plain HTTP and belongs behind a TLS-terminating proxy on a private network.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use intake_shared::http::serve::{HEAD_TIMEOUT, MAX_HEAD_BYTES, MAX_HEADERS, ServeOptions};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("INTAKE_ADMIN_TLS_CERT: cannot read a PEM certificate from {}: {source}", path.display())]
    Certificate {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("INTAKE_ADMIN_TLS_KEY: cannot read a PEM private key from {}: {source}", path.display())]
    Key {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    /// rustls refused the pair: a key that does not match the certificate, or one of a kind
    /// it cannot use.
    #[error("INTAKE_ADMIN_TLS_CERT and INTAKE_ADMIN_TLS_KEY cannot be used together: {0}")]
    Unusable(#[source] rustls::Error),
}

/// The server side of TLS from a certificate chain file and its key file, HTTP/1.1 only (the
/// only protocol Intake's services speak). A wrong file fails start-up naming its variable.
pub fn server_config(cert: &Path, key: &Path) -> Result<RustlsConfig, TlsError> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .and_then(|chain| {
            if chain.is_empty() {
                Err(rustls::pki_types::pem::Error::NoItemsFound)
            } else {
                Ok(chain)
            }
        })
        .map_err(|source| TlsError::Certificate {
            path: cert.to_path_buf(),
            source,
        })?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|source| TlsError::Key {
        path: key.to_path_buf(),
        source,
    })?;
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(TlsError::Unusable)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(RustlsConfig::from_config(Arc::new(config)))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then lets the requests
/// in flight finish for at most `options.drain`, as the plain loop does. Request heads have
/// the same limits (size, number of headers, time to arrive; the handshake gets that time
/// too), and every request carries the peer's address as `ConnectInfo`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: RustlsConfig,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle = axum_server::Handle::<SocketAddr>::new();
    let mut server = axum_server::Server::from_listener(listener)
        .acceptor(RustlsAcceptor::new(tls).handshake_timeout(HEAD_TIMEOUT))
        .http1_only()
        .handle(handle.clone())
        .accept_error_handler(|peer, error| match peer {
            // A failed handshake (plain HTTP on this port, an untrusting client) is the
            // client's affair, as a connection error is in the plain loop.
            Some(peer) => tracing::debug!(%error, %peer, "TLS handshake failed"),
            None => tracing::warn!(%error, "accepting a connection failed"),
        });
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    let serving = server.serve(router.into_make_service_with_connect_info::<SocketAddr>());
    let mut serving = std::pin::pin!(serving);
    tokio::select! {
        ended = &mut serving => return ended,
        () = shutdown => {}
    }
    handle.graceful_shutdown(Some(options.drain));
    serving.await
}
