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
use crate::trust::{self, Caller, VerifiedName};

/// Who this node is, for relay decisions: its key and the names its chains prove.
#[derive(Clone, Debug)]
pub struct Me {
    /// The node's peer id.
    pub peer_id: PeerId,
    /// The same key, as a header's `sender` holds it.
    pub public_key: [u8; 32],
    /// The names this node holds, each until its certificates expire.
    pub names: Vec<VerifiedName>,
}

impl Me {
    /// This identity without names.
    pub fn of(identity: &crate::identity::Identity) -> Self {
        Self {
            peer_id: identity.peer_id(),
            public_key: identity.public_key(),
            names: Vec::new(),
        }
    }

    /// This identity with the names its trust state proves at `now_ms`.
    pub fn named(identity: &crate::identity::Identity, trust: &trust::Trust, now_ms: u64) -> Self {
        Self {
            names: trust.names(now_ms),
            ..Self::of(identity)
        }
    }

    /// This node as a caller at `now_ms`: with the names that still hold.
    pub fn caller(&self, now_ms: u64) -> Caller {
        Caller {
            peer: self.peer_id,
            names: self
                .names
                .iter()
                .filter(|v| v.not_after_ms > now_ms)
                .map(|v| v.name.clone())
                .collect(),
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
    /// The message is larger than this node carries (its limit was lowered since).
    #[error("the message is {length} bytes; this node forwards at most {limit}")]
    TooBig {
        /// The message's length.
        length: u64,
        /// This node's limit.
        limit: u64,
    },
    /// The message lives longer than this node carries (its limit was lowered since).
    #[error(
        "the message's lifespan is {lifespan_ms} ms; this node forwards at most {limit_ms} ms"
    )]
    TooLong {
        /// The message's lifespan.
        lifespan_ms: u64,
        /// This node's limit.
        limit_ms: u64,
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

/// Whether `header` is addressed to this node at `now_ms`: its `recipient` is `*`, this node's
/// peer id, or a name pattern one of its names matches (`campfire/bob` addresses
/// `campfire/bob` and `campfire/bob/phone`).
pub fn addresses(header: &Header, me: &Me, now_ms: u64) -> bool {
    header.is_broadcast() || trust::addresses(&header.recipient, &me.caller(now_ms))
}

/// Whether this node takes an incoming message at all (called before any content is accepted):
/// a node that does not `relay` takes only what is addressed to it.
pub fn accepts(header: &Header, me: &Me, relay: bool, now_ms: u64) -> Result<(), Refusal> {
    if relay || addresses(header, me, now_ms) {
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
    if header.length > limits.max_length {
        return Err(Skip::TooBig {
            length: header.length,
            limit: limits.max_length,
        });
    }
    let limit_ms = u64::try_from(limits.max_lifespan.as_millis()).unwrap_or(u64::MAX);
    if header.lifespan_ms > limit_ms {
        return Err(Skip::TooLong {
            lifespan_ms: header.lifespan_ms,
            limit_ms,
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
        assert!(addresses(&header(&a, "*", &[])?, &me_b, 0));
        let to_b = header(&a, &b.peer_id().to_string(), &[])?;
        assert!(addresses(&to_b, &me_b, 0));
        let to_c = header(&a, &c.peer_id().to_string(), &[])?;
        assert!(!addresses(&to_c, &me_b, 0));
        assert_eq!(accepts(&to_b, &me_b, false, 0), Ok(()));
        assert_eq!(
            accepts(&to_c, &me_b, false, 0),
            Err(Refusal::NotForMe {
                recipient: c.peer_id().to_string()
            })
        );
        assert_eq!(accepts(&to_c, &me_b, true, 0), Ok(()));
        Ok(())
    }

    #[test]
    fn names_address_until_they_expire() -> anyhow::Result<()> {
        let (a, b) = (Identity::from_seed([1; 32]), Identity::from_seed([2; 32]));
        let mut me_b = Me::of(&b);
        me_b.names.push(VerifiedName {
            name: "campfire/bob".parse()?,
            not_after_ms: 1_000,
            restrictions: Default::default(),
        });
        let to_bob = header(&a, "campfire/bob", &[])?;
        let to_camp = header(&a, "campfire", &[])?;
        let to_bob_only = header(&a, "campfire/bob/$", &[])?;
        let to_alice = header(&a, "campfire/alice", &[])?;
        assert!(addresses(&to_bob, &me_b, 999));
        assert!(addresses(&to_camp, &me_b, 999));
        assert!(addresses(&to_bob_only, &me_b, 999));
        assert!(!addresses(&to_alice, &me_b, 999));
        assert!(!addresses(&to_bob, &me_b, 1_000), "the name expired");
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
