//! Discovery policy: which peers join the ring, which leave it, and which addresses are kept.
//!
//! Every source of peers is decided here, in one place, as a pure function from what was heard
//! to [`Action`]s the event loop applies to the Swarm:
//!
//! - **bootstrap list**: each peer's address goes to the swarm and Kademlia; the peer joins the
//!   ring and is dialled. Bootstrap peers never leave the ring through mDNS expiry.
//! - **mDNS discovered**: the address goes to the swarm and Kademlia; the peer joins.
//! - **mDNS expired**: the peer leaves, unless it is connected or a bootstrap peer.
//! - **identify**: only a peer announcing `/mule/push/1` counts. Its dialable listen addresses
//!   go to the swarm (and to Kademlia if it speaks [`KAD_PROTOCOL`]); it joins.
//! - **Kademlia lookup results** (the discovery walk): dialable addresses go to the swarm; each
//!   peer joins.
//! - **Kademlia routing updates**: the peer joins; a peer evicted from the table leaves unless
//!   connected.
//! - **connections**: every peer that completes a connection joins. That one lives in
//!   [`ring::Behaviour`](super::ring::Behaviour) itself, which sees connections first hand.
//!
//! The local peer never joins and no address of it is kept.

use std::collections::HashSet;

use libp2p::multiaddr::Protocol;
use libp2p::{identify, kad, mdns, Multiaddr, PeerId, StreamProtocol};

use super::{parse_bootstrap, Error, KAD_PROTOCOL};
use crate::protocol::push;

/// What a discovery source reported, reduced to the facts the policy needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Heard {
    /// mDNS found peers on the LAN.
    Mdns(Vec<(PeerId, Multiaddr)>),
    /// mDNS records of these peers expired.
    MdnsExpired(Vec<PeerId>),
    /// A peer identified itself.
    Identified {
        /// Who.
        peer: PeerId,
        /// Where it says it listens.
        listen_addrs: Vec<Multiaddr>,
        /// What it speaks.
        protocols: Vec<StreamProtocol>,
    },
    /// A Kademlia lookup returned these peers and addresses.
    Closest(Vec<(PeerId, Vec<Multiaddr>)>),
    /// Kademlia's routing table took `peer`, maybe evicting `evicted`.
    Routing {
        /// The peer added or updated.
        peer: PeerId,
        /// The peer it replaced, if any.
        evicted: Option<PeerId>,
    },
}

impl Heard {
    /// The discovery facts in an mDNS event.
    pub(super) fn from_mdns(event: mdns::Event) -> Self {
        match event {
            mdns::Event::Discovered(found) => Heard::Mdns(found),
            mdns::Event::Expired(gone) => {
                Heard::MdnsExpired(gone.into_iter().map(|(p, _)| p).collect())
            }
        }
    }

    /// The discovery facts in an identify event, if any.
    pub(super) fn from_identify(event: identify::Event) -> Option<Self> {
        match event {
            identify::Event::Received { peer_id, info, .. } => Some(Heard::Identified {
                peer: peer_id,
                listen_addrs: info.listen_addrs,
                protocols: info.protocols,
            }),
            _ => None,
        }
    }

    /// The discovery facts in a Kademlia event, if any.
    pub(super) fn from_kad(event: kad::Event) -> Option<Self> {
        match event {
            kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(Ok(ok)),
                ..
            } => Some(Heard::Closest(
                ok.peers.into_iter().map(|p| (p.peer_id, p.addrs)).collect(),
            )),
            kad::Event::RoutingUpdated { peer, old_peer, .. } => Some(Heard::Routing {
                peer,
                evicted: old_peer,
            }),
            _ => None,
        }
    }
}

/// What the event loop does about a discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Action {
    /// Keep `addr` for dialling `peer`; also give it to Kademlia when `kad`.
    Address {
        /// The peer.
        peer: PeerId,
        /// Its address.
        addr: Multiaddr,
        /// Whether Kademlia's routing table gets it too.
        kad: bool,
    },
    /// Put the peer on the ring.
    Join(PeerId),
    /// Take the peer off the ring.
    Leave(PeerId),
    /// Dial the peer now.
    Dial(PeerId),
}

