//! The peer manager, a node's main task: one sync task per selected peer, one task per inbound
//! request (bounded: beyond [`INBOUND_CAPACITY`] requests in progress the next one is answered
//! `busy` at once), one task per inbound `/mule/push/2` stream (at most [`STREAM_CAPACITY`]),
//! and a maintenance tick that closes stalled transfers. Expired messages are
//! collected by a task of their own (`collect_expired` in the node module), so no stream of requests
//! can hold collection back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use libp2p::PeerId;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::ctx::Ctx;
use super::{exchange, inbound, pull, sync, NodeEvent, MAINTENANCE_TICK};
use crate::net::{self, Event};

/// Most inbound requests served at once. Each holds at most one chunk (1 MiB) in memory, so
/// this bounds the memory inbound work can take; the network's request queue absorbs bursts.
pub const INBOUND_CAPACITY: usize = 256;
/// Most inbound `/mule/push/2` streams served at once; the next one is answered `busy`. Each
/// holds a few buffers of content (about 1.5 MiB) while it runs.
pub const STREAM_CAPACITY: usize = 8;

/// Runs until `stop` turns true; then stops every sync task and waits for the workers.
pub(super) async fn run(ctx: Arc<Ctx>, mut events: net::Events, mut stop: watch::Receiver<bool>) {
    let span = tracing::info_span!("node", node = %ctx.peer_id);
    async move {
        let inbound = inbound::Handler::new(ctx.clone());
        let mut syncs = Syncs::default();
        let mut workers = JoinSet::new();
        let capacity = Arc::new(Semaphore::new(INBOUND_CAPACITY));
        let stream_capacity = Arc::new(Semaphore::new(STREAM_CAPACITY));
        let mut streams = ctx.config.push2.then(|| ctx.net.accept_push2()).flatten();
        if ctx.config.push2 && streams.is_none() {
            tracing::warn!(
                "/mule/push/2 streams are accepted elsewhere; this node takes only /mule/push/1"
            );
        }
        let mut tick = tokio::time::interval(MAINTENANCE_TICK);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                // Before the requests: a steady stream of them would otherwise starve it. It
                // fires once per tick and only spawns work, so it cannot starve them.
                _ = tick.tick() => {
                    let now = Instant::now();
                    inbound.reap_idle(now);
                    let trust_ctx = ctx.clone();
                    workers.spawn(async move { exchange::update_trust(&trust_ctx, &[]).await });
                    let known = ctx.pulls.lock().unwrap_or_else(|p| p.into_inner()).known();
                    for peer in known {
                        workers.spawn(pull::scheduled::pull_if_due(ctx.clone(), peer));
                    }
                }
                Some(event) = events.peers.recv() => match event {
                    Event::Selected(peer) => {
                        let (stop, fresh) = syncs.start(peer);
                        workers.spawn(sync::run(ctx.clone(), peer, stop, fresh));
                    }
                    Event::Deselected(peer) => syncs.stop(&peer),
                    Event::Listening(addr) => ctx.listening(addr),
                    Event::Connected(peer) => {
                        let _ = ctx.events.send(NodeEvent::Connected(peer));
                        syncs.reconnected(&peer);
                        workers.spawn(exchange::with_peer(ctx.clone(), peer));
                    }
                },
                Some(net::Request { peer, inbound: req }) = events.requests.recv() => {
                    match capacity.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let handler = inbound.clone();
                            workers.spawn(async move {
                                handler.handle(peer, req).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            workers.spawn(inbound.clone().refuse_busy(peer, req));
                        }
                    }
                }
                Some((peer, stream)) = next_stream(&mut streams) => {
                    match stream_capacity.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let handler = inbound.clone();
                            workers.spawn(async move {
                                handler.push2(peer, stream).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            workers.spawn(inbound.clone().refuse_push2(stream));
                        }
                    }
                }
                Some(_) = workers.join_next(), if !workers.is_empty() => {}
                else => break,
            }
        }
        syncs.stop_all();
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
    .instrument(span)
    .await
}

/// The next inbound `/mule/push/2` stream; never, if this node does not accept them.
async fn next_stream(
    streams: &mut Option<libp2p_stream::IncomingStreams>,
) -> Option<(PeerId, libp2p::Stream)> {
    match streams {
        Some(streams) => streams.next().await,
        None => std::future::pending().await,
    }
}

/// The running sync tasks, one per selected peer: the switch that stops each, and the signal
/// that tells it the peer connected afresh.
#[derive(Default)]
struct Syncs(HashMap<PeerId, (watch::Sender<bool>, Arc<Notify>)>);

impl Syncs {
    /// Registers a new sync task for `peer` (stopping a previous one) and returns its stop
    /// switch and reconnection signal.
    fn start(&mut self, peer: PeerId) -> (watch::Receiver<bool>, Arc<Notify>) {
        let (tx, rx) = watch::channel(false);
        let fresh = Arc::new(Notify::new());
        if let Some((old, _)) = self.0.insert(peer, (tx, fresh.clone())) {
            let _ = old.send(true);
        }
        (rx, fresh)
    }

    /// A new connection to `peer` (it restarted, or came back in range): its sync task drops
    /// its backoff and retries everything now.
    fn reconnected(&self, peer: &PeerId) {
        if let Some((_, fresh)) = self.0.get(peer) {
            fresh.notify_one();
        }
    }

    fn stop(&mut self, peer: &PeerId) {
        if let Some((tx, _)) = self.0.remove(peer) {
            let _ = tx.send(true);
        }
    }

    fn stop_all(&mut self) {
        for (_, (tx, _)) in self.0.drain() {
            let _ = tx.send(true);
        }
    }
}
