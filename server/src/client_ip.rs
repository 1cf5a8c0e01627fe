//! Which address a WebSocket connection counts against for the per-address
//! limit (`--connections-per-ip`): the peer's, or, for a peer that is a
//! trusted proxy (`--trusted-proxies`), the right-most `X-Forwarded-For`
//! address that is not a trusted proxy itself.
//!
//! The header is the client's to write, except for what each proxy appends
//! on the right: reading from the right and stopping at the first address
//! no trusted proxy could have written gives the real client, whatever the
//! client put on the left. A malformed entry ends the walk at the last
//! address known good, so garbage can never move a client to another
//! address, and the walk costs at most one pass over headers hyper has
//! already bounded in size.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// Whether the hint to configure trusted proxies was logged (once a process).
static HINTED: AtomicBool = AtomicBool::new(false);

/// The address a connection from `peer` counts against, and whether the
/// limit applies to it.
///
/// Without trusted proxies, loopback addresses are not limited: a proxy on
/// the same host would otherwise put every client under one limit. With
/// them, every address is limited, loopback included (see docs/security.md).
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> (IpAddr, bool) {
    let peer = peer.to_canonical();
    if trusted.is_empty() {
        if peer.is_loopback()
            && headers.contains_key("x-forwarded-for")
            && !HINTED.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                "X-Forwarded-For from a local proxy is ignored and its clients are not limited \
                 per address: list the proxy in --trusted-proxies"
            );
        }
        return (peer, !peer.is_loopback());
    }
    (forwarded_for(peer, headers, trusted), true)
}

/// The right-most forwarded address that is not a trusted proxy, when
/// `peer` is one; otherwise `peer`.
fn forwarded_for(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    // Several header lines read as one list, in order.
    for value in headers.get_all("x-forwarded-for").iter().rev() {
        let Ok(value) = value.to_str() else { return client };
        for entry in value.rsplit(',') {
            let Some(ip) = parse_entry(entry.trim()) else { return client };
            if !is_trusted(&ip) {
                return ip;
            }
            client = ip;
        }
    }
    client
}

/// `1.2.3.4`, `2001:db8::1`, and the forms with a port (`1.2.3.4:5`,
/// `[2001:db8::1]:5`) or brackets (`[2001:db8::1]`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<SocketAddr>().map(|s| s.ip()))
        .or_else(|_| entry.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>())
        .ok()?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(peer: &str, forwarded: &[&str], trusted: &[&str]) -> (IpAddr, bool) {
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        let trusted: Vec<IpNet> = trusted
            .iter()
            .map(|t| t.parse().unwrap_or_else(|_| IpNet::from(t.parse::<IpAddr>().unwrap())))
            .collect();
        client_addr(peer.parse().unwrap(), &headers, &trusted)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        assert_eq!(resolve("203.0.113.7", &["198.51.100.1"], &[]), (ip("203.0.113.7"), true));
        assert_eq!(resolve("127.0.0.1", &["198.51.100.1"], &[]), (ip("127.0.0.1"), false));
        assert_eq!(resolve("::1", &[], &[]), (ip("::1"), false));
    }

    #[test]
    fn only_a_trusted_peer_is_believed() {
        let trusted = ["127.0.0.1", "10.0.0.0/8"];
        assert_eq!(resolve("127.0.0.1", &["198.51.100.1"], &trusted), (ip("198.51.100.1"), true));
        assert_eq!(resolve("203.0.113.7", &["198.51.100.1"], &trusted), (ip("203.0.113.7"), true));
        // Through two proxies; what the client wrote on the left is ignored.
        let chain = ["6.6.6.6, 198.51.100.1, 10.1.2.3"];
        assert_eq!(resolve("127.0.0.1", &chain, &trusted), (ip("198.51.100.1"), true));
        let lines = ["6.6.6.6", "198.51.100.1", "10.1.2.3"];
        assert_eq!(resolve("127.0.0.1", &lines, &trusted), (ip("198.51.100.1"), true));
    }

    #[test]
    fn a_loopback_peer_is_limited_once_proxies_are_configured() {
        let trusted = ["10.0.0.1"];
        assert_eq!(resolve("127.0.0.1", &["198.51.100.1"], &trusted), (ip("127.0.0.1"), true));
        // A trusted proxy without the header counts as itself.
        assert_eq!(resolve("10.0.0.1", &[], &trusted), (ip("10.0.0.1"), true));
    }

    #[test]
    fn hostile_headers_cannot_move_a_client() {
        let trusted = ["127.0.0.1"];
        let peer = "127.0.0.1";
        // Spoofing on the left: the proxy's appended address wins.
        let spoof = ["127.0.0.1, 1.1.1.1, 198.51.100.1"];
        assert_eq!(resolve(peer, &spoof, &trusted).0, ip("198.51.100.1"));
        // Garbage right of every real address stops at the proxy itself.
        for garbage in ["", ",", "not-an-ip", "198.51.100.1, unknown", "1.2.3.4 5.6.7.8"] {
            assert_eq!(resolve(peer, &[garbage], &trusted).0, ip("127.0.0.1"), "{garbage:?}");
        }
        // Forms with ports and brackets, and an IPv4-mapped IPv6 address.
        assert_eq!(resolve(peer, &["198.51.100.1:4444"], &trusted).0, ip("198.51.100.1"));
        assert_eq!(resolve(peer, &["[2001:db8::1]:4444"], &trusted).0, ip("2001:db8::1"));
        assert_eq!(resolve(peer, &["[2001:db8::1]"], &trusted).0, ip("2001:db8::1"));
        assert_eq!(resolve(peer, &["::ffff:198.51.100.1"], &trusted).0, ip("198.51.100.1"));
        // A huge header of trusted addresses ends at the left-most one.
        let huge = vec!["127.0.0.1"; 20_000].join(",");
        assert_eq!(resolve(peer, &[&huge], &trusted).0, ip("127.0.0.1"));
        let huge = format!("{}198.51.100.1", "9".repeat(100_000));
        assert_eq!(resolve(peer, &[&huge], &trusted).0, ip("127.0.0.1"));
    }

    #[test]
    fn non_utf8_header_values_stop_the_walk() {
        let mut headers = HeaderMap::new();
        headers
            .append("x-forwarded-for", axum::http::HeaderValue::from_bytes(b"\xff\xfe").unwrap());
        let trusted = [IpNet::from(ip("127.0.0.1"))];
        assert_eq!(client_addr(ip("127.0.0.1"), &headers, &trusted), (ip("127.0.0.1"), true));
    }
}
