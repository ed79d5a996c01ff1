//! Where a pull comes from, as a person or the control socket names it: a peer id (the network
//! must already know how to reach it) or an address ending in `/p2p/<peer id>` (dialled first).

use std::fmt;
use std::str::FromStr;

use libp2p::{Multiaddr, PeerId};

use super::connect::peer_of;

/// A peer to pull from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A peer the node is connected to or has an address for.
    Peer(PeerId),
    /// An address to dial, naming its peer.
    Addr(Multiaddr),
}

impl Source {
    /// The peer pulled from.
    pub fn peer(&self) -> Option<PeerId> {
        match self {
            Self::Peer(p) => Some(*p),
            Self::Addr(a) => peer_of(a),
        }
    }
}

/// Text that is neither a peer id nor an address ending in `/p2p/<peer id>`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a peer id nor an address ending in /p2p/<peer id>")]
pub struct ParseSourceError(String);

impl FromStr for Source {
    type Err = ParseSourceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.starts_with('/') {
            return match s.parse::<Multiaddr>() {
                Ok(addr) if peer_of(&addr).is_some() => Ok(Self::Addr(addr)),
                _ => Err(ParseSourceError(s.into())),
            };
        }
        s.parse::<PeerId>()
            .map(Self::Peer)
            .map_err(|_| ParseSourceError(s.into()))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Peer(p) => p.fmt(f),
            Self::Addr(a) => a.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_and_addresses_with_a_peer() -> anyhow::Result<()> {
        let peer = crate::identity::Identity::from_seed([5; 32]).peer_id();
        assert_eq!(peer.to_string().parse::<Source>(), Ok(Source::Peer(peer)));
        let addr = format!("/ip4/127.0.0.1/tcp/9/p2p/{peer}");
        let parsed: Source = addr.parse()?;
        assert_eq!(parsed.peer(), Some(peer));
        assert_eq!(parsed.to_string(), addr);
        assert_eq!(
            "/ip4/127.0.0.1/tcp/9".parse::<Source>().map_err(|e| e.to_string()),
            Err("`/ip4/127.0.0.1/tcp/9` is neither a peer id nor an address ending in /p2p/<peer id>".into())
        );
        assert!("bob".parse::<Source>().is_err());
        Ok(())
    }
}
