//! Who is asking, for the rate limit: the peer address, or the address a trusted reverse
//! proxy put in its header (the last entry of the last line, the one that proxy itself
//! appended), with IPv6 clients counted per network rather than per address.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

/// The rate-limit key of the client behind this request. Everything before the trusted
/// proxy's own entry came from the client and may be forged, so only that last entry is
/// read; when it is missing or is not an IP address, the peer address is used instead, never
/// an earlier entry.
pub fn identity(
    peer: SocketAddr,
    headers: &HeaderMap,
    trusted_header: Option<&str>,
    ipv6_prefix: u8,
) -> String {
    let ip = trusted_header
        .and_then(|name| last_entry(headers, name))
        .and_then(|v| v.parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip());
    key(ip, ipv6_prefix)
}

/// The last non-empty comma-separated entry across every line of the header. A last line
/// that is not readable text yields `None` rather than an earlier line's entry.
fn last_entry<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for line in headers.get_all(name).iter().rev() {
        let line = line.to_str().ok()?;
        if let Some(entry) = line.rsplit(',').map(str::trim).find(|s| !s.is_empty()) {
            return Some(entry);
        }
    }
    None
}

/// IPv4 per address (an IPv4-mapped IPv6 address counts as its IPv4 address); IPv6 per
/// network of `ipv6_prefix` bits, written `network/prefix`.
fn key(ip: IpAddr, ipv6_prefix: u8) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = ipv6_prefix.clamp(1, 128);
                let mask = u128::MAX << (128 - u32::from(prefix));
                format!("{}/{prefix}", Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const XFF: &str = "x-forwarded-for";

    fn peer() -> SocketAddr {
        "10.0.0.9:5555".parse().expect("literal address")
    }

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append(XFF, line.parse().expect("literal"));
        }
        h
    }

    fn via_proxy(lines: &[&str]) -> String {
        identity(peer(), &headers(lines), Some(XFF), 64)
    }

    fn v6(address: &str, prefix: u8) -> String {
        identity(peer(), &headers(&[address]), Some(XFF), prefix)
    }

    #[test]
    fn peer_address_without_a_trusted_header() {
        assert_eq!(
            identity(peer(), &headers(&["1.2.3.4"]), None, 64),
            "10.0.0.9"
        );
    }

    #[test]
    fn peer_address_when_the_trusted_header_is_missing() {
        assert_eq!(
            identity(peer(), &HeaderMap::new(), Some(XFF), 64),
            "10.0.0.9"
        );
    }

    #[test]
    fn last_entry_of_the_trusted_header() {
        assert_eq!(via_proxy(&["6.6.6.6, 1.2.3.4"]), "1.2.3.4");
    }

    #[test]
    fn a_forged_first_line_gives_way_to_the_last_lines_last_entry() {
        assert_eq!(via_proxy(&["6.6.6.6", "1.2.3.4"]), "1.2.3.4");
        assert_eq!(
            via_proxy(&["6.6.6.6, 7.7.7.7", "8.8.8.8,1.2.3.4"]),
            "1.2.3.4"
        );
    }

    #[test]
    fn empty_lines_and_entries_are_skipped() {
        assert_eq!(via_proxy(&["6.6.6.6", "1.2.3.4", ""]), "1.2.3.4");
        assert_eq!(via_proxy(&["6.6.6.6", "1.2.3.4, ,", " , "]), "1.2.3.4");
        assert_eq!(via_proxy(&["", " "]), "10.0.0.9");
    }

    #[test]
    fn garbage_in_the_header_falls_back_to_the_peer() {
        assert_eq!(via_proxy(&["not-an-ip"]), "10.0.0.9");
    }

    #[test]
    fn an_unparsable_last_entry_falls_back_to_the_peer_not_an_earlier_entry() {
        assert_eq!(via_proxy(&["1.2.3.4", "6.6.6.6, not-an-ip"]), "10.0.0.9");
        assert_eq!(via_proxy(&["1.2.3.4", "1.2.3.5:8080"]), "10.0.0.9");
    }

    #[test]
    fn an_unreadable_last_line_falls_back_to_the_peer() {
        let mut h = headers(&["1.2.3.4"]);
        h.append(
            XFF,
            HeaderValue::from_bytes(b"\xff1.2.3.5").expect("obs-text is a valid value"),
        );
        assert_eq!(identity(peer(), &h, Some(XFF), 64), "10.0.0.9");
    }

    #[test]
    fn addresses_in_one_ipv6_64_share_a_key() {
        let a = v6("2001:db8:1:2::1", 64);
        let b = v6("2001:db8:1:2:ffff:ffff:ffff:ffff", 64);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b);
    }

    #[test]
    fn addresses_in_different_ipv6_64s_get_different_keys() {
        assert_ne!(v6("2001:db8:1:2::1", 64), v6("2001:db8:1:3::1", 64));
    }

    #[test]
    fn a_48_prefix_groups_the_whole_48() {
        assert_eq!(v6("2001:db8:1:2::1", 48), "2001:db8:1::/48");
        assert_eq!(v6("2001:db8:1:ffff::1", 48), "2001:db8:1::/48");
        assert_ne!(v6("2001:db8:2::1", 48), "2001:db8:1::/48");
    }

    #[test]
    fn a_128_prefix_limits_each_address() {
        assert_eq!(v6("2001:db8::1", 128), "2001:db8::1/128");
    }

    #[test]
    fn a_mapped_ipv4_address_counts_as_ipv4() {
        assert_eq!(v6("::ffff:1.2.3.4", 64), "1.2.3.4");
        assert_eq!(v6("::ffff:1.2.3.4", 64), via_proxy(&["1.2.3.4"]));
    }

    #[test]
    fn an_ipv6_peer_is_grouped_too() {
        let peer: SocketAddr = "[2001:db8:1:2::7]:443".parse().expect("literal address");
        assert_eq!(
            identity(peer, &HeaderMap::new(), None, 64),
            "2001:db8:1:2::/64"
        );
        let mapped: SocketAddr = "[::ffff:10.0.0.9]:443".parse().expect("literal address");
        assert_eq!(identity(mapped, &HeaderMap::new(), None, 64), "10.0.0.9");
    }
}
