//! What this node knows of its peers' names: the names each connected peer proved in the names
//! exchange (`/mule/names/1`), kept until their certificates expire, and whether the out
//! access list trusts the peer (only trusted peers take ring slots). Pure: `now` is passed in.

use std::collections::HashMap;

use libp2p::PeerId;

use crate::trust::{Caller, VerifiedName};

/// Most peers whose names are kept; beyond it the entry expiring soonest is dropped.
pub const MAX_PEERS: usize = 4096;

/// Names and trust of the peers this node talks to.
#[derive(Debug, Default)]
pub struct PeerNames {
    names: HashMap<PeerId, Vec<VerifiedName>>,
    /// The trust last told to the network, per peer, to tell it only changes.
    trusted: HashMap<PeerId, bool>,
}

impl PeerNames {
    /// Records the names `peer` proved (replacing what it proved before).
    pub fn set(&mut self, peer: PeerId, names: Vec<VerifiedName>) {
        if self.names.len() >= MAX_PEERS && !self.names.contains_key(&peer) {
            let soonest = self
                .names
                .iter()
                .min_by_key(|(_, n)| n.iter().map(|v| v.not_after_ms).max().unwrap_or(0))
                .map(|(p, _)| *p);
            if let Some(p) = soonest {
                self.names.remove(&p);
            }
        }
        self.names.insert(peer, names);
    }

    /// Forgets a peer (it disconnected).
    pub fn remove(&mut self, peer: &PeerId) {
        self.names.remove(peer);
        self.trusted.remove(peer);
    }

    /// `peer` as a caller at `now_ms`: with the names it proved that still hold.
    pub fn caller(&self, peer: &PeerId, now_ms: u64) -> Caller {
        let names = self
            .names
            .get(peer)
            .map(|names| {
                names
                    .iter()
                    .filter(|v| v.not_after_ms > now_ms)
                    .map(|v| v.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        Caller { peer: *peer, names }
    }

    /// Peers with names on record.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.names.keys()
    }

    /// Records that `peer` is (not) trusted; returns whether that changed what was last told.
    pub fn set_trusted(&mut self, peer: PeerId, trusted: bool) -> bool {
        self.trusted.insert(peer, trusted) != Some(trusted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::trust::{Name, Restrictions};

    fn named(name: &str, not_after_ms: u64) -> anyhow::Result<VerifiedName> {
        Ok(VerifiedName {
            name: name.parse::<Name>()?,
            not_after_ms,
            restrictions: Restrictions::default(),
        })
    }

    #[test]
    fn names_expire_with_their_certificates() -> anyhow::Result<()> {
        let p = Identity::from_seed([1; 32]).peer_id();
        let mut peers = PeerNames::default();
        assert!(peers.caller(&p, 0).names.is_empty());
        peers.set(
            p,
            vec![named("campfire/alice", 100)?, named("mules/a", 200)?],
        );
        assert_eq!(peers.caller(&p, 99).names.len(), 2);
        let later = peers.caller(&p, 100);
        assert_eq!(later.names.len(), 1);
        assert_eq!(later.names[0].to_string(), "mules/a");
        assert!(peers.caller(&p, 200).names.is_empty());
        peers.remove(&p);
        assert!(peers.caller(&p, 0).names.is_empty());
        Ok(())
    }

    #[test]
    fn trust_changes_are_reported_once() {
        let p = Identity::from_seed([2; 32]).peer_id();
        let mut peers = PeerNames::default();
        assert!(peers.set_trusted(p, true));
        assert!(!peers.set_trusted(p, true));
        assert!(peers.set_trusted(p, false));
        peers.remove(&p);
        assert!(peers.set_trusted(p, false));
    }

    #[test]
    fn bounded() -> anyhow::Result<()> {
        let mut peers = PeerNames::default();
        for i in 0..(MAX_PEERS + 10) as u64 {
            let p = Identity::from_seed({
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&i.to_le_bytes());
                s
            })
            .peer_id();
            peers.set(p, vec![named("x", i)?]);
        }
        assert_eq!(peers.peers().count(), MAX_PEERS);
        Ok(())
    }
}
