//! Who is asking, for throttling: the TCP peer, or behind trusted proxies the
//! right-most address in `client_ip_header` that is not one of them.
//!
//! Proxies append the address they saw to `X-Forwarded-For`, so only the
//! right end of the list is written by someone we trust; everything to the
//! left of the first untrusted hop is whatever the client sent. The header is
//! believed only when the TCP peer itself is a trusted proxy. IPv6 clients
//! are keyed by their /64, which one host usually holds in full.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::http::HeaderMap;

/// An address block, `10.0.0.0/8`, `::1/128`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    pub fn parse(text: &str) -> Option<Self> {
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The throttling key of the client behind one request.
pub fn client_key(
    header: Option<&str>,
    trusted: &[IpBlock],
    headers: &HeaderMap,
    peer: SocketAddr,
) -> String {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    let mut client = canonical(peer.ip());
    if let Some(name) = header
        && is_trusted(client)
    {
        // Several header lines count as one comma-separated list, in order.
        let hops: Vec<IpAddr> = headers
            .get_all(name)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(|hop| hop.trim().parse::<IpAddr>().ok())
            .collect();
        for hop in hops.into_iter().rev() {
            client = canonical(hop);
            if !is_trusted(client) {
                break;
            }
        }
    }
    key_of(client)
}

/// IPv4-mapped IPv6 addresses are the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn key_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(list: &[&str]) -> Vec<IpBlock> {
        list.iter().map(|b| IpBlock::parse(b).unwrap()).collect()
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append("x-forwarded-for", value.parse().unwrap());
        }
        map
    }

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 40000)
    }

    #[test]
    fn blocks_parse_and_match() {
        let block = IpBlock::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.9".parse().unwrap()));
        assert!(
            IpBlock::parse("::1")
                .unwrap()
                .contains("::1".parse().unwrap())
        );
        assert!(
            IpBlock::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        for bad in ["", "10.0.0.0/33", "::/129", "nonsense", "10.0.0.0/x"] {
            assert_eq!(IpBlock::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = blocks(&["127.0.0.1", "10.0.0.0/8"]);
        let key = |values: &[&str], from: &str| {
            client_key(
                Some("x-forwarded-for"),
                &trusted,
                &headers(values),
                peer(from),
            )
        };
        // The client spoofs a left-hand value; the proxy appended the real one.
        assert_eq!(key(&["6.6.6.6, 203.0.113.7"], "127.0.0.1"), "203.0.113.7");
        // Two proxies in a chain, both trusted.
        assert_eq!(
            key(&["6.6.6.6", "203.0.113.7, 10.0.0.5"], "127.0.0.1"),
            "203.0.113.7"
        );
        // The peer is not a proxy: the header is the client's own words.
        assert_eq!(key(&["6.6.6.6"], "198.51.100.2"), "198.51.100.2");
        // Garbage in the header is skipped; nothing usable leaves the peer.
        assert_eq!(key(&["junk"], "127.0.0.1"), "127.0.0.1");
        assert_eq!(
            client_key(None, &trusted, &headers(&["6.6.6.6"]), peer("127.0.0.1")),
            "127.0.0.1"
        );
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64() {
        let a = client_key(None, &[], &HeaderMap::new(), peer("2001:db8:1:2::1"));
        let b = client_key(None, &[], &HeaderMap::new(), peer("2001:db8:1:2:ffff::9"));
        let c = client_key(None, &[], &HeaderMap::new(), peer("2001:db8:1:3::1"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, "2001:db8:1:2::/64");
    }
}
