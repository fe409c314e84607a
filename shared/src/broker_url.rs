//! The MQTT broker URLs the agent (`cloud.mqtt_url`) and the cloud
//! (`mqtt_url`) accept, parsed by the same rules:
//!
//! - `mqtt://` (TCP) or `mqtts://` (TLS), then a host, then an optional
//!   `:port` (1 to 65535; 1883 for `mqtt`, 8883 for `mqtts` by default),
//!   then optional trailing `/`s;
//! - the host is a name or IPv4 address of ASCII letters, digits, `.`, `-`
//!   and `_`, or an IPv6 address in brackets (`[::1]`);
//! - nothing else: credentials have their own settings, and MQTT has no
//!   path or query.

use std::fmt;
use std::net::Ipv6Addr;

/// A broker to connect to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUrl {
    /// A name, an IPv4 address, or an IPv6 address without its brackets.
    pub host: String,
    pub port: u16,
    /// `mqtts://`: TLS.
    pub tls: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("the URL must start with mqtt:// or mqtts://")]
    Scheme,
    #[error("the host is missing or not a name or address (an IPv6 address goes in brackets)")]
    Host,
    #[error("the port must be a number from 1 to 65535")]
    Port,
}

impl BrokerUrl {
    pub const MQTT_PORT: u16 = 1883;
    pub const MQTTS_PORT: u16 = 8883;

    pub fn parse(url: &str) -> Result<Self, BrokerUrlError> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(BrokerUrlError::Scheme);
        };
        let authority = rest.trim_end_matches('/');
        let (host, port) = split_port(authority)?;
        let host = match host.strip_prefix('[') {
            Some(inner) => {
                let address = inner.strip_suffix(']').ok_or(BrokerUrlError::Host)?;
                address
                    .parse::<Ipv6Addr>()
                    .map_err(|_| BrokerUrlError::Host)?;
                address
            }
            None if is_host_name(host) => host,
            None => return Err(BrokerUrlError::Host),
        };
        let port = match port {
            None if tls => Self::MQTTS_PORT,
            None => Self::MQTT_PORT,
            Some(port) => match port.parse::<u16>() {
                Ok(number) if number != 0 && port.chars().all(|c| c.is_ascii_digit()) => number,
                _ => return Err(BrokerUrlError::Port),
            },
        };
        Ok(Self {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// `host[:port]`, where a bracketed host may hold colons of its own.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), BrokerUrlError> {
    if authority.starts_with('[') {
        return Ok(match authority.rfind(']') {
            Some(end) => match authority[end + 1..].strip_prefix(':') {
                Some(port) => (&authority[..=end], Some(port)),
                None if end + 1 == authority.len() => (authority, None),
                None => return Err(BrokerUrlError::Host),
            },
            None => (authority, None),
        });
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn url(host: &str, port: u16, tls: bool) -> Result<BrokerUrl, BrokerUrlError> {
        Ok(BrokerUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }

    #[test]
    fn names_host_port_and_tls() {
        for (text, expected) in [
            ("mqtt://127.0.0.1:1883", url("127.0.0.1", 1883, false)),
            ("mqtts://broker.example", url("broker.example", 8883, true)),
            ("mqtt://broker.example", url("broker.example", 1883, false)),
            ("mqtt://[::1]:1884", url("::1", 1884, false)),
            // Accepted by the cloud before the rules were shared.
            ("mqtt://[::1]:1884/", url("::1", 1884, false)),
            ("mqtt://my_broker:1883", url("my_broker", 1883, false)),
            // Accepted by the agent before the rules were shared.
            ("mqtts://[::1]", url("::1", 8883, true)),
            ("mqtt://h:1883//", url("h", 1883, false)),
        ] {
            assert_eq!(BrokerUrl::parse(text), expected, "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_broker_address() {
        for (bad, why) in [
            ("", BrokerUrlError::Scheme),
            ("127.0.0.1:1883", BrokerUrlError::Scheme),
            ("http://h:1883", BrokerUrlError::Scheme),
            ("http://x", BrokerUrlError::Scheme),
            ("mqtt://", BrokerUrlError::Host),
            ("mqtt://:1883", BrokerUrlError::Host),
            ("mqtt://h:0", BrokerUrlError::Port),
            ("mqtt://h:99999", BrokerUrlError::Port),
            ("mqtt://h:notaport", BrokerUrlError::Port),
            ("mqtt://h:+1883", BrokerUrlError::Port),
            ("mqtt://user:pw@h:1883", BrokerUrlError::Port),
            ("mqtt://u@h:1", BrokerUrlError::Host),
            ("mqtt://h:1883/path", BrokerUrlError::Port),
            ("mqtt://h/path", BrokerUrlError::Host),
            ("mqtt://::1", BrokerUrlError::Host),
            ("mqtt://[::1", BrokerUrlError::Host),
            ("mqtt://[nope]:1883", BrokerUrlError::Host),
            ("mqtt://[::1]x", BrokerUrlError::Host),
            ("mqtt://h x:1883", BrokerUrlError::Host),
        ] {
            assert_eq!(BrokerUrl::parse(bad), Err(why), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn what_it_prints_it_reads_back(
            host in "[a-z0-9][a-z0-9._-]{0,30}",
            port in 1u16..,
            tls: bool,
        ) {
            let parsed = BrokerUrl { host, port, tls };
            prop_assert_eq!(BrokerUrl::parse(&parsed.to_string()), Ok(parsed));
        }

        #[test]
        fn ipv6_addresses_read_back(address: Ipv6Addr, port in 1u16.., tls: bool) {
            let parsed = BrokerUrl { host: address.to_string(), port, tls };
            prop_assert_eq!(BrokerUrl::parse(&parsed.to_string()), Ok(parsed));
        }

        #[test]
        fn never_panics(text in "(mqtts?://)?\\PC{0,40}") {
            let _ = BrokerUrl::parse(&text);
        }
    }
}
