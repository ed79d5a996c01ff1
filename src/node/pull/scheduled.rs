//! The node's own scheduled pulls (`--pull-from`): runs a pull when
//! [`PullSchedule`](crate::node::schedule::PullSchedule) says a peer is due.

use std::sync::Arc;
use std::time::Instant;

use libp2p::PeerId;

use crate::node::ctx::Ctx;

/// Pulls from `peer` if it is a scheduled source and due; returns when the pull (if any) ended.
pub(crate) async fn pull_if_due(ctx: Arc<Ctx>, peer: PeerId) {
    let caller = ctx.auth.caller(&peer, crate::message::now_ms());
    let start = ctx
        .pulls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .start(&caller, Instant::now());
    if !start {
        return;
    }
    let options = super::PullOptions {
        // A node that does not relay wants only what is addressed to it.
        for_me: !ctx.config.relay,
        since_ms: None,
        progress: None,
    };
    match super::pull_with(ctx.clone(), peer, options).await {
        Ok(report) => {
            tracing::info!(%peer, pulled = report.pulled, bytes = report.bytes, "scheduled pull")
        }
        Err(e) => tracing::debug!(%peer, error = %e, "scheduled pull failed"),
    }
    ctx.pulls
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .done(&peer, Instant::now());
}
