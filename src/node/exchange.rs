//! The names exchange (`/mule/names/1`, protocols/names-exchange.md): on a new connection each
//! side hands the other the certificate chains that name it; each verifies what it got against
//! its own roots, offline, and from then on judges the peer by those names. When a peer's trust
//! changes (names proved, certificates expired), ring selection is told.

use std::sync::Arc;

use libp2p::PeerId;

use super::ctx::Ctx;
use crate::identity;
use crate::message::{now_ms, CertificateChain};
use crate::protocol::names;
use crate::trust;

/// This node's chains as the exchange sends them: those that verify now.
pub(super) fn own_chains(ctx: &Ctx) -> names::Chains {
    match names::Chains::new(ctx.trust.header_chains(now_ms())) {
        Ok(chains) => chains,
        Err(e) => {
            tracing::warn!(error = %e, "own chains do not fit the names exchange; sending none");
            names::Chains::empty()
        }
    }
}

/// Verifies the chains `peer` presented and records the names they prove (none for a chain
/// that fails: the peer is then judged without that name).
pub(super) fn learn(ctx: &Ctx, peer: PeerId, chains: &[CertificateChain]) {
    let Some(key) = identity::public_key_of(&peer) else {
        return;
    };
    let names = trust::names_of(&key, chains, ctx.auth.roots(), now_ms());
    for (i, e) in &names.failed {
        tracing::debug!(%peer, chain = i, error = %e, "peer's chain does not verify");
    }
    tracing::debug!(%peer, names = ?names.verified.iter().map(|v| v.name.to_string()).collect::<Vec<_>>(), "peer names");
    ctx.auth.learn(peer, names.verified);
}

/// Asks a newly connected peer for its chains (sending ours), then updates its trust. A peer
/// that does not answer stays nameless.
pub(super) async fn with_peer(ctx: Arc<Ctx>, peer: PeerId) {
    match ctx.net.names(peer, own_chains(&ctx)).await {
        Ok(answer) => learn(&ctx, peer, answer.chains()),
        Err(e) => tracing::debug!(%peer, error = %e, "names exchange failed; peer is nameless"),
    }
    update_trust(&ctx, &[peer]).await;
    // A data mule this node pulls from: pull now that its names are known.
    super::pull::scheduled::pull_if_due(ctx, peer).await;
}

/// Tells ring selection which of `peers` changed trust (all peers with names on record when
/// `peers` is empty: the periodic re-check that catches expired certificates).
pub(super) async fn update_trust(ctx: &Ctx, peers: &[PeerId]) {
    let all;
    let peers = if peers.is_empty() {
        all = ctx.auth.named_peers();
        &all[..]
    } else {
        peers
    };
    for (peer, trusted) in ctx.auth.trust_changes(peers, now_ms()) {
        tracing::debug!(%peer, trusted, "peer trust changed");
        if ctx.net.set_trusted(peer, trusted).await.is_err() {
            return;
        }
    }
}
