//! Which addresses a webhook may be delivered to (docs/contract.md §16): not loopback,
//! private, link-local, shared (CGNAT), documentation, multicast or reserved ones — the
//! cloud metadata services live there (169.254.169.254, fd00:ec2::254, 100.100.100.200) —
//! unless `INTAKE_WEBHOOK_ALLOW_PRIVATE=true`. IPv6 addresses that carry an IPv4 address
//! (mapped, NAT64, 6to4) are judged by the address they carry.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address `url` names as its host when that address is not public (a host given by
/// name is judged when it is resolved).
pub fn private_address_in(url: &url::Url) -> Option<IpAddr> {
    let ip = match url.host()? {
        url::Host::Ipv4(v4) => IpAddr::V4(v4),
        url::Host::Ipv6(v6) => IpAddr::V6(v6),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then_some(ip)
}

/// Whether a delivery may connect to `ip` when private targets are not allowed.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network", 0.0.0.0
        || ip.is_loopback()                   // 127/8
        || ip.is_private()                    // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local()                 // 169.254/16, the metadata services
        || (a == 100 && (64..128).contains(&b)) // 100.64/10, shared (CGNAT)
        || (a == 192 && b == 0 && c == 0)     // 192.0.0/24, protocol assignments
        || ip.is_documentation()              // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15, benchmarking
        || (a == 192 && b == 88 && c == 99) // 192.88.99/24, 6to4 relays (deprecated)
        || ip.is_multicast()                  // 224/4
        || a >= 240) // 240/4 reserved, and the broadcast address
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00  // fc00::/7, unique local (fd00:ec2::254)
        || (first & 0xffc0) == 0xfe80  // fe80::/10, link-local
        || (first & 0xffc0) == 0xfec0  // fec0::/10, site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || (first == 0x2001 && ip.segments()[1] == 0) // 2001::/32, Teredo tunnels
        || (first == 0x0100 && ip.segments()[1..4] == [0, 0, 0]) // 100::/64, discard
        || first == 0) // ::/16: IPv4-compatible and other reserved forms
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`), NAT64
/// (`64:ff9b::a.b.c.d`, and `64:ff9b:1::/48` for local use), or 6to4 (`2002:aabb:ccdd::`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let from = |hi: u16, lo: u16| {
        let [a, b] = hi.to_be_bytes();
        let [c, d] = lo.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(from(s[6], s[7]));
    }
    // 64:ff9b:1::/48, NAT64 for local use: the IPv4 address in the last 32 bits.
    if s[..3] == [0x64, 0xff9b, 1] {
        return Some(from(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(from(s[1], s[2]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(text.parse().expect("an address"))
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "10.0.0.1",
            "172.16.5.4",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "100.64.0.1",
            "192.0.0.192",
            "192.0.2.10",
            "198.18.0.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
            "64:ff9b:1::a9fe:a9fe",
            "192.88.99.1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for allowed in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.1.1",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(public(allowed), "{allowed} must be allowed");
        }
    }
}
