//! The `mule node --metrics ADDR` endpoint: Prometheus scrapes `GET /metrics` over HTTP.
//!
//! The CLI serves it on top of a running node, like the control socket. The node builds the
//! registry ([`crate::node::metrics`]); this module only parses the address and answers HTTP
//! ([`Server`]), on tasks of its own, so a scrape never waits in the Swarm task's loop.
//!
//! A bare port binds to loopback: metrics name peers and traffic, and exposing them on every
//! interface should be a deliberate `0.0.0.0:PORT`.

mod http;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub use http::{status_for, Server, MAX_CONNECTIONS, MAX_HEAD, READ_TIMEOUT};

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The address is in use, not local, or needs privileges.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why the OS refused.
        source: std::io::Error,
    },
}

/// Why a `--metrics` value is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddrError {
    /// Neither `HOST:PORT` nor a port number.
    #[error("`{0}` is not a metrics address: give HOST:PORT (e.g. 127.0.0.1:9464, [::1]:9464) or a port")]
    Invalid(String),
}

/// Parses `--metrics`: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, or a bare `PORT`, which
/// means `127.0.0.1:PORT`. Port 0 lets the OS choose (the node prints the port it got).
pub fn parse_addr(text: &str) -> Result<SocketAddr, AddrError> {
    let text = text.trim();
    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(loopback, port));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    // Resolving names would block the parser on DNS; `localhost` is the one name worth taking.
    match text.strip_prefix("localhost:").map(str::parse::<u16>) {
        Some(Ok(port)) => Ok(SocketAddr::new(loopback, port)),
        _ => Err(AddrError::Invalid(text.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_port_binds_to_loopback() -> anyhow::Result<()> {
        assert_eq!(parse_addr("9464")?, "127.0.0.1:9464".parse()?);
        assert_eq!(parse_addr("0")?, "127.0.0.1:0".parse()?);
        assert_eq!(parse_addr(" 9464 ")?, "127.0.0.1:9464".parse()?);
        assert_eq!(parse_addr("localhost:9464")?, "127.0.0.1:9464".parse()?);
        Ok(())
    }

    #[test]
    fn host_and_port() -> anyhow::Result<()> {
        assert_eq!(parse_addr("0.0.0.0:9464")?, "0.0.0.0:9464".parse()?);
        assert_eq!(parse_addr("[::1]:9464")?, "[::1]:9464".parse()?);
        assert_eq!(parse_addr("192.0.2.7:80")?, "192.0.2.7:80".parse()?);
        Ok(())
    }

    #[test]
    fn refused_with_the_value() {
        for bad in [
            "",
            "65536",
            "-1",
            "host",
            "example.com:9464",
            "::1:9464",
            "1.2.3.4",
        ] {
            assert_eq!(
                parse_addr(bad),
                Err(AddrError::Invalid(bad.trim().to_owned())),
                "{bad}"
            );
        }
        assert_eq!(
            parse_addr("nine").map_err(|e| e.to_string()),
            Err(
                "`nine` is not a metrics address: give HOST:PORT (e.g. 127.0.0.1:9464, \
                 [::1]:9464) or a port"
                    .to_owned()
            )
        );
    }
}
