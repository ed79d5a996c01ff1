//! Reaching a peer by address before pulling from it: dial, then wait for the connection.
//!
//! A request to a peer the network has no address for fails at once, and a request sent while
//! a dial to it is still under way fails too (the network does not dial a peer it is already
//! dialling), so a pull from a new address waits for the connection first.

use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::broadcast::error::RecvError;

use super::PullError;
use crate::node::ctx::Ctx;
use crate::node::NodeEvent;

/// The peer id an address ends in (`/p2p/<peer id>`).
pub(super) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// Dials `addr` and waits until its peer is connected, at most `within`.
pub(super) async fn connect(
    ctx: &Ctx,
    addr: Multiaddr,
    within: Duration,
) -> Result<PeerId, PullError> {
    let peer = peer_of(&addr).ok_or_else(|| PullError::NoPeerId(addr.clone()))?;
    // Subscribe before dialling so the connection event cannot be missed.
    let mut events = ctx.events.subscribe();
    if connected(ctx, peer).await? {
        return Ok(peer);
    }
    ctx.net
        .dial(addr)
        .await
        .map_err(|source| PullError::Network { peer, source })?;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(NodeEvent::Connected(p))) if p == peer => return Ok(peer),
            Ok(Ok(_)) => {}
            // Missed events: the status says whether the connection is there.
            Ok(Err(RecvError::Lagged(_))) => {
                if connected(ctx, peer).await? {
                    return Ok(peer);
                }
            }
            Ok(Err(RecvError::Closed)) | Err(_) => {
                return Err(PullError::NotConnected { peer, within })
            }
        }
    }
}

/// Whether the network has a connection to `peer` now.
async fn connected(ctx: &Ctx, peer: PeerId) -> Result<bool, PullError> {
    let status = ctx
        .net
        .status()
        .await
        .map_err(|source| PullError::Network { peer, source })?;
    Ok(status.connected.contains(&peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_is_the_last_component() -> anyhow::Result<()> {
        let peer = crate::identity::Identity::from_seed([5; 32]).peer_id();
        let with: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse()?;
        assert_eq!(peer_of(&with), Some(peer));
        let without: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse()?;
        assert_eq!(peer_of(&without), None);
        Ok(())
    }
}
