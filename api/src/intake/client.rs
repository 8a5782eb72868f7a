//! Who is asking, for the rate limit: the peer address, or the address a trusted reverse
//! proxy put in its header (the last entry, the one that proxy itself appended).

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

pub fn identity(peer: SocketAddr, headers: &HeaderMap, trusted_header: Option<&str>) -> String {
    trusted_header
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').map(str::trim).find(|s| !s.is_empty()))
        .and_then(|v| v.parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "10.0.0.9:5555".parse().expect("literal address")
    }

    #[test]
    fn peer_address_without_a_trusted_header() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4".parse().expect("literal"));
        assert_eq!(identity(peer(), &h, None), "10.0.0.9");
    }

    #[test]
    fn last_entry_of_the_trusted_header() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4".parse().expect("literal"),
        );
        assert_eq!(identity(peer(), &h, Some("x-forwarded-for")), "1.2.3.4");
    }

    #[test]
    fn garbage_in_the_header_falls_back_to_the_peer() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "not-an-ip".parse().expect("literal"));
        assert_eq!(identity(peer(), &h, Some("x-forwarded-for")), "10.0.0.9");
    }
}