/// The discovery policy of one node.
#[derive(Clone, Debug)]
pub(super) struct Policy {
    local: PeerId,
    bootstrap: HashSet<PeerId>,
}

impl Policy {
    /// The policy of node `local` with its bootstrap list, and the actions that start it:
    /// every bootstrap peer's address, its joining the ring and a dial.
    pub(super) fn new(
        local: PeerId,
        bootstrap: &[Multiaddr],
    ) -> Result<(Self, Vec<Action>), Error> {
        let mut policy = Self {
            local,
            bootstrap: HashSet::new(),
        };
        let mut actions = Vec::new();
        for addr in bootstrap {
            let (peer, base) = parse_bootstrap(addr)?;
            if peer == local {
                continue;
            }
            policy.bootstrap.insert(peer);
            actions.push(Action::Address {
                peer,
                addr: base,
                kad: true,
            });
            actions.extend([Action::Join(peer), Action::Dial(peer)]);
        }
        Ok((policy, actions))
    }

    /// What to do about `heard`; `connected` tells whether a peer has an open connection.
    pub(super) fn decide(&self, heard: Heard, connected: impl Fn(&PeerId) -> bool) -> Vec<Action> {
        let mut actions = Vec::new();
        match heard {
            Heard::Mdns(found) => {
                for (peer, addr) in found {
                    actions.push(Action::Address {
                        peer,
                        addr,
                        kad: true,
                    });
                    actions.push(Action::Join(peer));
                }
            }
            Heard::MdnsExpired(gone) => actions.extend(
                gone.into_iter()
                    .filter(|p| !connected(p) && !self.bootstrap.contains(p))
                    .map(Action::Leave),
            ),
            Heard::Identified {
                peer,
                listen_addrs,
                protocols,
            } => identified(&mut actions, peer, listen_addrs, &protocols),
            Heard::Closest(peers) => {
                for (peer, addrs) in peers {
                    actions.extend(addrs.into_iter().filter(is_dialable).map(|addr| {
                        Action::Address {
                            peer,
                            addr,
                            kad: false,
                        }
                    }));
                    actions.push(Action::Join(peer));
                }
            }
            Heard::Routing { peer, evicted } => {
                actions.push(Action::Join(peer));
                actions.extend(evicted.filter(|old| !connected(old)).map(Action::Leave));
            }
        }
        actions.retain(|a| a.peer() != self.local);
        actions
    }
}

/// Identify: a mule peer's dialable addresses are kept and it joins; other peers are ignored.
fn identified(
    actions: &mut Vec<Action>,
    peer: PeerId,
    listen_addrs: Vec<Multiaddr>,
    protocols: &[StreamProtocol],
) {
    let speaks = |name: &str| protocols.iter().any(|p| p.as_ref() == name);
    if !speaks(push::PROTOCOL) {
        return;
    }
    let kad = speaks(KAD_PROTOCOL);
    actions.extend(
        listen_addrs
            .into_iter()
            .filter(is_dialable)
            .map(|addr| Action::Address { peer, addr, kad }),
    );
    actions.push(Action::Join(peer));
}

impl Action {
    /// The peer the action is about.
    fn peer(&self) -> PeerId {
        match self {
            Action::Address { peer, .. }
            | Action::Join(peer)
            | Action::Leave(peer)
            | Action::Dial(peer) => *peer,
        }
    }
}

