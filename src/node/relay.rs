//! The relay policy, in one pure place: which messages are addressed to this node, which ones
//! it takes at all, which ones it offers to a peer, and how a header looks when it leaves.
//!
//! Sync, the inbound handler and the inbox view all ask here, so a rule changes in one spot.
//! No I/O and no clock: everything a decision needs is passed in. Names and access lists plug
//! in through [`Me`] (who this node is) and the access decisions of [`super::auth`].

use libp2p::PeerId;
use serde_bytes::ByteBuf;

use crate::identity;
use crate::message::{Header, Limits};

/// Who this node is, for relay decisions.
#[derive(Clone, Debug)]
pub struct Me {
    /// The node's peer id.
    pub peer_id: PeerId,
    /// The same key, as a header's `sender` holds it.
    pub public_key: [u8; 32],
}

impl Me {
    /// This identity, for relay decisions.
    pub fn of(identity: &crate::identity::Identity) -> Self {
        Self {
            peer_id: identity.peer_id(),
            public_key: identity.public_key(),
        }
    }

    /// This node as the sender of `header`?
    pub fn sent(&self, header: &Header) -> bool {
        header.sender == self.public_key
    }
}

/// Why a message is not offered to a peer; not an error, just a reason for the logs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    /// The peer is a relay the message already passed: it has it (or refused it).
    #[error("the message already passed through this peer")]
    CameThrough,
    /// The peer is the message's original sender.
    #[error("the peer is the message's sender")]
    IsSender,
    /// Forwarding would take the message past the hop limit.
    #[error("forwarding would make {hops} hops; the limit is {limit}")]
    HopLimit {
        /// Hops the message would have on arrival.
        hops: usize,
        /// This node's limit.
        limit: usize,
    },
}

/// Why an incoming message is refused before any of its content is accepted (beyond header
/// validation and the access lists, which have their own errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// This node does not relay and the message is for someone else.
    #[error("this node does not relay; message is for {recipient}")]
    NotForMe {
        /// The message's recipient.
        recipient: String,
    },
}

/// Whether `header` is addressed to this node: its peer id, or everyone (`*`).
pub fn addresses(header: &Header, me: &Me) -> bool {
    header.is_broadcast() || header.recipient == me.peer_id.to_string()
}

/// Whether this node takes an incoming message at all (called before any content is accepted):
/// a node that does not `relay` takes only what is addressed to it.
pub fn accepts(header: &Header, me: &Me, relay: bool) -> Result<(), Refusal> {
    if relay || addresses(header, me) {
        Ok(())
    } else {
        Err(Refusal::NotForMe {
            recipient: header.recipient.clone(),
        })
    }
}

/// Whether `header` should be offered to `peer`: not back to a relay it came through, not to
/// its sender, and within the hop limit once this node counts as a hop. Access lists decide
/// separately ([`super::auth::Authoriser::push_to`]).
pub fn offer(header: &Header, peer: &PeerId, me: &Me, limits: &Limits) -> Result<(), Skip> {
    let peer_bytes = peer.to_bytes();
    if header.hops.iter().any(|h| h.as_slice() == peer_bytes) {
        return Err(Skip::CameThrough);
    }
    if identity::public_key_of(peer) == Some(header.sender) {
        return Err(Skip::IsSender);
    }
    let hops = header.hops.len() + usize::from(!me.sent(header));
    if hops > limits.max_hops {
        return Err(Skip::HopLimit {
            hops,
            limit: limits.max_hops,
        });
    }
    Ok(())
}

/// The header as it leaves this node: a relay appends its own peer id to `hops`; the original
/// sender does not. `hops` is outside the signature, so the header stays valid.
pub fn outgoing(header: &Header, me: &Me) -> Header {
    let mut header = header.clone();
    if !me.sent(&header) {
        header.hops.push(ByteBuf::from(me.peer_id.to_bytes()));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    fn header(from: &Identity, to: &str, hops: &[PeerId]) -> anyhow::Result<Header> {
        let mut h = Draft {
            recipient: to.into(),
            created_ms: 0,
            lifespan_ms: 1,
            chains: vec![],
        }
        .sign(from, b"x")?;
        h.hops = hops.iter().map(|p| ByteBuf::from(p.to_bytes())).collect();
        Ok(h)
    }

    #[test]
    fn addressed_to_me_or_everyone() -> anyhow::Result<()> {
        let (a, b, c) = (
            Identity::from_seed([1; 32]),
            Identity::from_seed([2; 32]),
            Identity::from_seed([3; 32]),
        );
        let me_b = Me::of(&b);
        assert!(addresses(&header(&a, "*", &[])?, &me_b));
        let to_b = header(&a, &b.peer_id().to_string(), &[])?;
        assert!(addresses(&to_b, &me_b));
        let to_c = header(&a, &c.peer_id().to_string(), &[])?;
        assert!(!addresses(&to_c, &me_b));
        assert_eq!(accepts(&to_b, &me_b, false), Ok(()));
        assert_eq!(
            accepts(&to_c, &me_b, false),
            Err(Refusal::NotForMe {
                recipient: c.peer_id().to_string()
            })
        );
        assert_eq!(accepts(&to_c, &me_b, true), Ok(()));
        Ok(())
    }

    #[test]
    fn offers_skip_relays_sender_and_hop_limit() -> anyhow::Result<()> {
        let (a, b, c, d) = (
            Identity::from_seed([1; 32]),
            Identity::from_seed([2; 32]),
            Identity::from_seed([3; 32]),
            Identity::from_seed([4; 32]),
        );
        let limits = Limits {
            max_hops: 1,
            ..Limits::default()
        };
        // B relays A's message that came through C.
        let h = header(&a, "*", &[c.peer_id()])?;
        let me_b = Me::of(&b);
        assert_eq!(
            offer(&h, &c.peer_id(), &me_b, &limits),
            Err(Skip::CameThrough)
        );
        assert_eq!(offer(&h, &a.peer_id(), &me_b, &limits), Err(Skip::IsSender));
        assert_eq!(
            offer(&h, &d.peer_id(), &me_b, &limits),
            Err(Skip::HopLimit { hops: 2, limit: 1 })
        );
        // The sender itself adds no hop.
        let own = header(&b, "*", &[])?;
        assert_eq!(offer(&own, &d.peer_id(), &me_b, &limits), Ok(()));
        assert!(outgoing(&own, &me_b).hops.is_empty());
        let relayed = outgoing(&h, &me_b);
        assert_eq!(relayed.hops.len(), 2);
        assert_eq!(relayed.hops[1].as_slice(), b.peer_id().to_bytes());
        Ok(())
    }
}