/// Whether an address is worth dialling (not the unspecified address a peer listens on).
fn is_dialable(addr: &Multiaddr) -> bool {
    !addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_unspecified(),
        Protocol::Ip6(ip) => ip.is_unspecified(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(peer: PeerId, addr: Multiaddr, kad: bool) -> Action {
        Action::Address { peer, addr, kad }
    }

    fn addr(s: &str) -> anyhow::Result<Multiaddr> {
        Ok(s.parse()?)
    }

    fn policy() -> (Policy, PeerId) {
        let local = PeerId::random();
        (
            Policy {
                local,
                bootstrap: HashSet::new(),
            },
            local,
        )
    }

    #[test]
    fn mdns_discoveries_join_with_their_address_but_never_the_local_node() -> anyhow::Result<()> {
        let (policy, local) = policy();
        let peer = PeerId::random();
        let a = addr("/ip4/192.168.1.2/tcp/4001")?;
        let heard = Heard::Mdns(vec![(peer, a.clone()), (local, a.clone())]);
        assert_eq!(
            policy.decide(heard, |_| false),
            vec![address(peer, a, true), Action::Join(peer)]
        );
        Ok(())
    }

    #[test]
    fn mdns_expiry_spares_connected_and_bootstrap_peers() -> anyhow::Result<()> {
        let local = PeerId::random();
        let boot = PeerId::random();
        let (policy, start) = Policy::new(
            local,
            &[addr(&format!("/ip4/10.0.0.1/tcp/4001/p2p/{boot}"))?],
        )?;
        assert_eq!(
            start,
            vec![
                address(boot, addr("/ip4/10.0.0.1/tcp/4001")?, true),
                Action::Join(boot),
                Action::Dial(boot),
            ]
        );
        let (connected, gone) = (PeerId::random(), PeerId::random());
        let heard = Heard::MdnsExpired(vec![boot, connected, gone]);
        assert_eq!(
            policy.decide(heard, |p| *p == connected),
            vec![Action::Leave(gone)]
        );
        Ok(())
    }

    #[test]
    fn bootstrap_addresses_need_a_peer_id() -> anyhow::Result<()> {
        let err = Policy::new(PeerId::random(), &[addr("/ip4/10.0.0.1/tcp/4001")?]).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("bootstrap address /ip4/10.0.0.1/tcp/4001 must end in /p2p/<peer id>")
        );
        Ok(())
    }

    #[test]
    fn identify_admits_only_mule_peers_with_dialable_addresses() -> anyhow::Result<()> {
        let (policy, _) = policy();
        let peer = PeerId::random();
        let good = addr("/ip4/10.0.0.2/tcp/4001")?;
        let listen_addrs = vec![good.clone(), addr("/ip4/0.0.0.0/tcp/4001")?];
        let mule = |kad: bool| {
            let mut p = vec![StreamProtocol::new(push::PROTOCOL)];
            if kad {
                p.push(StreamProtocol::new(KAD_PROTOCOL));
            }
            p
        };
        for kad in [true, false] {
            let heard = Heard::Identified {
                peer,
                listen_addrs: listen_addrs.clone(),
                protocols: mule(kad),
            };
            assert_eq!(
                policy.decide(heard, |_| false),
                vec![address(peer, good.clone(), kad), Action::Join(peer)]
            );
        }
        let stranger = Heard::Identified {
            peer,
            listen_addrs,
            protocols: vec![StreamProtocol::new("/ipfs/kad/1.0.0")],
        };
        assert!(policy.decide(stranger, |_| false).is_empty());
        Ok(())
    }

    #[test]
    fn kademlia_results_and_routing_updates() -> anyhow::Result<()> {
        let (policy, local) = policy();
        let (peer, old) = (PeerId::random(), PeerId::random());
        let a = addr("/ip6/::1/tcp/4001")?;
        let heard = Heard::Closest(vec![
            (peer, vec![a.clone(), addr("/ip6/::/tcp/1")?]),
            (local, vec![a.clone()]),
        ]);
        assert_eq!(
            policy.decide(heard, |_| false),
            vec![address(peer, a, false), Action::Join(peer)]
        );
        let routing = Heard::Routing {
            peer,
            evicted: Some(old),
        };
        assert_eq!(
            policy.decide(routing.clone(), |_| false),
            vec![Action::Join(peer), Action::Leave(old)]
        );
        assert_eq!(policy.decide(routing, |_| true), vec![Action::Join(peer)]);
        Ok(())
    }
}
